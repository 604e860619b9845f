//! `engine state rebuild`: a sync's snapshot rebuilt from the destination's records rather
//! than started over silently.
//!
//! The model is mapped, the destination's records are read by match value (batched), what
//! they hold is written as a candidate snapshot, and the plan the next apply would run against
//! it is returned for review; only when asked to commit does that snapshot become the sync's
//! next generation. A rebuild after the state database was lost starts a new lineage and keeps
//! the old snapshots aside, under `.engine/snapshots.before-rebuild-<time>/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use engine_diag::Diagnostic;
use engine_diff::{SnapshotWriter, SyncDiffInput, plan_sync};
use engine_mapping::SyncMapping;
use engine_spec::Project;
use engine_state::{Commit, RunCounts, RunStatus, State, StateError, StateStore};

use crate::events::{Event, Reporter};
use crate::recovery::records_by_match_value;
use crate::{Failure, Registry, WorkDir, model_engine, open_state, select_syncs, state_error};

/// What a rebuild found.
#[derive(Debug)]
pub struct Rebuilt {
    /// Model rows whose record exists in the destination.
    pub found: u64,
    /// Model rows in all.
    pub rows: u64,
    /// The plan the next apply would run against the rebuilt snapshot.
    pub preview: engine_plan::Plan,
    /// True when the rebuilt snapshot was committed as the sync's next generation.
    pub committed: bool,
    /// Holds the preview's change files while this lives.
    _scratch: WorkDir,
}

/// Rebuilds one sync's snapshot from the destination's records; commits it when `commit`.
pub async fn rebuild(
    registry: &Registry,
    project: &Project,
    sync_name: &str,
    commit: bool,
    reporter: &dyn Reporter,
) -> Result<Rebuilt, Failure> {
    let selected = select_syncs(project, &[sync_name.to_string()])?;
    let Some(sync) = selected.first().copied() else {
        return Err(vec![crate::unknown_plan_sync(sync_name)]);
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
    let engine = model_engine(project).await?;
    let work = WorkDir::new(project, "rebuild")?;

    // 1. The model's rows, mapped, as a first plan would see them.
    let schema = engine.schema(model).await.map_err(|d| vec![d])?;
    let mapping = SyncMapping::compile(sync, &model.primary_key, &schema)?;
    let connection = registry.connect(project, sync_name)?;
    let case_insensitive = connection.match_is_case_insensitive();
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
                    progress: &(),
                    stream_error: &|e| engine.stream_error(model, e),
                },
            )
            .await
        }
    };
    let first = plan_against(None, work.path().to_path_buf()).await?;
    let first_changes = first
        .changes
        .to_vec()
        .map_err(|e| vec![crate::commit::changes_unreadable(sync_name, &e)])?;

    // 2. The destination's records for those rows, by match value.
    let values: Vec<String> = first_changes
        .iter()
        .filter_map(|c| c.values.as_ref().and_then(|v| v.first().cloned().flatten()))
        .collect();
    let by_value = records_by_match_value(
        connection.as_ref(),
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
    for change in &first_changes {
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
    if commit {
        commit_rebuild(project, sync_name, &candidate, found, reporter)?;
    }
    Ok(Rebuilt {
        found,
        rows: first.changes.len() as u64,
        preview,
        committed: commit,
        _scratch: work,
    })
}

/// Makes the candidate snapshot the sync's next generation. A state whose database was lost
/// is started anew, with the old snapshots kept aside.
pub fn commit_rebuild(
    project: &Project,
    sync_name: &str,
    candidate: &Path,
    rows: u64,
    reporter: &dyn Reporter,
) -> Result<(), Failure> {
    let local = match &project.state_backend {
        engine_spec::StateBackend::Local => {
            engine_state::LocalState::open(&project.state_dir).map(State::Local)
        }
        // The shared state has no database file to lose beside its snapshots.
        engine_spec::StateBackend::Postgres(_) => Ok(open_state(project)?),
    };
    let state = match local {
        Ok(state) => state,
        Err(StateError::Corrupt { .. }) => {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
            let aside = project
                .state_dir
                .join(format!("snapshots.before-rebuild-{stamp}"));
            fs_err::rename(project.state_dir.join("snapshots"), &aside)
                .map_err(|e| io_failure(&aside, &e))?;
            reporter.report(Event::StateRestarted { aside: &aside });
            open_state(project)?
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
            held: &[],
            reconciled: &[],
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
