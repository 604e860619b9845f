//! The associations v4 routes: batches between two object types, the single-record routes,
//! and the label definitions (crm-associations-v4.json, crm-associations-v4-labels.json).
//!
//! Handlers parse, lock and answer; the rules live in `association_batch` and
//! `association_types`. Association writes are write requests (numbered, and subject to the
//! write faults) like record writes.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::objects::{BodyBytes, QueryPairs, QueryParams, object_type, write_request};
use crate::association_batch::{
    self, ArchiveBody, DefaultBody, LabelledBody, Pair, ReadBody, Spec,
};
use crate::association_types::AssociationType;
use crate::errors::ApiError;
use crate::respond;
use crate::state::{Shared, lock};
use crate::store::Store;

/// `{fromObjectType}/{toObjectType}`.
type PairPath = Result<Path<(String, String)>, PathRejection>;
/// `{objectType}/{objectId}/…/{toObjectType}/{toObjectId}`.
type RecordPairPath = Result<Path<(String, String, String, String)>, PathRejection>;

fn pair(store: &Store, from: &str, to: &str) -> Result<Pair, ApiError> {
    Ok(Pair {
        from: object_type(store, from)?,
        to: object_type(store, to)?,
    })
}

fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    let Path(value) = path.map_err(|r| ApiError::validation(r.body_text()))?;
    Ok(value)
}

/// Runs a write and answers its result or its refusal.
async fn write(
    shared: Arc<Shared>,
    apply: impl FnOnce(&Shared) -> Result<Response, ApiError> + Send + 'static,
) -> Response {
    write_request(shared, move |shared| {
        apply(shared).unwrap_or_else(IntoResponse::into_response)
    })
    .await
}

/// `POST /crm/v4/associations/{from}/{to}/batch/create` → 201, 207 (missing records), 400.
pub(super) async fn batch_create(
    State(shared): State<Arc<Shared>>,
    names: PairPath,
    body: BodyBytes,
) -> Response {
    let started_at = Utc::now();
    write(shared, move |shared| {
        let (from, to) = path(names)?;
        let body: LabelledBody = respond::parse_body(body)?;
        let mut store = lock(&shared.store);
        let pair = pair(&store, &from, &to)?;
        let outcome = association_batch::create(&mut store, pair, body)?;
        let (status, body) = outcome.into_wire_with(StatusCode::CREATED, started_at);
        Ok(respond::json(status, &body))
    })
    .await
}

/// `POST /crm/v4/associations/{from}/{to}/batch/associate/default` → 200 (errors in the
/// body), 400.
pub(super) async fn batch_default(
    State(shared): State<Arc<Shared>>,
    names: PairPath,
    body: BodyBytes,
) -> Response {
    let started_at = Utc::now();
    write(shared, move |shared| {
        let (from, to) = path(names)?;
        let body: DefaultBody = respond::parse_body(body)?;
        let mut store = lock(&shared.store);
        let pair = pair(&store, &from, &to)?;
        let outcome = association_batch::create_default(&mut store, pair, body.pairs())?;
        Ok(respond::ok(&association_batch::always_ok(
            outcome, started_at,
        )))
    })
    .await
}

