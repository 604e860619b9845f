//! Custom objects and custom fields: the definitions a test posts to `/_sandbox/objects` or a
//! file loads at start-up, turned into [`ObjectDef`]s and [`FieldDef`]s.
//!
//! Salesforce creates these through the Metadata API or Setup; the sandbox takes a small JSON
//! (or YAML) shape instead, named like the describe fields it produces. A definition whose
//! `name` is an existing object (standard or custom) adds its fields to that object (for
//! example an external-id field `Ext_Id__c` on Contact); a new name must end in `__c` and
//! creates the object with the standard fields of a custom object (`Id`, `Name`, `OwnerId`,
//! the audit fields).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::builtin::system_fields;
use crate::schema::{FieldDef, FieldType, ObjectDef};

/// A custom object (or custom fields for an existing object), as the sandbox's setup call
/// and definitions file take it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomObject {
    /// The object's API name: `ThankView__c` for a new object, or an existing object's name
    /// (`Contact`) to add fields to it.
    pub name: String,
    /// The label (default: the name without `__c`, underscores as spaces).
    #[serde(default)]
    pub label: Option<String>,
    /// The plural label (default: the label and an `s`).
    #[serde(default)]
    pub label_plural: Option<String>,
    /// The custom fields.
    #[serde(default)]
    pub fields: Vec<CustomField>,
}

/// A custom field. `type` is a describe type (`string`, `email`, `reference`, …).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomField {
    /// API name ending in `__c`.
    pub name: String,
    /// One of `string`, `textarea`, `email`, `url`, `phone`, `boolean`, `date`, `datetime`,
    /// `double`, `currency`, `percent`, `int`, `picklist`, `multipicklist`, `reference`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The label (default: from the name).
    #[serde(default)]
    pub label: Option<String>,
    /// Characters for text types (default: Salesforce's default for the type).
    #[serde(default)]
    pub length: Option<u32>,
    /// Digits in all for number types (default 18).
    #[serde(default)]
    pub precision: Option<u32>,
    /// Digits after the point for number types (default 2; `int` has none).
    #[serde(default)]
    pub scale: Option<u32>,
    /// A create must set it (REQUIRED_FIELD_MISSING otherwise).
    #[serde(default)]
    pub required: bool,
    /// An external id: indexed, usable for upsert. Not unique unless `unique` is set, so two
    /// records may share a value and an upsert on it answers 300 (FACTS U1).
    #[serde(default)]
    pub external_id: bool,
    /// Values are unique (compared ignoring case): DUPLICATE_VALUE otherwise.
    #[serde(default)]
    pub unique: bool,
    /// For `reference`: the object it points to (`Contact`, `Lead`, `Account`, a custom one).
    #[serde(default)]
    pub reference_to: Option<String>,
    /// For `reference`: the relationship name (default: the name with `__r`).
    #[serde(default)]
    pub relationship_name: Option<String>,
    /// For picklists: the values.
    #[serde(default)]
    pub picklist_values: Vec<String>,
    /// For picklists: refuse other values (case-sensitive).
    #[serde(default)]
    pub restricted_picklist: bool,
    /// The value a create gets when it leaves the field out.
    #[serde(default)]
    pub default_value: Option<Value>,
}

/// A definitions file: `{"objects": [...]}` or a bare list.
#[derive(Deserialize)]
#[serde(untagged)]
enum DefinitionsFile {
    Wrapped { objects: Vec<CustomObject> },
    List(Vec<CustomObject>),
}

/// Parses a definitions file, JSON or YAML (by extension; JSON when unknown).
pub(crate) fn parse_file(path: &std::path::Path, text: &str) -> Result<Vec<CustomObject>, String> {
    let yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    let parsed: DefinitionsFile = if yaml {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())?
    } else {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    };
    Ok(match parsed {
        DefinitionsFile::Wrapped { objects } | DefinitionsFile::List(objects) => objects,
    })
}

/// Whether `name` is a valid API name with the `__c` suffix.
fn valid_custom_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix("__c") else {
        return false;
    };
    stem.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !stem.contains("__")
        && !stem.ends_with('_')
}

/// A label from an API name: `Thank_View__c` → `Thank View`.
fn label_of(name: &str) -> String {
    name.trim_end_matches("__c").replace('_', " ")
}

/// A new custom object's definition with its standard fields, before its custom fields.
pub(crate) fn new_object(definition: &CustomObject, prefix: &str) -> Result<ObjectDef, String> {
    if !valid_custom_name(&definition.name) {
        return Err(format!(
            "`{}` is not a custom object name: use letters, digits and single underscores, ending in `__c`",
            definition.name
        ));
    }
    let label = definition
        .label
        .clone()
        .unwrap_or_else(|| label_of(&definition.name));
    let plural = definition
        .label_plural
        .clone()
        .unwrap_or_else(|| format!("{label}s"));
    let mut object = ObjectDef::new(&definition.name, &label, &plural, prefix);
    system_fields(&mut object, true);
    object.push(
        FieldDef::new("Name", &format!("{label} Name"), FieldType::String)
            .length(80)
            .required()
            .id_lookup(),
    );
    Ok(object)
}

