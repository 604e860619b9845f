//! Custom behavioural events (`object: events`): one event per row added to the model. Pure:
//! the destination sends the requests; this module writes their bodies and reads the event
//! definitions.
//!
//! | what | endpoint |
//! | --- | --- |
//! | the definition, at plan time | `GET /events/v3/event-definitions/{eventName}` |
//! | the definitions, for did-you-mean | `GET /events/v3/event-definitions` |
//! | send a batch | `POST /events/v3/send/batch` `{"inputs":[{"eventName","email"/"objectId"/"utk","occurredAt","properties","uuid"}]}` → 204 |
//!
//! Exactly once: every event carries a `uuid` derived from the sync, the row's key and when
//! it happened, so a batch sent again after a crash or a timeout names the same occurrences
//! and HubSpot keeps one of each.

use connector_core::{Diagnostic, Operation};
use serde_json::{Map, Value, json};

use crate::client::RawResponse;
use crate::response::{self, Access};
use crate::schema::Property;

pub use connector_core::{EVENT_NAME_PROPERTY, OCCURRED_AT_PROPERTY};

/// The most events one batch send takes.
pub(crate) const MAX_BATCH: usize = 500;

/// The most pages of event definitions read (100 a page).
pub(crate) const MAX_DEFINITION_PAGES: usize = 50;

/// The cursor of the next page of a list answer (`paging.next.after`), if any.
pub(crate) fn next_page(answer: &RawResponse) -> Option<String> {
    let body = response::parse_body(&answer.body)?;
    let after = body.pointer("/paging/next/after")?;
    after
        .as_str()
        .map(str::to_string)
        .or_else(|| after.as_u64().map(|n| n.to_string()))
}

/// What a sync says about the events it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventConfig {
    /// The sync's name: with a row's key it makes each event's `uuid`.
    pub sync: String,
    /// The event's name for every row, or `None` when each row names it.
    pub name: Option<String>,
}

/// One event definition, as much as a sync needs.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDefinition {
    /// The internal name (`purchase`).
    pub name: String,
    /// `pe<portal>_<name>`: what sends name it by.
    pub fully_qualified_name: String,
    /// Its properties, typed as CRM properties are.
    pub properties: Vec<Property>,
}

/// Reads one definition (or the list of them, `results`).
pub(crate) fn parse_definitions(answer: &RawResponse) -> Result<Vec<EventDefinition>, Diagnostic> {
    let body = response::parse_body(&answer.body);
    match answer.status {
        200..=299 => {
            let body = body.unwrap_or_default();
            let items: Vec<&Value> = match body.get("results").and_then(Value::as_array) {
                Some(results) => results.iter().collect(),
                None => vec![&body],
            };
            Ok(items.into_iter().filter_map(definition).collect())
        }
        401 | 403 => Err(response::auth_diagnostic(
            "events",
            answer.status,
            body.as_ref(),
            Access::Read,
        )),
        404 => Ok(Vec::new()),
        status => Err(Diagnostic::error(
            "hubspot::unavailable",
            "could not read the event definitions from HubSpot",
        )
        .note(format!(
            "HubSpot said: {}",
            response::summary(status, &answer.body, body.as_ref())
        ))
        .hint("try again in a moment")),
    }
}

