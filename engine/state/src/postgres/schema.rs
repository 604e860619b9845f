//! The state's tables in PostgreSQL and their versioned migrations.
//!
//! Every table lives in the schema named by `state.schema` (default `engine_state`), so several
//! projects can share one database. `schema_version` has one row per migration applied; an
//! engine applies the migrations it knows that the schema lacks (all of them on an empty
//! database, creating the schema) and refuses a schema written by a newer engine, whose tables
//! it cannot know. Migrations run in one transaction under a transaction-level advisory lock,
//! so two engines opening a new state at once create it once.

use tokio_postgres::Client;

use super::worker::pg_error;
use crate::StateError;

/// The schema version this engine writes.
pub(crate) const SCHEMA_VERSION: i32 = 1;

/// Migration `n` (1-based) brings a schema from version `n - 1` to `n`; `{s}` is the schema.
/// Keys are `COLLATE "C"`: the journal is read in byte order of keys, as the engine merges it.
const MIGRATIONS: &[&str] = &["
CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE {s}.syncs (
    sync text PRIMARY KEY,
    generation bigint NOT NULL,
    rows bigint NOT NULL DEFAULT 0,
    digest text,
    bytes bigint NOT NULL DEFAULT 0,
    updated_at text NOT NULL
);
-- The current generation's snapshot (Parquet) of each sync, in chunks, written in the same
-- transaction as the generation it belongs to.
CREATE TABLE {s}.snapshot_chunks (
    sync text NOT NULL,
    generation bigint NOT NULL,
    chunk integer NOT NULL,
    bytes bytea NOT NULL,
    PRIMARY KEY (sync, generation, chunk)
);
CREATE TABLE {s}.runs (
    id bigserial PRIMARY KEY,
    sync text NOT NULL,
    plan_id text NOT NULL,
    base_generation bigint NOT NULL,
    status text NOT NULL,
    started_at text NOT NULL,
    finished_at text,
    planned_create bigint NOT NULL DEFAULT 0,
    planned_update bigint NOT NULL DEFAULT 0,
    planned_remove bigint NOT NULL DEFAULT 0,
    succeeded bigint NOT NULL DEFAULT 0,
    rejected bigint NOT NULL DEFAULT 0,
    pending bigint NOT NULL DEFAULT 0,
    message text,
    plan_json bytea NOT NULL
);
CREATE INDEX runs_by_sync ON {s}.runs (sync, status);
CREATE TABLE {s}.journal (
    run_id bigint NOT NULL,
    key text COLLATE \"C\" NOT NULL,
    action text NOT NULL,
    state text NOT NULL,
    destination_id text,
    message text,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE {s}.sent_batches (
    run_id bigint NOT NULL,
    first_key text COLLATE \"C\" NOT NULL,
    row_count bigint NOT NULL,
    rows text NOT NULL,
    written text,
    PRIMARY KEY (run_id, first_key)
);
CREATE TABLE {s}.pending (
    sync text NOT NULL,
    key text COLLATE \"C\" NOT NULL,
    message text NOT NULL,
    run_id bigint NOT NULL,
    held_fp text,
    PRIMARY KEY (sync, key)
);
-- A running apply's change files (Parquet), for its recovery on any machine; dropped when
-- the run closes.
CREATE TABLE {s}.run_files (
    run_id bigint NOT NULL,
    part integer NOT NULL,
    chunk integer NOT NULL,
    bytes bytea NOT NULL,
    PRIMARY KEY (run_id, part, chunk)
);
CREATE TABLE {s}.bulk_jobs (
    seq bigserial,
    run_id bigint NOT NULL,
    sync text NOT NULL,
    first_key text NOT NULL,
    job_id text NOT NULL,
    keys text NOT NULL,
    PRIMARY KEY (run_id, first_key)
);
"];

/// Checks `name` is a plain lowercase SQL identifier, so it can be written into statements.
pub fn check_schema_name(name: &str) -> Result<&str, StateError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63;
    if valid {
        Ok(name)
    } else {
        Err(StateError::Incompatible(format!(
            "`{}` is not a valid state schema name; use lowercase letters, digits and `_`, starting with a letter or `_` (at most 63)",
            name.chars().take(80).collect::<String>()
        )))
    }
}

/// Brings the schema to [`SCHEMA_VERSION`] (creating it when missing) and returns the lineage
/// and plan key, created with the state. `target` names the database in messages.
pub(crate) async fn migrate(
    client: &Client,
    schema: &str,
    target: &str,
) -> Result<(String, [u8; 32]), StateError> {
    client.batch_execute("BEGIN").await.map_err(pg_error)?;
    match migrate_in_transaction(client, schema, target).await {
        Ok(identity) => {
            client.batch_execute("COMMIT").await.map_err(pg_error)?;
            Ok(identity)
        }
        Err(error) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(error)
        }
    }
}

