//! Status + headers + body → one outcome per row. Pure, and tolerant: every field of a body
//! is optional (FACTS E1), a body that is not JSON is a message, and nothing here panics.
//!
//! | status | outcome |
//! | --- | --- |
//! | 200, 207 (any 2xx) | per row: `results` → `Succeeded`, `errors` → `Rejected` (attributed by `context`), neither → `Rejected` with unattributed errors, else `Retry` |
//! | 400 | every row `Rejected`; when the errors name some inputs, only those, the others `Retry` |
//! | 401, 403 | `Fatal` `hubspot::auth` with a hint |
//! | 409, other 4xx | every row `Rejected` with HubSpot's message |
//! | 429 | `RetryAll` after `Retry-After`, or 10 s (`TEN_SECONDLY_ROLLING`), 1 s (`SECONDLY`); the daily limit is `Fatal` |
//! | 408, 423, 477, 5xx | `RetryAll` (after `Retry-After` when sent; 2 s for 423) |
//! | anything else | `Fatal`: not an answer from the HubSpot API |

use std::time::Duration;

use connector_core::{BatchResult, Diagnostic, Operation, RowOutcome};
use serde_json::Value;

use crate::client::RawResponse;
use crate::encode::Endpoint;

const BASE_URL_HINT: &str = "check the destination's `base_url`: it should be the HubSpot API \
     (`https://api.hubapi.com`) or a sandbox";
const EXPIRED_HINT: &str = "the token has expired: get a new access token (OAuth tokens live \
     30 minutes) and update the destination's `token`";
const DAILY_HINT: &str = "the limit resets at midnight in the HubSpot account's time zone; rows \
     not written stay pending for the next run";

/// The longest message kept for one row, in characters.
const MAX_MESSAGE_CHARS: usize = 1000;

/// What the classifier needs to know about the request it classifies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// The endpoint the batch went to.
    pub endpoint: Endpoint,
    /// The object type, for hints (scopes).
    pub object: &'a str,
    /// The property upserts matched on.
    pub match_property: &'a str,
}

/// Classifies HubSpot's answer to one batch request.
pub(crate) fn classify(
    ctx: &Context<'_>,
    ops: &[Operation],
    response: &RawResponse,
) -> BatchResult {
    let status = response.status;
    // An archive's success is a 204 without a body: every record is gone (HubSpot ignores ids
    // it does not know, so a record already deleted counts as deleted).
    if ctx.endpoint == Endpoint::Archive && (200..=299).contains(&status) {
        return BatchResult::PerRow(
            ops.iter()
                .map(|op| RowOutcome::Succeeded {
                    destination_id: op.destination_id.clone().unwrap_or_default(),
                    created: false,
                })
                .collect(),
        );
    }
    // The common answer, every input written, is read without building the whole document.
    if (200..=299).contains(&status)
        && let Some(written) = all_written(ctx, ops, &response.body)
    {
        return written;
    }
    let body = parse_body(&response.body);
    match status {
        200..=299 => split_per_row(ctx, ops, status, &response.body, body.as_ref()),
        401 | 403 => BatchResult::Fatal(auth_diagnostic(
            ctx.object,
            status,
            body.as_ref(),
            Access::Write,
        )),
        429 => rate_limited(response.retry_after, body.as_ref(), &response.body),
        400 => rejected_batch(ctx, ops, status, &response.body, body.as_ref()),
        408 | 423 | 477 | 500..=599 => {
            let after = response
                .retry_after
                .or_else(|| (status == 423).then_some(Duration::from_secs(2)));
            let summary = summary(status, &response.body, body.as_ref());
            BatchResult::RetryAll {
                reason: format!("HubSpot is unavailable: {summary}"),
                after,
            }
        }
        402..=499 => {
            let message = summary(status, &response.body, body.as_ref());
            BatchResult::PerRow(
                ops.iter()
                    .map(|_| RowOutcome::Rejected {
                        message: message.clone(),
                    })
                    .collect(),
            )
        }
        _ => BatchResult::Fatal(
            Diagnostic::error(
                "hubspot::unexpected_status",
                format!("HubSpot answered with the unexpected status {status}"),
            )
            .note(summary(status, &response.body, body.as_ref()))
            .hint(BASE_URL_HINT),
        ),
    }
}

