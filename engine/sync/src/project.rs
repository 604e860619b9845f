//! Loading a project and what every step shares: the query engine, the selected syncs, a
//! scratch directory.

use std::path::{Path, PathBuf};

use engine_diag::Diagnostic;
use engine_models::{EngineOptions, ModelEngine};
use engine_spec::{Project, SyncSpec};

use crate::Failure;

/// Loads the project, printing nothing; warnings are returned with it.
pub fn load_project(dir: &Path) -> Result<(Project, Vec<Diagnostic>), Failure> {
    if !dir.join("engine.yaml").exists() && !dir.join("engine.yml").exists() {
        return Err(vec![
            Diagnostic::error(
                "spec::no_project",
                format!("no `engine.yaml` in `{}`", dir.display()),
            )
            .hint("run the command from a project directory or pass `--project DIR`"),
        ]);
    }
    engine_spec::load_project(dir)
}

/// Options for the query engine: memory bound from `ENGINE_MEMORY_LIMIT` (bytes), spills
/// under the state directory.
pub fn engine_options(project: &Project) -> EngineOptions {
    let memory_limit = std::env::var("ENGINE_MEMORY_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(engine_models::DEFAULT_MEMORY_LIMIT);
    EngineOptions {
        memory_limit,
        spill_dir: Some(project.state_dir.join("tmp")),
        target_partitions: None,
        spill_fairly: false,
    }
}

/// The syncs a command works on: all, or the named ones (unknown names are errors).
pub fn select_syncs<'p>(
    project: &'p Project,
    names: &[String],
) -> Result<Vec<&'p SyncSpec>, Failure> {
    if names.is_empty() {
        return Ok(project.syncs.iter().collect());
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for name in names {
        match project.sync(name) {
            Some(sync) => out.push(sync),
            None => {
                let mut d =
                    Diagnostic::error("cli::unknown_sync", format!("no sync named `{name}`"));
                if let Some(close) = engine_diag::did_you_mean(
                    name,
                    project.syncs.iter().map(|s| s.name.value.as_str()),
                ) {
                    d = d.hint(format!("did you mean `{close}`?"));
                }
                problems.push(d.hint("`engine validate` lists the project's syncs"));
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// A scratch directory removed when dropped.
#[derive(Debug)]
pub struct WorkDir(PathBuf);

impl WorkDir {
    /// Creates `<state>/tmp/<name>-<uuid>`.
    pub fn new(project: &Project, name: &str) -> Result<WorkDir, Failure> {
        let dir = project
            .state_dir
            .join("tmp")
            .join(format!("{name}-{}", uuid::Uuid::new_v4()));
        fs_err::create_dir_all(&dir).map_err(|e| {
            vec![Diagnostic::error(
                "state::error",
                format!("cannot create `{}`: {e}", dir.display()),
            )]
        })?;
        Ok(WorkDir(dir))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs_err::remove_dir_all(&self.0);
    }
}

/// A plan names a sync the project no longer has.
pub fn unknown_plan_sync(sync_name: &str) -> Diagnostic {
    Diagnostic::error(
        "plan::unknown_sync",
        format!("the plan names sync `{sync_name}`, which the project no longer has"),
    )
    .hint("make a new plan with `engine plan --out FILE`")
}

/// Builds the query engine for a project; spill files go under the state directory.
pub async fn model_engine(project: &Project) -> Result<ModelEngine, Failure> {
    let options = engine_options(project);
    if let Some(dir) = &options.spill_dir {
        fs_err::create_dir_all(dir).map_err(|e| {
            vec![Diagnostic::error(
                "state::error",
                format!("cannot create `{}`: {e}", dir.display()),
            )]
        })?;
    }
    ModelEngine::for_project(project, &options).await
}

/// Builds the query engine without touching the state directory (for `validate`).
pub async fn model_engine_readonly(project: &Project) -> Result<ModelEngine, Failure> {
    let options = EngineOptions {
        spill_dir: None,
        ..engine_options(project)
    };
    ModelEngine::for_project(project, &options).await
}
