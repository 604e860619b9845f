//! The lists routes (crm-lists-v3.json): create, search, get by id or name, delete, and
//! memberships (add, remove, add-and-remove, read, remove all).
//!
//! Handlers parse, lock and answer; the rules live in `lists`. Membership changes are write
//! requests (numbered, and subject to the write faults) like record writes.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::objects::{BodyBytes, QueryPairs, QueryParams, object_type, write_request};
use crate::errors::ApiError;
use crate::lists::{self, ListEgg, SearchBody};
use crate::respond;
use crate::state::{Shared, lock};
use crate::store::Store;

/// Most memberships one read returns (crm-lists-v3.json: "The maximum `limit` is 250").
const MAX_MEMBERSHIP_LIMIT: usize = 250;
const DEFAULT_MEMBERSHIP_LIMIT: usize = 100;

type IdPath = Result<Path<String>, PathRejection>;

/// The record ids to add and to remove, as sent.
type AddRemove = (Vec<String>, Vec<String>);

/// Reads [`AddRemove`] from a membership request body.
type ParseChange = fn(BodyBytes) -> Result<AddRemove, ApiError>;

fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    let Path(value) = path.map_err(|r| ApiError::validation(r.body_text()))?;
    Ok(value)
}

fn include_filters(query: &QueryParams) -> bool {
    query.one("includeFilters") == Some("true")
}

