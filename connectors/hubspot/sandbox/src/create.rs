//! Creating records: `POST /crm/v3/objects/{objectType}` and `…/batch/create`.
//!
//! A created record is checked like an upsert that creates: property values (FACTS E5),
//! required properties (`required`), and unique values no other record holds. A single create
//! refuses with the request-level `Error`: 400 `VALIDATION_ERROR`, or 409 `CONFLICT` with
//! `"<Singular> already exists. Existing ID: N"` (FACTS E4). A batch create refuses the same way
//! as a whole, at its first failing input, creating nothing — unless every input carries its own
//! `objectWriteTraceId`, which turns on HubSpot's multi-status mode (FACTS E8): then good inputs
//! are created and each failing one becomes a `StandardError` naming its trace id in a 207.
//! Batch-level refusals come first in both modes: more than the batch limit (FACTS B1), a
//! non-string value, inline associations (the sandbox makes associations only through the v4
//! associations routes), or two inputs giving one unique
//! property the same value (FACTS U3).

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::batch::{self, Outcome};
use crate::errors::{ApiError, InputError};
use crate::record::Selection;
use crate::registry::ObjectType;
use crate::required;
use crate::store::Store;
use crate::validate;

/// `SimplePublicObjectInputForCreate` / `SimplePublicObjectBatchInputForCreate`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateInput {
    properties: Map<String, Value>,
    #[serde(default)]
    associations: Vec<Value>,
    #[serde(default)]
    object_write_trace_id: Option<String>,
}

/// `BatchInputSimplePublicObjectBatchInputForCreate`.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateBody {
    inputs: Vec<CreateInput>,
}

/// A create input that passed the request-level checks.
#[derive(Debug)]
struct Create {
    values: BTreeMap<String, String>,
    trace: Option<String>,
}

fn check_input(input: CreateInput, index: usize) -> Result<Create, ApiError> {
    if !input.associations.is_empty() {
        return Err(ApiError::validation(format!(
            "inputs[{index}] has associations, which the sandbox does not make on create: create \
             the record, then associate it through /crm/v4/associations"
        )));
    }
    Ok(Create {
        values: batch::string_values(input.properties, index)?,
        trace: input.object_write_trace_id,
    })
}

/// Why a record cannot be created from `values`, if it cannot.
fn refusal(
    store: &Store,
    object: ObjectType,
    values: &BTreeMap<String, String>,
) -> Option<InputError> {
    let def = store.def(object);
    let problems = batch::property_errors(def, values);
    if !problems.is_empty() {
        return Some(validate::input_error(&problems));
    }
    let missing = required::missing(def, values.iter());
    if !missing.is_empty() {
        return Some(required::missing_input_error(def, missing));
    }
    batch::check_conflicts(store, object, values, None).err()
}

/// Creates a checked record and returns its `SimplePublicObject`.
fn insert(store: &mut Store, object: ObjectType, create: &Create, now: DateTime<Utc>) -> Value {
    let id = store.create(object, &create.values, now);
    let def = store.def(object);
    let mut result = store
        .get(object, id)
        .map_or(Value::Null, |r| r.to_json(def, &Selection::All));
    if let Some(trace) = &create.trace {
        result["objectWriteTraceId"] = json!(trace);
    }
    result
}

/// `POST /crm/v3/objects/{objectType}`: 201 with the record, or the request-level refusal.
pub(crate) fn create_one(
    store: &mut Store,
    object: ObjectType,
    input: CreateInput,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let create = check_input(input, 0)?;
    if let Some(refused) = refusal(store, object, &create.values) {
        return Err(refused.into_api_error());
    }
    Ok(insert(store, object, &create, now))
}

/// Refuses two inputs that give one unique property the same value (FACTS U3).
fn check_duplicates(store: &Store, object: ObjectType, creates: &[Create]) -> Result<(), ApiError> {
    let def = store.def(object);
    for property in def.indexed_properties() {
        let mut seen = HashSet::new();
        let mut duplicates = Vec::new();
        for value in creates
            .iter()
            .filter_map(|c| c.values.get(property.name.as_ref()))
        {
            let value = def.stored_value(&property.name, value).into_owned();
            if !value.is_empty() && !seen.insert(value.clone()) && !duplicates.contains(&value) {
                duplicates.push(value);
            }
        }
        if !duplicates.is_empty() {
            return Err(ApiError::validation(format!(
                "Duplicate values found in batch input for unique property {}: [{}]",
                property.name,
                duplicates.join(", ")
            ))
            .context(&property.name, duplicates));
        }
    }
    Ok(())
}

/// True when every input has its own `objectWriteTraceId` (HubSpot's multi-status mode).
fn multi_status(creates: &[Create]) -> bool {
    let mut traces = HashMap::new();
    creates.iter().all(|c| {
        c.trace
            .as_deref()
            .is_some_and(|t| traces.insert(t, ()).is_none())
    })
}

