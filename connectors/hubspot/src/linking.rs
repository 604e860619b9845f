//! Writing a batch whose operations carry associations (`@name` properties holding an
//! [`AssociationChange`]): the records first, then, for each record written, its links.
//!
//! ```text
//!  operations ─► records (as without links) ─► per written record: targets ─► unlink, link
//!                                               (ids, or looked up by a unique property)
//! ```
//!
//! A row succeeds when its record and its links are written. A link that cannot be made (a
//! target that does not exist, an unknown label) fails its row with why; the record stays
//! written, and the row is sent again (an upsert or update by id, harmless) with its data's
//! next change or `--retry-failed`. Links HubSpot cannot take right now (429, 5xx) ask for
//! the row again. Making a link that exists, or removing one that does not, changes nothing,
//! so a replay never doubles a link.

use std::collections::HashMap;
use std::sync::Mutex;

use connector_core::association::AssociationTarget;
use connector_core::{
    AssociationChange, BatchResult, Diagnostic, Operation, OperationKind, RowOutcome,
    is_association,
};

use crate::associations::{self, LabelDef};
use crate::{HubspotDestination, encode, response, schema, transport_retry};

/// Object paths and label definitions, read once per destination.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    paths: Mutex<HashMap<String, String>>,
    labels: Mutex<HashMap<(String, String), Vec<LabelDef>>>,
    /// The portal's event definitions, for event syncs.
    pub(crate) events: Mutex<Option<Vec<crate::EventDefinition>>>,
    /// The records this destination created (for `when: created` links sent again).
    pub(crate) created: Mutex<std::collections::HashSet<String>>,
}

/// One row's links to write: the record's id and, per association, the change.
struct RowLinks {
    row: usize,
    from: String,
    changes: Vec<(usize, AssociationChange)>,
}

impl HubspotDestination {
    /// Writes the records of a batch, then the links of those written.
    pub(crate) async fn send_linked(&self, object: &str, operations: &[Operation]) -> BatchResult {
        let mut records: Vec<Operation> = Vec::with_capacity(operations.len());
        let mut record_of: Vec<Option<usize>> = Vec::with_capacity(operations.len());
        let mut changes: Vec<Vec<(usize, AssociationChange)>> = Vec::new();
        for op in operations {
            let (links, properties): (Vec<_>, Vec<_>) = op
                .properties
                .iter()
                .cloned()
                .partition(|(name, _)| is_association(name));
            changes.push(
                links
                    .into_iter()
                    .filter_map(|(name, value)| {
                        let index = self
                            .config
                            .associations
                            .iter()
                            .position(|a| a.property == name)?;
                        Some((index, AssociationChange::decode(&value)?))
                    })
                    .collect(),
            );
            // An update or clear of links only has no record write.
            let links_only = properties.is_empty()
                && matches!(op.kind, OperationKind::Update | OperationKind::Clear);
            if links_only {
                record_of.push(None);
            } else {
                record_of.push(Some(records.len()));
                records.push(Operation {
                    properties,
                    ..op.clone()
                });
            }
        }
        let written = if records.is_empty() {
            Vec::new()
        } else {
            match self.send_records(object, &records).await {
                BatchResult::PerRow(rows) if rows.len() == records.len() => rows,
                BatchResult::PerRow(_) => {
                    return BatchResult::RetryAll {
                        reason: "HubSpot's answer did not cover the batch".into(),
                        after: None,
                    };
                }
                other => return other,
            }
        };
        let mut outcomes: Vec<RowOutcome> = operations
            .iter()
            .zip(&record_of)
            .map(|(op, at)| match at {
                Some(at) => written[*at].clone(),
                None => RowOutcome::Succeeded {
                    destination_id: op.destination_id.clone().unwrap_or_default(),
                    created: false,
                },
            })
            .collect();
        self.remember_created(operations, &mut outcomes);
        let mut pending: Vec<RowLinks> = Vec::new();
        for (row, (outcome, changes)) in outcomes.iter().zip(changes).enumerate() {
            let RowOutcome::Succeeded {
                destination_id,
                created,
            } = outcome
            else {
                continue;
            };
            let changes: Vec<(usize, AssociationChange)> = changes
                .into_iter()
                .filter(|(index, change)| {
                    *created || change.owed || !self.config.associations[*index].created_only
                })
                .collect();
            if !changes.is_empty() && !destination_id.is_empty() {
                pending.push(RowLinks {
                    row,
                    from: destination_id.clone(),
                    changes,
                });
            }
        }
        for index in 0..self.config.associations.len() {
            let failed = match self.link(object, index, &pending, operations).await {
                Ok(failed) => failed,
                Err(result) => return result,
            };
            for (row, outcome) in failed {
                // The first failure of a row is the one it reports.
                if matches!(outcomes[row], RowOutcome::Succeeded { .. }) {
                    outcomes[row] = outcome;
                }
            }
        }
        BatchResult::PerRow(outcomes)
    }

