//! Recovering a crashed apply before anything else runs: its journal is folded into the
//! state, and the rows whose batch was sent but never answered are first read back from the
//! destination.
//!
//! When an apply dies after the destination accepted a batch but before the journal recorded
//! the answer, the journal says `sent` and nothing more. Guessing either way breaks the
//! promise: assuming "not written" leaves orphans (a row that left the model keeps its
//! values) and duplicates (a row whose email changed gets a second record); assuming
//! "written" loses writes. So those records are read back (batched, by record id or match
//! value) and what they hold is folded into the state before planning:
//!
//! - a record that holds what the plan sent: the row succeeded, as if the answer had come;
//! - a record that exists but holds something else: the state records what the destination
//!   really holds (and its id), so the next plan's diff sends exactly what is missing;
//! - no record (an upsert that never landed), or a clear that did not happen: the row stays
//!   as it was and is planned again.

use std::collections::{BTreeMap, HashMap};

use connector_core::association::LINKS_OWED;
use connector_core::{Record, RecordRef, is_association};
use engine_diag::Diagnostic;
use engine_plan::{Action, RemoveBehaviour, RowChange, SyncPlan, WriteMode, match_key};
use engine_spec::Project;
use engine_state::{JournalRow, RowState, RunCounts, RunStatus, State, StateStore, journal_rows};

use crate::commit::{Outcome, fold_and_commit, held_fingerprints};
use crate::events::{Event, Recovered, Reporter};
use crate::registry::Connection;
use crate::{Failure, Registry, read_with_backoff, state_error};

