//! What the lifecycle reports while it works, for the caller to show (the library prints
//! nothing itself).

use std::path::Path;

use engine_plan::Plan;

use crate::apply::SyncApplied;

/// Something that happened during a plan, an apply or a rebuild.
#[derive(Debug)]
pub enum Event<'a> {
    /// A sync has a run that has not finished: it is running, or it was interrupted (the next
    /// apply recovers it first).
    UnfinishedRun {
        /// The sync.
        sync: &'a str,
        /// The run.
        run_id: i64,
    },
    /// Planning one sync started: the model is read and diffed.
    PlanningSync {
        /// The sync.
        sync: &'a str,
    },
    /// Where planning one sync has got to.
    PlanStage {
        /// The sync.
        sync: &'a str,
        /// The stage.
        stage: engine_diff::PlanStage,
    },
    /// A crashed run was folded into the state.
    Recovered(&'a Recovered<'a>),
    /// The plan an apply made itself (no saved plan), before anything is sent.
    Planned(&'a Plan),
    /// Applying one sync's changes started.
    ApplyingSync {
        /// The sync.
        sync: &'a str,
        /// Rows to send.
        rows: u64,
    },
    /// One sync's apply finished.
    Applied(&'a SyncApplied),
    /// The state database was lost and a new state was started by a rebuild.
    StateRestarted {
        /// Where the old snapshots were kept.
        aside: &'a Path,
    },
}

/// A recovered run, in figures.
#[derive(Debug)]
pub struct Recovered<'a> {
    /// The sync.
    pub sync: &'a str,
    /// The run.
    pub run_id: i64,
    /// Rows its journal recorded as written.
    pub from_journal: usize,
    /// Rows whose batch was sent but never answered.
    pub unanswered: usize,
    /// Of those, rows found written exactly as planned.
    pub found_written: usize,
    /// Of those, rows whose record holds something else, recorded as it is.
    pub read_back: usize,
}

/// Receives the lifecycle's events.
pub trait Reporter: Send + Sync {
    /// Called for each event, in order.
    fn report(&self, event: Event<'_>);
}

/// A reporter that ignores everything (for embedders and tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl Reporter for NoReporter {
    fn report(&self, _event: Event<'_>) {}
}
