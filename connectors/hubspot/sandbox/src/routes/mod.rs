//! The router and the middleware every request passes through.
//!
//! Order for an API request: correlation id → count by route kind → auth (401, FACTS E3) →
//! injected latency → the `daily_limit_reached` fault (429 `DAILY`) → rate limits (429, FACTS
//! R5) → injected 403 `MISSING_SCOPES` → 477 → 423 (writes) → 5xx (writes) → handler → dropped
//! connection (writes, after the handler ran) → rate-limit headers (not on search, FACTS R3).
//! `/_sandbox/` routes skip all of it. Every response, errors included, carries
//! `X-HubSpot-Correlation-Id`; the bodies of the refusals are built in `refusals`.

mod associations;
mod control;
mod create;
mod events;
mod lists;
mod objects;
mod owners;
mod properties;
mod refusals;
mod schemas;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use chrono::Utc;

use crate::errors::{ApiError, category};
use crate::faults::Injected;
use crate::rate_limit::{Bucket, Policy, Refusal};
use crate::state::{Shared, lock};
use crate::{respond, scopes};

/// Request bodies above this are refused (100 inputs with many long properties fit easily).
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Builds the whole application.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/crm/v3/objects/{object_type}",
            get(objects::list).post(create::create_one),
        )
        .route(
            "/crm/v3/objects/{object_type}/batch/create",
            post(create::batch_create),
        )
        .route(
            "/crm/v3/objects/{object_type}/batch/archive",
            post(create::batch_archive),
        )
        .route(
            "/crm/v3/objects/{object_type}/batch/upsert",
            post(objects::batch_upsert),
        )
        .route(
            "/crm/v3/objects/{object_type}/batch/update",
            post(objects::batch_update),
        )
        .route(
            "/crm/v3/objects/{object_type}/batch/read",
            post(objects::batch_read),
        )
        .route(
            "/crm/v3/objects/{object_type}/search",
            post(objects::search),
        )
        .route(
            "/crm/v3/objects/{object_type}/{id}",
            get(objects::get_one).delete(create::archive_one),
        )
        .route(
            "/crm/v3/properties/{object_type}",
            get(properties::list).post(properties::create),
        )
        .route(
            "/crm/v3/properties/{object_type}/{property}",
            get(properties::get_one).patch(properties::update),
        )
        .route(
            "/crm-object-schemas/v3/schemas",
            get(schemas::list).post(schemas::create),
        )
        .route(
            "/crm-object-schemas/v3/schemas/{object_type}",
            get(schemas::get_one),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/batch/create",
            post(associations::batch_create),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/batch/associate/default",
            post(associations::batch_default),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/batch/read",
            post(associations::batch_read),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/batch/archive",
            post(associations::batch_archive),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/batch/labels/archive",
            post(associations::batch_archive_labels),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/labels",
            get(associations::labels_list)
                .post(associations::labels_create)
                .put(associations::labels_update),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/labels/{type_id}",
            delete(associations::labels_delete),
        )
        .route(
            "/crm/v4/objects/{object_type}/{object_id}/associations/{to_type}",
            get(associations::list_one),
        )
        .route(
            "/crm/v4/objects/{object_type}/{object_id}/associations/{to_type}/{to_id}",
            put(associations::put_one).delete(associations::delete_one),
        )
        .route(
            "/crm/v4/objects/{object_type}/{object_id}/associations/default/{to_type}/{to_id}",
            put(associations::put_default),
        )
        .route("/crm/v3/lists", get(lists::by_ids).post(lists::create))
        .route("/crm/v3/lists/search", post(lists::search))
        .route(
            "/crm/v3/lists/object-type-id/{object_type}/name/{list_name}",
            get(lists::by_name),
        )
        .route(
            "/crm/v3/lists/{list_id}",
            get(lists::get_one).delete(lists::delete),
        )
        .route(
            "/crm/v3/lists/{list_id}/memberships",
            get(lists::memberships).delete(lists::empty),
        )
        .route("/crm/v3/lists/{list_id}/memberships/add", put(lists::add))
        .route(
            "/crm/v3/lists/{list_id}/memberships/remove",
            put(lists::remove),
        )
        .route(
            "/crm/v3/lists/{list_id}/memberships/add-and-remove",
            put(lists::add_and_remove),
        )
        .route(
            "/events/v3/event-definitions",
            get(events::list).post(events::create),
        )
        .route(
            "/events/v3/event-definitions/{event_name}",
            get(events::get_one).delete(events::delete),
        )
        .route("/events/v3/send", post(events::send))
        .route("/events/v3/send/batch", post(events::send_batch))
        .route("/crm/v3/owners", get(owners::list))
        .route("/crm/v3/owners/{owner_id}", get(owners::get_one))
        .route("/_sandbox/records/{object_type}", get(control::records))
        .route("/_sandbox/events", get(control::events))
        .route(
            "/_sandbox/owners",
            get(control::owners).post(control::add_owner),
        )
        .route("/_sandbox/lists", get(control::lists))
        .route(
            "/_sandbox/associations/{from_type}/{to_type}",
            get(control::associations),
        )
        .route("/_sandbox/stats", get(control::stats))
        .route(
            "/_sandbox/faults",
            get(control::get_faults).post(control::set_faults),
        )
        .route("/_sandbox/reset", post(control::reset))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// The kind of an API request, for `/_sandbox/stats` (and to leave search without rate-limit
