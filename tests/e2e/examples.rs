//! The integration examples under `examples/` (`thnks`, `clientsuccess`, `timerex`), end to
//! end: each is copied into a temporary project, set up through the sandbox's API with the
//! example's own `setup/*.json` files (as its `run.sh` does with curl), applied and checked
//! record by record and link by link; then its data changes as its `run.sh` changes it (the
//! `*_v2.csv` file), and it is applied and checked again, and left with nothing to do.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::support::*;

/// Sends one of the example's setup files (`setup/NAME.json`) to `path` as the portal's admin.
fn setup(project: &TestProject, path: &str, file: &str) -> Value {
    let body: Value = serde_json::from_str(&project.read(&format!("setup/{file}.json")))
        .unwrap_or_else(|e| panic!("setup/{file}.json is not JSON: {e}"));
    project.sandbox.admin(path, &body)
}

/// Swaps in the example's second version of a data file, as its `run.sh` does.
fn next_version(project: &TestProject, file: &str) {
    let v2 = project.read(&format!("data/{file}_v2.csv"));
    project.write(&format!("data/{file}.csv"), &v2);
}

/// The records of `object`, by the value of their property `key` (records without one left out).
fn records_by(project: &TestProject, object: &str, key: &str) -> BTreeMap<String, Contact> {
    project
        .sandbox
        .records(object)
        .into_iter()
        .filter_map(|r| r.get(key).map(str::to_string).map(|k| (k, r)))
        .collect()
}

/// The links from records of `from` to records of `to`, each record named by its property
/// `from_key` / `to_key` (or `#id` when it has none).
fn links(
    project: &TestProject,
    (from, from_key): (&str, &str),
    (to, to_key): (&str, &str),
) -> BTreeSet<(String, String)> {
    let names = |object: &str, key: &str| -> BTreeMap<String, String> {
        project
            .sandbox
            .records(object)
            .into_iter()
            .map(|r| {
                let name = r
                    .get(key)
                    .map_or_else(|| format!("#{}", r.id), str::to_string);
                (r.id, name)
            })
            .collect()
    };
    let (from_names, to_names) = (names(from, from_key), names(to, to_key));
    project
        .sandbox
        .associations(from, to)
        .into_keys()
        .map(|(a, b)| (from_names[&a].clone(), to_names[&b].clone()))
        .collect()
}

/// `[("a", "b"), …]` as a set of owned pairs.
fn pairs(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// A record's values of `properties`, `None` where it has none.
fn values<'r>(record: &'r Contact, properties: &[&str]) -> Vec<Option<&'r str>> {
    properties.iter().map(|p| record.get(p)).collect()
}

// ---------------------------------------------------------------------------------------------
// Thnks

/// The custom object, by the fully qualified name HubSpot's paths take (`p_<name>`).
const THNKS: &str = "p_thnks";

fn thnks_setup(project: &TestProject) {
    setup(project, "/crm-object-schemas/v3/schemas", "thnks_schema");
    setup(project, "/crm/v3/properties/deals", "deal_ref_property");
    setup(project, "/crm/v3/objects/contacts/batch/create", "contacts");
    setup(project, "/crm/v3/objects/deals/batch/create", "deals");
}

/// `transaction_id` → (status, recipient email).
fn thnks_statuses(project: &TestProject) -> BTreeMap<String, (String, String)> {
    records_by(project, THNKS, "transaction_id")
        .into_iter()
        .map(|(id, r)| {
            let get = |p: &str| r.get(p).unwrap_or_default().to_string();
            (id, (get("thnks_status"), get("recipient_email")))
        })
        .collect()
}

