//! Batch upsert, update and read over the store: the rules HubSpot applies to a batch.
//!
//! Two levels of refusal, as on the real API:
//! - the whole batch (400 `Error`): too many inputs, a non-string property value, an
//!   `idProperty` that is not unique (FACTS U2), the same id twice in one batch (FACTS U3);
//! - one input (a `StandardError` in a 207, FACTS E6): invalid property values (E5), an
//!   unknown record (`OBJECT_NOT_FOUND`), a unique value another record holds (`CONFLICT`).
//!
//! Good inputs of a partly failing batch are applied. Everything here is pure over `&mut Store`;
//! the routes parse, lock and answer.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::errors::{ApiError, ErrorDetail, InputError, category};
use crate::record::{Selection, iso};
use crate::registry::{ObjectDef, ObjectType};
use crate::required;
use crate::store::Store;
use crate::validate::{self, PropertyError};

/// The record id used as `idProperty` when an input names none.
const RECORD_ID: &str = "hs_object_id";

/// `BatchInputSimplePublicObjectBatchInputUpsert` / `BatchInputSimplePublicObjectBatchInput`.
#[derive(Debug, Deserialize)]
pub(crate) struct WriteBody {
    pub(crate) inputs: Vec<WriteInput>,
}

/// One upsert or update input. Property values stay JSON values until [`check_writes`] has
/// refused the non-string ones with a message that names them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WriteInput {
    id: String,
    #[serde(default)]
    id_property: Option<String>,
    properties: Map<String, Value>,
    #[serde(default)]
    object_write_trace_id: Option<String>,
}

/// A write input that passed the batch-level checks.
#[derive(Debug)]
pub(crate) struct Write {
    id: String,
    id_property: String,
    values: BTreeMap<String, String>,
    trace: Option<String>,
}

/// `BatchReadInputSimplePublicObjectId` (`properties` and `propertiesWithHistory` default to
/// empty, as the live API allows).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReadBody {
    inputs: Vec<ReadInput>,
    #[serde(default)]
    properties: Vec<String>,
    #[serde(default)]
    id_property: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ReadInput {
    id: String,
}

/// What a batch produced: one result per good input, one error per failed input.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) results: Vec<Value>,
    pub(crate) errors: Vec<InputError>,
}

impl Outcome {
    /// [`Outcome::into_wire`] of a copy, for tests that look at the outcome afterwards.
    #[cfg(test)]
    pub(crate) fn to_wire(&self, started_at: DateTime<Utc>) -> (StatusCode, Value) {
        Outcome {
            results: self.results.clone(),
            errors: self.errors.clone(),
        }
        .into_wire(started_at)
    }

    /// 200 with `BatchResponse…`, or 207 with `BatchResponse…WithErrors` when an input failed.
    /// The results move into the body rather than being copied.
    pub(crate) fn into_wire(self, started_at: DateTime<Utc>) -> (StatusCode, Value) {
        self.into_wire_with(StatusCode::OK, started_at)
    }

    /// [`Outcome::into_wire`] with another success status (201 for creates).
    pub(crate) fn into_wire_with(
        self,
        ok: StatusCode,
        started_at: DateTime<Utc>,
    ) -> (StatusCode, Value) {
        let mut body = json!({
            "status": "COMPLETE",
            "results": null,
            "startedAt": iso(started_at),
            "completedAt": iso(Utc::now()),
        });
        body["results"] = Value::Array(self.results);
        if self.errors.is_empty() {
            return (ok, body);
        }
        body["numErrors"] = json!(self.errors.len());
        body["errors"] = self.errors.iter().map(InputError::to_json).collect();
        (StatusCode::MULTI_STATUS, body)
    }
}

/// The 400 for a batch over the limit (FACTS B1).
pub(crate) fn too_many(count: usize, max: usize) -> ApiError {
    ApiError::validation(format!(
        "Too many inputs in one batch: got {count}, the limit is {max} inputs per request"
    ))
    .context("limit", vec![max.to_string()])
}

