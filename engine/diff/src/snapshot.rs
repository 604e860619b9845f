//! The snapshot file: one Parquet file per sync and generation.
//!
//! Columns: `__key` (row key text), `__destination_id` (record id), `__fp` (16-byte
//! fingerprint), then one nullable UTF-8 column per mapped property, named by the property.
//! The same layout (minus `__destination_id`) holds a plan's mapped model rows.

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, FixedSizeBinaryBuilder, RecordBatch, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::file::reader::FileReader;
use datafusion::parquet::file::serialized_reader::SerializedFileReader;

use crate::fingerprint::{FP_VERSION, fingerprint_row};

/// The key column.
pub const KEY_COLUMN: &str = "__key";
/// The destination id column.
pub const ID_COLUMN: &str = "__destination_id";
/// The fingerprint column.
pub const FP_COLUMN: &str = "__fp";
/// The file metadata entry that says a snapshot's rows are in strictly ascending key order
/// (every snapshot written since the fold became a merge).
pub const SORTED_METADATA: &str = "engine.sorted_by";

/// One snapshot row read back in Rust (only for keys that changed).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRow {
    /// Destination id, when the file has that column.
    pub destination_id: Option<String>,
    /// The file's property names, shared by every row read from it.
    names: Arc<[String]>,
    /// Values aligned with `names`.
    values: Vec<Option<String>>,
}

impl SnapshotRow {
    /// The value of a property (None when null or not present).
    pub fn get(&self, property: &str) -> Option<&str> {
        self.names
            .iter()
            .position(|p| p == property)
            .and_then(|i| self.values[i].as_deref())
    }
}

pub(crate) fn schema(properties: &[String], with_id: bool) -> SchemaRef {
    let mut fields = vec![Field::new(KEY_COLUMN, DataType::Utf8, false)];
    if with_id {
        fields.push(Field::new(ID_COLUMN, DataType::Utf8, true));
    }
    fields.push(Field::new(FP_COLUMN, DataType::FixedSizeBinary(16), false));
    fields.extend(
        properties
            .iter()
            .map(|p| Field::new(p, DataType::Utf8, true)),
    );
    let metadata = [("engine.fp_version".to_string(), FP_VERSION.to_string())].into();
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// Streams rows into a Parquet file (ZSTD), batch by batch.
pub struct SnapshotWriter {
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    properties: Vec<String>,
    with_id: bool,
    rows: u64,
    keys: StringBuilder,
    ids: StringBuilder,
    values: Vec<StringBuilder>,
    pending: usize,
    /// The last key pushed while every key so far came in strictly ascending order.
    last_key: Option<String>,
    sorted: bool,
}

const FLUSH_ROWS: usize = 8192;

impl SnapshotWriter {
    /// Creates `path` (truncating) for rows with these properties.
    pub fn create(path: &Path, properties: &[String], with_id: bool) -> std::io::Result<Self> {
        let file = fs_err::File::create(path)?.into_parts().0;
        let schema = schema(properties, with_id);
        // Keys, ids and fingerprints are unique, and most mapped values nearly so: building a
        // dictionary for them costs a hash per value and is given up once it is full. ZSTD
        // finds what repeats. Snapshots are read whole, in order, never filtered: min/max
        // statistics would cost a comparison per value and serve no reader.
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).map_err(io_error)?))
            .set_dictionary_enabled(false)
            .set_statistics_enabled(EnabledStatistics::None)
            .build();
        let writer =
            ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).map_err(io_error)?;
        Ok(SnapshotWriter {
            writer,
            schema,
            properties: properties.to_vec(),
            with_id,
            rows: 0,
            keys: StringBuilder::new(),
            ids: StringBuilder::new(),
            values: properties.iter().map(|_| StringBuilder::new()).collect(),
            pending: 0,
            last_key: None,
            sorted: true,
        })
    }

    /// Appends one row; `values` are aligned with the writer's properties.
    pub fn push(
        &mut self,
        key: &str,
        destination_id: Option<&str>,
        values: &[Option<&str>],
    ) -> std::io::Result<()> {
        if self.sorted {
            match &mut self.last_key {
                Some(last) if last.as_str() >= key => self.sorted = false,
                Some(last) => {
                    last.clear();
                    last.push_str(key);
                }
                None => self.last_key = Some(key.to_string()),
            }
        }
        self.keys.append_value(key);
        if self.with_id {
            self.ids.append_option(destination_id);
        }
        for (builder, value) in self.values.iter_mut().zip(values) {
            builder.append_option(*value);
        }
        self.pending += 1;
        self.rows += 1;
        if self.pending >= FLUSH_ROWS {
            self.flush_rows()?;
        }
        Ok(())
    }

    /// Writes an already-built batch whose columns are `__key`, the property columns, in
    /// order (the mapping's output), computing fingerprints; no destination ids.
    pub fn write_mapped(&mut self, batch: &RecordBatch) -> std::io::Result<()> {
        self.flush_rows()?;
        self.sorted = false;
        let key = batch.column(0).clone();
        let props: Vec<&StringArray> = (1..batch.num_columns())
            .map(|i| batch.column(i).as_any().downcast_ref::<StringArray>())
            .collect::<Option<_>>()
            .ok_or_else(|| io_error("mapped columns must be UTF-8"))?;
        let fps = fingerprints(&self.properties, &props, batch.num_rows())?;
        let mut columns: Vec<ArrayRef> = vec![key];
        if self.with_id {
            return Err(io_error(
                "write_mapped is for files without destination ids",
            ));
        }
        columns.push(Arc::new(fps));
        columns.extend((1..batch.num_columns()).map(|i| batch.column(i).clone()));
        let out = RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(io_error)?;
        self.rows += out.num_rows() as u64;
        self.writer.write(&out).map_err(io_error)
    }

    fn flush_rows(&mut self) -> std::io::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let values: Vec<StringArray> = self.values.iter_mut().map(|b| b.finish()).collect();
        let arrays: Vec<&StringArray> = values.iter().collect();
        let fps = fingerprints(&self.properties, &arrays, self.pending)?;
        let mut columns: Vec<ArrayRef> = vec![Arc::new(self.keys.finish())];
        if self.with_id {
            columns.push(Arc::new(self.ids.finish()));
        }
        columns.push(Arc::new(fps));
        columns.extend(values.into_iter().map(|a| Arc::new(a) as ArrayRef));
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(io_error)?;
        self.writer.write(&batch).map_err(io_error)?;
        self.pending = 0;
        Ok(())
    }

    /// Flushes, writes the footer and fsyncs; returns the row count. A file whose rows came in
    /// strictly ascending key order says so in its metadata ([`SORTED_METADATA`]).
    pub fn finish(mut self) -> std::io::Result<u64> {
        self.flush_rows()?;
        if self.sorted {
            self.writer.append_key_value_metadata(KeyValue::new(
                SORTED_METADATA.to_string(),
                KEY_COLUMN.to_string(),
            ));
        }
        let file = self.writer.into_inner().map_err(io_error)?;
        file.sync_all()?;
        Ok(self.rows)
    }
}

