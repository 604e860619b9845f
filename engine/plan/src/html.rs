//! The plan as one self-contained HTML page for analysts (`engine plan --html FILE`),
//! rendered from the JSON plan's structs.
//!
//! The page has no external resource: its style and script are inline and allowed by their
//! SHA-256 hashes in a Content-Security-Policy that forbids every network load (and any
//! other script). The counts, guards, generations and held and skipped rows are HTML,
//! escaped by [`escape`]; the changed rows are an inert JSON block (`<script
//! type="application/json">`, with `<`, `>` and `&` written as `\u003c`… so no value can
//! close it) that the page's script reads and shows a page of 100 rows at a time, filtered by
//! sync, action and free text, setting every value as text.
//!
//! The rows are streamed from the change files into the page a chunk at a time; at most
//! [`HTML_MAX_ROWS`] rows are embedded, shared fairly between the syncs' create, update and
//! remove sections, and the page says how many were left out.

use std::io::Write;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Action, Plan, SyncPlan};

/// The most changed rows one page embeds: 100,000 rows of five fields make a page of 19 MB,
/// which a headless Chromium loads in about 1.5 s and searches in about 0.4 s (measured by
/// the end-to-end test `a_100k_row_plan_fits_a_comment_and_a_responsive_page`).
pub const HTML_MAX_ROWS: u64 = 100_000;

/// Characters of a value embedded before it is cut (`…`); the plan JSON has it whole.
const VALUE_CHARS: usize = 2_000;

/// Held and skipped rows listed per sync.
const LISTED_ROWS: usize = 1_000;

const STYLE: &str = include_str!("html/page.css");
const SCRIPT: &str = include_str!("html/page.js");

/// Knobs for the HTML page.
#[derive(Debug, Clone, Copy)]
pub struct HtmlOptions {
    /// The most changed rows embedded, over all syncs.
    pub max_rows: u64,
}

impl Default for HtmlOptions {
    fn default() -> Self {
        HtmlOptions {
            max_rows: HTML_MAX_ROWS,
        }
    }
}

/// What the page's script knows of a sync.
#[derive(Serialize)]
struct SyncMeta<'a> {
    name: &'a str,
    on_remove: crate::RemoveBehaviour,
}

/// One embedded row: `[sync, action, key, record id, [[property, before, after]…], note]`.
#[derive(Serialize)]
struct Row<'a>(
    usize,
    u8,
    &'a str,
    Option<&'a str>,
    Vec<(&'a str, Option<String>, Option<String>)>,
    Option<String>,
);

