//! Associations (CRM associations v4): the label definitions of an object pair, and the
//! bodies that link and unlink records. Pure: the destination sends the requests (see
//! `linking`); this module writes their bodies and reads their answers.
//!
//! | what | endpoint | body |
//! | --- | --- | --- |
//! | label definitions | `GET /crm/v4/associations/{from}/{to}/labels` | — |
//! | link | `POST /crm/v4/associations/{from}/{to}/batch/create` | `{"inputs":[{"from":{"id"},"to":{"id"},"types":[{"associationCategory","associationTypeId"}]}]}` |
//! | unlink one label | `POST /crm/v4/associations/{from}/{to}/batch/labels/archive` | same shape |
//! | unlink altogether | `POST /crm/v4/associations/{from}/{to}/batch/archive` | `{"inputs":[{"from":{"id"},"to":[{"id"}]}]}` |
//!
//! Only a label's type id is stable (HubSpot may rename labels, FACTS A2), so labels are
//! resolved to type ids when a batch is sent, never stored as ids in the plan.

use connector_core::Diagnostic;
use serde_json::{Value, json};

use crate::client::RawResponse;
use crate::response::{self, Access};

/// The most inputs one association batch takes (FACTS B4 puts HubSpot's cap above this; the
/// batch of records a sync writes is at most 100 records, each with a few links).
pub(crate) const MAX_INPUTS: usize = 1000;

/// What a sync says about one association (`associations:` in the sync spec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationConfig {
    /// The property the association travels under in operations (`@companies`).
    pub property: String,
    /// The object type linked to (`companies`, a custom object).
    pub to: String,
    /// Targets are values of this unique property of `to` (looked up), or record ids (`None`).
    pub by: Option<String>,
    /// Link only records the write created (`when: created`).
    pub created_only: bool,
}

/// One label definition of an object pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LabelDef {
    /// `HUBSPOT_DEFINED`, `USER_DEFINED`, …
    pub category: String,
    /// The association type id.
    pub type_id: u64,
    /// The label; `None` for the unlabelled default association.
    pub label: Option<String>,
}

/// The path of the label definitions of `from` → `to`.
pub(crate) fn labels_path(from: &str, to: &str) -> String {
    format!("/crm/v4/associations/{from}/{to}/labels")
}

