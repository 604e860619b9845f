//! The diff planner: compares a sync's mapped model rows with the snapshot of what was synced
//! last time, and the snapshot fold that records what an apply actually wrote.
//!
//! ```text
//! model stream ─► mapping ─► key + fingerprint ─► rows.parquet ─┐
//!                                                               ├─ DataFusion FULL JOIN on key,
//! previous snapshot (Parquet: key, destination id, fp, values) ─┘  fp IS DISTINCT FROM
//!                                    │
//!                                    ▼  changed keys only (small)
//!                 field-level before → after read back from both files ─► SyncPlan
//! ```
//!
//! Only key and fingerprint take part in the join, under DataFusion's bounded memory pool;
//! whole rows are read back in Rust just for the keys that changed. Nothing here holds a map
//! of all rows.

mod fingerprint;
mod fold;
mod ownership;
mod planner;
mod snapshot;
mod sort;

pub use fingerprint::{FP_VERSION, fingerprint_row};
pub use fold::{FoldOutcome, RunOutcomes, Written, fold_run, fold_snapshot};
pub use planner::{
    Pending, PlanProgress, PlanStage, SyncDiffInput, no_stream_diagnostic, plan_sync,
};
pub use snapshot::{
    FP_COLUMN, ID_COLUMN, KEY_COLUMN, SORTED_METADATA, SnapshotWriter, read_snapshot_rows,
    snapshot_is_sorted, snapshot_row_count,
};
pub use sort::sort_snapshot;

#[cfg(test)]
mod tests;
