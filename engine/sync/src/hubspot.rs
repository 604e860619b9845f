//! The HubSpot connector in the registry: builds a [`HubspotDestination`] from a sync's spec
//! and checks mappings against the object's property definitions.

use std::time::Duration;

use connector_core::{BatchResult, Capabilities, Destination, Operation, Record, RecordRef};
use connector_hubspot::{
    AssociationConfig, AssociationField, EventConfig, HubspotConfig, HubspotDestination,
    ListConfig, check_properties,
};
use engine_diag::Diagnostic;
use engine_executor::{AccountBudgets, ExecutorOptions};
use engine_mapping::{EnumOption, SyncMapping, ValueKind};
use engine_spec::{
    AssociationWhen, DestinationKind, DestinationSpec, MatchLookup, Project, SyncMode, SyncSpec,
};
use futures_util::future::BoxFuture;

use crate::registry::{Connection, Connector};
use crate::{Failure, concurrency_limits, read_with_backoff, retry_policy};

const DEFAULT_HUBSPOT_URL: &str = "https://api.hubapi.com";

/// Serves `type: hubspot` destinations (HubSpot, or the bundled sandbox).
pub(crate) struct HubspotConnector;

impl Connector for HubspotConnector {
    fn kind(&self) -> DestinationKind {
        DestinationKind::Hubspot
    }

    fn connect(
        &self,
        _project: &Project,
        sync: &SyncSpec,
        destination: &DestinationSpec,
    ) -> Result<Box<dyn Connection>, Failure> {
        let token = match &destination.token {
            Some(token) => token.resolve_secret().map_err(|d| vec![d])?,
            None => {
                return Err(vec![Diagnostic::error("hubspot::no_token", format!("destination `{}` has no `token`", destination.name.value))
                    .at(destination.name.span.clone())
                    .hint("add `token: ${env:HUBSPOT_TOKEN}` and set HUBSPOT_TOKEN to a private-app token")]);
            }
        };
        let base_url = match &destination.base_url {
            Some(url) => url.resolve().map_err(|d| vec![d])?,
            None => DEFAULT_HUBSPOT_URL.to_string(),
        };
        let config = HubspotConfig {
            base_url,
            token,
            object: sync.object.value.clone(),
            match_property: sync.match_on.property.value.clone(),
            search_match: sync.match_on.lookup == MatchLookup::Search,
            fallback_properties: sync
                .match_on
                .fallback
                .iter()
                .map(|p| p.value.clone())
                .collect(),
            associations: sync
                .associations
                .iter()
                .map(|a| AssociationConfig {
                    property: connector_core::association::association_property(&a.name.value),
                    to: a.to.value.clone(),
                    by: a.by.as_ref().map(|b| b.value.clone()),
                    created_only: a.when == AssociationWhen::Created,
                })
                .collect(),
            list: sync.list.as_ref().map(|list| ListConfig {
                id: list.id.as_ref().map(|i| i.value.clone()),
                name: list.name.value.clone(),
                remove_leavers: sync.on_remove == engine_spec::OnRemove::Delete,
            }),
            event: sync.event.as_ref().map(|event| EventConfig {
                sync: sync.name.value.clone(),
                name: event.name.as_ref().map(|n| n.value.clone()),
            }),
            timeout: Duration::from_secs(30),
        };
        let client =
            HubspotDestination::new(config).map_err(|d| vec![locate(d, sync, destination)])?;
        let requests_per_second = destination
            .requests_per_second
            .unwrap_or(client.capabilities().default_requests_per_second);
        // Syncs writing to one portal with one token share its rate limit, so they share a
        // budget.
        let budget =
            AccountBudgets::global().budget(&client.config().account_key(), requests_per_second);
        let options = ExecutorOptions {
            batch_size: sync.batch_size_or(engine_spec::MAX_HUBSPOT_BATCH_SIZE),
            budget,
            concurrency: concurrency_limits(),
            retry: retry_policy(),
            progress: engine_executor::ProgressMode::Hidden,
        };
        Ok(Box::new(HubspotConnection {
            client,
            options,
            destination: destination.clone(),
        }))
    }
}

