//! Associations: each record a sync writes is linked to records of another object, found by
//! record id or by a unique property, with labels, one-to-many, only for created records, and
//! with stale links removed when the sync asks. Every test reads the sandbox's associations.

use std::collections::BTreeMap;

use serde_json::json;

use crate::support::*;

const MODEL: &str = "\
name: users
primary_key: [user_id]
sql: |
  SELECT id AS user_id, email, first_name, domains, deals FROM users
";

/// Contacts matched on email, linked to companies by domain (labels from the column, stale
/// links removed) and to deals by id (links only added).
fn sync_file() -> String {
    format!(
        "name: {SYNC}\nmodel: users\ndestination: hubspot\nobject: contacts\nmatch:\n  \
         property: email\n  column: email\nmapping:\n  - {{ property: firstname, column: first_name }}\n\
         associations:\n  - to: companies\n    column: domains\n    by: domain\n    \
         remove_stale: true\n  - to: deals\n    column: deals\n"
    )
}

/// `(contact id, target id)` → type ids, for the contacts of `emails`.
fn links(project: &TestProject, to: &str) -> BTreeMap<(String, String), Vec<u64>> {
    project.sandbox.associations("contacts", to)
}

#[test]
fn records_are_linked_by_id_and_by_property_and_stale_links_are_removed() {
    let project = TestProject::new("id,email,first_name,domains,deals\n");
    project.write("models/users.yaml", MODEL);
    project.write(&format!("syncs/{SYNC}.yaml"), &sync_file());
    let create = |object: &str, properties: serde_json::Value| {
        project.sandbox.create_record(object, &properties)
    };
    let acme = create(
        "companies",
        json!({"domain": "acme.example", "name": "Acme"}),
    );
    let globex = create(
        "companies",
        json!({"domain": "globex.example", "name": "Globex"}),
    );
    let d1 = create("deals", json!({"dealname": "Renewal"}));
    let d2 = create("deals", json!({"dealname": "Upsell"}));
    project.write_csv(&format!(
        "id,email,first_name,domains,deals\n\
         1,ada@example.com,Ada,\"[{{\"\"value\"\":\"\"acme.example\"\",\"\"label\"\":\"\"Primary\"\"}},{{\"\"value\"\":\"\"globex.example\"\"}}]\",\"{d1},{d2}\"\n\
         2,bob@example.com,Bob,globex.example,{d2}\n"
    ));

    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("+ associate companies acme.example (label: Primary)")
        .assert_contains("+ associate companies globex.example")
        .assert_contains(&format!("+ associate deals {d1}"));
    project.engine(&["apply"]).assert_code(0);
    let contacts = project.contacts();
    let id_of = |email: &str| {
        contacts
            .iter()
            .find(|c| c.get("email") == Some(email))
            .map(|c| c.id.clone())
            .expect("a contact")
    };
    let (ada, bob) = (id_of("ada@example.com"), id_of("bob@example.com"));
    let companies = links(&project, "companies");
    let types = |from: &str, to: &str, all: &BTreeMap<(String, String), Vec<u64>>| {
        all.get(&(from.to_string(), to.to_string())).cloned()
    };
    assert_eq!(
        types(&ada, &acme, &companies),
        Some(vec![1, 279]),
        "{companies:?}"
    );
    assert_eq!(types(&ada, &globex, &companies), Some(vec![279]));
    assert_eq!(types(&bob, &globex, &companies), Some(vec![279]));
    assert_eq!(types(&bob, &acme, &companies), None);
    let deals = links(&project, "deals");
    assert_eq!(types(&ada, &d1, &deals), Some(vec![4]), "{deals:?}");
    assert_eq!(types(&ada, &d2, &deals), Some(vec![4]));
    assert_eq!(types(&bob, &d2, &deals), Some(vec![4]));
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);

    // Ada leaves Acme (removed: `remove_stale`); Bob moves to deal 1 (deal 2 stays linked).
    project.write_csv(&format!(
        "id,email,first_name,domains,deals\n\
         1,ada@example.com,Ada,globex.example,\"{d1},{d2}\"\n\
         2,bob@example.com,Bob,globex.example,{d1}\n"
    ));
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("- unassociate companies acme.example")
        .assert_contains(&format!("+ associate deals {d1}"))
        .assert_contains(&format!(
            "(links kept: deals {d2}; set `remove_stale: true`"
        ));
    project.engine(&["apply"]).assert_code(0);
    let companies = links(&project, "companies");
    assert_eq!(types(&ada, &acme, &companies), None, "{companies:?}");
    assert_eq!(types(&ada, &globex, &companies), Some(vec![279]));
    let deals = links(&project, "deals");
    assert_eq!(types(&bob, &d1, &deals), Some(vec![4]), "{deals:?}");
    assert_eq!(types(&bob, &d2, &deals), Some(vec![4]), "kept");
    let writes = project.sandbox.write_requests();
    project.engine(&["apply"]).assert_code(0);
    assert_eq!(
        project.sandbox.write_requests(),
        writes,
        "nothing more to send"
    );
}