/// Whether a request wanted to read (describe) or write (batches), for the scope in hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// The `Fatal` diagnostic for 401 and 403.
pub(crate) fn auth_diagnostic(
    object: &str,
    status: u16,
    body: Option<&Value>,
    access: Access,
) -> Diagnostic {
    let category = body.and_then(|b| str_field(b, "category"));
    let what = match category {
        Some(category) => format!("{status} {category}"),
        None => status.to_string(),
    };
    let message = if status == 403 {
        format!("HubSpot refused the request for lack of permission ({what})")
    } else {
        format!("HubSpot rejected the token ({what})")
    };
    let mut diagnostic = Diagnostic::error("hubspot::auth", message);
    if let Some(detail) = body.and_then(|b| str_field(b, "message")) {
        diagnostic = diagnostic.note(format!("HubSpot said: {}", truncate(detail)));
    }
    if category == Some("EXPIRED_AUTHENTICATION") {
        diagnostic.hint(EXPIRED_HINT)
    } else {
        let scope = match object {
            "contacts" | "0-1" => "contacts",
            "companies" | "0-2" => "companies",
            "deals" | "0-3" => "deals",
            _ => "custom",
        };
        let scope = match access {
            Access::Read => format!("crm.schemas.{scope}.read"),
            Access::Write => format!("crm.objects.{scope}.write"),
        };
        let hint = "check that the destination's `token` holds a private-app token with the";
        diagnostic.hint(format!("{hint} `{scope}` scope"))
    }
}

/// 429: wait what HubSpot asks, or what its own SDK waits for the policy (FACTS R5, R6).
fn rate_limited(retry_after: Option<Duration>, body: Option<&Value>, raw: &[u8]) -> BatchResult {
    let policy = body
        .and_then(|b| str_field(b, "policyName"))
        .unwrap_or_default();
    let message = body
        .and_then(|b| str_field(b, "message"))
        .unwrap_or_default();
    if policy == "DAILY" || message.contains("daily limit") {
        return BatchResult::Fatal(
            Diagnostic::error(
                "hubspot::daily_limit",
                "HubSpot's daily API limit is used up (429 DAILY)",
            )
            .note(format!("HubSpot said: {}", summary(429, raw, body)))
            .hint(DAILY_HINT),
        );
    }
    let after = retry_after.or(
        if policy == "SECONDLY" || message.contains("secondly limit") {
            Some(Duration::from_secs(1))
        } else if policy == "TEN_SECONDLY_ROLLING" {
            Some(Duration::from_secs(10))
        } else {
            None
        },
    );
    BatchResult::RetryAll {
        reason: format!("rate limited by HubSpot: {}", summary(429, raw, body)),
        after,
    }
}

/// 400: the whole request was refused. When its errors name some inputs (duplicate ids, an
/// unknown record), only those are rejected and the others are retried without them;
/// otherwise every row is rejected with the message.
fn rejected_batch(
    ctx: &Context<'_>,
    ops: &[Operation],
    status: u16,
    raw: &[u8],
    body: Option<&Value>,
) -> BatchResult {
    let message = summary(status, raw, body);
    let errors: Vec<BatchError> = body.map(|b| vec![BatchError::parse(b)]).unwrap_or_default();
    let blamed: Vec<bool> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| errors.iter().any(|e| e.names(ctx, i, op)))
        .collect();
    let some_blamed = blamed.iter().any(|b| *b);
    let rows = blamed
        .into_iter()
        .map(|blamed| {
            if blamed || !some_blamed {
                RowOutcome::Rejected {
                    message: message.clone(),
                }
            } else {
                RowOutcome::Retry {
                    reason: format!(
                        "not written: HubSpot refused the batch because of other rows ({message})"
                    ),
                    after: None,
                }
            }
        })
        .collect();
    BatchResult::PerRow(rows)
}

