//! Planning: one sync's model diffed against its last snapshot, and the sealed plan document
//! of a project's selected syncs.

use std::collections::HashMap;
use std::path::Path;

use engine_diag::Diagnostic;
use engine_diff::{Pending, PlanProgress, PlanStage, SyncDiffInput, plan_sync};
use engine_mapping::SyncMapping;
use engine_models::ModelEngine;
use engine_plan::{FORMAT_VERSION, KeptPlans, Plan, SyncPlan};
use engine_spec::{Project, SyncSpec};
use engine_state::{State, StateStore};

use crate::events::{Event, Reporter};
use crate::{
    Failure, Registry, WorkDir, check_snapshot, model_engine, open_state, select_syncs, state_error,
};

/// How a plan treats rows that failed before.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// Plan rows the destination rejected again even when their data has not changed.
    pub retry_failed: bool,
}

/// A plan and the scratch directory holding its change files: they are readable while this
/// lives, and removed with it.
#[derive(Debug)]
pub struct ProjectPlan {
    /// The plan, sealed once [`ProjectPlan::save`] or [`ProjectPlan::seal`] has run.
    pub plan: Plan,
    /// The state's key, which seals the plan to this state.
    key: [u8; 32],
    /// Where a saved plan keeps its change files for an apply on this machine.
    kept: KeptPlans,
    _scratch: WorkDir,
}

impl ProjectPlan {
    /// Writes the plan to `path` as a saved plan, sealed with the state's key, in one pass
    /// over its changes (the plan's digest is set too), and keeps its change files in the
    /// state, so that applying the file here does not read its changes again.
    pub fn save(&mut self, path: &std::path::Path) -> std::io::Result<()> {
        self.plan.save_sealed(path, &self.key)?;
        if let Err(error) = self.kept.keep(&self.plan) {
            // Only a shortcut is lost: the apply reads the file in full.
            tracing::debug!(%error, "Could not keep the saved plan's change files.");
        }
        Ok(())
    }

    /// Seals the plan without saving it (for `--json`, which shows the digest).
    pub fn seal(&mut self) {
        self.plan.seal(&self.key);
    }
}

/// Plans the selected syncs of a project (all when `syncs` is empty) against the state's
/// current generations; [`ProjectPlan::save`] and [`ProjectPlan::seal`] seal it with the
/// state's key.
pub async fn plan_project(
    registry: &Registry,
    project: &Project,
    syncs: &[String],
    reporter: &dyn Reporter,
) -> Result<ProjectPlan, Failure> {
    plan_project_here(registry, project, syncs, reporter)
        .await
        .map_err(|failure| crate::disk_full::explain(&project.state_dir, failure))
}

async fn plan_project_here(
    registry: &Registry,
    project: &Project,
    syncs: &[String],
    reporter: &dyn Reporter,
) -> Result<ProjectPlan, Failure> {
    let selected = select_syncs(project, syncs)?;
    let engine = model_engine(project).await?;
    let state = open_state(project)?;
    let work = WorkDir::new(project, "plan")?;
    for sync in &selected {
        let name = &sync.name.value;
        if let Some(run) = state
            .unfinished_runs(name)
            .ok()
            .and_then(|runs| runs.into_iter().next())
        {
            reporter.report(Event::UnfinishedRun {
                sync: name,
                run_id: run.id,
            });
        }
    }
    let context = PlanContext {
        registry,
        project,
        engine: &engine,
        state: &state,
        work_dir: work.path(),
        reporter,
    };
    let plans = plan_each(&context, selected, PlanOptions::default(), true).await?;
    Ok(ProjectPlan {
        plan: assemble(project, &state, plans),
        key: state.plan_key(),
        kept: kept_plans(project),
        _scratch: work,
    })
}

/// Where this project's saved plans keep their change files: `<state>/plans/`.
pub(crate) fn kept_plans(project: &Project) -> KeptPlans {
    KeptPlans::new(project.state_dir.join("plans"))
}

/// Wraps sync plans into a plan document carrying the state's lineage, not sealed yet: only a
/// plan that is saved or shown as JSON needs its digest, and computing it reads every change.
pub fn assemble(project: &Project, state: &State, syncs: Vec<SyncPlan>) -> Plan {
    Plan {
        format_version: FORMAT_VERSION,
        plan_id: uuid::Uuid::new_v4().to_string(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        engine_version: env!("CARGO_PKG_VERSION").to_string(),
        project: project.name.clone(),
        lineage: state.lineage().to_string(),
        syncs,
        digest: String::new(),
    }
}

/// What planning one sync works with.
pub struct PlanContext<'a> {
    /// Where connectors are found.
    pub registry: &'a Registry,
    /// The project.
    pub project: &'a Project,
    /// Its query engine.
    pub engine: &'a ModelEngine,
    /// Its state.
    pub state: &'a State,
    /// Where change files are written (they live as long as this directory).
    pub work_dir: &'a Path,
    /// Told what planning is doing.
    pub reporter: &'a dyn Reporter,
}

