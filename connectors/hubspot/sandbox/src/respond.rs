//! Wire helpers shared by every route: JSON responses, request bodies, the correlation id.
//!
//! HubSpot answers `application/json;charset=utf-8` (FACTS R4) and puts the request's
//! correlation id both in the `X-HubSpot-Correlation-Id` header and in error bodies. The id is
//! made once per request by the middleware and reached from anywhere in the handler through a
//! task-local, so error constructors need no extra argument.

use std::future::Future;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::errors::ApiError;

/// The content type HubSpot sends on JSON responses.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json;charset=utf-8";

tokio::task_local! {
    static CORRELATION_ID: String;
}

/// The current request's correlation id (a fresh one outside a request).
pub(crate) fn correlation_id() -> String {
    CORRELATION_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| uuid::Uuid::new_v4().to_string())
}

/// Runs `future` (the rest of the request) with `id` as its correlation id.
pub(crate) async fn with_correlation_id<F: Future>(id: String, future: F) -> F::Output {
    CORRELATION_ID.scope(id, future).await
}

/// A JSON response with HubSpot's content type.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response
}

/// 204 with no body (archives).
pub(crate) fn no_content() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// 200 with a JSON body.
pub(crate) fn ok(body: &Value) -> Response {
    json(StatusCode::OK, body)
}

/// Decodes a request body, answering malformed JSON the way HubSpot does (400 with an
/// `Error` body and the position of the problem) instead of axum's plain-text rejection.
pub(crate) fn parse_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| {
        ApiError::validation(format!(
            "Unable to read the request body: {}",
            rejection.body_text()
        ))
    })?;
    serde_json::from_slice(&bytes).map_err(|error| {
        let text = error.to_string();
        let suffix = format!(" at line {} column {}", error.line(), error.column());
        let reason = text.strip_suffix(&suffix).unwrap_or(&text);
        ApiError::validation(format!(
            "Invalid input JSON on line {}, column {}: {reason}",
            error.line(),
            error.column()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Body {
        #[allow(dead_code)]
        inputs: Vec<String>,
    }

    #[test]
    fn malformed_json_names_the_position() {
        let result = parse_body::<Body>(Ok(Bytes::from_static(b"{\"inputs\": [")));
        let error = result.err().map(|e| e.status());
        assert_eq!(error, Some(StatusCode::BAD_REQUEST));
    }
}
