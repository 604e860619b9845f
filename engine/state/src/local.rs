//! The embedded state backend: SQLite plus Parquet snapshot files under `.engine/`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    Commit, JournalRow, PendingRow, RowState, RunCounts, RunRecord, RunStatus, StateError,
    StateStore, SyncGeneration, SyncLock,
};

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS syncs (
    sync TEXT PRIMARY KEY,
    generation INTEGER NOT NULL,
    snapshot TEXT,
    rows INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sync TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    base_generation INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    planned_create INTEGER NOT NULL DEFAULT 0,
    planned_update INTEGER NOT NULL DEFAULT 0,
    planned_remove INTEGER NOT NULL DEFAULT 0,
    succeeded INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    pending INTEGER NOT NULL DEFAULT 0,
    message TEXT
);
CREATE TABLE IF NOT EXISTS journal (
    run_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    destination_id TEXT,
    message TEXT,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS pending (
    sync TEXT NOT NULL,
    key TEXT NOT NULL,
    message TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    PRIMARY KEY (sync, key)
);
";

/// State kept in files under the project's `.engine/` directory.
#[derive(Debug)]
pub struct LocalState {
    dir: PathBuf,
    lineage: String,
    conn: Mutex<Connection>,
}

impl LocalState {
    /// Opens (creating on first use) the state in `dir`.
    pub fn open(dir: &Path) -> Result<LocalState, StateError> {
        fs_err::create_dir_all(dir.join("snapshots"))?;
        fs_err::create_dir_all(dir.join("runs"))?;
        fs_err::create_dir_all(dir.join("locks"))?;
        let conn = Connection::open(dir.join("state.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match version {
            None => {
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1), ('lineage', ?2)",
                    params![SCHEMA_VERSION.to_string(), uuid::Uuid::new_v4().to_string()],
                )?;
            }
            Some(v) if v != SCHEMA_VERSION.to_string() => {
                return Err(StateError::Incompatible(format!(
                    "the state in `{}` has schema version {v}; this engine reads version {SCHEMA_VERSION}",
                    dir.display()
                )));
            }
            Some(_) => {}
        }
        let lineage: String =
            conn.query_row("SELECT value FROM meta WHERE key = 'lineage'", [], |r| {
                r.get(0)
            })?;
        Ok(LocalState {
            dir: dir.to_path_buf(),
            lineage,
            conn: Mutex::new(conn),
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A poisoned mutex only means another thread panicked mid-call; SQLite's own
        // transactions keep the data consistent, so carry on with the connection.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn plan_path(&self, run_id: i64) -> PathBuf {
        self.dir.join("runs").join(format!("{run_id}.plan.json"))
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    let status: String = row.get(4)?;
    Ok(RunRecord {
        id: row.get(0)?,
        sync: row.get(1)?,
        plan_id: row.get(2)?,
        base_generation: row.get::<_, i64>(3)? as u64,
        status: RunStatus::parse(&status),
        started_at: row.get(5)?,
        finished_at: row.get(6)?,
        counts: RunCounts {
            planned_create: row.get::<_, i64>(7)? as u64,
            planned_update: row.get::<_, i64>(8)? as u64,
            planned_remove: row.get::<_, i64>(9)? as u64,
            succeeded: row.get::<_, i64>(10)? as u64,
            rejected: row.get::<_, i64>(11)? as u64,
            pending: row.get::<_, i64>(12)? as u64,
        },
        message: row.get(13)?,
    })
}

const RUN_COLUMNS: &str = "id, sync, plan_id, base_generation, status, started_at, finished_at, \
    planned_create, planned_update, planned_remove, succeeded, rejected, pending, message";

/// Writes `bytes` to `path` via a temporary file, fsync and rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let tmp = path.with_extension("tmp");
    let mut file = fs_err::File::create(&tmp)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.sync_all()?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

impl StateStore for LocalState {
    fn lineage(&self) -> &str {
        &self.lineage
    }

    fn generation(&self, sync: &str) -> Result<SyncGeneration, StateError> {
        let row: Option<(i64, Option<String>)> = self
            .conn()
            .query_row(
                "SELECT generation, snapshot FROM syncs WHERE sync = ?1",
                [sync],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            None => SyncGeneration {
                generation: 0,
                snapshot: None,
            },
            Some((generation, snapshot)) => SyncGeneration {
                generation: generation as u64,
                snapshot: snapshot.map(|s| self.dir.join(s)),
            },
        })
    }

    fn lock_sync(&self, sync: &str) -> Result<SyncLock, StateError> {
        SyncLock::acquire(&self.dir.join("locks").join(format!("{sync}.lock")), sync)
    }

    fn begin_run(
        &self,
        sync: &str,
        plan_id: &str,
        base_generation: u64,
        plan_json: &[u8],
        counts: RunCounts,
    ) -> Result<i64, StateError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO runs (sync, plan_id, base_generation, status, started_at, planned_create, planned_update, planned_remove)
             VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7)",
            params![
                sync,
                plan_id,
                base_generation as i64,
                now(),
                counts.planned_create as i64,
                counts.planned_update as i64,
                counts.planned_remove as i64
            ],
        )?;
        let run_id = conn.last_insert_rowid();
        drop(conn);
        write_atomic(&self.plan_path(run_id), plan_json)?;
        Ok(run_id)
    }

    fn journal_sent(&self, run_id: i64, rows: &[(String, String)]) -> Result<(), StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO journal (run_id, key, action, state) VALUES (?1, ?2, ?3, 'sent')",
            )?;
            for (key, action) in rows {
                stmt.execute(params![run_id, key, action])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn journal_outcomes(&self, run_id: i64, rows: &[JournalRow]) -> Result<(), StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO journal (run_id, key, action, state, destination_id, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for row in rows {
                stmt.execute(params![
                    run_id,
                    row.key,
                    row.action,
                    row.state.as_str(),
                    row.destination_id,
                    row.message
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn journal(&self, run_id: i64) -> Result<Vec<JournalRow>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT key, action, state, destination_id, message FROM journal WHERE run_id = ?1 ORDER BY key",
        )?;
        let rows = stmt
            .query_map([run_id], |r| {
                let state: String = r.get(2)?;
                Ok(JournalRow {
                    key: r.get(0)?,
                    action: r.get(1)?,
                    state: RowState::parse(&state),
                    destination_id: r.get(3)?,
                    message: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn run_plan(&self, run_id: i64) -> Result<Vec<u8>, StateError> {
        Ok(fs_err::read(self.plan_path(run_id))?)
    }

    fn unfinished_runs(&self, sync: &str) -> Result<Vec<RunRecord>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE sync = ?1 AND status = 'running' ORDER BY id"
        ))?;
        let runs = stmt
            .query_map([sync], run_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(runs)
    }

    fn next_snapshot_path(&self, sync: &str, generation: u64) -> Result<PathBuf, StateError> {
        let dir = self.dir.join("snapshots").join(sync);
        fs_err::create_dir_all(&dir)?;
        Ok(dir.join(format!("gen-{}.parquet", generation + 1)))
    }

    fn commit_generation(&self, commit: &Commit<'_>) -> Result<u64, StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let current: i64 = tx
            .query_row(
                "SELECT generation FROM syncs WHERE sync = ?1",
                [commit.sync],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        if current as u64 != commit.base_generation {
            return Err(StateError::GenerationMoved {
                sync: commit.sync.to_string(),
                expected: commit.base_generation,
                found: current as u64,
            });
        }
        let next = commit.base_generation + 1;
        let snapshot = format!("snapshots/{}/gen-{next}.parquet", commit.sync);
        tx.execute(
            "INSERT INTO syncs (sync, generation, snapshot, rows, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(sync) DO UPDATE SET generation = ?2, snapshot = ?3, rows = ?4, updated_at = ?5",
            params![commit.sync, next as i64, snapshot, commit.snapshot_rows as i64, now()],
        )?;
        close_run(
            &tx,
            commit.run_id,
            commit.status,
            commit.counts,
            commit.message,
        )?;
        {
            let mut resolve =
                tx.prepare_cached("DELETE FROM pending WHERE sync = ?1 AND key = ?2")?;
            for key in commit.resolved {
                resolve.execute(params![commit.sync, key])?;
            }
            let mut fail = tx.prepare_cached(
                "INSERT OR REPLACE INTO pending (sync, key, message, run_id) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (key, message) in commit.failed {
                fail.execute(params![commit.sync, key, message, commit.run_id])?;
            }
        }
        tx.commit()?;
        // Older snapshots are no longer in force; keep the previous one for inspection.
        if commit.base_generation >= 1 {
            let old = self
                .dir
                .join("snapshots")
                .join(commit.sync)
                .join(format!("gen-{}.parquet", commit.base_generation - 1));
            let _ = fs_err::remove_file(old);
        }
        Ok(next)
    }

    fn finish_run_without_commit(
        &self,
        run_id: i64,
        status: RunStatus,
        counts: RunCounts,
        message: Option<&str>,
    ) -> Result<(), StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        close_run(&tx, run_id, status, counts, message)?;
        tx.commit()?;
        Ok(())
    }

    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?1"
        ))?;
        let runs = stmt
            .query_map([limit as i64], run_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(runs)
    }

    fn run(&self, run_id: i64) -> Result<Option<RunRecord>, StateError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [run_id],
                run_from_row,
            )
            .optional()?)
    }

    fn pending_rows(&self, sync: &str) -> Result<Vec<PendingRow>, StateError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT key, message, run_id FROM pending WHERE sync = ?1 ORDER BY key")?;
        let rows = stmt
            .query_map([sync], |r| {
                Ok(PendingRow {
                    key: r.get(0)?,
                    message: r.get(1)?,
                    run_id: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

fn close_run(
    tx: &rusqlite::Transaction<'_>,
    run_id: i64,
    status: RunStatus,
    counts: RunCounts,
    message: Option<&str>,
) -> Result<(), StateError> {
    tx.execute(
        "UPDATE runs SET status = ?2, finished_at = ?3, succeeded = ?4, rejected = ?5, pending = ?6, message = ?7
         WHERE id = ?1",
        params![
            run_id,
            status.as_str(),
            now(),
            counts.succeeded as i64,
            counts.rejected as i64,
            counts.pending as i64,
            message
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts() -> RunCounts {
        RunCounts {
            planned_create: 2,
            ..RunCounts::default()
        }
    }

    #[test]
    fn lineage_is_stable_and_generation_starts_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        let lineage = LocalState::open(dir.path()).unwrap().lineage().to_string();
        let state = LocalState::open(dir.path()).unwrap();
        assert_eq!(state.lineage(), lineage);
        assert_eq!(
            state.generation("s").unwrap(),
            SyncGeneration {
                generation: 0,
                snapshot: None
            }
        );
    }

    #[test]
    fn commit_moves_the_generation_and_tracks_pending_rows() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        let run = state.begin_run("s", "p1", 0, b"{}", counts()).unwrap();
        state
            .journal_sent(
                run,
                &[("a".into(), "create".into()), ("b".into(), "create".into())],
            )
            .unwrap();
        state
            .journal_outcomes(
                run,
                &[
                    JournalRow {
                        key: "a".into(),
                        action: "create".into(),
                        state: RowState::Succeeded,
                        destination_id: Some("1".into()),
                        message: None,
                    },
                    JournalRow {
                        key: "b".into(),
                        action: "create".into(),
                        state: RowState::Rejected,
                        destination_id: None,
                        message: Some("bad".into()),
                    },
                ],
            )
            .unwrap();
        assert_eq!(state.journal(run).unwrap()[1].state, RowState::Rejected);
        assert_eq!(state.unfinished_runs("s").unwrap().len(), 1);
        let path = state.next_snapshot_path("s", 0).unwrap();
        fs_err::write(&path, b"x").unwrap();
        let next = state
            .commit_generation(&Commit {
                sync: "s",
                base_generation: 0,
                snapshot_rows: 1,
                run_id: run,
                status: RunStatus::Partial,
                counts: RunCounts {
                    succeeded: 1,
                    rejected: 1,
                    ..counts()
                },
                message: None,
                resolved: &["a".into()],
                failed: &[("b".into(), "bad".into())],
            })
            .unwrap();
        assert_eq!(next, 1);
        assert_eq!(state.generation("s").unwrap().snapshot, Some(path));
        assert_eq!(state.pending_rows("s").unwrap()[0].message, "bad");
        assert!(state.unfinished_runs("s").unwrap().is_empty());
        assert_eq!(state.run(run).unwrap().unwrap().status, RunStatus::Partial);
        // A second commit from the same base is refused.
        let again = state.commit_generation(&Commit {
            sync: "s",
            base_generation: 0,
            snapshot_rows: 1,
            run_id: run,
            status: RunStatus::Succeeded,
            counts: counts(),
            message: None,
            resolved: &[],
            failed: &[],
        });
        assert!(matches!(again, Err(StateError::GenerationMoved { .. })));
    }

    #[test]
    fn a_second_lock_fails_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        let held = state.lock_sync("s").unwrap();
        let err = state.lock_sync("s").unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(held);
        state.lock_sync("s").unwrap();
    }
}
