//! Model rows → destination property values.
//!
//! A sync's `match` and `mapping:` entries are compiled once into a [`SyncMapping`]
//! (templates parsed, every column reference checked against the model's output schema), which
//! then turns each Arrow [`RecordBatch`] of model rows into a batch of strings: a `__key`
//! column and one column per destination property, in [`SyncMapping::properties`] order. The
//! diff stage fingerprints and compares these mapped rows with the last sync's snapshot, so
//! mapping is deterministic: the same rows always give the same strings, however they are
//! split into batches.
//!
//! ```text
//! model batch ──► format_column (column: / match / key)  ─┐
//!             └─► row object ──► minijinja (template:) ───┼──► __key, prop1, prop2, … (Utf8)
//!                 value: (static)  ───────────────────────┘
//! ```
//!
//! # Values as text
//!
//! HubSpot takes every property as a string (`properties: {string: string}`), or null.
//!
//! | Arrow type | text |
//! | --- | --- |
//! | `Utf8`, `LargeUtf8`, `Utf8View` | as is |
//! | integers | decimal, `-42` |
//! | `Float16/32/64` | shortest text that reads back as the same number, no exponent, integral values without `.0` (`17.0` → `17`, `0.1` → `0.1`); `-0` → `0`; `NaN`, `Infinity`, `-Infinity` |
//! | `Decimal32/64/128/256` | exact decimal text with the column's scale, `12.30` |
//! | `Boolean` | `true` / `false` |
//! | `Date32`, `Date64` | `YYYY-MM-DD` |
//! | `Timestamp` (any unit, with or without a time zone) | RFC 3339 in UTC with milliseconds, `2024-01-15T10:30:00.000Z` (sub-millisecond digits are dropped, rounding towards the past; a timestamp without a zone is taken as UTC) |
//! | dictionary / run-end encoded | as their value type |
//! | anything else (times, durations, intervals, binary, lists, structs, …) | arrow's display formatter |
//! | null (any type) | null |
//!
//! A `value:` mapping is the same string on every row.
//!
//! # Keys
//!
//! `__key` identifies a row everywhere (state, plans, messages): with one primary-key column it
//! is that column's text; with several, a JSON array of their texts, `["acme","42"]` (see
//! [`key_text`]). It is null when any key column is null (the diff stage reports those rows).
//!
//! # Templates
//!
//! `template:` entries are [minijinja] templates (Jinja syntax, or Liquid: below), compiled once per sync in one
//! `Environment`. A template sees `row`, a map of column name → value: strings, numbers as
//! numbers (decimals with a fraction as the nearest `f64`), booleans, null as `none`, dates and
//! timestamps as the strings above, lists as lists and structs as maps. `null` and `nil` are
//! globals equal to `none`. Values are printed as columns are (`17.0` → `17`), never
//! HTML-escaped.
//!
//! **Null:** `none` prints as nothing. When a render printed `none` at least once and its whole
//! output is empty or whitespace, the property is **null** (so `{{ row.email }}` on a null
//! email, or `{{ null }}`, gives null and the property's `on_null` applies); any other output,
//! including an empty string from a template that printed no `none`, is kept as rendered.
//! The formatter sets a thread-local flag when it prints `none`; no sentinel text is involved,
//! so no data value can be mistaken for null.
//!
//! **Liquid:** templates copied from Hightouch or Census work unchanged. Before compiling, a
//! template that uses a Liquid-only form (`| f: arg`, `assign`, `capture`, `unless`, `elsif`,
//! `case` / `when`, `comment`, `contains`, `blank` / `empty`, `forloop`, …) is rewritten to the
//! Jinja that means the same (the `liquid` module lists each form). The rewrite is
//! string-literal aware and keeps every newline in place, and each byte of its output knows
//! the byte of the template it came from, so diagnostics and render errors point at the text
//! the user wrote. In such a template conditions use **Liquid truthiness** (only nil and
//! `false` are false; `""`, `0` and empty lists are true) and `and` / `or` group from the right;
//! a template without Liquid-only forms keeps Jinja's rules (`""` and `0` false), so existing
//! Jinja mappings render as before. The Hightouch templates `{{ row['col'] | to_unix }}` and
//! `{%- if row['col'] == null -%}{{ null }}{%- else -%}{{ row['col'] | to_unix }}{%- endif -%}`
//! are Jinja as they stand.
//!
//! **Filters**, named and behaving as Liquid's (arguments after a colon or in parentheses):
//! `to_unix` (ISO date or date-time → epoch milliseconds, dates at midnight UTC; an error on
//! null, as Hightouch documents), `date: format` (chrono strftime on an ISO date or
//! date-time), `upcase`, `downcase`, `strip`, `lstrip`, `rstrip`, `size`, `append`, `prepend`,
//! `replace: find, with` (every occurrence), `truncate: n, ellipsis` (at most `n` characters
//! including the ellipsis, `"..."` by default), `split`, `plus`, `minus`, `times`,
//! `divided_by` (integer division rounds down), `modulo`, `default` (Liquid's: the fallback
//! for none, false, `""` and empty lists; `allow_false: true` keeps false), and two of ours:
//! `email_domain` (the part after the last `@`, lower-cased; none without an `@`) and
//! `is_free_email` (whether an address's domain, or a bare domain, is a free-mail or
//! disposable provider's). String and number filters return `none` for a `none` input (so the
//! property stays null). All of minijinja's own filters (`lower`, `join`, `round`, …) work
//! too.
//!
//! `is_free_email` looks domains up in `data/free_email_domains.txt`, embedded in the binary
//! and read into a set on first use: 13,405 domains from the
//! [free-email-domains](https://github.com/Kikobeats/free-email-domains) list (version
//! 1.9.107, MIT licence, reproduced in the file's header with its source and date).
//!
//! Undefined values are semi-strict: printing `row.missing` is an error, `{% if row.missing %}`
//! is false. Each render may use [`TEMPLATE_FUEL`] units of work; a runaway loop fails the row
//! instead of hanging the sync. A failing render is a [`MappingError`] naming the row's key and
//! the property (and, as a diagnostic, the sync), with the template line for a multi-line
//! template.
//!
//! `compile` checks templates statically: syntax errors, `row.x` / `row['x']` naming no
//! column, unknown filters, Liquid filters given the wrong number of arguments and bare
//! variables (`{{ email }}` for `{{ row.email }}`), each at its line and column in the YAML
//! file, with a "did you mean" hint.
//!
//! # Limitations
//!
//! - Liquid forms that are not rewritten are syntax errors whose hint gives the Jinja form:
//!   `for` parameters (`limit:`, `offset:`, `reversed`), ranges `(1..5)`, `increment`,
//!   `decrement`, `cycle`, `tablerow`, `{% liquid %}`, `render` / `include`, and `.size` /
//!   `.first` / `.last` as properties. Liquid's `case` renders the first matching `when` only;
//!   its `map: "key"` filter is minijinja's `map` (which applies a filter), not Liquid's.
//! - A template in the syntax Jinja and Liquid share (only `{{ }}`, `if` / `else` / `for` and
//!   filters without arguments) is Jinja, truthiness included.
//! - Lists and maps printed directly use minijinja's notation (`[True, None]`); use
//!   `| join(";")` or `| tojson` for a destination format.
//! - The `date` filter needs an ISO date or date-time (no `"now"`, which would break
//!   determinism); Liquid's `split(" ")` whitespace-run rule is not special-cased.
//! - Column references are found statically only in the literal forms `row.x`, `row['x']` and
//!   `row["x"]`; `row[name]` is checked when rendered (printing an undefined value fails).
//! - Positions inside a template assume its span is the first character of its text (exact for
//!   one-line plain scalars and block scalars, approximate for quoted scalars with escapes).
//!
//! # Cost
//!
//! `column:` mappings are formatted column by column into one Arrow string buffer (a `Utf8`
//! column is passed through without copying); nothing is allocated per row. Templates are
//! rendered row by row only when the sync has any, and a row's columns are read lazily.

