use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connector_core::{BatchResult, Capabilities, Operation, RowOutcome};
use engine_plan::{FieldChange, RemoveBehaviour, RowChange, Summary, WriteMode};
use engine_state::{JournalRow, LocalState, RowState};

use super::*;

fn plan(changes: Vec<RowChange>) -> SyncPlan {
    SyncPlan {
        sync: "s".into(),
        model: "m".into(),
        destination: "d".into(),
        object: "contacts".into(),
        base_generation: 0,
        properties: vec!["email".into(), "firstname".into(), "phone".into()],
        match_property: "email".into(),
        clear_on_null: vec!["phone".into()],
        on_remove: RemoveBehaviour::ClearFields,
        mode: WriteMode::Upsert,
        rows_are: engine_plan::RowsAre::Records,
        match_case_insensitive: true,
        skipped: vec![],
        held: vec![],
        summary: Summary::default(),
        guards: vec![],
        changes: changes.into(),
    }
}

fn create(key: &str, email: Option<&str>) -> RowChange {
    RowChange {
        action: engine_plan::Action::Create,
        key: key.into(),
        destination_id: None,
        fields: vec![],
        values: Some(vec![email.map(Into::into), Some("Ada".into()), None]),
        last_error: None,
        ..RowChange::default()
    }
}

/// A scripted destination: answers each call with the next scripted result.
struct Scripted {
    script: Mutex<Vec<BatchResult>>,
    calls: Mutex<Vec<Vec<Operation>>>,
}

impl Destination for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch_size: 2,
            default_requests_per_second: 1000.0,
        }
    }
    fn send_batch(
        &self,
        operations: &[Operation],
    ) -> impl std::future::Future<Output = BatchResult> + Send {
        self.calls.lock().unwrap().push(operations.to_vec());
        let next = {
            let mut script = self.script.lock().unwrap();
            if script.is_empty() {
                BatchResult::PerRow(
                    operations
                        .iter()
                        .map(|o| RowOutcome::Succeeded {
                            destination_id: format!("id-{}", o.key),
                            created: true,
                        })
                        .collect(),
                )
            } else {
                script.remove(0)
            }
        };
        async move { next }
    }
}

/// Options for scripted destinations, which answer in call order: one request at a time.
fn options() -> ExecutorOptions {
    ExecutorOptions {
        batch_size: 100,
        budget: Arc::new(AccountBudget::new(f64::INFINITY)),
        concurrency: ConcurrencyLimits::with_max(1),
        retry: RetryPolicy {
            max_attempts: 3,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
            unreachable_timeout: Duration::from_secs(60),
        },
        progress: ProgressMode::Hidden,
    }
}

#[test]
fn operations_send_only_what_changed_and_clear_where_asked() {
    let mut update = create("2", Some("b@x.io"));
    update.action = engine_plan::Action::Update;
    update.destination_id = Some("102".into());
    update.fields = vec![
        FieldChange {
            property: "firstname".into(),
            before: Some("B".into()),
            after: None,
        },
        FieldChange {
            property: "phone".into(),
            before: Some("1".into()),
            after: None,
        },
    ];
    let planned = operations_for(&plan(vec![
        create("1", Some("a@x.io")),
        create("3", None),
        update,
    ]))
    .unwrap();
    assert_eq!(
        planned.operations[0].operation.properties,
        vec![
            ("email".into(), "a@x.io".into()),
            ("firstname".into(), "Ada".into()),
            ("phone".into(), String::new())
        ]
    );
    assert_eq!(
        planned.operations[1].operation.properties,
        vec![("phone".into(), String::new())]
    );
    assert_eq!(
        planned.invalid.len(),
        1,
        "a null match value cannot be upserted"
    );
}

#[tokio::test]
async fn rejected_rows_stay_pending_and_the_rest_goes_through() {
    let dir = tempfile::tempdir().unwrap();
    let state = LocalState::open(dir.path()).unwrap();
    let run = state
        .begin_run("s", "p", 0, b"{}", RunCounts::default())
        .unwrap();
    let dest = Scripted {
        script: Mutex::new(vec![BatchResult::PerRow(vec![
            RowOutcome::Succeeded {
                destination_id: "1".into(),
                created: true,
            },
            RowOutcome::Rejected {
                message: "bad enum".into(),
            },
        ])]),
        calls: Mutex::new(vec![]),
    };
    let p = plan(vec![
        create("a", Some("a@x.io")),
        create("b", Some("b@x.io")),
        create("c", Some("c@x.io")),
    ]);
    let report = execute(&dest, &state, run, &p, &options()).await.unwrap();
    assert_eq!(report.counts.succeeded, 2);
    assert_eq!(
        failed_rows(&state.journal(run).unwrap()),
        vec![("b".to_string(), "bad enum".to_string())]
    );
    assert_eq!(
        dest.calls.lock().unwrap().len(),
        2,
        "batches of the connector's max size 2"
    );
    let journal = state.journal(run).unwrap();
    assert_eq!(
        journal
            .iter()
            .filter(|r| r.state == RowState::Succeeded)
            .count(),
        2
    );
}

/// A destination that sends `per_batch` requests for each batch (a record write plus links).
struct Chatty {
    per_batch: u64,
    sent: std::sync::atomic::AtomicU64,
}

