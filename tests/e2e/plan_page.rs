//! The plan for people: `engine plan --format markdown` (the pull-request comment) and
//! `engine plan --html FILE` (the analysts' page, checked in a headless Chromium without
//! network), through the real binary.

use std::time::Instant;

use serde_json::json;

use crate::browser::Browser;
use crate::support::{TestProject, User, csv, users};

/// A first name that is a script, and a company that is an image with a handler: shown as
/// text by both renderings, run by neither.
const SCRIPT_NAME: &str = "Zed<script>window.__pwned=1</script>";
const IMG_COMPANY: &str = "<img src=x onerror=\"window.__pwned=2\">";

/// A project with users 1–12 applied, then users 3 and 4 changed, 11 and 12 gone and 13 and
/// 14 new: two updates, two removes and two creates, with hostile values.
fn changed_project() -> TestProject {
    let rows = users(12);
    let project = TestProject::new(&csv(&rows));
    project.engine(&["apply"]).assert_code(0);
    let mut next: Vec<User> = rows[..10].to_vec();
    next[2].first_name = SCRIPT_NAME.into();
    next[3].last_name = "Unique-Lastname | with a pipe".into();
    let mut new = User::new(13);
    new.company = IMG_COMPANY.into();
    next.push(new);
    next.push(User::new(14));
    // Quote the CSV fields that hold a comma or a quote.
    let text = csv(&next).replace(
        IMG_COMPANY,
        "\"<img src=x onerror=\"\"window.__pwned=2\"\">\"",
    );
    project.write_csv(&text);
    project
}

#[test]
fn markdown_comment_shows_counts_and_rows_and_keeps_exit_codes() {
    let project = changed_project();
    let output = project.engine(&["plan", "--format", "markdown", "--detailed-exitcode"]);
    output.assert_code(2);
    let md = &output.stdout;
    assert!(md.starts_with("<!-- engine-plan -->\n"), "{output}");
    assert!(
        md.contains("### Plan: 2 to create, 2 to update, 2 to remove"),
        "{output}"
    );
    assert!(md.contains("**Creates** (2)"), "{output}");
    assert!(md.contains("**Updates** (2)"), "{output}");
    assert!(
        md.contains("**Removes** (2) (`on_remove: clear_fields`)"),
        "{output}"
    );
    // Field-level before → after of the update, with the hostile value inert.
    assert!(
        md.contains("| <code>3</code> | <code>firstname</code> | <code>First3</code> | <code>Zed&#60;script&#62;"),
        "{output}"
    );
    assert!(!md.contains("<script>") && !md.contains("<img"), "{output}");
    assert!(
        !md.contains("Unique-Lastname | with"),
        "a pipe stays escaped: {output}"
    );
    assert!(md.len() <= 60_000);

    // `--format json` is `--json`; the two cannot be given together.
    let json = project.engine(&["plan", "--format", "json"]);
    json.assert_code(0);
    assert_eq!(json.json()["syncs"][0]["summary"]["create"], 2);
    let both = project.engine(&["plan", "--json", "--format", "markdown"]);
    assert_ne!(both.code, Some(0), "{both}");
    both.assert_stderr_contains("cannot be used with");

    // No changes: exit 0 with the detailed exit code, and the comment says so.
    project.engine(&["apply"]).assert_code(0);
    let none = project.engine(&["plan", "--format", "markdown", "--detailed-exitcode"]);
    none.assert_code(0).assert_contains("### Plan: no changes");
}

#[test]
fn markdown_comment_of_a_failed_plan_says_why() {
    let project = TestProject::new(&csv(&users(2)));
    project.edit("models/users.yaml", "first_name,", "frist_name,");
    let output = project.engine(&["plan", "--format", "markdown", "--detailed-exitcode"]);
    output.assert_code(1);
    assert!(
        output.stdout.starts_with("<!-- engine-plan -->\n"),
        "{output}"
    );
    output
        .assert_contains("### Plan failed")
        .assert_contains("<code>model&#58;&#58;")
        .assert_stderr_contains("frist_name");
}

