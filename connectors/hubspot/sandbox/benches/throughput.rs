//! How fast the sandbox takes writes and answers lookups as its store grows.
//!
//! Starts the sandbox in-process on a loopback port (its own runtime), then from a client
//! runtime over real HTTP: pre-loads the store to each size with batch upserts by `email`
//! (creates), and at each size measures
//!
//! - batch upserts that create (100 new emails per request),
//! - batch upserts that update (100 existing emails, a changed `firstname`),
//! - batch reads by `email` (100 per request),
//! - searches with one `email` EQ filter,
//!
//! and the process's resident memory per stored record (`VmRSS` from `/proc/self/status`,
//! above the level measured before the first record). Next to each rate, `CPU µs` is the CPU
//! time the whole process (sandbox and client) spent per record (per search request), from
//! `/proc/self/stat`: unlike the rates it hardly moves when other work shares the machine. `records` is the store's size when the
//! measurements start (they add `requests × 100` records of their own). Flat figures across
//! sizes mean the cost of a request does not grow with the store.
//!
//! ```sh
//! cargo bench -p hubspot-sandbox --bench throughput
//! SANDBOX_BENCH_SIZES=0,10000 SANDBOX_BENCH_REQUESTS=200 cargo bench -p hubspot-sandbox --bench throughput
//! ```
//!
//! Knobs (environment): `SANDBOX_BENCH_SIZES` (store sizes, ascending; default
//! `0,100000,1000000`), `SANDBOX_BENCH_REQUESTS` (requests per measurement; default 1000),
//! `SANDBOX_BENCH_CONCURRENCY` (requests in flight; default 4), `SANDBOX_BENCH_SERVER_THREADS`
//! (sandbox runtime workers; default 2).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hubspot_sandbox::{SandboxConfig, SandboxHandle};

const TOKEN: &str = "bench-token";
const BATCH: usize = 100;

/// The benchmark's settings, from the environment.
struct Settings {
    sizes: Vec<usize>,
    requests: usize,
    concurrency: usize,
    server_threads: usize,
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

impl Settings {
    fn from_env() -> Self {
        let sizes = std::env::var("SANDBOX_BENCH_SIZES")
            .unwrap_or_else(|_| "0,100000,1000000".to_owned())
            .split(',')
            .filter_map(|s| s.trim().replace('_', "").parse().ok())
            .collect();
        Settings {
            sizes,
            requests: env_number("SANDBOX_BENCH_REQUESTS", 1000).max(1),
            concurrency: env_number("SANDBOX_BENCH_CONCURRENCY", 4).max(1),
            server_threads: env_number("SANDBOX_BENCH_SERVER_THREADS", 2).max(1),
        }
    }
}

/// The process's resident set size in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::File::open("/proc/self/status")
        .and_then(|mut f| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut f, &mut text).map(|_| text)
        })
        .unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// CPU time the whole process (sandbox and client) has used, from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::File::open("/proc/self/stat")
        .and_then(|mut f| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut f, &mut text).map(|_| text)
        })
        .unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14,
    // stime 15, in clock ticks (100 per second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

/// What one measurement took: wall time and the process's CPU time.
struct Took {
    wall: Duration,
    cpu: Duration,
}

fn email(n: usize) -> String {
    format!("user{n}@example.com")
}

/// An upsert body for emails `first..first + BATCH`; `round` goes into `firstname` so an
/// update changes something.
fn upsert_body(first: usize, round: usize) -> String {
    let inputs: Vec<String> = (first..first + BATCH)
        .map(|n| {
            format!(
                r#"{{"idProperty":"email","id":"{}","properties":{{"firstname":"Name{n}-{round}","lastname":"Bench","lifecyclestage":"lead","num_orders":"{n}"}}}}"#,
                email(n)
            )
        })
        .collect();
    format!(r#"{{"inputs":[{}]}}"#, inputs.join(","))
}

fn read_body(first: usize) -> String {
    let inputs: Vec<String> = (first..first + BATCH)
        .map(|n| format!(r#"{{"id":"{}"}}"#, email(n)))
        .collect();
    format!(
        r#"{{"idProperty":"email","properties":["email","firstname"],"inputs":[{}]}}"#,
        inputs.join(",")
    )
}

fn search_body(n: usize) -> String {
    format!(
        r#"{{"filterGroups":[{{"filters":[{{"propertyName":"email","operator":"EQ","value":"{}"}}]}}],"properties":["email"],"limit":10}}"#,
        email(n)
    )
}

/// Sends requests `0..count` (bodies from `body`) with `concurrency` in flight; returns the
/// elapsed time. Panics on any answer but 200, so a figure never hides a failure.
async fn drive(
    client: &reqwest::Client,
    url: String,
    count: usize,
    concurrency: usize,
    body: impl Fn(usize) -> String + Send + Sync + 'static,
) -> Took {
    let next = Arc::new(AtomicUsize::new(0));
    let body = Arc::new(body);
    let url = Arc::new(url);
    let started = Instant::now();
    let cpu = cpu_time();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, next, body, url) =
                (client.clone(), next.clone(), body.clone(), url.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let reply = client
                        .post(url.as_str())
                        .bearer_auth(TOKEN)
                        .header("content-type", "application/json")
                        .body(body(i))
                        .send()
                        .await
                        .expect("the sandbox answers");
                    let status = reply.status();
                    let text = reply.bytes().await.expect("a whole body");
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&text));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a worker finishes");
    }
    Took {
        wall: started.elapsed(),
        cpu: cpu_time().saturating_sub(cpu),
    }
}

