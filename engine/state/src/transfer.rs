//! Moving a state from one backend to another (`engine state migrate`): the lineage and
//! plan key (so saved plans stay valid), every sync's current generation and snapshot, run
//! history with each run's plan, the journal, pending rows and bulk jobs. The target must be
//! empty; it is written in one transaction, so a failed move leaves it empty. The source is
//! only read.

use std::path::PathBuf;

use rusqlite::params;
use tokio_postgres::Client;

use crate::postgres::pg_error;
use crate::{
    BulkJob, JournalRow, LocalState, PendingRow, PostgresState, RunRecord, State, StateError,
    StateStore, journal_rows,
};

/// What [`transfer`] moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transferred {
    /// Syncs with a generation (each with its snapshot).
    pub syncs: u64,
    /// Runs in history.
    pub runs: u64,
    /// Journal rows.
    pub journal_rows: u64,
    /// Pending rows.
    pub pending_rows: u64,
}

/// A state read whole (snapshots stay files: the source's, or its cache).
struct Dump {
    lineage: String,
    plan_key: [u8; 32],
    /// (sync, generation, rows, snapshot file)
    syncs: Vec<(String, u64, u64, PathBuf)>,
    runs: Vec<(RunRecord, Vec<u8>)>,
    journal: Vec<(i64, JournalRow)>,
    pending: Vec<(String, PendingRow)>,
    bulk_jobs: Vec<BulkJob>,
}

/// Copies everything `from` holds into `to`, which must be empty. The caller holds no lock;
/// no apply may run meanwhile (the command takes every sync's lock of the source).
pub fn transfer(from: &State, to: &State) -> Result<Transferred, StateError> {
    if !to.recorded_syncs()?.is_empty() || !to.runs(1)?.is_empty() {
        return Err(StateError::Incompatible(format!(
            "the target state ({}) already holds syncs or runs; migrate only into an empty state (drop its schema, or move its directory aside)",
            to.location()
        )));
    }
    let dump = read(from)?;
    let moved = Transferred {
        syncs: dump.syncs.len() as u64,
        runs: dump.runs.len() as u64,
        journal_rows: dump.journal.len() as u64,
        pending_rows: dump.pending.len() as u64,
    };
    match to {
        State::Local(state) => import_local(state, &dump)?,
        State::Postgres(state) => import_postgres(state, dump)?,
    }
    Ok(moved)
}

fn read(from: &State) -> Result<Dump, StateError> {
    let mut syncs = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (sync, _, rows) in from.recorded_syncs()? {
        let generation = from.generation(&sync)?;
        if let Some(snapshot) = generation.snapshot {
            syncs.push((sync.clone(), generation.generation, rows, snapshot));
        }
        names.push(sync);
    }
    let mut runs = Vec::new();
    let mut journal = Vec::new();
    let mut bulk_jobs = Vec::new();
    let jobs = from.bulk_jobs()?;
    for run in from.runs(usize::MAX)?.into_iter().rev() {
        for row in journal_rows(from, run.id, None) {
            journal.push((run.id, row?));
        }
        bulk_jobs.extend(jobs.of_run(run.id)?);
        // A run whose plan file is gone (a crash before it was written) moves without one.
        let plan = from.run_plan(run.id).unwrap_or_default();
        if !names.contains(&run.sync) {
            names.push(run.sync.clone());
        }
        runs.push((run, plan));
    }
    let mut pending = Vec::new();
    for sync in &names {
        for row in from.pending_rows(sync)? {
            pending.push((sync.clone(), row));
        }
    }
    Ok(Dump {
        lineage: from.lineage().to_string(),
        plan_key: from.plan_key(),
        syncs,
        runs,
        journal,
        pending,
        bulk_jobs,
    })
}

fn import_local(to: &LocalState, dump: &Dump) -> Result<(), StateError> {
    let mut written: Vec<PathBuf> = Vec::new();
    let result = (|| {
        for (sync, generation, _, snapshot) in &dump.syncs {
            let path = to.next_snapshot_path(sync, generation - 1)?;
            fs_err::copy(snapshot, &path)?;
            written.push(path);
        }
        for (run, plan) in &dump.runs {
            let path = to.plan_path(run.id);
            fs_err::write(&path, plan)?;
            written.push(path);
        }
        let mut conn = to.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'lineage'",
            [&dump.lineage],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('plan_key', ?1)",
            [crate::local::hex(&dump.plan_key)],
        )?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for (sync, generation, rows, _) in &dump.syncs {
            tx.execute(
                "INSERT INTO syncs (sync, generation, snapshot, rows, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    sync,
                    *generation as i64,
                    format!("snapshots/{sync}/gen-{generation}.parquet"),
                    *rows as i64,
                    now
                ],
            )?;
        }
        for (run, _) in &dump.runs {
            tx.execute(
                "INSERT INTO runs (id, sync, plan_id, base_generation, status, started_at, finished_at,
                     planned_create, planned_update, planned_remove, succeeded, rejected, pending, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    run.id,
                    run.sync,
                    run.plan_id,
                    run.base_generation as i64,
                    run.status.as_str(),
                    run.started_at,
                    run.finished_at,
                    run.counts.planned_create as i64,
                    run.counts.planned_update as i64,
                    run.counts.planned_remove as i64,
                    run.counts.succeeded as i64,
                    run.counts.rejected as i64,
                    run.counts.pending as i64,
                    run.message
                ],
            )?;
        }
        for (run_id, row) in &dump.journal {
            tx.execute(
                "INSERT INTO journal (run_id, key, action, state, destination_id, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![run_id, row.key, row.action, row.state.as_str(), row.destination_id, row.message],
            )?;
        }
        for (sync, row) in &dump.pending {
            tx.execute(
                "INSERT INTO pending (sync, key, message, run_id, held_fp) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![sync, row.key, row.message, row.run_id, row.held_fingerprint],
            )?;
        }
        tx.execute_batch(crate::bulk_jobs::BULK_JOBS_TABLE)?;
        for job in &dump.bulk_jobs {
            tx.execute(
                "INSERT INTO bulk_jobs (run_id, sync, first_key, job_id, keys) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    job.run_id,
                    job.sync,
                    job.keys.first().map(String::as_str).unwrap_or_default(),
                    job.job_id,
                    job.keys.join("\n")
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    })();
    if result.is_err() {
        for path in written {
            let _ = fs_err::remove_file(path);
        }
    }
    result
}

