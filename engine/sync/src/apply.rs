//! Applying: lock the syncs, recover crashed runs, check that a saved plan is sealed and
//! fresh and within its guards, execute each sync's changes, fold the results into the next
//! snapshot and commit.

use std::path::Path;

use engine_diag::Diagnostic;
use engine_executor::execute;
use engine_plan::{Plan, SyncPlan, WriteMode};
use engine_spec::Project;
use engine_state::{RunCounts, RunStatus, State, StateStore};

use crate::commit::{Outcome, fold_and_commit, held_fingerprints};
use crate::events::{Event, Reporter};
use crate::recovery::recover;
use crate::registry::Dispatch;
use crate::{
    Failure, PlanContext, PlanOptions, Registry, WorkDir, assemble, guard_breaches, model_engine,
    open_state, select_syncs, state_error, unknown_plan_sync,
};

/// What `engine apply` was asked to do.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Apply even when guards are breached.
    pub override_guards: bool,
    /// Resend rows the destination rejected even when their data has not changed.
    pub retry_failed: bool,
    /// How the executor shows progress on stderr.
    pub progress: engine_executor::ProgressMode,
}

/// How one sync's apply went.
#[derive(Debug)]
pub struct SyncApplied {
    /// The sync.
    pub sync: String,
    /// Its run in the run history.
    pub run_id: i64,
    /// Rows created (upserted).
    pub created: usize,
    /// Rows updated (in `mode: update`, new rows too: they update the record they match).
    pub updated: usize,
    /// Rows removed (per `on_remove`).
    pub removed: usize,
    /// Rows done without a write: their record existed and was left alone (`mode: insert`).
    pub skipped: usize,
    /// Rows that failed and stay pending.
    pub failed: usize,
    /// Why the run stopped early, if it did.
    pub fatal: Option<Diagnostic>,
}

/// What an apply did.
#[derive(Debug, Default)]
pub struct ApplyOutcome {
    /// One entry per sync that had changes, in order.
    pub applied: Vec<SyncApplied>,
    /// True when no sync had anything to send.
    pub nothing_to_apply: bool,
    /// Syncs with rows held back (rejected before with the same data), and how many.
    pub held: Vec<(String, usize)>,
    /// Syncs with rows left out for values that do not fit their properties, and how many.
    pub left_out: Vec<(String, usize)>,
}

impl ApplyOutcome {
    /// True when every row is in the destination as the model says: nothing failed, nothing
    /// stopped, nothing held back, nothing left out for a value that does not fit.
    pub fn is_success(&self) -> bool {
        self.applied
            .iter()
            .all(|s| s.failed == 0 && s.fatal.is_none())
            && self.held.is_empty()
            && self.left_out.is_empty()
    }
}

/// Applies a saved plan (`plan_file`), or plans the selected syncs (all when `syncs` is empty)
/// and applies that plan.
pub async fn apply(
    registry: &Registry,
    project: &Project,
    plan_file: Option<&Path>,
    syncs: &[String],
    options: ApplyOptions,
    reporter: &dyn Reporter,
) -> Result<ApplyOutcome, Failure> {
    apply_here(registry, project, plan_file, syncs, options, reporter)
        .await
        .map_err(|failure| crate::disk_full::explain(&project.state_dir, failure))
}

