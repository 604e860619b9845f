//! Turning a record as sent (a JSON object, or a row of a Bulk CSV) into checked values, with
//! the errors Salesforce gives.
//!
//! Two stages, because Salesforce fails them differently:
//! 1. **Decode** ([`decode_json`], [`decode_cell`]): the field must exist and the value must
//!    fit its type. In JSON this is deserialization, so a failure refuses the whole request:
//!    400 `INVALID_FIELD` "No such column 'X' on sobject of type Contact" or 400
//!    `JSON_PARSER_ERROR` "Cannot deserialize instance of date from VALUE_STRING value …"
//!    (FACTS E4). In a Bulk row it fails that row only (`INVALID_FIELD` /
//!    `INVALID_TYPE_ON_FIELD_IN_RECORD`).
//! 2. **Check** ([`check`]): the save rules, each a per-record error (FACTS E3, E4) —
//!    `INVALID_FIELD_FOR_INSERT_UPDATE`, `STRING_TOO_LONG`, `INVALID_EMAIL_ADDRESS`,
//!    `INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST` (case-sensitive), references (`MALFORMED_ID`
//!    for a malformed id or one of the wrong object, `INVALID_CROSS_REFERENCE_KEY` for a
//!    missing record), `REQUIRED_FIELD_MISSING` with `fields`, `DUPLICATE_VALUE`.
//!
//! FACTS names the codes but not every message; where it is silent the messages are the ones
//! Salesforce's API writes for these codes (`"Email: invalid email address: x"`,
//! `"Last Name: data value too large: … (max length=80)"`), so a connector that shows the
//! destination's message shows a realistic one.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value, json};

use crate::errors::{ApiError, RecordError, code};
use crate::ids;
use crate::schema::{FieldDef, FieldType, ObjectDef};
use crate::store::{ObjectKey, Record, Store};

/// One decoded field of a record.
#[derive(Clone, Debug)]
pub(crate) enum Entry {
    /// A value for a field (`null` clears it).
    Set(String, Value),
    /// A reference given by the target's external id (`"Account": {"Ext__c": "A-1"}`, or the
    /// Bulk column `Account.Ext__c`).
    ByExternalId {
        field: String,
        target: ObjectKey,
        ext_field: String,
        value: Value,
    },
}

/// A decoded record: its entries in the order sent.
#[derive(Clone, Debug, Default)]
pub(crate) struct Draft {
    pub(crate) entries: Vec<Entry>,
}

impl Draft {
    /// The value given for `field`, if any (not for relationship entries).
    pub(crate) fn get(&self, field: &str) -> Option<&Value> {
        self.entries.iter().find_map(|e| match e {
            Entry::Set(name, value) if name == field => Some(value),
            _ => None,
        })
    }

    /// Removes the entry for `field` and returns its value.
    pub(crate) fn take(&mut self, field: &str) -> Option<Value> {
        let at = self
            .entries
            .iter()
            .position(|e| matches!(e, Entry::Set(name, _) if name == field))?;
        match self.entries.remove(at) {
            Entry::Set(_, value) => Some(value),
            Entry::ByExternalId { .. } => None,
        }
    }
}

