//! HubSpot objects beyond contacts, and the write modes: `mode: insert` (never changes a
//! record, skips the ones that exist), `mode: update` (never creates),
//! `on_remove: delete`, deals and custom objects found through the schemas API. Every test
//! checks the sandbox's records, not only exit codes.

use serde_json::{Value, json};

use crate::support::*;

fn sync_file() -> String {
    format!("syncs/{SYNC}.yaml")
}

/// Contacts created in the sandbox by someone else (the CRM's own records).
fn existing_contacts(project: &TestProject, users: &[User]) -> Vec<String> {
    let inputs: Vec<_> = users
        .iter()
        .map(|u| json!({"properties": {"email": u.email, "firstname": "Before"}}))
        .collect();
    let answer = project.sandbox.admin(
        "/crm/v3/objects/contacts/batch/create",
        &json!({ "inputs": inputs }),
    );
    answer["results"]
        .as_array()
        .expect("created records")
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn update_mode_updates_the_records_that_exist_and_creates_none() {
    let rows = users(3);
    let project = TestProject::new(&csv(&rows));
    project.edit(&sync_file(), "mode: upsert", "mode: update");
    let ids = existing_contacts(&project, &rows[..2]);

    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("update the record matched on its match value (never created)");
    let apply = project.engine(&["apply"]);
    apply.assert_code(1).assert_contains("1 failed");
    let contacts = project.contacts();
    assert_eq!(contacts.len(), 2, "no record is created in update mode");
    for (contact, (user, id)) in contacts.iter().zip(rows.iter().zip(&ids)) {
        assert_eq!(&contact.id, id);
        assert_eq!(contact.mapped(), user.properties(), "record {id}");
    }
    let id = run_id(&apply);
    project
        .engine(&["runs", "show", &id])
        .assert_contains("\"3\"")
        .assert_contains("user3@example.com");

    // Unchanged, the row without a record is held back and nothing is sent again.
    let writes = project.sandbox.write_requests();
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("! hold \"3\"");
    project.engine(&["apply"]).assert_code(1);
    assert_eq!(project.sandbox.write_requests(), writes);

    // A changed row goes to its record by id from now on.
    let mut changed = rows.clone();
    changed[0].first_name = "Ada".into();
    project.write_csv(&csv(&changed));
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains(&format!("~ update \"1\" (id {})", ids[0]));
    project.engine(&["apply"]).assert_code(1);
    let contacts = project.contacts();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[0].get("firstname"), Some("Ada"));
}

#[test]
fn update_mode_matches_on_the_record_id() {
    let rows = users(2);
    let project = TestProject::new("id,email,first_name,last_name,company,lifecycle\n");
    let ids = existing_contacts(&project, &rows);
    // The model's key column holds HubSpot's record ids.
    let csv_text = format!(
        "id,email,first_name,last_name,company,lifecycle\n{},{},Ada,Lovelace,Acme,lead\n{},{},Alan,Turing,Acme,customer\n",
        ids[0], rows[0].email, ids[1], rows[1].email
    );
    project.write_csv(&csv_text);
    project.edit(
        &sync_file(),
        "  property: email\n  column: email",
        "  property: hs_object_id\n  column: user_id",
    );
    // Upserting on the record id would create records HubSpot must number: refused.
    let plan = project.engine(&["plan"]);
    plan.assert_code(1)
        .assert_stderr_contains("hubspot::match_on_record_id")
        .assert_stderr_contains("set `mode: update`");
    assert!(plan.points_at(&sync_file()), "{plan}");
    assert_eq!(
        project.sandbox.write_requests(),
        1,
        "only the admin's batch create"
    );

    project.edit(&sync_file(), "mode: upsert", "mode: update");
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_contains("0 created/upserted, 2 updated");
    let contacts = project.contacts();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[0].get("firstname"), Some("Ada"));
    assert_eq!(contacts[1].get("lastname"), Some("Turing"));
    assert_eq!(contacts[1].get("email"), Some(rows[1].email.as_str()));
}

