//! Where the engine remembers what it synced: snapshots, per-row status, run history and the
//! apply journal, behind the [`StateStore`] trait.
//!
//! The embedded backend ([`LocalState`]) keeps everything under the project's `.engine/`:
//!
//! ```text
//! .engine/
//!   state.db                       SQLite (WAL): lineage, generations, runs, journal, row status
//!   snapshots/<sync>/gen-<N>.parquet   what the destination holds, per sync and generation
//!   runs/<id>.plan.json            the plan each run executed (recovery replays it)
//!   locks/<sync>.lock              an OS file lock held by the running apply
//! ```
//!
//! A generation moves forward in one SQLite transaction, after its snapshot file is fully
//! written and renamed into place, so a crash at any point leaves the previous generation in
//! force. The journal records each batch before it is sent and each outcome after, so a
//! crashed run can be folded into the next generation without sending anything twice.
//!
//! The shared backend ([`PostgresState`], `postgres/`) keeps the same things in a PostgreSQL
//! schema, with the snapshots cached under the project's state directory; [`State`] is either,
//! and [`transfer`] moves a state from one to the other.

mod backend;
#[cfg(test)]
mod backend_tests;
mod batch_codec;
mod bulk_jobs;
pub mod disk;
mod local;
mod lock;
mod lookups;
pub mod postgres;
mod prune;
mod transfer;

pub use backend::State;
pub use bulk_jobs::{BulkJob, BulkJobStore};
pub use local::LocalState;
pub use lock::SyncLock;
pub use lookups::LookupStore;
pub use postgres::{PostgresOptions, PostgresState};
pub use prune::{Keep, Pruned, StateSizes};
pub use transfer::{Transferred, transfer};

use std::path::PathBuf;

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another apply holds the sync's lock.
    #[error("sync `{sync}` is locked by another apply ({holder})")]
    Locked {
        /// The sync.
        sync: String,
        /// Who holds it (pid, host, start time), as written in the lock file.
        holder: String,
    },
    /// The generation moved while this apply ran (should not happen under the lock).
    #[error("sync `{sync}` moved from generation {expected} to {found} during this apply")]
    GenerationMoved {
        /// The sync.
        sync: String,
        /// The generation this apply started from.
        expected: u64,
        /// The generation found at commit.
        found: u64,
    },
    /// SQLite failed.
    #[error("state database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// A file under the state directory could not be read or written.
    #[error("state file error: {0}")]
    Io(#[from] std::io::Error),
    /// The state was written by an incompatible version.
    #[error("{0}")]
    Incompatible(String),
    /// A file of the state is missing or damaged; the message names it.
    #[error("{message}")]
    Corrupt {
        /// The damaged or missing file.
        file: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The disk holding the state has no space left; nothing is damaged, and the command
    /// can run again once space is freed.
    #[error("the disk holding `{}` is full: {message}", dir.display())]
    DiskFull {
        /// The state directory (or the file being written).
        dir: PathBuf,
        /// What could not be written.
        message: String,
    },
    /// The shared state's database answered with an error (or its connection was lost).
    #[error("state database error: {0}")]
    Postgres(String),
    /// The shared state's database cannot be reached or refused the login; the message names
    /// the server and user, never the password.
    #[error("cannot open the state database: {0}")]
    Connect(String),
    /// A sync name that cannot be a file name (from a hand-made plan, say).
    #[error(
        "`{0}` is not a valid sync name; names use ASCII letters, digits, `_` and `-` (at most 100)"
    )]
    InvalidName(String),
}

/// The longest sync name the state accepts (as `engine validate` does).
pub const MAX_NAME_LENGTH: usize = 100;

/// Checks that a sync name is safe as a file name inside the state directory: ASCII letters,
/// digits, `_` and `-`, starting with a letter or `_`, at most [`MAX_NAME_LENGTH`]
/// characters. Every path derived from a name goes through this first.
pub fn check_name(name: &str) -> Result<&str, StateError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= MAX_NAME_LENGTH;
    if valid {
        Ok(name)
    } else {
        Err(StateError::InvalidName(name.chars().take(120).collect()))
    }
}

/// The current generation of one sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGeneration {
    /// 0 before the first apply.
    pub generation: u64,
    /// The snapshot file of this generation (None at generation 0).
    pub snapshot: Option<PathBuf>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Still running, or crashed (no process holds the lock).
    Running,
    /// Every row succeeded.
    Succeeded,
    /// Some rows were rejected or given up on; they stay pending.
    Partial,
    /// Stopped by a fatal error (bad token, unreachable destination).
    Failed,
    /// Crashed; its journal was folded into the next generation by a later apply.
    Recovered,
}

