//! `engine apply [PLAN]`: lock, recover crashed runs, check the plan is fresh and within its
//! guards, execute, fold the results into the next snapshot, commit.

use engine_diag::Diagnostic;
use engine_diff::fold_snapshot;
use engine_executor::execute;
use engine_plan::{Action, HumanOptions, Plan, SyncPlan, render_human};
use engine_spec::Project;
use engine_state::{Commit, LocalState, RowState, RunCounts, RunStatus, StateStore};
use std::collections::HashMap;
use std::path::Path;

use crate::context::{self, Failure, PlanOptions, state_error};
use crate::views;

/// What `engine apply` was asked to do.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Apply even when guards are breached.
    pub override_guards: bool,
    /// Resend rows the destination rejected even when their data has not changed.
    pub retry_failed: bool,
}

pub async fn run(
    dir: &Path,
    plan_file: Option<&Path>,
    syncs: &[String],
    options: ApplyOptions,
) -> u8 {
    match apply(dir, plan_file, syncs, options).await {
        Ok(code) => code,
        Err(problems) => {
            views::diagnostics(&problems, dir);
            1
        }
    }
}

async fn apply(
    dir: &Path,
    plan_file: Option<&Path>,
    syncs: &[String],
    options: ApplyOptions,
) -> Result<u8, Failure> {
    let (project, _) = context::load_project(dir)?;
    let state = context::open_state(&project)?;
    let saved = match plan_file {
        None => None,
        Some(path) => Some(Plan::read(path).map_err(|e| {
            vec![
                Diagnostic::error("plan::unreadable", e.to_string())
                    .hint("make a plan with `engine plan --out FILE`"),
            ]
        })?),
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
        check_saved_plan(saved, &state, &project)?;
    }
    let names: Vec<String> = match &saved {
        Some(plan) => plan.syncs.iter().map(|s| s.sync.clone()).collect(),
        None => context::select_syncs(&project, syncs)?
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
        recover(&project, &state, name).await?;
    }

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
            let engine = context::model_engine(&project).await?;
            let work = context::WorkDir::new(&project, "apply")?;
            let mut plans = Vec::new();
            let mut problems = Vec::new();
            for name in &names {
                let Some(sync) = project.sync(name) else {
                    continue;
                };
                let plan_options = PlanOptions {
                    retry_failed: options.retry_failed,
                };
                match context::plan_one(&project, &engine, &state, sync, work.path(), plan_options)
                    .await
                {
                    Ok(plan) => plans.push(plan),
                    Err(p) => problems.extend(p),
                }
            }
            if !problems.is_empty() {
                return Err(problems);
            }
            let plan = crate::commands::plan::assemble(&project, &state, plans);
            views::out(&render_human(&plan, HumanOptions::default()));
            (plan.plan_id, plan.syncs)
        }
    };

    if !options.override_guards {
        let breaches: Vec<Diagnostic> = plans.iter().flat_map(guard_breaches).collect();
        if !breaches.is_empty() {
            return Err(breaches);
        }
    }

    let mut code = 0;
    for plan in plans.iter().filter(|p| !p.changes.is_empty()) {
        match apply_sync(&project, &state, plan, &plan_id).await? {
            SyncResult {
                failed: 0,
                fatal: None,
                ..
            } => {}
            _ => code = 1,
        }
    }
    if plans.iter().all(|p| p.changes.is_empty()) {
        views::out("Nothing to apply.\n");
    }
    // A held row is a row the destination does not hold as the model says: not a success.
    for plan in plans.iter().filter(|p| !p.held.is_empty()) {
        views::out(&format!(
            "sync `{}`: {} row(s) held back: the destination rejected their data and it has not changed; fix the data, or resend with `engine apply --retry-failed`.\n",
            plan.sync,
            plan.held.len()
        ));
        code = 1;
    }
    drop(locks);
    Ok(code)
}

fn guard_breaches(plan: &SyncPlan) -> Vec<Diagnostic> {
    plan.guards
        .iter()
        .filter(|g| g.breached)
        .map(|g| {
            let what = match g.guard.as_str() {
                "max_deletes" => format!("the plan removes {} rows, over `guards.max_deletes` = {}", g.actual, g.limit),
                _ => format!(
                    "the plan changes or removes {:.1}% of the {} synced rows, over `guards.max_change_ratio` = {}",
                    g.actual * 100.0,
                    plan.summary.previous_rows,
                    g.limit
                ),
            };
            Diagnostic::error("apply::guard", format!("sync `{}`: {what}; nothing was sent", plan.sync))
                .at_row(plan.sync.clone(), None, None)
                .hint("review the plan; if the change is intended, run `engine apply --override-guards`")
        })
        .collect()
}