#[test]
fn on_remove_delete_archives_the_records_of_removed_rows() {
    let rows = users(3);
    let project = TestProject::new(&csv(&rows));
    project.edit(&sync_file(), "on_remove: clear_fields", "on_remove: delete");
    project.engine(&["apply"]).assert_code(0);
    project.assert_contacts_exactly(&rows);
    let gone = project.contacts()[1].id.clone();

    let kept = vec![rows[0].clone(), rows[2].clone()];
    project.write_csv(&csv(&kept));
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains(&format!("- remove \"2\" (id {gone}): delete the record"));
    project.engine(&["apply"]).assert_code(0);
    project.assert_contacts_exactly(&kept);
    assert!(project.contacts().iter().all(|c| c.id != gone));
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);

    // The row comes back: a new record, since the old one is gone.
    project.write_csv(&csv(&rows));
    project.engine(&["apply"]).assert_code(0);
    project.assert_contacts_exactly(&rows);
}

#[test]
fn delete_in_update_mode_is_refused_before_anything_is_sent() {
    let project = TestProject::new(&csv(&users(2)));
    project.edit(&sync_file(), "mode: upsert", "mode: update");
    project.edit(&sync_file(), "on_remove: clear_fields", "on_remove: delete");
    let validate = project.engine(&["validate"]);
    validate
        .assert_code(1)
        .assert_stderr_contains("spec::delete_in_update_mode");
    assert!(validate.points_at(&sync_file()), "{validate}");
    project.engine(&["apply"]).assert_code(1);
    assert_eq!(project.sandbox.write_requests(), 0);
    assert!(project.contacts().is_empty());
}

#[test]
fn deals_and_custom_objects_are_written_and_an_unknown_object_lists_the_portals() {
    let rows = users(2);
    let project = TestProject::new(&csv(&rows));
    let schema = project.sandbox.admin(
        "/crm-object-schemas/v3/schemas",
        &json!({
            "name": "thnks",
            "labels": {"singular": "Thnk", "plural": "Thnks"},
            "primaryDisplayProperty": "thnks_ref",
            "requiredProperties": ["thnks_ref"],
            "properties": [
                {"name": "thnks_ref", "label": "Reference", "type": "string", "fieldType": "text",
                 "hasUniqueValue": true},
                {"name": "gift", "label": "Gift", "type": "string", "fieldType": "text"}
            ],
            "associatedObjects": ["CONTACT"]
        }),
    );
    let type_id = schema["objectTypeId"]
        .as_str()
        .expect("a type id")
        .to_string();
    let sync = |object: &str| {
        format!(
            "name: {SYNC}\nmodel: users\ndestination: hubspot\nobject: {object}\nmatch:\n  property: thnks_ref\n  column: email\nmapping:\n  - property: gift\n    column: first_name\non_remove: delete\n"
        )
    };

    project.write(&sync_file(), &sync("thnk"));
    let plan = project.engine(&["plan"]);
    plan.assert_code(1)
        .assert_stderr_contains("hubspot::unknown_object")
        .assert_stderr_contains(&format!("thnks ({type_id})"))
        .assert_stderr_contains("did you mean `thnks`?");
    assert!(plan.points_at(&sync_file()), "{plan}");

    project.write(&sync_file(), &sync("thnks"));
    project.engine(&["apply"]).assert_code(0);
    let records = project.sandbox.records(&type_id);
    let stored: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r.get("thnks_ref").unwrap_or(""),
                r.get("gift").unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        stored,
        [
            ("user1@example.com", "First1"),
            ("user2@example.com", "First2")
        ]
    );
    project.write_csv(&csv(&rows[..1]));
    project.engine(&["apply"]).assert_code(0);
    assert_eq!(project.sandbox.records(&type_id).len(), 1);

    // Deals, matched on a unique property an admin created.
    project.sandbox.admin(
        "/crm/v3/properties/deals",
        &json!({"name": "deal_ref", "label": "Deal ref", "type": "string", "fieldType": "text",
                "groupName": "dealinformation", "hasUniqueValue": true}),
    );
    project.write(
        "syncs/deals.yaml",
        "name: users_to_deals\nmodel: users\ndestination: hubspot\nobject: deals\nmatch:\n  property: deal_ref\n  column: email\nmapping:\n  - property: dealname\n    column: company\n  - property: dealstage\n    value: closedwon\n",
    );
    project
        .engine(&["apply", "--sync", "users_to_deals"])
        .assert_code(0);
    let deals = project.sandbox.records("deals");
    assert_eq!(deals.len(), 1);
    assert_eq!(deals[0].get("dealname"), Some("Company 1"));
    assert_eq!(deals[0].get("dealstage"), Some("closedwon"));
}

