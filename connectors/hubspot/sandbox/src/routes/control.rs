//! The `/_sandbox/` routes: what tests use to look inside the sandbox and to inject faults.
//!
//! No auth, no rate limit, not counted in the stats. Bodies are plain JSON (not HubSpot's
//! shapes), errors still use HubSpot's `Error` body so every client parses them the same way.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::objects::object_type;
use crate::errors::ApiError;
use crate::faults;
use crate::owners::NewOwner;
use crate::rate_limit::Limits;
use crate::record::Selection;
use crate::respond;
use crate::state::{Shared, lock};

/// `GET /_sandbox/records/{objectType}`: every record with every property, in id order.
pub(super) async fn records(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let Path(segment) = path.map_err(|r| ApiError::validation(r.body_text()))?;
        let store = lock(&shared.store);
        let object = object_type(&store, &segment)?;
        let def = store.def(object);
        let results: Vec<Value> = store
            .records(object)
            .map(|r| r.to_json(def, &Selection::All))
            .collect();
        Ok(respond::ok(&json!({
            "objectType": def.name,
            "total": results.len(),
            "results": results,
        })))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `GET /_sandbox/associations/{fromObjectType}/{toObjectType}`: every association from
/// records of one type to records of the other, in id order, with its type ids (each
/// association shows up again, with the inverse ids, when read the other way).
pub(super) async fn associations(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let Path((from, to)) = path.map_err(|r| ApiError::validation(r.body_text()))?;
        let store = lock(&shared.store);
        let from = object_type(&store, &from)?;
        let to = object_type(&store, &to)?;
        let results: Vec<Value> = store
            .associations
            .all(from, to)
            .map(|(a, b, types)| {
                json!({
                    "fromObjectId": a.to_string(),
                    "toObjectId": b.to_string(),
                    "associationTypeIds": types,
                })
            })
            .collect();
        Ok(respond::ok(&json!({
            "fromObjectTypeId": store.def(from).type_id,
            "toObjectTypeId": store.def(to).type_id,
            "total": results.len(),
            "results": results,
        })))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `GET /_sandbox/lists`: every list in id order with its members (record ids in id order).
pub(super) async fn lists(State(shared): State<Arc<Shared>>) -> Response {
    let store = lock(&shared.store);
    let results: Vec<Value> = store
        .lists
        .all()
        .map(|list| {
            let mut body = list.to_json(false);
            body["recordIds"] = list.members().map(|(id, _)| id.to_string()).collect();
            body
        })
        .collect();
    respond::ok(&json!({"total": results.len(), "results": results}))
}

/// `GET /_sandbox/events`: every custom event occurrence accepted, in the order sent.
pub(super) async fn events(State(shared): State<Arc<Shared>>) -> Response {
    let results = lock(&shared.store).events.sent_json();
    respond::ok(&json!({"total": results.len(), "results": results}))
}

/// `GET /_sandbox/owners`: every owner, in id order.
pub(super) async fn owners(State(shared): State<Arc<Shared>>) -> Response {
    let (results, _) = lock(&shared.store).owners.page(None, 0, usize::MAX);
    respond::ok(&json!({"total": results.len(), "results": results}))
}

/// `POST /_sandbox/owners` `{"email","firstName","lastName"}`: adds an owner (the next id)
/// and answers it; 400 for a taken or malformed email.
pub(super) async fn add_owner(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let new: NewOwner = respond::parse_body(body)?;
        let owner = lock(&shared.store).owners.add(new, chrono::Utc::now())?;
        Ok(respond::ok(&owner))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `GET /_sandbox/stats`: request counts by route kind, write requests, refusals by policy,
/// injected faults by kind.
pub(super) async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    respond::ok(&lock(&shared.stats).to_json())
}

/// The rate-limit keys of `/_sandbox/faults`, beside the [`crate::Faults`] keys.
const LIMIT_KEYS: [&str; 4] = [
    "requests_per_second",
    "requests_per_ten_seconds",
    "requests_per_day",
    "search_requests_per_second",
];

fn faults_json(shared: &Shared) -> Value {
    let limits = lock(&shared.limiter).limits();
    let mut body = Map::new();
    body.insert("requests_per_second".into(), json!(limits.per_second));
    body.insert(
        "requests_per_ten_seconds".into(),
        json!(limits.per_ten_seconds),
    );
    body.insert("requests_per_day".into(), json!(limits.per_day));
    body.insert(
        "search_requests_per_second".into(),
        json!(limits.search_per_second),
    );
    lock(&shared.faults).settings().to_json(&mut body);
    Value::Object(body)
}

/// `GET /_sandbox/faults`: the limits and faults in force.
pub(super) async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    respond::ok(&faults_json(&shared))
}

/// A per-window limit (`u32`; larger counts saturate).
fn window_limit(key: &str, value: &Value) -> Result<Option<u32>, String> {
    Ok(faults::count(key, value)?.map(|v| u32::try_from(v).unwrap_or(u32::MAX)))
}

/// Applies one limit key to `limits`; `Ok(false)` for a key that is not a limit.
fn set_limit(limits: &mut Limits, key: &str, value: &Value) -> Result<bool, String> {
    match key {
        "requests_per_second" => limits.per_second = window_limit(key, value)?,
        "requests_per_ten_seconds" => limits.per_ten_seconds = window_limit(key, value)?,
        "requests_per_day" => limits.per_day = faults::count(key, value)?,
        "search_requests_per_second" => limits.search_per_second = window_limit(key, value)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// `POST /_sandbox/faults`: any of the limit and fault keys (see the crate doc); a key left
/// out keeps its value, `null` turns it off. Nothing changes unless every key is valid.
pub(super) async fn set_faults(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let body: Map<String, Value> = respond::parse_body(body)?;
        let mut settings = lock(&shared.faults).settings().clone();
        let mut limits = lock(&shared.limiter).limits();
        for (key, value) in &body {
            let known = set_limit(&mut limits, key, value)
                .and_then(|known| Ok(known || settings.set(key, value)?))
                .map_err(ApiError::validation)?;
            if !known {
                let keys: Vec<&str> = LIMIT_KEYS.iter().chain(&faults::KEYS).copied().collect();
                return Err(ApiError::validation(format!(
                    "Unknown fault `{key}`: use one of {}",
                    keys.join(", ")
                )));
            }
        }
        tracing::info!(?settings, ?limits, "Sandbox faults changed.");
        lock(&shared.faults).replace(settings);
        lock(&shared.limiter).set_limits(limits);
        Ok(respond::ok(&faults_json(&shared)))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `POST /_sandbox/reset`: clears records and counters (faults and the rate limits stay, the
/// fault draws start over from the seed).
pub(super) async fn reset(State(shared): State<Arc<Shared>>) -> Response {
    shared.reset();
    respond::ok(&json!({"reset": true}))
}
