//! sObject Collections: `POST|PATCH|DELETE /composite/sobjects`, the upsert `PATCH
//! /composite/sobjects/{SObject}/{ExternalIdField}`, and the retrieve `GET|POST
//! /composite/sobjects/{SObject}` (FACTS C1–C4, L1).
//!
//! A well-formed request answers 200 with one result per record in request order, failures
//! included (FACTS E3, C2); 400 only when the request cannot be read: bad JSON, an unknown
//! field or a value of the wrong JSON type in any record (deserialization fails the whole
//! request, as in Salesforce), a missing or unknown `attributes.type`, or more than 200
//! records (`EXCEEDED_ID_LIMIT` "record limit reached. cannot submit more than 200 records
//! into this call", Salesforce's message for L1's limit). With `allOrNone` (default false,
//! C3) every record is still tried so each failing one reports its own error, then all
//! changes are rolled back and the others report `ALL_OR_NONE_OPERATION_ROLLED_BACK` with
//! the id they had or would have had.
//!
//! Per-record codes where FACTS gives none: an update without `id` is `MISSING_ARGUMENT`
//! "Id not specified in an update call"; an update or delete of a record that never existed
//! is `INVALID_CROSS_REFERENCE_KEY` "invalid cross reference id" (deleted: `ENTITY_IS_DELETED`);
//! an upsert record without the external-id value is `MISSING_ARGUMENT` "`Ext__c not
//! specified`"; two records with one external-id value are both `DUPLICATE_EXTERNAL_ID`
//! "`Duplicate external id specified: C-1`"; a value matching several records is
//! `DUPLICATE_EXTERNAL_ID` "`Ext__c: more than one record found for external id field: [id,
//! id]`" (the Collections form of the single-record 300).

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::sobjects::{external_id_field, object_body, select_fields};
use super::{Call, visible};
use crate::errors::{ApiError, RecordError, code};
use crate::ids;
use crate::respond;
use crate::state::lock;
use crate::store::{ObjectKey, Store, Undo, index_key};
use crate::write::{self, Draft, Mode};

/// Most records one create, update, upsert or delete may carry (FACTS L1).
const MAX_RECORDS: usize = 200;
/// Most ids a GET retrieve may name (FACTS L1: about 800 fit in a URL).
const MAX_GET_IDS: usize = 800;
/// Most ids a POST retrieve may name (FACTS L1).
const MAX_POST_IDS: usize = 2_000;

fn too_many(limit: usize) -> ApiError {
    ApiError::bad_request(
        code::EXCEEDED_ID_LIMIT,
        format!("record limit reached. cannot submit more than {limit} records into this call"),
    )
}

/// One record's outcome.
enum Outcome {
    Saved { id: String, created: Option<bool> },
    Failed(RecordError),
}

/// The results, with the all-or-none rule applied (FACTS C2, C3).
fn results(store: &mut Store, outcomes: Vec<Outcome>, undo: Undo, all_or_none: bool) -> Response {
    let any_failed = outcomes.iter().any(|o| matches!(o, Outcome::Failed(_)));
    let roll_back = all_or_none && any_failed;
    if roll_back {
        store.undo(undo);
    }
    let body: Vec<Value> = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Failed(error) => {
                json!({"success": false, "errors": [error.to_status_json()]})
            }
            Outcome::Saved { id, created } if roll_back => {
                let error = RecordError::new(
                    code::ROLLED_BACK,
                    "Record rolled back because not all records were valid and the request was using AllOrNone header",
                );
                let mut result = json!({"id": id, "success": false, "errors": [error.to_status_json()]});
                if created.is_some() {
                    result["created"] = json!(false);
                }
                result
            }
            Outcome::Saved { id, created } => {
                let mut result = json!({"id": id, "success": true, "errors": []});
                if let Some(created) = created {
                    result["created"] = json!(created);
                }
                result
            }
        })
        .collect();
    respond::ok(&Value::Array(body))
}