/// `POST /crm/v3/objects/{objectType}/batch/create`; see the module doc for its two modes.
pub(crate) fn create_batch(
    store: &mut Store,
    object: ObjectType,
    body: CreateBody,
    max_inputs: usize,
    started_at: DateTime<Utc>,
    whole_batch_conflicts: bool,
) -> Result<(StatusCode, Value), ApiError> {
    if body.inputs.len() > max_inputs {
        return Err(batch::too_many(body.inputs.len(), max_inputs));
    }
    let creates = body
        .inputs
        .into_iter()
        .enumerate()
        .map(|(index, input)| check_input(input, index))
        .collect::<Result<Vec<_>, _>>()?;
    check_duplicates(store, object, &creates)?;
    let now = Utc::now();
    let mut outcome = Outcome::default();
    if multi_status(&creates) && !whole_batch_conflicts {
        for create in &creates {
            match refusal(store, object, &create.values) {
                Some(refused) => {
                    let trace = create.trace.as_deref().unwrap_or_default();
                    outcome.errors.push(refused.for_trace(trace));
                }
                None => outcome.results.push(insert(store, object, create, now)),
            }
        }
    } else {
        if let Some(refused) = creates
            .iter()
            .find_map(|c| refusal(store, object, &c.values))
        {
            return Err(refused.into_api_error());
        }
        for create in &creates {
            outcome.results.push(insert(store, object, create, now));
        }
    }
    Ok(outcome.into_wire_with(StatusCode::CREATED, started_at))
}

/// `BatchInputSimplePublicObjectId`.
#[derive(Debug, Deserialize)]
pub(crate) struct ArchiveBody {
    inputs: Vec<ArchiveInput>,
}

#[derive(Debug, Deserialize)]
struct ArchiveInput {
    id: String,
}

/// `POST /crm/v3/objects/{objectType}/batch/archive`: archives the records named by id;
/// unknown ids are ignored, as HubSpot does.
pub(crate) fn archive_batch(
    store: &mut Store,
    object: ObjectType,
    body: ArchiveBody,
    max_inputs: usize,
) -> Result<(), ApiError> {
    if body.inputs.len() > max_inputs {
        return Err(batch::too_many(body.inputs.len(), max_inputs));
    }
    for input in body.inputs {
        if let Ok(id) = input.id.trim().parse() {
            store.archive(object, id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::category;

    fn body(inputs: Value) -> CreateBody {
        serde_json::from_value(json!({ "inputs": inputs })).unwrap_or(CreateBody { inputs: vec![] })
    }

    fn run(store: &mut Store, inputs: Value) -> Result<(StatusCode, Value), ApiError> {
        create_batch(
            store,
            ObjectType::CONTACTS,
            body(inputs),
            100,
            Utc::now(),
            false,
        )
    }

    #[test]
    fn one_conflict_fails_the_whole_batch() {
        let mut store = Store::default();
        let first = run(&mut store, json!([{"properties": {"email": "a@x.co"}}]));
        assert_eq!(first.ok().map(|r| r.0), Some(StatusCode::CREATED));
        let second = run(
            &mut store,
            json!([
                {"properties": {"email": "b@x.co"}},
                {"properties": {"email": "a@x.co"}},
            ]),
        );
        let error = second.err().map(|e| format!("{e:?}")).unwrap_or_default();
        assert!(
            error.contains("Contact already exists. Existing ID: 1"),
            "{error}"
        );
        assert!(error.contains("409"), "{error}");
        assert_eq!(store.records(ObjectType::CONTACTS).count(), 1);
    }

    #[test]
    fn trace_ids_turn_on_multi_status() {
        let mut store = Store::default();
        let reply = run(
            &mut store,
            json!([
                {"properties": {"email": "a@x.co"}, "objectWriteTraceId": "t1"},
                {"properties": {"lifecyclestage": "Lead"}, "objectWriteTraceId": "t2"},
            ]),
        );
        let (status, body) = reply.unwrap_or((StatusCode::OK, Value::Null));
        assert_eq!(status, StatusCode::MULTI_STATUS);
        assert_eq!(body["results"][0]["objectWriteTraceId"], "t1");
        assert_eq!(
            body["errors"][0]["context"]["objectWriteTraceId"],
            json!(["t2"])
        );
        assert_eq!(body["errors"][0]["category"], category::VALIDATION_ERROR);
    }

    #[test]
    fn duplicates_and_required_properties() {
        let mut store = Store::default();
        let duplicate = run(
            &mut store,
            json!([{"properties": {"email": "a@x.co"}}, {"properties": {"email": "A@x.co"}}]),
        );
        assert!(duplicate.is_err());
        let ticket = body(json!([{"properties": {"subject": "Broken"}}]));
        let refused = create_batch(
            &mut store,
            ObjectType::TICKETS,
            ticket,
            100,
            Utc::now(),
            false,
        );
        let error = refused.err().map(|e| format!("{e:?}")).unwrap_or_default();
        assert!(error.contains("hs_pipeline_stage"), "{error}");
        assert_eq!(store.records(ObjectType::TICKETS).count(), 0);
    }
}
