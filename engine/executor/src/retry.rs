//! Backoff: how often and how long a batch is tried again (exponential, with jitter).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// How many times to try and how long to wait between tries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per batch, the first included.
    pub max_attempts: u32,
    /// The first backoff delay.
    pub min_delay: Duration,
    /// The longest wait, also the cap on a destination's `Retry-After`.
    pub max_delay: Duration,
    /// The longest time spent retrying a destination that cannot be reached at all (connection
    /// refused, DNS, TLS), counted from the first failure; then the run stops. Attempts are
    /// still bounded by `max_attempts`.
    pub unreachable_timeout: Duration,
}

/// How long an unreachable destination is retried by default: long enough for a restart or a
/// network blip, short enough that a dead destination fails an apply quickly.
pub const DEFAULT_UNREACHABLE_TIMEOUT: Duration = Duration::from_secs(15);

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            unreachable_timeout: DEFAULT_UNREACHABLE_TIMEOUT,
        }
    }
}

impl RetryPolicy {
    /// The backoff delays, exponential with jitter.
    pub(crate) fn delays(&self) -> impl Iterator<Item = Duration> {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_jitter()
            .with_max_times(self.max_attempts as usize)
            .build()
    }
}