/// 200/207: match `results` and `errors` back to the operations.
/// A 2xx body in which every input is written: one result per input, each naming its input by
/// `objectWriteTraceId` and carrying the record id, and no errors. Only those fields are read
/// (the echoed properties are skipped unparsed), so the usual answer costs little. Anything
/// else (errors, a result missing or without an id, a body of another shape) gives None, and
/// [`split_per_row`] sorts it out.
pub(crate) fn all_written(ctx: &Context<'_>, ops: &[Operation], raw: &[u8]) -> Option<BatchResult> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        results: Vec<Written>,
        #[serde(default)]
        errors: Vec<serde::de::IgnoredAny>,
    }
    #[derive(serde::Deserialize)]
    struct Written {
        #[serde(default)]
        id: Option<Scalar>,
        #[serde(default, rename = "objectWriteTraceId")]
        trace: Option<Scalar>,
        #[serde(default)]
        new: Option<bool>,
    }
    let body: Body = serde_json::from_slice(raw).ok()?;
    if !body.errors.is_empty() || body.results.len() != ops.len() {
        return None;
    }
    let mut rows: Vec<Option<RowOutcome>> = ops.iter().map(|_| None).collect();
    for result in body.results {
        let index: usize = result.trace?.0.parse().ok()?;
        let slot = rows.get_mut(index)?;
        if slot.is_some() {
            return None;
        }
        *slot = Some(RowOutcome::Succeeded {
            destination_id: result.id?.0,
            created: ctx.endpoint == Endpoint::Create
                || (ctx.endpoint == Endpoint::Upsert && result.new.unwrap_or(false)),
        });
    }
    rows.into_iter()
        .collect::<Option<Vec<_>>>()
        .map(BatchResult::PerRow)
}

/// A JSON string or integer as text (HubSpot's ids and trace ids are strings; an integer is
/// read as its digits; anything else leaves the body to the full reading).
struct Scalar(String);

impl<'de> serde::Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(Text)
    }
}

pub(crate) fn split_per_row(
    ctx: &Context<'_>,
    ops: &[Operation],
    status: u16,
    raw: &[u8],
    body: Option<&Value>,
) -> BatchResult {
    let Some(body) = body.filter(|b| b.is_object()) else {
        let reason = if raw.iter().all(u8::is_ascii_whitespace) {
            format!("missing from the response (HubSpot answered {status} with an empty body)")
        } else {
            format!(
                "missing from the response (HubSpot answered {status} with a body that is not \
                 a JSON object)"
            )
        };
        return BatchResult::PerRow(
            ops.iter()
                .map(|_| RowOutcome::Retry {
                    reason: reason.clone(),
                    after: None,
                })
                .collect(),
        );
    };
    let results: Vec<BatchSuccess> = array_field(body, "results")
        .iter()
        .filter_map(|r| BatchSuccess::parse(ctx, r))
        .collect();
    let errors: Vec<BatchError> = array_field(body, "errors")
        .iter()
        .map(BatchError::parse)
        .collect();
    let mut attributed = vec![false; errors.len()];
    let mut pending = Vec::with_capacity(ops.len());
    let mut rows: Vec<Option<RowOutcome>> = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        if let Some(found) = find_success(ctx, &results, index, op) {
            rows.push(Some(found));
            continue;
        }
        let mine: Vec<usize> = (0..errors.len())
            .filter(|&e| errors[e].names(ctx, index, op))
            .collect();
        if mine.is_empty() {
            pending.push(index);
            rows.push(None);
        } else {
            for &e in &mine {
                attributed[e] = true;
            }
            let message = join_messages(mine.iter().map(|&e| errors[e].message.as_str()));
            rows.push(Some(RowOutcome::Rejected { message }));
        }
    }
    // Errors that name no input belong to the inputs that are neither in results nor in a
    // named error.
    let unattributed: Vec<&str> = errors
        .iter()
        .zip(&attributed)
        .filter(|(_, attributed)| !**attributed)
        .map(|(error, _)| error.message.as_str())
        .collect();
    let leftover = if unattributed.is_empty() {
        None
    } else {
        Some(join_messages(unattributed.into_iter()))
    };
    for index in pending {
        rows[index] = Some(match &leftover {
            Some(message) => RowOutcome::Rejected {
                message: message.clone(),
            },
            None => RowOutcome::Retry {
                reason: "missing from the response".to_string(),
                after: None,
            },
        });
    }
    BatchResult::PerRow(
        rows.into_iter()
            .map(|row| {
                row.unwrap_or_else(|| RowOutcome::Retry {
                    reason: "missing from the response".to_string(),
                    after: None,
                })
            })
            .collect(),
    )
}

