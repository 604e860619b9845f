//! Salesforce sObjects as a destination: standard objects (`Contact`, `Lead`, `Account`) and
//! custom ones (`ThankView__c`).
//!
//! One sync writes one object, creating records (`mode: insert`), changing them by id
//! (`mode: update`) or upserting them by an external-id field (`mode: upsert`). The
//! connector turns a batch of [`Operation`]s (all of one kind) into sObject Collections
//! requests and the answers into one [`RowOutcome`] per operation; for large batches the
//! engine calls [`SalesforceDestination::send_bulk`] (Bulk API 2.0). It never sleeps or
//! retries, except where the protocol demands it: one token refresh on
//! `INVALID_SESSION_ID`, and the Bulk job's poll.
//!
//! ```text
//!   plan time:  describe global + describe ─► check_mapping ─► FieldKind per mapped field
//!                                                   │
//!   apply:  operations ─► convert (per field type) ─► collections (≤ 200 a call) ─► response
//!             │            a bad value rejects          │ one token refresh on 401        │
//!             │            its row only                 ▼                                  ▼
//!             │                                  Sforce-Limit-Info ─► stop past the share  BatchResult
//!             └─► bulk: create job ─► upload CSV ─► UploadComplete ─► poll ─► result CSVs
//!   cascade:  record id ─► Contact by email ─► Lead by email ─► unmatched (batched SOQL IN)
//! ```
//!
//! | what | endpoint |
//! | --- | --- |
//! | token (refresh grant) | `POST {login}/services/oauth2/token` (form) |
//! | describe global / object | `GET /services/data/vXX.X/sobjects`, `GET …/sobjects/{Object}/describe` |
//! | insert | `POST …/composite/sobjects` `{"allOrNone":false,"records":[…]}` |
//! | update, clear | `PATCH …/composite/sobjects` (records with `id`) |
//! | upsert | `PATCH …/composite/sobjects/{Object}/{ExternalIdField}` (`created` per record) |
//! | delete | `DELETE …/composite/sobjects?ids=…&allOrNone=false` |
//! | look-ups, record reads | `GET …/query?q=SELECT … WHERE f IN (…)`, then `nextRecordsUrl` |
//! | Bulk 2.0 | `POST …/jobs/ingest`, `PUT …/{id}/batches`, `PATCH …/{id}`, `GET …/{id}`, `GET …/{id}/successfulResults/` (`failedResults/`, `unprocessedrecords/`) |
//!
//! Limits (FACTS L1–L5): 200 records per Collections call; a daily allocation of API
//! requests per org, reported after every call in `Sforce-Limit-Info` (the connector stops
//! the run once the configured share, default 80%, is used); throttling is a 403
//! `REQUEST_LIMIT_EXCEEDED`, never a 429, and there is no `Retry-After`.
//!
//! What the engine wires:
//! - connect: [`SalesforceDestination::new`] from a [`SalesforceConfig`] (offline checks only);
//! - plan: [`SalesforceDestination::check_mapping`] (describe; a [`FieldKind`] per mapped
//!   field, or every problem as a [`Diagnostic`]) and [`SalesforceDestination::resolve_cascade`]
//!   to fill `Contact__c` / `Lead__c` before operations are built;
//! - apply: [`Destination::send_batch`] (≤ 200 rows) below [`SalesforceConfig::bulk_threshold`],
//!   else [`SalesforceDestination::create_bulk_job`], journal the id, then
//!   [`SalesforceDestination::resume_bulk`] (also after a crash); [`Destination::requests_sent`]
//!   counts every HTTP request;
//! - recovery: [`SalesforceDestination::read_records`] by id or external id.
//!
//! How answers map to outcomes is tabled in `src/response.rs`; values by field type in
//! `src/convert.rs`; ids in `src/ids.rs`.
//!
//! Salesforce documentation:
//! - sObject Collections: <https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-create.html>
//! - errors: <https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm>
//! - Bulk API 2.0: <https://developer.salesforce.com/docs/platform/api-asynch/guide/bulk-api-2-0-ingest.html>
//! - OAuth refresh: <https://help.salesforce.com/s/articleView?id=remoteaccess_oauth_refresh_token_flow.htm>

#![allow(
    clippy::result_large_err,
    reason = "Diagnostic is the workspace-wide error type"
)]

