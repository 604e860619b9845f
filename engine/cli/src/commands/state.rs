//! `engine state check`, `engine state gc` and `engine state rebuild --sync NAME`: name state
//! damage and size, prune by retention, and repair from the destination rather than start over
//! silently (see `engine_sync::rebuild`).
//!
//! `check` only reads: it reports each sync's generation, snapshot, pending rows, interrupted
//! runs and lock.

use std::path::Path;

use engine_plan::{HumanOptions, render_human};
use engine_state::{StateError, StateStore};
use engine_sync::{Failure, Registry, state_error};
use indicatif::HumanBytes;

use crate::args::{MigrateTarget, StateCommand};
use crate::report::CliReporter;
use crate::views;

pub async fn run(dir: &Path, command: StateCommand) -> u8 {
    let result = match command {
        StateCommand::Check => check(dir),
        StateCommand::Gc { dry_run } => gc(dir, dry_run),
        StateCommand::Rebuild { sync, apply } => rebuild(dir, &sync, apply).await,
        StateCommand::Migrate { to } => migrate(dir, to),
    };
    match result {
        Ok(code) => code,
        Err(problems) => {
            views::diagnostics(&problems, dir);
            1
        }
    }
}

/// Verifies the state and reports, changing nothing; exits 1 when something is wrong.
fn check(dir: &Path) -> Result<u8, Failure> {
    let (project, _) = engine_sync::load_project(dir)?;
    let db = project.state_dir.join("state.db");
    let local = matches!(project.state_backend, engine_spec::StateBackend::Local);
    if local && !db.exists() && !project.state_dir.join("snapshots").exists() {
        views::out("No state yet: nothing has been planned or applied in this project.\n");
        return Ok(0);
    }
    let state = engine_sync::open_state(&project)?;
    let mut problems = Vec::new();
    views::out(&format!(
        "state {} (lineage {})\n",
        state.location(),
        state.lineage()
    ));
    let recorded = state.recorded_syncs().map_err(|e| vec![state_error(e)])?;
    for (name, generation, _) in &recorded {
        if project.sync(name).is_none() {
            views::out(&format!(
                "  {name}: generation {generation}, no longer in the project (its state is kept)\n"
            ));
        }
    }
    for sync in &project.syncs {
        let name = &sync.name.value;
        let recorded_rows = recorded
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, rows)| *rows);
        let line = match state.generation(name) {
            Err(e) => {
                problems.push(state_error(e));
                format!("  {name}: damaged (see below)")
            }
            Ok(generation) => {
                let rows = match &generation.snapshot {
                    None => Ok(0),
                    Some(snapshot) => engine_sync::check_snapshot(name, snapshot)
                        .map(|()| engine_diff::snapshot_row_count(snapshot).unwrap_or_default()),
                };
                match rows {
                    Err(p) => {
                        problems.extend(p);
                        format!(
                            "  {name}: generation {}, snapshot unreadable (see below)",
                            generation.generation
                        )
                    }
                    Ok(rows) if recorded_rows.is_some_and(|r| r != rows) => {
                        let file = generation.snapshot.clone().unwrap_or_default();
                        problems.push(state_error(StateError::Corrupt {
                            message: format!(
                                "the snapshot of sync `{name}` holds {rows} row(s), but generation {} was committed with {}: `{}`",
                                generation.generation,
                                recorded_rows.unwrap_or_default(),
                                file.display()
                            ),
                            file,
                        }));
                        format!(
                            "  {name}: generation {}, snapshot inconsistent (see below)",
                            generation.generation
                        )
                    }
                    Ok(rows) => {
                        let pending = state.pending_rows(name).map(|p| p.len()).unwrap_or(0);
                        let crashed = state.unfinished_runs(name).map(|r| r.len()).unwrap_or(0);
                        let lock = match state.lock_sync(name) {
                            Ok(_) => "unlocked".to_string(),
                            Err(StateError::Locked { holder, .. }) => {
                                format!("locked by {holder}")
                            }
                            Err(e) => e.to_string(),
                        };
                        format!(
                            "  {name}: generation {}, {rows} row(s) in the snapshot, {pending} pending, {crashed} interrupted run(s) to recover, {lock}",
                            generation.generation
                        )
                    }
                }
            }
        };
        views::out(&format!("{line}\n"));
    }
    match state.sizes() {
        Ok(sizes) => views::out(&size_lines(&sizes, !local)),
        Err(e) => problems.push(state_error(e)),
    }
    if problems.is_empty() {
        views::out("The state is consistent.\n");
        Ok(0)
    } else {
        views::diagnostics(&problems, dir);
        Ok(1)
    }
}