/// Folds a crashed run's journal into the next generation. Rows whose batch was sent but
/// never answered are read back from the destination first (see [`crate::reconcile`]).
pub(crate) async fn recover(
    registry: &Registry,
    project: &Project,
    state: &State,
    sync: &str,
    reporter: &dyn Reporter,
) -> Result<(), Failure> {
    let fail = |e: engine_state::StateError| vec![state_error(e)];
    for run in state.unfinished_runs(sync).map_err(fail)? {
        let stored = match state.run_plan(run.id) {
            Ok(stored) => stored,
            Err(engine_state::StateError::Io(e))
                if e.kind() == std::io::ErrorKind::NotFound
                    && state
                        .journal_page(run.id, None, None, 1)
                        .map_err(fail)?
                        .is_empty() =>
            {
                // The run stopped before its plan was kept (a full disk, a kill), so it sent
                // nothing: there is nothing to fold, and the next plan covers its rows.
                state
                    .finish_run_without_commit(
                        run.id,
                        RunStatus::Failed,
                        run.counts,
                        Some(
                            "the apply stopped before sending anything: its plan could not be kept",
                        ),
                    )
                    .map_err(fail)?;
                continue;
            }
            Err(e) => return Err(fail(e)),
        };
        let plan: SyncPlan = crate::run_plan::decode(&stored).map_err(|e| {
            vec![Diagnostic::error(
                "state::corrupt",
                format!("the saved plan of run {} cannot be read: {e}", run.id),
            )]
        })?;
        // Interrupted on another machine: the shared state kept the run's change files.
        let plan = match crate::run_plan::missing_part(&plan) {
            Some(_) => {
                let dir = project
                    .state_dir
                    .join("runs")
                    .join(format!("{}-{sync}", run.plan_id));
                match state.restore_run_files(run.id, &dir).map_err(fail)? {
                    Some(parts) => SyncPlan {
                        changes: engine_plan::ChangeSet::from_files(parts, plan.changes.len()),
                        ..plan
                    },
                    None => plan,
                }
            }
            None => plan,
        };
        if let Some(part) = crate::run_plan::missing_part(&plan) {
            return Err(vec![state_error(engine_state::StateError::Corrupt {
                file: part.to_path_buf(),
                message: format!(
                    "run {} of sync `{sync}` was interrupted and its planned changes are missing, so it cannot be recovered",
                    run.id
                ),
            })]);
        }
        // Only rows of batches in flight when the run died are unanswered: few.
        let mut unanswered: Vec<JournalRow> = journal_rows(state, run.id, Some(RowState::Sent))
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        let generation = state.generation(sync).map_err(fail)?;
        // Rows of a job the destination runs on its own (a Salesforce Bulk job journaled
        // before its upload) are answered by finishing that job, never by sending them again:
        // their outcomes go into the journal as if the answer had come.
        let mut resumed = false;
        if !unanswered.is_empty() && generation.generation == run.base_generation {
            let connection = registry.connect(project, sync)?;
            // The look-up cache gives a resumed job's rows the matches they were sent with.
            let lookups =
                engine_state::LookupStore::open(&project.state_dir, crate::lookups::LOOKUP_TTL)
                    .map_err(fail)?;
            connection.use_lookup_cache(std::sync::Arc::new(crate::lookups::StateLookups(lookups)));
            let keys: Vec<String> = unanswered.iter().map(|r| r.key.clone()).collect();
            let answered = connection
                .resume_unanswered(&plan, run.id, state, &keys)
                .await
                .map_err(|d| {
                    vec![d.note(format!(
                        "run {} of sync `{sync}` stopped while a Bulk job was running; run `engine apply` again to finish it",
                        run.id
                    ))]
                })?;
            if !answered.is_empty() {
                resumed = true;
                state.journal_outcomes(run.id, &answered).map_err(fail)?;
                unanswered = journal_rows(state, run.id, Some(RowState::Sent))
                    .collect::<Result<_, _>>()
                    .map_err(fail)?;
            }
        }
        let mut found = Reconciled::default();
        if !unanswered.is_empty() && generation.generation == run.base_generation {
            let connection = registry.connect(project, sync)?;
            let keys: Vec<String> = unanswered.iter().map(|r| r.key.clone()).collect();
            let started = chrono::DateTime::parse_from_rfc3339(&run.started_at)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc));
            found = unanswered_rows(connection.as_ref(), &plan, &keys, started)
                .await
                .map_err(|d| {
                    vec![d.note(format!(
                        "run {} of sync `{sync}` stopped with a batch in flight; its rows must be read back before planning",
                        run.id
                    ))]
                })?;
        }
        let reconciled: Vec<JournalRow> = unanswered
            .iter()
            .filter_map(|row| {
                let id = found.succeeded.get(&row.key)?;
                Some(JournalRow {
                    state: RowState::Succeeded,
                    destination_id: id.clone(),
                    message: None,
                    ..row.clone()
                })
            })
            .collect();
        let journal = state.journal_counts(run.id).map_err(fail)?;
        let from_journal = journal.get(None, RowState::Succeeded) as usize;
        let counts = RunCounts {
            succeeded: (from_journal + reconciled.len()) as u64,
            rejected: journal.get(None, RowState::Rejected),
            pending: journal.get(None, RowState::GaveUp)
                + (unanswered.len() - reconciled.len()) as u64,
            ..run.counts
        };
        let message = "the apply stopped unexpectedly; its journal was folded into the state by the next apply";
        if generation.generation != run.base_generation {
            state
                .finish_run_without_commit(run.id, RunStatus::Recovered, counts, Some(message))
                .map_err(fail)?;
            crate::run_plan::discard(&plan);
            continue;
        }
        let held = held_fingerprints(state, &plan, run.id)?;
        fold_and_commit(
            project,
            state,
            &plan,
            Outcome {
                run_id: run.id,
                status: RunStatus::Recovered,
                counts,
                message: Some(message),
                held: &held,
                reconciled: &reconciled,
                observed: &found.observed,
            },
        )
        .await?;
        crate::run_plan::discard(&plan);
        if resumed {
            // The resumed jobs' outcomes are committed: their ids can go.
            if let Ok(jobs) = state.bulk_jobs() {
                let _ = jobs.forget_run(run.id);
            }
        }
        reporter.report(Event::Recovered(&Recovered {
            sync,
            run_id: run.id,
            from_journal,
            unanswered: unanswered.len(),
            found_written: found.written,
            read_back: reconciled.len() - found.written,
        }));
    }
    Ok(())
}

/// What the destination showed about the unanswered rows of a crashed run.
#[derive(Debug, Default)]
pub(crate) struct Reconciled {
    /// Rows that turned out written, with their record id.
    pub succeeded: HashMap<String, Option<String>>,
    /// Rows whose record holds other values than planned: the values it really holds
    /// (aligned with the plan's properties), replacing the plan's in the fold.
    pub observed: HashMap<String, Vec<Option<String>>>,
    /// How many rows held exactly what was planned (the batch was applied).
    pub written: usize,
}