/// Writes the plan as a self-contained HTML page, streaming its changes.
pub fn write_html(plan: &Plan, options: HtmlOptions, out: impl Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    let outlines = plan
        .syncs
        .iter()
        .map(|s| {
            s.changes
                .outline()
                .map(|o| [o.create, o.update, o.remove])
                .map_err(unreadable)
        })
        .collect::<std::io::Result<Vec<[u64; 3]>>>()?;
    let quotas = quotas(&outlines, options.max_rows);
    let total: u64 = outlines.iter().flatten().sum();
    let embedded: u64 = quotas.iter().flatten().sum();

    head(&mut out, plan)?;
    counts(&mut out, plan)?;
    guards(&mut out, plan)?;
    held_and_skipped(&mut out, plan)?;

    let mut sync_options = String::new();
    for (i, sync) in plan.syncs.iter().enumerate() {
        sync_options.push_str(&format!(
            "<option value=\"{i}\">{}</option>",
            escape(&sync.sync)
        ));
    }
    write!(
        out,
        "<section id=\"changes\"><h2>Changed rows</h2>\n\
         <div class=\"controls\">\
         <input id=\"search\" type=\"search\" placeholder=\"Search keys and values\" aria-label=\"Search keys and values\" autocomplete=\"off\">\
         <select id=\"sync-filter\" aria-label=\"Sync\"><option value=\"\">All syncs</option>{sync_options}</select>\
         <select id=\"action-filter\" aria-label=\"Action\"><option value=\"\">All actions</option>\
         <option value=\"create\">create</option><option value=\"update\">update</option><option value=\"remove\">remove</option></select>\
         <span id=\"match-count\" class=\"muted\"></span>\
         <button id=\"prev\" type=\"button\">Previous</button><span id=\"page\"></span><button id=\"next\" type=\"button\">Next</button>\
         </div>\n"
    )?;
    if embedded < total {
        writeln!(
            out,
            "<p id=\"not-shown\" class=\"warning\">{} more rows not shown: this page holds {} of the plan's {} changed rows \
             (the first of each sync's creates, updates and removes); see <code>engine plan --json</code> for all of them.</p>",
            crate::markdown::thousands(total - embedded),
            crate::markdown::thousands(embedded),
            crate::markdown::thousands(total)
        )?;
    }
    writeln!(
        out,
        "<noscript><p class=\"warning\">The table of changed rows needs JavaScript; the counts above do not.</p></noscript>\n\
         <table id=\"rows\"><thead><tr><th>sync</th><th>action</th><th>key</th><th>record</th><th>fields (before → after)</th></tr></thead>\
         <tbody id=\"rows-body\"></tbody></table></section>"
    )?;

    let meta: Vec<SyncMeta> = plan
        .syncs
        .iter()
        .map(|s| SyncMeta {
            name: &s.sync,
            on_remove: s.on_remove,
        })
        .collect();
    writeln!(
        out,
        "<script type=\"application/json\" id=\"plan-meta\">{}</script>",
        inert_json(&serde_json::json!({ "syncs": meta, "total": total, "embedded": embedded }))?
    )?;
    out.write_all(b"<script type=\"application/json\" id=\"plan-rows\">[")?;
    let mut first = true;
    for (index, (sync, quota)) in plan.syncs.iter().zip(&quotas).enumerate() {
        embed_rows(&mut out, index, sync, *quota, &mut first)?;
    }
    out.write_all(b"]</script>\n")?;
    write!(out, "<script>{SCRIPT}</script>\n</body>\n</html>\n")?;
    out.flush()
}

/// How many rows of each (sync, action) section to embed: every section gets an equal share
/// of `max_rows`, and what a small section does not use goes to the larger ones.
fn quotas(outlines: &[[u64; 3]], max_rows: u64) -> Vec<[u64; 3]> {
    let mut sections: Vec<(usize, usize, u64)> = outlines
        .iter()
        .enumerate()
        .flat_map(|(s, counts)| counts.iter().enumerate().map(move |(a, &n)| (s, a, n)))
        .filter(|&(_, _, n)| n > 0)
        .collect();
    sections.sort_by_key(|&(_, _, n)| n);
    let mut quotas = vec![[0u64; 3]; outlines.len()];
    let mut left = max_rows;
    let count = sections.len() as u64;
    for (i, (s, a, n)) in sections.into_iter().enumerate() {
        let share = left / (count - i as u64);
        let quota = n.min(share);
        quotas[s][a] = quota;
        left -= quota;
    }
    quotas
}

/// Streams the first `quota[action]` rows of each of the sync's actions into the JSON array.
fn embed_rows(
    out: &mut impl Write,
    index: usize,
    sync: &SyncPlan,
    quota: [u64; 3],
    first: &mut bool,
) -> std::io::Result<()> {
    let mut taken = [0u64; 3];
    if quota.iter().all(|&q| q == 0) {
        return Ok(());
    }
    for chunk in sync.changes.chunks() {
        for change in chunk.map_err(unreadable)? {
            let a = change.action as usize;
            if taken[a] >= quota[a] {
                if (0..3).all(|a| taken[a] >= quota[a]) {
                    return Ok(());
                }
                continue;
            }
            taken[a] += 1;
            let note = match (&change.rekeyed_from, &change.vacated_by, &change.last_error) {
                (Some(from), _, _) => {
                    Some(format!("re-keyed: takes over the record of row {from}"))
                }
                (_, Some(by), _) => Some(format!(
                    "its record was taken over; the record row {by} left is handled instead"
                )),
                (_, _, Some(error)) => Some(format!("retry: last attempt failed: {error}")),
                _ => None,
            };
            let row = Row(
                index,
                match change.action {
                    Action::Create => 0,
                    Action::Update => 1,
                    Action::Remove => 2,
                },
                &change.key,
                change.destination_id.as_deref(),
                change
                    .fields
                    .iter()
                    .map(|f| {
                        (
                            f.property.as_str(),
                            cut(f.before.as_deref()),
                            cut(f.after.as_deref()),
                        )
                    })
                    .collect(),
                note,
            );
            if !std::mem::take(first) {
                out.write_all(b",\n")?;
            }
            out.write_all(inert_json(&row)?.as_bytes())?;
        }
    }
    Ok(())
}