impl RunStatus {
    /// The word stored in the database and shown by `engine runs`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Recovered => "recovered",
        }
    }

    fn parse(text: &str) -> RunStatus {
        match text {
            "succeeded" => RunStatus::Succeeded,
            "partial" => RunStatus::Partial,
            "failed" => RunStatus::Failed,
            "recovered" => RunStatus::Recovered,
            _ => RunStatus::Running,
        }
    }
}

/// One row's journaled outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    /// In a batch that was sent; no answer recorded yet.
    Sent,
    /// Written; the destination id is recorded.
    Succeeded,
    /// Refused by the destination; stays pending with its message.
    Rejected,
    /// Not written after all retries; stays pending.
    GaveUp,
}

impl RowState {
    /// The word stored in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Sent => "sent",
            RowState::Succeeded => "succeeded",
            RowState::Rejected => "rejected",
            RowState::GaveUp => "gave_up",
        }
    }

    fn parse(text: &str) -> RowState {
        match text {
            "succeeded" => RowState::Succeeded,
            "rejected" => RowState::Rejected,
            "gave_up" => RowState::GaveUp,
            _ => RowState::Sent,
        }
    }
}

/// A journal entry: what happened to one row in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRow {
    /// The row key.
    pub key: String,
    /// The plan action (`create`, `update`, `remove`).
    pub action: String,
    /// Outcome so far.
    pub state: RowState,
    /// The destination id, when it succeeded.
    pub destination_id: Option<String>,
    /// The destination's message, when rejected or given up.
    pub message: Option<String>,
}

/// A batch as the journal keeps it: one row per request. Its rows read as `sent` while it is in
/// flight, and as `succeeded` with their record ids once every one of them was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournaledBatch {
    /// The key of its first row (the batch's id within the run).
    pub first_key: String,
    /// Each row's key and plan action, in the order they were sent.
    pub rows: Vec<(String, String)>,
    /// The record id of each row, in order, once every row was written.
    pub written: Option<Vec<Option<String>>>,
}

impl JournaledBatch {
    /// The batch's rows as journal rows.
    pub fn into_rows(self) -> impl Iterator<Item = JournalRow> {
        let mut ids = self.written.map(Vec::into_iter);
        self.rows.into_iter().map(move |(key, action)| {
            // Some(record id) for a written batch's row, None for a row in flight.
            let id: Option<Option<String>> = ids.as_mut().map(|ids| ids.next().flatten());
            JournalRow {
                key,
                action,
                state: if id.is_some() {
                    RowState::Succeeded
                } else {
                    RowState::Sent
                },
                destination_id: id.flatten(),
                message: None,
            }
        })
    }
}

/// How many rows of one run are in each action and state (from its journal).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalCounts {
    /// `(action, state, rows)`.
    pub entries: Vec<(String, RowState, u64)>,
}

impl JournalCounts {
    /// Rows of `action` (all actions when None) in `state`.
    pub fn get(&self, action: Option<&str>, state: RowState) -> u64 {
        self.entries
            .iter()
            .filter(|(a, s, _)| *s == state && action.is_none_or(|action| action == a))
            .map(|(_, _, rows)| rows)
            .sum()
    }
}

/// Rows read from the journal a page at a time, in ascending key order.
const JOURNAL_PAGE_ROWS: usize = 4096;

/// A run's journal as a stream in ascending key order (only rows in state `only`, when given),
/// so a run of millions of rows is never held in memory: the journal's own rows a page at a
/// time, merged with the rows of its batches (see [`JournaledBatch`]).
pub fn journal_rows(
    state: &dyn StateStore,
    run_id: i64,
    only: Option<RowState>,
) -> impl Iterator<Item = Result<JournalRow, StateError>> + '_ {
    MergeByKey::new(
        journal_table_rows(state, run_id, only),
        BatchRows::new(state, run_id, only),
    )
}

