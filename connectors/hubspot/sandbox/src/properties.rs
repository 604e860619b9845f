//! Property definitions and their wire form (`Property` in crm-properties-v3.json).
//!
//! One [`PropertyDef`] type serves the built-in registries (declared once in `builtin`, their
//! text borrowed from `'static` tables) and the properties a client creates at run time (owned
//! text): every text field is a `Cow`. Writes are checked against the definitions
//! (`validate`), `GET /crm/v3/properties/{objectType}` renders them. Values follow FACTS
//! P1/P4/P5: `type` and `fieldType` from HubSpot's sets, enumeration options by internal value,
//! read-only properties flagged `calculated` and `modificationMetadata.readOnlyValue`.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::record::iso;

/// Text that is either borrowed from a declaration table or owned by a run-time definition.
pub(crate) type Text = Cow<'static, str>;

/// When every built-in property claims to have been created.
const DEFINED_AT: &str = "2019-08-06T02:41:52.720Z";

/// The data type of a property (`Property.type`, FACTS P1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueType {
    String,
    Number,
    Bool,
    Date,
    DateTime,
    Enumeration,
    PhoneNumber,
}

impl ValueType {
    /// Every type a property may have, as HubSpot spells them.
    pub(crate) const WIRE_NAMES: &'static str =
        "bool, date, datetime, enumeration, number, phone_number, string";

    /// The type's name on the wire (`datetime`).
    pub(crate) fn wire(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Number => "number",
            ValueType::Bool => "bool",
            ValueType::Date => "date",
            ValueType::DateTime => "datetime",
            ValueType::Enumeration => "enumeration",
            ValueType::PhoneNumber => "phone_number",
        }
    }

    /// The type named `text` on the wire, if any.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "string" => ValueType::String,
            "number" => ValueType::Number,
            "bool" => ValueType::Bool,
            "date" => ValueType::Date,
            "datetime" => ValueType::DateTime,
            "enumeration" => ValueType::Enumeration,
            "phone_number" => ValueType::PhoneNumber,
            _ => return None,
        })
    }

    /// True when HubSpot lets a property of this type use `field_type` (the pairs its UI
    /// offers). `calculation_equation` is left out: the sandbox does not compute formulas.
    pub(crate) fn fits(self, field_type: &str) -> bool {
        match self {
            ValueType::String => {
                matches!(
                    field_type,
                    "text" | "textarea" | "html" | "phonenumber" | "file"
                )
            }
            ValueType::Number => field_type == "number",
            ValueType::Bool => field_type == "booleancheckbox",
            ValueType::Enumeration => matches!(
                field_type,
                "select" | "radio" | "checkbox" | "booleancheckbox"
            ),
            ValueType::Date | ValueType::DateTime => field_type == "date",
            ValueType::PhoneNumber => field_type == "phonenumber",
        }
    }

    /// True when values are checked against the property's options.
    pub(crate) fn has_options(self) -> bool {
        matches!(self, ValueType::Bool | ValueType::Enumeration)
    }
}

/// One option of an enumeration (`Option`): the value is what the API accepts (FACTS P4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PropertyOption {
    pub(crate) value: Text,
    pub(crate) label: Text,
}

/// An option of a declaration table.
pub(crate) const fn opt(value: &'static str, label: &'static str) -> PropertyOption {
    PropertyOption {
        value: Cow::Borrowed(value),
        label: Cow::Borrowed(label),
    }
}

/// The options HubSpot gives a `bool` property.
pub(crate) const BOOL_OPTIONS: &[PropertyOption] = &[opt("true", "Yes"), opt("false", "No")];

/// One property definition: what `GET /crm/v3/properties` shows and what writes are checked by.
#[derive(Clone, Debug)]
pub(crate) struct PropertyDef {
    pub(crate) name: Text,
    pub(crate) label: Text,
    pub(crate) value_type: ValueType,
    pub(crate) field_type: Text,
    pub(crate) group: Text,
    pub(crate) description: Text,
    pub(crate) options: Cow<'static, [PropertyOption]>,
    /// Values come from elsewhere (owners): `options` is empty and any value is taken (P4).
    pub(crate) external_options: bool,
    pub(crate) unique: bool,
    pub(crate) read_only: bool,
    pub(crate) hubspot_defined: bool,
    /// Values must be email addresses (`textDisplayHint: email`).
    pub(crate) email: bool,
    /// Values are stored in lower case and so match whatever their case (contacts `email`,
    /// companies `domain`).
    pub(crate) lower_case: bool,
    pub(crate) display_order: i64,
    /// When a client created it; `None` for built-ins.
    pub(crate) created_at: Option<DateTime<Utc>>,
}

/// A built-in property of a declaration table.
pub(crate) const fn def(
    name: &'static str,
    label: &'static str,
    value_type: ValueType,
    field_type: &'static str,
    group: &'static str,
) -> PropertyDef {
    with_options(name, label, value_type, field_type, group, &[], false)
}