#[test]
fn insert_mode_creates_new_records_and_leaves_existing_ones_untouched() {
    let rows = users(3);
    let project = TestProject::new(&csv(&rows));
    project.edit(&sync_file(), "mode: upsert", "mode: insert");
    project.edit(&sync_file(), "on_remove: clear_fields", "on_remove: delete");
    // Someone else's contact holds user 2's email, in another case.
    let theirs = project.sandbox.create_record(
        "contacts",
        &json!({"email": "USER2@example.com", "firstname": "Theirs"}),
    );

    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("skipped if a record holds its match value already");
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_contains("2 created/upserted, 0 updated, 0 removed, 0 failed, 1 skipped");
    let contacts = project.contacts();
    assert_eq!(contacts.len(), 3, "{contacts:?}");
    let by_email = |email: &str| {
        project
            .contacts()
            .into_iter()
            .find(|c| c.get("email") == Some(email))
    };
    let untouched = by_email("user2@example.com").expect("their contact");
    assert_eq!(untouched.id, theirs);
    assert_eq!(untouched.get("firstname"), Some("Theirs"));
    assert_eq!(untouched.get("lastname"), None);
    for user in [&rows[0], &rows[2]] {
        let contact = by_email(&user.email).expect("created");
        assert_eq!(contact.mapped(), user.properties());
    }
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);

    // A changed row sends nothing: insert mode changes no record.
    let mut changed = rows.clone();
    changed[0].first_name = "Ada".into();
    project.write_csv(&csv(&changed));
    let writes = project.sandbox.write_requests();
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("not sent (mode: insert changes no record)");
    project.engine(&["apply"]).assert_code(0);
    assert_eq!(project.sandbox.write_requests(), writes);
    assert_eq!(
        by_email(&rows[0].email).and_then(|c| c.get("firstname").map(str::to_string)),
        Some(rows[0].first_name.clone())
    );
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);

    // Removed rows delete only the records the sync created: theirs stays.
    project.write_csv(&csv(&changed[..1]));
    project.engine(&["apply"]).assert_code(0);
    let mut left: Vec<String> = project
        .contacts()
        .iter()
        .filter_map(|c| c.get("email").map(str::to_string))
        .collect();
    left.sort();
    assert_eq!(
        left,
        [rows[0].email.clone(), "user2@example.com".to_string()]
    );
    assert_eq!(by_email("user2@example.com").map(|c| c.id), Some(theirs));
}