/// A request body's `allOrNone` and `records`.
fn read_request(call: &Call<'_>) -> Result<(bool, Vec<Map<String, Value>>), ApiError> {
    let body = object_body(call)?;
    let parser = |what: &str, value: &Value| {
        ApiError::bad_request(
            code::JSON_PARSER_ERROR,
            format!(
                "Cannot deserialize instance of {what} from {} value {} or request may be missing a required field",
                if value.is_string() {
                    "VALUE_STRING"
                } else {
                    "VALUE"
                },
                value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned)
            ),
        )
    };
    let all_or_none = match body.get("allOrNone") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(parser("boolean", other)),
    };
    let records = match body.get("records") {
        Some(Value::Array(items)) => items,
        Some(other) => return Err(parser("List<SObject>", other)),
        None => return Ok((all_or_none, Vec::new())),
    };
    if records.len() > MAX_RECORDS {
        return Err(too_many(MAX_RECORDS));
    }
    let records = records
        .iter()
        .map(|r| r.as_object().cloned().ok_or_else(|| parser("SObject", r)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((all_or_none, records))
}

/// The type a record's `attributes.type` names, if any.
fn record_type(record: &Map<String, Value>) -> Option<&str> {
    record
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
}

/// The object a record's type names: 400 `INVALID_TYPE` when unknown or hidden.
fn record_object(
    call: &Call<'_>,
    store: &Store,
    name: Option<&str>,
) -> Result<ObjectKey, ApiError> {
    let Some(name) = name else {
        return Err(ApiError::bad_request(
            code::INVALID_TYPE,
            "Must send a concrete entity type.",
        ));
    };
    visible(call.shared, store, name).map_err(|_| {
        ApiError::bad_request(
            code::INVALID_TYPE,
            format!("sObject type '{name}' is not supported."),
        )
    })
}

/// `POST|PATCH|DELETE /composite/sobjects`.
pub(super) fn root(call: &Call<'_>, _object: Option<&str>) -> Result<Response, ApiError> {
    match call.method {
        Method::POST => create(call),
        Method::PATCH => update(call),
        Method::DELETE => delete(call),
        _ => Err(call.method_not_allowed("POST,PATCH,DELETE")),
    }
}

/// `/composite/sobjects/{SObject}`: retrieve by GET or POST; PATCH and DELETE as on the
/// root (the Postman collection sends them here).
pub(super) fn object(call: &Call<'_>, name: &str) -> Result<Response, ApiError> {
    match call.method {
        Method::GET | Method::POST => retrieve(call, name),
        Method::PATCH | Method::DELETE => root(call, Some(name)),
        _ => Err(call.method_not_allowed("GET,POST,PATCH,DELETE")),
    }
}

fn create(call: &Call<'_>) -> Result<Response, ApiError> {
    let (all_or_none, records) = read_request(call)?;
    let mut store = lock(&call.shared.store);
    let mut drafts: Vec<(ObjectKey, Draft, bool)> = Vec::with_capacity(records.len());
    for record in &records {
        let key = record_object(call, &store, record_type(record))?;
        let has_id = record.keys().any(|k| k.eq_ignore_ascii_case("id"));
        let draft = write::decode_json(&store, key, record, &["attributes", "id"])?;
        drafts.push((key, draft, has_id));
    }
    let mut undo = Undo::default();
    let now = Utc::now();
    let outcomes = drafts
        .into_iter()
        .map(|(key, draft, has_id)| {
            if has_id {
                return Outcome::Failed(
                    RecordError::new(code::INVALID_FIELD, "cannot specify Id in an insert call")
                        .on(&["Id"]),
                );
            }
            match write::check(&store, key, draft, Mode::Create) {
                Ok(values) => Outcome::Saved {
                    id: store.insert(key, write::into_map(values), now, Some(&mut undo)),
                    created: None,
                },
                Err(error) => Outcome::Failed(error),
            }
        })
        .collect();
    Ok(results(&mut store, outcomes, undo, all_or_none))
}

/// The live record an id names for an update or delete: its object and 18-character id.
fn target(
    call: &Call<'_>,
    store: &Store,
    raw: &str,
    expected: Option<ObjectKey>,
) -> Result<(ObjectKey, String), RecordError> {
    let malformed = || RecordError::new(code::MALFORMED_ID, format!("malformed id {raw}"));
    let id = ids::normalize(raw).ok_or_else(malformed)?;
    let key = store.object_of_id(&id).ok_or_else(malformed)?;
    if let Some(expected) = expected
        && expected != key
    {
        let label = store.def(expected).field("Id").map_or_else(
            || format!("{} ID", store.def(expected).label),
            |f| f.label.clone(),
        );
        return Err(RecordError::new(
            code::MALFORMED_ID,
            format!("{label}: id value of incorrect type: {raw}"),
        )
        .on(&["Id"]));
    }
    if lock(&call.shared.faults).hides(&store.def(key).name) {
        return Err(RecordError::new(
            code::INVALID_CROSS_REFERENCE_KEY,
            "invalid cross reference id",
        ));
    }
    let table = store.table(key);
    if table.get(&id).is_some() {
        Ok((key, id))
    } else if table.was_deleted(&id) {
        Err(RecordError::new(
            code::ENTITY_IS_DELETED,
            "entity is deleted",
        ))
    } else {
        Err(RecordError::new(
            code::INVALID_CROSS_REFERENCE_KEY,
            "invalid cross reference id",
        ))
    }
}

fn update(call: &Call<'_>) -> Result<Response, ApiError> {
    let (all_or_none, records) = read_request(call)?;
    let mut store = lock(&call.shared.store);
    let mut work: Vec<Result<(ObjectKey, String, Draft), RecordError>> = Vec::new();
    for record in &records {
        let raw_id = record
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("id"))
            .and_then(|(_, v)| v.as_str());
        let declared = match record_type(record) {
            Some(name) => Some(record_object(call, &store, Some(name))?),
            None => None,
        };
        let Some(raw_id) = raw_id else {
            work.push(Err(RecordError::new(
                code::MISSING_ARGUMENT,
                "Id not specified in an update call",
            )));
            continue;
        };
        match target(call, &store, raw_id, declared) {
            Ok((key, id)) => {
                let draft = write::decode_json(&store, key, record, &["attributes", "id"])?;
                work.push(Ok((key, id, draft)));
            }
            Err(error) => work.push(Err(error)),
        }
    }
    let mut undo = Undo::default();
    let now = Utc::now();
    let outcomes = work
        .into_iter()
        .map(|item| {
            let (key, id, draft) = match item {
                Ok(item) => item,
                Err(error) => return Outcome::Failed(error),
            };
            let Some(record) = store.table(key).get(&id).cloned() else {
                return Outcome::Failed(RecordError::new(
                    code::ENTITY_IS_DELETED,
                    "entity is deleted",
                ));
            };
            match write::check(&store, key, draft, Mode::Update(&record)) {
                Ok(changes) => {
                    store.update(key, &id, changes, now, Some(&mut undo));
                    Outcome::Saved { id, created: None }
                }
                Err(error) => Outcome::Failed(error),
            }
        })
        .collect();
    Ok(results(&mut store, outcomes, undo, all_or_none))
}

