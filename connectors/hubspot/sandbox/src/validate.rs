//! Property value checks on writes, with HubSpot's error codes and messages (FACTS E5, P3, P4).
//!
//! Pure functions: a property name and a string value in, `Ok` or a [`PropertyError`] out. The
//! batch logic turns a list of them into one `VALIDATION_ERROR` per input, whose message embeds
//! the JSON array HubSpot sends (`Property values were not valid: [...]`).

use chrono::{DateTime, NaiveDate};
use serde::Serialize;

use crate::errors::{ErrorDetail, InputError, category};
use crate::properties::{PropertyDef, ValueType};
use crate::registry::ObjectDef;

const DAY_MS: i64 = 86_400_000;

/// Why one property value was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PropertyError {
    /// The property's internal name.
    pub(crate) name: String,
    /// HubSpot's code, e.g. `INVALID_OPTION`.
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl PropertyError {
    fn new(name: &str, code: &'static str, message: String) -> Self {
        PropertyError {
            name: name.to_owned(),
            code,
            message,
        }
    }
}

/// Checks that `name` may be written on `object` and that `value` fits its type.
pub(crate) fn check_write(
    object: &ObjectDef,
    name: &str,
    value: &str,
) -> Result<(), PropertyError> {
    let Some(def) = object.property(name) else {
        return Err(PropertyError::new(
            name,
            "PROPERTY_DOESNT_EXIST",
            format!("Property \"{name}\" does not exist"),
        ));
    };
    if def.read_only {
        return Err(PropertyError::new(
            name,
            "READ_ONLY_VALUE",
            format!("\"{name}\" is a calculated property; its value cannot be set."),
        ));
    }
    check_value(def, value)
}

/// Checks a value against a property's type; `""` always passes (it clears the property).
pub(crate) fn check_value(def: &PropertyDef, value: &str) -> Result<(), PropertyError> {
    if value.is_empty() {
        return Ok(());
    }
    let fail = |code, message| Err(PropertyError::new(&def.name, code, message));
    if def.email && !is_email(value) {
        return fail("INVALID_EMAIL", format!("Email address {value} is invalid"));
    }
    match def.value_type {
        ValueType::String | ValueType::PhoneNumber => Ok(()),
        ValueType::Number if is_number(value) => Ok(()),
        ValueType::Number => fail("INVALID_NUMBER", format!("{value} is not a valid number")),
        ValueType::Date => check_date(value).or_else(|message| fail("INVALID_DATE", message)),
        ValueType::DateTime if is_datetime(value) => Ok(()),
        ValueType::DateTime => fail(
            "INVALID_DATETIME",
            format!("{value} is not a valid datetime: send epoch milliseconds or ISO-8601"),
        ),
        ValueType::Bool | ValueType::Enumeration => check_options(def, value),
    }
}

fn check_options(def: &PropertyDef, value: &str) -> Result<(), PropertyError> {
    if def.external_options {
        return Ok(());
    }
    let allowed = def.option_values();
    // Multi-select properties (`checkbox`) take `a;b;c` (FACTS P2).
    let mut values = if def.field_type == "checkbox" {
        value.split(';').collect::<Vec<_>>()
    } else {
        vec![value]
    };
    values.retain(|v| !allowed.contains(v));
    match values.first() {
        None => Ok(()),
        Some(bad) => Err(PropertyError::new(
            &def.name,
            "INVALID_OPTION",
            format!(
                "{bad} was not one of the allowed options: [{}]",
                allowed.join(", ")
            ),
        )),
    }
}

