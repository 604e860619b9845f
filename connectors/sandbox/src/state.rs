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
use crate::rate_limit::RateLimiter;
use crate::store::Store;

/// How long a held request waits: "forever" for a test, bounded so nothing leaks for days.
const HANG: Duration = Duration::from_secs(24 * 60 * 60);

/// Locks a mutex, recovering from poisoning.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Injected faults on write requests, by their sequence number (1 = first write).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Faults {
    pub(crate) hang_before_write: Option<u64>,
    pub(crate) hang_after_write: Option<u64>,
}

/// What `/_sandbox/stats` reports.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    requests: BTreeMap<&'static str, u64>,
    unauthorized: u64,
    rate_limited: u64,
    write_requests: u64,
}

impl Stats {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "requests": self.requests,
            "total_requests": self.requests.values().sum::<u64>(),
            "write_requests": self.write_requests,
            "rate_limited": self.rate_limited,
            "unauthorized": self.unauthorized,
        })
    }
}

/// Everything the handlers share.
pub(crate) struct Shared {
    pub(crate) token: String,
    pub(crate) max_batch_inputs: usize,
    pub(crate) store: Mutex<Store>,
    pub(crate) limiter: Mutex<RateLimiter>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) stats: Mutex<Stats>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn new(config: SandboxConfig) -> Self {
        Shared {
            token: config.token,
            max_batch_inputs: config.max_batch_inputs,
            store: Mutex::new(Store::default()),
            limiter: Mutex::new(RateLimiter::new(config.requests_per_second)),
            faults: Mutex::new(Faults::default()),
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

    pub(crate) fn count_rate_limited(&self) {
        lock(&self.stats).rate_limited += 1;
    }

    /// Numbers a write request that got past auth and the rate limit (1, 2, …).
    pub(crate) fn next_write(&self) -> u64 {
        let mut stats = lock(&self.stats);
        stats.write_requests += 1;
        stats.write_requests
    }

    /// Clears records and counters; faults and the rate limit stay as set.
    pub(crate) fn reset(&self) {
        lock(&self.store).clear();
        lock(&self.limiter).reset();
        *lock(&self.stats) = Stats::default();
    }

    pub(crate) fn faults(&self) -> Faults {
        *lock(&self.faults)
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
