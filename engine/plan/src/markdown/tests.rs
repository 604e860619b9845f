use super::*;
use crate::{
    FORMAT_VERSION, FieldChange, GuardCheck, HeldRow, RowChange, RowsAre, Summary, WriteMode,
};

/// A value that tries every way out of a table cell.
const HOSTILE: &str = "a|b `code` **bold** [x](https://evil.example) @octocat #12 <script>alert(1)</script>\nnext line\r\nthird \\| \u{202e}gnp.exe &amp;";

fn plan_with(syncs: Vec<SyncPlan>) -> Plan {
    Plan {
        format_version: FORMAT_VERSION,
        plan_id: "plan-1".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        engine_version: "0.1.0".into(),
        project: "demo".into(),
        lineage: "l".into(),
        digest: String::new(),
        syncs,
    }
}

fn sync_with(name: &str, changes: Vec<RowChange>) -> SyncPlan {
    let count = |a: Action| changes.iter().filter(|c| c.action == a).count() as u64;
    SyncPlan {
        sync: name.into(),
        model: "users".into(),
        destination: "hubspot".into(),
        object: "contacts".into(),
        base_generation: 3,
        properties: vec!["email".into(), "firstname".into()],
        match_property: "email".into(),
        clear_on_null: vec![],
        on_remove: RemoveBehaviour::ClearFields,
        mode: WriteMode::Upsert,
        rows_are: RowsAre::Records,
        match_case_insensitive: false,
        summary: Summary {
            create: count(Action::Create),
            update: count(Action::Update),
            remove: count(Action::Remove),
            unchanged: 7,
            ..Summary::default()
        },
        guards: vec![],
        changes: changes.into(),
        skipped: vec![],
        held: vec![],
    }
}

fn change(action: Action, key: usize, fields: usize, value: &str) -> RowChange {
    RowChange {
        action,
        key: key.to_string(),
        destination_id: (action != Action::Create).then(|| format!("10{key}")),
        fields: (0..fields)
            .map(|i| FieldChange {
                property: format!("prop{i}"),
                before: (action != Action::Create).then(|| format!("old {value}")),
                after: (action != Action::Remove).then(|| value.to_string()),
            })
            .collect(),
        ..RowChange::default()
    }
}

/// `creates`, `updates` and `removes` rows, in the plan's order.
fn changes(
    creates: usize,
    updates: usize,
    removes: usize,
    fields: usize,
    value: &str,
) -> Vec<RowChange> {
    let mut out = Vec::with_capacity(creates + updates + removes);
    out.extend((0..creates).map(|k| change(Action::Create, k, fields, value)));
    out.extend((0..updates).map(|k| change(Action::Update, k, fields, value)));
    out.extend((0..removes).map(|k| change(Action::Remove, k, fields, value)));
    out
}

