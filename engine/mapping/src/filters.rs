//! Liquid's filters for minijinja, with Liquid's semantics, plus `to_unix` (Hightouch's),
//! `email_domain` and `is_free_email`. Liquid's argument syntax (`| append: "!"`) is rewritten
//! to the call syntax these are registered for (`| append("!")`) by [`crate::liquid`].
//!
//! Null handling follows SQL more than Liquid where that keeps a null a null: string and
//! number filters given `none` return `none` (so the property stays null and its `on_null`
//! applies), except `append`/`prepend` (Liquid: nil is `""`), `size` (0), `split` (empty
//! list), `default` (the fallback) and `to_unix` (an error, as Hightouch documents).

use std::collections::HashSet;
use std::sync::LazyLock;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};

use crate::format::write_f64;

/// The filters this module registers, for documentation and "did you mean" hints.
pub(crate) const LIQUID_FILTERS: &[&str] = &[
    "to_unix",
    "upcase",
    "downcase",
    "size",
    "append",
    "prepend",
    "strip",
    "lstrip",
    "rstrip",
    "plus",
    "minus",
    "times",
    "divided_by",
    "modulo",
    "split",
    "date",
    "default",
    "truncate",
    "replace",
    "email_domain",
    "is_free_email",
];

/// How many arguments a filter of [`LIQUID_FILTERS`] takes (fewest, most), and how it is
/// written, for the compile-time check of filter calls.
pub(crate) fn arity(name: &str) -> Option<(usize, usize, &'static str)> {
    Some(match name {
        "to_unix" | "upcase" | "downcase" | "size" | "strip" | "lstrip" | "rstrip"
        | "email_domain" | "is_free_email" => (0, 0, "takes no arguments"),
        "append" => (1, 1, "takes one argument: `| append: \"!\"`"),
        "prepend" => (1, 1, "takes one argument: `| prepend: \"Dr. \"`"),
        "plus" | "minus" | "times" | "divided_by" | "modulo" => {
            (1, 1, "takes one argument, a number: `| plus: 1`")
        }
        "split" => (1, 1, "takes one argument, the separator: `| split: \",\"`"),
        "date" => (
            1,
            1,
            "takes one argument, the format: `| date: \"%Y-%m-%d\"`",
        ),
        "default" => (
            0,
            2,
            "takes the fallback and `allow_false`: `| default: \"n/a\"`, `| default: \"n/a\", allow_false: true`",
        ),
        "truncate" => (
            0,
            2,
            "takes the length and the ellipsis: `| truncate: 20`, `| truncate: 20, \"\"`",
        ),
        "replace" => (
            1,
            2,
            "takes the text to find and its replacement: `| replace: \"-\", \" \"`",
        ),
        _ => return None,
    })
}

/// minijinja's own filters (default features), for "did you mean" hints.
pub(crate) const BUILTIN_FILTERS: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "chain",
    "count",
    "d",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "unique",
    "upper",
    "zip",
];

/// Registers the filters and the `null` / `nil` globals.
pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_global("null", Value::from(()));
    env.add_global("nil", Value::from(()));
    env.add_filter("to_unix", to_unix);
    env.add_filter("upcase", upcase);
    env.add_filter("downcase", downcase);
    env.add_filter("size", size);
    env.add_filter("append", append);
    env.add_filter("prepend", prepend);
    env.add_filter("strip", strip);
    env.add_filter("lstrip", lstrip);
    env.add_filter("rstrip", rstrip);
    env.add_filter("plus", plus);
    env.add_filter("minus", minus);
    env.add_filter("times", times);
    env.add_filter("divided_by", divided_by);
    env.add_filter("modulo", modulo);
    env.add_filter("split", split);
    env.add_filter("date", date);
    env.add_filter("default", default);
    env.add_filter("truncate", truncate);
    // Replaces minijinja's own `replace`: the same for strings, but `none` stays `none`.
    env.add_filter("replace", replace);
    env.add_filter("email_domain", email_domain);
    env.add_filter("is_free_email", is_free_email);
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

fn undefined(filter: &str) -> Error {
    Error::new(
        ErrorKind::UndefinedError,
        format!("{filter}: input is undefined"),
    )
}

