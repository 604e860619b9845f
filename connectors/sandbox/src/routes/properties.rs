//! The property routes: the registry of an object type, whole or one property.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::objects::{object_type, segment};
use crate::errors::ApiError;
use crate::respond;
use crate::state::{Shared, lock};

/// `GET /crm/v3/properties/{objectType}` → `CollectionResponsePropertyNoPaging`.
pub(super) async fn list(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let segment = segment(path)?;
        let store = lock(&shared.store);
        let object = object_type(&store, &segment)?;
        let results: Vec<Value> = store
            .def(object)
            .properties
            .iter()
            .enumerate()
            .map(|(i, p)| p.to_json(i))
            .collect();
        Ok(respond::ok(&json!({"results": results})))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `GET /crm/v3/properties/{objectType}/{propertyName}` → `Property`, or 404.
pub(super) async fn get_one(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let Path((segment, name)) = path.map_err(|r| ApiError::validation(r.body_text()))?;
        let store = lock(&shared.store);
        let object = object_type(&store, &segment)?;
        let (index, property) = store
            .def(object)
            .properties
            .iter()
            .enumerate()
            .find(|(_, p)| p.name == name)
            .ok_or_else(|| {
                ApiError::not_found(format!("Property \"{name}\" does not exist"))
                    .context("propertyName", vec![name.clone()])
            })?;
        Ok(respond::ok(&property.to_json(index)))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}
