//! The state store's behaviour, run against both backends from the same code: each test is a
//! function of a [`Backend`] (a way to open one state, here or on "another machine"), and
//! [`both_backends!`] runs it on a local state in a temporary directory and on a PostgreSQL
//! state in a fresh schema of the test database (`ENGINE_TEST_STATE_URL`, default
//! `postgres://root@127.0.0.1:5432/test`), dropped afterwards.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::NoTls;

use crate::postgres::Connect;
use crate::{
    Commit, JournalRow, Keep, LocalState, PostgresOptions, PostgresState, RowState, RunCounts,
    RunStatus, State, StateError, StateStore, SyncGeneration, check_name,
};

/// The test database's URL.
pub(crate) fn test_url() -> String {
    std::env::var("ENGINE_TEST_STATE_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_string())
}

/// Opens test connections without TLS.
pub(crate) fn test_connect() -> Connect {
    Arc::new(|application_name: String| {
        Box::pin(async move {
            let mut config: tokio_postgres::Config =
                test_url().parse().map_err(|e| format!("{e}"))?;
            config.application_name(&application_name);
            let (client, connection) = config.connect(NoTls).await.map_err(|e| format!("{e}"))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(client)
        })
    })
}

/// Runs SQL on the test database from outside any store (setup, checks, clean-up); the rows
/// of its results, as text.
pub(crate) fn psql(sql: &str) -> Vec<Vec<Option<String>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&test_url(), NoTls)
            .await
            .expect("the test database is reachable");
        tokio::spawn(connection);
        let messages = client.simple_query(sql).await.expect("the SQL runs");
        messages
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    })
}

/// One state under test, opened as often as a test needs.
pub(crate) trait Backend {
    /// Opens the state (again), as on the machine that made it.
    fn open(&self) -> State;
    /// Opens the same state as another machine would, with nothing of it on the local disk.
    fn open_elsewhere(&self) -> State;
}

/// A local state in a temporary directory.
pub(crate) struct Local(tempfile::TempDir);

impl Backend for Local {
    fn open(&self) -> State {
        State::Local(LocalState::open(self.0.path()).expect("the local state opens"))
    }
    fn open_elsewhere(&self) -> State {
        // The local state lives in one directory: another machine is the same directory.
        self.open()
    }
}

/// A PostgreSQL state in a schema of its own, dropped at the end.
pub(crate) struct Postgres {
    pub(crate) schema: String,
    dir: tempfile::TempDir,
    elsewhere: tempfile::TempDir,
}

impl Postgres {
    pub(crate) fn new(test: &str) -> Postgres {
        static N: AtomicU32 = AtomicU32::new(0);
        let mut schema = format!(
            "t{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            test
        );
        schema.truncate(63);
        psql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        Postgres {
            schema,
            dir: tempfile::tempdir().expect("a temporary directory"),
            elsewhere: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub(crate) fn open_in(&self, dir: &Path) -> Result<PostgresState, StateError> {
        PostgresState::open(PostgresOptions {
            connect: test_connect(),
            schema: self.schema.clone(),
            cache_dir: dir.to_path_buf(),
            target: "the test database".into(),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Backend for Postgres {
    fn open(&self) -> State {
        State::Postgres(
            self.open_in(self.dir.path())
                .expect("the PostgreSQL state opens"),
        )
    }
    fn open_elsewhere(&self) -> State {
        State::Postgres(
            self.open_in(self.elsewhere.path())
                .expect("the PostgreSQL state opens"),
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        psql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
    }
}

pub(crate) fn local() -> Local {
    Local(tempfile::tempdir().expect("a temporary directory"))
}

/// Runs each named test function on both backends.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::local());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::Postgres::new(stringify!($name)));
                }
            )*
        }
    };
}

both_backends!(
    lineage_is_stable_and_generation_starts_at_zero,
    commit_moves_the_generation_and_tracks_pending_rows,
    the_journal_streams_in_key_order_and_counts_by_action_and_state,
    a_batch_in_flight_reads_as_sent_rows_until_its_outcomes_replace_it,
    answers_and_new_batches_journaled_together_read_as_journaled_one_by_one,
    written_batches_of_interleaved_groups_stream_in_key_order_and_clear_pending_rows,
    names_that_are_not_plain_file_names_are_refused,
    a_second_lock_fails_naming_the_holder_and_a_released_lock_can_be_taken,
    another_machine_reads_the_snapshot_plan_and_journal_of_a_crashed_run,
    pruning_keeps_the_newest_runs_and_what_runs_show_reads,
    bulk_jobs_are_kept_per_run_and_forgotten,
);

fn counts() -> RunCounts {
    RunCounts {
        planned_create: 2,
        ..RunCounts::default()
    }
}

fn journal_keys(state: &State, run_id: i64, only: Option<RowState>) -> Vec<String> {
    crate::journal_rows(state, run_id, only)
        .map(|r| r.expect("the journal reads").key)
        .collect()
}

fn batch(keys: &[&str]) -> Vec<(String, String)> {
    keys.iter()
        .map(|k| (k.to_string(), "create".to_string()))
        .collect()
}

fn written(keys: &[&str]) -> Vec<JournalRow> {
    keys.iter()
        .map(|k| JournalRow {
            key: k.to_string(),
            action: "create".into(),
            state: RowState::Succeeded,
            destination_id: Some(format!("id-{k}")),
            message: None,
        })
        .collect()
}

fn commit<'a>(sync: &'a str, run_id: i64, base_generation: u64) -> Commit<'a> {
    Commit {
        sync,
        base_generation,
        snapshot_rows: 1,
        run_id,
        status: RunStatus::Succeeded,
        counts: counts(),
        message: None,
        held: &[],
        reconciled: &[],
    }
}

