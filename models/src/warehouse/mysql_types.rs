//! MySQL/MariaDB types → Arrow: the plan for each result column from its metadata (type,
//! flags, length, decimals, character set) and the decoders of the binary protocol's values.
//! The mapping table is in the module doc of `warehouse`.

use chrono::{NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{
    ArrayBuilder, BinaryBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder,
    Int8Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder, UInt8Builder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use datafusion::arrow::compute::kernels::cast_utils::parse_decimal;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, TimeUnit};
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::{Column, Value};

use super::WarehouseError;
use super::batch::typed;

/// The `binary` character set: bytes, not text.
const BINARY_CHARSET: u16 = 63;
/// The largest precision `Decimal128` holds.
const MAX_DECIMAL128_PRECISION: u32 = 38;

/// Binary-protocol decoders, one per Arrow type (and the text form of `TIME`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Decoder {
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float32,
    Float64,
    Decimal {
        precision: u8,
        scale: i8,
    },
    Text,
    Binary,
    /// `BIT(n)`: up to 8 big-endian bytes.
    Bit,
    Date,
    Timestamp,
    /// `TIME` as MySQL prints it, with `decimals` fractional digits.
    Time {
        decimals: u8,
    },
}

/// The Arrow field and decoder for a result column.
pub(super) fn plan_column(column: &Column) -> Result<(Field, Decoder), WarehouseError> {
    let name = column.name_str().into_owned();
    let flags = column.flags();
    let unsigned = flags.contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = column.character_set() == BINARY_CHARSET;
    let pick = |signed: (DataType, Decoder), unsigned_: (DataType, Decoder)| {
        if unsigned { unsigned_ } else { signed }
    };
    let (data_type, decoder) = match column.column_type() {
        ColumnType::MYSQL_TYPE_TINY => pick(
            (DataType::Int8, Decoder::Int8),
            (DataType::UInt8, Decoder::UInt8),
        ),
        ColumnType::MYSQL_TYPE_SHORT => pick(
            (DataType::Int16, Decoder::Int16),
            (DataType::UInt16, Decoder::UInt16),
        ),
        ColumnType::MYSQL_TYPE_YEAR => (DataType::Int16, Decoder::Int16),
        // MEDIUMINT UNSIGNED tops out at 16,777,215, well inside Int32.
        ColumnType::MYSQL_TYPE_INT24 => (DataType::Int32, Decoder::Int32),
        ColumnType::MYSQL_TYPE_LONG => pick(
            (DataType::Int32, Decoder::Int32),
            (DataType::UInt32, Decoder::UInt32),
        ),
        ColumnType::MYSQL_TYPE_LONGLONG => pick(
            (DataType::Int64, Decoder::Int64),
            (DataType::UInt64, Decoder::UInt64),
        ),
        ColumnType::MYSQL_TYPE_FLOAT => (DataType::Float32, Decoder::Float32),
        ColumnType::MYSQL_TYPE_DOUBLE => (DataType::Float64, Decoder::Float64),
        ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL => {
            match decimal_precision(column.column_length(), column.decimals(), unsigned) {
                Some((precision, scale)) => (
                    DataType::Decimal128(precision, scale),
                    Decoder::Decimal { precision, scale },
                ),
                None => (DataType::Utf8, Decoder::Text),
            }
        }
        ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => {
            (DataType::Date32, Decoder::Date)
        }
        ColumnType::MYSQL_TYPE_DATETIME | ColumnType::MYSQL_TYPE_DATETIME2 => (
            DataType::Timestamp(TimeUnit::Microsecond, None),
            Decoder::Timestamp,
        ),
        // Stored in UTC and shown in the session's zone, which this module sets to UTC.
        ColumnType::MYSQL_TYPE_TIMESTAMP | ColumnType::MYSQL_TYPE_TIMESTAMP2 => (
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Decoder::Timestamp,
        ),
        ColumnType::MYSQL_TYPE_TIME | ColumnType::MYSQL_TYPE_TIME2 => (
            DataType::Utf8,
            Decoder::Time {
                decimals: column.decimals().min(6),
            },
        ),
        ColumnType::MYSQL_TYPE_BIT => (DataType::UInt64, Decoder::Bit),
        // MySQL reports JSON with the binary character set; its values are UTF-8 text.
        ColumnType::MYSQL_TYPE_JSON | ColumnType::MYSQL_TYPE_ENUM | ColumnType::MYSQL_TYPE_SET => {
            (DataType::Utf8, Decoder::Text)
        }
        ColumnType::MYSQL_TYPE_STRING
        | ColumnType::MYSQL_TYPE_VAR_STRING
        | ColumnType::MYSQL_TYPE_VARCHAR
        | ColumnType::MYSQL_TYPE_TINY_BLOB
        | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
        | ColumnType::MYSQL_TYPE_LONG_BLOB
        | ColumnType::MYSQL_TYPE_BLOB => {
            if binary
                && !flags.contains(ColumnFlags::ENUM_FLAG)
                && !flags.contains(ColumnFlags::SET_FLAG)
            {
                (DataType::Binary, Decoder::Binary)
            } else {
                (DataType::Utf8, Decoder::Text)
            }
        }
        ColumnType::MYSQL_TYPE_GEOMETRY | ColumnType::MYSQL_TYPE_VECTOR => {
            (DataType::Binary, Decoder::Binary)
        }
        ColumnType::MYSQL_TYPE_NULL => (DataType::Utf8, Decoder::Text),
        other => {
            return Err(WarehouseError::UnsupportedType {
                column: name,
                type_name: format!("{other:?}"),
            });
        }
    };
    Ok((Field::new(name, data_type, true), decoder))
}

