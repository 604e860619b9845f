//! The diff planner: compares a sync's mapped model rows with the snapshot of what was synced
//! last time, and the snapshot fold that records what an apply actually wrote.
//!
//! ```text
//! model stream ─► mapping ─► key + fingerprint + values ─► rows.parquet
//!
//! first backfill:  rows sorted by key ───────────────────────────────► creates ─► change file
//! incremental:     keys + fingerprints sorted by key ⋈ snapshot (in key order)
//!                    ─► diff rows file (keys that differ, match values before/after)
//!                    ─► record assignment for contested match values only
//!                    ─► whole rows of those keys, sorted ⋈ snapshot ─► changes ─► change file
//! ```
//!
//! Sorts run under DataFusion's bounded memory pool and spill to the state directory; every
//! merge is a stream in key order. Nothing here holds a map of all rows, nor of all the rows
//! that differ: a plan's memory is bounded whether one row changed or all of them.

mod fingerprint;
mod fold;
mod incremental;
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