#[test]
fn html_to_an_unwritable_path_names_it_and_says_what_to_do() {
    let project = TestProject::new(&csv(&users(2)));
    let missing = project.path().join("no-such-dir").join("plan.html");
    let output = project.engine(&["plan", "--html", &missing.display().to_string()]);
    output
        .assert_code(1)
        .assert_stderr_contains("plan::html_unwritable")
        .assert_stderr_contains(&missing.display().to_string())
        .assert_stderr_contains("pass a writable path to `--html`");

    let dir = project.path().join("data");
    let output = project.engine(&["plan", "--html", &dir.display().to_string()]);
    output
        .assert_code(1)
        .assert_stderr_contains("not a directory");
    let leftovers: Vec<_> = fs_err::read_dir(&dir)
        .expect("data/ is readable")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".partial-"))
        .collect();
    assert!(leftovers.is_empty(), "a failed page leaves nothing behind");

    // In JSON mode the failure is still one JSON document.
    let output = project.engine(&["plan", "--json", "--html", &missing.display().to_string()]);
    output.assert_code(1);
    assert_eq!(
        output.json()["diagnostics"][0]["code"],
        "plan::html_unwritable"
    );
}

/// The keys of the rows the page shows, in order.
fn visible_keys(browser: &Browser) -> Vec<String> {
    let keys = browser.execute(
        "return Array.from(document.querySelectorAll('#rows-body tr')).map(r => r.getAttribute('data-key'));",
    );
    serde_json::from_value(keys).expect("a list of keys")
}

