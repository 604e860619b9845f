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
//!
//! Above the sync's `bulk_threshold` (rows of one kind in the apply's plan, read at
//! [`Connection::begin_apply`]) the executor is asked for batches of [`BULK_BATCH_ROWS`] and
//! each batch above the threshold is written through Bulk API 2.0 jobs (see [`BulkRun`]):
//!
//! ```text
//!  create_bulk_job ─► state `bulk_jobs` (run, keys, job id) ─► resume_bulk: upload, close, poll
//!        crash ─► next apply's recovery ─► resume_jobs: same job polled ─► journal per row
//! ```

use std::collections::{HashMap, HashSet};
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
use engine_plan::SyncPlan;
use engine_spec::{
    DestinationKind, DestinationSpec, MATCH_RECORDS_EMAIL_PROPERTY, MATCH_RECORDS_ID_PROPERTY,
    MatchRecordsSpec, OnDuplicate, Project, SalesforceAuthSpec, SyncMode, SyncSpec,
};
use engine_state::{BulkJob, BulkJobStore, JournalRow, RowState};
use futures_util::future::BoxFuture;

use crate::registry::{Connection, Connector};
use crate::{Failure, concurrency_limits, read_with_backoff, retry_policy};

/// Serves `type: salesforce` destinations (an org, or the bundled sandbox).
pub(crate) struct SalesforceConnector;

/// The connector's credentials from the spec's `auth:`, read from the environment.
fn resolve_auth(auth: &SalesforceAuthSpec) -> Result<Auth, Failure> {
    Ok(match auth {
        SalesforceAuthSpec::RefreshToken {
            consumer_key,
            consumer_secret,
            refresh_token,
        } => Auth::RefreshToken {
            consumer_key: consumer_key.resolve().map_err(|d| vec![d])?,
            consumer_secret: consumer_secret.resolve_secret().map_err(|d| vec![d])?,
            refresh_token: refresh_token.resolve_secret().map_err(|d| vec![d])?,
        },
        SalesforceAuthSpec::JwtBearer {
            consumer_key,
            username,
            private_key,
        } => Auth::JwtBearer {
            consumer_key: consumer_key.resolve().map_err(|d| vec![d])?,
            username: username.resolve().map_err(|d| vec![d])?,
            private_key_pem: private_key.resolve_secret().map_err(|d| vec![d])?,
        },
    })
}

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
                .hint("add `auth: { consumer_key: ${env:SALESFORCE_CONSUMER_KEY}, consumer_secret: ${env:SALESFORCE_CONSUMER_SECRET}, refresh_token: ${env:SALESFORCE_REFRESH_TOKEN} }`, or `auth: { consumer_key, username, private_key }` for the JWT bearer flow")
                .hint("docs/connectors/salesforce.md says how to create the connected app and get a refresh token"),
            ]);
        };
        let auth = resolve_auth(auth)?;
        let consumer_key = match &auth {
            Auth::RefreshToken { consumer_key, .. } | Auth::JwtBearer { consumer_key, .. } => {
                consumer_key.clone()
            }
        };
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
        let mut config = SalesforceConfig::new(auth, sync.object.value.clone(), mode)
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
            batch_size: sync.batch_size_or(connector_salesforce::MAX_BATCH_SIZE),
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
            sync: sync.name.value.clone(),
            bulk: Mutex::new(None),
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
    /// The sync's name (the Bulk jobs' journal names it).
    sync: String,
    /// Set by [`Connection::begin_apply`] when the run sends through Bulk API jobs.
    bulk: Mutex<Option<BulkRun>>,
}

/// A run that sends its large batches through Bulk API 2.0 jobs.
///
/// Why the executor's batches and not a path beside it: the executor already journals a
/// batch `sent` before its request and its per-row outcomes after, retries what is worth
/// retrying and folds rejected rows into the state as pending with their message. So a run
/// above the threshold only asks it for much larger batches ([`BULK_BATCH_ROWS`]) and sends
/// each one as a job: the journal stays exactly as for Collections. What the executor does
/// not know is the job: its id is written to the state's `bulk_jobs` table between
/// [`SalesforceDestination::create_bulk_job`] (nothing uploaded yet) and
/// [`SalesforceDestination::resume_bulk`], so a retried batch or a recovering apply finishes
/// that job instead of uploading its rows again.
struct BulkRun {
    run_id: i64,
    jobs: Arc<BulkJobStore>,
}