mod association;
mod check;
mod convert;
mod filters;
mod format;
mod liquid;
mod template;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use engine_diag::{Diagnostic, SourceSpan};
use engine_spec::{Located, MappingSource, OnNull, SyncSpec};

use crate::check::Checker;
use minijinja::{Environment, ErrorKind};

pub use convert::{EnumOption, InvalidValue, ValueKind};
pub use template::TEMPLATE_FUEL;

pub use connector_core::{EVENT_NAME_PROPERTY, OCCURRED_AT_PROPERTY};

/// The name of the key column in [`SyncMapping::map_batch`]'s output.
pub const KEY_COLUMN: &str = "__key";

/// One output property, in output order. The match property has `on_null: Keep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyInfo {
    /// The destination's internal property name (also the output column's name).
    pub name: String,
    /// What a null value does to the destination's value.
    pub on_null: OnNull,
    /// True for the match property (always the first).
    pub is_match: bool,
}

/// Where one output column comes from.
#[derive(Debug)]
enum Source {
    /// A model column, by name.
    Column(String),
    /// A static string.
    Value(String),
    /// The template registered in the environment under this name (the property's name).
    Template(String),
    /// An association's model column, read into its set of targets (see `association`), and
    /// its static label.
    Association(String, Option<String>),
}

/// A sync's mapping compiled once: templates parsed, column references resolved.
pub struct SyncMapping {
    sync: String,
    key_columns: Vec<String>,
    properties: Vec<PropertyInfo>,
    sources: Vec<Source>,
    /// Per property (aligned with `properties`), what the destination's schema says it holds;
    /// `None` sends the text as mapped.
    kinds: Vec<Option<ValueKind>>,
    env: Environment<'static>,
    output_schema: SchemaRef,
}