fn non_unique(object: &ObjectDef, property: &str) -> ApiError {
    ApiError::validation(format!(
        "Unable to perform update/upsert by non-unique {} property",
        object.type_id
    ))
    .context("idProperty", vec![property.to_owned()])
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The property values of input `index` as strings, or the 400 naming one that is not a
/// string (FACTS P2).
pub(crate) fn string_values(
    properties: Map<String, Value>,
    index: usize,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut values = BTreeMap::new();
    for (name, value) in properties {
        let Value::String(text) = value else {
            let kind = json_type(&value);
            let shown = if value.is_null() {
                kind.to_owned()
            } else {
                format!("{kind} {value}")
            };
            return Err(ApiError::validation(format!(
                "Invalid input JSON: the value of property `{name}` in inputs[{index}] is \
                 {shown}, but property values must be strings (\"\" clears a property)"
            ))
            .detail(
                ErrorDetail::new(format!("must be a string, got {kind}"))
                    .code("INVALID_TYPE")
                    .field(format!("inputs[{index}].properties.{name}")),
            ));
        };
        values.insert(name, text);
    }
    Ok(values)
}

/// The batch-level checks of upsert and update; on success, the inputs with string values.
pub(crate) fn check_writes(
    object: &ObjectDef,
    inputs: Vec<WriteInput>,
    max_inputs: usize,
) -> Result<Vec<Write>, ApiError> {
    if inputs.len() > max_inputs {
        return Err(too_many(inputs.len(), max_inputs));
    }
    let mut writes = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        let values = string_values(input.properties, index)?;
        let id_property = input.id_property.unwrap_or_else(|| RECORD_ID.to_owned());
        if !object.is_unique(&id_property) {
            return Err(non_unique(object, &id_property));
        }
        let id = object.stored_value(&id_property, &input.id).into_owned();
        writes.push(Write {
            id,
            id_property,
            values,
            trace: input.object_write_trace_id,
        });
    }
    let mut seen = HashSet::new();
    let mut duplicates: Vec<String> = Vec::new();
    for write in &writes {
        if !seen.insert((write.id_property.as_str(), write.id.as_str()))
            && !duplicates.contains(&write.id)
        {
            duplicates.push(write.id.clone());
        }
    }
    if !duplicates.is_empty() {
        return Err(ApiError::validation(format!(
            "Duplicate IDs found in batch input: [{}]. IDs must be unique",
            duplicates.join(", ")
        ))
        .context("ids", duplicates));
    }
    Ok(writes)
}

/// Value errors of every property of one input.
pub(crate) fn property_errors(
    object: &ObjectDef,
    values: &BTreeMap<String, String>,
) -> Vec<PropertyError> {
    values
        .iter()
        .filter_map(|(name, value)| validate::check_write(object, name, value).err())
        .collect()
}

/// Refuses values that would give a unique property a value another record already has.
pub(crate) fn check_conflicts<'a>(
    store: &Store,
    object: ObjectType,
    values: impl IntoIterator<Item = (&'a String, &'a String)>,
    except: Option<u64>,
) -> Result<(), InputError> {
    let def = store.def(object);
    for (name, value) in values {
        if value.is_empty() || name == RECORD_ID || !def.is_unique(name) {
            continue;
        }
        if let Some(owner) = store.unique_owner(object, name, value, except) {
            let message = format!(
                "{} already exists. Existing ID: {owner}",
                def.singular_label
            );
            let detail = ErrorDetail::new(format!("{name} {value} is already used by {owner}"))
                .code("CONFLICT")
                .field(name.clone())
                .context("existingIds", vec![owner.to_string()]);
            return Err(InputError::new(category::CONFLICT, message).details(vec![detail]));
        }
    }
    Ok(())
}

