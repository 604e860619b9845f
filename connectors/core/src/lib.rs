//! The contract between the executor and a destination connector.
//!
//! A connector turns a batch of [`Operation`]s into requests and each response into one
//! [`RowOutcome`] per operation. It never sleeps, loops or retries: batching, rate limits,
//! backoff and the journal live in `engine-executor`, which decides what to do with
//! [`RowOutcome::Retry`], [`BatchResult::RetryAll`] and [`BatchResult::Unreachable`].
//!
//! ```text
//!  plan ──► operations ──► executor ──► Destination::send_batch ──► BatchResult ──► journal
//! ```

use std::future::Future;
use std::time::Duration;

pub mod association;

/// The property an event sync's per-row event name travels under (`event.name_column`): a
/// name no destination property can have.
pub const EVENT_NAME_PROPERTY: &str = "#event_name";

/// The property an event sync's event time travels under (`event.occurred_at`).
pub const OCCURRED_AT_PROPERTY: &str = "#occurred_at";

pub use association::{AssociationChange, AssociationTarget, is_association};
pub use engine_diag::{Diagnostic, SecretString};

/// What to do with one row in the destination.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// Create or update the record whose match property equals `match_value`.
    Upsert,
    /// Change some properties of a known record (`destination_id`).
    Update,
    /// Empty properties of a known record whose row left the model (`on_remove: clear_fields`).
    Clear,
    /// Change some properties of the record whose match property equals `match_value`
    /// (`mode: update`); a record is never created, a value matching none is rejected.
    UpdateMatched,
    /// Delete a known record whose row left the model (`on_remove: delete`); deleting a record
    /// that is already gone succeeds.
    Archive,
    /// Create a record (`mode: insert`); when one already holds the match value it is left
    /// untouched and the row is [`RowOutcome::Skipped`].
    Create,
}

/// One row's write, as the executor hands it to a connector.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Operation {
    /// The model row's primary key text (state and messages use it).
    pub key: String,
    /// Upsert, update or clear.
    pub kind: OperationKind,
    /// The destination's record id, known for updates and clears.
    pub destination_id: Option<String>,
    /// The unique match property's value, for upserts.
    pub match_value: Option<String>,
    /// Properties to write, in mapping order; an empty string clears a property. Names that
    /// start with `@` are associations, valued with an [`AssociationChange`].
    pub properties: Vec<(String, String)>,
}

/// The result for one operation of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    /// Written; `destination_id` is the record's id, `created` tells a new record.
    Succeeded {
        /// The destination's record id.
        destination_id: String,
        /// True when the destination created the record.
        created: bool,
    },
    /// Not written on purpose: the record it would create exists already (`mode: insert`)
    /// and is left as it is. The row is done; the record is not the sync's.
    Skipped {
        /// Why, with the existing record's id when the destination named it.
        reason: String,
        /// The existing record's id, when the destination named it (a connector that created
        /// the record itself moments ago, and is sent the row again, takes it back as its own).
        existing_id: Option<String>,
    },
    /// Not written for a passing reason (rate limit, server error, timeout); try again.
    Retry {
        /// What happened, for logs and run history.
        reason: String,
        /// How long the destination asked us to wait.
        after: Option<Duration>,
    },
    /// The destination refused this row (bad enum value, conflict, missing record): it stays
    /// pending with the destination's message and is retried on the next run.
    Rejected {
        /// The destination's own message.
        message: String,
    },
}

/// The result for a whole batch.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchResult {
    /// One outcome per operation, in the order sent.
    PerRow(Vec<RowOutcome>),
    /// Nothing was written; send the whole batch again later (429, 5xx, timeout).
    RetryAll {
        /// What happened.
        reason: String,
        /// How long the destination asked us to wait.
        after: Option<Duration>,
    },
    /// Nothing was written because no connection could be made (refused, DNS, TLS): the
    /// destination is down or the URL is wrong. The executor retries it for a bounded time
    /// only, then stops the run.
    Unreachable {
        /// Which destination, for messages: "HubSpot at `https://api.hubapi.com`" (any
        /// credentials in the URL masked).
        target: String,
        /// What happened: "connection refused", a DNS or TLS error.
        reason: String,
    },
    /// Stop the run: retrying cannot help (401, revoked token, unreachable host after retries).
    Fatal(Diagnostic),
}

