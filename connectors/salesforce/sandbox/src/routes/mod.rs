//! The router, and the gate every API request passes through.
//!
//! Order for a `/services/data/vXX.X/…` request: URI length (414) → auth (401
//! `INVALID_SESSION_ID`, FACTS E1, O4) → injected latency → `api_disabled` (403
//! `API_DISABLED_FOR_ORG`) → the daily allocation (403 `REQUEST_LIMIT_EXCEEDED`, FACTS L2) →
//! the version (404) → injected 503 → injected 403 → the route → a dropped connection. Every
//! answer after auth carries `Sforce-Limit-Info: api-usage=used/max` (FACTS L3). `GET
//! /services/data/`, the OAuth endpoints and `/_sandbox/` skip the gate.

mod bulk;
mod collections;
mod control;
mod describe;
mod oauth;
mod query;
mod sobjects;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::json;

use crate::errors::{ApiError, code};
use crate::respond;
use crate::state::{Shared, lock};
use crate::store::{ObjectKey, Store};

/// Request bodies above this are refused (Bulk uploads may be 150 MB, FACTS L5).
const BODY_LIMIT: usize = 150 * 1024 * 1024;

/// URIs longer than this get 414 (Salesforce's REST limit is 16,384 characters).
const MAX_URI: usize = 16_384;

/// The API versions served: 20.0 (Winter '11) to 66.0 (Spring '26).
const VERSIONS: std::ops::RangeInclusive<u32> = 20..=66;

/// Builds the whole application.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/services/oauth2/token", post(oauth::token))
        .route("/services/oauth2/revoke", post(oauth::revoke))
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .route("/services/data/{*rest}", any(api))
        .route("/_sandbox/records/{object}", get(control::records))
        .route("/_sandbox/objects", post(control::define))
        .route("/_sandbox/stats", get(control::stats))
        .route(
            "/_sandbox/faults",
            get(control::get_faults).post(control::set_faults),
        )
        .route("/_sandbox/expire-sessions", post(control::expire_sessions))
        .route("/_sandbox/reset", post(control::reset))
        .route("/_sandbox/convert-lead/{id}", post(control::convert_lead))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// The label of a version: 20.0 is Winter '11, then Spring, Summer, Winter each year.
fn version_label(major: u32) -> String {
    let k = major.saturating_sub(20);
    let season = ["Winter", "Spring", "Summer"][(k % 3) as usize];
    format!("{season} '{:02}", 11 + k / 3)
}

/// `GET /services/data/`: every version, oldest first, with no auth and no limit header
/// (FACTS L3).
async fn versions() -> Response {
    let list: Vec<serde_json::Value> = VERSIONS
        .map(|major| {
            json!({
                "label": version_label(major),
                "url": format!("/services/data/v{major}.0"),
                "version": format!("{major}.0"),
            })
        })
        .collect();
    respond::ok(&serde_json::Value::Array(list))
}

/// The version a path segment names (`v62.0` → `62.0`), if served.
fn parse_version(segment: &str) -> Option<String> {
    let (major, minor) = segment.strip_prefix('v')?.split_once('.')?;
    let major: u32 = major.parse().ok()?;
    (minor == "0" && VERSIONS.contains(&major)).then(|| format!("{major}.0"))
}

/// One API request, past the gate.
pub(crate) struct Call<'a> {
    pub(crate) shared: &'a Arc<Shared>,
    /// `62.0`.
    pub(crate) version: String,
    pub(crate) method: Method,
    /// Percent-decoded path segments after the version, empty ones left out.
    pub(crate) segments: Vec<String>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Call<'_> {
    /// A query parameter.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        respond::query_param(&self.query, name)
    }

    /// 405 naming the methods the path allows.
    pub(crate) fn method_not_allowed(&self, allowed: &str) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            code::METHOD_NOT_ALLOWED,
            format!(
                "HTTP Method '{}' not allowed. Allowed are {allowed}",
                self.method
            ),
        )
    }
}

/// The object a URL or body names, if it exists and the user can see it; 404 `NOT_FOUND`
/// otherwise.
pub(crate) fn visible(shared: &Shared, store: &Store, name: &str) -> Result<ObjectKey, ApiError> {
    store
        .object(name)
        .filter(|key| !lock(&shared.faults).hides(&store.def(*key).name))
        .ok_or_else(ApiError::not_found)
}

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    // Salesforce also takes the legacy `OAuth` scheme.
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
        .then(|| token.trim())
}

/// The route kind of a request, for `/_sandbox/stats`.
fn route_kind(method: &Method, segments: &[String]) -> &'static str {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method, s.as_slice()) {
        (_, []) => "resources",
        (_, ["limits"]) => "limits",
        (_, ["sobjects"]) => "describe_global",
        (_, ["sobjects", _, "describe"]) => "describe",
        (&Method::POST, ["sobjects", _]) => "create",
        (_, ["sobjects", _]) => "sobject_info",
        (&Method::GET, ["sobjects", _, _]) => "get",
        (&Method::PATCH, ["sobjects", _, _]) => "update",
        (&Method::DELETE, ["sobjects", _, _]) => "delete",
        (&Method::PATCH, ["sobjects", _, _, _]) => "upsert",
        (_, ["sobjects", ..]) => "sobject_other",
        (&Method::POST, ["composite", "sobjects"]) => "collections_create",
        (&Method::PATCH, ["composite", "sobjects"] | ["composite", "sobjects", _]) => {
            "collections_update"
        }
        (&Method::DELETE, ["composite", "sobjects", ..]) => "collections_delete",
        (&Method::PATCH, ["composite", "sobjects", _, _]) => "collections_upsert",
        (_, ["composite", "sobjects", _]) => "collections_retrieve",
        (_, ["query" | "queryAll"]) => "query",
        (_, ["query" | "queryAll", _]) => "query_more",
        (_, ["jobs", "ingest", ..]) => "bulk",
        _ => "other",
    }
}

