//! `engine plan`: what apply would do, without writing to any destination.

use std::path::Path;

use engine_diag::Diagnostic;
use engine_plan::{FORMAT_VERSION, HumanOptions, Plan, SyncPlan, render_human};
use engine_spec::Project;
use engine_state::{LocalState, StateStore};

use crate::context::{self, Failure};
use crate::views;

pub async fn run(
    dir: &Path,
    syncs: &[String],
    out: Option<&Path>,
    json: bool,
    detailed_exitcode: bool,
    max_rows: usize,
) -> u8 {
    let fail = |problems: &[Diagnostic]| {
        views::diagnostics(problems, dir);
        if json {
            views::error_document_json(FORMAT_VERSION, problems);
        }
        1
    };
    match make_plan(dir, syncs).await {
        Err(problems) => fail(&problems),
        Ok((_, plan)) => {
            if let Some(path) = out
                && let Err(e) = write_plan(path, &plan)
            {
                return fail(&[Diagnostic::error(
                    "plan::unwritable",
                    format!("cannot write the plan to `{}`: {e}", path.display()),
                )
                .hint("check that the directory exists and is writable")]);
            }
            if json {
                views::out(&format!("{}\n", plan.to_json()));
            } else {
                views::out(&render_human(&plan, HumanOptions { max_rows }));
                if let Some(path) = out {
                    views::out(&format!(
                        "\nSaved the plan to `{}`; apply it with `engine apply {}`.\n",
                        path.display(),
                        path.display()
                    ));
                }
            }
            if detailed_exitcode && !plan.is_empty() {
                2
            } else {
                0
            }
        }
    }
}

/// Loads the project and plans the selected syncs.
pub async fn make_plan(dir: &Path, syncs: &[String]) -> Result<(Project, Plan), Failure> {
    let (project, _warnings) = context::load_project(dir)?;
    let selected = context::select_syncs(&project, syncs)?;
    let engine = context::model_engine(&project).await?;
    let state = context::open_state(&project)?;
    let work = context::WorkDir::new(&project, "plan")?;
    let mut plans = Vec::new();
    let mut problems = Vec::new();
    for sync in &selected {
        let name = &sync.name.value;
        if let Some(run) = state
            .unfinished_runs(name)
            .ok()
            .and_then(|runs| runs.into_iter().next())
        {
            views::status(&format!(
                "Note: run {} of sync `{name}` has not finished (it is running, or it was interrupted); `engine apply` recovers an interrupted run first, so the plan it runs may differ from this one.",
                run.id
            ));
        }
    }
    for sync in selected {
        match context::plan_one(
            &project,
            &engine,
            &state,
            sync,
            work.path(),
            context::PlanOptions::default(),
        )
        .await
        {
            Ok(plan) => plans.push(plan),
            Err(p) => problems.extend(p),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let plan = assemble(&project, &state, plans);
    Ok((project, plan))
}

/// Wraps sync plans into a plan document carrying the state's lineage, sealed with the
/// state's key.
pub fn assemble(project: &Project, state: &LocalState, syncs: Vec<SyncPlan>) -> Plan {
    let mut plan = Plan {
        format_version: FORMAT_VERSION,
        plan_id: uuid::Uuid::new_v4().to_string(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        engine_version: env!("CARGO_PKG_VERSION").to_string(),
        project: project.name.clone(),
        lineage: state.lineage().to_string(),
        syncs,
        digest: String::new(),
    };
    plan.seal(&state.plan_key());
    plan
}

fn write_plan(path: &Path, plan: &Plan) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs_err::write(&tmp, plan.to_json())?;
    fs_err::rename(&tmp, path)
}
