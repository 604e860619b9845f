//! Schema discovery: `GET /crm/v3/properties/{object}` → [`Properties`], and the checks that
//! a sync's mapping can make against it before anything is written ([`check_properties`]).
//!
//! Discovery is read-only, so `engine plan` may call it; the checks are pure.

use std::collections::BTreeSet;

use connector_core::Diagnostic;
use serde::Serialize;
use serde_json::Value;

use crate::client::{RawResponse, TransportError};
use crate::config::HubspotConfig;
use crate::response::{self, Access, str_field};

/// The property definitions of one object type, as HubSpot describes them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Properties {
    /// The object type they belong to (`contacts`, `2-1234`, …).
    pub object: String,
    /// Every property HubSpot returned, in its order.
    pub properties: Vec<Property>,
}

/// One property definition (the contract's `Property`, with every field optional).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Property {
    /// The internal name that API payloads use, e.g. `lifecyclestage`.
    pub name: String,
    /// The label shown in HubSpot's UI.
    pub label: String,
    /// The value type: `string`, `number`, `date`, `datetime`, `enumeration`, `bool`,
    /// `phone_number` (FACTS P1).
    pub r#type: String,
    /// How the UI edits it: `text`, `select`, `checkbox`, `booleancheckbox`, `date`, …
    pub field_type: String,
    /// The allowed values of an enumeration (empty for other types, and for pipeline or owner
    /// properties whose options are external).
    pub options: Vec<PropertyOption>,
    /// No two records may share a value; upserts can match on it.
    pub has_unique_value: bool,
    /// HubSpot computes the value (`calculated`).
    pub calculated: bool,
    /// The value cannot be set through the API (`modificationMetadata.readOnlyValue`).
    pub read_only_value: bool,
    /// The definition cannot be changed (`modificationMetadata.readOnlyDefinition`).
    pub read_only_definition: bool,
    /// The options live elsewhere (pipelines, owners): `options` is empty and not a limit.
    pub external_options: bool,
    /// A HubSpot built-in property.
    pub hubspot_defined: bool,
    /// The property is archived and cannot be written.
    pub archived: bool,
}

/// One allowed value of an enumeration property.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PropertyOption {
    /// The internal value that must be sent (FACTS P4: not the label; case-sensitive).
    pub value: String,
    /// The label shown in HubSpot's UI.
    pub label: String,
    /// Hidden from forms (still a valid value).
    pub hidden: bool,
}

impl Properties {
    /// The property named `name`, if the object has one.
    pub fn get(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// The internal names of every property.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.properties.iter().map(|p| p.name.as_str())
    }
}

impl Property {
    /// True when the API refuses a value for it (calculated, read-only value or archived).
    pub fn is_read_only(&self) -> bool {
        self.calculated || self.read_only_value || self.archived
    }

