//! HubSpot's rate limits and rate-limit headers (FACTS R1–R5), each one optional.
//!
//! | policy | window | applies to | 429 message |
//! | --- | --- | --- | --- |
//! | `SECONDLY` | fixed 1 s, `requests_per_second` | API requests but search | "You have reached your secondly limit." |
//! | `TEN_SECONDLY_ROLLING` | rolling 10 s, `requests_per_ten_seconds` | API requests but search | "You have reached your ten_secondly_rolling limit." |
//! | `SECONDLY` (search) | fixed 1 s, `search_requests_per_second` | `POST …/search` only | "You have reached your secondly limit." |
//! | `DAILY` | the UTC day, `requests_per_day` | every API request | "You have reached your daily limit." |
//!
//! Search has its own bucket (FACTS R2: 4 per second, separate from the burst limit): a search
//! counts against the search limit and the daily budget, not against the secondly or
//! ten-secondly windows. A request is checked against every limit that applies to it (daily
//! first, then ten-secondly, then secondly) and recorded in all of them only when all have
//! room, so a refused request uses up nothing.

mod window;

use std::time::{Duration, Instant};

use chrono::NaiveDate;

use self::window::{DailyBudget, FixedWindow, RollingWindow};

const SECOND: Duration = Duration::from_secs(1);
const TEN_SECONDS: Duration = Duration::from_secs(10);

/// The daily allowance reported in `X-HubSpot-RateLimit-Daily` when no daily limit is set
/// (Enterprise tier, FACTS R1); it is then reported but never enforced.
pub(crate) const REPORTED_DAILY_LIMIT: u64 = 1_000_000;

/// The limits in force; `None` turns a limit off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) per_second: Option<u32>,
    pub(crate) per_ten_seconds: Option<u32>,
    pub(crate) per_day: Option<u64>,
    pub(crate) search_per_second: Option<u32>,
}

/// The HubSpot policy that refused a request (`policyName` in the 429 body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    Secondly,
    TenSecondlyRolling,
    Daily,
}

impl Policy {
    /// `policyName`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Policy::Secondly => "SECONDLY",
            Policy::TenSecondlyRolling => "TEN_SECONDLY_ROLLING",
            Policy::Daily => "DAILY",
        }
    }

    /// HubSpot's message for the policy (FACTS R5).
    pub(crate) fn message(self) -> &'static str {
        match self {
            Policy::Secondly => "You have reached your secondly limit.",
            Policy::TenSecondlyRolling => "You have reached your ten_secondly_rolling limit.",
            Policy::Daily => "You have reached your daily limit.",
        }
    }
}

/// Which limits a request is subject to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bucket {
    /// Every API request but search.
    Api,
    /// `POST /crm/v3/objects/{objectType}/search`.
    Search,
}

/// Why a request was refused: the policy, and whether the search bucket refused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) policy: Policy,
    pub(crate) search: bool,
}

/// The limiter state; lives behind the server's mutex.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limits: Limits,
    secondly: FixedWindow,
    ten_secondly: RollingWindow,
    search: FixedWindow,
    daily: DailyBudget,
}

/// What the limiter decided, with the numbers for the headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Admission {
    /// `None` when the request may proceed.
    pub(crate) refused: Option<Refusal>,
    limits: Limits,
    secondly_remaining: u32,
    ten_secondly_remaining: u32,
    daily_remaining: u64,
}

