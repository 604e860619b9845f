//! The plan as a pull-request comment (`engine plan --format markdown`), rendered from the
//! JSON plan's structs.
//!
//! A comment has to fit GitHub's limit (65,536 characters), so the renderer works to a byte
//! budget ([`MARKDOWN_LIMIT`], under the limit with a margin): counts per sync first, then
//! for each sync the first rows of each section (creates, updates, removes, held, skipped),
//! read from the change files a chunk at a time, until either the per-section row count or
//! the budget is reached; every row left out is counted ("… and 1,234 more updates").
//! Nothing is gathered: the whole comment is at most the budget, whatever the plan's size.
//!
//! Every value from the data (keys, values, names, destination messages) goes through
//! [`cell`], which makes it inert text: a row value can never end a table cell, start a
//! table row, open a link, mention someone or inject HTML.

use std::fmt::Write as _;

use engine_diag::Diagnostic;

use crate::{Action, FieldChange, Plan, RemoveBehaviour, RowChange, RowsAre, SyncPlan, WriteMode};

/// The first line of every comment: the CI workflow finds the comment it posted before by
/// it, and updates that one instead of adding another.
pub const COMMENT_MARKER: &str = "<!-- engine-plan -->";

/// The largest comment rendered, in bytes: GitHub refuses comments over 65,536 characters,
/// and a character is at least one byte, so this leaves a margin of 5,536 for anything a CI
/// step adds around it.
pub const MARKDOWN_LIMIT: usize = 60_000;

/// Characters of a value shown before it is cut (`…`); the plan JSON has it whole.
const VALUE_CHARS: usize = 100;

/// Fields shown per create or update row before the rest is counted.
const FIELDS_PER_ROW: usize = 12;

/// Knobs for the markdown comment.
#[derive(Debug, Clone, Copy)]
pub struct MarkdownOptions {
    /// Rows shown per section (creates, updates, removes, held, skipped) of each sync.
    pub max_rows: usize,
    /// The comment's size limit in bytes (at most [`MARKDOWN_LIMIT`] is useful on GitHub).
    pub limit: usize,
}

impl Default for MarkdownOptions {
    fn default() -> Self {
        MarkdownOptions {
            max_rows: 20,
            limit: MARKDOWN_LIMIT,
        }
    }
}

/// Renders a plan as a pull-request comment: counts per sync, then the first rows of each
/// section with field-level before → after, within `options.limit` bytes.
pub fn render_markdown(plan: &Plan, options: MarkdownOptions) -> String {
    let mut out = String::new();
    let (create, update, remove) = plan.syncs.iter().fold((0, 0, 0), |acc, s| {
        (
            acc.0 + s.summary.create,
            acc.1 + s.summary.update,
            acc.2 + s.summary.remove,
        )
    });
    let _ = writeln!(out, "{COMMENT_MARKER}");
    if create + update + remove == 0 {
        let _ = writeln!(out, "### Plan: no changes\n");
    } else {
        let _ = writeln!(
            out,
            "### Plan: {} to create, {} to update, {} to remove\n",
            thousands(create),
            thousands(update),
            thousands(remove)
        );
    }
    let _ = writeln!(
        out,
        "Project {} · plan {} · {} · engine {}\n",
        cell(&plan.project),
        cell(&plan.plan_id),
        cell(&plan.created_at),
        cell(&plan.engine_version)
    );
    let footer = "\n<sub>Rendered by `engine plan --format markdown`; the whole plan: \
                  `engine plan --json`.</sub>\n";
    // Counts may take at most half of the budget, so the rows always get the rest.
    counts_table(&mut out, plan, options.limit / 2);
    guard_warnings(&mut out, plan, options.limit / 2);

    // What every sync's section needs at the least (its heading and a line counting what
    // is not shown): reserved up front, so the rows of one sync never crowd out the next.
    let minimal: Vec<String> = plan.syncs.iter().map(minimal_section).collect();
    let mut reserved: usize = minimal.iter().map(String::len).sum::<usize>() + footer.len();
    for (i, (sync, minimal)) in plan.syncs.iter().zip(&minimal).enumerate() {
        reserved -= minimal.len();
        let room = options.limit.saturating_sub(out.len() + reserved);
        if minimal.len() > room {
            // No room even for this sync's heading: one line says so, if it fits.
            let line = format!(
                "_… and {} more syncs not shown (the comment has reached its size limit); see `engine plan --json`._\n",
                thousands((plan.syncs.len() - i) as u64)
            );
            if out.len() + line.len() + footer.len() <= options.limit {
                out.push_str(&line);
            }
            break;
        }
        let section = sync_section(sync, options.max_rows, room);
        if section.len() <= room {
            out.push_str(&section);
        } else {
            out.push_str(minimal);
        }
    }
    if out.len() + footer.len() <= options.limit {
        out.push_str(footer);
    }
    out
}

