//! Event syncs (`object: events`): each row added to the model sends one custom behavioural
//! event, once, even across a crash; changed and removed rows send nothing. The tests read the
//! events the sandbox accepted.

use serde_json::{Value, json};

use crate::support::*;

const MODEL: &str = "\
name: users
primary_key: [user_id]
sql: |
  SELECT id AS user_id, email, amount, plan, at FROM users
";

fn sync_file() -> String {
    format!(
        "name: {SYNC}\nmodel: users\ndestination: hubspot\nobject: events\nevent:\n  name: purchase\n  \
         occurred_at: at\nmatch:\n  property: email\n  column: email\nmapping:\n  \
         - {{ property: amount, column: amount }}\n  - {{ property: plan, column: plan }}\n"
    )
}

fn project(csv: &str) -> TestProject {
    let project = TestProject::new(csv);
    project.write("models/users.yaml", MODEL);
    project.write(&format!("syncs/{SYNC}.yaml"), &sync_file());
    project.sandbox.admin(
        "/events/v3/event-definitions",
        &json!({"label": "Purchase", "name": "purchase", "propertyDefinitions": [
            {"label": "Amount", "name": "amount", "type": "number"},
            {"label": "Plan", "name": "plan", "type": "enumeration", "options": [
                {"label": "Free", "value": "free", "displayOrder": 0, "hidden": false},
                {"label": "Pro", "value": "pro", "displayOrder": 1, "hidden": false}]}]}),
    );
    project
}

/// `(email, amount)` of every event accepted.
fn sent(project: &TestProject) -> Vec<(String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut out: Vec<(String, String)> = project
        .sandbox
        .events()
        .iter()
        .map(|e| (text(&e["email"]), text(&e["properties"]["amount"])))
        .collect();
    out.sort();
    out
}

#[test]
fn each_added_row_sends_one_event_and_changes_send_nothing() {
    let project = project(
        "id,email,amount,plan,at\n\
         1,ada@example.com,10,pro,2024-05-01T10:00:00Z\n\
         2,ada@example.com,20,free,2024-05-02T10:00:00Z\n\
         3,bob@example.com,30,pro,2024-05-03T10:00:00Z\n",
    );
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("+ send event for \"1\"")
        .assert_contains("3 to create");
    project.engine(&["apply"]).assert_code(0);
    assert_eq!(
        sent(&project),
        [
            ("ada@example.com".into(), "10".into()),
            ("ada@example.com".into(), "20".into()),
            ("bob@example.com".into(), "30".into()),
        ]
    );
    let events = project.sandbox.events();
    assert!(
        events.iter().any(|e| e["occurredAt"]
            .as_str()
            .is_some_and(|t| t.starts_with("2024-05-01T10:00:00"))),
        "{events:?}"
    );

    // A changed row and a removed row send nothing; the added row sends one event.
    project.write_csv(
        "id,email,amount,plan,at\n\
         1,ada@example.com,11,pro,2024-05-01T10:00:00Z\n\
         3,bob@example.com,30,pro,2024-05-03T10:00:00Z\n\
         4,cy@example.com,40,free,2024-05-04T10:00:00Z\n",
    );
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("nothing sent (an event is sent once)");
    project.engine(&["apply"]).assert_code(0);
    assert_eq!(sent(&project).len(), 4);
    assert!(sent(&project).contains(&("cy@example.com".into(), "40".into())));
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn an_unknown_event_or_property_is_a_plan_error_and_bad_values_are_listed() {
    let project =
        project("id,email,amount,plan,at\n1,ada@example.com,10,Pro,2024-05-01T10:00:00Z\n");
    project.edit(
        &format!("syncs/{SYNC}.yaml"),
        "name: purchase",
        "name: purchse",
    );
    project
        .engine(&["plan"])
        .assert_code(1)
        .assert_stderr_contains("hubspot::unknown_event")
        .assert_stderr_contains("did you mean `purchase`?");
    project.edit(
        &format!("syncs/{SYNC}.yaml"),
        "name: purchse",
        "name: purchase",
    );
    project.edit(
        &format!("syncs/{SYNC}.yaml"),
        "property: amount",
        "property: amont",
    );
    project
        .engine(&["plan"])
        .assert_code(1)
        .assert_stderr_contains("the event `purchase` has no property `amont`")
        .assert_stderr_contains("did you mean `amount`?");
    project.edit(
        &format!("syncs/{SYNC}.yaml"),
        "property: amont",
        "property: amount",
    );
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("options are case-sensitive: use `pro`");
    assert!(project.sandbox.events().is_empty());
}

#[test]
fn a_crash_after_the_events_were_sent_never_sends_them_twice() {
    let project = project(
        "id,email,amount,plan,at\n\
         1,ada@example.com,10,pro,2024-05-01T10:00:00Z\n\
         2,bob@example.com,20,free,2024-05-02T10:00:00Z\n",
    );
    let writes = project.sandbox.write_requests();
    project
        .sandbox
        .set_faults(json!({"hang_after_write": writes + 1}));
    let mut apply = project.spawn_engine_with(&["apply"], &[("ENGINE_MAX_IN_FLIGHT", Some("1"))]);
    project.sandbox.wait_for_writes(writes + 1, &mut apply);
    apply.kill();
    assert_eq!(sent(&project).len(), 2, "the batch was accepted");

    project.sandbox.clear_faults();
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_stderr_contains("Recovered run 1");
    assert_eq!(sent(&project).len(), 2, "sent again, kept once");
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}
