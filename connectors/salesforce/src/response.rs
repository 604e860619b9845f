//! Salesforce's answers → one outcome per row, or a reason to stop. Pure and tolerant: every
//! field of a body is optional, a body that is not JSON is a message, nothing here panics.
//!
//! Whole-request answers (FACTS E1, E2, E5, L3):
//!
//! | status, code | outcome |
//! | --- | --- |
//! | 200 (Collections) | per record, below |
//! | 400 `INVALID_TYPE` | `Fatal` `salesforce::no_access`: the user cannot see the object |
//! | 400 `INVALID_FIELD` | `Fatal` `salesforce::mapping_changed`: a mapped field is gone since the plan, every batch would fail alike |
//! | 400 other (`JSON_PARSER_ERROR`, …) | every row `Rejected` with the message |
//! | 401 (after the one refresh) | `Fatal` (`client.rs` refreshes once first) |
//! | 403 `REQUEST_LIMIT_EXCEEDED` "TotalRequests" | `Fatal` `salesforce::daily_limit` |
//! | 403 `REQUEST_LIMIT_EXCEEDED` (concurrency) | `RetryAll` |
//! | 403 `API_DISABLED_FOR_ORG` | `Fatal` `salesforce::api_disabled` |
//! | 403 other (`INSUFFICIENT_ACCESS…`) | `Fatal` `salesforce::no_access` |
//! | 404 | `Fatal` `salesforce::no_access` (object gone or not visible) |
//! | 408, 420, 429, 5xx | `RetryAll` |
//! | other 4xx | every row `Rejected` |
//!
//! Per-record `statusCode`s in a 200 (FACTS E3, E4) — see [`record_error`]:
//! `UNABLE_TO_LOCK_ROW`, `ALL_OR_NONE_OPERATION_ROLLED_BACK`, `REQUEST_LIMIT_EXCEEDED`,
//! `SERVER_UNAVAILABLE` are retried; everything else (field errors, `MALFORMED_ID`,
//! `DUPLICATE_VALUE`, `REQUIRED_FIELD_MISSING`, restricted picklists, validation rules, …)
//! rejects the row with Salesforce's message and fields.

use connector_core::{BatchResult, Diagnostic, RowOutcome};
use serde_json::Value;

use crate::client::RawResponse;

/// The longest message kept for one row, in characters.
const MAX_MESSAGE_CHARS: usize = 1000;

/// One entry of an error array: `errorCode` (REST, FACTS E1) or `statusCode` (Collections,
/// FACTS E3), the message and the fields it names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ApiError {
    pub code: String,
    pub message: String,
    pub fields: Vec<String>,
}

