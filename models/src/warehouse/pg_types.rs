//! PostgreSQL types → Arrow: the plan for each result column (Arrow type, decoder, and whether
//! the query must cast it to text first) and the decoders of the binary wire formats, built on
//! `postgres-protocol`'s readers. The mapping table is in the module doc of `warehouse`.

use std::error::Error;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, ListBuilder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder, UInt32Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use fallible_iterator::FallibleIterator;
use postgres_protocol::types as wire;
use tokio_postgres::types::{FromSql, Kind, Type};

use super::batch::typed;

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// The largest precision `Decimal128` holds.
const MAX_DECIMAL128_PRECISION: i32 = 38;

/// How one result column is read.
pub(super) struct PgColumn {
    /// Name and Arrow type.
    pub(super) field: Field,
    /// Reads the wire value into the column's builder.
    pub(super) decoder: Decoder,
    /// `Some("text")` / `Some("text[]")`: the value is cast in SQL before it is sent, because
    /// its binary format has no decoder here.
    pub(super) cast: Option<&'static str>,
}

impl PgColumn {
    /// The type of the value on the wire (after the cast, if any).
    pub(super) fn wire_type(&self, declared: &Type) -> Type {
        match self.cast {
            Some("text[]") => Type::TEXT_ARRAY,
            Some(_) => Type::TEXT,
            None => declared.clone(),
        }
    }
}

/// Binary decoders, one per wire format.
#[derive(Debug, Clone)]
pub(super) enum Decoder {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    /// `numeric(p,s)` into `Decimal128(p,s)`; the value is scaled to `scale` digits.
    Numeric {
        scale: i8,
    },
    /// Text-like formats: text, varchar, bpchar, name, json, enums, anything cast to text.
    Text,
    /// `jsonb`: a version byte, then the JSON text.
    Jsonb,
    Bytea,
    Uuid,
    Date,
    Timestamp,
    Time,
    /// One-dimensional arrays of the element decoder.
    List(Box<Decoder>),
}

/// The plan for a column named `name` of type `ty` (with the type modifier the server reports).
pub(super) fn plan_column(name: &str, ty: &Type, type_modifier: i32) -> PgColumn {
    if let Some((data_type, decoder)) = scalar(ty, type_modifier) {
        return PgColumn {
            field: Field::new(name, data_type, true),
            decoder,
            cast: None,
        };
    }
    if let Kind::Array(element) = ty.kind() {
        let (element_type, element_decoder, cast) = match scalar(element, type_modifier) {
            Some((data_type, decoder)) => (data_type, decoder, None),
            None => (DataType::Utf8, Decoder::Text, Some("text[]")),
        };
        return PgColumn {
            field: Field::new(
                name,
                DataType::List(Arc::new(Field::new_list_field(element_type, true))),
                true,
            ),
            decoder: Decoder::List(Box::new(element_decoder)),
            cast,
        };
    }
    PgColumn {
        field: Field::new(name, DataType::Utf8, true),
        decoder: Decoder::Text,
        cast: Some("text"),
    }
}

fn scalar(ty: &Type, type_modifier: i32) -> Option<(DataType, Decoder)> {
    let mapped = match *ty {
        Type::BOOL => (DataType::Boolean, Decoder::Bool),
        Type::INT2 => (DataType::Int16, Decoder::Int2),
        Type::INT4 => (DataType::Int32, Decoder::Int4),
        Type::INT8 => (DataType::Int64, Decoder::Int8),
        Type::OID => (DataType::UInt32, Decoder::Oid),
        Type::FLOAT4 => (DataType::Float32, Decoder::Float4),
        Type::FLOAT8 => (DataType::Float64, Decoder::Float8),
        Type::NUMERIC => {
            let (precision, scale) = numeric_modifier(type_modifier)?;
            (
                DataType::Decimal128(precision, scale),
                Decoder::Numeric { scale },
            )
        }
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::UNKNOWN => {
            (DataType::Utf8, Decoder::Text)
        }
        Type::JSONB => (DataType::Utf8, Decoder::Jsonb),
        Type::BYTEA => (DataType::Binary, Decoder::Bytea),
        Type::UUID => (DataType::Utf8, Decoder::Uuid),
        Type::DATE => (DataType::Date32, Decoder::Date),
        Type::TIMESTAMP => (
            DataType::Timestamp(TimeUnit::Microsecond, None),
            Decoder::Timestamp,
        ),
        Type::TIMESTAMPTZ => (
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Decoder::Timestamp,
        ),
        Type::TIME => (DataType::Time64(TimeUnit::Microsecond), Decoder::Time),
        _ => match ty.kind() {
            // An enum's binary form is its label.
            Kind::Enum(_) => (DataType::Utf8, Decoder::Text),
            // A domain is sent in its base type's format.
            Kind::Domain(base) => return scalar(base, type_modifier),
            _ => return None,
        },
    };
    Some(mapped)
}

