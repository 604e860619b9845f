//! The state kept in PostgreSQL (`state: { backend: postgres }`): an apply from one project
//! directory and a plan of "no changes" from another with an empty `.engine/`, as two CI
//! machines would; the apply lock across them, with a killed holder's run recovered on the
//! other; `engine state migrate` to PostgreSQL and back with identical plans; and bad input
//! (an unknown user, a missing `url`, a state written by a newer engine), each refused before
//! anything is sent, with no password shown.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::json;

use crate::support::*;

const STATE_URL: &str = "postgres://root@127.0.0.1:5432/test";

/// A schema of its own for one test, dropped at the end.
struct Schema(String);

impl Schema {
    fn new(test: &str) -> Schema {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "e2e_{}_{}_{test}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        psql(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
        Schema(name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        psql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
    }
}

/// The `state:` section of a project whose state is in `schema`.
fn state_section(schema: &Schema) -> String {
    format!(
        "\nstate:\n  backend: postgres\n  url: ${{env:STATE_URL}}\n  schema: {}\n  tls: disable\n",
        schema.0
    )
}

/// The fixture project with its state in `schema`.
fn project(rows: &[User], schema: &Schema) -> TestProject {
    let project = TestProject::new(&csv(rows));
    let engine = project.read("engine.yaml") + &state_section(schema);
    project.write("engine.yaml", &engine);
    project
}

/// Runs `engine ARGS` in `project` against `sandbox_of`'s sandbox, with the state's URL set.
fn engine(project: &TestProject, sandbox_of: &TestProject, args: &[&str]) -> Output {
    project.engine_with(
        args,
        &[
            ("STATE_URL", Some(STATE_URL)),
            ("HUBSPOT_BASE_URL", Some(&sandbox_of.sandbox.base_url)),
        ],
    )
}

#[test]
fn a_second_machine_with_an_empty_state_directory_plans_no_changes() {
    let schema = Schema::new("two_machines");
    let rows = users(5);
    let first = project(&rows, &schema);
    engine(&first, &first, &["apply"]).assert_code(0);
    first.assert_contacts_exactly(&rows);
    assert!(
        !first.path().join(".engine/runs/1.plan.json").exists(),
        "run plans are kept in PostgreSQL"
    );

    // Another checkout of the same project, as a CI job on another machine sees it.
    let second = project(&rows, &schema);
    assert!(!second.path().join(".engine").exists());
    engine(&second, &first, &["plan", "--detailed-exitcode"])
        .assert_code(0)
        .assert_contains("No changes");
    engine(&second, &first, &["runs"]).assert_code(0);

    // The second machine applies a change; the first then sees it as done.
    let more = users(6);
    second.write_csv(&csv(&more));
    engine(&second, &first, &["apply"]).assert_code(0);
    first.assert_contacts_exactly(&more);
    first.write_csv(&csv(&more));
    engine(&first, &first, &["plan", "--detailed-exitcode"])
        .assert_code(0)
        .assert_contains("No changes");
    engine(&first, &first, &["state", "check"])
        .assert_code(0)
        .assert_contains("The state is consistent.");
    // Run history, the journal behind it and pruning all read the shared state.
    engine(&first, &first, &["runs", "show", "2"]).assert_code(0);
    engine(&second, &first, &["state", "gc", "--dry-run"]).assert_code(0);
    engine(&second, &first, &["state", "gc"]).assert_code(0);
    engine(&first, &first, &["plan", "--detailed-exitcode"]).assert_code(0);
}

#[test]
fn a_locked_sync_is_refused_on_another_machine_and_recovered_there_once_the_holder_dies() {
    let schema = Schema::new("lock");
    let rows = users(4);
    let first = project(&rows, &schema);
    let second = project(&rows, &schema);
    first.sandbox.set_faults(json!({"hang_before_write": 1}));

    let mut holder = first.spawn_engine_with(&["apply"], &[("STATE_URL", Some(STATE_URL))]);
    first.sandbox.wait_for_writes(1, &mut holder);
    engine(&second, &first, &["apply"])
        .assert_code(1)
        .assert_stderr_contains("state::locked")
        .assert_stderr_contains(&format!("pid={}", holder.pid()));
    assert_eq!(
        first.sandbox.write_requests(),
        1,
        "the second apply sent nothing"
    );

    // The holder dies; its connection closes and the server releases the lock. The other
    // machine recovers the run from the journal in PostgreSQL.
    holder.kill();
    first.sandbox.clear_faults();
    let mut recovered = engine(&second, &first, &["apply"]);
    for _ in 0..20 {
        if recovered.code == Some(0) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
        recovered = engine(&second, &first, &["apply"]);
    }
    recovered
        .assert_code(0)
        .assert_stderr_contains("Recovered run 1");
    first.assert_contacts_exactly(&rows);
    assert_eq!(first.contacts().len(), 4, "nothing was created twice");
}

#[test]
fn a_state_migrated_to_postgres_and_back_plans_the_same() {
    let schema = Schema::new("migrate");
    let rows = users(5);
    let project = TestProject::new(&csv(&rows));
    project.engine(&["apply"]).assert_code(0);
    let changed = users(7);
    project.write_csv(&csv(&changed));
    let before = project.engine(&["plan"]);
    before.assert_code(0).assert_contains("Plan: 2 to create");

    let local_yaml = project.read("engine.yaml");
    project.write(
        "engine.yaml",
        &(local_yaml.clone() + &state_section(&schema)),
    );
    let with_url = [("STATE_URL", Some(STATE_URL))];
    project
        .engine_with(&["state", "migrate", "--to", "postgres"], &with_url)
        .assert_code(0)
        .assert_contains("Moved the state")
        .assert_contains("1 sync(s)");
    // Without the local directory, only PostgreSQL holds the state now.
    fs_err::rename(
        project.path().join(".engine"),
        project.path().join("local-before"),
    )
    .expect("the local state moves aside");
    let shared = project.engine_with(&["plan"], &with_url);
    shared.assert_code(0);
    assert_eq!(
        shared.stdout, before.stdout,
        "the same plan from PostgreSQL"
    );
    project
        .engine_with(&["state", "check"], &with_url)
        .assert_code(0)
        .assert_contains("The state is consistent.");
    // Migrating again into a state that holds syncs is refused.
    project
        .engine_with(&["state", "migrate", "--to", "postgres"], &with_url)
        .assert_code(1);

    project
        .engine_with(&["state", "migrate", "--to", "local"], &with_url)
        .assert_code(0)
        .assert_contains("Moved the state");
    project.write("engine.yaml", &local_yaml);
    let back = project.engine(&["plan"]);
    back.assert_code(0);
    assert_eq!(
        back.stdout, before.stdout,
        "the same plan after moving back"
    );
    project
        .engine(&["state", "check"])
        .assert_code(0)
        .assert_contains("The state is consistent.");
    project.engine(&["apply"]).assert_code(0);
    project.assert_contacts_exactly(&changed);
}

#[test]
fn a_wrong_login_is_refused_before_anything_is_sent_without_showing_the_password() {
    let schema = Schema::new("login");
    let rows = users(2);
    let project = project(&rows, &schema);
    let out = project.engine_with(
        &["apply"],
        &[(
            "STATE_URL",
            Some("postgres://nobody:hunter2-secret@127.0.0.1:5432/test"),
        )],
    );
    out.assert_code(1)
        .assert_stderr_contains("state::unreachable")
        .assert_stderr_contains("nobody")
        .assert_stderr_contains("engine.yaml");
    assert!(!out.stderr.contains("hunter2-secret"), "{out}");
    assert!(!out.stdout.contains("hunter2-secret"), "{out}");
    assert_eq!(project.sandbox.write_requests(), 0, "nothing was sent");

    // Nothing listens on this port.
    project
        .engine_with(
            &["plan"],
            &[("STATE_URL", Some("postgres://root@127.0.0.1:1/test"))],
        )
        .assert_code(1)
        .assert_stderr_contains("state::unreachable");
}

#[test]
fn a_state_section_without_url_names_the_line_and_the_fix() {
    let rows = users(1);
    let project = TestProject::new(&csv(&rows));
    let engine = project.read("engine.yaml") + "\nstate:\n  backend: postgres\n";
    project.write("engine.yaml", &engine);
    project
        .engine(&["validate"])
        .assert_code(1)
        .assert_stderr_contains("`url`")
        .assert_stderr_contains("engine.yaml:");
}

#[test]
fn a_state_written_by_a_newer_engine_is_refused_naming_both_versions() {
    let schema = Schema::new("newer");
    let rows = users(2);
    let project = project(&rows, &schema);
    engine(&project, &project, &["plan"]).assert_code(0);
    psql(&format!(
        "INSERT INTO {}.schema_version (version, engine) VALUES (99, '99.0.0')",
        schema.0
    ));
    engine(&project, &project, &["apply"])
        .assert_code(1)
        .assert_stderr_contains("state::incompatible")
        .assert_stderr_contains("schema version 99")
        .assert_stderr_contains("reads version 1");
    assert_eq!(project.sandbox.write_requests(), 0, "nothing was sent");
}

#[test]
fn an_interrupted_run_migrated_to_postgres_is_recovered_without_the_local_directory() {
    let schema = Schema::new("migrate_crash");
    let rows = users(4);
    let project = TestProject::new(&csv(&rows));
    project.sandbox.set_faults(json!({"hang_before_write": 1}));
    let mut running = project.spawn_engine(&["apply"]);
    project.sandbox.wait_for_writes(1, &mut running);
    running.kill();
    project.sandbox.clear_faults();

    let local_yaml = project.read("engine.yaml");
    project.write("engine.yaml", &(local_yaml + &state_section(&schema)));
    let with_url = [("STATE_URL", Some(STATE_URL))];
    project
        .engine_with(&["state", "migrate", "--to", "postgres"], &with_url)
        .assert_code(0);
    // Another machine: nothing of the local directory, the run's change files included.
    fs_err::rename(
        project.path().join(".engine"),
        project.path().join("local-before"),
    )
    .expect("the local state moves aside");
    project
        .engine_with(&["apply"], &with_url)
        .assert_code(0)
        .assert_stderr_contains("Recovered run 1");
    project.assert_contacts_exactly(&rows);
    assert_eq!(project.contacts().len(), 4, "nothing was created twice");
    project
        .engine_with(&["plan", "--detailed-exitcode"], &with_url)
        .assert_code(0);
}
