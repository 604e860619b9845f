//! Salesforce's error bodies: the REST array, the per-record `statusCode` errors of sObject
//! Collections, and the OAuth object of the token endpoints.
//!
//! A REST error is a JSON array of `{"message","errorCode","fields"?}` (FACTS E1); a record
//! error inside a Collections answer (or a single-record 400) is the same triple with the key
//! `statusCode` instead of `errorCode` (FACTS E3). One [`RecordError`] serves both: it is
//! rendered with the key its place needs. OAuth errors are `{"error","error_description"}`
//! (FACTS O3).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::respond;

/// The `errorCode` / `statusCode` values the sandbox sends, named once.
pub(crate) mod code {
    pub(crate) const INVALID_SESSION_ID: &str = "INVALID_SESSION_ID";
    pub(crate) const REQUEST_LIMIT_EXCEEDED: &str = "REQUEST_LIMIT_EXCEEDED";
    pub(crate) const API_DISABLED_FOR_ORG: &str = "API_DISABLED_FOR_ORG";
    pub(crate) const NOT_FOUND: &str = "NOT_FOUND";
    pub(crate) const INVALID_TYPE: &str = "INVALID_TYPE";
    pub(crate) const INVALID_FIELD: &str = "INVALID_FIELD";
    pub(crate) const INVALID_FIELD_FOR_INSERT_UPDATE: &str = "INVALID_FIELD_FOR_INSERT_UPDATE";
    pub(crate) const REQUIRED_FIELD_MISSING: &str = "REQUIRED_FIELD_MISSING";
    pub(crate) const STRING_TOO_LONG: &str = "STRING_TOO_LONG";
    pub(crate) const INVALID_EMAIL_ADDRESS: &str = "INVALID_EMAIL_ADDRESS";
    pub(crate) const RESTRICTED_PICKLIST: &str = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST";
    pub(crate) const MALFORMED_ID: &str = "MALFORMED_ID";
    pub(crate) const INVALID_CROSS_REFERENCE_KEY: &str = "INVALID_CROSS_REFERENCE_KEY";
    pub(crate) const ENTITY_IS_DELETED: &str = "ENTITY_IS_DELETED";
    pub(crate) const DUPLICATE_VALUE: &str = "DUPLICATE_VALUE";
    pub(crate) const DUPLICATE_EXTERNAL_ID: &str = "DUPLICATE_EXTERNAL_ID";
    pub(crate) const MISSING_ARGUMENT: &str = "MISSING_ARGUMENT";
    pub(crate) const ROLLED_BACK: &str = "ALL_OR_NONE_OPERATION_ROLLED_BACK";
    pub(crate) const JSON_PARSER_ERROR: &str = "JSON_PARSER_ERROR";
    pub(crate) const MALFORMED_QUERY: &str = "MALFORMED_QUERY";
    pub(crate) const INVALID_QUERY_FILTER_OPERATOR: &str = "INVALID_QUERY_FILTER_OPERATOR";
    pub(crate) const INVALID_QUERY_LOCATOR: &str = "INVALID_QUERY_LOCATOR";
    pub(crate) const INVALID_TYPE_ON_FIELD_IN_RECORD: &str = "INVALID_TYPE_ON_FIELD_IN_RECORD";
    pub(crate) const EXCEEDED_ID_LIMIT: &str = "EXCEEDED_ID_LIMIT";
    pub(crate) const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    pub(crate) const SERVER_UNAVAILABLE: &str = "SERVER_UNAVAILABLE";
    pub(crate) const INVALIDENTITY: &str = "INVALIDENTITY";
    pub(crate) const INVALIDJOBSTATE: &str = "INVALIDJOBSTATE";
    pub(crate) const BULK_API_ERROR: &str = "BULK_API_ERROR";
    pub(crate) const INVALID_INPUT: &str = "INVALID_INPUT";
}

