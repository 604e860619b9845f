//! HubSpot CRM objects as a destination: contacts, companies, deals, tickets and custom objects.
//!
//! One sync writes one object type (`contacts`, `companies`, `deals`, `2-1234`, …) and matches
//! records on one unique property (`email`, `domain`, a unique custom property). The connector
//! turns a batch of [`Operation`]s (all of one kind) into one request and the response into one
//! [`RowOutcome`] per operation; it never sleeps or retries (that is `engine-executor`'s job).
//!
//! ```text
//!  operations ─► encode ─► client (POST, Bearer token) ─► response ─► BatchResult per row
//!   (pure)       (pure)      no retries, one timeout       (pure)
//! ```
//!
//! | operation | endpoint | body |
//! | --- | --- | --- |
//! | upsert | `POST /crm/v3/objects/{object}/batch/upsert` | `{"inputs":[{"idProperty","id","properties"}]}` |
//! | update, clear | `POST /crm/v3/objects/{object}/batch/update` | `{"inputs":[{"id","properties"}]}` |
//! | describe | `GET /crm/v3/properties/{object}` | — |
//! | find a custom object | `GET /crm-object-schemas/v3/schemas` | — |
//!
//! Limits: at most 100 inputs per batch request, and 100 requests per 10 seconds for a Free or
//! Starter account (more on higher tiers), so the default rate is 10 requests per second.
//!
//! How responses map to outcomes (the table in `src/response.rs` has the details):
//! 200 and 207 are split per row (results by `id` or match value, errors by their `context`),
//! 400 and 409 reject the batch's rows with HubSpot's message, 401 and 403 stop the run,
//! 429, 423, 477, 5xx and timeouts ask the executor to send the whole batch again later.
//!
//! HubSpot documentation:
//! - objects and batch upsert: <https://developers.hubspot.com/docs/api-reference/crm-contacts-v3/guide>
//! - properties: <https://developers.hubspot.com/docs/api/crm/properties>
//! - error handling and status codes: <https://developers.hubspot.com/docs/api-reference/error-handling>
//! - rate limits: <https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines>

// `Diagnostic` (176 bytes) is the workspace's one error model and the prescribed error type of
// this crate's API; errors are rare and off the hot path, so boxing it here would buy nothing.
#![allow(
    clippy::result_large_err,
    reason = "Diagnostic is the workspace-wide error type"
)]

mod client;
mod config;
mod encode;
mod objects;
mod read;
mod response;
mod schema;

#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use connector_core::{BatchResult, Capabilities, Destination, Operation, RowOutcome};

pub use config::{DEFAULT_BASE_URL, DEFAULT_TIMEOUT, HubspotConfig};
pub use connector_core::{Diagnostic, SecretString};
pub use connector_core::{Record, RecordRef};
pub use schema::{Properties, Property, PropertyOption, check_properties};

use client::{Client, TransportError};

/// The most inputs HubSpot accepts in one CRM batch request (FACTS B1).
pub const MAX_BATCH_SIZE: usize = 100;

/// 100 requests per 10 seconds, the burst limit of Free and Starter accounts (FACTS R1).
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 10.0;

/// A HubSpot object type reached through a connected HTTP client.
#[derive(Debug)]
pub struct HubspotDestination {
    config: HubspotConfig,
    client: Client,
    /// The object type as API paths name it, found on first use (see [`Self::object_path`]).
    object_path: OnceLock<String>,
}

impl HubspotDestination {
    /// Checks the configuration and builds the HTTP client (no request is sent).
    pub fn new(config: HubspotConfig) -> Result<Self, Diagnostic> {
        let checked = config.check().and_then(|()| Client::new(&config));
        match checked {
            Ok(client) => Ok(Self {
                config,
                client,
                object_path: OnceLock::new(),
            }),
            Err(diagnostic) => Err(redact_diagnostic_all(diagnostic, &config.secrets())),
        }
    }

    /// The configuration this destination was built from.
    pub fn config(&self) -> &HubspotConfig {
        &self.config
    }

