//! Mapped values (text) → the JSON values Salesforce takes, by field type (FACTS D1).
//!
//! Salesforce deserializes a record before it saves it, so a value of the wrong JSON type
//! refuses the whole request (`JSON_PARSER_ERROR`): every value is converted here first,
//! and a value that does not fit is an error for its row only, naming the field and the
//! value. Text longer than the field's `length` is an error, never cut; a restricted
//! picklist is matched case-sensitively, and a value that differs only in case names the
//! right one.
//!
//! | type | sent as |
//! | --- | --- |
//! | `boolean` | `true` / `false` (from `true`, `false`, `1`, `0`, `yes`, `no`) |
//! | `int` | a JSON integer |
//! | `double`, `currency`, `percent` | a JSON number |
//! | `date` | `YYYY-MM-DD` |
//! | `datetime` | `YYYY-MM-DDThh:mm:ss.sssZ` (UTC; a value without a zone is taken as UTC) |
//! | `picklist`, `multipicklist` | the value(s), `;`-separated, checked when restricted |
//! | `reference`, `id` | the 18-character id, checked against the target's key prefix |
//! | `email` | the text, checked for one `@` and a dotted domain |
//! | text types (`string`, `textarea`, `url`, `phone`, …) | the text, at most `length` characters |

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

use crate::ids;

/// What a field holds, for converting values: the describe's `type` with what matters for it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    /// A checkbox.
    Boolean,
    /// A whole number.
    Int,
    /// A number: `double`, `currency`, `percent`.
    Double,
    /// A calendar date.
    Date,
    /// An instant.
    DateTime,
    /// Text of at most `max_chars` characters (`None`: no limit given).
    Text {
        /// The field's `length`.
        max_chars: Option<usize>,
    },
    /// An email address.
    Email {
        /// The field's `length`.
        max_chars: Option<usize>,
    },
    /// A picklist's value, or several `;`-separated for a multi-select picklist.
    Picklist {
        /// The active values, as the API wants them.
        values: Vec<String>,
        /// Only these values are accepted (case-sensitively).
        restricted: bool,
        /// A multi-select picklist.
        multiple: bool,
    },
    /// A lookup: a record id of one of the target objects, as `(object, key prefix)`.
    Reference {
        /// The objects the field may point to, with their key prefixes (empty when unknown).
        targets: Vec<(String, String)>,
    },
}

impl FieldKind {
    /// The kind of a described field; `objects` gives the key prefixes of reference targets.
    pub fn of(field: &crate::schema::Field, prefixes: &dyn Fn(&str) -> Option<String>) -> Self {
        let max_chars = (field.length > 0).then_some(field.length);
        match field.r#type.as_str() {
            "boolean" => Self::Boolean,
            "int" | "long" => Self::Int,
            "double" | "currency" | "percent" => Self::Double,
            "date" => Self::Date,
            "datetime" => Self::DateTime,
            "email" => Self::Email { max_chars },
            "picklist" | "multipicklist" => Self::Picklist {
                values: field.picklist_values.clone(),
                restricted: field.restricted_picklist,
                multiple: field.r#type == "multipicklist",
            },
            "reference" | "id" => Self::Reference {
                targets: field
                    .reference_to
                    .iter()
                    .map(|object| (object.clone(), prefixes(object).unwrap_or_default()))
                    .collect(),
            },
            _ => Self::Text { max_chars },
        }
    }
}

