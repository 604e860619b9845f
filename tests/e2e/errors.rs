//! Inputs the engine must refuse: exit 1, a message that says what and where, no request
//! written to the destination, and the state left as it was.

use std::net::TcpListener;

use crate::support::{Fixture, Output, Sandbox, TestProject, User, csv, users};

/// A project applied once (generation 1 in the state, three contacts in the sandbox), with a
/// fourth row added to the CSV so the next apply would have something to write.
fn applied_project() -> TestProject {
    let project = TestProject::new(&csv(&users(3)));
    project.engine(&["apply"]).assert_code(0);
    project.write_csv(&csv(&users(4)));
    project
}

/// Breaks the project with `edit`, runs `engine apply` with `env`, and expects exit 1 with no
/// write request and the state (runs, snapshots) as it was, checked once the project's files
/// are restored. Returns the output.
#[track_caller]
fn refused(
    project: &TestProject,
    edit: impl FnOnce(&TestProject),
    env: &[(&str, Option<&str>)],
) -> Output {
    let state = project.state_fingerprint();
    let writes = project.sandbox.write_requests();
    let sources = project.source_files();
    edit(project);
    let output = project.engine_with(&["apply"], env);
    output.assert_code(1);
    assert_eq!(
        project.sandbox.write_requests(),
        writes,
        "no write request\n{output}"
    );
    project.restore_source_files(&sources);
    assert_eq!(
        project.state_fingerprint(),
        state,
        "the state is untouched\n{output}"
    );
    output
}

/// Asserts stderr points at `file:LINE:COL`.
#[track_caller]
fn assert_points_at(output: &Output, file: &str) {
    let found = output
        .stderr
        .match_indices(&format!("{file}:"))
        .any(|(at, m)| {
            let rest = &output.stderr[at + m.len()..];
            let line: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let after = &rest[line.len()..];
            !line.is_empty()
                && after.starts_with(':')
                && after[1..].starts_with(|c: char| c.is_ascii_digit())
        });
    assert!(found, "expected a `{file}:LINE:COL` location\n{output}");
}

#[test]
fn duplicate_keys_are_refused_before_any_request() {
    let mut rows = users(4);
    rows.push(User {
        email: "other@example.com".into(),
        ..User::new(3)
    });
    let project = TestProject::new(&csv(&rows));
    let plan = project.engine(&["plan"]);
    plan.assert_code(1)
        .assert_stderr_contains("duplicate")
        .assert_stderr_contains("`3` (2 rows)");
    let apply = refused(&project, |_| {}, &[]);
    apply
        .assert_stderr_contains("duplicate")
        .assert_stderr_contains("`3` (2 rows)");
    assert_eq!(project.sandbox.write_requests(), 0);
}

#[test]
fn a_null_primary_key_is_refused_before_any_request() {
    let mut text = csv(&users(3));
    text.push_str(",nokey@example.com,No,Key,Company,lead\n");
    let project = TestProject::new(&text);
    let apply = refused(&project, |_| {}, &[]);
    apply
        .assert_stderr_contains("null primary key")
        .assert_stderr_contains("nokey@example.com");
    assert_eq!(project.sandbox.write_requests(), 0);
}

#[test]
fn malformed_yaml_is_refused_with_its_location() {
    let project = applied_project();
    let output = refused(
        &project,
        |p| {
            p.edit(
                "syncs/users_to_hubspot.yaml",
                "    column: first_name\n",
                "    column: [first_name\n",
            )
        },
        &[],
    );
    output.assert_stderr_contains("YAML");
    assert_points_at(&output, "syncs/users_to_hubspot.yaml");
}

#[test]
fn an_unknown_key_is_refused_with_a_suggestion() {
    let project = applied_project();
    let output = refused(
        &project,
        |p| p.edit("syncs/users_to_hubspot.yaml", "batch_size:", "batch_sise:"),
        &[],
    );
    output
        .assert_stderr_contains("batch_sise")
        .assert_stderr_contains("did you mean `batch_size`");
    assert_points_at(&output, "syncs/users_to_hubspot.yaml");
}

#[test]
fn bad_sql_is_refused_pointing_at_the_model() {
    let project = applied_project();
    let output = refused(
        &project,
        |p| p.edit("models/users.yaml", "first_name,", "frist_name,"),
        &[],
    );
    output.assert_stderr_contains("frist_name");
    assert_points_at(&output, "models/users.yaml");
}

#[test]
fn a_bad_template_is_refused_pointing_at_the_sync() {
    let project = applied_project();
    let output = refused(
        &project,
        |p| p.edit("syncs/users_to_hubspot.yaml", "| upcase }}", "| upcase }"),
        &[],
    );
    output.assert_stderr_contains("template");
    assert_points_at(&output, "syncs/users_to_hubspot.yaml");
}

#[test]
fn a_missing_env_var_is_named() {
    let project = applied_project();
    let output = refused(&project, |_| {}, &[("HUBSPOT_TOKEN", None)]);
    output.assert_stderr_contains("HUBSPOT_TOKEN");
}

#[test]
fn a_malformed_csv_row_is_refused() {
    let project = applied_project();
    let output = refused(
        &project,
        |p| {
            let mut text = csv(&users(4));
            text.push_str("5,user5@example.com,First5,Last5,Company 5,lead,extra\n");
            p.write_csv(&text);
        },
        &[],
    );
    output.assert_stderr_contains("users.csv");
}

#[test]
fn an_unreachable_destination_stops_the_run() {
    let project = applied_project();
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        listener.local_addr().expect("its address").port()
    };
    let url = format!("http://127.0.0.1:{closed}");
    let output = refused(
        &project,
        |_| {},
        &[
            ("HUBSPOT_BASE_URL", Some(url.as_str())),
            ("ENGINE_MAX_ATTEMPTS", Some("2")),
        ],
    );
    output.assert_stderr_contains(&url);
}

#[test]
fn a_rejected_token_stops_the_run() {
    let project = TestProject::with_sandbox(
        Fixture::default(),
        &csv(&users(3)),
        Sandbox::start("the-sandbox-wants-another-token"),
    );
    // Even the most verbose logs keep the token out (the harness checks every output).
    let output = refused(&project, |_| {}, &[("RUST_LOG", Some("trace"))]);
    output
        .assert_stderr_contains("token")
        .assert_stderr_contains("401");
    assert_eq!(project.contacts().len(), 0);
}