fn definition(value: &Value) -> Option<EventDefinition> {
    Some(EventDefinition {
        name: value.get("name")?.as_str()?.to_string(),
        fully_qualified_name: value
            .get("fullyQualifiedName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        properties: value
            .get("properties")
            .and_then(Value::as_array)
            .map(|p| p.iter().filter_map(Property::parse).collect())
            .unwrap_or_default(),
    })
}

/// True when `wanted` names this definition (internal or fully qualified name).
pub(crate) fn names(definition: &EventDefinition, wanted: &str) -> bool {
    definition.name.eq_ignore_ascii_case(wanted)
        || definition.fully_qualified_name.eq_ignore_ascii_case(wanted)
}

/// `hubspot::unknown_event`, with the portal's events and a did-you-mean.
pub(crate) fn unknown_event(wanted: &str, all: &[EventDefinition]) -> Diagnostic {
    let known: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
    let mut diagnostic = Diagnostic::error(
        "hubspot::unknown_event",
        format!("HubSpot has no custom event `{wanted}`"),
    )
    .note(if known.is_empty() {
        "the portal has no custom event definitions".to_string()
    } else {
        format!("its events are: {}", known.join(", "))
    })
    .hint("create the event in HubSpot (Data Management → Custom Events), or use one of its internal names");
    if let Some(near) = engine_diag::did_you_mean(wanted, known.iter().copied()) {
        diagnostic = diagnostic.hint(format!("did you mean `{near}`?"));
    }
    diagnostic
}

/// The `uuid` of a row's event: the same for the same sync, row and time, so a replay names
/// the same occurrence.
pub(crate) fn event_uuid(sync: &str, key: &str, occurred_at: Option<&str>) -> String {
    let digest =
        blake3::hash(format!("{sync}\n{key}\n{}", occurred_at.unwrap_or_default()).as_bytes());
    let hex = digest.to_hex();
    let h = hex.as_str();
    // Formatted as a version-8 (custom) UUID.
    format!(
        "{}-{}-8{}-{:x}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        (u8::from_str_radix(&h[16..17], 16).unwrap_or(0) & 0x3) | 0x8,
        &h[17..20],
        &h[20..32]
    )
}

/// One event's input: the contact by `match_property` (`email`, `hs_object_id` → `objectId`,
/// `utk`), the row's mapped properties, its time and `uuid`.
pub(crate) fn event_input(
    config: &EventConfig,
    match_property: &str,
    name: &str,
    op: &Operation,
) -> Value {
    let mut properties = Map::new();
    let mut occurred_at: Option<&str> = None;
    for (property, value) in &op.properties {
        match property.as_str() {
            OCCURRED_AT_PROPERTY => occurred_at = Some(value),
            EVENT_NAME_PROPERTY => {}
            p if p == match_property => {}
            p => {
                properties.insert(p.to_string(), Value::String(value.clone()));
            }
        }
    }
    let mut input = json!({
        "eventName": name,
        "properties": properties,
        "uuid": event_uuid(&config.sync, &op.key, occurred_at),
    });
    let contact = op.match_value.clone().unwrap_or_default();
    let field = match match_property {
        "hs_object_id" => "objectId",
        "utk" => "utk",
        _ => "email",
    };
    input[field] = Value::String(contact);
    if let Some(at) = occurred_at {
        input["occurredAt"] = Value::String(at.to_string());
    }
    input
}

/// The event name of a row: the sync's, or the row's own.
pub(crate) fn event_name<'a>(config: &'a EventConfig, op: &'a Operation) -> Option<&'a str> {
    config.name.as_deref().or_else(|| {
        op.properties
            .iter()
            .find(|(p, _)| p == EVENT_NAME_PROPERTY)
            .map(|(_, v)| v.as_str())
    })
}

#[cfg(test)]
mod tests {
    use connector_core::OperationKind;

    use super::*;

    #[test]
    fn definitions_are_read_page_by_page() {
        let answer = |body: Value| RawResponse {
            status: 200,
            retry_after: None,
            body: body.to_string().into_bytes(),
        };
        let page = answer(json!({"results": [{"name": "purchase",
            "fullyQualifiedName": "pe1_purchase", "properties": []}],
            "paging": {"next": {"after": "100"}}}));
        assert_eq!(next_page(&page).as_deref(), Some("100"));
        assert_eq!(parse_definitions(&page).map(|d| d.len()), Ok(1));
        assert_eq!(next_page(&answer(json!({"results": []}))), None);
    }

    #[test]
    fn an_event_input_names_the_contact_the_time_and_a_stable_uuid() {
        let config = EventConfig {
            sync: "purchases".into(),
            name: Some("pe1_purchase".into()),
        };
        let op = Operation {
            key: "42".into(),
            kind: OperationKind::Create,
            destination_id: None,
            match_value: Some("ada@example.com".into()),
            properties: vec![
                ("email".into(), "ada@example.com".into()),
                ("amount".into(), "12.5".into()),
                (OCCURRED_AT_PROPERTY.into(), "2024-05-01T10:00:00Z".into()),
            ],
        };
        let input = event_input(&config, "email", "pe1_purchase", &op);
        assert_eq!(input["email"], "ada@example.com");
        assert_eq!(input["properties"], json!({"amount": "12.5"}));
        assert_eq!(input["occurredAt"], "2024-05-01T10:00:00Z");
        let uuid = input["uuid"].as_str().unwrap_or_default().to_string();
        assert_eq!(uuid.len(), 36);
        assert_eq!(
            uuid,
            event_uuid("purchases", "42", Some("2024-05-01T10:00:00Z"))
        );
        assert_ne!(
            uuid,
            event_uuid("purchases", "43", Some("2024-05-01T10:00:00Z"))
        );
        assert_eq!(event_name(&config, &op), Some("pe1_purchase"));
        let by_id = event_input(&config, "hs_object_id", "pe1_purchase", &op);
        assert_eq!(by_id["objectId"], "ada@example.com");
    }
}
