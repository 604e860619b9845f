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

/// A plan's steps as a stream: the changes are read once for the rows that send nothing (and
/// to find the groups), then once per group of operations (update waves, upserts, clears), a
/// chunk at a time, so only one chunk and one batch are held whatever the plan's size.
pub struct StepStream<'p> {
    plan: &'p SyncPlan,
    batch_size: usize,
    /// Planned creates, updates and removes: complete once the stream has handed out its first
    /// batch (the first pass counts them).
    pub counts: RunCounts,
    /// How many operations the batches hold, complete when [`StepStream::counts`] is.
    pub operations: u64,
    /// The first pass: hands out invalid and no-request rows a chunk at a time and finds the
    /// groups; None once done.
    head: Option<engine_plan::ChangeChunks<'p>>,
    /// Head steps read but not yet handed out.
    head_ready: std::collections::VecDeque<Step>,
    /// The groups the first pass found.
    found: std::collections::BTreeSet<(u8, u32)>,
    /// The groups still to send, in order (filled when the first pass ends).
    groups: std::vec::IntoIter<(u8, u32)>,
    /// The group being sent and the changes left to read for it.
    current: Option<((u8, u32), engine_plan::ChangeChunks<'p>)>,
    /// Operations of the current group read but not yet batched.
    ready: std::collections::VecDeque<PlannedOperation>,
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
}

/// Opens `plan`'s steps as a stream, with at most `batch_size` operations per batch (at least
/// 1). Nothing is read until the first step is asked for.
pub fn stream_steps(plan: &SyncPlan, batch_size: usize) -> std::io::Result<StepStream<'_>> {
    Ok(StepStream {
        plan,
        batch_size: batch_size.max(1),
        counts: RunCounts::default(),
        operations: 0,
        head: Some(plan.changes.chunks()),
        head_ready: std::collections::VecDeque::new(),
        found: std::collections::BTreeSet::new(),
        groups: Vec::new().into_iter(),
        current: None,
        ready: std::collections::VecDeque::new(),
        barrier_due: false,
        error: None,
    })
}

impl Iterator for StepStream<'_> {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        while let Some(chunks) = &mut self.head {
            if let Some(step) = self.head_ready.pop_front() {
                return Some(step);
            }
            match chunks.next() {
                Some(Ok(chunk)) => {
                    let mut out = PlannedOperations::default();
                    for change in &chunk {
                        plan_change(self.plan, change, &mut out);
                    }
                    self.counts.planned_create += out.counts.planned_create;
                    self.counts.planned_update += out.counts.planned_update;
                    self.counts.planned_remove += out.counts.planned_remove;
                    self.operations += out.operations.len() as u64;
                    self.found.extend(out.operations.iter().map(group));
                    if !out.invalid.is_empty() {
                        self.head_ready.push_back(Step::Invalid(out.invalid));
                    }
                    if !out.no_request.is_empty() {
                        self.head_ready.push_back(Step::NoRequest(out.no_request));
                    }
                }
                Some(Err(e)) => {
                    self.error = Some(e);
                    return None;
                }
                None => {
                    self.head = None;
                    self.groups = std::mem::take(&mut self.found)
                        .into_iter()
                        .collect::<Vec<_>>()
                        .into_iter();
                }
            }
        }
        loop {
            if self.error.is_some() {
                return None;
            }
            let Some((this, chunks)) = &mut self.current else {
                let next = self.groups.next()?;
                self.current = Some((next, self.plan.changes.chunks()));
                continue;
            };
            if self.ready.len() < self.batch_size {
                match chunks.next() {
                    Some(Ok(chunk)) => {
                        let this = *this;
                        let mut out = PlannedOperations::default();
                        for change in &chunk {
                            plan_change(self.plan, change, &mut out);
                        }
                        self.ready
                            .extend(out.operations.into_iter().filter(|o| group(o) == this));
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
            return Some(Step::Batch(self.ready.drain(..take).collect()));
        }
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
