//! The connector against the Salesforce sandbox over real HTTP: what `send_batch` does to the
//! org's records (read back through the sandbox's admin route, not only from the outcomes),
//! OAuth refresh and its refusals, the allocation share, describe checks, the matching
//! cascade and Bulk API 2.0 jobs.

use std::time::{Duration, Instant};

use connector_core::{BatchResult, Destination, Operation, OperationKind, RowOutcome};
use connector_salesforce::{
    Auth, CascadeInput, CascadeMatch, DuplicateMatches, FieldKind, LoginHost, SalesforceConfig,
    SalesforceDestination, SecretString, WriteMode,
};
use salesforce_sandbox::{CustomField, CustomObject, SandboxConfig, SandboxHandle};
use serde_json::{Value, json};

fn field(name: &str, kind: &str) -> CustomField {
    CustomField {
        name: name.into(),
        kind: kind.into(),
        ..CustomField::default()
    }
}

fn lookup(name: &str, to: &str) -> CustomField {
    CustomField {
        reference_to: Some(to.into()),
        ..field(name, "reference")
    }
}

/// The ThankView guide's object, with an external id for upserts, and a gift object with a
/// required field for the "required field missing" case.
fn objects() -> Vec<CustomObject> {
    vec![
        CustomObject {
            name: "ThankView__c".into(),
            fields: vec![
                lookup("Contact__c", "Contact"),
                lookup("Lead__c", "Lead"),
                CustomField {
                    external_id: true,
                    unique: true,
                    length: Some(80),
                    ..field("Send_Id__c", "string")
                },
                field("Event_Name__c", "string"),
                field("Sent_Date__c", "datetime"),
                field("Opened__c", "boolean"),
                field("Views__c", "double"),
                field("Url__c", "url"),
                CustomField {
                    length: Some(20),
                    ..field("Text_Reply__c", "string")
                },
                CustomField {
                    picklist_values: vec!["Sent".into(), "Opened".into(), "Bounced".into()],
                    restricted_picklist: true,
                    ..field("Status__c", "picklist")
                },
            ],
            ..CustomObject::default()
        },
        CustomObject {
            name: "Gift__c".into(),
            fields: vec![
                CustomField {
                    required: true,
                    ..field("Donor_ID__c", "string")
                },
                field("Amount__c", "currency"),
            ],
            ..CustomObject::default()
        },
    ]
}

async fn sandbox() -> SandboxHandle {
    salesforce_sandbox::spawn(SandboxConfig {
        custom_objects: objects(),
        bulk_processing_ms: 20,
        ..SandboxConfig::default()
    })
    .await
    .expect("the sandbox binds a local port")
}

fn config(sandbox: &SandboxHandle, object: &str, mode: WriteMode) -> SalesforceConfig {
    let auth = Auth::RefreshToken {
        consumer_key: "sandbox-client-id".into(),
        consumer_secret: SecretString::new("sandbox-client-secret"),
        refresh_token: SecretString::new("sandbox-refresh-token"),
    };
    SalesforceConfig::new(auth, object, mode)
        .with_login(LoginHost::Url(sandbox.base_url.clone()))
        .with_timeout(Duration::from_secs(10))
}

fn destination(config: SalesforceConfig) -> SalesforceDestination {
    SalesforceDestination::new(config).expect("a valid configuration")
}

fn thankview(sandbox: &SandboxHandle) -> SalesforceDestination {
    destination(config(sandbox, "ThankView__c", WriteMode::Upsert).with_external_id("Send_Id__c"))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client")
}

async fn admin_get(sandbox: &SandboxHandle, path: &str) -> Value {
    http()
        .get(format!("{}{path}", sandbox.base_url))
        .send()
        .await
        .expect("the sandbox answers")
        .json()
        .await
        .expect("JSON")
}

async fn admin_post(sandbox: &SandboxHandle, path: &str, body: Value) {
    let answer = http()
        .post(format!("{}{path}", sandbox.base_url))
        .json(&body)
        .send()
        .await
        .expect("the sandbox answers");
    assert!(answer.status().is_success(), "{path}: {}", answer.status());
}

/// The sandbox's records of an object, as stored.
async fn records(sandbox: &SandboxHandle, object: &str) -> Vec<Value> {
    let body = admin_get(sandbox, &format!("/_sandbox/records/{object}")).await;
    body["records"].as_array().cloned().unwrap_or_default()
}

async fn record_with(sandbox: &SandboxHandle, object: &str, field: &str, value: &str) -> Value {
    records(sandbox, object)
        .await
        .into_iter()
        .find(|r| r[field] == value)
        .unwrap_or_else(|| panic!("no {object} with {field} = {value}"))
}