/// The text of `markdown` with the markup the renderer itself writes taken out: its tags
/// and numeric character references.
fn without_own_markup(markdown: &str) -> String {
    let text = markdown
        .replace("<code>", "")
        .replace("</code>", "")
        .replace("<br>", "");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("&#") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(';') {
            rest = &after[digits + 1..];
        } else {
            out.push_str("&#");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn a_cell_is_inert_text() {
    let rendered = format!("<code>{}</code>", escape(HOSTILE));
    let inner = without_own_markup(&rendered);
    for c in [
        '|', '`', '*', '[', ']', '(', '<', '>', '@', '#', ':', '.', '\n', '\r', '\\',
    ] {
        assert!(!inner.contains(c), "{c:?} left raw in {rendered}");
    }
    assert!(
        !inner.contains('\u{202e}'),
        "a bidi override is shown, not obeyed"
    );
    assert!(inner.contains("U+202E"), "{rendered}");
    assert!(cell(HOSTILE).starts_with("<code>") && cell(HOSTILE).ends_with("</code>…"));
    // `&amp;` in the data stays the text `&amp;`: its `&` is escaped too.
    assert!(rendered.contains("&#38;amp&#59;"), "{rendered}");
    // Line breaks become `<br>`, one per break (`\r\n` is one).
    assert_eq!(rendered.matches("<br>").count(), 2, "{rendered}");
}

#[test]
fn a_long_value_is_cut_with_an_ellipsis_and_control_characters_are_visible() {
    let long = "x".repeat(VALUE_CHARS + 50);
    let rendered = cell(&long);
    assert_eq!(
        rendered,
        format!("<code>{}</code>…", "x".repeat(VALUE_CHARS))
    );
    assert_eq!(cell("a\tb\u{0}c\u{7f}"), "<code>a␉b␀c␡</code>");
    assert_eq!(cell("héllo wörld"), "<code>héllo wörld</code>");
}

#[test]
fn hostile_values_keep_every_table_row_the_same_width() {
    let mut changes = changes(2, 2, 2, 3, HOSTILE);
    changes[0].key = HOSTILE.into();
    let mut sync = sync_with("contacts", changes);
    sync.held = vec![HeldRow {
        key: HOSTILE.into(),
        message: HOSTILE.into(),
    }];
    sync.summary.held = 1;
    let markdown = render_markdown(&plan_with(vec![sync]), MarkdownOptions::default());
    // Every table row has as many cell separators as its table's header.
    let mut columns = None;
    for line in markdown.lines() {
        if !line.starts_with('|') {
            columns = None;
            continue;
        }
        let pipes = line.matches('|').count();
        match columns {
            None => columns = Some(pipes),
            Some(n) => assert_eq!(pipes, n, "a row changed the table's width: {line}"),
        }
    }
    assert!(!markdown.contains("<script>"), "{markdown}");
    assert!(!markdown.contains("@octocat"), "{markdown}");
    assert!(markdown.contains("**Held back** (1)"), "{markdown}");
}

#[test]
fn counts_sections_and_before_after_are_shown() {
    let mut changes = changes(1, 1, 1, 1, "Ann");
    changes[1].fields[0].after = None;
    let mut sync = sync_with("contacts", changes);
    sync.guards = vec![GuardCheck {
        guard: "max_deletes".into(),
        limit: 0.0,
        actual: 1.0,
        breached: true,
    }];
    let markdown = render_markdown(&plan_with(vec![sync]), MarkdownOptions::default());
    assert!(markdown.starts_with(COMMENT_MARKER), "{markdown}");
    assert!(
        markdown.contains("### Plan: 1 to create, 1 to update, 1 to remove"),
        "{markdown}"
    );
    assert!(markdown.contains("| guards |"), "{markdown}");
    assert!(markdown.contains("**breached**"), "{markdown}");
    assert!(markdown.contains("> [!WARNING]"), "{markdown}");
    assert!(markdown.contains("**Creates** (1)"), "{markdown}");
    assert!(
        markdown.contains("| <code>0</code> | <code>prop0</code> | <code>old Ann</code> | _null_ (kept in the destination) |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("<code>prop0</code> = <code>Ann</code>"),
        "{markdown}"
    );
    assert!(
        markdown.contains("clear <code>prop0</code> <code>old Ann</code> → empty"),
        "{markdown}"
    );
    assert!(
        !markdown.contains("more creates"),
        "nothing is elided: {markdown}"
    );
    // No held or skipped column when no sync has any.
    assert!(!markdown.contains("| held"), "{markdown}");
}

#[test]
fn rows_beyond_max_rows_are_counted() {
    let sync = sync_with("contacts", changes(1234, 30, 5, 2, "v"));
    let markdown = render_markdown(
        &plan_with(vec![sync]),
        MarkdownOptions {
            max_rows: 10,
            ..MarkdownOptions::default()
        },
    );
    assert!(
        markdown.contains("_… and 1,224 more creates; see `engine plan --json`._"),
        "{markdown}"
    );
    assert!(markdown.contains("_… and 20 more updates"), "{markdown}");
    assert!(!markdown.contains("more removes"), "{markdown}");
    // Rows whose first cell is a key (or the sync's name in the counts).
    let keyed = markdown
        .lines()
        .filter(|l| l.starts_with("| <code>"))
        .count();
    assert_eq!(keyed, 10 + 10 + 5 + 1, "{markdown}");
}

#[test]
fn a_plan_of_100k_rows_fits_the_comment_limit() {
    // Long hostile values in every field: the budget, not the row count, is what binds.
    let value = HOSTILE.repeat(3);
    let sync = sync_with("contacts", changes(40_000, 40_000, 20_000, 20, &value));
    let plan = plan_with(vec![sync]);
    let markdown = render_markdown(&plan, MarkdownOptions::default());
    assert!(markdown.len() <= MARKDOWN_LIMIT, "{} bytes", markdown.len());
    assert!(markdown.chars().count() < 65_536);
    // Whatever was shown, the rest is counted, per section.
    for (noun, total) in [
        ("creates", 40_000),
        ("updates", 40_000),
        ("removes", 20_000),
    ] {
        let shown_line = markdown
            .lines()
            .find(|l| l.contains(&format!("more {noun}")))
            .unwrap_or_else(|| panic!("no elision line for {noun}:\n{markdown}"));
        let hidden: u64 = shown_line
            .split_whitespace()
            .nth(2)
            .map(|n| n.replace(',', ""))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("cannot read {shown_line}"));
        assert!(hidden > total - 20 - 1 && hidden <= total, "{shown_line}");
    }
    assert!(markdown.contains("engine plan --json"));

    // Plain rows at the default row count: every section shows its 20 rows.
    let sync = sync_with(
        "contacts",
        changes(40_000, 40_000, 20_000, 5, "plain value"),
    );
    let markdown = render_markdown(&plan_with(vec![sync]), MarkdownOptions::default());
    assert!(markdown.len() <= MARKDOWN_LIMIT, "{} bytes", markdown.len());
    assert!(markdown.contains("… and 39,980 more creates"), "{markdown}");
    assert!(markdown.contains("… and 39,980 more updates"), "{markdown}");
    assert!(markdown.contains("… and 19,980 more removes"), "{markdown}");
}

#[test]
fn many_syncs_each_get_at_least_a_heading_within_the_limit() {
    let syncs: Vec<SyncPlan> = (0..400)
        .map(|i| sync_with(&format!("sync_{i}"), changes(50, 50, 50, 4, HOSTILE)))
        .collect();
    let markdown = render_markdown(&plan_with(syncs), MarkdownOptions::default());
    assert!(markdown.len() <= MARKDOWN_LIMIT, "{} bytes", markdown.len());
    assert!(
        markdown.contains("more syncs") || markdown.contains("rows not shown"),
        "{markdown}"
    );
}

#[test]
fn a_tiny_limit_is_never_exceeded() {
    let sync = sync_with("contacts", changes(100, 100, 100, 3, HOSTILE));
    for limit in [2_000, 5_000, 20_000] {
        let markdown = render_markdown(
            &plan_with(vec![sync.clone()]),
            MarkdownOptions {
                max_rows: 50,
                limit,
            },
        );
        assert!(markdown.len() <= limit, "{} > {limit}", markdown.len());
        assert!(markdown.contains("contacts"), "{markdown}");
    }
}

#[test]
fn a_plan_without_changes_says_so() {
    let markdown = render_markdown(
        &plan_with(vec![sync_with("contacts", vec![])]),
        MarkdownOptions::default(),
    );
    assert!(markdown.contains("### Plan: no changes"), "{markdown}");
    assert!(
        markdown.contains("No changes (7 rows unchanged)."),
        "{markdown}"
    );
}

#[test]
fn a_failure_comment_escapes_messages() {
    let diagnostic = Diagnostic::error("model::unknown_column", "no column `x|y` <b>here</b>")
        .hint("check @someone's SQL");
    let markdown = render_markdown_failure(&[diagnostic]);
    assert!(markdown.starts_with(COMMENT_MARKER));
    assert!(markdown.contains("### Plan failed"));
    let inner = without_own_markup(&markdown);
    assert!(
        !inner.contains("<b>") && !inner.contains("x|y") && !inner.contains("@someone"),
        "{markdown}"
    );
    assert!(markdown.contains("hint:"), "{markdown}");
}

#[test]
fn thousands_are_separated() {
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(1_000), "1,000");
    assert_eq!(thousands(1_234_567), "1,234,567");
}

#[test]
fn sections_say_what_the_sync_does_with_them() {
    let mut sync = sync_with("contacts", changes(1, 1, 1, 1, "v"));
    sync.mode = WriteMode::Insert;
    sync.on_remove = RemoveBehaviour::Delete;
    let markdown = render_markdown(&plan_with(vec![sync.clone()]), MarkdownOptions::default());
    assert!(
        markdown.contains("**Creates** (1) (`mode: insert`: skipped where"),
        "{markdown}"
    );
    assert!(
        markdown.contains("**Updates** (1) (`mode: insert`: not sent"),
        "{markdown}"
    );
    assert!(
        markdown.contains("**Removes** (1) (`on_remove: delete`)"),
        "{markdown}"
    );
    assert!(markdown.contains("| delete the record |"), "{markdown}");

    sync.rows_are = RowsAre::Events;
    let markdown = render_markdown(&plan_with(vec![sync]), MarkdownOptions::default());
    assert!(
        markdown.contains("**Creates** (1): one event sent per row"),
        "{markdown}"
    );
    assert!(
        markdown.contains("**Updates** (1): nothing sent"),
        "{markdown}"
    );
}
