//! Keeping the state small: run history within its retention, nothing a committed run no
//! longer needs, and no leftovers of crashed commands.
//!
//! What a finished run leaves behind is only what `engine runs show` reads: its row in run
//! history, the journal rows of the rows it did not write (with the destination's message)
//! and of the rows the destination left as they were (done, with why), and the header of its
//! plan (skipped and held rows). The rows it wrote are in the snapshot, so their journal rows
//! go as soon as the run commits. Runs beyond the retention go whole.
//! Snapshots other than the current generation's, change files of runs that are over, and
//! scratch files of crashed commands go too. An interrupted run (still `running`) keeps
//! everything until an apply recovers it.
//!
//! Pruning is crash-safe: the database changes first, in one transaction, and files go after
//! it; a file is removed only once nothing in the database refers to it, so a kill at any
//! point leaves a state the next command accepts, and the next prune finishes the job.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::params;

use crate::{LocalState, StateError, check_name};

/// How much run history to keep, per sync: the newest `runs` finished runs, none older than
/// `days` days, but always the newest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    /// Finished runs kept per sync.
    pub runs: u32,
    /// Days a finished run is kept.
    pub days: u32,
}

/// Scratch files (`tmp/`) older than this belong to no running command.
pub(crate) const SCRATCH_AGE: Duration = Duration::from_secs(24 * 3600);

/// What pruning removed, or would remove on a dry run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Runs removed from run history.
    pub runs: u64,
    /// Journal rows removed.
    pub journal_rows: u64,
    /// Files and directories removed, with their size in bytes.
    pub files: Vec<(PathBuf, u64)>,
    /// Bytes the database file gave back.
    pub database_bytes: u64,
    /// Files that could not be removed (a read-only directory, say), with why: nothing that
    /// refers to them is left, so the next prune tries again.
    pub failed: Vec<(PathBuf, String)>,
}

impl Pruned {
    /// Bytes of the files removed plus what the database gave back.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|(_, b)| b).sum::<u64>() + self.database_bytes
    }

    /// True when nothing was (or would be) removed.
    pub fn is_empty(&self) -> bool {
        self.runs == 0
            && self.journal_rows == 0
            && self.files.is_empty()
            && self.database_bytes == 0
    }

    pub(crate) fn absorb(&mut self, other: Pruned) {
        self.runs += other.runs;
        self.journal_rows += other.journal_rows;
        self.files.extend(other.files);
        self.database_bytes += other.database_bytes;
        self.failed.extend(other.failed);
    }
}

/// The state's size by part, for `engine state check`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateSizes {
    /// `state.db` and its write-ahead log.
    pub database: u64,
    /// Current snapshots.
    pub snapshots: u64,
    /// Other files under `snapshots/` (older generations, leftovers).
    pub old_snapshots: u64,
    /// Plan headers of runs in history.
    pub run_plans: u64,
    /// Change files kept for interrupted runs (and leftovers).
    pub change_files: u64,
    /// Scratch files under `tmp/`.
    pub scratch: u64,
    /// Change files that saved plans keep for an apply on this machine (`plans/`).
    pub kept_plans: u64,
}

impl StateSizes {
    /// Everything.
    pub fn total(&self) -> u64 {
        self.database
            + self.snapshots
            + self.old_snapshots
            + self.run_plans
            + self.change_files
            + self.scratch
            + self.kept_plans
    }
}

