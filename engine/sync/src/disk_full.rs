//! A full disk as one clear error, whichever write found it: the state database, a change
//! file, the diff's spill files, a snapshot. Each of those reports the OS's or SQLite's words
//! in its own way; here they become `state::disk_full`, which says that nothing is damaged
//! and how to go on, instead of an I/O error that reads like a damaged state.

use std::path::Path;

use engine_diag::Diagnostic;
use engine_state::disk;

use crate::Failure;

/// The diagnostic for a full disk under `dir`, keeping what could not be written.
pub(crate) fn disk_full(dir: &Path, what: &str) -> Diagnostic {
    let free = disk::available_space(dir)
        .map(|bytes| format!(" ({} free)", human_bytes(bytes)))
        .unwrap_or_default();
    Diagnostic::error(
        "state::disk_full",
        format!("the disk holding `{}` is full{free}", dir.display()),
    )
    .note(format!("what could not be written: {what}"))
    .note("nothing is damaged: an apply stopped by a full disk is recovered by the next `engine apply`, and a plan stopped by one leaves neither a plan file nor scratch files")
    .hint("free space on that disk, then run the same command again")
    .hint("a plan needs scratch space under `.engine/tmp` while it runs and an apply keeps its changes and journal until it commits; docs/state.md#disk-space gives measured sizes")
}

/// Replaces every diagnostic of `failure` that a full disk caused by [`disk_full`]; the rest
/// are kept as they are.
pub(crate) fn explain(state_dir: &Path, failure: Failure) -> Failure {
    let full = |d: &Diagnostic| {
        d.code != "state::disk_full"
            && (disk::says_disk_full(&d.message)
                || (d.message.contains("disk I/O error") && disk::nearly_full(state_dir)))
    };
    failure
        .into_iter()
        .map(|d| {
            if full(&d) {
                disk_full(state_dir, &d.message)
            } else {
                d
            }
        })
        .collect()
}

/// `bytes` for people: B, KiB, MiB or GiB.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disk_errors_become_one_clear_diagnostic_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let failure = vec![
            Diagnostic::error(
                "plan::changes",
                "cannot write `changes-0.parquet`: No space left on device (os error 28)",
            ),
            Diagnostic::error("spec::unknown_key", "unknown key `mapping`"),
        ];
        let explained = explain(dir.path(), failure);
        assert_eq!(explained[0].code, "state::disk_full");
        assert!(explained[0].notes[0].contains("changes-0.parquet"));
        assert!(
            explained[0].message.contains(" free)"),
            "{}",
            explained[0].message
        );
        assert_eq!(explained[1].code, "spec::unknown_key");
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(16 * 1024), "16.0 KiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }
}