mod auth;
mod bulk;
mod cascade;
mod client;
mod collections;
mod config;
mod convert;
mod ids;
mod read;
mod response;
mod schema;
mod soql;

use std::collections::HashMap;
use std::sync::Arc;

use connector_core::{BatchResult, Capabilities, Destination, Operation, RowOutcome};
use reqwest::Method;

pub use cascade::{CascadeInput, CascadeMatch, CascadeResult};
pub use client::ApiUsage;
pub use config::{
    Auth, DEFAULT_API_VERSION, DEFAULT_BULK_THRESHOLD, DEFAULT_BULK_TIMEOUT, DEFAULT_STOP_AT_SHARE,
    DEFAULT_TIMEOUT, DuplicateMatches, LoginHost, PRODUCTION_LOGIN, SANDBOX_LOGIN,
    SalesforceConfig, WriteMode,
};
pub use connector_core::{Diagnostic, Record, RecordRef, SecretString};
pub use convert::{FieldKind, convert, csv_cell};
pub use ids::{SalesforceId, check_target, object_of_prefix, parse_id};
pub use schema::{Describe, Field, GlobalObject, check_mapping, unknown_object};
pub use soql::quote as soql_quote;

use auth::call_diagnostic;
use client::{Body, CallError, Client, TransportError};

/// The most records one sObject Collections call carries (FACTS L1).
pub const MAX_BATCH_SIZE: usize = 200;

/// Requests per second when the destination says nothing: the daily allocation, not a rate,
/// is Salesforce's limit (FACTS L2), so this only keeps a burst polite.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 10.0;

/// What sending needs from describe, read once per destination.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub describe: schema::Describe,
    pub kinds: HashMap<String, FieldKind>,
}

/// A Salesforce object reached through a connected client.
#[derive(Debug)]
pub struct SalesforceDestination {
    config: SalesforceConfig,
    client: Client,
    /// Describe of the object and the kinds of its fields, on first use.
    loaded: tokio::sync::OnceCell<Arc<Loaded>>,
    /// The describe global, on first use.
    objects: tokio::sync::OnceCell<Arc<Vec<GlobalObject>>>,
}

impl SalesforceDestination {
    /// Checks the configuration and builds the HTTP client (no request is sent).
    pub fn new(config: SalesforceConfig) -> Result<Self, Diagnostic> {
        let secrets = config.secrets();
        let checked = config.check().and_then(|()| Client::new(&config));
        match checked {
            Ok(client) => Ok(Self {
                config,
                client,
                loaded: tokio::sync::OnceCell::new(),
                objects: tokio::sync::OnceCell::new(),
            }),
            Err(diagnostic) => Err(redact_diagnostic(diagnostic, &secrets)),
        }
    }

    /// The configuration this destination was built from.
    pub fn config(&self) -> &SalesforceConfig {
        &self.config
    }

    /// The org's daily API usage as the last answer's `Sforce-Limit-Info` reported it.
    pub fn usage(&self) -> Option<ApiUsage> {
        self.client.usage()
    }

    /// Reads the describe global (read-only; cached).
    pub async fn describe_global(&self) -> Result<Vec<GlobalObject>, Diagnostic> {
        let objects = self
            .objects
            .get_or_try_init(|| async {
                let answer = self
                    .client
                    .call(
                        Method::GET,
                        &self.client.data_path("/sobjects"),
                        Body::Empty,
                    )
                    .await
                    .map_err(|e| call_diagnostic(&self.config, e))?;
                if answer.status != 200 {
                    return Err(self.read_refused("list the org's objects", &answer));
                }
                schema::parse_global(&answer.body)
                    .map(Arc::new)
                    .ok_or_else(|| {
                        Diagnostic::error(
                            "salesforce::describe",
                            "Salesforce's object list could not be read",
                        )
                        .note(response::summary(&answer))
                    })
            })
            .await
            .map_err(|d| self.redact(d))?;
        Ok(objects.as_ref().clone())
    }

    /// Reads the object's describe (read-only; `engine plan` may call it). An object the
    /// user cannot see is `salesforce::unknown_object` with near names.
    pub async fn describe(&self) -> Result<Describe, Diagnostic> {
        self.describe_object(&self.config.object).await
    }

