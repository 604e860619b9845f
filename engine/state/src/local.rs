//! The embedded state backend: SQLite plus Parquet snapshot files under `.engine/`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    ByKey, Commit, JournalCounts, JournalRow, JournaledBatch, PendingRow, RowState, RunCounts,
    RunRecord, RunStatus, StateError, StateStore, SyncGeneration, SyncLock, check_name,
};

const SCHEMA_VERSION: i64 = 4;

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
-- Keyed by (run, row key) alone, without a rowid: the key is stored once, and a run's rows
-- read back in key order straight from the table.
CREATE TABLE IF NOT EXISTS journal (
    run_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    destination_id TEXT,
    message TEXT,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
-- A batch sent: one row per request, not per row (rows: each row's action and key, see
-- batch_codec.rs). Its rows count as `sent` until their outcomes are journaled. When every row
-- was written, the batch stays, with `written` (the record id of each row, in order) and its rows read as
-- `succeeded`; otherwise its rows go to `journal` and the batch goes, in one transaction.
-- Written batches go when their run commits (their rows are then in the snapshot).
CREATE TABLE IF NOT EXISTS sent_batches (
    run_id INTEGER NOT NULL,
    first_key TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    rows TEXT NOT NULL,
    written TEXT,
    PRIMARY KEY (run_id, first_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending (
    sync TEXT NOT NULL,
    key TEXT NOT NULL,
    message TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    held_fp TEXT,
    PRIMARY KEY (sync, key)
);
";

/// Upgrades a version-1 state in place: rejected rows gained the fingerprint of the change
/// the destination refused.
const MIGRATE_1_TO_2: &str = "ALTER TABLE pending ADD COLUMN held_fp TEXT;";

/// Upgrades a version-2 state in place: batches are journaled as sent one row per request.
/// Rows a version-2 engine journaled as sent stay in the journal and are read as before.
const MIGRATE_2_TO_3: &str = "CREATE TABLE IF NOT EXISTS sent_batches (
    run_id INTEGER NOT NULL,
    first_key TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    rows TEXT NOT NULL,
    PRIMARY KEY (run_id, first_key)
) WITHOUT ROWID;";

/// Upgrades a version-3 state in place: a batch whose rows were all written stays one row.
const MIGRATE_3_TO_4: &str = "ALTER TABLE sent_batches ADD COLUMN written TEXT;";

/// State kept in files under the project's `.engine/` directory.
#[derive(Debug)]
pub struct LocalState {
    pub(crate) dir: PathBuf,
    lineage: String,
    plan_key: [u8; 32],
    conn: Mutex<Connection>,
}

impl LocalState {
    /// Opens (creating on first use) the state in `dir`.
    pub fn open(dir: &Path) -> Result<LocalState, StateError> {
        LocalState::open_here(dir).map_err(|error| {
            let full = match &error {
                StateError::Db(e) => crate::disk::disk_full_at(dir, e),
                StateError::Io(e) => crate::disk::disk_full_at(dir, e),
                _ => false,
            };
            if full {
                StateError::DiskFull {
                    dir: dir.to_path_buf(),
                    message: format!("the state cannot be opened: {error}"),
                }
            } else {
                error
            }
        })
    }

    fn open_here(dir: &Path) -> Result<LocalState, StateError> {
        let db = dir.join("state.db");
        let fresh = fs_err::metadata(&db).map(|m| m.len() == 0).unwrap_or(true);
        if fresh && let Some(snapshot) = any_snapshot(dir) {
            return Err(StateError::Corrupt {
                file: db.clone(),
                message: format!(
                    "the state database `{}` is missing or empty, but snapshots of earlier applies exist (e.g. `{}`); starting over would forget what was synced",
                    db.display(),
                    snapshot.display()
                ),
            });
        }
        fs_err::create_dir_all(dir.join("snapshots"))?;
        fs_err::create_dir_all(dir.join("runs"))?;
        fs_err::create_dir_all(dir.join("locks"))?;
        let conn = Connection::open(&db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        if fresh {
            // Pages freed by pruning go back to the file system (`state::prune`); only a
            // database without tables can take this setting.
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| corrupt_db(&db, &e))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .or_else(|e| match e {
                // A database without the meta table yet: a new state.
                rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.contains("no such table") => {
                    Ok(None)
                }
                other => Err(corrupt_db(&db, &other)),
            })?;
        match version {
            None => {
                conn.execute_batch(SCHEMA)?;
                let mut key = [0u8; 32];
                key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1), ('lineage', ?2), ('plan_key', ?3)",
                    params![
                        SCHEMA_VERSION.to_string(),
                        uuid::Uuid::new_v4().to_string(),
                        hex(&key)
                    ],
                )?;
            }
            Some(v) if v == "1" || v == "2" || v == "3" => {
                if v == "1" {
                    conn.execute_batch(MIGRATE_1_TO_2)?;
                }
                if v != "3" {
                    conn.execute_batch(MIGRATE_2_TO_3)?;
                }
                conn.execute_batch(MIGRATE_3_TO_4)?;
                conn.execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                    [SCHEMA_VERSION.to_string()],
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
        let lineage: String = conn
            .query_row("SELECT value FROM meta WHERE key = 'lineage'", [], |r| {
                r.get(0)
            })
            .map_err(|e| corrupt_db(&db, &e))?;
        let stored_key: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'plan_key'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let plan_key = match stored_key.as_deref().and_then(unhex) {
            Some(key) => key,
            None => {
                // A state made before plans were sealed: give it a key now.
                let mut key = [0u8; 32];
                key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('plan_key', ?1)",
                    [hex(&key)],
                )?;
                key
            }
        };
        Ok(LocalState {
            dir: dir.to_path_buf(),
            lineage,
            plan_key,
            conn: Mutex::new(conn),
        })
    }

    /// The generation the database records for a sync, without checking its snapshot file
    /// (for `engine state rebuild`, which replaces a missing or damaged one).
    pub fn recorded_generation(&self, sync: &str) -> Result<u64, StateError> {
        let sync = check_name(sync)?;
        let generation: Option<i64> = self
            .conn()
            .query_row(
                "SELECT generation FROM syncs WHERE sync = ?1",
                [sync],
                |r| r.get(0),
            )
            .optional()?;
        Ok(generation.unwrap_or(0) as u64)
    }

    /// Every sync the database knows, with its generation and the row count recorded when
    /// the generation was committed (for `engine state check`).
    pub fn recorded_syncs(&self) -> Result<Vec<(String, u64, u64)>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT sync, generation, rows FROM syncs ORDER BY sync")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A poisoned mutex only means another thread panicked mid-call; SQLite's own
        // transactions keep the data consistent, so carry on with the connection.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn plan_path(&self, run_id: i64) -> PathBuf {
        self.dir.join("runs").join(format!("{run_id}.plan.json"))
    }
}

/// Any snapshot file under `<dir>/snapshots`, to tell a lost database from a new state.
fn any_snapshot(dir: &Path) -> Option<PathBuf> {
    let syncs = fs_err::read_dir(dir.join("snapshots")).ok()?;
    for sync in syncs.flatten() {
        let Ok(files) = fs_err::read_dir(sync.path()) else {
            continue;
        };
        if let Some(file) = files
            .flatten()
            .map(|f| f.path())
            .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        {
            return Some(file);
        }
    }
    None
}

fn corrupt_db(db: &Path, error: &rusqlite::Error) -> StateError {
    let dir = db.parent().unwrap_or(db);
    if crate::disk::disk_full_at(dir, error) {
        return StateError::DiskFull {
            dir: dir.to_path_buf(),
            message: format!(
                "the state database `{}` cannot be opened: {error}",
                db.display()
            ),
        };
    }
    StateError::Corrupt {
        file: db.to_path_buf(),
        message: format!(
            "the state database `{}` cannot be read: {error}",
            db.display()
        ),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Writes journal rows of a run, inside the caller's transaction (a row's later outcome
/// replaces its earlier one).
fn write_journal_rows(tx: &Connection, run_id: i64, rows: &[JournalRow]) -> Result<(), StateError> {
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
    Ok(())
}

/// Runs `write` with its commits written to the log without waiting for the disk (SQLite's
/// `synchronous = NORMAL` in WAL mode), then restores `FULL`.
///
/// For the journal's `sent` and outcome rows only. A process that dies after such a commit
/// keeps it; only a power loss or an OS crash can take the last ones, and the database stays
/// consistent. What that loses is repaired like a crash before the journal was written: a
/// batch without its outcomes stays `sent` and recovery reads its rows back from the
/// destination; a batch without its `sent` is planned again from the last committed
/// generation. That is safe because every operation the engine sends is idempotent (an upsert
/// by a unique value, an update or clear of a known record): an operation that is not must be
/// journaled durably before it is sent. The run's start, the generation commit and pruning
/// stay `FULL`, and their fsync makes everything before them durable too.
fn without_waiting_for_the_disk<C, T>(
    conn: &mut C,
    write: impl FnOnce(&mut C) -> Result<T, StateError>,
) -> Result<T, StateError>
where
    C: std::ops::DerefMut<Target = Connection>,
{
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let written = write(conn);
    conn.pragma_update(None, "synchronous", "FULL")?;
    written
}

/// Records one batch about to be sent: one `sent_batches` row holding its rows.
fn write_sent(conn: &Connection, run_id: i64, rows: &[(String, String)]) -> Result<(), StateError> {
    let Some((first_key, _)) = rows.first() else {
        return Ok(());
    };
    let encoded = crate::batch_codec::encode_rows(rows);
    conn.prepare_cached(
        "INSERT OR REPLACE INTO sent_batches (run_id, first_key, row_count, rows) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![run_id, first_key, rows.len() as i64, encoded])?;
    Ok(())
}

/// Records one batch's outcomes, journaled together in the order the batch was sent. Every
/// row written with nothing to say (the usual answer): the batch row records their ids, and
/// stays the only row they take until the run commits. Otherwise (a failure, or a row done
/// with a message, such as a skipped create) each row is journaled and the batch row goes.
fn write_outcomes(conn: &Connection, run_id: i64, rows: &[JournalRow]) -> Result<(), StateError> {
    if let Some(first) = rows.first()
        && rows
            .iter()
            .all(|row| row.state == RowState::Succeeded && row.message.is_none())
    {
        let ids: Vec<Option<&str>> = rows
            .iter()
            .map(|row| row.destination_id.as_deref())
            .collect();
        let written = crate::batch_codec::encode_ids(&ids);
        let updated = conn
            .prepare_cached(
                "UPDATE sent_batches SET written = ?3
                 WHERE run_id = ?1 AND first_key = ?2 AND row_count = ?4 AND written IS NULL",
            )?
            .execute(params![run_id, first.key, written, rows.len() as i64])?;
        if updated == 1 {
            return Ok(());
        }
    }
    write_journal_rows(conn, run_id, rows)?;
    // The batch these outcomes answer is no longer in flight.
    if let Some(first) = rows.first() {
        conn.prepare_cached("DELETE FROM sent_batches WHERE run_id = ?1 AND first_key = ?2")?
            .execute(params![run_id, first.key])?;
    }
    Ok(())
}

/// Up to `limit` rows of run `run_id`'s batches (see `sent_batches`) with keys after `after`,
/// in key order: `sent` for a batch in flight, `succeeded` with its record id for a written
/// one; only those in state `only` when given. Reads the run's batches one at a time and keeps
/// only the `limit` first keys: for pages, single rows and counts; a run's rows as a stream
/// come from [`crate::journal_rows`].
fn batch_rows(
    conn: &Connection,
    run_id: i64,
    after: Option<&str>,
    only: Option<RowState>,
    limit: usize,
) -> Result<Vec<JournalRow>, StateError> {
    let mut kept = std::collections::BinaryHeap::new();
    for_each_batch_row(conn, run_id, only, |row| {
        if after.is_none_or(|after| row.key.as_str() > after) {
            kept.push(ByKey(row));
            if kept.len() > limit {
                kept.pop();
            }
        }
        Ok(())
    })?;
    let mut rows: Vec<JournalRow> = kept.into_iter().map(|ByKey(row)| row).collect();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(rows)
}

/// Calls `each` for every row of run `run_id`'s batches in state `only` (all when None), one
/// batch in memory at a time, in no particular order.
fn for_each_batch_row(
    conn: &Connection,
    run_id: i64,
    only: Option<RowState>,
    mut each: impl FnMut(JournalRow) -> Result<(), StateError>,
) -> Result<(), StateError> {
    let filter = match only {
        None => "",
        Some(RowState::Sent) => "AND written IS NULL",
        Some(RowState::Succeeded) => "AND written IS NOT NULL",
        Some(_) => return Ok(()),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {BATCH_COLUMNS} FROM sent_batches WHERE run_id = ?1 {filter}"
    ))?;
    let mut stored = stmt.query([run_id])?;
    while let Some(row) = stored.next()? {
        let batch = decode_batch(conn, run_id, batch_from_row(row)?)?;
        for row in batch.into_rows() {
            each(row)?;
        }
    }
    Ok(())
}

/// The columns [`batch_from_row`] reads.
const BATCH_COLUMNS: &str = "first_key, rows, written";

/// A `sent_batches` row as stored: first key, rows and written ids (see `batch_codec`).
type StoredBatch = (String, String, Option<String>);

fn batch_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredBatch> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

/// Parses a stored batch; a batch that does not parse is a damaged state.
fn decode_batch(
    conn: &Connection,
    run_id: i64,
    (first_key, rows, written): StoredBatch,
) -> Result<JournaledBatch, StateError> {
    let corrupt = |message: String| StateError::Corrupt {
        file: PathBuf::from(conn.path().unwrap_or("state.db")),
        message: format!("a batch in the journal of run {run_id} {message}"),
    };
    crate::batch_codec::decode_batch(first_key, &rows, written.as_deref(), corrupt)
}

fn journal_row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<JournalRow> {
    let state: String = r.get(2)?;
    Ok(JournalRow {
        key: r.get(0)?,
        action: r.get(1)?,
        state: RowState::parse(&state),
        destination_id: r.get(3)?,
        message: r.get(4)?,
    })
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

/// Writes `bytes` to `path` via a temporary file, fsync and rename: whole or not at all (a
/// half-written temporary file is removed).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let tmp = path.with_extension("tmp");
    let written = fs_err::File::create(&tmp).and_then(|mut file| {
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        fs_err::rename(&tmp, path)
    });
    if written.is_err() {
        let _ = fs_err::remove_file(&tmp);
    }
    Ok(written?)
}

impl StateStore for LocalState {
    fn lineage(&self) -> &str {
        &self.lineage
    }

    fn plan_key(&self) -> [u8; 32] {
        self.plan_key
    }

    fn generation(&self, sync: &str) -> Result<SyncGeneration, StateError> {
        let sync = check_name(sync)?;
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
            Some((generation, snapshot)) => {
                let snapshot = snapshot.map(|s| self.dir.join(s));
                if let Some(path) = snapshot.as_ref().filter(|p| !p.exists()) {
                    return Err(StateError::Corrupt {
                        file: path.clone(),
                        message: format!(
                            "the snapshot of sync `{sync}` at generation {generation} is missing: `{}`",
                            path.display()
                        ),
                    });
                }
                SyncGeneration {
                    generation: generation as u64,
                    snapshot,
                }
            }
        })
    }

    fn lock_sync(&self, sync: &str) -> Result<SyncLock, StateError> {
        let sync = check_name(sync)?;
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
        if let Err(e) = write_atomic(&self.plan_path(run_id), plan_json) {
            // Nothing was sent: the run never started. Should this fail too (the disk that
            // refused the file may refuse the delete), recovery finishes the run, since a
            // run without its plan and without a journal sent nothing.
            let _ = self
                .conn()
                .execute("DELETE FROM runs WHERE id = ?1", [run_id]);
            return Err(e);
        }
        Ok(run_id)
    }

    fn journal_sent(&self, run_id: i64, rows: &[(String, String)]) -> Result<(), StateError> {
        let mut conn = self.conn();
        without_waiting_for_the_disk(&mut conn, |conn| write_sent(conn, run_id, rows))
    }

    fn journal_outcomes(&self, run_id: i64, rows: &[JournalRow]) -> Result<(), StateError> {
        let mut conn = self.conn();
        without_waiting_for_the_disk(&mut conn, |conn| {
            let tx = conn.transaction()?;
            write_outcomes(&tx, run_id, rows)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn journal_batches(
        &self,
        run_id: i64,
        answered: &[Vec<JournalRow>],
        sent: &[Vec<(String, String)>],
    ) -> Result<(), StateError> {
        let mut conn = self.conn();
        without_waiting_for_the_disk(&mut conn, |conn| {
            let tx = conn.transaction()?;
            for rows in answered {
                write_outcomes(&tx, run_id, rows)?;
            }
            for rows in sent {
                write_sent(&tx, run_id, rows)?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn journal(&self, run_id: i64) -> Result<Vec<JournalRow>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT key, action, state, destination_id, message FROM journal WHERE run_id = ?1 ORDER BY key",
        )?;
        let mut rows = stmt
            .query_map([run_id], journal_row_from)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.extend(batch_rows(&conn, run_id, None, None, usize::MAX)?);
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(rows)
    }

    fn journal_page(
        &self,
        run_id: i64,
        only: Option<RowState>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JournalRow>, StateError> {
        let rows = self.journal_table_page(run_id, only, after, limit)?;
        let batched = batch_rows(&self.conn(), run_id, after, only, limit)?;
        Ok(crate::merge_journal_page(rows, batched, limit))
    }

    fn journal_table_page(
        &self,
        run_id: i64,
        only: Option<RowState>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JournalRow>, StateError> {
        let conn = self.conn();
        // `key > ?` must be a plain range on the primary key, so each page starts where the
        // last one ended (an `?2 IS NULL OR …` form would scan the run from its start every
        // page); the state filter is checked along the range.
        let sql = match (after.is_some(), only.is_some()) {
            (false, false) => {
                "SELECT key, action, state, destination_id, message FROM journal
                 WHERE run_id = ?1 ORDER BY key LIMIT ?4"
            }
            (true, false) => {
                "SELECT key, action, state, destination_id, message FROM journal
                 WHERE run_id = ?1 AND key > ?2 ORDER BY key LIMIT ?4"
            }
            (false, true) => {
                "SELECT key, action, state, destination_id, message FROM journal
                 WHERE run_id = ?1 AND state = ?3 ORDER BY key LIMIT ?4"
            }
            (true, true) => {
                "SELECT key, action, state, destination_id, message FROM journal
                 WHERE run_id = ?1 AND key > ?2 AND state = ?3 ORDER BY key LIMIT ?4"
            }
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(
                params![
                    run_id,
                    after.unwrap_or_default(),
                    only.map_or("", RowState::as_str),
                    limit as i64
                ],
                journal_row_from,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn batch_page(
        &self,
        run_id: i64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JournaledBatch>, StateError> {
        let conn = self.conn();
        // A plain range on the primary key, page after page.
        let range = if after.is_some() {
            "AND first_key > ?2"
        } else {
            ""
        };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {BATCH_COLUMNS} FROM sent_batches
             WHERE run_id = ?1 {range} ORDER BY first_key LIMIT ?3"
        ))?;
        let stored = stmt
            .query_map(
                params![run_id, after.unwrap_or_default(), limit as i64],
                batch_from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        stored
            .into_iter()
            .map(|batch| decode_batch(&conn, run_id, batch))
            .collect()
    }

    fn journal_row(&self, run_id: i64, key: &str) -> Result<Option<JournalRow>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT key, action, state, destination_id, message FROM journal
             WHERE run_id = ?1 AND key = ?2",
        )?;
        if let Some(row) = stmt
            .query_row(params![run_id, key], journal_row_from)
            .optional()?
        {
            return Ok(Some(row));
        }
        let mut found = None;
        for_each_batch_row(&conn, run_id, None, |row| {
            if row.key == key {
                found = Some(row);
            }
            Ok(())
        })?;
        Ok(found)
    }

    fn journal_counts(&self, run_id: i64) -> Result<JournalCounts, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT action, state, count(*) FROM journal WHERE run_id = ?1 GROUP BY action, state",
        )?;
        let mut entries = stmt
            .query_map([run_id], |r| {
                let state: String = r.get(1)?;
                let rows: i64 = r.get(2)?;
                Ok((r.get(0)?, RowState::parse(&state), rows.max(0) as u64))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        // Rows of batches in flight count as sent, those of written batches as succeeded.
        for_each_batch_row(&conn, run_id, None, |row| {
            match entries
                .iter_mut()
                .find(|(action, state, _)| *action == row.action && *state == row.state)
            {
                Some(entry) => entry.2 += 1,
                None => entries.push((row.action, row.state, 1)),
            }
            Ok(())
        })?;
        Ok(JournalCounts { entries })
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
        let sync = check_name(sync)?;
        let dir = self.dir.join("snapshots").join(sync);
        fs_err::create_dir_all(&dir)?;
        Ok(dir.join(format!("gen-{}.parquet", generation + 1)))
    }

    fn commit_generation(&self, commit: &Commit<'_>) -> Result<u64, StateError> {
        check_name(commit.sync)?;
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
        // Before the run closes, which drops its batches.
        clear_pending_written_in_batches(&tx, commit.sync, commit.run_id)?;
        close_run(
            &tx,
            commit.run_id,
            commit.status,
            commit.counts,
            commit.message,
        )?;
        write_journal_rows(&tx, commit.run_id, commit.reconciled)?;
        // The run's journal says which rows are no longer pending and which now are.
        // Looked up per pending row (they are few), not gathered per row written.
        tx.execute(
            "DELETE FROM pending WHERE sync = ?1 AND EXISTS
                 (SELECT 1 FROM journal WHERE run_id = ?2 AND key = pending.key AND state = 'succeeded')",
            params![commit.sync, commit.run_id],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO pending (sync, key, message, run_id)
                 SELECT ?1, key, coalesce(message, ''), run_id FROM journal
                 WHERE run_id = ?2 AND state IN ('rejected', 'gave_up')",
            params![commit.sync, commit.run_id],
        )?;
        {
            let mut hold =
                tx.prepare_cached("UPDATE pending SET held_fp = ?3 WHERE sync = ?1 AND key = ?2")?;
            for (key, fingerprint) in commit.held {
                hold.execute(params![commit.sync, key, fingerprint])?;
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
        let mut stmt = conn.prepare(
            "SELECT key, message, run_id, held_fp FROM pending WHERE sync = ?1 ORDER BY key",
        )?;
        let rows = stmt
            .query_map([sync], |r| {
                Ok(PendingRow {
                    key: r.get(0)?,
                    message: r.get(1)?,
                    run_id: r.get(2)?,
                    held_fingerprint: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

/// Pending rows of `sync` that run `run_id` wrote in a batch that stays one row (see
/// `sent_batches`) are no longer pending. The pending rows are read first (they are few), then
/// the run's written batches once.
fn clear_pending_written_in_batches(
    tx: &rusqlite::Transaction<'_>,
    sync: &str,
    run_id: i64,
) -> Result<(), StateError> {
    let pending: std::collections::HashSet<String> = tx
        .prepare_cached("SELECT key FROM pending WHERE sync = ?1")?
        .query_map([sync], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if pending.is_empty() {
        return Ok(());
    }
    let mut clear = tx.prepare_cached("DELETE FROM pending WHERE sync = ?1 AND key = ?2")?;
    for_each_batch_row(tx, run_id, Some(RowState::Succeeded), |row| {
        if pending.contains(&row.key) {
            clear.execute(params![sync, row.key])?;
        }
        Ok(())
    })
}

fn close_run(
    tx: &rusqlite::Transaction<'_>,
    run_id: i64,
    status: RunStatus,
    counts: RunCounts,
    message: Option<&str>,
) -> Result<(), StateError> {
    // Batches still in flight when the run ended (it crashed with them on the wire) become
    // journal rows, so the finished run's journal is one table; recovered rows replace them.
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO journal (run_id, key, action, state) VALUES (?1, ?2, ?3, 'sent')",
    )?;
    for_each_batch_row(tx, run_id, Some(RowState::Sent), |row| {
        insert.execute(params![run_id, row.key, row.action])?;
        Ok(())
    })?;
    tx.execute("DELETE FROM sent_batches WHERE run_id = ?1", [run_id])?;
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

    /// The keys of run `run_id`'s journal in key order, only those in state `only` when given.
    fn journal_keys(state: &LocalState, run_id: i64, only: Option<RowState>) -> Vec<String> {
        crate::journal_rows(state, run_id, only)
            .map(|r| r.unwrap().key)
            .collect()
    }

    /// How many batches `sent_batches` holds, in flight or written whole.
    fn stored_batches(state: &LocalState) -> i64 {
        state
            .conn()
            .query_row("SELECT count(*) FROM sent_batches", [], |r| r.get(0))
            .unwrap()
    }

    /// A batch of creates about to be sent, as the executor journals it.
    fn batch(keys: &[&str]) -> Vec<(String, String)> {
        keys.iter()
            .map(|k| (k.to_string(), "create".to_string()))
            .collect()
    }

    #[test]
    fn a_batch_in_flight_reads_as_sent_rows_until_its_outcomes_replace_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        let run = state.begin_run("s", "p1", 0, b"{}", counts()).unwrap();
        let answered = |keys: &[&str]| -> Vec<JournalRow> {
            keys.iter()
                .map(|k| JournalRow {
                    key: k.to_string(),
                    action: "create".into(),
                    state: RowState::Succeeded,
                    destination_id: Some(format!("id-{k}")),
                    message: None,
                })
                .collect()
        };
        state.journal_sent(run, &batch(&["b", "d"])).unwrap();
        state.journal_sent(run, &batch(&["a", "c", "e"])).unwrap();
        state
            .journal_outcomes(run, &answered(&["a", "c", "e"]))
            .unwrap();
        let keys_in = |only| journal_keys(&state, run, only);
        assert_eq!(keys_in(Some(RowState::Sent)), ["b", "d"]);
        assert_eq!(keys_in(None), ["a", "b", "c", "d", "e"]);
        let page = state.journal_page(run, None, Some("b"), 2).unwrap();
        let page: Vec<&str> = page.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(page, ["c", "d"], "a page after `b` holds the next two keys");
        assert_eq!(
            state.journal_row(run, "d").unwrap().unwrap().state,
            RowState::Sent
        );
        let counts_now = state.journal_counts(run).unwrap();
        assert_eq!(counts_now.get(None, RowState::Sent), 2);
        assert_eq!(counts_now.get(Some("create"), RowState::Succeeded), 3);
        assert_eq!(
            state
                .journal_row(run, "c")
                .unwrap()
                .unwrap()
                .destination_id
                .as_deref(),
            Some("id-c"),
            "a written batch's rows read with their record ids"
        );
        let table_rows: i64 = state
            .conn()
            .query_row("SELECT count(*) FROM journal", [], |r| r.get(0))
            .unwrap();
        assert_eq!(table_rows, 0, "a batch written whole stays one row");

        // The run ends with `b`'s batch unanswered (a crash, then recovery): its rows stay
        // `sent` in the journal, and a row found written replaces its `sent` row. The written
        // batch's rows are in the snapshot now, and go with it.
        state
            .commit_generation(&Commit {
                sync: "s",
                base_generation: 0,
                snapshot_rows: 3,
                run_id: run,
                status: RunStatus::Recovered,
                counts: counts(),
                message: None,
                held: &[],
                reconciled: &answered(&["b"]),
            })
            .unwrap();
        assert_eq!(keys_in(Some(RowState::Sent)), ["d"]);
        assert_eq!(keys_in(None), ["b", "d"]);
        let batches = stored_batches(&state);
        assert_eq!(batches, 0);
    }

    #[test]
    fn answers_and_new_batches_journaled_together_read_as_journaled_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        let run = state.begin_run("s", "p1", 0, b"{}", counts()).unwrap();
        let outcome = |key: &str, state: RowState| JournalRow {
            key: key.to_string(),
            action: "create".into(),
            state,
            destination_id: (state == RowState::Succeeded).then(|| format!("id-{key}")),
            message: (state == RowState::Rejected).then(|| "no".to_string()),
        };
        // Two batches go out in one write; then both answers and a third batch in another.
        state
            .journal_batches(run, &[], &[batch(&["a", "b"]), batch(&["c", "d"])])
            .unwrap();
        assert_eq!(
            state
                .journal(run)
                .unwrap()
                .iter()
                .filter(|r| r.state == RowState::Sent)
                .count(),
            4
        );
        state
            .journal_batches(
                run,
                &[
                    vec![
                        outcome("a", RowState::Succeeded),
                        outcome("b", RowState::Succeeded),
                    ],
                    vec![
                        outcome("c", RowState::Succeeded),
                        outcome("d", RowState::Rejected),
                    ],
                ],
                &[batch(&["e"])],
            )
            .unwrap();
        let journal: Vec<(String, RowState, Option<String>)> = state
            .journal(run)
            .unwrap()
            .into_iter()
            .map(|r| (r.key, r.state, r.destination_id))
            .collect();
        let expected = [
            ("a", RowState::Succeeded, Some("id-a")),
            ("b", RowState::Succeeded, Some("id-b")),
            ("c", RowState::Succeeded, Some("id-c")),
            ("d", RowState::Rejected, None),
            ("e", RowState::Sent, None),
        ];
        let expected: Vec<(String, RowState, Option<String>)> = expected
            .iter()
            .map(|(k, s, id)| (k.to_string(), *s, id.map(str::to_string)))
            .collect();
        assert_eq!(journal, expected);
        // The batch written whole stays one row; the mixed one became journal rows.
        let batches = stored_batches(&state);
        assert_eq!(batches, 2, "`a, b` written and `e` in flight");
    }

    #[test]
    fn written_batches_of_interleaved_groups_stream_in_key_order_and_clear_pending_rows() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        // A first run leaves two rows pending.
        let first = state.begin_run("s", "p0", 0, b"{}", counts()).unwrap();
        let rejected = |key: &str| JournalRow {
            key: key.into(),
            action: "update".into(),
            state: RowState::Rejected,
            destination_id: None,
            message: Some("no".into()),
        };
        state
            .journal_outcomes(first, &[rejected("k005"), rejected("k150")])
            .unwrap();
        let commit = |run_id, base_generation| Commit {
            sync: "s",
            base_generation,
            snapshot_rows: 0,
            run_id,
            status: RunStatus::Succeeded,
            counts: counts(),
            message: None,
            held: &[],
            reconciled: &[],
        };
        state.commit_generation(&commit(first, 0)).unwrap();
        assert_eq!(state.pending_rows("s").unwrap().len(), 2);

        // The next run sends two groups whose key ranges overlap (updates: even keys, upserts:
        // odd keys), in batches of 10, answered out of order, plus a batch with a rejection.
        let run = state.begin_run("s", "p1", 1, b"{}", counts()).unwrap();
        let key = |i: u32| format!("k{i:03}");
        let mut batches = Vec::new();
        for (action, parity) in [("update", 0), ("create", 1)] {
            let keys: Vec<String> = (0..200).filter(|i| i % 2 == parity).map(key).collect();
            for chunk in keys.chunks(10) {
                let rows: Vec<(String, String)> = chunk
                    .iter()
                    .map(|k| (k.clone(), action.to_string()))
                    .collect();
                state.journal_sent(run, &rows).unwrap();
                batches.push(rows);
            }
        }
        batches.reverse();
        for (n, rows) in batches.iter().enumerate() {
            let outcomes: Vec<JournalRow> = rows
                .iter()
                .enumerate()
                .map(|(i, (key, action))| {
                    let refused = n == 3 && i == 4;
                    JournalRow {
                        key: key.clone(),
                        action: action.clone(),
                        state: if refused {
                            RowState::Rejected
                        } else {
                            RowState::Succeeded
                        },
                        destination_id: (!refused).then(|| format!("id-{key}")),
                        message: refused.then(|| "refused".to_string()),
                    }
                })
                .collect();
            state.journal_outcomes(run, &outcomes).unwrap();
        }
        let written: Vec<JournalRow> = crate::journal_rows(&state, run, Some(RowState::Succeeded))
            .collect::<Result<_, _>>()
            .unwrap();
        let keys: Vec<&str> = written.iter().map(|r| r.key.as_str()).collect();
        let mut expected: Vec<String> = (0..200).map(key).collect();
        let refused = &batches[3][4].0;
        expected.retain(|k| k != refused);
        assert_eq!(keys, expected, "every written row once, in key order");
        assert!(
            written
                .iter()
                .all(|r| r.destination_id.as_deref() == Some(&*format!("id-{}", r.key)))
        );
        let all = journal_keys(&state, run, None);
        assert_eq!(all, (0..200).map(key).collect::<Vec<_>>());
        let stored: i64 = state
            .conn()
            .query_row(
                "SELECT count(*) FROM journal WHERE run_id = ?1",
                [run],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            stored, 10,
            "only the batch with a rejection has rows of its own"
        );

        // The commit clears the pending rows this run wrote, wherever they were journaled.
        state.commit_generation(&commit(run, 1)).unwrap();
        let pending: Vec<String> = state
            .pending_rows("s")
            .unwrap()
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(pending, std::slice::from_ref(refused));
    }

    #[test]
    fn a_version_2_state_is_upgraded_and_keeps_its_sent_rows() {
        let dir = tempfile::tempdir().unwrap();
        let run = {
            let state = LocalState::open(dir.path()).unwrap();
            let run = state.begin_run("s", "p1", 0, b"{}", counts()).unwrap();
            let conn = state.conn();
            conn.execute_batch(
                "DROP TABLE sent_batches; UPDATE meta SET value = '2' WHERE key = 'schema_version';",
            )
            .unwrap();
            conn.execute(
                "INSERT INTO journal (run_id, key, action, state) VALUES (?1, 'k', 'create', 'sent')",
                [run],
            )
            .unwrap();
            run
        };
        let state = LocalState::open(dir.path()).unwrap();
        let sent = journal_keys(&state, run, Some(RowState::Sent));
        assert_eq!(sent, ["k"]);
        state
            .journal_sent(run, &[("m".into(), "create".into())])
            .unwrap();
        assert_eq!(
            state.journal_counts(run).unwrap().get(None, RowState::Sent),
            2
        );
    }

    #[test]
    fn a_version_3_state_is_upgraded_and_keeps_its_batch_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let run = {
            let state = LocalState::open(dir.path()).unwrap();
            let run = state.begin_run("s", "p1", 0, b"{}", counts()).unwrap();
            state
                .journal_sent(run, &[("k".into(), "create".into())])
                .unwrap();
            state
                .conn()
                .execute_batch(
                    "ALTER TABLE sent_batches DROP COLUMN written;
                     UPDATE meta SET value = '3' WHERE key = 'schema_version';",
                )
                .unwrap();
            run
        };
        let state = LocalState::open(dir.path()).unwrap();
        let sent = journal_keys(&state, run, Some(RowState::Sent));
        assert_eq!(sent, ["k"]);
        let answered = JournalRow {
            key: "k".into(),
            action: "create".into(),
            state: RowState::Succeeded,
            destination_id: Some("7".into()),
            message: None,
        };
        state
            .journal_outcomes(run, std::slice::from_ref(&answered))
            .unwrap();
        assert_eq!(state.journal(run).unwrap(), [answered]);
    }

    #[test]
    fn names_that_are_not_plain_file_names_never_reach_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        for bad in ["../../x", "a/b", "", ".hidden", "x\0", &"s".repeat(101)] {
            assert!(matches!(
                state.lock_sync(bad),
                Err(StateError::InvalidName(_))
            ));
            assert!(matches!(
                state.next_snapshot_path(bad, 0),
                Err(StateError::InvalidName(_))
            ));
            assert!(matches!(
                state.generation(bad),
                Err(StateError::InvalidName(_))
            ));
        }
        assert!(!dir.path().parent().unwrap().join("x.lock").exists());
        for good in ["users_to_hubspot", "_a-1", &"s".repeat(100)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn a_lost_database_beside_snapshots_is_corrupt_not_a_new_state() {
        let dir = tempfile::tempdir().unwrap();
        {
            let state = LocalState::open(dir.path()).unwrap();
            let path = state.next_snapshot_path("s", 0).unwrap();
            fs_err::write(path, b"x").unwrap();
        }
        fs_err::remove_file(dir.path().join("state.db")).unwrap();
        let _ = fs_err::remove_file(dir.path().join("state.db-wal"));
        let _ = fs_err::remove_file(dir.path().join("state.db-shm"));
        let err = LocalState::open(dir.path()).unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        assert!(!dir.path().join("state.db").exists(), "nothing was created");
    }
}
