//! Opening the state, and its errors as diagnostics that say how to repair.

use std::path::Path;
use std::sync::Arc;

use engine_diag::Diagnostic;
use engine_models::warehouse::{WarehouseConfig, connect_read_write};
use engine_spec::{Project, StateBackend, StatePostgresSpec};
use engine_state::postgres::Connect;
use engine_state::{LocalState, PostgresOptions, PostgresState, State, StateError};

use crate::Failure;

/// Opens the project's state with the backend `engine.yaml` names, as a diagnostic on failure.
pub fn open_state(project: &Project) -> Result<State, Failure> {
    match &project.state_backend {
        StateBackend::Local => open_local(project).map(State::Local),
        StateBackend::Postgres(spec) => {
            open_postgres(spec, &project.state_dir).map(State::Postgres)
        }
    }
}

/// Opens the state under `state.path`, whatever backend `engine.yaml` names (for moving a
/// state between backends).
pub fn open_local(project: &Project) -> Result<LocalState, Failure> {
    LocalState::open(&project.state_dir).map_err(|e| vec![state_error(e)])
}

/// Opens the PostgreSQL state `spec` describes, with `cache_dir` (`state.path`, normally) as
/// its snapshot cache and scratch space.
pub fn open_postgres(spec: &StatePostgresSpec, cache_dir: &Path) -> Result<PostgresState, Failure> {
    let at_url = |diagnostic: Diagnostic| diagnostic.at(spec.url.span.clone());
    let url = spec.url.resolve_secret().map_err(|d| vec![d])?;
    let mut config = WarehouseConfig::from_url(url.expose()).map_err(|e| {
        vec![at_url(
            Diagnostic::error("state::invalid_url", format!("`state.url`: {e}")).hint(
                e.hint()
                    .unwrap_or("write `url: ${env:STATE_URL}` and export a `postgres://` URL"),
            ),
        )]
    })?;
    engine_models::apply_tls(&mut config, spec.tls, spec.ca_file.as_ref());
    let target = config.url.redacted();
    let config = Arc::new(config);
    let connect: Connect = Arc::new(move |application_name: String| {
        let config = Arc::clone(&config);
        Box::pin(async move {
            connect_read_write(&config, &application_name)
                .await
                .map_err(|e| e.to_string())
        })
    });
    PostgresState::open(PostgresOptions {
        connect,
        schema: spec.schema.value.clone(),
        cache_dir: cache_dir.to_path_buf(),
        target,
    })
    .map_err(|e| {
        let diagnostic = state_error(e);
        vec![match diagnostic.code.as_str() {
            "state::unreachable" | "state::incompatible" => at_url(diagnostic),
            _ => diagnostic,
        }]
    })
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
        StateError::DiskFull { dir, message } => crate::disk_full::disk_full(&dir, &message),
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
        StateError::Connect(message) => Diagnostic::error(
            "state::unreachable",
            format!("cannot open the state database: {message}"),
        )
        .hint("nothing was sent; check `state.url` in `engine.yaml` and the variable it reads (server, port, user, password, database), and that the server accepts connections from this machine"),
        StateError::Incompatible(message) => Diagnostic::error("state::incompatible", message)
            .hint("nothing was changed; see docs/state.md#migrations"),
        StateError::Postgres(message) => Diagnostic::error(
            "state::database",
            format!("the state database failed: {message}"),
        )
        .hint("nothing is lost: a run stopped mid-way is recovered by the next `engine apply`; check the state database's logs and run the command again"),
        other => Diagnostic::error("state::error", other.to_string()).hint(
            "check the state directory (`.engine/` by default) is writable and not corrupted",
        ),
    }
}