impl Destination for Chatty {
    fn name(&self) -> &'static str {
        "chatty"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch_size: 2,
            default_requests_per_second: 1000.0,
        }
    }
    fn send_batch(
        &self,
        operations: &[Operation],
    ) -> impl std::future::Future<Output = BatchResult> + Send {
        self.sent
            .fetch_add(self.per_batch, std::sync::atomic::Ordering::Relaxed);
        let outcomes = operations
            .iter()
            .map(|o| RowOutcome::Succeeded {
                destination_id: format!("id-{}", o.key),
                created: true,
            })
            .collect();
        async move { BatchResult::PerRow(outcomes) }
    }
    fn requests_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The requests a destination sends beyond one per batch are charged to the account's budget:
/// 10 batches of 4 requests at 20 requests per second (evenly spaced) cannot finish in less
/// than a second; charged one token per batch, they would finish at once. (A lower bound on
/// time: a slow machine only makes it longer.)
#[tokio::test]
async fn requests_beyond_one_per_batch_are_charged_to_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let state = LocalState::open(dir.path()).unwrap();
    let run = state
        .begin_run("s", "p", 0, b"{}", RunCounts::default())
        .unwrap();
    let dest = Chatty {
        per_batch: 4,
        sent: std::sync::atomic::AtomicU64::new(0),
    };
    let rows: Vec<RowChange> = (0..20)
        .map(|i| create(&i.to_string(), Some(&format!("{i}@x.io"))))
        .collect();
    let options = ExecutorOptions {
        budget: Arc::new(AccountBudget::new(20.0)),
        ..options()
    };
    let started = std::time::Instant::now();
    let report = execute(&dest, &state, run, &plan(rows), &options)
        .await
        .unwrap();
    assert_eq!(report.counts.succeeded, 20);
    assert_eq!(dest.requests_sent(), 40);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "40 requests at 20 per second took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn retry_all_is_retried_then_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let state = LocalState::open(dir.path()).unwrap();
    let run = state
        .begin_run("s", "p", 0, b"{}", RunCounts::default())
        .unwrap();
    let dest = Scripted {
        script: Mutex::new(vec![BatchResult::RetryAll {
            reason: "429".into(),
            after: Some(Duration::from_millis(5)),
        }]),
        calls: Mutex::new(vec![]),
    };
    let report = execute(
        &dest,
        &state,
        run,
        &plan(vec![create("a", Some("a@x.io"))]),
        &options(),
    )
    .await
    .unwrap();
    assert_eq!(report.counts.succeeded, 1);
    assert_eq!(dest.calls.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn endless_failures_stop_the_run_with_a_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    let state = LocalState::open(dir.path()).unwrap();
    let run = state
        .begin_run("s", "p", 0, b"{}", RunCounts::default())
        .unwrap();
    let retry = || BatchResult::RetryAll {
        reason: "connection refused".into(),
        after: None,
    };
    let dest = Scripted {
        script: Mutex::new(vec![retry(), retry(), retry(), retry()]),
        calls: Mutex::new(vec![]),
    };
    let p = plan(vec![
        create("a", Some("a@x.io")),
        create("b", Some("b@x.io")),
        create("c", Some("c@x.io")),
    ]);
    let report = execute(&dest, &state, run, &p, &options()).await.unwrap();
    assert_eq!(report.fatal.as_ref().unwrap().code, "executor::gave_up");
    assert_eq!(report.counts.succeeded, 0);
    assert_eq!(report.counts.pending, 3, "every row stays pending");
    assert_eq!(dest.calls.lock().unwrap().len(), 3, "max_attempts");
    // Run history lists exactly what the report counts, the rows never sent included.
    let journal = state.journal(run).unwrap();
    assert_eq!(
        journal
            .iter()
            .filter(|r| r.state != RowState::Succeeded)
            .count(),
        report.counts.pending as usize,
        "{journal:?}"
    );
}

#[tokio::test]
async fn reads_retry_transient_failures_only() {
    let policy = options().retry;
    let calls = Mutex::new(0u32);
    let flaky = || {
        let call = {
            let mut calls = calls.lock().unwrap();
            *calls += 1;
            *calls
        };
        async move {
            if call < 3 {
                Err(Diagnostic::error("busy", "429"))
            } else {
                Ok(call)
            }
        }
    };
    let read = read_with_retries(&policy, |d| d.code == "busy", flaky).await;
    assert_eq!(read.unwrap(), 3);

    let read: Result<u32, _> = read_with_retries(
        &policy,
        |d| d.code == "busy",
        || async { Err(Diagnostic::error("auth", "401")) },
    )
    .await;
    assert_eq!(
        read.unwrap_err().code,
        "auth",
        "not transient: returned at once"
    );

    let read: Result<u32, _> = read_with_retries(
        &policy,
        |_| true,
        || async { Err(Diagnostic::error("busy", "429")) },
    )
    .await;
    assert!(read.is_err(), "gives up after max_attempts");
}

/// A destination that refuses every connection, counting the attempts.
struct Down {
    calls: Mutex<u32>,
}

