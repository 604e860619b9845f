//! Injected faults: what a test (through `POST /_sandbox/faults`) or the command line (through
//! [`crate::SandboxArgs`]) asks the sandbox to get wrong, and the seeded draws that decide
//! which request gets it.
//!
//! The random knobs (`error_rate`, `drop_rate`, `latency_jitter_ms`) each draw from their own
//! generator seeded from `seed`, so turning one knob on does not shift another's pattern, and
//! the same requests in the same order meet the same faults on every run. The draws start over
//! from the seed whenever the faults are posted and when the sandbox is reset. Only requests
//! that reach a knob's check draw from it (a request refused earlier draws nothing). The
//! countdown knobs (`locked_writes`, `migration_requests`) refuse the next N requests they
//! apply to and then turn themselves off.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

/// The status of an injected server error when `error_status` is not set.
pub const DEFAULT_ERROR_STATUS: u16 = 500;

/// The `Retry-After` seconds of an injected 477 when `migration_retry_after` is not set.
pub const DEFAULT_MIGRATION_RETRY_AFTER: u64 = 1;

/// Faults to inject, each off by default. Which requests each one touches is in the crate
/// doc's fault table; "write requests" are the record writes (batch upsert, update, create,
/// archive, single create and delete).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Holds the N-th write request (from 1) before it touches the store, until shutdown.
    pub hang_before_write: Option<u64>,
    /// Applies the N-th write request, then never answers it (until shutdown).
    pub hang_after_write: Option<u64>,
    /// The share (0 to 1) of write requests refused with a server error before they are
    /// applied.
    pub error_rate: Option<f64>,
    /// The status of those server errors (500 to 599; default 500).
    pub error_status: Option<u16>,
    /// The share (0 to 1) of write requests applied whose connection is then closed without
    /// an answer, as when a proxy or HubSpot's edge drops it.
    pub drop_rate: Option<f64>,
    /// Seeds the draws of `error_rate`, `drop_rate` and `latency_jitter_ms` (default 0).
    pub seed: Option<u64>,
    /// Milliseconds every API request waits before it is handled.
    pub latency_ms: Option<u64>,
    /// Up to this many more milliseconds, drawn per request.
    pub latency_jitter_ms: Option<u64>,
    /// Scopes the token lacks: a request needing one of them gets HubSpot's 403
    /// `MISSING_SCOPES` (e.g. `crm.objects.contacts.write`).
    pub missing_scopes: Vec<String>,
    /// The next N write requests get 423 Locked, unapplied.
    pub locked_writes: Option<u64>,
    /// The next N API requests get 477 Migration in Progress with `Retry-After`.
    pub migration_requests: Option<u64>,
    /// The `Retry-After` seconds of a 477 (default 1).
    pub migration_retry_after: Option<u64>,
    /// Every API request gets the 429 `DAILY` refusal while this is true.
    pub daily_limit_reached: bool,
    /// Batch creates refuse as a whole at their first conflict (409, naming only that
    /// record), even when every input carries its own `objectWriteTraceId`: the answer
    /// HubSpot gives without multi-status (FACTS E4).
    pub whole_batch_conflicts: bool,
    /// The next N association writes get HubSpot's 429 secondly refusal, unapplied: a portal
    /// that turns busy just as a batch's links go out, after its records were written.
    pub busy_link_writes: Option<u64>,
}

/// The keys `POST /_sandbox/faults` accepts for [`Faults`] (the limits are handled beside).
pub(crate) const KEYS: [&str; 15] = [
    "hang_before_write",
    "hang_after_write",
    "error_rate",
    "error_status",
    "drop_rate",
    "seed",
    "latency_ms",
    "latency_jitter_ms",
    "missing_scopes",
    "locked_writes",
    "migration_requests",
    "migration_retry_after",
    "daily_limit_reached",
    "whole_batch_conflicts",
    "busy_link_writes",
];

/// A count, or `null` for off.
pub(crate) fn count(key: &str, value: &Value) -> Result<Option<u64>, String> {
    match value {
        Value::Null => Ok(None),
        other => other
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("`{key}` must be a non-negative integer or null")),
    }
}

fn rate(key: &str, value: &Value) -> Result<Option<f64>, String> {
    match value {
        Value::Null => Ok(None),
        other => other
            .as_f64()
            .filter(|r| (0.0..=1.0).contains(r))
            .map(Some)
            .ok_or_else(|| format!("`{key}` must be a number from 0 to 1, or null")),
    }
}

fn status(value: &Value) -> Result<Option<u16>, String> {
    match value {
        Value::Null => Ok(None),
        other => other
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (500..=599).contains(s))
            .map(Some)
            .ok_or_else(|| "`error_status` must be a status from 500 to 599, or null".to_owned()),
    }
}

fn scopes(value: &Value) -> Result<Vec<String>, String> {
    let invalid = || "`missing_scopes` must be an array of scope names, or null".to_owned();
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect(),
        _ => Err(invalid()),
    }
}

