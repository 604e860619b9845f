//! The connector against the HubSpot sandbox over real HTTP: what one `send_batch` does to the
//! records, how each kind of refusal comes back, and schema discovery.

use std::time::Duration;

use connector_core::{BatchResult, Destination, Operation, OperationKind, RowOutcome};
use connector_hubspot::{HubspotConfig, HubspotDestination, SecretString, check_properties};
use hubspot_sandbox::{SandboxConfig, SandboxHandle};
use serde_json::Value;

async fn sandbox(config: SandboxConfig) -> SandboxHandle {
    hubspot_sandbox::spawn(config)
        .await
        .expect("the sandbox binds a local port")
}

fn destination(sandbox: &SandboxHandle, token: &str) -> HubspotDestination {
    let config = HubspotConfig::new(SecretString::new(token), "contacts", "email")
        .with_base_url(&sandbox.base_url)
        .with_timeout(Duration::from_secs(10));
    HubspotDestination::new(config).expect("a valid configuration")
}

fn props(properties: &[(&str, &str)]) -> Vec<(String, String)> {
    properties
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn upsert(key: &str, email: &str, properties: &[(&str, &str)]) -> Operation {
    Operation {
        key: key.to_string(),
        kind: OperationKind::Upsert,
        destination_id: None,
        match_value: Some(email.to_string()),
        properties: props(properties),
    }
}

fn by_id(kind: OperationKind, key: &str, id: &str, properties: &[(&str, &str)]) -> Operation {
    Operation {
        key: key.to_string(),
        kind,
        destination_id: Some(id.to_string()),
        match_value: None,
        properties: props(properties),
    }
}

fn rows(result: BatchResult) -> Vec<RowOutcome> {
    match result {
        BatchResult::PerRow(rows) => rows,
        other => panic!("expected one outcome per row, got {other:?}"),
    }
}

fn succeeded(row: &RowOutcome) -> (String, bool) {
    match row {
        RowOutcome::Succeeded {
            destination_id,
            created,
        } => (destination_id.clone(), *created),
        other => panic!("expected Succeeded, got {other:?}"),
    }
}

/// Every contact in the sandbox, through its control route.
async fn records(sandbox: &SandboxHandle) -> Vec<Value> {
    records_of(sandbox, "contacts").await
}

fn record<'a>(records: &'a [Value], id: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no record {id} in {records:#?}"))
}

#[tokio::test]
async fn upsert_creates_then_updates() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let hubspot = destination(&sandbox, "sandbox-token");
    let batch = [
        upsert(
            "1",
            "ada@example.com",
            &[("firstname", "Ada"), ("lifecyclestage", "lead")],
        ),
        upsert("2", "grace@example.com", &[("firstname", "Grace")]),
    ];
    let first = rows(hubspot.send_batch(&batch).await);
    let (ada, ada_created) = succeeded(&first[0]);
    let (grace, grace_created) = succeeded(&first[1]);
    assert!(ada_created && grace_created, "{first:?}");
    assert_ne!(ada, grace);

    let again = [
        upsert("2", "grace@example.com", &[("firstname", "Grace B.")]),
        upsert("1", "ada@example.com", &[("firstname", "Ada")]),
    ];
    let second = rows(hubspot.send_batch(&again).await);
    assert_eq!(succeeded(&second[0]), (grace.clone(), false));
    assert_eq!(succeeded(&second[1]), (ada.clone(), false));

    let records = records(&sandbox).await;
    assert_eq!(records.len(), 2);
    assert_eq!(
        record(&records, &ada)["properties"]["email"],
        "ada@example.com"
    );
    assert_eq!(
        record(&records, &ada)["properties"]["lifecyclestage"],
        "lead"
    );
    assert_eq!(
        record(&records, &grace)["properties"]["firstname"],
        "Grace B."
    );
}

