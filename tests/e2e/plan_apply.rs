//! The happy paths and their edges: create, update, remove, partial failure, rate limits,
//! stale saved plans, guards, and the bundled example.

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

use crate::support::{Fixture, TOKEN, TestProject, User, csv, run_id, users};

#[test]
fn first_apply_creates_every_row_and_a_second_plan_has_no_changes() {
    let rows = users(5);
    let project = TestProject::new(&csv(&rows));

    let plan = project.engine(&["plan", "--detailed-exitcode"]);
    plan.assert_code(2)
        .assert_contains("Plan: 5 to create, 0 to update, 0 to remove.");
    assert_eq!(project.sandbox.write_requests(), 0, "plan must not write");

    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_contains("5 created/upserted, 0 updated, 0 removed, 0 failed");
    project.assert_contacts_exactly(&rows);

    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0)
        .assert_contains("No changes.");
    let writes = project.sandbox.write_requests();
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_contains("Nothing to apply.");
    assert_eq!(
        project.sandbox.write_requests(),
        writes,
        "a no-op apply must not write"
    );
    project.assert_contacts_exactly(&rows);
}

#[test]
fn a_changed_row_is_planned_and_applied_as_exactly_that_change() {
    let mut rows = users(4);
    let project = TestProject::new(&csv(&rows));
    project.engine(&["apply"]).assert_code(0);
    let before = project.contacts();

    rows[2].first_name = "Changed".into();
    project.write_csv(&csv(&rows));

    let human = project.engine(&["plan", "--detailed-exitcode"]);
    human.assert_code(2);
    assert_eq!(human.stdout.matches("~ update").count(), 1, "{human}");
    assert!(
        !human.stdout.contains("+ create") && !human.stdout.contains("- remove"),
        "{human}"
    );
    human
        .assert_contains("~ update \"3\"")
        .assert_contains("firstname: \"First3\" → \"Changed\"")
        .assert_contains("Plan: 0 to create, 1 to update, 0 to remove.");
    assert!(
        !human.stdout.contains("lastname:"),
        "only the changed field is shown\n{human}"
    );

    let plan = project.engine(&["plan", "--json"]);
    plan.assert_code(0);
    let changes = plan.json()["syncs"][0]["changes"].clone();
    let changes = changes.as_array().expect("changes is an array");
    assert_eq!(changes.len(), 1, "{plan}");
    assert_eq!(changes[0]["action"], "update");
    assert_eq!(changes[0]["key"], "3");
    assert_eq!(
        changes[0]["fields"],
        json!([{"property": "firstname", "before": "First3", "after": "Changed"}])
    );

    let writes = project.sandbox.write_requests();
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_contains("0 created/upserted, 1 updated, 0 removed, 0 failed");
    assert_eq!(
        project.sandbox.write_requests(),
        writes + 1,
        "one batch update"
    );
    project.assert_contacts_exactly(&rows);
    // The other records were not touched (the sandbox moves `lastmodifieddate` only on change).
    let after = project.contacts();
    for contact in &before {
        let now = after
            .iter()
            .find(|c| c.id == contact.id)
            .expect("the record still exists");
        if contact.get("email") != Some(rows[2].email.as_str()) {
            assert_eq!(
                now.get("lastmodifieddate"),
                contact.get("lastmodifieddate"),
                "{now:?}"
            );
        } else {
            assert_eq!(now.get("firstname"), Some("Changed"));
        }
    }
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn a_removed_row_has_its_fields_cleared_and_is_forgotten() {
    let rows = users(4);
    let project = TestProject::new(&csv(&rows));
    project.engine(&["apply"]).assert_code(0);

    let kept: Vec<User> = rows.iter().filter(|u| u.id != 2).cloned().collect();
    project.write_csv(&csv(&kept));
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(2)
        .assert_contains("- remove \"2\"")
        .assert_contains("clear fields")
        .assert_contains("Plan: 0 to create, 0 to update, 1 to remove.");
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_contains("0 created/upserted, 0 updated, 1 removed, 0 failed");

    let contacts = project.contacts();
    assert_eq!(
        contacts.len(),
        4,
        "clear_fields keeps the record: {contacts:?}"
    );
    let removed = contacts
        .iter()
        .find(|c| c.get("email") == Some("user2@example.com"))
        .expect("the removed row's record stays, with its email");
    let mapped = removed.mapped();
    assert_eq!(
        mapped.keys().collect::<Vec<_>>(),
        ["email"],
        "every mapped field but the match key is cleared: {removed:?}"
    );
    for row in &kept {
        let contact = contacts
            .iter()
            .find(|c| c.get("email") == Some(row.email.as_str()));
        assert_eq!(contact.map(|c| c.mapped()), Some(row.properties()));
    }

    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0)
        .assert_contains("No changes.");
}

