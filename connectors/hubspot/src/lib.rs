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

mod associations;
mod client;
mod config;
mod encode;
mod events;
mod linking;
mod lists;
mod lookup;
mod objects;
mod read;
mod resolve;
mod response;
mod schema;
mod search_budget;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::OnceLock;

use connector_core::{
    BatchResult, Capabilities, Destination, Operation, OperationKind, RowOutcome,
};

pub use associations::AssociationConfig;
pub use config::{DEFAULT_BASE_URL, DEFAULT_TIMEOUT, HubspotConfig};
pub use connector_core::{Diagnostic, SecretString};
pub use connector_core::{Record, RecordRef};
pub use events::{EVENT_NAME_PROPERTY, EventConfig, EventDefinition, OCCURRED_AT_PROPERTY};
pub use linking::AssociationField;
pub use lists::{ListConfig, ListInfo};
pub use schema::{Properties, Property, PropertyOption, check_properties};

use client::{Client, TransportError};
use resolve::Found;

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
    /// The account's search rate limit, shared with every destination writing to it.
    search_budget: search_budget::SearchBudget,
    /// What links need, read on first use: object paths and label definitions.
    link_cache: linking::Cache,
    /// A list sync's list id, found (or the list created) on first use.
    list_id: tokio::sync::OnceCell<String>,
    /// Association targets found by a unique property, kept between runs (set by the engine).
    lookups: OnceLock<std::sync::Arc<dyn connector_core::LookupCache>>,
}

impl HubspotDestination {
    /// Checks the configuration and builds the HTTP client (no request is sent).
    pub fn new(config: HubspotConfig) -> Result<Self, Diagnostic> {
        let checked = config.check().and_then(|()| Client::new(&config));
        match checked {
            Ok(client) => Ok(Self {
                search_budget: search_budget::for_account(&config.account_key()),
                link_cache: linking::Cache::default(),
                list_id: tokio::sync::OnceCell::new(),
                config,
                client,
                object_path: OnceLock::new(),
                lookups: OnceLock::new(),
            }),
            Err(diagnostic) => Err(redact_diagnostic_all(diagnostic, &config.secrets())),
        }
    }

    /// Keeps association targets found by a unique property in `cache` between runs; without
    /// one they are looked up in every run. Set once, before the first batch.
    pub fn use_lookup_cache(&self, cache: std::sync::Arc<dyn connector_core::LookupCache>) {
        let _ = self.lookups.set(cache);
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
        let resolved = self.resolve_object(&self.config.object).await?;
        Ok(self.object_path.get_or_init(|| resolved))
    }

    /// The path segment of an object type: a built-in type's plural name, or a custom object's
    /// type id found through the schemas API (`hubspot::unknown_object` lists the portal's
    /// objects).
    pub(crate) async fn resolve_object(&self, name: &str) -> Result<String, Diagnostic> {
        if let Some(plural) = objects::built_in(name) {
            return Ok(plural.to_string());
        }
        let response = self
            .client
            .get(objects::SCHEMAS_PATH)
            .await
            .map_err(|error| schema::transport_diagnostic(&self.config, &error))
            .map_err(|d| redact_diagnostic_all(d, &self.config.secrets()))?;
        let custom = objects::parse_schemas(name, &response)
            .map_err(|d| redact_diagnostic_all(d, &self.config.secrets()))?;
        Ok(objects::find(name, &custom)?.object_type_id.clone())
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
        if by == RecordRef::MatchValue && self.config.search_match {
            return self.search_records(object, values, properties).await;
        }
        let id_property = match by {
            RecordRef::MatchValue => self.config.match_property.as_str(),
            RecordRef::Id => "hs_object_id",
        };
        self.batch_read(object, id_property, values, properties)
            .await
    }

