//! The `/_sandbox/` routes: what tests use to look inside the sandbox, to define custom
//! objects, and to change limits and faults.
//!
//! No auth, no allocation, no faults, not counted. Bodies are plain JSON (not Salesforce's
//! shapes); errors still use Salesforce's error array so every client parses them the same way.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::LATEST_VERSION;
use crate::custom::CustomObject;
use crate::errors::{ApiError, code};
use crate::faults::{self, KEYS};
use crate::respond;
use crate::state::{Shared, lock};

/// `GET /_sandbox/records/{SObject}`: every record with every field, in creation order
/// (hidden objects too).
pub(super) async fn records(
    State(shared): State<Arc<Shared>>,
    Path(object): Path<String>,
) -> Response {
    let store = lock(&shared.store);
    let Some(key) = store.object(&object) else {
        return ApiError::not_found().into_response();
    };
    let records: Vec<Value> = store
        .table(key)
        .iter()
        .map(|record| store.render(key, record, None, LATEST_VERSION))
        .collect();
    respond::ok(&json!({
        "object": store.def(key).name,
        "total": records.len(),
        "records": records,
    }))
}

/// `POST /_sandbox/objects`: defines custom objects (a [`CustomObject`] or a list of them)
/// or adds custom fields to existing objects; answers 201 with their describes. Each
/// definition is applied whole or not at all, in order.
pub(super) async fn define(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let value = respond::parse_json(&body)?;
        let definitions: Vec<CustomObject> = match value {
            Value::Array(_) => serde_json::from_value(value),
            other => serde_json::from_value(other).map(|one| vec![one]),
        }
        .map_err(|e| ApiError::bad_request(code::INVALID_INPUT, e.to_string()))?;
        let mut store = lock(&shared.store);
        let mut described = Vec::new();
        for definition in &definitions {
            let key = store
                .define(definition)
                .map_err(|e| ApiError::bad_request(code::INVALID_INPUT, e))?;
            described.push(store.def(key).describe(LATEST_VERSION));
        }
        Ok(respond::json(StatusCode::CREATED, &Value::Array(described)))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `GET /_sandbox/stats`: requests by route kind, 401s, allocation refusals, injected faults
/// by kind, token grants, and the allocation.
pub(super) async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let mut body = lock(&shared.stats).to_json();
    let allocation = *lock(&shared.allocation);
    body["api_usage"] = json!(allocation.used);
    body["api_allocation"] = json!(allocation.max);
    respond::ok(&body)
}

/// The keys of `/_sandbox/faults` beside the [`crate::Faults`] keys.
const LIMIT_KEYS: [&str; 6] = [
    "api_allocation",
    "api_usage",
    "token_ttl_requests",
    "token_ttl_seconds",
    "bulk_processing_ms",
    "refresh_token_revoked",
];

fn faults_json(shared: &Shared) -> Value {
    let allocation = *lock(&shared.allocation);
    let sessions = lock(&shared.sessions);
    let mut body = Map::new();
    body.insert("api_allocation".into(), json!(allocation.max));
    body.insert("api_usage".into(), json!(allocation.used));
    body.insert("token_ttl_requests".into(), json!(sessions.ttl_requests));
    body.insert("token_ttl_seconds".into(), json!(sessions.ttl_seconds));
    body.insert(
        "bulk_processing_ms".into(),
        json!(*lock(&shared.bulk_processing_ms)),
    );
    body.insert(
        "refresh_token_revoked".into(),
        json!(sessions.is_revoked(&shared.client.refresh_token)),
    );
    lock(&shared.faults).to_json(&mut body);
    Value::Object(body)
}

/// `GET /_sandbox/faults`: the limits and faults in force.
pub(super) async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    respond::ok(&faults_json(&shared))
}