/// The journal's own rows of a run in ascending key order, a page at a time, without the rows
/// of batches kept as one row: the rows journaled one by one, those with something to say (a
/// failure, or a row done with a message such as a skipped create).
pub fn journal_table_rows(
    state: &dyn StateStore,
    run_id: i64,
    only: Option<RowState>,
) -> impl Iterator<Item = Result<JournalRow, StateError>> + '_ {
    let mut page: std::vec::IntoIter<JournalRow> = Vec::new().into_iter();
    let mut after: Option<String> = None;
    let mut done = false;
    std::iter::from_fn(move || {
        loop {
            if let Some(row) = page.next() {
                after = Some(row.key.clone());
                return Some(Ok(row));
            }
            if done {
                return None;
            }
            match state.journal_table_page(run_id, only, after.as_deref(), JOURNAL_PAGE_ROWS) {
                Ok(rows) => {
                    done = rows.len() < JOURNAL_PAGE_ROWS;
                    page = rows.into_iter();
                }
                Err(e) => {
                    done = true;
                    return Some(Err(e));
                }
            }
        }
    })
}

/// Batches read a page at a time by [`BatchRows`].
const BATCH_PAGE: usize = 64;

/// The rows of a run's batches in ascending key order. Batches are read in the order of their
/// first keys; batches of different groups (update waves, upserts, clears) overlap in key
/// order, so rows wait in a heap until no unread batch can hold a smaller key: the heap holds
/// about one batch per group, whatever the run's size.
struct BatchRows<'a> {
    state: &'a dyn StateStore,
    run_id: i64,
    only: Option<RowState>,
    unread: std::collections::VecDeque<JournaledBatch>,
    last_first_key: Option<String>,
    exhausted: bool,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<ByKey>>,
    failed: bool,
}

/// A journal row ordered by its key alone (keys are unique within a run), for heaps.
pub(crate) struct ByKey(pub(crate) JournalRow);

impl PartialEq for ByKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}
impl Eq for ByKey {}
impl PartialOrd for ByKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.key.cmp(&other.0.key)
    }
}

impl<'a> BatchRows<'a> {
    fn new(state: &'a dyn StateStore, run_id: i64, only: Option<RowState>) -> Self {
        BatchRows {
            state,
            run_id,
            only,
            unread: std::collections::VecDeque::new(),
            last_first_key: None,
            // A batch's rows are only ever sent or succeeded: no need to read any for others.
            exhausted: only
                .is_some_and(|only| only != RowState::Sent && only != RowState::Succeeded),
            heap: std::collections::BinaryHeap::new(),
            failed: false,
        }
    }

    /// Reads the next page of batches when none is left unread.
    fn fill(&mut self) -> Result<(), StateError> {
        if self.unread.is_empty() && !self.exhausted {
            let page =
                self.state
                    .batch_page(self.run_id, self.last_first_key.as_deref(), BATCH_PAGE)?;
            self.exhausted = page.len() < BATCH_PAGE;
            if let Some(last) = page.last() {
                self.last_first_key = Some(last.first_key.clone());
            }
            self.unread.extend(page);
        }
        Ok(())
    }
}

impl Iterator for BatchRows<'_> {
    type Item = Result<JournalRow, StateError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            if let Err(e) = self.fill() {
                self.failed = true;
                return Some(Err(e));
            }
            // The smallest row waiting is next unless an unread batch may hold a smaller key.
            let take_waiting = match (self.heap.peek(), self.unread.front()) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(waiting), Some(batch)) => waiting.0.0.key < batch.first_key,
            };
            if take_waiting {
                return self.heap.pop().map(|row| Ok(row.0.0));
            }
            if let Some(batch) = self.unread.pop_front() {
                let only = self.only;
                self.heap.extend(
                    batch
                        .into_rows()
                        .filter(|row| only.is_none_or(|only| row.state == only))
                        .map(|row| std::cmp::Reverse(ByKey(row))),
                );
            }
        }
    }
}

/// Two streams of journal rows, each in ascending key order, as one in ascending key order.
pub struct MergeByKey<L: Iterator, R: Iterator> {
    left: std::iter::Peekable<L>,
    right: std::iter::Peekable<R>,
}

impl<L: Iterator, R: Iterator> MergeByKey<L, R> {
    /// Merges `left` and `right`.
    pub fn new(left: L, right: R) -> Self {
        MergeByKey {
            left: left.peekable(),
            right: right.peekable(),
        }
    }
}

