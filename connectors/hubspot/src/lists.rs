//! Static lists (segments) of contacts (`object: lists`): a row added to the model adds its
//! contact to the list, a row that leaves removes it. Pure: the destination sends the
//! requests; this module writes their paths and bodies and reads their answers.
//!
//! | what | endpoint |
//! | --- | --- |
//! | find the list by name | `GET /crm/v3/lists/object-type-id/0-1/name/{listName}` → `{"list": …}`, 404 |
//! | create it (first run) | `POST /crm/v3/lists` `{"name","objectTypeId":"0-1","processingType":"MANUAL"}` |
//! | contacts by email | `POST /crm/v3/objects/contacts/batch/read` with `idProperty: email` |
//! | add and remove members | `PUT /crm/v3/lists/{listId}/memberships/add-and-remove` `{"recordIdsToAdd","recordIdsToRemove"}` |
//!
//! Adding a member twice or removing one that is not there changes nothing, so a replay after
//! a crash is harmless.

use connector_core::Diagnostic;
use serde_json::{Value, json};

use crate::client::RawResponse;
use crate::response::{self, Access};

/// The object type id of contacts: lists of contacts.
pub(crate) const CONTACTS_TYPE_ID: &str = "0-1";

/// What a sync says about its list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListConfig {
    /// The list's id, when the sync names it by id.
    pub id: Option<String>,
    /// The list's name: found by it, or created with it on the first run.
    pub name: String,
    /// A contact whose row leaves the model, or moves to another contact, leaves the list
    /// (`on_remove: delete`); otherwise it stays a member.
    pub remove_leavers: bool,
}

/// A list as HubSpot describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListInfo {
    /// `listId`.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `MANUAL` or `SNAPSHOT` (members may be added and removed) or `DYNAMIC`.
    pub processing_type: String,
}

/// The path finding a contacts list by name (URL-encoded).
pub(crate) fn by_name_path(name: &str) -> String {
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("/crm/v3/lists/object-type-id/{CONTACTS_TYPE_ID}/name/{encoded}")
}

/// The body creating a static contacts list.
pub(crate) fn create_body(name: &str) -> Value {
    json!({"name": name, "objectTypeId": CONTACTS_TYPE_ID, "processingType": "MANUAL"})
}

/// Reads a list answer (`{"list": …}` or a bare list); `Ok(None)` for a 404.
pub(crate) fn parse_list(answer: &RawResponse) -> Result<Option<ListInfo>, Diagnostic> {
    let body = response::parse_body(&answer.body);
    match answer.status {
        200..=299 => {
            let body = body.unwrap_or_default();
            let list = body.get("list").unwrap_or(&body);
            let text = |key: &str| -> String {
                match list.get(key) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                }
            };
            Ok(Some(ListInfo {
                id: text("listId"),
                name: text("name"),
                processing_type: text("processingType"),
            }))
        }
        404 => Ok(None),
        401 | 403 => Err(response::auth_diagnostic(
            "lists",
            answer.status,
            body.as_ref(),
            Access::Read,
        )),
        429 | 423 | 477 | 500..=599 => Err(Diagnostic::error(
            "hubspot::unavailable",
            "HubSpot could not read the list right now",
        )
        .note(response::summary(
            answer.status,
            &answer.body,
            body.as_ref(),
        ))
        .hint("try again in a moment")),
        status => Err(Diagnostic::error(
            "hubspot::list",
            "HubSpot refused to read or create the list",
        )
        .note(format!(
            "HubSpot said: {}",
            response::summary(status, &answer.body, body.as_ref())
        ))),
    }
}

/// `hubspot::dynamic_list`: a list whose members HubSpot computes from filters.
pub(crate) fn dynamic(list: &ListInfo) -> Diagnostic {
    Diagnostic::error(
        "hubspot::dynamic_list",
        format!(
            "the list `{}` ({}) is an active list: HubSpot chooses its members from its filters",
            list.name, list.id
        ),
    )
    .hint("name a static list, or a new name (the engine creates a static list on the first run)")
}

/// The body of `memberships/add-and-remove` (`MembershipChangeRequest`).
pub(crate) fn change_body(add: &[String], remove: &[String]) -> Value {
    json!({"recordIdsToAdd": add, "recordIdsToRemove": remove})
}

/// The record ids an add or remove answer says do not exist.
pub(crate) fn missing_ids(answer: &RawResponse) -> Vec<String> {
    response::parse_body(&answer.body)
        .and_then(|b| b.get("recordIdsMissing").cloned())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: Value) -> RawResponse {
        RawResponse {
            status,
            retry_after: None,
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn lists_are_found_by_name_and_read() {
        assert_eq!(
            by_name_path("VIP customers/2024"),
            "/crm/v3/lists/object-type-id/0-1/name/VIP%20customers%2F2024"
        );
        let found = parse_list(&answer(
            200,
            json!({"list": {"listId": "7", "name": "VIP", "processingType": "MANUAL"}}),
        ));
        assert_eq!(
            found.ok().flatten().map(|l| (l.id, l.processing_type)),
            Some(("7".into(), "MANUAL".into()))
        );
        assert_eq!(parse_list(&answer(404, json!({}))).ok(), Some(None));
        assert_eq!(
            missing_ids(&answer(
                200,
                json!({"recordIdsMissing": ["9"], "recordsIdsAdded": []})
            )),
            ["9"]
        );
    }
}
