//! `POST /crm/v3/objects/{objectType}/search`: filter groups, paging, property selection.
//!
//! Filter groups are ORed, the filters inside one group ANDed (HubSpot's semantics). String
//! comparisons ignore case, as HubSpot's search does; numbers and dates compare as numbers
//! (ISO dates and epoch milliseconds both work). `after` is an offset, like HubSpot's search
//! cursor. Results come in id order (`sorts` is accepted and ignored).
//!
//! Limits, each a 400 `VALIDATION_ERROR` naming the field in `errors[].in`: `limit` at most 200,
//! at most 6 filter groups, a `query` of at most 3000 characters (FACTS B5 and the
//! `PublicObjectSearchRequest` descriptions in crm-objects-*-v3.json); at most 6 filters in a
//! group and 18 in all (HubSpot's search guide; the contract says nothing about filters); and
//! no paging past the 10,000th result (HubSpot's search stops there: an `after` of 10,000 or
//! more is refused, a page ends at the 10,000th result and offers no next page beyond it,
//! while `total` still counts every match).
//!
//! A search whose every filter group has an EQ / IN filter on `hs_object_id` or on a unique
//! property (`email`, `domain`, a created `hasUniqueValue` property) examines only the records those filters name, through the
//! store's indexes (see `candidates`); any other search scans the object type's records.

mod candidates;
mod filter;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::{ApiError, ErrorDetail};
use crate::record::{Record, Selection};
use crate::registry::{ObjectDef, ObjectType};
use crate::store::Store;

use self::candidates::{Candidates, candidates};
use self::filter::{FilterGroup, scalar};

const MAX_LIMIT: i64 = 200;
const DEFAULT_LIMIT: i64 = 10;
const MAX_FILTER_GROUPS: usize = 6;
const MAX_FILTERS_PER_GROUP: usize = 6;
const MAX_FILTERS: usize = 18;
const MAX_QUERY_CHARS: usize = 3000;
/// The most results any search can page through.
const MAX_RESULTS: usize = 10_000;

/// A 400 about one field of the search body.
fn invalid(field: &str, message: String) -> ApiError {
    ApiError::validation(message.clone()).detail(
        ErrorDetail::new(message)
            .field(field)
            .code("INVALID_SEARCH_REQUEST"),
    )
}

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

fn check_filters(object: &ObjectDef, body: &SearchBody) -> Result<(), ApiError> {
    if body.filter_groups.len() > MAX_FILTER_GROUPS {
        return Err(invalid(
            "filterGroups",
            format!(
                "Too many filter groups: got {}, the limit is {MAX_FILTER_GROUPS}",
                body.filter_groups.len()
            ),
        ));
    }
    if let Some(group) = body
        .filter_groups
        .iter()
        .find(|g| g.filters.len() > MAX_FILTERS_PER_GROUP)
    {
        return Err(invalid(
            "filterGroups",
            format!(
                "Too many filters in a filter group: got {}, the limit is \
                 {MAX_FILTERS_PER_GROUP}",
                group.filters.len()
            ),
        ));
    }
    let filters: usize = body.filter_groups.iter().map(|g| g.filters.len()).sum();
    if filters > MAX_FILTERS {
        return Err(invalid(
            "filterGroups",
            format!(
                "Too many filters: got {filters} across all filter groups, the limit is {MAX_FILTERS}"
            ),
        ));
    }
    if let Some(query) = &body.query {
        let chars = query.chars().count();
        if chars > MAX_QUERY_CHARS {
            return Err(invalid(
                "query",
                format!(
                    "The query is too long: got {chars} characters, the limit is {MAX_QUERY_CHARS}"
                ),
            ));
        }
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
        return Err(invalid(
            "limit",
            format!("limit must be between 0 and {MAX_LIMIT}, got {limit}"),
        ));
    }
    let limit = usize::try_from(limit).unwrap_or(0);
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
    if offset >= MAX_RESULTS {
        return Err(invalid(
            "after",
            format!(
                "Cannot page beyond {MAX_RESULTS} results: after={offset}; narrow the search \
                 with filters instead"
            ),
        ));
    }
    // A page never reaches past the 10,000th result.
    let limit = limit.min(MAX_RESULTS - offset);
    let def = store.def(object);
    check_filters(def, &body)?;
    let (total, page) = match candidates(store, object, &body.filter_groups) {
        Candidates::All => paginate(store.records(object), &body, offset, limit),
        Candidates::Ids(ids) => paginate(
            ids.into_iter().filter_map(|id| store.get(object, id)),
            &body,
            offset,
            limit,
        ),
    };
    let selection = Selection::from_request(body.properties);
    let page: Vec<Value> = page.iter().map(|r| r.to_json(def, &selection)).collect();
    let mut response = json!({"total": total, "results": page});
    let end = offset.saturating_add(limit);
    if end < total && end < MAX_RESULTS {
        let next = end.to_string();
        response["paging"] = json!({"next": {"after": next, "link": format!("?after={next}")}});
    }
    Ok(response)
}

