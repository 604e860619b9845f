//! The registry of connectors: which code serves a destination's `type:`.
//!
//! The lifecycle never names a vendor. It asks the [`Registry`] for a [`Connection`] to a
//! sync's destination and works through that: the mapping check at plan time, the executor's
//! batches, the record reads of crash recovery and `engine state rebuild`. A destination type
//! without a registered connector is refused before any work, with an error that says so.

use connector_core::{
    BatchResult, Capabilities, Destination, Diagnostic, Operation, Record, RecordRef,
};
use engine_executor::ExecutorOptions;
use engine_mapping::{SyncMapping, ValueKind};
use engine_spec::{DestinationKind, DestinationSpec, Project, SyncSpec};
use futures_util::future::BoxFuture;

use crate::Failure;

/// Builds connections for one destination type.
pub trait Connector: Send + Sync {
    /// The destination `type:` this connector serves.
    fn kind(&self) -> DestinationKind;

    /// Connects `sync` to `destination`: resolves its `${env:…}` secrets and checks its
    /// configuration. No request is sent.
    fn connect(
        &self,
        project: &Project,
        sync: &SyncSpec,
        destination: &DestinationSpec,
    ) -> Result<Box<dyn Connection>, Failure>;
}

/// A sync's connected destination object, as the lifecycle uses it.
pub trait Connection: Send + Sync {
    /// The connector's name, e.g. `hubspot`.
    fn name(&self) -> &'static str;

    /// Batch size and rate defaults.
    fn capabilities(&self) -> Capabilities;

    /// How the executor paces and retries for this destination.
    fn executor_options(&self) -> ExecutorOptions;

    /// True when the destination compares the sync's match values case-insensitively.
    fn match_is_case_insensitive(&self) -> bool;

    /// Checks the sync's mapping against the destination's schema (read-only): unknown or
    /// read-only properties, a match property that is not unique. Returns what each mapped
    /// property holds (aligned with `mapping.properties()`; `None` for text), so that values
    /// are converted and checked at plan time.
    fn check_mapping<'a>(
        &'a self,
        sync: &'a SyncSpec,
        mapping: &'a SyncMapping,
    ) -> BoxFuture<'a, Result<Vec<Option<ValueKind>>, Failure>>;

    /// Sends one batch of operations (the executor's only write).
    fn send_batch<'a>(&'a self, operations: &'a [Operation]) -> BoxFuture<'a, BatchResult>;

    /// Requests sent so far (see [`Destination::requests_sent`]).
    fn requests_sent(&self) -> u64 {
        0
    }

    /// Gives the connection the state's look-up cache (see [`connector_core::LookupCache`]);
    /// connectors that look nothing up ignore it.
    fn use_lookup_cache(&self, _cache: std::sync::Arc<dyn connector_core::LookupCache>) {}

    /// Readies the connection for run `run_id` of `plan` before anything is sent: a
    /// connector that sends large plans differently (Salesforce's Bulk API jobs) looks at the
    /// plan's size here and keeps what it must journal in `state`. Called before
    /// [`Connection::capabilities`] and [`Connection::executor_options`] are read for the
    /// run. Connectors that send every plan alike ignore it.
    fn begin_apply<'a>(
        &'a self,
        _plan: &'a engine_plan::SyncPlan,
        _run_id: i64,
        _state: &'a engine_state::State,
    ) -> BoxFuture<'a, Result<(), Diagnostic>> {
        Box::pin(async { Ok(()) })
    }

    /// The run [`Connection::begin_apply`] readied is committed: what the connector kept
    /// for its recovery can go.
    fn end_apply(&self) {}

    /// After a crash: answers the unanswered rows (`keys`) of run `run_id` of `plan` that the
    /// connector can finish without sending them again (a Bulk job journaled before its
    /// upload is polled to its end), one final journal row each. Rows left out are read back
    /// as usual. Connectors without such jobs answer none.
    fn resume_unanswered<'a>(
        &'a self,
        _plan: &'a engine_plan::SyncPlan,
        _run_id: i64,
        _state: &'a engine_state::State,
        _keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<engine_state::JournalRow>, Diagnostic>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Reads records by id or match value (read-only), with `properties`; missing records
    /// are left out.
    fn read_records<'a>(
        &'a self,
        by: RecordRef,
        values: &'a [String],
        properties: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Record>, Diagnostic>>;
}

/// The connectors one process knows.
pub struct Registry {
    connectors: Vec<Box<dyn Connector>>,
}

impl Default for Registry {
    /// The connectors this engine ships: HubSpot and Salesforce.
    fn default() -> Self {
        Registry::empty()
            .with(crate::hubspot::HubspotConnector)
            .with(crate::salesforce::SalesforceConnector)
    }
}

impl Registry {
    /// A registry without connectors (tests and embedders add their own).
    pub fn empty() -> Self {
        Registry {
            connectors: Vec::new(),
        }
    }

    /// Adds a connector; a later one for the same type replaces the earlier.
    pub fn with(mut self, connector: impl Connector + 'static) -> Self {
        self.connectors.retain(|c| c.kind() != connector.kind());
        self.connectors.push(Box::new(connector));
        self
    }

    /// Checks, before any work, that the sync's destination exists and has a connector.
    pub fn check(&self, project: &Project, sync: &SyncSpec) -> Result<(), Failure> {
        self.find(project, sync).map(|_| ())
    }

    /// Connects a sync of the project to its destination.
    pub fn connect(
        &self,
        project: &Project,
        sync_name: &str,
    ) -> Result<Box<dyn Connection>, Failure> {
        let Some(sync) = project.sync(sync_name) else {
            return Err(vec![crate::unknown_plan_sync(sync_name)]);
        };
        let (connector, destination) = self.find(project, sync)?;
        connector.connect(project, sync, destination)
    }

    fn find<'p>(
        &self,
        project: &'p Project,
        sync: &SyncSpec,
    ) -> Result<(&dyn Connector, &'p DestinationSpec), Failure> {
        let Some(destination) = project.destination(&sync.destination.value) else {
            return Err(vec![
                Diagnostic::error(
                    "spec::unknown_destination",
                    format!(
                        "sync `{}` names unknown destination `{}`",
                        sync.name.value, sync.destination.value
                    ),
                )
                .at(sync.destination.span.clone()),
            ]);
        };
        match self.connectors.iter().find(|c| c.kind() == destination.kind) {
            Some(connector) => Ok((connector.as_ref(), destination)),
            None => Err(vec![Diagnostic::error(
                "connector::not_implemented",
                format!(
                    "the {} connector is not implemented yet (destination `{}`)",
                    kind_name(destination.kind),
                    destination.name.value
                ),
            )
            .at(destination.name.span.clone())
            .hint(format!(
                "sync to a destination of type {} for now; `engine validate` accepts every destination type",
                self.connectors
                    .iter()
                    .map(|c| format!("`{}`", kind_name(c.kind()).to_lowercase()))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ))]),
        }
    }
}

fn kind_name(kind: DestinationKind) -> &'static str {
    match kind {
        DestinationKind::Hubspot => "HubSpot",
        DestinationKind::Salesforce => "Salesforce",
    }
}

/// Lets the executor drive any connection.
pub(crate) struct Dispatch(pub(crate) Box<dyn Connection>);

impl Destination for Dispatch {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }

    async fn send_batch(&self, operations: &[Operation]) -> BatchResult {
        self.0.send_batch(operations).await
    }

    fn requests_sent(&self) -> u64 {
        self.0.requests_sent()
    }
}