/// The message every error reading the plan's change files starts with, so a caller can tell
/// them from errors writing the page.
pub const UNREADABLE_CHANGES: &str = "cannot read the plan's changes";

fn unreadable(e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{UNREADABLE_CHANGES}: {e}"))
}

fn cut(value: Option<&str>) -> Option<String> {
    value.map(|v| {
        let mut chars = v.chars();
        let mut shown: String = chars.by_ref().take(VALUE_CHARS).collect();
        if chars.next().is_some() {
            shown.push('…');
        }
        shown
    })
}

/// JSON that is inert inside a `<script>` element: `<`, `>` and `&` (only ever inside
/// strings) are written as `\u` escapes, so no value can close the element.
fn inert_json(value: &impl Serialize) -> std::io::Result<String> {
    let json = serde_json::to_string(value).map_err(std::io::Error::other)?;
    Ok(json
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026"))
}

/// `'sha256-…'` of an inline element's text, for the Content-Security-Policy.
fn csp_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!("'sha256-{}'", base64(&digest))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | ((b as u32) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The Content-Security-Policy of the page: nothing may load, only the page's own style and
/// script may run.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; script-src {}; style-src {}; img-src 'none'; connect-src 'none'; \
         font-src 'none'; media-src 'none'; object-src 'none'; frame-src 'none'; \
         base-uri 'none'; form-action 'none'",
        csp_hash(SCRIPT),
        csp_hash(STYLE)
    )
}

fn head(out: &mut impl Write, plan: &Plan) -> std::io::Result<()> {
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Plan of {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        content_security_policy(),
        escape(&plan.project)
    )?;
    let (create, update, remove) = plan.syncs.iter().fold((0, 0, 0), |acc, s| {
        (
            acc.0 + s.summary.create,
            acc.1 + s.summary.update,
            acc.2 + s.summary.remove,
        )
    });
    let t = crate::markdown::thousands;
    write!(
        out,
        "<header><h1>Plan of <code>{}</code>: {} to create, {} to update, {} to remove</h1>\n\
         <dl class=\"meta\"><dt>plan id</dt><dd id=\"plan-id\">{}</dd><dt>created at</dt><dd id=\"created-at\">{}</dd>\
         <dt>project</dt><dd id=\"project\">{}</dd><dt>engine</dt><dd>{}</dd><dt>state lineage</dt><dd>{}</dd>\
         <dt>format version</dt><dd>{}</dd></dl></header>\n",
        escape(&plan.project),
        t(create),
        t(update),
        t(remove),
        escape(&plan.plan_id),
        escape(&plan.created_at),
        escape(&plan.project),
        escape(&plan.engine_version),
        escape(&plan.lineage),
        plan.format_version
    )
}

