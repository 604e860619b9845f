//! The planner against a naive in-memory diff, and the fold's round trip.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use engine_diag::SourceSpan;
use engine_mapping::SyncMapping;
use engine_plan::{Action, SyncPlan};
use engine_spec::{
    Guards, Located, MappingSource, MappingSpec, MatchSpec, OnNull, OnRemove, SyncMode, SyncSpec,
};
use proptest::prelude::*;

use crate::{SyncDiffInput, fold_snapshot, plan_sync};

/// A model row: key → (email, name).
type Rows = BTreeMap<String, (String, Option<String>)>;

fn located(value: &str) -> Located<String> {
    Located {
        value: value.into(),
        span: SourceSpan {
            file: PathBuf::from("s.yaml"),
            line: 1,
            column: 1,
            length: 0,
        },
    }
}

fn sync(max_deletes: Option<u64>) -> SyncSpec {
    SyncSpec {
        name: located("s"),
        file: PathBuf::from("syncs/s.yaml"),
        model: located("m"),
        destination: located("d"),
        object: located("contacts"),
        mode: SyncMode::Upsert,
        match_on: MatchSpec {
            property: located("email"),
            column: located("email"),
            on_invalid: engine_spec::OnInvalidMatch::Fail,
            lookup: engine_spec::MatchLookup::Unique,
            fallback: Vec::new(),
        },
        mapping: vec![MappingSpec {
            property: located("firstname"),
            source: MappingSource::Column(located("name")),
            on_null: OnNull::Keep,
        }],
        on_remove: OnRemove::ClearFields,
        guards: Guards {
            max_deletes,
            max_change_ratio: None,
        },
        batch_size: None,
        associations: Vec::new(),
        event: None,
        list: None,
    }
}

fn batch(rows: &[(Option<&str>, &str, Option<&str>)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("email", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| Some(r.1)).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

fn rows_batch(rows: &Rows) -> RecordBatch {
    let list: Vec<(Option<&str>, &str, Option<&str>)> = rows
        .iter()
        .map(|(k, (e, n))| (Some(k.as_str()), e.as_str(), n.as_deref()))
        .collect();
    batch(&list)
}

async fn plan(
    model: RecordBatch,
    previous: Option<&Path>,
    work: &Path,
    sync: &SyncSpec,
) -> Result<SyncPlan, Vec<engine_diag::Diagnostic>> {
    let ctx = SessionContext::new();
    let mapping = SyncMapping::compile(sync, &[located("id")], &model.schema()).unwrap();
    let stream = ctx
        .read_batch(model)
        .unwrap()
        .execute_stream()
        .await
        .unwrap();
    plan_sync(
        &ctx,
        stream,
        SyncDiffInput {
            sync,
            mapping: &mapping,
            base_generation: 0,
            previous_snapshot: previous.map(Path::to_path_buf),
            pending: HashMap::new(),
            retry_failed: false,
            match_case_insensitive: true,
            work_dir: work,
            progress: &(),
            stream_error: &crate::no_stream_diagnostic,
        },
    )
    .await
}

/// Applies a plan as if every row succeeded, returning the new snapshot.
fn apply_all(plan: &SyncPlan, previous: Option<&Path>, out: &Path) {
    let succeeded: HashMap<String, Option<String>> = plan
        .changes
        .to_vec()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c.key.clone(),
                Some(
                    c.destination_id
                        .clone()
                        .unwrap_or_else(|| format!("id-{}", c.key)),
                ),
            )
        })
        .collect();
    fold_snapshot(previous, plan, &succeeded, out).unwrap();
}

#[tokio::test]
async fn first_plan_creates_then_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let model = batch(&[
        (Some("1"), "a@x.io", Some("Ada")),
        (Some("2"), "b@x.io", None),
    ]);
    let first = plan(model.clone(), None, dir.path(), &sync(None))
        .await
        .unwrap();
    assert_eq!(first.summary.create, 2);
    let snap = dir.path().join("gen-1.parquet");
    apply_all(&first, None, &snap);
    let second = plan(model, Some(&snap), dir.path(), &sync(None))
        .await
        .unwrap();
    assert!(second.changes.is_empty(), "{second:?}");
    assert_eq!(second.summary.unchanged, 2);
}