/// headers, FACTS R3).
fn route_kind(method: &Method, path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["crm", "v3", "objects", _, "batch", "upsert"]) => "batch_upsert",
        (&Method::POST, ["crm", "v3", "objects", _, "batch", "update"]) => "batch_update",
        (&Method::POST, ["crm", "v3", "objects", _, "batch", "read"]) => "batch_read",
        (&Method::POST, ["crm", "v3", "objects", _, "batch", "create"]) => "batch_create",
        (&Method::POST, ["crm", "v3", "objects", _, "batch", "archive"]) => "batch_archive",
        (&Method::POST, ["crm", "v3", "objects", _]) => "create",
        (&Method::DELETE, ["crm", "v3", "objects", _, _]) => "archive",
        (&Method::POST, ["crm", "v3", "objects", _, "search"]) => "search",
        (&Method::GET, ["crm", "v3", "objects", _]) => "list",
        (&Method::GET, ["crm", "v3", "objects", _, _]) => "get",
        (&Method::GET, ["crm", "v3", "properties", _]) => "properties_list",
        (&Method::GET, ["crm", "v3", "properties", _, _]) => "property_get",
        (&Method::POST, ["crm", "v3", "properties", _]) => "property_create",
        (&Method::PATCH, ["crm", "v3", "properties", _, _]) => "property_update",
        (&Method::GET, ["crm-object-schemas", "v3", "schemas"]) => "schemas_list",
        (&Method::POST, ["crm-object-schemas", "v3", "schemas"]) => "schema_create",
        (&Method::GET, ["crm-object-schemas", "v3", "schemas", _]) => "schema_get",
        (&Method::POST, ["crm", "v4", "associations", _, _, "batch", rest @ ..]) => match rest {
            ["create"] => "associations_create",
            ["associate", "default"] => "associations_create_default",
            ["read"] => "associations_read",
            ["archive"] => "associations_archive",
            ["labels", "archive"] => "associations_archive_labels",
            _ => "other",
        },
        (&Method::GET, ["crm", "v4", "associations", _, _, "labels"]) => "association_labels_list",
        (&Method::POST, ["crm", "v4", "associations", _, _, "labels"]) => {
            "association_label_create"
        }
        (&Method::PUT, ["crm", "v4", "associations", _, _, "labels"]) => "association_label_update",
        (&Method::DELETE, ["crm", "v4", "associations", _, _, "labels", _]) => {
            "association_label_delete"
        }
        (&Method::GET, ["crm", "v4", "objects", _, _, "associations", _]) => "associations_list",
        (&Method::GET, ["events", "v3", "event-definitions"]) => "event_definitions_list",
        (&Method::POST, ["events", "v3", "event-definitions"]) => "event_definition_create",
        (&Method::GET, ["events", "v3", "event-definitions", _]) => "event_definition_get",
        (&Method::DELETE, ["events", "v3", "event-definitions", _]) => "event_definition_delete",
        (&Method::POST, ["events", "v3", "send"]) => "event_send",
        (&Method::POST, ["events", "v3", "send", "batch"]) => "event_send_batch",
        (&Method::GET, ["crm", "v3", "owners"]) => "owners_list",
        (&Method::GET, ["crm", "v3", "owners", _]) => "owner_get",
        (&Method::POST, ["crm", "v3", "lists"]) => "list_create",
        (&Method::GET, ["crm", "v3", "lists"]) => "lists_get",
        (&Method::POST, ["crm", "v3", "lists", "search"]) => "lists_search",
        (&Method::GET, ["crm", "v3", "lists", "object-type-id", _, "name", _]) => "list_get",
        (&Method::GET, ["crm", "v3", "lists", _]) => "list_get",
        (&Method::DELETE, ["crm", "v3", "lists", _]) => "list_delete",
        (&Method::GET, ["crm", "v3", "lists", _, "memberships"]) => "list_memberships",
        (&Method::DELETE, ["crm", "v3", "lists", _, "memberships"]) => "list_memberships_clear",
        (&Method::PUT, ["crm", "v3", "lists", _, "memberships", action]) => match *action {
            "add" => "list_memberships_add",
            "remove" => "list_memberships_remove",
            "add-and-remove" => "list_memberships_add_and_remove",
            _ => "other",
        },
        (
            &Method::PUT,
            [
                "crm",
                "v4",
                "objects",
                _,
                _,
                "associations",
                "default",
                _,
                _,
            ],
        ) => "association_put_default",
        (&Method::PUT, ["crm", "v4", "objects", _, _, "associations", _, _]) => "association_put",
        (&Method::DELETE, ["crm", "v4", "objects", _, _, "associations", _, _]) => {
            "association_delete"
        }
        _ => "other",
    }
}