/// `(precision, scale)` of a `DECIMAL` column from its display length, when `Decimal128` holds
/// it. The length counts the digits, a `.` when there are decimals, and a `-` unless unsigned.
fn decimal_precision(length: u32, decimals: u8, unsigned: bool) -> Option<(u8, i8)> {
    let precision = length
        .checked_sub(u32::from(decimals > 0))?
        .checked_sub(u32::from(!unsigned))?;
    if precision == 0 || precision > MAX_DECIMAL128_PRECISION || u32::from(decimals) > precision {
        return None;
    }
    Some((u8::try_from(precision).ok()?, i8::try_from(decimals).ok()?))
}

type DecodeResult = Result<(), String>;

impl Decoder {
    /// Appends one value (`Value::NULL` for NULL) to `builder`, the builder made for this
    /// column's type.
    pub(super) fn append(&self, value: Value, builder: &mut dyn ArrayBuilder) -> DecodeResult {
        let value = match value {
            Value::NULL => None,
            value => Some(value),
        };
        match self {
            Decoder::Int8 => typed::<Int8Builder>(builder)?.append_option(int(value)?),
            Decoder::Int16 => typed::<Int16Builder>(builder)?.append_option(int(value)?),
            Decoder::Int32 => typed::<Int32Builder>(builder)?.append_option(int(value)?),
            Decoder::Int64 => typed::<Int64Builder>(builder)?.append_option(int(value)?),
            Decoder::UInt8 => typed::<UInt8Builder>(builder)?.append_option(uint(value)?),
            Decoder::UInt16 => typed::<UInt16Builder>(builder)?.append_option(uint(value)?),
            Decoder::UInt32 => typed::<UInt32Builder>(builder)?.append_option(uint(value)?),
            Decoder::UInt64 => typed::<UInt64Builder>(builder)?.append_option(uint(value)?),
            Decoder::Float32 => typed::<Float32Builder>(builder)?.append_option(
                value
                    .map(|v| match v {
                        Value::Float(f) => Ok(f),
                        other => Err(unexpected(&other)),
                    })
                    .transpose()?,
            ),
            Decoder::Float64 => typed::<Float64Builder>(builder)?.append_option(
                value
                    .map(|v| match v {
                        Value::Double(f) => Ok(f),
                        Value::Float(f) => Ok(f64::from(f)),
                        other => Err(unexpected(&other)),
                    })
                    .transpose()?,
            ),
            Decoder::Decimal { precision, scale } => {
                let parsed = value
                    .map(|v| {
                        let text = text(v)?;
                        parse_decimal::<Decimal128Type>(&text, *precision, *scale)
                            .map_err(|e| format!("`{text}`: {e}"))
                    })
                    .transpose()?;
                typed::<Decimal128Builder>(builder)?.append_option(parsed)
            }
            Decoder::Text => {
                typed::<StringBuilder>(builder)?.append_option(value.map(text).transpose()?)
            }
            Decoder::Binary => typed::<BinaryBuilder>(builder)?.append_option(
                value
                    .map(|v| match v {
                        Value::Bytes(bytes) => Ok(bytes),
                        other => Err(unexpected(&other)),
                    })
                    .transpose()?,
            ),
            Decoder::Bit => typed::<UInt64Builder>(builder)?.append_option(
                value
                    .map(|v| match v {
                        Value::Bytes(bytes) if bytes.len() <= 8 => Ok(bytes
                            .iter()
                            .fold(0_u64, |acc, b| (acc << 8) | u64::from(*b))),
                        Value::UInt(u) => Ok(u),
                        other => Err(unexpected(&other)),
                    })
                    .transpose()?,
            ),
            Decoder::Date => typed::<Date32Builder>(builder)?
                .append_option(value.map(date).transpose()?.flatten()),
            Decoder::Timestamp => typed::<TimestampMicrosecondBuilder>(builder)?
                .append_option(value.map(timestamp).transpose()?.flatten()),
            Decoder::Time { decimals } => typed::<StringBuilder>(builder)?
                .append_option(value.map(|v| time(v, *decimals)).transpose()?),
        }
        Ok(())
    }
}