impl Destination for Down {
    fn name(&self) -> &'static str {
        "down"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch_size: 2,
            default_requests_per_second: 1000.0,
        }
    }
    fn send_batch(
        &self,
        _operations: &[Operation],
    ) -> impl std::future::Future<Output = BatchResult> + Send {
        *self.calls.lock().unwrap() += 1;
        async {
            BatchResult::Unreachable {
                target: "Down at `http://127.0.0.1:9`".into(),
                reason: "could not connect: connection refused".into(),
            }
        }
    }
}

/// A destination that died mid-apply was retried with backoff for about 85 s; retries of an
/// unreachable destination are bounded by `unreachable_timeout`, whatever `max_attempts` says.
#[tokio::test]
async fn an_unreachable_destination_is_retried_for_a_bounded_time_only() {
    let dir = tempfile::tempdir().unwrap();
    let state = LocalState::open(dir.path()).unwrap();
    let run = state
        .begin_run("s", "p", 0, b"{}", RunCounts::default())
        .unwrap();
    let dest = Down {
        calls: Mutex::new(0),
    };
    let mut options = options();
    options.retry = RetryPolicy {
        max_attempts: u32::MAX,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        unreachable_timeout: Duration::from_millis(100),
    };
    let p = plan(vec![
        create("a", Some("a@x.io")),
        create("b", Some("b@x.io")),
        create("c", Some("c@x.io")),
    ]);
    let report = execute(&dest, &state, run, &p, &options).await.unwrap();
    let fatal = report.fatal.as_ref().expect("the run stops");
    assert_eq!(fatal.code, "executor::unreachable", "{fatal}");
    assert!(
        fatal
            .message
            .starts_with("Down at `http://127.0.0.1:9` did not answer for "),
        "{fatal}"
    );
    assert!(fatal.message.ends_with("connection refused"), "{fatal}");
    assert!(
        fatal
            .hints
            .iter()
            .any(|h| h.contains("ENGINE_RETRY_TIMEOUT")),
        "{fatal}"
    );
    let calls = *dest.calls.lock().unwrap();
    assert!(
        (2..1000).contains(&calls),
        "retried, but not forever: {calls}"
    );
    assert_eq!(report.counts.succeeded, 0);
    assert_eq!(report.counts.pending, 3, "every row stays pending");

    // `max_attempts` still bounds the attempts when it is reached first.
    let dest = Down {
        calls: Mutex::new(0),
    };
    options.retry.max_attempts = 3;
    options.retry.unreachable_timeout = Duration::from_secs(3600);
    let report = execute(&dest, &state, run, &p, &options).await.unwrap();
    assert_eq!(report.fatal.unwrap().code, "executor::unreachable");
    assert_eq!(*dest.calls.lock().unwrap(), 3);
}

#[tokio::test]
async fn a_destination_that_comes_back_gets_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let state = LocalState::open(dir.path()).unwrap();
    let run = state
        .begin_run("s", "p", 0, b"{}", RunCounts::default())
        .unwrap();
    let down = || BatchResult::Unreachable {
        target: "T".into(),
        reason: "refused".into(),
    };
    let dest = Scripted {
        script: Mutex::new(vec![down(), down()]),
        calls: Mutex::new(vec![]),
    };
    let report = execute(
        &dest,
        &state,
        run,
        &plan(vec![create("a", Some("a@x.io"))]),
        &options(),
    )
    .await
    .unwrap();
    assert!(report.fatal.is_none(), "{:?}", report.fatal);
    assert_eq!(report.counts.succeeded, 1);
    assert_eq!(dest.calls.lock().unwrap().len(), 3);
}

// ---------------------------------------------------------------------------------------
// Several batches in flight.
// ---------------------------------------------------------------------------------------

/// What happened, in order, across the fake destination and the journal.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    /// `journal_sent` for these keys.
    Journaled(Vec<String>),
    /// A request carrying these keys went out (at this time, with this many in flight).
    Request(Vec<String>, tokio::time::Instant, usize),
    /// The destination answered the request carrying these keys; `fin` when nothing is to
    /// be retried.
    Answer(Vec<String>, tokio::time::Instant, bool),
    /// `journal_outcomes` for these keys.
    Outcomes(Vec<String>),
}

type Events = Arc<Mutex<Vec<Event>>>;

fn keys_of(operations: &[Operation]) -> Vec<String> {
    operations.iter().map(|o| o.key.clone()).collect()
}

/// A destination for parallel sends. Every request yields once before it is answered (so
/// several are in flight); a request carrying a `hold` key is answered only after that many
/// other answers; `busy` keys get one 429 first; `fatal` keys stop the run; `reject` keys are
/// refused; `after` answers wait for a signal from another destination.
#[derive(Default)]
struct Fake {
    events: Events,
    max_batch: usize,
    hold: HashMap<String, usize>,
    busy: HashSet<String>,
    busy_after: Option<Duration>,
    reject: HashSet<String>,
    fatal: HashSet<String>,
    /// Answers to a request carrying this key wait for `signal`.
    wait_for_signal: Option<String>,
    /// Notified when a request carrying `signal_on` has been answered.
    signal_on: Option<String>,
    signal: Arc<tokio::sync::Notify>,
    state: Mutex<FakeState>,
    answered: tokio::sync::watch::Sender<usize>,
}