/// `POST /crm/v4/associations/{from}/{to}/batch/read` → 200, 207, 400.
pub(super) async fn batch_read(
    State(shared): State<Arc<Shared>>,
    names: PairPath,
    body: BodyBytes,
) -> Response {
    let started_at = Utc::now();
    let answer = || -> Result<Response, ApiError> {
        let (from, to) = path(names)?;
        let body: ReadBody = respond::parse_body(body)?;
        let store = lock(&shared.store);
        let pair = pair(&store, &from, &to)?;
        let outcome = association_batch::read(&store, pair, body)?;
        let (status, body) = outcome.into_wire(started_at);
        Ok(respond::json(status, &body))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `POST /crm/v4/associations/{from}/{to}/batch/archive` → 204, 400.
pub(super) async fn batch_archive(
    State(shared): State<Arc<Shared>>,
    names: PairPath,
    body: BodyBytes,
) -> Response {
    write(shared, move |shared| {
        let (from, to) = path(names)?;
        let body: ArchiveBody = respond::parse_body(body)?;
        let mut store = lock(&shared.store);
        let pair = pair(&store, &from, &to)?;
        association_batch::archive(&mut store, pair, body)?;
        Ok(respond::no_content())
    })
    .await
}

/// `POST /crm/v4/associations/{from}/{to}/batch/labels/archive` → 204, 400.
pub(super) async fn batch_archive_labels(
    State(shared): State<Arc<Shared>>,
    names: PairPath,
    body: BodyBytes,
) -> Response {
    write(shared, move |shared| {
        let (from, to) = path(names)?;
        let body: LabelledBody = respond::parse_body(body)?;
        let mut store = lock(&shared.store);
        let pair = pair(&store, &from, &to)?;
        association_batch::archive_labels(&mut store, pair, body)?;
        Ok(respond::no_content())
    })
    .await
}

/// `PUT /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}`
/// (body: `[AssociationSpec]`) → 201 `LabelsBetweenObjectPair`, 400, 404.
pub(super) async fn put_one(
    State(shared): State<Arc<Shared>>,
    names: RecordPairPath,
    body: BodyBytes,
) -> Response {
    write(shared, move |shared| {
        let (from, from_id, to, to_id) = path(names)?;
        let specs: Vec<Spec> = respond::parse_body(body)?;
        let mut store = lock(&shared.store);
        let pair = pair(&store, &from, &to)?;
        let body = association_batch::create_one(&mut store, pair, [&from_id, &to_id], &specs)?;
        Ok(respond::json(StatusCode::CREATED, &body))
    })
    .await
}

/// `PUT /crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/
/// {toObjectId}` → 200 `BatchResponsePublicDefaultAssociation`, 400, 404.
pub(super) async fn put_default(
    State(shared): State<Arc<Shared>>,
    names: RecordPairPath,
) -> Response {
    let started_at = Utc::now();
    write(shared, move |shared| {
        let (from, from_id, to, to_id) = path(names)?;
        let mut store = lock(&shared.store);
        let pair = pair(&store, &from, &to)?;
        let mut outcome = association_batch::create_default(
            &mut store,
            pair,
            [[from_id.as_str(), to_id.as_str()]].into_iter(),
        )?;
        if let Some(error) = outcome.errors.pop() {
            return Err(error.into_api_error());
        }
        Ok(respond::ok(&association_batch::always_ok(
            outcome, started_at,
        )))
    })
    .await
}

/// `DELETE /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}`
/// → 204 (also when nothing was associated).
pub(super) async fn delete_one(
    State(shared): State<Arc<Shared>>,
    names: RecordPairPath,
) -> Response {
    write(shared, move |shared| {
        let (from, from_id, to, to_id) = path(names)?;
        let mut store = lock(&shared.store);
        let pair = pair(&store, &from, &to)?;
        association_batch::archive_one(&mut store, pair, [&from_id, &to_id]);
        Ok(respond::no_content())
    })
    .await
}

/// `GET /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}?after&limit` →
/// 200 `CollectionResponseMultiAssociatedObjectWithLabelForwardPaging`, 400, 404.
pub(super) async fn list_one(
    State(shared): State<Arc<Shared>>,
    names: Result<Path<(String, String, String)>, PathRejection>,
    query: QueryPairs,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let (from, from_id, to) = path(names)?;
        let query = QueryParams::from(query)?;
        let limit = match query.one("limit") {
            None => association_batch::PAGE,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=association_batch::PAGE).contains(n))
                .ok_or_else(|| {
                    ApiError::validation(format!(
                        "limit must be a number between 1 and {}, got {text}",
                        association_batch::PAGE
                    ))
                })?,
        };
        let after = association_batch::cursor(query.one("after"))?;
        let store = lock(&shared.store);
        let pair = pair(&store, &from, &to)?;
        let id = association_batch::live(&store, pair.from, &from_id).ok_or_else(|| {
            ApiError::not_found(format!(
                "No {} with id {from_id} exists",
                store.def(pair.from).upper()
            ))
        })?;
        let (results, next) = association_batch::page(&store, pair, (pair.from, id), after, limit);
        let mut body = json!({ "results": results });
        if let Some(next) = next {
            let link = format!("/crm/v4/objects/{from}/{from_id}/associations/{to}?after={next}");
            body["paging"] = json!({"next": {"after": next, "link": link}});
        }
        Ok(respond::ok(&body))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `CollectionResponseAssociationSpecWithLabelNoPaging`.
fn labels_json<'a>(types: impl Iterator<Item = &'a AssociationType>) -> Value {
    json!({"results": types.map(AssociationType::to_json).collect::<Vec<_>>()})
}