    /// Records of `object` (a path segment) by `id_property` (`hs_object_id` for record ids,
    /// else a unique property), [`MAX_BATCH_SIZE`] per `batch/read` request. Missing records
    /// are left out of the answer. Shared by recovery, association targets and list members.
    pub(crate) async fn batch_read(
        &self,
        object: &str,
        id_property: &str,
        values: &[String],
        properties: &[String],
    ) -> Result<Vec<Record>, Diagnostic> {
        let path = format!("/crm/v3/objects/{object}/batch/read");
        // Messages name the sync's own object as the sync does (`thnks`, not `2-1234`).
        let shown = if self.object_path.get().map(String::as_str) == Some(object) {
            self.config.object.as_str()
        } else {
            object
        };
        let mut records = Vec::new();
        for chunk in values.chunks(MAX_BATCH_SIZE) {
            let body = read::encode(RecordRef::MatchValue, id_property, chunk, properties);
            let result = match self.client.post_json(&path, &body).await {
                Ok(response) => read::parse(shown, &response),
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

    /// [`Self::read_records`] by a match property without unique values: a batch read needs a
    /// unique property, so records are found with search, [`MAX_BATCH_SIZE`] values a time.
    async fn search_records(
        &self,
        object: &str,
        values: &[String],
        properties: &[String],
    ) -> Result<Vec<Record>, Diagnostic> {
        let property = self.config.match_property.as_str();
        let returned: Vec<&str> = std::iter::once(property)
            .chain(properties.iter().map(String::as_str))
            .collect();
        let mut records = Vec::new();
        for chunk in values.chunks(MAX_BATCH_SIZE) {
            let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let found = self
                .search(object, property, &chunk, &returned, &[])
                .await
                .map_err(|result| search_failure(&self.config, result))?;
            records.extend(found);
        }
        Ok(records)
    }

    async fn send(&self, operations: &[Operation]) -> BatchResult {
        if let Some(event) = &self.config.event {
            return self.send_events(event, operations).await;
        }
        if let Some(list) = &self.config.list {
            return self.send_memberships(list, operations).await;
        }
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
        if !self.config.associations.is_empty() && operations[0].kind != OperationKind::Archive {
            return self.send_linked(object, operations).await;
        }
        self.send_records(object, operations).await
    }

    /// Sends one event per operation (`object: events`) in one batch request: HubSpot answers
    /// 204 for all, or refuses the batch as a whole (a 400 names the bad input).
    async fn send_events(&self, config: &EventConfig, operations: &[Operation]) -> BatchResult {
        let definitions = match self.cached_event_definitions().await {
            Ok(definitions) => definitions,
            Err(diagnostic) if diagnostic.code == "hubspot::unavailable" => {
                return BatchResult::RetryAll {
                    reason: diagnostic.message,
                    after: None,
                };
            }
            Err(diagnostic) => return BatchResult::Fatal(diagnostic),
        };
        // Rows whose event HubSpot does not know fail alone; the others go in one request.
        let mut outcomes: Vec<Option<RowOutcome>> = vec![None; operations.len()];
        let mut sendable: Vec<(usize, serde_json::Value)> = Vec::new();
        for (index, op) in operations.iter().enumerate() {
            let name = events::event_name(config, op).unwrap_or_default();
            match definitions.iter().find(|d| events::names(d, name)) {
                Some(definition) => {
                    let name = if definition.fully_qualified_name.is_empty() {
                        definition.name.as_str()
                    } else {
                        definition.fully_qualified_name.as_str()
                    };
                    sendable.push((
                        index,
                        events::event_input(config, &self.config.match_property, name, op),
                    ));
                }
                None => {
                    outcomes[index] = Some(RowOutcome::Rejected {
                        message: events::unknown_event(name, &definitions).message,
                    });
                }
            }
        }
        for chunk in sendable.chunks(events::MAX_BATCH) {
            let ops: Vec<Operation> = chunk.iter().map(|(i, _)| operations[*i].clone()).collect();
            let inputs: Vec<&serde_json::Value> = chunk.iter().map(|(_, input)| input).collect();
            let body = serde_json::json!({ "inputs": inputs });
            let answer = match self.client.post_json("/events/v3/send/batch", &body).await {
                Ok(answer) => answer,
                Err(error) => return transport_retry(&self.config, &error),
            };
            let rows: Vec<RowOutcome> = if (200..=299).contains(&answer.status) {
                inputs
                    .iter()
                    .map(|input| RowOutcome::Succeeded {
                        destination_id: input["uuid"].as_str().unwrap_or_default().to_string(),
                        created: true,
                    })
                    .collect()
            } else {
                let ctx = response::Context {
                    endpoint: encode::Endpoint::Update,
                    object: &self.config.object,
                    match_property: &self.config.match_property,
                };
                match response::classify(&ctx, &ops, &answer) {
                    BatchResult::PerRow(rows) if rows.len() == ops.len() => rows,
                    BatchResult::PerRow(_) => retry_rows(
                        ops.len(),
                        "HubSpot's answer did not cover the batch".into(),
                        None,
                    ),
                    other => return other,
                }
            };
            for ((index, _), row) in chunk.iter().zip(rows) {
                outcomes[*index] = Some(row);
            }
        }
        BatchResult::PerRow(outcomes.into_iter().flatten().collect())
    }

    /// The list a list sync keeps (read-only; `engine plan` calls it): by id, or by name;
    /// `None` when no list has the name yet (the first apply creates it). An active list,
    /// whose members HubSpot computes, is `hubspot::dynamic_list`.
    pub async fn find_list(&self, list: &ListConfig) -> Result<Option<ListInfo>, Diagnostic> {
        let path = match &list.id {
            Some(id) => format!("/crm/v3/lists/{id}"),
            None => lists::by_name_path(&list.name),
        };
        let answer = self
            .client
            .get(&path)
            .await
            .map_err(|error| schema::transport_diagnostic(&self.config, &error))?;
        let found = lists::parse_list(&answer)?;
        match (&found, &list.id) {
            (Some(info), _) if info.processing_type == "DYNAMIC" => Err(lists::dynamic(info)),
            (None, Some(id)) => Err(Diagnostic::error(
                "hubspot::unknown_list",
                format!("HubSpot has no list {id}"),
            )
            .hint("check `list.id`, or name the list with `list.name` (created on the first run)")),
            _ => Ok(found),
        }
    }

    /// The list's id: found, or the list created with its name (once per destination).
    async fn list_id(&self, list: &ListConfig) -> Result<String, Diagnostic> {
        self.list_id
            .get_or_try_init(|| async {
                if let Some(found) = self.find_list(list).await? {
                    return Ok(found.id);
                }
                let answer = self
                    .client
                    .post_json("/crm/v3/lists", &lists::create_body(&list.name))
                    .await
                    .map_err(|error| schema::transport_diagnostic(&self.config, &error))?;
                lists::parse_list(&answer)?.map(|l| l.id).ok_or_else(|| {
                    Diagnostic::error("hubspot::list", "HubSpot did not create the list")
                })
            })
            .await
            .cloned()
    }

    /// Keeps the list's members in step with the rows: a new row's contact joins the list, a
    /// removed row's contact leaves it, and a row whose email (or record id) changed moves its
    /// membership from the contact it had to the contact it names now. One
    /// `memberships/add-and-remove` request per batch; a contact one row leaves and another
    /// joins stays a member.
    async fn send_memberships(&self, list: &ListConfig, operations: &[Operation]) -> BatchResult {
        let list_id = match self.list_id(list).await {
            Ok(id) => id,
            Err(d) => return passing_or_fatal(d),
        };
        // The contact each row names now: none for a removal; a changed row names one only
        // when its match value changed.
        let named: Vec<Option<String>> = operations
            .iter()
            .map(|op| match op.kind {
                OperationKind::Archive => None,
                OperationKind::Update | OperationKind::Clear => op
                    .properties
                    .iter()
                    .find(|(p, _)| *p == self.config.match_property)
                    .map(|(_, v)| v.clone())
                    .filter(|v| !v.is_empty()),
                _ => op.match_value.clone(),
            })
            .collect();
        let found = match self.contacts_named(&named).await {
            Ok(found) => found,
            Err(result) => return result,
        };
        let mut outcomes: Vec<RowOutcome> = Vec::with_capacity(operations.len());
        let mut joins: Vec<String> = Vec::new();
        let mut leaves: Vec<String> = Vec::new();
        for ((op, named), found) in operations.iter().zip(&named).zip(found) {
            let (joining, leaving) = match (&op.kind, named, found) {
                (OperationKind::Archive, _, _) => (None, op.destination_id.clone()),
                (_, Some(value), None) => {
                    outcomes.push(RowOutcome::Rejected {
                        message: format!(
                            "no contact has {} `{value}`, so it cannot join the list",
                            self.config.match_property
                        ),
                    });
                    continue;
                }
                (_, Some(_), Some(id)) => {
                    let left = op
                        .destination_id
                        .clone()
                        .filter(|old| list.remove_leavers && *old != id);
                    (Some(id), left)
                }
                // A change that leaves the match value alone keeps the membership.
                (_, None, _) => (op.destination_id.clone(), None),
            };
            joins.extend(joining.clone());
            leaves.extend(leaving.clone());
            outcomes.push(RowOutcome::Succeeded {
                destination_id: joining.or(leaving).unwrap_or_default(),
                created: op.kind != OperationKind::Archive,
            });
        }
        joins.sort();
        joins.dedup();
        leaves.sort();
        leaves.dedup();
        leaves.retain(|id| joins.binary_search(id).is_err());
        if joins.is_empty() && leaves.is_empty() {
            return BatchResult::PerRow(outcomes);
        }
        let path = format!("/crm/v3/lists/{list_id}/memberships/add-and-remove");
        let body = lists::change_body(&joins, &leaves);
        let answer = match self.client.put_json(&path, &body).await {
            Ok(answer) => answer,
            Err(error) => return transport_retry(&self.config, &error),
        };
        if !(200..=299).contains(&answer.status) {
            let ctx = response::Context {
                endpoint: encode::Endpoint::Update,
                object: "lists",
                match_property: &self.config.match_property,
            };
            return response::classify(&ctx, operations, &answer);
        }
        let missing = lists::missing_ids(&answer);
        for (op, outcome) in operations.iter().zip(outcomes.iter_mut()) {
            if let RowOutcome::Succeeded { destination_id, .. } = outcome
                && op.kind != OperationKind::Archive
                && missing.contains(destination_id)
            {
                *outcome = RowOutcome::Rejected {
                    message: format!(
                        "contact {destination_id} does not exist, so it cannot join the list"
                    ),
                };
            }
        }
        BatchResult::PerRow(outcomes)
    }

    /// The contact ids of the named match values (`None` where a row names none or no contact
    /// holds the value): record ids as they are, emails read in one batch.
    async fn contacts_named(
        &self,
        named: &[Option<String>],
    ) -> Result<Vec<Option<String>>, BatchResult> {
        if self.config.match_property == "hs_object_id" {
            return Ok(named.to_vec());
        }
        let values: Vec<String> = named.iter().flatten().cloned().collect();
        if values.is_empty() {
            return Ok(vec![None; named.len()]);
        }
        let wanted = std::slice::from_ref(&self.config.match_property);
        let found = self
            .batch_read("contacts", &self.config.match_property, &values, wanted)
            .await
            .map_err(passing_or_fatal)?;
        let by_value: HashMap<String, String> = found
            .into_iter()
            .filter_map(|r| {
                let value = r.properties.get(&self.config.match_property)?;
                Some((value.to_lowercase(), r.id))
            })
            .collect();
        Ok(named
            .iter()
            .map(|v| {
                v.as_ref()
                    .and_then(|v| by_value.get(&v.to_lowercase()).cloned())
            })
            .collect())
    }

    /// The portal's event definitions, read once.
    async fn cached_event_definitions(&self) -> Result<Vec<EventDefinition>, Diagnostic> {
        if let Some(all) = linking::lock(&self.link_cache.events).as_ref() {
            return Ok(all.clone());
        }
        let all = self.event_definitions().await?;
        *linking::lock(&self.link_cache.events) = Some(all.clone());
        Ok(all)
    }

    /// Reads the event definitions (read-only; `engine plan` checks event syncs with them).
    pub async fn event_definitions(&self) -> Result<Vec<EventDefinition>, Diagnostic> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        // A page at a time, as HubSpot pages them; a portal has a few hundred at most.
        for _ in 0..events::MAX_DEFINITION_PAGES {
            let path = match &after {
                Some(after) => format!(
                    "/events/v3/event-definitions?includeProperties=true&limit=100&after={after}"
                ),
                None => "/events/v3/event-definitions?includeProperties=true&limit=100".into(),
            };
            let answer = self
                .client
                .get(&path)
                .await
                .map_err(|error| schema::transport_diagnostic(&self.config, &error))?;
            let page = events::parse_definitions(&answer)
                .map_err(|d| redact_diagnostic_all(d, &self.config.secrets()))?;
            all.extend(page);
            after = events::next_page(&answer);
            if after.is_none() {
                break;
            }
        }
        Ok(all)
    }

    /// The definition of event `name` (internal or fully qualified), or `hubspot::unknown_event`
    /// listing the portal's events.
    pub async fn event_definition(&self, name: &str) -> Result<EventDefinition, Diagnostic> {
        let all = self.event_definitions().await?;
        all.iter()
            .find(|d| events::names(d, name))
            .cloned()
            .ok_or_else(|| events::unknown_event(name, &all))
    }

    /// Writes a batch of records (no associations in their properties): searched first when
    /// matching through look-ups, created around existing records after a whole-batch 409.
    pub(crate) async fn send_records(&self, object: &str, operations: &[Operation]) -> BatchResult {
        let new_rows = matches!(
            operations[0].kind,
            OperationKind::Upsert | OperationKind::Create | OperationKind::UpdateMatched
        );
        if self.config.search_match && new_rows {
            return self.send_after_lookup(object, operations).await;
        }
        match self.post_batch(object, operations).await {
            (Some(409), _) if operations[0].kind == OperationKind::Create => {
                self.create_around_existing(object, operations).await
            }
            (_, result) => result,
        }
    }

    /// Sends one batch request and reads its answer; also returns the HTTP status, when there
    /// was an answer.
    async fn post_batch(
        &self,
        object: &str,
        operations: &[Operation],
    ) -> (Option<u16>, BatchResult) {
        let request = match encode::encode_batch(object, &self.config.match_property, operations) {
            Ok(request) => request,
            Err(diagnostic) => return (None, BatchResult::Fatal(diagnostic)),
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
                let result = explain(&self.config, operations, response.status, result);
                (Some(response.status), result)
            }
            Err(error) => (None, transport_retry(&self.config, &error)),
        }
    }

    /// New rows matched through search look-ups (`match.lookup: search`, `match.fallback`):
    /// the records holding the batch's match values are searched for, property by property
    /// (first hit wins), then [`Self::write_found`].
    async fn send_after_lookup(&self, object: &str, operations: &[Operation]) -> BatchResult {
        let mut found = vec![Found::Nothing; operations.len()];
        let properties =
            std::iter::once(&self.config.match_property).chain(&self.config.fallback_properties);
        for property in properties {
            let values: Vec<&str> = operations
                .iter()
                .zip(&found)
                .filter(|(_, found)| **found == Found::Nothing)
                .filter_map(|(op, _)| resolve::value_of(&self.config, op, property))
                .collect();
            if values.is_empty() {
                continue;
            }
            let returned = [property.as_str(), self.config.match_property.as_str()];
            let records = match self
                .search(object, property, &values, &returned, operations)
                .await
            {
                Ok(records) => records,
                Err(result) => return result,
            };
            let records = lookup::group(records, property);
            resolve::resolve(&self.config, operations, &mut found, property, &records);
        }
        self.write_found(object, operations, found).await
    }

    /// The records whose `property` is one of `values`, with the `returned` properties, read
    /// with HubSpot's search a page at a time. A failed search is the batch's result
    /// (`operations` are the rows it answers for).
    async fn search(
        &self,
        object: &str,
        property: &str,
        values: &[&str],
        returned: &[&str],
        operations: &[Operation],
    ) -> Result<Vec<Record>, BatchResult> {
        let path = format!("/crm/v3/objects/{object}/search");
        let ctx = response::Context {
            endpoint: encode::Endpoint::Update,
            object: &self.config.object,
            match_property: property,
        };
        let mut found = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let body = lookup::search_body(property, values, returned, after.as_deref());
            self.search_budget.until_ready().await;
            let answer = match self.client.post_json(&path, &body).await {
                Ok(answer) => answer,
                Err(error) => return Err(transport_retry(&self.config, &error)),
            };
            let page = lookup::parse_page(&ctx, operations, &answer)?;
            found.extend(page.found);
            match page.next {
                Some(next) if found.len() < lookup::MAX_RESULTS => after = Some(next),
                Some(_) => return Err(BatchResult::Fatal(lookup::too_many(property))),
                None => break,
            }
        }
        Ok(found)
    }