/// Waits until the visible keys are `expected` (the search box waits for typing to pause).
fn wait_for_keys(browser: &Browser, what: &str, expected: &[&str]) {
    let mut last = Vec::new();
    let started = Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(30) {
        last = visible_keys(browser);
        if last == expected {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{what}: the page shows {last:?}, expected {expected:?}");
}

#[test]
fn html_page_in_a_headless_browser_without_network() {
    let project = changed_project();
    let page = project.path().join("plan.html");
    // One run prints the JSON and writes the page: the same plan.
    let output = project.engine(&["plan", "--json", "--html", &page.display().to_string()]);
    output.assert_code(0);
    let plan = output.json();
    let sync = &plan["syncs"][0];
    let html = fs_err::read_to_string(&page).expect("the page was written");
    assert!(
        html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';")
    );
    assert!(
        !html.contains("<script>window.__pwned"),
        "the value is not markup"
    );

    let Some(browser) = Browser::start() else {
        return;
    };
    let load = browser.open(&page);
    eprintln!("plan page of 6 rows loaded in {load:?}");

    // Nothing was fetched, nothing can be: the policy forbids it (and the browser has no
    // network).
    assert_eq!(
        browser.execute("return performance.getEntriesByType('resource').length;"),
        json!(0)
    );
    let fetched = browser.execute_async(
        "const done = arguments[0]; fetch('https://example.com/x').then(() => done('loaded'), e => done('blocked: ' + e));",
    );
    assert!(
        fetched.as_str().is_some_and(|s| s.starts_with("blocked")),
        "{fetched}"
    );

    // The injected values did not run, and show as text.
    assert_eq!(
        browser.execute("return typeof window.__pwned;"),
        json!("undefined")
    );
    assert_eq!(
        browser.execute(
            "return document.querySelectorAll('#rows-body img, #rows-body script').length;"
        ),
        json!(0)
    );
    let shown = browser
        .execute("return document.querySelector('#rows-body tr[data-key=\"3\"]').textContent;");
    assert!(
        shown.as_str().is_some_and(|t| t.contains(SCRIPT_NAME)),
        "{shown}"
    );

    // The counts, generation and identity equal the plan's.
    let count = |name: &str| {
        browser.execute(&format!(
            "return Number(document.querySelector('#counts tr[data-sync=\"{}\"] td[data-count=\"{name}\"]').textContent);",
            sync["sync"].as_str().expect("a sync name")
        ))
    };
    for name in ["create", "update", "remove", "unchanged", "held", "skipped"] {
        assert_eq!(count(name), sync["summary"][name], "{name}");
    }
    assert_eq!(count("generation"), sync["base_generation"]);
    let text = |css: &str| {
        browser.execute(&format!(
            "return document.querySelector('{css}').textContent;"
        ))
    };
    assert_eq!(text("#plan-id"), plan["plan_id"]);
    assert_eq!(text("#created-at"), plan["created_at"]);
    assert_eq!(text("#project"), plan["project"]);

    // Every change is listed, in the plan's order; then search and the action filter narrow
    // them.
    let all: Vec<String> = sync["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["key"].as_str().expect("a key").to_string())
        .collect();
    assert_eq!(visible_keys(&browser), all);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(sorted, ["11", "12", "13", "14", "3", "4"]);

    browser.type_into("#search", "unique-lastname");
    wait_for_keys(&browser, "search for a value", &["4"]);
    browser.clear("#search");
    browser.type_into("#search", "last1");
    let expected: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|k| ["11", "12", "13", "14"].contains(k))
        .collect();
    wait_for_keys(&browser, "search over values before and after", &expected);
    browser.click("#action-filter option[value=\"remove\"]");
    wait_for_keys(&browser, "search and action remove", &["11", "12"]);
    browser.clear("#search");
    wait_for_keys(&browser, "action remove", &["11", "12"]);
    browser.click("#action-filter option[value=\"update\"]");
    wait_for_keys(&browser, "action update", &["3", "4"]);
    browser.type_into("#search", "<script>");
    wait_for_keys(&browser, "search for markup as text", &["3"]);
    browser.click("#action-filter option[value=\"\"]");
    browser.clear("#search");
    browser.type_into("#search", "no row has this");
    wait_for_keys(&browser, "a search that matches nothing", &[]);
    assert_eq!(text("#match-count"), json!("0 of 6 rows"));
    assert_eq!(
        browser.execute("return typeof window.__pwned;"),
        json!("undefined")
    );
}

#[test]
fn a_100k_row_plan_fits_a_comment_and_a_responsive_page() {
    let project = TestProject::new(&csv(&users(100_000)));
    let page = project.path().join("plan.html");
    let started = Instant::now();
    let output = project.engine(&[
        "plan",
        "--format",
        "markdown",
        "--html",
        &page.display().to_string(),
        "--detailed-exitcode",
    ]);
    let planned = started.elapsed();
    output.assert_code(2);
    let md = &output.stdout;
    let page_bytes = fs_err::metadata(&page).expect("the page was written").len();
    eprintln!(
        "100,000-row plan: markdown {} bytes ({} characters), page {page_bytes} bytes, planned and rendered in {planned:?}",
        md.len(),
        md.chars().count()
    );
    assert!(md.len() <= 60_000, "{} bytes", md.len());
    assert!(
        md.contains("### Plan: 100,000 to create, 0 to update, 0 to remove"),
        "{md}"
    );
    assert!(
        md.contains("_… and 99,980 more creates; see `engine plan --json`._"),
        "{md}"
    );

    let Some(browser) = Browser::start() else {
        return;
    };
    let load = browser.open(&page);
    let rows = browser.execute("return document.querySelectorAll('#rows-body tr').length;");
    assert_eq!(rows, json!(100), "one page of rows is in the document");
    assert_eq!(
        browser.execute("return document.getElementById('match-count').textContent;"),
        json!("100,000 of 100,000 rows")
    );
    let started = Instant::now();
    browser.type_into("#search", "user99999@");
    wait_for_keys(&browser, "search in 100,000 rows", &["99999"]);
    let search = started.elapsed();
    let started = Instant::now();
    browser.click("#next");
    browser.clear("#search");
    browser.wait_for("all rows again", |b| {
        b.execute("return document.getElementById('match-count').textContent;")
            == json!("100,000 of 100,000 rows")
    });
    let reset = started.elapsed();
    eprintln!(
        "100,000-row page in Chromium: loaded and first page shown in {load:?}, a search typed and shown in {search:?}, cleared in {reset:?}"
    );
    assert!(load.as_secs() < 30, "loading took {load:?}");
    assert!(search.as_secs() < 10, "searching took {search:?}");
}
