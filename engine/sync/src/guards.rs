//! Guards: a plan that removes or changes more than a sync allows is refused before anything
//! is sent, unless the user overrides it.

use engine_diag::Diagnostic;
use engine_plan::SyncPlan;

/// The breached guards of one sync's plan, as errors.
pub fn guard_breaches(plan: &SyncPlan) -> Vec<Diagnostic> {
    plan.guards
        .iter()
        .filter(|g| g.breached)
        .map(|g| {
            let what = match g.guard.as_str() {
                "max_deletes" => format!("the plan removes {} rows, over `guards.max_deletes` = {}", g.actual, g.limit),
                _ => format!(
                    "the plan changes or removes {:.1}% of the {} synced rows, over `guards.max_change_ratio` = {}",
                    g.actual * 100.0,
                    plan.summary.previous_rows,
                    g.limit
                ),
            };
            Diagnostic::error("apply::guard", format!("sync `{}`: {what}; nothing was sent", plan.sync))
                .at_row(plan.sync.clone(), None, None)
                .hint("review the plan; if the change is intended, run `engine apply --override-guards`")
        })
        .collect()
}