impl fmt::Debug for SyncMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncMapping")
            .field("sync", &self.sync)
            .field("key_columns", &self.key_columns)
            .field("properties", &self.properties)
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

/// A mapped value its property's [`ValueKind`] cannot take: the row is left out of the plan
/// and listed with this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionFailure {
    /// The row's key text (rows with a null key are reported elsewhere).
    pub key: String,
    /// The row's match value, as mapped.
    pub match_value: Option<String>,
    /// The destination property.
    pub property: String,
    /// The value as mapped.
    pub value: String,
    /// What is wrong, and how to fix it.
    pub error: InvalidValue,
}

impl ConversionFailure {
    /// One line for the plan: property, value, problem, fix.
    pub fn reason(&self) -> String {
        format!(
            "property `{}`: {}; {}",
            self.property, self.error.message, self.error.hint
        )
    }
}

/// A row that could not be mapped (a template error such as `to_unix` on null).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot map property `{property}` of row {}: {message}", display_key(.key))]
pub struct MappingError {
    /// The row's key text, when its key columns are not null.
    pub key: Option<String>,
    /// The destination property whose value failed.
    pub property: String,
    /// What went wrong, one sentence.
    pub message: String,
}

fn display_key(key: &Option<String>) -> String {
    match key {
        Some(key) => format!("`{key}`"),
        None => "with a null key".to_owned(),
    }
}

impl MappingError {
    /// The error as a diagnostic (`mapping::render_failed`) located at the row and property.
    pub fn to_diagnostic(&self, sync: &str) -> Diagnostic {
        let mut diagnostic = Diagnostic::error(
            "mapping::render_failed",
            format!("cannot map property `{}`: {}", self.property, self.message),
        )
        .at_row(sync, self.key.clone(), Some(self.property.clone()));
        if self.message.contains("is null") {
            diagnostic = diagnostic.hint(
                "guard nullable columns: `{%- if row['col'] == null -%}{{ null }}{%- else -%}…{%- endif -%}`",
            );
        } else if self.message.contains("fuel") {
            diagnostic =
                diagnostic.hint("simplify the template; loops over large ranges are cut short");
        }
        diagnostic
    }

    fn internal(property: &str, message: impl fmt::Display) -> Self {
        Self {
            key: None,
            property: property.to_owned(),
            message: format!("internal error: {message}; this is a bug in engine"),
        }
    }
}

/// The key text used everywhere (state, plans, messages): one key column → its value as text;
/// several → a JSON array of the texts, e.g. `["acme","42"]`.
pub fn key_text(values: &[&str]) -> String {
    let mut out = String::new();
    // Writing into a `String` cannot fail.
    let _ = format::write_key_text(&mut out, values);
    out
}

/// A render error as one sentence for [`MappingError::message`].
fn render_message(err: &minijinja::Error, multiline: bool) -> String {
    let mut message = match (err.kind(), err.detail()) {
        (ErrorKind::OutOfFuel, _) => format!(
            "the template ran out of fuel (more than {TEMPLATE_FUEL} steps); is there a runaway loop?"
        ),
        (ErrorKind::InvalidOperation, Some(detail)) => detail.to_owned(),
        (kind, Some(detail)) => format!("{kind}: {detail}"),
        (kind, None) => kind.to_string(),
    };
    if multiline && let Some(line) = err.line() {
        let _ = write!(message, " (template line {line})");
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let _ = write!(message, ": {cause}");
        source = cause.source();
    }
    message
}

