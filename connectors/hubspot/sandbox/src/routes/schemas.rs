//! The custom object schema routes (crm-schemas-v3.json): list, create, get one.
//!
//! Built-in object types have no schema here: the contract describes these routes for custom
//! objects only, so `GET …/schemas/contacts` is a 404 like any unknown name.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};

use super::objects::{BodyBytes, QueryPairs, QueryParams};
use crate::errors::ApiError;
use crate::respond;
use crate::schema::{self, Include, SchemaEgg};
use crate::state::{Shared, lock};

fn include(query: &QueryParams) -> Include {
    let on = |key: &str| query.one(key) != Some("false");
    Include {
        properties: on("includePropertyDefinitions"),
        associations: on("includeAssociationDefinitions"),
    }
}

/// `GET /crm-object-schemas/v3/schemas` → `CollectionResponseObjectSchemaNoPaging`.
pub(super) async fn list(State(shared): State<Arc<Shared>>, query: QueryPairs) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let query = QueryParams::from(query)?;
        let include = include(&query);
        // Nothing is ever archived, so `archived=true` lists nothing.
        let archived = query.one("archived") == Some("true");
        let store = lock(&shared.store);
        let results: Vec<Value> = store
            .registry()
            .customs()
            .filter(|_| !archived)
            .filter_map(|(_, def)| schema::to_json(def, include))
            .collect();
        Ok(respond::ok(&json!({"results": results})))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `POST /crm-object-schemas/v3/schemas` → 201 `ObjectSchema`, 400, 409 for a taken name.
pub(super) async fn create(State(shared): State<Arc<Shared>>, body: BodyBytes) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let egg: SchemaEgg = respond::parse_body(body)?;
        let mut store = lock(&shared.store);
        let object = store.create_schema(egg, Utc::now())?;
        let include = Include {
            properties: true,
            associations: true,
        };
        let body = schema::to_json(store.def(object), include).unwrap_or_default();
        Ok(respond::json(StatusCode::CREATED, &body))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `GET /crm-object-schemas/v3/schemas/{objectType}` by type id, fully qualified name,
/// `p_<name>` or name → `ObjectSchema`, or 404.
pub(super) async fn get_one(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    query: QueryPairs,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let Path(segment) = path.map_err(|r| ApiError::validation(r.body_text()))?;
        let query = QueryParams::from(query)?;
        let store = lock(&shared.store);
        let body = store
            .registry()
            .resolve_custom(&segment)
            .and_then(|object| schema::to_json(store.def(object), include(&query)))
            .ok_or_else(|| {
                ApiError::not_found(format!("Unable to find object type: {segment}"))
                    .context("objectType", vec![segment.clone()])
            })?;
        Ok(respond::ok(&body))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}