#[derive(Default)]
struct FakeState {
    in_flight: usize,
    max_in_flight: usize,
    busy_done: HashSet<String>,
}

impl Fake {
    fn new(events: &Events, max_batch: usize) -> Self {
        Fake {
            events: Arc::clone(events),
            max_batch,
            ..Fake::default()
        }
    }

    fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }

    fn answer(&self, operations: &[Operation]) -> BatchResult {
        let mut state = self.state.lock().unwrap();
        if operations.iter().any(|o| self.fatal.contains(&o.key)) {
            return BatchResult::Fatal(Diagnostic::error("fake::auth", "the token was revoked"));
        }
        let busy = operations
            .iter()
            .find(|o| self.busy.contains(&o.key) && !state.busy_done.contains(&o.key));
        if let Some(busy) = busy {
            state.busy_done.insert(busy.key.clone());
            return BatchResult::RetryAll {
                reason: "429 Too Many Requests".into(),
                after: self.busy_after.or(Some(Duration::from_millis(1))),
            };
        }
        BatchResult::PerRow(
            operations
                .iter()
                .map(|o| {
                    if self.reject.contains(&o.key) {
                        RowOutcome::Rejected {
                            message: format!("bad value for {}", o.key),
                        }
                    } else {
                        RowOutcome::Succeeded {
                            destination_id: format!("id-{}", o.key),
                            created: true,
                        }
                    }
                })
                .collect(),
        )
    }
}

impl Destination for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch_size: self.max_batch,
            default_requests_per_second: 1000.0,
        }
    }
    fn send_batch(
        &self,
        operations: &[Operation],
    ) -> impl std::future::Future<Output = BatchResult> + Send {
        let keys = keys_of(operations);
        let in_flight = {
            let mut state = self.state.lock().unwrap();
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
            state.in_flight
        };
        self.events.lock().unwrap().push(Event::Request(
            keys.clone(),
            tokio::time::Instant::now(),
            in_flight,
        ));
        let hold = keys.iter().filter_map(|k| self.hold.get(k)).max().copied();
        let waits = self
            .wait_for_signal
            .as_ref()
            .is_some_and(|k| keys.contains(k));
        let signals = self.signal_on.as_ref().is_some_and(|k| keys.contains(k));
        let mut answered = self.answered.subscribe();
        let operations = operations.to_vec();
        async move {
            tokio::task::yield_now().await;
            if let Some(hold) = hold {
                answered.wait_for(|n| *n >= hold).await.unwrap();
            }
            if waits {
                self.signal.notified().await;
            }
            let result = self.answer(&operations);
            let fin = !matches!(result, BatchResult::RetryAll { .. });
            self.state.lock().unwrap().in_flight -= 1;
            self.events
                .lock()
                .unwrap()
                .push(Event::Answer(keys, tokio::time::Instant::now(), fin));
            self.answered.send_modify(|n| *n += 1);
            if signals {
                self.signal.notify_one();
            }
            result
        }
    }
}

/// The rows a journal holds as not written, with their message, in key order.
fn failed_rows(journal: &[JournalRow]) -> Vec<(String, String)> {
    journal
        .iter()
        .filter(|r| r.state != RowState::Succeeded)
        .map(|r| (r.key.clone(), r.message.clone().unwrap_or_default()))
        .collect()
}

/// Each journaled row's key, state and record id, in key order.
fn outcomes(journal: &[JournalRow]) -> Vec<(String, RowState, Option<String>)> {
    journal
        .iter()
        .map(|r| (r.key.clone(), r.state, r.destination_id.clone()))
        .collect()
}

/// A journal in memory that logs every write as an [`Event`]; the executor uses nothing else
/// of the state.
struct Journal {
    events: Events,
    rows: Mutex<HashMap<String, JournalRow>>,
}

impl Journal {
    fn new(events: &Events) -> Self {
        Journal {
            events: Arc::clone(events),
            rows: Mutex::new(HashMap::new()),
        }
    }

    fn row(&self, key: &str) -> JournalRow {
        self.rows.lock().unwrap()[key].clone()
    }
}