fn unexpected(value: &Value) -> String {
    format!(
        "internal error: this is a bug in engine: unexpected value {value:?} for the column's type"
    )
}

fn int<T: TryFrom<i64>>(value: Option<Value>) -> Result<Option<T>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    let wide = match value {
        Value::Int(i) => i,
        Value::UInt(u) => i64::try_from(u).map_err(|_| format!("{u} is out of range"))?,
        Value::Bytes(ref bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| unexpected(&value))?,
        other => return Err(unexpected(&other)),
    };
    T::try_from(wide)
        .map(Some)
        .map_err(|_| format!("{wide} is out of range"))
}

fn uint<T: TryFrom<u64>>(value: Option<Value>) -> Result<Option<T>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    let wide = match value {
        Value::UInt(u) => u,
        Value::Int(i) => u64::try_from(i).map_err(|_| format!("{i} is out of range"))?,
        Value::Bytes(ref bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| unexpected(&value))?,
        other => return Err(unexpected(&other)),
    };
    T::try_from(wide)
        .map(Some)
        .map_err(|_| format!("{wide} is out of range"))
}

fn text(value: Value) -> Result<String, String> {
    match value {
        Value::Bytes(bytes) => String::from_utf8(bytes).map_err(|e| {
            format!("the value is not UTF-8 text ({e}); cast it or select it as binary")
        }),
        other => Err(unexpected(&other)),
    }
}

/// Days since 1970-01-01; `None` for MySQL's zero dates and dates with a zero month or day.
fn date(value: Value) -> Result<Option<i32>, String> {
    let Some(datetime) = datetime(value)? else {
        return Ok(None);
    };
    let days = datetime
        .date()
        .signed_duration_since(NaiveDate::default())
        .num_days();
    i32::try_from(days)
        .map(Some)
        .map_err(|_| "the date is out of range".to_string())
}

/// Microseconds since 1970-01-01 00:00; `None` for zero dates.
fn timestamp(value: Value) -> Result<Option<i64>, String> {
    Ok(datetime(value)?.map(|dt| dt.and_utc().timestamp_micros()))
}

fn datetime(value: Value) -> Result<Option<NaiveDateTime>, String> {
    match value {
        Value::Date(year, month, day, hour, minute, second, micros) => {
            if month == 0 || day == 0 {
                return Ok(None);
            }
            NaiveDate::from_ymd_opt(i32::from(year), u32::from(month), u32::from(day))
                .and_then(|d| {
                    d.and_hms_micro_opt(
                        u32::from(hour),
                        u32::from(minute),
                        u32::from(second),
                        micros,
                    )
                })
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} is not a valid date"
                    )
                })
        }
        other => Err(unexpected(&other)),
    }
}

/// `[-]HH:MM:SS[.ffffff]`, hours not wrapped at 24 (TIME is a duration).
fn time(value: Value, decimals: u8) -> Result<String, String> {
    match value {
        Value::Time(negative, days, hours, minutes, seconds, micros) => {
            let sign = if negative { "-" } else { "" };
            let hours = u64::from(days) * 24 + u64::from(hours);
            let mut text = format!("{sign}{hours:02}:{minutes:02}:{seconds:02}");
            if decimals > 0 {
                let fraction = format!("{micros:06}");
                text.push('.');
                text.push_str(&fraction[..usize::from(decimals)]);
            }
            Ok(text)
        }
        Value::Bytes(bytes) => String::from_utf8(bytes).map_err(|e| e.to_string()),
        other => Err(unexpected(&other)),
    }
}

/// Each column's name and decoder, in result order.
pub(super) type Decoders = Vec<(String, Decoder)>;

/// All the fields of a result, or the first column that has no mapping.
pub(super) fn plan_columns(columns: &[Column]) -> Result<(Vec<Field>, Decoders), WarehouseError> {
    let mut fields = Vec::with_capacity(columns.len());
    let mut decoders = Vec::with_capacity(columns.len());
    for column in columns {
        let (field, decoder) = plan_column(column)?;
        decoders.push((field.name().clone(), decoder));
        fields.push(field);
    }
    Ok((fields, decoders))
}
