//! The Salesforce connector in the registry: builds a [`SalesforceDestination`] from a sync's
//! spec, checks mappings against the object's describe at plan time, and runs the sync's
//! record-matching cascade (`match_records:`) on the rows each batch sends.
//!
//! ```text
//!  batch of operations ─► cascade columns read and stripped (`match_records.id`, `.email`)
//!       │                      │ cache (state `lookups`, 24 h) ─► resolve_cascade (batched SOQL)
//!       │                      ▼
//!       │            Contact__c / Lead__c filled; unmatched or ambiguous rows rejected
//!       ▼
//!  sObject Collections (≤ 200 a call) ─► one outcome per row, merged back in batch order
//! ```
//!
//! The cascade's columns travel with each row under names no Salesforce field has (see
//! [`MATCH_RECORDS_EMAIL_PROPERTY`]), so a changed email is a changed row and the cascade
//! runs again for it; the connector removes them before anything is sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use connector_core::{
    BatchResult, Capabilities, Destination, LookupCache, Operation, OperationKind, Record,
    RecordRef, RowOutcome,
};
use connector_salesforce::{
    Auth, CascadeInput, CascadeMatch, DuplicateMatches, LoginHost, SalesforceConfig,
    SalesforceDestination, WriteMode,
};
use engine_diag::{Diagnostic, SourceSpan};
use engine_executor::{AccountBudgets, ExecutorOptions};
use engine_mapping::{SyncMapping, ValueKind};
use engine_spec::{
    DestinationKind, DestinationSpec, MATCH_RECORDS_EMAIL_PROPERTY, MATCH_RECORDS_ID_PROPERTY,
    MatchRecordsSpec, OnDuplicate, Project, SyncMode, SyncSpec,
};
use futures_util::future::BoxFuture;

use crate::registry::{Connection, Connector};
use crate::{Failure, concurrency_limits, read_with_backoff, retry_policy};

/// Serves `type: salesforce` destinations (an org, or the bundled sandbox).
pub(crate) struct SalesforceConnector;

impl Connector for SalesforceConnector {
    fn kind(&self) -> DestinationKind {
        DestinationKind::Salesforce
    }

    fn connect(
        &self,
        project: &Project,
        sync: &SyncSpec,
        destination: &DestinationSpec,
    ) -> Result<Box<dyn Connection>, Failure> {
        refuse_hubspot_blocks(sync)?;
        let Some(auth) = &destination.auth else {
            return Err(vec![
                Diagnostic::error(
                    "salesforce::no_auth",
                    format!("destination `{}` has no `auth`", destination.name.value),
                )
                .at(destination.name.span.clone())
                .hint("add `auth: { consumer_key: ${env:SALESFORCE_CONSUMER_KEY}, consumer_secret: ${env:SALESFORCE_CONSUMER_SECRET}, refresh_token: ${env:SALESFORCE_REFRESH_TOKEN} }`")
                .hint("docs/connectors/salesforce.md says how to create the connected app and get a refresh token"),
            ]);
        };
        let consumer_key = auth.consumer_key.resolve().map_err(|d| vec![d])?;
        let consumer_secret = auth.consumer_secret.resolve_secret().map_err(|d| vec![d])?;
        let refresh_token = auth.refresh_token.resolve_secret().map_err(|d| vec![d])?;
        let login = match &destination.login {
            Some(login) => LoginHost::parse(&login.resolve().map_err(|d| vec![d])?),
            None => LoginHost::Production,
        };
        let mode = match sync.mode {
            SyncMode::Insert => WriteMode::Insert,
            SyncMode::Update => WriteMode::Update,
            SyncMode::Upsert => WriteMode::Upsert,
        };
        let extra = project.salesforce_sync(&sync.name.value);
        let cascade = extra.and_then(|e| e.match_records.clone());
        let mut config = SalesforceConfig::new(
            Auth::RefreshToken {
                consumer_key: consumer_key.clone(),
                consumer_secret,
                refresh_token,
            },
            sync.object.value.clone(),
            mode,
        )
        .with_login(login)
        .with_external_id(sync.match_on.property.value.clone());
        if let Some(version) = &destination.api_version {
            config.api_version = version.value.clone();
        }
        if let Some(share) = destination.daily_share {
            config.stop_at_share = share;
        }
        if let Some(threshold) = extra.and_then(|e| e.bulk_threshold.as_ref()) {
            config.bulk_threshold = threshold.value;
        }
        if let Some(cascade) = &cascade {
            config.duplicate_matches = match cascade.on_duplicate {
                OnDuplicate::Fail => DuplicateMatches::Reject,
                OnDuplicate::MostRecent => DuplicateMatches::MostRecent,
            };
        }
        let login_shown = engine_diag::redact_url(config.login.url());
        let client =
            SalesforceDestination::new(config).map_err(|d| vec![locate(d, sync, destination)])?;
        let requests_per_second = destination
            .requests_per_second
            .unwrap_or(client.capabilities().default_requests_per_second);
        // Syncs writing to one org through one connected app share its budget.
        let account = format!("salesforce {login_shown} {consumer_key}");
        let budget = AccountBudgets::global().budget(&account, requests_per_second);
        let options = ExecutorOptions {
            batch_size: sync.batch_size.min(connector_salesforce::MAX_BATCH_SIZE),
            budget,
            concurrency: concurrency_limits(),
            retry: retry_policy(),
            progress: engine_executor::ProgressMode::Hidden,
        };
        Ok(Box::new(SalesforceConnection {
            client,
            options,
            destination: destination.clone(),
            cascade,
            scope: format!("{account} match_records"),
            cache: Mutex::new(None),
        }))
    }
}