#[tokio::test]
async fn update_by_id_and_clear() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let hubspot = destination(&sandbox, "sandbox-token");
    let created = rows(
        hubspot
            .send_batch(&[upsert(
                "1",
                "ada@example.com",
                &[("firstname", "Ada"), ("lastname", "Lovelace")],
            )])
            .await,
    );
    let (id, _) = succeeded(&created[0]);

    let updated = rows(
        hubspot
            .send_batch(&[by_id(
                OperationKind::Update,
                "1",
                &id,
                &[("firstname", "Augusta")],
            )])
            .await,
    );
    assert_eq!(succeeded(&updated[0]), (id.clone(), false));
    let after_update = records(&sandbox).await;
    assert_eq!(
        record(&after_update, &id)["properties"]["firstname"],
        "Augusta"
    );

    let cleared = rows(
        hubspot
            .send_batch(&[by_id(
                OperationKind::Clear,
                "1",
                &id,
                &[("firstname", "Augusta")],
            )])
            .await,
    );
    assert_eq!(succeeded(&cleared[0]), (id.clone(), false));
    let after_clear = records(&sandbox).await;
    let properties = &record(&after_clear, &id)["properties"];
    assert!(
        properties.get("firstname").is_none_or(|v| v == ""),
        "firstname was not cleared: {properties:#}"
    );
    assert_eq!(properties["lastname"], "Lovelace");
}

#[tokio::test]
async fn partial_failure_rejects_only_the_bad_row() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let hubspot = destination(&sandbox, "sandbox-token");
    let batch = [
        upsert("1", "ada@example.com", &[("lifecyclestage", "lead")]),
        upsert("2", "bad@example.com", &[("lifecyclestage", "Lead")]),
        upsert("3", "grace@example.com", &[("lifecyclestage", "customer")]),
    ];
    let outcome = rows(hubspot.send_batch(&batch).await);
    succeeded(&outcome[0]);
    succeeded(&outcome[2]);
    let RowOutcome::Rejected { message } = &outcome[1] else {
        panic!("expected the bad row to be rejected, got {outcome:?}")
    };
    assert!(message.contains("`lifecyclestage`"), "{message}");
    assert!(message.contains("Lead"), "{message}");
    assert_eq!(records(&sandbox).await.len(), 2);

    // An unknown record id in an update is rejected alone, too.
    let (ada, _) = succeeded(&outcome[0]);
    let update = [
        by_id(OperationKind::Update, "1", &ada, &[("firstname", "Ada")]),
        by_id(
            OperationKind::Update,
            "9",
            "999999",
            &[("firstname", "Nobody")],
        ),
    ];
    let outcome = rows(hubspot.send_batch(&update).await);
    assert_eq!(succeeded(&outcome[0]), (ada, false));
    assert!(
        matches!(&outcome[1], RowOutcome::Rejected { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn duplicate_match_values_reject_those_rows_and_retry_the_others() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let hubspot = destination(&sandbox, "sandbox-token");
    let batch = [
        upsert("1", "ada@example.com", &[]),
        upsert("2", "twice@example.com", &[("firstname", "One")]),
        upsert("3", "twice@example.com", &[("firstname", "Two")]),
    ];
    let outcome = rows(hubspot.send_batch(&batch).await);
    assert!(
        matches!(&outcome[0], RowOutcome::Retry { .. }),
        "{outcome:?}"
    );
    for row in &outcome[1..] {
        let RowOutcome::Rejected { message } = row else {
            panic!("expected Rejected, got {row:?}")
        };
        assert!(message.contains("Duplicate IDs"), "{message}");
    }
    assert!(records(&sandbox).await.is_empty());
}

#[tokio::test]
async fn a_wrong_token_is_fatal_and_never_shown() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let token = "pat-na1-wrong-token-0000";
    let hubspot = destination(&sandbox, token);
    let result = hubspot
        .send_batch(&[upsert("1", "ada@example.com", &[])])
        .await;
    let BatchResult::Fatal(diagnostic) = &result else {
        panic!("expected Fatal, got {result:?}")
    };
    assert_eq!(diagnostic.code, "hubspot::auth");
    assert!(diagnostic.message.contains("401"), "{diagnostic}");
    assert!(!diagnostic.hints.is_empty());
    assert!(!format!("{result:?} {diagnostic}").contains(token));

    let error = hubspot
        .describe()
        .await
        .expect_err("describe needs the token too");
    assert_eq!(error.code, "hubspot::auth");
    assert!(!error.to_string().contains(token));
    assert!(records(&sandbox).await.is_empty());
}

#[tokio::test]
async fn a_rate_limit_retries_the_batch_after_one_second() {
    let sandbox = sandbox(SandboxConfig {
        requests_per_second: Some(1),
        ..SandboxConfig::default()
    })
    .await;
    let hubspot = destination(&sandbox, "sandbox-token");
    let batch = [upsert("1", "ada@example.com", &[])];
    let mut limited = None;
    // The window is one second: a few quick requests are enough to exceed it.
    for _ in 0..5 {
        if let BatchResult::RetryAll { reason, after } = hubspot.send_batch(&batch).await {
            limited = Some((reason, after));
            break;
        }
    }
    let (reason, after) = limited.expect("one of five quick requests is rate limited");
    assert_eq!(after, Some(Duration::from_secs(1)));
    assert!(reason.contains("429"), "{reason}");
}

#[tokio::test]
async fn describe_lists_properties_that_check_properties_uses() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let hubspot = destination(&sandbox, "sandbox-token");
    let properties = hubspot
        .describe()
        .await
        .expect("the sandbox lists contact properties");
    assert_eq!(properties.object, "contacts");
    let stage = properties
        .get("lifecyclestage")
        .expect("contacts have a lifecycle stage");
    assert_eq!(stage.r#type, "enumeration");
    assert!(stage.options.iter().any(|o| o.value == "lead"));
    assert!(
        properties
            .get("email")
            .expect("contacts have an email")
            .has_unique_value
    );

    let mapped = ["firstnam", "createdate", "lifecyclestage"].map(String::from);
    let diagnostics = check_properties(&mapped, "email", &properties);
    let codes: Vec<&str> = diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(
        codes,
        ["hubspot::unknown_property", "hubspot::read_only_property"],
        "{diagnostics:#?}"
    );
    assert_eq!(diagnostics[0].hints, ["did you mean `firstname`?"]);

    let diagnostics = check_properties(&[], "firstname", &properties);
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].code, "hubspot::match_property_not_unique");
}