/// Every `/services/data/{*rest}` request: the gate (module doc), then the route.
async fn api(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if uri.to_string().len() > MAX_URI {
        let mut response = Response::new(Body::from("URI Too Long"));
        *response.status_mut() = StatusCode::URI_TOO_LONG;
        return response;
    }
    let mut segments = uri
        .path()
        .trim_start_matches("/services/data/")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(respond::percent_decode);
    let version_segment = segments.next().unwrap_or_default();
    let segments: Vec<String> = segments.collect();
    let kind = route_kind(&method, &segments);
    shared.count_request(kind);
    let admitted = bearer(&headers).is_some_and(|token| lock(&shared.sessions).admit(token));
    if !admitted {
        lock(&shared.stats).unauthorized += 1;
        return ApiError::invalid_session().into_response();
    }
    let latency = lock(&shared.faults).latency_ms;
    if let Some(ms) = latency.filter(|ms| *ms > 0) {
        shared.count_fault("latency");
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if lock(&shared.faults).api_disabled {
        shared.count_fault("api_disabled");
        return ApiError::new(
            StatusCode::FORBIDDEN,
            code::API_DISABLED_FOR_ORG,
            "The REST API is not enabled for this Organization.",
        )
        .into_response();
    }
    let (admitted, usage) = {
        let mut allocation = lock(&shared.allocation);
        (allocation.take(), allocation.header())
    };
    let mut response = if !admitted {
        lock(&shared.stats).limit_refused += 1;
        ApiError::new(
            StatusCode::FORBIDDEN,
            code::REQUEST_LIMIT_EXCEEDED,
            "TotalRequests Limit exceeded.",
        )
        .into_response()
    } else if lock(&shared.faults).take_unavailable() {
        shared.count_fault("unavailable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code::SERVER_UNAVAILABLE,
            "The server is temporarily unable to handle the request; retry later",
        )
        .into_response()
    } else if lock(&shared.faults).take_limit_exceeded() {
        shared.count_fault("limit_exceeded");
        ApiError::new(
            StatusCode::FORBIDDEN,
            code::REQUEST_LIMIT_EXCEEDED,
            "ConcurrentPerOrgLongTxn Limit exceeded.",
        )
        .into_response()
    } else {
        let response = match (parse_version(&version_segment), body) {
            (None, _) => ApiError::not_found().into_response(),
            (Some(_), Err(rejection)) => ApiError::new(
                rejection.status(),
                code::JSON_PARSER_ERROR,
                rejection.body_text(),
            )
            .into_response(),
            (Some(version), Ok(body)) => {
                let call = Call {
                    shared: &shared,
                    version,
                    method,
                    segments,
                    query: respond::query_pairs(uri.query()),
                    headers,
                    body,
                };
                dispatch(&call).unwrap_or_else(IntoResponse::into_response)
            }
        };
        if lock(&shared.faults).take_dropped() {
            shared.count_fault("dropped");
            return dropped();
        }
        response
    };
    if let Ok(value) = HeaderValue::from_str(&usage) {
        response.headers_mut().insert("sforce-limit-info", value);
    }
    response
}

/// Finds the route of an API request.
fn dispatch(call: &Call<'_>) -> Result<Response, ApiError> {
    let s: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        [] => describe::resources(call),
        ["limits"] => describe::limits(call),
        ["sobjects"] => describe::global(call),
        ["sobjects", object, "describe"] => describe::object(call, object),
        ["sobjects", object] => sobjects::object_root(call, object),
        ["sobjects", object, id] => sobjects::by_id(call, object, id),
        ["sobjects", object, field, value] => sobjects::by_external_id(call, object, field, value),
        ["composite", "sobjects"] => collections::root(call, None),
        ["composite", "sobjects", object] => collections::object(call, object),
        ["composite", "sobjects", object, field] => collections::upsert(call, object, field),
        ["query" | "queryAll"] => query::query(call),
        ["query" | "queryAll", locator] => query::more(call, locator),
        ["jobs", "ingest", rest @ ..] => bulk::route(call, rest),
        _ => Err(ApiError::not_found()),
    }
}

/// A response hyper can never send: its body fails before its first byte, so hyper closes the
/// connection without writing the status line and the client sees the connection closed.
fn dropped() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "the sandbox drops this connection (dropped_requests fault)",
        ))
    });
    Response::new(Body::from_stream(failing))
}

async fn not_found() -> Response {
    ApiError::not_found().into_response()
}

/// The base URL a request reached the sandbox by (`http://host:port`), for `instance_url`.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_labels() {
        assert_eq!(version_label(20), "Winter '11");
        assert_eq!(version_label(62), "Winter '25");
        assert_eq!(version_label(66), "Spring '26");
        assert_eq!(parse_version("v62.0").as_deref(), Some("62.0"));
        for bad in ["62.0", "v19.0", "v67.0", "v62.1", "vx.0", ""] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
    }
}