#[test]
fn values_are_converted_to_the_property_types_and_bad_ones_are_listed_per_row() {
    let project = TestProject::new("id,email,first_name,last_name,company,lifecycle\n");
    project.write(
        "models/users.yaml",
        "name: users\nprimary_key: [user_id]\nsql: |\n  SELECT id AS user_id, email, birthday, seen, vip, status, orders FROM users\n",
    );
    project.write(
        &sync_file(),
        &format!(
            "name: {SYNC}\nmodel: users\ndestination: hubspot\nobject: contacts\nmatch:\n  property: email\n  column: email\nmapping:\n  - {{ property: date_of_birth, column: birthday }}\n  - {{ property: last_seen_at, column: seen }}\n  - {{ property: is_vip, column: vip }}\n  - {{ property: hs_lead_status, column: status }}\n  - {{ property: num_orders, column: orders }}\n"
        ),
    );
    let good = "1,ada@example.com,2024-05-01T13:00:00Z,2024-05-01T13:22:00.250Z,yes,OPEN,3\n";
    project.write_csv(&format!(
        "id,email,birthday,seen,vip,status,orders\n{good}\
         2,alan@example.com,2024-05-02T00:00:00Z,2024-05-02T10:00:00Z,no,Open,4\n\
         3,grace@example.com,2024-05-03T00:00:00Z,2024-05-03T10:00:00Z,true,NEW,twelve\n"
    ));

    let plan = project.engine(&["plan"]);
    plan.assert_code(0)
        .assert_contains("1 to create")
        .assert_contains("2 skipped")
        .assert_contains("! skip \"2\"")
        .assert_contains("property `hs_lead_status`: `Open` is not one of the property's options; options are case-sensitive: use `OPEN`")
        .assert_contains("! skip \"3\"")
        .assert_contains("property `num_orders`: `twelve` is not a number");
    // The good row is written; the apply fails, naming the rows left out.
    project
        .engine(&["apply"])
        .assert_code(1)
        .assert_contains("2 row(s) left out: a value does not fit its property");
    let contacts = project.contacts();
    assert_eq!(
        contacts.len(),
        1,
        "only the row whose values convert: {contacts:?}"
    );
    let ada = &contacts[0];
    assert_eq!(
        ada.get("date_of_birth"),
        Some("1714521600000"),
        "midnight UTC"
    );
    assert_eq!(ada.get("last_seen_at"), Some("1714569720250"));
    assert_eq!(ada.get("is_vip"), Some("true"));
    assert_eq!(ada.get("hs_lead_status"), Some("OPEN"));
    assert_eq!(ada.get("num_orders"), Some("3"));
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("2 skipped");

    // Fixed data goes ahead on the next run.
    project.write_csv(&format!(
        "id,email,birthday,seen,vip,status,orders\n{good}\
         2,alan@example.com,2024-05-02T00:00:00Z,2024-05-02T10:00:00Z,no,OPEN,4\n\
         3,grace@example.com,2024-05-03T00:00:00Z,2024-05-03T10:00:00Z,true,NEW,12\n"
    ));
    project.engine(&["apply"]).assert_code(0);
    let contacts = project.contacts();
    assert_eq!(contacts.len(), 3);
    assert_eq!(contacts[1].get("is_vip"), Some("false"));
    assert_eq!(contacts[2].get("num_orders"), Some("12"));
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

/// The fingerprint covers values as converted for their property's type: when an admin turns
/// a text property into a date, what the engine sends changes, and the next plan says so.
#[test]
fn a_property_type_changed_in_hubspot_shows_in_the_next_plan() {
    let rows = users(2);
    let project = TestProject::new(&csv(&rows));
    project.sandbox.admin(
        "/crm/v3/properties/contacts",
        &json!({"name": "signed_up", "label": "Signed up", "type": "string",
            "fieldType": "text", "groupName": "contactinformation"}),
    );
    project.edit(
        &sync_file(),
        "mapping:
",
        "mapping:
  - { property: signed_up, value: \"2024-03-05T10:30:00Z\" }
",
    );
    project.engine(&["apply"]).assert_code(0);
    let signed_up = |p: &TestProject| -> Vec<Option<String>> {
        p.contacts()
            .iter()
            .map(|c| c.get("signed_up").map(str::to_string))
            .collect()
    };
    assert_eq!(
        signed_up(&project),
        vec![Some("2024-03-05T10:30:00Z".to_string()); 2]
    );

    project.sandbox.admin_request(
        reqwest::Method::PATCH,
        "/crm/v3/properties/contacts/signed_up",
        &json!({"type": "date", "fieldType": "date"}),
    );
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("0 to create, 2 to update, 0 to remove")
        .assert_contains("1709596800000");
    project.engine(&["apply"]).assert_code(0);
    assert_eq!(
        signed_up(&project),
        vec![Some("1709596800000".to_string()); 2],
        "midnight UTC, as a date property takes it"
    );
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn a_property_without_unique_values_is_matched_through_batched_search_look_ups() {
    let project = TestProject::new(
        "id,email,first_name,last_name,company,lifecycle\n\
         1,a@x.example,Ada,L,Acme,lead\n\
         2,b@x.example,Bob,M,Initech,lead\n\
         3,c@x.example,Cy,N,Globex,lead\n",
    );
    project.write(
        &sync_file(),
        &format!(
            "name: {SYNC}\nmodel: users\ndestination: hubspot\nobject: companies\nmatch:\n  property: name\n  column: company\n  lookup: search\nmapping:\n  - {{ property: city, column: first_name }}\n"
        ),
    );
    let create = |name: &str| {
        project
            .sandbox
            .create_record("companies", &json!({"name": name}))
    };
    let acme = create("ACME");
    let globex = [create("Globex"), create("Globex")];

    // Without `lookup: search`, a property without unique values is refused.
    project.edit(&sync_file(), "  lookup: search\n", "");
    project
        .engine(&["plan"])
        .assert_code(1)
        .assert_stderr_contains("hubspot::match_property_not_unique")
        .assert_stderr_contains("match.lookup: search");
    project.edit(
        &sync_file(),
        "  column: company\n",
        "  column: company\n  lookup: search\n",
    );

    let apply = project.engine(&["apply"]);
    apply
        .assert_code(1)
        .assert_contains("2 created/upserted, 0 updated, 0 removed, 1 failed");
    let searches = |p: &TestProject| {
        p.sandbox.stats()["requests"]["search"]
            .as_u64()
            .unwrap_or(0)
    };
    assert_eq!(searches(&project), 1, "one search for the batch");
    let companies = project.sandbox.records("companies");
    assert_eq!(companies.len(), 4, "{companies:?}");
    let by_id = |id: &str| companies.iter().find(|c| c.id == id).expect("a company");
    assert_eq!(
        by_id(&acme).get("city"),
        Some("Ada"),
        "found ignoring case and updated"
    );
    assert_eq!(by_id(&acme).get("name"), Some("Acme"));
    for id in &globex {
        assert_eq!(
            by_id(id).get("city"),
            None,
            "an ambiguous value writes nothing"
        );
    }
    let initech: Vec<_> = companies
        .iter()
        .filter(|c| c.get("name") == Some("Initech"))
        .collect();
    assert_eq!(initech.len(), 1);
    assert_eq!(initech[0].get("city"), Some("Bob"));
    project
        .engine(&["runs", "show", &run_id(&apply)])
        .assert_contains(&format!(
            "2 companies records have name `Globex` (ids {}, {})",
            globex[0], globex[1]
        ));

    // The record ids are in the state: a changed row is updated by id, with no search.
    project.write_csv(
        "id,email,first_name,last_name,company,lifecycle\n\
         1,a@x.example,Ada2,L,Acme,lead\n\
         2,b@x.example,Bob,M,Initech,lead\n\
         3,c@x.example,Cy,N,Globex,lead\n",
    );
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains(&format!("~ update \"1\" (id {acme})"));
    project.engine(&["apply"]).assert_code(1);
    assert_eq!(searches(&project), 1, "no search for rows with a record id");
    let companies = project.sandbox.records("companies");
    assert_eq!(
        companies
            .iter()
            .find(|c| c.id == acme)
            .and_then(|c| c.get("city")),
        Some("Ada2")
    );
}

#[test]
fn shared_and_null_match_values_stop_the_plan_in_every_mode_and_matching_kind() {
    let mut rows = users(3);
    rows[1].email = "shared@example.com".into();
    rows[2].email = "SHARED@example.com".into();
    let mut csv_text = csv(&rows);
    csv_text.push_str("4,,First4,Last4,Company 4,lead\n");
    for mode in ["insert", "update"] {
        let project = TestProject::new(&csv_text);
        project.edit(&sync_file(), "mode: upsert", &format!("mode: {mode}"));
        project.edit(
            &sync_file(),
            "on_remove: clear_fields",
            "on_remove: nothing",
        );
        project
            .engine(&["plan"])
            .assert_code(1)
            .assert_stderr_contains("diff::duplicate_match_values")
            .assert_stderr_contains("diff::null_match_values");
        project.engine(&["apply"]).assert_code(1);
        assert_eq!(project.sandbox.write_requests(), 0, "{mode}: nothing sent");
    }

    // Look-ups compare values ignoring case, as HubSpot's search does.
    let project = TestProject::new(
        "id,email,first_name,last_name,company,lifecycle\n\
         1,a@x.example,Ada,L,Acme,lead\n\
         2,b@x.example,Bob,M,ACME,lead\n\
         3,c@x.example,Cy,N,,lead\n",
    );
    project.write(
        &sync_file(),
        &format!(
            "name: {SYNC}\nmodel: users\ndestination: hubspot\nobject: companies\nmatch:\n  property: name\n  column: company\n  lookup: search\nmapping:\n  - {{ property: city, column: first_name }}\n"
        ),
    );
    project
        .engine(&["plan"])
        .assert_code(1)
        .assert_stderr_contains("diff::duplicate_match_values")
        .assert_stderr_contains("diff::null_match_values");
    project.engine(&["apply"]).assert_code(1);
    assert_eq!(
        project.sandbox.stats()["total_requests"].as_u64(),
        Some(2),
        "two property reads, no search, no write"
    );
}

#[test]
fn insert_mode_skips_existing_records_when_hubspot_refuses_the_whole_batch() {
    // HubSpot without multi-status: a batch create meeting one existing record is a 409 for
    // the whole batch, naming only that record. The engine reads which records exist, skips
    // those rows and creates the others.
    let rows = users(4);
    let project = TestProject::new(&csv(&rows));
    project.edit(&sync_file(), "mode: upsert", "mode: insert");
    project
        .sandbox
        .set_faults(json!({"whole_batch_conflicts": true}));
    let theirs: Vec<String> = [1, 3]
        .iter()
        .map(|i: &usize| {
            project.sandbox.create_record(
                "contacts",
                &json!({"email": rows[*i].email, "firstname": "Theirs"}),
            )
        })
        .collect();
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_contains("2 created/upserted, 0 updated, 0 removed, 0 failed, 2 skipped");
    let requests = &project.sandbox.stats()["requests"];
    assert_eq!(
        requests["batch_create"], 2,
        "refused, then the rest: {requests}"
    );
    assert_eq!(requests["batch_read"], 1, "which records exist: {requests}");
    let contacts = project.contacts();
    assert_eq!(contacts.len(), 4, "{contacts:?}");
    for contact in &contacts {
        if theirs.contains(&contact.id) {
            assert_eq!(contact.get("firstname"), Some("Theirs"), "untouched");
        } else {
            assert!(contact.get("lastname").is_some(), "created: {contact:?}");
        }
    }
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn search_look_ups_in_insert_and_update_mode() {
    for mode in ["insert", "update"] {
        let project = TestProject::new(
            "id,email,first_name,last_name,company,lifecycle\n\
             1,a@x.example,Ada,L,Acme,lead\n\
             2,b@x.example,Bob,M,Initech,lead\n",
        );
        project.write(
            &sync_file(),
            &format!(
                "name: {SYNC}\nmodel: users\ndestination: hubspot\nobject: companies\nmode: {mode}\nmatch:\n  property: name\n  column: company\n  lookup: search\nmapping:\n  - {{ property: city, column: first_name }}\n"
            ),
        );
        let acme = project
            .sandbox
            .create_record("companies", &json!({"name": "ACME", "city": "Theirs"}));
        let apply = project.engine(&["apply"]);
        let companies = project.sandbox.records("companies");
        let city = |name: &str| {
            companies
                .iter()
                .find(|c| c.get("name").is_some_and(|n| n.eq_ignore_ascii_case(name)))
                .and_then(|c| c.get("city").map(str::to_string))
        };
        if mode == "insert" {
            apply
                .assert_code(0)
                .assert_contains("1 created/upserted, 0 updated, 0 removed, 0 failed, 1 skipped");
            assert_eq!(companies.len(), 2);
            assert_eq!(
                city("acme").as_deref(),
                Some("Theirs"),
                "skipped, untouched"
            );
            assert_eq!(city("initech").as_deref(), Some("Bob"));
        } else {
            apply
                .assert_code(1)
                .assert_contains("0 created/upserted, 1 updated, 0 removed, 1 failed");
            assert_eq!(companies.len(), 1, "update mode creates nothing");
            assert_eq!(companies[0].id, acme);
            assert_eq!(city("acme").as_deref(), Some("Ada"));
            project
                .engine(&["runs", "show", &run_id(&apply)])
                .assert_contains("no companies record has name `Initech`");
        }
    }
}

/// A model of one company per user: the domain of the user's email, the company's name.
const COMPANIES_MODEL: &str = "\
name: companies
primary_key: [user_id]
sql: |
  SELECT id AS user_id, split_part(email, '@', 2) AS domain, company, first_name
  FROM users
";

/// A companies sync matched on `domain`, else on `name` (TimeRex's rule).
fn fallback_sync(mode: &str) -> String {
    format!(
        "name: {SYNC}\nmodel: companies\ndestination: hubspot\nobject: companies\nmode: {mode}\n\
         match:\n  property: domain\n  column: domain\n  fallback: [name]\nmapping:\n  \
         - {{ property: name, column: company }}\n  - {{ property: city, column: first_name }}\n"
    )
}

#[test]
fn an_ordered_list_of_match_properties_takes_the_first_that_finds_a_record() {
    for mode in ["upsert", "insert", "update"] {
        let project = TestProject::new(
            "id,email,first_name,last_name,company,lifecycle\n\
             1,a@acme.example,Ada,L,Acme Corp,lead\n\
             2,b@globex.example,Bob,M,GLOBEX,lead\n\
             3,c@initech.example,Cy,N,Initech,lead\n\
             4,d@hooli.example,Di,O,Hooli,lead\n",
        );
        project.write("models/companies.yaml", COMPANIES_MODEL);
        project.write(&sync_file(), &fallback_sync(mode));
        let create = |properties: Value| project.sandbox.create_record("companies", &properties);
        // Found by domain; found by name (it has no domain); its name is Initech's, but its
        // domain says it is another company.
        let acme = create(json!({"domain": "acme.example", "name": "Acme", "city": "Theirs"}));
        let globex = create(json!({"name": "Globex", "city": "Theirs"}));
        let other = create(json!({"domain": "initech.other", "name": "Initech", "city": "Theirs"}));

        let apply = project.engine(&["apply"]);
        let companies = project.sandbox.records("companies");
        let by_id = |id: &str| companies.iter().find(|c| c.id == id).expect("a company");
        let hooli: Vec<_> = companies
            .iter()
            .filter(|c| c.get("name") == Some("Hooli"))
            .collect();
        if mode == "update" {
            assert_eq!(
                companies.len(),
                3,
                "update mode creates nothing: {companies:?}"
            );
            assert!(hooli.is_empty());
        } else {
            assert_eq!(
                companies.len(),
                4,
                "{mode}: one record created: {companies:?}"
            );
            assert_eq!(hooli.len(), 1);
            assert_eq!(hooli[0].get("domain"), Some("hooli.example"));
            assert_eq!(hooli[0].get("city"), Some("Di"));
        }
        assert_eq!(
            by_id(&other).get("city"),
            Some("Theirs"),
            "{mode}: untouched"
        );
        if mode == "insert" {
            apply
                .assert_code(0)
                .assert_contains("1 created/upserted, 0 updated, 0 removed, 0 failed, 3 skipped");
            for id in [&acme, &globex] {
                assert_eq!(by_id(id).get("city"), Some("Theirs"), "skipped, untouched");
            }
            project
                .engine(&["runs", "show", &run_id(&apply)])
                .assert_contains(&format!(
                    "a companies record with name `GLOBEX` exists already (record {globex})"
                ));
        } else {
            let (written, failed) = if mode == "update" { (2, 2) } else { (3, 1) };
            apply.assert_code(1).assert_contains(&if mode == "update" {
                "0 created/upserted, 2 updated, 0 removed, 2 failed".to_string()
            } else {
                "3 created/upserted, 0 updated, 0 removed, 1 failed".to_string()
            });
            assert_eq!(by_id(&acme).get("city"), Some("Ada"));
            assert_eq!(by_id(&acme).get("name"), Some("Acme Corp"));
            assert_eq!(by_id(&globex).get("city"), Some("Bob"));
            assert_eq!(
                by_id(&globex).get("domain"),
                Some("globex.example"),
                "the record found by name takes the row's domain"
            );
            project
                .engine(&["runs", "show", &run_id(&apply)])
                .assert_contains(&format!(
                    "the companies record {other} found by name `Initech` has domain \
                     `initech.other`"
                ));
            if mode == "update" {
                project
                    .engine(&["runs", "show", &run_id(&apply)])
                    .assert_contains(
                        "no companies record has domain `hooli.example` or name `Hooli`, and \
                         `mode: update` creates none",
                    );
            }
            // The ids are in the state: the next plan changes nothing and holds the failed rows.
            project
                .engine(&["plan"])
                .assert_code(0)
                .assert_contains(&format!(
                    "0 to create, 0 to update, 0 to remove, {written} unchanged, {failed} held back"
                ));
        }
    }
}

#[test]
fn fallback_values_shared_by_two_rows_or_not_mapped_stop_the_plan() {
    let project = TestProject::new(
        "id,email,first_name,last_name,company,lifecycle\n\
         1,a@acme.example,Ada,L,Acme,lead\n\
         2,b@acme.example2,Bob,M,ACME,lead\n",
    );
    project.write("models/companies.yaml", COMPANIES_MODEL);
    project.write(&sync_file(), &fallback_sync("upsert"));
    project
        .engine(&["plan"])
        .assert_code(1)
        .assert_stderr_contains("diff::duplicate_match_values")
        .assert_stderr_contains("`name` value(s) are shared by more than one row");
    project.edit(
        &sync_file(),
        "  - { property: name, column: company }\n",
        "",
    );
    project
        .engine(&["validate"])
        .assert_code(1)
        .assert_stderr_contains("spec::unmapped_fallback")
        .assert_stderr_contains("fallback property `name` is not mapped");
    assert!(project.sandbox.records("companies").is_empty());
}