/// The text of a value as templates print it (`17.0` → `17`); `None` for `none`.
fn text_of(filter: &str, value: &Value) -> Result<Option<String>, Error> {
    match value.kind() {
        ValueKind::Undefined => Err(undefined(filter)),
        ValueKind::None => Ok(None),
        ValueKind::String => Ok(Some(value.as_str().unwrap_or_default().to_owned())),
        ValueKind::Number if !value.is_integer() => {
            let mut text = String::new();
            let _ = write_f64(&mut text, f64::try_from(value.clone())?);
            Ok(Some(text))
        }
        ValueKind::Bool => Ok(Some(
            (if value.is_true() { "true" } else { "false" }).to_owned(),
        )),
        _ => Ok(Some(value.to_string())),
    }
}

/// Parses an ISO 8601 / RFC 3339 date or date-time. Dates and date-times without an offset are
/// taken as UTC.
pub(crate) fn parse_datetime(text: &str) -> Option<DateTime<FixedOffset>> {
    let text = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt);
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M%#z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(text, format) {
            return Some(dt);
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, format) {
            return Some(dt.and_utc().fixed_offset());
        }
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().fixed_offset())
}

fn datetime_arg(filter: &str, value: &Value) -> Result<Option<DateTime<FixedOffset>>, Error> {
    let Some(text) = text_of(filter, value)? else {
        return Ok(None);
    };
    match parse_datetime(&text) {
        Some(dt) => Ok(Some(dt)),
        None => Err(invalid(format!(
            "{filter}: `{text}` is not an ISO 8601 date or date-time (e.g. `2024-01-15` or `2024-01-15T10:30:00Z`)"
        ))),
    }
}

/// `to_unix`: an ISO date or date-time → milliseconds since the Unix epoch (dates at midnight
/// UTC, as HubSpot wants date properties). Null input is an error, as Hightouch documents.
fn to_unix(value: Value) -> Result<Value, Error> {
    if value.is_undefined() {
        return Err(undefined("to_unix"));
    }
    match datetime_arg("to_unix", &value)? {
        Some(dt) => Ok(Value::from(dt.timestamp_millis())),
        None => Err(invalid("to_unix: input is null".to_owned())),
    }
}

/// `date(format)`: strftime on an ISO date or date-time (chrono's specifiers); `none` stays
/// `none`.
fn date(value: Value, format: &str) -> Result<Value, Error> {
    let items: Vec<Item<'_>> = StrftimeItems::new(format).collect();
    if items.iter().any(|item| matches!(item, Item::Error)) {
        return Err(invalid(format!(
            "date: `{format}` is not a valid strftime format"
        )));
    }
    match datetime_arg("date", &value)? {
        Some(dt) => {
            use std::fmt::Write as _;
            let mut out = String::new();
            write!(out, "{}", dt.format_with_items(items.into_iter()))
                .map_err(|_| invalid(format!("date: cannot format with `{format}`")))?;
            Ok(Value::from(out))
        }
        None => Ok(Value::from(())),
    }
}

fn map_text(filter: &str, value: &Value, f: impl FnOnce(&str) -> String) -> Result<Value, Error> {
    Ok(match text_of(filter, value)? {
        Some(text) => Value::from(f(&text)),
        None => Value::from(()),
    })
}

fn upcase(value: Value) -> Result<Value, Error> {
    map_text("upcase", &value, str::to_uppercase)
}

fn downcase(value: Value) -> Result<Value, Error> {
    map_text("downcase", &value, str::to_lowercase)
}

fn strip(value: Value) -> Result<Value, Error> {
    map_text("strip", &value, |s| s.trim().to_owned())
}

fn lstrip(value: Value) -> Result<Value, Error> {
    map_text("lstrip", &value, |s| s.trim_start().to_owned())
}

fn rstrip(value: Value) -> Result<Value, Error> {
    map_text("rstrip", &value, |s| s.trim_end().to_owned())
}

/// `size`: characters of a string, items of a list or map; 0 for `none`.
fn size(value: Value) -> Result<Value, Error> {
    match value.kind() {
        ValueKind::Undefined => Err(undefined("size")),
        ValueKind::None => Ok(Value::from(0)),
        ValueKind::String => Ok(Value::from(
            value.as_str().unwrap_or_default().chars().count(),
        )),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => match value.len() {
            Some(len) => Ok(Value::from(len)),
            None => Ok(Value::from(value.try_iter()?.count())),
        },
        _ => Err(invalid(format!(
            "size: expected a string or a list, got `{value}`"
        ))),
    }
}

fn append(value: Value, suffix: Value) -> Result<Value, Error> {
    let mut text = text_of("append", &value)?.unwrap_or_default();
    text.push_str(&text_of("append", &suffix)?.unwrap_or_default());
    Ok(Value::from(text))
}