impl LocalState {
    /// Prunes what sync `sync` no longer needs (see the module docs). The caller holds the
    /// sync's lock, so no apply of it runs meanwhile. With `dry_run`, only reports.
    pub fn prune_sync(&self, sync: &str, keep: Keep, dry_run: bool) -> Result<Pruned, StateError> {
        let sync = check_name(sync)?;
        let cutoff = cutoff(keep.days);
        let mut pruned = Pruned::default();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let dropped: Vec<i64> = {
            let mut stmt = tx.prepare(
                "SELECT id FROM runs WHERE sync = ?1 AND status <> 'running'
                   AND id < (SELECT max(id) FROM runs WHERE sync = ?1 AND status <> 'running')
                   AND (started_at < ?3 OR id NOT IN
                        (SELECT id FROM runs WHERE sync = ?1 AND status <> 'running'
                         ORDER BY id DESC LIMIT ?2))",
            )?;
            stmt.query_map(params![sync, keep.runs, cutoff], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let running_plans: Vec<String> = {
            let mut stmt =
                tx.prepare("SELECT plan_id FROM runs WHERE sync = ?1 AND status = 'running'")?;
            stmt.query_map([sync], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        pruned.runs = dropped.len() as u64;
        // Journal rows of dropped runs, and rows finished runs wrote (they are in the snapshot).
        let dropped_list = dropped
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        // Two filters, each a range of the journal's primary key (an `OR` of them would scan
        // the whole table).
        let journal_filters = [
            format!("run_id IN ({dropped_list}) AND ?1 IS NOT NULL"),
            "run_id IN (SELECT id FROM runs WHERE sync = ?1 AND status <> 'running')
                 AND state = 'succeeded' AND message IS NULL"
                .to_string(),
        ];
        if dry_run {
            let rows: i64 = tx.query_row(
                &format!(
                    "SELECT count(*) FROM journal WHERE ({}) OR ({})",
                    journal_filters[0], journal_filters[1]
                ),
                [sync],
                |r| r.get(0),
            )?;
            pruned.journal_rows = rows.max(0) as u64;
            drop(tx);
        } else {
            for filter in &journal_filters {
                let rows = tx.execute(&format!("DELETE FROM journal WHERE {filter}"), [sync])?;
                pruned.journal_rows += rows as u64;
            }
            tx.execute(
                &format!("DELETE FROM sent_batches WHERE run_id IN ({dropped_list})"),
                [],
            )?;
            tx.execute(
                &format!("DELETE FROM runs WHERE id IN ({dropped_list})"),
                [],
            )?;
            tx.commit()?;
        }
        drop(conn);

        // Files, now that nothing refers to them.
        let mut doomed: Vec<PathBuf> = dropped.iter().map(|id| self.plan_path(*id)).collect();
        doomed.extend(change_dirs(&self.dir.join("runs"), |plan_id, dir_sync| {
            dir_sync == sync && !running_plans.iter().any(|p| p == plan_id)
        }));
        let current = self
            .generation_snapshot(sync)?
            .and_then(|p| p.file_name().map(|n| n.to_os_string()));
        if let Ok(entries) = fs_err::read_dir(self.dir.join("snapshots").join(sync)) {
            for entry in entries.flatten() {
                if Some(entry.file_name()) != current {
                    doomed.push(entry.path());
                }
            }
        }
        remove_all(doomed, dry_run, &mut pruned);
        if !dry_run {
            pruned.database_bytes = self.give_back_free_pages()?;
        }
        Ok(pruned)
    }

    /// Prunes what belongs to no sync's history any more: plan headers of runs no longer in
    /// history, change files of runs that are over, scratch files and saved plans' kept change
    /// files older than a day, and the database's free pages (the first time, converting a
    /// state made before pruning existed, with one `VACUUM`). The caller holds every sync's lock.
    pub fn prune_leftovers(&self, dry_run: bool) -> Result<Pruned, StateError> {
        let mut pruned = Pruned::default();
        let (runs, running_plans): (Vec<i64>, Vec<String>) = {
            let conn = self.conn();
            let runs = conn
                .prepare("SELECT id FROM runs")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let running = conn
                .prepare("SELECT plan_id FROM runs WHERE status = 'running'")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            (runs, running)
        };
        let mut doomed = Vec::new();
        if let Ok(entries) = fs_err::read_dir(self.dir.join("runs")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(id) = name
                    .strip_suffix(".plan.json")
                    .and_then(|id| id.parse::<i64>().ok())
                    && !runs.contains(&id)
                {
                    doomed.push(entry.path());
                }
            }
        }
        doomed.extend(change_dirs(&self.dir.join("runs"), |plan_id, _| {
            !running_plans.iter().any(|p| p == plan_id)
        }));
        let old = SystemTime::now()
            .checked_sub(SCRATCH_AGE)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        // Scratch, and the change files saved plans kept, older than a day: an apply of such
        // a plan reads the file in full instead.
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
        remove_all(doomed, dry_run, &mut pruned);
        let free = self.free_bytes()?;
        if dry_run {
            pruned.database_bytes = free;
        } else {
            let incremental: i64 = self
                .conn()
                .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
            if incremental != 2 {
                // A state made before pruning existed: switch it over, once.
                let before = self.database_size();
                let conn = self.conn();
                conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
                conn.execute_batch("VACUUM")?;
                drop(conn);
                pruned.database_bytes = before.saturating_sub(self.database_size());
            } else {
                pruned.database_bytes = self.give_back_free_pages()?;
            }
        }
        Ok(pruned)
    }

    /// Prunes every recorded sync and the leftovers ([`LocalState::prune_sync`],
    /// [`LocalState::prune_leftovers`]). The caller holds every sync's lock.
    pub fn prune_all(&self, keep: Keep, dry_run: bool) -> Result<Pruned, StateError> {
        let mut syncs: Vec<String> = self
            .recorded_syncs()?
            .into_iter()
            .map(|(sync, _, _)| sync)
            .chain(self.history_syncs()?)
            .collect();
        syncs.sort();
        syncs.dedup();
        let mut pruned = Pruned::default();
        for sync in syncs {
            pruned.absorb(self.prune_sync(&sync, keep, dry_run)?);
        }
        pruned.absorb(self.prune_leftovers(dry_run)?);
        Ok(pruned)
    }

    /// The state's size by part.
    pub fn sizes(&self) -> Result<StateSizes, StateError> {
        let mut sizes = StateSizes {
            database: self.database_size(),
            ..StateSizes::default()
        };
        let mut current = Vec::new();
        for (sync, _, _) in self.recorded_syncs()? {
            if let Some(path) = self.generation_snapshot(&sync)? {
                current.push(path);
            }
        }
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
        if let Ok(entries) = fs_err::read_dir(self.dir.join("runs")) {
            for entry in entries.flatten() {
                let bytes = size_of(&entry.path());
                if entry.path().is_dir() {
                    sizes.change_files += bytes;
                } else {
                    sizes.run_plans += bytes;
                }
            }
        }
        sizes.scratch = size_of(&self.dir.join("tmp"));
        sizes.kept_plans = size_of(&self.dir.join("plans"));
        Ok(sizes)
    }

    /// Syncs with runs in history.
    fn history_syncs(&self) -> Result<Vec<String>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT DISTINCT sync FROM runs")?;
        let syncs = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(syncs)
    }

    /// The absolute path of a sync's current snapshot, if it has one.
    fn generation_snapshot(&self, sync: &str) -> Result<Option<PathBuf>, StateError> {
        let conn = self.conn();
        let relative: Option<Option<String>> = conn
            .query_row("SELECT snapshot FROM syncs WHERE sync = ?1", [sync], |r| {
                r.get(0)
            })
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })?;
        Ok(relative.flatten().map(|r| self.dir.join(r)))
    }

