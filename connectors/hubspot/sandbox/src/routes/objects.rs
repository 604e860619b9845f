//! The CRM object routes: batch upsert/update/read, search, list and get by id.
//!
//! Handlers only extract, lock and answer; the rules live in `batch` and `search` (creates and
//! archives are in `routes::create`). Extractor
//! failures are taken as `Result`s so that every refusal has HubSpot's JSON error body. Write
//! requests are numbered here, which is where the `hang_before_write` / `hang_after_write`
//! faults hold them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use crate::batch::{self, ReadBody, WriteBody};
use crate::errors::{ApiError, category};
use crate::record::{Record, Selection};
use crate::registry::ObjectType;
use crate::respond;
use crate::search::{self, SearchBody};
use crate::state::{Shared, lock};
use crate::store::Store;

const LIST_MAX_LIMIT: usize = 100;
const LIST_DEFAULT_LIMIT: usize = 10;

/// The `{objectType}` path parameter, or why it could not be read.
pub(super) type PathParam = Result<Path<String>, PathRejection>;
/// The query string as pairs, or why it could not be read.
pub(super) type QueryPairs = Result<Query<Vec<(String, String)>>, QueryRejection>;
/// The request body, or why it could not be read.
pub(super) type BodyBytes = Result<Bytes, BytesRejection>;

/// The object type named by a path segment, or HubSpot's 400 for an unknown one.
pub(super) fn object_type(store: &Store, segment: &str) -> Result<ObjectType, ApiError> {
    store
        .resolve(segment)
        .ok_or_else(|| ApiError::validation(format!("Unable to infer object type from: {segment}")))
}

/// The `{objectType}` segment of a path.
pub(super) fn segment(path: PathParam) -> Result<String, ApiError> {
    let Path(segment) = path.map_err(|r| ApiError::validation(r.body_text()))?;
    Ok(segment)
}

/// Query parameters as pairs; `properties=a,b` and `properties=a&properties=b` both work.
pub(super) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub(super) fn from(query: QueryPairs) -> Result<Self, ApiError> {
        let Query(pairs) = query.map_err(|r| ApiError::validation(r.body_text()))?;
        Ok(QueryParams(pairs))
    }

    pub(super) fn one(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn list(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(','))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

#[derive(Clone, Copy)]
enum WriteKind {
    Upsert,
    Update,
}

/// `POST /crm/v3/objects/{objectType}/batch/upsert`.
pub(super) async fn batch_upsert(
    State(shared): State<Arc<Shared>>,
    path: PathParam,
    body: BodyBytes,
) -> Response {
    write(shared, path, body, WriteKind::Upsert).await
}

/// `POST /crm/v3/objects/{objectType}/batch/update`.
pub(super) async fn batch_update(
    State(shared): State<Arc<Shared>>,
    path: PathParam,
    body: BodyBytes,
) -> Response {
    write(shared, path, body, WriteKind::Update).await
}

async fn write(shared: Arc<Shared>, path: PathParam, body: BodyBytes, kind: WriteKind) -> Response {
    let started_at = Utc::now();
    write_request(shared, move |shared| {
        apply_write(shared, path, body, kind, started_at)
            .unwrap_or_else(IntoResponse::into_response)
    })
    .await
}

/// Numbers a write request and runs it, holding it before or after if a fault says so
/// (`hang_before_write` / `hang_after_write`).
pub(super) async fn write_request(
    shared: Arc<Shared>,
    apply: impl FnOnce(&Shared) -> Response,
) -> Response {
    let sequence = shared.next_write();
    let (hang_before_write, hang_after_write) = shared.hangs();
    if hang_before_write == Some(sequence) {
        tracing::info!(sequence, "Holding write request before applying it.");
        if shared.hang().await {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "The sandbox is shutting down",
            )
            .into_response();
        }
    }
    let response = apply(&shared);
    if hang_after_write == Some(sequence) {
        tracing::info!(sequence, "Holding write request after applying it.");
        shared.hang().await;
    }
    response
}

