//! A sync plan's row changes, kept out of memory: planning writes them to columnar files
//! (Parquet, LZ4) in the state directory and every consumer (the human view, `--json`, a
//! saved plan, the executor, the snapshot fold, crash recovery) reads them back a chunk at a
//! time. Small plans built in memory (tests, previews) use the same type.
//!
//! One file per part; a plan's parts are read in order (creates, updates, removes, each sorted
//! by key), so the whole change set is sorted by action then key. Columns: `action`, `key`,
//! `destination_id`, `field_names` / `field_before` / `field_after` (one list entry per
//! field change), `values` (the full mapped row, null for removes), `last_error`,
//! `rekeyed_from`, `vacated_by`, `wave`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, ListArray, ListBuilder, RecordBatch, StringArray, StringBuilder,
    UInt32Array, UInt32Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt32Type};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Action, FieldChange, RowChange};

/// Rows per chunk read back, and per batch written.
pub const CHUNK_ROWS: usize = 4096;

/// Changes read a chunk at a time ([`ChangeSet::chunks`]).
pub type ChangeChunks<'a> = Box<dyn Iterator<Item = std::io::Result<Vec<RowChange>>> + Send + 'a>;

/// The row changes of one sync plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeSet {
    source: Source,
}

#[derive(Debug, Clone, PartialEq)]
enum Source {
    Memory(Vec<RowChange>),
    Files { parts: Vec<PathBuf>, rows: u64 },
}

impl Default for Source {
    fn default() -> Self {
        Source::Memory(Vec::new())
    }
}

impl From<Vec<RowChange>> for ChangeSet {
    fn from(changes: Vec<RowChange>) -> Self {
        ChangeSet {
            source: Source::Memory(changes),
        }
    }
}

impl ChangeSet {
    /// Changes written by [`ChangeWriter`]s, read in the order given; `rows` is their total.
    pub fn from_files(parts: Vec<PathBuf>, rows: u64) -> Self {
        ChangeSet {
            source: Source::Files { parts, rows },
        }
    }

    /// How many changes there are.
    pub fn len(&self) -> u64 {
        match &self.source {
            Source::Memory(changes) => changes.len() as u64,
            Source::Files { rows, .. } => *rows,
        }
    }

    /// True when there is no change.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The files holding the changes (empty for an in-memory set).
    pub fn files(&self) -> &[PathBuf] {
        match &self.source {
            Source::Memory(_) => &[],
            Source::Files { parts, .. } => parts,
        }
    }

