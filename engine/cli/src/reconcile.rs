//! Learning from the destination what an unanswered batch did.
//!
//! When an apply dies after HubSpot accepted a batch but before the journal recorded the
//! answer, the journal says `sent` and nothing more. Guessing either way breaks the promise:
//! assuming "not written" leaves orphans (a row that left the model keeps its values) and
//! duplicates (a row whose email changed gets a second record); assuming "written" loses
//! writes. So a recovering apply reads those records back (batched, by record id or match
//! value) and folds what it finds into the state before planning:
//!
//! - a record that holds what the plan sent: the row succeeded, as if the answer had come;
//! - a record that exists but holds something else: the state records what the destination
//!   really holds (and its id), so the next plan's diff sends exactly what is missing;
//! - no record (an upsert that never landed), or a clear that did not happen: the row stays
//!   as it was and is planned again.

use std::collections::{BTreeMap, HashMap};

use connector_hubspot::{HubspotDestination, Record, RecordRef};
use engine_diag::Diagnostic;
use engine_plan::{Action, RowChange, SyncPlan, match_key};

use crate::context::read_destination;

/// What the destination showed about the unanswered rows of a crashed run.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// Rows that turned out written, with their record id.
    pub succeeded: HashMap<String, Option<String>>,
    /// Rows whose record holds other values than planned: the values it really holds
    /// (aligned with the plan's properties), replacing the plan's in the fold.
    pub observed: HashMap<String, Vec<Option<String>>>,
    /// How many rows held exactly what was planned (the batch was applied).
    pub written: usize,
}

/// Reads the records of `unanswered` rows of `plan` and classifies them.
pub async fn unanswered_rows(
    destination: &HubspotDestination,
    plan: &SyncPlan,
    unanswered: &[String],
) -> Result<Reconciled, Diagnostic> {
    let changes: HashMap<&str, &RowChange> =
        plan.changes.iter().map(|c| (c.key.as_str(), c)).collect();
    let mut by_id: Vec<(String, &RowChange)> = Vec::new();
    let mut by_match: Vec<(String, &RowChange)> = Vec::new();
    for key in unanswered {
        let Some(change) = changes.get(key.as_str()) else {
            continue;
        };
        match (&change.destination_id, change.action) {
            (Some(id), _) => by_id.push((id.clone(), change)),
            (None, Action::Create) => {
                if let Some(value) = change
                    .values
                    .as_ref()
                    .and_then(|v| v.first().cloned().flatten())
                {
                    by_match.push((value, change));
                }
            }
            (None, _) => {}
        }
    }
    let mut out = Reconciled::default();
    if !by_id.is_empty() {
        let ids: Vec<String> = by_id.iter().map(|(id, _)| id.clone()).collect();
        let records =
            read_destination(|| destination.read_records(RecordRef::Id, &ids, &plan.properties))
                .await?;
        let found: HashMap<&str, &Record> = records.iter().map(|r| (r.id.as_str(), r)).collect();
        for (id, change) in &by_id {
            if let Some(record) = found.get(id.as_str()) {
                classify(plan, change, record, &mut out);
            }
        }
    }
    if !by_match.is_empty() {
        let values: Vec<String> = by_match.iter().map(|(v, _)| v.clone()).collect();
        let found = records_by_match_value(
            destination,
            &values,
            &plan.properties,
            &plan.match_property,
            plan.match_case_insensitive,
        )
        .await?;
        for (value, change) in &by_match {
            if let Some(record) = found.get(&match_key(value, plan.match_case_insensitive)) {
                classify(plan, change, record, &mut out);
            }
        }
    }
    Ok(out)
}

/// Reads records by match value (batched, retried like a batch) and indexes them by the
/// match value as the destination compares it. Shared by recovery and `engine state rebuild`.
pub async fn records_by_match_value(
    destination: &HubspotDestination,
    values: &[String],
    properties: &[String],
    match_property: &str,
    case_insensitive: bool,
) -> Result<HashMap<String, Record>, Diagnostic> {
    let records =
        read_destination(|| destination.read_records(RecordRef::MatchValue, values, properties))
            .await?;
    Ok(records
        .into_iter()
        .filter_map(|r| {
            let value = r.properties.get(match_property)?;
            Some((match_key(value, case_insensitive), r))
        })
        .collect())
}

/// Decides what one found record says about its row.
fn classify(plan: &SyncPlan, change: &RowChange, record: &Record, out: &mut Reconciled) {
    let holds = |property: &str, wanted: Option<&str>| -> bool {
        let actual = record.properties.get(property).map(String::as_str);
        match wanted {
            Some(wanted) if property == plan.match_property && plan.match_case_insensitive => {
                actual.is_some_and(|a| a.eq_ignore_ascii_case(wanted))
            }
            Some(wanted) => actual == Some(wanted),
            // A null is sent as a clear only where the mapping says so.
            None if plan.clear_on_null.iter().any(|p| p == property) => actual.is_none(),
            None => true,
        }
    };
    match change.action {
        Action::Remove => {
            // A clear happened when every field it empties is empty; `nothing` sends none.
            if change
                .fields
                .iter()
                .all(|f| !record.properties.contains_key(&f.property))
            {
                out.succeeded
                    .insert(change.key.clone(), Some(record.id.clone()));
                out.written += 1;
            }
        }
        Action::Create | Action::Update => {
            let all_held = change
                .fields
                .iter()
                .all(|f| holds(&f.property, f.after.as_deref()));
            out.succeeded
                .insert(change.key.clone(), Some(record.id.clone()));
            if all_held {
                out.written += 1;
            } else {
                let actual: BTreeMap<&str, &str> = record
                    .properties
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let observed = plan
                    .properties
                    .iter()
                    .map(|p| actual.get(p.as_str()).map(|v| v.to_string()))
                    .collect();
                out.observed.insert(change.key.clone(), observed);
            }
        }
    }
}