impl ApiError {
    /// `CODE: message (fields: A, B)`, for rows and notes.
    pub fn describe(&self) -> String {
        let mut text = if self.code.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.code, self.message)
        };
        if !self.fields.is_empty() {
            text.push_str(&format!(" (fields: {})", self.fields.join(", ")));
        }
        truncate(&text)
    }

    fn parse(value: &Value) -> Self {
        let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default();
        let code = match text("errorCode") {
            "" => text("statusCode"),
            code => code,
        };
        Self {
            code: code.to_string(),
            message: text("message").to_string(),
            fields: value
                .get("fields")
                .and_then(Value::as_array)
                .map(|f| {
                    f.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// The errors of an error body (an array of errors; an object with `errors`; or nothing).
pub(crate) fn errors_of(body: &[u8]) -> Vec<ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items.iter().map(ApiError::parse).collect(),
        Ok(other @ Value::Object(_)) => vec![ApiError::parse(&other)],
        _ => Vec::new(),
    }
}

/// A one-line summary of an answer that is not a success.
pub(crate) fn summary(response: &RawResponse) -> String {
    let errors = errors_of(&response.body);
    if let Some(first) = errors
        .first()
        .filter(|e| !e.code.is_empty() || !e.message.is_empty())
    {
        return format!("{} ({})", first.describe(), response.status);
    }
    let text = String::from_utf8_lossy(&response.body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        format!("HTTP {} with an empty body", response.status)
    } else {
        format!("HTTP {}: {}", response.status, truncate(&text))
    }
}

/// What to do with a refused whole request that is not a per-row matter: `Some(diagnostic)`
/// when the run must stop (access, API disabled, the daily allocation), `None` otherwise.
pub(crate) fn stopping_diagnostic(object: &str, response: &RawResponse) -> Option<Diagnostic> {
    let errors = errors_of(&response.body);
    let first = errors.first().cloned().unwrap_or_default();
    let said = format!("Salesforce said: {}", summary(response));
    match (response.status, first.code.as_str()) {
        (403, "API_DISABLED_FOR_ORG") => Some(
            Diagnostic::error(
                "salesforce::api_disabled",
                "the Salesforce user the destination connects as cannot use the API",
            )
            .note(said)
            .hint("ask your Salesforce admin to check `API Enabled` on the user's profile or permission set (Setup → Users)")
            .hint("some editions (e.g. Group Edition) have no API access; Salesforce can enable it with an upgrade"),
        ),
        (403, "REQUEST_LIMIT_EXCEEDED") if first.message.contains("TotalRequests") => {
            Some(daily_limit_diagnostic(None, &said))
        }
        (403, "REQUEST_LIMIT_EXCEEDED") => None,
        (403, _) | (404, _) | (400, "INVALID_TYPE") => Some(no_access(object, &said)),
        _ => None,
    }
}

/// The user cannot reach the object: it does not exist for them, or they lack permission.
pub(crate) fn no_access(object: &str, said: &str) -> Diagnostic {
    Diagnostic::error(
        "salesforce::no_access",
        format!("the Salesforce user the destination connects as cannot write `{object}`"),
    )
    .note(said.to_string())
    .hint(format!(
        "ask your Salesforce admin to give the user Read and Edit (and Create, for inserts) on `{object}` in its profile or a permission set, and field-level access to the mapped fields"
    ))
    .hint("check that the object exists in this org (a sandbox org has its own setup)")
}

/// The org's daily allocation is used up (or past the share the sync may use).
pub(crate) fn daily_limit_diagnostic(usage: Option<(u64, u64, f64)>, said: &str) -> Diagnostic {
    let message = match usage {
        Some((used, max, share)) => format!(
            "the Salesforce org has used {used} of its {max} daily API requests ({:.0}%), past the {:.0}% this destination may use",
            used as f64 * 100.0 / max.max(1) as f64,
            share * 100.0
        ),
        None => "the Salesforce org has used all of its daily API requests".to_string(),
    };
    Diagnostic::error("salesforce::daily_limit", message)
        .note(said.to_string())
        .note("the allocation is counted over a rolling 24 hours; rows not written stay pending for the next run")
        .hint("run again later, lower the sync's frequency, or use Bulk API 2.0 for large syncs (one job is a handful of requests)")
        .hint("raise the destination's allocation share only if other integrations of the org can spare it")
}

/// Classifies a refused whole request (status ≠ 200) for `count` rows.
pub(crate) fn refused_batch(object: &str, count: usize, response: &RawResponse) -> BatchResult {
    if let Some(diagnostic) = stopping_diagnostic(object, response) {
        return BatchResult::Fatal(diagnostic);
    }
    let summary = summary(response);
    let first_code = errors_of(&response.body)
        .first()
        .map(|e| e.code.clone())
        .unwrap_or_default();
    if response.status == 400 && first_code == "INVALID_FIELD" {
        // A field the describe check passed is gone: every batch would be refused alike.
        return BatchResult::Fatal(
            Diagnostic::error(
                "salesforce::mapping_changed",
                format!("a field the mapping sets no longer exists on `{object}`"),
            )
            .note(format!("Salesforce said: {summary}"))
            .note("the field was deleted or renamed, or its access removed, after the plan was made; rows not written stay pending")
            .hint("run `engine plan` again: it checks the mapping against the object's fields and names the one to fix"),
        );
    }
    match response.status {
        403 | 408 | 420 | 429 | 500..=599 => BatchResult::RetryAll {
            reason: format!("Salesforce is busy: {summary}"),
            after: None,
        },
        401 => BatchResult::Fatal(
            Diagnostic::error(
                "salesforce::session_refused",
                "Salesforce refused the session",
            )
            .note(summary),
        ),
        300..=499 => BatchResult::PerRow(
            (0..count)
                .map(|_| RowOutcome::Rejected {
                    message: format!("Salesforce refused the whole request: {summary}"),
                })
                .collect(),
        ),
        _ => BatchResult::Fatal(
            Diagnostic::error(
                "salesforce::unexpected_status",
                format!(
                    "Salesforce answered with the unexpected status {}",
                    response.status
                ),
            )
            .note(summary)
            .hint(
                "check the destination's `login`: it should be `login`, `test` or a My Domain URL",
            ),
        ),
    }
}

/// What one record's error means.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RecordError {
    /// Send the row again later (a lock, a rolled-back batch, a passing limit).
    Retry(String),
    /// The row is refused with this message.
    Reject(String),
    /// The record was already deleted (a delete of it succeeded before).
    AlreadyDeleted,
    /// A create found a record holding the same unique value (the record's id when named).
    Duplicate(String),
}

/// Classifies one record's errors (FACTS E3, E4). `deleting` tells a delete, for which a
/// record that is already gone is a success.
pub(crate) fn record_error(errors: &[ApiError], deleting: bool) -> RecordError {
    let Some(first) = errors.first() else {
        return RecordError::Reject("Salesforce refused the record without saying why".into());
    };
    let all: Vec<String> = errors.iter().map(ApiError::describe).collect();
    let text = all.join("; ");
    match first.code.as_str() {
        "UNABLE_TO_LOCK_ROW"
        | "ALL_OR_NONE_OPERATION_ROLLED_BACK"
        | "REQUEST_LIMIT_EXCEEDED"
        | "SERVER_UNAVAILABLE"
        | "REQUEST_RUNNING_TOO_LONG" => RecordError::Retry(text),
        "ENTITY_IS_DELETED" | "INVALID_CROSS_REFERENCE_KEY" | "NOT_FOUND" if deleting => {
            RecordError::AlreadyDeleted
        }
        "DUPLICATE_VALUE" => RecordError::Duplicate(text),
        _ => RecordError::Reject(text),
    }
}

/// A Collections answer: one result per record, in request order (FACTS C2).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SaveResult {
    pub id: Option<String>,
    pub success: bool,
    pub created: Option<bool>,
    pub errors: Vec<ApiError>,
}