    /// Keeps the ids of the records this batch created, and takes a record this destination
    /// created earlier as created again: a row sent again after its links were answered 429
    /// finds its record existing (an insert is skipped, an upsert is not new), yet its
    /// `when: created` links are still to be made.
    fn remember_created(&self, operations: &[Operation], outcomes: &mut [RowOutcome]) {
        let mut created = lock(&self.link_cache.created);
        for (op, outcome) in operations.iter().zip(outcomes.iter_mut()) {
            match outcome {
                RowOutcome::Succeeded {
                    destination_id,
                    created: true,
                } => {
                    created.insert(destination_id.clone());
                }
                RowOutcome::Succeeded {
                    destination_id,
                    created: was_created,
                } if created.contains(destination_id) => *was_created = true,
                RowOutcome::Skipped {
                    existing_id: Some(id),
                    ..
                } if op.kind == OperationKind::Create && created.contains(id.as_str()) => {
                    *outcome = RowOutcome::Succeeded {
                        destination_id: id.clone(),
                        created: true,
                    };
                }
                _ => {}
            }
        }
    }

    /// Writes association `index` for the rows in `pending`: removals first, then links.
    /// Returns the rows that failed, with their outcome; `Err` stops the batch (a 401 or 403).
    async fn link(
        &self,
        object: &str,
        index: usize,
        pending: &[RowLinks],
        operations: &[Operation],
    ) -> Result<Vec<(usize, RowOutcome)>, BatchResult> {
        let config = &self.config.associations[index];
        let rows: Vec<(&RowLinks, &AssociationChange)> = pending
            .iter()
            .filter_map(|p| {
                p.changes
                    .iter()
                    .find(|(i, _)| *i == index)
                    .map(|(_, change)| (p, change))
            })
            .collect();
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut failed: Vec<(usize, RowOutcome)> = Vec::new();
        let to = match self.cached_path(&config.to).await {
            Ok(to) => to,
            Err(diagnostic) => return Err(crate::passing_or_fatal(diagnostic)),
        };
        let labels = match self.cached_labels(object, &to).await {
            Ok(labels) => labels,
            Err(diagnostic) => return Err(crate::passing_or_fatal(diagnostic)),
        };
        // The targets' record ids: the values themselves, or found by the unique property
        // (kept between runs; `cached` are the values whose ids came from there).
        let (ids, cached): (HashMap<String, String>, Vec<String>) = match &config.by {
            None => (HashMap::new(), Vec::new()),
            Some(by) => {
                let values: Vec<String> = rows
                    .iter()
                    .flat_map(|(_, c)| {
                        c.add
                            .iter()
                            .chain(&c.remove)
                            .map(|t| t.to.clone())
                            .chain(c.unlink.iter().cloned())
                    })
                    .collect();
                self.target_ids(&to, by, values).await?
            }
        };
        let id_of = |to: &str| -> Option<String> {
            match &config.by {
                None => Some(to.to_string()),
                Some(_) => ids.get(&to.to_lowercase()).cloned(),
            }
        };
        let target_id = |target: &AssociationTarget| id_of(&target.to);
        let mut unlinks: Vec<(usize, String, String)> = Vec::new();
        let mut removes: Vec<(usize, String, String, &LabelDef)> = Vec::new();
        let mut adds: Vec<(usize, String, String, &LabelDef)> = Vec::new();
        for (links, change) in &rows {
            let mut problem: Option<String> = None;
            // A target to unlink that no longer exists has no link left to remove.
            for to in &change.unlink {
                if let Some(id) = id_of(to) {
                    unlinks.push((links.row, links.from.clone(), id));
                }
            }
            for (list, out) in [(&change.remove, &mut removes), (&change.add, &mut adds)] {
                for target in list {
                    let label = associations::find_label(
                        &labels,
                        target.label.as_deref(),
                        &self.config.object,
                        &config.to,
                    );
                    match (target_id(target), label) {
                        (Some(id), Ok(label)) => {
                            out.push((links.row, links.from.clone(), id, label));
                        }
                        (None, _) => {
                            problem.get_or_insert(format!(
                                "no {} record has {} `{}`, so the row's record cannot be linked to it",
                                config.to,
                                config.by.as_deref().unwrap_or("id"),
                                target.to
                            ));
                        }
                        (_, Err(message)) => {
                            problem.get_or_insert(message);
                        }
                    }
                }
            }
            if let Some(message) = problem {
                failed.push((links.row, RowOutcome::Rejected { message }));
            }
        }
        let refused: Vec<usize> = failed.iter().map(|(row, _)| *row).collect();
        let unlinks: Vec<_> = unlinks
            .into_iter()
            .filter(|(row, ..)| !refused.contains(row))
            .collect();
        for chunk in unlinks.chunks(associations::MAX_INPUTS) {
            let rows: Vec<usize> = chunk.iter().map(|(row, ..)| *row).collect();
            let pairs: Vec<(&str, &str)> = chunk
                .iter()
                .map(|(_, from, to)| (from.as_str(), to.as_str()))
                .collect();
            let body = associations::unlink_body(&pairs);
            let outcome = self
                .post_links(object, &to, "batch/archive", &body, &rows, operations)
                .await?;
            failed.extend(outcome);
        }
        for (endpoint, list) in [("batch/labels/archive", removes), ("batch/create", adds)] {
            let list: Vec<_> = list
                .into_iter()
                .filter(|(row, ..)| !refused.contains(row))
                .collect();
            for chunk in list.chunks(associations::MAX_INPUTS) {
                let rows: Vec<usize> = chunk.iter().map(|(row, ..)| *row).collect();
                let body = associations::links_body(
                    &chunk
                        .iter()
                        .map(|(_, from, to, label)| (from.as_str(), to.as_str(), *label))
                        .collect::<Vec<_>>(),
                );
                let outcome = self
                    .post_links(object, &to, endpoint, &body, &rows, operations)
                    .await?;
                failed.extend(outcome);
            }
        }
        self.forget_stale(&to, config, &rows, &cached, &mut failed);
        Ok(failed)
    }

