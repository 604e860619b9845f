//! Record identity: every destination record has one owner. A re-keyed row keeps its record,
//! a match value that moves between rows moves with its values, two rows never write one
//! record, and no plan both writes and clears one record. Each test checks the sandbox's
//! records, their ids, and that the next plan has nothing left to do.

use std::collections::BTreeMap;

use crate::support::{Fixture, SYNC, TestProject, User, csv, users};

/// Record id by email.
fn ids(project: &TestProject) -> BTreeMap<String, String> {
    project
        .contacts()
        .into_iter()
        .filter_map(|c| c.get("email").map(|e| (e.to_string(), c.id.clone())))
        .collect()
}

#[track_caller]
fn assert_no_changes(project: &TestProject) {
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0)
        .assert_contains("No changes.");
}

#[test]
fn a_re_keyed_row_updates_its_record_instead_of_creating_and_clearing_it() {
    let mut rows = users(3);
    let project = TestProject::with(
        Fixture {
            batch_size: 1,
            ..Fixture::default()
        },
        &csv(&rows),
    );
    project.engine(&["apply"]).assert_code(0);
    let before = ids(&project);

    // User 2 re-registers: new id, same email, a changed name.
    rows[1].id = 20;
    rows[1].first_name = "Renamed".into();
    project.write_csv(&csv(&rows));
    let plan = project.engine(&["plan", "--detailed-exitcode"]);
    plan.assert_code(2)
        .assert_contains("~ update \"20\"")
        .assert_contains("re-keyed: takes over the record of row \"2\"")
        .assert_contains("firstname: \"First2\" → \"Renamed\"")
        .assert_contains("Plan: 0 to create, 1 to update, 0 to remove.");
    assert!(!plan.stdout.contains("- remove"), "{plan}");

    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_contains("0 created/upserted, 1 updated, 0 removed, 0 failed");
    project.assert_contacts_exactly(&rows);
    assert_eq!(ids(&project), before, "the same records, none created");
    assert_no_changes(&project);

    // The state followed the record: removing the row now clears that record.
    rows.remove(1);
    project.write_csv(&csv(&rows));
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_contains("0 created/upserted, 0 updated, 1 removed, 0 failed");
    let cleared = project
        .contacts()
        .into_iter()
        .find(|c| c.get("email") == Some("user2@example.com"))
        .expect("the record stays");
    assert_eq!(
        cleared.mapped().len(),
        1,
        "only the email is left: {cleared:?}"
    );
}

#[test]
fn a_changed_primary_key_keeps_every_record_and_sends_nothing() {
    let rows = users(4);
    let project = TestProject::new(&csv(&rows));
    project.engine(&["apply"]).assert_code(0);
    let before = ids(&project);
    let writes = project.sandbox.write_requests();

    project.edit(
        "models/users.yaml",
        "primary_key: [user_id]",
        "primary_key: [email]",
    );
    let plan = project.engine(&["plan", "--detailed-exitcode"]);
    plan.assert_code(2)
        .assert_contains("Plan: 0 to create, 4 to update, 0 to remove.")
        .assert_contains("re-keyed: takes over the record of row \"1\"");
    project.engine(&["apply"]).assert_code(0);
    assert_eq!(
        project.sandbox.write_requests(),
        writes,
        "the values did not change, so nothing is sent"
    );
    project.assert_contacts_exactly(&rows);
    assert_eq!(ids(&project), before);
    assert_no_changes(&project);
}

#[test]
fn a_match_value_that_moves_to_a_new_row_takes_its_values_with_it() {
    let mut rows = users(2);
    let project = TestProject::new(&csv(&rows));
    project.engine(&["apply"]).assert_code(0);
    let before = ids(&project);

    // User 1 changes email; new user 3 signs up with user 1's old email.
    rows[0].email = "user1-new@example.com".into();
    let mut newcomer = User::new(3);
    newcomer.email = "user1@example.com".into();
    rows.push(newcomer);
    project.write_csv(&csv(&rows));
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(2)
        .assert_contains("~ update \"1\"")
        .assert_contains("+ create \"3\"");
    project.engine(&["apply"]).assert_code(0);
    project.assert_contacts_exactly(&rows);
    let after = ids(&project);
    assert_eq!(
        after["user1-new@example.com"], before["user1@example.com"],
        "user 1 kept its record"
    );
    assert_no_changes(&project);
}

