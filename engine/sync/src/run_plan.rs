//! What a run keeps for crash recovery: its sync plan's header (properties, match rules,
//! counts) in the state, and its change files moved beside it, under
//! `.engine/runs/<plan id>-<sync>/`. The header is small whatever the plan's size; the
//! changes stay columnar and are read back a chunk at a time.

use std::path::{Path, PathBuf};

use engine_diag::Diagnostic;
use engine_plan::{ChangeSet, ChangeWriter, SyncPlan};
use serde::{Deserialize, Serialize};

use crate::Failure;

/// The stored form.
#[derive(Serialize, Deserialize)]
struct RunPlan {
    /// The sync plan without its changes.
    plan: SyncPlan,
    /// The change files, in order.
    parts: Vec<PathBuf>,
    /// How many changes they hold.
    rows: u64,
}

/// Moves the plan's change files into the run directory for `plan_id` (writing them first
/// when the changes are in memory) and returns the plan reading them from there.
pub(crate) fn persist(
    state_dir: &Path,
    plan_id: &str,
    plan: &SyncPlan,
) -> Result<SyncPlan, Failure> {
    let dir = state_dir
        .join("runs")
        .join(format!("{plan_id}-{}", plan.sync));
    let fail = |e: &std::io::Error| {
        vec![Diagnostic::error(
            "state::error",
            format!("cannot keep the changes of sync `{}` in `{}`: {e}", plan.sync, dir.display()),
        )
        .hint("check free disk space and permissions of the state directory, then run `engine apply` again")]
    };
    fs_err::create_dir_all(&dir).map_err(|e| fail(&e))?;
    let mut parts = Vec::new();
    if plan.changes.files().is_empty() {
        let path = dir.join("changes-0.parquet");
        let mut writer = ChangeWriter::create(&path).map_err(|e| fail(&e))?;
        plan.changes
            .for_each(|c| writer.push(c))
            .map_err(|e| fail(&e))?;
        writer.finish().map_err(|e| fail(&e))?;
        parts.push(path);
    } else {
        for (i, part) in plan.changes.files().iter().enumerate() {
            let path = dir.join(format!("changes-{i}.parquet"));
            if *part != path && fs_err::rename(part, &path).is_err() {
                fs_err::copy(part, &path).map_err(|e| fail(&e))?;
            }
            parts.push(path);
        }
    }
    if let Ok(handle) = fs_err::File::open(&dir) {
        let _ = handle.sync_all();
    }
    Ok(SyncPlan {
        changes: ChangeSet::from_files(parts, plan.changes.len()),
        ..plan.clone()
    })
}

/// The bytes stored with the run: the header and where the changes are.
pub(crate) fn encode(plan: &SyncPlan) -> Vec<u8> {
    let stored = RunPlan {
        plan: SyncPlan {
            changes: ChangeSet::default(),
            ..plan.clone()
        },
        parts: plan.changes.files().to_vec(),
        rows: plan.changes.len(),
    };
    // Strings, numbers and paths only: serializing cannot fail.
    serde_json::to_vec(&stored).unwrap_or_default()
}

/// The run's plan again, reading its changes from their files (which exist until the run is
/// committed); a run stored by an earlier version holds its changes inline.
pub fn decode(bytes: &[u8]) -> Result<SyncPlan, String> {
    if let Ok(stored) = serde_json::from_slice::<RunPlan>(bytes) {
        return Ok(SyncPlan {
            changes: ChangeSet::from_files(stored.parts, stored.rows),
            ..stored.plan
        });
    }
    serde_json::from_slice::<SyncPlan>(bytes).map_err(|e| e.to_string())
}

/// Removes a finished run's change files (nothing needs them once the run is committed).
pub(crate) fn discard(plan: &SyncPlan) {
    let dirs: std::collections::BTreeSet<&Path> = plan
        .changes
        .files()
        .iter()
        .filter_map(|p| p.parent())
        .collect();
    for dir in dirs {
        let _ = fs_err::remove_dir_all(dir);
    }
}

/// The first change file of an unfinished run that is missing, if any.
pub(crate) fn missing_part(plan: &SyncPlan) -> Option<&Path> {
    plan.changes
        .files()
        .iter()
        .find(|p| !p.exists())
        .map(PathBuf::as_path)
}