#[tokio::test]
async fn describing_an_unknown_object_says_so() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let config = HubspotConfig::new(SecretString::new("sandbox-token"), "contactz", "email")
        .with_base_url(&sandbox.base_url);
    let hubspot = HubspotDestination::new(config).expect("a valid configuration");
    let error = hubspot
        .describe()
        .await
        .expect_err("there is no such object");
    assert_eq!(error.code, "hubspot::unknown_object", "{error}");
}

/// Sends a JSON request to the sandbox's API as an admin would (schemas, properties).
async fn admin(sandbox: &SandboxHandle, path: &str, body: Value) -> Value {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a plain client");
    let response = http
        .post(format!("{}{path}", sandbox.base_url))
        .bearer_auth("sandbox-token")
        .json(&body)
        .send()
        .await
        .expect("the sandbox answers");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.expect("a JSON answer")
}

/// The records of any object type, through the sandbox's control route.
async fn records_of(sandbox: &SandboxHandle, object: &str) -> Vec<Value> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a plain client");
    let body: Value = http
        .get(format!("{}/_sandbox/records/{object}", sandbox.base_url))
        .send()
        .await
        .expect("the control route answers")
        .json()
        .await
        .expect("the control route answers JSON");
    body["results"].as_array().cloned().unwrap_or_default()
}

fn destination_for(sandbox: &SandboxHandle, object: &str, match_on: &str) -> HubspotDestination {
    let config = HubspotConfig::new(SecretString::new("sandbox-token"), object, match_on)
        .with_base_url(&sandbox.base_url)
        .with_timeout(Duration::from_secs(10));
    HubspotDestination::new(config).expect("a valid configuration")
}

