//! Adaptive request concurrency: how many batches may be in flight at once.
//!
//! An AIMD controller in the spirit of vector's adaptive request concurrency. It starts at
//! [`ConcurrencyLimits::initial`], grows by one when a clean answer comes back while the
//! limit was in use and the round-trip time is not rising above its baseline (an EWMA of
//! clean round trips), and halves on back pressure (429, a whole-batch retry, rows to retry,
//! a connection failure) or when the round-trip time rises markedly. It never exceeds
//! [`ConcurrencyLimits::max`] and never drops below one.
//!
//! It adjusts at most once per round trip: each request takes a [`Ticket`] numbered in send
//! order, and only an answer to a request sent after the last change may change the limit
//! again (a halving needs a request sent after the last halving). So a burst of 429s for
//! requests that were all in flight together halves once, not once per request. The
//! controller reads no clock: the caller measures round trips, which keeps it deterministic
//! and testable.

use std::time::Duration;

/// The default of [`ConcurrencyLimits::max`]: HubSpot's busiest tiers allow about 19
/// requests a second, and a batch of 100 upserts takes up to a second, so 16 requests in
/// flight can use such a budget; the token bucket, not this cap, is the usual bound.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;

/// The default of [`ConcurrencyLimits::initial`]: small, so a destination that is already
/// busy is not hit with a burst before the first answers say how it copes.
pub const DEFAULT_INITIAL_IN_FLIGHT: usize = 2;

/// Bounds of the number of requests in flight within one sync's apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcurrencyLimits {
    /// Requests in flight at the start (clamped to `1..=max`).
    pub initial: usize,
    /// Requests in flight at most; 1 sends strictly one request after another.
    pub max: usize,
}

impl Default for ConcurrencyLimits {
    fn default() -> Self {
        Self {
            initial: DEFAULT_INITIAL_IN_FLIGHT,
            max: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

impl ConcurrencyLimits {
    /// Limits with at most `max` in flight (at least 1) and the default start below it.
    pub fn with_max(max: usize) -> Self {
        Self {
            initial: DEFAULT_INITIAL_IN_FLIGHT,
            max: max.max(1),
        }
    }
}

/// How an answer bears on the destination's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Answered and nothing is to be retried (rejected rows included: the destination coped).
    Clean,
    /// Rate limited, overloaded or unreachable: send less.
    BackPressure,
    /// Says nothing about load (a fatal answer such as 401).
    Neutral,
}

/// A request's place in send order, taken just before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    sequence: u64,
    /// The limit was in use when it was sent: growing is only justified then.
    saturated: bool,
}

/// A round trip below `baseline × GROW_TOLERANCE + RTT_SLACK` counts as not rising.
const GROW_TOLERANCE: f64 = 1.25;
/// A round trip above `baseline × CUT_RATIO + RTT_SLACK` counts as rising markedly: back
/// pressure.
const CUT_RATIO: f64 = 2.0;
/// Absolute slack on both thresholds, in seconds: on a fast link (a local sandbox answers in
/// a millisecond) scheduling noise doubles a round trip without the destination being busy.
const RTT_SLACK: f64 = 0.005;
/// Weight of the newest round trip in the baseline.
const EWMA_ALPHA: f64 = 0.2;

/// The AIMD controller. One per sync apply.
#[derive(Debug)]
pub(crate) struct Controller {
    limit: usize,
    max: usize,
    /// Requests sent and not yet answered.
    outstanding: usize,
    /// The next ticket's sequence number.
    next_sequence: u64,
    /// Tickets below this were sent before the last change of the limit.
    changed_at: u64,
    /// Tickets below this were sent before the last halving.
    cut_at: u64,
    /// EWMA of clean round trips, in seconds.
    baseline: Option<f64>,
    peak: usize,
    cuts: u32,
}

impl Controller {
    pub(crate) fn new(limits: ConcurrencyLimits) -> Self {
        let max = limits.max.max(1);
        let limit = limits.initial.clamp(1, max);
        Self {
            limit,
            max,
            outstanding: 0,
            next_sequence: 0,
            changed_at: 0,
            cut_at: 0,
            baseline: None,
            peak: limit,
            cuts: 0,
        }
    }