fn find_success(
    ctx: &Context<'_>,
    results: &[BatchSuccess],
    index: usize,
    op: &Operation,
) -> Option<RowOutcome> {
    let trace = index.to_string();
    let by_trace = results
        .iter()
        .find(|r| r.trace.as_deref() == Some(trace.as_str()));
    let found = by_trace.or_else(|| match ctx.endpoint {
        Endpoint::Upsert | Endpoint::Create => {
            let wanted = normalize(ctx.match_property, op.match_value.as_deref()?);
            results
                .iter()
                .find(|r| r.match_value.as_deref() == Some(wanted.as_str()))
        }
        Endpoint::Update | Endpoint::Archive => {
            let wanted = op.destination_id.as_deref()?;
            results.iter().find(|r| r.id.as_deref() == Some(wanted))
        }
    })?;
    let destination_id = found.id.clone().or_else(|| match ctx.endpoint {
        Endpoint::Update | Endpoint::Archive => op.destination_id.clone(),
        Endpoint::Upsert | Endpoint::Create => None,
    })?;
    let created =
        ctx.endpoint == Endpoint::Create || (ctx.endpoint == Endpoint::Upsert && found.created);
    Some(RowOutcome::Succeeded {
        destination_id,
        created,
    })
}

/// One entry of `results`, with what is needed to find its operation.
#[derive(Debug)]
struct BatchSuccess {
    id: Option<String>,
    trace: Option<String>,
    /// The match property's value, normalized (upserts).
    match_value: Option<String>,
    created: bool,
}