impl Faults {
    /// Sets one knob from its JSON value (`null` turns it off); `Ok(false)` for a key that is
    /// not a fault knob.
    pub(crate) fn set(&mut self, key: &str, value: &Value) -> Result<bool, String> {
        match key {
            "hang_before_write" => self.hang_before_write = count(key, value)?,
            "hang_after_write" => self.hang_after_write = count(key, value)?,
            "error_rate" => self.error_rate = rate(key, value)?,
            "error_status" => self.error_status = status(value)?,
            "drop_rate" => self.drop_rate = rate(key, value)?,
            "seed" => self.seed = count(key, value)?,
            "latency_ms" => self.latency_ms = count(key, value)?,
            "latency_jitter_ms" => self.latency_jitter_ms = count(key, value)?,
            "missing_scopes" => self.missing_scopes = scopes(value)?,
            "locked_writes" => self.locked_writes = count(key, value)?.filter(|n| *n > 0),
            "busy_link_writes" => self.busy_link_writes = count(key, value)?.filter(|n| *n > 0),
            "migration_requests" => {
                self.migration_requests = count(key, value)?.filter(|n| *n > 0);
            }
            "migration_retry_after" => self.migration_retry_after = count(key, value)?,
            "daily_limit_reached" => {
                self.daily_limit_reached = match value {
                    Value::Null => false,
                    Value::Bool(on) => *on,
                    _ => return Err("`daily_limit_reached` must be true, false or null".into()),
                };
            }
            "whole_batch_conflicts" => {
                self.whole_batch_conflicts = match value {
                    Value::Null => false,
                    Value::Bool(on) => *on,
                    _ => return Err("`whole_batch_conflicts` must be true, false or null".into()),
                };
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The knobs as `GET /_sandbox/faults` shows them.
    pub(crate) fn to_json(&self, into: &mut Map<String, Value>) {
        let entries = [
            ("hang_before_write", json!(self.hang_before_write)),
            ("hang_after_write", json!(self.hang_after_write)),
            ("error_rate", json!(self.error_rate)),
            ("error_status", json!(self.error_status)),
            ("drop_rate", json!(self.drop_rate)),
            ("seed", json!(self.seed)),
            ("latency_ms", json!(self.latency_ms)),
            ("latency_jitter_ms", json!(self.latency_jitter_ms)),
            ("missing_scopes", json!(self.missing_scopes)),
            ("locked_writes", json!(self.locked_writes)),
            ("migration_requests", json!(self.migration_requests)),
            ("migration_retry_after", json!(self.migration_retry_after)),
            ("daily_limit_reached", json!(self.daily_limit_reached)),
            ("whole_batch_conflicts", json!(self.whole_batch_conflicts)),
            ("busy_link_writes", json!(self.busy_link_writes)),
        ];
        for (key, value) in entries {
            into.insert(key.to_owned(), value);
        }
    }
}

/// A kind of injected fault, for the counters in `/_sandbox/stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Injected {
    Latency,
    MissingScopes,
    Locked,
    Migration,
    DailyLimit,
    ServerError,
    Dropped,
}

impl Injected {
    /// Every kind, in the order the stats list them.
    pub(crate) const ALL: [Injected; 7] = [
        Injected::Latency,
        Injected::MissingScopes,
        Injected::Locked,
        Injected::Migration,
        Injected::DailyLimit,
        Injected::ServerError,
        Injected::Dropped,
    ];

    /// The key under `faults` in `/_sandbox/stats`.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Injected::Latency => "latency",
            Injected::MissingScopes => "missing_scopes",
            Injected::Locked => "locked",
            Injected::Migration => "migration",
            Injected::DailyLimit => "daily_limit",
            Injected::ServerError => "server_error",
            Injected::Dropped => "dropped",
        }
    }
}

/// The generators of the random knobs; one per knob (see the module doc).
#[derive(Debug)]
struct Draws {
    error: StdRng,
    drop: StdRng,
    jitter: StdRng,
}

impl Draws {
    fn new(seed: u64) -> Self {
        Draws {
            error: StdRng::seed_from_u64(seed),
            drop: StdRng::seed_from_u64(seed ^ 0x5EED_D50F),
            jitter: StdRng::seed_from_u64(seed ^ 0x0717_7E55),
        }
    }
}

/// The faults in force and their draws; lives behind the server's mutex.
#[derive(Debug)]
pub(crate) struct FaultState {
    settings: Faults,
    draws: Draws,
}

impl FaultState {
    pub(crate) fn new(settings: Faults) -> Self {
        let draws = Draws::new(settings.seed.unwrap_or(0));
        FaultState { settings, draws }
    }

    pub(crate) fn settings(&self) -> &Faults {
        &self.settings
    }

    /// Replaces the settings and starts the draws over from the seed.
    pub(crate) fn replace(&mut self, settings: Faults) {
        *self = FaultState::new(settings);
    }

    /// Starts the draws over from the seed (on reset).
    pub(crate) fn reseed(&mut self) {
        self.draws = Draws::new(self.settings.seed.unwrap_or(0));
    }

