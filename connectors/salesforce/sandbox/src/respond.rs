//! Wire helpers shared by every route: JSON and CSV responses, request bodies, percent-decoding.
//!
//! Salesforce answers JSON as `application/json;charset=UTF-8` (FACTS E1) and Bulk results as
//! `text/csv`. A body that is not JSON, or a JSON value of the wrong shape, is Salesforce's
//! 400 `JSON_PARSER_ERROR` (FACTS E4) instead of axum's plain-text rejection.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use crate::errors::{ApiError, code};

/// The content type Salesforce sends on JSON responses.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";

/// A JSON response with Salesforce's content type.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"null".to_vec());
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response
}

/// 200 with a JSON body.
pub(crate) fn ok(body: &Value) -> Response {
    json(StatusCode::OK, body)
}

/// 204 with no body.
pub(crate) fn no_content() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// A status with no body (201 for a Bulk upload).
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// 200 with a CSV body (Bulk results).
pub(crate) fn csv(body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    response
}

/// Decodes a JSON body: malformed JSON is 400 `JSON_PARSER_ERROR` naming the position.
pub(crate) fn parse_json(bytes: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        ApiError::bad_request(
            code::JSON_PARSER_ERROR,
            format!(
                "Unexpected character or end of input: {} at [line:{}, column:{}]",
                error
                    .to_string()
                    .split(" at line")
                    .next()
                    .unwrap_or_default(),
                error.line(),
                error.column()
            ),
        )
    })
}

/// Percent-decodes one path segment or query value (`+` stays `+` in paths; the query
/// decoder turns it into a space first). Invalid escapes are kept as they are.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi * 16 + lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The query string as decoded `(key, value)` pairs, in order (`+` is a space).
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&key.replace('+', " ")),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

/// The first value of a query parameter.
pub(crate) fn query_param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_handles_escapes_and_bad_input() {
        assert_eq!(percent_decode("O%27Brien"), "O'Brien");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
        let pairs = query_pairs(Some("q=SELECT+Id+FROM+Contact&x=%C3%A9"));
        assert_eq!(query_param(&pairs, "q"), Some("SELECT Id FROM Contact"));
        assert_eq!(query_param(&pairs, "x"), Some("é"));
    }

    #[test]
    fn malformed_json_is_a_parser_error() {
        let error = parse_json(&Bytes::from_static(b"{\"a\":")).err();
        assert_eq!(error.map(|e| e.first_code()), Some(code::JSON_PARSER_ERROR));
    }
}