/// `(precision, scale)` from a `numeric` type modifier, when it fits `Decimal128`.
fn numeric_modifier(type_modifier: i32) -> Option<(u8, i8)> {
    // PostgreSQL stores ((precision << 16) | scale) + VARHDRSZ; -1 means unconstrained.
    let packed = type_modifier.checked_sub(4).filter(|m| *m >= 0)?;
    let precision = (packed >> 16) & 0xFFFF;
    // The scale is an 11-bit signed field since PostgreSQL 15 (negative scales round left of
    // the point); Arrow allows negative scales too.
    let raw_scale = packed & 0x7FF;
    let scale = if raw_scale & 0x400 != 0 {
        raw_scale - 0x800
    } else {
        raw_scale
    };
    if !(1..=MAX_DECIMAL128_PRECISION).contains(&precision) || scale > precision {
        return None;
    }
    Some((u8::try_from(precision).ok()?, i8::try_from(scale).ok()?))
}

/// A column value as the server sent it: the raw binary bytes, or `None` for NULL.
pub(super) struct Raw<'a>(pub(super) Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

type DecodeResult = Result<(), String>;

fn err(e: Box<dyn Error + Sync + Send>) -> String {
    e.to_string()
}

impl Decoder {
    /// Appends one value (or NULL) to `builder`, the builder made for this column's type.
    pub(super) fn append(
        &self,
        raw: Option<&[u8]>,
        builder: &mut dyn ArrayBuilder,
    ) -> DecodeResult {
        match self {
            Decoder::Bool => typed::<BooleanBuilder>(builder)?
                .append_option(raw.map(wire::bool_from_sql).transpose().map_err(err)?),
            Decoder::Int2 => typed::<Int16Builder>(builder)?
                .append_option(raw.map(wire::int2_from_sql).transpose().map_err(err)?),
            Decoder::Int4 => typed::<Int32Builder>(builder)?
                .append_option(raw.map(wire::int4_from_sql).transpose().map_err(err)?),
            Decoder::Int8 => typed::<Int64Builder>(builder)?
                .append_option(raw.map(wire::int8_from_sql).transpose().map_err(err)?),
            Decoder::Oid => typed::<UInt32Builder>(builder)?
                .append_option(raw.map(wire::oid_from_sql).transpose().map_err(err)?),
            Decoder::Float4 => typed::<Float32Builder>(builder)?
                .append_option(raw.map(wire::float4_from_sql).transpose().map_err(err)?),
            Decoder::Float8 => typed::<Float64Builder>(builder)?
                .append_option(raw.map(wire::float8_from_sql).transpose().map_err(err)?),
            Decoder::Numeric { scale } => typed::<Decimal128Builder>(builder)?
                .append_option(raw.map(|r| numeric_to_i128(r, *scale)).transpose()?),
            Decoder::Text => typed::<StringBuilder>(builder)?
                .append_option(raw.map(wire::text_from_sql).transpose().map_err(err)?),
            Decoder::Jsonb => {
                typed::<StringBuilder>(builder)?.append_option(raw.map(jsonb_text).transpose()?)
            }
            Decoder::Bytea => {
                typed::<BinaryBuilder>(builder)?.append_option(raw.map(wire::bytea_from_sql))
            }
            Decoder::Uuid => {
                let value = raw.map(wire::uuid_from_sql).transpose().map_err(err)?;
                let text =
                    value.map(|bytes| uuid::Uuid::from_bytes(bytes).hyphenated().to_string());
                typed::<StringBuilder>(builder)?.append_option(text)
            }
            Decoder::Date => {
                typed::<Date32Builder>(builder)?.append_option(raw.map(date).transpose()?)
            }
            Decoder::Timestamp => typed::<TimestampMicrosecondBuilder>(builder)?
                .append_option(raw.map(timestamp).transpose()?),
            Decoder::Time => typed::<Time64MicrosecondBuilder>(builder)?
                .append_option(raw.map(wire::time_from_sql).transpose().map_err(err)?),
            Decoder::List(element) => {
                let list = typed::<ListBuilder<Box<dyn ArrayBuilder>>>(builder)?;
                match raw {
                    None => list.append_null(),
                    Some(raw) => {
                        let array = wire::array_from_sql(raw).map_err(err)?;
                        if array.dimensions().count().map_err(err)? > 1 {
                            return Err("multi-dimensional arrays cannot be read; \
                                 select `to_json(column)` or one dimension instead"
                                .to_string());
                        }
                        let mut values = array.values();
                        while let Some(value) = values.next().map_err(err)? {
                            element.append(value, list.values().as_mut())?;
                        }
                        list.append(true);
                    }
                }
            }
        }
        Ok(())
    }
}

