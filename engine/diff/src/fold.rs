//! The snapshot fold: previous snapshot ⊕ what an apply actually wrote = the next snapshot.
//!
//! Used at the end of every apply and to recover a crashed one from its journal, so both paths
//! produce the same state. Rows that failed are left as they were (and so show up again in
//! the next plan); rows that succeeded take the plan's values and the destination's id, and a
//! row whose record another row took over (a re-key) leaves the snapshot with it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use engine_plan::{Action, SyncPlan};

use crate::snapshot::{SnapshotWriter, read_snapshot_rows};

/// What the fold wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoldOutcome {
    /// Rows in the new snapshot.
    pub rows: u64,
}

/// Writes the next snapshot to `out` (via a temporary file, fsync and rename).
///
/// `succeeded` maps each row key the apply wrote to the destination id it reported (creates
/// need it; updates and removes may pass None).
pub fn fold_snapshot(
    previous: Option<&Path>,
    plan: &SyncPlan,
    succeeded: &HashMap<String, Option<String>>,
    out: &Path,
) -> std::io::Result<FoldOutcome> {
    fold_snapshot_observed(previous, plan, succeeded, &HashMap::new(), out)
}

/// [`fold_snapshot`], where `observed` gives, for some succeeded rows, the values their record
/// was found to hold (crash recovery read them back) in place of the planned ones.
pub fn fold_snapshot_observed(
    previous: Option<&Path>,
    plan: &SyncPlan,
    succeeded: &HashMap<String, Option<String>>,
    observed: &HashMap<String, Vec<Option<String>>>,
    out: &Path,
) -> std::io::Result<FoldOutcome> {
    let tmp = out.with_extension("parquet.tmp");
    let mut writer = SnapshotWriter::create(&tmp, &plan.properties, true)?;
    // Rows whose record another row took over (a re-key): the record is now that row's.
    let mut handed_over: HashSet<String> = HashSet::new();
    plan.changes.for_each(|c| {
        if let Some(from) = &c.rekeyed_from
            && succeeded.contains_key(&c.key)
        {
            handed_over.insert(from.clone());
        }
        Ok(())
    })?;
    if let Some(previous) = previous {
        read_snapshot_rows(previous, None, |key, row| {
            if succeeded.contains_key(key) || handed_over.contains(key) {
                return Ok(());
            }
            let values: Vec<Option<&str>> = plan.properties.iter().map(|p| row.get(p)).collect();
            writer.push(key, row.destination_id.as_deref(), &values)
        })?;
    }
    plan.changes.for_each(|change| {
        let Some(outcome_id) = succeeded.get(&change.key) else {
            return Ok(());
        };
        if change.action == Action::Remove {
            return Ok(());
        }
        let Some(values) = observed.get(&change.key).or(change.values.as_ref()) else {
            return Ok(());
        };
        let id = outcome_id.as_deref().or(change.destination_id.as_deref());
        let values: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
        writer.push(&change.key, id, &values)
    })?;
    let rows = writer.finish()?;
    fs_err::rename(&tmp, out)?;
    if let Some(Ok(dir)) = out.parent().map(fs_err::File::open) {
        let _ = dir.sync_all();
    }
    Ok(FoldOutcome { rows })
}
