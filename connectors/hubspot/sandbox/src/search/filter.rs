//! One search filter: its operators, operands and how it compares values.
//!
//! String comparisons ignore case (the fold the unique indexes use), numbers and dates compare
//! as numbers (ISO instants, `YYYY-MM-DD` dates and epoch milliseconds on one scale).

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate};
use serde::Deserialize;
use serde_json::Value;

use crate::errors::ApiError;
use crate::record::Record;
use crate::unique_index::fold;

/// Filters ANDed together; the groups of a search are ORed.
#[derive(Debug, Deserialize)]
pub(crate) struct FilterGroup {
    #[serde(default)]
    pub(super) filters: Vec<Filter>,
}

/// One `Filter` of a search request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Filter {
    pub(super) property_name: String,
    pub(super) operator: String,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    values: Option<Vec<Value>>,
    #[serde(default)]
    high_value: Option<Value>,
}

/// A scalar JSON value as text (clients send `"17"` or `17`).
pub(super) fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Numbers, epoch milliseconds, ISO instants and dates on one numeric scale.
pub(super) fn as_number(text: &str) -> Option<f64> {
    if let Ok(n) = text.parse::<f64>() {
        return n.is_finite().then_some(n);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.timestamp_millis() as f64);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_millis() as f64)
}

fn compare(actual: &str, wanted: &str) -> Ordering {
    match (as_number(actual), as_number(wanted)) {
        (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        _ => fold(actual).cmp(&fold(wanted)),
    }
}

fn equals(actual: &str, wanted: &str) -> bool {
    compare(actual, wanted) == Ordering::Equal
}

impl Filter {
    pub(super) fn value(&self) -> Option<String> {
        self.value.as_ref().and_then(scalar)
    }

    pub(super) fn values(&self) -> Vec<String> {
        self.values.iter().flatten().filter_map(scalar).collect()
    }

    /// Refuses unknown operators and operators missing the operand they need.
    pub(super) fn check(&self) -> Result<(), ApiError> {
        let needs = match self.operator.as_str() {
            "HAS_PROPERTY" | "NOT_HAS_PROPERTY" => None,
            "IN" | "NOT_IN" => (self.values.is_none()).then_some("a `values` array"),
            "BETWEEN" => (self.value().is_none()
                || self.high_value.as_ref().and_then(scalar).is_none())
            .then_some("a `value` and a `highValue`"),
            "EQ" | "NEQ" | "GT" | "GTE" | "LT" | "LTE" | "CONTAINS_TOKEN"
            | "NOT_CONTAINS_TOKEN" => self.value().is_none().then_some("a string `value`"),
            other => {
                return Err(ApiError::validation(format!(
                    "Unknown filter operator {other}: use EQ, NEQ, LT, LTE, GT, GTE, BETWEEN, IN, \
                     NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY, CONTAINS_TOKEN or NOT_CONTAINS_TOKEN"
                )));
            }
        };
        match needs {
            Some(what) => Err(ApiError::validation(format!(
                "Filter {} on {} needs {what}",
                self.operator, self.property_name
            ))),
            None => Ok(()),
        }
    }

    /// Evaluates a filter that passed [`Filter::check`].
    pub(super) fn matches(&self, record: &Record) -> bool {
        let actual = record.get(&self.property_name);
        let actual = actual.as_deref();
        let wanted = self.value().unwrap_or_default();
        let cmp =
            |wanted: &str, ok: fn(Ordering) -> bool| actual.is_some_and(|a| ok(compare(a, wanted)));
        match self.operator.as_str() {
            "EQ" => actual.is_some_and(|a| equals(a, &wanted)),
            "NEQ" => !actual.is_some_and(|a| equals(a, &wanted)),
            "IN" => actual.is_some_and(|a| self.values().iter().any(|v| equals(a, v))),
            "NOT_IN" => !actual.is_some_and(|a| self.values().iter().any(|v| equals(a, v))),
            "HAS_PROPERTY" => actual.is_some(),
            "NOT_HAS_PROPERTY" => actual.is_none(),
            "GT" => cmp(&wanted, Ordering::is_gt),
            "GTE" => cmp(&wanted, Ordering::is_ge),
            "LT" => cmp(&wanted, Ordering::is_lt),
            "LTE" => cmp(&wanted, Ordering::is_le),
            "BETWEEN" => {
                let high = self
                    .high_value
                    .as_ref()
                    .and_then(scalar)
                    .unwrap_or_default();
                cmp(&wanted, Ordering::is_ge) && cmp(&high, Ordering::is_le)
            }
            "CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN" => {
                let token = wanted.trim_matches('*').to_lowercase();
                let found = actual.is_some_and(|a| a.to_lowercase().contains(&token));
                found == (self.operator == "CONTAINS_TOKEN")
            }
            _ => false,
        }
    }
}
