//! `engine state check` and `engine state rebuild --sync NAME`: name state damage, and repair
//! it from the destination rather than start over silently.
//!
//! `check` only reads. `rebuild` maps the model, reads the destination's records by match value
//! (batched), writes what it found as a candidate snapshot and shows the plan the next apply
//! would run against it; only with `--apply` does that snapshot become the sync's next
//! generation. A rebuild after the state database was lost starts a new lineage and keeps the
//! old snapshots aside, under `.engine/snapshots.before-rebuild-<time>/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use engine_diag::Diagnostic;
use engine_diff::{SnapshotWriter, SyncDiffInput, plan_sync};
use engine_mapping::SyncMapping;
use engine_plan::{HumanOptions, render_human};
use engine_spec::Project;
use engine_state::{Commit, LocalState, RunCounts, RunStatus, StateError, StateStore};

use crate::args::StateCommand;
use crate::context::{self, Failure, state_error};
use crate::views;

pub async fn run(dir: &Path, command: StateCommand) -> u8 {
    let result = match command {
        StateCommand::Check => check(dir),
        StateCommand::Rebuild { sync, apply } => rebuild(dir, &sync, apply).await,
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
    let (project, _) = context::load_project(dir)?;
    let db = project.state_dir.join("state.db");
    if !db.exists() && !project.state_dir.join("snapshots").exists() {
        views::out("No state yet: nothing has been planned or applied in this project.\n");
        return Ok(0);
    }
    let state = context::open_state(&project)?;
    let mut problems = Vec::new();
    views::out(&format!(
        "state `{}` (lineage {})\n",
        project.state_dir.display(),
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
                    Some(snapshot) => context::check_snapshot(name, snapshot)
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
    if problems.is_empty() {
        views::out("The state is consistent.\n");
        Ok(0)
    } else {
        views::diagnostics(&problems, dir);
        Ok(1)
    }
}

/// Rebuilds one sync's snapshot from the destination's records.
async fn rebuild(dir: &Path, sync_name: &str, apply: bool) -> Result<u8, Failure> {
    let (project, _) = context::load_project(dir)?;
    let selected = context::select_syncs(&project, &[sync_name.to_string()])?;
    let Some(sync) = selected.first().copied() else {
        return Ok(1);
    };
    let Some(model) = project.model(&sync.model.value) else {
        return Err(vec![Diagnostic::error(
            "spec::unknown_model",
            format!(
                "sync `{sync_name}` names unknown model `{}`",
                sync.model.value
            ),
        )]);
    };
    let engine = context::model_engine(&project).await?;
    let work = context::WorkDir::new(&project, "rebuild")?;

    // 1. The model's rows, mapped, as a first plan would see them.
    let schema = engine.schema(model).await.map_err(|d| vec![d])?;
    let mapping = SyncMapping::compile(sync, &model.primary_key, &schema)?;
    let case_insensitive =
        connector_hubspot::match_is_case_insensitive(&sync.match_on.property.value);
    // The model planned against a snapshot (none: every row is a create), nothing held back.
    let plan_against = |previous: Option<PathBuf>, work_dir: PathBuf| {
        let (engine, mapping) = (&engine, &mapping);
        async move {
            plan_sync(
                engine.context(),
                engine.execute(model).await.map_err(|d| vec![d])?,
                SyncDiffInput {
                    sync,
                    mapping,
                    base_generation: 0,
                    previous_snapshot: previous,
                    pending: HashMap::new(),
                    retry_failed: true,
                    match_case_insensitive: case_insensitive,
                    work_dir: &work_dir,
                },
            )
            .await
        }
    };
    let first = plan_against(None, work.path().to_path_buf()).await?;

    // 2. The destination's records for those rows, by match value.
    let (destination, _) = context::connect(&project, sync_name)?;
    let values: Vec<String> = first
        .changes
        .iter()
        .filter_map(|c| c.values.as_ref().and_then(|v| v.first().cloned().flatten()))
        .collect();
    let by_value = crate::reconcile::records_by_match_value(
        &destination,
        &values,
        &first.properties,
        &first.match_property,
        case_insensitive,
    )
    .await
    .map_err(|d| vec![d])?;

    // 3. The candidate snapshot: every model row whose record exists, with what it holds.
    let candidate = work.path().join("rebuilt.parquet");
    let mut writer = SnapshotWriter::create(&candidate, &first.properties, true)
        .map_err(|e| io_failure(&candidate, &e))?;
    let mut found = 0u64;
    for change in &first.changes {
        let Some(value) = change
            .values
            .as_ref()
            .and_then(|v| v.first().cloned().flatten())
        else {
            continue;
        };
        let Some(record) = by_value.get(&engine_plan::match_key(&value, case_insensitive)) else {
            continue;
        };
        let held: Vec<Option<&str>> = first
            .properties
            .iter()
            .map(|p| record.properties.get(p).map(String::as_str))
            .collect();
        writer
            .push(&change.key, Some(&record.id), &held)
            .map_err(|e| io_failure(&candidate, &e))?;
        found += 1;
    }
    writer.finish().map_err(|e| io_failure(&candidate, &e))?;

    // 4. What the next apply would do against it.
    let after = plan_against(Some(candidate.clone()), work.path().join("after")).await?;
    views::out(&format!(
        "Rebuilt sync `{sync_name}` from the destination: {found} of {} model row(s) have a record in `{}`; {} have none yet.\n\n",
        first.changes.len(),
        sync.object.value,
        first.changes.len() as u64 - found
    ));
    let preview = engine_plan::Plan {
        format_version: engine_plan::FORMAT_VERSION,
        plan_id: String::new(),
        created_at: String::new(),
        engine_version: env!("CARGO_PKG_VERSION").to_string(),
        project: project.name.clone(),
        lineage: String::new(),
        syncs: vec![after],
        digest: String::new(),
    };
    views::out("With the rebuilt snapshot, the next `engine apply` would do this:\n\n");
    views::out(&render_human(&preview, HumanOptions::default()));
    if !apply {
        views::out(&format!(
            "\nNothing was changed. Run `engine state rebuild --sync {sync_name} --apply` to commit the rebuilt snapshot.\n"
        ));
        return Ok(0);
    }
    commit_rebuild(&project, sync_name, &candidate, found)?;
    views::out(&format!(
        "\nCommitted the rebuilt snapshot of sync `{sync_name}`; run `engine plan` to review the next apply.\n"
    ));
    Ok(0)
}

/// Makes the candidate snapshot the sync's next generation. A state whose database was lost
/// is started anew, with the old snapshots kept aside.
fn commit_rebuild(
    project: &Project,
    sync_name: &str,
    candidate: &Path,
    rows: u64,
) -> Result<(), Failure> {
    let state = match LocalState::open(&project.state_dir) {
        Ok(state) => state,
        Err(StateError::Corrupt { .. }) => {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
            let aside = project
                .state_dir
                .join(format!("snapshots.before-rebuild-{stamp}"));
            fs_err::rename(project.state_dir.join("snapshots"), &aside)
                .map_err(|e| io_failure(&aside, &e))?;
            views::status(&format!(
                "The state database was lost: starting a new state; the old snapshots are kept in `{}`.",
                aside.display()
            ));
            context::open_state(project)?
        }
        Err(e) => return Err(vec![state_error(e)]),
    };
    let fail = |e: StateError| vec![state_error(e)];
    let _lock = state.lock_sync(sync_name).map_err(fail)?;
    let base = state.recorded_generation(sync_name).map_err(fail)?;
    let run_id = state
        .begin_run(
            sync_name,
            "rebuild",
            base,
            b"{\"rebuild\":true}",
            RunCounts::default(),
        )
        .map_err(fail)?;
    let out = state.next_snapshot_path(sync_name, base).map_err(fail)?;
    fs_err::copy(candidate, &out).map_err(|e| io_failure(&out, &e))?;
    if let Ok(file) = fs_err::File::open(&out) {
        let _ = file.sync_all();
    }
    state
        .commit_generation(&Commit {
            sync: sync_name,
            base_generation: base,
            snapshot_rows: rows,
            run_id,
            status: RunStatus::Succeeded,
            counts: RunCounts {
                succeeded: rows,
                ..RunCounts::default()
            },
            message: Some("state rebuilt from the destination's records"),
            resolved: &[],
            failed: &[],
            held: &[],
        })
        .map_err(fail)?;
    Ok(())
}

fn io_failure(path: &Path, error: &dyn std::fmt::Display) -> Vec<Diagnostic> {
    vec![
        Diagnostic::error(
            "state::error",
            format!("cannot write `{}`: {error}", path.display()),
        )
        .hint("check free disk space and permissions of the state directory"),
    ]
}