/// A `date` must be midnight UTC: epoch milliseconds or `YYYY-MM-DD` (FACTS P3).
fn check_date(value: &str) -> Result<(), String> {
    if let Ok(ms) = value.parse::<i64>() {
        if ms.rem_euclid(DAY_MS) == 0 {
            return Ok(());
        }
        return match DateTime::from_timestamp_millis(ms) {
            Some(at) => Err(format!(
                "{value} is at {} UTC, not midnight!",
                at.format("%H:%M:%S%.3f")
            )),
            None => Err(format!("{value} is not a valid date")),
        };
    }
    if value.len() == 10 && NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok() {
        return Ok(());
    }
    Err(format!(
        "{value} is not a valid date: send midnight-UTC epoch milliseconds or YYYY-MM-DD"
    ))
}

/// A `datetime` is any epoch-milliseconds instant or an ISO-8601 date or instant (FACTS P3).
fn is_datetime(value: &str) -> bool {
    value
        .parse::<i64>()
        .is_ok_and(|ms| DateTime::from_timestamp_millis(ms).is_some())
        || DateTime::parse_from_rfc3339(value).is_ok()
        || (value.len() == 10 && NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok())
}

/// Decimal numbers as HubSpot accepts them: `17`, `-3`, `17.5`, `1e3` (no `inf`/`NaN`).
fn is_number(value: &str) -> bool {
    let plain = value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'));
    plain
        && value.chars().any(|c| c.is_ascii_digit())
        && value.parse::<f64>().is_ok_and(f64::is_finite)
}

/// A pragmatic address check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub(crate) fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    let labels_ok = domain.split('.').count() >= 2
        && domain
            .split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    !local.is_empty()
        && !domain.contains('@')
        && !value.chars().any(char::is_whitespace)
        && labels_ok
}

/// One element of the JSON array inside HubSpot's `Property values were not valid` message;
/// the field order is HubSpot's.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireValidation<'a> {
    is_valid: bool,
    message: &'a str,
    error: &'a str,
    name: &'a str,
    localized_error_message: &'a str,
}

/// The message HubSpot sends for invalid property values (FACTS E5).
pub(crate) fn validation_message(errors: &[PropertyError]) -> String {
    let wire: Vec<WireValidation<'_>> = errors
        .iter()
        .map(|e| WireValidation {
            is_valid: false,
            message: &e.message,
            error: e.code,
            name: &e.name,
            localized_error_message: &e.message,
        })
        .collect();
    let array = serde_json::to_string(&wire).unwrap_or_else(|_| "[]".to_owned());
    format!("Property values were not valid: {array}")
}

