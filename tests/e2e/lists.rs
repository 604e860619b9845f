//! List syncs (`object: lists`): contacts join a static list as their rows enter the model and
//! leave it as their rows leave; the list is found by name, or created on the first run. The
//! tests read the sandbox's lists.

use serde_json::json;

use crate::support::*;

fn sync_file() -> String {
    format!(
        "name: {SYNC}\nmodel: users\ndestination: hubspot\nobject: lists\nlist:\n  name: VIP customers\n\
         match:\n  property: email\n  column: email\n"
    )
}

#[test]
fn contacts_join_and_leave_a_list_created_on_the_first_run() {
    let rows = users(3);
    let project = TestProject::new(&csv(&rows));
    project.write(&format!("syncs/{SYNC}.yaml"), &sync_file());
    let ids: Vec<String> = rows
        .iter()
        .map(|u| {
            project
                .sandbox
                .create_record("contacts", &json!({"email": u.email}))
        })
        .collect();
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("+ add to the list \"1\"")
        .assert_stderr_contains("the first apply creates it");
    project.engine(&["apply"]).assert_code(0);
    let mut all = ids.clone();
    all.sort();
    assert_eq!(project.sandbox.lists().get("VIP customers"), Some(&all));

    // User 2 leaves the model: it leaves the list; a change to a column the list does not
    // use plans nothing.
    let mut changed = rows.clone();
    changed[0].first_name = "Changed".into();
    changed.remove(1);
    project.write_csv(&csv(&changed));
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("- remove from the list \"2\"")
        .assert_contains("0 to create, 0 to update, 1 to remove, 2 unchanged");
    project.engine(&["apply"]).assert_code(0);
    let mut left = vec![ids[0].clone(), ids[2].clone()];
    left.sort();
    assert_eq!(project.sandbox.lists().get("VIP customers"), Some(&left));
    assert_eq!(project.sandbox.lists().len(), 1, "one list, found by name");
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn a_row_without_a_contact_is_named_and_an_active_list_is_refused() {
    let rows = users(2);
    let project = TestProject::new(&csv(&rows));
    project.write(&format!("syncs/{SYNC}.yaml"), &sync_file());
    project
        .sandbox
        .create_record("contacts", &json!({"email": rows[0].email}));
    let apply = project.engine(&["apply"]);
    apply.assert_code(1).assert_contains("1 failed");
    project
        .engine(&["runs", "show", &run_id(&apply)])
        .assert_contains(&format!(
            "no contact has email `{}`, so it cannot join the list",
            rows[1].email
        ));
    assert_eq!(
        project.sandbox.lists().get("VIP customers").map(Vec::len),
        Some(1)
    );

    project.sandbox.admin(
        "/crm/v3/lists",
        &json!({"name": "Engaged", "objectTypeId": "0-1", "processingType": "DYNAMIC",
            "filterBranch": {"filterBranchType": "OR", "filterBranchOperator": "OR",
                "filterBranches": [], "filters": []}}),
    );
    project.edit(&format!("syncs/{SYNC}.yaml"), "VIP customers", "Engaged");
    project
        .engine(&["plan"])
        .assert_code(1)
        .assert_stderr_contains("hubspot::dynamic_list");
}

#[test]
fn a_changed_email_moves_the_membership_to_the_new_contact() {
    let rows = users(3);
    let project = TestProject::new(&csv(&rows));
    project.write(&format!("syncs/{SYNC}.yaml"), &sync_file());
    let ids: Vec<String> = rows
        .iter()
        .map(|u| {
            project
                .sandbox
                .create_record("contacts", &json!({"email": u.email}))
        })
        .collect();
    let moved = project
        .sandbox
        .create_record("contacts", &json!({"email": "moved@example.com"}));
    project.engine(&["apply"]).assert_code(0);

    // Row 1 names another contact; rows 2 and 3 trade emails, so their contacts stay.
    let mut changed = rows.clone();
    changed[0].email = "moved@example.com".into();
    changed[1].email = rows[2].email.clone();
    changed[2].email = rows[1].email.clone();
    project.write_csv(&csv(&changed));
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("the new contact joins the list, the old one leaves")
        .assert_contains("0 to create, 3 to update, 0 to remove");
    project.engine(&["apply"]).assert_code(0);
    let mut members = vec![moved.clone(), ids[1].clone(), ids[2].clone()];
    members.sort();
    assert_eq!(project.sandbox.lists().get("VIP customers"), Some(&members));
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);

    // With `on_remove: nothing` a contact stays a member when its row moves on.
    project.write(
        &format!("syncs/{SYNC}.yaml"),
        &format!("{}on_remove: nothing\n", sync_file()),
    );
    project.write_csv(&csv(&rows));
    project.engine(&["apply"]).assert_code(0);
    let mut members = vec![moved, ids[0].clone(), ids[1].clone(), ids[2].clone()];
    members.sort();
    assert_eq!(project.sandbox.lists().get("VIP customers"), Some(&members));
}
