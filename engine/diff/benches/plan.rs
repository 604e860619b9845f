//! Plan-time benchmark: a model of N rows over CSV against a previous snapshot of N rows,
//! with 1% of rows changed, 1% added and 1% removed.
//!
//! ```text
//! cargo bench -p engine-diff --bench plan               # 1,000,000 and 10,000,000 rows
//! cargo bench -p engine-diff --bench plan -- 1000000    # one size
//! ```
//!
//! Prints, per size: wall time of the plan (model scan + mapping + key checks + join + reading
//! back changed rows) and the process's peak RSS during it (VmHWM, reset after the data is
//! generated). The data is generated into a temporary directory first and is not timed.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use datafusion::prelude::CsvReadOptions;
use engine_diag::SourceSpan;
use engine_diff::{SnapshotWriter, SyncDiffInput, plan_sync};
use engine_mapping::SyncMapping;
use engine_models::{EngineOptions, ModelEngine};
use engine_spec::{
    Guards, Located, MappingSource, MappingSpec, MatchSpec, ModelSpec, OnNull, OnRemove, SyncMode,
    SyncSpec,
};

const PROPERTIES: [(&str, &str); 4] = [
    ("firstname", "first_name"),
    ("lastname", "last_name"),
    ("phone", "phone"),
    ("lifecyclestage", "plan"),
];

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000_000, 10_000_000]
    } else {
        sizes
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "{:>12} {:>10} {:>10} {:>10} {:>10} {:>12} {:>14}",
        "rows", "create", "update", "remove", "unchanged", "plan time", "peak RSS"
    );
    for n in sizes {
        let dir = tempfile::tempdir().expect("temp dir");
        generate(dir.path(), n).expect("generate data");
        reset_peak_rss();
        let start = Instant::now();
        let plan = runtime.block_on(plan(dir.path())).expect("plan");
        let elapsed = start.elapsed();
        let s = plan.summary;
        println!(
            "{:>12} {:>10} {:>10} {:>10} {:>10} {:>10.2} s {:>11} MB",
            n,
            s.create,
            s.update,
            s.remove,
            s.unchanged,
            elapsed.as_secs_f64(),
            peak_rss_kb() / 1024
        );
    }
}

fn span() -> SourceSpan {
    SourceSpan {
        file: PathBuf::from("bench.yaml"),
        line: 1,
        column: 1,
        length: 0,
    }
}

fn located(value: &str) -> Located<String> {
    Located {
        value: value.to_string(),
        span: span(),
    }
}

fn sync() -> SyncSpec {
    SyncSpec {
        name: located("bench"),
        file: PathBuf::from("syncs/bench.yaml"),
        model: located("users"),
        destination: located("hubspot"),
        object: located("contacts"),
        mode: SyncMode::Upsert,
        match_on: MatchSpec {
            property: located("email"),
            column: located("email"),
            on_invalid: engine_spec::OnInvalidMatch::Fail,
        },
        mapping: PROPERTIES
            .iter()
            .map(|(property, column)| MappingSpec {
                property: located(property),
                source: MappingSource::Column(located(column)),
                on_null: OnNull::Keep,
            })
            .collect(),
        on_remove: OnRemove::ClearFields,
        guards: Guards::default(),
        batch_size: 100,
    }
}

/// Row i of the model (version 2 when `changed`).
fn row(i: u64, changed: bool) -> [String; 6] {
    let first = if changed {
        format!("First{i}x")
    } else {
        format!("First{i}")
    };
    [
        i.to_string(),
        format!("user{i}@example.com"),
        first,
        format!("Last{i}"),
        if i.is_multiple_of(3) {
            String::new()
        } else {
            format!("+1 555 {:07}", i % 10_000_000)
        },
        if i.is_multiple_of(7) {
            "customer".into()
        } else {
            "lead".into()
        },
    ]
}

/// Writes `users.csv` (the model's input, version 2) and `snapshot.parquet` (version 1).
/// Rows 0..n exist in version 1; in version 2 every 100th row (i % 100 == 1) changed, every
/// 100th (i % 100 == 2) is removed, and n/100 new rows are added after n.
fn generate(dir: &Path, n: u64) -> std::io::Result<()> {
    let mut csv =
        std::io::BufWriter::with_capacity(1 << 20, fs_err::File::create(dir.join("users.csv"))?);
    writeln!(csv, "id,email,first_name,last_name,phone,plan")?;
    let properties: Vec<String> = std::iter::once("email")
        .chain(PROPERTIES.iter().map(|(p, _)| *p))
        .map(String::from)
        .collect();
    let mut snapshot = SnapshotWriter::create(&dir.join("snapshot.parquet"), &properties, true)?;
    for i in 0..n {
        let old = row(i, false);
        let values: Vec<Option<&str>> = old[1..]
            .iter()
            .map(|v| if v.is_empty() { None } else { Some(v.as_str()) })
            .collect();
        snapshot.push(&old[0], Some(&(i + 1).to_string()), &values)?;
        if i % 100 == 2 {
            continue;
        }
        writeln!(csv, "{}", row(i, i % 100 == 1).join(","))?;
    }
    for i in n..n + n / 100 {
        writeln!(csv, "{}", row(i, false).join(","))?;
    }
    snapshot.finish()?;
    csv.flush()
}

async fn plan(dir: &Path) -> Result<engine_plan::SyncPlan, String> {
    let options = EngineOptions {
        spill_dir: Some(dir.to_path_buf()),
        ..EngineOptions::default()
    };
    let engine = ModelEngine::empty(&options).map_err(|d| d.to_string())?;
    let csv = CsvReadOptions::new().schema_infer_max_records(1000);
    engine
        .context()
        .register_csv(
            "users",
            dir.join("users.csv").to_string_lossy().as_ref(),
            csv,
        )
        .await
        .map_err(|e| e.to_string())?;
    let model = ModelSpec {
        name: located("users"),
        file: PathBuf::from("models/users.yaml"),
        description: None,
        primary_key: vec![located("id")],
        sql: "SELECT id, email, first_name, last_name, phone, plan FROM users".into(),
        sql_span: span(),
        sql_indent: 0,
    };
    let sync = sync();
    let schema = engine.schema(&model).await.map_err(|d| d.to_string())?;
    let mapping =
        SyncMapping::compile(&sync, &model.primary_key, &schema).map_err(|d| format!("{d:?}"))?;
    let stream = engine.execute(&model).await.map_err(|d| d.to_string())?;
    let work = dir.join("work");
    plan_sync(
        engine.context(),
        stream,
        SyncDiffInput {
            sync: &sync,
            mapping: &mapping,
            base_generation: 1,
            previous_snapshot: Some(dir.join("snapshot.parquet")),
            pending: HashMap::new(),
            retry_failed: false,
            match_case_insensitive: true,
            work_dir: &work,
            progress: &(),
        },
    )
    .await
    .map_err(|d| format!("{d:?}"))
}

fn reset_peak_rss() {
    // Writing 5 to clear_refs resets VmHWM (Linux), so generation does not count.
    let _ = fs_err::write("/proc/self/clear_refs", "5");
}

fn peak_rss_kb() -> u64 {
    fs_err::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
