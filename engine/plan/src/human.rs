//! The human view of a plan, Terraform-style, rendered from the JSON structs.

use std::fmt::Write as _;

use connector_core::{AssociationChange, is_association};

use crate::{Action, FieldChange, Plan, RemoveBehaviour, RowChange, RowsAre, SyncPlan, WriteMode};

/// Knobs for the human view.
#[derive(Debug, Clone, Copy)]
pub struct HumanOptions {
    /// Rows shown per sync before the rest is summarised as "… and N more".
    pub max_rows: usize,
}

impl Default for HumanOptions {
    fn default() -> Self {
        Self { max_rows: 20 }
    }
}

/// Renders a plan for people: `+` create, `~` update, `-` remove, per-field before → after.
pub fn render_human(plan: &Plan, options: HumanOptions) -> String {
    let mut out = String::new();
    for sync in &plan.syncs {
        render_sync(&mut out, sync, options);
    }
    let (create, update, remove) = plan.syncs.iter().fold((0, 0, 0), |acc, s| {
        (
            acc.0 + s.summary.create,
            acc.1 + s.summary.update,
            acc.2 + s.summary.remove,
        )
    });
    let held: u64 = plan.syncs.iter().map(|s| s.summary.held).sum();
    let left_out = plan.left_out();
    if create + update + remove == 0 && held + left_out > 0 {
        let mut why = Vec::new();
        if held > 0 {
            why.push(format!("{held} row(s) are held back"));
        }
        if left_out > 0 {
            why.push(format!(
                "{left_out} row(s) are left out for values that do not fit their properties"
            ));
        }
        let _ = writeln!(
            out,
            "No changes to send, but {}: the destination does not hold them as the model says.",
            why.join(" and ")
        );
    } else if create + update + remove == 0 {
        let _ = writeln!(out, "No changes. Every destination matches its model.");
    } else {
        let _ = writeln!(
            out,
            "Plan: {create} to create, {update} to update, {remove} to remove.{}",
            if left_out > 0 {
                format!(
                    " {left_out} row(s) are left out for values that do not fit their properties."
                )
            } else {
                String::new()
            }
        );
    }
    out
}

fn render_sync(out: &mut String, sync: &SyncPlan, options: HumanOptions) {
    let s = &sync.summary;
    let _ = writeln!(
        out,
        "sync `{}`: model `{}` → {} `{}` (generation {})",
        sync.sync, sync.model, sync.destination, sync.object, sync.base_generation
    );
    if sync.changes.is_empty() && sync.skipped.is_empty() && sync.held.is_empty() {
        let _ = writeln!(out, "  no changes ({} rows unchanged)\n", s.unchanged);
        return;
    }
    match sync.changes.first(options.max_rows) {
        Ok(shown) => {
            for change in &shown {
                render_change(out, sync, change);
            }
        }
        Err(e) => {
            let _ = writeln!(out, "  (cannot read the planned changes: {e})");
        }
    }
    let hidden = sync.changes.len().saturating_sub(options.max_rows as u64);
    if hidden > 0 {
        let _ = writeln!(
            out,
            "  … and {hidden} more changes (see `engine plan --json`)"
        );
    }
    for skipped in sync.skipped.iter().take(options.max_rows) {
        let _ = writeln!(
            out,
            "  ! skip {}{}: {}",
            quote(&skipped.key),
            skipped
                .match_value
                .as_deref()
                .map(|v| format!(" ({}: {})", sync.match_property, quote(v)))
                .unwrap_or_default(),
            skipped.reason
        );
    }
    if sync.skipped.len() > options.max_rows {
        let _ = writeln!(
            out,
            "  … and {} more skipped rows (see `engine plan --json`)",
            sync.skipped.len() - options.max_rows
        );
    }
    for held in sync.held.iter().take(options.max_rows) {
        let _ = writeln!(
            out,
            "  ! hold {}: rejected last time with the same data: {}",
            quote(&held.key),
            held.message
        );
    }
    if !sync.held.is_empty() {
        let _ = writeln!(
            out,
            "    ({} held row(s) are sent again when their data changes, or with `engine apply --retry-failed`)",
            sync.held.len()
        );
    }
    for guard in sync.guards.iter().filter(|g| g.breached) {
        let _ = writeln!(
            out,
            "  ! guard `{}` breached: {} is over the limit {}; apply will refuse unless run with `--override-guards`",
            guard.guard,
            trim_number(guard.actual),
            trim_number(guard.limit)
        );
    }
    let _ = writeln!(
        out,
        "  {} to create, {} to update, {} to remove, {} unchanged{}{}{}\n",
        s.create,
        s.update,
        s.remove,
        s.unchanged,
        if s.retried > 0 {
            format!(" ({} retried after a failure)", s.retried)
        } else {
            String::new()
        },
        if s.skipped > 0 {
            format!(", {} skipped", s.skipped)
        } else {
            String::new()
        },
        if s.held > 0 {
            format!(", {} held back", s.held)
        } else {
            String::new()
        }
    );
}

