//! The planner against a naive in-memory diff, and the fold's round trip.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
        batch_size: 100,
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
            work_dir: work,
        },
    )
    .await
}

/// Applies a plan as if every row succeeded, returning the new snapshot.
fn apply_all(plan: &SyncPlan, previous: Option<&Path>, out: &Path) {
    let succeeded: HashMap<String, Option<String>> = plan
        .changes
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
    let change = &second.changes[0];
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
    assert_eq!(second.changes[0].fields[0].before.as_deref(), Some("B"));
}

fn rows_strategy() -> impl Strategy<Value = Rows> {
    prop::collection::btree_map(
        "[a-e]{1,2}",
        ("[a-c]@x\\.io", prop::option::of("[A-C]{0,2}")),
        0..12,
    )
}

/// The naive diff: the expected (creates, updates, removes) by key.
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
        .iter()
        .filter(|c| c.action == action)
        .map(|c| c.key.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever the previous and next model rows, the plan matches the naive diff, and after
    /// applying it the next plan is empty.
    #[test]
    fn planner_matches_a_naive_diff(old in rows_strategy(), new in rows_strategy()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let s = sync(None);
            let first = plan(rows_batch(&old), None, dir.path(), &s).await.unwrap();
            let gen1 = dir.path().join("gen-1.parquet");
            apply_all(&first, None, &gen1);
            let second = plan(rows_batch(&new), Some(&gen1), dir.path(), &s).await.unwrap();
            let (creates, updates, removes) = naive(&old, &new);
            prop_assert_eq!(keys(&second, Action::Create), creates);
            prop_assert_eq!(keys(&second, Action::Update), updates);
            prop_assert_eq!(keys(&second, Action::Remove), removes);
            let gen2 = dir.path().join("gen-2.parquet");
            apply_all(&second, Some(&gen1), &gen2);
            let third = plan(rows_batch(&new), Some(&gen2), dir.path(), &s).await.unwrap();
            prop_assert!(third.changes.is_empty(), "{:?}", third.changes);
            Ok(())
        })?;
    }
}