/// Rows per executor batch when a run uses Bulk API jobs. Bulk API 2.0 counts no rows per job,
/// only bytes ([`BULK_JOB_BYTES`]); a batch this size keeps the journal's in-flight rows and
/// the memory of one batch bounded, and a batch too large in bytes is split into several jobs.
pub(crate) const BULK_BATCH_ROWS: usize = 10_000;

/// The most CSV bytes one job takes: 100 MB raw (FACTS L5: 150 MB once base64-encoded).
const BULK_JOB_BYTES: usize = 100_000_000;

impl Connection for SalesforceConnection {
    fn name(&self) -> &'static str {
        self.client.name()
    }

    fn capabilities(&self) -> Capabilities {
        let mut capabilities = self.client.capabilities();
        if self.bulk_run().is_some() {
            capabilities.max_batch_size = BULK_BATCH_ROWS;
        }
        capabilities
    }

    fn executor_options(&self) -> ExecutorOptions {
        let mut options = self.options.clone();
        if self.bulk_run().is_some() {
            options.batch_size = BULK_BATCH_ROWS;
        }
        options
    }

    fn begin_apply<'a>(
        &'a self,
        plan: &'a SyncPlan,
        run_id: i64,
        state: &'a engine_state::State,
    ) -> BoxFuture<'a, Result<(), Diagnostic>> {
        Box::pin(async move {
            let threshold = self.client.config().bulk_threshold;
            let outline = plan.changes.outline().map_err(|e| {
                Diagnostic::error("state::io", format!("cannot read the plan's changes: {e}"))
            })?;
            // Rows of one kind: creates (upserts), updates, removes.
            let largest = outline.create.max(outline.update).max(outline.remove) as usize;
            if largest <= threshold {
                return Ok(());
            }
            let jobs = state.bulk_jobs().map_err(crate::state_error)?;
            *self.bulk.lock().unwrap_or_else(PoisonError::into_inner) = Some(BulkRun {
                run_id,
                jobs: Arc::new(jobs),
            });
            Ok(())
        })
    }

    fn end_apply(&self) {
        // The journal holds every job's outcomes now; a failed delete only leaves rows of a
        // finished run, which recovery never reads.
        if let Some((run_id, jobs)) = self.bulk_run()
            && let Err(e) = jobs.forget_run(run_id)
        {
            tracing::debug!(run_id, error = %e, "The run's Bulk jobs could not be forgotten.");
        }
    }

    fn resume_unanswered<'a>(
        &'a self,
        plan: &'a SyncPlan,
        run_id: i64,
        state: &'a engine_state::State,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<JournalRow>, Diagnostic>> {
        Box::pin(self.resume_jobs(plan, run_id, state, keys))
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
        let (mut outcomes, ops) = match self.prepare(operations).await {
            Ok(prepared) => prepared,
            Err(result) => return result,
        };
        let sendable: Vec<usize> = (0..ops.len()).filter(|i| outcomes[*i].is_none()).collect();
        if sendable.is_empty() {
            return BatchResult::PerRow(outcomes.into_iter().flatten().collect());
        }
        let batch: Vec<Operation> = sendable.iter().map(|i| ops[*i].clone()).collect();
        // A full batch always goes by Bulk (a threshold above the batch size would otherwise
        // never be reached); a smaller one when it is above the threshold.
        let bulk_above = self.client.config().bulk_threshold.min(BULK_BATCH_ROWS - 1);
        let result = if self.bulk_run().is_some() && operations.len() > bulk_above {
            self.send_jobs(&batch).await
        } else {
            self.send_collections(&batch).await
        };
        merge(outcomes.as_mut_slice(), &sendable, result)
    }

    /// The run's Bulk journal, when it sends through jobs.
    fn bulk_run(&self) -> Option<(i64, Arc<BulkJobStore>)> {
        self.bulk
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|b| (b.run_id, b.jobs.clone()))
    }

    /// Sends a batch through sObject Collections, 200 rows a call (a Bulk run's batches of a
    /// kind below the threshold are larger than one call).
    async fn send_collections(&self, batch: &[Operation]) -> BatchResult {
        let max = connector_salesforce::MAX_BATCH_SIZE;
        if batch.len() <= max {
            return self.client.send_batch(batch).await;
        }
        let mut rows = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(max) {
            if rows.is_empty() {
                // Nothing answered yet: the first call's whole-batch answer is the batch's.
                match self.client.send_batch(chunk).await {
                    BatchResult::PerRow(answered) => rows.extend(answered),
                    other => return other,
                }
            } else {
                self.options.budget.ready().await;
                rows.extend(spread(self.client.send_batch(chunk).await, chunk.len()));
            }
        }
        BatchResult::PerRow(rows)
    }

    /// Sends a batch through Bulk API 2.0 jobs (several when it is too large for one): each
    /// job is created, its id journaled with its rows' keys, and only then uploaded. A job
    /// this run already journaled for the same rows (the executor retrying the batch after a
    /// poll ran out of time) is resumed, never created and uploaded again.
    async fn send_jobs(&self, batch: &[Operation]) -> BatchResult {
        let Some((run_id, jobs)) = self.bulk_run() else {
            return self.send_collections(batch).await;
        };
        let mut rows: Vec<RowOutcome> = Vec::with_capacity(batch.len());
        for chunk in job_chunks(batch) {
            let keys: Vec<String> = chunk.iter().map(|op| op.key.clone()).collect();
            let known = jobs
                .of_run(run_id)
                .ok()
                .and_then(|all| all.into_iter().find(|j| j.keys == keys));
            let job_id = match known {
                Some(job) => job.job_id,
                None => {
                    self.options.budget.ready().await;
                    match self.client.create_bulk_job(chunk).await {
                        Ok(id) => {
                            let job = BulkJob {
                                run_id,
                                sync: self.sync.clone(),
                                job_id: id.clone(),
                                keys,
                            };
                            if let Err(e) = jobs.record(&job) {
                                // Nothing is uploaded to a job the journal does not hold.
                                let stop = BatchResult::Fatal(crate::state_error(e).note(format!(
                                    "the Bulk job `{id}` was created and nothing was uploaded to it"
                                )));
                                if rows.is_empty() {
                                    return stop;
                                }
                                // Earlier jobs of the batch were answered: keep their rows.
                                rows.extend(spread(stop, chunk.len()));
                                continue;
                            }
                            id
                        }
                        Err(result) if rows.is_empty() => return result,
                        Err(result) => {
                            rows.extend(spread(result, chunk.len()));
                            continue;
                        }
                    }
                }
            };
            self.options.budget.ready().await;
            let result = self.client.resume_bulk(&job_id, chunk).await;
            if rows.is_empty() && !matches!(result, BatchResult::PerRow(_)) {
                return result;
            }
            rows.extend(spread(result, chunk.len()));
        }
        BatchResult::PerRow(rows)
    }

    /// Finishes the Bulk jobs run `run_id` journaled for any of `keys` (rows whose batch was
    /// never answered): each job is resumed with the operations it was created for, rebuilt
    /// from the run's plan and the cascade (whose answers the look-up cache keeps), so an
    /// uploaded job is only polled. Returns each of its rows' final journal row.
    async fn resume_jobs(
        &self,
        plan: &SyncPlan,
        run_id: i64,
        state: &engine_state::State,
        keys: &[String],
    ) -> Result<Vec<JournalRow>, Diagnostic> {
        let jobs = state.bulk_jobs().map_err(crate::state_error)?;
        let wanted: HashSet<&str> = keys.iter().map(String::as_str).collect();
        let journaled: Vec<BulkJob> = jobs
            .of_run(run_id)
            .map_err(crate::state_error)?
            .into_iter()
            .filter(|j| j.keys.iter().any(|k| wanted.contains(k.as_str())))
            .collect();
        if journaled.is_empty() {
            return Ok(Vec::new());
        }
        // The jobs' operations, rebuilt from the run's plan as the executor built them; the
        // plan is streamed, so only the jobs' rows are held.
        let in_jobs: HashSet<&str> = journaled
            .iter()
            .flat_map(|j| j.keys.iter().map(String::as_str))
            .collect();
        let unreadable = |e: std::io::Error| {
            Diagnostic::error("state::io", format!("cannot read the run's changes: {e}"))
        };
        let mut steps = engine_executor::stream_steps(plan, BULK_BATCH_ROWS).map_err(unreadable)?;
        let mut by_key: HashMap<String, engine_executor::PlannedOperation> = HashMap::new();
        for step in steps.by_ref() {
            if let engine_executor::Step::Batch(batch) = step {
                by_key.extend(
                    batch
                        .into_iter()
                        .filter(|p| in_jobs.contains(p.operation.key.as_str()))
                        .map(|p| (p.operation.key.clone(), p)),
                );
            }
        }
        if let Some(e) = steps.take_error() {
            return Err(unreadable(e));
        }
        let mut answered = Vec::new();
        for job in journaled {
            let planned: Vec<engine_executor::PlannedOperation> =
                job.keys.iter().filter_map(|k| by_key.remove(k)).collect();
            if planned.len() != job.keys.len() {
                return Err(Diagnostic::error(
                    "salesforce::bulk_resume",
                    format!(
                        "the Bulk job `{}` holds rows the run's plan does not: it cannot be matched to its rows",
                        job.job_id
                    ),
                ));
            }
            let operations: Vec<Operation> = planned.iter().map(|p| p.operation.clone()).collect();
            let (mut outcomes, ops) = match self.prepare(&operations).await {
                Ok(prepared) => prepared,
                Err(result) => return Err(unfinished(&job.job_id, result)),
            };
            let sendable: Vec<usize> = (0..ops.len()).filter(|i| outcomes[*i].is_none()).collect();
            let batch: Vec<Operation> = sendable.iter().map(|i| ops[*i].clone()).collect();
            tracing::warn!(
                job = %job.job_id,
                run_id,
                rows = batch.len(),
                "Resuming the Bulk job of the interrupted run: polling it for its results, not uploading its rows again."
            );
            self.options.budget.ready().await;
            let result = if batch.is_empty() {
                BatchResult::PerRow(Vec::new())
            } else {
                self.client.resume_bulk(&job.job_id, &batch).await
            };
            let rows = match merge(&mut outcomes, &sendable, result) {
                BatchResult::PerRow(rows) => rows,
                other => return Err(unfinished(&job.job_id, other)),
            };
            for (p, outcome) in planned.iter().zip(rows) {
                let (state, destination_id, message) = match outcome {
                    RowOutcome::Succeeded { destination_id, .. } => {
                        (RowState::Succeeded, Some(destination_id), None)
                    }
                    RowOutcome::Skipped { reason, .. } => (RowState::Succeeded, None, Some(reason)),
                    RowOutcome::Rejected { message } => (RowState::Rejected, None, Some(message)),
                    RowOutcome::Retry { reason, .. } => (RowState::GaveUp, None, Some(reason)),
                };
                answered.push(JournalRow {
                    key: p.operation.key.clone(),
                    action: p.action.to_string(),
                    state,
                    destination_id,
                    message,
                });
            }
        }
        Ok(answered)
    }

    /// The cascade on a batch: each row's outcome when the cascade decided it (rejected), and
    /// every operation without the cascade's columns, its lookup fields filled.
    async fn prepare(
        &self,
        operations: &[Operation],
    ) -> Result<(Vec<Option<RowOutcome>>, Vec<Operation>), BatchResult> {
        let Some(cascade) = &self.cascade else {
            return Ok((vec![None; operations.len()], operations.to_vec()));
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
                    return Err(BatchResult::RetryAll {
                        reason: diagnostic.message,
                        after: None,
                    });
                }
                Err(diagnostic) => return Err(BatchResult::Fatal(diagnostic)),
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
        Ok((outcomes, ops))
    }
}