/// Renders a failed plan as a comment: the marker, then each diagnostic's code, message and
/// hints, so the pull request shows why there is no plan.
pub fn render_markdown_failure(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{COMMENT_MARKER}");
    let _ = writeln!(out, "### Plan failed\n");
    for diagnostic in diagnostics {
        let line = format!(
            "- {} {}\n",
            cell(&diagnostic.code),
            cell_full(&diagnostic.message)
        );
        let hints: String = diagnostic
            .hints
            .iter()
            .map(|hint| format!("  - hint: {}\n", cell_full(hint)))
            .collect();
        if out.len() + line.len() + hints.len() > MARKDOWN_LIMIT - 200 {
            let _ = writeln!(
                out,
                "- … and more: run `engine validate` to see every problem"
            );
            break;
        }
        out.push_str(&line);
        out.push_str(&hints);
    }
    let _ = writeln!(
        out,
        "\n<sub>Rendered by `engine plan --format markdown`; nothing was planned or sent.</sub>"
    );
    out
}

/// The table of counts, one line per sync, within `limit` bytes of `out`.
fn counts_table(out: &mut String, plan: &Plan, limit: usize) {
    if plan.syncs.is_empty() {
        let _ = writeln!(out, "No sync was planned.\n");
        return;
    }
    let held = plan.syncs.iter().any(|s| s.summary.held > 0);
    let skipped = plan.syncs.iter().any(|s| s.summary.skipped > 0);
    let guards = plan.syncs.iter().any(|s| !s.guards.is_empty());
    let mut header =
        String::from("| sync | to | generation | create | update | remove | unchanged");
    let mut rule = String::from("| --- | --- | ---: | ---: | ---: | ---: | ---:");
    for (on, name, align) in [
        (held, "held", " ---:"),
        (skipped, "skipped", " ---:"),
        (guards, "guards", " ---"),
    ] {
        if on {
            let _ = write!(header, " | {name}");
            let _ = write!(rule, " |{align}");
        }
    }
    let _ = writeln!(out, "{header} |\n{rule} |");
    for (i, sync) in plan.syncs.iter().enumerate() {
        let s = &sync.summary;
        let mut line = format!(
            "| {} | {} {} | {} | {} | {} | {} | {}",
            cell(&sync.sync),
            cell(&sync.destination),
            cell(&sync.object),
            sync.base_generation,
            thousands(s.create),
            thousands(s.update),
            thousands(s.remove),
            thousands(s.unchanged)
        );
        if held {
            let _ = write!(line, " | {}", thousands(s.held));
        }
        if skipped {
            let _ = write!(line, " | {}", thousands(s.skipped));
        }
        if guards {
            let shown: Vec<String> = sync
                .guards
                .iter()
                .map(|g| {
                    format!(
                        "{} {} of {}{}",
                        cell(&g.guard),
                        number(g.actual),
                        number(g.limit),
                        if g.breached {
                            " ⚠️ **breached**"
                        } else {
                            ""
                        }
                    )
                })
                .collect();
            let _ = write!(line, " | {}", shown.join("<br>"));
        }
        line.push_str(" |\n");
        if out.len() + line.len() > limit {
            let _ = writeln!(
                out,
                "| … and {} more syncs | | | | | | |",
                thousands((plan.syncs.len() - i) as u64)
            );
            break;
        }
        out.push_str(&line);
    }
    out.push('\n');
}

/// A warning per breached guard: apply refuses the plan.
fn guard_warnings(out: &mut String, plan: &Plan, limit: usize) {
    let breached: Vec<(&SyncPlan, &crate::GuardCheck)> = plan
        .syncs
        .iter()
        .flat_map(|s| s.guards.iter().filter(|g| g.breached).map(move |g| (s, g)))
        .collect();
    if breached.is_empty() {
        return;
    }
    let _ = writeln!(out, "> [!WARNING]");
    for (sync, guard) in breached {
        let line = format!(
            "> Sync {}: guard {} is breached ({} is over the limit {}); `engine apply` refuses \
             this plan unless run with `--override-guards`.<br>\n",
            cell(&sync.sync),
            cell(&guard.guard),
            number(guard.actual),
            number(guard.limit)
        );
        if out.len() + line.len() > limit {
            let _ = writeln!(out, "> … and more breached guards.");
            break;
        }
        out.push_str(&line);
    }
    out.push('\n');
}