#[test]
fn a_missing_target_or_an_unknown_label_is_named() {
    let project = TestProject::new("id,email,first_name,domains,deals\n");
    project.write("models/users.yaml", MODEL);
    project.write(
        &format!("syncs/{SYNC}.yaml"),
        &sync_file().replace("    remove_stale: true\n", "    label: Primray\n"),
    );
    project
        .sandbox
        .create_record("companies", &json!({"domain": "acme.example"}));
    project.write_csv(
        "id,email,first_name,domains,deals\n\
         1,ada@example.com,Ada,acme.example,\n\
         2,bob@example.com,Bob,nowhere.example,\n",
    );
    project
        .engine(&["plan"])
        .assert_code(1)
        .assert_stderr_contains("hubspot::unknown_association_label")
        .assert_stderr_contains("did you mean `Primary`?");
    project.edit(&format!("syncs/{SYNC}.yaml"), "Primray", "Primary");
    let apply = project.engine(&["apply"]);
    apply.assert_code(1).assert_contains("1 failed");
    project
        .engine(&["runs", "show", &run_id(&apply)])
        .assert_contains(
            "no companies record has domain `nowhere.example`, so the row's record cannot be linked to it",
        );
    // Both records are written; the row whose link failed is held until its data changes.
    assert_eq!(project.contacts().len(), 2);
    assert_eq!(links(&project, "companies").len(), 1);
}

#[test]
fn a_link_made_only_for_created_records_skips_records_that_existed() {
    for mode in ["upsert", "insert"] {
        let (project, acme, bob) = created_only_project(mode);
        project.engine(&["apply"]).assert_code(0);
        assert_only_ada_linked(&project, &acme, &bob, mode);
    }
}