impl StateStore for Journal {
    fn lineage(&self) -> &str {
        "test"
    }
    fn plan_key(&self) -> [u8; 32] {
        [0; 32]
    }
    fn generation(&self, _: &str) -> Result<engine_state::SyncGeneration, StateError> {
        unreachable!("the executor only journals")
    }
    fn lock_sync(&self, _: &str) -> Result<engine_state::SyncLock, StateError> {
        unreachable!("the executor only journals")
    }
    fn begin_run(
        &self,
        _: &str,
        _: &str,
        _: u64,
        _: &[u8],
        _: RunCounts,
    ) -> Result<i64, StateError> {
        Ok(1)
    }
    fn journal_sent(&self, _: i64, rows: &[(String, String)]) -> Result<(), StateError> {
        let mut journal = self.rows.lock().unwrap();
        for (key, action) in rows {
            journal.insert(
                key.clone(),
                JournalRow {
                    key: key.clone(),
                    action: action.clone(),
                    state: RowState::Sent,
                    destination_id: None,
                    message: None,
                },
            );
        }
        let keys = rows.iter().map(|(k, _)| k.clone()).collect();
        self.events.lock().unwrap().push(Event::Journaled(keys));
        Ok(())
    }
    fn journal_outcomes(&self, _: i64, rows: &[JournalRow]) -> Result<(), StateError> {
        let mut journal = self.rows.lock().unwrap();
        for row in rows {
            journal.insert(row.key.clone(), row.clone());
        }
        let keys = rows.iter().map(|r| r.key.clone()).collect();
        self.events.lock().unwrap().push(Event::Outcomes(keys));
        Ok(())
    }
    fn journal(&self, _: i64) -> Result<Vec<JournalRow>, StateError> {
        let mut rows: Vec<JournalRow> = self.rows.lock().unwrap().values().cloned().collect();
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
        Ok(self
            .journal(run_id)?
            .into_iter()
            .filter(|r| only.is_none_or(|s| r.state == s))
            .filter(|r| after.is_none_or(|a| r.key.as_str() > a))
            .take(limit)
            .collect())
    }
    fn journal_row(&self, _: i64, key: &str) -> Result<Option<JournalRow>, StateError> {
        Ok(self.rows.lock().unwrap().get(key).cloned())
    }
    fn journal_counts(&self, _: i64) -> Result<engine_state::JournalCounts, StateError> {
        unreachable!("the executor reports its own counts")
    }
    fn run_plan(&self, _: i64) -> Result<Vec<u8>, StateError> {
        unreachable!("the executor only journals")
    }
    fn unfinished_runs(&self, _: &str) -> Result<Vec<engine_state::RunRecord>, StateError> {
        unreachable!("the executor only journals")
    }
    fn next_snapshot_path(&self, _: &str, _: u64) -> Result<std::path::PathBuf, StateError> {
        unreachable!("the executor only journals")
    }
    fn commit_generation(&self, _: &engine_state::Commit<'_>) -> Result<u64, StateError> {
        unreachable!("the executor only journals")
    }
    fn finish_run_without_commit(
        &self,
        _: i64,
        _: engine_state::RunStatus,
        _: RunCounts,
        _: Option<&str>,
    ) -> Result<(), StateError> {
        unreachable!("the executor only journals")
    }
    fn runs(&self, _: usize) -> Result<Vec<engine_state::RunRecord>, StateError> {
        unreachable!("the executor only journals")
    }
    fn run(&self, _: i64) -> Result<Option<engine_state::RunRecord>, StateError> {
        unreachable!("the executor only journals")
    }
    fn pending_rows(&self, _: &str) -> Result<Vec<engine_state::PendingRow>, StateError> {
        unreachable!("the executor only journals")
    }
}

/// Options for parallel sends between `initial` and `max` requests in flight.
fn parallel(initial: usize, max: usize) -> ExecutorOptions {
    ExecutorOptions {
        concurrency: ConcurrencyLimits { initial, max },
        ..options()
    }
}

fn creates(keys: &[&str]) -> Vec<RowChange> {
    keys.iter()
        .map(|k| create(k, Some(&format!("{k}@x.io"))))
        .collect()
}

fn update(key: &str, wave: u32) -> RowChange {
    RowChange {
        action: engine_plan::Action::Update,
        key: key.into(),
        destination_id: Some(format!("d-{key}")),
        fields: vec![FieldChange {
            property: "firstname".into(),
            before: Some("A".into()),
            after: Some("B".into()),
        }],
        wave,
        ..RowChange::default()
    }
}

fn remove(key: &str) -> RowChange {
    RowChange {
        action: engine_plan::Action::Remove,
        key: key.into(),
        destination_id: Some(format!("d-{key}")),
        fields: vec![FieldChange {
            property: "phone".into(),
            before: Some("1".into()),
            after: None,
        }],
        ..RowChange::default()
    }
}

/// Checks the journal against the event log: every batch is journaled `sent` before its
/// first request, its outcomes right after its final answer (before any other answer is
/// handled), once; no row is left `sent`.
fn assert_journal_exact(events: &[Event], journal: &Journal) {
    for (at, event) in events.iter().enumerate() {
        match event {
            Event::Request(keys, ..) => {
                let journaled = events[..at]
                    .iter()
                    .any(|e| matches!(e, Event::Journaled(k) if k == keys));
                let retry = events[..at]
                    .iter()
                    .any(|e| matches!(e, Event::Request(k, ..) if k == keys));
                assert!(
                    journaled || retry,
                    "sent before journaled: {keys:?}\n{events:#?}"
                );
            }
            Event::Outcomes(keys) => {
                let last_answer = events[..at]
                    .iter()
                    .rposition(|e| matches!(e, Event::Answer(k, ..) if k == keys));
                let sent_later = events[at..]
                    .iter()
                    .any(|e| matches!(e, Event::Request(k, ..) if k == keys));
                match last_answer {
                    Some(answer) => {
                        if let Event::Answer(_, _, true) = &events[answer] {
                            let other = events[answer + 1..at]
                                .iter()
                                .any(|e| matches!(e, Event::Answer(..)));
                            assert!(
                                !other,
                                "outcomes of {keys:?} not journaled right after its answer\n{events:#?}"
                            );
                        }
                        assert!(!sent_later, "{keys:?} sent again after its outcomes");
                    }
                    // Never sent (the run stopped): no request for them at all.
                    None => assert!(
                        !events
                            .iter()
                            .any(|e| matches!(e, Event::Request(k, ..) if k == keys)),
                        "outcomes of {keys:?} journaled before its answer\n{events:#?}"
                    ),
                }
                let twice = events[at + 1..]
                    .iter()
                    .any(|e| matches!(e, Event::Outcomes(k) if k.iter().any(|x| keys.contains(x))));
                assert!(!twice, "outcomes of {keys:?} journaled twice");
            }
            _ => {}
        }
    }
    for row in journal.journal(1).unwrap() {
        assert_ne!(row.state, RowState::Sent, "left `sent`: {row:?}");
    }
}