    /// The record ids of `to` records whose unique property `by` holds one of `values`, keyed
    /// by the value in lower case: from the look-up cache where it has them, the others read
    /// (as written: a custom property may compare case) in batches and cached. Also returns
    /// the (lower-case) values whose ids came from the cache.
    async fn target_ids(
        &self,
        to: &str,
        by: &str,
        mut values: Vec<String>,
    ) -> Result<(HashMap<String, String>, Vec<String>), BatchResult> {
        values.sort();
        values.dedup();
        let keys: Vec<String> = values.iter().map(|v| v.to_lowercase()).collect();
        let scope = self.lookup_scope(to, by);
        let mut ids = match self.lookups.get() {
            Some(cache) => cache.get(&scope, &keys),
            None => HashMap::new(),
        };
        let cached: Vec<String> = ids.keys().cloned().collect();
        let missing: Vec<String> = values
            .into_iter()
            .zip(&keys)
            .filter(|(_, key)| !ids.contains_key(*key))
            .map(|(value, _)| value)
            .collect();
        if !missing.is_empty() {
            let found = self
                .find_targets(to, by, &missing)
                .await
                .map_err(crate::passing_or_fatal)?;
            if let Some(cache) = self.lookups.get() {
                let pairs: Vec<(String, String)> = found
                    .iter()
                    .map(|(v, id)| (v.clone(), id.clone()))
                    .collect();
                cache.put(&scope, &pairs);
            }
            ids.extend(found);
        }
        Ok((ids, cached))
    }

    /// What the look-up cache files the values of `to`.`by` under: the account, so that a
    /// sandbox's ids never answer for a production portal.
    fn lookup_scope(&self, to: &str, by: &str) -> String {
        format!("{} {to} {by}", self.config.account_key())
    }