    /// A batch create refused as a whole with 409 (HubSpot answered without multi-status and
    /// named only the first record that exists): reads which rows' records exist, then
    /// [`Self::write_found`] skips those rows and creates the others in one more request.
    async fn create_around_existing(&self, object: &str, operations: &[Operation]) -> BatchResult {
        let values: Vec<String> = operations
            .iter()
            .filter_map(|op| op.match_value.clone())
            .collect();
        let wanted = [self.config.match_property.clone()];
        let existing = match self
            .read_records(RecordRef::MatchValue, &values, &wanted)
            .await
        {
            Ok(records) => records,
            Err(diagnostic) => {
                return BatchResult::RetryAll {
                    reason: diagnostic.message,
                    after: None,
                };
            }
        };
        let mut records: HashMap<String, Vec<Record>> = HashMap::new();
        for record in existing {
            if let Some(value) = record.properties.get(&self.config.match_property) {
                records
                    .entry(resolve::key(&self.config, value))
                    .or_default()
                    .push(record);
            }
        }
        let mut found = vec![Found::Nothing; operations.len()];
        let property = self.config.match_property.as_str();
        resolve::resolve(&self.config, operations, &mut found, property, &records);
        self.write_found(object, operations, found).await
    }

    /// Writes a batch of new rows once the records they match are known (`found`, one per
    /// row). Per row: one record is updated by its id (an insert skips it); none creates a
    /// record (an update fails the row); several, or a record another match value owns, fail
    /// the row. The updates and the creates go out as one request each; rows of a request that
    /// was not answered, or refused as a whole, are retried (and looked up again).
    async fn write_found(
        &self,
        object: &str,
        operations: &[Operation],
        found: Vec<Found>,
    ) -> BatchResult {
        let mut outcomes: Vec<Option<RowOutcome>> = vec![None; operations.len()];
        let mut creates: (Vec<usize>, Vec<Operation>) = (Vec::new(), Vec::new());
        let mut updates: (Vec<usize>, Vec<Operation>) = (Vec::new(), Vec::new());
        for (index, (op, found)) in operations.iter().zip(found).enumerate() {
            match (found, &op.kind) {
                (Found::Nothing, OperationKind::UpdateMatched) => {
                    outcomes[index] = Some(RowOutcome::Rejected {
                        message: unmatched_reason(&self.config, op),
                    });
                }
                (Found::Nothing, _) => {
                    creates.0.push(index);
                    creates.1.push(Operation {
                        kind: OperationKind::Create,
                        ..op.clone()
                    });
                }
                (
                    Found::One {
                        id,
                        property,
                        value,
                    },
                    OperationKind::Create,
                ) => {
                    outcomes[index] = Some(RowOutcome::Skipped {
                        reason: existing_reason(
                            &self.config,
                            &property,
                            &value,
                            &format!("record {id}"),
                        ),
                        existing_id: Some(id.clone()),
                    });
                }
                (Found::One { id, .. }, _) => {
                    updates.0.push(index);
                    updates.1.push(Operation {
                        kind: OperationKind::Update,
                        destination_id: Some(id),
                        match_value: None,
                        ..op.clone()
                    });
                }
                (Found::Several(message) | Found::Refused(message), _) => {
                    outcomes[index] = Some(RowOutcome::Rejected { message });
                }
            }
        }
        for (at, part) in [updates, creates] {
            if part.is_empty() {
                continue;
            }
            let rows = match self.post_batch(object, &part).await {
                (Some(409), _) => retry_rows(
                    part.len(),
                    "a record holding one of these values appeared after the look-up; the \
                     rows are looked up again"
                        .into(),
                    None,
                ),
                (_, BatchResult::PerRow(rows)) if rows.len() == part.len() => rows,
                (_, BatchResult::Fatal(diagnostic)) => return BatchResult::Fatal(diagnostic),
                (_, BatchResult::RetryAll { reason, after }) => {
                    retry_rows(part.len(), reason, after)
                }
                (_, BatchResult::Unreachable { reason, .. }) => {
                    retry_rows(part.len(), reason, None)
                }
                (_, BatchResult::PerRow(_)) => retry_rows(
                    part.len(),
                    "HubSpot's answer did not cover the batch".into(),
                    None,
                ),
            };
            for (index, row) in at.into_iter().zip(rows) {
                outcomes[index] = Some(row);
            }
        }
        BatchResult::PerRow(outcomes.into_iter().flatten().collect())
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

    fn requests_sent(&self) -> u64 {
        self.client.requests_sent()
    }
}

/// A search made to read records failed: a passing failure is `hubspot::unavailable` (the
/// reader tries again), anything else the diagnostic that stops the read.
fn search_failure(config: &HubspotConfig, result: BatchResult) -> Diagnostic {
    match result {
        BatchResult::Fatal(diagnostic) => diagnostic,
        BatchResult::RetryAll { reason, .. } | BatchResult::Unreachable { reason, .. } => {
            Diagnostic::error(
                "hubspot::unavailable",
                format!(
                    "HubSpot could not search `{}` records right now",
                    config.object
                ),
            )
            .note(reason)
            .hint("try again in a moment")
        }
        BatchResult::PerRow(rows) => {
            let reason = rows.into_iter().find_map(|row| match row {
                RowOutcome::Rejected { message } => Some(message),
                _ => None,
            });
            Diagnostic::error(
                "hubspot::read",
                format!("HubSpot refused to search `{}` records", config.object),
            )
            .note(reason.unwrap_or_else(|| "HubSpot refused the search request".into()))
            .hint("check the sync's `object` and `match.property`, then run the command again")
        }
    }
}

/// `count` rows to send again, for `reason`.
fn retry_rows(count: usize, reason: String, after: Option<std::time::Duration>) -> Vec<RowOutcome> {
    (0..count)
        .map(|_| RowOutcome::Retry {
            reason: reason.clone(),
            after,
        })
        .collect()
}

/// Rewrites the rejected rows whose HubSpot message HubSpot's own words explain poorly for
/// the engine's modes; `explain` gives the new outcome of one (operation, message), or `None`
/// to keep the rejection as it is.
fn explain_rejections(
    operations: &[Operation],
    result: BatchResult,
    explain: impl Fn(&Operation, &str) -> Option<RowOutcome>,
) -> BatchResult {
    let BatchResult::PerRow(rows) = result else {
        return result;
    };
    let rows = rows
        .into_iter()
        .zip(operations)
        .map(|(row, op)| match row {
            RowOutcome::Rejected { message } => {
                explain(op, &message).unwrap_or(RowOutcome::Rejected { message })
            }
            other => other,
        })
        .collect();
    BatchResult::PerRow(rows)
}

/// Rewrites what HubSpot's words explain poorly for the engine's modes: an update that matched
/// nothing, and a create whose record exists (skipped). A 409 for the whole batch names one
/// existing record, not each row's, so only a multi-status answer's per-input conflicts make
/// rows skipped.
fn explain(
    config: &HubspotConfig,
    operations: &[Operation],
    status: u16,
    result: BatchResult,
) -> BatchResult {
    let result = explain_unmatched(config, operations, result);
    if status == 409 {
        result
    } else {
        explain_existing(config, operations, result)
    }
}

/// Says why an update of a matched record (`mode: update`) found nothing: HubSpot only says
/// that some objects "may be deleted or not exist".
fn explain_unmatched(
    config: &HubspotConfig,
    operations: &[Operation],
    result: BatchResult,
) -> BatchResult {
    explain_rejections(operations, result, |op, message| {
        (op.kind == OperationKind::UpdateMatched && message.contains("not exist")).then(|| {
            RowOutcome::Rejected {
                message: format!(
                    "no {} record has {} `{}`, and `mode: update` creates none (HubSpot said: {message})",
                    config.object,
                    config.match_property,
                    op.match_value.as_deref().unwrap_or_default(),
                ),
            }
        })
    })
}

/// A create (`mode: insert`) whose record exists already is skipped, not rejected: HubSpot's
/// multi-status answer gives that input a `CONFLICT` error, "… already exists. Existing ID: N".
fn explain_existing(
    config: &HubspotConfig,
    operations: &[Operation],
    result: BatchResult,
) -> BatchResult {
    explain_rejections(operations, result, |op, message| {
        (op.kind == OperationKind::Create && message.contains("already exists")).then(|| {
            RowOutcome::Skipped {
                reason: existing_reason(
                    config,
                    &config.match_property,
                    op.match_value.as_deref().unwrap_or_default(),
                    &format!("HubSpot said: {message}"),
                ),
                existing_id: existing_id(message).map(str::to_string),
            }
        })
    })
}

/// The record id in HubSpot's conflict message (`… already exists. Existing ID: 401`).
fn existing_id(message: &str) -> Option<&str> {
    const MARKER: &str = "Existing ID: ";
    let rest = &message[message.find(MARKER)? + MARKER.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// Why a create was skipped.
fn existing_reason(config: &HubspotConfig, property: &str, value: &str, found: &str) -> String {
    format!(
        "a {} record with {property} `{value}` exists already ({found}); `mode: insert` leaves \
         it as it is",
        config.object
    )
}

/// Why a row of `mode: update` was not written: no record holds its match value (nor, with
/// `match.fallback`, any of its fallback values).
fn unmatched_reason(config: &HubspotConfig, op: &Operation) -> String {
    let mut tried = vec![format!(
        "{} `{}`",
        config.match_property,
        op.match_value.as_deref().unwrap_or_default()
    )];
    for property in &config.fallback_properties {
        if let Some(value) = resolve::value_of(config, op, property) {
            tried.push(format!("{property} `{value}`"));
        }
    }
    format!(
        "no {} record has {}, and `mode: update` creates none",
        config.object,
        tried.join(" or ")
    )
}

/// True when HubSpot compares values of this match property case-insensitively: it stores
/// `email` (contacts) and `domain` (companies) in lower case, so `Ann@X.com` and `ann@x.com`
/// are one record.
pub fn match_is_case_insensitive(property: &str) -> bool {
    matches!(property, "email" | "domain")
}

/// A read the batch needed failed: a passing failure (HubSpot busy, unreachable) asks for the
/// batch again, anything else stops the run with its diagnostic.
pub(crate) fn passing_or_fatal(diagnostic: Diagnostic) -> BatchResult {
    if matches!(
        diagnostic.code.as_str(),
        "hubspot::unavailable" | "hubspot::unreachable"
    ) {
        BatchResult::RetryAll {
            reason: diagnostic.message,
            after: None,
        }
    } else {
        BatchResult::Fatal(diagnostic)
    }
}

/// A request that never got an HTTP answer: the executor sends the batch again later and
/// turns repeated failures into a fatal error. No connection at all is `Unreachable`, which
/// the executor retries for a bounded time only.
pub(crate) fn transport_retry(config: &HubspotConfig, error: &TransportError) -> BatchResult {
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
                    RowOutcome::Skipped {
                        reason,
                        existing_id,
                    } => RowOutcome::Skipped {
                        reason: token.redact_in(&reason),
                        existing_id,
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