fn render_change(out: &mut String, sync: &SyncPlan, change: &RowChange) {
    let id = change
        .destination_id
        .as_deref()
        .map(|id| format!(" (id {id})"))
        .unwrap_or_default();
    let (sign, verb) = match change.action {
        Action::Create => ('+', "create"),
        Action::Update => ('~', "update"),
        Action::Remove => ('-', "remove"),
    };
    let events = sync.rows_are == RowsAre::Events;
    let list = sync.rows_are == RowsAre::Memberships;
    let (sign, verb) = match change.action {
        Action::Create if events => ('+', "send event for"),
        Action::Create if list => ('+', "add to the list"),
        Action::Remove if list && sync.on_remove == RemoveBehaviour::Delete => {
            ('-', "remove from the list")
        }
        _ => (sign, verb),
    };
    let tail = match (change.action, sync.on_remove, sync.mode) {
        _ if events && change.action != Action::Create => ": nothing sent (an event is sent once)",
        (Action::Create, _, _) if events || list => "",
        (Action::Update, RemoveBehaviour::Delete, _) if list => {
            ": the new contact joins the list, the old one leaves"
        }
        (Action::Update, _, _) if list => ": the new contact joins the list, the old one stays",
        (Action::Remove, RemoveBehaviour::Delete, _) if list => "",
        (Action::Remove, _, _) if list => ": the contact stays in the list",
        (Action::Create, _, WriteMode::Update) => {
            ": update the record matched on its match value (never created)"
        }
        (Action::Create, _, WriteMode::Insert) => {
            ": skipped if a record holds its match value already"
        }
        (Action::Update, _, WriteMode::Insert) => ": not sent (mode: insert changes no record)",
        (Action::Remove, RemoveBehaviour::ClearFields, _) => ": clear fields",
        (Action::Remove, RemoveBehaviour::Nothing, _) => ": leave the record, forget the row",
        (Action::Remove, RemoveBehaviour::Delete, _) => ": delete the record",
        _ => "",
    };
    let owner = match (&change.rekeyed_from, &change.vacated_by) {
        (Some(from), _) => format!(" (re-keyed: takes over the record of row {})", quote(from)),
        (_, Some(moved)) => format!(
            " (its record was taken over; the record row {} left is handled instead)",
            quote(moved)
        ),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "  {sign} {verb} {}{id}{owner}{tail}",
        quote(&change.key)
    );
    if let Some(error) = &change.last_error {
        let _ = writeln!(out, "      # retry: last attempt failed: {error}");
    }
    let width = change
        .fields
        .iter()
        .map(|f| f.property.chars().count())
        .max()
        .unwrap_or(0);
    for field in &change.fields {
        if is_association(&field.property) {
            render_links(out, sync, change.action, field);
            continue;
        }
        let name = format!("{}:", field.property);
        let value = match change.action {
            Action::Create => show(field.after.as_deref()),
            Action::Update => {
                let kept = field.after.is_none() && !sync.clear_on_null.contains(&field.property);
                format!(
                    "{} → {}{}",
                    show(field.before.as_deref()),
                    show(field.after.as_deref()),
                    if kept {
                        " (kept in the destination)"
                    } else {
                        ""
                    }
                )
            }
            Action::Remove => format!("{} → \"\"", show(field.before.as_deref())),
        };
        let _ = writeln!(out, "      {name:<w$} {value}", w = width + 1);
    }
}

/// An association's change as links made and removed: `+ associate companies 901 (label:
/// Primary)`. Links are removed only with `remove_stale` (which marks the association as
/// cleared on null); otherwise old links are kept and the plan says so.
fn render_links(out: &mut String, sync: &SyncPlan, action: Action, field: &FieldChange) {
    let name = field
        .property
        .trim_start_matches(connector_core::association::ASSOCIATION_PREFIX);
    let remove_stale = sync.clear_on_null.contains(&field.property);
    let after = match action {
        Action::Remove => None,
        _ => field.after.as_deref(),
    };
    let change = AssociationChange::between(field.before.as_deref(), after, remove_stale);
    for to in &change.unlink {
        let _ = writeln!(out, "      - unassociate {name} {to}");
    }
    for target in &change.remove {
        let _ = writeln!(out, "      - unassociate {name} {}", target.describe());
    }
    let owed = if change.owed {
        " (owed: an apply that stopped created the record but not its links)"
    } else {
        ""
    };
    for target in &change.add {
        let _ = writeln!(out, "      + associate {name} {}{owed}", target.describe());
    }
    if !remove_stale {
        let kept = AssociationChange::between(after, field.before.as_deref(), true).add;
        if !kept.is_empty() {
            let shown: Vec<String> = kept.iter().map(|t| t.describe()).collect();
            let _ = writeln!(
                out,
                "      (links kept: {name} {}; set `remove_stale: true` to remove them)",
                shown.join(", ")
            );
        }
    }
}

fn show(value: Option<&str>) -> String {
    match value {
        Some(v) => quote(v),
        None => "null".to_string(),
    }
}

fn quote(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("\"{value}\""))
}

fn trim_number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}