/// `POST /_sandbox/faults`: any of the keys (see the crate doc); a key left out keeps its
/// value, `null` turns it off. Nothing changes unless every key is valid.
pub(super) async fn set_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let Value::Object(body) = respond::parse_json(&body)? else {
            return Err(ApiError::bad_request(
                code::INVALID_INPUT,
                "the body must be a JSON object",
            ));
        };
        let mut settings = lock(&shared.faults).clone();
        let mut allocation = *lock(&shared.allocation);
        let (mut ttl_requests, mut ttl_seconds) = {
            let sessions = lock(&shared.sessions);
            (sessions.ttl_requests, sessions.ttl_seconds)
        };
        let mut bulk_ms = *lock(&shared.bulk_processing_ms);
        let mut revoked = None;
        for (key, value) in &body {
            let known = match key.as_str() {
                "api_allocation" => {
                    allocation.max = faults::count(key, value)?.unwrap_or(u64::MAX);
                    true
                }
                "api_usage" => {
                    allocation.used = faults::count(key, value)?.unwrap_or(0);
                    true
                }
                "token_ttl_requests" => {
                    ttl_requests = faults::count(key, value)?;
                    true
                }
                "token_ttl_seconds" => {
                    ttl_seconds = faults::count(key, value)?;
                    true
                }
                "bulk_processing_ms" => {
                    bulk_ms = faults::count(key, value)?.unwrap_or(0);
                    true
                }
                "refresh_token_revoked" => {
                    revoked = Some(faults::flag(key, value)?);
                    true
                }
                _ => settings.set(key, value)?,
            };
            if !known {
                let keys: Vec<&str> = LIMIT_KEYS.iter().chain(&KEYS).copied().collect();
                return Err(ApiError::bad_request(
                    code::INVALID_INPUT,
                    format!("Unknown fault `{key}`: use one of {}", keys.join(", ")),
                ));
            }
        }
        tracing::info!(?settings, "Sandbox faults changed.");
        *lock(&shared.faults) = settings;
        *lock(&shared.allocation) = allocation;
        *lock(&shared.bulk_processing_ms) = bulk_ms;
        {
            let mut sessions = lock(&shared.sessions);
            sessions.ttl_requests = ttl_requests;
            sessions.ttl_seconds = ttl_seconds;
            let refresh = &shared.client.refresh_token;
            match revoked {
                Some(true) => {
                    sessions.revoke(refresh, refresh);
                }
                Some(false) => sessions.restore(refresh),
                None => {}
            }
        }
        Ok(respond::ok(&faults_json(&shared)))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

impl From<String> for ApiError {
    fn from(message: String) -> Self {
        ApiError::bad_request(code::INVALID_INPUT, message)
    }
}

/// `POST /_sandbox/expire-sessions`: every access token expires now (the next request with
/// one gets 401 `INVALID_SESSION_ID`); answers how many there were.
pub(super) async fn expire_sessions(State(shared): State<Arc<Shared>>) -> Response {
    let expired = lock(&shared.sessions).expire_all();
    respond::ok(&json!({"expired": expired}))
}

/// `POST /_sandbox/reset`: a fresh org (the configured custom objects again, no records, no
/// jobs, usage 0); sessions, limits and faults stay.
pub(super) async fn reset(State(shared): State<Arc<Shared>>) -> Response {
    match shared.reset() {
        Ok(()) => respond::ok(&json!({"reset": true})),
        Err(e) => ApiError::bad_request(code::INVALID_INPUT, e.to_string()).into_response(),
    }
}

/// `POST /_sandbox/convert-lead/{id}`: marks a Lead converted (`IsConverted` true), as Lead
/// conversion in Salesforce's UI or SOAP API does; answers the Lead. 404 `NOT_FOUND` when no
/// Lead has this id.
pub(super) async fn convert_lead(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    let mut store = lock(&shared.store);
    let Some(key) = store.object("Lead") else {
        return ApiError::not_found().into_response();
    };
    if store.table(key).get(&id).is_none() {
        return ApiError::not_found().into_response();
    }
    store.update(
        key,
        &id,
        vec![("IsConverted".to_owned(), json!(true))],
        chrono::Utc::now(),
        None,
    );
    match store.table(key).get(&id) {
        Some(record) => respond::ok(&store.render(key, record, None, LATEST_VERSION)),
        None => ApiError::not_found().into_response(),
    }
}
