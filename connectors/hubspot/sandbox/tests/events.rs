//! Contract tests of custom behavioural events: definitions against
//! events-custom-event-definitions-v3.json, sends against events-custom-behavioral-send-v3.json,
//! and what the control route `/_sandbox/events` then shows.

use super::*;

const DEFINITIONS: &str = "events-custom-event-definitions-v3.json";
const SEND: &str = "events-custom-behavioral-send-v3.json";
const DEFINITION_LIST: &str = "/events/v3/event-definitions";
const DEFINITION: &str = "/events/v3/event-definitions/{eventName}";
const SEND_ONE: &str = "/events/v3/send";
const SEND_BATCH: &str = "/events/v3/send/batch";

fn pricing_viewed() -> Value {
    json!({
        "label": "Viewed pricing",
        "includeDefaultProperties": true,
        "propertyDefinitions": [
            {"label": "Plan", "name": "plan", "type": "enumeration", "options": [
                {"label": "Free", "value": "free", "displayOrder": 0, "hidden": false},
                {"label": "Pro", "value": "pro", "displayOrder": 1, "hidden": false},
            ]},
            {"label": "Seats", "type": "number"},
            {"label": "Trial ends", "name": "trial_ends", "type": "datetime"},
            {"label": "Referrer code", "name": "referrer_code", "type": "string"},
        ],
    })
}

impl Sandbox {
    async fn send_event(&self, body: Value) -> Reply {
        self.api(SEND, Method::POST, SEND_ONE, SEND_ONE, Some(body))
            .await
    }

    async fn sent_events(&self) -> Vec<Value> {
        let body = self.control(Method::GET, "/_sandbox/events", None).await;
        body["results"].as_array().cloned().unwrap_or_default()
    }
}

#[tokio::test]
async fn event_definitions_are_created_listed_and_read() {
    let sandbox = Sandbox::default().await;
    let reply = sandbox
        .api(
            DEFINITIONS,
            Method::POST,
            DEFINITION_LIST,
            DEFINITION_LIST,
            Some(pricing_viewed()),
        )
        .await;
    reply
        .expect(201)
        .conforms(DEFINITIONS, "POST", DEFINITION_LIST);
    let fqn = format!("pe{PORTAL_ID}_viewed_pricing");
    assert_eq!(reply.body["name"], "viewed_pricing");
    assert_eq!(reply.body["fullyQualifiedName"], fqn.as_str());
    assert_eq!(reply.body["primaryObject"], "CONTACT");
    let names: Vec<&str> = reply.body["properties"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names[..4], ["plan", "seats", "trial_ends", "referrer_code"]);
    assert!(
        names.contains(&"hs_page_url"),
        "default properties were asked for"
    );

    let reply = sandbox
        .api(
            DEFINITIONS,
            Method::POST,
            DEFINITION_LIST,
            DEFINITION_LIST,
            Some(pricing_viewed()),
        )
        .await;
    reply
        .expect(409)
        .conforms(DEFINITIONS, "POST", DEFINITION_LIST);
    for bad in [
        json!({"label": "Bad type", "includeDefaultProperties": false,
               "propertyDefinitions": [{"label": "X", "type": "bool"}]}),
        json!({"label": "Bad name", "name": "Bad-Name", "includeDefaultProperties": false,
               "propertyDefinitions": []}),
        json!({"label": "Reserved", "includeDefaultProperties": false,
               "propertyDefinitions": [{"label": "X", "name": "hs_x", "type": "string"}]}),
        json!({"label": "No options", "includeDefaultProperties": false,
               "propertyDefinitions": [{"label": "X", "type": "enumeration"}]}),
    ] {
        let reply = sandbox
            .api(
                DEFINITIONS,
                Method::POST,
                DEFINITION_LIST,
                DEFINITION_LIST,
                Some(bad),
            )
            .await;
        reply
            .expect(400)
            .conforms(DEFINITIONS, "POST", DEFINITION_LIST);
    }

    let reply = sandbox
        .api(
            DEFINITIONS,
            Method::GET,
            DEFINITION_LIST,
            DEFINITION_LIST,
            None,
        )
        .await;
    reply
        .expect(200)
        .conforms(DEFINITIONS, "GET", DEFINITION_LIST);
    assert_eq!(reply.body["total"], 1);
    assert_eq!(reply.body["results"][0]["properties"], json!([]));
    for name in ["viewed_pricing", fqn.as_str()] {
        let path = format!("{DEFINITION_LIST}/{name}");
        let reply = sandbox
            .api(DEFINITIONS, Method::GET, DEFINITION, &path, None)
            .await;
        reply.expect(200).conforms(DEFINITIONS, "GET", DEFINITION);
        assert_eq!(reply.body["fullyQualifiedName"], fqn.as_str());
    }
    let missing = format!("{DEFINITION_LIST}/nothing_here");
    let reply = sandbox
        .api(DEFINITIONS, Method::GET, DEFINITION, &missing, None)
        .await;
    reply.expect(404).conforms(DEFINITIONS, "GET", DEFINITION);
    let path = format!("{DEFINITION_LIST}/viewed_pricing");
    let reply = sandbox
        .api(DEFINITIONS, Method::DELETE, DEFINITION, &path, None)
        .await;
    reply
        .expect(204)
        .conforms(DEFINITIONS, "DELETE", DEFINITION);
    let reply = sandbox
        .api(DEFINITIONS, Method::GET, DEFINITION, &path, None)
        .await;
    reply.expect(404);
    sandbox.handle.shutdown().await;
}