/// `POST /crm/v3/lists` → 200 `ListCreateResponse`, 400, 409 for a taken name.
pub(super) async fn create(State(shared): State<Arc<Shared>>, body: BodyBytes) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let egg: ListEgg = respond::parse_body(body)?;
        let mut store = lock(&shared.store);
        let object = object_type(&store, &egg.object_type_id)?;
        let type_id = store.def(object).type_id.to_string();
        let list = store.lists.create(egg, object, &type_id, Utc::now())?;
        Ok(respond::ok(&json!({"list": list.to_json(true)})))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `GET /crm/v3/lists?listIds=…&includeFilters` → 200 `ListsByIdResponse` (unknown ids are
/// left out).
pub(super) async fn by_ids(State(shared): State<Arc<Shared>>, query: QueryPairs) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let query = QueryParams::from(query)?;
        let store = lock(&shared.store);
        let filters = include_filters(&query);
        let found: Vec<_> = query
            .list("listIds")
            .iter()
            .filter_map(|id| store.lists.get(id).ok())
            .map(|l| l.to_json(filters))
            .collect();
        Ok(respond::ok(&json!({ "lists": found })))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `POST /crm/v3/lists/search` → 200 `ListSearchResponse`, 400.
pub(super) async fn search(State(shared): State<Arc<Shared>>, body: BodyBytes) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let body: SearchBody = respond::parse_body(body)?;
        let store = lock(&shared.store);
        Ok(respond::ok(&store.lists.search(&body)?))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `GET /crm/v3/lists/{listId}?includeFilters` → 200 `ListFetchResponse`, 404.
pub(super) async fn get_one(
    State(shared): State<Arc<Shared>>,
    id: IdPath,
    query: QueryPairs,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let id = path(id)?;
        let query = QueryParams::from(query)?;
        let store = lock(&shared.store);
        let list = store.lists.get(&id)?;
        Ok(respond::ok(
            &json!({"list": list.to_json(include_filters(&query))}),
        ))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `GET /crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}` → 200
/// `ListFetchResponse`, 400 (unknown object type), 404.
pub(super) async fn by_name(
    State(shared): State<Arc<Shared>>,
    names: Result<Path<(String, String)>, PathRejection>,
    query: QueryPairs,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let (object, name) = path(names)?;
        let query = QueryParams::from(query)?;
        let store = lock(&shared.store);
        let object = object_type(&store, &object)?;
        let list = store.lists.named(object, &name)?;
        Ok(respond::ok(
            &json!({"list": list.to_json(include_filters(&query))}),
        ))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /crm/v3/lists/{listId}` → 204, 404.
pub(super) async fn delete(State(shared): State<Arc<Shared>>, id: IdPath) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let id = path(id)?;
        lock(&shared.store).lists.delete(&id)?;
        Ok(respond::no_content())
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `MembershipChangeRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddAndRemove {
    #[serde(default)]
    record_ids_to_add: Vec<String>,
    #[serde(default)]
    record_ids_to_remove: Vec<String>,
}

/// The ids as sent, each with the record of the list's object type it names, if any.
fn resolve(
    store: &Store,
    list: &str,
    ids: Vec<String>,
) -> Result<Vec<(String, Option<u64>)>, ApiError> {
    let object = store.lists.get(list)?.object;
    Ok(ids
        .into_iter()
        .map(|text| {
            let record = text
                .trim()
                .parse()
                .ok()
                .filter(|id| store.get(object, *id).is_some());
            (text, record)
        })
        .collect())
}

/// A membership change: 200 `MembershipsUpdateResponse`, 400 (a `DYNAMIC` list, too many
/// ids), 404.
async fn change(shared: Arc<Shared>, id: IdPath, body: BodyBytes, parse: ParseChange) -> Response {
    write_request(shared, move |shared| {
        let answer = || -> Result<Response, ApiError> {
            let id = path(id)?;
            let (add, remove) = parse(body)?;
            let count = add.len() + remove.len();
            if count > lists::MAX_MEMBERSHIP_IDS {
                return Err(ApiError::validation(format!(
                    "Too many record ids in one request: got {count}, the limit is {}",
                    lists::MAX_MEMBERSHIP_IDS
                )));
            }
            let mut store = lock(&shared.store);
            let add = resolve(&store, &id, add)?;
            let remove = resolve(&store, &id, remove)?;
            let change = store.lists.change(&id, &add, &remove, Utc::now())?;
            Ok(respond::ok(&change.to_json()))
        };
        answer().unwrap_or_else(IntoResponse::into_response)
    })
    .await
}

/// `PUT /crm/v3/lists/{listId}/memberships/add` (body: record ids).
pub(super) async fn add(
    State(shared): State<Arc<Shared>>,
    id: IdPath,
    body: BodyBytes,
) -> Response {
    change(shared, id, body, |body| {
        Ok((respond::parse_body(body)?, Vec::new()))
    })
    .await
}

/// `PUT /crm/v3/lists/{listId}/memberships/remove` (body: record ids).
pub(super) async fn remove(
    State(shared): State<Arc<Shared>>,
    id: IdPath,
    body: BodyBytes,
) -> Response {
    change(shared, id, body, |body| {
        Ok((Vec::new(), respond::parse_body(body)?))
    })
    .await
}

/// `PUT /crm/v3/lists/{listId}/memberships/add-and-remove`.
pub(super) async fn add_and_remove(
    State(shared): State<Arc<Shared>>,
    id: IdPath,
    body: BodyBytes,
) -> Response {
    change(shared, id, body, |body| {
        let body: AddAndRemove = respond::parse_body(body)?;
        Ok((body.record_ids_to_add, body.record_ids_to_remove))
    })
    .await
}

/// `DELETE /crm/v3/lists/{listId}/memberships` → 204, 400 (a `DYNAMIC` list), 404.
pub(super) async fn empty(State(shared): State<Arc<Shared>>, id: IdPath) -> Response {
    write_request(shared, move |shared| {
        let answer = || -> Result<Response, ApiError> {
            let id = path(id)?;
            lock(&shared.store).lists.empty(&id, Utc::now())?;
            Ok(respond::no_content())
        };
        answer().unwrap_or_else(IntoResponse::into_response)
    })
    .await
}

/// A record-id cursor from the query, or the 400 for a malformed one.
fn cursor(query: &QueryParams, key: &str) -> Result<Option<u64>, ApiError> {
    match query.one(key).map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| ApiError::validation(format!("Invalid paging cursor {key}={text}"))),
    }
}

/// `GET /crm/v3/lists/{listId}/memberships?after&before&limit` → 200
/// `ApiCollectionResponseJoinTimeAndRecordId` in record id order, 400, 404.
pub(super) async fn memberships(
    State(shared): State<Arc<Shared>>,
    id: IdPath,
    query: QueryPairs,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let id = path(id)?;
        let query = QueryParams::from(query)?;
        let limit = match query.one("limit") {
            None => DEFAULT_MEMBERSHIP_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_MEMBERSHIP_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::validation(format!(
                        "limit must be a number between 1 and {MAX_MEMBERSHIP_LIMIT}, got {text}"
                    ))
                })?,
        };
        let after = cursor(&query, "after")?;
        let before = cursor(&query, "before")?;
        let store = lock(&shared.store);
        let page = store.lists.page(&id, after, before, limit)?;
        let total = store.lists.get(&id)?.size();
        let results: Vec<_> = page
            .members
            .iter()
            .map(|(record, at)| {
                json!({
                    "recordId": record.to_string(),
                    "membershipTimestamp": crate::record::iso(*at),
                })
            })
            .collect();
        let mut body = json!({"results": results, "total": total});
        if let Some(next) = page.next {
            body["paging"] = if after.is_none() && before.is_some() {
                json!({"prev": {"before": next.to_string()}})
            } else {
                json!({"next": {"after": next.to_string()}})
            };
        }
        Ok(respond::ok(&body))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}