/// Writes a snapshot file for the next generation and commits it.
fn commit_with_snapshot(state: &State, c: &Commit<'_>, bytes: &[u8]) -> u64 {
    let path = state
        .next_snapshot_path(c.sync, c.base_generation)
        .expect("a snapshot path");
    fs_err::write(&path, bytes).expect("the snapshot is written");
    state.commit_generation(c).expect("the commit")
}

fn lineage_is_stable_and_generation_starts_at_zero(backend: &dyn Backend) {
    let lineage = backend.open().lineage().to_string();
    let state = backend.open();
    assert_eq!(state.lineage(), lineage);
    assert_eq!(backend.open_elsewhere().plan_key(), state.plan_key());
    assert_eq!(
        state.generation("s").unwrap(),
        SyncGeneration {
            generation: 0,
            snapshot: None
        }
    );
}

fn commit_moves_the_generation_and_tracks_pending_rows(backend: &dyn Backend) {
    let state = backend.open();
    let run = state.begin_run("s", "p1", 0, b"{}", counts()).unwrap();
    state.journal_sent(run, &batch(&["a", "b"])).unwrap();
    let mut outcomes = written(&["a"]);
    outcomes.push(JournalRow {
        key: "b".into(),
        action: "create".into(),
        state: RowState::Rejected,
        destination_id: None,
        message: Some("bad".into()),
    });
    state.journal_outcomes(run, &outcomes).unwrap();
    assert_eq!(state.journal(run).unwrap()[1].state, RowState::Rejected);
    assert_eq!(state.unfinished_runs("s").unwrap().len(), 1);
    let held = [("b".to_string(), "fp".to_string())];
    let next = commit_with_snapshot(
        &state,
        &Commit {
            status: RunStatus::Partial,
            held: &held,
            ..commit("s", run, 0)
        },
        b"x",
    );
    assert_eq!(next, 1);
    let path = state.generation("s").unwrap().snapshot.expect("a snapshot");
    assert_eq!(fs_err::read(path).unwrap(), b"x");
    let pending = state.pending_rows("s").unwrap();
    assert_eq!(pending.len(), 1, "only the rejected row: {pending:?}");
    assert_eq!(pending[0].message, "bad");
    assert_eq!(pending[0].held_fingerprint.as_deref(), Some("fp"));
    assert!(state.unfinished_runs("s").unwrap().is_empty());
    assert_eq!(state.run(run).unwrap().unwrap().status, RunStatus::Partial);
    assert_eq!(state.runs(10).unwrap().len(), 1);
    // A second commit from the same base is refused, and changes nothing.
    let again = state.commit_generation(&commit("s", run, 0));
    assert!(
        matches!(again, Err(StateError::GenerationMoved { found: 1, .. })),
        "{again:?}"
    );
    assert_eq!(state.generation("s").unwrap().generation, 1);
    // A later run that writes the pending row clears it.
    let second = state.begin_run("s", "p2", 1, b"{}", counts()).unwrap();
    state.journal_sent(second, &batch(&["b"])).unwrap();
    state.journal_outcomes(second, &written(&["b"])).unwrap();
    commit_with_snapshot(&state, &commit("s", second, 1), b"y");
    assert!(state.pending_rows("s").unwrap().is_empty());
    assert_eq!(state.recorded_generation("s").unwrap(), 2);
}