/// A kill after the records were written but before their links went out: the rerun must
/// make every link, once.
#[test]
fn a_crash_between_the_records_and_their_links_loses_no_link() {
    let project = TestProject::new("id,email,first_name,domains,deals\n");
    project.write("models/users.yaml", MODEL);
    project.write(&format!("syncs/{SYNC}.yaml"), &sync_file());
    let acme = project
        .sandbox
        .create_record("companies", &json!({"domain": "acme.example"}));
    project.write_csv(
        "id,email,first_name,domains,deals\n\
         1,ada@example.com,Ada,acme.example,\n\
         2,bob@example.com,Bob,acme.example,\n",
    );
    // Write 1 is the records' upsert: applied, never answered.
    let writes = project.sandbox.write_requests();
    project
        .sandbox
        .set_faults(json!({"hang_after_write": writes + 1}));
    let mut apply = project.spawn_engine_with(&["apply"], &[("ENGINE_MAX_IN_FLIGHT", Some("1"))]);
    project.sandbox.wait_for_writes(writes + 1, &mut apply);
    apply.kill();
    assert_eq!(project.contacts().len(), 2, "the records were written");
    assert!(links(&project, "companies").is_empty(), "no link yet");

    project.sandbox.clear_faults();
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_stderr_contains("Recovered run 1");
    let companies = links(&project, "companies");
    assert_eq!(companies.len(), 2, "{companies:?}");
    assert!(companies.keys().all(|(_, to)| to == &acme));
    assert_eq!(project.contacts().len(), 2, "no duplicate record");
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

/// A project whose sync links contacts to companies by domain only when it creates them
/// (`when: created`), in `mode`, with Ada new and Bob's contact existing before the sync (with
/// no first name); returns it with Acme's and Bob's record ids.
fn created_only_project(mode: &str) -> (TestProject, String, String) {
    let project = TestProject::new("id,email,first_name,domains,deals\n");
    project.write("models/users.yaml", MODEL);
    project.write(
        &format!("syncs/{SYNC}.yaml"),
        &(sync_file().replace("    remove_stale: true\n", "    when: created\n")
            + &format!("mode: {mode}\n")),
    );
    let acme = project
        .sandbox
        .create_record("companies", &json!({"domain": "acme.example"}));
    let bob = project
        .sandbox
        .create_record("contacts", &json!({"email": "bob@example.com"}));
    project.write_csv(
        "id,email,first_name,domains,deals\n\
         1,ada@example.com,Ada,acme.example,\n\
         2,bob@example.com,Bob,acme.example,\n",
    );
    (project, acme, bob)
}

/// Exactly one link: Ada's new contact to Acme (Bob's contact existed, so it gets none).
#[track_caller]
fn assert_only_ada_linked(project: &TestProject, acme: &str, bob: &str, mode: &str) {
    let companies = links(project, "companies");
    assert_eq!(companies.len(), 1, "{mode}: {companies:?}");
    let ((from, to), _) = companies.iter().next().expect("a link");
    assert_ne!(from, bob, "{mode}: the contact that existed is not linked");
    assert_eq!(to, acme, "{mode}");
}

/// A portal that answers the links 429 just after the records were written: the row is sent
/// again, finds its record existing, and still gets its `when: created` link.
#[test]
fn a_link_for_a_created_record_survives_a_busy_portal() {
    for mode in ["insert", "upsert"] {
        let (project, acme, bob) = created_only_project(mode);
        project.sandbox.set_faults(json!({"busy_link_writes": 1}));
        project.engine(&["apply"]).assert_code(0);
        assert!(
            project.sandbox.stats()["rate_limited"].as_u64() >= Some(1),
            "{mode}: the links were refused once"
        );
        assert_only_ada_linked(&project, &acme, &bob, mode);
        project
            .engine(&["plan", "--detailed-exitcode"])
            .assert_code(0);
    }
}

/// A kill after the records were written but before their `when: created` links: the rerun
/// tells the record the crashed apply created (made after it started, holding what it sent)
/// from the one that existed, and links only the first.
#[test]
fn a_crash_before_the_links_of_created_records_loses_none() {
    for mode in ["insert", "upsert"] {
        let (project, acme, bob) = created_only_project(mode);
        // In upsert mode Bob's record holds what the apply sent, so only its age tells it
        // from a record the apply created.
        std::thread::sleep(std::time::Duration::from_millis(2500));
        let writes = project.sandbox.write_requests();
        project
            .sandbox
            .set_faults(json!({"hang_after_write": writes + 1}));
        let mut apply =
            project.spawn_engine_with(&["apply"], &[("ENGINE_MAX_IN_FLIGHT", Some("1"))]);
        project.sandbox.wait_for_writes(writes + 1, &mut apply);
        apply.kill();
        assert_eq!(
            project.contacts().len(),
            2,
            "{mode}: the records were written"
        );
        assert!(
            links(&project, "companies").is_empty(),
            "{mode}: no link yet"
        );

        project.sandbox.clear_faults();
        project
            .engine(&["apply"])
            .assert_code(0)
            .assert_stderr_contains("Recovered run 1");
        assert_only_ada_linked(&project, &acme, &bob, mode);
        assert_eq!(project.contacts().len(), 2, "{mode}: no duplicate record");
        project
            .engine(&["plan", "--detailed-exitcode"])
            .assert_code(0);
    }
}

/// Batch reads so far (every look-up of records by a property is one).
fn batch_reads(project: &TestProject) -> u64 {
    project.sandbox.stats()["requests"]["batch_read"]
        .as_u64()
        .unwrap_or(0)
}

/// Targets found by domain are remembered in the state: a later run links to them with no
/// look-up, removes a link exactly after the company's domain changed in HubSpot, and looks a
/// remembered company up again when HubSpot says it is gone.
#[test]
fn targets_found_by_a_property_are_remembered_between_runs() {
    let project = TestProject::new("id,email,first_name,domains,deals\n");
    project.write("models/users.yaml", MODEL);
    project.write(&format!("syncs/{SYNC}.yaml"), &sync_file());
    let acme = project
        .sandbox
        .create_record("companies", &json!({"domain": "acme.example"}));
    let globex = project
        .sandbox
        .create_record("companies", &json!({"domain": "globex.example"}));
    let ada = "1,ada@example.com,Ada";
    project.write_csv(&format!(
        "id,email,first_name,domains,deals\n{ada},acme.example,\n"
    ));
    project.engine(&["apply"]).assert_code(0);

    // Bob joins Acme: its id is remembered, so nothing is looked up.
    let reads = batch_reads(&project);
    let bob = "2,bob@example.com,Bob,acme.example,";
    project.write_csv(&format!(
        "id,email,first_name,domains,deals\n{ada},acme.example,\n{bob}\n"
    ));
    project.engine(&["apply"]).assert_code(0);
    assert_eq!(
        batch_reads(&project),
        reads,
        "no look-up for a remembered target"
    );
    assert_eq!(links(&project, "companies").len(), 2);

    // Acme's domain changes in HubSpot, and Ada moves to Globex: her link to Acme is removed
    // by its remembered id (a look-up by the old domain would find nothing).
    project.sandbox.admin(
        "/crm/v3/objects/companies/batch/update",
        &json!({"inputs": [{"id": acme, "properties": {"domain": "acme.com"}}]}),
    );
    project.write_csv(&format!(
        "id,email,first_name,domains,deals\n{ada},globex.example,\n{bob}\n"
    ));
    project.engine(&["apply"]).assert_code(0);
    let companies: Vec<String> = links(&project, "companies")
        .into_keys()
        .map(|(_, to)| to)
        .collect();
    let mut expected = vec![acme.clone(), globex.clone()];
    expected.sort();
    let mut got = companies.clone();
    got.sort();
    assert_eq!(got, expected, "Ada → Globex, Bob → Acme: {companies:?}");

    // Globex is deleted and created again: the remembered id is refused, looked up afresh.
    project.sandbox.admin(
        "/crm/v3/objects/companies/batch/archive",
        &json!({"inputs": [{"id": globex}]}),
    );
    let new_globex = project
        .sandbox
        .create_record("companies", &json!({"domain": "globex.example"}));
    project.write_csv(&format!(
        "id,email,first_name,domains,deals\n{ada},globex.example,\n{bob}\n\
         3,cy@example.com,Cy,globex.example,\n"
    ));
    project.engine(&["apply"]).assert_code(0);
    assert!(
        links(&project, "companies")
            .keys()
            .any(|(_, to)| to == &new_globex),
        "Cy is linked to the new Globex"
    );
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}
