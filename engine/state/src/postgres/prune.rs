//! Keeping the shared state small, as the local backend does (`crate::prune`): run history
//! within its retention, the journal rows of rows a finished run wrote, and on the local disk
//! cached snapshots of other generations, change files of runs that are over and old scratch.
//! The database changes in one transaction first; local files go after.

use std::path::PathBuf;
use std::time::SystemTime;

use tokio_postgres::Client;

use super::{PostgresState, pg_error};
use crate::prune::{SCRATCH_AGE, change_dirs, cutoff, remove_all, size_of};
use crate::{Keep, Pruned, StateError, StateSizes, check_name};

impl PostgresState {
    /// Prunes what sync `sync` no longer needs; the caller holds its lock. With `dry_run`,
    /// only reports.
    pub fn prune_sync(&self, sync: &str, keep: Keep, dry_run: bool) -> Result<Pruned, StateError> {
        let sync = check_name(sync)?.to_string();
        let schema = self.schema.clone();
        let cutoff = cutoff(keep.days);
        let in_sync = sync.clone();
        let (dropped, running_plans, journal_rows) =
            self.worker.transaction(async move |client: &Client| {
                let sync = in_sync;
                let dropped: Vec<i64> = client
                    .query(
                        &format!(
                            "SELECT id FROM {schema}.runs WHERE sync = $1 AND status <> 'running'
                               AND id < (SELECT max(id) FROM {schema}.runs WHERE sync = $1 AND status <> 'running')
                               AND (started_at < $3 OR id NOT IN
                                    (SELECT id FROM {schema}.runs WHERE sync = $1 AND status <> 'running'
                                     ORDER BY id DESC LIMIT $2))"
                        ),
                        &[&sync, &i64::from(keep.runs), &cutoff],
                    )
                    .await
                    .map_err(pg_error)?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let running: Vec<String> = client
                    .query(
                        &format!(
                            "SELECT plan_id FROM {schema}.runs WHERE sync = $1 AND status = 'running'"
                        ),
                        &[&sync],
                    )
                    .await
                    .map_err(pg_error)?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let filter = format!(
                    "run_id = ANY($2) OR (run_id IN (SELECT id FROM {schema}.runs WHERE sync = $1
                         AND status <> 'running') AND state = 'succeeded' AND message IS NULL)"
                );
                let rows = if dry_run {
                    let n: i64 = client
                        .query_one(
                            &format!("SELECT count(*) FROM {schema}.journal WHERE {filter}"),
                            &[&sync, &dropped],
                        )
                        .await
                        .map_err(pg_error)?
                        .get(0);
                    n.max(0) as u64
                } else {
                    let n = client
                        .execute(
                            &format!("DELETE FROM {schema}.journal WHERE {filter}"),
                            &[&sync, &dropped],
                        )
                        .await
                        .map_err(pg_error)?;
                    for table in ["sent_batches", "bulk_jobs"] {
                        client
                            .execute(
                                &format!("DELETE FROM {schema}.{table} WHERE run_id = ANY($1)"),
                                &[&dropped],
                            )
                            .await
                            .map_err(pg_error)?;
                    }
                    client
                        .execute(
                            &format!("DELETE FROM {schema}.runs WHERE id = ANY($1)"),
                            &[&dropped],
                        )
                        .await
                        .map_err(pg_error)?;
                    n
                };
                Ok((dropped, running, rows))
            })?;
        let mut pruned = Pruned {
            runs: dropped.len() as u64,
            journal_rows,
            ..Pruned::default()
        };
        let mut doomed: Vec<PathBuf> = change_dirs(&self.dir.join("runs"), |plan_id, dir_sync| {
            dir_sync == sync && !running_plans.iter().any(|p| p == plan_id)
        });
        let current = self.recorded_generation(&sync)?;
        let keep_file = format!("gen-{current}.parquet");
        if let Ok(entries) = fs_err::read_dir(self.dir.join("snapshots").join(&sync)) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy() != keep_file {
                    doomed.push(entry.path());
                }
            }
        }
        remove_all(doomed, dry_run, &mut pruned);
        Ok(pruned)
    }

    /// Prunes local leftovers: change files of runs that are over, and scratch and saved
    /// plans' kept change files older than a day. The caller holds every sync's lock.
    pub fn prune_leftovers(&self, dry_run: bool) -> Result<Pruned, StateError> {
        let schema = self.schema.clone();
        let running: Vec<String> = self.worker.call(async move |client: &Client| {
            Ok(client
                .query(
                    &format!("SELECT plan_id FROM {schema}.runs WHERE status = 'running'"),
                    &[],
                )
                .await
                .map_err(pg_error)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })?;
        let mut doomed = change_dirs(&self.dir.join("runs"), |plan_id, _| {
            !running.iter().any(|p| p == plan_id)
        });
        let old = SystemTime::now()
            .checked_sub(SCRATCH_AGE)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        for dir in ["tmp", "plans"] {
            if let Ok(entries) = fs_err::read_dir(self.dir.join(dir)) {
                for entry in entries.flatten() {
                    let modified = entry.metadata().and_then(|m| m.modified());
                    if modified.is_ok_and(|m| m < old) {
                        doomed.push(entry.path());
                    }
                }
            }
        }
        let mut pruned = Pruned::default();
        remove_all(doomed, dry_run, &mut pruned);
        Ok(pruned)
    }

    /// Prunes every sync with history and the leftovers. The caller holds every lock.
    pub fn prune_all(&self, keep: Keep, dry_run: bool) -> Result<Pruned, StateError> {
        let schema = self.schema.clone();
        let syncs: Vec<String> = self.worker.call(async move |client: &Client| {
            Ok(client
                .query(
                    &format!(
                        "SELECT sync FROM {schema}.syncs UNION SELECT sync FROM {schema}.runs ORDER BY 1"
                    ),
                    &[],
                )
                .await
                .map_err(pg_error)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })?;
        let mut pruned = Pruned::default();
        for sync in syncs {
            pruned.absorb(self.prune_sync(&sync, keep, dry_run)?);
        }
        pruned.absorb(self.prune_leftovers(dry_run)?);
        Ok(pruned)
    }

    /// The state's size by part: `database` is the schema's tables in PostgreSQL (snapshots
    /// included), `snapshots` the local cache of current snapshots.
    pub fn sizes(&self) -> Result<StateSizes, StateError> {
        let schema = self.schema.clone();
        let database: i64 = self.worker.call(async move |client: &Client| {
            Ok(client
                .query_one(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = $1 AND c.relkind = 'r'",
                    &[&schema],
                )
                .await
                .map_err(pg_error)?
                .get(0))
        })?;
        let mut sizes = StateSizes {
            database: database.max(0) as u64,
            ..StateSizes::default()
        };
        let current: Vec<PathBuf> = self
            .recorded_syncs()?
            .into_iter()
            .map(|(sync, generation, _)| super::snapshots::cache_path(&self.dir, &sync, generation))
            .collect();
        if let Ok(syncs) = fs_err::read_dir(self.dir.join("snapshots")) {
            for sync in syncs.flatten() {
                for file in fs_err::read_dir(sync.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let bytes = size_of(&file.path());
                    if current.contains(&file.path()) {
                        sizes.snapshots += bytes;
                    } else {
                        sizes.old_snapshots += bytes;
                    }
                }
            }
        }
        sizes.change_files = size_of(&self.dir.join("runs"));
        sizes.scratch = size_of(&self.dir.join("tmp"));
        sizes.kept_plans = size_of(&self.dir.join("plans"));
        Ok(sizes)
    }
}
