//! The lifecycle through the registry, with an in-memory connector: what a new connector, a
//! scheduler or a runner gets from this crate without the command line.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use connector_core::{
    BatchResult, Capabilities, Diagnostic, Operation, OperationKind, Record, RecordRef, RowOutcome,
};
use engine_executor::{AccountBudget, ConcurrencyLimits, ExecutorOptions, RetryPolicy};
use engine_mapping::SyncMapping;
use engine_spec::{DestinationKind, DestinationSpec, Project, SyncSpec};
use futures_util::future::BoxFuture;

use crate::{ApplyOptions, Connection, Connector, Event, Failure, NoReporter, Registry, Reporter};

/// Records by match value, with ids handed out in order.
#[derive(Default)]
struct Crm {
    records: BTreeMap<String, (String, BTreeMap<String, String>)>,
    requests: usize,
}

#[derive(Clone, Default)]
struct MemoryConnector(Arc<Mutex<Crm>>);

impl Connector for MemoryConnector {
    fn kind(&self) -> DestinationKind {
        DestinationKind::Salesforce
    }

    fn connect(
        &self,
        _project: &Project,
        _sync: &SyncSpec,
        _destination: &DestinationSpec,
    ) -> Result<Box<dyn Connection>, Failure> {
        Ok(Box::new(self.clone()))
    }
}

impl Connection for MemoryConnector {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch_size: 2,
            default_requests_per_second: 1000.0,
        }
    }

    fn executor_options(&self) -> ExecutorOptions {
        ExecutorOptions {
            batch_size: 2,
            budget: Arc::new(AccountBudget::new(1000.0)),
            concurrency: ConcurrencyLimits::default(),
            retry: RetryPolicy::default(),
            progress: engine_executor::ProgressMode::Hidden,
        }
    }

    fn match_is_case_insensitive(&self) -> bool {
        false
    }

    fn check_mapping<'a>(
        &'a self,
        _sync: &'a SyncSpec,
        _mapping: &'a SyncMapping,
    ) -> BoxFuture<'a, Result<Vec<Option<engine_mapping::ValueKind>>, Failure>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn send_batch<'a>(&'a self, operations: &'a [Operation]) -> BoxFuture<'a, BatchResult> {
        Box::pin(async move {
            let mut crm = self.0.lock().expect("crm lock");
            crm.requests += 1;
            let mut outcomes = Vec::new();
            for op in operations {
                let id = match (&op.kind, &op.match_value, &op.destination_id) {
                    (OperationKind::Upsert, Some(value), _) => {
                        let next = format!("{}", crm.records.len() + 1);
                        let entry = crm
                            .records
                            .entry(value.clone())
                            .or_insert((next, BTreeMap::new()));
                        for (p, v) in &op.properties {
                            entry.1.insert(p.clone(), v.clone());
                        }
                        entry.0.clone()
                    }
                    (_, _, Some(id)) => {
                        let record = crm.records.values_mut().find(|(i, _)| i == id);
                        let Some((_, properties)) = record else {
                            outcomes.push(RowOutcome::Rejected {
                                message: format!("no record {id}"),
                            });
                            continue;
                        };
                        for (p, v) in &op.properties {
                            if v.is_empty() {
                                properties.remove(p);
                            } else {
                                properties.insert(p.clone(), v.clone());
                            }
                        }
                        id.clone()
                    }
                    _ => {
                        outcomes.push(RowOutcome::Rejected {
                            message: "nothing to match on".into(),
                        });
                        continue;
                    }
                };
                outcomes.push(RowOutcome::Succeeded {
                    destination_id: id,
                    created: false,
                });
            }
            BatchResult::PerRow(outcomes)
        })
    }

    fn read_records<'a>(
        &'a self,
        _by: RecordRef,
        _values: &'a [String],
        _properties: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Record>, Diagnostic>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Collects the events' names, in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Reporter for Recorder {
    fn report(&self, event: Event<'_>) {
        let name = match event {
            Event::UnfinishedRun { .. } => "unfinished",
            Event::PlanningSync { .. } => "planning",
            Event::PlanStage { .. } => return,
            Event::Recovered(_) => "recovered",
            Event::Planned(_) => "planned",
            Event::ApplyingSync { .. } => "applying",
            Event::Applied(_) => "applied",
            Event::StateRestarted { .. } => "restarted",
        };
        self.0.lock().expect("events lock").push(name.to_string());
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent).expect("create dir");
    }
    fs_err::write(path, text).expect("write file");
}

