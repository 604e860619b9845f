//! HubSpot's error bodies: the request-level `Error` and the per-input `StandardError`.
//!
//! Shapes follow crm-objects-contacts-v3.json (FACTS E1, E6): `Error` requires `category`,
//! `correlationId` and `message`; `StandardError` (inside a 207) requires `status`, `category`,
//! `message`, `context`, `errors` and `links`. `context` maps a key to an array of strings, and
//! per-input errors name the input in `context.ids` so a client can tell which input failed.

use std::collections::BTreeMap;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::respond;

/// The `category` values the sandbox sends.
pub(crate) mod category {
    pub(crate) const VALIDATION_ERROR: &str = "VALIDATION_ERROR";
    pub(crate) const OBJECT_NOT_FOUND: &str = "OBJECT_NOT_FOUND";
    pub(crate) const CONFLICT: &str = "CONFLICT";
    pub(crate) const INVALID_AUTHENTICATION: &str = "INVALID_AUTHENTICATION";
    pub(crate) const RATE_LIMITS: &str = "RATE_LIMITS";
    pub(crate) const MISSING_SCOPES: &str = "MISSING_SCOPES";
    pub(crate) const LOCKED: &str = "LOCKED";
    pub(crate) const MIGRATION_IN_PROGRESS: &str = "MIGRATION_IN_PROGRESS";
    pub(crate) const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
}

/// One `ErrorDetail` (an element of `errors[]`).
#[derive(Clone, Debug)]
pub(crate) struct ErrorDetail {
    message: String,
    code: Option<String>,
    field: Option<String>,
    context: BTreeMap<String, Vec<String>>,
}

impl ErrorDetail {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ErrorDetail {
            message: message.into(),
            code: None,
            field: None,
            context: BTreeMap::new(),
        }
    }

    pub(crate) fn code(mut self, code: &str) -> Self {
        self.code = Some(code.to_owned());
        self
    }

    /// The field (`in`) the detail is about, e.g. a property name.
    pub(crate) fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub(crate) fn context(mut self, key: &str, values: Vec<String>) -> Self {
        self.context.insert(key.to_owned(), values);
        self
    }

    fn to_json(&self) -> Value {
        let mut detail = json!({"message": self.message});
        if let Some(code) = &self.code {
            detail["code"] = json!(code);
        }
        if let Some(field) = &self.field {
            detail["in"] = json!(field);
        }
        if !self.context.is_empty() {
            detail["context"] = json!(self.context);
        }
        detail
    }
}

/// A per-input failure inside a batch response (`StandardError`).
#[derive(Clone, Debug)]
pub(crate) struct InputError {
    category: &'static str,
    message: String,
    context: BTreeMap<String, Vec<String>>,
    details: Vec<ErrorDetail>,
}

impl InputError {
    pub(crate) fn new(category: &'static str, message: impl Into<String>) -> Self {
        InputError {
            category,
            message: message.into(),
            context: BTreeMap::new(),
            details: Vec::new(),
        }
    }

    pub(crate) fn context(mut self, key: &str, values: Vec<String>) -> Self {
        self.context.insert(key.to_owned(), values);
        self
    }

    pub(crate) fn details(mut self, details: Vec<ErrorDetail>) -> Self {
        self.details = details;
        self
    }

    /// Names the input this error is about: its `id` and, if given, its `objectWriteTraceId`.
    pub(crate) fn for_input(self, id: &str, trace: Option<&str>) -> Self {
        let with_id = self.context("ids", vec![id.to_owned()]);
        match trace {
            Some(trace) => with_id.context("objectWriteTraceId", vec![trace.to_owned()]),
            None => with_id,
        }
    }

    /// Names the input of a create batch by its `objectWriteTraceId` (creates have no id).
    pub(crate) fn for_trace(self, trace: &str) -> Self {
        self.context("objectWriteTraceId", vec![trace.to_owned()])
    }

    #[cfg(test)]
    pub(crate) fn category(&self) -> &'static str {
        self.category
    }

    /// The same refusal for a whole request (`Error`): 409 for a `CONFLICT` (FACTS E4), 404
    /// for `OBJECT_NOT_FOUND`, 400 otherwise.
    pub(crate) fn into_api_error(self) -> ApiError {
        let status = match self.category {
            category::CONFLICT => StatusCode::CONFLICT,
            category::OBJECT_NOT_FOUND => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut error = ApiError::new(status, self.category, self.message);
        for (key, values) in self.context {
            error = error.context(&key, values);
        }
        for detail in self.details {
            error = error.detail(detail);
        }
        error
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": self.context,
            "errors": self.details.iter().map(ErrorDetail::to_json).collect::<Vec<_>>(),
            "links": {},
        })
    }
}

/// A request-level error (`Error`): the whole request was refused.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    body: Map<String, Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, category: &str, message: impl Into<String>) -> Self {
        let mut body = Map::new();
        body.insert("status".into(), json!("error"));
        body.insert("message".into(), json!(message.into()));
        body.insert("correlationId".into(), json!(respond::correlation_id()));
        body.insert("category".into(), json!(category));
        ApiError {
            status,
            body,
            headers: Vec::new(),
        }
    }

    /// 400 `VALIDATION_ERROR`, the most common refusal.
    pub(crate) fn validation(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, category::VALIDATION_ERROR, message)
    }

    /// 404 `OBJECT_NOT_FOUND`.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, category::OBJECT_NOT_FOUND, message)
    }

    pub(crate) fn context(mut self, key: &str, values: Vec<String>) -> Self {
        let context = self.body.entry("context").or_insert_with(|| json!({}));
        if let Some(map) = context.as_object_mut() {
            map.insert(key.to_owned(), json!(values));
        }
        self
    }

    pub(crate) fn detail(mut self, detail: ErrorDetail) -> Self {
        let errors = self.body.entry("errors").or_insert_with(|| json!([]));
        if let Some(list) = errors.as_array_mut() {
            list.push(detail.to_json());
        }
        self
    }

    /// Adds an entry to `links` (documentation for the error).
    pub(crate) fn link(mut self, name: &str, url: &str) -> Self {
        let links = self.body.entry("links").or_insert_with(|| json!({}));
        if let Some(map) = links.as_object_mut() {
            map.insert(name.to_owned(), json!(url));
        }
        self
    }

    /// Adds a top-level field outside the `Error` schema (e.g. `policyName` of a 429).
    pub(crate) fn field(mut self, key: &str, value: Value) -> Self {
        self.body.insert(key.to_owned(), value);
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.push((HeaderName::from_static(name), value));
        }
        self
    }

    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = respond::json(self.status, &Value::Object(self.body));
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_error_has_every_required_field() {
        let error = InputError::new(category::CONFLICT, "taken").for_input("a@b.co", Some("t1"));
        let json = error.to_json();
        for key in [
            "status", "category", "message", "context", "errors", "links",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["context"]["ids"], json!(["a@b.co"]));
        assert_eq!(json["context"]["objectWriteTraceId"], json!(["t1"]));
    }
}