/// A custom field's definition; `object_exists` says whether a `referenceTo` names an object.
pub(crate) fn field(
    definition: &CustomField,
    object_exists: impl Fn(&str) -> Option<String>,
) -> Result<FieldDef, String> {
    if !valid_custom_name(&definition.name) {
        return Err(format!(
            "`{}` is not a custom field name: use letters, digits and single underscores, ending in `__c`",
            definition.name
        ));
    }
    let kind = FieldType::parse(&definition.kind)
        .filter(|k| *k != FieldType::Id)
        .ok_or_else(|| {
            let names: Vec<&str> = FieldType::ALL[1..].iter().map(|t| t.as_str()).collect();
            format!(
                "field `{}` has type `{}`: use one of {}",
                definition.name,
                definition.kind,
                names.join(", ")
            )
        })?;
    let label = definition
        .label
        .clone()
        .unwrap_or_else(|| label_of(&definition.name));
    let mut field = FieldDef::new(&definition.name, &label, kind);
    if let Some(length) = definition.length {
        if !kind.is_text() || length == 0 || length > 131_072 {
            return Err(format!(
                "field `{}`: `length` fits text types, 1 to 131072",
                definition.name
            ));
        }
        field.length = length;
    }
    if kind == FieldType::Int {
        field.precision = definition.precision.unwrap_or(9);
        field.scale = 0;
    } else {
        field.precision = definition.precision.unwrap_or(field.precision);
        field.scale = definition.scale.unwrap_or(field.scale);
    }
    if definition.required && kind != FieldType::Boolean {
        field = field.required();
    }
    field.external_id = definition.external_id;
    field.unique = definition.unique;
    if (definition.external_id || definition.unique)
        && !matches!(
            kind,
            FieldType::String | FieldType::Email | FieldType::Int | FieldType::Double
        )
    {
        return Err(format!(
            "field `{}`: only string, email, int and double fields can be external ids or unique",
            definition.name
        ));
    }
    if kind == FieldType::Reference {
        let target = definition
            .reference_to
            .as_deref()
            .ok_or_else(|| format!("reference field `{}` needs `referenceTo`", definition.name))?;
        let target = object_exists(target).ok_or_else(|| {
            format!(
                "field `{}`: no object `{target}` to refer to",
                definition.name
            )
        })?;
        let relationship = definition
            .relationship_name
            .clone()
            .unwrap_or_else(|| format!("{}__r", definition.name.trim_end_matches("__c")));
        field = field.reference(&target, &relationship);
    }
    if matches!(kind, FieldType::Picklist | FieldType::MultiPicklist) {
        field.picklist = definition.picklist_values.clone();
        field.restricted = definition.restricted_picklist;
    } else if !definition.picklist_values.is_empty() {
        return Err(format!(
            "field `{}`: `picklistValues` fit picklists only",
            definition.name
        ));
    }
    if let Some(value) = &definition.default_value {
        field = field.defaulted(value.clone());
    }
    Ok(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_end_in_c() {
        assert!(valid_custom_name("ThankView__c"));
        assert!(valid_custom_name("Thank_View__c"));
        for bad in ["ThankView", "__c", "1x__c", "a__b__c", "a___c", "a b__c"] {
            assert!(!valid_custom_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_reference_needs_an_existing_target() {
        let definition = CustomField {
            name: "Contact__c".into(),
            kind: "reference".into(),
            reference_to: Some("contact".into()),
            ..CustomField::default()
        };
        let field = field(&definition, |name| {
            name.eq_ignore_ascii_case("Contact")
                .then(|| "Contact".to_owned())
        });
        let field = field.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(field.reference_to, ["Contact"]);
        assert_eq!(field.relationship_name.as_deref(), Some("Contact__r"));
        assert!(super::field(&definition, |_| None).is_err());
    }

    #[test]
    fn files_are_json_or_yaml() {
        let json = r#"{"objects":[{"name":"A__c","fields":[{"name":"B__c","type":"string"}]}]}"#;
        let yaml = "- name: A__c\n  fields:\n    - name: B__c\n      type: string\n";
        let from_json = parse_file(std::path::Path::new("x.json"), json);
        let from_yaml = parse_file(std::path::Path::new("x.yaml"), yaml);
        assert_eq!(from_json, from_yaml);
        assert!(parse_file(std::path::Path::new("x.json"), "[{\"nme\":1}]").is_err());
    }
}