impl BatchSuccess {
    fn parse(ctx: &Context<'_>, value: &Value) -> Option<Self> {
        value.as_object()?;
        let id = scalar_text(value.get("id"));
        let match_value = if ctx.match_property == "hs_object_id" {
            id.clone()
        } else {
            value
                .get("properties")
                .and_then(|p| scalar_text(p.get(ctx.match_property)))
                .map(|v| normalize(ctx.match_property, &v))
        };
        Some(Self {
            id,
            trace: scalar_text(value.get("objectWriteTraceId")),
            match_value,
            created: value.get("new").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

/// One entry of `errors` (a `StandardError`), or a whole error body.
#[derive(Debug)]
struct BatchError {
    message: String,
    /// `(key, value)` pairs of the `context` (and nested `errors[].context`) maps.
    identifiers: Vec<(String, String)>,
    /// `objectWriteTraceId` values found in the context.
    traces: Vec<String>,
}

/// `context` keys whose values identify inputs.
const ID_KEYS: [&str; 2] = ["ids", "id"];
const TRACE_KEYS: [&str; 2] = ["objectWriteTraceId", "objectWriteTraceIds"];

impl BatchError {
    fn parse(value: &Value) -> Self {
        let mut identifiers = Vec::new();
        let mut traces = Vec::new();
        let mut contexts = vec![value.get("context")];
        contexts.extend(
            array_field(value, "errors")
                .iter()
                .map(|e| e.get("context")),
        );
        for context in contexts.into_iter().flatten() {
            let Some(context) = context.as_object() else {
                continue;
            };
            for (key, values) in context {
                let texts = text_list(values);
                if TRACE_KEYS.contains(&key.as_str()) {
                    traces.extend(texts);
                } else {
                    identifiers.extend(texts.into_iter().map(|text| (key.clone(), text)));
                }
            }
        }
        Self {
            message: error_message(value),
            identifiers,
            traces,
        }
    }

    /// True when this error's context names the operation at `index`.
    fn names(&self, ctx: &Context<'_>, index: usize, op: &Operation) -> bool {
        if self.traces.iter().any(|t| t.trim() == index.to_string()) {
            return true;
        }
        self.identifiers.iter().any(|(key, value)| {
            let key = key.as_str();
            match ctx.endpoint {
                Endpoint::Update | Endpoint::Archive => match &op.destination_id {
                    Some(id) => ID_KEYS.contains(&key) && id == value.trim(),
                    // An update of a matched record (`mode: update`) is named by its value.
                    None => {
                        (ID_KEYS.contains(&key) || key == ctx.match_property)
                            && op.match_value.as_deref().is_some_and(|mine| {
                                normalize(ctx.match_property, mine)
                                    == normalize(ctx.match_property, value)
                            })
                    }
                },
                Endpoint::Upsert | Endpoint::Create => {
                    (ID_KEYS.contains(&key) || key == ctx.match_property)
                        && op.match_value.as_deref().is_some_and(|mine| {
                            normalize(ctx.match_property, mine)
                                == normalize(ctx.match_property, value)
                        })
                }
            }
        })
    }
}

/// A one-line text for a whole-response error: HubSpot's message, then `(status CATEGORY)`.
pub(crate) fn summary(status: u16, raw: &[u8], body: Option<&Value>) -> String {
    match body.filter(|b| b.is_object()) {
        Some(body) => {
            let message = error_message(body);
            match str_field(body, "category") {
                Some(category) => format!("{message} ({status} {category})"),
                None => format!("{message} ({status})"),
            }
        }
        None => {
            let text = String::from_utf8_lossy(raw);
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if text.is_empty() {
                format!("HTTP {status} with an empty body")
            } else {
                format!("HTTP {status}: {}", truncate(&text))
            }
        }
    }
}

/// An error object's message, made readable: the `Property values were not valid: [json]`
/// form becomes `` `name`: message; … `` and nested `errors[].message` details are appended.
fn error_message(value: &Value) -> String {
    let mut message = str_field(value, "message")
        .map(readable)
        .unwrap_or_default();
    let details: Vec<String> = array_field(value, "errors")
        .iter()
        .filter_map(|e| str_field(e, "message"))
        .map(readable)
        .filter(|d| !d.is_empty() && !message.contains(d.as_str()))
        .collect();
    if !details.is_empty() {
        let details = details.join("; ");
        message = if message.is_empty() {
            details
        } else {
            format!("{message}: {details}")
        };
    }
    if message.is_empty() {
        message = match str_field(value, "category") {
            Some(category) => format!("HubSpot reported `{category}` without a message"),
            None => "HubSpot reported an error without a message".to_string(),
        };
    }
    truncate(&message)
}

const INVALID_PROPERTIES: &str = "Property values were not valid: ";

fn readable(message: &str) -> String {
    let message = message.trim();
    let Some(rest) = message.strip_prefix(INVALID_PROPERTIES) else {
        return message.to_string();
    };
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(rest.trim()) else {
        return message.to_string();
    };
    let parts: Vec<String> = items
        .iter()
        .map(|item| {
            let text = str_field(item, "message")
                .or_else(|| str_field(item, "error"))
                .unwrap_or("invalid value");
            match str_field(item, "name") {
                Some(name) => format!("`{name}`: {text}"),
                None => text.to_string(),
            }
        })
        .collect();
    if parts.is_empty() {
        return message.to_string();
    }
    format!("Property values were not valid: {}", parts.join("; "))
}

fn join_messages<'a>(messages: impl Iterator<Item = &'a str>) -> String {
    let mut unique: Vec<&str> = Vec::new();
    for message in messages {
        if !unique.contains(&message) {
            unique.push(message);
        }
    }
    truncate(&unique.join("; "))
}

/// Values compare as HubSpot stores them: emails lowercased and trimmed (FACTS: HubSpot
/// lowercases emails), everything else exactly.
fn normalize(property: &str, value: &str) -> String {
    if property == "email" {
        value.trim().to_lowercase()
    } else {
        value.to_string()
    }
}

/// The `results` list of a successful list answer (`CollectionResponse…`), or the error that
/// says `what` came without one.
pub(crate) fn results_list<'a>(
    body: Option<&'a Value>,
    response: &RawResponse,
    what: &str,
) -> Result<&'a Vec<Value>, Diagnostic> {
    body.and_then(|b| b.get("results"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Diagnostic::error(
                "hubspot::describe",
                format!("HubSpot answered {what} without a `results` list"),
            )
            .note(summary(response.status, &response.body, body))
        })
}

pub(crate) fn parse_body(raw: &[u8]) -> Option<Value> {
    serde_json::from_slice(raw).ok()
}

pub(crate) fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn array_field<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A string or number as text (ids are strings in the contract, but be lenient).
fn scalar_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A context value: an array of strings (the contract), or one string or number.
fn text_list(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().filter_map(|v| scalar_text(Some(v))).collect(),
        other => scalar_text(Some(other)).into_iter().collect(),
    }
}

/// Cuts a message to [`MAX_MESSAGE_CHARS`] characters, on a character boundary.
pub(crate) fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}