fn the_journal_streams_in_key_order_and_counts_by_action_and_state(backend: &dyn Backend) {
    let state = backend.open();
    let run = state.begin_run("s", "p1", 0, b"{}", counts()).unwrap();
    let rows: Vec<JournalRow> = (0..3_000u32)
        .rev()
        .map(|i| JournalRow {
            key: format!("k{i:05}"),
            action: if i % 3 == 0 { "update" } else { "create" }.into(),
            state: if i % 7 == 0 {
                RowState::Rejected
            } else {
                RowState::Succeeded
            },
            destination_id: Some(i.to_string()),
            message: None,
        })
        .collect();
    state.journal_outcomes(run, &rows).unwrap();
    let all = journal_keys(&state, run, None);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all.len(), 3_000);
    assert_eq!(all, sorted);
    let rejected = journal_keys(&state, run, Some(RowState::Rejected)).len();
    assert_eq!(rejected, (0..3_000).filter(|i| i % 7 == 0).count());
    let counts = state.journal_counts(run).unwrap();
    assert_eq!(counts.get(None, RowState::Rejected), rejected as u64);
    assert_eq!(
        state.journal_row(run, "k00007").unwrap().unwrap().state,
        RowState::Rejected
    );
    assert!(state.journal_row(run, "nope").unwrap().is_none());
    // Keys order by their bytes, whatever the database's collation says.
    let mixed = state.begin_run("s", "p2", 0, b"{}", counts_zero()).unwrap();
    state
        .journal_outcomes(mixed, &written(&["b", "B", "a_1", "a-1", "É"]))
        .unwrap();
    state
        .journal_outcomes(
            mixed,
            &[JournalRow {
                message: Some("kept".into()),
                ..written(&["Z"]).remove(0)
            }],
        )
        .unwrap();
    let mut expected = vec!["B", "Z", "a-1", "a_1", "b", "É"];
    expected.sort();
    assert_eq!(journal_keys(&state, mixed, None), expected);
}

fn counts_zero() -> RunCounts {
    RunCounts::default()
}

fn a_batch_in_flight_reads_as_sent_rows_until_its_outcomes_replace_it(backend: &dyn Backend) {
    let state = backend.open();
    let run = state.begin_run("s", "p1", 0, b"{}", counts()).unwrap();
    state.journal_sent(run, &batch(&["b", "d"])).unwrap();
    state.journal_sent(run, &batch(&["a", "c", "e"])).unwrap();
    state
        .journal_outcomes(run, &written(&["a", "c", "e"]))
        .unwrap();
    assert_eq!(journal_keys(&state, run, Some(RowState::Sent)), ["b", "d"]);
    assert_eq!(journal_keys(&state, run, None), ["a", "b", "c", "d", "e"]);
    let page = state.journal_page(run, None, Some("b"), 2).unwrap();
    let page: Vec<&str> = page.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(page, ["c", "d"]);
    assert_eq!(
        state.journal_row(run, "d").unwrap().unwrap().state,
        RowState::Sent
    );
    let now = state.journal_counts(run).unwrap();
    assert_eq!(now.get(None, RowState::Sent), 2);
    assert_eq!(now.get(Some("create"), RowState::Succeeded), 3);
    assert_eq!(
        state
            .journal_row(run, "c")
            .unwrap()
            .unwrap()
            .destination_id
            .as_deref(),
        Some("id-c")
    );
    commit_with_snapshot(
        &state,
        &Commit {
            status: RunStatus::Recovered,
            reconciled: &written(&["b"]),
            ..commit("s", run, 0)
        },
        b"x",
    );
    assert_eq!(journal_keys(&state, run, Some(RowState::Sent)), ["d"]);
    assert_eq!(journal_keys(&state, run, None), ["b", "d"]);
    assert!(state.batch_page(run, None, 10).unwrap().is_empty());
}