fn answers(events: &[Event]) -> Vec<Vec<String>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Answer(keys, _, true) => Some(keys.clone()),
            _ => None,
        })
        .collect()
}

fn requests(events: &[Event]) -> Vec<Vec<String>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Request(keys, ..) => Some(keys.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn answers_out_of_order_are_journaled_exactly_and_report_as_sent_one_by_one() {
    let p = plan(creates(&["a", "b", "c", "d", "e", "f"]));
    let events = Events::default();
    let journal = Journal::new(&events);
    let mut dest = Fake::new(&events, 1);
    dest.hold = HashMap::from([("a".into(), 3)]);
    dest.busy = HashSet::from(["d".into()]);
    dest.reject = HashSet::from(["b".into()]);
    let report = execute(&dest, &journal, 1, &p, &parallel(3, 3))
        .await
        .unwrap();
    let events = events.lock().unwrap().clone();

    let order = answers(&events);
    assert_ne!(
        order[0],
        vec!["a"],
        "`a` is answered after three others: {order:?}"
    );
    assert!(dest.max_in_flight() > 1);
    assert_journal_exact(&events, &journal);
    assert_eq!(journal.row("a").state, RowState::Succeeded);
    assert_eq!(journal.row("a").destination_id.as_deref(), Some("id-a"));
    assert_eq!(journal.row("b").state, RowState::Rejected);
    assert_eq!(
        journal.row("d").state,
        RowState::Succeeded,
        "retried after its 429"
    );
    assert_eq!(journal.row("a").action, "create");
    let parallel_rows = journal.journal(1).unwrap();

    // The same answers one request at a time give the same report and journal.
    let events = Events::default();
    let journal = Journal::new(&events);
    let mut dest = Fake::new(&events, 1);
    dest.busy = HashSet::from(["d".into()]);
    dest.reject = HashSet::from(["b".into()]);
    let sequential = execute(&dest, &journal, 1, &p, &options()).await.unwrap();
    assert_eq!(dest.max_in_flight(), 1);
    assert_eq!(
        outcomes(&parallel_rows),
        outcomes(&journal.journal(1).unwrap())
    );
    assert_eq!(report.counts, sequential.counts);
    assert!(report.fatal.is_none() && sequential.fatal.is_none());
    assert_eq!(report.counts.succeeded, 5);
    assert_eq!(report.counts.rejected, 1);
    assert_eq!(report.counts.planned_create, 6);
}

#[tokio::test]
async fn a_group_is_fully_answered_before_the_next_is_sent() {
    // Group of a key: updates by wave, then upserts, then clears.
    let group = |key: &str| match &key[..2] {
        "u0" => 0,
        "u1" => 1,
        "cr" => 2,
        _ => 3,
    };
    let mut changes = Vec::new();
    for i in 0..5 {
        changes.push(update(&format!("u0-{i}"), 0));
        changes.push(update(&format!("u1-{i}"), 1));
        changes.push(create(&format!("cr-{i}"), Some(&format!("{i}@x.io"))));
        changes.push(remove(&format!("rm-{i}")));
    }
    let p = plan(changes);
    let events = Events::default();
    let journal = Journal::new(&events);
    let mut dest = Fake::new(&events, 1);
    // The last batch of each group is answered late or retried late.
    dest.hold = HashMap::from([("u0-0".into(), 2), ("cr-0".into(), 2)]);
    dest.busy = HashSet::from(["u1-4".into(), "rm-4".into(), "u0-4".into()]);
    let report = execute(&dest, &journal, 1, &p, &parallel(4, 4))
        .await
        .unwrap();
    assert!(report.fatal.is_none());
    assert_eq!(report.counts.succeeded, 20);
    let events = events.lock().unwrap().clone();
    assert_journal_exact(&events, &journal);

    let mut last_answer_of_group = [0usize; 4];
    let mut first_request_of_group = [usize::MAX; 4];
    for (at, event) in events.iter().enumerate() {
        match event {
            Event::Request(keys, _, _) => {
                let g = group(&keys[0]);
                first_request_of_group[g] = first_request_of_group[g].min(at);
            }
            Event::Answer(keys, _, _) => last_answer_of_group[group(&keys[0])] = at,
            _ => {}
        }
    }
    for g in 0..3 {
        assert!(
            last_answer_of_group[g] < first_request_of_group[g + 1],
            "group {} was sent before group {g} was answered (retries included)\n{events:#?}",
            g + 1
        );
    }
    let sent = requests(&events);
    assert!(
        sent.windows(2).all(|w| group(&w[0][0]) <= group(&w[1][0])),
        "{sent:?}"
    );
    assert!(
        dest.max_in_flight() > 1,
        "batches of one group go out together"
    );
}

#[tokio::test]
async fn never_more_in_flight_than_the_maximum() {
    let keys: Vec<String> = (0..60).map(|i| format!("k{i:02}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let p = plan(creates(&keys));
    for max in [1, 3] {
        let events = Events::default();
        let journal = Journal::new(&events);
        let dest = Fake::new(&events, 2);
        let report = execute(&dest, &journal, 1, &p, &parallel(2, max))
            .await
            .unwrap();
        assert_eq!(report.counts.succeeded, 60);
        assert!(
            dest.max_in_flight() <= max,
            "{} > {max}",
            dest.max_in_flight()
        );
        assert!(
            dest.max_in_flight() >= max.min(2),
            "{}",
            dest.max_in_flight()
        );
        let events = events.lock().unwrap().clone();
        assert_journal_exact(&events, &journal);
        for event in &events {
            if let Event::Request(_, _, in_flight) = event {
                assert!(*in_flight <= max);
            }
        }
    }
}

#[tokio::test]
async fn a_fatal_answer_awaits_the_batches_in_flight_and_journals_the_rest_as_not_sent() {
    let p = plan(creates(&["a", "b", "c", "d", "e", "f"]));
    let events = Events::default();
    let journal = Journal::new(&events);
    let mut dest = Fake::new(&events, 1);
    // `a` is on the wire when `b` fails; `c` is waiting to be retried.
    dest.hold = HashMap::from([("a".into(), 1)]);
    dest.fatal = HashSet::from(["b".into()]);
    dest.busy = HashSet::from(["c".into()]);
    let report = execute(&dest, &journal, 1, &p, &parallel(3, 3))
        .await
        .unwrap();
    let events = events.lock().unwrap().clone();

    assert_eq!(report.fatal.as_ref().unwrap().code, "fake::auth");
    assert_journal_exact(&events, &journal);
    assert_eq!(
        journal.row("a").state,
        RowState::Succeeded,
        "the batch in flight was awaited and journaled"
    );
    let written: Vec<String> = journal
        .journal(1)
        .unwrap()
        .into_iter()
        .filter(|r| r.state == RowState::Succeeded)
        .map(|r| r.key)
        .collect();
    assert_eq!(written, vec!["a"]);
    let sent: Vec<String> = requests(&events).concat();
    for key in ["d", "e", "f"] {
        assert!(
            !sent.contains(&key.to_string()),
            "{key} sent after the fatal"
        );
        let row = journal.row(key);
        assert_eq!(row.state, RowState::GaveUp);
        assert_eq!(
            row.message.as_deref(),
            Some("not sent: the run stopped early")
        );
    }
    assert_eq!(
        sent.iter().filter(|k| *k == "c").count(),
        1,
        "`c` is not retried once the run stops"
    );
    assert_eq!(journal.row("c").state, RowState::GaveUp);
    let failed = failed_rows(&journal.journal(1).unwrap());
    let keys: Vec<&str> = failed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, vec!["b", "c", "d", "e", "f"]);
    assert_eq!(failed[0].1, "the token was revoked");
    assert_eq!(report.counts.pending, 5);
    assert_eq!(report.counts.succeeded, 1);
}

#[tokio::test]
async fn a_429_cuts_the_concurrency() {
    let keys: Vec<String> = (0..12).map(|i| format!("k{i:02}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let p = plan(creates(&keys));
    let events = Events::default();
    let journal = Journal::new(&events);
    let mut dest = Fake::new(&events, 1);
    dest.busy = ["k00", "k01", "k02", "k03"].map(String::from).into();
    let options = parallel(4, 4);
    let controller = Mutex::new(concurrency::Controller::new(options.concurrency));
    let steps = steps_for(&p, 1).unwrap();
    let report = dispatch::run(
        &dest,
        &journal,
        1,
        steps.steps.into_iter(),
        steps.operations,
        &options,
        &controller,
    )
    .await
    .unwrap();
    assert_eq!(report.counts.succeeded, 12);
    let controller = controller.into_inner().unwrap();
    assert!(controller.cuts() >= 1, "four 429s cut the limit");
    assert!(dest.max_in_flight() <= 4);
    assert_journal_exact(&events.lock().unwrap(), &journal);
}

#[tokio::test]
async fn syncs_writing_to_one_account_share_its_budget_and_its_pauses() {
    let budgets = AccountBudgets::default();
    let account = "fake http://127.0.0.1:1 #token-hash";
    let retry_after = Duration::from_millis(100);
    let mut first = ExecutorOptions {
        budget: budgets.budget(account, 1000.0),
        ..options()
    };
    first.retry.max_delay = Duration::from_secs(5);
    let second = ExecutorOptions {
        budget: budgets.budget(account, 1000.0),
        ..first.clone()
    };
    assert!(Arc::ptr_eq(&first.budget, &second.budget));

    // Sync A's first request gets a 429 with Retry-After while sync B's first request is on
    // the wire; B's next request must wait out A's pause.
    let events = Events::default();
    let signal = Arc::new(tokio::sync::Notify::new());
    let mut a = Fake::new(&events, 1);
    a.busy = HashSet::from(["a1".into()]);
    a.busy_after = Some(retry_after);
    a.signal_on = Some("a1".into());
    a.signal = Arc::clone(&signal);
    let mut b = Fake::new(&events, 1);
    b.wait_for_signal = Some("b1".into());
    b.signal = Arc::clone(&signal);
    let (ja, jb) = (Journal::new(&events), Journal::new(&events));
    let (pa, pb) = (plan(creates(&["a1", "a2"])), plan(creates(&["b1", "b2"])));
    let (ra, rb) = tokio::join!(
        execute(&a, &ja, 1, &pa, &first),
        execute(&b, &jb, 2, &pb, &second)
    );
    assert_eq!(ra.unwrap().counts.succeeded, 2);
    assert_eq!(rb.unwrap().counts.succeeded, 2);
    let events = events.lock().unwrap().clone();
    let refused_at = events
        .iter()
        .find_map(|e| match e {
            Event::Answer(k, at, false) if k == &["a1"] => Some(*at),
            _ => None,
        })
        .unwrap();
    let b2_sent_at = events
        .iter()
        .find_map(|e| match e {
            Event::Request(k, at, _) if k == &["b2"] => Some(*at),
            _ => None,
        })
        .unwrap();
    assert!(
        b2_sent_at >= refused_at + retry_after,
        "sync B sent during sync A's Retry-After pause\n{events:#?}"
    );
}

#[test]
fn steps_group_by_kind_and_wave_with_barriers_between() {
    let mut changes = vec![
        create("c1", Some("c1@x.io")),
        remove("r1"),
        update("u1a", 1),
        update("u0a", 0),
        create("c2", None),
        update("u0b", 0),
        update("u0c", 0),
        create("c3", Some("c3@x.io")),
    ];
    let mut nothing = update("n", 0);
    nothing.fields.clear();
    changes.push(nothing);
    let steps = steps_for(&plan(changes), 2).unwrap();
    let shape: Vec<String> = steps
        .steps
        .iter()
        .map(|s| match s {
            Step::Invalid(rows) => format!("invalid {}", rows[0].key),
            Step::NoRequest(rows) => format!(
                "none {}",
                rows.iter()
                    .map(|(key, action)| format!("{action}:{key}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Step::Batch(batch) => batch
                .iter()
                .map(|p| format!("{}:{}", p.action, p.operation.key))
                .collect::<Vec<_>>()
                .join(","),
            Step::Barrier => "|".into(),
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            "invalid c2",
            "none update:n",
            "update:u0a,update:u0b",
            "update:u0c",
            "|",
            "update:u1a",
            "|",
            "create:c1,create:c3",
            "|",
            "remove:r1",
        ]
    );
    assert_eq!(steps.operations, 7);
    assert_eq!(steps.counts.planned_create, 3);
    let Step::Invalid(invalid) = &steps.steps[0] else {
        unreachable!()
    };
    assert_eq!(invalid[0].action, "create", "journaled with its own action");
}

#[test]
fn streamed_steps_are_the_same_steps_read_a_chunk_at_a_time_from_a_change_file() {
    let mut changes = Vec::new();
    for i in 0..(engine_plan::CHUNK_ROWS * 2 + 5) {
        changes.push(match i % 4 {
            0 => create(&format!("c{i:05}"), Some(&format!("{i}@x.io"))),
            1 => update(&format!("u{i:05}"), (i % 3) as u32),
            2 => remove(&format!("r{i:05}")),
            _ => create(&format!("n{i:05}"), None),
        });
    }
    let in_memory = plan(changes.clone());
    let expected = steps_for(&in_memory, 7).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("changes.parquet");
    let mut writer = engine_plan::ChangeWriter::create(&path).unwrap();
    for change in &changes {
        writer.push(change).unwrap();
    }
    let rows = writer.finish().unwrap();
    let mut on_disk = in_memory.clone();
    on_disk.changes = engine_plan::ChangeSet::from_files(vec![path], rows);
    let mut stream = stream_steps(&on_disk, 7).unwrap();
    let streamed: Vec<Step> = stream.by_ref().collect();
    assert!(stream.take_error().is_none());
    // Counted by the first pass, complete once the stream is read.
    assert_eq!(stream.counts, expected.counts);
    assert_eq!(stream.operations, expected.operations);
    assert_eq!(head_first(streamed), head_first(expected.steps));
}

/// Steps with the rows that send nothing gathered in front (the stream hands them out a chunk
/// at a time, the in-memory steps all at once), batches and barriers in their order.
fn head_first(steps: Vec<Step>) -> Vec<Step> {
    let mut invalid = Vec::new();
    let mut no_request = Vec::new();
    let mut rest = Vec::new();
    for step in steps {
        match step {
            Step::Invalid(rows) => invalid.extend(rows),
            Step::NoRequest(rows) => no_request.extend(rows),
            other => rest.push(other),
        }
    }
    let mut out = vec![Step::Invalid(invalid), Step::NoRequest(no_request)];
    out.extend(rest);
    out
}