/// The fingerprint of each row of property columns aligned with `properties`.
fn fingerprints(
    properties: &[String],
    columns: &[&StringArray],
    rows: usize,
) -> std::io::Result<datafusion::arrow::array::FixedSizeBinaryArray> {
    let mut fps = FixedSizeBinaryBuilder::with_capacity(rows, 16);
    for row in 0..rows {
        let fp = fingerprint_row(properties.iter().zip(columns).map(|(name, array)| {
            (
                name.as_str(),
                (!array.is_null(row)).then(|| array.value(row)),
            )
        }));
        fps.append_value(fp).map_err(io_error)?;
    }
    Ok(fps.finish())
}

pub(crate) fn io_error(e: impl ToString) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Rows in a snapshot file, from its footer.
pub fn snapshot_row_count(path: &Path) -> std::io::Result<u64> {
    let file = fs_err::File::open(path)?.into_parts().0;
    let reader = SerializedFileReader::new(file).map_err(io_error)?;
    Ok(reader.metadata().file_metadata().num_rows().max(0) as u64)
}

/// True when the snapshot at `path` says its rows are sorted by key ([`SORTED_METADATA`]).
pub fn snapshot_is_sorted(path: &Path) -> std::io::Result<bool> {
    let file = fs_err::File::open(path)?.into_parts().0;
    let reader = SerializedFileReader::new(file).map_err(io_error)?;
    Ok(reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .is_some_and(|kv| {
            kv.iter()
                .any(|e| e.key == SORTED_METADATA && e.value.as_deref() == Some(KEY_COLUMN))
        }))
}

/// One snapshot row as the fold reads it: values aligned with the properties asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredRow {
    pub(crate) destination_id: Option<String>,
    pub(crate) values: Vec<Option<String>>,
}

/// Reads a snapshot row by row, in file order, a batch at a time (pull-based, for merges).
pub(crate) struct SnapshotReader {
    batches: datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    properties: Vec<String>,
    current: Option<Columns>,
    row: usize,
}