/// `GET /crm/v4/associations/{from}/{to}/labels` → 200 (every type of the pair), 400.
pub(super) async fn labels_list(State(shared): State<Arc<Shared>>, names: PairPath) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let (from, to) = path(names)?;
        let store = lock(&shared.store);
        let pair = pair(&store, &from, &to)?;
        let [from, to] = [pair.from, pair.to].map(|o| store.def(o).type_id.to_string());
        Ok(respond::ok(&labels_json(
            store.association_types.for_pair(&from, &to),
        )))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `PublicAssociationDefinitionCreateRequest`.
#[derive(Debug, Deserialize)]
struct LabelCreate {
    label: String,
    name: String,
}

/// `PublicAssociationDefinitionUpdateRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LabelUpdate {
    association_type_id: u64,
    label: String,
}

/// `POST /crm/v4/associations/{from}/{to}/labels` → 200 with the new type and its inverse
/// (this direction first), 400, 409 for a taken name.
pub(super) async fn labels_create(
    State(shared): State<Arc<Shared>>,
    names: PairPath,
    body: BodyBytes,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let (from, to) = path(names)?;
        let body: LabelCreate = respond::parse_body(body)?;
        let mut store = lock(&shared.store);
        let pair = pair(&store, &from, &to)?;
        let [from, to] = [pair.from, pair.to].map(|o| store.def(o).type_id.to_string());
        let store = &mut *store;
        let created = store.association_types.create_label(
            [&from, &to],
            &body.label,
            &body.name,
            &mut store.next_association,
        )?;
        Ok(respond::ok(&labels_json(created.iter())))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `PUT /crm/v4/associations/{from}/{to}/labels` → 204, 400 (not a user-defined label), 404.
pub(super) async fn labels_update(
    State(shared): State<Arc<Shared>>,
    names: PairPath,
    body: BodyBytes,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let (from, to) = path(names)?;
        let body: LabelUpdate = respond::parse_body(body)?;
        let mut store = lock(&shared.store);
        let pair = pair(&store, &from, &to)?;
        let [from, to] = [pair.from, pair.to].map(|o| store.def(o).type_id.to_string());
        store
            .association_types
            .rename([&from, &to], body.association_type_id, &body.label)?;
        Ok(respond::no_content())
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /crm/v4/associations/{from}/{to}/labels/{associationTypeId}` → 204; the label
/// leaves every association that had it. 400 (not a user-defined label), 404.
pub(super) async fn labels_delete(
    State(shared): State<Arc<Shared>>,
    names: Result<Path<(String, String, String)>, PathRejection>,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let (from, to, id) = path(names)?;
        let id: u64 = id.trim().parse().map_err(|_| {
            ApiError::validation(format!("associationTypeId must be a number, got {id}"))
        })?;
        let mut store = lock(&shared.store);
        let pair = pair(&store, &from, &to)?;
        let [from, to] = [pair.from, pair.to].map(|o| store.def(o).type_id.to_string());
        let ids = store.association_types.remove([&from, &to], id)?;
        store.associations.remove_type([pair.from, pair.to], ids);
        Ok(respond::no_content())
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}
