//! The record routes that create and archive: single and batch create, batch archive, delete.
//!
//! Every one is a write request (numbered for the `hang_before_write` / `hang_after_write`
//! faults); the rules live in `create`.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::objects::{BodyBytes, PathParam, object_type, segment, write_request};
use crate::create::{self, ArchiveBody, CreateBody, CreateInput};
use crate::errors::ApiError;
use crate::respond;
use crate::state::{Shared, lock};

/// `POST /crm/v3/objects/{objectType}` → 201 `SimplePublicObject`, 400, 409 (FACTS E4).
pub(super) async fn create_one(
    State(shared): State<Arc<Shared>>,
    path: PathParam,
    body: BodyBytes,
) -> Response {
    write_request(shared, move |shared| {
        let answer = || -> Result<Response, ApiError> {
            let segment = segment(path)?;
            let input: CreateInput = respond::parse_body(body)?;
            let mut store = lock(&shared.store);
            let object = object_type(&store, &segment)?;
            let record = create::create_one(&mut store, object, input, Utc::now())?;
            Ok(respond::json(StatusCode::CREATED, &record))
        };
        answer().unwrap_or_else(IntoResponse::into_response)
    })
    .await
}

/// `POST /crm/v3/objects/{objectType}/batch/create` → 201, 207 (multi-status mode), 400, 409.
pub(super) async fn batch_create(
    State(shared): State<Arc<Shared>>,
    path: PathParam,
    body: BodyBytes,
) -> Response {
    let started_at = Utc::now();
    write_request(shared, move |shared| {
        let answer = || -> Result<Response, ApiError> {
            let segment = segment(path)?;
            let body: CreateBody = respond::parse_body(body)?;
            let whole_batch = lock(&shared.faults).settings().whole_batch_conflicts;
            let mut store = lock(&shared.store);
            let object = object_type(&store, &segment)?;
            let max = shared.max_batch_inputs;
            let (status, body) =
                create::create_batch(&mut store, object, body, max, started_at, whole_batch)?;
            Ok(respond::json(status, &body))
        };
        answer().unwrap_or_else(IntoResponse::into_response)
    })
    .await
}

/// `POST /crm/v3/objects/{objectType}/batch/archive` → 204 (unknown ids ignored), 400.
pub(super) async fn batch_archive(
    State(shared): State<Arc<Shared>>,
    path: PathParam,
    body: BodyBytes,
) -> Response {
    write_request(shared, move |shared| {
        let answer = || -> Result<Response, ApiError> {
            let segment = segment(path)?;
            let body: ArchiveBody = respond::parse_body(body)?;
            let mut store = lock(&shared.store);
            let object = object_type(&store, &segment)?;
            create::archive_batch(&mut store, object, body, shared.max_batch_inputs)?;
            Ok(respond::no_content())
        };
        answer().unwrap_or_else(IntoResponse::into_response)
    })
    .await
}

/// `DELETE /crm/v3/objects/{objectType}/{objectId}` → 204, whether or not the record exists.
pub(super) async fn archive_one(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    write_request(shared, move |shared| {
        let answer = || -> Result<Response, ApiError> {
            let Path((segment, id)) = path.map_err(|r| ApiError::validation(r.body_text()))?;
            let mut store = lock(&shared.store);
            let object = object_type(&store, &segment)?;
            if let Ok(id) = id.trim().parse() {
                store.archive(object, id);
            }
            Ok(respond::no_content())
        };
        answer().unwrap_or_else(IntoResponse::into_response)
    })
    .await
}