    /// Calls `visit` with each chunk of changes, in order, holding one chunk at a time.
    pub fn for_each_chunk(
        &self,
        mut visit: impl FnMut(&[RowChange]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        match &self.source {
            Source::Memory(changes) => {
                for chunk in changes.chunks(CHUNK_ROWS) {
                    visit(chunk)?;
                }
                Ok(())
            }
            Source::Files { parts, .. } => {
                for part in parts {
                    for chunk in read_part(part, Columns::All)? {
                        visit(&chunk?)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// The changes, a chunk at a time, in order (pull-based, for consumers that interleave
    /// reading with other work).
    pub fn chunks(&self) -> ChangeChunks<'_> {
        match &self.source {
            Source::Memory(changes) => Box::new(changes.chunks(CHUNK_ROWS).map(|c| Ok(c.to_vec()))),
            Source::Files { parts, .. } => read_parts(parts, Columns::All),
        }
    }

    /// The changes like [`ChangeSet::chunks`], without their field-level changes (`fields`
    /// is empty): for the snapshot fold, which needs the full rows only, at a fraction of
    /// the reading cost.
    pub fn chunks_without_fields(&self) -> ChangeChunks<'_> {
        match &self.source {
            Source::Memory(changes) => Box::new(changes.chunks(CHUNK_ROWS).map(|c| {
                Ok(c.iter()
                    .map(|change| RowChange {
                        fields: Vec::new(),
                        ..change.clone()
                    })
                    .collect())
            })),
            Source::Files { parts, .. } => read_parts(parts, Columns::WithoutFields),
        }
    }

    /// Calls `visit` with each change, in order.
    pub fn for_each(
        &self,
        mut visit: impl FnMut(&RowChange) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        self.for_each_chunk(|chunk| chunk.iter().try_for_each(&mut visit))
    }

    /// The first `n` changes (reading no further than needed).
    pub fn first(&self, n: usize) -> std::io::Result<Vec<RowChange>> {
        match &self.source {
            Source::Memory(changes) => Ok(changes.iter().take(n).cloned().collect()),
            Source::Files { parts, .. } => {
                let mut out = Vec::new();
                for part in parts {
                    for chunk in read_part(part, Columns::All)? {
                        if out.len() >= n {
                            return Ok(out);
                        }
                        let chunk = chunk?;
                        let room = n - out.len();
                        out.extend(chunk.into_iter().take(room));
                    }
                }
                Ok(out)
            }
        }
    }

    /// The re-keyed rows (`rekeyed_from` set): each key with the row it took the record from,
    /// in order. Reads only those two columns, so it costs little beside a full pass; re-keys
    /// are few.
    pub fn rekeys(&self) -> std::io::Result<Vec<(String, String)>> {
        match &self.source {
            Source::Memory(changes) => Ok(changes
                .iter()
                .filter_map(|c| Some((c.key.clone(), c.rekeyed_from.clone()?)))
                .collect()),
            Source::Files { parts, .. } => {
                let mut out = Vec::new();
                for part in parts {
                    // `key` and `rekeyed_from`: plain text, one leaf each.
                    for batch in read_columns(part, Some(&[KEY_COLUMN, REKEYED_FROM_COLUMN]))? {
                        let batch = batch.map_err(io_error)?;
                        let text = |i: usize| -> std::io::Result<&StringArray> {
                            batch
                                .column(i)
                                .as_string_opt::<i32>()
                                .ok_or_else(|| io_error(format!("change column {i} is not UTF-8")))
                        };
                        let (keys, from) = (text(0)?, text(1)?);
                        if from.null_count() == from.len() {
                            continue;
                        }
                        for i in 0..batch.num_rows() {
                            if from.is_valid(i) {
                                out.push((keys.value(i).to_string(), from.value(i).to_string()));
                            }
                        }
                    }
                }
                Ok(out)
            }
        }
    }

    /// How many changes of each action there are and which (action, wave) pairs occur. Reads
    /// only the `action` and `wave` columns: a cheap pass that lets a consumer know the
    /// change set's groups before it reads the rows.
    pub fn outline(&self) -> std::io::Result<ChangeOutline> {
        let mut outline = ChangeOutline::default();
        match &self.source {
            Source::Memory(changes) => {
                for change in changes {
                    outline.add(change.action, change.wave);
                }
            }
            Source::Files { parts, .. } => {
                for part in parts {
                    for batch in read_columns(part, Some(&[ACTION_COLUMN, WAVE_COLUMN]))? {
                        let batch = batch.map_err(io_error)?;
                        let actions = batch
                            .column(0)
                            .as_string_opt::<i32>()
                            .ok_or_else(|| io_error("change column `action` is not UTF-8"))?;
                        let waves: &UInt32Array = batch
                            .column(1)
                            .as_primitive_opt::<UInt32Type>()
                            .ok_or_else(|| io_error("change column `wave` is not UInt32"))?;
                        for (action, wave) in actions.iter().zip(waves.iter()) {
                            outline
                                .add(parse_action(action.unwrap_or_default())?, wave.unwrap_or(0));
                        }
                    }
                }
            }
        }
        Ok(outline)
    }

    /// Every change in memory: for small plans and tests only.
    pub fn to_vec(&self) -> std::io::Result<Vec<RowChange>> {
        match &self.source {
            Source::Memory(changes) => Ok(changes.clone()),
            Source::Files { .. } => {
                let mut all = Vec::new();
                self.for_each_chunk(|chunk| {
                    all.extend_from_slice(chunk);
                    Ok(())
                })?;
                Ok(all)
            }
        }
    }
}

impl Serialize for ChangeSet {
    /// A JSON array of changes, written as they are read (never gathered in memory).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let mut seq = serializer.serialize_seq(Some(self.len() as usize))?;
        let mut failure = None;
        let read = self.for_each(|change| {
            seq.serialize_element(change).map_err(|e| {
                let message = e.to_string();
                failure = Some(e);
                std::io::Error::other(message)
            })
        });
        if let Some(e) = failure {
            return Err(e);
        }
        read.map_err(|e| S::Error::custom(format!("cannot read the plan's changes: {e}")))?;
        seq.end()
    }
}

impl<'de> Deserialize<'de> for ChangeSet {
    /// Into memory; large saved plans are read with [`crate::Plan::read`], which streams
    /// their changes to files instead.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<RowChange>::deserialize(deserializer).map(ChangeSet::from)
    }
}

/// How many changes of each action a change set holds, and its (action, wave) pairs
/// ([`ChangeSet::outline`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeOutline {
    /// Rows to create.
    pub create: u64,
    /// Rows to update.
    pub update: u64,
    /// Rows to remove.
    pub remove: u64,
    /// Every (action, wave) pair that occurs, in order.
    pub groups: std::collections::BTreeSet<(Action, u32)>,
}

impl ChangeOutline {
    fn add(&mut self, action: Action, wave: u32) {
        match action {
            Action::Create => self.create += 1,
            Action::Update => self.update += 1,
            Action::Remove => self.remove += 1,
        }
        self.groups.insert((action, wave));
    }
}

/// The positions of `action`, `key`, `rekeyed_from` and `wave` in [`schema`].
const ACTION_COLUMN: usize = 0;
const KEY_COLUMN: usize = 1;
const REKEYED_FROM_COLUMN: usize = 8;
const WAVE_COLUMN: usize = 10;
/// The positions of the field-level lists (`field_names`, `field_before`, `field_after`).
const FIELD_COLUMNS: [usize; 3] = [3, 4, 5];

fn schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let list = |name: &str, nullable: bool| {
        Field::new(
            name,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            nullable,
        )
    };
    Arc::new(Schema::new(vec![
        text("action", false),
        text("key", false),
        text("destination_id", true),
        list("field_names", false),
        list("field_before", false),
        list("field_after", false),
        list("values", true),
        text("last_error", true),
        text("rekeyed_from", true),
        text("vacated_by", true),
        Field::new("wave", DataType::UInt32, false),
    ]))
}

