//! Model values as destination text, and as template values.
//!
//! Two views of the same cell, kept consistent: [`format_column`] turns a whole Arrow column
//! into the strings sent to the destination (one typed loop per column, no allocation per row
//! beyond the output buffer), and [`cell_value`] gives one cell to a template as a minijinja
//! [`Value`] (numbers stay numbers; dates and timestamps are the same strings as in the column
//! view). The rules are listed in the crate documentation.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, PrimitiveArray, StringArray, StringBuilder,
};
use arrow::compute::cast;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Decimal32Type, Decimal64Type,
    Decimal128Type, Decimal256Type, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use minijinja::Value;

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Replaces encodings that index into another array (dictionary, run-end) by plain arrays, so
/// the per-type code below sees values directly. Called once per column and batch.
pub(crate) fn normalize(array: &ArrayRef) -> ArrayRef {
    let target = match array.data_type() {
        DataType::Dictionary(_, values) => values.as_ref().clone(),
        DataType::RunEndEncoded(_, values) => values.data_type().clone(),
        _ => return Arc::clone(array),
    };
    // A cast that arrow cannot do leaves the array as it is; it is then shown with arrow's
    // display formatter.
    cast(array, &target).unwrap_or_else(|_| Arc::clone(array))
}

/// Writes `v` the way the destination gets it: shortest text that reads back as the same
/// number, no exponent, no trailing `.0` (`17.0` → `17`), `-0` as `0`, and `NaN`, `Infinity`,
/// `-Infinity` for the values JSON has no number for.
pub(crate) fn write_f64(out: &mut impl fmt::Write, v: f64) -> fmt::Result {
    if v.is_nan() {
        out.write_str("NaN")
    } else if v.is_infinite() {
        out.write_str(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else if v == 0.0 {
        out.write_str("0")
    } else {
        // `Display` for f64 is the shortest round-trip text, never in exponent form, and
        // prints integral values without a fraction.
        write!(out, "{v}")
    }
}

/// [`write_f64`] for single precision: the shortest text that reads back as the same `f32`
/// (so `0.1f32` is `0.1`, not `0.10000000149011612`).
fn write_f32(out: &mut impl fmt::Write, v: f32) -> fmt::Result {
    if v.is_nan() || v.is_infinite() || v == 0.0 {
        write_f64(out, f64::from(v))
    } else {
        write!(out, "{v}")
    }
}

/// Writes a decimal given as its unscaled integer and scale: `(1230, 2)` → `12.30`,
/// `(-5, 3)` → `-0.005`, `(12, -2)` → `1200`.
pub(crate) fn write_decimal(out: &mut impl fmt::Write, unscaled: i128, scale: i8) -> fmt::Result {
    if unscaled < 0 {
        out.write_char('-')?;
    }
    let magnitude = unscaled.unsigned_abs();
    if scale <= 0 {
        write!(out, "{magnitude}")?;
        if magnitude != 0 {
            for _ in 0..scale.unsigned_abs() {
                out.write_char('0')?;
            }
        }
        return Ok(());
    }
    // At most 39 digits for a u128.
    let mut digits = [0u8; 40];
    let mut len = 0;
    let mut rest = magnitude;
    loop {
        digits[len] = b'0' + (rest % 10) as u8;
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let scale = usize::from(scale.unsigned_abs());
    let int_digits = len.saturating_sub(scale);
    if int_digits == 0 {
        out.write_char('0')?;
    } else {
        for i in (len - int_digits..len).rev() {
            out.write_char(char::from(digits[i]))?;
        }
    }
    out.write_char('.')?;
    for _ in len..scale {
        out.write_char('0')?;
    }
    for i in (0..len.min(scale)).rev() {
        out.write_char(char::from(digits[i]))?;
    }
    Ok(())
}

/// The proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`: integer arithmetic only, exact for every `i64` day count that
/// an Arrow date or timestamp can hold).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Puts `value` (< 10^width) into `buf` as `width` zero-padded ASCII digits.
fn put_digits(buf: &mut [u8], mut value: u32) {
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// `YYYY-MM-DD` into `buf[..10]`, for years 0 to 9999.
fn put_ymd(buf: &mut [u8], year: u32, month: u32, day: u32) {
    put_digits(&mut buf[0..4], year);
    buf[4] = b'-';
    put_digits(&mut buf[5..7], month);
    buf[7] = b'-';
    put_digits(&mut buf[8..10], day);
}

/// Writes days since 1970-01-01 as `YYYY-MM-DD` (ISO 8601 expanded years, `+10000-01-01` or
/// `-0001-01-01`, outside 0 to 9999).
pub(crate) fn write_epoch_days(out: &mut impl fmt::Write, days: i64) -> fmt::Result {
    let (year, month, day) = civil_from_days(days);
    match u32::try_from(year) {
        Ok(year) if year <= 9999 => {
            let mut buf = [0u8; 10];
            put_ymd(&mut buf, year, month, day);
            out.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
        }
        _ => write!(out, "{year:+05}-{month:02}-{day:02}"),
    }
}

/// Writes milliseconds since the Unix epoch as RFC 3339 in UTC with milliseconds:
/// `2024-01-15T10:30:00.000Z`. Digits are placed by hand: this runs once per timestamp cell.
pub(crate) fn write_epoch_millis(out: &mut impl fmt::Write, millis: i64) -> fmt::Result {
    let days = millis.div_euclid(MILLIS_PER_DAY);
    // In [0, 86 400 000), so it fits a u32.
    let in_day = millis.rem_euclid(MILLIS_PER_DAY) as u32;
    let (year, month, day) = civil_from_days(days);
    let mut buf = *b"0000-00-00T00:00:00.000Z";
    match u32::try_from(year) {
        Ok(year) if year <= 9999 => put_ymd(&mut buf, year, month, day),
        _ => write!(out, "{year:+05}-{month:02}-{day:02}")?,
    }
    put_digits(&mut buf[11..13], in_day / 3_600_000);
    put_digits(&mut buf[14..16], in_day / 60_000 % 60);
    put_digits(&mut buf[17..19], in_day / 1000 % 60);
    put_digits(&mut buf[20..23], in_day % 1000);
    let text = std::str::from_utf8(&buf).map_err(|_| fmt::Error)?;
    match u32::try_from(year) {
        Ok(year) if year <= 9999 => out.write_str(text),
        // The date part was written above.
        _ => out.write_str(&text[10..]),
    }
}

/// A timestamp in `unit` as milliseconds since the epoch, rounded towards the past.
fn timestamp_millis(value: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => value.saturating_mul(1000),
        TimeUnit::Millisecond => value,
        TimeUnit::Microsecond => value.div_euclid(1000),
        TimeUnit::Nanosecond => value.div_euclid(1_000_000),
    }
}

/// Builds a string column by writing each valid value of a primitive column with `write`.
fn format_primitive<T: ArrowPrimitiveType>(
    array: &PrimitiveArray<T>,
    mut write: impl FnMut(&mut StringBuilder, T::Native) -> fmt::Result,
) -> StringArray {
    let mut out = StringBuilder::with_capacity(array.len(), array.len() * 8);
    for i in 0..array.len() {
        if array.is_null(i) {
            out.append_null();
        } else {
            // Writing into a `StringBuilder` cannot fail; a formatting error could only come
            // from a `Display` impl and would leave a partial value, never a panic.
            let _ = write(&mut out, array.value(i));
            out.append_value("");
        }
    }
    out.finish()
}

fn format_strings<'a>(len: usize, values: impl Iterator<Item = Option<&'a str>>) -> StringArray {
    let mut out = StringBuilder::with_capacity(len, len * 16);
    for value in values {
        out.append_option(value);
    }
    out.finish()
}

fn format_booleans(array: &BooleanArray) -> StringArray {
    let mut out = StringBuilder::with_capacity(array.len(), array.len() * 5);
    for value in array.iter() {
        out.append_option(value.map(|b| if b { "true" } else { "false" }));
    }
    out.finish()
}

fn format_with_arrow(array: &dyn Array) -> StringArray {
    let mut out = StringBuilder::with_capacity(array.len(), array.len() * 16);
    let nulls = array.logical_nulls();
    let options = FormatOptions::default();
    let formatter = ArrayFormatter::try_new(array, &options).ok();
    for i in 0..array.len() {
        if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
            out.append_null();
            continue;
        }
        match &formatter {
            Some(f) => {
                let _ = write!(out, "{}", f.value(i));
                out.append_value("");
            }
            None => out.append_null(),
        }
    }
    out.finish()
}

/// The destination text of every value of a column (see the crate documentation for the
/// rules). A `Utf8` column is returned as it is, without copying.
pub(crate) fn format_column(array: &ArrayRef) -> ArrayRef {
    let array = normalize(array);
    let out = match array.data_type() {
        DataType::Utf8 => return array,
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            format_strings(a.len(), a.iter())
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            format_strings(a.len(), a.iter())
        }
        DataType::Null => format_strings(array.len(), std::iter::repeat_n(None, array.len())),
        DataType::Boolean => format_booleans(array.as_boolean()),
        DataType::Int8 => {
            format_primitive(array.as_primitive::<Int8Type>(), |o, v| write!(o, "{v}"))
        }
        DataType::Int16 => {
            format_primitive(array.as_primitive::<Int16Type>(), |o, v| write!(o, "{v}"))
        }
        DataType::Int32 => {
            format_primitive(array.as_primitive::<Int32Type>(), |o, v| write!(o, "{v}"))
        }
        DataType::Int64 => {
            format_primitive(array.as_primitive::<Int64Type>(), |o, v| write!(o, "{v}"))
        }
        DataType::UInt8 => {
            format_primitive(array.as_primitive::<UInt8Type>(), |o, v| write!(o, "{v}"))
        }
        DataType::UInt16 => {
            format_primitive(array.as_primitive::<UInt16Type>(), |o, v| write!(o, "{v}"))
        }
        DataType::UInt32 => {
            format_primitive(array.as_primitive::<UInt32Type>(), |o, v| write!(o, "{v}"))
        }
        DataType::UInt64 => {
            format_primitive(array.as_primitive::<UInt64Type>(), |o, v| write!(o, "{v}"))
        }
        DataType::Float16 => format_primitive(array.as_primitive::<Float16Type>(), |o, v| {
            write_f32(o, f32::from(v))
        }),
        DataType::Float32 => format_primitive(array.as_primitive::<Float32Type>(), write_f32),
        DataType::Float64 => format_primitive(array.as_primitive::<Float64Type>(), write_f64),
        DataType::Decimal32(_, scale) => {
            let scale = *scale;
            format_primitive(array.as_primitive::<Decimal32Type>(), |o, v| {
                write_decimal(o, i128::from(v), scale)
            })
        }
        DataType::Decimal64(_, scale) => {
            let scale = *scale;
            format_primitive(array.as_primitive::<Decimal64Type>(), |o, v| {
                write_decimal(o, i128::from(v), scale)
            })
        }
        DataType::Decimal128(_, scale) => {
            let scale = *scale;
            format_primitive(array.as_primitive::<Decimal128Type>(), |o, v| {
                write_decimal(o, v, scale)
            })
        }
        DataType::Decimal256(_, _) => {
            // Rare and wide: arrow's own decimal text (one allocation per value).
            let a = array.as_primitive::<Decimal256Type>();
            let mut out = StringBuilder::with_capacity(a.len(), a.len() * 16);
            for i in 0..a.len() {
                if a.is_null(i) {
                    out.append_null();
                } else {
                    out.append_value(a.value_as_string(i));
                }
            }
            out.finish()
        }
        DataType::Date32 => format_primitive(array.as_primitive::<Date32Type>(), |o, v| {
            write_epoch_days(o, i64::from(v))
        }),
        DataType::Date64 => format_primitive(array.as_primitive::<Date64Type>(), |o, v| {
            write_epoch_days(o, v.div_euclid(MILLIS_PER_DAY))
        }),
        DataType::Timestamp(unit, _) => {
            let unit = *unit;
            let write = move |o: &mut StringBuilder, v: i64| {
                write_epoch_millis(o, timestamp_millis(v, unit))
            };
            match unit {
                TimeUnit::Second => {
                    format_primitive(array.as_primitive::<TimestampSecondType>(), write)
                }
                TimeUnit::Millisecond => {
                    format_primitive(array.as_primitive::<TimestampMillisecondType>(), write)
                }
                TimeUnit::Microsecond => {
                    format_primitive(array.as_primitive::<TimestampMicrosecondType>(), write)
                }
                TimeUnit::Nanosecond => {
                    format_primitive(array.as_primitive::<TimestampNanosecondType>(), write)
                }
            }
        }
        _ => format_with_arrow(array.as_ref()),
    };
    Arc::new(out)
}