/// `associations:`, `event:` and `list:` are HubSpot's; a Salesforce sync links records
/// through lookup fields.
fn refuse_hubspot_blocks(sync: &SyncSpec) -> Result<(), Failure> {
    let mut problems = Vec::new();
    if let Some(first) = sync.associations.first() {
        problems.push(
            Diagnostic::error(
                "salesforce::hubspot_only_option",
                "`associations` are HubSpot's; Salesforce links records through lookup fields",
            )
            .at(first.to.span.clone())
            .hint("map the lookup field (such as `AccountId`) to a column of record ids, or fill `Contact__c` / `Lead__c` with `match_records:`"),
        );
    }
    if sync.event.is_some() || sync.list.is_some() {
        problems.push(
            Diagnostic::error(
                "salesforce::hubspot_only_option",
                format!(
                    "`object: {}` is a HubSpot sync kind; a Salesforce sync writes records of an sObject",
                    sync.object.value
                ),
            )
            .at(sync.object.span.clone())
            .hint("set `object:` to the sObject's API name, such as `Contact` or `ThankView__c`"),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

struct SalesforceConnection {
    client: SalesforceDestination,
    options: ExecutorOptions,
    destination: DestinationSpec,
    cascade: Option<MatchRecordsSpec>,
    /// The look-up cache's scope: the org's login and the connected app.
    scope: String,
    cache: Mutex<Option<Arc<dyn LookupCache>>>,
}

impl Connection for SalesforceConnection {
    fn name(&self) -> &'static str {
        self.client.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.client.capabilities()
    }

    fn executor_options(&self) -> ExecutorOptions {
        self.options.clone()
    }

    fn match_is_case_insensitive(&self) -> bool {
        // Salesforce compares external-id values ignoring case (unless the field is marked
        // case-sensitive), so two rows differing only in case would write one record.
        true
    }

    fn check_mapping<'a>(
        &'a self,
        sync: &'a SyncSpec,
        mapping: &'a SyncMapping,
    ) -> BoxFuture<'a, Result<Vec<Option<ValueKind>>, Failure>> {
        Box::pin(async move {
            let mut mapped: Vec<String> = sync
                .mapping
                .iter()
                .map(|m| m.property.value.clone())
                .filter(|p| !is_cascade_property(p))
                .collect();
            if let Some(cascade) = &self.cascade {
                mapped.push(cascade.contact_field.value.clone());
                mapped.extend(cascade.lead_field.as_ref().map(|f| f.value.clone()));
            }
            // Describe is read with backoff (Salesforce busy), then the checks are pure.
            read_with_backoff(|| async {
                self.options.budget.ready().await;
                self.client.describe().await
            })
            .await
            .map_err(|d| vec![locate(d, sync, &self.destination)])?;
            self.options.budget.ready().await;
            if let Err(problems) = self.client.check_mapping(&mapped).await {
                return Err(problems
                    .into_iter()
                    .map(|d| locate_field(d, sync, self.cascade.as_ref(), &self.destination))
                    .collect());
            }
            if let Some(cascade) = &self.cascade {
                self.check_cascade_targets(cascade).await?;
            }
            Ok(vec![None; mapping.properties().len()])
        })
    }

    fn send_batch<'a>(&'a self, operations: &'a [Operation]) -> BoxFuture<'a, BatchResult> {
        Box::pin(self.send(operations))
    }

    fn requests_sent(&self) -> u64 {
        self.client.requests_sent()
    }

    fn use_lookup_cache(&self, cache: Arc<dyn LookupCache>) {
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) = Some(cache);
    }

    fn read_records<'a>(
        &'a self,
        by: RecordRef,
        values: &'a [String],
        properties: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Record>, Diagnostic>> {
        Box::pin(async move {
            // The cascade's columns are no fields: they cannot be read back.
            let fields: Vec<String> = properties
                .iter()
                .filter(|p| !is_cascade_property(p))
                .cloned()
                .collect();
            let mut records = Vec::new();
            for chunk in values.chunks(connector_salesforce::MAX_BATCH_SIZE) {
                self.options.budget.ready().await;
                records.extend(self.client.read_records(by, chunk, &fields).await?);
            }
            Ok(records)
        })
    }
}