    /// The describe of any object (the cascade's Contact and Lead, lookup targets).
    pub(crate) async fn describe_object(&self, object: &str) -> Result<Describe, Diagnostic> {
        let path = self
            .client
            .data_path(&format!("/sobjects/{object}/describe"));
        let answer = self
            .client
            .call(Method::GET, &path, Body::Empty)
            .await
            .map_err(|e| self.redact(call_diagnostic(&self.config, e)))?;
        match answer.status {
            200 => Describe::parse(&answer.body).ok_or_else(|| {
                Diagnostic::error(
                    "salesforce::describe",
                    format!("the describe of `{object}` could not be read"),
                )
                .note(response::summary(&answer))
            }),
            404 => {
                let objects = self.describe_global().await.unwrap_or_default();
                Err(unknown_object(object, &objects))
            }
            _ => Err(self.read_refused(&format!("describe `{object}`"), &answer)),
        }
        .map_err(|d| self.redact(d))
    }

    /// Checks the sync's mapped fields (API names, in mapping order) against describe and
    /// returns each one's kind (plan time; read-only). Every problem is reported together.
    pub async fn check_mapping(
        &self,
        mapped: &[String],
    ) -> Result<Vec<FieldKind>, Vec<Diagnostic>> {
        let describe = self.describe().await.map_err(|d| vec![d])?;
        let objects = self.describe_global().await.map_err(|d| vec![d])?;
        let prefixes = prefix_lookup(&objects);
        schema::check_mapping(
            &describe,
            mapped,
            self.config.mode,
            self.config.external_id_field.as_deref(),
            &prefixes,
        )
    }

    /// Describe and the kinds of every field, read once.
    pub(crate) async fn loaded(&self) -> Result<Arc<Loaded>, Diagnostic> {
        self.loaded
            .get_or_try_init(|| async {
                let describe = self.describe().await?;
                let objects = self.describe_global().await?;
                let prefixes = prefix_lookup(&objects);
                let kinds = describe
                    .fields
                    .iter()
                    .map(|f| (f.name.clone(), FieldKind::of(f, &prefixes)))
                    .collect();
                Ok(Arc::new(Loaded { describe, kinds }))
            })
            .await
            .cloned()
    }

    /// A refused read (describe, object list): stop with what Salesforce said.
    fn read_refused(&self, what: &str, answer: &client::RawResponse) -> Diagnostic {
        if let Some(d) = response::stopping_diagnostic(&self.config.object, answer) {
            return d;
        }
        let said = response::summary(answer);
        if answer.status >= 500 || answer.status == 403 {
            return Diagnostic::error(
                "salesforce::unavailable",
                format!("Salesforce could not {what} right now"),
            )
            .note(said)
            .hint("try again in a moment");
        }
        Diagnostic::error(
            "salesforce::describe",
            format!("Salesforce refused to {what}"),
        )
        .note(said)
    }

    /// The run must stop when the org's usage is past the configured share.
    fn past_allocation_share(&self) -> Option<Diagnostic> {
        let usage = self.client.usage()?;
        (usage.share() >= self.config.stop_at_share).then(|| {
            response::daily_limit_diagnostic(
                Some((usage.used, usage.max, self.config.stop_at_share)),
                &format!("Sforce-Limit-Info: api-usage={}/{}", usage.used, usage.max),
            )
        })
    }

    fn redact(&self, diagnostic: Diagnostic) -> Diagnostic {
        redact_diagnostic(diagnostic, &self.config.secrets())
    }

    async fn redact_result(&self, result: BatchResult) -> BatchResult {
        let mut secrets = self.config.secrets();
        secrets.extend(self.client.access_token().await);
        redact_result(result, &secrets)
    }
}

impl Destination for SalesforceDestination {
    fn name(&self) -> &'static str {
        "salesforce"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch_size: MAX_BATCH_SIZE,
            default_requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
        }
    }

    async fn send_batch(&self, operations: &[Operation]) -> BatchResult {
        if operations.is_empty() {
            return BatchResult::PerRow(Vec::new());
        }
        let result = self.send_collections(operations).await;
        self.redact_result(result).await
    }

    fn requests_sent(&self) -> u64 {
        self.client.requests_sent()
    }
}

/// Key prefixes by object name, from the describe global.
fn prefix_lookup(objects: &[GlobalObject]) -> impl Fn(&str) -> Option<String> + '_ {
    move |name: &str| {
        objects
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name))
            .map(|o| o.key_prefix.clone())
            .filter(|p| !p.is_empty())
    }
}

