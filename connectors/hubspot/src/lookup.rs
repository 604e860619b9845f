//! Finding records by a property whose values are not unique (`match.lookup: search`): one
//! CRM search per batch, `IN` the batch's values, read page by page. Pure: the destination
//! sends the requests; this module writes their bodies and reads their answers.
//!
//! HubSpot's search compares text ignoring case, so values are grouped in lower case.

use std::collections::HashMap;

use connector_core::{BatchResult, Diagnostic, Record};
use serde_json::{Value, json};

use crate::client::RawResponse;
use crate::response;

/// The most results one search page holds (FACTS B5).
pub(crate) const PAGE_SIZE: usize = 200;

/// HubSpot's search returns at most this many results in all (paging stops there).
pub(crate) const MAX_RESULTS: usize = 10_000;

/// The body of one search page: records whose `property` is one of `values`, with the
/// `returned` properties.
pub(crate) fn search_body(
    property: &str,
    values: &[&str],
    returned: &[&str],
    after: Option<&str>,
) -> Value {
    let mut body = json!({
        "filterGroups": [{"filters": [{
            "propertyName": property,
            "operator": "IN",
            "values": values,
        }]}],
        "properties": returned,
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        "limit": PAGE_SIZE,
    });
    if let Some(after) = after {
        body["after"] = json!(after);
    }
    body
}

/// One page of results: the records found, and the next page's cursor.
#[derive(Debug, PartialEq)]
pub(crate) struct Page {
    pub found: Vec<Record>,
    pub next: Option<String>,
}

/// Reads one search answer. Anything but a 2xx is the batch's result: a 429 or 5xx asks for
/// the batch again, a 401 or 403 stops the run (as for a write).
pub(crate) fn parse_page(
    ctx: &response::Context<'_>,
    operations: &[connector_core::Operation],
    answer: &RawResponse,
) -> Result<Page, BatchResult> {
    if !(200..=299).contains(&answer.status) {
        return Err(response::classify(ctx, operations, answer));
    }
    let body = response::parse_body(&answer.body);
    let results = response::results_list(body.as_ref(), answer, "a search").map_err(|d| {
        BatchResult::RetryAll {
            reason: d.message,
            after: None,
        }
    })?;
    let found = results.iter().filter_map(crate::read::record).collect();
    let next = body
        .as_ref()
        .and_then(|b| b.pointer("/paging/next/after"))
        .and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        });
    Ok(Page { found, next })
}

/// The records holding each value of `property` (in lower case), each once, in the order
/// found.
pub(crate) fn group(found: Vec<Record>, property: &str) -> HashMap<String, Vec<Record>> {
    let mut records: HashMap<String, Vec<Record>> = HashMap::new();
    for record in found {
        let Some(value) = record.properties.get(property) else {
            continue;
        };
        let entry = records.entry(value.to_lowercase()).or_default();
        if !entry.iter().any(|r| r.id == record.id) {
            entry.push(record);
        }
    }
    records
}

/// The per-row message for a value several records hold.
pub(crate) fn ambiguous(object: &str, property: &str, value: &str, ids: &[String]) -> String {
    let shown: Vec<&str> = ids.iter().take(10).map(String::as_str).collect();
    let more = if ids.len() > shown.len() {
        format!(" and {} more", ids.len() - shown.len())
    } else {
        String::new()
    };
    format!(
        "{} {object} records have {property} `{value}` (ids {}{more}), so the look-up cannot tell \
         which one the row writes: make the value unique in HubSpot or in the model, or match \
         on a property with unique values",
        ids.len(),
        shown.join(", ")
    )
}

/// The diagnostic when a search has more results than HubSpot pages through.
pub(crate) fn too_many(property: &str) -> Diagnostic {
    Diagnostic::error(
        "hubspot::lookup_too_large",
        format!(
            "a search for a batch of `{property}` values found more than {MAX_RESULTS} records, \
             more than HubSpot's search returns"
        ),
    )
    .hint("match on a property with fewer records per value, or with unique values")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_body_asks_for_the_values_page_by_page() {
        let body = search_body(
            "name",
            &["Acme", "Globex"],
            &["name", "domain"],
            Some("200"),
        );
        assert_eq!(
            body["filterGroups"][0]["filters"][0],
            json!({"propertyName": "name", "operator": "IN", "values": ["Acme", "Globex"]})
        );
        assert_eq!(body["properties"], json!(["name", "domain"]));
        assert_eq!(body["limit"], 200);
        assert_eq!(body["after"], "200");
        assert!(search_body("name", &[], &[], None).get("after").is_none());
    }

    #[test]
    fn results_are_grouped_by_value_ignoring_case() {
        let record = |id: &str, name: &str| Record {
            id: id.into(),
            properties: [("name".to_string(), name.to_string())].into(),
            created_at: None,
        };
        let records = group(
            vec![
                record("1", "Acme"),
                record("7", "ACME"),
                record("3", "Globex"),
                record("1", "Acme"),
            ],
            "name",
        );
        let ids =
            |value: &str| -> Vec<String> { records[value].iter().map(|r| r.id.clone()).collect() };
        assert_eq!(ids("acme"), ["1", "7"]);
        assert_eq!(ids("globex"), ["3"]);
        assert_eq!(
            ambiguous("companies", "name", "Acme", &ids("acme")),
            "2 companies records have name `Acme` (ids 1, 7), so the look-up cannot tell which \
             one the row writes: make the value unique in HubSpot or in the model, or match on \
             a property with unique values"
        );
    }
}