fn write_project(dir: &Path, rows: &str) -> Project {
    write(
        dir,
        "engine.yaml",
        "version: 1\nproject: library\ntables:\n  people:\n    path: data/people.csv\ndestinations:\n  crm:\n    type: salesforce\n",
    );
    write(
        dir,
        "models/people.yaml",
        "name: people\nprimary_key: [id]\nsql: SELECT id, email, name FROM people\n",
    );
    write(
        dir,
        "syncs/people.yaml",
        "name: people_to_crm\nmodel: people\ndestination: crm\nobject: Contact\nmatch:\n  property: Email\n  column: email\nmapping:\n  - property: Name\n    column: name\non_remove: clear_fields\n",
    );
    write(dir, "data/people.csv", &format!("id,email,name\n{rows}"));
    crate::load_project(dir).expect("project loads").0
}

/// Plans and applies every sync of `project`, with default options and no reporting.
async fn apply_all(registry: &Registry, project: &Project) -> Result<crate::ApplyOutcome, Failure> {
    crate::apply(
        registry,
        project,
        None,
        &[],
        ApplyOptions::default(),
        &NoReporter,
    )
    .await
}

#[tokio::test]
async fn a_registered_connector_runs_the_whole_lifecycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crm = MemoryConnector::default();
    let registry = Registry::empty().with(crm.clone());
    let project = write_project(
        dir.path(),
        "1,ann@x.com,Ann\n2,bob@x.com,Bob\n3,cy@x.com,Cy\n",
    );

    let recorder = Recorder::default();
    let outcome = crate::apply(
        &registry,
        &project,
        None,
        &[],
        ApplyOptions::default(),
        &recorder,
    )
    .await
    .expect("apply");
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(outcome.applied[0].created, 3);
    assert_eq!(
        *recorder.0.lock().expect("events"),
        ["planned", "applying", "applied"]
    );
    {
        let crm = crm.0.lock().expect("crm");
        assert_eq!(crm.records.len(), 3);
        assert_eq!(crm.requests, 2, "3 rows in batches of 2");
        assert_eq!(crm.records["bob@x.com"].1["Name"], "Bob");
    }

    // The next plan tells the truth: nothing to do.
    let plan = crate::plan_project(&registry, &project, &[], &NoReporter)
        .await
        .expect("plan")
        .plan;
    assert!(plan.is_empty(), "{plan:?}");

    // A change and a removal go through the same connector.
    let project = write_project(dir.path(), "1,ann@x.com,Annie\n2,bob@x.com,Bob\n");
    let outcome = apply_all(&registry, &project).await.expect("apply");
    assert_eq!(
        (outcome.applied[0].updated, outcome.applied[0].removed),
        (1, 1)
    );
    let crm = crm.0.lock().expect("crm");
    assert_eq!(crm.records["ann@x.com"].1["Name"], "Annie");
    assert!(!crm.records["cy@x.com"].1.contains_key("Name"));
}

#[tokio::test]
async fn a_destination_type_without_a_connector_is_refused_before_any_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = write_project(dir.path(), "1,ann@x.com,Ann\n");
    let hubspot_only = Registry::empty().with(crate::hubspot::HubspotConnector);
    let problems = crate::plan_project(&hubspot_only, &project, &[], &NoReporter)
        .await
        .expect_err("the registry has no salesforce connector");
    assert_eq!(problems[0].code, "connector::not_implemented");
    assert!(
        problems[0]
            .message
            .contains("Salesforce connector is not implemented yet (destination `crm`)"),
        "{}",
        problems[0].message
    );
}

#[tokio::test]
async fn a_run_that_stopped_before_keeping_its_plan_is_finished_and_the_rows_applied() {
    use engine_state::{RunCounts, RunStatus, StateStore};
    let dir = tempfile::tempdir().expect("tempdir");
    let crm = MemoryConnector::default();
    let registry = Registry::empty().with(crm.clone());
    let project = write_project(dir.path(), "1,ann@x.com,Ann\n2,bob@x.com,Bob\n");
    // A run begun, then stopped (a full disk, a kill) before its plan header was written:
    // it sent nothing, and nothing may block the next apply.
    let run_id = {
        let state = crate::open_state(&project).expect("state");
        let run_id = state
            .begin_run("people_to_crm", "p1", 0, b"{}", RunCounts::default())
            .expect("begin");
        fs_err::remove_file(project.state_dir.join(format!("runs/{run_id}.plan.json")))
            .expect("the run's plan header exists");
        run_id
    };
    let outcome = apply_all(&registry, &project)
        .await
        .expect("the next apply recovers and applies");
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(crm.0.lock().expect("crm").records.len(), 2);
    let state = crate::open_state(&project).expect("state");
    let run = state.run(run_id).expect("run").expect("kept in history");
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.message
            .as_deref()
            .unwrap_or("")
            .contains("before sending anything"),
        "{run:?}"
    );
}