    /// The object type as API paths name it: a built-in type's plural name, or a custom
    /// object's type id found through the schemas API (one request, on first use; an unknown
    /// object is `hubspot::unknown_object`, listing the portal's objects).
    pub async fn object_path(&self) -> Result<&str, Diagnostic> {
        if let Some(path) = self.object_path.get() {
            return Ok(path);
        }
        let resolved = match objects::built_in(&self.config.object) {
            Some(plural) => plural.to_string(),
            None => {
                let response = self
                    .client
                    .get(objects::SCHEMAS_PATH)
                    .await
                    .map_err(|error| schema::transport_diagnostic(&self.config, &error))
                    .map_err(|d| redact_diagnostic_all(d, &self.config.secrets()))?;
                let custom = objects::parse_schemas(&self.config.object, &response)
                    .map_err(|d| redact_diagnostic_all(d, &self.config.secrets()))?;
                objects::find(&self.config.object, &custom)?
                    .object_type_id
                    .clone()
            }
        };
        Ok(self.object_path.get_or_init(|| resolved))
    }

    /// Reads the object's property definitions (read-only; `engine plan` may call it).
    pub async fn describe(&self) -> Result<Properties, Diagnostic> {
        let object = self.object_path().await?;
        let path = format!("/crm/v3/properties/{object}");
        let result = match self.client.get(&path).await {
            Ok(response) => schema::parse_describe(&self.config, &response),
            Err(error) => Err(schema::transport_diagnostic(&self.config, &error)),
        };
        result.map_err(|diagnostic| redact_diagnostic_all(diagnostic, &self.config.secrets()))
    }

    /// Reads records by id or by match value, [`MAX_BATCH_SIZE`] per request (read-only).
    /// Records that do not exist are left out of the answer.
    pub async fn read_records(
        &self,
        by: RecordRef,
        values: &[String],
        properties: &[String],
    ) -> Result<Vec<Record>, Diagnostic> {
        let object = self.object_path().await?;
        let path = format!("/crm/v3/objects/{object}/batch/read");
        let mut records = Vec::new();
        for chunk in values.chunks(MAX_BATCH_SIZE) {
            let body = read::encode(by, &self.config.match_property, chunk, properties);
            let result = match self.client.post_json(&path, &body).await {
                Ok(response) => read::parse(&self.config.object, &response),
                Err(error) => Err(schema::transport_diagnostic(&self.config, &error)),
            };
            records.extend(
                result.map_err(|diagnostic| {
                    redact_diagnostic_all(diagnostic, &self.config.secrets())
                })?,
            );
        }
        Ok(records)
    }

    async fn send(&self, operations: &[Operation]) -> BatchResult {
        let object = match self.object_path().await {
            Ok(object) => object,
            // No answer about the object yet: the batch waits like any unanswered request.
            Err(diagnostic)
                if matches!(
                    diagnostic.code.as_str(),
                    "hubspot::unreachable" | "hubspot::unavailable"
                ) =>
            {
                return BatchResult::RetryAll {
                    reason: diagnostic.message,
                    after: None,
                };
            }
            Err(diagnostic) => return BatchResult::Fatal(diagnostic),
        };
        let request = match encode::encode_batch(object, &self.config.match_property, operations) {
            Ok(request) => request,
            Err(diagnostic) => return BatchResult::Fatal(diagnostic),
        };
        match self
            .client
            .post_json_bytes(&request.path, request.body)
            .await
        {
            Ok(response) => {
                let result = response::classify(
                    &response::Context {
                        endpoint: request.endpoint,
                        object: &self.config.object,
                        match_property: &self.config.match_property,
                    },
                    operations,
                    &response,
                );
                explain_unmatched(&self.config, operations, result)
            }
            Err(error) => transport_retry(&self.config, &error),
        }
    }
}

impl Destination for HubspotDestination {
    fn name(&self) -> &'static str {
        "hubspot"
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
        let result = self.send(operations).await;
        redact_result_all(result, &self.config.secrets())
    }
}