#[test]
fn a_row_the_destination_rejects_stays_pending_until_fixed() {
    let mut rows = users(6);
    // Not an email address: HubSpot refuses it (`INVALID_EMAIL`); the plan cannot know.
    rows[3].email = "user4@".into();
    let project = TestProject::new(&csv(&rows));

    let apply = project.engine(&["apply"]);
    apply
        .assert_code(1)
        .assert_contains("5 created/upserted, 0 updated, 0 removed, 1 failed");
    let good: Vec<User> = rows.iter().filter(|u| u.id != 4).cloned().collect();
    project.assert_contacts_exactly(&good);

    let id = run_id(&apply);
    let show = project.engine(&["runs", "show", &id]);
    show.assert_code(0)
        .assert_contains("partial")
        .assert_contains("Failed rows (1):");
    let line = show
        .stdout
        .lines()
        .find(|l| l.contains("\"4\""))
        .unwrap_or_else(|| panic!("row 4 is not listed\n{show}"));
    assert!(
        line.contains("user4@"),
        "the destination's message names the value: {line}"
    );
    let message = line
        .split_once(": ")
        .map(|(_, m)| m.to_string())
        .expect("key: message");

    // Unchanged, the rejected row is held back: listed, not resent, and apply stays red.
    let writes = project.sandbox.write_requests();
    let plan = project.engine(&["plan", "--detailed-exitcode"]);
    plan.assert_code(0)
        .assert_contains("! hold \"4\"")
        .assert_contains(&message)
        .assert_contains("1 held back");
    project
        .engine(&["apply"])
        .assert_code(1)
        .assert_contains("1 row(s) held back");
    assert_eq!(
        project.sandbox.write_requests(),
        writes,
        "a held row is not resent"
    );

    // Asked to, apply resends it (and it fails again, with the same message).
    project
        .engine(&["apply", "--retry-failed"])
        .assert_code(1)
        .assert_contains("0 created/upserted, 0 updated, 0 removed, 1 failed");
    assert_eq!(project.sandbox.write_requests(), writes + 1);

    // Changed data is planned and sent again.
    rows[3].email = "user4@example.com".into();
    project.write_csv(&csv(&rows));
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(2)
        .assert_contains("+ create \"4\"")
        .assert_contains("Plan: 1 to create, 0 to update, 0 to remove.");
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_contains("1 created/upserted, 0 updated, 0 removed, 0 failed");
    project.assert_contacts_exactly(&rows);
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn a_storm_of_429s_converges() {
    let rows = users(10);
    let project = TestProject::with(
        Fixture {
            batch_size: 2,
            ..Fixture::default()
        },
        &csv(&rows),
    );
    project
        .sandbox
        .set_faults(json!({"requests_per_second": 1}));

    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_contains("10 created/upserted, 0 updated, 0 removed, 0 failed");
    project.assert_contacts_exactly(&rows);
    let stats = project.sandbox.stats();
    assert_eq!(
        stats["write_requests"], 5,
        "5 batches of 2 were accepted: {stats}"
    );
    assert!(
        stats["rate_limited"].as_u64() > Some(0),
        "the sandbox refused some: {stats}"
    );
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn plan_waits_out_a_rate_limited_read_of_the_destination() {
    let rows = users(2);
    let project = TestProject::new(&csv(&rows));
    project
        .sandbox
        .set_faults(json!({"requests_per_second": 0}));
    let plan = project.spawn_engine(&["plan", "--detailed-exitcode"]);
    project
        .sandbox
        .wait_until("the plan's read of the properties is refused", || {
            project.sandbox.stats()["rate_limited"].as_u64() >= Some(1)
        });
    project.sandbox.clear_faults();
    plan.wait()
        .assert_code(2)
        .assert_contains("Plan: 2 to create, 0 to update, 0 to remove.");
}

#[test]
fn a_stale_saved_plan_is_refused() {
    let mut rows = users(3);
    let project = TestProject::new(&csv(&rows));
    project.engine(&["plan", "--out", "p.json"]).assert_code(0);
    assert!(project.path().join("p.json").exists());
    project.engine(&["apply"]).assert_code(0);

    rows.push(User::new(4));
    project.write_csv(&csv(&rows));
    let writes = project.sandbox.write_requests();
    let stale = project.engine(&["apply", "p.json"]);
    stale
        .assert_code(1)
        .assert_stderr_contains("stale")
        .assert_stderr_contains("engine plan");
    assert_eq!(
        project.sandbox.write_requests(),
        writes,
        "a stale plan sends nothing"
    );
    project.assert_contacts_exactly(&rows[..3]);

    // A fresh saved plan applies.
    project.engine(&["plan", "--out", "p2.json"]).assert_code(0);
    project.engine(&["apply", "p2.json"]).assert_code(0);
    project.assert_contacts_exactly(&rows);
}

/// The directory where a saved plan keeps its change files on the machine that made it.
fn kept_dir(project: &TestProject, plan_file: &str) -> std::path::PathBuf {
    let plan: serde_json::Value = serde_json::from_str(&project.read(plan_file)).unwrap();
    let digest = plan["digest"].as_str().expect("a saved plan has a digest");
    project.path().join(".engine/plans").join(digest)
}

#[test]
fn a_saved_plan_applies_from_its_kept_changes_here_and_in_full_elsewhere_and_an_edit_is_refused_either_way()
 {
    let mut rows = users(3);
    let project = TestProject::new(&csv(&rows));

    // Applied where it was made: the kept change files are taken, then forgotten.
    project.engine(&["plan", "--out", "p.json"]).assert_code(0);
    let kept = kept_dir(&project, "p.json");
    assert!(kept.join("kept.json").is_file(), "{}", kept.display());
    const KEPT: &str = "changes were kept here";
    let debug = [("RUST_LOG", Some("engine_sync=debug"))];
    project
        .engine_with(&["apply", "p.json"], &debug)
        .assert_code(0)
        .assert_stderr_contains(KEPT);
    project.assert_contacts_exactly(&rows);
    assert!(!kept.exists(), "an applied plan's kept files are gone");

    // Applied as if on another machine (nothing kept): read in full, same result.
    rows[1].first_name = "Renamed".into();
    rows.push(User::new(4));
    project.write_csv(&csv(&rows));
    project.engine(&["plan", "--out", "p2.json"]).assert_code(0);
    fs_err::remove_dir_all(project.path().join(".engine/plans")).unwrap();
    let full = project.engine_with(&["apply", "p2.json"], &debug);
    full.assert_code(0);
    assert!(!full.stderr.contains(KEPT), "{}", full.stderr);
    project.assert_contacts_exactly(&rows);

    // A value edited inside its line, the layout kept, with the kept files present: the seal
    // fails, the plan is refused, and nothing is sent.
    let mut changed = rows.clone();
    changed[0].first_name = "Planned".into();
    project.write_csv(&csv(&changed));
    project.engine(&["plan", "--out", "p3.json"]).assert_code(0);
    assert!(kept_dir(&project, "p3.json").join("kept.json").is_file());
    let text = project.read("p3.json");
    assert!(text.contains("\"Planned\""), "{text}");
    project.write("p3.json", &text.replacen("\"Planned\"", "\"Evil\"", 1));
    let writes = project.sandbox.write_requests();
    project
        .engine(&["apply", "p3.json"])
        .assert_code(1)
        .assert_stderr_contains("plan::tampered");
    assert_eq!(project.sandbox.write_requests(), writes);
    project.assert_contacts_exactly(&rows);

    // The file as written applies from its kept files.
    project.write("p3.json", &text);
    project
        .engine_with(&["apply", "p3.json"], &debug)
        .assert_code(0)
        .assert_stderr_contains(KEPT);
    project.assert_contacts_exactly(&changed);
}

#[test]
fn a_breached_guard_stops_apply_before_any_write_unless_overridden() {
    let rows = users(3);
    let fixture = Fixture {
        sync_extra: "guards:\n  max_deletes: 0\n".into(),
        ..Fixture::default()
    };
    let project = TestProject::with(fixture, &csv(&rows));
    project.engine(&["apply"]).assert_code(0);
    project.assert_contacts_exactly(&rows);

    project.write_csv(&csv(&rows[..2]));
    let writes = project.sandbox.write_requests();
    project
        .engine(&["apply"])
        .assert_code(1)
        .assert_stderr_contains("max_deletes")
        .assert_stderr_contains("--override-guards");
    assert_eq!(
        project.sandbox.write_requests(),
        writes,
        "nothing is sent past a guard"
    );
    project.assert_contacts_exactly(&rows);

    project
        .engine(&["apply", "--override-guards"])
        .assert_code(0)
        .assert_contains("1 removed");
    let cleared = project
        .contacts()
        .into_iter()
        .find(|c| c.get("email") == Some(rows[2].email.as_str()))
        .expect("the record stays");
    assert_eq!(cleared.mapped().len(), 1, "fields cleared: {cleared:?}");
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn the_quickstart_example_validates() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart");
    let output = Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(["validate", "--project"])
        .arg(&dir)
        .env_remove("ENGINE_PROJECT")
        .env_remove("RUST_LOG")
        .env_remove("GITHUB_ACTIONS")
        .env("HUBSPOT_BASE_URL", "http://127.0.0.1:9")
        .env("HUBSPOT_TOKEN", TOKEN)
        .output()
        .expect("the engine binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("is valid"), "{stderr}");
    assert!(
        !stderr.contains("warning"),
        "no warning with the env vars set\n{stderr}"
    );
}

#[test]
fn a_long_apply_writes_progress_lines_to_a_log() {
    let rows = users(10);
    let project = TestProject::with(
        Fixture {
            batch_size: 2,
            ..Fixture::default()
        },
        &csv(&rows),
    );
    // stderr is a pipe here, as in CI: lines, not a bar; a tiny interval makes every answered
    // batch a line.
    project
        .engine_with(
            &["apply"],
            &[
                ("ENGINE_PROGRESS_INTERVAL", Some("0.000001")),
                ("ENGINE_MAX_IN_FLIGHT", Some("1")),
            ],
        )
        .assert_code(0)
        .assert_stderr_contains("apply: 2 of 10 rows answered (")
        .assert_stderr_contains("apply: 10 of 10 rows answered (")
        .assert_stderr_contains(" rows/s");
    project.assert_contacts_exactly(&rows);
}

#[test]
fn a_model_that_needs_more_memory_than_allowed_says_how_to_fix_it() {
    let project = TestProject::new(&csv(&users(50)));
    project
        .engine_with(&["plan"], &[("ENGINE_MEMORY_LIMIT", Some("2000"))])
        .assert_code(1)
        .assert_stderr_contains("Resources exhausted")
        .assert_stderr_contains("ENGINE_MEMORY_LIMIT");
    assert_eq!(project.sandbox.write_requests(), 0);
}
