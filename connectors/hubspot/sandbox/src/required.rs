//! Required properties: what a created record must have and an update must not clear.
//!
//! Tickets require `hs_pipeline_stage`; a custom object requires its schema's
//! `requiredProperties`. HubSpot refuses a create that lacks one with a 400
//! `VALIDATION_ERROR` ("Cannot create object with type: TICKET. The following required
//! properties were missing: [hs_pipeline_stage]") and lists the properties in
//! `context.properties`, as it does for other objects ("Some required properties were not
//! set", `context: {"properties": [...]}`). An update that would set one to `""` is refused the
//! same way, naming the properties it would clear.

use std::collections::BTreeMap;

use crate::errors::{InputError, category};
use crate::registry::ObjectDef;

/// The required properties a record created from `values` would lack, in declaration order.
pub(crate) fn missing<'a>(
    object: &ObjectDef,
    values: impl Iterator<Item = (&'a String, &'a String)> + Clone,
) -> Vec<String> {
    object
        .required
        .iter()
        .filter(|name| {
            !values
                .clone()
                .any(|(k, v)| k == name.as_ref() && !v.is_empty())
        })
        .map(|name| name.to_string())
        .collect()
}

/// The required properties an update with `values` would clear.
pub(crate) fn cleared(object: &ObjectDef, values: &BTreeMap<String, String>) -> Vec<String> {
    object
        .required
        .iter()
        .filter(|name| values.get(name.as_ref()).is_some_and(String::is_empty))
        .map(|name| name.to_string())
        .collect()
}

fn missing_message(object: &ObjectDef, names: &[String]) -> String {
    format!(
        "Cannot create object with type: {}. The following required properties were missing: \
         [{}]",
        object.upper(),
        names.join(", ")
    )
}

fn cleared_message(object: &ObjectDef, names: &[String]) -> String {
    format!(
        "Cannot update object with type: {}. The following required properties would be \
         cleared: [{}]",
        object.upper(),
        names.join(", ")
    )
}

/// The per-input refusal (inside a 207) of a create lacking required properties.
pub(crate) fn missing_input_error(object: &ObjectDef, names: Vec<String>) -> InputError {
    InputError::new(category::VALIDATION_ERROR, missing_message(object, &names))
        .context("properties", names)
}

/// The per-input refusal (inside a 207) of an update clearing required properties.
pub(crate) fn cleared_input_error(object: &ObjectDef, names: Vec<String>) -> InputError {
    InputError::new(category::VALIDATION_ERROR, cleared_message(object, &names))
        .context("properties", names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{ObjectType, Registry};

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn tickets_need_a_stage() {
        let registry = Registry::default();
        let tickets = registry.get(ObjectType::TICKETS);
        let given = values(&[("subject", "Broken")]);
        assert_eq!(missing(tickets, given.iter()), ["hs_pipeline_stage"]);
        let empty = values(&[("hs_pipeline_stage", "")]);
        assert_eq!(missing(tickets, empty.iter()), ["hs_pipeline_stage"]);
        let staged = values(&[("hs_pipeline_stage", "1")]);
        assert!(missing(tickets, staged.iter()).is_empty());
        assert_eq!(cleared(tickets, &empty), ["hs_pipeline_stage"]);
        assert!(cleared(tickets, &given).is_empty());
        let deals = registry.get(ObjectType::DEALS);
        assert!(missing(deals, BTreeMap::new().iter()).is_empty());
        let error = missing_input_error(tickets, vec!["hs_pipeline_stage".into()]).to_json();
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("Cannot create object with type: TICKET."));
    }
}