fn apply_write(
    shared: &Shared,
    path: PathParam,
    body: BodyBytes,
    kind: WriteKind,
    started_at: chrono::DateTime<Utc>,
) -> Result<Response, ApiError> {
    let segment = segment(path)?;
    let body: WriteBody = respond::parse_body(body)?;
    let outcome = {
        let mut store = lock(&shared.store);
        let object = object_type(&store, &segment)?;
        let writes = batch::check_writes(store.def(object), body.inputs, shared.max_batch_inputs)?;
        match kind {
            WriteKind::Upsert => batch::upsert(&mut store, object, &writes, Utc::now()),
            WriteKind::Update => batch::update(&mut store, object, &writes, Utc::now()),
        }
    };
    let (status, body) = outcome.into_wire(started_at);
    Ok(respond::json(status, &body))
}

/// `POST /crm/v3/objects/{objectType}/batch/read`.
pub(super) async fn batch_read(
    State(shared): State<Arc<Shared>>,
    path: PathParam,
    body: BodyBytes,
) -> Response {
    let started_at = Utc::now();
    let answer = || -> Result<Response, ApiError> {
        let segment = segment(path)?;
        let body: ReadBody = respond::parse_body(body)?;
        let store = lock(&shared.store);
        let object = object_type(&store, &segment)?;
        let outcome = batch::read(&store, object, body, shared.max_batch_inputs)?;
        let (status, body) = outcome.into_wire(started_at);
        Ok(respond::json(status, &body))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `POST /crm/v3/objects/{objectType}/search`.
pub(super) async fn search(
    State(shared): State<Arc<Shared>>,
    path: PathParam,
    body: BodyBytes,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let segment = segment(path)?;
        let body: SearchBody = respond::parse_body(body)?;
        let store = lock(&shared.store);
        let object = object_type(&store, &segment)?;
        let result = search::run(&store, object, body)?;
        Ok(respond::ok(&result))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `GET /crm/v3/objects/{objectType}`: pages in id order, `after` is the last id returned.
pub(super) async fn list(
    State(shared): State<Arc<Shared>>,
    path: PathParam,
    query: QueryPairs,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let segment = segment(path)?;
        let query = QueryParams::from(query)?;
        let limit = match query.one("limit") {
            None => LIST_DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=LIST_MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::validation(format!(
                        "limit must be a number between 1 and {LIST_MAX_LIMIT}, got {text}"
                    ))
                })?,
        };
        let after = match query.one("after").filter(|a| !a.is_empty()) {
            None => 0,
            Some(text) => text
                .parse::<u64>()
                .map_err(|_| ApiError::validation(format!("Invalid paging cursor after={text}")))?,
        };
        let archived = query.one("archived") == Some("true");
        let selection = Selection::from_request(query.list("properties"));
        let store = lock(&shared.store);
        let object = object_type(&store, &segment)?;
        let def = store.def(object);
        // Archived records are gone for good here, so `archived=true` lists nothing.
        let mut remaining = store
            .records_after(object, after)
            .filter(|_| !archived)
            .take(limit + 1);
        let page: Vec<&Record> = remaining.by_ref().take(limit).collect();
        let more = remaining.next().is_some();
        let mut body = json!({"results": page
            .iter()
            .map(|r| r.to_json(def, &selection))
            .collect::<Vec<_>>()});
        if let Some(last) = page.last().filter(|_| more) {
            let next = last.id.to_string();
            let link = format!("/crm/v3/objects/{}?after={next}", def.path_name());
            body["paging"] = json!({"next": {"after": next, "link": link}});
        }
        Ok(respond::ok(&body))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `GET /crm/v3/objects/{objectType}/{id}` (`idProperty` reads by a unique property).
pub(super) async fn get_one(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: QueryPairs,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let Path((segment, id)) = path.map_err(|r| ApiError::validation(r.body_text()))?;
        let query = QueryParams::from(query)?;
        let store = lock(&shared.store);
        let object = object_type(&store, &segment)?;
        let def = store.def(object);
        let id_property = query.one("idProperty").unwrap_or("hs_object_id");
        if !def.is_unique(id_property) {
            return Err(ApiError::validation(format!(
                "idProperty {id_property} is not a unique property of {}",
                def.type_id
            )));
        }
        let selection = Selection::from_request(query.list("properties"));
        let record = store.find(object, id_property, &id).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                category::OBJECT_NOT_FOUND,
                "Object not found.  objectId are usually numeric.",
            )
            .context("id", vec![id.clone()])
        })?;
        Ok(respond::ok(&record.to_json(def, &selection)))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}
