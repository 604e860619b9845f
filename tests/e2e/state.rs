//! State damage is named, never papered over: a lost database or a missing or unreadable
//! snapshot stops every plan with `state::corrupt`, `engine state check` reports it without
//! changing anything, and `engine state rebuild` recovers the sync from the destination's
//! records.

use crate::support::{SYNC, TestProject, csv, users};

fn remove_database(project: &TestProject) {
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        let _ = fs_err::remove_file(project.path().join(".engine").join(name));
    }
}

#[test]
fn a_lost_state_database_is_named_and_rebuilt_from_the_destination() {
    let rows = users(3);
    let project = TestProject::new(&csv(&rows));
    project.engine(&["apply"]).assert_code(0);
    project
        .engine(&["state", "check"])
        .assert_code(0)
        .assert_contains("generation 1, 3 row(s) in the snapshot")
        .assert_contains("The state is consistent.");

    remove_database(&project);
    for args in [&["plan"][..], &["apply"], &["state", "check"]] {
        project
            .engine(args)
            .assert_code(1)
            .assert_stderr_contains("state::corrupt")
            .assert_stderr_contains("state.db")
            .assert_stderr_contains("engine state rebuild");
    }
    assert!(
        !project.path().join(".engine/state.db").exists(),
        "no new state was started silently"
    );

    // Without --apply the rebuild only shows what it found.
    project
        .engine(&["state", "rebuild", "--sync", SYNC])
        .assert_code(0)
        .assert_contains("3 of 3 model row(s) have a record")
        .assert_contains("No changes.")
        .assert_contains("Nothing was changed.");
    assert!(!project.path().join(".engine/state.db").exists());

    project
        .engine(&["state", "rebuild", "--sync", SYNC, "--apply"])
        .assert_code(0)
        .assert_contains("Committed the rebuilt snapshot");
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0)
        .assert_contains("No changes.");

    // The rebuilt state knows the records: a removal clears, a new row creates, no duplicate.
    let mut next = users(4);
    next.remove(0);
    project.write_csv(&csv(&next));
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_contains("1 created/upserted, 0 updated, 1 removed, 0 failed");
    let contacts = project.contacts();
    assert_eq!(contacts.len(), 4, "{contacts:?}");
    let first = contacts
        .iter()
        .find(|c| c.get("email") == Some("user1@example.com"))
        .expect("user 1's record stays");
    assert_eq!(first.mapped().len(), 1, "cleared: {first:?}");
}

#[test]
fn a_missing_or_unreadable_snapshot_is_named_and_rebuilt() {
    let mut rows = users(3);
    let project = TestProject::new(&csv(&rows));
    project.engine(&["apply"]).assert_code(0);
    let snapshot = project
        .path()
        .join(format!(".engine/snapshots/{SYNC}/gen-1.parquet"));
    assert!(snapshot.exists());

    // A snapshot from another generation (fewer rows than committed) is inconsistent.
    let saved = fs_err::read(&snapshot).unwrap();
    let other = TestProject::new(&csv(&users(1)));
    other.engine(&["apply"]).assert_code(0);
    fs_err::copy(
        other
            .path()
            .join(format!(".engine/snapshots/{SYNC}/gen-1.parquet")),
        &snapshot,
    )
    .unwrap();
    project
        .engine(&["state", "check"])
        .assert_code(1)
        .assert_contains("snapshot inconsistent")
        .assert_stderr_contains("holds 1 row(s), but generation 1 was committed with 3");
    fs_err::write(&snapshot, saved).unwrap();
    project.engine(&["state", "check"]).assert_code(0);

    fs_err::write(&snapshot, b"garbage").unwrap();
    project
        .engine(&["plan"])
        .assert_code(1)
        .assert_stderr_contains("state::corrupt")
        .assert_stderr_contains("gen-1.parquet");
    project
        .engine(&["state", "check"])
        .assert_code(1)
        .assert_contains("snapshot unreadable");

    fs_err::remove_file(&snapshot).unwrap();
    project
        .engine(&["apply"])
        .assert_code(1)
        .assert_stderr_contains("state::corrupt")
        .assert_stderr_contains("is missing");
    let writes = project.sandbox.write_requests();

    // A record changed in the destination since: the rebuild reads what it holds, and the
    // plan sends exactly the difference.
    rows[1].first_name = "Changed".into();
    project.write_csv(&csv(&rows));
    project
        .engine(&["state", "rebuild", "--sync", SYNC, "--apply"])
        .assert_code(0)
        .assert_contains("3 of 3 model row(s) have a record")
        .assert_contains("firstname: \"First2\" → \"Changed\"");
    assert_eq!(
        project.sandbox.write_requests(),
        writes,
        "a rebuild only reads"
    );
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_contains("0 created/upserted, 1 updated, 0 removed, 0 failed");
    project.assert_contacts_exactly(&rows);
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}