/// Jackson's name for the JSON token a value starts with (for `JSON_PARSER_ERROR`).
fn token(value: &Value) -> &'static str {
    match value {
        Value::Null => "VALUE_NULL",
        Value::Bool(true) => "VALUE_TRUE",
        Value::Bool(false) => "VALUE_FALSE",
        Value::Number(n) if n.is_f64() => "VALUE_NUMBER_FLOAT",
        Value::Number(_) => "VALUE_NUMBER_INT",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A datetime in any form Salesforce accepts, in the form it writes.
pub(crate) fn parse_datetime(text: &str) -> Option<String> {
    let parsed = DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()?;
    Some(crate::store::format_datetime(parsed.with_timezone(&Utc)))
}

/// Decodes one value for `field`, or says why it does not fit (the value as shown).
fn decode_value(field: &FieldDef, value: &Value) -> Result<Value, ()> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let text = value.as_str();
    match field.kind {
        FieldType::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(json!(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(json!(false)),
            _ => Err(()),
        },
        FieldType::Int => match value {
            Value::Number(n) if n.is_i64() => Ok(value.clone()),
            Value::String(s) => s.trim().parse::<i64>().map(|n| json!(n)).map_err(|_| ()),
            _ => Err(()),
        },
        FieldType::Double | FieldType::Currency | FieldType::Percent => match value {
            Value::Number(_) => Ok(value.clone()),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| json!(f))
                .ok_or(()),
            _ => Err(()),
        },
        FieldType::Date => text
            .and_then(|t| NaiveDate::parse_from_str(t, "%Y-%m-%d").ok())
            .map(|d| json!(d.format("%Y-%m-%d").to_string()))
            .ok_or(()),
        FieldType::DateTime => text.and_then(parse_datetime).map(Value::String).ok_or(()),
        FieldType::Id | FieldType::Reference => text.map(|t| json!(t)).ok_or(()),
        _ => match value {
            Value::String(_) => Ok(value.clone()),
            Value::Number(n) => Ok(json!(n.to_string())),
            Value::Bool(b) => Ok(json!(b.to_string())),
            _ => Err(()),
        },
    }
}

/// `No such column 'X' on sobject of type Contact` (FACTS E4).
fn no_such_column(def: &ObjectDef, name: &str) -> String {
    format!("No such column '{name}' on sobject of type {}", def.name)
}

/// The Jackson-style type name Salesforce's parser names.
fn jackson_type(kind: FieldType) -> &'static str {
    match kind {
        FieldType::Boolean => "boolean",
        FieldType::Int => "int",
        FieldType::Double | FieldType::Currency | FieldType::Percent => "double",
        FieldType::Date => "date",
        FieldType::DateTime => "datetime",
        _ => "string",
    }
}

/// Decodes a JSON record body. `skip` names keys handled by the caller (`attributes`, and
/// `id` in Collections updates). A failure refuses the whole request.
pub(crate) fn decode_json(
    store: &Store,
    key: ObjectKey,
    body: &Map<String, Value>,
    skip: &[&str],
) -> Result<Draft, ApiError> {
    let def = store.def(key);
    let mut draft = Draft::default();
    for (name, value) in body {
        if skip.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            continue;
        }
        if let Value::Object(inner) = value
            && let Some(reference) = def.relationship(name)
        {
            draft
                .entries
                .push(relationship_entry(store, def, reference, inner)?);
            continue;
        }
        let field = def
            .field(name)
            .ok_or_else(|| ApiError::bad_request(code::INVALID_FIELD, no_such_column(def, name)))?;
        let decoded = decode_value(field, value).map_err(|()| {
            ApiError::bad_request(
                code::JSON_PARSER_ERROR,
                format!(
                    "Cannot deserialize instance of {} from {} value {} or request may be missing a required field",
                    jackson_type(field.kind),
                    token(value),
                    shown(value)
                ),
            )
        })?;
        draft.entries.push(Entry::Set(field.name.clone(), decoded));
    }
    Ok(draft)
}

/// `"Account": {"Ext__c": "A-1"}`: a reference by the target's external id.
fn relationship_entry(
    store: &Store,
    def: &ObjectDef,
    reference: &FieldDef,
    inner: &Map<String, Value>,
) -> Result<Entry, ApiError> {
    let target = reference
        .reference_to
        .first()
        .and_then(|t| store.object(t))
        .ok_or_else(|| {
            ApiError::bad_request(code::INVALID_FIELD, no_such_column(def, &reference.name))
        })?;
    let target_def = store.def(target);
    let given: Vec<(&String, &Value)> = inner
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("attributes"))
        .collect();
    let [(ext_name, value)] = given.as_slice() else {
        return Err(ApiError::bad_request(
            code::INVALID_FIELD,
            format!(
                "A foreign key reference to {} must name exactly one external id field",
                target_def.name
            ),
        ));
    };
    let ext = target_def
        .field(ext_name)
        .filter(|f| f.is_indexed())
        .ok_or_else(|| {
            ApiError::bad_request(
                code::INVALID_FIELD,
                format!(
                    "Field name provided, {ext_name} is not an External ID or indexed field for {}",
                    target_def.name
                ),
            )
        })?;
    Ok(Entry::ByExternalId {
        field: reference.name.clone(),
        target,
        ext_field: ext.name.clone(),
        value: (*value).clone(),
    })
}