fn is_authorized(request: &Request, token: &str) -> bool {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let Some((scheme, credentials)) = value.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && credentials.trim() == token
}

fn add_headers(response: &mut Response, headers: Vec<(&'static str, String)>) {
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
}

/// Whether a route kind is a write (the requests `write_requests` numbers): record writes,
/// association writes, list membership changes and event sends.
fn is_write(kind: &str) -> bool {
    matches!(
        kind,
        "batch_upsert"
            | "batch_update"
            | "batch_create"
            | "batch_archive"
            | "create"
            | "archive"
            | "associations_create"
            | "associations_create_default"
            | "associations_archive"
            | "associations_archive_labels"
            | "association_put"
            | "association_put_default"
            | "association_delete"
            | "list_memberships_clear"
            | "list_memberships_add"
            | "list_memberships_remove"
            | "list_memberships_add_and_remove"
            | "event_send"
            | "event_send_batch"
    )
}

/// Whether a route kind writes associations (the requests `busy_link_writes` refuses).
fn is_link_write(kind: &str) -> bool {
    kind.starts_with("association") && is_write(kind)
}

/// The scope a request needs if the `missing_scopes` fault takes it away.
fn missing_scope(shared: &Shared, request: &Request) -> Option<String> {
    let missing = lock(&shared.faults).settings().missing_scopes.clone();
    if missing.is_empty() {
        return None;
    }
    let scope = scopes::required_scope(request.method(), request.uri().path(), |segment| {
        let store = lock(&shared.store);
        let object = store.resolve(segment)?;
        Some(store.def(object).type_id.to_string())
    })?;
    missing.contains(&scope).then_some(scope)
}

/// An API request past auth: latency, limits, then the injected refusals, the route, and a
/// dropped connection (see the module doc for the order).
async fn admit_and_run(
    shared: &Shared,
    kind: &'static str,
    request: Request,
    next: Next,
) -> Response {
    let write = is_write(kind);
    let search = kind == "search";
    let latency = lock(&shared.faults).latency();
    if let Some(delay) = latency {
        shared.count_fault(Injected::Latency);
        tokio::time::sleep(delay).await;
    }
    if lock(&shared.faults).settings().daily_limit_reached {
        shared.count_fault(Injected::DailyLimit);
        return refusals::rate_limited(Refusal {
            policy: Policy::Daily,
            search: false,
        });
    }
    let bucket = if search { Bucket::Search } else { Bucket::Api };
    let admission = lock(&shared.limiter).admit(Instant::now(), Utc::now().date_naive(), bucket);
    let headers = if search {
        Vec::new()
    } else {
        admission.headers()
    };
    let mut response = if let Some(refusal) = admission.refused {
        shared.count_rate_limited(refusal);
        refusals::rate_limited(refusal)
    } else if let Some(scope) = missing_scope(shared, &request) {
        shared.count_fault(Injected::MissingScopes);
        refusals::missing_scope(&scope)
    } else if let Some(retry_after) = lock(&shared.faults).take_migration() {
        shared.count_fault(Injected::Migration);
        refusals::migration(retry_after)
    } else if is_link_write(kind) && lock(&shared.faults).take_busy_link() {
        let refusal = Refusal {
            policy: Policy::Secondly,
            search: false,
        };
        shared.count_rate_limited(refusal);
        refusals::rate_limited(refusal)
    } else if write && lock(&shared.faults).take_locked() {
        shared.count_fault(Injected::Locked);
        refusals::locked()
    } else if let Some(status) = write.then(|| lock(&shared.faults).draw_error()).flatten() {
        shared.count_fault(Injected::ServerError);
        refusals::server_error(status)
    } else {
        let response = next.run(request).await;
        if write && lock(&shared.faults).draw_drop() {
            shared.count_fault(Injected::Dropped);
            return refusals::dropped();
        }
        response
    };
    add_headers(&mut response, headers);
    response
}

/// Correlation id, counters, auth, then [`admit_and_run`] (see the module doc).
async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let work = async move {
        let path = request.uri().path();
        if path == "/_sandbox" || path.starts_with("/_sandbox/") {
            return next.run(request).await;
        }
        let kind = route_kind(request.method(), path);
        shared.count_request(kind);
        if !is_authorized(&request, &shared.token) {
            shared.count_unauthorized();
            return refusals::unauthorized();
        }
        admit_and_run(&shared, kind, request, next).await
    };
    let mut response = respond::with_correlation_id(correlation_id.clone(), work).await;
    if let Ok(value) = HeaderValue::from_str(&correlation_id) {
        response
            .headers_mut()
            .insert("x-hubspot-correlation-id", value);
    }
    response
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    ApiError::not_found(format!(
        "The sandbox does not serve {method} {}; see the route table in hubspot-sandbox's docs",
        uri.path()
    ))
    .into_response()
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        category::VALIDATION_ERROR,
        format!("Method {method} is not allowed on {}", uri.path()),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_kinds() {
        let kind = |m: Method, p: &str| route_kind(&m, p);
        assert_eq!(
            kind(Method::POST, "/crm/v3/objects/contacts/batch/upsert"),
            "batch_upsert"
        );
        assert_eq!(kind(Method::POST, "/crm/v3/objects/0-1/search"), "search");
        assert_eq!(kind(Method::GET, "/crm/v3/objects/contacts/12"), "get");
        assert_eq!(
            kind(Method::GET, "/crm/v3/properties/contacts"),
            "properties_list"
        );
        assert_eq!(
            kind(Method::POST, "/crm/v3/properties/deals"),
            "property_create"
        );
        assert_eq!(
            kind(Method::PATCH, "/crm/v3/properties/deals/amount"),
            "property_update"
        );
        assert_eq!(
            kind(Method::GET, "/crm-object-schemas/v3/schemas/p_car"),
            "schema_get"
        );
        assert_eq!(kind(Method::PATCH, "/crm/v3/objects/contacts/12"), "other");
        let v4 = "/crm/v4/associations/contacts/companies";
        assert_eq!(
            kind(Method::POST, &format!("{v4}/batch/create")),
            "associations_create"
        );
        assert_eq!(
            kind(Method::POST, &format!("{v4}/batch/labels/archive")),
            "associations_archive_labels"
        );
        assert_eq!(
            kind(Method::DELETE, &format!("{v4}/labels/1001")),
            "association_label_delete"
        );
        let record = "/crm/v4/objects/contacts/1/associations";
        assert_eq!(
            kind(Method::PUT, &format!("{record}/default/companies/2")),
            "association_put_default"
        );
        assert_eq!(
            kind(Method::PUT, &format!("{record}/companies/2")),
            "association_put"
        );
        assert_eq!(
            kind(Method::GET, &format!("{record}/companies")),
            "associations_list"
        );
        assert!(is_write("association_delete"));
        assert_eq!(
            kind(Method::POST, "/events/v3/send/batch"),
            "event_send_batch"
        );
        assert_eq!(
            kind(Method::GET, "/events/v3/event-definitions/pe1_x"),
            "event_definition_get"
        );
        assert_eq!(kind(Method::GET, "/crm/v3/owners/10001"), "owner_get");
        assert_eq!(
            kind(Method::PUT, "/crm/v3/lists/7/memberships/add-and-remove"),
            "list_memberships_add_and_remove"
        );
        assert_eq!(kind(Method::POST, "/crm/v3/lists/search"), "lists_search");
        assert_eq!(
            kind(Method::GET, "/crm/v3/lists/object-type-id/0-1/name/VIPs"),
            "list_get"
        );
        assert_eq!(
            kind(Method::GET, "/crm/v3/lists/7/memberships"),
            "list_memberships"
        );
        assert!(!is_write("associations_read"));
        assert!(is_link_write("associations_create"));
        assert!(!is_link_write("associations_read"));
        assert!(!is_link_write("batch_upsert"));
    }
}
