//! The shared state backend: everything [`crate::LocalState`] keeps in `state.db` and under
//! `snapshots/` and `runs/`, kept in PostgreSQL instead, so CI jobs on different machines plan
//! and apply against one state.
//!
//! ```text
//! <schema>.schema_version   one row per migration applied (schema.rs)
//! <schema>.meta             lineage, plan-sealing key
//! <schema>.syncs            generation, rows, digest of each sync's current snapshot
//! <schema>.snapshot_chunks  the current snapshot's Parquet bytes (snapshots.rs)
//! <schema>.runs             run history, with the plan each run executed (recovery replays it)
//! <schema>.journal, sent_batches, pending, bulk_jobs   as in the local backend (journal.rs)
//! ```
//!
//! The project's state directory stays a cache and scratch space: the current snapshots
//! (downloaded on demand, checked against their digests), a running apply's change files, and
//! the look-up cache. A generation moves forward in one transaction that checks the base
//! generation, stores the new snapshot and closes the run. Apply locks are advisory locks
//! (lock.rs). Every call runs on the connection's own thread (worker.rs).

mod journal;
mod lock;
mod prune;
mod schema;
mod snapshots;
mod worker;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tokio_postgres::Client;

pub(crate) use journal::write_rows as write_journal_rows;
pub use schema::check_schema_name;
pub(crate) use snapshots::upload as upload_snapshot;
pub use worker::Connect;
pub(crate) use worker::{Worker, pg_error};

use crate::{
    Commit, JournalCounts, JournalRow, JournaledBatch, PendingRow, RowState, RunCounts, RunRecord,
    RunStatus, StateError, StateStore, SyncGeneration, SyncLock, check_name,
};

/// Where the shared state is and how to reach it.
#[derive(Clone)]
pub struct PostgresOptions {
    /// Opens a connection (see [`Connect`]).
    pub connect: Connect,
    /// The schema that holds the state's tables (`state.schema`, default `engine_state`).
    pub schema: String,
    /// The project's state directory: the snapshot cache and scratch space.
    pub cache_dir: PathBuf,
    /// The server and database, for messages (never the password).
    pub target: String,
}

/// State kept in a PostgreSQL schema, shared by every machine that reaches it.
pub struct PostgresState {
    worker: Worker,
    schema: String,
    dir: PathBuf,
    target: String,
    lineage: String,
    plan_key: [u8; 32],
    /// Cached snapshot files whose digest this process checked.
    verified: Mutex<HashSet<PathBuf>>,
}

impl std::fmt::Debug for PostgresState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresState")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl PostgresState {
    /// Connects, creates or upgrades the schema (see `schema.rs`), and reads the state's
    /// identity.
    pub fn open(options: PostgresOptions) -> Result<PostgresState, StateError> {
        let schema = check_schema_name(&options.schema)?.to_string();
        fs_err::create_dir_all(options.cache_dir.join("snapshots"))?;
        fs_err::create_dir_all(options.cache_dir.join("runs"))?;
        let worker = Worker::start(
            options.connect,
            format!(
                "engine pid={} host={}",
                std::process::id(),
                crate::lock::hostname()
            ),
        )?;
        let (in_schema, target) = (schema.clone(), options.target.clone());
        let (lineage, plan_key) = worker.call(async move |client: &Client| {
            schema::migrate(client, &in_schema, &target).await
        })?;
        Ok(PostgresState {
            worker,
            schema,
            dir: options.cache_dir,
            target: options.target,
            lineage,
            plan_key,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// The local directory that holds the snapshot cache and scratch files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The schema that holds the state.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The server and database, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    pub(crate) fn worker(&self) -> &Worker {
        &self.worker
    }

    /// The generation recorded for a sync, without fetching its snapshot.
    pub fn recorded_generation(&self, sync: &str) -> Result<u64, StateError> {
        let sync = check_name(sync)?.to_string();
        let schema = self.schema.clone();
        self.worker.call(async move |client: &Client| {
            let row = client
                .query_opt(
                    &format!("SELECT generation FROM {schema}.syncs WHERE sync = $1"),
                    &[&sync],
                )
                .await
                .map_err(pg_error)?;
            Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
        })
    }

    /// Every sync with its generation and row count.
    pub fn recorded_syncs(&self) -> Result<Vec<(String, u64, u64)>, StateError> {
        let schema = self.schema.clone();
        self.worker.call(async move |client: &Client| {
            let rows = client
                .query(
                    &format!("SELECT sync, generation, rows FROM {schema}.syncs ORDER BY sync"),
                    &[],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        r.get::<_, String>(0),
                        r.get::<_, i64>(1) as u64,
                        r.get::<_, i64>(2) as u64,
                    )
                })
                .collect())
        })
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        self.verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

