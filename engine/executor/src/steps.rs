//! A plan as the ordered steps the send loop carries out.
//!
//! The send loop ([`crate::execute_steps`]) never looks at a plan: it takes steps one after
//! another, so a plan read from disk can feed it as a stream. Ordering is encoded here, once:
//! updates first, wave by wave (a record gives up a match value before another row's record
//! takes it), then upserts (their match values are free by then), then clears. Batches never
//! mix kinds or waves, and a [`Step::Barrier`] separates two groups: every batch before it is
//! answered, retries included, before any batch after it is sent.

use connector_core::OperationKind;
use engine_plan::{Action, SyncPlan};
use engine_state::RunCounts;

use crate::operations::{
    InvalidRow, PlannedOperation, PlannedOperations, operations_for, plan_change,
};

/// One thing the send loop does, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Rows that succeed without a request (a forgotten remove, an update with nothing to
    /// send), with their plan action: journaled as written.
    NoRequest(Vec<(String, &'static str)>),
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

/// A plan's steps as a stream. A first, cheap pass reads only the changes' actions and waves
/// ([`engine_plan::ChangeSet::outline`]) for the planned counts and the groups; then each group
/// (update waves, upserts, clears) is one pass over the changes, a chunk at a time, handing
/// out that group's batches and, as they come, its rows that send nothing. Only one chunk and
/// one batch are held whatever the plan's size, and a plan with one group (a first backfill)
/// reads its rows once.
pub struct StepStream<'p> {
    plan: &'p SyncPlan,
    batch_size: usize,
    /// Planned creates, updates and removes: complete once the stream has handed out its first
    /// step (the outline counts them).
    pub counts: RunCounts,
    /// How many operations the batches handed out so far hold (all of them once the stream
    /// has ended).
    pub operations: u64,
    /// The groups still to send, in order: None until the outline is read.
    groups: Option<std::vec::IntoIter<(Action, u32)>>,
    /// The group being sent and the changes left to read for it.
    current: Option<((Action, u32), engine_plan::ChangeChunks<'p>)>,
    /// Operations of the current group read but not yet batched.
    ready: std::collections::VecDeque<PlannedOperation>,
    /// Rows that send nothing, read but not yet handed out.
    no_request: std::collections::VecDeque<Step>,
    /// True when a barrier is due before the next group's first batch.
    barrier_due: bool,
    /// A change file that could not be read; the stream ends early and the caller reports it.
    error: Option<std::io::Error>,
}

impl StepStream<'_> {
    /// Why the stream ended early, if it did (the caller must not report the run complete).
    pub fn take_error(&mut self) -> Option<std::io::Error> {
        self.error.take()
    }

    /// Reads the outline: the counts and the groups in sending order.
    fn start(&mut self) -> std::io::Result<()> {
        let outline = self.plan.changes.outline()?;
        self.counts.planned_create = outline.create;
        self.counts.planned_update = outline.update;
        self.counts.planned_remove = outline.remove;
        let mut groups: Vec<(Action, u32)> = outline.groups.into_iter().collect();
        groups.sort_by_key(|(action, wave)| (action_rank(*action), *wave));
        self.groups = Some(groups.into_iter());
        Ok(())
    }
}

/// Opens `plan`'s steps as a stream, with at most `batch_size` operations per batch (at least
/// 1). Nothing is read until the first step is asked for.
pub fn stream_steps(plan: &SyncPlan, batch_size: usize) -> std::io::Result<StepStream<'_>> {
    Ok(StepStream {
        plan,
        batch_size: batch_size.max(1),
        counts: RunCounts::default(),
        operations: 0,
        groups: None,
        current: None,
        ready: std::collections::VecDeque::new(),
        no_request: std::collections::VecDeque::new(),
        barrier_due: false,
        error: None,
    })
}

impl Iterator for StepStream<'_> {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        if self.groups.is_none()
            && let Err(e) = self.start()
        {
            self.error = Some(e);
        }
        loop {
            if self.error.is_some() {
                return None;
            }
            if let Some(step) = self.no_request.pop_front() {
                return Some(step);
            }
            let Some(((action, wave), chunks)) = &mut self.current else {
                let next = self.groups.as_mut()?.next()?;
                // An upsert is built from the full row alone: its field lists are not read.
                let chunks = match next.0 {
                    Action::Create => self.plan.changes.chunks_without_fields(),
                    Action::Update | Action::Remove => self.plan.changes.chunks(),
                };
                self.current = Some((next, chunks));
                continue;
            };
            if self.ready.len() < self.batch_size {
                match chunks.next() {
                    Some(Ok(chunk)) => {
                        let mut out = PlannedOperations::default();
                        for change in chunk
                            .into_iter()
                            .filter(|c| c.action == *action && c.wave == *wave)
                        {
                            plan_change(self.plan, change, &mut out);
                        }
                        self.ready.extend(out.operations);
                        if !out.invalid.is_empty() {
                            self.no_request.push_back(Step::Invalid(out.invalid));
                        }
                        if !out.no_request.is_empty() {
                            self.no_request.push_back(Step::NoRequest(out.no_request));
                        }
                        continue;
                    }
                    Some(Err(e)) => {
                        self.error = Some(e);
                        return None;
                    }
                    None => {
                        if self.ready.is_empty() {
                            self.current = None;
                            self.barrier_due = true;
                            continue;
                        }
                    }
                }
            }
            if self.barrier_due {
                self.barrier_due = false;
                return Some(Step::Barrier);
            }
            let take = self.ready.len().min(self.batch_size);
            self.operations += take as u64;
            return Some(Step::Batch(self.ready.drain(..take).collect()));
        }
    }
}

/// The sending order of a plan action's operations: updates, then upserts (or updates of
/// matched records), then clears (or deletes).
fn action_rank(action: Action) -> u8 {
    match action {
        Action::Update => 0,
        Action::Create => 1,
        Action::Remove => 2,
    }
}

fn group(p: &PlannedOperation) -> (u8, u32) {
    (kind_rank(&p.operation.kind), p.wave)
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
        OperationKind::Upsert | OperationKind::UpdateMatched | OperationKind::Create => 1,
        OperationKind::Clear | OperationKind::Archive => 2,
    }
}
