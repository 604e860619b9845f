use super::*;
use crate::{
    FORMAT_VERSION, FieldChange, GuardCheck, RemoveBehaviour, RowChange, RowsAre, Summary,
    WriteMode,
};

const SCRIPT_VALUE: &str =
    "</script><script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">";

fn plan(changes: Vec<RowChange>) -> Plan {
    let count = |a: Action| changes.iter().filter(|c| c.action == a).count() as u64;
    Plan {
        format_version: FORMAT_VERSION,
        plan_id: "plan-<1>".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        engine_version: "0.1.0".into(),
        project: "demo & <co>".into(),
        lineage: "l".into(),
        digest: String::new(),
        syncs: vec![SyncPlan {
            sync: "contacts".into(),
            model: "users".into(),
            destination: "hubspot".into(),
            object: "contacts".into(),
            base_generation: 4,
            properties: vec!["email".into()],
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
                ..Summary::default()
            },
            guards: vec![GuardCheck {
                guard: "max_deletes".into(),
                limit: 10.0,
                actual: 1.0,
                breached: false,
            }],
            changes: changes.into(),
            skipped: vec![],
            held: vec![],
        }],
    }
}

fn change(action: Action, key: &str, value: &str) -> RowChange {
    RowChange {
        action,
        key: key.into(),
        fields: vec![FieldChange {
            property: "email".into(),
            before: (action != Action::Create).then(|| "old".to_string()),
            after: (action != Action::Remove).then(|| value.to_string()),
        }],
        ..RowChange::default()
    }
}

fn render(plan: &Plan, options: HtmlOptions) -> String {
    let mut out = Vec::new();
    write_html(plan, options, &mut out).expect("writing to memory cannot fail");
    String::from_utf8(out).expect("the page is UTF-8")
}

/// The text of the `<script type="application/json" id=ID>` block.
fn json_block(page: &str, id: &str) -> serde_json::Value {
    let open = format!("<script type=\"application/json\" id=\"{id}\">");
    let start = page.find(&open).expect("the block exists") + open.len();
    let end = start
        + page[start..]
            .find("</script>")
            .expect("the block is closed");
    serde_json::from_str(&page[start..end]).expect("the block is JSON")
}