struct HubspotConnection {
    client: HubspotDestination,
    options: ExecutorOptions,
    destination: DestinationSpec,
}

impl Connection for HubspotConnection {
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
        // HubSpot's search compares text ignoring case, so look-ups do too.
        let config = self.client.config();
        config.search_match || connector_hubspot::match_is_case_insensitive(&config.match_property)
    }

    fn check_mapping<'a>(
        &'a self,
        sync: &'a SyncSpec,
        mapping: &'a SyncMapping,
    ) -> BoxFuture<'a, Result<Vec<Option<ValueKind>>, Failure>> {
        Box::pin(async move {
            if sync.sends_events() {
                return self.check_event_mapping(sync, mapping).await;
            }
            if sync.keeps_list() {
                return self.check_list(sync, mapping).await;
            }
            let properties = read_with_backoff(|| async {
                self.options.budget.ready().await;
                self.client.describe().await
            })
            .await
            .map_err(|d| vec![locate(d, sync, &self.destination)])?;
            let mut problems = Vec::new();
            let match_property = &sync.match_on.property;
            if match_property.value == "hs_object_id" && sync.mode != SyncMode::Update {
                problems.push(
                    Diagnostic::error(
                        "hubspot::match_on_record_id",
                        "a sync matched on `hs_object_id` can only update records",
                    )
                    .at(match_property.span.clone())
                    .note("HubSpot gives each record its id when it creates it, so no row can hold the id of a record that does not exist yet")
                    .hint("set `mode: update`, or match on a unique property such as `email`"),
                );
                return Err(problems);
            }
            let search = sync.match_on.lookup == MatchLookup::Search;
            // One property's problems; search look-ups need no unique match values: that is
            // what they are for.
            let check = |name: &String| {
                check_properties(
                    std::slice::from_ref(name),
                    &match_property.value,
                    &properties,
                )
                .into_iter()
                .filter(move |d| !(search && d.code == "hubspot::match_property_not_unique"))
            };
            for d in check(&match_property.value) {
                problems.push(d.at(match_property.span.clone()));
            }
            if search {
                tracing::warn!(
                    sync = %sync.name.value,
                    property = %match_property.value,
                    "Matching through search look-ups: one search request before each batch of new rows, and HubSpot allows about 4 searches per second, so new rows are slower to write than with a unique match property."
                );
            }
            for entry in &sync.mapping {
                let name = &entry.property.value;
                if mapping.properties().iter().any(|p| &p.name == name) {
                    for d in check(name) {
                        if !problems.iter().any(|p: &Diagnostic| p.message == d.message) {
                            problems.push(d.at(entry.property.span.clone()));
                        }
                    }
                }
            }
            for association in &sync.associations {
                let checked = read_with_backoff(|| async {
                    self.options.budget.ready().await;
                    self.client
                        .check_association(
                            &association.to.value,
                            association.label.as_ref().map(|l| l.value.as_str()),
                            association.by.as_ref().map(|b| b.value.as_str()),
                        )
                        .await
                        .map_err(|(field, d)| {
                            let span = match field {
                                AssociationField::To => &association.to.span,
                                AssociationField::Label => association
                                    .label
                                    .as_ref()
                                    .map_or(&association.to.span, |l| &l.span),
                                AssociationField::By => association
                                    .by
                                    .as_ref()
                                    .map_or(&association.to.span, |b| &b.span),
                            };
                            d.at(span.clone())
                        })
                })
                .await;
                if let Err(diagnostic) = checked {
                    problems.push(diagnostic);
                }
            }
            if problems.is_empty() {
                Ok(mapping
                    .properties()
                    .iter()
                    .map(|p| properties.get(&p.name).and_then(value_kind))
                    .collect())
            } else {
                Err(problems)
            }
        })
    }

    fn send_batch<'a>(&'a self, operations: &'a [Operation]) -> BoxFuture<'a, BatchResult> {
        Box::pin(self.client.send_batch(operations))
    }

    fn requests_sent(&self) -> u64 {
        self.client.requests_sent()
    }

    fn use_lookup_cache(&self, cache: std::sync::Arc<dyn connector_core::LookupCache>) {
        self.client.use_lookup_cache(cache);
    }

    fn read_records<'a>(
        &'a self,
        by: RecordRef,
        values: &'a [String],
        properties: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Record>, Diagnostic>> {
        Box::pin(async move {
            // Sent events cannot be read back: an unanswered batch is sent again, and its
            // events' uuids make HubSpot keep one of each.
            if self.client.config().event.is_some() {
                return Ok(Vec::new());
            }
            // A list's members cannot be told from the contacts: an unanswered add is sent
            // again, and an unanswered removal (its contact is there) too; both are harmless.
            if self.client.config().list.is_some() {
                return Ok(match by {
                    RecordRef::Id => values
                        .iter()
                        .map(|id| Record {
                            id: id.clone(),
                            properties: Default::default(),
                            created_at: None,
                        })
                        .collect(),
                    RecordRef::MatchValue => Vec::new(),
                });
            }
            let mut records = Vec::new();
            for chunk in values.chunks(connector_hubspot::MAX_BATCH_SIZE) {
                // Reads (recovery, rebuild) draw on the account's request budget like
                // batches do, so they keep within the portal's rate limit too.
                self.options.budget.ready().await;
                records.extend(self.client.read_records(by, chunk, properties).await?);
            }
            Ok(records)
        })
    }
}

