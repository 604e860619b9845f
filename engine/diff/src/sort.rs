//! Sorting a snapshot by key: the fold merges sorted inputs, and snapshots written before
//! they were kept sorted are brought into order once, under the engine's memory pool
//! (DataFusion sorts with spilling to disk).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{Array, StringArray};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures_util::StreamExt;

use crate::snapshot::{ID_COLUMN, KEY_COLUMN, SnapshotWriter, io_error, snapshot_is_sorted};

/// Rewrites the snapshot at `path` in key order (via a temporary file, fsync and rename) unless
/// it already says it is sorted; returns true when it rewrote it. Content and fingerprints are
/// unchanged, so a crash at any point leaves a valid snapshot.
pub async fn sort_snapshot(ctx: &SessionContext, path: &Path) -> std::io::Result<bool> {
    if snapshot_is_sorted(path)? {
        return Ok(false);
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let table = format!("engine_unsorted_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    ctx.register_parquet(
        &table,
        path.to_string_lossy().as_ref(),
        ParquetReadOptions::default(),
    )
    .await
    .map_err(io_error)?;
    let result = write_sorted(ctx, &table, path).await;
    let _ = ctx.deregister_table(&table);
    result?;
    Ok(true)
}

async fn write_sorted(ctx: &SessionContext, table: &str, path: &Path) -> std::io::Result<()> {
    let frame = ctx
        .sql(&format!("SELECT * FROM {table} ORDER BY {KEY_COLUMN}"))
        .await
        .map_err(io_error)?;
    let schema = frame.schema().as_arrow().clone();
    let properties: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|name| !name.starts_with("__"))
        .collect();
    let with_id = schema.index_of(ID_COLUMN).is_ok();
    let tmp = path.with_extension("parquet.sorting");
    let mut writer = SnapshotWriter::create(&tmp, &properties, with_id)?;
    let mut stream = frame.execute_stream().await.map_err(io_error)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(io_error)?;
        let column = |name: &str| -> std::io::Result<Option<StringArray>> {
            let Ok(index) = batch.schema().index_of(name) else {
                return Ok(None);
            };
            let array = batch.column(index);
            let cast = datafusion::arrow::compute::cast(
                array,
                &datafusion::arrow::datatypes::DataType::Utf8,
            )
            .map_err(io_error)?;
            Ok(cast.as_any().downcast_ref::<StringArray>().cloned())
        };
        let keys = column(KEY_COLUMN)?.ok_or_else(|| io_error("the snapshot has no key column"))?;
        let ids = column(ID_COLUMN)?;
        let values: Vec<Option<StringArray>> = properties
            .iter()
            .map(|p| column(p))
            .collect::<std::io::Result<_>>()?;
        for row in 0..batch.num_rows() {
            let row_values: Vec<Option<&str>> = values
                .iter()
                .map(|a| a.as_ref().and_then(|a| text(a, row)))
                .collect();
            let id = ids.as_ref().and_then(|a| text(a, row));
            writer.push(keys.value(row), id, &row_values)?;
        }
    }
    writer.finish()?;
    fs_err::rename(&tmp, path)?;
    if let Some(Ok(dir)) = path.parent().map(fs_err::File::open) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// A row's value in a text column, None when null.
fn text(array: &StringArray, row: usize) -> Option<&str> {
    (!array.is_null(row)).then(|| array.value(row))
}