/// Decodes one Bulk CSV cell of `column`; `Ok(None)` for an empty cell (left unchanged,
/// FACTS B5). `#N/A` is `null` (B5).
pub(crate) fn decode_cell(
    store: &Store,
    key: ObjectKey,
    column: &str,
    cell: &str,
) -> Result<Option<Entry>, RecordError> {
    if cell.is_empty() {
        return Ok(None);
    }
    let def = store.def(key);
    if let Some((relationship, ext_name)) = column.split_once('.') {
        let mut inner = Map::new();
        inner.insert(ext_name.to_owned(), json!(cell));
        let reference = def
            .relationship(relationship)
            .ok_or_else(|| RecordError::new(code::INVALID_FIELD, no_such_column(def, column)))?;
        return relationship_entry(store, def, reference, &inner)
            .map(Some)
            .map_err(|e| {
                RecordError::new(
                    e.first_code(),
                    format!("Invalid relationship column {column}"),
                )
            });
    }
    let field = def
        .field(column)
        .ok_or_else(|| RecordError::new(code::INVALID_FIELD, no_such_column(def, column)))?;
    if cell == "#N/A" {
        return Ok(Some(Entry::Set(field.name.clone(), Value::Null)));
    }
    let value = match field.kind {
        FieldType::Boolean => match cell.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => json!(true),
            "false" | "0" | "no" => json!(false),
            _ => Value::Null,
        },
        _ => json!(cell),
    };
    decode_value(field, &value)
        .ok()
        .filter(|v| !v.is_null())
        .map(|v| Some(Entry::Set(field.name.clone(), v)))
        .ok_or_else(|| {
            RecordError::new(
                code::INVALID_TYPE_ON_FIELD_IN_RECORD,
                format!("{}: value not of required type: {cell}", field.label),
            )
            .on(&[&field.name])
        })
}

/// A write's mode: a create, or an update of this record.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode<'a> {
    Create,
    Update(&'a Record),
}

/// Whether `text` looks like an email address Salesforce accepts.
fn valid_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !text.contains(char::is_whitespace)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
}

/// Checks a reference id for `field`: its 18-character form, or the error.
fn check_reference(store: &Store, field: &FieldDef, text: &str) -> Result<String, RecordError> {
    let incorrect = || {
        RecordError::new(
            code::MALFORMED_ID,
            format!("{}: id value of incorrect type: {text}", field.label),
        )
        .on(&[&field.name])
    };
    let id = ids::normalize(text).ok_or_else(incorrect)?;
    let target = store.object_of_id(&id).ok_or_else(incorrect)?;
    if !field
        .reference_to
        .iter()
        .any(|t| t.eq_ignore_ascii_case(&store.def(target).name))
    {
        return Err(incorrect());
    }
    if store.table(target).get(&id).is_none() {
        return Err(RecordError::new(
            code::INVALID_CROSS_REFERENCE_KEY,
            "invalid cross reference id",
        )
        .on(&[&field.name]));
    }
    Ok(id)
}

/// Checks one value against its field's save rules.
fn check_value(store: &Store, field: &FieldDef, value: Value) -> Result<Value, RecordError> {
    let Value::String(text) = &value else {
        return Ok(value);
    };
    if field.kind.is_text() && text.chars().count() > field.length as usize {
        return Err(RecordError::new(
            code::STRING_TOO_LONG,
            format!(
                "{}: data value too large: {text} (max length={})",
                field.label, field.length
            ),
        )
        .on(&[&field.name]));
    }
    match field.kind {
        FieldType::Email if !valid_email(text) => Err(RecordError::new(
            code::INVALID_EMAIL_ADDRESS,
            format!("{}: invalid email address: {text}", field.label),
        )
        .on(&[&field.name])),
        FieldType::Picklist | FieldType::MultiPicklist if field.restricted => {
            let values: Vec<&str> = if field.kind == FieldType::MultiPicklist {
                text.split(';').collect()
            } else {
                vec![text.as_str()]
            };
            match values
                .iter()
                .find(|v| !field.picklist.iter().any(|p| p == *v))
            {
                Some(bad) => Err(RecordError::new(
                    code::RESTRICTED_PICKLIST,
                    format!("bad value for restricted picklist field: {bad}"),
                )
                .on(&[&field.name])),
                None => Ok(value),
            }
        }
        FieldType::Reference => check_reference(store, field, text).map(Value::String),
        _ => Ok(value),
    }
}