/// The per-input error of a batch (a `StandardError`) for a list of refused values.
pub(crate) fn input_error(errors: &[PropertyError]) -> InputError {
    let details = errors
        .iter()
        .map(|e| {
            ErrorDetail::new(e.message.clone())
                .code(e.code)
                .field(e.name.clone())
                .context("propertyName", vec![e.name.clone()])
        })
        .collect();
    InputError::new(category::VALIDATION_ERROR, validation_message(errors)).details(details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{ObjectType, Registry};

    fn check(object: ObjectType, name: &str, value: &str) -> Result<(), PropertyError> {
        check_write(Registry::default().get(object), name, value)
    }

    fn contact(name: &str, value: &str) -> Result<(), &'static str> {
        check(ObjectType::CONTACTS, name, value).map_err(|e| e.code)
    }

    #[test]
    fn unknown_and_read_only_properties() {
        assert_eq!(contact("shoe_size", "42"), Err("PROPERTY_DOESNT_EXIST"));
        assert_eq!(contact("hs_object_id", "1"), Err("READ_ONLY_VALUE"));
        assert_eq!(contact("createdate", "1"), Err("READ_ONLY_VALUE"));
    }

    #[test]
    fn enumerations_are_case_sensitive() {
        assert_eq!(contact("lifecyclestage", "lead"), Ok(()));
        assert_eq!(contact("lifecyclestage", "Lead"), Err("INVALID_OPTION"));
        assert_eq!(contact("hs_lead_status", "NEW"), Ok(()));
        assert_eq!(contact("hs_lead_status", "new"), Err("INVALID_OPTION"));
        let message = check(ObjectType::CONTACTS, "lifecyclestage", "Lead")
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(message.starts_with("Lead was not one of the allowed options: [subscriber, lead,"));
    }

    #[test]
    fn dates_must_be_midnight() {
        assert_eq!(contact("date_of_birth", "1430438400000"), Ok(()));
        assert_eq!(contact("date_of_birth", "2015-05-01"), Ok(()));
        let err = check(ObjectType::CONTACTS, "date_of_birth", "1635535865").err();
        assert_eq!(
            err.map(|e| e.message).as_deref(),
            Some("1635535865 is at 22:18:55.865 UTC, not midnight!")
        );
        assert_eq!(contact("date_of_birth", "2015-13-01"), Err("INVALID_DATE"));
        assert_eq!(contact("date_of_birth", "yesterday"), Err("INVALID_DATE"));
    }

    #[test]
    fn datetimes_numbers_bools_emails() {
        assert_eq!(contact("last_seen_at", "1635535865123"), Ok(()));
        assert_eq!(contact("last_seen_at", "2021-10-29T19:31:05Z"), Ok(()));
        assert_eq!(contact("last_seen_at", "soon"), Err("INVALID_DATETIME"));
        assert_eq!(contact("num_orders", "17"), Ok(()));
        assert_eq!(contact("num_orders", "-1.5"), Ok(()));
        assert_eq!(contact("num_orders", "inf"), Err("INVALID_NUMBER"));
        assert_eq!(contact("num_orders", "seven"), Err("INVALID_NUMBER"));
        assert_eq!(contact("is_vip", "true"), Ok(()));
        assert_eq!(contact("is_vip", "yes"), Err("INVALID_OPTION"));
        assert_eq!(contact("email", "ada@example.com"), Ok(()));
        assert_eq!(contact("email", "ada@"), Err("INVALID_EMAIL"));
        assert_eq!(contact("email", "ada example@x.com"), Err("INVALID_EMAIL"));
        assert_eq!(contact("email", ""), Ok(()));
    }

    #[test]
    fn deals_and_tickets() {
        let code = |object, name, value| check(object, name, value).map_err(|e| e.code);
        assert_eq!(code(ObjectType::DEALS, "dealstage", "closedwon"), Ok(()));
        assert_eq!(
            code(ObjectType::DEALS, "dealstage", "Closed Won"),
            Err("INVALID_OPTION")
        );
        assert_eq!(code(ObjectType::DEALS, "pipeline", "default"), Ok(()));
        assert_eq!(code(ObjectType::DEALS, "amount", "12.5"), Ok(()));
        assert_eq!(
            code(ObjectType::DEALS, "amount", "a lot"),
            Err("INVALID_NUMBER")
        );
        assert_eq!(code(ObjectType::DEALS, "hubspot_owner_id", "4711"), Ok(()));
        assert_eq!(code(ObjectType::TICKETS, "hs_pipeline_stage", "4"), Ok(()));
        assert_eq!(
            code(ObjectType::TICKETS, "hs_pipeline_stage", "5"),
            Err("INVALID_OPTION")
        );
        assert_eq!(
            code(ObjectType::TICKETS, "hs_ticket_priority", "high"),
            Err("INVALID_OPTION")
        );
        assert_eq!(
            code(ObjectType::TICKETS, "email", "a@b.co"),
            Err("PROPERTY_DOESNT_EXIST")
        );
    }

    #[test]
    fn message_embeds_the_json_array() {
        let errors = [PropertyError::new(
            "is_vip",
            "INVALID_OPTION",
            "x".to_owned(),
        )];
        assert_eq!(
            validation_message(&errors),
            "Property values were not valid: [{\"isValid\":false,\"message\":\"x\",\
             \"error\":\"INVALID_OPTION\",\"name\":\"is_vip\",\"localizedErrorMessage\":\"x\"}]"
        );
    }
}