#[test]
fn thnks_backfills_gifts_links_them_to_contacts_and_open_deals_then_updates_statuses() {
    let project = TestProject::example("thnks");
    thnks_setup(&project);
    project.engine(&["validate"]).assert_code(0);
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("5 to create, 0 to update, 0 to remove")
        .assert_contains("+ associate contacts li.wei@quarry.example")
        .assert_contains("+ associate deals QY-3")
        .assert_contains("+ associate deals QY-4");
    project.engine(&["apply"]).assert_code(0);

    let status = |s: &str, to: &str| (s.to_string(), to.to_string());
    let expected: BTreeMap<String, (String, String)> = [
        (
            "T-1001",
            status("Redeemed", "maria.lopez@northwind.example"),
        ),
        ("T-1002", status("Opened", "kenji.sato@bluepeak.example")),
        ("T-1003", status("Delivered", "ada.okafor@harbor.example")),
        ("T-1004", status("Sent", "li.wei@quarry.example")),
        ("T-1005", status("Sent", "maria.lopez@northwind.example")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(thnks_statuses(&project), expected);
    let first = &records_by(&project, THNKS, "transaction_id")["T-1001"];
    assert_eq!(
        values(first, &["gift", "amount", "sent_date", "sender_email"]),
        [
            Some("Coffee for two"),
            Some("25"),
            Some("1705276800000"),
            Some("jo@ourteam.example")
        ],
        "the date property takes the timestamp's day at midnight UTC"
    );
    let thnk = (THNKS, "transaction_id");
    let to_contacts = pairs(&[
        ("T-1001", "maria.lopez@northwind.example"),
        ("T-1002", "kenji.sato@bluepeak.example"),
        ("T-1003", "ada.okafor@harbor.example"),
        ("T-1004", "li.wei@quarry.example"),
        ("T-1005", "maria.lopez@northwind.example"),
    ]);
    assert_eq!(links(&project, thnk, ("contacts", "email")), to_contacts);
    // Closed won (NW-2) and closed lost (BP-8) deals are left out; Ada has no deal.
    let to_deals = pairs(&[
        ("T-1001", "NW-1"),
        ("T-1002", "BP-7"),
        ("T-1004", "QY-3"),
        ("T-1004", "QY-4"),
        ("T-1005", "NW-1"),
    ]);
    assert_eq!(links(&project, thnk, ("deals", "deal_ref")), to_deals);
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);

    // The next hourly run: three statuses move on, one gift is new, and NW-1 is won: its gifts
    // keep their links (no `remove_stale`).
    next_version(&project, "thnks");
    next_version(&project, "deals");
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("1 to create, 4 to update, 0 to remove")
        .assert_contains("(links kept: deals NW-1; set `remove_stale: true`")
        .assert_contains("\"Delivered\" → \"Opened\"")
        .assert_contains("\"Sent\" → \"Redeemed\"")
        .assert_contains("\"Sent\" → \"Delivered\"");
    project.engine(&["apply"]).assert_code(0);
    let mut expected = expected;
    expected.get_mut("T-1003").expect("T-1003").0 = "Opened".into();
    expected.get_mut("T-1004").expect("T-1004").0 = "Redeemed".into();
    expected.get_mut("T-1005").expect("T-1005").0 = "Delivered".into();
    expected.insert(
        "T-1006".into(),
        status("Sent", "kenji.sato@bluepeak.example"),
    );
    assert_eq!(thnks_statuses(&project), expected);
    let mut to_contacts = to_contacts;
    to_contacts.extend(pairs(&[("T-1006", "kenji.sato@bluepeak.example")]));
    assert_eq!(links(&project, thnk, ("contacts", "email")), to_contacts);
    let mut to_deals = to_deals;
    to_deals.extend(pairs(&[("T-1006", "BP-7")]));
    assert_eq!(links(&project, thnk, ("deals", "deal_ref")), to_deals);
    assert_eq!(project.contacts().len(), 4, "the CRM's contacts, no more");
    assert_eq!(project.sandbox.records("deals").len(), 6);
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

// ---------------------------------------------------------------------------------------------
// ClientSuccess

fn clientsuccess_setup(project: &TestProject) {
    setup(
        project,
        "/crm/v3/properties/contacts",
        "clientsuccess_status_property",
    );
    setup(project, "/crm/v3/properties/deals", "cs_client_id_property");
}

/// `email` → (first name, ClientSuccess status).
fn clientsuccess_contacts(project: &TestProject) -> BTreeMap<String, (String, String)> {
    records_by(project, "contacts", "email")
        .into_iter()
        .map(|(email, r)| {
            let get = |p: &str| r.get(p).unwrap_or_default().to_string();
            (email, (get("firstname"), get("clientsuccess_status")))
        })
        .collect()
}

#[test]
fn clientsuccess_syncs_checked_contacts_with_exact_statuses_and_every_deal() {
    let project = TestProject::example("clientsuccess");
    clientsuccess_setup(&project);
    project.engine(&["validate"]).assert_code(0);
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("+ associate deals CS-200")
        .assert_contains("+ associate deals CS-300");
    project.engine(&["apply"]).assert_code(0);

    let deals = records_by(&project, "deals", "cs_client_id");
    assert_eq!(
        deals
            .iter()
            .map(|(id, d)| (id.as_str(), values(d, &["dealname", "amount", "dealstage"])))
            .collect::<Vec<_>>(),
        [
            (
                "CS-100",
                vec![Some("Northwind Traders"), Some("48000"), Some("closedwon")]
            ),
            (
                "CS-200",
                vec![Some("Bluepeak Labs"), Some("18000"), Some("closedwon")]
            ),
            (
                "CS-300",
                vec![Some("Harbor Freight Co"), Some("26500"), Some("closedwon")]
            ),
        ]
    );
    let contact = |first: &str, status: &str| (first.to_string(), status.to_string());
    let expected: BTreeMap<String, (String, String)> = [
        ("kenji@bluepeak.example", contact("Kenji", "ONBOARDING")),
        ("maria@northwind.example", contact("Maria", "ACTIVE")),
        ("sam@northwind.example", contact("Sam", "AT_RISK")),
        ("tom@harbor.example", contact("Tom", "CHURNED")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(
        clientsuccess_contacts(&project),
        expected,
        "only checked contacts, statuses in HubSpot's case"
    );
    let member = ("contacts", "email");
    let client = ("deals", "cs_client_id");
    assert_eq!(
        links(&project, member, client),
        pairs(&[
            ("kenji@bluepeak.example", "CS-200"),
            ("kenji@bluepeak.example", "CS-300"),
            ("maria@northwind.example", "CS-100"),
            ("sam@northwind.example", "CS-100"),
            ("tom@harbor.example", "CS-300"),
        ]),
        "a contact of two clients is linked to both deals"
    );
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);

    // Priya is checked, Tom unchecked; Maria joins Bluepeak, Kenji leaves it; statuses move.
    next_version(&project, "contacts");
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("1 to create, 3 to update, 1 to remove")
        .assert_contains("- unassociate deals CS-200");
    project.engine(&["apply"]).assert_code(0);
    let mut expected = expected;
    for email in ["kenji@bluepeak.example", "sam@northwind.example"] {
        expected.get_mut(email).expect("a contact").1 = "ACTIVE".into();
    }
    expected.insert("priya@harbor.example".into(), contact("Priya", "ACTIVE"));
    assert_eq!(
        clientsuccess_contacts(&project),
        expected,
        "Tom, unchecked, is left as he was"
    );
    assert_eq!(
        links(&project, member, client),
        pairs(&[
            ("kenji@bluepeak.example", "CS-300"),
            ("maria@northwind.example", "CS-100"),
            ("maria@northwind.example", "CS-200"),
            ("priya@harbor.example", "CS-300"),
            ("sam@northwind.example", "CS-100"),
            ("tom@harbor.example", "CS-300"),
        ])
    );
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn clientsuccess_status_in_the_wrong_case_is_named_with_the_right_value() {
    let project = TestProject::example("clientsuccess");
    clientsuccess_setup(&project);
    // The status as ClientSuccess writes it, without the model's `upper(…)`.
    project.edit(
        "models/contacts.yaml",
        "upper(trim(status)) AS status",
        "trim(status) AS status",
    );
    project.engine(&["validate"]).assert_code(0);
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("4 skipped")
        .assert_contains(
            "property `clientsuccess_status`: `Active` is not one of the property's options; \
             options are case-sensitive: use `ACTIVE`",
        )
        .assert_contains("`at_risk` is not one of the property's options; options are case-sensitive: use `AT_RISK`")
        .assert_contains("4 row(s) are left out for values that do not fit their properties");
    // Rows left out are not a success: the destination does not hold them.
    project
        .engine(&["apply"])
        .assert_code(1)
        .assert_contains("4 row(s) left out: a value does not fit its property");
    assert!(
        project.contacts().is_empty(),
        "no contact is written with a value HubSpot would refuse"
    );
}

// ---------------------------------------------------------------------------------------------
// TimeRex

#[test]
fn timerex_creates_only_new_companies_and_contacts_and_links_only_new_contacts() {
    let project = TestProject::example("timerex");
    setup(
        &project,
        "/crm/v3/objects/companies/batch/create",
        "existing_companies",
    );
    setup(
        &project,
        "/crm/v3/objects/contacts/batch/create",
        "existing_contacts",
    );
    let before = |object: &str| -> BTreeMap<String, BTreeMap<String, String>> {
        project
            .sandbox
            .records(object)
            .into_iter()
            .map(|r| (r.id, r.properties))
            .collect()
    };
    let (companies_before, contacts_before) = (before("companies"), before("contacts"));
    let untouched = |object: &str, theirs: &BTreeMap<String, BTreeMap<String, String>>| {
        let now = before(object);
        for (id, properties) in theirs {
            assert_eq!(now.get(id), Some(properties), "{object} {id} is untouched");
        }
    };

    project.engine(&["validate"]).assert_code(0);
    project.engine(&["plan"]).assert_code(0);
    let apply = project.engine(&["apply"]);
    apply
        .assert_code(0)
        .assert_contains("2 created/upserted, 0 updated, 0 removed, 0 failed, 2 skipped")
        .assert_contains("4 created/upserted, 0 updated, 0 removed, 0 failed, 2 skipped");
    untouched("companies", &companies_before);
    untouched("contacts", &contacts_before);
    project
        .engine(&["runs", "show", &run_id(&apply)])
        .assert_contains("a companies record with name `Kumo Systems` exists already")
        .assert_contains("a companies record with domain `sakura-trading.example` exists already");
    let names = |object: &str, key: &str| -> BTreeMap<String, Option<String>> {
        project
            .sandbox
            .records(object)
            .into_iter()
            .map(|r| {
                let name = r.get("name").or(r.get("firstname")).map(str::to_string);
                (
                    r.get(key)
                        .map_or_else(|| format!("#{}", r.id), str::to_string),
                    name,
                )
            })
            .collect()
    };
    let kumo = companies_before
        .iter()
        .find(|(_, p)| p.get("name").map(String::as_str) == Some("Kumo Systems"))
        .map(|(id, _)| format!("#{id}"))
        .expect("Kumo Systems");
    let mut companies: BTreeMap<String, Option<String>> = [
        ("delta-freight.example", "Delta Freight"),
        ("lumen-labs.example", "Lumen Labs"),
        ("sakura-trading.example", "Sakura Trading Co., Ltd."),
        (kumo.as_str(), "Kumo Systems"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Some(v.to_string())))
    .collect();
    assert_eq!(
        names("companies", "domain"),
        companies,
        "no company for gmail.com; Sakura (by domain) and Kumo (by name) existed"
    );
    let mut contacts: BTreeMap<String, Option<String>> = [
        ("ana@lumen-labs.example", "Ana"),
        ("hiro@kumo.example", "Hiroshi"),
        ("ken@sakura-trading.example", "Ken"),
        ("mei.chan@gmail.com", "Mei"),
        ("omar@delta-freight.example", "Omar"),
        ("yuki@sakura-trading.example", "Yuki"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Some(v.to_string())))
    .collect();
    assert_eq!(names("contacts", "email"), contacts);
    let mei = &records_by(&project, "contacts", "email")["mei.chan@gmail.com"];
    assert_eq!(
        values(mei, &["lastname", "company", "phone"]),
        [
            Some("Chan"),
            Some("Mei Design Studio"),
            Some("+81 90 5555 0104")
        ]
    );
    let guest = ("contacts", "email");
    let company = ("companies", "domain");
    let mut linked = pairs(&[
        ("ana@lumen-labs.example", "lumen-labs.example"),
        ("ken@sakura-trading.example", "sakura-trading.example"),
        ("omar@delta-freight.example", "delta-freight.example"),
    ]);
    assert_eq!(
        links(&project, guest, company),
        linked,
        "only created contacts are linked, and only to a company domain"
    );
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);

    // A returning guest with new answers, a new guest at a known company, a new company, and
    // one more free-mail guest.
    next_version(&project, "bookings");
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("not sent (mode: insert changes no record)");
    project.engine(&["apply"]).assert_code(0);
    untouched("companies", &companies_before);
    untouched("contacts", &contacts_before);
    companies.insert(
        "orbit-analytics.example".into(),
        Some("Orbit Analytics".into()),
    );
    assert_eq!(names("companies", "domain"), companies);
    for (email, first) in [
        ("lea@lumen-labs.example", "Lea"),
        ("raj@orbit-analytics.example", "Raj"),
        ("sofia.r@yahoo.co.jp", "Sofia"),
    ] {
        contacts.insert(email.into(), Some(first.into()));
    }
    assert_eq!(names("contacts", "email"), contacts);
    let ana = &records_by(&project, "contacts", "email")["ana@lumen-labs.example"];
    assert_eq!(
        values(ana, &["lastname", "phone"]),
        [Some("Silva"), Some("+81 3 5555 0101")],
        "insert mode never overwrites, not even its own records"
    );
    linked.extend(pairs(&[
        ("lea@lumen-labs.example", "lumen-labs.example"),
        ("raj@orbit-analytics.example", "orbit-analytics.example"),
    ]));
    assert_eq!(links(&project, guest, company), linked);
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}