/// One batch's columns, found by name once per batch.
struct Columns {
    rows: usize,
    keys: StringArray,
    ids: Option<StringArray>,
    values: Vec<Option<StringArray>>,
}

impl Columns {
    fn of(batch: &RecordBatch, properties: &[String]) -> std::io::Result<Self> {
        let text = |name: &str| -> Option<StringArray> {
            let index = batch.schema().index_of(name).ok()?;
            batch
                .column(index)
                .as_any()
                .downcast_ref::<StringArray>()
                .cloned()
        };
        Ok(Columns {
            rows: batch.num_rows(),
            keys: string_column(batch, KEY_COLUMN)?.clone(),
            ids: text(ID_COLUMN),
            values: properties.iter().map(|p| text(p)).collect(),
        })
    }

    fn row(&self, row: usize) -> (String, StoredRow) {
        let value =
            |array: &StringArray| (!array.is_null(row)).then(|| array.value(row).to_string());
        (
            self.keys.value(row).to_string(),
            StoredRow {
                destination_id: self.ids.as_ref().and_then(value),
                values: self
                    .values
                    .iter()
                    .map(|a| a.as_ref().and_then(value))
                    .collect(),
            },
        )
    }
}

impl SnapshotReader {
    /// Opens `path`; rows come with values for `properties` (null where the file lacks one).
    pub(crate) fn open(path: &Path, properties: &[String]) -> std::io::Result<Self> {
        let file = fs_err::File::open(path)?.into_parts().0;
        let batches = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(io_error)?
            .with_batch_size(8192)
            .build()
            .map_err(io_error)?;
        Ok(SnapshotReader {
            batches,
            properties: properties.to_vec(),
            current: None,
            row: 0,
        })
    }
}

impl SnapshotReader {
    /// Moves on to `key` and returns its row, or None when the file has no such key (rows
    /// before it are passed over without being decoded). Keys asked for must ascend, as the
    /// file's do.
    pub(crate) fn seek(&mut self, key: &str) -> std::io::Result<Option<StoredRow>> {
        loop {
            if let Some(columns) = &self.current {
                while self.row < columns.rows && columns.keys.value(self.row) < key {
                    self.row += 1;
                }
                if self.row < columns.rows {
                    if columns.keys.value(self.row) == key {
                        let (_, row) = columns.row(self.row);
                        self.row += 1;
                        return Ok(Some(row));
                    }
                    return Ok(None);
                }
            }
            let Some(batch) = self.batches.next() else {
                return Ok(None);
            };
            self.current = Some(Columns::of(&batch.map_err(io_error)?, &self.properties)?);
            self.row = 0;
        }
    }
}