#[test]
fn values_cannot_close_the_data_block_or_add_markup() {
    let plan = plan(vec![
        change(Action::Create, SCRIPT_VALUE, SCRIPT_VALUE),
        change(Action::Update, "2", SCRIPT_VALUE),
    ]);
    let page = render(&plan, HtmlOptions::default());
    assert!(!page.contains("<script>window"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    // Exactly the page's own three script elements close.
    assert_eq!(page.matches("</script>").count(), 3, "{page}");
    let rows = json_block(&page, "plan-rows");
    assert_eq!(rows[0][2], SCRIPT_VALUE, "the value is intact once parsed");
    assert_eq!(rows[0][4][0][2], SCRIPT_VALUE);
    assert_eq!(rows[1][1], 1, "an update");
    // Text outside the data block is escaped.
    assert!(page.contains("demo &amp; &lt;co&gt;"), "{page}");
    assert!(page.contains("plan-&lt;1&gt;"), "{page}");
}

#[test]
fn the_policy_allows_only_the_pages_own_script_and_style() {
    let page = render(&plan(vec![]), HtmlOptions::default());
    let policy = content_security_policy();
    assert!(page.contains(&format!("content=\"{policy}\"")));
    assert!(policy.starts_with("default-src 'none';"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external reference"
    );
    // The hashes are of the inline elements exactly as written.
    let script = &page[page.rfind("<script>").expect("the script") + "<script>".len()..];
    let script = &script[..script.find("</script>").expect("closed")];
    assert!(policy.contains(&csp_hash(script)), "{policy}");
    assert_eq!(base64(b"abcd"), "YWJjZA==");
    assert_eq!(base64(b"abcde"), "YWJjZGU=");
    assert_eq!(base64(b"abcdef"), "YWJjZGVm");
}

#[test]
fn counts_generation_and_guards_are_in_the_page() {
    let page = render(
        &plan(vec![
            change(Action::Create, "1", "a"),
            change(Action::Remove, "2", ""),
        ]),
        HtmlOptions::default(),
    );
    assert!(
        page.contains("<td class=\"n\" data-count=\"create\">1</td>"),
        "{page}"
    );
    assert!(
        page.contains("<td class=\"n\" data-count=\"remove\">1</td>"),
        "{page}"
    );
    assert!(page.contains("data-count=\"generation\">4</td>"), "{page}");
    assert!(page.contains("data-guard=\"max_deletes\""), "{page}");
    assert!(
        !page.contains("id=\"not-shown\""),
        "every row is embedded: {page}"
    );
    let meta = json_block(&page, "plan-meta");
    assert_eq!(meta["total"], 2);
    assert_eq!(meta["embedded"], 2);
}

#[test]
fn rows_over_the_cap_are_shared_between_sections_and_counted() {
    let mut changes: Vec<RowChange> = (0..10)
        .map(|i| change(Action::Create, &format!("c{i}"), "v"))
        .collect();
    changes.extend((0..1000).map(|i| change(Action::Update, &format!("u{i:04}"), "v")));
    changes.extend((0..5000).map(|i| change(Action::Remove, &format!("r{i:04}"), "v")));
    let page = render(&plan(changes), HtmlOptions { max_rows: 100 });
    let rows = json_block(&page, "plan-rows");
    let rows = rows.as_array().expect("an array");
    let of = |a: u64| rows.iter().filter(|r| r[1] == a).count();
    assert_eq!((of(0), of(1), of(2)), (10, 45, 45));
    assert_eq!(rows[10][2], "u0000", "the first rows of each section");
    assert!(page.contains("5,910 more rows not shown"), "{page}");
    assert!(page.contains("engine plan --json"));
}

#[test]
fn quotas_fill_the_cap_exactly() {
    assert_eq!(quotas(&[[10, 1000, 5000]], 100), vec![[10, 45, 45]]);
    assert_eq!(
        quotas(&[[0, 3, 0], [1, 0, 2]], 100),
        vec![[0, 3, 0], [1, 0, 2]]
    );
    let q = quotas(&[[7, 7, 7], [7, 7, 7]], 10);
    assert_eq!(q.iter().flatten().sum::<u64>(), 10);
    assert_eq!(quotas(&[], 10), Vec::<[u64; 3]>::new());
}

#[test]
fn long_values_are_cut() {
    let long = "y".repeat(VALUE_CHARS + 10);
    let page = render(
        &plan(vec![change(Action::Create, "1", &long)]),
        HtmlOptions::default(),
    );
    let rows = json_block(&page, "plan-rows");
    let shown = rows[0][4][0][2].as_str().expect("text");
    assert_eq!(shown.chars().count(), VALUE_CHARS + 1);
    assert!(shown.ends_with('…'));
}

#[test]
fn held_and_skipped_rows_are_escaped() {
    let mut plan = plan(vec![]);
    plan.syncs[0].held = vec![crate::HeldRow {
        key: "<b>k</b>".into(),
        message: SCRIPT_VALUE.into(),
    }];
    plan.syncs[0].skipped = vec![crate::SkippedRow {
        key: "1".into(),
        match_value: Some("\"><script>x</script>".into()),
        reason: "shared & <odd>".into(),
        invalid_value: false,
    }];
    let page = render(&plan, HtmlOptions::default());
    assert!(page.contains("<code>&lt;b&gt;k&lt;/b&gt;</code>"), "{page}");
    assert!(
        page.contains("&lt;/script&gt;&lt;script&gt;window.pwned=1"),
        "{page}"
    );
    assert!(
        page.contains("&quot;&gt;&lt;script&gt;x&lt;/script&gt;"),
        "{page}"
    );
    assert!(page.contains("shared &amp; &lt;odd&gt;"), "{page}");
    assert_eq!(page.matches("</script>").count(), 3, "{page}");
    assert!(!page.contains("<b>k"), "{page}");
}