/// Applies the save rules to a decoded record; answers the values to store (for a create,
/// with defaults) or the error of the record.
pub(crate) fn check(
    store: &Store,
    key: ObjectKey,
    draft: Draft,
    mode: Mode<'_>,
) -> Result<Vec<(String, Value)>, RecordError> {
    let def = store.def(key);
    let create = matches!(mode, Mode::Create);
    let mut values: Vec<(String, Value)> = Vec::new();
    let mut refused: Vec<&str> = Vec::new();
    for entry in &draft.entries {
        let name = match entry {
            Entry::Set(name, _) | Entry::ByExternalId { field: name, .. } => name,
        };
        let Some(field) = def.field(name) else {
            continue;
        };
        if (create && !field.createable) || (!create && !field.updateable) {
            refused.push(&field.name);
        }
    }
    if !refused.is_empty() {
        return Err(RecordError::new(
            code::INVALID_FIELD_FOR_INSERT_UPDATE,
            format!(
                "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                refused.join(", ")
            ),
        )
        .on(&refused));
    }
    for entry in draft.entries {
        let (name, value) = match entry {
            Entry::Set(name, value) => (name, value),
            Entry::ByExternalId {
                field,
                target,
                ext_field,
                value,
            } => {
                let matches = store.table(target).lookup(&ext_field, &value);
                let target_name = &store.def(target).name;
                match matches.as_slice() {
                    [one] => (field, json!(one.id)),
                    [] => {
                        return Err(RecordError::new(
                            code::INVALID_FIELD,
                            format!("Foreign key external ID: {} not found for field {ext_field} in entity {target_name}", shown(&value)),
                        )
                        .on(&[&field]));
                    }
                    _ => {
                        return Err(RecordError::new(
                            code::INVALID_FIELD,
                            format!("Foreign key external ID: {} matched more than one record for field {ext_field} in entity {target_name}", shown(&value)),
                        )
                        .on(&[&field]));
                    }
                }
            }
        };
        let Some(field) = def.field(&name) else {
            continue;
        };
        let checked = check_value(store, field, value)?;
        values.retain(|(n, _)| n != &name);
        values.push((name, checked));
    }
    if create {
        for field in &def.fields {
            if field.createable
                && let Some(default) = &field.default
                && !default.is_null()
                && !values.iter().any(|(n, _)| n == &field.name)
            {
                values.push((field.name.clone(), default.clone()));
            }
        }
    }
    let missing: Vec<&str> = def
        .fields
        .iter()
        .filter(|f| !f.nillable && f.createable)
        .filter(|f| {
            let given = values.iter().find(|(n, _)| n == &f.name).map(|(_, v)| v);
            match (mode, given) {
                (_, Some(v)) => v.is_null() || v.as_str() == Some(""),
                (Mode::Create, None) => !f.defaulted_on_create,
                (Mode::Update(_), None) => false,
            }
        })
        .map(|f| f.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(RecordError::new(
            code::REQUIRED_FIELD_MISSING,
            format!("Required fields are missing: [{}]", missing.join(", ")),
        )
        .on(&missing));
    }
    let own_id = match mode {
        Mode::Update(record) => Some(record.id.as_str()),
        Mode::Create => None,
    };
    for (name, value) in &values {
        let Some(field) = def.field(name) else {
            continue;
        };
        if field.unique
            && let Some(other) = store
                .table(key)
                .lookup(name, value)
                .into_iter()
                .find(|r| Some(r.id.as_str()) != own_id)
        {
            return Err(RecordError::new(
                code::DUPLICATE_VALUE,
                format!(
                    "duplicate value found: {name} duplicates value on record with id: {}",
                    other.id
                ),
            ));
        }
    }
    if create {
        values.retain(|(_, v)| !v.is_null());
    }
    Ok(values)
}