    /// A row refused while linking to a target whose id came from the look-up cache may have
    /// met a record deleted (or merged) since: its cached values are forgotten and the row is
    /// sent again, so the targets are looked up afresh.
    fn forget_stale(
        &self,
        to: &str,
        config: &associations::AssociationConfig,
        rows: &[(&RowLinks, &AssociationChange)],
        cached: &[String],
        failed: &mut [(usize, RowOutcome)],
    ) {
        let (Some(cache), Some(by)) = (self.lookups.get(), &config.by) else {
            return;
        };
        if cached.is_empty() {
            return;
        }
        for (row, outcome) in failed.iter_mut() {
            let RowOutcome::Rejected { message } = outcome else {
                continue;
            };
            let Some((_, change)) = rows.iter().find(|(links, _)| links.row == *row) else {
                continue;
            };
            let stale: Vec<String> = change
                .add
                .iter()
                .map(|t| t.to.to_lowercase())
                .filter(|v| cached.contains(v))
                .collect();
            if stale.is_empty() {
                continue;
            }
            cache.forget(&self.lookup_scope(to, by), &stale);
            *outcome = RowOutcome::Retry {
                reason: format!("{message} (a remembered target was looked up again)"),
                after: None,
            };
        }
    }

    /// Sends one link request (`body` holds one input per entry of `rows`, in order); returns
    /// the rows it failed.
    async fn post_links(
        &self,
        object: &str,
        to: &str,
        endpoint: &str,
        body: &serde_json::Value,
        rows: &[usize],
        operations: &[Operation],
    ) -> Result<Vec<(usize, RowOutcome)>, BatchResult> {
        let path = format!("/crm/v4/associations/{object}/{to}/{endpoint}");
        let inputs = body["inputs"].as_array().cloned().unwrap_or_default();
        let mut rows: Vec<usize> = rows.to_vec();
        let answer = match self.client.post_json(&path, body).await {
            Ok(answer) => answer,
            Err(error) => {
                rows.dedup();
                return Ok(each(&rows, &transport_retry(&self.config, &error)));
            }
        };
        if answer.status == 207 {
            let parsed = response::parse_body(&answer.body).unwrap_or_default();
            let errors = associations::failed_ids(&parsed);
            return Ok(rows
                .iter()
                .zip(&inputs)
                .filter_map(|(row, input)| {
                    let names = |id: &str| input.to_string().contains(&format!("\"{id}\""));
                    errors
                        .iter()
                        .find(|(id, _)| id.is_empty() || names(id))
                        .map(|(_, message)| {
                            (
                                *row,
                                RowOutcome::Rejected {
                                    message: format!("HubSpot refused a link: {message}"),
                                },
                            )
                        })
                })
                .collect());
        }
        rows.dedup();
        if (200..=299).contains(&answer.status) {
            return Ok(Vec::new());
        }
        let row_ops: Vec<Operation> = rows.iter().map(|r| operations[*r].clone()).collect();
        let ctx = response::Context {
            endpoint: encode::Endpoint::Update,
            object: &self.config.object,
            match_property: &self.config.match_property,
        };
        match response::classify(&ctx, &row_ops, &answer) {
            BatchResult::Fatal(diagnostic) => Err(BatchResult::Fatal(diagnostic)),
            BatchResult::PerRow(outcomes) => Ok(rows
                .into_iter()
                .zip(outcomes)
                .map(|(row, outcome)| match outcome {
                    RowOutcome::Rejected { message } => (
                        row,
                        RowOutcome::Rejected {
                            message: format!("HubSpot refused a link: {message}"),
                        },
                    ),
                    other => (row, other),
                })
                .collect()),
            other => Ok(each(&rows, &other)),
        }
    }

    /// The path segment of object `name`, resolved once.
    async fn cached_path(&self, name: &str) -> Result<String, Diagnostic> {
        if let Some(path) = lock(&self.link_cache.paths).get(name) {
            return Ok(path.clone());
        }
        let path = self.resolve_object(name).await?;
        lock(&self.link_cache.paths).insert(name.to_string(), path.clone());
        Ok(path)
    }

    /// The label definitions of `from` → `to`, read once.
    async fn cached_labels(&self, from: &str, to: &str) -> Result<Vec<LabelDef>, Diagnostic> {
        let key = (from.to_string(), to.to_string());
        if let Some(labels) = lock(&self.link_cache.labels).get(&key) {
            return Ok(labels.clone());
        }
        let labels = self.association_labels(from, to).await?;
        lock(&self.link_cache.labels).insert(key, labels.clone());
        Ok(labels)
    }

    /// Reads the label definitions of `from` → `to` (object paths).
    pub(crate) async fn association_labels(
        &self,
        from: &str,
        to: &str,
    ) -> Result<Vec<LabelDef>, Diagnostic> {
        let answer = self
            .client
            .get(&associations::labels_path(from, to))
            .await
            .map_err(|error| schema::transport_diagnostic(&self.config, &error))?;
        associations::parse_labels(from, to, &answer)
    }