impl RateLimiter {
    pub(crate) fn new(limits: Limits) -> Self {
        RateLimiter {
            limits,
            secondly: FixedWindow::new(SECOND),
            ten_secondly: RollingWindow::new(TEN_SECONDS),
            search: FixedWindow::new(SECOND),
            daily: DailyBudget::default(),
        }
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Changes the limits (fault injection). A window whose limit changed starts over; the
    /// daily count is kept when only other limits change.
    pub(crate) fn set_limits(&mut self, limits: Limits) {
        if limits.per_second != self.limits.per_second {
            self.secondly.clear();
        }
        if limits.per_ten_seconds != self.limits.per_ten_seconds {
            self.ten_secondly.clear();
        }
        if limits.search_per_second != self.limits.search_per_second {
            self.search.clear();
        }
        self.limits = limits;
    }

    /// Forgets the counts, keeps the limits.
    pub(crate) fn reset(&mut self) {
        self.secondly.clear();
        self.ten_secondly.clear();
        self.search.clear();
        self.daily.clear();
    }

    /// The first limit with no room left for a request in `bucket`, if any.
    fn refusal(&mut self, now: Instant, today: NaiveDate, bucket: Bucket) -> Option<Refusal> {
        let limits = self.limits;
        let api = |policy| {
            Some(Refusal {
                policy,
                search: false,
            })
        };
        if limits
            .per_day
            .is_some_and(|limit| !self.daily.has_room(today, limit))
        {
            return api(Policy::Daily);
        }
        match bucket {
            Bucket::Search => limits
                .search_per_second
                .is_some_and(|limit| !self.search.has_room(now, limit))
                .then_some(Refusal {
                    policy: Policy::Secondly,
                    search: true,
                }),
            Bucket::Api => {
                if limits
                    .per_ten_seconds
                    .is_some_and(|limit| !self.ten_secondly.has_room(now, limit))
                {
                    api(Policy::TenSecondlyRolling)
                } else if limits
                    .per_second
                    .is_some_and(|limit| !self.secondly.has_room(now, limit))
                {
                    api(Policy::Secondly)
                } else {
                    None
                }
            }
        }
    }

    /// Decides whether a request in `bucket` arriving at `now` (on the UTC day `today`) may
    /// proceed, and records it if so.
    pub(crate) fn admit(&mut self, now: Instant, today: NaiveDate, bucket: Bucket) -> Admission {
        let refused = self.refusal(now, today, bucket);
        if refused.is_none() {
            self.daily.take(today);
            match bucket {
                Bucket::Search => self.search.take(now),
                Bucket::Api => {
                    self.secondly.take(now);
                    self.ten_secondly.take(now);
                }
            }
        }
        let limits = self.limits;
        Admission {
            refused,
            limits,
            secondly_remaining: limits
                .per_second
                .map_or(0, |limit| self.secondly.remaining(limit)),
            ten_secondly_remaining: limits
                .per_ten_seconds
                .map_or(0, |limit| self.ten_secondly.remaining(limit)),
            daily_remaining: self
                .daily
                .remaining(limits.per_day.unwrap_or(REPORTED_DAILY_LIMIT)),
        }
    }
}

impl Admission {
    /// The `X-HubSpot-RateLimit-*` headers (FACTS R3, R4); the caller leaves them off search
    /// responses.
    ///
    /// The daily pair is always sent: the daily limit when one is set, else the Enterprise
    /// allowance (never enforced). The interval headers describe the ten-second window when
    /// one is set (`Interval-Milliseconds: 10000`, as HubSpot sends), else the one-second
    /// window; the legacy `Secondly` pair is sent whenever a secondly limit is set. An
    /// unlimited sandbox has no interval to report.
    pub(crate) fn headers(&self) -> Vec<(&'static str, String)> {
        let daily = self.limits.per_day.unwrap_or(REPORTED_DAILY_LIMIT);
        let mut headers = vec![
            ("x-hubspot-ratelimit-daily", daily.to_string()),
            (
                "x-hubspot-ratelimit-daily-remaining",
                self.daily_remaining.to_string(),
            ),
        ];
        let interval = match (self.limits.per_ten_seconds, self.limits.per_second) {
            (Some(limit), _) => Some((TEN_SECONDS, limit, self.ten_secondly_remaining)),
            (None, Some(limit)) => Some((SECOND, limit, self.secondly_remaining)),
            (None, None) => None,
        };
        if let Some((window, max, remaining)) = interval {
            headers.extend([
                (
                    "x-hubspot-ratelimit-interval-milliseconds",
                    window.as_millis().to_string(),
                ),
                ("x-hubspot-ratelimit-max", max.to_string()),
                ("x-hubspot-ratelimit-remaining", remaining.to_string()),
            ]);
        }
        if let Some(limit) = self.limits.per_second {
            headers.extend([
                ("x-hubspot-ratelimit-secondly", limit.to_string()),
                (
                    "x-hubspot-ratelimit-secondly-remaining",
                    self.secondly_remaining.to_string(),
                ),
            ]);
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 2).unwrap_or_default()
    }

    fn limiter(limits: Limits) -> RateLimiter {
        RateLimiter::new(limits)
    }

    fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_secondly_window_refuses_with_its_policy() {
        let start = Instant::now();
        let mut limiter = limiter(Limits {
            per_second: Some(2),
            ..Limits::default()
        });
        assert_eq!(limiter.admit(start, today(), Bucket::Api).refused, None);
        assert_eq!(limiter.admit(start, today(), Bucket::Api).refused, None);
        let refused = limiter.admit(start + Duration::from_millis(500), today(), Bucket::Api);
        assert_eq!(refused.refused.map(|r| r.policy), Some(Policy::Secondly));
        assert_eq!(refused.secondly_remaining, 0);
        let next = start + Duration::from_millis(1000);
        assert_eq!(limiter.admit(next, today(), Bucket::Api).refused, None);
    }