/// Converts one mapped value for `field`. An empty text is `null` (it clears the field).
/// The error names the field and the value.
pub fn convert(field: &str, kind: &FieldKind, text: &str) -> Result<Value, String> {
    if text.is_empty() {
        return Ok(Value::Null);
    }
    let fail = |why: String| format!("`{field}`: {why}");
    match kind {
        FieldKind::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Value::Bool(true)),
            "false" | "0" | "no" => Ok(Value::Bool(false)),
            _ => Err(fail(format!(
                "`{text}` is not a checkbox value; use `true` or `false`"
            ))),
        },
        FieldKind::Int => {
            let trimmed = text.trim();
            if let Ok(n) = trimmed.parse::<i64>() {
                return Ok(Value::from(n));
            }
            match trimmed.parse::<f64>() {
                Ok(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                    Ok(Value::from(f as i64))
                }
                _ => Err(fail(format!("`{text}` is not a whole number"))),
            }
        }
        FieldKind::Double => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| fail(format!("`{text}` is not a number"))),
        FieldKind::Date => date(text)
            .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
            .ok_or_else(|| {
                fail(format!(
                    "`{text}` is not a date; write it as `YYYY-MM-DD` (e.g. `2024-01-15`)"
                ))
            }),
        FieldKind::DateTime => datetime(text)
            .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
            .ok_or_else(|| {
                fail(format!(
                    "`{text}` is not a date and time; write it in ISO 8601, e.g. `2024-01-15T10:30:00Z`"
                ))
            }),
        FieldKind::Text { max_chars } => {
            check_length(text, *max_chars).map_err(fail)?;
            Ok(Value::String(text.to_string()))
        }
        FieldKind::Email { max_chars } => {
            check_length(text, *max_chars).map_err(fail)?;
            if !looks_like_email(text) {
                return Err(fail(format!("`{text}` is not an email address")));
            }
            Ok(Value::String(text.to_string()))
        }
        FieldKind::Picklist {
            values,
            restricted,
            multiple,
        } => {
            let chosen: Vec<&str> = if *multiple {
                text.split(';').map(str::trim).filter(|v| !v.is_empty()).collect()
            } else {
                vec![text]
            };
            if *restricted {
                for value in &chosen {
                    check_picklist(value, values).map_err(fail)?;
                }
            }
            Ok(Value::String(chosen.join(";")))
        }
        FieldKind::Reference { targets } => {
            let id = ids::parse_id(text).map_err(fail)?;
            ids::check_target(&id, targets).map_err(fail)?;
            Ok(Value::String(id.as_str().to_string()))
        }
    }
}