async fn apply_here(
    registry: &Registry,
    project: &Project,
    plan_file: Option<&Path>,
    syncs: &[String],
    options: ApplyOptions,
    reporter: &dyn Reporter,
) -> Result<ApplyOutcome, Failure> {
    let state = open_state(project)?;
    // A saved plan's changes are read into change files here; a run moves its own out to keep
    // them for crash recovery, the rest go with this directory.
    let saved_dir = WorkDir::new(project, "saved-plan")?;
    // A plan made here writes its change files here; they live until the apply ends.
    let work = WorkDir::new(project, "apply")?;
    let kept = crate::planning::kept_plans(project);
    let (saved, sealed) = match plan_file {
        None => (None, false),
        Some(path) => {
            let unreadable = |e: engine_plan::PlanFileError| {
                vec![
                    Diagnostic::error("plan::unreadable", e.to_string())
                        .hint("make a plan with `engine plan --out FILE`"),
                ]
            };
            // A plan saved here kept its change files: only its seal and header are read.
            let (plan, sealed) = match kept.read(path, &state.plan_key()).map_err(unreadable)? {
                Some(plan) => {
                    tracing::debug!(
                        "The saved plan's changes were kept here; its lines were only counted."
                    );
                    (plan, true)
                }
                None => Plan::read_sealed(path, saved_dir.path(), &state.plan_key())
                    .map_err(unreadable)?,
            };
            (Some(plan), sealed)
        }
    };
    if let Some(saved) = &saved
        && saved.lineage != state.lineage()
    {
        return Err(vec![Diagnostic::error(
            "plan::stale",
            format!("the saved plan was made against another state (lineage {}, this project's state is {})", saved.lineage, state.lineage()),
        )
        .hint("make a new plan here with `engine plan --out FILE`, then apply that file")]);
    }
    if let Some(saved) = &saved {
        check_saved_plan(saved, sealed, project)?;
    }
    let names: Vec<String> = match &saved {
        Some(plan) => plan.syncs.iter().map(|s| s.sync.clone()).collect(),
        None => select_syncs(project, syncs)?
            .into_iter()
            .map(|s| s.name.value.clone())
            .collect(),
    };

    // Lock every sync first, then repair whatever a crashed apply left.
    let mut locks = Vec::new();
    for name in &names {
        locks.push(state.lock_sync(name).map_err(|e| vec![state_error(e)])?);
    }
    for name in &names {
        recover(registry, project, &state, name, reporter).await?;
    }

    // The saved plan's kept files (if it had any) are taken by its runs from here on.
    let consumed = saved.as_ref().map(|plan| plan.digest.clone());
    let (plan_id, plans): (String, Vec<SyncPlan>) = match saved {
        Some(plan) => {
            let mut stale = Vec::new();
            for sync in &plan.syncs {
                let current = state
                    .generation(&sync.sync)
                    .map_err(|e| vec![state_error(e)])?
                    .generation;
                if current != sync.base_generation {
                    stale.push(Diagnostic::error(
                        "plan::stale",
                        format!(
                            "the saved plan is stale: it was made against generation {} of sync `{}`, and the state is now at generation {current}",
                            sync.base_generation, sync.sync
                        ),
                    )
                    .note("an apply ran (or a crashed one was recovered) after this plan was made, so its diff no longer holds")
                    .hint("run `engine plan --out FILE` again, review it, then `engine apply FILE`"));
                }
            }
            if !stale.is_empty() {
                return Err(stale);
            }
            (plan.plan_id, plan.syncs)
        }
        None => {
            let engine = model_engine(project).await?;
            let selected = names.iter().filter_map(|name| project.sync(name));
            let context = PlanContext {
                registry,
                project,
                engine: &engine,
                state: &state,
                work_dir: work.path(),
                reporter,
            };
            let plan_options = PlanOptions {
                retry_failed: options.retry_failed,
            };
            let plans = crate::planning::plan_each(&context, selected, plan_options, false).await?;
            let plan = assemble(project, &state, plans);
            reporter.report(Event::Planned(&plan));
            (plan.plan_id, plan.syncs)
        }
    };

    if !options.override_guards {
        let breaches: Vec<Diagnostic> = plans.iter().flat_map(guard_breaches).collect();
        if !breaches.is_empty() {
            return Err(breaches);
        }
    }

    let mut outcome = ApplyOutcome::default();
    for plan in plans.iter().filter(|p| !p.changes.is_empty()) {
        let applied =
            apply_sync(registry, project, &state, plan, &plan_id, options, reporter).await?;
        reporter.report(Event::Applied(&applied));
        outcome.applied.push(applied);
    }
    if let Some(digest) = consumed {
        kept.forget(&digest);
    }
    outcome.nothing_to_apply = plans.iter().all(|p| p.changes.is_empty());
    // A held row is a row the destination does not hold as the model says: not a success.
    outcome.held = plans
        .iter()
        .filter(|p| !p.held.is_empty())
        .map(|p| (p.sync.clone(), p.held.len()))
        .collect();
    // So is a row left out because a value does not fit: the data must change.
    outcome.left_out = plans
        .iter()
        .map(|p| {
            (
                p.sync.clone(),
                p.skipped.iter().filter(|r| r.invalid_value).count(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    drop(locks);
    Ok(outcome)
}
/// Checks a saved plan before anything else uses it: its seal (`sealed`: any edit since
/// `engine plan` wrote it is refused), and that every sync it names is a valid name of this
/// project.
fn check_saved_plan(plan: &Plan, sealed: bool, project: &Project) -> Result<(), Failure> {
    if !sealed {
        return Err(vec![Diagnostic::error(
            "plan::tampered",
            "the saved plan was changed after `engine plan` wrote it (its digest does not match its content), so it is not applied",
        )
        .note("a saved plan is applied exactly as planned or not at all; any edit of a value, row, property or sync name breaks its digest")
        .hint("make a new plan with `engine plan --out FILE`, review it, then `engine apply FILE`")]);
    }
    let mut problems = Vec::new();
    for sync in &plan.syncs {
        if let Err(e) = engine_state::check_name(&sync.sync) {
            problems.push(state_error(e));
        } else if project.sync(&sync.sync).is_none() {
            problems.push(unknown_plan_sync(&sync.sync));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

async fn apply_sync(
    registry: &Registry,
    project: &Project,
    state: &State,
    plan: &SyncPlan,
    plan_id: &str,
    apply_options: ApplyOptions,
    reporter: &dyn Reporter,
) -> Result<SyncApplied, Failure> {
    let fail = |e: engine_state::StateError| vec![state_error(e)];
    let destination = Dispatch(registry.connect(project, &plan.sync)?);
    let lookups = engine_state::LookupStore::open(&project.state_dir, crate::lookups::LOOKUP_TTL)
        .map_err(|e| vec![state_error(e)])?;
    destination
        .0
        .use_lookup_cache(std::sync::Arc::new(crate::lookups::StateLookups(lookups)));
    let counts = RunCounts {
        planned_create: plan.summary.create,
        planned_update: plan.summary.update,
        planned_remove: plan.summary.remove,
        ..RunCounts::default()
    };
    let plan = &crate::run_plan::persist(&project.state_dir, plan_id, plan)?;
    let plan_json = crate::run_plan::encode(plan);
    reporter.report(Event::ApplyingSync {
        sync: &plan.sync,
        rows: plan.changes.len(),
    });
    let run_id = state
        .begin_run(
            &plan.sync,
            plan_id,
            plan.base_generation,
            &plan_json,
            counts,
        )
        .map_err(fail)?;
    // A shared state keeps the change files too, so any machine can recover this run.
    if let Err(e) = state.keep_run_files(run_id, plan.changes.files()) {
        let message = e.to_string();
        state
            .finish_run_without_commit(run_id, RunStatus::Failed, counts, Some(&message))
            .map_err(fail)?;
        return Err(fail(e));
    }
    // The connection sees the plan before its batch size is read: a Salesforce sync above its
    // `bulk_threshold` sends through Bulk API jobs, journaled under the run's id.
    if let Err(diagnostic) = destination.0.begin_apply(plan, run_id, state).await {
        let message = diagnostic.message.clone();
        state
            .finish_run_without_commit(run_id, RunStatus::Failed, counts, Some(&message))
            .map_err(fail)?;
        return Err(vec![diagnostic]);
    }
    let options = engine_executor::ExecutorOptions {
        progress: apply_options.progress,
        ..destination.0.executor_options()
    };
    let report =
        execute(&destination, state, run_id, plan, &options)
            .await
            .map_err(|e| {
                vec![Diagnostic::error("state::journal", e.to_string()).hint(
                    "check the state directory is writable; run `engine apply` again to recover",
                )]
            })?;

    let counts = report.counts;
    let status = match (&report.fatal, counts.rejected + counts.pending == 0) {
        (Some(_), _) => RunStatus::Failed,
        (None, true) => RunStatus::Succeeded,
        (None, false) => RunStatus::Partial,
    };
    let message = report.fatal.as_ref().map(|d| d.message.clone());
    if counts.succeeded == 0 && report.fatal.is_some() {
        state
            .finish_run_without_commit(run_id, status, counts, message.as_deref())
            .map_err(fail)?;
    } else {
        let held = held_fingerprints(state, plan, run_id)?;
        fold_and_commit(
            project,
            state,
            plan,
            Outcome {
                run_id,
                status,
                counts,
                message: message.as_deref(),
                held: &held,
                reconciled: &[],
                observed: &std::collections::HashMap::new(),
            },
        )
        .await?;
    }

    // Committed: nothing needs the run's change files (or its Bulk jobs' ids) any more.
    crate::run_plan::discard(plan);
    destination.0.end_apply();
    // What the run wrote is in the snapshot, and its journal rows can go.
    crate::gc::prune_after_commit(project, state, &plan.sync);
    let written = report.written;
    // In update mode a new row updates the record it matched: nothing is created.
    let (created, updated) = match plan.mode {
        WriteMode::Upsert => (written.create, written.update),
        WriteMode::Update => (0, written.create + written.update),
        // Changed rows send nothing in insert mode.
        WriteMode::Insert => (written.create, 0),
    };
    Ok(SyncApplied {
        sync: plan.sync.clone(),
        run_id,
        created: created as usize,
        updated: updated as usize,
        removed: written.remove as usize,
        skipped: written.skipped as usize,
        failed: (counts.rejected + counts.pending) as usize,
        fatal: report.fatal,
    })
}