/// Puts the answer for the `sendable` rows beside the rows the cascade decided; a
/// whole-batch answer (retry, unreachable, fatal) is the batch's answer.
fn merge(
    outcomes: &mut [Option<RowOutcome>],
    sendable: &[usize],
    result: BatchResult,
) -> BatchResult {
    let rows = match result {
        BatchResult::PerRow(rows) => rows,
        other => return other,
    };
    for (index, row) in sendable.iter().zip(rows) {
        outcomes[*index] = Some(row);
    }
    BatchResult::PerRow(
        outcomes
            .iter_mut()
            .map(|o| {
                o.take().unwrap_or_else(|| RowOutcome::Retry {
                    reason: "Salesforce gave no result for the row".into(),
                    after: None,
                })
            })
            .collect(),
    )
}

/// A whole-batch answer as one outcome per row: a passing failure (or one that stops the run)
/// asks for each row again, so rows answered beside it keep their outcomes.
fn spread(result: BatchResult, count: usize) -> Vec<RowOutcome> {
    let (reason, after) = match result {
        BatchResult::PerRow(rows) => return rows,
        BatchResult::RetryAll { reason, after } => (reason, after),
        BatchResult::Unreachable { target, reason } => (format!("{target}: {reason}"), None),
        BatchResult::Fatal(diagnostic) => (diagnostic.message, None),
    };
    (0..count)
        .map(|_| RowOutcome::Retry {
            reason: reason.clone(),
            after,
        })
        .collect()
}