impl SyncMapping {
    /// Compiles templates (minijinja) and checks the mapping against the model's output schema:
    /// unknown columns (in `column:`, `match.column`, `primary_key`, and `row['x']` / `row.x`
    /// references in templates) → a Diagnostic at the YAML span with "did you mean" over the
    /// schema's columns; template syntax errors, unknown filters and unknown variables → a
    /// Diagnostic at their position inside the template. All problems are reported together.
    pub fn compile(
        sync: &SyncSpec,
        primary_key: &[Located<String>],
        schema: &Schema,
    ) -> Result<SyncMapping, Vec<Diagnostic>> {
        let mut checker = Checker {
            sync,
            columns: schema.fields().iter().map(|f| f.name().as_str()).collect(),
            diagnostics: Vec::new(),
        };
        if primary_key.is_empty() {
            checker.diagnostics.push(
                Diagnostic::error(
                    "mapping::no_primary_key",
                    format!(
                        "the model `{}` of sync `{}` has no primary key",
                        sync.model.value, sync.name.value
                    ),
                )
                .at(sync.model.span.clone())
                .hint("set `primary_key:` in the model to the column(s) that identify a row"),
            );
        }
        for column in primary_key {
            checker.check_column(column, "primary key column");
        }
        checker.check_column(&sync.match_on.column, "`match.column`");

        let mut env = template::environment();
        let mut properties = vec![PropertyInfo {
            name: sync.match_on.property.value.clone(),
            on_null: OnNull::Keep,
            is_match: true,
        }];
        let mut sources = vec![Source::Column(sync.match_on.column.value.clone())];
        let mut seen: HashMap<&str, &SourceSpan> = HashMap::from([(
            sync.match_on.property.value.as_str(),
            &sync.match_on.property.span,
        )]);
        for entry in &sync.mapping {
            let name = entry.property.value.as_str();
            if name == KEY_COLUMN {
                checker.diagnostics.push(
                    Diagnostic::error(
                        "mapping::reserved_property",
                        format!("the property name `{KEY_COLUMN}` is reserved for the row key"),
                    )
                    .at(entry.property.span.clone()),
                );
            }
            if let Some(first) = seen.insert(name, &entry.property.span) {
                let mut d = Diagnostic::error(
                    "mapping::duplicate_property",
                    format!(
                        "the property `{name}` is mapped twice in sync `{}`",
                        sync.name.value
                    ),
                )
                .at(entry.property.span.clone())
                .note(format!(
                    "first mapped at {}:{}:{}",
                    first.file.display(),
                    first.line,
                    first.column
                ));
                if name == sync.match_on.property.value {
                    d = d.hint(
                        "the match property is always sent from `match.column`; remove this entry",
                    );
                }
                checker.diagnostics.push(d);
            }
            let source = match &entry.source {
                MappingSource::Column(column) => {
                    checker.check_column(column, "`column`");
                    Source::Column(column.value.clone())
                }
                MappingSource::Value(value) => Source::Value(value.value.clone()),
                MappingSource::Template(template) => {
                    checker.check_template(&mut env, name, template);
                    Source::Template(name.to_owned())
                }
            };
            properties.push(PropertyInfo {
                name: name.to_owned(),
                on_null: entry.on_null,
                is_match: false,
            });
            sources.push(source);
        }
        // An event sync's per-row name and time travel as properties no destination has.
        if let Some(event) = &sync.event {
            for (column, property) in [
                (&event.name_column, EVENT_NAME_PROPERTY),
                (&event.occurred_at, OCCURRED_AT_PROPERTY),
            ] {
                if let Some(column) = column {
                    checker.check_column(column, "event column");
                    properties.push(PropertyInfo {
                        name: property.to_owned(),
                        on_null: OnNull::Keep,
                        is_match: false,
                    });
                    sources.push(Source::Column(column.value.clone()));
                }
            }
        }
        for association in &sync.associations {
            checker.check_column(&association.column, "association `column`");
            properties.push(PropertyInfo {
                name: connector_core::association::association_property(&association.name.value),
                // Removing stale links is what a null (no target any more) asks for.
                on_null: if association.remove_stale {
                    OnNull::Clear
                } else {
                    OnNull::Keep
                },
                is_match: false,
            });
            sources.push(Source::Association(
                association.column.value.clone(),
                association.label.as_ref().map(|l| l.value.clone()),
            ));
        }
        if !checker.diagnostics.is_empty() {
            return Err(checker.diagnostics);
        }
        let fields: Vec<Field> = std::iter::once(Field::new(KEY_COLUMN, DataType::Utf8, true))
            .chain(
                properties
                    .iter()
                    .map(|p| Field::new(&p.name, DataType::Utf8, true)),
            )
            .collect();
        Ok(SyncMapping {
            sync: sync.name.value.clone(),
            key_columns: primary_key.iter().map(|c| c.value.clone()).collect(),
            kinds: vec![None; properties.len()],
            properties,
            sources,
            env,
            output_schema: Arc::new(Schema::new(fields)),
        })
    }

