//! The request budget of one destination account, shared by every sync that writes to it.
//!
//! A destination's rate limit belongs to the account (a HubSpot portal, a Salesforce org),
//! not to a sync: two syncs writing to one portal in one process must draw from one token
//! bucket, and when the destination answers 429 with `Retry-After`, every request to that
//! account waits, not just the batch that was refused. [`AccountBudgets`] hands out one
//! [`AccountBudget`] per account identity for the whole process.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

/// A token bucket plus an account-wide pause: what every request to one account waits for.
pub struct AccountBudget {
    requests_per_second: f64,
    bucket: Option<DefaultDirectRateLimiter>,
    paused_until: Mutex<Option<Instant>>,
}

impl fmt::Debug for AccountBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountBudget")
            .field("requests_per_second", &self.requests_per_second)
            .field("paused_until", &self.paused_until())
            .finish()
    }
}

impl AccountBudget {
    /// A budget of `requests_per_second`, requests evenly spaced a little under it (no burst,
    /// [`PACING_SHARE`] of the rate: see [`bucket`]);
    /// zero, negative or not finite means unlimited. Use [`AccountBudgets::budget`] to share
    /// it by account.
    pub fn new(requests_per_second: f64) -> Self {
        Self {
            requests_per_second,
            bucket: bucket(requests_per_second),
            paused_until: Mutex::new(None),
        }
    }

    /// The rate this budget allows.
    pub fn requests_per_second(&self) -> f64 {
        self.requests_per_second
    }

    /// Waits until one request may be sent: past any pause, then for a token.
    pub async fn ready(&self) {
        self.wait_out_pause().await;
        if let Some(bucket) = &self.bucket {
            bucket.until_ready().await;
            // A 429 may have paused the account while this request waited for its token.
            self.wait_out_pause().await;
        }
    }

    /// Holds every request to the account for `wait` (a destination's `Retry-After`); a
    /// longer pause already in place is kept.
    pub fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }

    /// When the current pause ends, if one was ever set (it may be over).
    pub fn paused_until(&self) -> Option<Instant> {
        *self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn wait_out_pause(&self) {
        while let Some(until) = self.paused_until().filter(|u| *u > Instant::now()) {
            tokio::time::sleep_until(until).await;
        }
    }
}

/// The share of `requests_per_second` the bucket paces at (see [`bucket`]).
pub const PACING_SHARE: f64 = 0.97;

/// The token bucket: one token every `1 / (requests_per_second × PACING_SHARE)`, holding at
/// most one.
///
/// No burst, on purpose: a destination counts requests in windows (HubSpot: per second, and
/// 100 in any rolling 10 seconds), and a bucket that starts full, or refills during a pause,
/// sends a second's worth at once on top of the steady rate, so the first window, and the
/// first after every `Retry-After`, holds nearly twice the limit and answers 429. Evenly
/// spaced requests put the limit in a window, and a little under it: a window opens when a
/// request arrives, and a request that left on time after one that left late would arrive a
/// few milliseconds inside a window already full. 3% of slack (31 ms a second at 5 requests
/// per second) absorbs that jitter, where a 429 would cost a whole `Retry-After`.
fn bucket(requests_per_second: f64) -> Option<DefaultDirectRateLimiter> {
    if !(requests_per_second.is_finite() && requests_per_second > 0.0) {
        return None;
    }
    let period = Duration::from_secs_f64(1.0 / (requests_per_second * PACING_SHARE));
    Quota::with_period(period).map(|q| RateLimiter::direct(q.allow_burst(NonZeroU32::MIN)))
}

/// The budgets of the accounts this process writes to, one per account identity.
///
/// The identity is the caller's: for HubSpot the base URL and a hash of the token (never
/// the token itself), for Salesforce the org. Two syncs that name the same identity get the
/// same [`AccountBudget`].
#[derive(Debug, Default)]
pub struct AccountBudgets {
    budgets: Mutex<HashMap<String, Arc<AccountBudget>>>,
}

static PROCESS_BUDGETS: LazyLock<AccountBudgets> = LazyLock::new(AccountBudgets::default);

impl AccountBudgets {
    /// The registry shared by the whole process.
    pub fn global() -> &'static AccountBudgets {
        &PROCESS_BUDGETS
    }

    /// The budget of `account`, made at `requests_per_second` on first use. A later caller
    /// asking another rate gets the existing budget (one account has one rate limit) and a
    /// warning is logged.
    pub fn budget(&self, account: &str, requests_per_second: f64) -> Arc<AccountBudget> {
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        let budget = budgets
            .entry(account.to_string())
            .or_insert_with(|| Arc::new(AccountBudget::new(requests_per_second)));
        if budget.requests_per_second().to_bits() != requests_per_second.to_bits() {
            tracing::warn!(
                first = budget.requests_per_second(),
                asked = requests_per_second,
                "Two destinations write to one account with different `requests_per_second`; the first one holds."
            );
        }
        Arc::clone(budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_account_one_budget() {
        let budgets = AccountBudgets::default();
        let a = budgets.budget("hubspot https://api.hubapi.com #1", 10.0);
        let again = budgets.budget("hubspot https://api.hubapi.com #1", 10.0);
        let other = budgets.budget("hubspot https://api.hubapi.com #2", 10.0);
        assert!(Arc::ptr_eq(&a, &again));
        assert!(!Arc::ptr_eq(&a, &other));
        let slower = budgets.budget("hubspot https://api.hubapi.com #1", 5.0);
        assert!(Arc::ptr_eq(&a, &slower), "the first rate holds");
        assert_eq!(slower.requests_per_second(), 10.0);
    }

    #[test]
    fn a_pause_only_ever_extends() {
        let budget = AccountBudget::new(0.0);
        budget.pause(Duration::from_secs(10));
        let long = budget.paused_until().unwrap();
        budget.pause(Duration::from_secs(1));
        assert_eq!(budget.paused_until(), Some(long));
    }

    #[tokio::test]
    async fn an_unlimited_budget_never_waits() {
        let budget = AccountBudget::new(f64::INFINITY);
        for _ in 0..1000 {
            budget.ready().await;
        }
    }
}