#[tokio::test]
async fn events_are_checked_against_their_definition_and_recorded() {
    let sandbox = Sandbox::default().await;
    let reply = sandbox
        .post(
            UPSERT,
            json!({"inputs": [upsert_input("ada@example.com", json!({}))]}),
        )
        .await;
    let ada = reply.body["results"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    sandbox
        .api(
            DEFINITIONS,
            Method::POST,
            DEFINITION_LIST,
            DEFINITION_LIST,
            Some(pricing_viewed()),
        )
        .await
        .expect(201);
    let fqn = format!("pe{PORTAL_ID}_viewed_pricing");

    let by_id = json!({"eventName": fqn, "objectId": ada, "uuid": "u-1",
        "occurredAt": "2024-05-01T10:00:00Z",
        "properties": {"plan": "pro", "seats": "12", "trial_ends": "2024-06-01T00:00:00Z"}});
    let reply = sandbox.send_event(by_id.clone()).await;
    reply.expect(204).conforms(SEND, "POST", SEND_ONE);
    let reply = sandbox.send_event(by_id).await;
    reply.expect(204).conforms(SEND, "POST", SEND_ONE);
    let by_email = json!({"eventName": fqn, "email": "Ada@Example.com",
        "properties": {"hs_page_url": "https://example.com/pricing"}});
    sandbox.send_event(by_email).await.expect(204);
    let by_utk = json!({"eventName": fqn, "utk": "abc123", "properties": {}});
    sandbox.send_event(by_utk).await.expect(204);

    for bad in [
        json!({"eventName": "pe1_viewed_pricing", "objectId": ada, "properties": {}}),
        json!({"eventName": "viewed_pricing", "objectId": ada, "properties": {}}),
        json!({"eventName": fqn, "properties": {}}),
        json!({"eventName": fqn, "objectId": "999999", "properties": {}}),
        json!({"eventName": fqn, "objectId": ada, "properties": {"colour": "red"}}),
        json!({"eventName": fqn, "objectId": ada, "properties": {"seats": "many"}}),
        json!({"eventName": fqn, "objectId": ada, "properties": {"plan": "Pro"}}),
        json!({"eventName": fqn, "objectId": ada, "properties": {"trial_ends": "soon"}}),
    ] {
        let reply = sandbox.send_event(bad.clone()).await;
        reply.expect(400).conforms(SEND, "POST", SEND_ONE);
        assert_eq!(reply.body["category"], "VALIDATION_ERROR", "{bad}");
    }

    let good = json!({"eventName": fqn, "objectId": ada, "properties": {"plan": "free"}});
    let bad = json!({"eventName": fqn, "objectId": ada, "properties": {"plan": "gold"}});
    let reply = sandbox
        .api(
            SEND,
            Method::POST,
            SEND_BATCH,
            SEND_BATCH,
            Some(json!({"inputs": [good, bad]})),
        )
        .await;
    reply.expect(400).conforms(SEND, "POST", SEND_BATCH);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("inputs[1]: ")
    );
    let batch = json!({"inputs": [good.clone(), good]});
    let reply = sandbox
        .api(SEND, Method::POST, SEND_BATCH, SEND_BATCH, Some(batch))
        .await;
    reply.expect(204).conforms(SEND, "POST", SEND_BATCH);

    let sent = sandbox.sent_events().await;
    assert_eq!(
        sent.len(),
        5,
        "the repeated uuid is dropped, the refused batch left nothing"
    );
    assert_eq!(sent[0]["objectId"], ada.as_str());
    assert_eq!(sent[0]["occurredAt"], "2024-05-01T10:00:00.000Z");
    assert_eq!(sent[0]["properties"]["seats"], "12");
    assert_eq!(
        sent[1]["objectId"],
        ada.as_str(),
        "the email names the contact"
    );
    assert_eq!(sent[2]["utk"], "abc123");
    assert!(sent[2].get("objectId").is_none());
    let stats = sandbox.control(Method::GET, "/_sandbox/stats", None).await;
    assert_eq!(stats["requests"]["event_send"], 12);
    assert_eq!(stats["requests"]["event_send_batch"], 2);

    sandbox.control(Method::POST, "/_sandbox/reset", None).await;
    assert!(sandbox.sent_events().await.is_empty());
    let reply = sandbox
        .api(
            DEFINITIONS,
            Method::GET,
            DEFINITION_LIST,
            DEFINITION_LIST,
            None,
        )
        .await;
    assert_eq!(reply.body["total"], 0);
    sandbox.handle.shutdown().await;
}