#[test]
fn rows_that_trade_match_values_take_each_others_records() {
    let mut rows = users(3);
    let project = TestProject::new(&csv(&rows));
    project.engine(&["apply"]).assert_code(0);
    let before = ids(&project);

    let (a, b) = (rows[0].email.clone(), rows[1].email.clone());
    rows[0].email = b;
    rows[1].email = a;
    project.write_csv(&csv(&rows));
    let plan = project.engine(&["plan", "--detailed-exitcode"]);
    plan.assert_code(2).assert_contains("re-keyed");
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_contains("0 failed");
    project.assert_contacts_exactly(&rows);
    assert_eq!(ids(&project), before, "no record created or lost");
    assert_no_changes(&project);
}

#[test]
fn a_row_moving_onto_a_removed_rows_email_takes_that_record_and_clears_its_own() {
    let mut rows = users(3);
    let project = TestProject::new(&csv(&rows));
    project.engine(&["apply"]).assert_code(0);
    let before = ids(&project);

    // User 3 leaves; user 1 takes user 3's email.
    let gone = rows.remove(2);
    rows[0].email = gone.email.clone();
    project.write_csv(&csv(&rows));
    project.engine(&["apply"]).assert_code(0);
    let contacts = project.contacts();
    assert_eq!(contacts.len(), 3, "no record created: {contacts:?}");
    let holder = contacts
        .iter()
        .find(|c| c.get("email") == Some(gone.email.as_str()))
        .expect("the email's record");
    assert_eq!(holder.mapped(), rows[0].properties());
    assert_eq!(holder.id, before[&gone.email]);
    let left = contacts
        .iter()
        .find(|c| c.get("email") == Some("user1@example.com"))
        .expect("user 1's old record stays");
    assert_eq!(left.mapped().len(), 1, "it was cleared: {left:?}");
    assert_no_changes(&project);
}

#[test]
fn two_rows_with_one_email_stop_the_plan_or_are_skipped_and_listed() {
    let mut rows = users(4);
    rows[2].email = "shared@example.com".into();
    rows[3].email = "SHARED@example.com".into(); // one email to HubSpot, whatever the case
    let mut csv_text = csv(&rows);
    csv_text.push_str("5,,First5,Last5,Company 5,lead\n"); // no email at all
    let project = TestProject::new(&csv_text);

    let plan = project.engine(&["plan"]);
    plan.assert_code(1)
        .assert_stderr_contains("diff::duplicate_match_values")
        .assert_stderr_contains("shared@example.com")
        .assert_stderr_contains("`3`")
        .assert_stderr_contains("`4`")
        .assert_stderr_contains("diff::null_match_values")
        .assert_stderr_contains("`5`")
        .assert_stderr_contains(&format!("syncs/{SYNC}.yaml:8:"));
    project.engine(&["apply"]).assert_code(1);
    assert_eq!(project.sandbox.write_requests(), 0, "nothing was sent");

    project.edit(
        &format!("syncs/{SYNC}.yaml"),
        "  column: email\n",
        "  column: email\n  on_invalid: skip\n",
    );
    let plan = project.engine(&["plan"]);
    plan.assert_code(0)
        .assert_contains("! skip \"3\"")
        .assert_contains("! skip \"4\"")
        .assert_contains("! skip \"5\"")
        .assert_contains("Plan: 2 to create");
    let apply = project.engine(&["apply"]);
    apply.assert_code(0);
    project.assert_contacts_exactly(&rows[..2]);
    let show = project.engine(&["runs", "show", "1"]);
    show.assert_code(0)
        .assert_contains("Skipped rows (3):")
        .assert_contains("\"5\"");
}
