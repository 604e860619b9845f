//! The diff rows file: one line per key that differs between the model and the snapshot
//! (added, changed or removed), in key order, with the match value on each side.
//!
//! An incremental plan writes it in its first pass and reads it in the next two, so the keys
//! that differ are never held in memory, however many there are (a mapping change can make
//! every row of a ten-million-row model differ). It is a scratch Parquet file in the plan's
//! work directory; the next passes register it as a table or stream it back.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, RecordBatch, StringArray, StringBuilder, UInt8Array, UInt8Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::snapshot::{KEY_COLUMN, io_error};

/// The kind column.
pub(crate) const KIND_COLUMN: &str = "__kind";
const OLD_MATCH_COLUMN: &str = "__old_match";
const NEW_MATCH_COLUMN: &str = "__new_match";
/// Rows buffered before a batch is written.
const BATCH_ROWS: usize = 8192;

/// How a key differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// In the model, not in the snapshot.
    Added = 0,
    /// In both, with another fingerprint.
    Changed = 1,
    /// In the snapshot, no longer in the model.
    Removed = 2,
}

impl Kind {
    fn from_code(code: u8) -> std::io::Result<Kind> {
        match code {
            0 => Ok(Kind::Added),
            1 => Ok(Kind::Changed),
            2 => Ok(Kind::Removed),
            other => Err(io_error(format!("unknown diff row kind {other}"))),
        }
    }
}

/// One key that differs, with its match value before (snapshot) and after (model), raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiffRow {
    pub(crate) key: String,
    pub(crate) kind: Kind,
    pub(crate) old_match: Option<String>,
    pub(crate) new_match: Option<String>,
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(KEY_COLUMN, DataType::Utf8, false),
        Field::new(KIND_COLUMN, DataType::UInt8, false),
        Field::new(OLD_MATCH_COLUMN, DataType::Utf8, true),
        Field::new(NEW_MATCH_COLUMN, DataType::Utf8, true),
    ]))
}

/// Writes diff rows, a batch at a time.
pub(crate) struct DiffRowWriter {
    writer: ArrowWriter<std::fs::File>,
    schema: SchemaRef,
    keys: StringBuilder,
    kinds: UInt8Builder,
    old_matches: StringBuilder,
    new_matches: StringBuilder,
    pending: usize,
}

impl DiffRowWriter {
    /// Creates (or truncates) the file at `path`.
    pub(crate) fn create(path: &Path) -> std::io::Result<Self> {
        let file = fs_err::File::create(path)?.into_parts().0;
        let schema = schema();
        // Scratch, read once or twice right after: no compression, no statistics.
        let props = WriterProperties::builder()
            .set_compression(Compression::UNCOMPRESSED)
            .set_dictionary_enabled(false)
            .set_statistics_enabled(EnabledStatistics::None)
            .build();
        let writer =
            ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).map_err(io_error)?;
        Ok(DiffRowWriter {
            writer,
            schema,
            keys: StringBuilder::new(),
            kinds: UInt8Builder::new(),
            old_matches: StringBuilder::new(),
            new_matches: StringBuilder::new(),
            pending: 0,
        })
    }

    /// Appends one row (callers push in ascending key order).
    pub(crate) fn push(
        &mut self,
        key: &str,
        kind: Kind,
        old_match: Option<&str>,
        new_match: Option<&str>,
    ) -> std::io::Result<()> {
        self.keys.append_value(key);
        self.kinds.append_value(kind as u8);
        self.old_matches.append_option(old_match);
        self.new_matches.append_option(new_match);
        self.pending += 1;
        if self.pending >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let batch = RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                Arc::new(self.keys.finish()),
                Arc::new(self.kinds.finish()),
                Arc::new(self.old_matches.finish()),
                Arc::new(self.new_matches.finish()),
            ],
        )
        .map_err(io_error)?;
        self.writer.write(&batch).map_err(io_error)?;
        self.pending = 0;
        Ok(())
    }

    /// Writes what is buffered and closes the file.
    pub(crate) fn finish(mut self) -> std::io::Result<()> {
        self.flush()?;
        self.writer.close().map_err(io_error)?;
        Ok(())
    }
}

/// Reads diff rows back in file (key) order.
pub(crate) struct DiffRowReader {
    batches: ParquetRecordBatchReader,
    current: Option<(StringArray, UInt8Array, StringArray, StringArray)>,
    row: usize,
}

impl DiffRowReader {
    /// Opens a file [`DiffRowWriter`] wrote.
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        let file = fs_err::File::open(path)?.into_parts().0;
        let batches = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(io_error)?
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(io_error)?;
        Ok(DiffRowReader {
            batches,
            current: None,
            row: 0,
        })
    }
}

impl Iterator for DiffRowReader {
    type Item = std::io::Result<DiffRow>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((keys, kinds, old, new)) = &self.current
                && self.row < keys.len()
            {
                let row = self.row;
                self.row += 1;
                let text = |a: &StringArray| (!a.is_null(row)).then(|| a.value(row).to_string());
                return Some(Kind::from_code(kinds.value(row)).map(|kind| DiffRow {
                    key: keys.value(row).to_string(),
                    kind,
                    old_match: text(old),
                    new_match: text(new),
                }));
            }
            let batch = match self.batches.next()? {
                Ok(batch) => batch,
                Err(e) => return Some(Err(io_error(e))),
            };
            let column = |i: usize| batch.column(i).as_any();
            let (Some(keys), Some(kinds), Some(old), Some(new)) = (
                column(0).downcast_ref::<StringArray>(),
                column(1).downcast_ref::<UInt8Array>(),
                column(2).downcast_ref::<StringArray>(),
                column(3).downcast_ref::<StringArray>(),
            ) else {
                return Some(Err(io_error("the diff rows file has unexpected columns")));
            };
            self.current = Some((keys.clone(), kinds.clone(), old.clone(), new.clone()));
            self.row = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_as_written_across_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.parquet");
        let mut writer = DiffRowWriter::create(&path).unwrap();
        let rows: Vec<DiffRow> = (0..20_000)
            .map(|i| DiffRow {
                key: format!("{i:06}"),
                kind: [Kind::Added, Kind::Changed, Kind::Removed][i % 3],
                old_match: (i % 3 != 0).then(|| format!("old{i}@x.io")),
                new_match: (i % 3 != 2).then(|| format!("new{i}@x.io")),
            })
            .collect();
        for r in &rows {
            writer
                .push(
                    &r.key,
                    r.kind,
                    r.old_match.as_deref(),
                    r.new_match.as_deref(),
                )
                .unwrap();
        }
        writer.finish().unwrap();
        let read: Vec<DiffRow> = DiffRowReader::open(&path)
            .unwrap()
            .collect::<std::io::Result<_>>()
            .unwrap();
        assert_eq!(read, rows);
    }
}