    #[test]
    fn the_ten_second_window_rolls_and_outranks_the_secondly_one() {
        let start = Instant::now();
        let s = Duration::from_secs;
        let mut limiter = limiter(Limits {
            per_second: Some(1),
            per_ten_seconds: Some(3),
            ..Limits::default()
        });
        for second in 0..3 {
            let admission = limiter.admit(start + s(second), today(), Bucket::Api);
            assert_eq!(admission.refused, None);
        }
        let refused = limiter.admit(start + s(3), today(), Bucket::Api);
        assert_eq!(
            refused.refused.map(|r| r.policy),
            Some(Policy::TenSecondlyRolling)
        );
        let headers = refused.headers();
        assert_eq!(
            header(&headers, "x-hubspot-ratelimit-interval-milliseconds"),
            Some("10000")
        );
        assert_eq!(header(&headers, "x-hubspot-ratelimit-max"), Some("3"));
        assert_eq!(header(&headers, "x-hubspot-ratelimit-remaining"), Some("0"));
        assert_eq!(header(&headers, "x-hubspot-ratelimit-secondly"), Some("1"));
        // The first request leaves the window at 10 s; the refused one used up nothing.
        assert!(
            limiter
                .admit(start + s(9), today(), Bucket::Api)
                .refused
                .is_some()
        );
        assert_eq!(
            limiter.admit(start + s(10), today(), Bucket::Api).refused,
            None
        );

        // With room in the burst window, the secondly limit still refuses within one second.
        let mut limiter = RateLimiter::new(Limits {
            per_second: Some(1),
            per_ten_seconds: Some(10),
            ..Limits::default()
        });
        assert_eq!(limiter.admit(start, today(), Bucket::Api).refused, None);
        let refused = limiter.admit(start, today(), Bucket::Api);
        assert_eq!(refused.refused.map(|r| r.policy), Some(Policy::Secondly));
        assert_eq!(
            header(&refused.headers(), "x-hubspot-ratelimit-remaining"),
            Some("9")
        );
    }

    #[test]
    fn the_daily_limit_comes_first_and_counts_searches() {
        let start = Instant::now();
        let mut limiter = limiter(Limits {
            per_day: Some(2),
            ..Limits::default()
        });
        assert_eq!(limiter.admit(start, today(), Bucket::Search).refused, None);
        let last = limiter.admit(start, today(), Bucket::Api);
        assert_eq!(last.refused, None);
        let headers = last.headers();
        assert_eq!(header(&headers, "x-hubspot-ratelimit-daily"), Some("2"));
        assert_eq!(
            header(&headers, "x-hubspot-ratelimit-daily-remaining"),
            Some("0")
        );
        assert!(header(&headers, "x-hubspot-ratelimit-max").is_none());
        let refused = limiter.admit(start, today(), Bucket::Search);
        assert_eq!(
            refused.refused,
            Some(Refusal {
                policy: Policy::Daily,
                search: false
            })
        );
        let tomorrow = today().succ_opt().unwrap_or_default();
        assert_eq!(limiter.admit(start, tomorrow, Bucket::Api).refused, None);
    }

    #[test]
    fn search_has_its_own_bucket() {
        let start = Instant::now();
        let mut limiter = limiter(Limits {
            per_second: Some(1),
            search_per_second: Some(2),
            ..Limits::default()
        });
        assert_eq!(limiter.admit(start, today(), Bucket::Api).refused, None);
        assert_eq!(limiter.admit(start, today(), Bucket::Search).refused, None);
        assert_eq!(limiter.admit(start, today(), Bucket::Search).refused, None);
        let refused = limiter.admit(start, today(), Bucket::Search);
        assert_eq!(
            refused.refused,
            Some(Refusal {
                policy: Policy::Secondly,
                search: true
            })
        );
        assert!(limiter.admit(start, today(), Bucket::Api).refused.is_some());
        let later = start + SECOND;
        assert_eq!(limiter.admit(later, today(), Bucket::Search).refused, None);
    }

    #[test]
    fn unlimited_reports_only_the_daily_pair() {
        let mut limiter = limiter(Limits::default());
        let admission = limiter.admit(Instant::now(), today(), Bucket::Api);
        assert_eq!(admission.refused, None);
        let headers = admission.headers();
        assert_eq!(headers.len(), 2);
        assert_eq!(
            header(&headers, "x-hubspot-ratelimit-daily-remaining"),
            Some("999999")
        );
        limiter.set_limits(Limits {
            per_second: Some(5),
            ..Limits::default()
        });
        let headers = limiter
            .admit(Instant::now(), today(), Bucket::Api)
            .headers();
        assert_eq!(
            header(&headers, "x-hubspot-ratelimit-interval-milliseconds"),
            Some("1000")
        );
        assert_eq!(header(&headers, "x-hubspot-ratelimit-remaining"), Some("4"));
        assert_eq!(
            header(&headers, "x-hubspot-ratelimit-secondly-remaining"),
            Some("4")
        );
        assert_eq!(
            header(&headers, "x-hubspot-ratelimit-daily-remaining"),
            Some("999998")
        );
    }
}