/// The state's size by part, for `engine state check`.
fn size_lines(sizes: &engine_state::StateSizes, shared: bool) -> String {
    let (database, snapshots) = if shared {
        (
            "PostgreSQL schema (run history, journal, pending rows, snapshots)",
            "current snapshots cached here",
        )
    } else {
        (
            "database (run history, journal, pending rows)",
            "current snapshots",
        )
    };
    let parts = [
        (database, sizes.database),
        (snapshots, sizes.snapshots),
        ("older snapshots and leftovers", sizes.old_snapshots),
        ("plans of runs in history", sizes.run_plans),
        ("change files of interrupted runs", sizes.change_files),
        ("scratch files", sizes.scratch),
        ("change files kept by saved plans", sizes.kept_plans),
    ];
    let mut out = format!("size: {} in all\n", HumanBytes(sizes.total()));
    for (what, bytes) in parts {
        out.push_str(&format!(
            "  {:>10}  {what}\n",
            HumanBytes(bytes).to_string()
        ));
    }
    out
}

/// Prunes the state by its retention (see `engine_sync::gc`), or says what would go.
fn gc(dir: &Path, dry_run: bool) -> Result<u8, Failure> {
    let (project, _) = engine_sync::load_project(dir)?;
    let pruned = engine_sync::gc(&project, dry_run)?;
    if !pruned.failed.is_empty() {
        let problems: Vec<engine_diag::Diagnostic> = pruned
            .failed
            .iter()
            .map(|(path, why)| {
                engine_diag::Diagnostic::error(
                    "state::prune",
                    format!("cannot remove `{}`: {why}", path.display()),
                )
                .note("nothing refers to it any more, so nothing is lost; the next `engine state gc` tries again")
                .hint("check the permissions of the state directory (it must be writable)")
            })
            .collect();
        views::diagnostics(&problems, dir);
        return Ok(1);
    }
    let verb = if dry_run { "Would remove" } else { "Removed" };
    if pruned.is_empty() {
        views::out("Nothing to prune: the state holds only what it needs.\n");
        return Ok(0);
    }
    let mut out = format!(
        "{verb} {} run(s) from history, {} journal row(s) and {} file(s); {} {}.\n",
        pruned.runs,
        pruned.journal_rows,
        pruned.files.len(),
        HumanBytes(pruned.bytes()),
        if dry_run { "would be freed" } else { "freed" }
    );
    for (path, bytes) in &pruned.files {
        let shown = path.strip_prefix(&project.root).unwrap_or(path);
        out.push_str(&format!(
            "  {:>10}  {}\n",
            HumanBytes(*bytes).to_string(),
            shown.display()
        ));
    }
    if pruned.database_bytes > 0 {
        out.push_str(&format!(
            "  {:>10}  free pages of state.db\n",
            HumanBytes(pruned.database_bytes).to_string()
        ));
    }
    if dry_run {
        out.push_str("Nothing was changed. Run `engine state gc` to remove them.\n");
    }
    views::out(&out);
    Ok(0)
}

/// Moves the state between backends (see `engine_sync::migrate_state`).
fn migrate(dir: &Path, to: MigrateTarget) -> Result<u8, Failure> {
    let (project, _) = engine_sync::load_project(dir)?;
    let to = match to {
        MigrateTarget::Postgres => engine_sync::MigrateTo::Postgres,
        MigrateTarget::Local => engine_sync::MigrateTo::Local,
    };
    let migrated = engine_sync::migrate_state(&project, to)?;
    let moved = &migrated.moved;
    let next = match to {
        engine_sync::MigrateTo::Postgres => {
            "`engine.yaml` names the PostgreSQL backend, so the next command uses it"
        }
        engine_sync::MigrateTo::Local => {
            "set `backend: local` under `state:` in `engine.yaml` (or remove `backend:`) to use it"
        }
    };
    views::out(&format!(
        "Moved the state from {} to {}: {} sync(s) with their snapshots, {} run(s), {} journal row(s), {} pending row(s).\n{next}; the source was left as it was.\n",
        migrated.from, migrated.to, moved.syncs, moved.runs, moved.journal_rows, moved.pending_rows
    ));
    Ok(0)
}

/// Rebuilds one sync's snapshot from the destination's records and shows what the next apply
/// would do against it; commits it with `--apply`.
async fn rebuild(dir: &Path, sync_name: &str, apply: bool) -> Result<u8, Failure> {
    let (project, _) = engine_sync::load_project(dir)?;
    let reporter = CliReporter::new(project.root.clone());
    let rebuilt =
        engine_sync::rebuild(&Registry::default(), &project, sync_name, apply, &reporter).await?;
    let object = project
        .sync(sync_name)
        .map(|s| s.object.value.clone())
        .unwrap_or_default();
    views::out(&format!(
        "Rebuilt sync `{sync_name}` from the destination: {} of {} model row(s) have a record in `{object}`; {} have none yet.\n\n",
        rebuilt.found,
        rebuilt.rows,
        rebuilt.rows - rebuilt.found
    ));
    views::out("With the rebuilt snapshot, the next `engine apply` would do this:\n\n");
    views::out(&render_human(&rebuilt.preview, HumanOptions::default()));
    if rebuilt.committed {
        views::out(&format!(
            "\nCommitted the rebuilt snapshot of sync `{sync_name}`; run `engine plan` to review the next apply.\n"
        ));
    } else {
        views::out(&format!(
            "\nNothing was changed. Run `engine state rebuild --sync {sync_name} --apply` to commit the rebuilt snapshot.\n"
        ));
    }
    Ok(0)
}
