//! Inputs the engine must refuse: exit 1, a message that says what and where, no request
//! written to the destination, and the state left as it was.

use std::net::TcpListener;

use serde_json::json;

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
    assert!(
        output.points_at(file),
        "expected a `{file}:LINE:COL` location\n{output}"
    );
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

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

/// `engine runs show 999` printed "No run 999" and exited 0.
#[test]
fn showing_a_run_that_does_not_exist_fails() {
    let project = applied_project();
    project
        .engine(&["runs", "show", "999"])
        .assert_code(1)
        .assert_stderr_contains("runs::not_found")
        .assert_stderr_contains("there is no run 999")
        .assert_stderr_contains("`engine runs`");
    project.engine(&["runs", "show", "1"]).assert_code(0);
}

/// `engine plan --json` printed nothing on stdout when it failed.
#[test]
fn plan_json_prints_an_error_document_when_it_fails() {
    let project = applied_project();
    project.edit("models/users.yaml", "first_name,", "frist_name,");
    let output = project.engine(&["plan", "--json"]);
    output.assert_code(1).assert_stderr_contains("frist_name");
    let document = output.json();
    assert_eq!(document["format_version"], 1, "{output}");
    assert_eq!(document["error"], true, "{output}");
    let diagnostic = &document["diagnostics"][0];
    assert_eq!(diagnostic["code"], "model::unknown_column", "{output}");
    assert_eq!(diagnostic["severity"], "error", "{output}");
    assert!(
        diagnostic["message"]
            .as_str()
            .is_some_and(|m| m.contains("frist_name")),
        "{output}"
    );
    assert_eq!(diagnostic["location"]["kind"], "source", "{output}");
    assert_eq!(
        diagnostic["location"]["file"], "models/users.yaml",
        "{output}"
    );
    assert!(diagnostic["hints"].is_array() && diagnostic["notes"].is_array());
}

/// An unknown `object:` was reported without a file position.
#[test]
fn an_unknown_object_points_at_the_sync() {
    let project = applied_project();
    let output = refused(
        &project,
        |p| {
            p.edit(
                "syncs/users_to_hubspot.yaml",
                "object: contacts",
                "object: contcts",
            )
        },
        &[],
    );
    output
        .assert_stderr_contains("hubspot::unknown_object")
        .assert_stderr_contains("contcts");
    assert_points_at(&output, "syncs/users_to_hubspot.yaml");
}

/// A `base_url` with the objects path made every object unknown, with a hint to use
/// `contacts`, which the sync already did.
#[test]
fn a_base_url_with_a_path_is_refused_at_the_destination() {
    let project = applied_project();
    let url = format!("{}/crm/v3/objects", project.sandbox.base_url);
    let output = refused(
        &project,
        |_| {},
        &[("HUBSPOT_BASE_URL", Some(url.as_str()))],
    );
    output
        .assert_stderr_contains("hubspot::config")
        .assert_stderr_contains("`/crm/v3/objects`")
        .assert_stderr_contains("API root")
        .assert_stderr_contains(&format!("base_url: {}", project.sandbox.base_url));
    assert!(!output.stderr.contains("no object type"), "{output}");
    assert_points_at(&output, "engine.yaml");
}

/// A password in `base_url` was printed by `hubspot::unreachable`.
#[test]
fn a_password_in_the_base_url_is_never_printed() {
    let project = applied_project();
    let port = closed_port();
    let url = format!("http://user:hunter2-password@127.0.0.1:{port}");
    let output = refused(
        &project,
        |_| {},
        &[("HUBSPOT_BASE_URL", Some(url.as_str()))],
    );
    output
        .assert_stderr_contains("hubspot::unreachable")
        .assert_stderr_contains(&format!("http://user:****@127.0.0.1:{port}"));
    assert!(!output.stderr.contains("hunter2"), "{output}");
    assert!(!output.stdout.contains("hunter2"), "{output}");
}

/// A destination that died after the plan was made: apply gave up only after about 85 s of
/// backoff, in silence, and its WARN lines carried colour codes into files. Now it says it is
/// waiting, gives up after `ENGINE_RETRY_TIMEOUT` seconds, and writes plain text, with the
/// URL's password masked.
#[test]
fn a_dead_destination_is_given_up_on_after_the_retry_timeout() {
    let project = applied_project();
    project.engine(&["plan", "--out", "p.json"]).assert_code(0);
    let port = closed_port();
    let url = format!("http://user:hunter2-password@127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let output = project.engine_with(
        &["apply", "p.json"],
        &[
            ("HUBSPOT_BASE_URL", Some(url.as_str())),
            ("ENGINE_RETRY_TIMEOUT", Some("1")),
        ],
    );
    output
        .assert_code(1)
        .assert_stderr_contains(&format!(
            "HubSpot at `http://user:****@127.0.0.1:{port}` is not answering; retrying for up to 1 s"
        ))
        .assert_stderr_contains("executor::unreachable")
        .assert_stderr_contains("ENGINE_RETRY_TIMEOUT");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "gave up in time\n{output}"
    );
    assert!(!output.stderr.contains("hunter2"), "{output}");
    assert!(
        output.stderr.contains("WARN") && !output.stderr.contains('\u{1b}'),
        "plain-text logs when stderr is a file\n{output}"
    );
    // The rows are still pending: the next apply against the live sandbox writes them.
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_contains("1 created/upserted");
}

/// A read the destination refuses (429) is logged as a WARN; the log had colour codes when
/// stderr was a file.
#[test]
fn logs_have_no_colour_codes_when_stderr_is_not_a_terminal() {
    let project = applied_project();
    project
        .sandbox
        .set_faults(json!({"requests_per_second": 0}));
    let output = project.engine_with(&["plan"], &[("ENGINE_MAX_ATTEMPTS", Some("2"))]);
    output.assert_code(1).assert_stderr_contains("WARN");
    assert!(!output.stderr.contains('\u{1b}'), "{output}");
}

#[test]
fn a_password_written_in_base_url_is_refused_and_never_printed() {
    let project = TestProject::new(&csv(&users(2)));
    project.edit(
        "engine.yaml",
        "base_url: ${env:HUBSPOT_BASE_URL}",
        "base_url: http://ann:hunter2-secret@127.0.0.1:9",
    );
    for args in [&["validate"][..], &["plan"]] {
        let output = project.engine(args);
        output
            .assert_code(1)
            .assert_stderr_contains("spec::literal_secret")
            .assert_stderr_contains("base_url");
        assert_points_at(&output, "engine.yaml");
        assert!(
            !output.stdout.contains("hunter2") && !output.stderr.contains("hunter2"),
            "the password is not printed\n{output}"
        );
    }
    assert_eq!(project.sandbox.write_requests(), 0);
}
