//! What every command shares: loading the project, the query engine, the state, and planning
//! one sync.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use engine_diag::Diagnostic;
use engine_diff::{Pending, SyncDiffInput, plan_sync};
use engine_mapping::SyncMapping;
use engine_models::{EngineOptions, ModelEngine};
use engine_plan::SyncPlan;
use engine_spec::{DestinationKind, DestinationSpec, Project, SyncSpec};
use engine_state::{LocalState, StateError, StateStore};
use std::time::Duration;

use connector_core::Destination;
use connector_hubspot::{HubspotConfig, HubspotDestination, check_properties};
use engine_executor::{ExecutorOptions, RetryPolicy};

const DEFAULT_HUBSPOT_URL: &str = "https://api.hubapi.com";

/// A command's failure: diagnostics to print, exit code 1.
pub type Failure = Vec<Diagnostic>;

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
    }
}

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

/// Checks that a sync's destination has a connector, before any work.
pub fn check_connector(project: &Project, sync: &SyncSpec) -> Result<(), Failure> {
    let Some(destination) = project.destination(&sync.destination.value) else {
        return Err(vec![
            Diagnostic::error(
                "spec::unknown_destination",
                format!(
                    "sync `{}` names unknown destination `{}`",
                    sync.name.value, sync.destination.value
                ),
            )
            .at(sync.destination.span.clone()),
        ]);
    };
    match destination.kind {
        DestinationKind::Hubspot => Ok(()),
        DestinationKind::Salesforce => Err(vec![Diagnostic::error(
            "connector::not_implemented",
            format!("the Salesforce connector is not implemented yet (destination `{}`)", destination.name.value),
        )
        .at(destination.name.span.clone())
        .hint("sync to a `hubspot` destination for now; `engine validate` accepts Salesforce specs")]),
    }
}

/// Connects a sync's destination: resolves `${env:…}` secrets and builds the client and the
/// executor's pacing options.
pub fn connect(
    project: &Project,
    sync_name: &str,
) -> Result<(HubspotDestination, ExecutorOptions), Failure> {
    let Some(sync) = project.sync(sync_name) else {
        return Err(vec![unknown_plan_sync(sync_name)]);
    };
    check_connector(project, sync)?;
    let Some(destination) = project.destination(&sync.destination.value) else {
        return Err(vec![Diagnostic::error(
            "spec::unknown_destination",
            format!("unknown destination `{}`", sync.destination.value),
        )]);
    };
    let token = match &destination.token {
        Some(token) => token.resolve_secret().map_err(|d| vec![d])?,
        None => {
            return Err(vec![Diagnostic::error("hubspot::no_token", format!("destination `{}` has no `token`", destination.name.value))
                .at(destination.name.span.clone())
                .hint("add `token: ${env:HUBSPOT_TOKEN}` and set HUBSPOT_TOKEN to a private-app token")]);
        }
    };
    let base_url = match &destination.base_url {
        Some(url) => url.resolve().map_err(|d| vec![d])?,
        None => DEFAULT_HUBSPOT_URL.to_string(),
    };
    let config = HubspotConfig {
        base_url,
        token,
        object: sync.object.value.clone(),
        match_property: sync.match_on.property.value.clone(),
        timeout: Duration::from_secs(30),
    };
    let client = HubspotDestination::new(config).map_err(|d| vec![locate(d, sync, destination)])?;
    let options = ExecutorOptions {
        batch_size: sync.batch_size,
        requests_per_second: destination
            .requests_per_second
            .unwrap_or(client.capabilities().default_requests_per_second),
        retry: retry_policy(),
        progress: crate::views::stderr_is_terminal(),
    };
    Ok((client, options))
}

/// A plan names a sync the project no longer has.
pub fn unknown_plan_sync(sync_name: &str) -> Diagnostic {
    Diagnostic::error(
        "plan::unknown_sync",
        format!("the plan names sync `{sync_name}`, which the project no longer has"),
    )
    .hint("make a new plan with `engine plan --out FILE`")
}