impl<L, R> Iterator for MergeByKey<L, R>
where
    L: Iterator<Item = Result<JournalRow, StateError>>,
    R: Iterator<Item = Result<JournalRow, StateError>>,
{
    type Item = Result<JournalRow, StateError>;

    fn next(&mut self) -> Option<Self::Item> {
        let take_left = match (self.left.peek(), self.right.peek()) {
            (None, None) => return None,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(Ok(l)), Some(Ok(r))) => l.key <= r.key,
            (Some(Err(_)), _) => true,
            (_, Some(Err(_))) => false,
        };
        if take_left {
            self.left.next()
        } else {
            self.right.next()
        }
    }
}

/// Counts shown in run history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Rows the plan created.
    pub planned_create: u64,
    /// Rows the plan updated.
    pub planned_update: u64,
    /// Rows the plan removed.
    pub planned_remove: u64,
    /// Rows written.
    pub succeeded: u64,
    /// Rows refused by the destination.
    pub rejected: u64,
    /// Rows given up on after retries, or not reached before a fatal error.
    pub pending: u64,
}

/// A run in history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// Increasing id.
    pub id: i64,
    /// The sync.
    pub sync: String,
    /// The plan's id.
    pub plan_id: String,
    /// The generation the plan was made against.
    pub base_generation: u64,
    /// How it ended.
    pub status: RunStatus,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339, when finished.
    pub finished_at: Option<String>,
    /// Counts.
    pub counts: RunCounts,
    /// A fatal error's message, if any (never contains secrets: it comes from a Diagnostic).
    pub message: Option<String>,
}

/// What a pending row is waiting for: the last failure, shown in plans and `runs show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRow {
    /// The row key.
    pub key: String,
    /// The destination's message.
    pub message: String,
    /// The run that last tried it.
    pub run_id: i64,
    /// Set when the destination rejected the row's data: the fingerprint of the rejected
    /// change; the same change is not resent until the data changes or the user asks.
    pub held_fingerprint: Option<String>,
}

/// One page of a run's journal from its two halves, each already in key order and limited to
/// `limit`: rows kept one by one (`table`) and rows of batches kept as one row (`batched`).
/// Every backend answers [`StateStore::journal_page`] with it.
pub(crate) fn merge_journal_page(
    mut table: Vec<JournalRow>,
    batched: Vec<JournalRow>,
    limit: usize,
) -> Vec<JournalRow> {
    if !batched.is_empty() {
        table.extend(batched);
        table.sort_by(|a, b| a.key.cmp(&b.key));
        table.truncate(limit);
    }
    table
}

