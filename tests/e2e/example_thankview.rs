//! The `examples/thankview-salesforce` project end to end: the ThankView + Salesforce guide as
//! specs. One `ThankView__c` per campaign send, upserted by its send id, with `Contact__c` or
//! `Lead__c` filled by the matching cascade (Donor ID, then Contact by email, then Lead by
//! email); the guide's "Invalid Salesforce ID" row (`1004422`, an unknown email) is reported
//! and not synced; after the data changes the same records are updated, none duplicated, and
//! the fixed row is synced. Checked against the sandbox's records.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::*;

const SYNC: &str = "thankviews_to_salesforce";

/// `ThankView__c` records by send id.
pub(crate) fn thankviews(sandbox: &SalesforceSandbox) -> BTreeMap<String, Value> {
    sandbox
        .records("ThankView__c")
        .into_iter()
        .map(|r| (r["Send_Id__c"].as_str().unwrap_or_default().to_string(), r))
        .collect()
}

/// The example's sandbox: its object definitions, and the org's people as its run.sh makes
/// them. Returns the sandbox and the ids of Ada, Bob, Cy (a Lead) and Dee.
fn org(project: &TestProject) -> (SalesforceSandbox, [String; 4]) {
    org_with(project, salesforce_sandbox::SandboxConfig::default())
}

/// [`org`] on a sandbox with `config`'s knobs.
pub(crate) fn org_with(
    project: &TestProject,
    config: salesforce_sandbox::SandboxConfig,
) -> (SalesforceSandbox, [String; 4]) {
    let sandbox = SalesforceSandbox::start(config);
    let objects: Value = serde_json::from_str(&project.read("setup/thankview_object.json"))
        .expect("the object definitions are JSON");
    // The file wraps the list (`{"objects": [...]}`), as `--objects` reads it.
    sandbox.define_objects(&objects["objects"]);
    let person = |object: &str, file: &str| {
        let fields: Value = serde_json::from_str(&project.read(&format!("setup/{file}.json")))
            .expect("a setup record is JSON");
        sandbox.create(object, &fields)
    };
    let ids = [
        person("Contact", "ada_contact"),
        person("Contact", "bob_contact"),
        person("Lead", "cy_lead"),
        person("Contact", "dee_contact"),
    ];
    (sandbox, ids)
}

#[test]
fn the_thankview_example_links_engagement_to_contacts_and_leads_and_updates_in_place() {
    let project = TestProject::example("thankview-salesforce");
    let (sandbox, [ada, bob, cy, dee]) = org(&project);
    assert!(
        project.read("data/engagement.csv").contains(&ada),
        "the example's Donor ID is Ada's Contact id as the sandbox hands it out"
    );
    let env = sandbox.env();

    project.engine_with(&["validate"], &env).assert_code(0);
    project
        .engine_with(&["plan"], &env)
        .assert_code(0)
        .assert_contains("Plan: 5 to create, 0 to update, 0 to remove.");
    let apply = project.engine_with(&["apply"], &env);
    apply.assert_code(1).assert_contains(&format!(
        "sync `{SYNC}`: 4 created/upserted, 0 updated, 0 removed, 1 failed"
    ));
    project
        .engine_with(&["runs", "show", "1"], &env)
        .assert_contains("S-1004")
        .assert_contains("no Contact or Lead has email `dee@example.org`")
        .assert_contains("`1004422` is a number");

    let records = thankviews(&sandbox);
    assert_eq!(records.len(), 4, "{records:#?}");
    let link = |send: &str| {
        let r = &records[send];
        (
            r["Contact__c"].as_str().map(str::to_string),
            r["Lead__c"].as_str().map(str::to_string),
        )
    };
    assert_eq!(link("S-1001"), (Some(ada.clone()), None), "by Donor ID");
    assert_eq!(
        link("S-1002"),
        (Some(bob.clone()), None),
        "Contact by email"
    );
    assert_eq!(link("S-1003"), (None, Some(cy.clone())), "Lead by email");
    assert_eq!(
        link("S-1005"),
        (Some(ada.clone()), None),
        "by email, ignoring case"
    );
    assert!(!records.contains_key("S-1004"), "unmatched: not synced");
    let s1002 = &records["S-1002"];
    assert_eq!(s1002["Opened__c"], Value::Bool(true));
    assert_eq!(s1002["Clicked__c"], Value::Bool(false));
    assert_eq!(s1002["Views__c"].as_f64(), Some(1.0));
    assert_eq!(s1002["Name"], "Spring Appeal (S-1002)");
    assert_eq!(
        records["S-1003"]["Video_Reply__c"],
        "https://thankview.example/r/1003"
    );
    assert_eq!(records["S-1005"]["Portal_Name__c"], "Annual Giving");
    let ids_before: BTreeMap<String, String> = records
        .iter()
        .map(|(k, r)| (k.clone(), r["Id"].as_str().unwrap_or_default().to_string()))
        .collect();

    // The engagement changes; Dee's Donor ID is cleared and her email fixed.
    project.write(
        "data/engagement.csv",
        &project.read("data/engagement_v2.csv"),
    );
    project
        .engine_with(&["plan"], &env)
        .assert_code(0)
        .assert_contains("Plan: 1 to create, 1 to update, 0 to remove.");
    project
        .engine_with(&["apply"], &env)
        .assert_code(0)
        .assert_contains(&format!(
            "sync `{SYNC}`: 1 created/upserted, 1 updated, 0 removed, 0 failed"
        ));
    let records = thankviews(&sandbox);
    assert_eq!(records.len(), 5, "one record per send, no duplicates");
    for (send, id) in &ids_before {
        assert_eq!(
            records[send]["Id"].as_str(),
            Some(id.as_str()),
            "{send} kept its record"
        );
    }
    let s1002 = &records["S-1002"];
    assert_eq!(s1002["Clicked__c"], Value::Bool(true));
    assert_eq!(s1002["Views__c"].as_f64(), Some(4.0));
    assert_eq!(s1002["Text_Reply__c"], "Watched it twice");
    assert_eq!(s1002["Contact__c"].as_str(), Some(bob.as_str()));
    assert_eq!(records["S-1004"]["Contact__c"].as_str(), Some(dee.as_str()));
    project
        .engine_with(&["plan", "--detailed-exitcode"], &env)
        .assert_code(0)
        .assert_contains("No changes.");
}

