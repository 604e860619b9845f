//! The secondly rate limit and HubSpot's rate-limit headers (FACTS R3–R5).
//!
//! A fixed one-second window: the first admitted request opens a window, up to
//! `requests_per_second` requests are admitted in it, the rest get 429 with `Retry-After: 1`
//! (waiting one second always reaches a fresh window). Refused requests do not use up the
//! window. A daily counter feeds the `…-Daily-Remaining` header but is never enforced.

use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);

/// The daily allowance reported in `X-HubSpot-RateLimit-Daily` (Enterprise tier, FACTS R1).
pub(crate) const DAILY_LIMIT: u64 = 1_000_000;

/// The limiter state; lives behind the server's mutex.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: Option<u32>,
    window_start: Option<Instant>,
    count: u32,
    daily: u64,
}

/// What the limiter decided, with the numbers for the headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Admission {
    pub(crate) allowed: bool,
    limit: Option<u32>,
    remaining: u32,
    daily_remaining: u64,
}

impl RateLimiter {
    pub(crate) fn new(limit: Option<u32>) -> Self {
        RateLimiter {
            limit,
            window_start: None,
            count: 0,
            daily: 0,
        }
    }

    pub(crate) fn limit(&self) -> Option<u32> {
        self.limit
    }

    /// Changes the limit (fault injection); the current window starts over.
    pub(crate) fn set_limit(&mut self, limit: Option<u32>) {
        self.limit = limit;
        self.window_start = None;
        self.count = 0;
    }

    /// Forgets the counts, keeps the limit.
    pub(crate) fn reset(&mut self) {
        self.window_start = None;
        self.count = 0;
        self.daily = 0;
    }

    /// Decides whether a request arriving at `now` may proceed.
    pub(crate) fn admit(&mut self, now: Instant) -> Admission {
        let expired = self
            .window_start
            .is_none_or(|start| now.duration_since(start) >= WINDOW);
        if expired {
            self.window_start = Some(now);
            self.count = 0;
        }
        let allowed = self.limit.is_none_or(|limit| self.count < limit);
        if allowed {
            self.count = self.count.saturating_add(1);
            self.daily = self.daily.saturating_add(1);
        }
        Admission {
            allowed,
            limit: self.limit,
            remaining: self
                .limit
                .map_or(0, |limit| limit.saturating_sub(self.count)),
            daily_remaining: DAILY_LIMIT.saturating_sub(self.daily),
        }
    }
}

impl Admission {
    /// The `X-HubSpot-RateLimit-*` headers. The interval headers are sent only when a limit is
    /// configured: an unlimited sandbox has no interval to report.
    pub(crate) fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("x-hubspot-ratelimit-daily", DAILY_LIMIT.to_string()),
            (
                "x-hubspot-ratelimit-daily-remaining",
                self.daily_remaining.to_string(),
            ),
        ];
        if let Some(limit) = self.limit {
            headers.extend([
                (
                    "x-hubspot-ratelimit-interval-milliseconds",
                    WINDOW.as_millis().to_string(),
                ),
                ("x-hubspot-ratelimit-max", limit.to_string()),
                ("x-hubspot-ratelimit-remaining", self.remaining.to_string()),
                ("x-hubspot-ratelimit-secondly", limit.to_string()),
                (
                    "x-hubspot-ratelimit-secondly-remaining",
                    self.remaining.to_string(),
                ),
            ]);
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(Some(2));
        assert!(limiter.admit(start).allowed);
        assert!(limiter.admit(start).allowed);
        let refused = limiter.admit(start + Duration::from_millis(500));
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert!(limiter.admit(start + Duration::from_millis(1000)).allowed);
    }

    #[test]
    fn unlimited_and_headers() {
        let mut limiter = RateLimiter::new(None);
        let admission = limiter.admit(Instant::now());
        assert!(admission.allowed);
        assert_eq!(admission.headers().len(), 2);
        limiter.set_limit(Some(5));
        let admission = limiter.admit(Instant::now());
        let headers = admission.headers();
        assert!(headers.contains(&("x-hubspot-ratelimit-remaining", "4".to_owned())));
        assert!(headers.contains(&("x-hubspot-ratelimit-daily-remaining", "999998".to_owned())));
    }
}