/// A sync's heading and a line saying its rows are not shown: what a sync gets when the
/// budget has no room for its rows.
fn minimal_section(sync: &SyncPlan) -> String {
    let rows = sync.changes.len() + sync.held.len() as u64 + sync.skipped.len() as u64;
    let mut out = heading(sync);
    if rows > 0 {
        let _ = writeln!(
            out,
            "_{} rows not shown (the comment has reached its size limit); see `engine plan --json`._\n",
            thousands(rows)
        );
    }
    out
}

fn heading(sync: &SyncPlan) -> String {
    format!(
        "#### {} → {} {}\n\n",
        cell(&sync.sync),
        cell(&sync.destination),
        cell(&sync.object)
    )
}

/// One sync's section: its heading and, per section, a table of its first rows and a count
/// of the rest; at most `room` bytes unless even the heading and counts do not fit (the
/// caller then uses [`minimal_section`]).
fn sync_section(sync: &SyncPlan, max_rows: usize, room: usize) -> String {
    let mut out = heading(sync);
    if sync.changes.is_empty() && sync.held.is_empty() && sync.skipped.is_empty() {
        let _ = writeln!(
            out,
            "No changes ({} rows unchanged).\n",
            thousands(sync.summary.unchanged)
        );
        return out;
    }
    let totals = match sync.changes.outline() {
        Ok(outline) => [outline.create, outline.update, outline.remove],
        Err(e) => {
            let _ = writeln!(
                out,
                "_Cannot read the planned changes: {}._\n",
                cell_full(&e.to_string())
            );
            return out;
        }
    };
    let actions = [Action::Create, Action::Update, Action::Remove];
    let mut sections: Vec<Option<Section>> = actions
        .iter()
        .zip(totals)
        .map(|(&action, total)| (total > 0).then(|| Section::open(sync, action, total)))
        .collect();
    // Room kept for each section's closing line and the held and skipped tables' headings.
    let reserve = 120 * 3
        + if sync.held.is_empty() { 0 } else { 400 }
        + if sync.skipped.is_empty() { 0 } else { 300 };
    let wanted = |sections: &[Option<Section>]| {
        sections
            .iter()
            .flatten()
            .any(|s| s.shown < max_rows && (s.shown as u64) < s.total)
    };
    let mut full = false;
    let mut failure = None;
    'read: for chunk in sync.changes.chunks() {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        for change in chunk {
            let used = out.len()
                + sections
                    .iter()
                    .flatten()
                    .map(|s| s.text.len())
                    .sum::<usize>();
            let Some(section) = sections[change.action as usize].as_mut() else {
                continue;
            };
            if section.shown >= max_rows {
                continue;
            }
            let row = render_row(sync, &change);
            if used + row.len() + reserve > room {
                full = true;
            } else {
                section.push(&row);
            }
            if full || !wanted(&sections) {
                break 'read;
            }
        }
    }
    for section in sections.iter().flatten() {
        out.push_str(&section.text);
        section.close(&mut out);
    }
    if let Some(e) = failure {
        let _ = writeln!(
            out,
            "_Cannot read the planned changes: {}._\n",
            cell_full(&e.to_string())
        );
    }
    held_and_skipped(&mut out, sync, if full { 0 } else { max_rows }, room);
    out
}

/// The table of one action's rows while it is filled.
struct Section {
    /// The table so far.
    text: String,
    /// Rows in it.
    shown: usize,
    /// Rows of this action in the plan.
    total: u64,
    /// The noun for the count of rows left out ("updates").
    noun: &'static str,
}