fn answers_and_new_batches_journaled_together_read_as_journaled_one_by_one(backend: &dyn Backend) {
    let state = backend.open();
    let run = state.begin_run("s", "p1", 0, b"{}", counts()).unwrap();
    let outcome = |key: &str, state: RowState| JournalRow {
        key: key.to_string(),
        action: "create".into(),
        state,
        destination_id: (state == RowState::Succeeded).then(|| format!("id-{key}")),
        message: (state == RowState::Rejected).then(|| "no".to_string()),
    };
    state
        .journal_batches(run, &[], &[batch(&["a", "b"]), batch(&["c", "d"])])
        .unwrap();
    assert_eq!(journal_keys(&state, run, Some(RowState::Sent)).len(), 4);
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
    let journal: Vec<(String, RowState)> = state
        .journal(run)
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.state))
        .collect();
    let expected: Vec<(String, RowState)> = [
        ("a", RowState::Succeeded),
        ("b", RowState::Succeeded),
        ("c", RowState::Succeeded),
        ("d", RowState::Rejected),
        ("e", RowState::Sent),
    ]
    .iter()
    .map(|(k, s)| (k.to_string(), *s))
    .collect();
    assert_eq!(journal, expected);
    assert_eq!(
        state.batch_page(run, None, 10).unwrap().len(),
        2,
        "`a, b` written whole and `e` in flight stay one row each"
    );
}

fn written_batches_of_interleaved_groups_stream_in_key_order_and_clear_pending_rows(
    backend: &dyn Backend,
) {
    let state = backend.open();
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
    commit_with_snapshot(&state, &commit("s", first, 0), b"1");
    assert_eq!(state.pending_rows("s").unwrap().len(), 2);
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
    let refused = &batches[3][4].0;
    let mut expected: Vec<String> = (0..200).map(key).collect();
    expected.retain(|k| k != refused);
    assert_eq!(
        journal_keys(&state, run, Some(RowState::Succeeded)),
        expected
    );
    assert_eq!(
        journal_keys(&state, run, None),
        (0..200).map(key).collect::<Vec<_>>()
    );
    commit_with_snapshot(&state, &commit("s", run, 1), b"2");
    let pending: Vec<String> = state
        .pending_rows("s")
        .unwrap()
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(pending, std::slice::from_ref(refused));
}

fn names_that_are_not_plain_file_names_are_refused(backend: &dyn Backend) {
    let state = backend.open();
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
    assert!(check_name("users_to_hubspot").is_ok());
}

fn a_second_lock_fails_naming_the_holder_and_a_released_lock_can_be_taken(backend: &dyn Backend) {
    let state = backend.open();
    let held = state.lock_sync("s").unwrap();
    let other = backend.open_elsewhere();
    let err = other.lock_sync("s").unwrap_err();
    let StateError::Locked { sync, holder } = &err else {
        panic!("expected a lock error, got {err}");
    };
    assert_eq!(sync, "s");
    assert!(
        holder.contains(&std::process::id().to_string()),
        "the holder names this process: {holder}"
    );
    // Another sync is not locked.
    let _t = other.lock_sync("t").unwrap();
    drop(held);
    drop(state);
    // The server sees a closed connection a moment after the client drops it.
    let mut taken = other.lock_sync("s");
    for _ in 0..50 {
        if taken.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        taken = other.lock_sync("s");
    }
    taken.expect("a released lock can be taken");
}

fn another_machine_reads_the_snapshot_plan_and_journal_of_a_crashed_run(backend: &dyn Backend) {
    let state = backend.open();
    let run = state
        .begin_run("s", "p0", 0, b"{\"plan\":0}", counts())
        .unwrap();
    state.journal_sent(run, &batch(&["a"])).unwrap();
    state.journal_outcomes(run, &written(&["a"])).unwrap();
    commit_with_snapshot(&state, &commit("s", run, 0), b"first snapshot");
    // A run crashes mid-way: a batch answered, one in flight.
    let crashed = state
        .begin_run("s", "p1", 1, b"{\"plan\":1}", counts())
        .unwrap();
    state.journal_sent(crashed, &batch(&["b", "c"])).unwrap();
    state
        .journal_outcomes(crashed, &written(&["b", "c"]))
        .unwrap();
    state.journal_sent(crashed, &batch(&["d"])).unwrap();
    drop(state);

    let elsewhere = backend.open_elsewhere();
    let generation = elsewhere.generation("s").unwrap();
    assert_eq!(generation.generation, 1);
    let snapshot = generation.snapshot.expect("the snapshot is materialized");
    assert_eq!(fs_err::read(&snapshot).unwrap(), b"first snapshot");
    let unfinished = elsewhere.unfinished_runs("s").unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(elsewhere.run_plan(crashed).unwrap(), b"{\"plan\":1}");
    assert_eq!(
        journal_keys(&elsewhere, crashed, Some(RowState::Sent)),
        ["d"]
    );
    assert_eq!(
        journal_keys(&elsewhere, crashed, Some(RowState::Succeeded)),
        ["b", "c"]
    );
    // A damaged cached snapshot is fetched again (PostgreSQL) or named (local).
    fs_err::write(&snapshot, b"damaged").unwrap();
    let reopened = backend.open_elsewhere();
    match &reopened {
        State::Postgres(_) => {
            let path = reopened.generation("s").unwrap().snapshot.unwrap();
            assert_eq!(fs_err::read(path).unwrap(), b"first snapshot");
        }
        State::Local(_) => assert!(reopened.generation("s").is_ok()),
    }
    // The crashed run is folded into the next generation there.
    commit_with_snapshot(
        &reopened,
        &Commit {
            status: RunStatus::Recovered,
            reconciled: &written(&["d"]),
            ..commit("s", crashed, 1)
        },
        b"second snapshot",
    );
    let back = backend.open();
    let path = back.generation("s").unwrap().snapshot.unwrap();
    assert_eq!(fs_err::read(path).unwrap(), b"second snapshot");
    assert_eq!(
        back.run(crashed).unwrap().unwrap().status,
        RunStatus::Recovered
    );
}

