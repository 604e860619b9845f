//! Mapped text → the value the destination's property type wants, checked at plan time.
//!
//! The destination's schema says what each property holds ([`ValueKind`]); a connector reads
//! it when the plan starts, and every mapped value is converted before it is fingerprinted, so
//! a schema change that alters what is sent shows up in the plan. A value that cannot be
//! converted is an [`InvalidValue`]: that row is left out of the plan and listed, the others
//! go ahead.
//!
//! | kind | accepts | sends |
//! | --- | --- | --- |
//! | `Date` | `YYYY-MM-DD`, an RFC 3339 timestamp (its UTC date), epoch milliseconds | midnight UTC of that date, in epoch milliseconds |
//! | `DateTime` | an RFC 3339 timestamp, `YYYY-MM-DD` (midnight UTC), epoch milliseconds | epoch milliseconds |
//! | `Number` | a decimal number (`-12.50`, `1e3`) | the text as written, trimmed |
//! | `Bool` | `true`/`false`, `yes`/`no`, `1`/`0` (any case) | `true` / `false` |
//! | `Enumeration` | an option's internal value, exactly; several separated by `;` when the property takes several | the value(s) as written |

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

/// What a destination property holds, as far as converting a value goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind {
    /// A calendar date, sent as midnight UTC in epoch milliseconds.
    Date,
    /// An instant, sent as epoch milliseconds.
    DateTime,
    /// A number.
    Number,
    /// A checkbox: `true` or `false`.
    Bool,
    /// One of a fixed set of internal values (case-sensitive), or several when `multiple`.
    Enumeration {
        /// The allowed options.
        options: Vec<EnumOption>,
        /// True when a value may hold several options separated by `;`.
        multiple: bool,
    },
}

/// One allowed value of an enumeration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumOption {
    /// The internal value the API wants.
    pub value: String,
    /// The label people see.
    pub label: String,
}

/// Why a value cannot be sent as its property's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    /// What is wrong, naming the value.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl ValueKind {
    /// Converts one mapped value.
    pub fn convert<'a>(&self, text: &'a str) -> Result<Cow<'a, str>, InvalidValue> {
        match self {
            ValueKind::Date => date_millis(text).map(|ms| Cow::Owned(ms.to_string())),
            ValueKind::DateTime => instant_millis(text).map(|ms| Cow::Owned(ms.to_string())),
            ValueKind::Number => number(text),
            ValueKind::Bool => {
                boolean(text).map(|b| Cow::Borrowed(if b { "true" } else { "false" }))
            }
            ValueKind::Enumeration { options, multiple } => {
                if *multiple {
                    for part in text.split(';') {
                        option(options, part)?;
                    }
                } else {
                    option(options, text)?;
                }
                Ok(Cow::Borrowed(text))
            }
        }
    }
}

const MS_PER_DAY: i64 = 86_400_000;

fn invalid(message: String, hint: impl Into<String>) -> InvalidValue {
    InvalidValue {
        message,
        hint: hint.into(),
    }
}

/// Midnight UTC of the value's date, in epoch milliseconds; a timestamp is cut to its UTC date.
fn date_millis(text: &str) -> Result<i64, InvalidValue> {
    let trimmed = text.trim();
    let millis = instant_millis(trimmed).map_err(|_| {
        invalid(
            format!("`{text}` is not a date"),
            "map a date (`YYYY-MM-DD`), a timestamp or epoch milliseconds; in a template, `to_unix` gives epoch milliseconds",
        )
    })?;
    Ok(millis.div_euclid(MS_PER_DAY) * MS_PER_DAY)
}

/// An instant in epoch milliseconds.
fn instant_millis(text: &str) -> Result<i64, InvalidValue> {
    let trimmed = text.trim();
    if let Ok(ms) = trimmed.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(instant) = DateTime::parse_from_rfc3339(trimmed) {
        return Ok(instant.with_timezone(&Utc).timestamp_millis());
    }
    if let Ok(date) = NaiveDate::parse_from_str(trimmed, "%Y-%m-%d") {
        return Ok(date.and_time(NaiveTime::MIN).and_utc().timestamp_millis());
    }
    Err(invalid(
        format!("`{text}` is not a date-time"),
        "map an RFC 3339 timestamp (`2024-05-01T13:22:00Z`), a date or epoch milliseconds",
    ))
}

fn number(text: &str) -> Result<Cow<'_, str>, InvalidValue> {
    let trimmed = text.trim();
    match trimmed.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(Cow::Borrowed(trimmed)),
        _ => Err(invalid(
            format!("`{text}` is not a number"),
            "map a number, or CAST the column in the model's SQL",
        )),
    }
}