/// Reads a 200 Collections answer; `None` when it is not an array of results.
pub(crate) fn save_results(body: &[u8]) -> Option<Vec<SaveResult>> {
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    Some(
        items
            .iter()
            .map(|item| SaveResult {
                id: item
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                success: item
                    .get("success")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                created: item.get("created").and_then(Value::as_bool),
                errors: item
                    .get("errors")
                    .and_then(Value::as_array)
                    .map(|e| e.iter().map(ApiError::parse).collect())
                    .unwrap_or_default(),
            })
            .collect(),
    )
}

/// Cuts a message to [`MAX_MESSAGE_CHARS`] characters.
pub(crate) fn truncate(text: &str) -> String {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    fn errors(code: &str) -> Vec<ApiError> {
        vec![ApiError {
            code: code.into(),
            message: "m".into(),
            fields: vec!["LastName".into()],
        }]
    }

    #[test]
    fn whole_request_refusals_stop_retry_or_reject() {
        let disabled = answer(
            403,
            r#"[{"message":"The REST API is not enabled for this Organization.","errorCode":"API_DISABLED_FOR_ORG"}]"#,
        );
        let BatchResult::Fatal(d) = refused_batch("Contact", 2, &disabled) else {
            panic!("fatal");
        };
        assert_eq!(d.code, "salesforce::api_disabled");
        assert!(d.hints[0].contains("API Enabled"));
        let daily = answer(
            403,
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        );
        let BatchResult::Fatal(d) = refused_batch("Contact", 2, &daily) else {
            panic!("fatal");
        };
        assert_eq!(d.code, "salesforce::daily_limit");
        let concurrent = answer(
            403,
            r#"[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        );
        assert!(matches!(
            refused_batch("Contact", 2, &concurrent),
            BatchResult::RetryAll { .. }
        ));
        let invalid_type = answer(
            400,
            r#"[{"message":"sObject type 'X' is not supported.","errorCode":"INVALID_TYPE"}]"#,
        );
        let BatchResult::Fatal(d) = refused_batch("X", 1, &invalid_type) else {
            panic!("fatal");
        };
        assert_eq!(d.code, "salesforce::no_access");
        let gone = answer(
            400,
            r#"[{"message":"No such column 'Views__c' on sobject of type ThankView__c","errorCode":"INVALID_FIELD"}]"#,
        );
        let BatchResult::Fatal(d) = refused_batch("ThankView__c", 2, &gone) else {
            panic!("fatal");
        };
        assert_eq!(d.code, "salesforce::mapping_changed");
        assert!(d.notes[0].contains("Views__c"), "{d}");
        let parse = answer(
            400,
            r#"[{"message":"Cannot deserialize","errorCode":"JSON_PARSER_ERROR"}]"#,
        );
        let BatchResult::PerRow(rows) = refused_batch("Contact", 2, &parse) else {
            panic!("rows");
        };
        assert_eq!(rows.len(), 2);
        assert!(matches!(
            refused_batch("Contact", 1, &answer(503, "")),
            BatchResult::RetryAll { .. }
        ));
        assert!(summary(&answer(502, "<html> bad   gateway</html>")).contains("bad gateway"));
    }

    #[test]
    fn record_errors_map_to_retry_reject_or_success() {
        assert!(matches!(
            record_error(&errors("UNABLE_TO_LOCK_ROW"), false),
            RecordError::Retry(_)
        ));
        assert!(matches!(
            record_error(&errors("ALL_OR_NONE_OPERATION_ROLLED_BACK"), false),
            RecordError::Retry(_)
        ));
        assert_eq!(
            record_error(&errors("ENTITY_IS_DELETED"), true),
            RecordError::AlreadyDeleted
        );
        assert!(matches!(
            record_error(&errors("ENTITY_IS_DELETED"), false),
            RecordError::Reject(_)
        ));
        assert!(matches!(
            record_error(&errors("DUPLICATE_VALUE"), false),
            RecordError::Duplicate(_)
        ));
        let RecordError::Reject(text) = record_error(&errors("REQUIRED_FIELD_MISSING"), false)
        else {
            panic!("reject");
        };
        assert_eq!(text, "REQUIRED_FIELD_MISSING: m (fields: LastName)");
        for code in [
            "INVALID_FIELD",
            "MALFORMED_ID",
            "INVALID_CROSS_REFERENCE_KEY",
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "DUPLICATES_DETECTED",
            "STRING_TOO_LONG",
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "JSON_PARSER_ERROR",
            "MALFORMED_QUERY",
        ] {
            assert!(
                matches!(record_error(&errors(code), false), RecordError::Reject(_)),
                "{code}"
            );
        }
    }

    #[test]
    fn save_results_read_both_error_keys() {
        let results = save_results(
            br#"[{"id":"003000000000001AAA","success":true,"errors":[],"created":true},
                 {"success":false,"errors":[{"statusCode":"MALFORMED_ID","message":"malformed id 001","fields":["Id"]}]}]"#,
        )
        .expect("results");
        assert_eq!(results[0].created, Some(true));
        assert_eq!(results[1].errors[0].code, "MALFORMED_ID");
        assert!(save_results(b"{}").is_none());
    }
}
