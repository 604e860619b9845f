//! Property definitions a client creates: `PropertyCreate` (crm-properties-v3.json) and the
//! properties of a custom object schema (`ObjectTypePropertyCreate`, crm-schemas-v3.json); and
//! the changes `PropertyUpdate` makes to a client's property (its type and options, say).
//!
//! Checked as HubSpot checks them (FACTS P1): the name is an internal name (lower-case letter
//! first, then lower-case letters, digits and underscores; `hs_` is HubSpot's), `type` and
//! `fieldType` come from HubSpot's sets and must fit together (`string` + `text`,
//! `enumeration` + `select`, …), an enumeration lists its options (unique, non-empty values),
//! and only `string` and `number` properties may have unique values. A refusal is a 400
//! `VALIDATION_ERROR` naming the field. A created property is then validated on writes like a
//! built-in one, and a `hasUniqueValue` one gets a unique index.

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::errors::ApiError;
use crate::properties::{BOOL_OPTIONS, PropertyDef, PropertyOption, ValueType};

/// Longest internal name accepted.
const MAX_NAME: usize = 100;

/// `PropertyCreate` / `ObjectTypePropertyCreate`; the fields the sandbox does not model
/// (`hidden`, `formField`, `calculationFormula`, …) are accepted and ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PropertyInput {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default, rename = "type")]
    value_type: Option<String>,
    #[serde(default)]
    field_type: Option<String>,
    #[serde(default)]
    group_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    options: Vec<OptionInput>,
    #[serde(default)]
    has_unique_value: bool,
    #[serde(default)]
    display_order: Option<i64>,
    #[serde(default)]
    text_display_hint: Option<String>,
}

/// `OptionInput`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OptionInput {
    label: String,
    value: String,
}

fn field(what: &str, name: &str, message: String) -> ApiError {
    ApiError::validation(message).context(what, vec![name.to_owned()])
}

/// True when `name` is an internal name HubSpot lets a client create.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= MAX_NAME
}

impl PropertyInput {
    /// The definition this input describes, or the 400 refusing it. `default_group` is used
    /// when the input names none (schemas may leave it out; `PropertyCreate` requires it).
    pub(crate) fn build(
        self,
        default_group: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<PropertyDef, ApiError> {
        let name = self.name.unwrap_or_default();
        if name.is_empty() {
            return Err(ApiError::validation("A property needs a `name`"));
        }
        if !valid_name(&name) || name.starts_with("hs_") {
            return Err(field(
                "name",
                &name,
                format!(
                    "Invalid property name `{name}`: a name starts with a lower-case letter, holds \
                     only lower-case letters, digits and underscores, is at most {MAX_NAME} \
                     characters long and does not start with `hs_`"
                ),
            ));
        }
        let label = self
            .label
            .filter(|l| !l.trim().is_empty())
            .ok_or_else(|| field("label", &name, format!("Property `{name}` needs a `label`")))?;
        let type_text = self.value_type.unwrap_or_default();
        let value_type = ValueType::parse(&type_text).ok_or_else(|| {
            field(
                "type",
                &name,
                format!(
                    "Invalid type `{type_text}` for property `{name}`: use one of {}",
                    ValueType::WIRE_NAMES
                ),
            )
        })?;
        let field_type = self.field_type.unwrap_or_default();
        if !value_type.fits(&field_type) {
            return Err(field(
                "fieldType",
                &name,
                format!(
                    "Invalid fieldType `{field_type}` for property `{name}` of type `{type_text}`"
                ),
            ));
        }
        let group = match (self.group_name.filter(|g| !g.is_empty()), default_group) {
            (Some(group), _) => group,
            (None, Some(group)) => group.to_owned(),
            (None, None) => {
                return Err(field(
                    "groupName",
                    &name,
                    format!("Property `{name}` needs a `groupName`"),
                ));
            }
        };
        let options = options(&name, value_type, self.options)?;
        if self.has_unique_value && !matches!(value_type, ValueType::String | ValueType::Number) {
            return Err(field(
                "hasUniqueValue",
                &name,
                format!(
                    "Property `{name}` of type `{type_text}` cannot have unique values: only \
                     `string` and `number` properties can"
                ),
            ));
        }
        Ok(PropertyDef {
            name: Cow::Owned(name),
            label: Cow::Owned(label),
            value_type,
            field_type: Cow::Owned(field_type),
            group: Cow::Owned(group),
            description: Cow::Owned(self.description.unwrap_or_default()),
            options,
            external_options: false,
            unique: self.has_unique_value,
            read_only: false,
            hubspot_defined: false,
            email: self.text_display_hint.as_deref() == Some("email"),
            lower_case: false,
            display_order: self.display_order.unwrap_or(-1),
            created_at: Some(now),
        })
    }
}

impl PropertyInput {
    /// `PropertyUpdate` applied to `existing`: the fields given replace the definition's, and
    /// the result is checked as a new property is (an enumeration keeps its options unless new
    /// ones are given). HubSpot's own properties cannot be changed; unique values stay as they
    /// were (`PropertyUpdate` has no `hasUniqueValue`).
    pub(crate) fn update(self, existing: &PropertyDef) -> Result<PropertyDef, ApiError> {
        let name = existing.name.to_string();
        if existing.hubspot_defined {
            return Err(field(
                "name",
                &name,
                format!("Property `{name}` is defined by HubSpot and cannot be changed"),
            ));
        }
        let value_type = self
            .value_type
            .unwrap_or_else(|| existing.value_type.wire().to_owned());
        let keeps_options = self.options.is_empty()
            && ValueType::parse(&value_type) == Some(existing.value_type)
            && existing.value_type.has_options();
        let options = if keeps_options {
            existing
                .options
                .iter()
                .map(|o| OptionInput {
                    label: o.label.to_string(),
                    value: o.value.to_string(),
                })
                .collect()
        } else {
            self.options
        };
        let merged = PropertyInput {
            name: Some(name),
            label: self.label.or_else(|| Some(existing.label.to_string())),
            value_type: Some(value_type),
            field_type: self
                .field_type
                .or_else(|| Some(existing.field_type.to_string())),
            group_name: self.group_name.or_else(|| Some(existing.group.to_string())),
            description: self
                .description
                .or_else(|| Some(existing.description.to_string())),
            options,
            has_unique_value: existing.unique,
            display_order: self.display_order.or(Some(existing.display_order)),
            text_display_hint: self
                .text_display_hint
                .or_else(|| existing.email.then(|| "email".to_owned())),
        };
        let created = existing.created_at.unwrap_or_else(Utc::now);
        merged.build(None, created)
    }
}

/// The options of a new property: required for enumerations, HubSpot's two for a `bool` that
/// gives none, refused for other types.
fn options(
    name: &str,
    value_type: ValueType,
    given: Vec<OptionInput>,
) -> Result<Cow<'static, [PropertyOption]>, ApiError> {
    if !value_type.has_options() {
        if given.is_empty() {
            return Ok(Cow::Borrowed(&[]));
        }
        return Err(field(
            "options",
            name,
            format!("Property `{name}` has options, but only `enumeration` and `bool` take them"),
        ));
    }
    if given.is_empty() {
        return match value_type {
            ValueType::Bool => Ok(Cow::Borrowed(BOOL_OPTIONS)),
            _ => Err(field(
                "options",
                name,
                format!("Property `{name}` is an enumeration and needs `options`"),
            )),
        };
    }
    let mut seen = HashSet::new();
    let mut options = Vec::with_capacity(given.len());
    for option in given {
        if option.value.is_empty() || !seen.insert(option.value.clone()) {
            return Err(field(
                "options",
                name,
                format!(
                    "Property `{name}` has an empty or repeated option value `{}`",
                    option.value
                ),
            ));
        }
        options.push(PropertyOption {
            value: Cow::Owned(option.value),
            label: Cow::Owned(option.label),
        });
    }
    Ok(Cow::Owned(options))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn build(body: Value) -> Result<PropertyDef, String> {
        let input: PropertyInput = serde_json::from_value(body).map_err(|e| e.to_string())?;
        input.build(None, Utc::now()).map_err(|e| format!("{e:?}"))
    }