/// A float as a template value: parsed back from its shortest text, so `0.1f32` is `0.1`.
fn f32_value(v: f32) -> Value {
    let mut text = String::new();
    let _ = write_f32(&mut text, v);
    Value::from(text.parse::<f64>().unwrap_or(f64::from(v)))
}

/// A decimal as a template value: an integer when it has no fraction and fits, otherwise the
/// nearest `f64` (templates that need the exact digits should use a `column:` mapping).
fn decimal_value(unscaled: i128, scale: i8) -> Value {
    if scale == 0 {
        return Value::from(unscaled);
    }
    let mut text = String::new();
    let _ = write_decimal(&mut text, unscaled, scale);
    if scale < 0
        && let Ok(int) = text.parse::<i128>()
    {
        return Value::from(int);
    }
    Value::from(text.parse::<f64>().unwrap_or(f64::NAN))
}

fn text_value(write: impl FnOnce(&mut String) -> fmt::Result) -> Value {
    let mut text = String::new();
    let _ = write(&mut text);
    Value::from(text)
}

/// One cell as a template value: strings, numbers as numbers, booleans, `none` for null,
/// dates and timestamps as the strings [`format_column`] gives, lists as lists and structs
/// as maps; anything else as arrow displays it. `array` must come from [`normalize`].
pub(crate) fn cell_value(array: &dyn Array, row: usize) -> Value {
    // `normalize` removed the encodings whose nulls are only logical; `Null` has no buffer.
    if array.data_type() == &DataType::Null || array.is_null(row) {
        return Value::from(());
    }
    match array.data_type() {
        DataType::Utf8 => Value::from(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Value::from(array.as_string::<i64>().value(row)),
        DataType::Utf8View => Value::from(array.as_string_view().value(row)),
        DataType::Boolean => Value::from(array.as_boolean().value(row)),
        DataType::Int8 => Value::from(array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => Value::from(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => Value::from(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => Value::from(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => Value::from(array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => Value::from(array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => Value::from(array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => Value::from(array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float16 => f32_value(f32::from(array.as_primitive::<Float16Type>().value(row))),
        DataType::Float32 => f32_value(array.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => Value::from(array.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal32(_, s) => decimal_value(
            i128::from(array.as_primitive::<Decimal32Type>().value(row)),
            *s,
        ),
        DataType::Decimal64(_, s) => decimal_value(
            i128::from(array.as_primitive::<Decimal64Type>().value(row)),
            *s,
        ),
        DataType::Decimal128(_, s) => {
            decimal_value(array.as_primitive::<Decimal128Type>().value(row), *s)
        }
        DataType::Decimal256(_, _) => {
            let text = array.as_primitive::<Decimal256Type>().value_as_string(row);
            Value::from(text.parse::<f64>().unwrap_or(f64::NAN))
        }
        DataType::Date32 => text_value(|t| {
            write_epoch_days(t, i64::from(array.as_primitive::<Date32Type>().value(row)))
        }),
        DataType::Date64 => text_value(|t| {
            write_epoch_days(
                t,
                array
                    .as_primitive::<Date64Type>()
                    .value(row)
                    .div_euclid(MILLIS_PER_DAY),
            )
        }),
        DataType::Timestamp(unit, _) => {
            let raw = match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row),
                TimeUnit::Millisecond => {
                    array.as_primitive::<TimestampMillisecondType>().value(row)
                }
                TimeUnit::Microsecond => {
                    array.as_primitive::<TimestampMicrosecondType>().value(row)
                }
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row),
            };
            text_value(|t| write_epoch_millis(t, timestamp_millis(raw, *unit)))
        }
        DataType::List(_) => list_value(&array.as_list::<i32>().value(row)),
        DataType::LargeList(_) => list_value(&array.as_list::<i64>().value(row)),
        DataType::FixedSizeList(_, _) => list_value(&array.as_fixed_size_list().value(row)),
        DataType::Struct(fields) => {
            let s = array.as_struct();
            // A map (not a list of pairs), so templates read `row.s.field` and `row.s['field']`.
            let fields: std::collections::BTreeMap<String, Value> = fields
                .iter()
                .zip(s.columns())
                .map(|(field, column)| {
                    (
                        field.name().clone(),
                        cell_value(normalize(column).as_ref(), row),
                    )
                })
                .collect();
            Value::from(fields)
        }
        _ => {
            let options = FormatOptions::default();
            match ArrayFormatter::try_new(array, &options) {
                Ok(f) => Value::from(f.value(row).to_string()),
                Err(_) => Value::from(()),
            }
        }
    }
}

fn list_value(items: &ArrayRef) -> Value {
    let items = normalize(items);
    Value::from(
        (0..items.len())
            .map(|i| cell_value(items.as_ref(), i))
            .collect::<Vec<_>>(),
    )
}

/// Writes `s` as a JSON string literal, escaped exactly as `serde_json` does.
pub(crate) fn write_json_string(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.write_str(&s[start..i])?;
        if escape.is_empty() {
            write!(out, "\\u{b:04x}")?;
        } else {
            out.write_str(escape)?;
        }
        start = i + 1;
    }
    out.write_str(&s[start..])?;
    out.write_char('"')
}

/// Writes the key text of one row (see [`crate::key_text`]).
pub(crate) fn write_key_text(out: &mut impl fmt::Write, values: &[&str]) -> fmt::Result {
    if let [single] = values {
        return out.write_str(single);
    }
    out.write_char('[')?;
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.write_char(',')?;
        }
        write_json_string(out, value)?;
    }
    out.write_char(']')
}
