//! Row-by-row assembly of record batches, shared by both engines: one Arrow builder per column
//! (made by `make_builder` from the column's type), flushed every `batch_rows` rows.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, RecordBatch, RecordBatchOptions, make_builder,
};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};

use super::WarehouseError;

/// Builders for one batch of the result and the count of rows in them.
pub(super) struct BatchBuilder {
    schema: SchemaRef,
    builders: Vec<Box<dyn ArrayBuilder>>,
    rows: usize,
    batch_rows: usize,
}

impl BatchBuilder {
    pub(super) fn new(schema: SchemaRef, batch_rows: usize) -> BatchBuilder {
        let builders = schema
            .fields()
            .iter()
            .map(|field| make_builder(field.data_type(), batch_rows))
            .collect();
        BatchBuilder {
            schema,
            builders,
            rows: 0,
            batch_rows,
        }
    }

    /// The builder of column `index`.
    pub(super) fn column(&mut self, index: usize) -> &mut dyn ArrayBuilder {
        self.builders[index].as_mut()
    }

    /// Counts a complete row; true when the batch is full.
    pub(super) fn row_done(&mut self) -> bool {
        self.rows += 1;
        self.rows >= self.batch_rows
    }

    /// The rows gathered since the last flush as a batch, or `None` when there are none.
    pub(super) fn flush(&mut self) -> Result<Option<RecordBatch>, WarehouseError> {
        if self.rows == 0 {
            return Ok(None);
        }
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(|b| b.finish()).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)
            .map(Some)
            .map_err(|e| WarehouseError::Other {
                message: format!(
                    "internal error: this is a bug in engine: assembling a batch: {e}"
                ),
            })
    }
}

/// A schema whose columns are all nullable: servers do not say reliably which result columns
/// can be NULL.
pub(super) fn schema_of(fields: impl IntoIterator<Item = Field>) -> SchemaRef {
    Arc::new(Schema::new(fields.into_iter().collect::<Vec<_>>()))
}

/// The concrete builder behind `builder`; the decoders choose the builder type together with
/// the column's Arrow type, so a mismatch is a bug.
pub(super) fn typed<T: ArrayBuilder>(builder: &mut dyn ArrayBuilder) -> Result<&mut T, String> {
    builder.as_any_mut().downcast_mut::<T>().ok_or_else(|| {
        format!(
            "internal error: this is a bug in engine: the column's builder is not a `{}`",
            std::any::type_name::<T>()
        )
    })
}