const RUN_COLUMNS: &str = "id, sync, plan_id, base_generation, status, started_at, finished_at, \
    planned_create, planned_update, planned_remove, succeeded, rejected, pending, message";

fn run_record(row: &tokio_postgres::Row) -> RunRecord {
    let status: String = row.get(4);
    let count = |i: usize| row.get::<_, i64>(i).max(0) as u64;
    RunRecord {
        id: row.get(0),
        sync: row.get(1),
        plan_id: row.get(2),
        base_generation: count(3),
        status: RunStatus::parse(&status),
        started_at: row.get(5),
        finished_at: row.get(6),
        counts: RunCounts {
            planned_create: count(7),
            planned_update: count(8),
            planned_remove: count(9),
            succeeded: count(10),
            rejected: count(11),
            pending: count(12),
        },
        message: row.get(13),
    }
}

/// Closes a run inside the caller's transaction: batches still in flight become `sent`
/// journal rows, and the run gets its status, counts and message.
async fn close_run(
    client: &Client,
    schema: &str,
    run_id: i64,
    status: RunStatus,
    counts: RunCounts,
    message: Option<&str>,
) -> Result<(), StateError> {
    let in_flight = journal::batch_rows_all(client, schema, run_id, Some(RowState::Sent)).await?;
    for row in in_flight {
        client
            .execute(
                &format!(
                    "INSERT INTO {schema}.journal (run_id, key, action, state) VALUES ($1, $2, $3, 'sent')
                     ON CONFLICT (run_id, key) DO NOTHING"
                ),
                &[&run_id, &row.key, &row.action],
            )
            .await
            .map_err(pg_error)?;
    }
    for table in ["sent_batches", "run_files"] {
        client
            .execute(
                &format!("DELETE FROM {schema}.{table} WHERE run_id = $1"),
                &[&run_id],
            )
            .await
            .map_err(pg_error)?;
    }
    client
        .execute(
            &format!(
                "UPDATE {schema}.runs SET status = $2, finished_at = $3, succeeded = $4, rejected = $5,
                     pending = $6, message = $7 WHERE id = $1"
            ),
            &[
                &run_id,
                &status.as_str(),
                &now(),
                &(counts.succeeded as i64),
                &(counts.rejected as i64),
                &(counts.pending as i64),
                &message,
            ],
        )
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// Moves `sync` to its next generation (see [`StateStore::commit_generation`]), inside the
/// caller's transaction.
async fn commit_in_transaction(
    client: &Client,
    schema: &str,
    commit: OwnedCommit,
    snapshot: &Path,
) -> Result<(), StateError> {
    let current: i64 = client
        .query_opt(
            &format!("SELECT generation FROM {schema}.syncs WHERE sync = $1 FOR UPDATE"),
            &[&commit.sync],
        )
        .await
        .map_err(pg_error)?
        .map_or(0, |r| r.get(0));
    if current as u64 != commit.base_generation {
        return Err(StateError::GenerationMoved {
            sync: commit.sync,
            expected: commit.base_generation,
            found: current as u64,
        });
    }
    let next = commit.base_generation as i64 + 1;
    let (digest, bytes) = snapshots::upload(client, schema, &commit.sync, next, snapshot).await?;
    client
        .execute(
            &format!(
                "INSERT INTO {schema}.syncs (sync, generation, rows, digest, bytes, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (sync) DO UPDATE SET generation = excluded.generation, rows = excluded.rows,
                     digest = excluded.digest, bytes = excluded.bytes, updated_at = excluded.updated_at"
            ),
            &[
                &commit.sync,
                &next,
                &(commit.snapshot_rows as i64),
                &digest,
                &bytes,
                &now(),
            ],
        )
        .await
        .map_err(pg_error)?;
    // Pending rows this run wrote in batches kept whole (before the run closes, which drops
    // its batches).
    let pending: HashSet<String> = client
        .query(
            &format!("SELECT key FROM {schema}.pending WHERE sync = $1"),
            &[&commit.sync],
        )
        .await
        .map_err(pg_error)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !pending.is_empty() {
        let written =
            journal::batch_rows_all(client, schema, commit.run_id, Some(RowState::Succeeded))
                .await?;
        for row in written.iter().filter(|row| pending.contains(&row.key)) {
            client
                .execute(
                    &format!("DELETE FROM {schema}.pending WHERE sync = $1 AND key = $2"),
                    &[&commit.sync, &row.key],
                )
                .await
                .map_err(pg_error)?;
        }
    }
    close_run(
        client,
        schema,
        commit.run_id,
        commit.status,
        commit.counts,
        commit.message.as_deref(),
    )
    .await?;
    journal::write_rows(client, schema, commit.run_id, &commit.reconciled).await?;
    client
        .execute(
            &format!(
                "DELETE FROM {schema}.pending p WHERE p.sync = $1 AND EXISTS
                     (SELECT 1 FROM {schema}.journal j WHERE j.run_id = $2 AND j.key = p.key
                      AND j.state = 'succeeded')"
            ),
            &[&commit.sync, &commit.run_id],
        )
        .await
        .map_err(pg_error)?;
    client
        .execute(
            &format!(
                "INSERT INTO {schema}.pending (sync, key, message, run_id)
                 SELECT $1, key, coalesce(message, ''), run_id FROM {schema}.journal
                 WHERE run_id = $2 AND state IN ('rejected', 'gave_up')
                 ON CONFLICT (sync, key) DO UPDATE SET message = excluded.message,
                     run_id = excluded.run_id, held_fp = NULL"
            ),
            &[&commit.sync, &commit.run_id],
        )
        .await
        .map_err(pg_error)?;
    for (key, fingerprint) in &commit.held {
        client
            .execute(
                &format!("UPDATE {schema}.pending SET held_fp = $3 WHERE sync = $1 AND key = $2"),
                &[&commit.sync, key, fingerprint],
            )
            .await
            .map_err(pg_error)?;
    }
    Ok(())
}

/// A [`Commit`] that can travel to the worker thread.
struct OwnedCommit {
    sync: String,
    base_generation: u64,
    snapshot_rows: u64,
    run_id: i64,
    status: RunStatus,
    counts: RunCounts,
    message: Option<String>,
    reconciled: Vec<JournalRow>,
    held: Vec<(String, String)>,
}

impl StateStore for PostgresState {
    fn lineage(&self) -> &str {
        &self.lineage
    }

    fn plan_key(&self) -> [u8; 32] {
        self.plan_key
    }

    fn generation(&self, sync: &str) -> Result<SyncGeneration, StateError> {
        let sync = check_name(sync)?.to_string();
        let schema = self.schema.clone();
        let in_sync = sync.clone();
        let recorded: Option<(i64, Option<String>)> =
            self.worker.call(async move |client: &Client| {
                let row = client
                    .query_opt(
                        &format!("SELECT generation, digest FROM {schema}.syncs WHERE sync = $1"),
                        &[&in_sync],
                    )
                    .await
                    .map_err(pg_error)?;
                Ok(row.map(|r| (r.get(0), r.get(1))))
            })?;
        let Some((generation, digest)) = recorded else {
            return Ok(SyncGeneration {
                generation: 0,
                snapshot: None,
            });
        };
        let path = snapshots::cache_path(&self.dir, &sync, generation as u64);
        let Some(digest) = digest else {
            return Err(StateError::Corrupt {
                file: path,
                message: format!(
                    "sync `{sync}` is at generation {generation} in schema `{}`, but no snapshot was stored for it",
                    self.schema
                ),
            });
        };
        if self.verified().contains(&path) && path.exists() {
            return Ok(SyncGeneration {
                generation: generation as u64,
                snapshot: Some(path),
            });
        }
        let cached = path.exists() && snapshots::file_digest(&path)?.0 == digest;
        if !cached {
            let (schema, in_path) = (self.schema.clone(), path.clone());
            self.worker.call(async move |client: &Client| {
                snapshots::download(client, &schema, &sync, generation, &digest, &in_path).await
            })?;
        }
        self.verified().insert(path.clone());
        Ok(SyncGeneration {
            generation: generation as u64,
            snapshot: Some(path),
        })
    }

    fn lock_sync(&self, sync: &str) -> Result<SyncLock, StateError> {
        let sync = check_name(sync)?;
        lock::lock_sync(&self.worker, &self.lineage, sync)
    }

    fn begin_run(
        &self,
        sync: &str,
        plan_id: &str,
        base_generation: u64,
        plan_json: &[u8],
        counts: RunCounts,
    ) -> Result<i64, StateError> {
        let schema = self.schema.clone();
        let (sync, plan_id, plan_json) =
            (sync.to_string(), plan_id.to_string(), plan_json.to_vec());
        self.worker.call(async move |client: &Client| {
            let row = client
                .query_one(
                    &format!(
                        "INSERT INTO {schema}.runs (sync, plan_id, base_generation, status, started_at,
                             planned_create, planned_update, planned_remove, plan_json)
                         VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8) RETURNING id"
                    ),
                    &[
                        &sync,
                        &plan_id,
                        &(base_generation as i64),
                        &now(),
                        &(counts.planned_create as i64),
                        &(counts.planned_update as i64),
                        &(counts.planned_remove as i64),
                        &plan_json,
                    ],
                )
                .await
                .map_err(pg_error)?;
            Ok(row.get(0))
        })
    }

    fn journal_sent(&self, run_id: i64, rows: &[(String, String)]) -> Result<(), StateError> {
        self.journal_batches(run_id, &[], &[rows.to_vec()])
    }

    fn journal_outcomes(&self, run_id: i64, rows: &[JournalRow]) -> Result<(), StateError> {
        self.journal_batches(run_id, &[rows.to_vec()], &[])
    }

    fn journal_batches(
        &self,
        run_id: i64,
        answered: &[Vec<JournalRow>],
        sent: &[Vec<(String, String)>],
    ) -> Result<(), StateError> {
        let schema = self.schema.clone();
        let (answered, sent) = (answered.to_vec(), sent.to_vec());
        self.worker.transaction(async move |client: &Client| {
            for rows in &answered {
                journal::write_outcomes(client, &schema, run_id, rows).await?;
            }
            for rows in &sent {
                journal::write_sent(client, &schema, run_id, rows).await?;
            }
            Ok(())
        })
    }

    fn journal(&self, run_id: i64) -> Result<Vec<JournalRow>, StateError> {
        let schema = self.schema.clone();
        self.worker.call(async move |client: &Client| {
            let mut rows =
                journal::table_page(client, &schema, run_id, None, None, usize::MAX).await?;
            rows.extend(journal::batch_rows_all(client, &schema, run_id, None).await?);
            rows.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(rows)
        })
    }

    fn journal_page(
        &self,
        run_id: i64,
        only: Option<RowState>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JournalRow>, StateError> {
        let schema = self.schema.clone();
        let after = after.map(str::to_string);
        self.worker.call(async move |client: &Client| {
            let after = after.as_deref();
            let rows = journal::table_page(client, &schema, run_id, only, after, limit).await?;
            let batched = journal::batch_rows(client, &schema, run_id, after, only, limit).await?;
            Ok(crate::merge_journal_page(rows, batched, limit))
        })
    }

    fn journal_table_page(
        &self,
        run_id: i64,
        only: Option<RowState>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JournalRow>, StateError> {
        let schema = self.schema.clone();
        let after = after.map(str::to_string);
        self.worker.call(async move |client: &Client| {
            journal::table_page(client, &schema, run_id, only, after.as_deref(), limit).await
        })
    }

    fn batch_page(
        &self,
        run_id: i64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JournaledBatch>, StateError> {
        let schema = self.schema.clone();
        let after = after.map(str::to_string);
        let limit = limit.min(i64::MAX as usize) as i64;
        self.worker.call(async move |client: &Client| {
            let columns = journal::BATCH_COLUMNS;
            let rows = match &after {
                Some(after) => {
                    client
                        .query(
                            &format!(
                                "SELECT {columns} FROM {schema}.sent_batches
                             WHERE run_id = $1 AND first_key > $2 ORDER BY first_key LIMIT $3"
                            ),
                            &[&run_id, after, &limit],
                        )
                        .await
                }
                None => {
                    client
                        .query(
                            &format!(
                                "SELECT {columns} FROM {schema}.sent_batches
                             WHERE run_id = $1 ORDER BY first_key LIMIT $2"
                            ),
                            &[&run_id, &limit],
                        )
                        .await
                }
            }
            .map_err(pg_error)?;
            rows.iter()
                .map(|row| journal::decode(&schema, run_id, row))
                .collect()
        })
    }

    fn journal_row(&self, run_id: i64, key: &str) -> Result<Option<JournalRow>, StateError> {
        let schema = self.schema.clone();
        let key = key.to_string();
        self.worker.call(async move |client: &Client| {
            let row = client
                .query_opt(
                    &format!(
                        "SELECT key, action, state, destination_id, message FROM {schema}.journal
                         WHERE run_id = $1 AND key = $2"
                    ),
                    &[&run_id, &key],
                )
                .await
                .map_err(pg_error)?;
            if let Some(row) = row {
                return Ok(Some(journal::journal_row(&row)));
            }
            Ok(journal::batch_rows_all(client, &schema, run_id, None)
                .await?
                .into_iter()
                .find(|row| row.key == key))
        })
    }

    fn journal_counts(&self, run_id: i64) -> Result<JournalCounts, StateError> {
        let schema = self.schema.clone();
        self.worker.call(async move |client: &Client| {
            let rows = client
                .query(
                    &format!(
                        "SELECT action, state, count(*) FROM {schema}.journal WHERE run_id = $1
                         GROUP BY action, state"
                    ),
                    &[&run_id],
                )
                .await
                .map_err(pg_error)?;
            let mut entries: Vec<(String, RowState, u64)> = rows
                .iter()
                .map(|r| {
                    let state: String = r.get(1);
                    (
                        r.get(0),
                        RowState::parse(&state),
                        r.get::<_, i64>(2).max(0) as u64,
                    )
                })
                .collect();
            for row in journal::batch_rows_all(client, &schema, run_id, None).await? {
                match entries
                    .iter_mut()
                    .find(|(action, state, _)| *action == row.action && *state == row.state)
                {
                    Some(entry) => entry.2 += 1,
                    None => entries.push((row.action, row.state, 1)),
                }
            }
            Ok(JournalCounts { entries })
        })
    }

    fn run_plan(&self, run_id: i64) -> Result<Vec<u8>, StateError> {
        let schema = self.schema.clone();
        self.worker.call(async move |client: &Client| {
            let row = client
                .query_opt(
                    &format!("SELECT plan_json FROM {schema}.runs WHERE id = $1"),
                    &[&run_id],
                )
                .await
                .map_err(pg_error)?;
            row.map(|r| r.get(0)).ok_or_else(|| StateError::Corrupt {
                file: PathBuf::from(format!("{schema}.runs")),
                message: format!(
                    "run {run_id} is not in the state's run history (schema `{schema}`)"
                ),
            })
        })
    }

    fn keep_run_files(&self, run_id: i64, files: &[PathBuf]) -> Result<(), StateError> {
        let schema = self.schema.clone();
        let files = files.to_vec();
        self.worker.transaction(async move |client: &Client| {
            snapshots::upload_run_files(client, &schema, run_id, &files).await
        })
    }

    fn restore_run_files(
        &self,
        run_id: i64,
        dir: &Path,
    ) -> Result<Option<Vec<PathBuf>>, StateError> {
        let schema = self.schema.clone();
        let dir = dir.to_path_buf();
        self.worker.call(async move |client: &Client| {
            snapshots::download_run_files(client, &schema, run_id, &dir).await
        })
    }

    fn unfinished_runs(&self, sync: &str) -> Result<Vec<RunRecord>, StateError> {
        let schema = self.schema.clone();
        let sync = sync.to_string();
        self.worker.call(async move |client: &Client| {
            let rows = client
                .query(
                    &format!(
                        "SELECT {RUN_COLUMNS} FROM {schema}.runs WHERE sync = $1 AND status = 'running' ORDER BY id"
                    ),
                    &[&sync],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows.iter().map(run_record).collect())
        })
    }

    fn next_snapshot_path(&self, sync: &str, generation: u64) -> Result<PathBuf, StateError> {
        let sync = check_name(sync)?;
        let path = snapshots::cache_path(&self.dir, sync, generation + 1);
        if let Some(dir) = path.parent() {
            fs_err::create_dir_all(dir)?;
        }
        Ok(path)
    }

    fn commit_generation(&self, commit: &Commit<'_>) -> Result<u64, StateError> {
        let sync = check_name(commit.sync)?.to_string();
        let snapshot = snapshots::cache_path(&self.dir, &sync, commit.base_generation + 1);
        let owned = OwnedCommit {
            sync: sync.clone(),
            base_generation: commit.base_generation,
            snapshot_rows: commit.snapshot_rows,
            run_id: commit.run_id,
            status: commit.status,
            counts: commit.counts,
            message: commit.message.map(str::to_string),
            reconciled: commit.reconciled.to_vec(),
            held: commit.held.to_vec(),
        };
        let schema = self.schema.clone();
        let in_snapshot = snapshot.clone();
        self.worker.transaction(async move |client: &Client| {
            commit_in_transaction(client, &schema, owned, &in_snapshot).await
        })?;
        self.verified().insert(snapshot);
        if commit.base_generation >= 1 {
            let _ = fs_err::remove_file(snapshots::cache_path(
                &self.dir,
                &sync,
                commit.base_generation - 1,
            ));
        }
        Ok(commit.base_generation + 1)
    }

    fn finish_run_without_commit(
        &self,
        run_id: i64,
        status: RunStatus,
        counts: RunCounts,
        message: Option<&str>,
    ) -> Result<(), StateError> {
        let schema = self.schema.clone();
        let message = message.map(str::to_string);
        self.worker.transaction(async move |client: &Client| {
            close_run(client, &schema, run_id, status, counts, message.as_deref()).await
        })
    }

    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        let schema = self.schema.clone();
        let limit = limit.min(i64::MAX as usize) as i64;
        self.worker.call(async move |client: &Client| {
            let rows = client
                .query(
                    &format!("SELECT {RUN_COLUMNS} FROM {schema}.runs ORDER BY id DESC LIMIT $1"),
                    &[&limit],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows.iter().map(run_record).collect())
        })
    }

    fn run(&self, run_id: i64) -> Result<Option<RunRecord>, StateError> {
        let schema = self.schema.clone();
        self.worker.call(async move |client: &Client| {
            let row = client
                .query_opt(
                    &format!("SELECT {RUN_COLUMNS} FROM {schema}.runs WHERE id = $1"),
                    &[&run_id],
                )
                .await
                .map_err(pg_error)?;
            Ok(row.as_ref().map(run_record))
        })
    }

    fn pending_rows(&self, sync: &str) -> Result<Vec<PendingRow>, StateError> {
        let schema = self.schema.clone();
        let sync = sync.to_string();
        self.worker.call(async move |client: &Client| {
            let rows = client
                .query(
                    &format!(
                        "SELECT key, message, run_id, held_fp FROM {schema}.pending WHERE sync = $1 ORDER BY key"
                    ),
                    &[&sync],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|r| PendingRow {
                    key: r.get(0),
                    message: r.get(1),
                    run_id: r.get(2),
                    held_fingerprint: r.get(3),
                })
                .collect())
        })
    }
}