impl HubspotConnection {
    /// Checks a list sync before anything is sent: contacts are named by `email` or
    /// `hs_object_id`, and the list, when it exists, is a static one (`hubspot::dynamic_list`
    /// otherwise). A list that does not exist yet is created by the first apply.
    async fn check_list(
        &self,
        sync: &SyncSpec,
        mapping: &SyncMapping,
    ) -> Result<Vec<Option<ValueKind>>, Failure> {
        let match_property = &sync.match_on.property;
        if !matches!(match_property.value.as_str(), "email" | "hs_object_id") {
            return Err(vec![
                Diagnostic::error(
                    "hubspot::list_contact",
                    format!(
                        "a list's members are contacts named by `email` or `hs_object_id`, not `{}`",
                        match_property.value
                    ),
                )
                .at(match_property.span.clone())
                .hint("set `match.property` to `email` (or `hs_object_id` for record ids)"),
            ]);
        }
        let Some(config) = &self.client.config().list else {
            return Ok(Vec::new());
        };
        let found = read_with_backoff(|| async {
            self.options.budget.ready().await;
            self.client.find_list(config).await
        })
        .await;
        match (found, &sync.list) {
            (Err(d), Some(list)) => {
                let at = list.id.as_ref().map_or(&list.name.span, |i| &i.span);
                Err(vec![d.at(at.clone())])
            }
            (Err(d), None) => Err(vec![d]),
            (Ok(None), _) => {
                tracing::warn!(
                    sync = %sync.name.value,
                    list = %config.name,
                    "The list does not exist yet: the first apply creates it as a static list."
                );
                Ok(vec![None; mapping.properties().len()])
            }
            (Ok(Some(_)), _) => Ok(vec![None; mapping.properties().len()]),
        }
    }