fn counts(out: &mut impl Write, plan: &Plan) -> std::io::Result<()> {
    writeln!(
        out,
        "<section><h2>Syncs</h2><table id=\"counts\"><thead><tr><th>sync</th><th>model</th><th>destination</th>\
         <th class=\"n\">planned against generation</th><th class=\"n\">create</th><th class=\"n\">update</th>\
         <th class=\"n\">remove</th><th class=\"n\">unchanged</th><th class=\"n\">held</th><th class=\"n\">skipped</th>\
         <th class=\"n\">retried</th></tr></thead><tbody>"
    )?;
    for sync in &plan.syncs {
        let s = &sync.summary;
        write!(
            out,
            "<tr data-sync=\"{}\"><td>{}</td><td>{}</td><td>{} <code>{}</code></td><td class=\"n\" data-count=\"generation\">{}</td>",
            escape(&sync.sync),
            escape(&sync.sync),
            escape(&sync.model),
            escape(&sync.destination),
            escape(&sync.object),
            sync.base_generation
        )?;
        for (name, n) in [
            ("create", s.create),
            ("update", s.update),
            ("remove", s.remove),
            ("unchanged", s.unchanged),
            ("held", s.held),
            ("skipped", s.skipped),
            ("retried", s.retried),
        ] {
            write!(out, "<td class=\"n\" data-count=\"{name}\">{n}</td>")?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</tbody></table></section>")
}

fn guards(out: &mut impl Write, plan: &Plan) -> std::io::Result<()> {
    if plan.syncs.iter().all(|s| s.guards.is_empty()) {
        return Ok(());
    }
    writeln!(
        out,
        "<section><h2>Guards</h2><table id=\"guards\"><thead><tr><th>sync</th><th>guard</th>\
         <th class=\"n\">this plan</th><th class=\"n\">limit</th><th>status</th></tr></thead><tbody>"
    )?;
    for sync in &plan.syncs {
        for guard in &sync.guards {
            writeln!(
                out,
                "<tr data-sync=\"{}\" data-guard=\"{}\"><td>{}</td><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                escape(&sync.sync),
                escape(&guard.guard),
                escape(&sync.sync),
                escape(&guard.guard),
                guard.actual,
                guard.limit,
                if guard.breached {
                    "<span class=\"breached\">breached: <code>engine apply</code> refuses this plan unless run with <code>--override-guards</code></span>"
                } else {
                    "within the limit"
                }
            )?;
        }
    }
    writeln!(out, "</tbody></table></section>")
}

fn held_and_skipped(out: &mut impl Write, plan: &Plan) -> std::io::Result<()> {
    for sync in plan.syncs.iter().filter(|s| !s.held.is_empty()) {
        writeln!(
            out,
            "<section><h2>Held back in <code>{}</code> ({})</h2><p class=\"muted\">Rejected last time with the same data; \
             sent again when their data changes, or with <code>engine apply --retry-failed</code>.</p>\
             <table class=\"held\"><thead><tr><th>key</th><th>the destination said</th></tr></thead><tbody>",
            escape(&sync.sync),
            sync.held.len()
        )?;
        for row in sync.held.iter().take(LISTED_ROWS) {
            writeln!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                escape(&row.key),
                escape(&row.message)
            )?;
        }
        listed_tail(out, sync.held.len())?;
    }
    for sync in plan.syncs.iter().filter(|s| !s.skipped.is_empty()) {
        writeln!(
            out,
            "<section><h2>Skipped in <code>{}</code> ({})</h2>\
             <table class=\"skipped\"><thead><tr><th>key</th><th>match value</th><th>reason</th></tr></thead><tbody>",
            escape(&sync.sync),
            sync.skipped.len()
        )?;
        for row in sync.skipped.iter().take(LISTED_ROWS) {
            writeln!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                escape(&row.key),
                row.match_value
                    .as_deref()
                    .map(escape)
                    .unwrap_or_else(|| "null".into()),
                escape(&row.reason)
            )?;
        }
        listed_tail(out, sync.skipped.len())?;
    }
    Ok(())
}

fn listed_tail(out: &mut impl Write, total: usize) -> std::io::Result<()> {
    writeln!(out, "</tbody></table>")?;
    if total > LISTED_ROWS {
        writeln!(
            out,
            "<p class=\"muted\">{} more not shown; see <code>engine plan --json</code>.</p>",
            crate::markdown::thousands((total - LISTED_ROWS) as u64)
        )?;
    }
    writeln!(out, "</section>")
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