/// A batch's operations in jobs of at most [`BULK_JOB_BYTES`] of CSV (a generous estimate:
/// every cell quoted, every quote doubled).
fn job_chunks(batch: &[Operation]) -> Vec<&[Operation]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (index, op) in batch.iter().enumerate() {
        let row: usize = op
            .properties
            .iter()
            .map(|(_, v)| 2 * v.len() + 3)
            .sum::<usize>()
            + op.key.len()
            + 64;
        if index > start && bytes + row > BULK_JOB_BYTES {
            chunks.push(&batch[start..index]);
            start = index;
            bytes = 0;
        }
        bytes += row;
    }
    if start < batch.len() {
        chunks.push(&batch[start..]);
    }
    chunks
}

/// A Bulk job recovery could not finish now: the apply stops and the next one tries again
/// (by polling, never uploading again).
fn unfinished(job_id: &str, result: BatchResult) -> Diagnostic {
    let said = match result {
        BatchResult::Fatal(diagnostic) => return diagnostic,
        BatchResult::RetryAll { reason, .. } => reason,
        BatchResult::Unreachable { target, reason } => format!("{target}: {reason}"),
        BatchResult::PerRow(_) => "no result".to_string(),
    };
    Diagnostic::error(
        "salesforce::bulk_resume",
        format!("the Bulk job `{job_id}` of the interrupted run could not be finished yet"),
    )
    .note(said)
    .hint("run `engine apply` again: the job is polled, never uploaded twice")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn op(key: &str, value_len: usize) -> Operation {
        Operation {
            key: key.to_string(),
            kind: OperationKind::Upsert,
            destination_id: None,
            match_value: Some(key.to_string()),
            properties: vec![("Text__c".to_string(), "x".repeat(value_len))],
        }
    }

    #[test]
    fn a_batch_too_large_for_one_job_is_split_by_bytes() {
        let small: Vec<Operation> = (0..3).map(|i| op(&i.to_string(), 10)).collect();
        assert_eq!(job_chunks(&small).len(), 1);
        // Each row is estimated at over 40 MB of CSV: two fit a job of 100 MB, not three.
        let large: Vec<Operation> = (0..5).map(|i| op(&i.to_string(), 20_000_000)).collect();
        let chunks = job_chunks(&large);
        assert_eq!(
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [2, 2, 1]
        );
    }

    #[test]
    fn a_whole_batch_answer_asks_for_each_row_again() {
        let rows = spread(
            BatchResult::RetryAll {
                reason: "busy".into(),
                after: None,
            },
            2,
        );
        assert_eq!(rows.len(), 2);
        assert!(matches!(&rows[0], RowOutcome::Retry { reason, .. } if reason == "busy"));
    }
}
