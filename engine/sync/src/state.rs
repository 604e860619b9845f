//! Opening the state, and its errors as diagnostics that say how to repair.

use std::path::Path;

use engine_diag::Diagnostic;
use engine_spec::Project;
use engine_state::{LocalState, StateError};

use crate::Failure;

/// Opens the state, as a diagnostic on failure.
pub fn open_state(project: &Project) -> Result<LocalState, Failure> {
    LocalState::open(&project.state_dir).map_err(|e| vec![state_error(e)])
}

/// Checks that a snapshot file can be read (its Parquet footer), before a plan relies on it.
pub fn check_snapshot(sync: &str, snapshot: &Path) -> Result<(), Failure> {
    engine_diff::snapshot_row_count(snapshot)
        .map(|_| ())
        .map_err(|e| {
            vec![state_error(StateError::Corrupt {
                file: snapshot.to_path_buf(),
                message: format!(
                    "the snapshot of sync `{sync}` cannot be read: `{}`: {e}",
                    snapshot.display()
                ),
            })]
        })
}

/// A state error as a diagnostic.
pub fn state_error(error: StateError) -> Diagnostic {
    match error {
        StateError::Corrupt { file, message } => Diagnostic::error("state::corrupt", message)
            .note(format!("damaged or missing: `{}`", file.display()))
            .hint("nothing was sent; `engine state check` reports what is wrong with the state")
            .hint("to recover a sync, run `engine state rebuild --sync NAME`: it reads the destination's records, shows what it found as a plan, and commits it when applied (see docs/errors.md#statecorrupt)"),
        StateError::DiskFull { dir, message } => crate::disk_full::disk_full(&dir, &message),
        StateError::InvalidName(name) => Diagnostic::error(
            "state::invalid_name",
            format!("`{name}` is not a valid sync name, so it cannot name a file in the state directory"),
        )
        .hint("sync names use ASCII letters, digits, `_` and `-`, start with a letter or `_`, and have at most 100 characters"),
        StateError::Locked { sync, holder } => Diagnostic::error(
            "state::locked",
            format!("sync `{sync}` is being applied by another process ({holder})"),
        )
        .hint("wait for that apply to finish; a crashed apply releases its lock by itself"),
        other => Diagnostic::error("state::error", other.to_string()).hint(
            "check the state directory (`.engine/` by default) is writable and not corrupted",
        ),
    }
}