    fn base(extra: Value) -> Value {
        let mut body = json!({"name": "favourite_colour", "label": "Favourite colour",
            "type": "string", "fieldType": "text", "groupName": "contactinformation"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    }

    #[test]
    fn good_properties() {
        let text = build(base(json!({"hasUniqueValue": true}))).ok();
        assert!(
            text.as_ref()
                .is_some_and(|p| p.unique && !p.hubspot_defined)
        );
        let choice = build(base(json!({"type": "enumeration", "fieldType": "select",
            "options": [{"label": "Red", "value": "red", "displayOrder": 0, "hidden": false}]})));
        assert_eq!(
            choice.ok().map(|p| p.option_values().join(",")),
            Some("red".to_owned())
        );
        let flag = build(base(
            json!({"type": "bool", "fieldType": "booleancheckbox"}),
        ));
        assert_eq!(flag.ok().map(|p| p.options.len()), Some(2));
    }

    #[test]
    fn updates_replace_what_they_give_and_are_checked() {
        let text = build(base(json!({}))).expect("a property");
        let update = |body: Value| -> Result<PropertyDef, String> {
            let input: PropertyInput = serde_json::from_value(body).map_err(|e| e.to_string())?;
            input.update(&text).map_err(|e| format!("{e:?}"))
        };
        let date = update(json!({"type": "date", "fieldType": "date"})).expect("changed");
        assert_eq!(date.value_type, ValueType::Date);
        assert_eq!(date.label, "Favourite colour");
        let choice = update(json!({"type": "enumeration", "fieldType": "select",
            "options": [{"label": "Red", "value": "red", "displayOrder": 0, "hidden": false}]}))
        .expect("changed");
        let relabelled: PropertyInput =
            serde_json::from_value(json!({"label": "Colour"})).expect("an update");
        let kept = relabelled.update(&choice).expect("changed");
        assert_eq!(kept.option_values(), ["red"], "options kept");
        assert!(update(json!({"type": "enumeration", "fieldType": "select"})).is_err());
        assert!(
            update(json!({"type": "date"})).is_err(),
            "fieldType must fit"
        );
        let mut builtin = text.clone();
        builtin.hubspot_defined = true;
        let input: PropertyInput = serde_json::from_value(json!({"label": "x"})).expect("input");
        assert!(input.update(&builtin).is_err());
    }

    #[test]
    fn bad_properties() {
        for extra in [
            json!({"name": "Favourite"}),
            json!({"name": "hs_colour"}),
            json!({"name": "9lives"}),
            json!({"label": ""}),
            json!({"type": "text"}),
            json!({"fieldType": "select"}),
            json!({"type": "number", "fieldType": "calculation_equation"}),
            json!({"groupName": null}),
            json!({"type": "enumeration", "fieldType": "select"}),
            json!({"type": "enumeration", "fieldType": "select", "options": [
                {"label": "A", "value": "a", "displayOrder": 0, "hidden": false},
                {"label": "B", "value": "a", "displayOrder": 1, "hidden": false}]}),
            json!({"options": [{"label": "A", "value": "a", "displayOrder": 0, "hidden": false}]}),
            json!({"type": "date", "fieldType": "date", "hasUniqueValue": true}),
        ] {
            assert!(build(base(extra.clone())).is_err(), "{extra}");
        }
    }
}