/// A built-in property with its options (a `const fn` cannot replace a field of a value with
/// a destructor, so the options are given up front).
const fn with_options(
    name: &'static str,
    label: &'static str,
    value_type: ValueType,
    field_type: &'static str,
    group: &'static str,
    options: &'static [PropertyOption],
    external_options: bool,
) -> PropertyDef {
    PropertyDef {
        name: Cow::Borrowed(name),
        label: Cow::Borrowed(label),
        value_type,
        field_type: Cow::Borrowed(field_type),
        group: Cow::Borrowed(group),
        description: Cow::Borrowed(""),
        options: Cow::Borrowed(options),
        external_options,
        unique: false,
        read_only: false,
        hubspot_defined: true,
        email: false,
        lower_case: false,
        display_order: -1,
        created_at: None,
    }
}

/// A built-in single-line text property.
pub(crate) const fn text(
    name: &'static str,
    label: &'static str,
    group: &'static str,
) -> PropertyDef {
    def(name, label, ValueType::String, "text", group)
}

/// A built-in enumeration with its options.
pub(crate) const fn choice(
    name: &'static str,
    label: &'static str,
    field_type: &'static str,
    group: &'static str,
    options: &'static [PropertyOption],
) -> PropertyDef {
    with_options(
        name,
        label,
        ValueType::Enumeration,
        field_type,
        group,
        options,
        false,
    )
}

/// A built-in yes/no property (`bool` with HubSpot's two options).
pub(crate) const fn boolean(
    name: &'static str,
    label: &'static str,
    group: &'static str,
) -> PropertyDef {
    with_options(
        name,
        label,
        ValueType::Bool,
        "booleancheckbox",
        group,
        BOOL_OPTIONS,
        false,
    )
}

/// A built-in enumeration whose options live elsewhere (owners, FACTS P4).
pub(crate) const fn external(
    name: &'static str,
    label: &'static str,
    group: &'static str,
) -> PropertyDef {
    with_options(
        name,
        label,
        ValueType::Enumeration,
        "select",
        group,
        &[],
        true,
    )
}

impl PropertyDef {
    pub(crate) const fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    pub(crate) const fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }
    pub(crate) const fn custom(mut self) -> Self {
        self.hubspot_defined = false;
        self
    }
    pub(crate) const fn email(mut self) -> Self {
        self.email = true;
        self
    }
    pub(crate) const fn lower_case(mut self) -> Self {
        self.lower_case = true;
        self
    }

    /// The option values, in display order (used in `INVALID_OPTION` messages).
    pub(crate) fn option_values(&self) -> Vec<&str> {
        self.options.iter().map(|o| o.value.as_ref()).collect()
    }

    /// The `Property` object of crm-properties-v3.json; `position` is its place in the
    /// registry, used when the definition sets no display order.
    pub(crate) fn to_json(&self, position: usize) -> Value {
        let options: Vec<Value> = self
            .options
            .iter()
            .enumerate()
            .map(|(i, o)| {
                json!({"label": o.label, "value": o.value, "displayOrder": i, "hidden": false})
            })
            .collect();
        let defined_at = self.created_at.map_or_else(|| DEFINED_AT.to_owned(), iso);
        let display_order = if self.display_order >= 0 {
            self.display_order
        } else {
            i64::try_from(position).unwrap_or(i64::MAX)
        };
        let mut property = json!({
            "name": self.name,
            "label": self.label,
            "type": self.value_type.wire(),
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group,
            "options": options,
            "displayOrder": display_order,
            "calculated": self.read_only,
            "externalOptions": self.external_options,
            "hasUniqueValue": self.unique,
            "hidden": false,
            "hubspotDefined": self.hubspot_defined,
            "formField": !self.read_only,
            "archived": false,
            "createdAt": defined_at,
            "updatedAt": defined_at,
            "dataSensitivity": "non_sensitive",
            "modificationMetadata": {
                "archivable": !self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyOptions": self.value_type != ValueType::Enumeration
                    || self.external_options,
                "readOnlyValue": self.read_only,
            },
        });
        if self.email {
            property["textDisplayHint"] = json!("email");
        }
        if self.external_options {
            property["referencedObjectType"] = json!("OWNER");
        }
        property
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_properties_are_flagged() {
        let json = def(
            "hs_object_id",
            "Record ID",
            ValueType::Number,
            "number",
            "g",
        )
        .unique()
        .read_only()
        .to_json(0);
        assert_eq!(json["calculated"], true);
        assert_eq!(json["modificationMetadata"]["readOnlyValue"], true);
    }

    #[test]
    fn types_and_field_types() {
        for name in ValueType::WIRE_NAMES.split(", ") {
            assert_eq!(ValueType::parse(name).map(ValueType::wire), Some(name));
        }
        assert!(ValueType::String.fits("textarea"));
        assert!(!ValueType::String.fits("select"));
        assert!(ValueType::Enumeration.fits("checkbox"));
        assert!(!ValueType::Number.fits("text"));
        assert!(!ValueType::Number.fits("calculation_equation"));
        assert!(ValueType::DateTime.fits("date"));
        assert_eq!(ValueType::parse("text"), None);
    }
}