/// A problem worth asking again about (Salesforce busy or unreachable).
fn is_passing(diagnostic: &Diagnostic) -> bool {
    matches!(
        diagnostic.code.as_str(),
        "salesforce::unavailable" | "salesforce::unreachable"
    )
}

/// True for the names the cascade's columns travel under.
fn is_cascade_property(name: &str) -> bool {
    name == MATCH_RECORDS_ID_PROPERTY || name == MATCH_RECORDS_EMAIL_PROPERTY
}

/// One operation's cascade input, and the operation without the cascade's columns.
fn split_cascade(op: &Operation) -> (Option<CascadeInput>, Operation) {
    let mut id = None;
    let mut email = None;
    let mut stripped = op.clone();
    stripped.properties.retain(|(name, value)| {
        if name == MATCH_RECORDS_ID_PROPERTY {
            id = Some(value.clone());
            false
        } else if name == MATCH_RECORDS_EMAIL_PROPERTY {
            email = Some(value.clone());
            false
        } else {
            true
        }
    });
    let carries = matches!(
        op.kind,
        OperationKind::Create
            | OperationKind::Upsert
            | OperationKind::Update
            | OperationKind::UpdateMatched
    ) && (id.is_some() || email.is_some());
    let input = carries.then(|| CascadeInput {
        key: op.key.clone(),
        record_id: id.filter(|v| !v.trim().is_empty()),
        email: email.filter(|v| !v.trim().is_empty()),
    });
    (input, stripped)
}