/// The values of a create as the store keeps them.
pub(crate) fn into_map(values: Vec<(String, Value)>) -> HashMap<String, Value> {
    values.into_iter().filter(|(_, v)| !v.is_null()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(store: &Store) -> ObjectKey {
        store.object("Contact").unwrap_or_default()
    }

    fn draft(store: &Store, body: Value) -> Result<Draft, ApiError> {
        let map = body.as_object().cloned().unwrap_or_default();
        decode_json(store, contact(store), &map, &["attributes"])
    }

    #[test]
    fn decoding_refuses_unknown_fields_and_wrong_types() {
        let store = Store::new("u@example.com");
        let unknown = draft(&store, json!({"Foo__c": 1})).err();
        assert_eq!(unknown.map(|e| e.first_code()), Some(code::INVALID_FIELD));
        let wrong = draft(&store, json!({"Birthdate": "soon"})).err();
        assert_eq!(wrong.map(|e| e.first_code()), Some(code::JSON_PARSER_ERROR));
        assert!(
            draft(
                &store,
                json!({"lastname": "Smith", "Birthdate": "1990-02-03"})
            )
            .is_ok()
        );
    }

    #[test]
    fn save_rules_give_salesforce_codes() {
        let store = Store::new("u@example.com");
        let key = contact(&store);
        let check_one = |body: Value| {
            draft(&store, body)
                .map_err(|e| e.first_code())
                .and_then(|d| check(&store, key, d, Mode::Create).map_err(|e| e.code))
        };
        assert_eq!(
            check_one(json!({"Email": "a@b.co"})).err(),
            Some(code::REQUIRED_FIELD_MISSING)
        );
        assert_eq!(
            check_one(json!({"LastName": "x", "Email": "nope"})).err(),
            Some(code::INVALID_EMAIL_ADDRESS)
        );
        assert_eq!(
            check_one(json!({"LastName": "x".repeat(81)})).err(),
            Some(code::STRING_TOO_LONG)
        );
        assert_eq!(
            check_one(json!({"LastName": "x", "Name": "y"})).err(),
            Some(code::INVALID_FIELD_FOR_INSERT_UPDATE)
        );
        assert_eq!(
            check_one(json!({"LastName": "x", "AccountId": "garbage"})).err(),
            Some(code::MALFORMED_ID)
        );
        assert_eq!(
            check_one(json!({"LastName": "x", "AccountId": "003D0000001aH2A"})).err(),
            Some(code::MALFORMED_ID)
        );
        assert_eq!(
            check_one(json!({"LastName": "x", "AccountId": "001D0000001aH2A"})).err(),
            Some(code::INVALID_CROSS_REFERENCE_KEY)
        );
        assert!(check_one(json!({"LastName": "x", "Email": "ann@example.com"})).is_ok());
    }

    #[test]
    fn restricted_picklists_are_case_sensitive() {
        let store = Store::new("u@example.com");
        let lead = store.object("Lead").unwrap_or_default();
        let run = |status: &str| {
            let map = json!({"LastName": "x", "Company": "y", "Status": status});
            let d = decode_json(&store, lead, map.as_object().unwrap_or(&Map::new()), &[]);
            d.map_err(|e| e.first_code())
                .and_then(|d| check(&store, lead, d, Mode::Create).map_err(|e| e.code))
        };
        assert!(run("Working - Contacted").is_ok());
        assert_eq!(
            run("working - contacted").err(),
            Some(code::RESTRICTED_PICKLIST)
        );
    }

    #[test]
    fn cells_follow_bulk_rules() {
        let store = Store::new("u@example.com");
        let key = contact(&store);
        assert!(matches!(decode_cell(&store, key, "Email", ""), Ok(None)));
        assert!(matches!(
            decode_cell(&store, key, "Email", "#N/A"),
            Ok(Some(Entry::Set(_, Value::Null)))
        ));
        let bad = decode_cell(&store, key, "Birthdate", "31/12/1990").err();
        assert_eq!(
            bad.map(|e| e.code),
            Some(code::INVALID_TYPE_ON_FIELD_IN_RECORD)
        );
        assert_eq!(
            parse_datetime("2024-01-01T10:00:00Z").as_deref(),
            Some("2024-01-01T10:00:00.000+0000")
        );
    }
}
