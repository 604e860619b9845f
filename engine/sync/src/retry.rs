//! How long and how often a destination is retried, shared by batches and read-only requests,
//! and how many requests may be in flight at once.

use std::time::Duration;

use engine_diag::Diagnostic;
use engine_executor::{ConcurrencyLimits, RetryPolicy};

/// `ENGINE_RETRY_TIMEOUT` (seconds an unreachable destination is retried, default 15).
pub fn retry_policy() -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    if let Some(attempts) = std::env::var("ENGINE_MAX_ATTEMPTS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        policy.max_attempts = attempts;
    }
    if let Some(timeout) = std::env::var("ENGINE_RETRY_TIMEOUT")
        .ok()
        .and_then(|v| parse_seconds(&v))
    {
        policy.unreachable_timeout = timeout;
    }
    policy
}

/// Requests in flight per sync apply, at most `ENGINE_MAX_IN_FLIGHT` (default
/// [`engine_executor::DEFAULT_MAX_IN_FLIGHT`]; `1` sends one request after another).
pub fn concurrency_limits() -> ConcurrencyLimits {
    std::env::var("ENGINE_MAX_IN_FLIGHT")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map(ConcurrencyLimits::with_max)
        .unwrap_or_default()
}

/// A number of seconds (`15`, `2.5`); `None` for anything else, negative or absurd.
fn parse_seconds(text: &str) -> Option<Duration> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
}

/// Runs a read-only destination request (properties, records) with the executor's backoff:
/// a rate limit or an outage (a connector's `…::unavailable` diagnostic) is waited out like
/// a batch.
pub async fn read_with_backoff<T, F, Fut>(read: F) -> Result<T, Diagnostic>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Diagnostic>>,
{
    let transient = |d: &Diagnostic| d.code.ends_with("::unavailable");
    engine_executor::read_with_retries(&retry_policy(), transient, read).await
}