fn pruning_keeps_the_newest_runs_and_what_runs_show_reads(backend: &dyn Backend) {
    let state = backend.open();
    let mut runs = Vec::new();
    for n in 0..4u64 {
        let plan_id = format!("00000000-0000-4000-8000-0000000000{n:02}");
        let run = state.begin_run("s", &plan_id, n, b"{}", counts()).unwrap();
        state
            .journal_outcomes(
                run,
                &[
                    written(&[&format!("a{n}")]).remove(0),
                    JournalRow {
                        key: format!("b{n}"),
                        action: "create".into(),
                        state: RowState::Rejected,
                        destination_id: None,
                        message: Some("bad".into()),
                    },
                ],
            )
            .unwrap();
        commit_with_snapshot(&state, &commit("s", run, n), b"s");
        runs.push(run);
    }
    let keep = Keep { runs: 2, days: 30 };
    let dry = state.prune_sync("s", keep, true).unwrap();
    assert_eq!(dry.runs, 2);
    assert_eq!(
        state.runs(10).unwrap().len(),
        4,
        "a dry run changes nothing"
    );
    let pruned = state.prune_sync("s", keep, false).unwrap();
    assert_eq!(pruned.runs, 2);
    let kept: Vec<i64> = state.runs(10).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(kept, [runs[3], runs[2]]);
    // Kept runs keep their failed rows, not the ones they wrote.
    let journal: Vec<String> = state
        .journal(runs[3])
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(journal, ["b3"]);
    assert!(state.journal(runs[0]).unwrap().is_empty());
    assert_eq!(state.pending_rows("s").unwrap().len(), 4);
    assert_eq!(state.generation("s").unwrap().generation, 4);
    let all = state.prune_all(keep, false).unwrap();
    assert_eq!(all.runs, 0);
}

fn bulk_jobs_are_kept_per_run_and_forgotten(backend: &dyn Backend) {
    let state = backend.open();
    let store = state.bulk_jobs().unwrap();
    let job = crate::BulkJob {
        run_id: 3,
        sync: "s".into(),
        job_id: "750000000000001AAA".into(),
        keys: vec!["a".into(), "b".into()],
    };
    store.record(&job).unwrap();
    let elsewhere = backend.open_elsewhere();
    assert_eq!(elsewhere.bulk_jobs().unwrap().of_run(3).unwrap(), vec![job]);
    assert!(store.of_run(4).unwrap().is_empty());
    store.forget_run(3).unwrap();
    assert!(store.of_run(3).unwrap().is_empty());
}

/// Tests of what only the PostgreSQL backend has: migrations, advisory locks, moving a state.
mod postgres_only {
    use super::*;

    #[test]
    fn a_missing_schema_is_created_and_a_newer_one_is_refused_naming_both_versions() {
        let pg = Postgres::new("versions");
        let state = pg.open();
        let version = psql(&format!(
            "SELECT max(version) FROM {}.schema_version",
            pg.schema
        ));
        assert_eq!(version[0][0].as_deref(), Some("1"));
        drop(state);
        psql(&format!(
            "INSERT INTO {}.schema_version (version, engine) VALUES (7, '9.9.9')",
            pg.schema
        ));
        let err = pg.open_in(pg.dir()).unwrap_err();
        let StateError::Incompatible(message) = &err else {
            panic!("expected Incompatible, got {err}");
        };
        assert!(message.contains("schema version 7"), "{message}");
        assert!(message.contains("reads version 1"), "{message}");
        assert!(message.contains("9.9.9"), "{message}");
        assert!(message.contains("upgrade the engine"), "{message}");
    }