impl SalesforceConnection {
    /// The cascade's lookup fields must point at Contact and Lead.
    async fn check_cascade_targets(&self, cascade: &MatchRecordsSpec) -> Result<(), Failure> {
        let describe = read_with_backoff(|| async {
            self.options.budget.ready().await;
            self.client.describe().await
        })
        .await
        .map_err(|d| vec![d])?;
        let mut problems = Vec::new();
        let fields = std::iter::once((&cascade.contact_field, "Contact"))
            .chain(cascade.lead_field.as_ref().map(|f| (f, "Lead")));
        for (field, target) in fields {
            // A missing field was reported by the mapping check.
            let Some(found) = describe.fields.iter().find(|f| f.name == field.value) else {
                continue;
            };
            if !found
                .reference_to
                .iter()
                .any(|r| r.eq_ignore_ascii_case(target))
            {
                let points = if found.reference_to.is_empty() {
                    format!("a `{}` field, not a lookup", found.r#type)
                } else {
                    format!("a lookup to {}", found.reference_to.join(", "))
                };
                problems.push(
                    Diagnostic::error(
                        "salesforce::lookup_target",
                        format!(
                            "`{}` must be a lookup to {target}, and `{}` says it is {points}",
                            field.value, describe.name
                        ),
                    )
                    .at(field.span.clone())
                    .hint(format!(
                        "name the `{}` field that looks up {target} records",
                        describe.name
                    )),
                );
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Runs the cascade on the rows that carry its columns, then sends the rest.
    async fn send(&self, operations: &[Operation]) -> BatchResult {
        let Some(cascade) = &self.cascade else {
            return self.client.send_batch(operations).await;
        };
        let mut outcomes: Vec<Option<RowOutcome>> = vec![None; operations.len()];
        let mut ops: Vec<Operation> = Vec::with_capacity(operations.len());
        let mut inputs: Vec<(usize, CascadeInput)> = Vec::new();
        for (index, op) in operations.iter().enumerate() {
            let (input, stripped) = split_cascade(op);
            if let Some(input) = input {
                inputs.push((index, input));
            }
            ops.push(stripped);
        }
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // Rows named by email only may be answered by the cache.
        let cached: HashMap<String, String> = match &cache {
            Some(cache) => {
                let emails: Vec<String> = inputs
                    .iter()
                    .filter(|(_, i)| i.record_id.is_none())
                    .filter_map(|(_, i)| i.email.as_deref().map(str::to_lowercase))
                    .collect();
                if emails.is_empty() {
                    HashMap::new()
                } else {
                    cache.get(&self.scope, &emails)
                }
            }
            None => HashMap::new(),
        };
        let mut matches: HashMap<usize, CascadeMatch> = HashMap::new();
        let mut to_resolve: Vec<(usize, CascadeInput)> = Vec::new();
        for (index, input) in inputs {
            let hit = input
                .email
                .as_deref()
                .filter(|_| input.record_id.is_none())
                .and_then(|e| cached.get(&e.to_lowercase()));
            match hit.and_then(|id| cached_match(id)) {
                Some(found) => {
                    matches.insert(index, found);
                }
                None => to_resolve.push((index, input)),
            }
        }
        if !to_resolve.is_empty() {
            let rows: Vec<CascadeInput> = to_resolve.iter().map(|(_, i)| i.clone()).collect();
            self.options.budget.ready().await;
            let resolved = match self.client.resolve_cascade(&rows).await {
                Ok(resolved) => resolved,
                Err(diagnostic) if is_passing(&diagnostic) => {
                    return BatchResult::RetryAll {
                        reason: diagnostic.message,
                        after: None,
                    };
                }
                Err(diagnostic) => return BatchResult::Fatal(diagnostic),
            };
            let mut found: Vec<(String, String)> = Vec::new();
            for ((index, input), result) in to_resolve.iter().zip(resolved) {
                let by_email = matches!(
                    result.matched,
                    CascadeMatch::Contact { by_email: true, .. } | CascadeMatch::Lead { .. }
                );
                if by_email
                    && let (Some(email), Some(id)) = (
                        &input.email,
                        result
                            .matched
                            .contact_id()
                            .or_else(|| result.matched.lead_id()),
                    )
                {
                    found.push((email.to_lowercase(), id.to_string()));
                }
                matches.insert(*index, result.matched);
            }
            if let Some(cache) = &cache
                && !found.is_empty()
            {
                cache.put(&self.scope, &found);
            }
        }
        // Fill the lookup fields, or reject the row.
        for (index, matched) in &matches {
            let op = &mut ops[*index];
            let (contact, lead) = match matched {
                CascadeMatch::Contact { id, .. } => (Some(id.clone()), None),
                CascadeMatch::Lead { id } => match &cascade.lead_field {
                    Some(_) => (None, Some(id.clone())),
                    None => {
                        outcomes[*index] = Some(RowOutcome::Rejected {
                            message: format!(
                                "the recipient is a Lead (`{id}`), and the sync has no `match_records.lead_field`; the row is not synced"
                            ),
                        });
                        continue;
                    }
                },
                CascadeMatch::Unmatched { reason } => {
                    outcomes[*index] = Some(RowOutcome::Rejected {
                        message: reason.clone(),
                    });
                    continue;
                }
                CascadeMatch::Ambiguous { message } => {
                    outcomes[*index] = Some(RowOutcome::Rejected {
                        message: format!("{message}; the row is not synced"),
                    });
                    continue;
                }
            };
            // One lookup is set and the other emptied, so a recipient who became a Contact
            // leaves the Lead behind.
            op.properties.push((
                cascade.contact_field.value.clone(),
                contact.unwrap_or_default(),
            ));
            if let Some(lead_field) = &cascade.lead_field {
                op.properties
                    .push((lead_field.value.clone(), lead.unwrap_or_default()));
            }
        }
        let sendable: Vec<usize> = (0..ops.len()).filter(|i| outcomes[*i].is_none()).collect();
        if sendable.is_empty() {
            return BatchResult::PerRow(outcomes.into_iter().flatten().collect());
        }
        let batch: Vec<Operation> = sendable.iter().map(|i| ops[*i].clone()).collect();
        match self.client.send_batch(&batch).await {
            BatchResult::PerRow(rows) => {
                for (index, row) in sendable.iter().zip(rows) {
                    outcomes[*index] = Some(row);
                }
                BatchResult::PerRow(
                    outcomes
                        .into_iter()
                        .map(|o| {
                            o.unwrap_or_else(|| RowOutcome::Retry {
                                reason: "Salesforce gave no result for the row".into(),
                                after: None,
                            })
                        })
                        .collect(),
                )
            }
            other => other,
        }
    }
}

/// A cached record id as a match: Contacts start with `003`, Leads with `00Q` (FACTS I3).
fn cached_match(id: &str) -> Option<CascadeMatch> {
    match id.get(..3) {
        Some("003") => Some(CascadeMatch::Contact {
            id: id.to_string(),
            by_email: true,
        }),
        Some("00Q") => Some(CascadeMatch::Lead { id: id.to_string() }),
        _ => None,
    }
}

/// Places a connector's field diagnostic at the mapping entry (or `match:` / `match_records:`
/// field) it names.
fn locate_field(
    diagnostic: Diagnostic,
    sync: &SyncSpec,
    cascade: Option<&MatchRecordsSpec>,
    destination: &DestinationSpec,
) -> Diagnostic {
    if diagnostic.location.is_some() {
        return diagnostic;
    }
    let names = |name: &str| diagnostic.message.contains(&format!("`{name}`"));
    let mut spans: Vec<(&str, &SourceSpan)> = sync
        .mapping
        .iter()
        .filter(|m| !is_cascade_property(&m.property.value))
        .map(|m| (m.property.value.as_str(), &m.property.span))
        .collect();
    if let Some(cascade) = cascade {
        spans.push((
            cascade.contact_field.value.as_str(),
            &cascade.contact_field.span,
        ));
        if let Some(lead) = &cascade.lead_field {
            spans.push((lead.value.as_str(), &lead.span));
        }
    }
    // Fields named in the message, the match property last (messages about a mapped field
    // may name the object's external id in a hint, never in the message).
    if let Some((_, span)) = spans.iter().find(|(name, _)| names(name)) {
        return diagnostic.at((*span).clone());
    }
    if names(&sync.match_on.property.value) {
        return diagnostic.at(sync.match_on.property.span.clone());
    }
    locate(diagnostic, sync, destination)
}

/// Gives a connector's diagnostic about the sync's object or the destination the place in
/// the project it comes from.
fn locate(diagnostic: Diagnostic, sync: &SyncSpec, destination: &DestinationSpec) -> Diagnostic {
    if diagnostic.location.is_some() {
        return diagnostic;
    }
    match diagnostic.code.as_str() {
        "salesforce::unknown_object" | "salesforce::required_field_missing" => {
            diagnostic.at(sync.object.span.clone())
        }
        "salesforce::no_external_id" | "salesforce::not_external_id" => {
            diagnostic.at(sync.match_on.property.span.clone())
        }
        "salesforce::config" | "salesforce::auth" | "salesforce::login" => {
            let span = destination
                .login
                .as_ref()
                .map_or(&destination.name.span, |l| &l.span);
            diagnostic.at(span.clone())
        }
        _ => diagnostic.at(destination.name.span.clone()),
    }
}