pub(crate) fn not_found(object: &ObjectDef) -> InputError {
    InputError::new(
        category::OBJECT_NOT_FOUND,
        format!(
            "Could not get some {} objects, they may be deleted or not exist. Check that ids are \
             valid.",
            object.upper()
        ),
    )
}

/// Applies a checked upsert batch; see the module doc for what fails per input.
pub(crate) fn upsert(
    store: &mut Store,
    object: ObjectType,
    writes: &[Write],
    now: DateTime<Utc>,
) -> Outcome {
    apply_each(store, object, writes, now, upsert_one)
}

fn upsert_one(
    store: &mut Store,
    object: ObjectType,
    write: &Write,
    now: DateTime<Utc>,
) -> Result<Value, InputError> {
    let def = store.def(object);
    let mut problems = property_errors(def, &write.values);
    if write.id_property != RECORD_ID {
        if write.id.is_empty() {
            return Err(InputError::new(
                category::VALIDATION_ERROR,
                format!(
                    "The id of an upsert by {} must not be empty",
                    write.id_property
                ),
            ));
        }
        if let Some(property) = def.property(&write.id_property) {
            problems.extend(validate::check_value(property, &write.id).err());
        }
    }
    if !problems.is_empty() {
        return Err(validate::input_error(&problems));
    }
    let existing = store
        .find(object, &write.id_property, &write.id)
        .map(|r| r.id);
    let (id, created) = match existing {
        Some(id) => {
            let cleared = required::cleared(def, &write.values);
            if !cleared.is_empty() {
                return Err(required::cleared_input_error(def, cleared));
            }
            check_conflicts(store, object, &write.values, Some(id))?;
            store.update(object, id, &write.values, now);
            (id, false)
        }
        // A record id cannot be chosen by the client: upsert by id only updates.
        None if write.id_property == RECORD_ID => return Err(not_found(def)),
        None => {
            let missing = required::missing(def, created_values(write));
            if !missing.is_empty() {
                return Err(required::missing_input_error(def, missing));
            }
            check_conflicts(store, object, created_values(write), None)?;
            (store.create(object, created_values(write), now), true)
        }
    };
    let (def, record) = (store.def(object), store.get(object, id));
    let record = record.ok_or_else(|| not_found(def))?;
    let mut result = record.to_json(def, &Selection::All);
    result["new"] = json!(created);
    if let Some(trace) = &write.trace {
        result["objectWriteTraceId"] = json!(trace);
    }
    Ok(result)
}

/// The values a record created by an upsert gets: the input's properties with the id in the
/// `idProperty`, in name order (as one map holding both would list them), without copying.
fn created_values(write: &Write) -> impl Iterator<Item = (&String, &String)> + Clone {
    let id_property = write.id_property.as_str();
    let before = (Bound::Unbounded, Bound::Excluded(id_property));
    let after = (Bound::Excluded(id_property), Bound::Unbounded);
    write
        .values
        .range::<str, _>(before)
        .chain(std::iter::once((&write.id_property, &write.id)))
        .chain(write.values.range::<str, _>(after))
}

/// Applies a checked update batch: records by id or by `idProperty`, never created.
pub(crate) fn update(
    store: &mut Store,
    object: ObjectType,
    writes: &[Write],
    now: DateTime<Utc>,
) -> Outcome {
    apply_each(store, object, writes, now, update_one)
}

/// Applies each input on its own: a failing input becomes an error naming it, the others go
/// through (HubSpot's 207 multi-status).
fn apply_each(
    store: &mut Store,
    object: ObjectType,
    writes: &[Write],
    now: DateTime<Utc>,
    one: fn(&mut Store, ObjectType, &Write, DateTime<Utc>) -> Result<Value, InputError>,
) -> Outcome {
    let mut outcome = Outcome::default();
    for write in writes {
        match one(store, object, write, now) {
            Ok(result) => outcome.results.push(result),
            Err(error) => outcome
                .errors
                .push(error.for_input(&write.id, write.trace.as_deref())),
        }
    }
    outcome
}

