//! The server's shared state: records, limiter, faults, counters, and the shutdown signal.
//!
//! Each part has its own `std::sync::Mutex`, held only for a few statements and never across
//! an `.await`. A poisoned lock is recovered (the data is plain values), so no request can
//! panic the server through it.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::SandboxConfig;
use crate::faults::{FaultState, Injected};
use crate::rate_limit::{Limits, Policy, RateLimiter, Refusal};
use crate::store::Store;

/// How long a held request waits: "forever" for a test, bounded so nothing leaks for days.
const HANG: Duration = Duration::from_secs(24 * 60 * 60);

/// Locks a mutex, recovering from poisoning.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What `/_sandbox/stats` reports.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    requests: BTreeMap<&'static str, u64>,
    unauthorized: u64,
    rate_limited: u64,
    rate_limited_by: BTreeMap<&'static str, u64>,
    faults: BTreeMap<&'static str, u64>,
    write_requests: u64,
}

/// The key under `rate_limited_by` for a limiter refusal.
fn refusal_key(refusal: Refusal) -> &'static str {
    if refusal.search {
        "search"
    } else {
        match refusal.policy {
            Policy::Secondly => "secondly",
            Policy::TenSecondlyRolling => "ten_secondly_rolling",
            Policy::Daily => "daily",
        }
    }
}

impl Stats {
    /// The stats as JSON; every limiter policy and fault kind is listed, at 0 if unused.
    pub(crate) fn to_json(&self) -> Value {
        let mut rate_limited_by = self.rate_limited_by.clone();
        for key in ["secondly", "ten_secondly_rolling", "daily", "search"] {
            rate_limited_by.entry(key).or_default();
        }
        let mut faults = self.faults.clone();
        for kind in Injected::ALL {
            faults.entry(kind.key()).or_default();
        }
        json!({
            "requests": self.requests,
            "total_requests": self.requests.values().sum::<u64>(),
            "write_requests": self.write_requests,
            "rate_limited": self.rate_limited,
            "rate_limited_by": rate_limited_by,
            "unauthorized": self.unauthorized,
            "faults": faults,
        })
    }
}

/// Everything the handlers share.
pub(crate) struct Shared {
    pub(crate) token: String,
    pub(crate) max_batch_inputs: usize,
    pub(crate) store: Mutex<Store>,
    pub(crate) limiter: Mutex<RateLimiter>,
    pub(crate) faults: Mutex<FaultState>,
    pub(crate) stats: Mutex<Stats>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn new(config: SandboxConfig) -> Self {
        Shared {
            token: config.token,
            max_batch_inputs: config.max_batch_inputs,
            store: Mutex::new(Store::default()),
            limiter: Mutex::new(RateLimiter::new(Limits {
                per_second: config.requests_per_second,
                per_ten_seconds: config.requests_per_ten_seconds,
                per_day: config.requests_per_day,
                search_per_second: config.search_requests_per_second,
            })),
            faults: Mutex::new(FaultState::new(config.faults)),
            stats: Mutex::new(Stats::default()),
            shutdown: watch::Sender::new(false),
        }
    }

    /// Counts an API request by route kind (before auth and rate limiting).
    pub(crate) fn count_request(&self, kind: &'static str) {
        *lock(&self.stats).requests.entry(kind).or_default() += 1;
    }

    pub(crate) fn count_unauthorized(&self) {
        lock(&self.stats).unauthorized += 1;
    }

    /// Counts a request the limiter refused, in total and by policy.
    pub(crate) fn count_rate_limited(&self, refusal: Refusal) {
        let mut stats = lock(&self.stats);
        stats.rate_limited += 1;
        *stats
            .rate_limited_by
            .entry(refusal_key(refusal))
            .or_default() += 1;
    }

    /// Counts an injected fault.
    pub(crate) fn count_fault(&self, kind: Injected) {
        *lock(&self.stats).faults.entry(kind.key()).or_default() += 1;
    }

    /// Numbers a write request that got past auth and the rate limit (1, 2, …).
    pub(crate) fn next_write(&self) -> u64 {
        let mut stats = lock(&self.stats);
        stats.write_requests += 1;
        stats.write_requests
    }

    /// Clears records and counters; faults and the rate limits stay as set, the fault draws
    /// start over from the seed.
    pub(crate) fn reset(&self) {
        lock(&self.store).clear();
        lock(&self.limiter).reset();
        lock(&self.faults).reseed();
        *lock(&self.stats) = Stats::default();
    }

    /// The `hang_before_write` / `hang_after_write` settings.
    pub(crate) fn hangs(&self) -> (Option<u64>, Option<u64>) {
        let faults = lock(&self.faults);
        let settings = faults.settings();
        (settings.hang_before_write, settings.hang_after_write)
    }

    /// Holds the current request until the server shuts down (or a day passes); true when
    /// released by the shutdown.
    pub(crate) async fn hang(&self) -> bool {
        let mut stopped = self.shutdown.subscribe();
        tokio::select! {
            () = tokio::time::sleep(HANG) => false,
            _ = stopped.wait_for(|stop| *stop) => true,
        }
    }

    /// Resolves when [`Shared::stop`] is called.
    pub(crate) async fn stopped(&self) {
        let mut stopped = self.shutdown.subscribe();
        let _ = stopped.wait_for(|stop| *stop).await;
    }

    /// Releases held requests and tells the server to stop.
    pub(crate) fn stop(&self) {
        self.shutdown.send_replace(true);
    }
}