fn jsonb_text(raw: &[u8]) -> Result<&str, String> {
    match raw.split_first() {
        Some((1, text)) => std::str::from_utf8(text).map_err(|e| e.to_string()),
        Some((version, _)) => Err(format!("unknown jsonb format version {version}")),
        None => Err("empty jsonb value".to_string()),
    }
}

fn date(raw: &[u8]) -> Result<i32, String> {
    match wire::date_from_sql(raw).map_err(err)? {
        i32::MAX => Err("`infinity` has no Arrow date; cast it or filter it out".to_string()),
        i32::MIN => Err("`-infinity` has no Arrow date; cast it or filter it out".to_string()),
        days => days
            .checked_add(PG_EPOCH_DAYS)
            .ok_or_else(|| format!("date {days} days after 2000-01-01 is out of range")),
    }
}

fn timestamp(raw: &[u8]) -> Result<i64, String> {
    match wire::timestamp_from_sql(raw).map_err(err)? {
        i64::MAX => Err("`infinity` has no Arrow timestamp; cast it or filter it out".to_string()),
        i64::MIN => Err("`-infinity` has no Arrow timestamp; cast it or filter it out".to_string()),
        micros => micros
            .checked_add(PG_EPOCH_MICROS)
            .ok_or_else(|| "timestamp out of range".to_string()),
    }
}

const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// A binary `numeric` as an integer scaled by 10^`scale`, exactly, or an error when it is not a
/// finite number or needs more digits than `Decimal128` holds.
///
/// The format: `ndigits`, `weight`, `sign`, `dscale` (all 16-bit), then `ndigits` base-10000
/// digits, the first worth 10000^`weight`.
pub(super) fn numeric_to_i128(raw: &[u8], scale: i8) -> Result<i128, String> {
    let word = |i: usize| -> Result<u16, String> {
        raw.get(2 * i..2 * i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric value".to_string())
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)? as i16);
    let sign = word(2)?;
    match sign {
        NUMERIC_NAN => return Err("`NaN` has no decimal value; cast the column to text".into()),
        NUMERIC_PINF | NUMERIC_NINF => {
            return Err("`infinity` has no decimal value; cast the column to text".into());
        }
        _ => {}
    }
    let digits = (0..ndigits)
        .map(|i| word(4 + i).map(i128::from))
        .collect::<Result<Vec<i128>, _>>()?;
    let overflow = || "the value needs more than 38 digits".to_string();
    let scale = i32::from(scale);
    // Walk the base-10000 groups from the most significant one down to the group holding the
    // last digit the scale keeps; groups outside `digits` are zero.
    let first = if weight >= 0 { weight } else { -1 };
    let last_group = if scale > 0 { -((scale + 3) / 4) } else { 0 };
    let group = |exponent: i32| -> i128 {
        usize::try_from(weight - exponent)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut acc: i128 = 0;
    let mut fraction_digits = 0;
    let mut exponent = first;
    while exponent >= last_group {
        let d = group(exponent);
        if exponent >= 0 {
            acc = acc
                .checked_mul(10_000)
                .and_then(|a| a.checked_add(d))
                .ok_or_else(overflow)?;
        } else {
            let take = (scale - fraction_digits).min(4);
            let cut = 10_i128.pow((4 - take) as u32);
            if d % cut != 0 {
                return Err(format!("the value has more than {scale} decimal places"));
            }
            acc = acc
                .checked_mul(10_i128.pow(take as u32))
                .and_then(|a| a.checked_add(d / cut))
                .ok_or_else(overflow)?;
            fraction_digits += take;
        }
        exponent -= 1;
    }
    // Digits below the kept scale must be zero.
    let lowest = weight - i32::try_from(ndigits).unwrap_or(i32::MAX) + 1;
    for exponent in lowest..last_group {
        if group(exponent) != 0 {
            return Err(format!("the value has more than {scale} decimal places"));
        }
    }
    if scale < 0 {
        let cut = 10_i128.pow(scale.unsigned_abs());
        if acc % cut != 0 {
            return Err(format!("the value is not a multiple of {cut}"));
        }
        acc /= cut;
    }
    Ok(if sign == NUMERIC_NEG { -acc } else { acc })
}