    /// Parses one entry of the response's `results`; `None` without a `name`.
    pub(crate) fn parse(value: &Value) -> Option<Self> {
        let text = |key: &str| str_field(value, key).unwrap_or_default().to_string();
        let flag =
            |value: &Value, key: &str| value.get(key).and_then(Value::as_bool).unwrap_or(false);
        let name = str_field(value, "name")
            .filter(|n| !n.is_empty())?
            .to_string();
        let metadata = value
            .get("modificationMetadata")
            .cloned()
            .unwrap_or(Value::Null);
        let options = value
            .get("options")
            .and_then(Value::as_array)
            .map(|options| {
                options
                    .iter()
                    .filter_map(|option| {
                        let value = str_field(option, "value")?.to_string();
                        Some(PropertyOption {
                            label: str_field(option, "label").unwrap_or(&value).to_string(),
                            hidden: flag(option, "hidden"),
                            value,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            label: str_field(value, "label").unwrap_or(&name).to_string(),
            r#type: text("type"),
            field_type: text("fieldType"),
            options,
            has_unique_value: flag(value, "hasUniqueValue"),
            calculated: flag(value, "calculated"),
            read_only_value: flag(&metadata, "readOnlyValue"),
            read_only_definition: flag(&metadata, "readOnlyDefinition"),
            external_options: flag(value, "externalOptions"),
            hubspot_defined: flag(value, "hubspotDefined"),
            archived: flag(value, "archived"),
            name,
        })
    }
}

/// Checks a sync's mapped property names and its match property against the object's
/// definitions: unknown properties (with a "did you mean"), read-only ones, and a match
/// property that is not unique. Pure; returns every problem found.
///
/// `email` on contacts is accepted as a match property whatever its `hasUniqueValue` says:
/// HubSpot enforces its uniqueness itself (FACTS U2).
pub fn check_properties(
    mapped: &[String],
    match_property: &str,
    properties: &Properties,
) -> Vec<Diagnostic> {
    let object = &properties.object;
    let mut diagnostics = Vec::new();
    let mut seen = BTreeSet::new();
    for name in mapped
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(match_property))
    {
        if !seen.insert(name) {
            continue;
        }
        match properties.get(name) {
            None => diagnostics.push(unknown_property(name, properties)),
            Some(property) if property.is_read_only() && name != match_property => {
                diagnostics.push(read_only_property(object, property));
            }
            Some(_) => {}
        }
    }
    if let Some(property) = properties.get(match_property) {
        let email_on_contacts =
            match_property == "email" && matches!(object.as_str(), "contacts" | "0-1");
        if !property.has_unique_value && !email_on_contacts {
            diagnostics.push(not_unique(match_property, properties));
        }
    }
    diagnostics
}

fn unknown_property(name: &str, properties: &Properties) -> Diagnostic {
    let mut diagnostic = Diagnostic::error(
        "hubspot::unknown_property",
        format!("HubSpot `{}` has no property `{name}`", properties.object),
    );
    let writable = properties
        .properties
        .iter()
        .filter(|p| !p.is_read_only())
        .map(|p| p.name.as_str());
    if let Some(by_label) = properties
        .properties
        .iter()
        .find(|p| p.label.eq_ignore_ascii_case(name))
    {
        diagnostic = diagnostic.hint(format!(
            "`{name}` is the label of `{}`; the API uses internal names",
            by_label.name
        ));
    } else if let Some(suggestion) = engine_diag::did_you_mean(name, writable) {
        diagnostic = diagnostic.hint(format!("did you mean `{suggestion}`?"));
    } else {
        diagnostic = diagnostic
            .hint("use the property's internal name, as listed in HubSpot's property settings");
    }
    diagnostic
}

fn read_only_property(object: &str, property: &Property) -> Diagnostic {
    let why = if property.calculated {
        "HubSpot calculates its value"
    } else if property.archived {
        "it is archived"
    } else {
        "HubSpot does not accept values for it through the API"
    };
    Diagnostic::error(
        "hubspot::read_only_property",
        format!(
            "the HubSpot `{object}` property `{}` is read-only",
            property.name
        ),
    )
    .note(why)
    .hint(format!(
        "remove `{}` from the sync's mapping",
        property.name
    ))
}

fn not_unique(match_property: &str, properties: &Properties) -> Diagnostic {
    let unique: Vec<String> = properties
        .properties
        .iter()
        .filter(|p| p.has_unique_value && !p.is_read_only())
        .map(|p| format!("`{}`", p.name))
        .collect();
    let diagnostic = Diagnostic::error(
        "hubspot::match_property_not_unique",
        format!(
            "the match property `{match_property}` does not have unique values in HubSpot `{}`",
            properties.object
        ),
    )
    .note(
        "HubSpot upserts only by a property with `hasUniqueValue`, which is set when the property \
         is created",
    );
    let search = "or set `match.lookup: search` to find records through HubSpot's search \
                  (slower; a value several records hold fails its row)";
    if unique.is_empty() {
        diagnostic.hint(format!(
            "create a property with unique values in HubSpot and match on it, {search}"
        ))
    } else {
        diagnostic.hint(format!(
            "match on a unique property ({}), {search}",
            unique.join(", ")
        ))
    }
}

/// Turns the answer to `GET /crm/v3/properties/{object}` into [`Properties`] or a diagnostic.
pub(crate) fn parse_describe(
    config: &HubspotConfig,
    response: &RawResponse,
) -> Result<Properties, Diagnostic> {
    let object = &config.object;
    let body = response::parse_body(&response.body);
    let status = response.status;
    match status {
        200..=299 => {
            let results = response::results_list(
                body.as_ref(),
                response,
                &format!("the property list of `{object}`"),
            )?;
            Ok(Properties {
                object: object.clone(),
                properties: results.iter().filter_map(Property::parse).collect(),
            })
        }
        401 | 403 => Err(response::auth_diagnostic(
            object,
            status,
            body.as_ref(),
            Access::Read,
        )),
        400 | 404 => {
            let summary = response::summary(status, &response.body, body.as_ref());
            if status == 400 && !summary.to_lowercase().contains("object type") {
                return Err(Diagnostic::error(
                    "hubspot::describe",
                    format!("HubSpot refused to list the properties of `{object}`"),
                )
                .note(format!("HubSpot said: {summary}")));
            }
            Err(Diagnostic::error(
                "hubspot::unknown_object",
                format!("HubSpot has no object type `{object}`"),
            )
            .note(format!("HubSpot said: {summary}"))
            .hint("use `contacts`, `companies`, `deals`, or a custom object's id such as `2-1234`"))
        }
        _ => Err(Diagnostic::error(
            "hubspot::unavailable",
            format!("could not read the properties of `{object}` from HubSpot"),
        )
        .note(format!(
            "HubSpot said: {}",
            response::summary(status, &response.body, body.as_ref())
        ))
        .hint("try again in a moment")),
    }
}

/// The diagnostic for a describe request that got no answer.
pub(crate) fn transport_diagnostic(config: &HubspotConfig, error: &TransportError) -> Diagnostic {
    let url = config.display_url();
    let message = match error {
        TransportError::Timeout => format!(
            "HubSpot at `{url}` did not answer within {} s",
            config.timeout.as_secs_f64()
        ),
        TransportError::Connect(detail) | TransportError::Other(detail) => {
            format!("could not reach HubSpot at `{url}`: {detail}")
        }
    };
    Diagnostic::error("hubspot::unreachable", message)
        .hint("check the destination's `base_url` and the network, then try again")
}