/// Checks a saved plan before anything else uses it: its seal (any edit since `engine plan`
/// wrote it is refused), and that every sync it names is a valid name of this project.
fn check_saved_plan(plan: &Plan, state: &LocalState, project: &Project) -> Result<(), Failure> {
    if !plan.seal_holds(&state.plan_key()) {
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
            problems.push(context::unknown_plan_sync(&sync.sync));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Folds a crashed run's journal into the next generation. Rows whose batch was sent but
/// never answered are read back from the destination first (see [`crate::reconcile`]).
async fn recover(project: &Project, state: &LocalState, sync: &str) -> Result<(), Failure> {
    let fail = |e: engine_state::StateError| vec![state_error(e)];
    for run in state.unfinished_runs(sync).map_err(fail)? {
        let mut plan: SyncPlan = serde_json::from_slice(&state.run_plan(run.id).map_err(fail)?)
            .map_err(|e| {
                vec![Diagnostic::error(
                    "state::corrupt",
                    format!("the saved plan of run {} cannot be read: {e}", run.id),
                )]
            })?;
        let journal = state.journal(run.id).map_err(fail)?;
        let mut succeeded: HashMap<String, Option<String>> = journal
            .iter()
            .filter(|r| r.state == RowState::Succeeded)
            .map(|r| (r.key.clone(), r.destination_id.clone()))
            .collect();
        let unanswered: Vec<String> = journal
            .iter()
            .filter(|r| r.state == RowState::Sent)
            .map(|r| r.key.clone())
            .collect();
        let generation = state.generation(sync).map_err(fail)?;
        let mut reconciled = (0, 0);
        if !unanswered.is_empty() && generation.generation == run.base_generation {
            let (destination, _) = context::connect(project, sync)?;
            let found = crate::reconcile::unanswered_rows(&destination, &plan, &unanswered)
                .await
                .map_err(|d| {
                    vec![d.note(format!(
                        "run {} of sync `{sync}` stopped with a batch in flight; its rows must be read back before planning",
                        run.id
                    ))]
                })?;
            reconciled = (found.written, found.succeeded.len() - found.written);
            for change in plan.changes.iter_mut() {
                if let Some(values) = found.observed.get(&change.key) {
                    change.values = Some(values.clone());
                }
            }
            succeeded.extend(found.succeeded);
        }
        let rejected: Vec<&str> = journal
            .iter()
            .filter(|r| r.state == RowState::Rejected)
            .map(|r| r.key.as_str())
            .collect();
        let failed: Vec<(String, String)> = journal
            .iter()
            .filter(|r| matches!(r.state, RowState::Rejected | RowState::GaveUp))
            .map(|r| (r.key.clone(), r.message.clone().unwrap_or_default()))
            .collect();
        let counts = RunCounts {
            succeeded: succeeded.len() as u64,
            rejected: rejected.len() as u64,
            pending: journal
                .iter()
                .filter(|r| r.state != RowState::Succeeded && !succeeded.contains_key(&r.key))
                .count() as u64,
            ..run.counts
        };
        let message = "the apply stopped unexpectedly; its journal was folded into the state by the next apply";
        if generation.generation != run.base_generation {
            state
                .finish_run_without_commit(run.id, RunStatus::Recovered, counts, Some(message))
                .map_err(fail)?;
            continue;
        }
        let held = held_fingerprints(&plan, rejected.iter().copied());
        fold_and_commit(
            state,
            &plan,
            Outcome {
                run_id: run.id,
                status: RunStatus::Recovered,
                counts,
                message: Some(message),
                succeeded: &succeeded,
                failed: &failed,
                held: &held,
            },
        )?;
        views::status(&format!(
            "Recovered run {} of sync `{sync}`: {} written row(s) from its journal are now in the state{}; the rest is planned again.",
            run.id,
            succeeded.len() - reconciled.0 - reconciled.1,
            if unanswered.is_empty() {
                String::new()
            } else {
                format!(
                    "; of {} row(s) whose batch was never answered, {} were found written in the destination and {} were read back as the destination holds them",
                    unanswered.len(),
                    reconciled.0,
                    reconciled.1
                )
            }
        ));
    }
    Ok(())
}

/// The fingerprints of rejected rows' changes, so an unchanged row is not resent.
fn held_fingerprints<'k>(
    plan: &SyncPlan,
    rejected: impl Iterator<Item = &'k str>,
) -> Vec<(String, String)> {
    let changes: HashMap<&str, &engine_plan::RowChange> =
        plan.changes.iter().map(|c| (c.key.as_str(), c)).collect();
    rejected
        .filter_map(|key| changes.get(key).map(|c| (key.to_string(), c.fingerprint())))
        .collect()
}

/// How a run ended, for [`fold_and_commit`].
struct Outcome<'a> {
    run_id: i64,
    status: RunStatus,
    counts: RunCounts,
    message: Option<&'a str>,
    succeeded: &'a HashMap<String, Option<String>>,
    failed: &'a [(String, String)],
    held: &'a [(String, String)],
}

