//! How fast templates render: maps a model of 100,000 rows through typical `template:`
//! mappings and prints rows and renders per second.
//!
//! The sync is loaded from a small project written to a temporary directory (so the bench
//! reads YAML as `engine` does), then `SyncMapping::map_batch` runs over the rows in batches
//! of 8,192 (DataFusion's batch size). Measured are all templates together, then each alone:
//!
//! - `signed_up_at`: Hightouch's null guard with `to_unix` (every tenth date is null),
//! - `greeting`: a chain of Liquid filters with arguments,
//! - `domain`: `email_domain`,
//! - `segment`: Liquid `unless` on `is_free_email`.
//!
//! Next to each rate, `CPU µs/row` is the CPU time the process spent per row (from
//! `/proc/self/stat`), which hardly moves when other work shares the machine; the load
//! average is printed first.
//!
//! ```sh
//! cargo bench -p engine-mapping --bench render
//! MAPPING_BENCH_ROWS=1000000 cargo bench -p engine-mapping --bench render
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use engine_mapping::SyncMapping;

const BATCH: usize = 8192;
const ROUNDS: usize = 3;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "signed_up_at",
        "{%- if row['signed_up'] == null -%}{{ null }}{%- else -%}{{ row['signed_up'] | to_unix }}{%- endif -%}",
    ),
    (
        "greeting",
        "{{ row.first_name | default: \"there\" | strip | downcase | prepend: \"Hi \" | append: \"!\" | truncate: 24 }}",
    ),
    ("domain", "{{ row.email | email_domain }}"),
    (
        "segment",
        "{% unless row.email | is_free_email %}work{% else %}personal{% endunless %}",
    ),
];

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Seconds of CPU time (user + system) this process has used.
fn cpu_seconds() -> f64 {
    let Ok(stat) = fs_err::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (1-based) of the whole line: 11 and 12 here.
    (ticks(11) + ticks(12)) / 100.0
}

/// Writes a project with one sync mapping `templates` and loads the sync.
fn load_sync(
    dir: &Path,
    templates: &[(&str, &str)],
) -> (engine_spec::SyncSpec, Vec<engine_spec::Located<String>>) {
    let _ = fs_err::remove_dir_all(dir);
    fs_err::create_dir_all(dir.join("models")).expect("temporary directory");
    fs_err::create_dir_all(dir.join("syncs")).expect("temporary directory");
    fs_err::write(
        dir.join("engine.yaml"),
        "version: 1\nproject: bench\ndestinations:\n  hubspot:\n    type: hubspot\n    token: ${env:HUBSPOT_TOKEN}\n",
    )
    .expect("engine.yaml");
    fs_err::write(
        dir.join("models/people.yaml"),
        "name: people\nprimary_key: [id]\nsql: SELECT 1 AS id\n",
    )
    .expect("model");
    let mut sync = String::from(
        "name: people_to_hubspot\nmodel: people\ndestination: hubspot\nobject: contacts\nmode: upsert\nmatch:\n  property: email\n  column: email\nmapping:\n",
    );
    for (property, template) in templates {
        let quoted = serde_json::to_string(template).expect("a string");
        sync.push_str(&format!(
            "  - property: {property}\n    template: {quoted}\n"
        ));
    }
    fs_err::write(dir.join("syncs/people.yaml"), sync).expect("sync");
    let (project, _warnings) = match engine_spec::load_project(dir) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            for d in diagnostics {
                eprintln!("{d}");
            }
            panic!("the bench project does not load");
        }
    };
    let sync = project.syncs.into_iter().next().expect("one sync");
    let model = project.models.into_iter().next().expect("one model");
    (sync, model.primary_key)
}

/// The model rows: ids, e-mail addresses (half at free-mail providers), names with stray
/// white space (every seventh null), sign-up times (every tenth null).
fn model(rows: usize) -> RecordBatch {
    let ids: Vec<i64> = (0..rows as i64).collect();
    let emails: Vec<String> = (0..rows)
        .map(|i| {
            let domain = ["gmail.com", "Acme-Corp.io", "yahoo.co.jp", "example.org"][i % 4];
            format!("user{i}@{domain}")
        })
        .collect();
    let names: Vec<Option<String>> = (0..rows)
        .map(|i| (i % 7 != 0).then(|| format!("  Ada{} Lovelace ", i % 100)))
        .collect();
    let signed_up: Vec<Option<String>> = (0..rows)
        .map(|i| {
            (i % 10 != 0).then(|| {
                format!(
                    "2024-{:02}-{:02}T{:02}:{:02}:00Z",
                    i % 12 + 1,
                    i % 28 + 1,
                    i % 24,
                    i % 60
                )
            })
        })
        .collect();
    RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
        ("email", Arc::new(StringArray::from(emails)) as ArrayRef),
        ("first_name", Arc::new(StringArray::from(names)) as ArrayRef),
        (
            "signed_up",
            Arc::new(StringArray::from(signed_up)) as ArrayRef,
        ),
    ])
    .expect("columns of one length")
}

/// Maps every row `ROUNDS` times; the best round's wall time and its CPU time.
fn measure(mapping: &SyncMapping, batch: &RecordBatch) -> (Duration, f64) {
    let mut best = (Duration::MAX, 0.0);
    for _ in 0..ROUNDS {
        let cpu = cpu_seconds();
        let start = Instant::now();
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = BATCH.min(batch.num_rows() - offset);
            let mapped = mapping
                .map_batch(&batch.slice(offset, len))
                .expect("the bench rows map");
            std::hint::black_box(mapped);
            offset += len;
        }
        let wall = start.elapsed();
        if wall < best.0 {
            best = (wall, cpu_seconds() - cpu);
        }
    }
    best
}

fn main() {
    // `cargo bench` passes `--bench`; this harness takes no arguments.
    let rows = env_number("MAPPING_BENCH_ROWS", 100_000);
    let load = fs_err::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "rows: {rows}, batches of {BATCH}, best of {ROUNDS} rounds; {cores} cores, load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let batch = model(rows);
    let dir = std::env::temp_dir().join(format!("engine-mapping-bench-{}", std::process::id()));
    let mut runs: Vec<(String, &[(&str, &str)])> = vec![("all templates".to_owned(), TEMPLATES)];
    for one in TEMPLATES.chunks(1) {
        runs.push((one[0].0.to_owned(), one));
    }
    println!(
        "{:<16} {:>10} {:>12} {:>14} {:>12}",
        "mapping", "templates", "rows/s", "renders/s", "CPU µs/row"
    );
    for (name, templates) in runs {
        let (sync, primary_key) = load_sync(&dir, templates);
        let mapping = match SyncMapping::compile(&sync, &primary_key, &batch.schema()) {
            Ok(mapping) => mapping,
            Err(diagnostics) => {
                for d in diagnostics {
                    eprintln!("{d}");
                }
                panic!("the bench templates do not compile");
            }
        };
        let (wall, cpu) = measure(&mapping, &batch);
        let rows_per_second = rows as f64 / wall.as_secs_f64();
        println!(
            "{name:<16} {:>10} {:>12.0} {:>14.0} {:>12.2}",
            templates.len(),
            rows_per_second,
            rows_per_second * templates.len() as f64,
            cpu * 1e6 / rows as f64
        );
    }
    let _ = fs_err::remove_dir_all(&dir);
}
