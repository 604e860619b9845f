use std::sync::{Arc, Mutex};

use connector_core::Capabilities;
use engine_plan::{FieldChange, RemoveBehaviour, RowChange, Summary};
use engine_state::LocalState;

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

fn options() -> ExecutorOptions {
    ExecutorOptions {
        batch_size: 100,
        budget: Arc::new(AccountBudget::new(1000.0)),
        retry: RetryPolicy {
            max_attempts: 3,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
            unreachable_timeout: Duration::from_secs(60),
        },
        progress: false,
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
    assert_eq!(report.succeeded.len(), 2);
    assert_eq!(
        report.failed,
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
    assert_eq!(report.succeeded.len(), 1);
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
    assert!(report.succeeded.is_empty());
    assert_eq!(report.failed.len(), 3, "every row stays pending");
    assert_eq!(dest.calls.lock().unwrap().len(), 3, "max_attempts");
    // Run history lists exactly what the report counts, the rows never sent included.
    let journal = state.journal(run).unwrap();
    assert_eq!(
        journal
            .iter()
            .filter(|r| r.state != RowState::Succeeded)
            .count(),
        report.failed.len(),
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
    assert!(report.succeeded.is_empty());
    assert_eq!(report.failed.len(), 3, "every row stays pending");

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
    assert_eq!(report.succeeded.len(), 1);
    assert_eq!(dest.calls.lock().unwrap().len(), 3);
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
            Step::NoRequest(keys) => format!("none {}", keys.join(",")),
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
            "none n",
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