#[tokio::test]
async fn a_custom_object_is_found_by_name_and_written_by_its_type_id() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let schema = admin(
        &sandbox,
        "/crm-object-schemas/v3/schemas",
        serde_json::json!({
            "name": "thnks",
            "labels": {"singular": "Thnk", "plural": "Thnks"},
            "primaryDisplayProperty": "thnks_id",
            "requiredProperties": ["thnks_id"],
            "properties": [
                {"name": "thnks_id", "label": "Thnks id", "type": "string", "fieldType": "text"},
                {"name": "gift", "label": "Gift", "type": "string", "fieldType": "text"}
            ],
            "associatedObjects": ["CONTACT"]
        }),
    )
    .await;
    let type_id = schema["objectTypeId"]
        .as_str()
        .expect("a type id")
        .to_string();
    admin(
        &sandbox,
        &format!("/crm/v3/properties/{type_id}"),
        serde_json::json!({"name": "order_ref", "label": "Order", "type": "string",
            "fieldType": "text", "groupName": "thnks_information", "hasUniqueValue": true}),
    )
    .await;

    for name in ["thnks", "p_thnks", type_id.as_str()] {
        let hubspot = destination_for(&sandbox, name, "order_ref");
        assert_eq!(hubspot.object_path().await, Ok(type_id.as_str()), "{name}");
        let properties = hubspot.describe().await.expect("the properties of thnks");
        assert!(properties.get("gift").is_some());
    }
    let hubspot = destination_for(&sandbox, "thnks", "order_ref");
    let ops = [
        upsert("1", "A-1", &[("thnks_id", "t1"), ("gift", "mug")]),
        upsert("2", "A-2", &[("thnks_id", "t2"), ("gift", "socks")]),
    ];
    let outcomes = rows(hubspot.send_batch(&ops).await);
    assert!(outcomes.iter().all(|row| succeeded(row).1), "{outcomes:?}");
    let stored = records_of(&sandbox, &type_id).await;
    let gifts: Vec<(&str, &str)> = stored
        .iter()
        .map(|r| {
            (
                r["properties"]["order_ref"].as_str().unwrap_or_default(),
                r["properties"]["gift"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(gifts, [("A-1", "mug"), ("A-2", "socks")]);
}

#[tokio::test]
async fn deals_and_tickets_are_built_in() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    admin(
        &sandbox,
        "/crm/v3/properties/deals",
        serde_json::json!({"name": "deal_ref", "label": "Deal ref", "type": "string",
            "fieldType": "text", "groupName": "dealinformation", "hasUniqueValue": true}),
    )
    .await;
    let hubspot = destination_for(&sandbox, "deal", "deal_ref");
    assert_eq!(hubspot.object_path().await, Ok("deals"));
    let ops = [upsert(
        "1",
        "D-1",
        &[("dealname", "Renewal"), ("dealstage", "closedwon")],
    )];
    let outcomes = rows(hubspot.send_batch(&ops).await);
    assert!(succeeded(&outcomes[0]).1);
    let stored = records_of(&sandbox, "deals").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["properties"]["dealname"], "Renewal");
    assert_eq!(stored[0]["properties"]["deal_ref"], "D-1");

    let tickets = destination_for(&sandbox, "0-5", "hs_object_id");
    assert_eq!(tickets.object_path().await, Ok("tickets"));
    assert!(
        tickets
            .describe()
            .await
            .expect("tickets' properties")
            .get("subject")
            .is_some()
    );
}

#[tokio::test]
async fn an_unknown_object_lists_the_portals_objects() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    admin(
        &sandbox,
        "/crm-object-schemas/v3/schemas",
        serde_json::json!({
            "name": "thnks",
            "labels": {"singular": "Thnk", "plural": "Thnks"},
            "primaryDisplayProperty": "thnks_id",
            "requiredProperties": [],
            "properties": [{"name": "thnks_id", "label": "Thnks id", "type": "string", "fieldType": "text"}],
            "associatedObjects": []
        }),
    )
    .await;
    let hubspot = destination_for(&sandbox, "thnk", "thnks_id");
    let error = hubspot.describe().await.expect_err("no object `thnk`");
    assert_eq!(error.code, "hubspot::unknown_object");
    assert!(
        error.notes[0].contains("contacts, companies, deals, tickets, thnks (2-"),
        "{error}"
    );
    assert_eq!(error.hints, ["did you mean `thnks`?"]);
    let outcome = hubspot.send_batch(&[upsert("1", "x", &[])]).await;
    assert!(matches!(outcome, BatchResult::Fatal(d) if d.code == "hubspot::unknown_object"));
}