#[test]
fn a_renamed_lookup_field_and_a_missing_required_field_are_named_at_plan() {
    let project = TestProject::example("thankview-salesforce");
    let (sandbox, _) = org(&project);
    let env = sandbox.env();
    // The guide's troubleshooting: `Contact__c` renamed to `Constituent__c` in the sync, and
    // the record name (required on create) left unmapped.
    let sync = format!("syncs/{SYNC}.yaml");
    project.edit(
        &sync,
        "contact_field: Contact__c",
        "contact_field: Constituent__c",
    );
    project.edit(
        &sync,
        "  - property: Name\n    template: \"{{ row.campaign }} ({{ row.send_id }})\"\n",
        "",
    );
    let plan = project.engine_with(&["plan"], &env);
    plan.assert_code(1)
        .assert_stderr_contains("salesforce::unknown_field")
        .assert_stderr_contains("has no field `Constituent__c`")
        .assert_stderr_contains("did you mean `Contact__c`?")
        .assert_stderr_contains("salesforce::required_field_missing")
        .assert_stderr_contains("requires `Name` on create");
    assert!(plan.points_at(&sync), "{plan}");
    assert!(
        sandbox.records("ThankView__c").is_empty(),
        "nothing written"
    );
}

/// Every file under `dir`, read as text where it is text.
fn texts_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut found = Vec::new();
    let Ok(entries) = fs_err::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(texts_under(&path));
        } else if let Ok(bytes) = fs_err::read(&path) {
            found.push((path, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    found
}

#[test]
fn the_example_signs_in_with_the_jwt_bearer_flow_and_keeps_the_key_out_of_state() {
    let project = TestProject::example("thankview-salesforce");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../connectors/salesforce/tests/fixtures");
    let (sandbox, [ada, ..]) = org_with(
        &project,
        salesforce_sandbox::SandboxConfig {
            jwt_public_key: Some(fixtures.join("jwt-test-key.pub.pem")),
            ..salesforce_sandbox::SandboxConfig::default()
        },
    );
    project.edit(
        "engine.yaml",
        "      consumer_secret: \"${env:SALESFORCE_CONSUMER_SECRET}\"\n      refresh_token: \"${env:SALESFORCE_REFRESH_TOKEN}\"",
        "      username: \"${env:SALESFORCE_USERNAME}\"\n      private_key: \"${env:SALESFORCE_PRIVATE_KEY}\"",
    );
    let key = fs_err::read_to_string(fixtures.join("jwt-test-key.pem")).expect("the test key");
    let key_body = key.lines().nth(3).unwrap_or_default().to_string();
    let env: Vec<(&str, Option<&str>)> = sandbox
        .env()
        .into_iter()
        .filter(|(name, _)| !name.contains("SECRET") && !name.contains("REFRESH"))
        .chain([
            ("SALESFORCE_USERNAME", Some("sandbox@example.com")),
            ("SALESFORCE_PRIVATE_KEY", Some(key.as_str())),
        ])
        .collect();

    project
        .engine_with(&["apply"], &env)
        .assert_code(1)
        .assert_contains(&format!(
            "sync `{SYNC}`: 4 created/upserted, 0 updated, 0 removed, 1 failed"
        ));
    let records = thankviews(&sandbox);
    assert_eq!(records.len(), 4, "{records:#?}");
    assert_eq!(records["S-1001"]["Contact__c"].as_str(), Some(ada.as_str()));

    // Another certificate's key: a clear refusal, nothing written, the key never shown.
    let other = fs_err::read_to_string(fixtures.join("jwt-other-key.pem")).expect("a key");
    let env_other: Vec<(&str, Option<&str>)> = env
        .iter()
        .map(|(name, value)| {
            if *name == "SALESFORCE_PRIVATE_KEY" {
                (*name, Some(other.as_str()))
            } else {
                (*name, *value)
            }
        })
        .collect();
    project.write(
        "data/engagement.csv",
        &project.read("data/engagement_v2.csv"),
    );
    let refused = project.engine_with(&["apply"], &env_other);
    refused
        .assert_code(1)
        .assert_contains("salesforce::jwt_refused")
        .assert_contains("certificate uploaded to the connected app");
    assert_eq!(thankviews(&sandbox).len(), 4, "nothing written");

    for (path, text) in texts_under(&project.path()) {
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains(&key_body),
            "{} holds the private key",
            path.display()
        );
    }
}