    /// The record ids of `to` records whose unique property `by` holds one of `values`
    /// (batch reads of 100), keyed by the value in lower case.
    async fn find_targets(
        &self,
        to: &str,
        by: &str,
        values: &[String],
    ) -> Result<HashMap<String, String>, Diagnostic> {
        let mut wanted: Vec<String> = values.to_vec();
        wanted.sort();
        wanted.dedup();
        let records = self
            .batch_read(to, by, &wanted, std::slice::from_ref(&by.to_string()))
            .await?;
        let mut ids = HashMap::new();
        for record in records {
            if let Some(value) = record.properties.get(by) {
                ids.insert(value.to_lowercase(), record.id);
            }
        }
        Ok(ids)
    }
}

/// The same outcome for each of `rows`, from a result about all of them.
fn each(rows: &[usize], result: &BatchResult) -> Vec<(usize, RowOutcome)> {
    let outcome = match result {
        BatchResult::RetryAll { reason, after } => RowOutcome::Retry {
            reason: reason.clone(),
            after: *after,
        },
        BatchResult::Unreachable { reason, .. } => RowOutcome::Retry {
            reason: reason.clone(),
            after: None,
        },
        BatchResult::Fatal(diagnostic) => RowOutcome::Retry {
            reason: diagnostic.message.clone(),
            after: None,
        },
        BatchResult::PerRow(_) => RowOutcome::Retry {
            reason: "HubSpot's answer did not cover the links".into(),
            after: None,
        },
    };
    rows.iter().map(|row| (*row, outcome.clone())).collect()
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Which part of an association a plan-time problem is about, so the engine can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssociationField {
    /// `to:` the object.
    To,
    /// `label:` the static label.
    Label,
    /// `by:` the property targets are found by.
    By,
}

impl HubspotDestination {
    /// Checks an association before anything is sent (read-only; `engine plan` calls it): the
    /// `to` object exists and can be linked from the sync's object, a static `label` is one of
    /// the pair's labels, and `by` is a unique property of `to`.
    pub async fn check_association(
        &self,
        to: &str,
        label: Option<&str>,
        by: Option<&str>,
    ) -> Result<(), (AssociationField, Diagnostic)> {
        let object = self
            .object_path()
            .await
            .map_err(|d| (AssociationField::To, d))?
            .to_string();
        let to_path = self
            .cached_path(to)
            .await
            .map_err(|d| (AssociationField::To, d))?;
        let labels = self
            .cached_labels(&object, &to_path)
            .await
            .map_err(|d| (AssociationField::To, d))?;
        if let Some(label) = label {
            associations::find_label(&labels, Some(label), &self.config.object, to).map_err(
                |message| {
                    (
                        AssociationField::Label,
                        Diagnostic::error("hubspot::unknown_association_label", message).hint(
                            "use a label's name or type id as HubSpot lists them (Settings → \
                             Objects → Associations), or leave `label` out for unlabelled links",
                        ),
                    )
                },
            )?;
        }
        if let Some(by) = by {
            let path = format!("/crm/v3/properties/{to_path}");
            let answer = self.client.get(&path).await.map_err(|error| {
                (
                    AssociationField::By,
                    schema::transport_diagnostic(&self.config, &error),
                )
            })?;
            let properties = schema::parse_describe(&self.config, &answer)
                .map_err(|d| (AssociationField::By, d))?;
            let unique = crate::match_is_case_insensitive(by)
                || properties.get(by).is_some_and(|p| p.has_unique_value);
            if !unique {
                let known = properties.get(by).is_some();
                let near = engine_diag::did_you_mean(by, properties.names());
                let mut diagnostic = Diagnostic::error(
                    "hubspot::association_by_not_unique",
                    if known {
                        format!(
                            "`{by}` is not a unique property of `{to}`, so it cannot find the records to link"
                        )
                    } else {
                        format!("`{to}` has no property `{by}`")
                    },
                )
                .hint(
                    "use `by: id` with a column of record ids, or a property with unique values \
                     (`email` for contacts, `domain` for companies, a unique custom property)",
                );
                if let Some(near) = near.filter(|_| !known) {
                    diagnostic = diagnostic.note(format!("did you mean `{near}`?"));
                }
                return Err((AssociationField::By, diagnostic));
            }
        }
        Ok(())
    }
}
