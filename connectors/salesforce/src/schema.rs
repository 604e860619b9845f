//! Schema discovery: `GET /sobjects/{Object}/describe` → [`Describe`] and the describe global
//! `GET /sobjects` → [`GlobalObject`]s (FACTS D1), and the checks a sync's mapping must pass
//! before anything is written ([`check_mapping`]).
//!
//! Discovery is read-only, so `engine plan` may call it; the checks are pure. Field names are
//! compared exactly, as the API names them (`Contact__c`, not `contact__c` nor its label).

use std::collections::BTreeSet;

use connector_core::Diagnostic;
use serde_json::Value;

use crate::config::WriteMode;
use crate::convert::FieldKind;

/// One field of an object, as describe gives it (every attribute optional on the wire).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Field {
    /// The API name (`Contact__c`).
    pub name: String,
    /// The label people see.
    pub label: String,
    /// The describe type: `string`, `boolean`, `reference`, `picklist`, …
    pub r#type: String,
    /// Most characters for text types (0 when not given).
    pub length: usize,
    /// May be empty.
    pub nillable: bool,
    /// A create may set it.
    pub createable: bool,
    /// An update may set it.
    pub updateable: bool,
    /// Salesforce fills it on create when it is left out.
    pub defaulted_on_create: bool,
    /// An external id (upserts may match on it).
    pub external_id: bool,
    /// Usable to find records (`Id`, `Email`, `Name`, external ids).
    pub id_lookup: bool,
    /// No two records hold one value.
    pub unique: bool,
    /// The active picklist values.
    pub picklist_values: Vec<String>,
    /// Only the picklist's values are accepted.
    pub restricted_picklist: bool,
    /// The objects a lookup points to.
    pub reference_to: Vec<String>,
}

impl Field {
    /// Salesforce requires a value on create: not nillable, not defaulted, createable (the
    /// rule describe-based tools use; system fields are not createable).
    pub fn is_required_on_create(&self) -> bool {
        !self.nillable && !self.defaulted_on_create && self.createable && self.r#type != "boolean"
    }

