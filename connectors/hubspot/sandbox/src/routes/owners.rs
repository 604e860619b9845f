//! The owners routes (no contract file covers them; see `owners` for the documented shape).

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::objects::{QueryPairs, QueryParams};
use crate::errors::ApiError;
use crate::owners::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::respond;
use crate::state::{Shared, lock};

/// `GET /crm/v3/owners?email&after&limit&archived` → 200 `CollectionResponsePublicOwner…`
/// in id order (`archived=true` lists none: the sandbox archives no owner), 400.
pub(super) async fn list(State(shared): State<Arc<Shared>>, query: QueryPairs) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let query = QueryParams::from(query)?;
        let limit = match query.one("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::validation(format!(
                        "limit must be a number between 1 and {MAX_LIMIT}, got {text}"
                    ))
                })?,
        };
        let after = match query.one("after").filter(|a| !a.is_empty()) {
            None => 0,
            Some(text) => text
                .parse()
                .map_err(|_| ApiError::validation(format!("Invalid paging cursor after={text}")))?,
        };
        let store = lock(&shared.store);
        let (results, next) = if query.one("archived") == Some("true") {
            (Vec::new(), None)
        } else {
            store.owners.page(query.one("email"), after, limit)
        };
        let mut body = json!({ "results": results });
        if let Some(next) = next {
            let link = format!("/crm/v3/owners?after={next}");
            body["paging"] = json!({"next": {"after": next, "link": link}});
        }
        Ok(respond::ok(&body))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

/// `GET /crm/v3/owners/{ownerId}?idProperty=id|userId` → 200 `PublicOwner`, 400, 404.
pub(super) async fn get_one(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    query: QueryPairs,
) -> Response {
    let answer = || -> Result<Response, ApiError> {
        let Path(id) = path.map_err(|r| ApiError::validation(r.body_text()))?;
        let query = QueryParams::from(query)?;
        let by_user_id = match query.one("idProperty") {
            None | Some("id") => false,
            Some("userId") => true,
            Some(other) => {
                return Err(ApiError::validation(format!(
                    "idProperty must be id or userId, got {other}"
                )));
            }
        };
        let owner = lock(&shared.store).owners.get(&id, by_user_id)?;
        Ok(respond::ok(&owner))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}