fn per_second(items: usize, took: &Took) -> f64 {
    items as f64 / took.wall.as_secs_f64().max(1e-9)
}

/// CPU microseconds per item, sandbox and client together.
fn cpu_micros(items: usize, took: &Took) -> f64 {
    took.cpu.as_secs_f64() * 1e6 / items.max(1) as f64
}

async fn run(settings: &Settings, sandbox: &SandboxHandle) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(settings.concurrency)
        .build()
        .expect("a client");
    let url = |route: &str| format!("{}/crm/v3/objects/contacts/{route}", sandbox.base_url);
    let baseline = rss_bytes();
    let (requests, concurrency) = (settings.requests, settings.concurrency);
    println!(
        "{requests} requests per measurement, {BATCH} inputs per batch, {concurrency} in flight"
    );
    println!(
        "{:>9} {:>10} {:>12} {:>7} {:>12} {:>7} {:>10} {:>7} {:>12} {:>7} {:>8} {:>8}",
        "records",
        "preload/s",
        "create rec/s",
        "CPU µs",
        "update rec/s",
        "CPU µs",
        "read rec/s",
        "CPU µs",
        "search req/s",
        "CPU µs",
        "RSS MiB",
        "B/record"
    );
    let mut stored = 0usize;
    for &size in &settings.sizes {
        // Pre-load to `size` with creating upserts.
        let preload_batches = size.saturating_sub(stored).div_ceil(BATCH);
        let first = stored;
        let preload = drive(
            &client,
            url("batch/upsert"),
            preload_batches,
            concurrency,
            move |i| upsert_body(first + i * BATCH, 0),
        )
        .await;
        stored += preload_batches * BATCH;
        let preload_rate = per_second(preload_batches * BATCH, &preload);
        let rss = rss_bytes();
        let per_record = if stored == 0 {
            "-".to_owned()
        } else {
            format!("{:.0}", rss.saturating_sub(baseline) as f64 / stored as f64)
        };
        let at_size = stored;

        // Upserts that create: emails beyond the store.
        let first = stored;
        let create = drive(
            &client,
            url("batch/upsert"),
            requests,
            concurrency,
            move |i| upsert_body(first + i * BATCH, 0),
        )
        .await;
        stored += requests * BATCH;

        // Upserts that update: existing emails spread over the store.
        let batches = stored / BATCH;
        let update = drive(
            &client,
            url("batch/upsert"),
            requests,
            concurrency,
            move |i| upsert_body(spread(i, batches) * BATCH, 1 + i),
        )
        .await;
        let read = drive(
            &client,
            url("batch/read"),
            requests,
            concurrency,
            move |i| read_body(spread(i, batches) * BATCH),
        )
        .await;
        let searches = requests * 4;
        let search = drive(&client, url("search"), searches, concurrency, move |i| {
            search_body(spread(i, stored))
        })
        .await;
        let records = requests * BATCH;
        println!(
            "{:>9} {:>10} {:>12.0} {:>7.1} {:>12.0} {:>7.1} {:>10.0} {:>7.1} {:>12.0} {:>7.1} {:>8.1} {:>8}",
            at_size,
            if preload_batches == 0 {
                "-".to_owned()
            } else {
                format!("{preload_rate:.0}")
            },
            per_second(records, &create),
            cpu_micros(records, &create),
            per_second(records, &update),
            cpu_micros(records, &update),
            per_second(records, &read),
            cpu_micros(records, &read),
            per_second(searches, &search),
            cpu_micros(searches, &search),
            rss as f64 / (1024.0 * 1024.0),
            per_record,
        );
    }
}

/// Spreads request `i` over `0..range` (a fixed stride, so every measurement touches old and
/// new records alike).
fn spread(i: usize, range: usize) -> usize {
    (i.wrapping_mul(7919)) % range.max(1)
}

fn main() {
    let settings = Settings::from_env();
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.server_threads)
        .thread_name("sandbox")
        .enable_all()
        .build()
        .expect("a server runtime");
    let config = SandboxConfig {
        token: TOKEN.to_owned(),
        ..SandboxConfig::default()
    };
    let sandbox = server
        .block_on(hubspot_sandbox::spawn(config))
        .expect("the sandbox binds a loopback port");
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("client")
        .enable_all()
        .build()
        .expect("a client runtime");
    client.block_on(run(&settings, &sandbox));
    server.block_on(sandbox.shutdown());
}