    /// How long the next API request waits, if at all.
    pub(crate) fn latency(&mut self) -> Option<Duration> {
        let base = self.settings.latency_ms.unwrap_or(0);
        let jitter = match self.settings.latency_jitter_ms {
            Some(max) if max > 0 => self.draws.jitter.random_range(0..=max),
            _ => 0,
        };
        let total = base.saturating_add(jitter);
        (total > 0).then(|| Duration::from_millis(total))
    }

    /// The `Retry-After` of a 477 if the migration countdown covers this request.
    pub(crate) fn take_migration(&mut self) -> Option<u64> {
        let left = self.settings.migration_requests?;
        self.settings.migration_requests = left.checked_sub(1).filter(|n| *n > 0);
        Some(
            self.settings
                .migration_retry_after
                .unwrap_or(DEFAULT_MIGRATION_RETRY_AFTER),
        )
    }

    /// Whether this write request gets 423 (counts the knob down).
    pub(crate) fn take_locked(&mut self) -> bool {
        let Some(left) = self.settings.locked_writes else {
            return false;
        };
        self.settings.locked_writes = left.checked_sub(1).filter(|n| *n > 0);
        true
    }

    /// Whether this association write gets a 429 (counts the knob down).
    pub(crate) fn take_busy_link(&mut self) -> bool {
        let Some(left) = self.settings.busy_link_writes else {
            return false;
        };
        self.settings.busy_link_writes = left.checked_sub(1).filter(|n| *n > 0);
        true
    }

    /// The status of a server error for this write request, if the draw says so.
    pub(crate) fn draw_error(&mut self) -> Option<u16> {
        let rate = self.settings.error_rate?;
        self.draws
            .error
            .random_bool(rate)
            .then(|| self.settings.error_status.unwrap_or(DEFAULT_ERROR_STATUS))
    }

    /// Whether this write request's connection is dropped after it is applied.
    pub(crate) fn draw_drop(&mut self) -> bool {
        self.settings
            .drop_rate
            .is_some_and(|rate| self.draws.drop.random_bool(rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(settings: Value) -> FaultState {
        let mut faults = Faults::default();
        if let Some(map) = settings.as_object() {
            for (key, value) in map {
                assert_eq!(faults.set(key, value), Ok(true), "{key}");
            }
        }
        FaultState::new(faults)
    }

    fn errors(state: &mut FaultState, n: usize) -> Vec<bool> {
        (0..n).map(|_| state.draw_error().is_some()).collect()
    }

    #[test]
    fn draws_repeat_for_a_seed_and_start_over() {
        let mut first = with(json!({"error_rate": 0.3, "seed": 7}));
        let mut second = with(json!({"error_rate": 0.3, "seed": 7}));
        let pattern = errors(&mut first, 200);
        assert_eq!(pattern, errors(&mut second, 200));
        let failed = pattern.iter().filter(|e| **e).count();
        assert!((30..=90).contains(&failed), "{failed} of 200 at 0.3");
        first.reseed();
        assert_eq!(errors(&mut first, 200), pattern);
        let mut other = with(json!({"error_rate": 0.3, "seed": 8}));
        assert_ne!(errors(&mut other, 200), pattern);
    }

    #[test]
    fn rates_of_zero_and_one_are_exact() {
        let mut always = with(json!({"error_rate": 1.0, "error_status": 503, "drop_rate": 1}));
        assert!((0..50).all(|_| always.draw_error() == Some(503)));
        assert!((0..50).all(|_| always.draw_drop()));
        let mut never = with(json!({"error_rate": 0.0, "drop_rate": 0}));
        assert!((0..50).all(|_| never.draw_error().is_none() && !never.draw_drop()));
    }

    #[test]
    fn countdowns_turn_themselves_off() {
        let mut state = with(json!({"locked_writes": 2, "migration_requests": 1,
            "migration_retry_after": 30}));
        assert!(state.take_locked());
        assert_eq!(state.settings().locked_writes, Some(1));
        assert!(state.take_locked());
        assert!(!state.take_locked());
        assert_eq!(state.settings().locked_writes, None);
        assert_eq!(state.take_migration(), Some(30));
        assert_eq!(state.take_migration(), None);
    }

    #[test]
    fn latency_stays_within_its_jitter() {
        let mut state = with(json!({"latency_ms": 20, "latency_jitter_ms": 10}));
        for _ in 0..100 {
            let delay = state.latency().unwrap_or_default();
            assert!((20..=30).contains(&delay.as_millis()), "{delay:?}");
        }
        assert_eq!(with(json!({})).latency(), None);
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        let mut faults = Faults::default();
        for (key, value) in [
            ("error_rate", json!(1.5)),
            ("drop_rate", json!("half")),
            ("error_status", json!(404)),
            ("missing_scopes", json!("crm.objects.contacts.write")),
            ("daily_limit_reached", json!(1)),
            ("latency_ms", json!(-1)),
        ] {
            let error = faults.set(key, &value).err().unwrap_or_default();
            assert!(error.contains(key), "{error}");
        }
        assert_eq!(faults.set("nonsense", &json!(1)), Ok(false));
        assert_eq!(faults, Faults::default());
    }
}