impl Section {
    fn open(sync: &SyncPlan, action: Action, total: u64) -> Section {
        let (title, noun, header) = match action {
            Action::Create => ("Creates", "creates", "| key | values |\n| --- | --- |\n"),
            Action::Update => (
                "Updates",
                "updates",
                "| key | property | before | after |\n| --- | --- | --- | --- |\n",
            ),
            Action::Remove => (
                "Removes",
                "removes",
                "| key | record | what happens |\n| --- | --- | --- |\n",
            ),
        };
        let what = match (action, sync.rows_are, sync.on_remove, sync.mode) {
            (Action::Create, RowsAre::Events, _, _) => ": one event sent per row",
            (Action::Update | Action::Remove, RowsAre::Events, _, _) => {
                ": nothing sent (an event is sent once)"
            }
            (Action::Create, RowsAre::Memberships, _, _) => ": contacts added to the list",
            (Action::Remove, RowsAre::Memberships, RemoveBehaviour::Delete, _) => {
                ": contacts removed from the list"
            }
            (Action::Remove, RowsAre::Memberships, _, _) => ": contacts stay in the list",
            (Action::Create, _, _, WriteMode::Update) => {
                " (`mode: update`: each updates the record matched on its match value; none is created)"
            }
            (Action::Create, _, _, WriteMode::Insert) => {
                " (`mode: insert`: skipped where a record holds the match value already)"
            }
            (Action::Update, _, _, WriteMode::Insert) => {
                " (`mode: insert`: not sent, no record is changed)"
            }
            (Action::Remove, _, RemoveBehaviour::ClearFields, _) => " (`on_remove: clear_fields`)",
            (Action::Remove, _, RemoveBehaviour::Delete, _) => " (`on_remove: delete`)",
            (Action::Remove, _, RemoveBehaviour::Nothing, _) => " (`on_remove: nothing`)",
            _ => "",
        };
        Section {
            text: format!("**{title}** ({}){what}\n\n{header}", thousands(total)),
            shown: 0,
            total,
            noun,
        }
    }

    fn push(&mut self, row: &str) {
        self.text.push_str(row);
        self.shown += 1;
    }

    fn close(&self, out: &mut String) {
        let hidden = self.total.saturating_sub(self.shown as u64);
        if hidden > 0 {
            let _ = writeln!(
                out,
                "\n_… and {} more {}; see `engine plan --json`._",
                thousands(hidden),
                self.noun
            );
        }
        out.push('\n');
    }
}

/// One change as table rows.
fn render_row(sync: &SyncPlan, change: &RowChange) -> String {
    let mut key = cell(&change.key);
    if let Some(from) = &change.rekeyed_from {
        let _ = write!(key, "<br>re-keyed from {}", cell(from));
    }
    if change.last_error.is_some() {
        key.push_str("<br>retry");
    }
    match change.action {
        Action::Create => {
            let mut values: Vec<String> = change
                .fields
                .iter()
                .take(FIELDS_PER_ROW)
                .map(|f| format!("{} = {}", cell(&f.property), value(f.after.as_deref())))
                .collect();
            more_fields(&mut values, change.fields.len());
            format!("| {key} | {} |\n", values.join("<br>"))
        }
        Action::Update => {
            let mut out = String::new();
            for (i, field) in change.fields.iter().take(FIELDS_PER_ROW).enumerate() {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {}{} |",
                    if i == 0 { key.as_str() } else { "" },
                    cell(&field.property),
                    value(field.before.as_deref()),
                    value(field.after.as_deref()),
                    kept_note(sync, field)
                );
            }
            if change.fields.len() > FIELDS_PER_ROW {
                let _ = writeln!(
                    out,
                    "| | … and {} more fields | | |",
                    change.fields.len() - FIELDS_PER_ROW
                );
            }
            if change.fields.is_empty() {
                let _ = writeln!(out, "| {key} | | | |");
            }
            out
        }
        Action::Remove => {
            let record = change
                .destination_id
                .as_deref()
                .map(cell)
                .unwrap_or_default();
            let what = match sync.on_remove {
                RemoveBehaviour::ClearFields => {
                    let mut cleared: Vec<String> = change
                        .fields
                        .iter()
                        .take(FIELDS_PER_ROW)
                        .map(|f| {
                            format!(
                                "{} {} → empty",
                                cell(&f.property),
                                value(f.before.as_deref())
                            )
                        })
                        .collect();
                    more_fields(&mut cleared, change.fields.len());
                    if cleared.is_empty() {
                        "nothing to clear".to_string()
                    } else {
                        format!("clear {}", cleared.join("<br>"))
                    }
                }
                RemoveBehaviour::Delete => "delete the record".to_string(),
                RemoveBehaviour::Nothing => "leave the record, forget the row".to_string(),
            };
            format!("| {key} | {record} | {what} |\n")
        }
    }
}

