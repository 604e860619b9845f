//! The scope each API route needs, for the `missing_scopes` fault (HubSpot's 403
//! `MISSING_SCOPES`, FACTS E2).
//!
//! HubSpot's granular scopes: `crm.objects.<type>.read|write` for records,
//! `crm.schemas.<type>.read|write` for properties, `crm.schemas.custom.read|write` for custom
//! object schemas, where `<type>` is `contacts`, `companies`, `deals` or `custom` (every custom
//! object); tickets use the single legacy `tickets` scope. Associations need the records'
//! scope of the `from` object type, lists `crm.lists.read|write`, owners
//! `crm.objects.owners.read`, custom event definitions
//! `behavioral_events.event_definitions.read_write` and event sends
//! `analytics.behavioral_events.send` (the scopes the OpenAPI files name).

use axum::http::Method;

/// Which HubSpot object family a type id belongs to, for scope names.
fn family(type_id: &str) -> Option<&'static str> {
    match type_id {
        "0-1" => Some("contacts"),
        "0-2" => Some("companies"),
        "0-3" => Some("deals"),
        "0-5" => Some("tickets"),
        id if id.starts_with("2-") => Some("custom"),
        _ => None,
    }
}

/// `crm.<area>.<family>.<access>`, or `tickets` for tickets.
fn granular(area: &str, family: &str, write: bool) -> String {
    if family == "tickets" {
        return "tickets".to_owned();
    }
    let access = if write { "write" } else { "read" };
    format!("crm.{area}.{family}.{access}")
}

/// The scope a request needs, given how its `{objectType}` segment resolves to a type id.
/// `None` for routes that need none here (unknown routes and object types, which get their
/// own 404 / 400).
pub(crate) fn required_scope(
    method: &Method,
    path: &str,
    type_id: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let write = *method != Method::GET;
    match segments.as_slice() {
        ["crm", "v3", "objects", object, rest @ ..] => {
            let family = family(&type_id(object)?)?;
            // Batch read and search are POSTs that only read.
            let reads = matches!(rest, ["batch", "read"] | ["search"]);
            Some(granular("objects", family, write && !reads))
        }
        ["crm", "v3", "properties", object, ..] => {
            Some(granular("schemas", family(&type_id(object)?)?, write))
        }
        ["crm-object-schemas", "v3", "schemas", ..] => Some(granular("schemas", "custom", write)),
        ["crm", "v4", "associations", object, _, rest @ ..] => {
            let reads = matches!(rest, ["batch", "read"]);
            Some(granular(
                "objects",
                family(&type_id(object)?)?,
                write && !reads,
            ))
        }
        ["crm", "v4", "objects", object, ..] => {
            Some(granular("objects", family(&type_id(object)?)?, write))
        }
        ["crm", "v3", "lists", rest @ ..] => {
            let reads = matches!(rest, ["search"]);
            let access = if write && !reads { "write" } else { "read" };
            Some(format!("crm.lists.{access}"))
        }
        ["crm", "v3", "owners", ..] => Some("crm.objects.owners.read".to_owned()),
        ["events", "v3", "send", ..] => Some("analytics.behavioral_events.send".to_owned()),
        ["events", "v3", "event-definitions", ..] => {
            Some("behavioral_events.event_definitions.read_write".to_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(method: Method, path: &str) -> Option<String> {
        required_scope(&method, path, |segment| match segment {
            "contacts" | "0-1" => Some("0-1".to_owned()),
            "tickets" => Some("0-5".to_owned()),
            "p_car" => Some("2-1000001".to_owned()),
            _ => None,
        })
    }

    #[test]
    fn scopes_follow_object_and_access() {
        let upsert = "/crm/v3/objects/contacts/batch/upsert";
        assert_eq!(
            scope(Method::POST, upsert).as_deref(),
            Some("crm.objects.contacts.write")
        );
        assert_eq!(
            scope(Method::POST, "/crm/v3/objects/0-1/search").as_deref(),
            Some("crm.objects.contacts.read")
        );
        assert_eq!(
            scope(Method::DELETE, "/crm/v3/objects/p_car/7").as_deref(),
            Some("crm.objects.custom.write")
        );
        assert_eq!(
            scope(Method::GET, "/crm/v3/objects/tickets").as_deref(),
            Some("tickets")
        );
        assert_eq!(
            scope(Method::GET, "/crm/v3/properties/contacts").as_deref(),
            Some("crm.schemas.contacts.read")
        );
        assert_eq!(
            scope(Method::POST, "/crm-object-schemas/v3/schemas").as_deref(),
            Some("crm.schemas.custom.write")
        );
        assert_eq!(
            scope(Method::POST, "/crm/v4/associations/contacts/0-2/batch/read").as_deref(),
            Some("crm.objects.contacts.read")
        );
        assert_eq!(
            scope(Method::PUT, "/crm/v3/lists/7/memberships/add").as_deref(),
            Some("crm.lists.write")
        );
        assert_eq!(
            scope(Method::POST, "/events/v3/send/batch").as_deref(),
            Some("analytics.behavioral_events.send")
        );
        assert_eq!(scope(Method::GET, "/crm/v3/objects/bogus"), None);
        assert_eq!(scope(Method::GET, "/nowhere"), None);
    }
}