/// A row change as a [`ChangeWriter`] reads it: a [`RowChange`], or a change parsed from a
/// saved plan's line with its strings borrowed from the line ([`crate::saved`]).
pub(crate) trait ChangeRecord {
    fn action(&self) -> Action;
    fn key(&self) -> &str;
    fn destination_id(&self) -> Option<&str>;
    /// Each field change: property, before, after.
    fn fields(&self) -> impl Iterator<Item = (&str, Option<&str>, Option<&str>)>;
    /// The full row, when there is one.
    fn values(&self) -> Option<impl Iterator<Item = Option<&str>>>;
    fn last_error(&self) -> Option<&str>;
    fn rekeyed_from(&self) -> Option<&str>;
    fn vacated_by(&self) -> Option<&str>;
    fn wave(&self) -> u32;
}

impl ChangeRecord for RowChange {
    fn action(&self) -> Action {
        self.action
    }
    fn key(&self) -> &str {
        &self.key
    }
    fn destination_id(&self) -> Option<&str> {
        self.destination_id.as_deref()
    }
    fn fields(&self) -> impl Iterator<Item = (&str, Option<&str>, Option<&str>)> {
        self.fields
            .iter()
            .map(|f| (f.property.as_str(), f.before.as_deref(), f.after.as_deref()))
    }
    fn values(&self) -> Option<impl Iterator<Item = Option<&str>>> {
        self.values
            .as_ref()
            .map(|values| values.iter().map(Option::as_deref))
    }
    fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
    fn rekeyed_from(&self) -> Option<&str> {
        self.rekeyed_from.as_deref()
    }
    fn vacated_by(&self) -> Option<&str> {
        self.vacated_by.as_deref()
    }
    fn wave(&self) -> u32 {
        self.wave
    }
}

/// Streams changes into one part file.
pub struct ChangeWriter {
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    path: PathBuf,
    rows: u64,
    pending: usize,
    action: StringBuilder,
    key: StringBuilder,
    destination_id: StringBuilder,
    field_names: ListBuilder<StringBuilder>,
    field_before: ListBuilder<StringBuilder>,
    field_after: ListBuilder<StringBuilder>,
    values: ListBuilder<StringBuilder>,
    last_error: StringBuilder,
    rekeyed_from: StringBuilder,
    vacated_by: StringBuilder,
    wave: UInt32Builder,
}

