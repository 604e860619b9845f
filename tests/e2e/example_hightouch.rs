//! The `examples/hightouch` project end to end: Hightouch's HubSpot destination guide as
//! specs — companies, contacts with a `date` and a `datetime` from timestamps (the guide's
//! `to_unix` null guard verbatim), labelled one-to-many links to companies, a custom event per
//! pricing-page view, a static list of trial users — and the guide's 409 and 429 met and
//! reported as it describes. Checked record by record, link by link, event by event.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::*;

/// Sends a setup file of the example as the portal's admin.
fn setup(project: &TestProject, path: &str, file: &str) {
    let body: Value = serde_json::from_str(&project.read(&format!("setup/{file}.json")))
        .unwrap_or_else(|e| panic!("setup/{file}.json is not JSON: {e}"));
    project.sandbox.admin(path, &body);
}

/// Contacts by email.
fn contacts(project: &TestProject) -> BTreeMap<String, Contact> {
    project
        .contacts()
        .into_iter()
        .filter_map(|c| c.get("email").map(str::to_string).map(|e| (e, c)))
        .collect()
}

/// `(contact email, company domain)` → the links' type ids.
fn company_links(project: &TestProject) -> BTreeMap<(String, String), Vec<u64>> {
    let email: BTreeMap<String, String> = project
        .contacts()
        .into_iter()
        .filter_map(|c| c.get("email").map(|e| (c.id.clone(), e.to_string())))
        .collect();
    let domain: BTreeMap<String, String> = project
        .sandbox
        .records("companies")
        .into_iter()
        .filter_map(|c| c.get("domain").map(|d| (c.id.clone(), d.to_string())))
        .collect();
    project
        .sandbox
        .associations("contacts", "companies")
        .into_iter()
        .map(|((from, to), types)| ((email[&from].clone(), domain[&to].clone()), types))
        .collect()
}

#[test]
fn the_hightouch_example_runs_and_meets_the_guides_errors() {
    let project = TestProject::example("hightouch");
    for property in ["customer_id", "signup_date", "last_active_at"] {
        setup(
            &project,
            "/crm/v3/properties/contacts",
            &format!("properties/{property}"),
        );
    }
    let label: Value =
        serde_json::from_str(&project.read("setup/billing_label.json")).expect("the label is JSON");
    let created = project
        .sandbox
        .admin("/crm/v4/associations/contacts/companies/labels", &label);
    let billing = created["results"][0]["typeId"].as_u64().expect("a type id");
    setup(&project, "/events/v3/event-definitions", "viewed_pricing");
    setup(&project, "/crm/v3/objects/contacts", "someone_else");
    // The guide's 429: a portal busier than the engine's budget.
    project
        .sandbox
        .set_faults(json!({"requests_per_second": 3}));

    let apply = project.engine(&["apply"]);
    // The guide's 409: Bob's customer id is held by another contact.
    apply.assert_code(1).assert_contains(
        "sync `contacts_to_hubspot`: 2 created/upserted, 0 updated, 0 removed, 1 failed",
    );
    project
        .engine(&["runs", "show", "2"])
        .assert_contains("\"2\"")
        .assert_contains("Contact already exists. Existing ID:")
        .assert_contains("customer_id C-2 is already used");
    assert!(
        project.sandbox.stats()["rate_limited"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "the portal's limit was met"
    );
    let people = contacts(&project);
    let ada = &people["ada@acme.example"];
    assert_eq!(
        ada.get("signup_date"),
        Some("1709596800000"),
        "midnight UTC"
    );
    assert_eq!(ada.get("last_active_at"), Some("1714551300000"));
    assert_eq!(people["cy@initech.example"].get("customer_id"), Some("C-3"));
    assert!(
        !people.contains_key("bob@globex.example"),
        "refused, not merged"
    );
    assert_eq!(
        people["someone.else@example.com"].get("firstname"),
        Some("Not Bob"),
        "the other contact is untouched"
    );
    let links = company_links(&project);
    let link = |email: &str, domain: &str| links.get(&(email.into(), domain.into())).cloned();
    assert_eq!(link("ada@acme.example", "acme.example"), Some(vec![1, 279]));
    assert_eq!(
        link("ada@acme.example", "globex.example"),
        Some({
            let mut types = vec![279, billing];
            types.sort_unstable();
            types
        })
    );
    assert_eq!(
        link("cy@initech.example", "initech.example"),
        Some(vec![1, 279])
    );
    assert_eq!(project.sandbox.events().len(), 3);
    let trial = project.sandbox.lists()["Trial users"].clone();
    let mut wanted = vec![ada.id.clone(), people["cy@initech.example"].id.clone()];
    wanted.sort();
    assert_eq!(trial, wanted);

    // The data changes: Bob's customer id is fixed, Ada moves to a paid plan and leaves
    // Globex, Di joins; one more pricing view.
    project.sandbox.clear_faults();
    for file in ["users", "memberships", "pricing_views"] {
        let v2 = project.read(&format!("data/{file}_v2.csv"));
        project.write(&format!("data/{file}.csv"), &v2);
    }
    project.engine(&["apply"]).assert_code(0);
    let people = contacts(&project);
    assert_eq!(
        people["bob@globex.example"].get("customer_id"),
        Some("C-22")
    );
    assert_eq!(
        people["bob@globex.example"].get("last_active_at"),
        Some("1715363100000")
    );
    assert_eq!(
        people["di@globex.example"].get("last_active_at"),
        None,
        "null stays null"
    );
    let links = company_links(&project);
    let link = |email: &str, domain: &str| links.get(&(email.into(), domain.into())).cloned();
    assert_eq!(
        link("ada@acme.example", "globex.example"),
        None,
        "stale link removed"
    );
    assert_eq!(
        link("bob@globex.example", "globex.example"),
        Some(vec![1, 279])
    );
    assert_eq!(
        link("di@globex.example", "globex.example"),
        Some(vec![1, 279])
    );
    assert_eq!(
        link("di@globex.example", "acme.example"),
        Some(vec![279]),
        "unlabelled"
    );
    assert_eq!(
        project.sandbox.events().len(),
        4,
        "one more event, none twice"
    );
    let trial = project.sandbox.lists()["Trial users"].clone();
    let mut wanted = vec![
        people["cy@initech.example"].id.clone(),
        people["di@globex.example"].id.clone(),
    ];
    wanted.sort();
    assert_eq!(trial, wanted, "Ada left the list, Di joined");
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}