    /// Sets what the destination's schema says each property holds (aligned with
    /// [`properties`](Self::properties); shorter lists leave the rest as text). The match
    /// property is never converted: records are found by its value as mapped.
    pub fn set_value_kinds(&mut self, kinds: Vec<Option<ValueKind>>) {
        for (index, kind) in kinds.into_iter().enumerate().take(self.kinds.len()) {
            self.kinds[index] = kind.filter(|_| !self.properties[index].is_match);
        }
    }

    /// Maps one batch ([`map_batch`](Self::map_batch)), then converts each value to its
    /// property's [`ValueKind`]. A value that does not convert stays as mapped and is
    /// returned as a [`ConversionFailure`]; the caller leaves its row out.
    pub fn map_and_convert(
        &self,
        batch: &RecordBatch,
    ) -> Result<(RecordBatch, Vec<ConversionFailure>), MappingError> {
        let mapped = self.map_batch(batch)?;
        if self.kinds.iter().all(Option::is_none) {
            return Ok((mapped, Vec::new()));
        }
        let key = mapped.column(0).as_string::<i32>().clone();
        let match_values = mapped.column(1).as_string::<i32>().clone();
        let mut columns: Vec<ArrayRef> = mapped.columns().to_vec();
        let mut failures = Vec::new();
        for (index, kind) in self.kinds.iter().enumerate() {
            let Some(kind) = kind else {
                continue;
            };
            let column = columns[index + 1].as_string::<i32>();
            let mut out = StringBuilder::with_capacity(column.len(), column.value_data().len());
            for row in 0..column.len() {
                if column.is_null(row) {
                    out.append_null();
                    continue;
                }
                let text = column.value(row);
                match kind.convert(text) {
                    Ok(value) => out.append_value(value),
                    Err(error) => {
                        out.append_value(text);
                        if key.is_valid(row) {
                            failures.push(ConversionFailure {
                                key: key.value(row).to_owned(),
                                match_value: match_values
                                    .is_valid(row)
                                    .then(|| match_values.value(row).to_owned()),
                                property: self.properties[index].name.clone(),
                                value: text.to_owned(),
                                error,
                            });
                        }
                    }
                }
            }
            columns[index + 1] = Arc::new(out.finish());
        }
        let options = RecordBatchOptions::new().with_row_count(Some(mapped.num_rows()));
        let converted = RecordBatch::try_new_with_options(self.output_schema(), columns, &options)
            .map_err(|e| MappingError::internal(KEY_COLUMN, e))?;
        Ok((converted, failures))
    }

    /// Output properties: the match property first (value from `match.column`,
    /// `is_match = true`), then the mapping entries in order.
    pub fn properties(&self) -> &[PropertyInfo] {
        &self.properties
    }