fn props(properties: &[(&str, &str)]) -> Vec<(String, String)> {
    properties
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn op(
    kind: OperationKind,
    key: &str,
    match_value: Option<&str>,
    id: Option<&str>,
    properties: &[(&str, &str)],
) -> Operation {
    Operation {
        key: key.into(),
        kind,
        destination_id: id.map(str::to_string),
        match_value: match_value.map(str::to_string),
        properties: props(properties),
    }
}

fn upsert(key: &str, send_id: &str, properties: &[(&str, &str)]) -> Operation {
    op(OperationKind::Upsert, key, Some(send_id), None, properties)
}

fn rows(result: BatchResult) -> Vec<RowOutcome> {
    match result {
        BatchResult::PerRow(rows) => rows,
        other => panic!("expected one outcome per row, got {other:?}"),
    }
}

#[track_caller]
fn succeeded(row: &RowOutcome) -> (String, bool) {
    match row {
        RowOutcome::Succeeded {
            destination_id,
            created,
        } => (destination_id.clone(), *created),
        other => panic!("expected a success, got {other:?}"),
    }
}

#[track_caller]
fn rejected(row: &RowOutcome) -> &str {
    match row {
        RowOutcome::Rejected { message } => message,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[track_caller]
fn fatal(result: BatchResult) -> connector_core::Diagnostic {
    match result {
        BatchResult::Fatal(diagnostic) => diagnostic,
        other => panic!("expected a fatal result, got {other:?}"),
    }
}

/// Creates Contacts (LastName, Email) through the connector; returns their ids in order.
async fn contacts(sandbox: &SandboxHandle, people: &[(&str, &str)]) -> Vec<String> {
    let contacts = destination(config(sandbox, "Contact", WriteMode::Insert));
    let ops: Vec<Operation> = people
        .iter()
        .enumerate()
        .map(|(i, (name, email))| {
            op(
                OperationKind::Create,
                &format!("c{i}"),
                None,
                None,
                &[("LastName", name), ("Email", email)],
            )
        })
        .collect();
    rows(contacts.send_batch(&ops).await)
        .iter()
        .map(|row| succeeded(row).0)
        .collect()
}

#[tokio::test]
async fn collections_write_records_and_split_failures_per_row() {
    let sandbox = sandbox().await;
    let contact = contacts(&sandbox, &[("Ann", "ann@example.com")])
        .await
        .remove(0);
    let dest = thankview(&sandbox);
    let missing_contact = "003000000000999"; // well formed, no such record
    let batch = [
        upsert(
            "r1",
            "S-1",
            &[
                ("Name", "Spring appeal"),
                ("Contact__c", &contact),
                ("Opened__c", "true"),
                ("Views__c", "3"),
                ("Sent_Date__c", "2024-01-15T10:30:00+02:00"),
            ],
        ),
        upsert(
            "r2",
            "S-2",
            &[("Name", "Spring appeal"), ("Views__c", "many")],
        ),
        upsert(
            "r3",
            "S-3",
            &[
                ("Name", "Spring appeal"),
                ("Text_Reply__c", "a reply far longer than twenty"),
            ],
        ),
        upsert(
            "r4",
            "S-4",
            &[("Name", "Spring appeal"), ("Contact__c", missing_contact)],
        ),
        upsert(
            "r5",
            "S-5",
            &[("Name", "Spring appeal"), ("Contact__c", "1004422")],
        ),
        upsert(
            "r6",
            "S-6",
            &[("Name", "Spring appeal"), ("Status__c", "opened")],
        ),
    ];
    let outcome = rows(dest.send_batch(&batch).await);
    let (id1, created) = succeeded(&outcome[0]);
    assert!(created);
    assert_eq!(rejected(&outcome[1]), "`Views__c`: `many` is not a number");
    assert!(
        rejected(&outcome[2]).contains("more than the field's 20"),
        "{:?}",
        outcome[2]
    );
    assert!(
        rejected(&outcome[3]).contains("INVALID_CROSS_REFERENCE_KEY"),
        "{:?}",
        outcome[3]
    );
    assert!(rejected(&outcome[4]).contains("not a Salesforce id: `1004422` is a number"));
    assert!(
        rejected(&outcome[5]).contains("use `Opened`"),
        "{:?}",
        outcome[5]
    );
    let stored = records(&sandbox, "ThankView__c").await;
    assert_eq!(stored.len(), 1, "only the good row is written: {stored:?}");
    assert_eq!(stored[0]["Id"], id1.as_str());
    assert_eq!(stored[0]["Opened__c"], true);
    assert_eq!(stored[0]["Views__c"], 3.0);
    assert_eq!(stored[0]["Sent_Date__c"], "2024-01-15T08:30:00.000+0000");
    assert_eq!(stored[0]["Contact__c"], contact.as_str());

    // The same external id again updates the record: created is false.
    let again = rows(
        dest.send_batch(&[upsert("r1", "S-1", &[("Views__c", "7")])])
            .await,
    );
    assert_eq!(succeeded(&again[0]), (id1.clone(), false));
    assert_eq!(
        record_with(&sandbox, "ThankView__c", "Send_Id__c", "S-1").await["Views__c"],
        7.0
    );

    // Update by id, then clear a field.
    let update = op(
        OperationKind::Update,
        "r1",
        None,
        Some(&id1),
        &[("Event_Name__c", "opened")],
    );
    assert_eq!(
        succeeded(&rows(dest.send_batch(&[update]).await)[0]),
        (id1.clone(), false)
    );
    let clear = op(
        OperationKind::Clear,
        "r1",
        None,
        Some(&id1),
        &[("Event_Name__c", ""), ("Views__c", "")],
    );
    rows(dest.send_batch(&[clear]).await);
    let record = record_with(&sandbox, "ThankView__c", "Id", &id1).await;
    assert_eq!(record["Event_Name__c"], Value::Null);
    assert_eq!(record["Views__c"], Value::Null);

    // Insert mode: a record holding the external id already is skipped, a new one created.
    let insert = destination(
        config(&sandbox, "ThankView__c", WriteMode::Insert).with_external_id("Send_Id__c"),
    );
    let inserted = rows(
        insert
            .send_batch(&[
                op(
                    OperationKind::Create,
                    "r1",
                    Some("S-1"),
                    None,
                    &[("Name", "again")],
                ),
                op(
                    OperationKind::Create,
                    "r7",
                    Some("S-7"),
                    None,
                    &[("Name", "new")],
                ),
            ])
            .await,
    );
    assert!(
        matches!(&inserted[0], RowOutcome::Skipped { reason, .. } if reason.contains("exists already")),
        "{inserted:?}"
    );
    let (id7, created) = succeeded(&inserted[1]);
    assert!(created);
    assert_eq!(records(&sandbox, "ThankView__c").await.len(), 2);

    // Delete, twice: a record already gone counts as deleted.
    let delete = op(OperationKind::Archive, "r7", None, Some(&id7), &[]);
    assert_eq!(
        succeeded(&rows(dest.send_batch(std::slice::from_ref(&delete)).await)[0]).0,
        id7
    );
    assert!(matches!(
        rows(dest.send_batch(&[delete]).await)[0],
        RowOutcome::Succeeded { .. }
    ));
    assert_eq!(records(&sandbox, "ThankView__c").await.len(), 1);
    assert!(
        dest.requests_sent() >= 8,
        "every request is counted: {}",
        dest.requests_sent()
    );
}

#[tokio::test]
async fn update_mode_finds_records_by_external_id() {
    let sandbox = sandbox().await;
    let dest = thankview(&sandbox);
    rows(
        dest.send_batch(&[upsert("r1", "S-1", &[("Name", "a")])])
            .await,
    );
    let update = destination(
        config(&sandbox, "ThankView__c", WriteMode::Update).with_external_id("Send_Id__c"),
    );
    let outcome = rows(
        update
            .send_batch(&[
                op(
                    OperationKind::UpdateMatched,
                    "r1",
                    Some("S-1"),
                    None,
                    &[("Opened__c", "yes")],
                ),
                op(
                    OperationKind::UpdateMatched,
                    "r2",
                    Some("S-404"),
                    None,
                    &[("Opened__c", "yes")],
                ),
            ])
            .await,
    );
    assert!(!succeeded(&outcome[0]).1);
    assert!(rejected(&outcome[1]).contains("no ThankView__c record has Send_Id__c `S-404`"));
    assert_eq!(
        record_with(&sandbox, "ThankView__c", "Send_Id__c", "S-1").await["Opened__c"],
        true
    );
    assert_eq!(records(&sandbox, "ThankView__c").await.len(), 1);
}

#[tokio::test]
async fn an_expired_session_is_refreshed_once_and_the_batch_goes_through() {
    let sandbox = sandbox().await;
    let dest = thankview(&sandbox);
    rows(
        dest.send_batch(&[upsert("r1", "S-1", &[("Name", "a")])])
            .await,
    );
    admin_post(&sandbox, "/_sandbox/expire-sessions", json!({})).await;
    let outcome = rows(
        dest.send_batch(&[upsert("r2", "S-2", &[("Name", "b")])])
            .await,
    );
    assert!(succeeded(&outcome[0]).1);
    let stats = admin_get(&sandbox, "/_sandbox/stats").await;
    assert_eq!(stats["token_grants"], 2, "{stats}");
    assert_eq!(stats["unauthorized"], 1, "{stats}");
    assert_eq!(records(&sandbox, "ThankView__c").await.len(), 2);
}

#[tokio::test]
async fn a_revoked_refresh_token_stops_with_how_to_reconnect() {
    let sandbox = sandbox().await;
    admin_post(
        &sandbox,
        "/_sandbox/faults",
        json!({"refresh_token_revoked": true}),
    )
    .await;
    let dest = thankview(&sandbox);
    let diagnostic = fatal(
        dest.send_batch(&[upsert("r1", "S-1", &[("Name", "a")])])
            .await,
    );
    assert_eq!(diagnostic.code, "salesforce::reconnect");
    assert!(diagnostic.hints[0].contains("re-authorize the connected app"));
    let shown = diagnostic.to_string();
    assert!(
        !shown.contains("sandbox-refresh-token") && !shown.contains("sandbox-client-secret"),
        "{shown}"
    );
    assert!(records(&sandbox, "ThankView__c").await.is_empty());
    // A wrong consumer key names the key.
    let mut wrong = config(&sandbox, "ThankView__c", WriteMode::Insert);
    wrong.auth = Auth::RefreshToken {
        consumer_key: "nope".into(),
        consumer_secret: SecretString::new("sandbox-client-secret"),
        refresh_token: SecretString::new("sandbox-refresh-token"),
    };
    let error = destination(wrong).describe().await.expect_err("refused");
    assert_eq!(error.code, "salesforce::invalid_client");
}

/// A fixture of `tests/fixtures` (test-only RSA keys).
fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A ThankView destination signing in with the JWT bearer flow and the given private key.
fn jwt_thankview(sandbox: &SandboxHandle, key: &str, username: &str) -> SalesforceDestination {
    let pem = fs_err::read_to_string(fixture(key)).expect("the fixture key");
    let mut config =
        config(sandbox, "ThankView__c", WriteMode::Upsert).with_external_id("Send_Id__c");
    config.auth = Auth::JwtBearer {
        consumer_key: "sandbox-client-id".into(),
        username: username.into(),
        private_key_pem: SecretString::new(pem),
    };
    destination(config)
}

#[tokio::test]
async fn the_jwt_bearer_flow_signs_in_with_the_certificate_key() {
    let sandbox = salesforce_sandbox::spawn(SandboxConfig {
        custom_objects: objects(),
        jwt_public_key: Some(fixture("jwt-test-key.pub.pem")),
        ..SandboxConfig::default()
    })
    .await
    .expect("the sandbox binds a local port");
    let dest = jwt_thankview(&sandbox, "jwt-test-key.pem", "sandbox@example.com");
    let outcome = rows(
        dest.send_batch(&[upsert("r1", "S-1", &[("Name", "a")])])
            .await,
    );
    assert!(succeeded(&outcome[0]).1, "{outcome:?}");
    // An expired session is refreshed by a new assertion, not a refresh token.
    admin_post(&sandbox, "/_sandbox/expire-sessions", json!({})).await;
    let outcome = rows(
        dest.send_batch(&[upsert("r2", "S-2", &[("Name", "b")])])
            .await,
    );
    assert!(succeeded(&outcome[0]).1, "{outcome:?}");
    let stats = admin_get(&sandbox, "/_sandbox/stats").await;
    assert_eq!(stats["token_grants"], 2, "{stats}");
    assert_eq!(records(&sandbox, "ThankView__c").await.len(), 2);

    // A key that is not the certificate's: refused, the message says which certificate.
    let wrong_key = jwt_thankview(&sandbox, "jwt-other-key.pem", "sandbox@example.com");
    let diagnostic = fatal(
        wrong_key
            .send_batch(&[upsert("r3", "S-3", &[("Name", "c")])])
            .await,
    );
    assert_eq!(diagnostic.code, "salesforce::jwt_refused", "{diagnostic}");
    assert!(
        diagnostic.to_string().contains("invalid assertion"),
        "{diagnostic}"
    );
    assert!(diagnostic.hints[0].contains("certificate"), "{diagnostic}");
    assert!(
        !diagnostic.to_string().contains("PRIVATE KEY"),
        "{diagnostic}"
    );
    // A user the app does not know: the hint says how to pre-authorize.
    let stranger = jwt_thankview(&sandbox, "jwt-test-key.pem", "someone@example.com");
    let diagnostic = fatal(
        stranger
            .send_batch(&[upsert("r3", "S-3", &[("Name", "c")])])
            .await,
    );
    assert_eq!(diagnostic.code, "salesforce::jwt_refused", "{diagnostic}");
    assert!(
        diagnostic.hints[0].contains("pre-authorized"),
        "{diagnostic}"
    );
    assert_eq!(records(&sandbox, "ThankView__c").await.len(), 2);

    // Not a key at all: refused before any request, without showing the value.
    let mut config =
        config(&sandbox, "ThankView__c", WriteMode::Upsert).with_external_id("Send_Id__c");
    config.auth = Auth::JwtBearer {
        consumer_key: "sandbox-client-id".into(),
        username: "sandbox@example.com".into(),
        private_key_pem: SecretString::new("not-a-key-value"),
    };
    let Err(diagnostic) = SalesforceDestination::new(config) else {
        panic!("a value that is no key is refused");
    };
    assert_eq!(diagnostic.code, "salesforce::private_key");
    assert!(!diagnostic.to_string().contains("not-a-key-value"));
}

#[tokio::test]
async fn the_run_stops_at_the_configured_share_of_the_daily_allocation() {
    let sandbox = sandbox().await;
    let dest = thankview(&sandbox);
    rows(
        dest.send_batch(&[upsert("r1", "S-1", &[("Name", "a")])])
            .await,
    );
    admin_post(&sandbox, "/_sandbox/faults", json!({"api_usage": 85_000})).await;
    // The next answer reports the usage; the batch after it is not sent.
    rows(
        dest.send_batch(&[upsert("r2", "S-2", &[("Name", "b")])])
            .await,
    );
    let diagnostic = fatal(
        dest.send_batch(&[upsert("r3", "S-3", &[("Name", "c")])])
            .await,
    );
    assert_eq!(diagnostic.code, "salesforce::daily_limit");
    assert!(
        diagnostic
            .message
            .contains("of its 100000 daily API requests (85%)"),
        "{}",
        diagnostic.message
    );
    assert!(diagnostic.message.contains("past the 80%"));
    assert_eq!(records(&sandbox, "ThankView__c").await.len(), 2);
    let usage = dest.usage().expect("usage seen");
    assert!(usage.used >= 85_000 && usage.max == 100_000);
}

#[tokio::test]
async fn the_daily_limit_and_api_access_refusals_stop_the_run() {
    let sandbox = sandbox().await;
    admin_post(&sandbox, "/_sandbox/faults", json!({"api_disabled": true})).await;
    let error = thankview(&sandbox).describe().await.expect_err("disabled");
    assert_eq!(error.code, "salesforce::api_disabled");
    assert!(error.hints[0].contains("API Enabled"));
    admin_post(
        &sandbox,
        "/_sandbox/faults",
        json!({"api_disabled": null, "inaccessible_objects": ["ThankView__c"]}),
    )
    .await;
    let error = thankview(&sandbox).describe().await.expect_err("hidden");
    assert_eq!(error.code, "salesforce::unknown_object");
    assert!(
        error
            .hints
            .iter()
            .any(|h| h.contains("give the connected user access")),
        "{error}"
    );
    admin_post(
        &sandbox,
        "/_sandbox/faults",
        json!({"inaccessible_objects": null}),
    )
    .await;
    let dest = thankview(&sandbox);
    rows(
        dest.send_batch(&[upsert("r1", "S-1", &[("Name", "a")])])
            .await,
    );
    // Concurrency throttling is passing: the batch is sent again later, nothing written.
    admin_post(
        &sandbox,
        "/_sandbox/faults",
        json!({"limit_exceeded_requests": 1}),
    )
    .await;
    let busy = dest
        .send_batch(&[upsert("r2", "S-2", &[("Name", "b")])])
        .await;
    assert!(matches!(busy, BatchResult::RetryAll { .. }), "{busy:?}");
    assert_eq!(records(&sandbox, "ThankView__c").await.len(), 1);
    // The daily allocation used up is a stop.
    admin_post(
        &sandbox,
        "/_sandbox/faults",
        json!({"api_allocation": 10, "api_usage": 10}),
    )
    .await;
    let mut all =
        config(&sandbox, "ThankView__c", WriteMode::Upsert).with_external_id("Send_Id__c");
    all.stop_at_share = 1.0;
    let diagnostic = fatal(
        destination(all)
            .send_batch(&[upsert("r3", "S-3", &[("Name", "c")])])
            .await,
    );
    assert_eq!(diagnostic.code, "salesforce::daily_limit", "{diagnostic}");
    assert_eq!(records(&sandbox, "ThankView__c").await.len(), 1);
}

#[tokio::test]
async fn describe_checks_name_fields_objects_and_required_fields() {
    let sandbox = sandbox().await;
    let dest = thankview(&sandbox);
    let mapped: Vec<String> = [
        "Name",
        "Contact__c",
        "Opened__c",
        "Status__c",
        "Sent_Date__c",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let kinds = dest.check_mapping(&mapped).await.expect("a valid mapping");
    assert_eq!(
        kinds[1],
        FieldKind::Reference {
            targets: vec![("Contact".into(), "003".into())]
        }
    );
    assert_eq!(kinds[2], FieldKind::Boolean);
    assert!(matches!(
        &kinds[3],
        FieldKind::Picklist {
            restricted: true,
            ..
        }
    ));
    assert_eq!(kinds[4], FieldKind::DateTime);

    let renamed: Vec<String> = ["Name", "Constituent__c", "Lead__c"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let problems = dest
        .check_mapping(&renamed)
        .await
        .expect_err("unknown field");
    assert_eq!(problems[0].code, "salesforce::unknown_field");
    assert_eq!(
        problems[0].message,
        "the Salesforce object `ThankView__c` has no field `Constituent__c`"
    );
    assert_eq!(problems[0].hints[0], "did you mean `Contact__c`?");

    let gifts = destination(config(&sandbox, "Gift__c", WriteMode::Insert));
    let problems = gifts
        .check_mapping(&["Amount__c".to_string()])
        .await
        .expect_err("required");
    assert_eq!(problems[0].code, "salesforce::required_field_missing");
    assert!(
        problems[0].message.contains("`Donor_ID__c`"),
        "{}",
        problems[0].message
    );

    let unknown = destination(config(&sandbox, "ThankYou__c", WriteMode::Insert));
    let error = unknown.describe().await.expect_err("no such object");
    assert_eq!(error.code, "salesforce::unknown_object");
    assert_eq!(error.hints[0], "did you mean `ThankView__c`?");

    let read_only = destination(config(&sandbox, "Contact", WriteMode::Insert));
    let problems = read_only
        .check_mapping(&["LastName".to_string(), "CreatedDate".to_string()])
        .await
        .expect_err("not createable");
    assert_eq!(problems[0].code, "salesforce::not_createable");
}

#[tokio::test]
async fn the_cascade_matches_by_id_then_contact_email_then_lead_email() {
    let sandbox = sandbox().await;
    let ids = contacts(
        &sandbox,
        &[
            ("Ann", "ann@example.com"),
            ("O'Brien", "O'Brien@example.com"),
            ("Back", r"a\b@example.com"),
            ("Dup One", "dup@example.com"),
            ("Dup Two", "dup@example.com"),
        ],
    )
    .await;
    let leads = destination(config(&sandbox, "Lead", WriteMode::Insert));
    let lead = succeeded(
        &rows(
            leads
                .send_batch(&[op(
                    OperationKind::Create,
                    "l1",
                    None,
                    None,
                    &[
                        ("LastName", "Lee"),
                        ("Company", "Acme"),
                        ("Email", "lead@example.com"),
                    ],
                )])
                .await,
        )[0],
    )
    .0;
    let dest = thankview(&sandbox);
    let input = |key: &str, id: Option<&str>, email: Option<&str>| CascadeInput {
        key: key.into(),
        record_id: id.map(str::to_string),
        email: email.map(str::to_string),
    };
    let short_ann = &ids[0][..15];
    let rows_in = [
        input("by-id", Some(short_ann), Some("someone-else@example.com")),
        input("quote", None, Some("o'brien@example.com")),
        input("backslash", Some("1004422"), Some(r"a\b@example.com")),
        input("lead", Some("00Q000000000001"), Some("lead@example.com")),
        input("none", Some("1004422"), Some("nobody@example.com")),
        input("dup", None, Some("dup@example.com")),
    ];
    let found = dest.resolve_cascade(&rows_in).await.expect("look-ups");
    assert_eq!(
        found[0].matched,
        CascadeMatch::Contact {
            id: ids[0].clone(),
            by_email: false
        }
    );
    assert_eq!(
        found[1].matched,
        CascadeMatch::Contact {
            id: ids[1].clone(),
            by_email: true
        }
    );
    assert_eq!(
        found[2].matched,
        CascadeMatch::Contact {
            id: ids[2].clone(),
            by_email: true
        }
    );
    assert_eq!(found[3].matched, CascadeMatch::Lead { id: lead.clone() });
    let CascadeMatch::Unmatched { reason } = &found[4].matched else {
        panic!("unmatched: {:?}", found[4]);
    };
    assert!(
        reason.contains("no Contact or Lead has email `nobody@example.com`"),
        "{reason}"
    );
    assert!(reason.contains("`1004422` is a number"), "{reason}");
    let CascadeMatch::Ambiguous { message } = &found[5].matched else {
        panic!("ambiguous: {:?}", found[5]);
    };
    assert!(
        message.contains(&ids[3]) && message.contains(&ids[4]),
        "{message}"
    );

    // The most recently modified Contact wins when the sync says so.
    let mut latest =
        config(&sandbox, "ThankView__c", WriteMode::Upsert).with_external_id("Send_Id__c");
    latest.duplicate_matches = DuplicateMatches::MostRecent;
    let contacts_dest = destination(config(&sandbox, "Contact", WriteMode::Update));
    tokio::time::sleep(Duration::from_millis(20)).await;
    rows(
        contacts_dest
            .send_batch(&[op(
                OperationKind::Update,
                "c3",
                None,
                Some(&ids[3]),
                &[("Title", "newer")],
            )])
            .await,
    );
    let found = destination(latest)
        .resolve_cascade(&rows_in[5..])
        .await
        .expect("look-ups");
    assert_eq!(
        found[0].matched,
        CascadeMatch::Contact {
            id: ids[3].clone(),
            by_email: true
        }
    );

    // A converted Lead is no match: the person is the Contact it became.
    admin_post(
        &sandbox,
        &format!("/_sandbox/convert-lead/{lead}"),
        json!({}),
    )
    .await;
    let converted = dest
        .resolve_cascade(&rows_in[3..4])
        .await
        .expect("look-ups");
    let CascadeMatch::Unmatched { reason } = &converted[0].matched else {
        panic!("a converted Lead is unmatched: {:?}", converted[0]);
    };
    assert!(
        reason.contains("no Contact or Lead has email `lead@example.com`"),
        "{reason}"
    );

    // The cascade's result fills the lookup fields of a write.
    let write = rows(
        dest.send_batch(&[
            upsert(
                "s1",
                "S-1",
                &[
                    ("Name", "a"),
                    (
                        "Contact__c",
                        found[0].matched.contact_id().unwrap_or_default(),
                    ),
                ],
            ),
            upsert("s2", "S-2", &[("Name", "b"), ("Lead__c", &lead)]),
        ])
        .await,
    );
    assert!(
        write
            .iter()
            .all(|r| matches!(r, RowOutcome::Succeeded { .. })),
        "{write:?}"
    );
    assert_eq!(
        record_with(&sandbox, "ThankView__c", "Send_Id__c", "S-2").await["Lead__c"],
        lead.as_str()
    );
}

#[tokio::test]
async fn records_are_read_back_by_id_and_by_external_id() {
    let sandbox = sandbox().await;
    let dest = thankview(&sandbox);
    let outcome = rows(
        dest.send_batch(&[upsert(
            "r1",
            "O'Brien-1",
            &[("Name", "a"), ("Opened__c", "true")],
        )])
        .await,
    );
    let id = succeeded(&outcome[0]).0;
    let wanted = ["Opened__c".to_string()];
    let by_id = dest
        .read_records(
            connector_salesforce::RecordRef::Id,
            &[id.clone(), "1004422".into()],
            &wanted,
        )
        .await
        .expect("read");
    assert_eq!(by_id.len(), 1);
    assert_eq!(by_id[0].properties["Opened__c"], "true");
    assert!(by_id[0].created_at.is_some());
    let by_value = dest
        .read_records(
            connector_salesforce::RecordRef::MatchValue,
            &["O'Brien-1".into(), "none".into()],
            &wanted,
        )
        .await
        .expect("read");
    assert_eq!(by_value.len(), 1);
    assert_eq!(by_value[0].id, id);
}

/// The row's outcome by operation key.
fn by_key<'a>(ops: &[Operation], outcome: &'a [RowOutcome], key: &str) -> &'a RowOutcome {
    let at = ops.iter().position(|o| o.key == key).expect("a known key");
    &outcome[at]
}

#[tokio::test]
async fn a_bulk_job_matches_shuffled_results_back_to_their_rows() {
    let sandbox = sandbox().await;
    let contact = contacts(&sandbox, &[("Ann", "ann@example.com")])
        .await
        .remove(0);
    let dest = thankview(&sandbox);
    let ops: Vec<Operation> = (0..2_500)
        .map(|i| {
            let key = format!("r{i}");
            let send_id = format!("S-{i}");
            let views = i.to_string();
            let (who, views) = match i % 500 {
                7 => ("003000000000999", views.as_str()), // no such Contact: fails in the job
                9 => (contact.as_str(), "lots"),          // not a number: refused before upload
                _ => (contact.as_str(), views.as_str()),
            };
            upsert(
                &key,
                &send_id,
                &[
                    ("Name", "Bulk, \"quoted\""),
                    ("Contact__c", who),
                    ("Views__c", views),
                ],
            )
        })
        .collect();
    let outcome = rows(dest.send_bulk(&ops).await);
    assert_eq!(outcome.len(), ops.len());
    let created = outcome
        .iter()
        .filter(|r| matches!(r, RowOutcome::Succeeded { created: true, .. }))
        .count();
    assert_eq!(created, 2_490);
    assert!(
        rejected(by_key(&ops, &outcome, "r7")).contains("INVALID_CROSS_REFERENCE_KEY"),
        "{:?}",
        by_key(&ops, &outcome, "r7")
    );
    assert!(
        rejected(by_key(&ops, &outcome, "r509")).contains("`Views__c`: `lots` is not a number")
    );
    let stored = records(&sandbox, "ThankView__c").await;
    assert_eq!(stored.len(), 2_490);
    // Every success carries the id of the record holding its own external id.
    let ids: std::collections::HashMap<String, String> = stored
        .iter()
        .map(|r| {
            (
                r["Send_Id__c"].as_str().unwrap_or_default().to_string(),
                r["Id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for (op, row) in ops.iter().zip(&outcome) {
        if let RowOutcome::Succeeded { destination_id, .. } = row {
            assert_eq!(
                Some(destination_id),
                ids.get(op.match_value.as_deref().unwrap_or_default()),
                "{}",
                op.key
            );
        }
    }
    let r42 = record_with(&sandbox, "ThankView__c", "Send_Id__c", "S-42").await;
    assert_eq!(r42["Views__c"], 42.0);
    assert_eq!(r42["Name"], "Bulk, \"quoted\"");

    // The same job again: updates, created false. Then a delete job by id.
    let again = rows(dest.send_bulk(&ops[..10]).await);
    assert!(
        matches!(again[0], RowOutcome::Succeeded { created: false, .. }),
        "{:?}",
        again[0]
    );
    let deletes: Vec<Operation> = ops[..3]
        .iter()
        .zip(&outcome)
        .map(|(o, r)| {
            op(
                OperationKind::Archive,
                &o.key,
                None,
                Some(&succeeded(r).0),
                &[],
            )
        })
        .collect();
    let deleted = rows(dest.send_bulk(&deletes).await);
    assert!(
        deleted
            .iter()
            .all(|r| matches!(r, RowOutcome::Succeeded { .. })),
        "{deleted:?}"
    );
    assert_eq!(records(&sandbox, "ThankView__c").await.len(), 2_487);
}

#[tokio::test]
async fn a_bulk_job_is_resumed_by_its_id_without_a_second_upload() {
    let sandbox = sandbox().await;
    let dest = destination(config(&sandbox, "ThankView__c", WriteMode::Insert));
    let ops: Vec<Operation> = (0..50)
        .map(|i| {
            op(
                OperationKind::Create,
                &format!("r{i}"),
                None,
                None,
                &[("Name", &format!("row {}", i % 25))],
            )
        })
        .collect();
    // The engine journals the job id before anything is uploaded.
    let job = dest.create_bulk_job(&ops).await.expect("a job");
    assert!(job.starts_with("750"), "{job}");
    assert!(records(&sandbox, "ThankView__c").await.is_empty());
    // A crash now, then recovery: the open job is uploaded, closed and polled.
    let first = rows(dest.resume_bulk(&job, &ops).await);
    assert!(
        first
            .iter()
            .all(|r| matches!(r, RowOutcome::Succeeded { created: true, .. })),
        "{first:?}"
    );
    let mut ids: Vec<String> = first.iter().map(|r| succeeded(r).0).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50, "identical rows each get their own record");
    // A crash after the job finished: resuming reads the results again, writes nothing.
    let again = rows(dest.resume_bulk(&job, &ops).await);
    assert_eq!(again.len(), 50);
    assert!(
        again
            .iter()
            .all(|r| matches!(r, RowOutcome::Succeeded { .. }))
    );
    assert_eq!(records(&sandbox, "ThankView__c").await.len(), 50);
    let stored = record_with(&sandbox, "ThankView__c", "Id", &succeeded(&first[3]).0).await;
    assert_eq!(stored["Name"], "row 3");
}

/// Rows per second through Collections (200 a call) and one Bulk job, against the sandbox on
/// loopback. Run with `--ignored --nocapture`; it prints the figures and asserts nothing
/// about them.
#[tokio::test]
#[ignore = "a measurement, not a test"]
async fn throughput() {
    let sandbox = sandbox().await;
    let dest = thankview(&sandbox);
    let n = 20_000;
    let ops: Vec<Operation> = (0..n)
        .map(|i| {
            upsert(
                &format!("r{i}"),
                &format!("S-{i}"),
                &[("Name", "x"), ("Opened__c", "true"), ("Views__c", "3")],
            )
        })
        .collect();
    let started = Instant::now();
    for chunk in ops.chunks(200) {
        rows(dest.send_batch(chunk).await);
    }
    let collections = started.elapsed();
    let bulk_ops: Vec<Operation> = (0..n)
        .map(|i| {
            upsert(
                &format!("b{i}"),
                &format!("B-{i}"),
                &[("Name", "x"), ("Opened__c", "true"), ("Views__c", "3")],
            )
        })
        .collect();
    let started = Instant::now();
    rows(dest.send_bulk(&bulk_ops).await);
    let bulk = started.elapsed();
    eprintln!(
        "Collections: {n} rows in {:.2} s = {:.0} rows/s; Bulk 2.0: {n} rows in {:.2} s = {:.0} rows/s",
        collections.as_secs_f64(),
        n as f64 / collections.as_secs_f64(),
        bulk.as_secs_f64(),
        n as f64 / bulk.as_secs_f64()
    );
    assert_eq!(records(&sandbox, "ThankView__c").await.len(), 2 * n);
}