    /// How many batches may be in flight now.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// The highest limit reached.
    pub(crate) fn peak(&self) -> usize {
        self.peak
    }

    /// How many times the limit was cut.
    pub(crate) fn cuts(&self) -> u32 {
        self.cuts
    }

    /// Registers a request about to be sent.
    pub(crate) fn start(&mut self) -> Ticket {
        self.outstanding += 1;
        let ticket = Ticket {
            sequence: self.next_sequence,
            saturated: self.outstanding >= self.limit,
        };
        self.next_sequence += 1;
        ticket
    }

    /// Registers the answer to `ticket`'s request, which took `rtt`, and adjusts the limit.
    pub(crate) fn observe(&mut self, ticket: Ticket, rtt: Duration, signal: Signal) {
        self.outstanding = self.outstanding.saturating_sub(1);
        let rtt = rtt.as_secs_f64();
        let rising_markedly = self
            .baseline
            .is_some_and(|b| rtt > b * CUT_RATIO + RTT_SLACK);
        match signal {
            Signal::Neutral => {}
            Signal::BackPressure => self.cut(ticket),
            Signal::Clean => {
                let steady = self
                    .baseline
                    .is_none_or(|b| rtt <= b * GROW_TOLERANCE + RTT_SLACK);
                if rising_markedly {
                    self.cut(ticket);
                } else if steady && ticket.saturated && ticket.sequence >= self.changed_at {
                    self.grow();
                }
                // Every clean answer moves the baseline, so a destination that is lastingly
                // slower (bigger batches, a busier hour) stops looking like a rise.
                self.baseline = Some(match self.baseline {
                    None => rtt,
                    Some(b) => b + EWMA_ALPHA * (rtt - b),
                });
            }
        }
    }

    fn grow(&mut self) {
        if self.limit < self.max {
            self.limit += 1;
            self.peak = self.peak.max(self.limit);
            self.changed_at = self.next_sequence;
            tracing::debug!(limit = self.limit, "Concurrency raised.");
        }
    }