    /// Bytes in the database's free pages.
    fn free_bytes(&self) -> Result<u64, StateError> {
        let conn = self.conn();
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok((free.max(0) * page.max(0)) as u64)
    }

    /// Returns free pages to the file system (a state with incremental auto-vacuum; others
    /// keep them until `engine state gc` converts them). Returns the bytes given back.
    fn give_back_free_pages(&self) -> Result<u64, StateError> {
        let free = self.free_bytes()?;
        if free == 0 {
            return Ok(0);
        }
        let conn = self.conn();
        let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
        if mode != 2 {
            return Ok(0);
        }
        // Each step frees one page and yields a row: step to the end.
        let mut stmt = conn.prepare("PRAGMA incremental_vacuum")?;
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
        drop(rows);
        drop(stmt);
        drop(conn);
        Ok(free.saturating_sub(self.free_bytes()?))
    }

    /// `state.db` and its write-ahead log, in bytes.
    fn database_size(&self) -> u64 {
        ["state.db", "state.db-wal"]
            .iter()
            .map(|f| size_of(&self.dir.join(f)))
            .sum()
    }
}

/// The RFC 3339 time `days` days ago, comparable with the runs' `started_at`.
pub(crate) fn cutoff(days: u32) -> String {
    let now = chrono::Utc::now();
    let then = now - chrono::Duration::days(i64::from(days));
    // The format `started_at` is written in, so the two compare as text.
    then.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Change-file directories under `runs/` (`<plan id>-<sync>`, the plan id a UUID) that `doomed`
/// picks, given the plan id and the sync.
pub(crate) fn change_dirs(runs: &Path, doomed: impl Fn(&str, &str) -> bool) -> Vec<PathBuf> {
    const UUID_LEN: usize = 36;
    let mut out = Vec::new();
    let Ok(entries) = fs_err::read_dir(runs) else {
        return out;
    };
    for entry in entries.flatten() {
        if !entry.path().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.len() <= UUID_LEN + 1 || !name.is_char_boundary(UUID_LEN) {
            continue;
        }
        let (plan_id, rest) = name.split_at(UUID_LEN);
        if let Some(sync) = rest.strip_prefix('-')
            && doomed(plan_id, sync)
        {
            out.push(entry.path());
        }
    }
    out
}

/// Removes `paths` (files or directories), recording each with its size; a path already gone
/// (a prune that was killed after removing it) is skipped.
pub(crate) fn remove_all(paths: Vec<PathBuf>, dry_run: bool, pruned: &mut Pruned) {
    for path in paths {
        let bytes = size_of(&path);
        let removed = if dry_run {
            Ok(path.exists())
        } else if path.is_dir() {
            fs_err::remove_dir_all(&path).map(|()| true)
        } else {
            fs_err::remove_file(&path).map(|()| true)
        };
        match removed {
            Ok(true) => pruned.files.push((path, bytes)),
            Ok(false) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => pruned.failed.push((path, e.to_string())),
        }
    }
}

/// Bytes of a file, or of everything under a directory.
pub(crate) fn size_of(path: &Path) -> u64 {
    let Ok(meta) = fs_err::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs_err::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| size_of(&e.path()))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Commit, JournalRow, RowState, RunCounts, RunStatus, StateStore};

    const PLAN_ID: &str = "00000000-0000-4000-8000-0000000000";

    fn row(key: &str, state: RowState) -> JournalRow {
        JournalRow {
            key: key.into(),
            action: "create".into(),
            state,
            destination_id: None,
            message: (state != RowState::Succeeded).then(|| "bad".to_string()),
        }
    }

    /// One committed run of `sync` that wrote `a` and had `b` rejected, with its change dir.
    fn committed_run(state: &LocalState, sync: &str, n: u64) -> i64 {
        let plan_id = format!("{PLAN_ID}{n:02}");
        let base = state.generation(sync).unwrap().generation;
        let run = state
            .begin_run(sync, &plan_id, base, b"{}", RunCounts::default())
            .unwrap();
        fs_err::create_dir_all(state.dir.join("runs").join(format!("{plan_id}-{sync}"))).unwrap();
        state
            .journal_outcomes(
                run,
                &[
                    row(&format!("a{n}"), RowState::Succeeded),
                    row(&format!("b{n}"), RowState::Rejected),
                ],
            )
            .unwrap();
        let path = state.next_snapshot_path(sync, base).unwrap();
        fs_err::write(&path, b"snapshot").unwrap();
        state
            .commit_generation(&Commit {
                sync,
                base_generation: base,
                snapshot_rows: 1,
                run_id: run,
                status: RunStatus::Partial,
                counts: RunCounts::default(),
                message: None,
                held: &[],
                reconciled: &[],
            })
            .unwrap();
        run
    }

    /// Pruning keeps the newest runs and what `runs show` reads of them (failed rows, plan
    /// headers), drops the rest, the journal rows of rows written, older snapshots and change
    /// files of finished runs; an interrupted run keeps everything; pending rows stay; a dry
    /// run changes nothing; the database gives its free pages back.
    #[test]
    fn pruning_keeps_history_within_retention_and_what_recovery_needs() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        let runs: Vec<i64> = (0..5).map(|n| committed_run(&state, "s", n)).collect();
        // An interrupted run: everything it has stays until it is recovered.
        let crashed_plan = format!("{PLAN_ID}99");
        let crashed = state
            .begin_run("s", &crashed_plan, 5, b"{}", RunCounts::default())
            .unwrap();
        state
            .journal_outcomes(crashed, &[row("c", RowState::Succeeded)])
            .unwrap();
        let crashed_dir = state.dir.join("runs").join(format!("{crashed_plan}-s"));
        fs_err::create_dir_all(&crashed_dir).unwrap();
        // A sync named like a suffix of another keeps its own change files.
        let other = committed_run(&state, "x-s", 7);

        let keep = Keep { runs: 2, days: 90 };
        let dry = state.prune_sync("s", keep, true).unwrap();
        assert_eq!(dry.runs, 3);
        assert_eq!(
            state.runs(100).unwrap().len(),
            7,
            "a dry run changes nothing"
        );
        assert!(state.plan_path(runs[0]).exists());

        let pruned = state.prune_sync("s", keep, false).unwrap();
        assert_eq!(pruned.runs, dry.runs);
        assert_eq!(pruned.journal_rows, dry.journal_rows);
        assert_eq!(pruned.files, dry.files);
        let left: Vec<i64> = state.runs(100).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(left, vec![other, crashed, runs[4], runs[3]]);
        for run in &runs[..3] {
            assert!(!state.plan_path(*run).exists());
            assert!(state.journal(*run).unwrap().is_empty());
        }
        // Kept runs keep their failed rows only; the crashed run keeps all it journaled.
        assert_eq!(
            state.journal(runs[4]).unwrap(),
            vec![row("b4", RowState::Rejected)]
        );
        assert_eq!(state.journal(crashed).unwrap().len(), 1);
        assert!(crashed_dir.exists());
        assert!(state.plan_path(crashed).exists());
        // Only the current snapshot is left; other syncs are untouched.
        let snapshots: Vec<_> = fs_err::read_dir(state.dir.join("snapshots/s"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(snapshots, vec![std::ffi::OsString::from("gen-5.parquet")]);
        assert!(
            state
                .dir
                .join("runs")
                .join(format!("{PLAN_ID}07-x-s"))
                .exists()
        );
        assert_eq!(state.journal(other).unwrap().len(), 2);
        // Rows still pending stay pending.
        assert_eq!(state.pending_rows("s").unwrap().len(), 5);

        // Pruning again finds nothing; leftovers (a plan header without a run) go.
        assert!(state.prune_sync("s", keep, false).unwrap().runs == 0);
        fs_err::write(state.dir.join("runs/12345.plan.json"), b"{}").unwrap();
        let leftovers = state.prune_leftovers(false).unwrap();
        let gone: Vec<String> = leftovers
            .files
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            gone,
            vec!["12345.plan.json".to_string(), format!("{PLAN_ID}07-x-s")],
            "the header without a run, and the change files of the other sync's finished run"
        );
        assert!(crashed_dir.exists());
        let mode: i64 = state
            .conn()
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 2, "a new state gives free pages back");
    }

    /// The pages the journal of a large run took are given back once its rows are pruned.
    #[test]
    fn pruned_journal_pages_go_back_to_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        let run = state
            .begin_run("s", &format!("{PLAN_ID}01"), 0, b"{}", RunCounts::default())
            .unwrap();
        let rows: Vec<JournalRow> = (0..50_000)
            .map(|i| row(&format!("key-{i:08}"), RowState::Succeeded))
            .collect();
        state.journal_outcomes(run, &rows).unwrap();
        let path = state.next_snapshot_path("s", 0).unwrap();
        fs_err::write(&path, b"snapshot").unwrap();
        state
            .commit_generation(&Commit {
                sync: "s",
                base_generation: 0,
                snapshot_rows: 50_000,
                run_id: run,
                status: RunStatus::Succeeded,
                counts: RunCounts::default(),
                message: None,
                held: &[],
                reconciled: &[],
            })
            .unwrap();
        let pruned = state
            .prune_sync("s", Keep { runs: 10, days: 10 }, false)
            .unwrap();
        assert_eq!(pruned.journal_rows, 50_000);
        assert!(pruned.database_bytes > 1_000_000, "{pruned:?}");
        assert!(
            state.free_bytes().unwrap() < 100_000,
            "free pages left: {}",
            state.free_bytes().unwrap()
        );
    }

    /// Runs older than the retention's days go even within its count; the newest always stays.
    #[test]
    fn scratch_and_kept_plans_older_than_a_day_go_and_newer_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
        let mut made = Vec::new();
        for (parent, name, old) in [
            ("tmp", "plan-old", true),
            ("tmp", "plan-new", false),
            ("plans", &"a".repeat(64)[..], true),
            ("plans", &"b".repeat(64)[..], false),
        ] {
            let path = dir.path().join(parent).join(name);
            fs_err::create_dir_all(&path).unwrap();
            fs_err::write(path.join("changes-0-0.parquet"), b"x").unwrap();
            if old {
                std::fs::File::open(&path)
                    .unwrap()
                    .set_modified(two_days_ago)
                    .unwrap();
            }
            made.push((path, old));
        }
        assert_eq!(state.sizes().unwrap().kept_plans, 2);

        let listed = state.prune_leftovers(true).unwrap();
        for (path, old) in &made {
            assert_eq!(
                listed.files.iter().any(|(p, _)| p == path),
                *old,
                "{path:?}"
            );
            assert!(path.exists(), "a dry run removes nothing");
        }
        state.prune_leftovers(false).unwrap();
        for (path, old) in &made {
            assert_eq!(path.exists(), !old, "{path:?}");
        }
        assert_eq!(state.sizes().unwrap().kept_plans, 1);
    }

    #[test]
    fn old_runs_go_by_age_but_the_newest_stays() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(dir.path()).unwrap();
        let runs: Vec<i64> = (0..3).map(|n| committed_run(&state, "s", n)).collect();
        state
            .conn()
            .execute(
                "UPDATE runs SET started_at = '2000-01-01T00:00:00.000Z'",
                [],
            )
            .unwrap();
        let pruned = state
            .prune_sync("s", Keep { runs: 100, days: 1 }, false)
            .unwrap();
        assert_eq!(pruned.runs, 2);
        let left: Vec<i64> = state.runs(100).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(left, vec![runs[2]]);
    }
}