/// "The requested resource does not exist" (FACTS E4, `NOT_FOUND`).
pub(crate) const NOT_FOUND_MESSAGE: &str = "The requested resource does not exist";

/// One error about one record: a code, a message, and the fields it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecordError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) fields: Vec<String>,
}

impl RecordError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        RecordError {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// The same error about `fields`.
    pub(crate) fn on(mut self, fields: &[&str]) -> Self {
        self.fields = fields.iter().map(|f| (*f).to_owned()).collect();
        self
    }

    /// The Collections form: `{"statusCode","message","fields"}` (FACTS E3).
    pub(crate) fn to_status_json(&self) -> Value {
        json!({"statusCode": self.code, "message": self.message, "fields": self.fields})
    }

    /// The REST form: `{"message","errorCode","fields"?}` (FACTS E1; `fields` only for field
    /// errors).
    pub(crate) fn to_rest_json(&self) -> Value {
        let mut body = json!({"message": self.message, "errorCode": self.code});
        if !self.fields.is_empty() {
            body["fields"] = json!(self.fields);
        }
        body
    }

    /// The Bulk API 2.0 `sf__Error` cell: `CODE:message:fields --`, the code before the first
    /// colon (FACTS B4 gives "code:message"; Salesforce appends the fields and ` --`).
    pub(crate) fn to_bulk_cell(&self) -> String {
        format!(
            "{}:{}:{} --",
            self.code,
            self.message,
            self.fields.join(",")
        )
    }
}

/// A REST error answer: a status and the array body of FACTS E1.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    errors: Vec<RecordError>,
    authenticate: bool,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            errors: vec![RecordError::new(code, message)],
            authenticate: false,
        }
    }

    /// A record error as a whole-request answer (single-record routes).
    pub(crate) fn from_record(status: StatusCode, error: RecordError) -> Self {
        ApiError {
            status,
            errors: vec![error],
            authenticate: false,
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `NOT_FOUND` "The requested resource does not exist".
    pub(crate) fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, code::NOT_FOUND, NOT_FOUND_MESSAGE)
    }

    /// 401 `INVALID_SESSION_ID` with `www-authenticate: Token` (FACTS E1, O4).
    pub(crate) fn invalid_session() -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            errors: vec![RecordError::new(
                code::INVALID_SESSION_ID,
                "Session expired or invalid",
            )],
            authenticate: true,
        }
    }

    pub(crate) fn first_code(&self) -> &'static str {
        self.errors.first().map_or("", |e| e.code)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body: Vec<Value> = self.errors.iter().map(RecordError::to_rest_json).collect();
        let mut response = respond::json(self.status, &Value::Array(body));
        if self.authenticate {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
        }
        response
    }
}

/// An OAuth error of the token and revoke endpoints (FACTS O3): 400 unless said otherwise.
#[derive(Debug)]
pub(crate) struct OAuthError {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    pub(crate) description: &'static str,
}

impl OAuthError {
    pub(crate) fn new(error: &'static str, description: &'static str) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error,
            description,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        respond::json(
            self.status,
            &json!({"error": self.error, "error_description": self.description}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_errors_render_with_the_key_of_their_place() {
        let error = RecordError::new(
            code::REQUIRED_FIELD_MISSING,
            "Required fields are missing: [LastName]",
        )
        .on(&["LastName"]);
        assert_eq!(
            error.to_status_json()["statusCode"],
            "REQUIRED_FIELD_MISSING"
        );
        assert_eq!(error.to_rest_json()["errorCode"], "REQUIRED_FIELD_MISSING");
        assert_eq!(error.to_rest_json()["fields"], json!(["LastName"]));
        let bare = RecordError::new(code::NOT_FOUND, NOT_FOUND_MESSAGE);
        assert!(bare.to_rest_json().get("fields").is_none());
        assert_eq!(bare.to_status_json()["fields"], json!([]));
        assert_eq!(
            error.to_bulk_cell(),
            "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
        );
    }
}