#[tokio::test]
async fn a_changed_field_is_reported_with_before_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let first = plan(
        batch(&[(Some("1"), "a@x.io", Some("Ada"))]),
        None,
        dir.path(),
        &sync(None),
    )
    .await
    .unwrap();
    let snap = dir.path().join("gen-1.parquet");
    apply_all(&first, None, &snap);
    let second = plan(
        batch(&[(Some("1"), "a@x.io", Some("Augusta"))]),
        Some(&snap),
        dir.path(),
        &sync(None),
    )
    .await
    .unwrap();
    assert_eq!(second.changes.len(), 1);
    let changes = second.changes.to_vec().unwrap();
    let change = &changes[0];
    assert_eq!(change.action, Action::Update);
    assert_eq!(change.destination_id.as_deref(), Some("id-1"));
    assert_eq!(change.fields.len(), 1);
    assert_eq!(change.fields[0].property, "firstname");
    assert_eq!(change.fields[0].before.as_deref(), Some("Ada"));
    assert_eq!(change.fields[0].after.as_deref(), Some("Augusta"));
}

#[tokio::test]
async fn duplicate_and_null_keys_stop_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let dup = batch(&[
        (Some("1"), "a@x.io", None),
        (Some("1"), "b@x.io", None),
        (Some("2"), "c@x.io", None),
    ]);
    let err = plan(dup, None, dir.path(), &sync(None)).await.unwrap_err();
    assert_eq!(err[0].code, "diff::duplicate_keys");
    assert!(err[0].notes[0].contains("`1` (2 rows)"), "{}", err[0]);
    let null = batch(&[(None, "a@x.io", None), (Some("2"), "c@x.io", None)]);
    let err = plan(null, None, dir.path(), &sync(None)).await.unwrap_err();
    assert_eq!(err[0].code, "diff::null_keys");
    assert!(err[0].notes[0].contains("a@x.io"), "{}", err[0]);
}

#[tokio::test]
async fn guards_are_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let first = plan(
        batch(&[
            (Some("1"), "a@x.io", Some("A")),
            (Some("2"), "b@x.io", Some("B")),
        ]),
        None,
        dir.path(),
        &sync(Some(0)),
    )
    .await
    .unwrap();
    let snap = dir.path().join("gen-1.parquet");
    apply_all(&first, None, &snap);
    let second = plan(
        batch(&[(Some("1"), "a@x.io", Some("A"))]),
        Some(&snap),
        dir.path(),
        &sync(Some(0)),
    )
    .await
    .unwrap();
    assert_eq!(second.summary.remove, 1);
    assert!(second.guards[0].breached);
    assert_eq!(
        second.changes.to_vec().unwrap()[0].fields[0]
            .before
            .as_deref(),
        Some("B")
    );
}

fn rows_strategy() -> impl Strategy<Value = Rows> {
    prop::collection::btree_map("[a-e]{1,2}", ("[a-f]@x\\.io", "[A-C]{1,2}"), 0..10).prop_map(
        |rows| {
            // Match values are unique in a model (shared ones stop the plan).
            let mut seen = std::collections::HashSet::new();
            rows.into_iter()
                .filter(|(_, (email, _))| seen.insert(email.clone()))
                .map(|(k, (e, n))| (k, (e, Some(n))))
                .collect()
        },
    )
}

/// A destination in memory: records by id, each a map of properties, with HubSpot's rule
/// that no two records share an email.
#[derive(Debug, Default)]
struct Crm {
    records: BTreeMap<u64, BTreeMap<String, String>>,
    next: u64,
}

impl Crm {
    fn holder(&self, email: &str) -> Option<u64> {
        self.records
            .iter()
            .find(|(_, r)| r.get("email").map(String::as_str) == Some(email))
            .map(|(id, _)| *id)
    }

    fn write(&mut self, id: u64, change: &engine_plan::RowChange) -> Result<(), String> {
        for field in &change.fields {
            if let Some(value) = &field.after {
                if field.property == "email" && self.holder(value).is_some_and(|h| h != id) {
                    return Err(format!("{}: email {value} is taken", change.key));
                }
                self.records
                    .entry(id)
                    .or_default()
                    .insert(field.property.clone(), value.clone());
            }
        }
        Ok(())
    }