/// Says why an update of a matched record (`mode: update`) found nothing: HubSpot only says
/// that some objects "may be deleted or not exist".
fn explain_unmatched(
    config: &HubspotConfig,
    operations: &[Operation],
    result: BatchResult,
) -> BatchResult {
    let BatchResult::PerRow(rows) = result else {
        return result;
    };
    let rows = rows
        .into_iter()
        .zip(operations)
        .map(|(row, op)| match row {
            RowOutcome::Rejected { message }
                if op.kind == connector_core::OperationKind::UpdateMatched
                    && message.contains("not exist") =>
            {
                RowOutcome::Rejected {
                    message: format!(
                        "no {} record has {} `{}`, and `mode: update` creates none (HubSpot said: {message})",
                        config.object,
                        config.match_property,
                        op.match_value.as_deref().unwrap_or_default(),
                    ),
                }
            }
            other => other,
        })
        .collect();
    BatchResult::PerRow(rows)
}

/// True when HubSpot compares values of this match property case-insensitively: it stores
/// `email` (contacts) and `domain` (companies) in lower case, so `Ann@X.com` and `ann@x.com`
/// are one record.
pub fn match_is_case_insensitive(property: &str) -> bool {
    matches!(property, "email" | "domain")
}

/// A request that never got an HTTP answer: the executor sends the batch again later and
/// turns repeated failures into a fatal error. No connection at all is `Unreachable`, which
/// the executor retries for a bounded time only.
fn transport_retry(config: &HubspotConfig, error: &TransportError) -> BatchResult {
    let url = config.display_url();
    let reason = match error {
        TransportError::Timeout => format!(
            "HubSpot did not answer within {} s at `{url}`",
            config.timeout.as_secs_f64(),
        ),
        TransportError::Connect(detail) => {
            return BatchResult::Unreachable {
                target: format!("HubSpot at `{url}`"),
                reason: format!("could not connect: {detail}"),
            };
        }
        TransportError::Other(detail) => {
            format!("the request to HubSpot at `{url}` failed: {detail}")
        }
    };
    BatchResult::RetryAll {
        reason,
        after: None,
    }
}

/// Removes every secret (the token, credentials in the base URL) from a result's texts.
fn redact_result_all(result: BatchResult, secrets: &[SecretString]) -> BatchResult {
    secrets.iter().fold(result, redact_result)
}

/// Removes every secret (the token, credentials in the base URL) from a diagnostic.
fn redact_diagnostic_all(diagnostic: Diagnostic, secrets: &[SecretString]) -> Diagnostic {
    secrets.iter().fold(diagnostic, redact_diagnostic)
}

/// Removes the token from every text of a result, in case a response or an error echoed it.
fn redact_result(result: BatchResult, token: &SecretString) -> BatchResult {
    match result {
        BatchResult::PerRow(rows) => BatchResult::PerRow(
            rows.into_iter()
                .map(|row| match row {
                    RowOutcome::Retry { reason, after } => RowOutcome::Retry {
                        reason: token.redact_in(&reason),
                        after,
                    },
                    RowOutcome::Rejected { message } => RowOutcome::Rejected {
                        message: token.redact_in(&message),
                    },
                    succeeded @ RowOutcome::Succeeded { .. } => succeeded,
                })
                .collect(),
        ),
        BatchResult::RetryAll { reason, after } => BatchResult::RetryAll {
            reason: token.redact_in(&reason),
            after,
        },
        BatchResult::Unreachable { target, reason } => BatchResult::Unreachable {
            target: token.redact_in(&target),
            reason: token.redact_in(&reason),
        },
        BatchResult::Fatal(diagnostic) => BatchResult::Fatal(redact_diagnostic(diagnostic, token)),
    }
}

fn redact_diagnostic(mut diagnostic: Diagnostic, token: &SecretString) -> Diagnostic {
    diagnostic.message = token.redact_in(&diagnostic.message);
    for text in diagnostic
        .notes
        .iter_mut()
        .chain(diagnostic.hints.iter_mut())
    {
        *text = token.redact_in(text);
    }
    diagnostic
}

/// The diagnostic for a bug in the engine (an invariant the executor should have kept).
fn internal(message: impl Into<String>) -> Diagnostic {
    Diagnostic::error(
        "internal",
        format!("{}; this is a bug in engine", message.into()),
    )
    .hint("please report it with the command you ran")
}