/// Reads the records of `unanswered` rows of `plan` and classifies them.
pub(crate) async fn unanswered_rows(
    destination: &dyn Connection,
    plan: &SyncPlan,
    unanswered: &[String],
    run_started: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Reconciled, Diagnostic> {
    let reader = Found { plan, run_started };
    let wanted: std::collections::HashSet<&str> = unanswered.iter().map(String::as_str).collect();
    let mut unanswered_changes: Vec<RowChange> = Vec::new();
    plan.changes
        .for_each(|c| {
            if wanted.contains(c.key.as_str()) {
                unanswered_changes.push(c.clone());
            }
            Ok(())
        })
        .map_err(|e| crate::commit::changes_unreadable(&plan.sync, &e))?;
    let changes: HashMap<&str, &RowChange> = unanswered_changes
        .iter()
        .map(|c| (c.key.as_str(), c))
        .collect();
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
            read_with_backoff(|| destination.read_records(RecordRef::Id, &ids, &plan.properties))
                .await?;
        let found: HashMap<&str, &Record> = records.iter().map(|r| (r.id.as_str(), r)).collect();
        for (id, change) in &by_id {
            match found.get(id.as_str()) {
                // A delete happened when its record is gone.
                None if is_delete(plan, change) => {
                    out.succeeded.insert(change.key.clone(), Some(id.clone()));
                    out.written += 1;
                }
                None => {}
                Some(record) => reader.classify(change, record, &mut out),
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
                reader.classify(change, record, &mut out);
            }
        }
    }
    Ok(out)
}

/// Reads records by match value (batched, retried like a batch) and indexes them by the
/// match value as the destination compares it. Shared by recovery and `engine state rebuild`.
pub(crate) async fn records_by_match_value(
    destination: &dyn Connection,
    values: &[String],
    properties: &[String],
    match_property: &str,
    case_insensitive: bool,
) -> Result<HashMap<String, Record>, Diagnostic> {
    let records =
        read_with_backoff(|| destination.read_records(RecordRef::MatchValue, values, properties))
            .await?;
    Ok(records
        .into_iter()
        .filter_map(|r| {
            let value = r.properties.get(match_property)?;
            Some((match_key(value, case_insensitive), r))
        })
        .collect())
}

/// True when the change deletes its record (`on_remove: delete`).
fn is_delete(plan: &SyncPlan, change: &RowChange) -> bool {
    change.action == Action::Remove && plan.on_remove == RemoveBehaviour::Delete
}

/// How far before a run's start a record may say it was created and still be the run's: the
/// engine's clock and the destination's may differ by this much.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// What recovery knows when it reads a record back.
struct Found<'a> {
    plan: &'a SyncPlan,
    /// When the crashed run started.
    run_started: Option<chrono::DateTime<chrono::Utc>>,
}

impl Found<'_> {
    /// True when the crashed run created `record` for `change`: the destination created it
    /// after the run started, and it holds every value the plan sent. A record that existed
    /// before (an insert skips it, an upsert updates it) fails the first test; one made at the
    /// same moment by someone else, the second.
    fn created_by_run(&self, change: &RowChange, record: &Record) -> bool {
        let created = record
            .created_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        let (Some(created), Some(started)) = (created, self.run_started) else {
            return false;
        };
        created >= started - CLOCK_SKEW
            && change
                .fields
                .iter()
                .filter(|f| !is_association(&f.property))
                .all(|f| holds(self.plan, record, &f.property, f.after.as_deref()))
    }

    /// Decides what one found record says about its row.
    fn classify(&self, change: &RowChange, record: &Record, out: &mut Reconciled) {
        let plan = self.plan;
        let created_by_run = change.action == Action::Create && self.created_by_run(change, record);
        match change.action {
            // The record is still there: the delete did not happen and is planned again.
            Action::Remove if is_delete(plan, change) => {}
            // In insert mode a found record may be one that existed before the create was
            // sent: the row is done, but the record is not taken as the sync's (a later delete
            // must never reach a record the sync did not create).
            Action::Create if plan.mode == WriteMode::Insert && !created_by_run => {
                out.succeeded.insert(change.key.clone(), None);
                out.written += 1;
            }
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
                    .all(|f| holds(plan, record, &f.property, f.after.as_deref()));
                out.succeeded
                    .insert(change.key.clone(), Some(record.id.clone()));
                if all_held {
                    out.written += 1;
                    return;
                }
                let actual: BTreeMap<&str, &str> = record
                    .properties
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let planned: HashMap<&str, Option<&str>> = change
                    .fields
                    .iter()
                    .map(|f| (f.property.as_str(), f.after.as_deref()))
                    .collect();
                // Links are not properties a read returns: those of a record the run created
                // are owed (made by the next apply, `when: created` ones too); others are taken
                // as not made, and sent again (making a link twice changes nothing).
                let observed = plan
                    .properties
                    .iter()
                    .map(|p| match planned.get(p.as_str()) {
                        Some(Some(_)) if is_association(p) && created_by_run => {
                            Some(LINKS_OWED.to_string())
                        }
                        _ if is_association(p) => None,
                        _ => actual.get(p.as_str()).map(|v| v.to_string()),
                    })
                    .collect();
                out.observed.insert(change.key.clone(), observed);
            }
        }
    }
}

/// True when `record` holds what the plan wanted for `property`.
fn holds(plan: &SyncPlan, record: &Record, property: &str, wanted: Option<&str>) -> bool {
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
}