    /// Applies a plan in the executor's order; returns the ids for the fold.
    fn apply(&mut self, plan: &SyncPlan) -> Result<HashMap<String, Option<String>>, String> {
        let mut ids = HashMap::new();
        let changes;
        let mut order: Vec<&engine_plan::RowChange> = {
            changes = plan.changes.to_vec().unwrap();
            changes.iter().collect()
        };
        order.sort_by_key(|c| match c.action {
            Action::Update => (0, c.wave),
            Action::Create => (1, 0),
            Action::Remove => (2, 0),
        });
        let mut written = std::collections::HashSet::new();
        for change in order {
            let id = match change.action {
                Action::Update => {
                    let id: u64 = change
                        .destination_id
                        .as_deref()
                        .and_then(|i| i.parse().ok())
                        .ok_or("an update without an id")?;
                    self.write(id, change)?;
                    id
                }
                Action::Create => {
                    let email = change
                        .values
                        .as_ref()
                        .and_then(|v| v[0].clone())
                        .ok_or("no email")?;
                    let id = self.holder(&email).unwrap_or_else(|| {
                        self.next += 1;
                        self.next
                    });
                    self.write(id, change)?;
                    id
                }
                Action::Remove => {
                    let Some(id) = change
                        .destination_id
                        .as_deref()
                        .and_then(|i| i.parse().ok())
                    else {
                        ids.insert(change.key.clone(), None);
                        continue;
                    };
                    if !change.fields.is_empty() && written.contains(&id) {
                        return Err(format!("record {id} is written and cleared"));
                    }
                    if let Some(record) = self.records.get_mut(&id) {
                        for field in &change.fields {
                            record.remove(&field.property);
                        }
                    }
                    id
                }
            };
            if change.action != Action::Remove && !written.insert(id) {
                return Err(format!("record {id} is written twice"));
            }
            ids.insert(change.key.clone(), Some(id.to_string()));
        }
        Ok(ids)
    }

    /// Every model row has exactly its record; every other record was cleared.
    fn check(&self, model: &Rows) -> Result<(), String> {
        for (key, (email, name)) in model {
            let id = self
                .holder(email)
                .ok_or(format!("{key}: no record for {email}"))?;
            if self.records[&id].get("firstname") != name.as_ref() {
                return Err(format!("{key}: record {id} holds {:?}", self.records[&id]));
            }
        }
        for (id, record) in &self.records {
            let owned = model.values().any(|(e, _)| record.get("email") == Some(e));
            if !owned && record.contains_key("firstname") {
                return Err(format!(
                    "record {id} belongs to no row and was not cleared: {record:?}"
                ));
            }
        }
        Ok(())
    }
}

/// The naive diff, where every key keeps its own record: (creates, updates, removes).
fn naive(old: &Rows, new: &Rows) -> (Vec<String>, Vec<String>, Vec<String>) {
    let creates = new
        .keys()
        .filter(|k| !old.contains_key(*k))
        .cloned()
        .collect();
    let removes = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    let updates = new
        .iter()
        .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| k.clone())
        .collect();
    (creates, updates, removes)
}

fn keys(plan: &SyncPlan, action: Action) -> Vec<String> {
    plan.changes
        .to_vec()
        .unwrap()
        .iter()
        .filter(|c| c.action == action)
        .map(|c| c.key.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Whatever the previous and next model rows (keys and emails drawn from small sets, so
    /// re-keys, moving emails, swaps and chains are common), applying the plan to a destination
    /// that refuses duplicate emails leaves exactly the model there, never writes a record
    /// twice nor writes and clears one, and the next plan is empty. When no email changes
    /// hands, the plan is the naive per-key diff.
    #[test]
    fn plans_keep_the_destination_equal_to_the_model(old in rows_strategy(), new in rows_strategy()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let result: Result<(), TestCaseError> = runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let s = sync(None);
            let mut crm = Crm::default();
            let first = plan(rows_batch(&old), None, dir.path(), &s).await.unwrap();
            let ids = crm.apply(&first).map_err(TestCaseError::fail)?;
            let gen1 = dir.path().join("gen-1.parquet");
            fold_snapshot(None, &first, &ids, &gen1).unwrap();
            crm.check(&old).map_err(TestCaseError::fail)?;

            let second = plan(rows_batch(&new), Some(&gen1), dir.path(), &s).await.unwrap();
            // Reading the changed rows from the whole sorted model (the path of plans where
            // many rows differ) gives the same plan as the semi-join of the few.
            let semi_join_max = crate::incremental::SEMI_JOIN_MAX_ROWS.swap(0, Ordering::Relaxed);
            let other = tempfile::tempdir().unwrap();
            let sorted = plan(rows_batch(&new), Some(&gen1), other.path(), &s).await;
            crate::incremental::SEMI_JOIN_MAX_ROWS.store(semi_join_max, Ordering::Relaxed);
            prop_assert_eq!(second.changes.to_vec().unwrap(), sorted.unwrap().changes.to_vec().unwrap());
            let stable = old.iter().all(|(k, (e, _))| {
                new.iter().all(|(k2, (e2, _))| (k == k2) == (e == e2))
            });
            if stable {
                let (creates, updates, removes) = naive(&old, &new);
                prop_assert_eq!(keys(&second, Action::Create), creates);
                prop_assert_eq!(keys(&second, Action::Update), updates);
                prop_assert_eq!(keys(&second, Action::Remove), removes);
            }
            let ids = crm
                .apply(&second)
                .map_err(|e| TestCaseError::fail(format!("{e}: {:#?}", second.changes)))?;
            crm.check(&new)
                .map_err(|e| TestCaseError::fail(format!("{e}: {:#?}", second.changes)))?;
            let gen2 = dir.path().join("gen-2.parquet");
            fold_snapshot(Some(&gen1), &second, &ids, &gen2).unwrap();
            let third = plan(rows_batch(&new), Some(&gen2), dir.path(), &s).await.unwrap();
            prop_assert!(third.changes.is_empty(), "{:?}", third.changes);
            Ok(())
        });
        result?;
    }
}