    #[test]
    fn a_lock_whose_session_died_is_taken_again() {
        let pg = Postgres::new("lock_died");
        let state = pg.open();
        let held = state.lock_sync("lock_died").unwrap();
        let other = pg.open_elsewhere();
        assert!(matches!(
            other.lock_sync("lock_died"),
            Err(StateError::Locked { .. })
        ));
        // (A sync name of this test's own: other tests hold locks on `s` at the same time;
        // and only the session granted the lock, not one of a refused attempt still closing.)
        // The holder's connection dies (its process was killed, its machine lost): the
        // server ends the session, and the lock with it.
        let terminated = psql(
            "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'engine apply lock_died pid=%'",
        );
        assert_eq!(terminated.len(), 1, "one session held the lock");
        let mut taken = other.lock_sync("lock_died");
        for _ in 0..50 {
            if taken.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            taken = other.lock_sync("lock_died");
        }
        taken.expect("the lock of a dead session can be taken");
        drop(held);
    }

    #[test]
    fn a_state_moves_to_postgres_and_back_without_loss() {
        let dir = tempfile::tempdir().unwrap();
        let local_state = State::Local(LocalState::open(dir.path()).unwrap());
        let run = local_state
            .begin_run("s", "p0", 0, b"{\"plan\":0}", counts())
            .unwrap();
        local_state
            .journal_outcomes(
                run,
                &[JournalRow {
                    key: "b".into(),
                    action: "create".into(),
                    state: RowState::Rejected,
                    destination_id: None,
                    message: Some("bad".into()),
                }],
            )
            .unwrap();
        commit_with_snapshot(&local_state, &commit("s", run, 0), b"snapshot bytes");
        let crashed = local_state
            .begin_run("s", "p1", 1, b"{\"plan\":1}", counts())
            .unwrap();
        local_state.journal_sent(crashed, &batch(&["c"])).unwrap();

        let pg = Postgres::new("transfer");
        let shared = pg.open();
        let moved = crate::transfer(&local_state, &shared).unwrap();
        assert_eq!((moved.syncs, moved.runs, moved.pending_rows), (1, 2, 1));
        let again = crate::transfer(&local_state, &shared).unwrap_err();
        assert!(again.to_string().contains("already holds"), "{again}");

        let elsewhere = pg.open_elsewhere();
        assert_eq!(elsewhere.lineage(), local_state.lineage());
        assert_eq!(elsewhere.plan_key(), local_state.plan_key());
        let snapshot = elsewhere.generation("s").unwrap().snapshot.unwrap();
        assert_eq!(fs_err::read(snapshot).unwrap(), b"snapshot bytes");
        assert_eq!(elsewhere.run_plan(crashed).unwrap(), b"{\"plan\":1}");
        assert_eq!(
            journal_keys(&elsewhere, crashed, Some(RowState::Sent)),
            ["c"]
        );
        assert_eq!(elsewhere.pending_rows("s").unwrap()[0].key, "b");
        let next = elsewhere.begin_run("s", "p2", 1, b"{}", counts()).unwrap();
        assert!(next > crashed, "new runs continue after the moved ones");
        elsewhere
            .finish_run_without_commit(next, RunStatus::Failed, counts(), None)
            .unwrap();

        let back_dir = tempfile::tempdir().unwrap();
        let back = State::Local(LocalState::open(back_dir.path()).unwrap());
        crate::transfer(&elsewhere, &back).unwrap();
        let reopened = LocalState::open(back_dir.path()).unwrap();
        assert_eq!(reopened.lineage(), local_state.lineage());
        assert_eq!(reopened.plan_key(), local_state.plan_key());
        let snapshot = reopened.generation("s").unwrap().snapshot.unwrap();
        assert_eq!(fs_err::read(snapshot).unwrap(), b"snapshot bytes");
        assert_eq!(reopened.runs(10).unwrap().len(), 3);
        assert_eq!(reopened.unfinished_runs("s").unwrap().len(), 1);
        assert_eq!(reopened.run_plan(crashed).unwrap(), b"{\"plan\":1}");
    }
}