fn more_fields(shown: &mut Vec<String>, total: usize) {
    if total > FIELDS_PER_ROW {
        shown.push(format!("… and {} more fields", total - FIELDS_PER_ROW));
    }
}

/// " (kept)" when an update's null leaves the destination's value alone.
fn kept_note(sync: &SyncPlan, field: &FieldChange) -> &'static str {
    if field.after.is_none() && !sync.clear_on_null.contains(&field.property) {
        " (kept in the destination)"
    } else {
        ""
    }
}

/// Held and skipped rows: the first `max_rows` of each, within `room` bytes of `out`.
fn held_and_skipped(out: &mut String, sync: &SyncPlan, max_rows: usize, room: usize) {
    let tail = 160;
    if !sync.held.is_empty() {
        let _ = writeln!(
            out,
            "**Held back** ({}): rejected last time with the same data; sent again when their \
             data changes, or with `engine apply --retry-failed`\n\n| key | the destination said |\n| --- | --- |",
            thousands(sync.held.len() as u64)
        );
        let mut shown = 0;
        for row in sync.held.iter().take(max_rows) {
            let line = format!("| {} | {} |\n", cell(&row.key), cell(&row.message));
            if out.len() + line.len() + 2 * tail > room {
                break;
            }
            out.push_str(&line);
            shown += 1;
        }
        elided(out, sync.held.len() - shown, "held rows");
    }
    if !sync.skipped.is_empty() {
        let _ = writeln!(
            out,
            "**Skipped** ({})\n\n| key | match value | reason |\n| --- | --- | --- |",
            thousands(sync.skipped.len() as u64)
        );
        let mut shown = 0;
        for row in sync.skipped.iter().take(max_rows) {
            let line = format!(
                "| {} | {} | {} |\n",
                cell(&row.key),
                value(row.match_value.as_deref()),
                cell(&row.reason)
            );
            if out.len() + line.len() + tail > room {
                break;
            }
            out.push_str(&line);
            shown += 1;
        }
        elided(out, sync.skipped.len() - shown, "skipped rows");
    }
}

fn elided(out: &mut String, hidden: usize, noun: &str) {
    if hidden > 0 {
        let _ = writeln!(
            out,
            "\n_… and {} more {noun}; see `engine plan --json`._",
            thousands(hidden as u64)
        );
    }
    out.push('\n');
}

/// A value in a cell: `null` in italics, an empty string as `""`, anything else as
/// [`cell`].
fn value(value: Option<&str>) -> String {
    match value {
        None => "_null_".to_string(),
        Some("") => "<code>\"\"</code>".to_string(),
        Some(v) => cell(v),
    }
}

/// Makes `text` inert inside a GitHub table cell, cut after [`VALUE_CHARS`] characters.
///
/// The text is wrapped in `<code>` (GitHub does not link mentions or issue references in
/// code), every ASCII punctuation character becomes a numeric character reference (so no
/// `|` ends the cell, no `` ` ``, `*`, `[`, `<` or `&` starts markup, and no `:`, `.` or `@`
/// makes an autolink), line breaks become `<br>`, other control characters and
/// bidirectional overrides are shown as visible symbols.
pub fn cell(text: &str) -> String {
    let mut chars = text.chars();
    let shown: String = chars.by_ref().take(VALUE_CHARS).collect();
    let cut = chars.next().is_some();
    let mut out = format!("<code>{}</code>", escape(&shown));
    if cut {
        out.push('…');
    }
    out
}

/// Like [`cell`], without the cut: for messages and hints, which are short.
fn cell_full(text: &str) -> String {
    format!("<code>{}</code>", escape(text))
}

/// The escaping of [`cell`], without the `<code>` wrapper.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("<br>");
            }
            '\n' => out.push_str("<br>"),
            c if c.is_ascii_punctuation() => {
                let _ = write!(out, "&#{};", c as u32);
            }
            // C0 controls (tab included) as their control pictures, DEL as ␡.
            c if (c as u32) < 0x20 => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('�')),
            '\u{7f}' => out.push('␡'),
            // Bidirectional overrides and isolates, which could reorder what a reader sees.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' => {
                // Shown as the code point, not obeyed (a character reference would be).
                let _ = write!(out, "U+{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        thousands(value as u64)
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests;
