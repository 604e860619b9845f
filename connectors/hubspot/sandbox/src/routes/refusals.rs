//! The answers the gate gives instead of a route's: 401, the 429s of each rate-limit policy,
//! and the injected faults (403, 423, 477, 5xx, a dropped connection).
//!
//! Bodies are HubSpot's `Error` (FACTS E1): `status`, `message`, `correlationId`, `category`,
//! plus what each status adds. Where FACTS gives a status but no body (423, 477, 5xx), the
//! message is the sandbox's own wording and the category names the status.

use std::io;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::errors::{ApiError, ErrorDetail, category};
use crate::rate_limit::{Policy, Refusal};

const AUTH_MESSAGE: &str = "Authentication credentials not found. This API supports OAuth 2.0 \
     authentication and you can find more details at \
     https://developers.hubspot.com/docs/methods/auth/oauth-overview";

const SCOPES_MESSAGE: &str = "This app hasn't been granted all required scopes to make this \
     call. Read more about required scopes here: https://developers.hubspot.com/scopes.";

/// 401 for a missing or wrong token (FACTS E3).
pub(super) fn unauthorized() -> Response {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        category::INVALID_AUTHENTICATION,
        AUTH_MESSAGE,
    )
    .header("x-hubspot-auth-failure", "401 Unauthorized")
    .into_response()
}

/// 429 naming the policy (FACTS R5). Only `SECONDLY` refusals carry `Retry-After: 1`: the
/// sandbox has always sent it there and it equals what HubSpot's SDK waits; HubSpot documents
/// `Retry-After` only for 477 (R6), so the ten-second and daily refusals carry none and a
/// client falls back to the policy's window.
pub(super) fn rate_limited(refusal: Refusal) -> Response {
    let error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        category::RATE_LIMITS,
        refusal.policy.message(),
    )
    .field("errorType", json!("RATE_LIMIT"))
    .field("policyName", json!(refusal.policy.name()))
    .field("requestId", json!(uuid::Uuid::new_v4().to_string()));
    match refusal.policy {
        Policy::Secondly => error.header("retry-after", "1"),
        Policy::TenSecondlyRolling | Policy::Daily => error,
    }
    .into_response()
}

/// 403 `MISSING_SCOPES`, naming the scope in `errors[].context.requiredGranularScopes` (the
/// shape of HubSpot's live answers; older ones said `requiredScopes`).
pub(super) fn missing_scope(scope: &str) -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        category::MISSING_SCOPES,
        SCOPES_MESSAGE,
    )
    .detail(
        ErrorDetail::new("One or more of the following scopes are required.")
            .context("requiredGranularScopes", vec![scope.to_owned()]),
    )
    .link("scopes", "https://developers.hubspot.com/scopes")
    .into_response()
}

/// 423 Locked (FACTS E2: high-volume writes to the same records; wait at least 2 s).
pub(super) fn locked() -> Response {
    ApiError::new(
        StatusCode::LOCKED,
        category::LOCKED,
        "The records this request writes are locked by another request; retry after at least \
         2 seconds",
    )
    .into_response()
}

/// 477 Migration in Progress with `Retry-After` in seconds (FACTS E2, R6).
pub(super) fn migration(retry_after: u64) -> Response {
    // Any three-digit status is valid; 477 is HubSpot's own.
    let status = StatusCode::from_u16(477).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    ApiError::new(
        status,
        category::MIGRATION_IN_PROGRESS,
        "This account is being migrated between data centers; retry after the number of \
         seconds in the Retry-After header",
    )
    .header("retry-after", &retry_after.to_string())
    .into_response()
}

/// An injected server error with the given status (500 to 599).
pub(super) fn server_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = match status {
        StatusCode::INTERNAL_SERVER_ERROR => "internal error".to_owned(),
        other => other
            .canonical_reason()
            .unwrap_or("server error")
            .to_owned(),
    };
    ApiError::new(status, category::INTERNAL_ERROR, message).into_response()
}

/// A response hyper can never send: its body fails before its first byte, so hyper closes the
/// connection without writing the status line, and the client sees the connection closed
/// before any answer (a transport error, not a status).
pub(super) fn dropped() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, io::Error>(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the sandbox drops this connection (drop_rate fault)",
        ))
    });
    Response::new(Body::from_stream(failing))
}
