//! A plan as the ordered steps the send loop carries out.
//!
//! The send loop ([`crate::execute_steps`]) never looks at a plan: it takes steps one after
//! another, so a plan read from disk can feed it as a stream. Ordering is encoded here, once:
//! updates first, wave by wave (a record gives up a match value before another row's record
//! takes it), then upserts (their match values are free by then), then clears. Batches never
//! mix kinds or waves, and a [`Step::Barrier`] separates two groups: every batch before it is
//! answered, retries included, before any batch after it is sent.

use connector_core::OperationKind;
use engine_plan::SyncPlan;
use engine_state::RunCounts;

use crate::operations::{InvalidRow, PlannedOperation, operations_for};

/// One thing the send loop does, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Rows that succeed without a request (a forgotten remove, an update with nothing to
    /// send): reported written, not journaled.
    NoRequest(Vec<String>),
    /// Rows that cannot be sent: journaled as given up with their message, left pending.
    Invalid(Vec<InvalidRow>),
    /// One request's operations, all of one kind and one wave; may be in flight alongside
    /// the other batches up to the next barrier.
    Batch(Vec<PlannedOperation>),
    /// Every batch before this one must be answered before any batch after it is sent.
    Barrier,
}

/// A plan's steps, with the counts the run history records before anything is sent.
#[derive(Debug, Default)]
pub struct PlannedSteps {
    /// Planned creates, updates and removes.
    pub counts: RunCounts,
    /// How many operations the batches hold, for the progress bar.
    pub operations: u64,
    /// The steps, in the order they must be carried out.
    pub steps: Vec<Step>,
}

/// Turns `plan` into steps, with at most `batch_size` operations per batch (at least 1). The
/// plan's changes are read a chunk at a time; only their operations are held.
pub fn steps_for(plan: &SyncPlan, batch_size: usize) -> std::io::Result<PlannedSteps> {
    let planned = operations_for(plan)?;
    let batch_size = batch_size.max(1);
    let mut steps = Vec::new();
    if !planned.invalid.is_empty() {
        steps.push(Step::Invalid(planned.invalid));
    }
    if !planned.no_request.is_empty() {
        steps.push(Step::NoRequest(planned.no_request));
    }
    let operations = planned.operations.len() as u64;
    let group = |p: &PlannedOperation| (kind_rank(&p.operation.kind), p.wave);
    let mut ordered = planned.operations;
    // Stable: plan order within a group.
    ordered.sort_by_key(group);
    let mut batch: Vec<PlannedOperation> = Vec::with_capacity(batch_size);
    let mut current = None;
    for operation in ordered {
        let this = group(&operation);
        if current != Some(this) || batch.len() == batch_size {
            if !batch.is_empty() {
                steps.push(Step::Batch(std::mem::take(&mut batch)));
            }
            if current.is_some_and(|c| c != this) {
                steps.push(Step::Barrier);
            }
            current = Some(this);
        }
        batch.push(operation);
    }
    if !batch.is_empty() {
        steps.push(Step::Batch(batch));
    }
    Ok(PlannedSteps {
        counts: planned.counts,
        operations,
        steps,
    })
}

fn kind_rank(kind: &OperationKind) -> u8 {
    match kind {
        OperationKind::Update => 0,
        OperationKind::Upsert => 1,
        OperationKind::Clear => 2,
    }
}