/// Reads a label-definitions answer.
pub(crate) fn parse_labels(
    from: &str,
    to: &str,
    answer: &RawResponse,
) -> Result<Vec<LabelDef>, Diagnostic> {
    let body = response::parse_body(&answer.body);
    match answer.status {
        200..=299 => Ok(body
            .as_ref()
            .and_then(|b| b.get("results"))
            .and_then(Value::as_array)
            .map(|results| {
                results
                    .iter()
                    .filter_map(|r| {
                        Some(LabelDef {
                            category: r.get("category")?.as_str()?.to_string(),
                            type_id: r.get("typeId")?.as_u64()?,
                            label: r.get("label").and_then(Value::as_str).map(str::to_string),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()),
        401 | 403 => Err(response::auth_diagnostic(
            from,
            answer.status,
            body.as_ref(),
            Access::Read,
        )),
        429 | 423 | 477 | 500..=599 => Err(Diagnostic::error(
            "hubspot::unavailable",
            format!("HubSpot could not list the association labels of `{from}` → `{to}` right now"),
        )
        .note(response::summary(answer.status, &answer.body, body.as_ref()))
        .hint("try again in a moment")),
        status => Err(Diagnostic::error(
            "hubspot::unknown_association",
            format!("HubSpot has no associations from `{from}` to `{to}`"),
        )
        .note(format!(
            "HubSpot said: {}",
            response::summary(status, &answer.body, body.as_ref())
        ))
        .hint("check the association's `to:` object; a custom object must list the other object among its associated objects")),
    }
}

/// The definition a label names: its name (ignoring case) or type id; `None` is the
/// unlabelled default. An unknown label is the message that lists the pair's labels.
pub(crate) fn find_label<'a>(
    labels: &'a [LabelDef],
    wanted: Option<&str>,
    from: &str,
    to: &str,
) -> Result<&'a LabelDef, String> {
    let found = match wanted {
        None => labels
            .iter()
            .find(|l| l.label.is_none() && l.category == "HUBSPOT_DEFINED")
            .or_else(|| labels.iter().find(|l| l.label.is_none())),
        Some(wanted) => labels
            .iter()
            .find(|l| {
                l.label
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
            })
            .or_else(|| {
                wanted
                    .parse::<u64>()
                    .ok()
                    .and_then(|id| labels.iter().find(|l| l.type_id == id))
            }),
    };
    found.ok_or_else(|| {
        let known: Vec<String> = labels
            .iter()
            .map(|l| match &l.label {
                Some(name) => format!("`{name}` ({})", l.type_id),
                None => format!("unlabelled ({})", l.type_id),
            })
            .collect();
        let near = wanted.and_then(|w| {
            engine_diag::did_you_mean(w, labels.iter().filter_map(|l| l.label.as_deref()))
        });
        format!(
            "the association from `{from}` to `{to}` has no label {}{}; its labels are: {}",
            wanted.map_or_else(|| "for unlabelled links".to_string(), |w| format!("`{w}`")),
            near.map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )
    })
}

/// The body linking (or, for `batch/labels/archive`, unlinking) `(from id, to id, label)`.
pub(crate) fn links_body(links: &[(&str, &str, &LabelDef)]) -> Value {
    let inputs: Vec<Value> = links
        .iter()
        .map(|(from, to, label)| {
            json!({
                "from": {"id": from},
                "to": {"id": to},
                "types": [{
                    "associationCategory": label.category,
                    "associationTypeId": label.type_id,
                }],
            })
        })
        .collect();
    json!({ "inputs": inputs })
}

/// The body unlinking `(from id, to id)` pairs altogether, every label (`batch/archive`).
pub(crate) fn unlink_body(pairs: &[(&str, &str)]) -> Value {
    let inputs: Vec<Value> = pairs
        .iter()
        .map(|(from, to)| json!({"from": {"id": from}, "to": [{"id": to}]}))
        .collect();
    json!({ "inputs": inputs })
}

/// The record ids a multi-status answer's errors name (their `context` values and
/// `message`s), so that only the rows they concern fail.
pub(crate) fn failed_ids(body: &Value) -> Vec<(String, String)> {
    let Some(errors) = body.get("errors").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for error in errors {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("HubSpot refused the association")
            .to_string();
        let mut ids: Vec<String> = error
            .get("context")
            .and_then(Value::as_object)
            .map(|context| {
                context
                    .values()
                    .filter_map(Value::as_array)
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if ids.is_empty() {
            ids.push(String::new());
        }
        for id in ids {
            out.push((id, message.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<LabelDef> {
        vec![
            LabelDef {
                category: "HUBSPOT_DEFINED".into(),
                type_id: 279,
                label: None,
            },
            LabelDef {
                category: "HUBSPOT_DEFINED".into(),
                type_id: 1,
                label: Some("Primary".into()),
            },
            LabelDef {
                category: "USER_DEFINED".into(),
                type_id: 35,
                label: Some("Billing contact".into()),
            },
        ]
    }

    #[test]
    fn labels_are_found_by_name_or_type_id() {
        let labels = labels();
        let find = |w: Option<&str>| find_label(&labels, w, "contacts", "companies");
        assert_eq!(find(None).map(|l| l.type_id), Ok(279));
        assert_eq!(find(Some("primary")).map(|l| l.type_id), Ok(1));
        assert_eq!(find(Some("35")).map(|l| l.type_id), Ok(35));
        let unknown = find(Some("Billing contct")).expect_err("unknown");
        assert!(
            unknown.contains("did you mean `Billing contact`?"),
            "{unknown}"
        );
        assert!(unknown.contains("`Primary` (1)"), "{unknown}");
    }

    #[test]
    fn a_link_body_names_the_type() {
        let labels = labels();
        let body = links_body(&[("11", "21", &labels[1])]);
        assert_eq!(
            body,
            json!({"inputs": [{"from": {"id": "11"}, "to": {"id": "21"},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]}]})
        );
        let errors = json!({"errors": [{"message": "no such record",
            "context": {"fromObjectId": ["11"]}}]});
        assert_eq!(
            failed_ids(&errors),
            [("11".to_string(), "no such record".to_string())]
        );
    }
}