    fn parse(value: &Value) -> Option<Self> {
        let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default();
        let flag = |key: &str| value.get(key).and_then(Value::as_bool).unwrap_or(false);
        let name = text("name");
        if name.is_empty() {
            return None;
        }
        let strings = |key: &str| -> Vec<String> {
            value
                .get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(Self {
            name: name.to_string(),
            label: text("label").to_string(),
            r#type: text("type").to_string(),
            length: value.get("length").and_then(Value::as_u64).unwrap_or(0) as usize,
            nillable: flag("nillable"),
            createable: flag("createable"),
            updateable: flag("updateable"),
            defaulted_on_create: flag("defaultedOnCreate"),
            external_id: flag("externalId"),
            id_lookup: flag("idLookup"),
            unique: flag("unique"),
            picklist_values: value
                .get("picklistValues")
                .and_then(Value::as_array)
                .map(|values| {
                    values
                        .iter()
                        .filter(|v| v.get("active").and_then(Value::as_bool) != Some(false))
                        .filter_map(|v| v.get("value").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            restricted_picklist: flag("restrictedPicklist"),
            reference_to: strings("referenceTo"),
        })
    }
}

/// An object's describe (FACTS D1), with what the connector uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Describe {
    /// The object's API name as Salesforce spells it.
    pub name: String,
    /// Its id prefix (`003`), empty when it has none.
    pub key_prefix: String,
    /// Records may be created.
    pub createable: bool,
    /// Records may be updated.
    pub updateable: bool,
    /// Records may be deleted.
    pub deletable: bool,
    /// Every field, in describe order.
    pub fields: Vec<Field>,
}

impl Describe {
    /// The field with exactly this API name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Reads a describe body; `None` when it is not one.
    pub(crate) fn parse(body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default();
        let flag = |key: &str| value.get(key).and_then(Value::as_bool).unwrap_or(false);
        let name = text("name");
        if name.is_empty() {
            return None;
        }
        Some(Self {
            name: name.to_string(),
            key_prefix: text("keyPrefix").to_string(),
            createable: flag("createable"),
            updateable: flag("updateable"),
            deletable: flag("deletable"),
            fields: value
                .get("fields")
                .and_then(Value::as_array)
                .map(|f| f.iter().filter_map(Field::parse).collect())
                .unwrap_or_default(),
        })
    }
}

/// One object of the describe global.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GlobalObject {
    /// The API name.
    pub name: String,
    /// The label.
    pub label: String,
    /// The id prefix, empty when it has none.
    pub key_prefix: String,
}

/// Reads the describe global's `sobjects`.
pub(crate) fn parse_global(body: &[u8]) -> Option<Vec<GlobalObject>> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let objects = value.get("sobjects")?.as_array()?;
    Some(
        objects
            .iter()
            .filter_map(|o| {
                let text = |key: &str| o.get(key).and_then(Value::as_str).unwrap_or_default();
                (!text("name").is_empty()).then(|| GlobalObject {
                    name: text("name").to_string(),
                    label: text("label").to_string(),
                    key_prefix: text("keyPrefix").to_string(),
                })
            })
            .collect(),
    )
}

/// The object is not in the org (or not visible to the user): names near ones.
pub fn unknown_object(object: &str, objects: &[GlobalObject]) -> Diagnostic {
    let mut diagnostic = Diagnostic::error(
        "salesforce::unknown_object",
        format!("Salesforce has no object `{object}` the connected user can see"),
    );
    if let Some(by_label) = objects
        .iter()
        .find(|o| o.label.eq_ignore_ascii_case(object))
    {
        diagnostic = diagnostic.hint(format!(
            "`{object}` is the label of `{}`; the API uses API names",
            by_label.name
        ));
    } else if let Some(near) =
        engine_diag::did_you_mean(object, objects.iter().map(|o| o.name.as_str()))
    {
        diagnostic = diagnostic.hint(format!("did you mean `{near}`?"));
    }
    diagnostic
        .hint("custom objects end in `__c` (`ThankView__c`); check the name under Setup → Object Manager")
        .hint("if it exists, give the connected user access to it in a profile or permission set")
}

/// Checks a sync's mapped fields against the object's describe and returns each field's
/// kind, in mapping order; or every problem found.
///
/// - every field exists under its exact API name (did-you-mean from near names, labels and
///   unmapped custom fields: `Constituent__c` → `Contact__c`);
/// - it is createable (insert, upsert) and updateable (update, upsert);
/// - for modes that create, required fields without a mapping are listed by name;
/// - the external-id field exists and is an external id (or `Id` for updates).
///
/// `prefixes` gives the key prefix of a lookup's target object (from the describe global).
pub fn check_mapping(
    describe: &Describe,
    mapped: &[String],
    mode: WriteMode,
    external_id: Option<&str>,
    prefixes: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<FieldKind>, Vec<Diagnostic>> {
    let object = &describe.name;
    let mut problems = Vec::new();
    let mut kinds = Vec::new();
    let mut seen = BTreeSet::new();
    for name in mapped {
        let Some(field) = describe.field(name) else {
            problems.push(unknown_field(describe, name, mapped));
            continue;
        };
        kinds.push(FieldKind::of(field, prefixes));
        if !seen.insert(name.as_str()) {
            continue;
        }
        if mode.creates() && !field.createable {
            problems.push(
                Diagnostic::error(
                    "salesforce::not_createable",
                    format!("the `{object}` field `{name}` cannot be set when a record is created"),
                )
                .note("describe says it is not `createable`: a system or formula field, or the user lacks field-level edit access")
                .hint(format!("remove `{name}` from the mapping, or ask your admin for edit access to it")),
            );
        } else if mode.updates() && !field.updateable && Some(name.as_str()) != external_id {
            problems.push(
                Diagnostic::error(
                    "salesforce::not_updateable",
                    format!(
                        "the `{object}` field `{name}` cannot be changed on an existing record"
                    ),
                )
                .note("describe says it is not `updateable`")
                .hint(format!(
                    "remove `{name}` from the mapping, or use `mode: insert`"
                )),
            );
        }
    }
    if let Some(ext) = external_id {
        match describe.field(ext) {
            None => problems.push(unknown_field(describe, ext, mapped)),
            Some(_) if ext == "Id" => {
                if mode != WriteMode::Update {
                    problems.push(
                        Diagnostic::error(
                            "salesforce::not_external_id",
                            format!("a sync that matches `{object}` records on `Id` can only update them"),
                        )
                        .note("Salesforce gives a record its id when it creates it")
                        .hint("use `mode: update`, or match on an external-id field"),
                    );
                }
            }
            Some(field)
                if !(field.external_id || (mode == WriteMode::Update && field.id_lookup)) =>
            {
                let candidates: Vec<String> = describe
                    .fields
                    .iter()
                    .filter(|f| f.external_id)
                    .map(|f| format!("`{}`", f.name))
                    .collect();
                let hint = if candidates.is_empty() {
                    format!("mark a field of `{object}` as External ID in Setup and match on it")
                } else {
                    format!("match on an external-id field: {}", candidates.join(", "))
                };
                problems.push(
                    Diagnostic::error(
                        "salesforce::not_external_id",
                        format!("the `{object}` field `{ext}` is not an external id, so records cannot be matched on it"),
                    )
                    .hint(hint),
                );
            }
            Some(_) => {}
        }
    }
    if mode.creates() {
        let missing: Vec<&str> = describe
            .fields
            .iter()
            .filter(|f| f.is_required_on_create())
            .filter(|f| !mapped.contains(&f.name) && Some(f.name.as_str()) != external_id)
            .map(|f| f.name.as_str())
            .collect();
        if !missing.is_empty() {
            let listed: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
            problems.push(
                Diagnostic::error(
                    "salesforce::required_field_missing",
                    format!(
                        "`{object}` requires {} on create, and the mapping sets none of {}",
                        listed.join(", "),
                        if missing.len() == 1 { "it" } else { "them" }
                    ),
                )
                .hint("map a value to each required field")
                .hint("or ask your Salesforce admin to make the field optional"),
            );
        }
    }
    if problems.is_empty() {
        Ok(kinds)
    } else {
        Err(problems)
    }
}

fn unknown_field(describe: &Describe, name: &str, mapped: &[String]) -> Diagnostic {
    let object = &describe.name;
    let diagnostic = Diagnostic::error(
        "salesforce::unknown_field",
        format!("the Salesforce object `{object}` has no field `{name}`"),
    );
    let hint = if let Some(field) = describe
        .fields
        .iter()
        .find(|f| f.label.eq_ignore_ascii_case(name) && f.name != name)
    {
        format!(
            "`{name}` is the label of `{}`; the API uses API names",
            field.name
        )
    } else if let Some(near) = suggestion(describe, name, mapped) {
        format!("did you mean `{near}`?")
    } else {
        "use the field's API name as Setup → Object Manager → Fields lists it (custom fields end in `__c`)".to_string()
    };
    diagnostic.hint(hint).hint(
        "if the field was renamed or deleted in Salesforce, update or remove it in the mapping",
    )
}

/// A near field name: a typo (`did_you_mean`), else the closest field of the same kind
/// (custom or standard) that the mapping does not use, when close enough: a renamed field
/// (`Constituent__c` for `Contact__c`) usually stands where the original was.
fn suggestion<'a>(describe: &'a Describe, name: &str, mapped: &[String]) -> Option<&'a str> {
    if let Some(near) =
        engine_diag::did_you_mean(name, describe.fields.iter().map(|f| f.name.as_str()))
    {
        return Some(near);
    }
    let custom = name.ends_with("__c");
    describe
        .fields
        .iter()
        .filter(|f| f.name.ends_with("__c") == custom && !mapped.contains(&f.name))
        .map(|f| {
            (
                strsim::jaro_winkler(&name.to_lowercase(), &f.name.to_lowercase()),
                f,
            )
        })
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, f)| f.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, kind: &str) -> Field {
        Field {
            name: name.into(),
            label: name.trim_end_matches("__c").replace('_', " "),
            r#type: kind.into(),
            nillable: true,
            createable: true,
            updateable: true,
            ..Field::default()
        }
    }

    fn thankview() -> Describe {
        let mut name = field("Name", "string");
        name.nillable = false;
        let mut id = field("Id", "id");
        id.createable = false;
        id.updateable = false;
        id.nillable = false;
        id.id_lookup = true;
        let mut created = field("CreatedDate", "datetime");
        created.createable = false;
        created.updateable = false;
        created.nillable = false;
        let mut ext = field("Send_Id__c", "string");
        ext.external_id = true;
        let mut contact = field("Contact__c", "reference");
        contact.reference_to = vec!["Contact".into()];
        Describe {
            name: "ThankView__c".into(),
            key_prefix: "a00".into(),
            createable: true,
            updateable: true,
            deletable: true,
            fields: vec![
                id,
                name,
                created,
                ext,
                contact,
                field("Lead__c", "reference"),
                field("Opened__c", "boolean"),
                field("Event_Name__c", "string"),
            ],
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn prefixes(object: &str) -> Option<String> {
        (object == "Contact").then(|| "003".to_string())
    }

    #[test]
    fn a_good_mapping_gives_each_fields_kind() {
        let kinds = check_mapping(
            &thankview(),
            &names(&["Name", "Contact__c", "Opened__c"]),
            WriteMode::Upsert,
            Some("Send_Id__c"),
            &prefixes,
        )
        .expect("valid");
        assert_eq!(
            kinds[1],
            FieldKind::Reference {
                targets: vec![("Contact".into(), "003".into())]
            }
        );
        assert_eq!(kinds[2], FieldKind::Boolean);
    }

    #[test]
    fn a_renamed_field_suggests_the_unmapped_one() {
        let problems = check_mapping(
            &thankview(),
            &names(&[
                "Name",
                "Constituent__c",
                "Lead__c",
                "Opened__c",
                "Event_Name__c",
            ]),
            WriteMode::Upsert,
            Some("Send_Id__c"),
            &prefixes,
        )
        .expect_err("unknown");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, "salesforce::unknown_field");
        assert_eq!(problems[0].hints[0], "did you mean `Contact__c`?");
        let typo = check_mapping(
            &thankview(),
            &names(&["Name", "Opend__c"]),
            WriteMode::Insert,
            None,
            &prefixes,
        )
        .expect_err("typo");
        assert_eq!(typo[0].hints[0], "did you mean `Opened__c`?");
        let label = check_mapping(
            &thankview(),
            &names(&["Name", "Event Name"]),
            WriteMode::Insert,
            None,
            &prefixes,
        )
        .expect_err("label");
        assert!(label[0].hints[0].contains("is the label of `Event_Name__c`"));
    }

    #[test]
    fn required_and_read_only_fields_are_named() {
        let problems = check_mapping(
            &thankview(),
            &names(&["CreatedDate"]),
            WriteMode::Insert,
            None,
            &prefixes,
        )
        .expect_err("problems");
        let codes: Vec<&str> = problems.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "salesforce::not_createable",
                "salesforce::required_field_missing"
            ]
        );
        assert!(
            problems[1].message.contains("requires `Name`"),
            "{}",
            problems[1].message
        );
        // An update needs no required field, but an updateable one.
        let update = check_mapping(
            &thankview(),
            &names(&["Opened__c"]),
            WriteMode::Update,
            Some("Id"),
            &prefixes,
        );
        assert!(update.is_ok());
        let not_ext = check_mapping(
            &thankview(),
            &names(&["Name"]),
            WriteMode::Upsert,
            Some("Event_Name__c"),
            &prefixes,
        )
        .expect_err("not ext");
        assert_eq!(not_ext[0].code, "salesforce::not_external_id");
        assert!(not_ext[0].hints[0].contains("`Send_Id__c`"));
    }

    #[test]
    fn unknown_objects_suggest_near_names() {
        let objects = vec![
            GlobalObject {
                name: "ThankView__c".into(),
                label: "ThankView".into(),
                key_prefix: "a00".into(),
            },
            GlobalObject {
                name: "Contact".into(),
                label: "Contact".into(),
                key_prefix: "003".into(),
            },
        ];
        let d = unknown_object("Thankview_c", &objects);
        assert_eq!(d.hints[0], "did you mean `ThankView__c`?");
        let d = unknown_object("ThankView", &objects);
        assert!(d.hints[0].contains("is the label of `ThankView__c`"));
    }

    #[test]
    fn describe_bodies_are_read_leniently() {
        let body = br#"{"name":"Lead","keyPrefix":"00Q","createable":true,"fields":[
            {"name":"Status","type":"picklist","restrictedPicklist":true,"nillable":false,"createable":true,"defaultedOnCreate":true,
             "picklistValues":[{"value":"Open","active":true},{"value":"Old","active":false}]},
            {"type":"string"}]}"#;
        let describe = Describe::parse(body).expect("a describe");
        assert_eq!(describe.fields.len(), 1);
        assert_eq!(describe.fields[0].picklist_values, ["Open"]);
        assert!(!describe.fields[0].is_required_on_create());
        assert!(Describe::parse(b"[]").is_none());
        let global =
            parse_global(br#"{"sobjects":[{"name":"Contact","keyPrefix":"003"},{"label":"x"}]}"#)
                .expect("global");
        assert_eq!(global.len(), 1);
    }
}