fn delete(call: &Call<'_>) -> Result<Response, ApiError> {
    let ids: Vec<&str> = call
        .param("ids")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if ids.len() > MAX_RECORDS {
        return Err(too_many(MAX_RECORDS));
    }
    let all_or_none = match call.param("allOrNone") {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                code::INVALID_FIELD,
                format!("allOrNone must be true or false, not {other}"),
            ));
        }
    };
    let mut store = lock(&call.shared.store);
    let mut undo = Undo::default();
    let outcomes = ids
        .iter()
        .map(|raw| match target(call, &store, raw, None) {
            Ok((key, id)) => {
                store.delete(key, &id, Some(&mut undo));
                Outcome::Saved { id, created: None }
            }
            Err(error) => Outcome::Failed(error),
        })
        .collect();
    Ok(results(&mut store, outcomes, undo, all_or_none))
}

/// `PATCH /composite/sobjects/{SObject}/{ExternalIdField}` (FACTS C4).
pub(super) fn upsert(call: &Call<'_>, name: &str, field_name: &str) -> Result<Response, ApiError> {
    if call.method != Method::PATCH {
        return Err(call.method_not_allowed("PATCH"));
    }
    let (all_or_none, records) = read_request(call)?;
    let mut store = lock(&call.shared.store);
    let key = visible(call.shared, &store, name)?;
    let def = store.def(key).clone();
    let field = external_id_field(&def, field_name)?;
    if field.name == "Id" {
        return Err(ApiError::bad_request(
            code::INVALID_FIELD,
            "Id is not an external id field: update records by id with PATCH /composite/sobjects",
        ));
    }
    let mut drafts = Vec::with_capacity(records.len());
    for record in &records {
        drafts.push(write::decode_json(&store, key, record, &["attributes"])?);
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for draft in &drafts {
        if let Some(k) = draft.get(&field.name).and_then(index_key) {
            *seen.entry(k).or_default() += 1;
        }
    }
    let mut undo = Undo::default();
    let now = Utc::now();
    let outcomes = drafts
        .into_iter()
        .map(|mut draft| {
            let Some(value) = draft.get(&field.name).filter(|v| !v.is_null()).cloned() else {
                return Outcome::Failed(
                    RecordError::new(
                        code::MISSING_ARGUMENT,
                        format!("{} not specified", field.name),
                    )
                    .on(&[&field.name]),
                );
            };
            if index_key(&value).is_some_and(|k| seen.get(&k).copied().unwrap_or(0) > 1) {
                return Outcome::Failed(RecordError::new(
                    code::DUPLICATE_EXTERNAL_ID,
                    format!(
                        "Duplicate external id specified: {}",
                        value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_owned)
                    ),
                ));
            }
            let matches: Vec<String> = store
                .table(key)
                .lookup(&field.name, &value)
                .iter()
                .map(|r| r.id.clone())
                .collect();
            match matches.as_slice() {
                [] => match write::check(&store, key, draft, Mode::Create) {
                    Ok(values) => Outcome::Saved {
                        id: store.insert(key, write::into_map(values), now, Some(&mut undo)),
                        created: Some(true),
                    },
                    Err(error) => Outcome::Failed(error),
                },
                [id] => {
                    draft.take(&field.name);
                    let Some(record) = store.table(key).get(id).cloned() else {
                        return Outcome::Failed(RecordError::new(
                            code::ENTITY_IS_DELETED,
                            "entity is deleted",
                        ));
                    };
                    match write::check(&store, key, draft, Mode::Update(&record)) {
                        Ok(changes) => {
                            store.update(key, id, changes, now, Some(&mut undo));
                            Outcome::Saved {
                                id: id.clone(),
                                created: Some(false),
                            }
                        }
                        Err(error) => Outcome::Failed(error),
                    }
                }
                many => Outcome::Failed(RecordError::new(
                    code::DUPLICATE_EXTERNAL_ID,
                    format!(
                        "{}: more than one record found for external id field: [{}]",
                        field.name,
                        many.join(", ")
                    ),
                )),
            }
        })
        .collect();
    Ok(results(&mut store, outcomes, undo, all_or_none))
}

