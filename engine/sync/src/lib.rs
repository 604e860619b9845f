//! The sync lifecycle as a library: everything `engine plan`, `engine apply` and
//! `engine state rebuild` do between parsing arguments and printing results.
//!
//! ```text
//!  load project ─► plan (model ─► diff vs snapshot) ─► guards ─► lock + recover crashed runs
//!                                                                        │
//!   commit generation ◄── fold snapshot ◄── journal ◄── execute (registry's connector) ◄┘
//! ```
//!
//! Destinations are found through one [`Registry`] of connectors keyed by the destination's
//! `type:`, so a new connector, a scheduler or a long-running runner plugs in here without
//! touching the command line. The library prints nothing: what happens along the way is
//! reported as [`Event`]s to a [`Reporter`] the caller supplies, and results are returned as
//! values.

mod apply;
mod commit;
mod disk_full;
mod events;
mod gc;
mod guards;
mod hubspot;
mod lookups;
mod migrate;
mod planning;
mod project;
mod rebuild;
mod recovery;
mod registry;
mod retry;
mod run_plan;
mod salesforce;
mod state;
mod validate;

pub use apply::{ApplyOptions, ApplyOutcome, SyncApplied, apply};
pub use events::{Event, NoReporter, Recovered, Reporter};
pub use gc::gc;
pub use guards::guard_breaches;
pub use migrate::{MigrateTo, Migrated, migrate_state};
pub use planning::{PlanContext, PlanOptions, ProjectPlan, assemble, plan_one, plan_project};
pub use project::{
    WorkDir, engine_options, load_project, model_engine, model_engine_readonly, select_syncs,
    unknown_plan_sync,
};
pub use rebuild::{Rebuilt, commit_rebuild, rebuild};
pub use registry::{Connection, Connector, Registry};
pub use retry::{concurrency_limits, read_with_backoff, retry_policy};
pub use run_plan::decode as decode_run_plan;
pub use state::{check_snapshot, open_local, open_postgres, open_state, state_error};
pub use validate::validate;

/// A failed step: the diagnostics to show; the command exits 1.
pub type Failure = Vec<engine_diag::Diagnostic>;

#[cfg(test)]
mod tests;