impl Iterator for SnapshotReader {
    type Item = std::io::Result<(String, StoredRow)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(columns) = &self.current
                && self.row < columns.rows
            {
                let row = columns.row(self.row);
                self.row += 1;
                return Some(Ok(row));
            }
            let batch = match self.batches.next()? {
                Ok(batch) => batch,
                Err(e) => return Some(Err(io_error(e))),
            };
            match Columns::of(&batch, &self.properties) {
                Ok(columns) => {
                    self.current = Some(columns);
                    self.row = 0;
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Reads only the keys, fingerprints and one property of a snapshot, in file order,
/// checking that keys strictly ascend (the diff merges them with the model rows sorted by
/// key).
pub(crate) struct KeyFingerprints {
    batches: datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    current: Option<FingerprintColumns>,
    /// The property read beside key and fingerprint, when the file has it.
    property: Option<String>,
    row: usize,
    last: Option<String>,
}

/// A row of [`KeyFingerprints::next_with_value`]: key, fingerprint, the property's value.
pub(crate) type KeyFingerprintValue = (String, [u8; 16], Option<String>);

/// One batch of [`KeyFingerprints`]: keys, fingerprints and the extra property's values.
struct FingerprintColumns {
    keys: StringArray,
    fps: datafusion::arrow::array::FixedSizeBinaryArray,
    values: Option<StringArray>,
}

impl KeyFingerprints {
    /// Opens `path`, reading `__key`, `__fp` and the column of `property` (its values come
    /// as None when the file has no such column: a property the mapping gained since).
    pub(crate) fn open_with(path: &Path, property: Option<&str>) -> std::io::Result<Self> {
        let file = fs_err::File::open(path)?.into_parts().0;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(io_error)?;
        let arrow_schema = builder.schema().clone();
        let mut columns = [KEY_COLUMN, FP_COLUMN]
            .iter()
            .map(|name| arrow_schema.index_of(name).map_err(io_error))
            .collect::<std::io::Result<Vec<_>>>()?;
        let property = property.filter(|p| arrow_schema.index_of(p).is_ok());
        if let Some(index) = property.and_then(|p| arrow_schema.index_of(p).ok()) {
            columns.push(index);
        }
        let mask =
            datafusion::parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), columns);
        let batches = builder
            .with_projection(mask)
            .with_batch_size(8192)
            .build()
            .map_err(io_error)?;
        Ok(KeyFingerprints {
            batches,
            current: None,
            property: property.map(str::to_string),
            row: 0,
            last: None,
        })
    }

    /// The next row with the extra property's value (see [`KeyFingerprints::open_with`]).
    pub(crate) fn next_with_value(&mut self) -> Option<std::io::Result<KeyFingerprintValue>> {
        let value = |columns: &FingerprintColumns, row: usize| {
            columns
                .values
                .as_ref()
                .filter(|a| !a.is_null(row))
                .map(|a| a.value(row).to_string())
        };
        // The row `next` is about to return is `self.row` of the current batch, or the
        // first of the next batch.
        let (key, fp) = match self.next()? {
            Ok(row) => row,
            Err(e) => return Some(Err(e)),
        };
        let columns = self.current.as_ref()?;
        Some(Ok((key, fp, value(columns, self.row - 1))))
    }
}

impl Iterator for KeyFingerprints {
    type Item = std::io::Result<(String, [u8; 16])>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(FingerprintColumns { keys, fps, .. }) = &self.current
                && self.row < keys.len()
            {
                let key = keys.value(self.row).to_string();
                let mut fp = [0u8; 16];
                fp.copy_from_slice(fps.value(self.row));
                self.row += 1;
                if self.last.as_ref().is_some_and(|last| *last >= key) {
                    return Some(Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("the snapshot is not sorted by row key (`{key}` comes late)"),
                    )));
                }
                self.last = Some(key.clone());
                return Some(Ok((key, fp)));
            }
            let batch = match self.batches.next()? {
                Ok(batch) => batch,
                Err(e) => return Some(Err(io_error(e))),
            };
            let keys = match string_column(&batch, KEY_COLUMN) {
                Ok(keys) => keys.clone(),
                Err(e) => return Some(Err(e)),
            };
            let Some(fps) = batch.schema().index_of(FP_COLUMN).ok().and_then(|i| {
                batch
                    .column(i)
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::FixedSizeBinaryArray>()
                    .cloned()
            }) else {
                return Some(Err(io_error(
                    "the snapshot's fingerprint column is missing",
                )));
            };
            let values = self.property.as_deref().and_then(|p| {
                let index = batch.schema().index_of(p).ok()?;
                batch
                    .column(index)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .cloned()
            });
            self.current = Some(FingerprintColumns { keys, fps, values });
            self.row = 0;
        }
    }
}

/// Streams a snapshot (or mapped-rows) file and calls `visit` for each row whose key is in
/// `wanted` (all rows when `wanted` is None).
pub fn read_snapshot_rows(
    path: &Path,
    wanted: Option<&HashSet<String>>,
    mut visit: impl FnMut(&str, SnapshotRow) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let file = fs_err::File::open(path)?.into_parts().0;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(io_error)?
        .with_batch_size(8192)
        .build()
        .map_err(io_error)?;
    for batch in reader {
        let batch = batch.map_err(io_error)?;
        let schema = batch.schema();
        let keys = string_column(&batch, KEY_COLUMN)?;
        let ids = schema
            .index_of(ID_COLUMN)
            .ok()
            .and_then(|i| batch.column(i).as_any().downcast_ref::<StringArray>());
        let props: Vec<(String, &StringArray)> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.name().starts_with("__"))
            .filter_map(|(i, f)| {
                batch
                    .column(i)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .map(|a| (f.name().clone(), a))
            })
            .collect();
        let names: Arc<[String]> = props.iter().map(|(name, _)| name.clone()).collect();
        for row in 0..batch.num_rows() {
            let key = keys.value(row);
            if wanted.is_some_and(|w| !w.contains(key)) {
                continue;
            }
            let destination_id =
                ids.and_then(|a| (!a.is_null(row)).then(|| a.value(row).to_string()));
            let values = props
                .iter()
                .map(|(_, array)| (!array.is_null(row)).then(|| array.value(row).to_string()))
                .collect();
            visit(
                key,
                SnapshotRow {
                    destination_id,
                    names: Arc::clone(&names),
                    values,
                },
            )?;
        }
    }
    Ok(())
}

fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> std::io::Result<&'a StringArray> {
    let index = batch.schema().index_of(name).map_err(io_error)?;
    batch
        .column(index)
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| io_error(format!("column `{name}` is not UTF-8")))
}