fn import_postgres(to: &PostgresState, dump: Dump) -> Result<(), StateError> {
    let schema = to.schema().to_string();
    to.worker()
        .transaction(async move |client: &Client| import_postgres_rows(client, &schema, dump).await)
}

async fn import_postgres_rows(client: &Client, s: &str, dump: Dump) -> Result<(), StateError> {
    client
        .execute(
            &format!("UPDATE {s}.meta SET value = $1 WHERE key = 'lineage'"),
            &[&dump.lineage],
        )
        .await
        .map_err(pg_error)?;
    client
        .execute(
            &format!("UPDATE {s}.meta SET value = $1 WHERE key = 'plan_key'"),
            &[&crate::local::hex(&dump.plan_key)],
        )
        .await
        .map_err(pg_error)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for (sync, generation, rows, snapshot) in &dump.syncs {
        let generation = *generation as i64;
        let (digest, bytes) =
            crate::postgres::upload_snapshot(client, s, sync, generation, snapshot).await?;
        client
            .execute(
                &format!(
                    "INSERT INTO {s}.syncs (sync, generation, rows, digest, bytes, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6)"
                ),
                &[sync, &generation, &(*rows as i64), &digest, &bytes, &now],
            )
            .await
            .map_err(pg_error)?;
    }
    for (run, plan) in &dump.runs {
        let count = |n: u64| n as i64;
        client
            .execute(
                &format!(
                    "INSERT INTO {s}.runs (id, sync, plan_id, base_generation, status, started_at, finished_at,
                         planned_create, planned_update, planned_remove, succeeded, rejected, pending, message, plan_json)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                ),
                &[
                    &run.id,
                    &run.sync,
                    &run.plan_id,
                    &count(run.base_generation),
                    &run.status.as_str(),
                    &run.started_at,
                    &run.finished_at,
                    &count(run.counts.planned_create),
                    &count(run.counts.planned_update),
                    &count(run.counts.planned_remove),
                    &count(run.counts.succeeded),
                    &count(run.counts.rejected),
                    &count(run.counts.pending),
                    &run.message,
                    plan,
                ],
            )
            .await
            .map_err(pg_error)?;
    }
    // New runs continue after the moved ones.
    client
        .execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{s}.runs', 'id'), coalesce((SELECT max(id) FROM {s}.runs), 0) + 1, false)"
            ),
            &[],
        )
        .await
        .map_err(pg_error)?;
    for (run_id, rows) in group_by_run(&dump.journal) {
        crate::postgres::write_journal_rows(client, s, run_id, &rows).await?;
    }
    for (sync, row) in &dump.pending {
        client
            .execute(
                &format!(
                    "INSERT INTO {s}.pending (sync, key, message, run_id, held_fp) VALUES ($1, $2, $3, $4, $5)"
                ),
                &[sync, &row.key, &row.message, &row.run_id, &row.held_fingerprint],
            )
            .await
            .map_err(pg_error)?;
    }
    for job in &dump.bulk_jobs {
        client
            .execute(
                &format!(
                    "INSERT INTO {s}.bulk_jobs (run_id, sync, first_key, job_id, keys) VALUES ($1, $2, $3, $4, $5)"
                ),
                &[
                    &job.run_id,
                    &job.sync,
                    &job.keys.first().map(String::as_str).unwrap_or_default(),
                    &job.job_id,
                    &job.keys.join("\n"),
                ],
            )
            .await
            .map_err(pg_error)?;
    }
    Ok(())
}

/// Journal rows grouped by run, in the order given.
fn group_by_run(rows: &[(i64, JournalRow)]) -> Vec<(i64, Vec<JournalRow>)> {
    let mut out: Vec<(i64, Vec<JournalRow>)> = Vec::new();
    for (run_id, row) in rows {
        match out.last_mut() {
            Some((id, group)) if id == run_id => group.push(row.clone()),
            _ => out.push((*run_id, vec![row.clone()])),
        }
    }
    out
}