/// Plans one sync against the state's current generation.
pub async fn plan_one(
    cx: &PlanContext<'_>,
    sync: &SyncSpec,
    options: PlanOptions,
) -> Result<SyncPlan, Failure> {
    let PlanContext {
        registry,
        project,
        engine,
        state,
        work_dir,
        reporter,
    } = *cx;
    registry.check(project, sync)?;
    let Some(model) = project.model(&sync.model.value) else {
        return Err(vec![
            Diagnostic::error(
                "spec::unknown_model",
                format!(
                    "sync `{}` names unknown model `{}`",
                    sync.name.value, sync.model.value
                ),
            )
            .at(sync.model.span.clone()),
        ]);
    };
    let schema = engine.schema(model).await.map_err(|d| vec![d])?;
    let mut mapping = SyncMapping::compile(sync, &model.primary_key, &schema)?;
    let connection = registry.connect(project, &sync.name.value)?;
    let kinds = connection.check_mapping(sync, &mapping).await?;
    mapping.set_value_kinds(kinds);
    let generation = state
        .generation(&sync.name.value)
        .map_err(|e| vec![state_error(e)])?;
    if let Some(snapshot) = &generation.snapshot {
        check_snapshot(&sync.name.value, snapshot)?;
    }
    let pending: HashMap<String, Pending> = state
        .pending_rows(&sync.name.value)
        .map_err(|e| vec![state_error(e)])?
        .into_iter()
        .map(|p| {
            (
                p.key,
                Pending {
                    message: p.message,
                    held_fingerprint: p.held_fingerprint,
                },
            )
        })
        .collect();
    let stream = engine.execute(model).await.map_err(|d| vec![d])?;
    let diff_engine =
        engine_models::ModelEngine::empty(&diff_options(project)).map_err(|d| vec![d])?;
    plan_sync(
        diff_engine.context(),
        stream,
        SyncDiffInput {
            sync,
            mapping: &mapping,
            base_generation: generation.generation,
            previous_snapshot: generation.snapshot,
            pending,
            retry_failed: options.retry_failed,
            match_case_insensitive: connection.match_is_case_insensitive(),
            work_dir,
            progress: &Forward {
                sync: &sync.name.value,
                reporter,
            },
            stream_error: &|e| engine.stream_error(model, e),
        },
    )
    .await
}

/// Plans each of `syncs` in turn; every sync's problems are gathered before failing.
/// `announce` reports [`Event::PlanningSync`] before each (`engine plan` does; an apply
/// reports its plan once made).
pub(crate) async fn plan_each<'p>(
    context: &PlanContext<'_>,
    syncs: impl IntoIterator<Item = &'p SyncSpec>,
    options: PlanOptions,
    announce: bool,
) -> Result<Vec<SyncPlan>, Failure> {
    let mut plans = Vec::new();
    let mut problems = Vec::new();
    for sync in syncs {
        if announce {
            context.reporter.report(Event::PlanningSync {
                sync: &sync.name.value,
            });
        }
        match plan_one(context, sync, options).await {
            Ok(plan) => plans.push(plan),
            Err(p) => problems.extend(p),
        }
    }
    if problems.is_empty() {
        Ok(plans)
    } else {
        Err(problems)
    }
}

/// The diff's own memory bound: its sorts and aggregates spill to disk past it, so a plan's
/// memory does not grow with the sync's rows. `ENGINE_DIFF_MEMORY_LIMIT` (bytes) sets it,
/// default [`DEFAULT_DIFF_MEMORY_LIMIT`], never more than the model's `ENGINE_MEMORY_LIMIT`.
fn diff_options(project: &Project) -> engine_models::EngineOptions {
    let model = crate::engine_options(project);
    let limit = std::env::var("ENGINE_DIFF_MEMORY_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_DIFF_MEMORY_LIMIT);
    engine_models::EngineOptions {
        memory_limit: limit.min(model.memory_limit),
        spill_fairly: true,
        ..model
    }
}

/// The diff's memory bound when `ENGINE_DIFF_MEMORY_LIMIT` is not set: 384 MiB.
pub const DEFAULT_DIFF_MEMORY_LIMIT: usize = 384 * 1024 * 1024;

/// Passes the planner's stages on as events.
struct Forward<'a> {
    sync: &'a str,
    reporter: &'a dyn Reporter,
}

impl PlanProgress for Forward<'_> {
    fn stage(&self, stage: PlanStage) {
        self.reporter.report(Event::PlanStage {
            sync: self.sync,
            stage,
        });
    }
}
