//! `kill -9` during apply, then `engine apply` again: the journal is folded into the state,
//! nothing is created twice, and only what did not succeed is sent again. Also the per-sync
//! apply lock.
//!
//! The sandbox's write faults make the crash points exact: `hang_after_write: N` applies the
//! N-th batch and never answers, `hang_before_write: N` holds it without applying it. The test
//! waits until the sandbox has received that write, then kills the engine with SIGKILL.

use serde_json::{Value, json};

use crate::support::{Fixture, SYNC, TestProject, csv, users};

/// Six rows in three batches of two, a fault, a kill once write `kill_at` arrived (and
/// `applied` contacts exist), then a clean rerun that must write exactly `rerun_creates` rows.
fn crash_then_recover(fault: Value, kill_at: u64, applied: usize, rerun_creates: usize) {
    let rows = users(6);
    let project = TestProject::with(
        Fixture {
            batch_size: 2,
            ..Fixture::default()
        },
        &csv(&rows),
    );
    project.sandbox.set_faults(fault);

    let mut apply = project.spawn_engine(&["apply"]);
    project.sandbox.wait_for_writes(kill_at, &mut apply);
    project
        .sandbox
        .wait_until("the accepted batches are stored", || {
            project.contacts().len() >= applied
        });
    let killed = apply.kill();
    assert_eq!(killed.code, None, "killed by a signal\n{killed}");
    assert_eq!(
        project.contacts().len(),
        applied,
        "{:?}",
        project.contacts()
    );

    project.sandbox.clear_faults();
    let rerun = project.engine(&["apply"]);
    rerun
        .assert_code(0)
        .assert_stderr_contains("Recovered run 1")
        .assert_contains(&format!(
            "Plan: {rerun_creates} to create, 0 to update, 0 to remove."
        ))
        .assert_contains(&format!(
            "{rerun_creates} created/upserted, 0 updated, 0 removed, 0 failed (run 2)"
        ));
    project.assert_contacts_exactly(&rows);

    let runs = project.engine(&["runs"]);
    runs.assert_code(0);
    let first = runs
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap_or_else(|| panic!("run 1 is not listed\n{runs}"));
    assert!(
        first.contains(SYNC) && first.contains("recovered"),
        "{runs}"
    );
    project
        .engine(&["runs", "show", "1"])
        .assert_code(0)
        .assert_contains("recovered")
        .assert_contains("stopped unexpectedly");
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn kill_after_a_middle_batch_was_accepted_then_recover() {
    // Batches 1 and 2 are in the sandbox; batch 2's answer never came, so its rows are
    // planned again (and matched by email, not duplicated); batch 1 comes from the journal.
    crash_then_recover(json!({"hang_after_write": 2}), 2, 4, 4);
}

#[test]
fn kill_before_anything_was_accepted_then_recover() {
    crash_then_recover(json!({"hang_before_write": 1}), 1, 0, 6);
}

#[test]
fn kill_after_the_last_batch_was_accepted_then_recover() {
    crash_then_recover(json!({"hang_after_write": 3}), 3, 6, 2);
}

#[test]
fn kill_during_updates_and_removals_then_recover() {
    // One row per batch: two updates, then one clear. The sandbox applies the second update
    // and never answers; the rerun must finish the update and the clear, and nothing else.
    let mut rows = users(4);
    let project = TestProject::with(
        Fixture {
            batch_size: 1,
            ..Fixture::default()
        },
        &csv(&rows),
    );
    project.engine(&["apply"]).assert_code(0);
    let writes = project.sandbox.write_requests();

    rows[0].last_name = "Changed1".into();
    rows[1].last_name = "Changed2".into();
    rows[2].last_name = "Changed3".into();
    let removed = rows.remove(3);
    project.write_csv(&csv(&rows));
    project
        .sandbox
        .set_faults(json!({"hang_after_write": writes + 2}));
    let mut apply = project.spawn_engine(&["apply"]);
    project.sandbox.wait_for_writes(writes + 2, &mut apply);
    project
        .sandbox
        .wait_until("the second update is stored", || {
            project
                .contacts()
                .iter()
                .filter(|c| c.get("lastname").is_some_and(|n| n.starts_with("Changed")))
                .count()
                >= 2
        });
    apply.kill();

    project.sandbox.clear_faults();
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_stderr_contains("Recovered run 2")
        .assert_contains("Plan: 0 to create, 2 to update, 1 to remove.")
        .assert_contains("0 created/upserted, 2 updated, 1 removed, 0 failed (run 3)");
    let contacts = project.contacts();
    assert_eq!(contacts.len(), 4, "{contacts:?}");
    for row in &rows {
        let contact = contacts
            .iter()
            .find(|c| c.get("email") == Some(row.email.as_str()));
        assert_eq!(
            contact.map(|c| c.mapped()),
            Some(row.properties()),
            "{contacts:?}"
        );
    }
    let cleared = contacts
        .iter()
        .find(|c| c.get("email") == Some(removed.email.as_str()));
    assert_eq!(
        cleared.map(|c| c.mapped().len()),
        Some(1),
        "only the email is left: {contacts:?}"
    );
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn a_second_apply_of_a_locked_sync_fails_at_once_naming_the_holder() {
    let rows = users(4);
    let project = TestProject::new(&csv(&rows));
    project.sandbox.set_faults(json!({"hang_before_write": 1}));

    let mut first = project.spawn_engine(&["apply"]);
    project.sandbox.wait_for_writes(1, &mut first);
    let second = project.engine(&["apply"]);
    second
        .assert_code(1)
        .assert_stderr_contains("locked")
        .assert_stderr_contains(&format!("pid {}", first.pid()));
    assert_eq!(
        project.sandbox.write_requests(),
        1,
        "the second apply sent nothing"
    );
    first.kill();

    // The crash released the lock; the next apply recovers and finishes.
    project.sandbox.clear_faults();
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_stderr_contains("Recovered run 1");
    project.assert_contacts_exactly(&rows);
}
