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

/// `GET /_sandbox/stats`: request counts by route kind, write requests, refusals.
pub(super) async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    respond::ok(&lock(&shared.stats).to_json())
}

fn faults_json(shared: &Shared) -> Value {
    let faults = shared.faults();
    json!({
        "requests_per_second": lock(&shared.limiter).limit(),
        "hang_before_write": faults.hang_before_write,
        "hang_after_write": faults.hang_after_write,
    })
}

/// `GET /_sandbox/faults`: the faults in force.
pub(super) async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    respond::ok(&faults_json(&shared))
}

/// A fault setting: a key left out keeps its value, `null` turns the fault off.
fn setting(key: &str, value: &Value) -> Result<Option<u64>, ApiError> {
    match value {
        Value::Null => Ok(None),
        other => other.as_u64().map(Some).ok_or_else(|| {
            ApiError::validation(format!("`{key}` must be a non-negative integer or null"))
        }),
    }
}

/// `POST /_sandbox/faults`: `{"requests_per_second", "hang_before_write", "hang_after_write"}`.
pub(super) async fn set_faults(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let body: Map<String, Value> = respond::parse_body(body)?;
        let mut faults = shared.faults();
        let mut rate = None;
        for (key, value) in &body {
            let value = setting(key, value)?;
            match key.as_str() {
                "requests_per_second" => {
                    let limit = value.map(|v| u32::try_from(v).unwrap_or(u32::MAX));
                    rate = Some(limit);
                }
                "hang_before_write" => faults.hang_before_write = value,
                "hang_after_write" => faults.hang_after_write = value,
                other => {
                    return Err(ApiError::validation(format!(
                        "Unknown fault `{other}`: use requests_per_second, hang_before_write \
                         or hang_after_write"
                    )));
                }
            }
        }
        *lock(&shared.faults) = faults;
        if let Some(limit) = rate {
            lock(&shared.limiter).set_limit(limit);
        }
        tracing::info!(?faults, ?rate, "Sandbox faults changed.");
        Ok(respond::ok(&faults_json(&shared)))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `POST /_sandbox/reset`: clears records and counters (faults and the rate limit stay).
pub(super) async fn reset(State(shared): State<Arc<Shared>>) -> Response {
    shared.reset();
    respond::ok(&json!({"reset": true}))
}