impl ChangeWriter {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = fs_err::File::create(path)?.into_parts().0;
        let schema = schema();
        // Change files are scratch, read back two or three times within one plan or apply:
        // LZ4 costs a fraction of ZSTD's CPU for a somewhat larger file, and plain encoding
        // saves building dictionaries of keys and values that rarely repeat. Change files are
        // read whole, in order: no reader wants min/max statistics.
        let props = WriterProperties::builder()
            .set_compression(Compression::LZ4_RAW)
            .set_dictionary_enabled(false)
            .set_statistics_enabled(EnabledStatistics::None)
            .build();
        let writer =
            ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).map_err(io_error)?;
        Ok(ChangeWriter {
            writer,
            schema,
            path: path.to_path_buf(),
            rows: 0,
            pending: 0,
            action: StringBuilder::new(),
            key: StringBuilder::new(),
            destination_id: StringBuilder::new(),
            field_names: ListBuilder::new(StringBuilder::new()),
            field_before: ListBuilder::new(StringBuilder::new()),
            field_after: ListBuilder::new(StringBuilder::new()),
            values: ListBuilder::new(StringBuilder::new()),
            last_error: StringBuilder::new(),
            rekeyed_from: StringBuilder::new(),
            vacated_by: StringBuilder::new(),
            wave: UInt32Builder::new(),
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one change.
    pub fn push(&mut self, change: &RowChange) -> std::io::Result<()> {
        self.push_record(change)
    }

    /// Appends one change, from any form of it.
    pub(crate) fn push_record(&mut self, change: &impl ChangeRecord) -> std::io::Result<()> {
        self.action.append_value(action_name(change.action()));
        self.key.append_value(change.key());
        self.destination_id.append_option(change.destination_id());
        for (property, before, after) in change.fields() {
            self.field_names.values().append_value(property);
            self.field_before.values().append_option(before);
            self.field_after.values().append_option(after);
        }
        self.field_names.append(true);
        self.field_before.append(true);
        self.field_after.append(true);
        match change.values() {
            Some(values) => {
                for value in values {
                    self.values.values().append_option(value);
                }
                self.values.append(true);
            }
            None => self.values.append(false),
        }
        self.last_error.append_option(change.last_error());
        self.rekeyed_from.append_option(change.rekeyed_from());
        self.vacated_by.append_option(change.vacated_by());
        self.wave.append_value(change.wave());
        self.rows += 1;
        self.pending += 1;
        if self.pending >= CHUNK_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.action.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.destination_id.finish()),
            Arc::new(self.field_names.finish()),
            Arc::new(self.field_before.finish()),
            Arc::new(self.field_after.finish()),
            Arc::new(self.values.finish()),
            Arc::new(self.last_error.finish()),
            Arc::new(self.rekeyed_from.finish()),
            Arc::new(self.vacated_by.finish()),
            Arc::new(self.wave.finish()),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(io_error)?;
        self.writer.write(&batch).map_err(io_error)?;
        self.pending = 0;
        Ok(())
    }

    /// Flushes, writes the footer and fsyncs; returns the number of changes written.
    pub fn finish(mut self) -> std::io::Result<u64> {
        self.flush()?;
        let file = self.writer.into_inner().map_err(io_error)?;
        file.sync_all()?;
        Ok(self.rows)
    }
}

/// The parts' changes, a chunk at a time, in order.
fn read_parts(parts: &[PathBuf], columns: Columns) -> ChangeChunks<'_> {
    Box::new(parts.iter().flat_map(move |part| {
        let chunks: Box<dyn Iterator<Item = std::io::Result<Vec<RowChange>>> + Send> =
            match read_part(part, columns) {
                Ok(chunks) => Box::new(chunks),
                Err(e) => Box::new(std::iter::once(Err(e))),
            };
        chunks
    }))
}

/// Which columns of a change file a reader needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Columns {
    /// Every column: the full changes.
    All,
    /// All but the field-level before and after lists (the costliest to read): what the
    /// snapshot fold needs. The changes read have no `fields`.
    WithoutFields,
}

/// Reads one part file back, a chunk at a time.
fn read_part(
    path: &Path,
    columns: Columns,
) -> std::io::Result<impl Iterator<Item = std::io::Result<Vec<RowChange>>>> {
    let kept: Vec<usize> = (0..schema().fields().len())
        .filter(|i| !FIELD_COLUMNS.contains(i))
        .collect();
    let reader = match columns {
        Columns::All => read_columns(path, None)?,
        Columns::WithoutFields => read_columns(path, Some(&kept))?,
    };
    Ok(reader.map(|batch| batch.map_err(io_error).and_then(|b| decode(&b))))
}

