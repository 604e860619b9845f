//! Injected faults: what a test (through `POST /_sandbox/faults`) or the command line (through
//! [`crate::SandboxArgs`]) asks the sandbox to get wrong.
//!
//! The countdown knobs (`unavailable_requests`, `limit_exceeded_requests`, `dropped_requests`)
//! hit the next N API requests and then turn themselves off, so a test knows exactly which
//! requests meet them and a client's retry meets a healthy server.

use serde_json::{Map, Value, json};

/// Faults to inject, each off by default. "API requests" are the `/services/data/vXX.X/…`
/// requests that got past auth.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Milliseconds every API request waits before it is handled.
    pub latency_ms: Option<u64>,
    /// The next N API requests get 503 `SERVER_UNAVAILABLE`, unapplied (FACTS E2 lists 503;
    /// the body is the sandbox's wording in Salesforce's error array).
    pub unavailable_requests: Option<u64>,
    /// The next N API requests get 403 `REQUEST_LIMIT_EXCEEDED` "ConcurrentPerOrgLongTxn
    /// Limit exceeded." (FACTS E4, L2), unapplied; the daily allocation has its own knob.
    pub limit_exceeded_requests: Option<u64>,
    /// The next N API requests are applied, then their connection is closed with no answer.
    pub dropped_requests: Option<u64>,
    /// The user has no API access: every API request gets 403 `API_DISABLED_FOR_ORG`.
    pub api_disabled: bool,
    /// Objects the user cannot see: left out of describe global, 404 `NOT_FOUND` on their
    /// routes, `INVALID_TYPE` in SOQL and Collections, `INVALIDENTITY` for Bulk jobs.
    pub inaccessible_objects: Vec<String>,
}

/// The keys `POST /_sandbox/faults` accepts for [`Faults`].
pub(crate) const KEYS: [&str; 6] = [
    "latency_ms",
    "unavailable_requests",
    "limit_exceeded_requests",
    "dropped_requests",
    "api_disabled",
    "inaccessible_objects",
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

/// A flag, `null` being false.
pub(crate) fn flag(key: &str, value: &Value) -> Result<bool, String> {
    match value {
        Value::Null => Ok(false),
        Value::Bool(on) => Ok(*on),
        _ => Err(format!("`{key}` must be true, false or null")),
    }
}

/// Takes one request off a countdown; true when the request is hit.
fn take(slot: &mut Option<u64>) -> bool {
    let Some(left) = *slot else {
        return false;
    };
    *slot = left.checked_sub(1).filter(|n| *n > 0);
    true
}

impl Faults {
    /// Sets one knob from its JSON value (`null` turns it off); `Ok(false)` for a key that is
    /// not a fault knob.
    pub(crate) fn set(&mut self, key: &str, value: &Value) -> Result<bool, String> {
        match key {
            "latency_ms" => self.latency_ms = count(key, value)?,
            "unavailable_requests" => {
                self.unavailable_requests = count(key, value)?.filter(|n| *n > 0)
            }
            "limit_exceeded_requests" => {
                self.limit_exceeded_requests = count(key, value)?.filter(|n| *n > 0);
            }
            "dropped_requests" => self.dropped_requests = count(key, value)?.filter(|n| *n > 0),
            "api_disabled" => self.api_disabled = flag(key, value)?,
            "inaccessible_objects" => {
                let invalid = || {
                    "`inaccessible_objects` must be an array of object names, or null".to_owned()
                };
                self.inaccessible_objects = match value {
                    Value::Null => Vec::new(),
                    Value::Array(items) => items
                        .iter()
                        .map(|item| item.as_str().map(str::to_owned).ok_or_else(invalid))
                        .collect::<Result<_, _>>()?,
                    _ => return Err(invalid()),
                };
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The knobs as `GET /_sandbox/faults` shows them.
    pub(crate) fn to_json(&self, into: &mut Map<String, Value>) {
        into.insert("latency_ms".into(), json!(self.latency_ms));
        into.insert(
            "unavailable_requests".into(),
            json!(self.unavailable_requests),
        );
        into.insert(
            "limit_exceeded_requests".into(),
            json!(self.limit_exceeded_requests),
        );
        into.insert("dropped_requests".into(), json!(self.dropped_requests));
        into.insert("api_disabled".into(), json!(self.api_disabled));
        into.insert(
            "inaccessible_objects".into(),
            json!(self.inaccessible_objects),
        );
    }

    /// Whether the user cannot see `object` (names compare ignoring case).
    pub(crate) fn hides(&self, object: &str) -> bool {
        self.inaccessible_objects
            .iter()
            .any(|o| o.eq_ignore_ascii_case(object))
    }

    pub(crate) fn take_unavailable(&mut self) -> bool {
        take(&mut self.unavailable_requests)
    }

    pub(crate) fn take_limit_exceeded(&mut self) -> bool {
        take(&mut self.limit_exceeded_requests)
    }

    pub(crate) fn take_dropped(&mut self) -> bool {
        take(&mut self.dropped_requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdowns_turn_themselves_off() {
        let mut faults = Faults::default();
        assert_eq!(faults.set("unavailable_requests", &json!(2)), Ok(true));
        assert!(faults.take_unavailable());
        assert!(faults.take_unavailable());
        assert!(!faults.take_unavailable());
        assert_eq!(faults.unavailable_requests, None);
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        let mut faults = Faults::default();
        for (key, value) in [
            ("latency_ms", json!(-1)),
            ("api_disabled", json!(1)),
            ("inaccessible_objects", json!("Lead")),
        ] {
            let error = faults.set(key, &value).err().unwrap_or_default();
            assert!(error.contains(key), "{error}");
        }
        assert_eq!(faults.set("nonsense", &json!(1)), Ok(false));
        assert_eq!(
            faults.set("inaccessible_objects", &json!(["lead"])),
            Ok(true)
        );
        assert!(faults.hides("Lead"));
    }
}
