//! The three counters behind HubSpot's rate-limit policies: a fixed window (`SECONDLY`), a
//! rolling window (`TEN_SECONDLY_ROLLING`) and a daily budget (`DAILY`).
//!
//! Each takes the time as an argument, so tests step through windows without sleeping. A
//! counter only checks (`has_room`) or records (`take`): the limiter asks every counter a
//! request is subject to first and records it in all of them only when all have room, so a
//! refused request uses up nothing.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chrono::NaiveDate;

/// A fixed window: the first request after the window ran out opens a new one.
///
/// Waiting one window length after a refusal always reaches a fresh window, which is what a
/// client honouring `Retry-After: 1` relies on.
#[derive(Debug)]
pub(crate) struct FixedWindow {
    length: Duration,
    start: Option<Instant>,
    count: u32,
}

impl FixedWindow {
    pub(crate) fn new(length: Duration) -> Self {
        FixedWindow {
            length,
            start: None,
            count: 0,
        }
    }

    /// Opens a new window if the current one has run out at `now`.
    fn roll(&mut self, now: Instant) {
        let expired = self
            .start
            .is_none_or(|start| now.duration_since(start) >= self.length);
        if expired {
            self.start = Some(now);
            self.count = 0;
        }
    }

    /// Whether one more request fits under `limit` at `now`.
    pub(crate) fn has_room(&mut self, now: Instant, limit: u32) -> bool {
        self.roll(now);
        self.count < limit
    }

    /// Records an admitted request (call [`FixedWindow::has_room`] first).
    pub(crate) fn take(&mut self, now: Instant) {
        self.roll(now);
        self.count = self.count.saturating_add(1);
    }

    /// How many more requests fit in the current window.
    pub(crate) fn remaining(&self, limit: u32) -> u32 {
        limit.saturating_sub(self.count)
    }

    pub(crate) fn clear(&mut self) {
        self.start = None;
        self.count = 0;
    }
}

/// A rolling window: a request is admitted when fewer than `limit` requests were admitted in
/// the `length` before it. Holds at most `limit` instants.
#[derive(Debug)]
pub(crate) struct RollingWindow {
    length: Duration,
    admitted: VecDeque<Instant>,
}

impl RollingWindow {
    pub(crate) fn new(length: Duration) -> Self {
        RollingWindow {
            length,
            admitted: VecDeque::new(),
        }
    }

    /// Forgets the requests that left the window at `now`.
    fn expire(&mut self, now: Instant) {
        while let Some(&oldest) = self.admitted.front() {
            if now.duration_since(oldest) >= self.length {
                self.admitted.pop_front();
            } else {
                break;
            }
        }
    }

    /// Whether one more request fits under `limit` at `now`.
    pub(crate) fn has_room(&mut self, now: Instant, limit: u32) -> bool {
        self.expire(now);
        self.admitted.len() < usize::try_from(limit).unwrap_or(usize::MAX)
    }

    /// Records an admitted request (call [`RollingWindow::has_room`] first).
    pub(crate) fn take(&mut self, now: Instant) {
        self.expire(now);
        self.admitted.push_back(now);
    }

    /// How many more requests fit in the window ending now.
    pub(crate) fn remaining(&self, limit: u32) -> u32 {
        let used = u32::try_from(self.admitted.len()).unwrap_or(u32::MAX);
        limit.saturating_sub(used)
    }

    pub(crate) fn clear(&mut self) {
        self.admitted.clear();
    }
}

/// Requests admitted today. HubSpot resets the count at midnight in the account's time zone
/// (FACTS R1); the sandbox's account lives in UTC.
#[derive(Debug, Default)]
pub(crate) struct DailyBudget {
    day: Option<NaiveDate>,
    used: u64,
}

impl DailyBudget {
    /// Starts the count over when `today` is a new day.
    fn roll(&mut self, today: NaiveDate) {
        if self.day != Some(today) {
            self.day = Some(today);
            self.used = 0;
        }
    }

    /// Whether one more request fits under `limit` on `today`.
    pub(crate) fn has_room(&mut self, today: NaiveDate, limit: u64) -> bool {
        self.roll(today);
        self.used < limit
    }

    /// Records an admitted request.
    pub(crate) fn take(&mut self, today: NaiveDate) {
        self.roll(today);
        self.used = self.used.saturating_add(1);
    }

    /// How many more requests fit today.
    pub(crate) fn remaining(&self, limit: u64) -> u64 {
        limit.saturating_sub(self.used)
    }

    pub(crate) fn clear(&mut self) {
        self.used = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_window_starts_over_after_its_length() {
        let start = Instant::now();
        let mut window = FixedWindow::new(Duration::from_secs(1));
        for _ in 0..2 {
            assert!(window.has_room(start, 2));
            window.take(start);
        }
        assert!(!window.has_room(start + Duration::from_millis(999), 2));
        assert_eq!(window.remaining(2), 0);
        assert!(window.has_room(start + Duration::from_secs(1), 2));
        assert_eq!(window.remaining(2), 2);
    }

    #[test]
    fn a_rolling_window_frees_room_as_requests_age() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut window = RollingWindow::new(Duration::from_secs(10));
        window.take(start);
        window.take(start + ms(4_000));
        window.take(start + ms(8_000));
        assert!(!window.has_room(start + ms(9_999), 3));
        // The first request leaves the window ten seconds after it was admitted; a fixed
        // window opened at `start` would have reset everything at that moment.
        assert!(window.has_room(start + ms(10_000), 3));
        assert_eq!(window.remaining(3), 1);
        window.take(start + ms(10_000));
        assert!(!window.has_room(start + ms(13_999), 3));
        assert!(window.has_room(start + ms(14_000), 3));
    }

    #[test]
    fn the_daily_budget_resets_on_a_new_day() {
        let monday = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap_or_default();
        let tuesday = monday.succ_opt().unwrap_or_default();
        let mut budget = DailyBudget::default();
        assert!(budget.has_room(monday, 1));
        budget.take(monday);
        assert!(!budget.has_room(monday, 1));
        assert_eq!(budget.remaining(1), 0);
        assert!(budget.has_room(tuesday, 1));
        assert_eq!(budget.remaining(5), 5);
    }
}