/// Every key of a snapshot file, in file order.
fn snapshot_keys(path: &Path) -> Vec<String> {
    let mut keys = Vec::new();
    crate::read_snapshot_rows(path, None, |key, _| {
        keys.push(key.to_string());
        Ok(())
    })
    .unwrap();
    keys
}

/// The fold is a merge of sorted inputs: the snapshot it writes is in key order and says so;
/// a snapshot from before snapshots were sorted is sorted once (same rows) and then folds like
/// any other; an input out of order is refused, never merged wrongly.
#[tokio::test]
async fn the_fold_writes_key_order_and_sorts_an_old_snapshot_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = sync(None);
    let properties = vec!["email".to_string(), "firstname".to_string()];
    let legacy = dir.path().join("legacy.parquet");
    let mut writer = crate::SnapshotWriter::create(&legacy, &properties, true).unwrap();
    for key in ["3", "1", "2"] {
        let email = format!("{key}@x.io");
        writer
            .push(key, Some(&format!("id-{key}")), &[Some(&email), Some("A")])
            .unwrap();
    }
    writer.finish().unwrap();
    assert!(!crate::snapshot_is_sorted(&legacy).unwrap());

    // Folding straight onto the unsorted snapshot is refused.
    let first = plan(
        batch(&[
            (Some("1"), "1@x.io", Some("A")),
            (Some("4"), "4@x.io", Some("D")),
        ]),
        None,
        dir.path(),
        &s,
    )
    .await
    .unwrap();
    let refused = fold_snapshot(
        Some(&legacy),
        &first,
        &HashMap::new(),
        &dir.path().join("x.parquet"),
    )
    .unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::InvalidData, "{refused}");

    // Planning against it sorts it once, in place; the diff is as if it had been sorted.
    let model = batch(&[
        (Some("1"), "1@x.io", Some("A")),
        (Some("2"), "2@x.io", Some("B")),
        (Some("4"), "4@x.io", Some("D")),
    ]);
    let second = plan(model.clone(), Some(&legacy), dir.path(), &s)
        .await
        .unwrap();
    assert!(crate::snapshot_is_sorted(&legacy).unwrap());
    assert_eq!(snapshot_keys(&legacy), vec!["1", "2", "3"]);
    let change_keys: Vec<String> = second
        .changes
        .to_vec()
        .unwrap()
        .into_iter()
        .map(|c| c.key)
        .collect();
    assert_eq!(
        change_keys,
        vec!["2", "3", "4"],
        "changes come in key order"
    );

    let next = dir.path().join("gen-next.parquet");
    apply_all(&second, Some(&legacy), &next);
    assert!(crate::snapshot_is_sorted(&next).unwrap());
    assert_eq!(snapshot_keys(&next), vec!["1", "2", "4"]);
    let third = plan(model, Some(&next), dir.path(), &s).await.unwrap();
    assert!(third.changes.is_empty(), "{:?}", third.changes.to_vec());
}