fn boolean(text: &str) -> Result<bool, InvalidValue> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(invalid(
            format!("`{text}` is not a checkbox value"),
            "map `true` or `false` (`yes`/`no` and `1`/`0` are read too)",
        )),
    }
}

/// Checks one enumeration value: the internal value exactly (FACTS P4: case-sensitive, not the
/// label), with a hint naming the right value when the case differs or a label was used.
fn option(options: &[EnumOption], value: &str) -> Result<(), InvalidValue> {
    if options.iter().any(|o| o.value == value) {
        return Ok(());
    }
    let message = format!("`{value}` is not one of the property's options");
    if let Some(o) = options.iter().find(|o| o.value.eq_ignore_ascii_case(value)) {
        return Err(invalid(
            message,
            format!("options are case-sensitive: use `{}`", o.value),
        ));
    }
    if let Some(o) = options
        .iter()
        .find(|o| o.label == value || o.label.eq_ignore_ascii_case(value))
    {
        return Err(invalid(
            message,
            format!(
                "`{value}` is the label of the option `{}`: map its internal value",
                o.value
            ),
        ));
    }
    let values: Vec<&str> = options.iter().map(|o| o.value.as_str()).take(20).collect();
    Err(invalid(
        message,
        format!("use one of: {}", values.join(", ")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages() -> ValueKind {
        ValueKind::Enumeration {
            options: vec![
                EnumOption {
                    value: "OPEN".into(),
                    label: "Open".into(),
                },
                EnumOption {
                    value: "marketingqualifiedlead".into(),
                    label: "Marketing Qualified Lead".into(),
                },
            ],
            multiple: false,
        }
    }

    #[test]
    fn dates_become_midnight_utc_in_epoch_milliseconds() {
        let date = ValueKind::Date;
        assert_eq!(date.convert("2024-05-01").unwrap(), "1714521600000");
        // A timestamp keeps its UTC date; one east of UTC may fall on the day before.
        assert_eq!(
            date.convert("2024-05-01T23:59:59.000Z").unwrap(),
            "1714521600000"
        );
        assert_eq!(
            date.convert("2024-05-01T01:00:00+02:00").unwrap(),
            "1714435200000"
        );
        assert_eq!(date.convert("1714560000123").unwrap(), "1714521600000");
        assert_eq!(date.convert("1960-01-01").unwrap(), "-315619200000");
        let error = date.convert("01/05/2024").unwrap_err();
        assert_eq!(error.message, "`01/05/2024` is not a date");
    }

    #[test]
    fn date_times_become_epoch_milliseconds() {
        let kind = ValueKind::DateTime;
        assert_eq!(
            kind.convert("2024-05-01T13:22:00.250Z").unwrap(),
            "1714569720250"
        );
        assert_eq!(kind.convert("2024-05-01").unwrap(), "1714521600000");
        assert_eq!(kind.convert(" 42 ").unwrap(), "42");
        assert!(kind.convert("yesterday").is_err());
    }

    #[test]
    fn numbers_and_checkboxes() {
        assert_eq!(ValueKind::Number.convert(" 12.50 ").unwrap(), "12.50");
        assert_eq!(ValueKind::Number.convert("1e3").unwrap(), "1e3");
        assert!(ValueKind::Number.convert("twelve").is_err());
        assert!(ValueKind::Number.convert("NaN").is_err());
        assert_eq!(ValueKind::Bool.convert("Yes").unwrap(), "true");
        assert_eq!(ValueKind::Bool.convert("0").unwrap(), "false");
        assert!(ValueKind::Bool.convert("maybe").is_err());
    }

    #[test]
    fn enumerations_are_checked_case_sensitively_with_a_hint() {
        let kind = stages();
        assert_eq!(kind.convert("OPEN").unwrap(), "OPEN");
        let wrong_case = kind.convert("Open").unwrap_err();
        assert_eq!(
            wrong_case.message,
            "`Open` is not one of the property's options"
        );
        assert_eq!(wrong_case.hint, "options are case-sensitive: use `OPEN`");
        let label = kind.convert("Marketing Qualified Lead").unwrap_err();
        assert_eq!(
            label.hint,
            "`Marketing Qualified Lead` is the label of the option `marketingqualifiedlead`: map its internal value"
        );
        let unknown = kind.convert("closed").unwrap_err();
        assert_eq!(unknown.hint, "use one of: OPEN, marketingqualifiedlead");
        let ValueKind::Enumeration { options, .. } = kind else {
            unreachable!()
        };
        let several = ValueKind::Enumeration {
            options,
            multiple: true,
        };
        assert_eq!(
            several.convert("OPEN;marketingqualifiedlead").unwrap(),
            "OPEN;marketingqualifiedlead"
        );
        assert!(several.convert("OPEN;open").is_err());
    }
}