/// `GET /composite/sobjects/{SObject}?ids&fields` or `POST` with `{"ids","fields"}`: the
/// records in the order asked, `null` for ids with no live record.
fn retrieve(call: &Call<'_>, name: &str) -> Result<Response, ApiError> {
    let (ids, fields, limit): (Vec<String>, String, usize) = if call.method == Method::GET {
        let split = |v: Option<&str>| -> Vec<String> {
            v.unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        (
            split(call.param("ids")),
            call.param("fields").unwrap_or_default().to_owned(),
            MAX_GET_IDS,
        )
    } else {
        let body = object_body(call)?;
        let list = |key: &str| -> Vec<String> {
            body.get(key)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        (list("ids"), list("fields").join(","), MAX_POST_IDS)
    };
    if ids.is_empty() || fields.is_empty() {
        return Err(ApiError::bad_request(
            code::MISSING_ARGUMENT,
            "Both ids and fields are required to retrieve records",
        ));
    }
    if ids.len() > limit {
        return Err(too_many(limit));
    }
    let store = lock(&call.shared.store);
    let key = visible(call.shared, &store, name)?;
    let def = store.def(key);
    let selected = select_fields(def, Some(&fields))?;
    let mut records = Vec::with_capacity(ids.len());
    for raw in &ids {
        let id = ids::normalize(raw).ok_or_else(|| {
            ApiError::from_record(
                StatusCode::BAD_REQUEST,
                RecordError::new(code::MALFORMED_ID, format!("malformed id {raw}")),
            )
        })?;
        records.push(match store.table(key).get(&id) {
            Some(record) => store.render(key, record, selected.as_deref(), &call.version),
            None => Value::Null,
        });
    }
    Ok(respond::ok(&Value::Array(records)))
}