/// Fixed facts about a connector that validation and the executor rely on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capabilities {
    /// The most operations one request may carry.
    pub max_batch_size: usize,
    /// Requests per second when the destination's config says nothing.
    pub default_requests_per_second: f64,
}

/// A destination connector with a connected client.
///
/// `send_batch` is the one place that writes. It must be safe to call again with the same
/// operations after a crash: upserts match on a unique property and updates are idempotent,
/// so a replay never creates a record twice.
pub trait Destination {
    /// The connector's name, e.g. `hubspot`.
    fn name(&self) -> &'static str;

    /// Batch size and rate defaults.
    fn capabilities(&self) -> Capabilities;

    /// Sends one batch (at most `max_batch_size` operations, all of one kind) and classifies
    /// the response per row.
    fn send_batch(&self, operations: &[Operation]) -> impl Future<Output = BatchResult> + Send;

    /// How many requests this destination has sent so far, when a batch may take more than
    /// one (associations, look-ups, list members). The executor takes one token of the
    /// account's budget before each batch and charges the requests beyond those to the budget
    /// too, so a sync that links records stays within the account's rate. `0` (the default)
    /// means one request per batch.
    fn requests_sent(&self) -> u64 {
        0
    }
}

/// Record ids found by the value of a unique property (an association's targets by
/// `domain`, …), kept between runs in the engine's state: a later run links the same records
/// without looking them up again, and removes a link exactly even after the target's value
/// changed in the destination.
///
/// A `scope` names what the values are values of (the connector's account, object and
/// property); values are compared as the connector passes them (lower-cased for HubSpot's
/// case-insensitive properties). Entries older than the store's time to live are not
/// returned.
pub trait LookupCache: Send + Sync + std::fmt::Debug {
    /// The cached record ids of those of `values` that have one, keyed by value.
    fn get(&self, scope: &str, values: &[String]) -> std::collections::HashMap<String, String>;
    /// Remembers found `(value, record id)` pairs.
    fn put(&self, scope: &str, found: &[(String, String)]);
    /// Forgets `values` (their records turned out missing).
    fn forget(&self, scope: &str, values: &[String]);
}

/// An error and its sources, joined with `: `, without repeating a message: what a transport
/// failure (refused, DNS, TLS, a reset) says in a connector's messages.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(error) = current {
        let text = error.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = error.source();
    }
    parts.join(": ")
}

/// How the values passed to a record read identify records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordRef {
    /// The destination's record ids (HubSpot's `hs_object_id`).
    Id,
    /// Values of the sync's match property (e.g. emails).
    MatchValue,
}

/// One record as read back from a destination: its id and the requested properties that have
/// a value. Crash recovery and `engine state rebuild` compare it with what was planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record id.
    pub id: String,
    /// Property values as strings; unset ones are left out.
    pub properties: std::collections::BTreeMap<String, String>,
    /// When the destination created the record (RFC 3339), when it says: crash recovery
    /// tells a record the crashed apply created from one that existed before it.
    pub created_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    /// An error whose message may repeat its source's, as `reqwest`'s do.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn an_error_chain_names_each_cause_once() {
        let error = Layer(
            "error sending request",
            Some(Box::new(Layer(
                "client error (Connect)",
                Some(Box::new(Layer("Connection refused (os error 111)", None))),
            ))),
        );
        assert_eq!(
            error_chain(&error),
            "error sending request: client error (Connect): Connection refused (os error 111)"
        );
        let repeated = Layer(
            "tcp connect error",
            Some(Box::new(Layer("connect error", None))),
        );
        assert_eq!(error_chain(&repeated), "tcp connect error");
    }
}