fn update_one(
    store: &mut Store,
    object: ObjectType,
    write: &Write,
    now: DateTime<Utc>,
) -> Result<Value, InputError> {
    let def = store.def(object);
    let problems = property_errors(def, &write.values);
    if !problems.is_empty() {
        return Err(validate::input_error(&problems));
    }
    let id = store
        .find(object, &write.id_property, &write.id)
        .map(|r| r.id)
        .ok_or_else(|| not_found(def))?;
    let cleared = required::cleared(def, &write.values);
    if !cleared.is_empty() {
        return Err(required::cleared_input_error(def, cleared));
    }
    check_conflicts(store, object, &write.values, Some(id))?;
    store.update(object, id, &write.values, now);
    let (def, record) = (store.def(object), store.get(object, id));
    let record = record.ok_or_else(|| not_found(def))?;
    let mut result = record.to_json(def, &Selection::All);
    if let Some(trace) = &write.trace {
        result["objectWriteTraceId"] = json!(trace);
    }
    Ok(result)
}

/// Batch read: found records in `results`, the missing ids in one `OBJECT_NOT_FOUND` error
/// (FACTS E7).
pub(crate) fn read(
    store: &Store,
    object: ObjectType,
    body: ReadBody,
    max_inputs: usize,
) -> Result<Outcome, ApiError> {
    if body.inputs.len() > max_inputs {
        return Err(too_many(body.inputs.len(), max_inputs));
    }
    let def = store.def(object);
    let id_property = body.id_property.unwrap_or_else(|| RECORD_ID.to_owned());
    if !def.is_unique(&id_property) {
        return Err(ApiError::validation(format!(
            "idProperty {id_property} is not a unique property of {}",
            def.type_id
        ))
        .context("idProperty", vec![id_property]));
    }
    let selection = Selection::from_request(body.properties);
    let mut outcome = Outcome::default();
    let mut seen = HashSet::new();
    let mut missing = Vec::new();
    for input in body.inputs {
        if !seen.insert(input.id.clone()) {
            continue;
        }
        match store.find(object, &id_property, &input.id) {
            Some(record) => outcome.results.push(record.to_json(def, &selection)),
            None => missing.push(input.id),
        }
    }
    if !missing.is_empty() {
        outcome.errors.push(not_found(def).context("ids", missing));
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(value: Value) -> Vec<WriteInput> {
        serde_json::from_value::<WriteBody>(value)
            .map(|b| b.inputs)
            .unwrap_or_default()
    }

    fn run_upsert(store: &mut Store, value: Value) -> Result<Outcome, ApiError> {
        let writes = check_writes(store.def(ObjectType::CONTACTS), inputs(value), 100)?;
        Ok(upsert(store, ObjectType::CONTACTS, &writes, Utc::now()))
    }

    #[test]
    fn upsert_creates_then_updates() {
        let mut store = Store::default();
        let input =
            json!({"idProperty": "email", "id": "a@b.co", "properties": {"firstname": "Ada"}});
        let body = json!({ "inputs": [input] });
        let first = run_upsert(&mut store, body.clone())
            .ok()
            .unwrap_or_default();
        assert_eq!(first.results[0]["new"], true);
        assert_eq!(first.results[0]["properties"]["email"], "a@b.co");
        let second = run_upsert(&mut store, body).ok().unwrap_or_default();
        assert_eq!(second.results[0]["new"], false);
        assert_eq!(second.results[0]["id"], first.results[0]["id"]);
        assert_eq!(store.records(ObjectType::CONTACTS).count(), 1);
    }

    #[test]
    fn partial_failure_applies_only_good_inputs() {
        let mut store = Store::default();
        let body = json!({"inputs": [
            {"idProperty": "email", "id": "a@b.co", "properties": {"lifecyclestage": "lead"}},
            {"idProperty": "email", "id": "c@d.co", "properties": {"lifecyclestage": "Lead"}},
        ]});
        let outcome = run_upsert(&mut store, body).ok().unwrap_or_default();
        assert_eq!(outcome.results.len(), 1);
        assert_eq!(outcome.errors.len(), 1);
        let error = outcome.errors[0].to_json();
        assert_eq!(error["context"]["ids"], json!(["c@d.co"]));
        assert_eq!(outcome.to_wire(Utc::now()).0, StatusCode::MULTI_STATUS);
        assert_eq!(store.records(ObjectType::CONTACTS).count(), 1);
    }

    #[test]
    fn batch_level_refusals() {
        let mut store = Store::default();
        let duplicate = json!({"inputs": [
            {"idProperty": "email", "id": "a@b.co", "properties": {}},
            {"idProperty": "email", "id": "a@b.co", "properties": {}},
        ]});
        assert!(run_upsert(&mut store, duplicate).is_err());
        let non_unique =
            json!({"inputs": [{"idProperty": "firstname", "id": "Ada", "properties": {}}]});
        assert!(run_upsert(&mut store, non_unique).is_err());
        let input = json!({"idProperty": "email", "id": "a@b.co", "properties": {"num_orders": 3}});
        let number = json!({ "inputs": [input] });
        assert!(run_upsert(&mut store, number).is_err());
        assert!(store.records(ObjectType::CONTACTS).next().is_none());
    }

    #[test]
    fn tickets_need_a_stage_to_be_created_and_keep_it() {
        let mut store = Store::default();
        let writes = |store: &Store, body: Value| {
            check_writes(store.def(ObjectType::TICKETS), inputs(body), 100).unwrap_or_default()
        };
        let body = json!({"inputs": [{"id": "1", "properties": {"subject": "Broken"}}]});
        let checked = writes(&store, body);
        let outcome = update(&mut store, ObjectType::TICKETS, &checked, Utc::now());
        assert_eq!(outcome.errors[0].category(), category::OBJECT_NOT_FOUND);
        let id = store.create(
            ObjectType::TICKETS,
            &BTreeMap::from([("hs_pipeline_stage".to_owned(), "1".to_owned())]),
            Utc::now(),
        );
        let body = json!({"inputs": [
            {"id": id.to_string(), "properties": {"hs_pipeline_stage": ""}},
        ]});
        let checked = writes(&store, body);
        let outcome = update(&mut store, ObjectType::TICKETS, &checked, Utc::now());
        let error = outcome.errors[0].to_json();
        assert_eq!(error["context"]["properties"], json!(["hs_pipeline_stage"]));
        assert_eq!(
            store
                .get(ObjectType::TICKETS, id)
                .and_then(|r| r.get("hs_pipeline_stage")),
            Some("1".to_owned())
        );
    }

    #[test]
    fn update_conflict_and_not_found() {
        let mut store = Store::default();
        let body = json!({"inputs": [
            {"idProperty": "email", "id": "a@b.co", "properties": {}},
            {"idProperty": "email", "id": "c@d.co", "properties": {}},
        ]});
        assert!(run_upsert(&mut store, body).is_ok());
        let update_body = json!({"inputs": [
            {"id": "2", "properties": {"email": "a@b.co"}},
            {"id": "99", "properties": {"firstname": "X"}},
            {"id": "1", "properties": {"firstname": "Ada"}},
        ]});
        let writes = check_writes(store.def(ObjectType::CONTACTS), inputs(update_body), 100)
            .unwrap_or_default();
        let outcome = update(&mut store, ObjectType::CONTACTS, &writes, Utc::now());
        let categories: Vec<_> = outcome.errors.iter().map(InputError::category).collect();
        assert_eq!(categories, [category::CONFLICT, category::OBJECT_NOT_FOUND]);
        assert_eq!(outcome.results.len(), 1);
    }
}