fn prepend(value: Value, prefix: Value) -> Result<Value, Error> {
    let mut text = text_of("prepend", &prefix)?.unwrap_or_default();
    text.push_str(&text_of("prepend", &value)?.unwrap_or_default());
    Ok(Value::from(text))
}

/// `split(separator)`: a list of strings; trailing empty items are dropped (as in Liquid),
/// an empty separator splits into characters, `none` gives an empty list.
fn split(value: Value, separator: &str) -> Result<Value, Error> {
    let Some(text) = text_of("split", &value)? else {
        return Ok(Value::from(Vec::<Value>::new()));
    };
    let mut parts: Vec<&str> = if separator.is_empty() {
        text.char_indices()
            .map(|(i, c)| &text[i..i + c.len_utf8()])
            .collect()
    } else {
        text.split(separator).collect()
    };
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    Ok(Value::from(
        parts.into_iter().map(Value::from).collect::<Vec<_>>(),
    ))
}

/// Liquid's `default`: the fallback when the value is `none`, undefined, `false` (unless
/// `allow_false` is true), an empty string or an empty list; otherwise the value.
fn default(value: Value, fallback: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let allow_false = kwargs.get::<Option<bool>>("allow_false")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let empty = match value.kind() {
        ValueKind::Undefined | ValueKind::None => true,
        ValueKind::Bool => !allow_false && !value.is_true(),
        ValueKind::String | ValueKind::Seq | ValueKind::Map => value.len() == Some(0),
        _ => false,
    };
    Ok(if empty {
        fallback.unwrap_or_else(|| Value::from(""))
    } else {
        value
    })
}

/// Liquid's `truncate(length = 50, ellipsis = "...")`: text longer than `length` characters
/// is cut so that it and the ellipsis make `length` characters (just the ellipsis when that is
/// longer than `length`); shorter text is unchanged.
fn truncate(value: Value, length: Option<i64>, ellipsis: Option<Value>) -> Result<Value, Error> {
    let Some(text) = text_of("truncate", &value)? else {
        return Ok(Value::from(()));
    };
    let ellipsis = match ellipsis {
        Some(ellipsis) => text_of("truncate", &ellipsis)?.unwrap_or_default(),
        None => "...".to_owned(),
    };
    let length = length.unwrap_or(50);
    let chars = text.chars().count();
    if i64::try_from(chars).is_ok_and(|chars| chars <= length) {
        return Ok(Value::from(text));
    }
    let keep = usize::try_from(length)
        .unwrap_or(0)
        .saturating_sub(ellipsis.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(&ellipsis);
    Ok(Value::from(out))
}

/// Liquid's `replace(find, with = "")`: every occurrence.
fn replace(value: Value, find: Value, with: Option<Value>) -> Result<Value, Error> {
    let find = text_of("replace", &find)?.unwrap_or_default();
    let with = match with {
        Some(with) => text_of("replace", &with)?.unwrap_or_default(),
        None => String::new(),
    };
    map_text("replace", &value, |text| text.replace(&find, &with))
}

/// The domain of an e-mail address, lower-cased: the text after its last `@` (surrounding
/// white space and a trailing `.` dropped); `None` when there is no `@` or nothing after it.
fn domain_of(email: &str) -> Option<String> {
    let (_, domain) = email.trim().rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.');
    (!domain.is_empty()).then(|| domain.to_lowercase())
}

/// `email_domain`: the part after the last `@`, lower-cased; `none` for a value without one.
fn email_domain(value: Value) -> Result<Value, Error> {
    Ok(match text_of("email_domain", &value)? {
        Some(text) => domain_of(&text).map_or_else(|| Value::from(()), Value::from),
        None => Value::from(()),
    })
}

/// The free-mail and disposable domains of `data/free_email_domains.txt` (its header names
/// the source, version and licence), as a set built on first use.
static FREE_EMAIL_DOMAINS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/free_email_domains.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// `is_free_email`: whether an e-mail address's domain, or a bare domain, is a free-mail (or
/// disposable) provider's, such as `gmail.com` or `yahoo.co.jp`; `none` stays `none`.
fn is_free_email(value: Value) -> Result<Value, Error> {
    let Some(text) = text_of("is_free_email", &value)? else {
        return Ok(Value::from(()));
    };
    let domain = if text.contains('@') {
        domain_of(&text)
    } else {
        let domain = text.trim().trim_end_matches('.');
        (!domain.is_empty()).then(|| domain.to_lowercase())
    };
    Ok(Value::from(domain.is_some_and(|domain| {
        FREE_EMAIL_DOMAINS.contains(domain.as_str())
    })))
}

/// A number for the arithmetic filters.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            // Precision loss above 2^53 is what float arithmetic means here.
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

fn num_of(filter: &str, value: &Value) -> Result<Option<Num>, Error> {
    match value.kind() {
        ValueKind::Undefined => Err(undefined(filter)),
        ValueKind::None => Ok(None),
        ValueKind::Number if value.is_integer() => {
            Ok(Some(Num::Int(i128::try_from(value.clone())?)))
        }
        ValueKind::Number => Ok(Some(Num::Float(f64::try_from(value.clone())?))),
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default().trim();
            if let Ok(int) = text.parse::<i128>() {
                Ok(Some(Num::Int(int)))
            } else if let Some(float) = text.parse::<f64>().ok().filter(|f| f.is_finite()) {
                Ok(Some(Num::Float(float)))
            } else {
                Err(invalid(format!("{filter}: `{text}` is not a number")))
            }
        }
        _ => Err(invalid(format!("{filter}: `{value}` is not a number"))),
    }
}