    fn cut(&mut self, ticket: Ticket) {
        if ticket.sequence < self.cut_at {
            return;
        }
        let limit = (self.limit / 2).max(1);
        self.changed_at = self.next_sequence;
        self.cut_at = self.next_sequence;
        if limit != self.limit {
            self.cuts += 1;
            tracing::debug!(limit, "Concurrency cut.");
        }
        self.limit = limit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn controller(initial: usize, max: usize) -> Controller {
        Controller::new(ConcurrencyLimits { initial, max })
    }

    /// Sends `n` requests together and answers them all with `signal` after `rtt`, the last
    /// sent (the one that saw the limit in use) first.
    fn round(c: &mut Controller, n: usize, rtt: Duration, signal: Signal) {
        let tickets: Vec<Ticket> = (0..n).map(|_| c.start()).collect();
        for t in tickets.into_iter().rev() {
            c.observe(t, rtt, signal);
        }
    }

    #[test]
    fn the_start_is_clamped_to_the_bounds() {
        assert_eq!(controller(4, 16).limit(), 4);
        assert_eq!(controller(0, 16).limit(), 1);
        assert_eq!(controller(8, 3).limit(), 3);
        assert_eq!(controller(2, 0).limit(), 1, "a max of 0 means one");
    }

    #[test]
    fn clean_saturated_rounds_grow_by_one_per_round_up_to_max() {
        let mut c = controller(2, 5);
        for expected in [3, 4, 5, 5, 5] {
            let limit = c.limit();
            round(&mut c, limit, 100 * MS, Signal::Clean);
            assert_eq!(c.limit(), expected);
        }
        assert_eq!(c.peak(), 5);
        assert_eq!(c.cuts(), 0);
    }

    #[test]
    fn an_unused_limit_does_not_grow() {
        let mut c = controller(4, 16);
        for _ in 0..10 {
            round(&mut c, 1, 100 * MS, Signal::Clean);
        }
        assert_eq!(c.limit(), 4, "one request at a time never saturates 4");
    }

    #[test]
    fn back_pressure_halves_once_per_round() {
        let mut c = controller(8, 16);
        round(&mut c, 8, 100 * MS, Signal::BackPressure);
        assert_eq!(c.limit(), 4, "eight 429s from one round halve once");
        round(&mut c, 4, 100 * MS, Signal::BackPressure);
        assert_eq!(c.limit(), 2);
        round(&mut c, 2, 100 * MS, Signal::BackPressure);
        round(&mut c, 1, 100 * MS, Signal::BackPressure);
        assert_eq!(c.limit(), 1, "never below one");
        assert_eq!(c.cuts(), 3);
    }

    #[test]
    fn back_pressure_cuts_even_for_a_request_sent_before_a_growth() {
        let mut c = controller(2, 16);
        let old = c.start();
        round(&mut c, 1, 100 * MS, Signal::Clean);
        assert_eq!(c.limit(), 3, "two outstanding of two: saturated, grew");
        c.observe(old, 100 * MS, Signal::BackPressure);
        assert_eq!(c.limit(), 1, "back pressure is not ignored after a growth");
    }

    #[test]
    fn answers_to_requests_sent_before_a_growth_do_not_grow_it_again() {
        let mut c = controller(2, 16);
        let tickets: Vec<Ticket> = (0..3).map(|_| c.start()).collect();
        c.observe(tickets[1], 100 * MS, Signal::Clean);
        assert_eq!(c.limit(), 3, "one growth for the round");
        c.observe(tickets[2], 100 * MS, Signal::Clean);
        assert_eq!(c.limit(), 3, "sent before the growth: no second growth");
        c.observe(tickets[0], 100 * MS, Signal::BackPressure);
        assert_eq!(c.limit(), 1, "but a 429 still halves");
    }

    #[test]
    fn a_marked_rise_in_round_trip_time_cuts_and_a_mild_one_holds() {
        let mut c = controller(4, 16);
        round(&mut c, 4, 100 * MS, Signal::Clean);
        assert_eq!(c.limit(), 5);
        round(&mut c, 5, 150 * MS, Signal::Clean);
        assert_eq!(c.limit(), 5, "50% slower than the baseline: hold");
        round(&mut c, 5, 400 * MS, Signal::Clean);
        assert_eq!(c.limit(), 2, "three times slower: halve, once");
        assert_eq!(c.cuts(), 1);
        for _ in 0..20 {
            round(&mut c, 2, 400 * MS, Signal::Clean);
        }
        assert!(
            c.limit() > 2,
            "a lasting new level becomes the baseline: {}",
            c.limit()
        );
    }

    #[test]
    fn jitter_on_a_fast_link_is_not_a_rise() {
        let mut c = controller(4, 16);
        round(&mut c, 4, Duration::from_micros(200), Signal::Clean);
        round(&mut c, 5, Duration::from_micros(900), Signal::Clean);
        assert_eq!(
            c.limit(),
            6,
            "4.5 times slower, but by 0.7 ms: still steady"
        );
        assert_eq!(c.cuts(), 0);
    }

    #[test]
    fn neutral_answers_change_nothing() {
        let mut c = controller(3, 16);
        round(&mut c, 3, 100 * MS, Signal::Neutral);
        assert_eq!(c.limit(), 3);
    }

    #[test]
    fn a_max_of_one_is_strictly_sequential() {
        let mut c = controller(4, 1);
        round(&mut c, 1, 100 * MS, Signal::Clean);
        round(&mut c, 1, 100 * MS, Signal::BackPressure);
        assert_eq!(c.limit(), 1);
        assert_eq!(c.peak(), 1);
    }
}
