//! `POST /crm/v3/objects/{objectType}/search`: filter groups, paging, property selection.
//!
//! Filter groups are ORed, the filters inside one group ANDed (HubSpot's semantics). String
//! comparisons ignore case, as HubSpot's search does; numbers and dates compare as numbers
//! (ISO dates and epoch milliseconds both work). `after` is an offset, like HubSpot's search
//! cursor. Limits from FACTS B5: `limit` ≤ 200, at most 6 filter groups. Results come in id order
//! (`sorts` is accepted and ignored).

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::object_type::ObjectType;
use crate::record::{Record, Selection};
use crate::store::Store;

const MAX_LIMIT: i64 = 200;
const DEFAULT_LIMIT: i64 = 10;
const MAX_FILTER_GROUPS: usize = 6;

/// `PublicObjectSearchRequest`; every field optional, as the live API allows.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchBody {
    #[serde(default)]
    filter_groups: Vec<FilterGroup>,
    #[serde(default)]
    properties: Vec<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    after: Option<Value>,
    #[serde(default)]
    query: Option<String>,
}

#[derive(Debug, Deserialize)]
struct FilterGroup {
    #[serde(default)]
    filters: Vec<Filter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    property_name: String,
    operator: String,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    values: Option<Vec<Value>>,
    #[serde(default)]
    high_value: Option<Value>,
}

/// A scalar JSON value as text (clients send `"17"` or `17`).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Numbers, epoch milliseconds, ISO instants and dates on one numeric scale.
fn as_number(text: &str) -> Option<f64> {
    if let Ok(n) = text.parse::<f64>() {
        return n.is_finite().then_some(n);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.timestamp_millis() as f64);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_millis() as f64)
}

