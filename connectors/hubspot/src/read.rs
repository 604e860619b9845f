//! Reading records back: `POST /crm/v3/objects/{object}/batch/read`, by record id or by the
//! unique match property. Read-only, so `engine plan`, crash recovery and `engine state
//! rebuild` may call it. Missing records are simply absent from the answer (HubSpot reports
//! them as one `OBJECT_NOT_FOUND` error in a 207).

use connector_core::{Diagnostic, Record, RecordRef};
use serde_json::{Value, json};

use crate::client::RawResponse;
use crate::response::{self, Access};

/// The body of one batch read.
pub(crate) fn encode(
    by: RecordRef,
    match_property: &str,
    values: &[String],
    properties: &[String],
) -> Value {
    let inputs: Vec<Value> = values.iter().map(|v| json!({ "id": v })).collect();
    let mut body = json!({ "inputs": inputs, "properties": properties, "propertiesWithHistory": [], "archived": false });
    if by == RecordRef::MatchValue && match_property != "hs_object_id" {
        body["idProperty"] = Value::String(match_property.to_string());
    }
    body
}

/// The records of a batch-read answer, or a diagnostic (`hubspot::unavailable` for answers
/// worth retrying).
pub(crate) fn parse(object: &str, response: &RawResponse) -> Result<Vec<Record>, Diagnostic> {
    let body = response::parse_body(&response.body);
    match response.status {
        200..=299 => Ok(body
            .as_ref()
            .and_then(|b| b.get("results"))
            .and_then(Value::as_array)
            .map(|results| results.iter().filter_map(record).collect())
            .unwrap_or_default()),
        401 | 403 => Err(response::auth_diagnostic(
            object,
            response.status,
            body.as_ref(),
            Access::Read,
        )),
        429 | 423 | 477 | 500..=599 => Err(Diagnostic::error(
            "hubspot::unavailable",
            format!("HubSpot could not read `{object}` records right now"),
        )
        .note(format!(
            "HubSpot said: {}",
            response::summary(response.status, &response.body, body.as_ref())
        ))
        .hint("try again in a moment")),
        status => Err(Diagnostic::error(
            "hubspot::read",
            format!("HubSpot refused to read `{object}` records"),
        )
        .note(format!(
            "HubSpot said: {}",
            response::summary(status, &response.body, body.as_ref())
        ))
        .hint("check the sync's `object` and `match.property` (it must be a unique property of the object), then run the command again")),
    }
}

/// One record of a `results` list (batch read or search): its id and the properties with a
/// value.
pub(crate) fn record(value: &Value) -> Option<Record> {
    let id = value.get("id")?.as_str()?.to_string();
    let properties = value
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .filter(|(_, v)| !v.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let created_at = value
        .get("createdAt")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some(Record {
        id,
        properties,
        created_at,
    })
}
