//! The state a project uses, whichever backend holds it: what the sync lifecycle and the CLI
//! take, so neither cares where the state lives.

use std::path::Path;

use crate::{
    BulkJobStore, Commit, JournalCounts, JournalRow, JournaledBatch, Keep, LocalState, PendingRow,
    PostgresState, Pruned, RowState, RunCounts, RunRecord, RunStatus, StateError, StateSizes,
    StateStore, SyncGeneration, SyncLock,
};

/// A project's state: files under `.engine/` ([`LocalState`]) or a PostgreSQL schema shared
/// by every machine ([`PostgresState`]).
#[derive(Debug)]
pub enum State {
    /// The embedded backend.
    Local(LocalState),
    /// The shared backend.
    Postgres(PostgresState),
}

impl State {
    /// The local directory: the whole state (local), or its cache and scratch (PostgreSQL).
    pub fn dir(&self) -> &Path {
        match self {
            State::Local(state) => state.dir(),
            State::Postgres(state) => state.dir(),
        }
    }

    /// Where the state lives, for messages: the directory, or the schema and server.
    pub fn location(&self) -> String {
        match self {
            State::Local(state) => format!("`{}`", state.dir().display()),
            State::Postgres(state) => {
                format!("schema `{}` of `{}`", state.schema(), state.target())
            }
        }
    }

    /// The generation recorded for a sync, without reading its snapshot.
    pub fn recorded_generation(&self, sync: &str) -> Result<u64, StateError> {
        match self {
            State::Local(state) => state.recorded_generation(sync),
            State::Postgres(state) => state.recorded_generation(sync),
        }
    }

    /// Every recorded sync with its generation and row count.
    pub fn recorded_syncs(&self) -> Result<Vec<(String, u64, u64)>, StateError> {
        match self {
            State::Local(state) => state.recorded_syncs(),
            State::Postgres(state) => state.recorded_syncs(),
        }
    }

    /// Prunes what one sync no longer needs (see `prune.rs`).
    pub fn prune_sync(&self, sync: &str, keep: Keep, dry_run: bool) -> Result<Pruned, StateError> {
        match self {
            State::Local(state) => state.prune_sync(sync, keep, dry_run),
            State::Postgres(state) => state.prune_sync(sync, keep, dry_run),
        }
    }

    /// Prunes every sync and the leftovers.
    pub fn prune_all(&self, keep: Keep, dry_run: bool) -> Result<Pruned, StateError> {
        match self {
            State::Local(state) => state.prune_all(keep, dry_run),
            State::Postgres(state) => state.prune_all(keep, dry_run),
        }
    }

    /// The state's size by part.
    pub fn sizes(&self) -> Result<StateSizes, StateError> {
        match self {
            State::Local(state) => state.sizes(),
            State::Postgres(state) => state.sizes(),
        }
    }

    /// The bulk jobs of this state (shared with it: recovery on another machine finds them).
    pub fn bulk_jobs(&self) -> Result<BulkJobStore, StateError> {
        match self {
            State::Local(state) => BulkJobStore::open(state.dir()),
            State::Postgres(state) => Ok(BulkJobStore::postgres(state)),
        }
    }

    fn store(&self) -> &dyn StateStore {
        match self {
            State::Local(state) => state,
            State::Postgres(state) => state,
        }
    }
}

impl StateStore for State {
    fn lineage(&self) -> &str {
        self.store().lineage()
    }
    fn plan_key(&self) -> [u8; 32] {
        self.store().plan_key()
    }
    fn generation(&self, sync: &str) -> Result<SyncGeneration, StateError> {
        self.store().generation(sync)
    }
    fn lock_sync(&self, sync: &str) -> Result<SyncLock, StateError> {
        self.store().lock_sync(sync)
    }
    fn begin_run(
        &self,
        sync: &str,
        plan_id: &str,
        base_generation: u64,
        plan_json: &[u8],
        counts: RunCounts,
    ) -> Result<i64, StateError> {
        self.store()
            .begin_run(sync, plan_id, base_generation, plan_json, counts)
    }
    fn journal_sent(&self, run_id: i64, rows: &[(String, String)]) -> Result<(), StateError> {
        self.store().journal_sent(run_id, rows)
    }
    fn journal_outcomes(&self, run_id: i64, rows: &[JournalRow]) -> Result<(), StateError> {
        self.store().journal_outcomes(run_id, rows)
    }
    fn journal_batches(
        &self,
        run_id: i64,
        answered: &[Vec<JournalRow>],
        sent: &[Vec<(String, String)>],
    ) -> Result<(), StateError> {
        self.store().journal_batches(run_id, answered, sent)
    }
    fn journal(&self, run_id: i64) -> Result<Vec<JournalRow>, StateError> {
        self.store().journal(run_id)
    }
    fn journal_page(
        &self,
        run_id: i64,
        only: Option<RowState>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JournalRow>, StateError> {
        self.store().journal_page(run_id, only, after, limit)
    }
    fn journal_table_page(
        &self,
        run_id: i64,
        only: Option<RowState>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JournalRow>, StateError> {
        self.store().journal_table_page(run_id, only, after, limit)
    }
    fn batch_page(
        &self,
        run_id: i64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JournaledBatch>, StateError> {
        self.store().batch_page(run_id, after, limit)
    }
    fn journal_row(&self, run_id: i64, key: &str) -> Result<Option<JournalRow>, StateError> {
        self.store().journal_row(run_id, key)
    }
    fn journal_counts(&self, run_id: i64) -> Result<JournalCounts, StateError> {
        self.store().journal_counts(run_id)
    }
    fn run_plan(&self, run_id: i64) -> Result<Vec<u8>, StateError> {
        self.store().run_plan(run_id)
    }
    fn keep_run_files(&self, run_id: i64, files: &[std::path::PathBuf]) -> Result<(), StateError> {
        self.store().keep_run_files(run_id, files)
    }
    fn restore_run_files(
        &self,
        run_id: i64,
        dir: &Path,
    ) -> Result<Option<Vec<std::path::PathBuf>>, StateError> {
        self.store().restore_run_files(run_id, dir)
    }
    fn unfinished_runs(&self, sync: &str) -> Result<Vec<RunRecord>, StateError> {
        self.store().unfinished_runs(sync)
    }
    fn next_snapshot_path(
        &self,
        sync: &str,
        generation: u64,
    ) -> Result<std::path::PathBuf, StateError> {
        self.store().next_snapshot_path(sync, generation)
    }
    fn commit_generation(&self, commit: &Commit<'_>) -> Result<u64, StateError> {
        self.store().commit_generation(commit)
    }
    fn finish_run_without_commit(
        &self,
        run_id: i64,
        status: RunStatus,
        counts: RunCounts,
        message: Option<&str>,
    ) -> Result<(), StateError> {
        self.store()
            .finish_run_without_commit(run_id, status, counts, message)
    }
    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        self.store().runs(limit)
    }
    fn run(&self, run_id: i64) -> Result<Option<RunRecord>, StateError> {
        self.store().run(run_id)
    }
    fn pending_rows(&self, sync: &str) -> Result<Vec<PendingRow>, StateError> {
        self.store().pending_rows(sync)
    }
}