fn compare(actual: &str, wanted: &str) -> Ordering {
    match (as_number(actual), as_number(wanted)) {
        (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        _ => actual.to_lowercase().cmp(&wanted.to_lowercase()),
    }
}

fn equals(actual: &str, wanted: &str) -> bool {
    compare(actual, wanted) == Ordering::Equal
}

impl Filter {
    fn value(&self) -> Option<String> {
        self.value.as_ref().and_then(scalar)
    }

    fn values(&self) -> Vec<String> {
        self.values.iter().flatten().filter_map(scalar).collect()
    }

    /// Refuses unknown operators and operators missing the operand they need.
    fn check(&self) -> Result<(), ApiError> {
        let needs = match self.operator.as_str() {
            "HAS_PROPERTY" | "NOT_HAS_PROPERTY" => None,
            "IN" | "NOT_IN" => (self.values.is_none()).then_some("a `values` array"),
            "BETWEEN" => (self.value().is_none()
                || self.high_value.as_ref().and_then(scalar).is_none())
            .then_some("a `value` and a `highValue`"),
            "EQ" | "NEQ" | "GT" | "GTE" | "LT" | "LTE" | "CONTAINS_TOKEN"
            | "NOT_CONTAINS_TOKEN" => self.value().is_none().then_some("a string `value`"),
            other => {
                return Err(ApiError::validation(format!(
                    "Unknown filter operator {other}: use EQ, NEQ, LT, LTE, GT, GTE, BETWEEN, IN, \
                     NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY, CONTAINS_TOKEN or NOT_CONTAINS_TOKEN"
                )));
            }
        };
        match needs {
            Some(what) => Err(ApiError::validation(format!(
                "Filter {} on {} needs {what}",
                self.operator, self.property_name
            ))),
            None => Ok(()),
        }
    }

    /// Evaluates a filter that passed [`Filter::check`].
    fn matches(&self, record: &Record) -> bool {
        let actual = record.get(&self.property_name);
        let actual = actual.as_deref();
        let wanted = self.value().unwrap_or_default();
        let cmp =
            |wanted: &str, ok: fn(Ordering) -> bool| actual.is_some_and(|a| ok(compare(a, wanted)));
        match self.operator.as_str() {
            "EQ" => actual.is_some_and(|a| equals(a, &wanted)),
            "NEQ" => !actual.is_some_and(|a| equals(a, &wanted)),
            "IN" => actual.is_some_and(|a| self.values().iter().any(|v| equals(a, v))),
            "NOT_IN" => !actual.is_some_and(|a| self.values().iter().any(|v| equals(a, v))),
            "HAS_PROPERTY" => actual.is_some(),
            "NOT_HAS_PROPERTY" => actual.is_none(),
            "GT" => cmp(&wanted, Ordering::is_gt),
            "GTE" => cmp(&wanted, Ordering::is_ge),
            "LT" => cmp(&wanted, Ordering::is_lt),
            "LTE" => cmp(&wanted, Ordering::is_le),
            "BETWEEN" => {
                let high = self
                    .high_value
                    .as_ref()
                    .and_then(scalar)
                    .unwrap_or_default();
                cmp(&wanted, Ordering::is_ge) && cmp(&high, Ordering::is_le)
            }
            "CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN" => {
                let token = wanted.trim_matches('*').to_lowercase();
                let found = actual.is_some_and(|a| a.to_lowercase().contains(&token));
                found == (self.operator == "CONTAINS_TOKEN")
            }
            _ => false,
        }
    }
}

fn check_filters(object: ObjectType, body: &SearchBody) -> Result<(), ApiError> {
    if body.filter_groups.len() > MAX_FILTER_GROUPS {
        return Err(ApiError::validation(format!(
            "Too many filter groups: got {}, the limit is {MAX_FILTER_GROUPS}",
            body.filter_groups.len()
        )));
    }
    for filter in body.filter_groups.iter().flat_map(|g| &g.filters) {
        if object.property(&filter.property_name).is_none() {
            return Err(ApiError::validation(format!(
                "Property \"{}\" does not exist",
                filter.property_name
            )));
        }
        filter.check()?;
    }
    Ok(())
}

fn record_matches(record: &Record, body: &SearchBody) -> bool {
    if let Some(query) = body.query.as_deref().filter(|q| !q.is_empty()) {
        let query = query.to_lowercase();
        if !record
            .properties
            .values()
            .any(|v| v.to_lowercase().contains(&query))
        {
            return false;
        }
    }
    body.filter_groups.is_empty()
        || body
            .filter_groups
            .iter()
            .any(|g| g.filters.iter().all(|f| f.matches(record)))
}

/// Runs a search and returns `CollectionResponseWithTotalSimplePublicObject`.
pub(crate) fn run(store: &Store, object: ObjectType, body: SearchBody) -> Result<Value, ApiError> {
    let limit = body.limit.unwrap_or(DEFAULT_LIMIT);
    if !(0..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::validation(format!(
            "limit must be between 0 and {MAX_LIMIT}, got {limit}"
        )));
    }
    let offset = match body.after.as_ref() {
        None | Some(Value::Null) => 0,
        Some(after) => scalar(after)
            .and_then(|a| {
                if a.is_empty() {
                    Some(0)
                } else {
                    a.parse::<usize>().ok()
                }
            })
            .ok_or_else(|| ApiError::validation(format!("Invalid paging cursor after={after}")))?,
    };
    check_filters(object, &body)?;
    let matched: Vec<&Record> = store
        .records(object)
        .iter()
        .filter(|r| record_matches(r, &body))
        .collect();
    let selection = Selection::from_request(body.properties);
    let end = offset
        .saturating_add(usize::try_from(limit).unwrap_or(0))
        .min(matched.len());
    let page: Vec<Value> = matched
        .get(offset..end)
        .unwrap_or_default()
        .iter()
        .map(|r| r.to_json(object, &selection))
        .collect();
    let mut response = json!({"total": matched.len(), "results": page});
    if end < matched.len() {
        let next = end.to_string();
        response["paging"] = json!({"next": {"after": next, "link": format!("?after={next}")}});
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Utc;

    use super::*;

    fn store() -> Store {
        let mut store = Store::default();
        for (email, stage) in [("a@x.co", "lead"), ("b@x.co", "customer"), ("c@x.co", "")] {
            let mut values = BTreeMap::new();
            values.insert("email".to_owned(), email.to_owned());
            values.insert("lifecyclestage".to_owned(), stage.to_owned());
            store.create(ObjectType::Contacts, &values, Utc::now());
        }
        store
    }

    fn ids(body: Value) -> Vec<String> {
        let body: SearchBody = serde_json::from_value(body).unwrap_or_default();
        let result = run(&store(), ObjectType::Contacts, body).unwrap_or_default();
        result["results"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|r| r["id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn filter(operator: &str, extra: Value) -> Value {
        let mut filter = json!({"propertyName": "lifecyclestage", "operator": operator});
        if let (Some(f), Some(e)) = (filter.as_object_mut(), extra.as_object()) {
            f.extend(e.clone());
        }
        json!({"filterGroups": [{"filters": [filter]}]})
    }

    #[test]
    fn operators() {
        assert_eq!(ids(filter("EQ", json!({"value": "LEAD"}))), ["1"]);
        assert_eq!(ids(filter("NEQ", json!({"value": "lead"}))), ["2", "3"]);
        assert_eq!(
            ids(filter("IN", json!({"values": ["lead", "customer"]}))),
            ["1", "2"]
        );
        assert_eq!(ids(filter("HAS_PROPERTY", json!({}))), ["1", "2"]);
        assert_eq!(ids(filter("NOT_HAS_PROPERTY", json!({}))), ["3"]);
        assert_eq!(
            ids(json!({"filterGroups": [
                {"filters": [{"propertyName": "email", "operator": "EQ", "value": "a@x.co"}]},
                {"filters": [{"propertyName": "email", "operator": "EQ", "value": "c@x.co"}]},
            ]})),
            ["1", "3"]
        );
        assert_eq!(
            ids(json!({"filterGroups": [{"filters": [
                {"propertyName": "hs_object_id", "operator": "GT", "value": "1"},
                {"propertyName": "hs_object_id", "operator": "LTE", "value": "2"},
            ]}]})),
            ["2"]
        );
    }

    #[test]
    fn paging() {
        let body = SearchBody {
            limit: Some(2),
            ..SearchBody::default()
        };
        let first = run(&store(), ObjectType::Contacts, body).unwrap_or_default();
        assert_eq!(first["total"], 3);
        assert_eq!(first["paging"]["next"]["after"], "2");
        let too_big = SearchBody {
            limit: Some(201),
            ..SearchBody::default()
        };
        assert!(run(&store(), ObjectType::Contacts, too_big).is_err());
        let bad_operator = serde_json::from_value(filter("LIKE", json!({"value": "x"})));
        assert!(
            run(
                &store(),
                ObjectType::Contacts,
                bad_operator.unwrap_or_default()
            )
            .is_err()
        );
    }
}