/// A call that got no answer, or no session, as a batch result: passing failures ask for the
/// batch again, a refused login stops the run.
pub(crate) fn call_failed(config: &SalesforceConfig, error: CallError) -> BatchResult {
    match error {
        CallError::Transport(TransportError::Connect(detail)) => BatchResult::Unreachable {
            target: format!(
                "Salesforce (login `{}`)",
                engine_diag::redact_url(config.login.url())
            ),
            reason: format!("could not connect: {detail}"),
        },
        CallError::Transport(TransportError::Timeout) => BatchResult::RetryAll {
            reason: format!(
                "Salesforce did not answer within {} s",
                config.timeout.as_secs_f64()
            ),
            after: None,
        },
        CallError::Transport(TransportError::Other(detail)) => BatchResult::RetryAll {
            reason: format!("the request to Salesforce failed: {detail}"),
            after: None,
        },
        CallError::LoginUnavailable(reason) => BatchResult::RetryAll {
            reason,
            after: None,
        },
        CallError::Auth(diagnostic) => BatchResult::Fatal(diagnostic),
    }
}

/// A read the batch needed failed: passing failures ask for the batch again, anything else
/// stops the run.
pub(crate) fn passing_or_fatal(diagnostic: Diagnostic) -> BatchResult {
    if matches!(
        diagnostic.code.as_str(),
        "salesforce::unavailable" | "salesforce::unreachable"
    ) {
        BatchResult::RetryAll {
            reason: diagnostic.message,
            after: None,
        }
    } else {
        BatchResult::Fatal(diagnostic)
    }
}

/// `count` rows to send again, for `reason`.
pub(crate) fn retry_rows(count: usize, reason: &str) -> Vec<RowOutcome> {
    (0..count)
        .map(|_| RowOutcome::Retry {
            reason: reason.to_string(),
            after: None,
        })
        .collect()
}

/// Removes every secret from a result's texts.
fn redact_result(result: BatchResult, secrets: &[SecretString]) -> BatchResult {
    let clean = |text: String| secrets.iter().fold(text, |t, s| s.redact_in(&t));
    match result {
        BatchResult::PerRow(rows) => BatchResult::PerRow(
            rows.into_iter()
                .map(|row| match row {
                    RowOutcome::Retry { reason, after } => RowOutcome::Retry {
                        reason: clean(reason),
                        after,
                    },
                    RowOutcome::Rejected { message } => RowOutcome::Rejected {
                        message: clean(message),
                    },
                    RowOutcome::Skipped {
                        reason,
                        existing_id,
                    } => RowOutcome::Skipped {
                        reason: clean(reason),
                        existing_id,
                    },
                    succeeded @ RowOutcome::Succeeded { .. } => succeeded,
                })
                .collect(),
        ),
        BatchResult::RetryAll { reason, after } => BatchResult::RetryAll {
            reason: clean(reason),
            after,
        },
        BatchResult::Unreachable { target, reason } => BatchResult::Unreachable {
            target: clean(target),
            reason: clean(reason),
        },
        BatchResult::Fatal(diagnostic) => {
            BatchResult::Fatal(redact_diagnostic(diagnostic, secrets))
        }
    }
}

/// Removes every secret from a diagnostic's texts.
pub(crate) fn redact_diagnostic(
    mut diagnostic: Diagnostic,
    secrets: &[SecretString],
) -> Diagnostic {
    let clean = |text: &str| {
        secrets
            .iter()
            .fold(text.to_string(), |t, s| s.redact_in(&t))
    };
    diagnostic.message = clean(&diagnostic.message);
    for text in diagnostic
        .notes
        .iter_mut()
        .chain(diagnostic.hints.iter_mut())
    {
        *text = clean(text);
    }
    diagnostic
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_and_diagnostics_are_redacted() {
        let secret = SecretString::new("refresh-hidden-token");
        let result = redact_result(
            BatchResult::PerRow(vec![RowOutcome::Rejected {
                message: "bad refresh-hidden-token".into(),
            }]),
            std::slice::from_ref(&secret),
        );
        assert_eq!(
            result,
            BatchResult::PerRow(vec![RowOutcome::Rejected {
                message: "bad **redacted**".into()
            }])
        );
        let d = redact_diagnostic(
            Diagnostic::error("x", "a refresh-hidden-token").hint("refresh-hidden-token"),
            &[secret],
        );
        assert!(!d.to_string().contains("hidden"));
    }
}
