//! Turns a plan's row changes into connector operations.
//!
//! An update sends only the properties that changed; a null sends `""` (clear) only where the
//! mapping says `on_null: clear`, and is otherwise left out so the destination keeps its value.

use connector_core::association::LINKS_OWED;
use connector_core::{AssociationChange, Operation, OperationKind, is_association};
use engine_plan::{Action, RemoveBehaviour, RowChange, RowsAre, SyncPlan, WriteMode};
use engine_state::RunCounts;

/// A plan as operations, plus the rows that need no request and those that cannot be sent.
#[derive(Debug, Default)]
pub struct PlannedOperations {
    /// Operations to send, in plan order.
    pub operations: Vec<PlannedOperation>,
    /// Rows that succeed without a request (forgotten removes, updates with nothing to
    /// send): key and plan action.
    pub no_request: Vec<(String, &'static str)>,
    /// Rows that cannot be sent (e.g. a null match value); they stay pending.
    pub invalid: Vec<InvalidRow>,
    /// Planned counts.
    pub counts: RunCounts,
}

/// One operation with what the journal and the send order need to know of its plan change,
/// so that sending never has to look the change up in the plan again.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedOperation {
    /// The plan action the journal records: `create`, `update` or `remove`.
    pub action: &'static str,
    /// The plan's sending wave (see `RowChange::wave`); batches never mix waves.
    pub wave: u32,
    /// What the connector sends.
    pub operation: Operation,
}

/// A row that cannot be sent, journaled as given up with why.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidRow {
    /// The model row's key.
    pub key: String,
    /// The plan action the journal records.
    pub action: &'static str,
    /// Why it cannot be sent; it stays pending with this message.
    pub message: String,
}

/// The name the journal and run history give a plan action.
pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Remove => "remove",
    }
}

/// An association's entry in an operation: the links to add and remove between the targets
/// `before` and `after` (removals only with `remove_stale`, which `clear_on_null` marks);
/// `None` when there is nothing to send.
fn association(
    property: &str,
    before: Option<&str>,
    after: Option<&str>,
    remove_stale: bool,
) -> Option<(String, String)> {
    let change = AssociationChange::between(before, after, remove_stale);
    (!change.is_empty()).then(|| (property.to_string(), change.encode()))
}

/// Builds the operations for a sync plan, reading its changes a chunk at a time.
pub fn operations_for(plan: &SyncPlan) -> std::io::Result<PlannedOperations> {
    let mut out = PlannedOperations::default();
    plan.changes.for_each(|change| {
        plan_change(plan, change.clone(), &mut out);
        Ok(())
    })?;
    Ok(out)
}

/// Adds one change's operation (or its no-request or invalid row) to `out`. The change is
/// taken by value: its key and values move into the operation instead of being copied.
pub(crate) fn plan_change(plan: &SyncPlan, change: RowChange, out: &mut PlannedOperations) {
    let clears = |property: &str| plan.clear_on_null.iter().any(|p| p == property);
    let action = action_name(change.action);
    let wave = change.wave;
    let planned = |operation| PlannedOperation {
        action,
        wave,
        operation,
    };
    let RowChange {
        key,
        destination_id,
        fields,
        values,
        ..
    } = change;
    let invalid = |key: String, message: String| InvalidRow {
        key,
        action,
        message,
    };
    match change.action {
        Action::Create => {
            out.counts.planned_create += 1;
            let values = values.unwrap_or_default();
            let match_value = values.first().cloned().flatten();
            let Some(match_value) = match_value.filter(|v| !v.is_empty()) else {
                out.invalid.push(invalid(
                    key,
                    format!(
                        "the match property `{}` is null or empty, so the row cannot be written",
                        plan.match_property
                    ),
                ));
                return;
            };
            let properties = plan
                .properties
                .iter()
                .zip(values)
                .filter_map(|(p, v)| match v {
                    Some(v) if is_association(p) => association(p, None, Some(&v), false),
                    Some(v) => Some((p.clone(), v)),
                    None if clears(p) && !is_association(p) => Some((p.clone(), String::new())),
                    None => None,
                })
                .collect();
            // In update mode a new row updates the record its match value finds, never
            // creating one.
            let kind = match plan.mode {
                WriteMode::Upsert => OperationKind::Upsert,
                WriteMode::Update => OperationKind::UpdateMatched,
                WriteMode::Insert => OperationKind::Create,
            };
            out.operations.push(planned(Operation {
                key,
                kind,
                destination_id: None,
                match_value: Some(match_value),
                properties,
            }));
        }
        // Insert mode never changes a record: the state takes the row's new values, except
        // for links owed to a record the sync created (a crash came between the record and
        // its links). A list sync's rows are memberships: a changed match value moves one.
        Action::Update
            if plan.mode == WriteMode::Insert && plan.rows_are != RowsAre::Memberships =>
        {
            out.counts.planned_update += 1;
            let owed: Vec<(String, String)> = fields
                .into_iter()
                .filter(|f| is_association(&f.property) && f.before.as_deref() == Some(LINKS_OWED))
                .filter_map(|f| {
                    association(&f.property, f.before.as_deref(), f.after.as_deref(), false)
                })
                .collect();
            match destination_id {
                Some(id) if !owed.is_empty() => out.operations.push(planned(Operation {
                    key,
                    kind: OperationKind::Update,
                    destination_id: Some(id),
                    match_value: None,
                    properties: owed,
                })),
                _ => out.no_request.push((key, action)),
            }
        }
        Action::Update => {
            out.counts.planned_update += 1;
            let properties: Vec<(String, String)> = fields
                .into_iter()
                .filter_map(|f| match f.after {
                    _ if is_association(&f.property) => association(
                        &f.property,
                        f.before.as_deref(),
                        f.after.as_deref(),
                        clears(&f.property),
                    ),
                    Some(v) => Some((f.property, v)),
                    None if clears(&f.property) => Some((f.property, String::new())),
                    None => None,
                })
                .collect();
            if properties.is_empty() {
                out.no_request.push((key, action));
                return;
            }
            match destination_id {
                Some(id) => out.operations.push(planned(Operation {
                    key,
                    kind: OperationKind::Update,
                    destination_id: Some(id),
                    match_value: None,
                    properties,
                })),
                None => out.invalid.push(invalid(
                    key,
                    "no destination id is recorded for this row; it will be upserted after the state is repaired".into(),
                )),
            }
        }
        Action::Remove => {
            out.counts.planned_remove += 1;
            let properties: Vec<(String, String)> = fields
                .into_iter()
                .filter_map(|f| {
                    if is_association(&f.property) {
                        association(&f.property, f.before.as_deref(), None, clears(&f.property))
                    } else {
                        Some((f.property, String::new()))
                    }
                })
                .collect();
            match (plan.on_remove, destination_id) {
                (RemoveBehaviour::ClearFields, Some(id)) if !properties.is_empty() => {
                    out.operations.push(planned(Operation {
                        key,
                        kind: OperationKind::Clear,
                        destination_id: Some(id),
                        match_value: None,
                        properties,
                    }))
                }
                (RemoveBehaviour::Delete, Some(id)) => out.operations.push(planned(Operation {
                    key,
                    kind: OperationKind::Archive,
                    destination_id: Some(id),
                    match_value: None,
                    properties: Vec::new(),
                })),
                _ => out.no_request.push((key, action)),
            }
        }
    }
}
