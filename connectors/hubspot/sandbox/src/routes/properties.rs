//! The property routes: the registry of an object type, whole or one property, creating a
//! property (`PropertyCreate`, see `property_create`) and changing one (`PropertyUpdate`).

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};

use super::objects::{BodyBytes, object_type, segment};
use crate::errors::{ApiError, category};
use crate::properties::PropertyDef;
use crate::property_create::PropertyInput;
use crate::registry::ObjectType;
use crate::respond;
use crate::state::{Shared, lock};
use crate::store::Store;

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
        let (index, property) = find(&store, object, &name)?;
        Ok(respond::ok(&property.to_json(index)))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `POST /crm/v3/properties/{objectType}` → 201 `Property`, 400 for a bad definition, 409 when
/// the object type already has a property of that name.
pub(super) async fn create(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    body: BodyBytes,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let segment = segment(path)?;
        let input: PropertyInput = respond::parse_body(body)?;
        let mut store = lock(&shared.store);
        let object = object_type(&store, &segment)?;
        let name = input.name.clone().unwrap_or_default();
        if store.def(object).property(&name).is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                category::CONFLICT,
                format!("A property named '{name}' already exists."),
            )
            .context("name", vec![name]));
        }
        let property = input.build(None, Utc::now())?;
        let position = store.def(object).properties.len();
        let body = property.to_json(position);
        let location = format!("/crm/v3/properties/{segment}/{name}");
        store.add_property(object, property);
        let mut response = respond::json(StatusCode::CREATED, &body);
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        Ok(response)
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `PATCH /crm/v3/properties/{objectType}/{propertyName}` → 200 `Property`, 400 for a change
/// HubSpot refuses (a HubSpot-defined property, a type and field type that do not fit), 404
/// for an unknown property.
pub(super) async fn update(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: BodyBytes,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let Path((segment, name)) = path.map_err(|r| ApiError::validation(r.body_text()))?;
        let input: PropertyInput = respond::parse_body(body)?;
        let mut store = lock(&shared.store);
        let object = object_type(&store, &segment)?;
        let (index, existing) = find(&store, object, &name)?;
        let changed = input.update(existing)?;
        let body = changed.to_json(index);
        store.replace_property(object, changed);
        Ok(respond::ok(&body))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// The property `name` of an object type and its position in the registry, or HubSpot's 404.
fn find<'s>(
    store: &'s Store,
    object: ObjectType,
    name: &str,
) -> Result<(usize, &'s PropertyDef), ApiError> {
    store
        .def(object)
        .properties
        .iter()
        .enumerate()
        .find(|(_, p)| p.name == name)
        .ok_or_else(|| {
            ApiError::not_found(format!("Property \"{name}\" does not exist"))
                .context("propertyName", vec![name.to_owned()])
        })
}