/// A value as a Bulk API 2.0 CSV cell: `null` is `#N/A` (FACTS B5).
pub fn csv_cell(value: &Value) -> String {
    match value {
        Value::Null => "#N/A".to_string(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn check_length(text: &str, max_chars: Option<usize>) -> Result<(), String> {
    let Some(max) = max_chars else {
        return Ok(());
    };
    // Salesforce counts UTF-16 code units.
    let length = text.encode_utf16().count();
    if length > max {
        let shown: String = text.chars().take(40).collect();
        let more = if text.chars().count() > 40 { "…" } else { "" };
        return Err(format!(
            "`{shown}{more}` is {length} characters long, more than the field's {max}; shorten it in the model (values are never cut)"
        ));
    }
    Ok(())
}

fn check_picklist(value: &str, allowed: &[String]) -> Result<(), String> {
    if allowed.iter().any(|a| a == value) {
        return Ok(());
    }
    if let Some(right) = allowed.iter().find(|a| a.eq_ignore_ascii_case(value)) {
        return Err(format!(
            "`{value}` is not a value of the restricted picklist; values are case-sensitive: use `{right}`"
        ));
    }
    let listed: Vec<String> = allowed.iter().take(10).map(|a| format!("`{a}`")).collect();
    let more = if allowed.len() > 10 { ", …" } else { "" };
    Err(format!(
        "`{value}` is not a value of the restricted picklist ({}{more})",
        listed.join(", ")
    ))
}

fn looks_like_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !text.contains(char::is_whitespace)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

fn date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(d);
    }
    // A datetime at midnight UTC is a date (models often carry dates as timestamps).
    datetime(text)
        .filter(|t| t.time() == chrono::NaiveTime::MIN)
        .map(|t| t.date_naive())
}

fn datetime(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(max: usize) -> FieldKind {
        FieldKind::Text {
            max_chars: Some(max),
        }
    }

    #[test]
    fn values_take_their_json_types() {
        assert_eq!(
            convert("Opened__c", &FieldKind::Boolean, "TRUE"),
            Ok(json!(true))
        );
        assert_eq!(
            convert("Opened__c", &FieldKind::Boolean, "0"),
            Ok(json!(false))
        );
        assert_eq!(convert("Views__c", &FieldKind::Int, "12"), Ok(json!(12)));
        assert_eq!(convert("Views__c", &FieldKind::Int, "12.0"), Ok(json!(12)));
        assert_eq!(
            convert("Amount", &FieldKind::Double, "12.5"),
            Ok(json!(12.5))
        );
        assert_eq!(
            convert("Birthdate", &FieldKind::Date, "2024-01-15"),
            Ok(json!("2024-01-15"))
        );
        assert_eq!(
            convert("Birthdate", &FieldKind::Date, "2024-01-15T00:00:00Z"),
            Ok(json!("2024-01-15"))
        );
        assert_eq!(
            convert(
                "Sent_Date__c",
                &FieldKind::DateTime,
                "2024-01-15T10:30:00+02:00"
            ),
            Ok(json!("2024-01-15T08:30:00.000Z"))
        );
        assert_eq!(
            convert("Sent_Date__c", &FieldKind::DateTime, "2024-01-15 10:30:00"),
            Ok(json!("2024-01-15T10:30:00.000Z"))
        );
        assert_eq!(convert("Title", &text(5), ""), Ok(Value::Null));
    }

    #[test]
    fn bad_values_name_the_field_and_the_value() {
        let e = convert("Opened__c", &FieldKind::Boolean, "maybe").expect_err("bad");
        assert!(e.starts_with("`Opened__c`: `maybe`"), "{e}");
        let e = convert("Views__c", &FieldKind::Int, "1.5").expect_err("bad");
        assert!(e.contains("`1.5` is not a whole number"), "{e}");
        let e = convert("Sent_Date__c", &FieldKind::DateTime, "yesterday").expect_err("bad");
        assert!(e.contains("ISO 8601"), "{e}");
        let e = convert("Birthdate", &FieldKind::Date, "2024-01-15T10:00:00Z").expect_err("bad");
        assert!(e.contains("not a date"), "{e}");
        let e = convert("Amount", &FieldKind::Double, "NaN").expect_err("bad");
        assert!(e.contains("not a number"), "{e}");
    }

    #[test]
    fn too_long_text_is_refused_never_cut() {
        let e = convert("Text_Reply__c", &text(5), "abcdef").expect_err("too long");
        assert!(
            e.contains("6 characters long, more than the field's 5"),
            "{e}"
        );
        assert_eq!(
            convert("Text_Reply__c", &text(6), "abcdef"),
            Ok(json!("abcdef"))
        );
        // Characters, not bytes.
        assert_eq!(convert("Text_Reply__c", &text(2), "éé"), Ok(json!("éé")));
        let e = convert(
            "Email",
            &FieldKind::Email { max_chars: None },
            "ann.example.com",
        )
        .expect_err("not an email");
        assert!(e.contains("not an email address"));
    }

    #[test]
    fn restricted_picklists_are_case_sensitive_and_name_the_right_value() {
        let status = FieldKind::Picklist {
            values: vec!["Open - Not Contacted".into(), "Working - Contacted".into()],
            restricted: true,
            multiple: false,
        };
        assert!(convert("Status", &status, "Working - Contacted").is_ok());
        let e = convert("Status", &status, "working - contacted").expect_err("case");
        assert!(e.contains("use `Working - Contacted`"), "{e}");
        let e = convert("Status", &status, "Closed").expect_err("unknown");
        assert!(e.contains("`Open - Not Contacted`"), "{e}");
        let open = FieldKind::Picklist {
            values: vec!["Web".into()],
            restricted: false,
            multiple: true,
        };
        assert_eq!(
            convert("LeadSource", &open, "Web; Other"),
            Ok(json!("Web;Other"))
        );
    }

    #[test]
    fn references_are_checked_ids() {
        let contact = FieldKind::Reference {
            targets: vec![("Contact".into(), "003".into())],
        };
        assert_eq!(
            convert("Contact__c", &contact, "003D0000001aH2A"),
            Ok(json!("003D0000001aH2AIAU"))
        );
        let e = convert("Contact__c", &contact, "1004422").expect_err("numeric");
        assert!(e.contains("not a Salesforce id"), "{e}");
        let e = convert("Contact__c", &contact, "00Q000000000001").expect_err("lead");
        assert!(e.contains("is a Lead id"), "{e}");
        assert_eq!(csv_cell(&Value::Null), "#N/A");
        assert_eq!(csv_cell(&json!(true)), "true");
        assert_eq!(csv_cell(&json!(1.5)), "1.5");
    }
}