fn num_value(num: Num) -> Value {
    match num {
        Num::Int(i) => match i64::try_from(i) {
            Ok(small) => Value::from(small),
            Err(_) => Value::from(i),
        },
        Num::Float(f) => Value::from(f),
    }
}

/// Applies an arithmetic filter: integers stay integers (overflow is an error), otherwise
/// float arithmetic; a `none` operand gives `none`.
fn arithmetic(
    filter: &str,
    value: &Value,
    operand: &Value,
    int_op: impl FnOnce(i128, i128) -> Result<Option<i128>, Error>,
    float_op: impl FnOnce(f64, f64) -> Result<f64, Error>,
) -> Result<Value, Error> {
    let (Some(a), Some(b)) = (num_of(filter, value)?, num_of(filter, operand)?) else {
        return Ok(Value::from(()));
    };
    let result = match (a, b) {
        (Num::Int(a), Num::Int(b)) => match int_op(a, b)? {
            Some(r) => Num::Int(r),
            None => return Err(invalid(format!("{filter}: integer overflow"))),
        },
        _ => Num::Float(float_op(a.as_f64(), b.as_f64())?),
    };
    Ok(num_value(result))
}

fn plus(value: Value, operand: Value) -> Result<Value, Error> {
    arithmetic(
        "plus",
        &value,
        &operand,
        |a, b| Ok(a.checked_add(b)),
        |a, b| Ok(a + b),
    )
}

fn minus(value: Value, operand: Value) -> Result<Value, Error> {
    arithmetic(
        "minus",
        &value,
        &operand,
        |a, b| Ok(a.checked_sub(b)),
        |a, b| Ok(a - b),
    )
}

fn times(value: Value, operand: Value) -> Result<Value, Error> {
    arithmetic(
        "times",
        &value,
        &operand,
        |a, b| Ok(a.checked_mul(b)),
        |a, b| Ok(a * b),
    )
}

fn division_by_zero(filter: &str) -> Error {
    invalid(format!("{filter}: division by zero"))
}

/// `divided_by`: integer division rounds down when both sides are integers (Liquid).
fn divided_by(value: Value, operand: Value) -> Result<Value, Error> {
    arithmetic(
        "divided_by",
        &value,
        &operand,
        |a, b| {
            if b == 0 {
                return Err(division_by_zero("divided_by"));
            }
            let Some(q) = a.checked_div(b) else {
                return Ok(None);
            };
            Ok(Some(if a % b != 0 && ((a < 0) != (b < 0)) {
                q - 1
            } else {
                q
            }))
        },
        |a, b| {
            if b == 0.0 {
                Err(division_by_zero("divided_by"))
            } else {
                Ok(a / b)
            }
        },
    )
}

/// `modulo`: the remainder takes the divisor's sign (Liquid / Ruby).
fn modulo(value: Value, operand: Value) -> Result<Value, Error> {
    arithmetic(
        "modulo",
        &value,
        &operand,
        |a, b| {
            if b == 0 {
                return Err(division_by_zero("modulo"));
            }
            let Some(r) = a.checked_rem(b) else {
                return Ok(Some(0));
            };
            Ok(Some(if r != 0 && ((r < 0) != (b < 0)) {
                r + b
            } else {
                r
            }))
        },
        |a, b| {
            if b == 0.0 {
                return Err(division_by_zero("modulo"));
            }
            let r = a % b;
            Ok(if r != 0.0 && ((r < 0.0) != (b < 0.0)) {
                r + b
            } else {
                r
            })
        },
    )
}