/// Runs a read-only destination request (properties, records) with the executor's backoff:
/// a rate limit or an outage (`hubspot::unavailable`) is waited out like a batch.
pub async fn read_destination<T, F, Fut>(read: F) -> Result<T, Diagnostic>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Diagnostic>>,
{
    let transient = |d: &Diagnostic| d.code == "hubspot::unavailable";
    engine_executor::read_with_retries(&retry_policy(), transient, read).await
}

/// Retry policy, adjustable for tests and impatient humans with `ENGINE_MAX_ATTEMPTS` and
/// `ENGINE_RETRY_TIMEOUT` (seconds an unreachable destination is retried, default 15).
pub fn retry_policy() -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    if let Some(attempts) = std::env::var("ENGINE_MAX_ATTEMPTS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        policy.max_attempts = attempts;
    }
    if let Some(timeout) = std::env::var("ENGINE_RETRY_TIMEOUT")
        .ok()
        .and_then(|v| parse_seconds(&v))
    {
        policy.unreachable_timeout = timeout;
    }
    policy
}

/// A number of seconds (`15`, `2.5`); `None` for anything else, negative or absurd.
fn parse_seconds(text: &str) -> Option<Duration> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
}

/// Gives a connector's diagnostic about the sync's target or the destination's URL the
/// place in the project it comes from (the connector knows values, not files).
fn locate(diagnostic: Diagnostic, sync: &SyncSpec, destination: &DestinationSpec) -> Diagnostic {
    if diagnostic.location.is_some() {
        return diagnostic;
    }
    match diagnostic.code.as_str() {
        "hubspot::unknown_object" => diagnostic.at(sync.object.span.clone()),
        "hubspot::config" => {
            let span = destination
                .base_url
                .as_ref()
                .map_or(&destination.name.span, |url| &url.span);
            diagnostic.at(span.clone())
        }
        "hubspot::no_match_property" => diagnostic.at(sync.match_on.property.span.clone()),
        _ => diagnostic,
    }
}

/// How a plan treats rows that failed before.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// Plan rows the destination rejected again even when their data has not changed.
    pub retry_failed: bool,
}

/// Plans one sync against the state's current generation.
pub async fn plan_one(
    project: &Project,
    engine: &ModelEngine,
    state: &LocalState,
    sync: &SyncSpec,
    work_dir: &Path,
    options: PlanOptions,
) -> Result<SyncPlan, Failure> {
    check_connector(project, sync)?;
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
    let mapping = SyncMapping::compile(sync, &model.primary_key, &schema)?;
    check_destination_properties(project, sync, &mapping).await?;
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
    plan_sync(
        engine.context(),
        stream,
        SyncDiffInput {
            sync,
            mapping: &mapping,
            base_generation: generation.generation,
            previous_snapshot: generation.snapshot,
            pending,
            retry_failed: options.retry_failed,
            match_case_insensitive: connector_hubspot::match_is_case_insensitive(
                &sync.match_on.property.value,
            ),
            work_dir,
        },
    )
    .await
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

/// Reads the destination object's property definitions (read-only) and checks the mapping
/// against them: unknown or read-only properties, a match property that is not unique.
async fn check_destination_properties(
    project: &Project,
    sync: &SyncSpec,
    mapping: &SyncMapping,
) -> Result<(), Failure> {
    let (destination, _) = connect(project, &sync.name.value)?;
    let properties =
        read_destination(|| destination.describe())
            .await
            .map_err(|d| match project.destination(&sync.destination.value) {
                Some(spec) => vec![locate(d, sync, spec)],
                None => vec![d],
            })?;
    let mut problems = Vec::new();
    let match_property = &sync.match_on.property;
    for d in check_properties(
        std::slice::from_ref(&match_property.value),
        &match_property.value,
        &properties,
    ) {
        problems.push(d.at(match_property.span.clone()));
    }
    for entry in &sync.mapping {
        let name = &entry.property.value;
        if mapping.properties().iter().any(|p| &p.name == name) {
            for d in check_properties(
                std::slice::from_ref(name),
                &match_property.value,
                &properties,
            ) {
                if !problems.iter().any(|p: &Diagnostic| p.message == d.message) {
                    problems.push(d.at(entry.property.span.clone()));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