    /// Checks an event sync before anything is sent: the event exists (else
    /// `hubspot::unknown_event`, listing the portal's events), the contact is named by
    /// `email`, `hs_object_id` or `utk`, and every mapped property is one of the event's
    /// (with did-you-mean). Values are typed by the event's property definitions.
    async fn check_event_mapping(
        &self,
        sync: &SyncSpec,
        mapping: &SyncMapping,
    ) -> Result<Vec<Option<ValueKind>>, Failure> {
        let match_property = &sync.match_on.property;
        if !matches!(
            match_property.value.as_str(),
            "email" | "hs_object_id" | "utk"
        ) {
            return Err(vec![
                Diagnostic::error(
                    "hubspot::event_contact",
                    format!(
                        "an event names its contact by `email`, `hs_object_id` or `utk`, not `{}`",
                        match_property.value
                    ),
                )
                .at(match_property.span.clone())
                .hint("set `match.property` to `email` (or `hs_object_id` for record ids)"),
            ]);
        }
        let Some(event) = &sync.event else {
            return Ok(Vec::new());
        };
        let Some(name) = &event.name else {
            // Rows name their events: HubSpot checks each at send time.
            return Ok(vec![None; mapping.properties().len()]);
        };
        let definition = read_with_backoff(|| async {
            self.options.budget.ready().await;
            self.client.event_definition(&name.value).await
        })
        .await
        .map_err(|d| vec![d.at(name.span.clone())])?;
        let mut problems = Vec::new();
        for entry in &sync.mapping {
            let wanted = &entry.property.value;
            if !definition.properties.iter().any(|p| &p.name == wanted) {
                let mut d = Diagnostic::error(
                    "hubspot::unknown_event_property",
                    format!("the event `{}` has no property `{wanted}`", definition.name),
                )
                .at(entry.property.span.clone())
                .hint("map only the event's properties (HubSpot lists them on the event's definition)");
                if let Some(near) = engine_diag::did_you_mean(
                    wanted,
                    definition.properties.iter().map(|p| p.name.as_str()),
                ) {
                    d = d.note(format!("did you mean `{near}`?"));
                }
                problems.push(d);
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(mapping
            .properties()
            .iter()
            .map(|p| {
                definition
                    .properties
                    .iter()
                    .find(|d| d.name == p.name)
                    .and_then(value_kind)
            })
            .collect())
    }
}

/// What a HubSpot property holds, for converting values at plan time (FACTS P1, P3, P4):
/// dates at midnight UTC and date-times in epoch milliseconds, numbers, checkboxes, and
/// enumerations checked against their options' internal values. Text, phone numbers and
/// enumerations whose options live elsewhere (pipelines, owners) are sent as mapped.
fn value_kind(property: &connector_hubspot::Property) -> Option<ValueKind> {
    match property.r#type.as_str() {
        "date" => Some(ValueKind::Date),
        "datetime" => Some(ValueKind::DateTime),
        "number" => Some(ValueKind::Number),
        "bool" => Some(ValueKind::Bool),
        "enumeration" if !property.external_options && !property.options.is_empty() => {
            Some(ValueKind::Enumeration {
                options: property
                    .options
                    .iter()
                    .map(|o| EnumOption {
                        value: o.value.clone(),
                        label: o.label.clone(),
                    })
                    .collect(),
                multiple: property.field_type == "checkbox",
            })
        }
        _ => None,
    }
}

/// Gives a connector's diagnostic about the sync's target or the destination's URL the
/// place in the project it comes from (the connector knows values, not files).
fn locate(diagnostic: Diagnostic, sync: &SyncSpec, destination: &DestinationSpec) -> Diagnostic {
    if diagnostic.location.is_some() {
        return diagnostic;
    }
    match diagnostic.code.as_str() {
        "hubspot::unknown_object" => diagnostic.at(sync.object.span.clone()),
        "hubspot::config" => {
            let span = destination
                .base_url
                .as_ref()
                .map_or(&destination.name.span, |url| &url.span);
            diagnostic.at(span.clone())
        }
        "hubspot::no_match_property" => diagnostic.at(sync.match_on.property.span.clone()),
        _ => diagnostic,
    }
}