/// The state backend interface; [`LocalState`] is the embedded one, [`PostgresState`] the
/// shared one for teams and CI (see [`State`]).
pub trait StateStore {
    /// The state's identity, created once; a saved plan records it.
    fn lineage(&self) -> &str;
    /// The secret key saved plans are sealed with (created with the state, never shown).
    fn plan_key(&self) -> [u8; 32];
    /// The current generation of a sync.
    fn generation(&self, sync: &str) -> Result<SyncGeneration, StateError>;
    /// Takes the sync's apply lock, failing at once if another process holds it.
    fn lock_sync(&self, sync: &str) -> Result<SyncLock, StateError>;
    /// Records a run's start and the plan it executes.
    fn begin_run(
        &self,
        sync: &str,
        plan_id: &str,
        base_generation: u64,
        plan_json: &[u8],
        counts: RunCounts,
    ) -> Result<i64, StateError>;
    /// Journals that these rows are about to be sent (before the request goes out).
    fn journal_sent(&self, run_id: i64, rows: &[(String, String)]) -> Result<(), StateError>;
    /// Journals outcomes (after the response came back), in one transaction.
    fn journal_outcomes(&self, run_id: i64, rows: &[JournalRow]) -> Result<(), StateError>;
    /// Journals, together, the outcomes of batches just answered (each batch's rows as
    /// [`StateStore::journal_outcomes`] takes them) and the batches about to be sent (as
    /// [`StateStore::journal_sent`] takes them): the send loop writes once per answer, not
    /// twice. A store that cannot do it in one transaction writes them call by call,
    /// outcomes first.
    fn journal_batches(
        &self,
        run_id: i64,
        answered: &[Vec<JournalRow>],
        sent: &[Vec<(String, String)>],
    ) -> Result<(), StateError> {
        for rows in answered {
            self.journal_outcomes(run_id, rows)?;
        }
        for rows in sent {
            self.journal_sent(run_id, rows)?;
        }
        Ok(())
    }
    /// The journal of a run, whole (small runs and tests; large ones read [`journal_rows`]).
    fn journal(&self, run_id: i64) -> Result<Vec<JournalRow>, StateError>;
    /// Up to `limit` journal rows of a run whose keys come after `after`, in ascending key
    /// order, only those in state `only` when given, batches' rows included.
    fn journal_page(
        &self,
        run_id: i64,
        only: Option<RowState>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JournalRow>, StateError>;
    /// Like [`StateStore::journal_page`], without the rows of batches kept as one row (see
    /// [`JournaledBatch`]): one page of the journal's own rows for [`journal_rows`]. A store
    /// that keeps no batches answers with `journal_page`.
    fn journal_table_page(
        &self,
        run_id: i64,
        only: Option<RowState>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JournalRow>, StateError> {
        self.journal_page(run_id, only, after, limit)
    }
    /// Up to `limit` of a run's batches kept as one row, with first keys after `after`, in
    /// order of their first keys: the rest of [`journal_rows`]. None by default.
    fn batch_page(
        &self,
        run_id: i64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JournaledBatch>, StateError> {
        let _ = (run_id, after, limit);
        Ok(Vec::new())
    }
    /// One row's journal entry in a run.
    fn journal_row(&self, run_id: i64, key: &str) -> Result<Option<JournalRow>, StateError>;
    /// How many rows of a run are in each action and state.
    fn journal_counts(&self, run_id: i64) -> Result<JournalCounts, StateError>;
    /// The saved plan of a run.
    fn run_plan(&self, run_id: i64) -> Result<Vec<u8>, StateError>;
    /// Keeps a copy of a run's change files (what crash recovery replays) where another
    /// machine can read them, until the run closes. The local backend keeps nothing: the files
    /// stay under its own directory.
    fn keep_run_files(&self, run_id: i64, files: &[PathBuf]) -> Result<(), StateError> {
        let _ = (run_id, files);
        Ok(())
    }
    /// Writes the change files [`StateStore::keep_run_files`] kept for run `run_id` into
    /// `dir` and returns their paths in order; `None` when this store keeps none.
    fn restore_run_files(
        &self,
        run_id: i64,
        dir: &std::path::Path,
    ) -> Result<Option<Vec<PathBuf>>, StateError> {
        let _ = (run_id, dir);
        Ok(None)
    }
    /// Runs left `running` for a sync (crashed, since the caller holds the lock).
    fn unfinished_runs(&self, sync: &str) -> Result<Vec<RunRecord>, StateError>;
    /// Where the next generation's snapshot must be written.
    fn next_snapshot_path(&self, sync: &str, generation: u64) -> Result<PathBuf, StateError>;
    /// Moves the sync to `base_generation + 1` with the snapshot already written at
    /// `next_snapshot_path`, closes the run and updates pending rows, atomically.
    fn commit_generation(&self, commit: &Commit<'_>) -> Result<u64, StateError>;
    /// Closes a run that stopped without a new generation (fatal error before any success).
    fn finish_run_without_commit(
        &self,
        run_id: i64,
        status: RunStatus,
        counts: RunCounts,
        message: Option<&str>,
    ) -> Result<(), StateError>;
    /// Recent runs, newest first.
    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StateError>;
    /// One run.
    fn run(&self, run_id: i64) -> Result<Option<RunRecord>, StateError>;
    /// Rows of a sync waiting to be retried, with their last message.
    fn pending_rows(&self, sync: &str) -> Result<Vec<PendingRow>, StateError>;
}

/// Everything that moves a sync to its next generation.
#[derive(Debug)]
pub struct Commit<'a> {
    /// The sync.
    pub sync: &'a str,
    /// The generation the run started from.
    pub base_generation: u64,
    /// Rows in the new snapshot.
    pub snapshot_rows: u64,
    /// The run that produced it.
    pub run_id: i64,
    /// How the run ended.
    pub status: RunStatus,
    /// Its counts.
    pub counts: RunCounts,
    /// A fatal message, if the run stopped early.
    pub message: Option<&'a str>,
    /// Outcomes found after the fact (a crashed run's unanswered rows, read back from the
    /// destination): journaled in the commit's own transaction, so a crash before the commit
    /// leaves them unanswered and recovery reads them back again.
    pub reconciled: &'a [JournalRow],
    /// Of the run's failed keys (its journal says which: rows written are no longer pending,
    /// rows rejected or given up are), those rejected for their data, with the rejected change's
    /// fingerprint: held back until the data changes.
    pub held: &'a [(String, String)],
}
