//! HubSpot's search endpoints have a rate limit of their own, apart from the portal's limit
//! for other calls: 4 requests a second per token (FACTS R2), and they send no rate-limit
//! headers to pace by. Every search of one process to one account waits for a token of one
//! bucket, so syncs and batches in flight together stay within it instead of drawing 429s.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Searches a second per token (FACTS R2).
pub(crate) const SEARCHES_PER_SECOND: u32 = 4;

/// A token bucket for the searches of one account.
pub(crate) type SearchBudget = Arc<DefaultDirectRateLimiter>;

static BUDGETS: LazyLock<Mutex<HashMap<String, SearchBudget>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The search budget of the account `key` names (see `HubspotConfig::account_key`), shared by
/// every destination of this process that writes to it.
pub(crate) fn for_account(key: &str) -> SearchBudget {
    let mut budgets = BUDGETS.lock().unwrap_or_else(PoisonError::into_inner);
    budgets
        .entry(key.to_string())
        .or_insert_with(|| {
            let rate = NonZeroU32::new(SEARCHES_PER_SECOND).unwrap_or(NonZeroU32::MIN);
            Arc::new(RateLimiter::direct(Quota::per_second(rate)))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_account_has_one_budget() {
        let a = for_account("hubspot a");
        assert!(Arc::ptr_eq(&a, &for_account("hubspot a")));
        assert!(!Arc::ptr_eq(&a, &for_account("hubspot b")));
        // A burst of one second's worth, then the bucket is empty.
        for _ in 0..SEARCHES_PER_SECOND {
            assert!(a.check().is_ok());
        }
        assert!(a.check().is_err());
    }
}