    /// The schema of [`map_batch`](Self::map_batch)'s output: `__key`, then one nullable
    /// `Utf8` column per property.
    pub fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.output_schema)
    }

    /// The primary-key columns, in key order.
    pub fn key_columns(&self) -> &[String] {
        &self.key_columns
    }

    /// Maps one batch of model rows. Output schema: `__key` (Utf8, null when any key column is
    /// null), then one nullable Utf8 column per property in [`properties`](Self::properties)
    /// order, named by the property. Stops at the first row a template cannot render.
    pub fn map_batch(&self, batch: &RecordBatch) -> Result<RecordBatch, MappingError> {
        let rows = batch.num_rows();
        let schema = batch.schema();
        // Formatted model columns, by index: a column used twice is formatted once.
        let mut formatted: HashMap<usize, ArrayRef> = HashMap::new();
        let mut text_column = |name: &str, property: &str| -> Result<ArrayRef, MappingError> {
            let index = schema.index_of(name).map_err(|_| {
                MappingError::internal(property, format_args!("the batch has no column `{name}`"))
            })?;
            Ok(Arc::clone(formatted.entry(index).or_insert_with(|| {
                format::format_column(batch.column(index))
            })))
        };

        let key_parts = self
            .key_columns
            .iter()
            .map(|c| text_column(c, KEY_COLUMN))
            .collect::<Result<Vec<_>, _>>()?;
        let key = compose_key(&key_parts, rows);

        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.sources.len() + 1);
        columns.push(Arc::clone(&key));
        let mut templates = Vec::new();
        for (source, property) in self.sources.iter().zip(&self.properties) {
            columns.push(match source {
                Source::Column(column) => text_column(column, &property.name)?,
                Source::Value(value) => {
                    let mut out = StringBuilder::with_capacity(rows, rows * value.len());
                    for _ in 0..rows {
                        out.append_value(value);
                    }
                    Arc::new(out.finish())
                }
                Source::Association(column, label) => {
                    let index = schema.index_of(column).map_err(|_| {
                        MappingError::internal(
                            &property.name,
                            format_args!("the batch has no column `{column}`"),
                        )
                    })?;
                    association::targets_column(batch.column(index), label.as_deref()).map_err(
                        |(row, message)| MappingError {
                            key: key
                                .as_string::<i32>()
                                .is_valid(row)
                                .then(|| key.as_string::<i32>().value(row).to_owned()),
                            property: property.name.clone(),
                            message,
                        },
                    )?
                }
                Source::Template(name) => {
                    let template = self.env.get_template(name).map_err(|e| {
                        MappingError::internal(
                            &property.name,
                            format_args!("template not compiled: {e}"),
                        )
                    })?;
                    templates.push((columns.len(), property.name.as_str(), template));
                    // Replaced below once every template has rendered.
                    Arc::new(StringArray::new_null(0))
                }
            });
        }
        if !templates.is_empty() {
            let key = key.as_string::<i32>();
            for (index, array) in self.render_templates(batch, key, &templates)? {
                columns[index] = array;
            }
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(self.output_schema(), columns, &options)
            .map_err(|e| MappingError::internal(KEY_COLUMN, e))
    }

    /// Renders every template row by row (one `row` object per row, shared by the templates).
    fn render_templates(
        &self,
        batch: &RecordBatch,
        key: &StringArray,
        templates: &[(usize, &str, minijinja::Template<'_, '_>)],
    ) -> Result<Vec<(usize, ArrayRef)>, MappingError> {
        let rows = batch.num_rows();
        let view = template::BatchView::new(batch);
        let mut builders: Vec<StringBuilder> = templates
            .iter()
            .map(|_| StringBuilder::with_capacity(rows, rows * 16))
            .collect();
        for row in 0..rows {
            let context = template::row_context(&view, row);
            for ((_, property, template), out) in templates.iter().zip(&mut builders) {
                match template::render(template, &context) {
                    Ok(value) => out.append_option(value),
                    Err(err) => {
                        return Err(MappingError {
                            key: key.is_valid(row).then(|| key.value(row).to_owned()),
                            property: (*property).to_owned(),
                            message: render_message(&err, template.source().contains('\n')),
                        });
                    }
                }
            }
        }
        Ok(templates
            .iter()
            .zip(builders)
            .map(|((index, _, _), mut out)| (*index, Arc::new(out.finish()) as ArrayRef))
            .collect())
    }
}

/// The `__key` column from the key columns' texts: the column itself for one key column,
/// JSON arrays otherwise; null when any part is null.
fn compose_key(parts: &[ArrayRef], rows: usize) -> ArrayRef {
    if let [single] = parts {
        return Arc::clone(single);
    }
    let parts: Vec<&StringArray> = parts.iter().map(|p| p.as_string::<i32>()).collect();
    let mut out = StringBuilder::with_capacity(rows, rows * 8 * parts.len().max(1));
    let mut values: Vec<&str> = Vec::with_capacity(parts.len());
    for row in 0..rows {
        values.clear();
        for part in &parts {
            if part.is_null(row) {
                break;
            }
            values.push(part.value(row));
        }
        if values.len() < parts.len() {
            out.append_null();
        } else {
            let _ = format::write_key_text(&mut out, &values);
            out.append_value("");
        }
    }
    Arc::new(out.finish())
}
