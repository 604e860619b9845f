//! The custom behavioural event routes: event definitions
//! (events-custom-event-definitions-v3.json) and sending occurrences
//! (events-custom-behavioral-send-v3.json).
//!
//! Handlers parse, lock and answer; the rules live in `events`. Sends are write requests
//! (numbered, and subject to the write faults) like record writes.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use super::objects::{BodyBytes, QueryPairs, QueryParams, write_request};
use crate::errors::ApiError;
use crate::events::{self, Batch, DefinitionEgg, Occurrence};
use crate::respond;
use crate::state::{Shared, lock};

type NamePath = Result<Path<String>, PathRejection>;

fn name(path: NamePath) -> Result<String, ApiError> {
    let Path(name) = path.map_err(|r| ApiError::validation(r.body_text()))?;
    Ok(name)
}

/// `GET /events/v3/event-definitions?limit&after&searchString&includeProperties` → 200
/// `CollectionResponseWithTotalExternalBehavioralEventTypeDefinition` (`after` is an offset).
pub(super) async fn list(State(shared): State<Arc<Shared>>, query: QueryPairs) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let query = QueryParams::from(query)?;
        let number = |key: &str, default: usize| -> Result<usize, ApiError> {
            match query.one(key).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(text) => text.parse().map_err(|_| {
                    ApiError::validation(format!("{key} must be a number, got {text}"))
                }),
            }
        };
        let limit = number("limit", 100)?.max(1);
        let after = number("after", 0)?;
        let search = query.one("searchString").unwrap_or("").to_lowercase();
        let properties = query.one("includeProperties") == Some("true");
        let store = lock(&shared.store);
        let matching: Vec<_> = store
            .events
            .all()
            .filter(|d| {
                search.is_empty() || d.fully_qualified_name().to_lowercase().contains(&search)
            })
            .collect();
        let results: Vec<_> = matching
            .iter()
            .skip(after)
            .take(limit)
            .map(|d| d.to_json(properties))
            .collect();
        let next = after + results.len();
        let mut body = json!({"total": matching.len(), "results": results});
        if next < matching.len() {
            body["paging"] = json!({"next": {"after": next.to_string()}});
        }
        Ok(respond::ok(&body))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `POST /events/v3/event-definitions` → 201 `ExternalBehavioralEventTypeDefinition`, 400,
/// 409 for a taken name.
pub(super) async fn create(State(shared): State<Arc<Shared>>, body: BodyBytes) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let egg: DefinitionEgg = respond::parse_body(body)?;
        let mut store = lock(&shared.store);
        let definition = store.events.create(egg, Utc::now())?;
        Ok(respond::json(
            StatusCode::CREATED,
            &definition.to_json(true),
        ))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `GET /events/v3/event-definitions/{eventName}` (internal or fully qualified name) → 200
/// with its properties, 404.
pub(super) async fn get_one(State(shared): State<Arc<Shared>>, path: NamePath) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let name = name(path)?;
        let store = lock(&shared.store);
        let definition = store
            .events
            .get(&name)
            .ok_or_else(|| events::unknown(&name))?;
        Ok(respond::ok(&definition.to_json(true)))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /events/v3/event-definitions/{eventName}` → 204, 404.
pub(super) async fn delete(State(shared): State<Arc<Shared>>, path: NamePath) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let name = name(path)?;
        lock(&shared.store).events.delete(&name)?;
        Ok(respond::no_content())
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `POST /events/v3/send` → 204, 400.
pub(super) async fn send(State(shared): State<Arc<Shared>>, body: BodyBytes) -> Response {
    write_request(shared, move |shared| {
        let answer = || -> Result<Response, ApiError> {
            let occurrence: Occurrence = respond::parse_body(body)?;
            let mut store = lock(&shared.store);
            events::send(&mut store, vec![occurrence], false, Utc::now())?;
            Ok(respond::no_content())
        };
        answer().unwrap_or_else(IntoResponse::into_response)
    })
    .await
}

/// `POST /events/v3/send/batch` → 204, 400 (the whole batch, at its first bad input).
pub(super) async fn send_batch(State(shared): State<Arc<Shared>>, body: BodyBytes) -> Response {
    write_request(shared, move |shared| {
        let answer = || -> Result<Response, ApiError> {
            let batch: Batch = respond::parse_body(body)?;
            let mut store = lock(&shared.store);
            events::send(&mut store, batch.inputs, true, Utc::now())?;
            Ok(respond::no_content())
        };
        answer().unwrap_or_else(IntoResponse::into_response)
    })
    .await
}