async fn migrate_in_transaction(
    client: &Client,
    schema: &str,
    target: &str,
) -> Result<(String, [u8; 32]), StateError> {
    // One engine at a time creates or upgrades a schema (released at commit).
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext('engine state schema ' || $1))",
            &[&schema],
        )
        .await
        .map_err(pg_error)?;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.schema_version (
                 version integer PRIMARY KEY,
                 engine text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );"
        ))
        .await
        .map_err(pg_error)?;
    let row = client
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {schema}.schema_version"),
            &[],
        )
        .await
        .map_err(pg_error)?;
    let found: i32 = row.get(0);
    if found > SCHEMA_VERSION {
        let engine: Option<String> = client
            .query_opt(
                &format!("SELECT engine FROM {schema}.schema_version WHERE version = $1"),
                &[&found],
            )
            .await
            .map_err(pg_error)?
            .map(|r| r.get(0));
        return Err(StateError::Incompatible(format!(
            "the state in schema `{schema}` of `{target}` has schema version {found}{}; this engine reads version {SCHEMA_VERSION}: upgrade the engine to the version that wrote it (or newer) on every machine that shares this state",
            engine
                .map(|e| format!(" (written by engine {e})"))
                .unwrap_or_default()
        )));
    }
    for (n, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = n as i32 + 1;
        client
            .batch_execute(&migration.replace("{s}", schema))
            .await
            .map_err(pg_error)?;
        client
            .execute(
                &format!("INSERT INTO {schema}.schema_version (version, engine) VALUES ($1, $2)"),
                &[&version, &env!("CARGO_PKG_VERSION")],
            )
            .await
            .map_err(pg_error)?;
    }
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    client
        .execute(
            &format!(
                "INSERT INTO {schema}.meta (key, value) VALUES ('lineage', $1), ('plan_key', $2)
                 ON CONFLICT (key) DO NOTHING"
            ),
            &[&uuid::Uuid::new_v4().to_string(), &crate::local::hex(&key)],
        )
        .await
        .map_err(pg_error)?;
    let rows = client
        .query(
            &format!("SELECT key, value FROM {schema}.meta WHERE key IN ('lineage', 'plan_key')"),
            &[],
        )
        .await
        .map_err(pg_error)?;
    let mut lineage = None;
    let mut plan_key = None;
    for row in rows {
        let (name, value): (String, String) = (row.get(0), row.get(1));
        match name.as_str() {
            "lineage" => lineage = Some(value),
            _ => plan_key = crate::local::unhex(&value),
        }
    }
    match (lineage, plan_key) {
        (Some(lineage), Some(plan_key)) => Ok((lineage, plan_key)),
        _ => Err(StateError::Corrupt {
            file: format!("{schema}.meta").into(),
            message: format!(
                "the state in schema `{schema}` of `{target}` has no lineage or plan key in `{schema}.meta`"
            ),
        }),
    }
}
