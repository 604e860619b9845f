//! The router and the middleware every request passes through.
//!
//! Order for an API request: correlation id → count by route kind → auth (401, FACTS E3) →
//! rate limit (429, FACTS R5) → handler → rate-limit headers. `/_sandbox/` routes skip auth and
//! the rate limit. Every response, errors included, carries `X-HubSpot-Correlation-Id`.

mod control;
mod create;
mod objects;
mod properties;
mod schemas;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::errors::{ApiError, category};
use crate::respond;
use crate::state::{Shared, lock};

/// Request bodies above this are refused (100 inputs with many long properties fit easily).
const BODY_LIMIT: usize = 16 * 1024 * 1024;

const AUTH_MESSAGE: &str = "Authentication credentials not found. This API supports OAuth 2.0 \
     authentication and you can find more details at \
     https://developers.hubspot.com/docs/methods/auth/oauth-overview";

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
            get(properties::get_one),
        )
        .route(
            "/crm-object-schemas/v3/schemas",
            get(schemas::list).post(schemas::create),
        )
        .route(
            "/crm-object-schemas/v3/schemas/{object_type}",
            get(schemas::get_one),
        )
        .route("/_sandbox/records/{object_type}", get(control::records))
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
        (&Method::GET, ["crm-object-schemas", "v3", "schemas"]) => "schemas_list",
        (&Method::POST, ["crm-object-schemas", "v3", "schemas"]) => "schema_create",
        (&Method::GET, ["crm-object-schemas", "v3", "schemas", _]) => "schema_get",
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

fn unauthorized() -> Response {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        category::INVALID_AUTHENTICATION,
        AUTH_MESSAGE,
    )
    .header("x-hubspot-auth-failure", "401 Unauthorized")
    .into_response()
}

fn rate_limited() -> Response {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        category::RATE_LIMITS,
        "You have reached your secondly limit.",
    )
    .field("errorType", json!("RATE_LIMIT"))
    .field("policyName", json!("SECONDLY"))
    .field("requestId", json!(uuid::Uuid::new_v4().to_string()))
    .header("retry-after", "1")
    .into_response()
}

fn add_headers(response: &mut Response, headers: Vec<(&'static str, String)>) {
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
}

/// Auth, rate limit, counters and the correlation id (see the module doc).
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
            return unauthorized();
        }
        let admission = lock(&shared.limiter).admit(Instant::now());
        if !admission.allowed {
            shared.count_rate_limited();
            let mut response = rate_limited();
            add_headers(&mut response, admission.headers());
            return response;
        }
        let mut response = next.run(request).await;
        if kind != "search" {
            add_headers(&mut response, admission.headers());
        }
        response
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
        "The sandbox does not serve {method} {}; see the route table in engine-sandbox's docs",
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
            kind(Method::GET, "/crm-object-schemas/v3/schemas/p_car"),
            "schema_get"
        );
        assert_eq!(kind(Method::PATCH, "/crm/v3/objects/contacts/12"), "other");
    }
}
