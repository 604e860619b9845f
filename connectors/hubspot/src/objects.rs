//! Which object type a sync writes. HubSpot's built-in types are known by name; a custom
//! object is found through the schemas API (`GET /crm-object-schemas/v3/schemas`) by its
//! name (`thnks`), fully qualified name (`p12345_thnks`, or `p_thnks`) or type id (`2-1234`),
//! and every later request names it by its type id (FACTS U6).
//!
//! Pure: the request is sent by the destination, this module reads the answer.

use connector_core::Diagnostic;
use serde_json::Value;

use crate::client::RawResponse;
use crate::response::{self, Access, str_field};

/// The schemas API's list of the portal's custom objects.
pub(crate) const SCHEMAS_PATH: &str = "/crm-object-schemas/v3/schemas";

/// HubSpot's built-in object types a sync can write: plural name (as paths take it), singular
/// name, type id.
const BUILT_IN: [(&str, &str, &str); 4] = [
    ("contacts", "contact", "0-1"),
    ("companies", "company", "0-2"),
    ("deals", "deal", "0-3"),
    ("tickets", "ticket", "0-5"),
];

/// The path segment of the built-in type `name` names (plural, singular or type id, in any
/// case), or `None` for anything else.
pub(crate) fn built_in(name: &str) -> Option<&'static str> {
    BUILT_IN
        .iter()
        .find(|(plural, singular, id)| {
            name.eq_ignore_ascii_case(plural) || name.eq_ignore_ascii_case(singular) || name == *id
        })
        .map(|(plural, _, _)| *plural)
}

/// One custom object of the portal, as the schemas API describes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CustomObject {
    /// The name it was created with, e.g. `thnks`.
    pub name: String,
    /// `p<portal id>_<name>`.
    pub fully_qualified_name: String,
    /// `2-<n>`: what API paths name it by.
    pub object_type_id: String,
}

impl CustomObject {
    /// True when a sync's `object:` names this object.
    fn is_named(&self, wanted: &str) -> bool {
        self.object_type_id == wanted
            || self.name.eq_ignore_ascii_case(wanted)
            || self.fully_qualified_name.eq_ignore_ascii_case(wanted)
            || wanted
                .strip_prefix("p_")
                .is_some_and(|name| self.name.eq_ignore_ascii_case(name))
    }
}

/// Reads the answer to `GET /crm-object-schemas/v3/schemas`; `object` is the sync's object,
/// for messages.
pub(crate) fn parse_schemas(
    object: &str,
    response: &RawResponse,
) -> Result<Vec<CustomObject>, Diagnostic> {
    let body = response::parse_body(&response.body);
    let status = response.status;
    match status {
        200..=299 => {
            let results =
                response::results_list(body.as_ref(), response, "the list of custom objects")?;
            Ok(results.iter().filter_map(parse_one).collect())
        }
        401 | 403 => Err(response::auth_diagnostic(
            object,
            status,
            body.as_ref(),
            Access::Read,
        )),
        _ => Err(Diagnostic::error(
            "hubspot::unavailable",
            format!("could not read the custom objects of the portal to find `{object}`"),
        )
        .note(format!(
            "HubSpot said: {}",
            response::summary(status, &response.body, body.as_ref())
        ))
        .hint("try again in a moment")),
    }
}

fn parse_one(value: &Value) -> Option<CustomObject> {
    let text = |key: &str| str_field(value, key).map(str::to_string);
    Some(CustomObject {
        name: text("name")?,
        fully_qualified_name: text("fullyQualifiedName").unwrap_or_default(),
        object_type_id: text("objectTypeId")?,
    })
}

/// The custom object a sync's `object:` names, or the error that lists the portal's objects.
pub(crate) fn find<'a>(
    wanted: &str,
    objects: &'a [CustomObject],
) -> Result<&'a CustomObject, Diagnostic> {
    objects
        .iter()
        .find(|o| o.is_named(wanted))
        .ok_or_else(|| unknown(wanted, objects))
}

/// `hubspot::unknown_object`, listing what the portal has.
fn unknown(wanted: &str, objects: &[CustomObject]) -> Diagnostic {
    let mut names: Vec<String> = BUILT_IN
        .iter()
        .map(|(plural, _, _)| (*plural).to_string())
        .collect();
    names.extend(
        objects
            .iter()
            .map(|o| format!("{} ({})", o.name, o.object_type_id)),
    );
    let near = engine_diag::did_you_mean(
        wanted,
        objects
            .iter()
            .map(|o| o.name.as_str())
            .chain(BUILT_IN.iter().map(|(plural, _, _)| *plural)),
    );
    let diagnostic = Diagnostic::error(
        "hubspot::unknown_object",
        format!("HubSpot has no object type `{wanted}`"),
    )
    .note(format!("the portal's objects: {}", names.join(", ")));
    match near {
        Some(name) => diagnostic.hint(format!("did you mean `{name}`?")),
        None => diagnostic.hint(
            "use one of them by name, or a custom object's type id (`2-…`) or fully qualified \
             name (`p<portal id>_<name>`)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status,
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    fn thnks() -> Vec<CustomObject> {
        vec![CustomObject {
            name: "thnks".into(),
            fully_qualified_name: "p12345678_thnks".into(),
            object_type_id: "2-1000001".into(),
        }]
    }

    #[test]
    fn built_in_types_by_name_singular_or_id() {
        assert_eq!(built_in("deals"), Some("deals"));
        assert_eq!(built_in("Deal"), Some("deals"));
        assert_eq!(built_in("0-5"), Some("tickets"));
        assert_eq!(built_in("0-1"), Some("contacts"));
        assert_eq!(built_in("thnks"), None);
        assert_eq!(built_in("2-1234"), None);
    }

    #[test]
    fn custom_objects_by_name_fully_qualified_name_or_type_id() {
        let objects = thnks();
        for wanted in ["thnks", "THNKS", "p12345678_thnks", "p_thnks", "2-1000001"] {
            assert_eq!(
                find(wanted, &objects).map(|o| o.object_type_id.as_str()),
                Ok("2-1000001"),
                "{wanted}"
            );
        }
    }

    #[test]
    fn an_unknown_object_lists_the_portals_objects() {
        let error = find("thnx", &thnks()).unwrap_err();
        assert_eq!(error.code, "hubspot::unknown_object");
        assert!(error.notes[0].contains("contacts, companies, deals, tickets, thnks (2-1000001)"));
        assert_eq!(error.hints, ["did you mean `thnks`?"]);
    }

    #[test]
    fn reads_the_schemas_answer() {
        let body = r#"{"results":[{"name":"thnks","fullyQualifiedName":"p12345678_thnks",
            "objectTypeId":"2-1000001","labels":{"singular":"Thnk"}},{"labels":{}}]}"#;
        assert_eq!(parse_schemas("thnks", &answer(200, body)), Ok(thnks()));
        let refused = parse_schemas("thnks", &answer(403, r#"{"category":"MISSING_SCOPES"}"#));
        assert_eq!(refused.unwrap_err().code, "hubspot::auth");
        let broken = parse_schemas("thnks", &answer(502, "bad gateway"));
        assert_eq!(broken.unwrap_err().code, "hubspot::unavailable");
    }
}