/// Counts the examined records (in id order) that match, keeping those at `offset..offset +
/// limit` of the matches.
fn paginate<'a>(
    examined: impl Iterator<Item = &'a Record>,
    body: &SearchBody,
    offset: usize,
    limit: usize,
) -> (usize, Vec<&'a Record>) {
    let mut total = 0;
    let mut page = Vec::new();
    for record in examined.filter(|r| record_matches(r, body)) {
        if total >= offset && page.len() < limit {
            page.push(record);
        }
        total += 1;
    }
    (total, page)
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
            store.create(ObjectType::CONTACTS, &values, Utc::now());
        }
        store
    }

    fn ids(body: Value) -> Vec<String> {
        let body: SearchBody = serde_json::from_value(body).unwrap_or_default();
        let result = run(&store(), ObjectType::CONTACTS, body).unwrap_or_default();
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
        let first = run(&store(), ObjectType::CONTACTS, body).unwrap_or_default();
        assert_eq!(first["total"], 3);
        assert_eq!(first["paging"]["next"]["after"], "2");
        let too_big = SearchBody {
            limit: Some(201),
            ..SearchBody::default()
        };
        assert!(run(&store(), ObjectType::CONTACTS, too_big).is_err());
        let bad_operator = serde_json::from_value(filter("LIKE", json!({"value": "x"})));
        assert!(
            run(
                &store(),
                ObjectType::CONTACTS,
                bad_operator.unwrap_or_default()
            )
            .is_err()
        );
    }

    fn refused(body: Value) -> bool {
        let body: SearchBody = serde_json::from_value(body).unwrap_or_default();
        run(&store(), ObjectType::CONTACTS, body).is_err()
    }

    #[test]
    fn query_limits() {
        let eq = json!({"propertyName": "email", "operator": "EQ", "value": "a@x.co"});
        let group = |n: usize| json!({"filters": vec![eq.clone(); n]});
        assert_eq!(
            ids(json!({"filterGroups": [group(6), group(6), group(6)]})),
            ["1"]
        );
        for body in [
            json!({"filterGroups": [group(7)]}),
            json!({"filterGroups": [group(6), group(6), group(6), group(1)]}),
            json!({"filterGroups": vec![group(1); 7]}),
            json!({"query": "x".repeat(3001)}),
            json!({"after": "10000"}),
            json!({"limit": 201}),
        ] {
            assert!(refused(body.clone()), "{body}");
        }
        assert!(!refused(json!({"query": "é".repeat(3000)})));
    }

    #[test]
    fn paging_stops_at_ten_thousand_results() {
        let mut store = Store::default();
        for n in 0..MAX_RESULTS + 5 {
            let values = BTreeMap::from([("firstname".to_owned(), format!("n{n}"))]);
            store.create(ObjectType::CONTACTS, &values, Utc::now());
        }
        let body = SearchBody {
            limit: Some(200),
            after: Some(json!("9900")),
            ..SearchBody::default()
        };
        let page = run(&store, ObjectType::CONTACTS, body).unwrap_or_default();
        assert_eq!(page["total"], MAX_RESULTS + 5);
        assert_eq!(page["results"].as_array().map(Vec::len), Some(100));
        assert!(page.get("paging").is_none());
        let body = SearchBody {
            limit: Some(100),
            after: Some(json!("9800")),
            ..SearchBody::default()
        };
        let page = run(&store, ObjectType::CONTACTS, body).unwrap_or_default();
        assert_eq!(page["paging"]["next"]["after"], "9900");
    }
}