/// Opens a part file for reading a chunk at a time: the columns at positions `only` (in
/// [`schema`]'s order), or all of them.
fn read_columns(
    path: &Path,
    only: Option<&[usize]>,
) -> std::io::Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let file = fs_err::File::open(path)?.into_parts().0;
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(io_error)?;
    if let Some(only) = only {
        let mask =
            parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), only.iter().copied());
        builder = builder.with_projection(mask);
    }
    builder
        .with_batch_size(CHUNK_ROWS)
        .build()
        .map_err(io_error)
}

/// Decodes a batch of a change file, or of a projection of it: a missing field list reads as
/// no fields.
fn decode(batch: &RecordBatch) -> std::io::Result<Vec<RowChange>> {
    let column = |name: &str| -> std::io::Result<&ArrayRef> {
        batch
            .column_by_name(name)
            .ok_or_else(|| io_error(format!("a change file has no `{name}` column")))
    };
    let text = |name: &str| -> std::io::Result<&StringArray> {
        column(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| io_error(format!("change column `{name}` is not UTF-8")))
    };
    let list = |name: &str| -> std::io::Result<Option<&ListArray>> {
        match batch.column_by_name(name) {
            None => Ok(None),
            Some(array) => array
                .as_list_opt::<i32>()
                .map(Some)
                .ok_or_else(|| io_error(format!("change column `{name}` is not a list"))),
        }
    };
    let (action, key, destination_id) = (text("action")?, text("key")?, text("destination_id")?);
    let (names, before, after) = (
        list("field_names")?,
        list("field_before")?,
        list("field_after")?,
    );
    let values = list("values")?.ok_or_else(|| io_error("a change file has no `values` column"))?;
    let (last_error, rekeyed_from, vacated_by) = (
        text("last_error")?,
        text("rekeyed_from")?,
        text("vacated_by")?,
    );
    let wave: &UInt32Array = column("wave")?
        .as_primitive_opt::<UInt32Type>()
        .ok_or_else(|| io_error("change column `wave` is not u32"))?;
    let opt = |a: &StringArray, row: usize| (!a.is_null(row)).then(|| a.value(row).to_string());
    // A list's items, read through its offsets into the one child array (no slice per row).
    let items = |l: &ListArray| -> std::io::Result<StringArray> {
        l.values()
            .as_string_opt::<i32>()
            .cloned()
            .ok_or_else(|| io_error("change list is not UTF-8"))
    };
    let field_lists = match (names, before, after) {
        (Some(names), Some(before), Some(after)) => Some((
            (names, items(names)?),
            (before, items(before)?),
            (after, items(after)?),
        )),
        _ => None,
    };
    let value_items = items(values)?;
    let strings = |l: &ListArray, inner: &StringArray, row: usize| -> Vec<Option<String>> {
        let offsets = l.value_offsets();
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        (start..end).map(|i| opt(inner, i)).collect()
    };
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let fields = match &field_lists {
            None => Vec::new(),
            Some(((names, name_items), (before, before_items), (after, after_items))) => {
                let names = strings(names, name_items, row);
                let before = strings(before, before_items, row);
                let after = strings(after, after_items, row);
                names
                    .into_iter()
                    .zip(before.into_iter().zip(after))
                    .map(|(property, (before, after))| FieldChange {
                        property: property.unwrap_or_default(),
                        before,
                        after,
                    })
                    .collect()
            }
        };
        out.push(RowChange {
            action: parse_action(action.value(row))?,
            key: key.value(row).to_string(),
            destination_id: opt(destination_id, row),
            fields,
            values: if values.is_null(row) {
                None
            } else {
                Some(strings(values, &value_items, row))
            },
            last_error: opt(last_error, row),
            rekeyed_from: opt(rekeyed_from, row),
            vacated_by: opt(vacated_by, row),
            wave: wave.value(row),
        });
    }
    Ok(out)
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Remove => "remove",
    }
}

fn parse_action(name: &str) -> std::io::Result<Action> {
    match name {
        "create" => Ok(Action::Create),
        "update" => Ok(Action::Update),
        "remove" => Ok(Action::Remove),
        other => Err(io_error(format!(
            "unknown action `{other}` in a change file"
        ))),
    }
}

fn io_error(e: impl ToString) -> std::io::Error {
    std::io::Error::other(e.to_string())
}