/// Folds a run's successes into the next snapshot and commits the generation, the run's end
/// and the pending rows. One path for finished and for recovered runs, so both give the same
/// state.
fn fold_and_commit(
    state: &LocalState,
    plan: &SyncPlan,
    outcome: Outcome<'_>,
) -> Result<(), Failure> {
    let fail = |e: engine_state::StateError| vec![state_error(e)];
    let generation = state.generation(&plan.sync).map_err(fail)?;
    let out = state
        .next_snapshot_path(&plan.sync, generation.generation)
        .map_err(fail)?;
    let folded = fold_snapshot(generation.snapshot.as_deref(), plan, outcome.succeeded, &out)
        .map_err(|e| {
            vec![Diagnostic::error(
                "state::error",
                format!("cannot write the snapshot of sync `{}`: {e}", plan.sync),
            )
            .hint("check free disk space and permissions of the state directory, then run `engine apply` again")]
        })?;
    let resolved: Vec<String> = outcome.succeeded.keys().cloned().collect();
    state
        .commit_generation(&Commit {
            sync: &plan.sync,
            base_generation: generation.generation,
            snapshot_rows: folded.rows,
            run_id: outcome.run_id,
            status: outcome.status,
            counts: outcome.counts,
            message: outcome.message,
            resolved: &resolved,
            failed: outcome.failed,
            held: outcome.held,
        })
        .map_err(fail)?;
    Ok(())
}

struct SyncResult {
    failed: usize,
    fatal: Option<Diagnostic>,
}

async fn apply_sync(
    project: &Project,
    state: &LocalState,
    plan: &SyncPlan,
    plan_id: &str,
) -> Result<SyncResult, Failure> {
    let fail = |e: engine_state::StateError| vec![state_error(e)];
    let (destination, options) = context::connect(project, &plan.sync)?;
    let counts = RunCounts {
        planned_create: plan.summary.create,
        planned_update: plan.summary.update,
        planned_remove: plan.summary.remove,
        ..RunCounts::default()
    };
    let plan_json = serde_json::to_vec(plan).unwrap_or_default();
    let run_id = state
        .begin_run(
            &plan.sync,
            plan_id,
            plan.base_generation,
            &plan_json,
            counts,
        )
        .map_err(fail)?;
    let report =
        execute(&destination, state, run_id, plan, &options)
            .await
            .map_err(|e| {
                vec![Diagnostic::error("state::journal", e.to_string()).hint(
                    "check the state directory is writable; run `engine apply` again to recover",
                )]
            })?;

    let status = match (&report.fatal, report.failed.is_empty()) {
        (Some(_), _) => RunStatus::Failed,
        (None, true) => RunStatus::Succeeded,
        (None, false) => RunStatus::Partial,
    };
    let message = report.fatal.as_ref().map(|d| d.message.clone());
    let held = held_fingerprints(plan, report.rejected.iter().map(String::as_str));
    if report.succeeded.is_empty() && report.fatal.is_some() {
        state
            .finish_run_without_commit(run_id, status, report.counts, message.as_deref())
            .map_err(fail)?;
    } else {
        fold_and_commit(
            state,
            plan,
            Outcome {
                run_id,
                status,
                counts: report.counts,
                message: message.as_deref(),
                succeeded: &report.succeeded,
                failed: &report.failed,
                held: &held,
            },
        )?;
    }

    let done = |action: Action| {
        plan.changes
            .iter()
            .filter(|c| c.action == action && report.succeeded.contains_key(&c.key))
            .count()
    };
    views::out(&format!(
        "sync `{}`: {} created/upserted, {} updated, {} removed, {} failed (run {run_id}).\n",
        plan.sync,
        done(Action::Create),
        done(Action::Update),
        done(Action::Remove),
        report.failed.len()
    ));
    if !report.failed.is_empty() {
        views::out(&format!(
            "  {} row(s) stay pending and are retried by the next apply; see `engine runs show {run_id}`.\n",
            report.failed.len()
        ));
    }
    if let Some(fatal) = &report.fatal {
        views::diagnostics(std::slice::from_ref(fatal), &project.root);
    }
    Ok(SyncResult {
        failed: report.failed.len(),
        fatal: report.fatal,
    })
}
