//! Contract tests of the HubSpot sandbox: a real server on a free port, real HTTP, and every
//! response (successes and errors) checked against HubSpot's OpenAPI files with
//! `hubspot_sandbox::contract`; the requests these tests send are checked too.

use std::time::{Duration, Instant};

use hubspot_sandbox::{PORTAL_ID, SandboxConfig, SandboxHandle, contract, spawn};
use reqwest::header::HeaderMap;
use reqwest::{Client, Method};
use serde_json::{Value, json};

const CONTACTS: &str = "crm-objects-contacts-v3.json";
const COMPANIES: &str = "crm-objects-companies-v3.json";
const PROPERTIES: &str = "crm-properties-v3.json";
const DEALS: &str = "crm-objects-deals-v3.json";
const GENERIC: &str = "crm-objects-generic-v3.json";
const SCHEMAS: &str = "crm-schemas-v3.json";
const CUSTOM: &str = "crm-objects-custom-objects-v3.json";
const TOKEN: &str = "sandbox-token";

const UPSERT: &str = "/crm/v3/objects/contacts/batch/upsert";
const UPDATE: &str = "/crm/v3/objects/contacts/batch/update";
const READ: &str = "/crm/v3/objects/contacts/batch/read";
const SEARCH: &str = "/crm/v3/objects/contacts/search";

mod associations;
mod events;
mod limits;
mod lists;
mod owners;

/// One HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the body matches the contract's schema for this status.
    fn conforms(&self, spec: &str, method: &str, template: &str) -> &Self {
        if let Err(errors) =
            contract::validate_response(spec, method, template, self.status, &self.body)
        {
            panic!(
                "{method} {template} → {} breaks the contract: {errors:#?}\nbody: {:#}",
                self.status, self.body
            );
        }
        self
    }

    fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status, body: {:#}",
            self.body
        );
        self
    }
}

struct Sandbox {
    handle: SandboxHandle,
    client: Client,
}

impl Sandbox {
    async fn start(config: SandboxConfig) -> Self {
        let handle = spawn(config)
            .await
            .expect("the sandbox binds a loopback port");
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a plain HTTP client builds");
        Sandbox { handle, client }
    }

    async fn default() -> Self {
        Sandbox::start(SandboxConfig::default()).await
    }

    async fn send(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> Reply {
        let url = format!("{}{path}", self.handle.base_url);
        let mut request = self.client.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Some(Body::Json(value)) => request.json(&value),
            Some(Body::Raw(text)) => request
                .header("content-type", "application/json")
                .body(text.to_owned()),
            None => request,
        };
        let response = request.send().await.expect("the sandbox answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("the body arrives");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// An authorized API call; a JSON body is first checked against the request contract.
    async fn api(
        &self,
        spec: &str,
        method: Method,
        template: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let checked = body
            .as_ref()
            .map(|b| contract::validate_request(spec, method.as_str(), template, b));
        if let Some(Err(errors)) = checked {
            panic!("test request {method} {template} breaks the contract: {errors:#?}");
        }
        self.send(Some(TOKEN), method, path, body.map(Body::Json))
            .await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.api(CONTACTS, Method::POST, path, path, Some(body))
            .await
    }

    async fn raw(&self, method: Method, path: &str, text: &'static str) -> Reply {
        self.send(Some(TOKEN), method, path, Some(Body::Raw(text)))
            .await
    }

    async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let reply = self.send(None, method, path, body.map(Body::Json)).await;
        assert_eq!(reply.status, 200, "control route {path}: {:#}", reply.body);
        reply.body
    }

    async fn records(&self, object: &str) -> Vec<Value> {
        let body = self
            .control(Method::GET, &format!("/_sandbox/records/{object}"), None)
            .await;
        body["results"].as_array().cloned().unwrap_or_default()
    }
}

enum Body {
    Json(Value),
    Raw(&'static str),
}

fn upsert_input(email: &str, properties: Value) -> Value {
    json!({"idProperty": "email", "id": email, "properties": properties})
}

fn search_body(filters: Value, limit: u32, after: &str) -> Value {
    json!({
        "filterGroups": [{"filters": filters}],
        "properties": ["email", "firstname"],
        "limit": limit,
        "after": after,
        "sorts": [],
    })
}

fn read_body(ids: &[&str], id_property: Option<&str>) -> Value {
    let mut body = json!({
        "inputs": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
        "properties": ["email", "firstname"],
        "propertiesWithHistory": [],
    });
    if let Some(id_property) = id_property {
        body["idProperty"] = json!(id_property);
    }
    body
}

fn ids_of(errors: &Value) -> Vec<String> {
    errors
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["context"]["ids"].as_array().cloned().unwrap_or_default())
        .filter_map(|id| id.as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn upsert_creates_then_updates() {
    let sandbox = Sandbox::default().await;
    let body = json!({"inputs": [
        upsert_input("ada@example.com", json!({"firstname": "Ada", "lifecyclestage": "lead"})),
        upsert_input("alan@example.com", json!({"firstname": "Alan", "num_orders": "3"})),
    ]});
    let first = sandbox.post(UPSERT, body.clone()).await;
    first.expect(200).conforms(CONTACTS, "POST", UPSERT);
    assert_eq!(first.body["status"], "COMPLETE");
    assert_eq!(first.body["results"][0]["new"], true);
    assert_eq!(
        first.body["results"][0]["properties"]["email"],
        "ada@example.com"
    );
    assert_eq!(
        first.body["results"][0]["properties"]["hs_object_id"],
        first.body["results"][0]["id"]
    );
    assert_eq!(
        first.header("content-type"),
        Some("application/json;charset=utf-8")
    );
    assert!(first.header("x-hubspot-correlation-id").is_some());
    assert_eq!(first.header("x-hubspot-ratelimit-daily"), Some("1000000"));

    let again = sandbox.post(UPSERT, body).await;
    again.expect(200).conforms(CONTACTS, "POST", UPSERT);
    assert_eq!(again.body["results"][0]["new"], false);
    assert_eq!(
        again.body["results"][0]["id"],
        first.body["results"][0]["id"]
    );
    assert_eq!(
        again.body["results"][0]["updatedAt"], first.body["results"][0]["updatedAt"],
        "an upsert that changes nothing leaves lastmodifieddate alone"
    );
    assert_eq!(sandbox.records("contacts").await.len(), 2);

    let company = json!({"inputs": [
        {"idProperty": "domain", "id": "example.com", "properties": {"name": "Example"}},
    ]});
    let path = "/crm/v3/objects/companies/batch/upsert";
    let reply = sandbox
        .api(COMPANIES, Method::POST, path, path, Some(company))
        .await;
    reply.expect(200).conforms(COMPANIES, "POST", path);
    let through_id = "/crm/v3/objects/0-2/batch/upsert";
    let by_type_id = json!({"inputs": [
        {"idProperty": "domain", "id": "example.com", "properties": {"city": "Paris"}},
    ]});
    let reply = sandbox
        .api(COMPANIES, Method::POST, path, through_id, Some(by_type_id))
        .await;
    reply.expect(200).conforms(COMPANIES, "POST", path);
    assert_eq!(reply.body["results"][0]["new"], false);
    sandbox.handle.shutdown().await;
}

#[tokio::test]
async fn invalid_values_fail_per_input_with_207() {
    let sandbox = Sandbox::default().await;
    let body = json!({"inputs": [
        upsert_input(
            "good@example.com",
            json!({"lifecyclestage": "customer", "is_vip": "true", "date_of_birth": "1990-05-01"}),
        ),
        upsert_input("enum@example.com", json!({"lifecyclestage": "Customer"})),
        upsert_input("not-an-email", json!({"firstname": "X"})),
        upsert_input("unknown@example.com", json!({"shoe_size": "42"})),
        upsert_input("readonly@example.com", json!({"hs_object_id": "7"})),
        upsert_input("date@example.com", json!({"date_of_birth": "1635535865"})),
        upsert_input("number@example.com", json!({"num_orders": "many", "is_vip": "yes"})),
    ]});
    let reply = sandbox.post(UPSERT, body).await;
    reply.expect(207).conforms(CONTACTS, "POST", UPSERT);
    assert_eq!(reply.body["numErrors"], 6);
    assert_eq!(reply.body["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        ids_of(&reply.body["errors"]),
        [
            "enum@example.com",
            "not-an-email",
            "unknown@example.com",
            "readonly@example.com",
            "date@example.com",
            "number@example.com"
        ]
    );
    let mut codes = Vec::new();
    for error in reply.body["errors"].as_array().into_iter().flatten() {
        assert_eq!(error["category"], "VALIDATION_ERROR");
        let message = error["message"].as_str().unwrap_or_default();
        let array = message
            .strip_prefix("Property values were not valid: ")
            .unwrap_or_else(|| panic!("unexpected message {message}"));
        let items: Vec<Value> =
            serde_json::from_str(array).expect("the message embeds a JSON array");
        for item in items {
            assert_eq!(item["isValid"], false);
            assert!(item["localizedErrorMessage"].is_string() && item["name"].is_string());
            codes.push(item["error"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(
        codes,
        [
            "INVALID_OPTION",
            "INVALID_EMAIL",
            "PROPERTY_DOESNT_EXIST",
            "READ_ONLY_VALUE",
            "INVALID_DATE",
            "INVALID_OPTION",
            "INVALID_NUMBER"
        ]
    );
    let first = reply.body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        first.contains("Customer was not one of the allowed options: [subscriber, lead,"),
        "{first}"
    );
    let records = sandbox.records("contacts").await;
    assert_eq!(records.len(), 1, "only the good input is applied");
    assert_eq!(records[0]["properties"]["email"], "good@example.com");
}

#[tokio::test]
async fn whole_batch_refusals_are_400_and_change_nothing() {
    let sandbox = Sandbox::default().await;
    let too_many: Vec<Value> = (0..101)
        .map(|i| upsert_input(&format!("u{i}@example.com"), json!({})))
        .collect();
    let reply = sandbox.post(UPSERT, json!({"inputs": too_many})).await;
    reply.expect(400).conforms(CONTACTS, "POST", UPSERT);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("100"),
        "{:#}",
        reply.body
    );

    let duplicate = json!({"inputs": [
        upsert_input("ada@example.com", json!({"firstname": "Ada"})),
        upsert_input("ada@example.com", json!({"firstname": "Augusta"})),
    ]});
    let reply = sandbox.post(UPSERT, duplicate).await;
    reply.expect(400).conforms(CONTACTS, "POST", UPSERT);
    assert_eq!(reply.body["category"], "VALIDATION_ERROR");
    assert_eq!(reply.body["context"]["ids"], json!(["ada@example.com"]));

    let non_unique =
        json!({"inputs": [{"idProperty": "firstname", "id": "Ada", "properties": {}}]});
    let reply = sandbox.post(UPSERT, non_unique).await;
    reply.expect(400).conforms(CONTACTS, "POST", UPSERT);
    assert_eq!(
        reply.body["message"],
        "Unable to perform update/upsert by non-unique 0-1 property"
    );

    let number =
        r#"{"inputs":[{"idProperty":"email","id":"n@example.com","properties":{"num_orders":3}}]}"#;
    let reply = sandbox.raw(Method::POST, UPSERT, number).await;
    reply.expect(400).conforms(CONTACTS, "POST", UPSERT);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("num_orders")
    );

    for malformed in [
        "{\"inputs\": [",
        "",
        "[]",
        "{\"inputs\": [{\"id\": 5, \"properties\": {}}]}",
        "{\"records\": []}",
    ] {
        let reply = sandbox.raw(Method::POST, UPSERT, malformed).await;
        reply.expect(400).conforms(CONTACTS, "POST", UPSERT);
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Invalid input JSON")
        );
    }

    let reply = sandbox
        .raw(
            Method::POST,
            "/crm/v3/objects/widgets/batch/upsert",
            "{\"inputs\": []}",
        )
        .await;
    reply.expect(400).conforms(CONTACTS, "POST", UPSERT);
    assert_eq!(
        reply.body["message"],
        "Unable to infer object type from: widgets"
    );

    assert!(sandbox.records("contacts").await.is_empty());
    let stats = sandbox.control(Method::GET, "/_sandbox/stats", None).await;
    assert_eq!(stats["write_requests"], 10);
    assert_eq!(stats["requests"]["batch_upsert"], 10);
}

#[tokio::test]
async fn update_clears_conflicts_and_misses() {
    let sandbox = Sandbox::default().await;
    let created = sandbox
        .post(
            UPSERT,
            json!({"inputs": [
                upsert_input("ada@example.com", json!({"firstname": "Ada", "city": "London"})),
                upsert_input("alan@example.com", json!({"firstname": "Alan"})),
            ]}),
        )
        .await;
    let ada = created.body["results"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let alan = created.body["results"][1]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let body = json!({"inputs": [
        {"id": ada, "properties": {"city": "", "lastname": "Lovelace"}},
        {"id": alan, "properties": {"email": "ada@example.com"}},
        {"id": "999999", "properties": {"firstname": "Nobody"}},
        {
            "id": "alan@example.com",
            "idProperty": "email",
            "properties": {"jobtitle": "Mathematician"},
        },
    ]});
    let reply = sandbox.post(UPDATE, body).await;
    reply.expect(207).conforms(CONTACTS, "POST", UPDATE);
    let categories: Vec<&str> = reply.body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["category"].as_str())
        .collect();
    assert_eq!(categories, ["CONFLICT", "OBJECT_NOT_FOUND"]);
    assert_eq!(ids_of(&reply.body["errors"]), [alan.as_str(), "999999"]);
    let conflict = reply.body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        conflict,
        format!("Contact already exists. Existing ID: {ada}")
    );

    let records = sandbox.records("contacts").await;
    assert_eq!(
        records[0]["properties"].get("city"),
        None,
        "\"\" clears a property"
    );
    assert_eq!(records[0]["properties"]["lastname"], "Lovelace");
    assert_eq!(
        records[1]["properties"]["email"], "alan@example.com",
        "the conflicting input is not applied"
    );
    assert_eq!(records[1]["properties"]["jobtitle"], "Mathematician");

    let reply = sandbox
        .post(
            UPDATE,
            json!({"inputs": [{"id": ada, "properties": {"firstname": "Augusta"}}]}),
        )
        .await;
    reply.expect(200).conforms(CONTACTS, "POST", UPDATE);
    assert_eq!(
        reply.body["results"][0]["properties"]["firstname"],
        "Augusta"
    );

    let invalid = json!({"inputs": [{"id": ada, "properties": {"hs_lead_status": "Open"}}]});
    let reply = sandbox.post(UPDATE, invalid).await;
    reply.expect(207).conforms(CONTACTS, "POST", UPDATE);
    assert_eq!(ids_of(&reply.body["errors"]), [ada.as_str()]);
}

#[tokio::test]
async fn reads_searches_lists_and_gets() {
    let sandbox = Sandbox::default().await;
    let inputs: Vec<Value> = (1..=5)
        .map(|i| {
            let stage = if i % 2 == 0 { "customer" } else { "lead" };
            upsert_input(
                &format!("p{i}@example.com"),
                json!({"firstname": format!("P{i}"), "lifecyclestage": stage}),
            )
        })
        .collect();
    sandbox
        .post(UPSERT, json!({"inputs": inputs}))
        .await
        .expect(200);

    let reply = sandbox
        .post(READ, read_body(&["1", "2", "404"], None))
        .await;
    reply.expect(207).conforms(CONTACTS, "POST", READ);
    assert_eq!(reply.body["results"].as_array().map(Vec::len), Some(2));
    assert_eq!(reply.body["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(ids_of(&reply.body["errors"]), ["404"]);
    let reply = sandbox
        .post(READ, read_body(&["p1@example.com"], Some("email")))
        .await;
    reply.expect(200).conforms(CONTACTS, "POST", READ);
    assert_eq!(reply.body["results"][0]["properties"]["firstname"], "P1");

    let eq = search_body(
        json!([{"propertyName": "lifecyclestage", "operator": "EQ", "value": "customer"}]),
        10,
        "",
    );
    let reply = sandbox.post(SEARCH, eq).await;
    reply.expect(200).conforms(CONTACTS, "POST", SEARCH);
    assert_eq!(reply.body["total"], 2);
    assert!(
        reply.header("x-hubspot-ratelimit-daily").is_none(),
        "search sends no rate-limit headers"
    );
    let filters = [
        (
            json!([{"propertyName": "lifecyclestage", "operator": "NEQ", "value": "customer"}]),
            3,
        ),
        (
            json!([{
                "propertyName": "email",
                "operator": "IN",
                "values": ["p1@example.com", "p5@example.com"],
            }]),
            2,
        ),
        (
            json!([{"propertyName": "firstname", "operator": "HAS_PROPERTY"}]),
            5,
        ),
        (
            json!([{"propertyName": "jobtitle", "operator": "NOT_HAS_PROPERTY"}]),
            5,
        ),
    ];
    for (filter, total) in filters {
        let reply = sandbox
            .post(SEARCH, search_body(filter.clone(), 10, ""))
            .await;
        reply.expect(200).conforms(CONTACTS, "POST", SEARCH);
        assert_eq!(reply.body["total"], total, "{filter}");
    }
    let all = json!([{"propertyName": "firstname", "operator": "HAS_PROPERTY"}]);
    let page = sandbox.post(SEARCH, search_body(all.clone(), 2, "")).await;
    page.expect(200).conforms(CONTACTS, "POST", SEARCH);
    let after = page.body["paging"]["next"]["after"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let next = sandbox
        .post(SEARCH, search_body(all.clone(), 2, &after))
        .await;
    assert_eq!(
        next.body["results"][0]["properties"]["email"],
        "p3@example.com"
    );
    let reply = sandbox.post(SEARCH, search_body(all, 201, "")).await;
    reply.expect(400).conforms(CONTACTS, "POST", SEARCH);
    let unknown = search_body(
        json!([{"propertyName": "shoe_size", "operator": "EQ", "value": "1"}]),
        10,
        "",
    );
    sandbox
        .post(SEARCH, unknown)
        .await
        .expect(400)
        .conforms(CONTACTS, "POST", SEARCH);

    let list = "/crm/v3/objects/contacts";
    let reply = sandbox
        .api(
            CONTACTS,
            Method::GET,
            list,
            &format!("{list}?limit=2&properties=email,firstname"),
            None,
        )
        .await;
    reply.expect(200).conforms(CONTACTS, "GET", list);
    assert_eq!(reply.body["paging"]["next"]["after"], "2");
    let reply = sandbox
        .api(
            CONTACTS,
            Method::GET,
            list,
            &format!("{list}?limit=10&after=4"),
            None,
        )
        .await;
    reply.expect(200).conforms(CONTACTS, "GET", list);
    assert_eq!(reply.body["results"].as_array().map(Vec::len), Some(1));
    assert!(reply.body.get("paging").is_none());
    let reply = sandbox
        .api(
            CONTACTS,
            Method::GET,
            list,
            &format!("{list}?limit=101"),
            None,
        )
        .await;
    reply.expect(400).conforms(CONTACTS, "GET", list);

    let one = "/crm/v3/objects/contacts/{contactId}";
    let reply = sandbox
        .api(
            CONTACTS,
            Method::GET,
            one,
            "/crm/v3/objects/contacts/3",
            None,
        )
        .await;
    reply.expect(200).conforms(CONTACTS, "GET", one);
    assert_eq!(reply.body["properties"]["email"], "p3@example.com");
    let by_email =
        "/crm/v3/objects/contacts/p4@example.com?idProperty=email&properties=lifecyclestage";
    let reply = sandbox
        .api(CONTACTS, Method::GET, one, by_email, None)
        .await;
    reply.expect(200).conforms(CONTACTS, "GET", one);
    assert_eq!(reply.body["properties"]["lifecyclestage"], "customer");
    let reply = sandbox
        .api(
            CONTACTS,
            Method::GET,
            one,
            "/crm/v3/objects/contacts/77",
            None,
        )
        .await;
    reply.expect(404).conforms(CONTACTS, "GET", one);
    assert_eq!(reply.body["category"], "OBJECT_NOT_FOUND");
}

#[tokio::test]
async fn properties_describe_the_registry() {
    let sandbox = Sandbox::default().await;
    let list = "/crm/v3/properties/{objectType}";
    for object in ["contacts", "0-1", "companies"] {
        let path = format!("/crm/v3/properties/{object}");
        let reply = sandbox
            .api(PROPERTIES, Method::GET, list, &path, None)
            .await;
        reply.expect(200).conforms(PROPERTIES, "GET", list);
    }
    let one = "/crm/v3/properties/{objectType}/{propertyName}";
    let reply = sandbox
        .api(
            PROPERTIES,
            Method::GET,
            one,
            "/crm/v3/properties/contacts/lifecyclestage",
            None,
        )
        .await;
    reply.expect(200).conforms(PROPERTIES, "GET", one);
    assert_eq!(reply.body["type"], "enumeration");
    let values: Vec<&str> = reply.body["options"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["value"].as_str())
        .collect();
    assert_eq!(
        values,
        [
            "subscriber",
            "lead",
            "marketingqualifiedlead",
            "salesqualifiedlead",
            "opportunity",
            "customer",
            "evangelist",
            "other"
        ]
    );
    let reply = sandbox
        .api(
            PROPERTIES,
            Method::GET,
            one,
            "/crm/v3/properties/contacts/email",
            None,
        )
        .await;
    assert_eq!(reply.body["hasUniqueValue"], true);
    let reply = sandbox
        .api(
            PROPERTIES,
            Method::GET,
            one,
            "/crm/v3/properties/contacts/hs_object_id",
            None,
        )
        .await;
    assert_eq!(reply.body["modificationMetadata"]["readOnlyValue"], true);
    let reply = sandbox
        .api(
            PROPERTIES,
            Method::GET,
            one,
            "/crm/v3/properties/companies/domain",
            None,
        )
        .await;
    assert_eq!(reply.body["hasUniqueValue"], true);
    let reply = sandbox
        .api(
            PROPERTIES,
            Method::GET,
            one,
            "/crm/v3/properties/contacts/shoe_size",
            None,
        )
        .await;
    reply.expect(404).conforms(PROPERTIES, "GET", one);
}

#[tokio::test]
async fn missing_or_wrong_token_is_401() {
    let sandbox = Sandbox::default().await;
    let body = json!({"inputs": [upsert_input("ada@example.com", json!({}))]});
    for token in [None, Some("wrong-token")] {
        let reply = sandbox
            .send(token, Method::POST, UPSERT, Some(Body::Json(body.clone())))
            .await;
        reply.expect(401).conforms(CONTACTS, "POST", UPSERT);
        assert_eq!(reply.body["status"], "error");
        assert_eq!(reply.body["category"], "INVALID_AUTHENTICATION");
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Authentication credentials not found.")
        );
        assert_eq!(
            reply.header("x-hubspot-auth-failure"),
            Some("401 Unauthorized")
        );
        assert_eq!(
            reply.header("x-hubspot-correlation-id"),
            reply.body["correlationId"].as_str()
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/json;charset=utf-8")
        );
    }
    assert!(sandbox.records("contacts").await.is_empty());
    let stats = sandbox.control(Method::GET, "/_sandbox/stats", None).await;
    assert_eq!(stats["unauthorized"], 2);
    assert_eq!(stats["write_requests"], 0);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let config = SandboxConfig {
        requests_per_second: Some(1),
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(config).await;
    let list = "/crm/v3/objects/contacts";
    let mut limited = None;
    for attempt in 0..10 {
        let ok = sandbox.api(CONTACTS, Method::GET, list, list, None).await;
        let email = format!("burst{attempt}@example.com");
        let reply = sandbox
            .post(UPSERT, json!({"inputs": [upsert_input(&email, json!({}))]}))
            .await;
        if ok.status == 200 && reply.status == 429 {
            assert_eq!(ok.header("x-hubspot-ratelimit-max"), Some("1"));
            assert_eq!(ok.header("x-hubspot-ratelimit-remaining"), Some("0"));
            limited = Some((email, reply));
            break;
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let (email, reply) = limited.expect("a second request within one second is refused");
    reply.conforms(CONTACTS, "POST", UPSERT);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(
        reply.body["message"],
        "You have reached your secondly limit."
    );
    assert_eq!(reply.body["errorType"], "RATE_LIMIT");
    assert_eq!(reply.body["policyName"], "SECONDLY");
    assert_eq!(reply.body["category"], "RATE_LIMITS");
    let records = sandbox.records("contacts").await;
    assert!(
        records
            .iter()
            .all(|r| r["properties"]["email"] != email.as_str()),
        "a refused write changes nothing"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    sandbox
        .api(CONTACTS, Method::GET, list, list, None)
        .await
        .expect(200);
    let faults = sandbox
        .control(
            Method::POST,
            "/_sandbox/faults",
            Some(json!({"requests_per_second": null})),
        )
        .await;
    assert_eq!(faults["requests_per_second"], Value::Null);
    for _ in 0..5 {
        let reply = sandbox.api(CONTACTS, Method::GET, list, list, None).await;
        reply.expect(200);
        assert!(reply.header("x-hubspot-ratelimit-max").is_none());
    }
    let stats = sandbox.control(Method::GET, "/_sandbox/stats", None).await;
    assert!(stats["rate_limited"].as_u64() >= Some(1));
}

#[tokio::test]
async fn hang_after_write_applies_the_batch_then_holds_the_answer() {
    let sandbox = Sandbox::default().await;
    let faults = sandbox
        .control(
            Method::POST,
            "/_sandbox/faults",
            Some(json!({"hang_after_write": 1})),
        )
        .await;
    assert_eq!(faults["hang_after_write"], 1);
    let client = sandbox.client.clone();
    let url = format!("{}{UPSERT}", sandbox.handle.base_url);
    let body = json!({"inputs": [upsert_input("held@example.com", json!({"firstname": "Held"}))]});
    let held =
        tokio::spawn(async move { client.post(url).bearer_auth(TOKEN).json(&body).send().await });

    let deadline = Instant::now() + Duration::from_secs(10);
    while sandbox.records("contacts").await.is_empty() {
        assert!(Instant::now() < deadline, "the held batch is applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !held.is_finished(),
        "the response of the applied batch is held"
    );
    held.abort();

    let next = sandbox
        .post(
            UPSERT,
            json!({"inputs": [upsert_input("next@example.com", json!({}))]}),
        )
        .await;
    next.expect(200);
    assert_eq!(sandbox.records("contacts").await.len(), 2);
}

#[tokio::test]
async fn hang_before_write_holds_without_applying_and_shutdown_releases() {
    let sandbox = Sandbox::default().await;
    sandbox
        .post(
            UPSERT,
            json!({"inputs": [upsert_input("first@example.com", json!({}))]}),
        )
        .await
        .expect(200);
    sandbox.control(Method::POST, "/_sandbox/reset", None).await;
    assert!(sandbox.records("contacts").await.is_empty());
    sandbox
        .control(
            Method::POST,
            "/_sandbox/faults",
            Some(json!({"hang_before_write": 1})),
        )
        .await;

    let client = sandbox.client.clone();
    let url = format!("{}{UPSERT}", sandbox.handle.base_url);
    let body = json!({"inputs": [upsert_input("never@example.com", json!({}))]});
    let held =
        tokio::spawn(async move { client.post(url).bearer_auth(TOKEN).json(&body).send().await });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = sandbox.control(Method::GET, "/_sandbox/stats", None).await;
        if stats["write_requests"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the write request arrives");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!held.is_finished());
    assert!(
        sandbox.records("contacts").await.is_empty(),
        "nothing is applied before the hang"
    );

    let started = Instant::now();
    sandbox.handle.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "shutdown releases held requests"
    );
    held.abort();
}

#[tokio::test]
async fn unknown_routes_and_junk_get_json_errors() {
    let sandbox = Sandbox::default().await;
    let reply = sandbox
        .send(
            Some(TOKEN),
            Method::GET,
            "/crm/v3/objects/contacts/1/associations/deals/x/y",
            None,
        )
        .await;
    reply.expect(404);
    assert_eq!(reply.body["category"], "OBJECT_NOT_FOUND");
    let reply = sandbox
        .send(
            Some(TOKEN),
            Method::DELETE,
            "/crm/v3/objects/contacts/batch/upsert",
            None,
        )
        .await;
    reply.expect(405);
    assert!(reply.body["correlationId"].is_string());

    let junk: [(&str, &'static str); 8] = [
        (SEARCH, "{\"limit\": -1}"),
        (SEARCH, "{\"after\": \"abc\"}"),
        (
            SEARCH,
            r#"{"filterGroups": [{"filters": [
                {"propertyName": "email", "operator": "LIKE", "value": "x"}]}]}"#,
        ),
        (
            SEARCH,
            r#"{"filterGroups": [{"filters": [{"propertyName": "email", "operator": "IN"}]}]}"#,
        ),
        (
            READ,
            "{\"inputs\": [{\"id\": \"1\"}], \"idProperty\": \"firstname\"}",
        ),
        (READ, "{\"inputs\": null}"),
        (
            UPDATE,
            "{\"inputs\": [{\"id\": \"1\", \"idProperty\": \"city\", \"properties\": {}}]}",
        ),
        (
            UPDATE,
            "{\"inputs\": [{\"id\": \"1\", \"properties\": {\"firstname\": {\"nested\": true}}}]}",
        ),
    ];
    for (path, body) in junk {
        let reply = sandbox.raw(Method::POST, path, body).await;
        reply.expect(400).conforms(CONTACTS, "POST", path);
    }
    let reply = sandbox
        .raw(Method::POST, "/_sandbox/faults", "{\"hang_forever\": 1}")
        .await;
    reply.expect(400);
    let list = "/crm/v3/objects/contacts";
    for query in ["?limit=abc", "?after=-3", "?limit=0"] {
        let reply = sandbox
            .api(CONTACTS, Method::GET, list, &format!("{list}{query}"), None)
            .await;
        reply.expect(400).conforms(CONTACTS, "GET", list);
    }
    sandbox
        .post(UPSERT, json!({"inputs": []}))
        .await
        .expect(200)
        .conforms(CONTACTS, "POST", UPSERT);
}

#[tokio::test]
async fn deals_and_tickets_are_built_in() {
    let sandbox = Sandbox::default().await;
    for (segment, names) in [
        ("deals", ["dealname", "dealstage", "pipeline", "closedate"]),
        (
            "0-5",
            [
                "subject",
                "hs_pipeline",
                "hs_pipeline_stage",
                "hs_ticket_priority",
            ],
        ),
    ] {
        let path = format!("/crm/v3/properties/{segment}");
        let reply = sandbox
            .api(
                PROPERTIES,
                Method::GET,
                "/crm/v3/properties/{objectType}",
                &path,
                None,
            )
            .await;
        reply
            .expect(200)
            .conforms(PROPERTIES, "GET", "/crm/v3/properties/{objectType}");
        let listed: Vec<&str> = reply.body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for name in names {
            assert!(listed.contains(&name), "{segment} lacks {name}: {listed:?}");
        }
    }
    let stage = "/crm/v3/properties/deals/dealstage";
    let reply = sandbox
        .api(PROPERTIES, Method::GET, stage, stage, None)
        .await;
    reply.expect(200);
    assert_eq!(reply.body["options"][5]["value"], "closedwon");

    let list = "/crm/v3/objects/0-3";
    let reply = sandbox.api(DEALS, Method::GET, list, list, None).await;
    reply.expect(200).conforms(DEALS, "GET", list);
    let update = "/crm/v3/objects/tickets/batch/update";
    let body = json!({"inputs": [{"id": "1", "properties": {"hs_pipeline_stage": "2"}}]});
    let reply = sandbox
        .api(
            GENERIC,
            Method::POST,
            "/crm/v3/objects/{objectType}/batch/update",
            update,
            Some(body),
        )
        .await;
    reply
        .expect(207)
        .conforms(GENERIC, "POST", "/crm/v3/objects/{objectType}/batch/update");
    assert_eq!(reply.body["errors"][0]["category"], "OBJECT_NOT_FOUND");
    let records = sandbox
        .control(Method::GET, "/_sandbox/records/0-5", None)
        .await;
    assert_eq!(records["objectType"], "tickets");
    assert_eq!(records["total"], 0);
}

const SCHEMA_LIST: &str = "/crm-object-schemas/v3/schemas";
const SCHEMA_ONE: &str = "/crm-object-schemas/v3/schemas/{objectType}";
const PROPERTY_LIST: &str = "/crm/v3/properties/{objectType}";
const PROPERTY_ONE: &str = "/crm/v3/properties/{objectType}/{propertyName}";

fn car_schema() -> Value {
    json!({
        "name": "car",
        "labels": {"singular": "Car", "plural": "Cars"},
        "primaryDisplayProperty": "vin",
        "requiredProperties": ["vin", "model"],
        "searchableProperties": ["vin"],
        "secondaryDisplayProperties": ["model"],
        "properties": [
            {"name": "vin", "label": "VIN", "type": "string", "fieldType": "text",
             "hasUniqueValue": true},
            {"name": "model", "label": "Model", "type": "string", "fieldType": "text"},
            {"name": "fuel", "label": "Fuel", "type": "enumeration", "fieldType": "select",
             "options": [
                {"label": "Petrol", "value": "petrol", "displayOrder": 0, "hidden": false},
                {"label": "Electric", "value": "electric", "displayOrder": 1, "hidden": false},
             ]},
            {"name": "registered_on", "label": "Registered on", "type": "date",
             "fieldType": "date"},
        ],
        "associatedObjects": ["CONTACT"],
    })
}

impl Sandbox {
    /// Creates the `car` custom object and returns its schema.
    async fn create_car(&self) -> Value {
        let reply = self
            .api(
                SCHEMAS,
                Method::POST,
                SCHEMA_LIST,
                SCHEMA_LIST,
                Some(car_schema()),
            )
            .await;
        reply.expect(201).conforms(SCHEMAS, "POST", SCHEMA_LIST);
        reply.body.clone()
    }
}

#[tokio::test]
async fn custom_object_schemas_are_created_listed_and_read() {
    let sandbox = Sandbox::default().await;
    let reply = sandbox
        .api(SCHEMAS, Method::GET, SCHEMA_LIST, SCHEMA_LIST, None)
        .await;
    reply.expect(200).conforms(SCHEMAS, "GET", SCHEMA_LIST);
    assert_eq!(reply.body["results"], json!([]));

    let car = sandbox.create_car().await;
    let type_id = car["objectTypeId"].as_str().unwrap_or_default().to_owned();
    assert!(type_id.starts_with("2-"), "{type_id}");
    assert_eq!(car["id"].as_str(), type_id.strip_prefix("2-"));
    let fqn = format!("p{PORTAL_ID}_car");
    assert_eq!(car["fullyQualifiedName"], fqn.as_str());
    assert_eq!(car["requiredProperties"], json!(["vin", "model"]));
    assert_eq!(car["associations"][0]["toObjectTypeId"], "0-1");

    for segment in [type_id.as_str(), fqn.as_str(), "p_car", "car"] {
        let path = format!("{SCHEMA_LIST}/{segment}");
        let reply = sandbox
            .api(SCHEMAS, Method::GET, SCHEMA_ONE, &path, None)
            .await;
        reply.expect(200).conforms(SCHEMAS, "GET", SCHEMA_ONE);
        assert_eq!(reply.body["objectTypeId"], type_id.as_str(), "{segment}");
    }
    let reply = sandbox
        .api(SCHEMAS, Method::GET, SCHEMA_LIST, SCHEMA_LIST, None)
        .await;
    reply.expect(200).conforms(SCHEMAS, "GET", SCHEMA_LIST);
    assert_eq!(reply.body["results"].as_array().map(Vec::len), Some(1));
    for missing in ["contacts", "0-2", "boat"] {
        let path = format!("{SCHEMA_LIST}/{missing}");
        let reply = sandbox
            .api(SCHEMAS, Method::GET, SCHEMA_ONE, &path, None)
            .await;
        reply.expect(404).conforms(SCHEMAS, "GET", SCHEMA_ONE);
    }

    let reply = sandbox
        .api(
            SCHEMAS,
            Method::POST,
            SCHEMA_LIST,
            SCHEMA_LIST,
            Some(car_schema()),
        )
        .await;
    reply.expect(409).conforms(SCHEMAS, "POST", SCHEMA_LIST);
    assert_eq!(reply.body["category"], "CONFLICT");
    let mut bad = car_schema();
    bad["name"] = json!("boat");
    bad["requiredProperties"] = json!(["hull"]);
    let reply = sandbox
        .api(SCHEMAS, Method::POST, SCHEMA_LIST, SCHEMA_LIST, Some(bad))
        .await;
    reply.expect(400).conforms(SCHEMAS, "POST", SCHEMA_LIST);
    assert_eq!(reply.body["category"], "VALIDATION_ERROR");
    assert_eq!(reply.body["context"]["requiredProperties"], json!(["hull"]));

    // The custom object's properties are served and its records written like any others.
    let path = format!("/crm/v3/properties/{fqn}");
    let reply = sandbox
        .api(PROPERTIES, Method::GET, PROPERTY_LIST, &path, None)
        .await;
    reply.expect(200).conforms(PROPERTIES, "GET", PROPERTY_LIST);
    let upsert = format!("/crm/v3/objects/{type_id}/batch/upsert");
    let template = "/crm/v3/objects/{objectType}/batch/upsert";
    let body = json!({"inputs": [
        {"idProperty": "vin", "id": "VIN1", "properties": {"model": "T", "fuel": "petrol"}},
        {"idProperty": "vin", "id": "VIN2", "properties": {"fuel": "petrol"}},
        {"idProperty": "vin", "id": "VIN3", "properties": {"model": "S", "fuel": "Electric"}},
    ]});
    let reply = sandbox
        .api(CUSTOM, Method::POST, template, &upsert, Some(body))
        .await;
    reply.expect(207).conforms(CUSTOM, "POST", template);
    assert_eq!(reply.body["results"][0]["properties"]["vin"], "VIN1");
    assert_eq!(
        reply.body["errors"][0]["context"]["properties"],
        json!(["model"])
    );
    assert_eq!(ids_of(&reply.body["errors"]), ["VIN2", "VIN3"]);
    let records = sandbox.records("p_car").await;
    assert_eq!(records.len(), 1);

    sandbox.control(Method::POST, "/_sandbox/reset", None).await;
    let reply = sandbox
        .api(SCHEMAS, Method::GET, SCHEMA_LIST, SCHEMA_LIST, None)
        .await;
    assert_eq!(
        reply.body["results"],
        json!([]),
        "a reset drops custom objects"
    );
    let again = sandbox.create_car().await;
    assert_ne!(
        again["objectTypeId"],
        type_id.as_str(),
        "type ids are not reused"
    );
    let stats = sandbox.control(Method::GET, "/_sandbox/stats", None).await;
    assert_eq!(stats["requests"]["schema_create"], 1);
}

#[tokio::test]
async fn created_properties_are_listed_validated_and_unique() {
    let sandbox = Sandbox::default().await;
    let path = "/crm/v3/properties/contacts";
    let shoe = json!({"name": "shoe_size", "label": "Shoe size", "type": "number",
        "fieldType": "number", "groupName": "contactinformation"});
    let reply = sandbox
        .api(
            PROPERTIES,
            Method::POST,
            PROPERTY_LIST,
            path,
            Some(shoe.clone()),
        )
        .await;
    reply
        .expect(201)
        .conforms(PROPERTIES, "POST", PROPERTY_LIST);
    assert_eq!(reply.body["hubspotDefined"], false);
    assert_eq!(
        reply.header("location"),
        Some("/crm/v3/properties/contacts/shoe_size")
    );
    let reply = sandbox
        .api(PROPERTIES, Method::POST, PROPERTY_LIST, path, Some(shoe))
        .await;
    reply
        .expect(409)
        .conforms(PROPERTIES, "POST", PROPERTY_LIST);
    let bad = json!({"name": "tier", "label": "Tier", "type": "enumeration",
        "fieldType": "text", "groupName": "contactinformation"});
    let reply = sandbox
        .api(PROPERTIES, Method::POST, PROPERTY_LIST, path, Some(bad))
        .await;
    reply
        .expect(400)
        .conforms(PROPERTIES, "POST", PROPERTY_LIST);
    let tier = json!({"name": "tier", "label": "Tier", "type": "enumeration",
    "fieldType": "select", "groupName": "contactinformation", "options": [
        {"label": "Gold", "value": "GOLD", "displayOrder": 0, "hidden": false},
        {"label": "Silver", "value": "SILVER", "displayOrder": 1, "hidden": false},
    ]});
    sandbox
        .api(PROPERTIES, Method::POST, PROPERTY_LIST, path, Some(tier))
        .await
        .expect(201);
    let external = json!({"name": "external_id", "label": "External id", "type": "string",
        "fieldType": "text", "groupName": "contactinformation", "hasUniqueValue": true});
    sandbox
        .api(
            PROPERTIES,
            Method::POST,
            PROPERTY_LIST,
            path,
            Some(external),
        )
        .await
        .expect(201);
    let reply = sandbox
        .api(PROPERTIES, Method::GET, PROPERTY_LIST, path, None)
        .await;
    reply.expect(200).conforms(PROPERTIES, "GET", PROPERTY_LIST);
    let names: Vec<&str> = reply.body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.ends_with(&["shoe_size", "tier", "external_id"]),
        "{names:?}"
    );

    let body = json!({"inputs": [
        {"idProperty": "external_id", "id": "ext-1",
         "properties": {"email": "a@example.com", "shoe_size": "42", "tier": "GOLD"}},
        {"idProperty": "external_id", "id": "ext-2", "properties": {"tier": "gold"}},
        {"idProperty": "external_id", "id": "ext-3", "properties": {"shoe_size": "big"}},
    ]});
    let reply = sandbox.post(UPSERT, body).await;
    reply.expect(207).conforms(CONTACTS, "POST", UPSERT);
    assert_eq!(reply.body["results"][0]["new"], true);
    assert_eq!(ids_of(&reply.body["errors"]), ["ext-2", "ext-3"]);
    let again = json!({"inputs": [
        {"idProperty": "external_id", "id": "ext-1", "properties": {"firstname": "Ada"}},
    ]});
    let reply = sandbox.post(UPSERT, again).await;
    reply.expect(200);
    assert_eq!(reply.body["results"][0]["new"], false);
    let search = search_body(
        json!([{"propertyName": "external_id", "operator": "EQ", "value": "ext-1"}]),
        10,
        "",
    );
    let reply = sandbox.post(SEARCH, search).await;
    reply.expect(200).conforms(CONTACTS, "POST", SEARCH);
    assert_eq!(reply.body["total"], 1);

    sandbox.control(Method::POST, "/_sandbox/reset", None).await;
    let reply = sandbox
        .api(
            PROPERTIES,
            Method::GET,
            "/crm/v3/properties/contacts/{propertyName}",
            "/crm/v3/properties/contacts/shoe_size",
            None,
        )
        .await;
    reply.expect(404);
}

const CREATE: &str = "/crm/v3/objects/contacts";
const BATCH_CREATE: &str = "/crm/v3/objects/contacts/batch/create";
const BATCH_ARCHIVE: &str = "/crm/v3/objects/contacts/batch/archive";
const ONE: &str = "/crm/v3/objects/contacts/{contactId}";

#[tokio::test]
async fn creates_conflict_and_archives() {
    let sandbox = Sandbox::default().await;
    let body = json!({"properties": {"email": "ada@example.com", "firstname": "Ada"},
        "associations": []});
    let reply = sandbox.post(CREATE, body.clone()).await;
    reply.expect(201).conforms(CONTACTS, "POST", CREATE);
    let ada = reply.body["id"].as_str().unwrap_or_default().to_owned();
    let reply = sandbox.post(CREATE, body).await;
    reply.expect(409).conforms(CONTACTS, "POST", CREATE);
    assert_eq!(reply.body["category"], "CONFLICT");
    assert_eq!(
        reply.body["message"],
        format!("Contact already exists. Existing ID: {ada}")
    );
    let invalid = json!({"properties": {"lifecyclestage": "Lead"}, "associations": []});
    let reply = sandbox.post(CREATE, invalid).await;
    reply.expect(400).conforms(CONTACTS, "POST", CREATE);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Property values were not valid: ")
    );

    // Without trace ids one conflict fails the whole batch (FACTS E4).
    let batch = json!({"inputs": [
        {"properties": {"email": "grace@example.com"}, "associations": []},
        {"properties": {"email": "ada@example.com"}, "associations": []},
    ]});
    let reply = sandbox.post(BATCH_CREATE, batch).await;
    reply.expect(409).conforms(CONTACTS, "POST", BATCH_CREATE);
    assert_eq!(
        reply.body["message"],
        format!("Contact already exists. Existing ID: {ada}")
    );
    assert_eq!(sandbox.records("contacts").await.len(), 1);
    // With one trace id per input, good inputs go through (FACTS E8).
    let batch = json!({"inputs": [
        {"properties": {"email": "grace@example.com"}, "associations": [],
         "objectWriteTraceId": "g"},
        {"properties": {"email": "ada@example.com"}, "associations": [],
         "objectWriteTraceId": "a"},
    ]});
    let reply = sandbox.post(BATCH_CREATE, batch).await;
    reply.expect(207).conforms(CONTACTS, "POST", BATCH_CREATE);
    assert_eq!(reply.body["results"][0]["objectWriteTraceId"], "g");
    assert_eq!(reply.body["errors"][0]["category"], "CONFLICT");
    let grace = reply.body["results"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let batch = json!({"inputs": [
        {"properties": {"email": "alan@example.com"}, "associations": []},
        {"properties": {"email": "edsger@example.com"}, "associations": []},
    ]});
    let reply = sandbox.post(BATCH_CREATE, batch).await;
    reply.expect(201).conforms(CONTACTS, "POST", BATCH_CREATE);
    let alan = reply.body["results"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let too_many: Vec<Value> = (0..101)
        .map(|i| json!({"properties": {"email": format!("u{i}@example.com")}, "associations": []}))
        .collect();
    let reply = sandbox
        .post(BATCH_CREATE, json!({"inputs": too_many}))
        .await;
    reply.expect(400).conforms(CONTACTS, "POST", BATCH_CREATE);

    // Archive: 204, unknown ids ignored, the records vanish and release their email.
    let archive = json!({"inputs": [{"id": grace}, {"id": "999999"}, {"id": "x"}]});
    let reply = sandbox.post(BATCH_ARCHIVE, archive).await;
    reply.expect(204).conforms(CONTACTS, "POST", BATCH_ARCHIVE);
    let path = format!("/crm/v3/objects/contacts/{alan}");
    let reply = sandbox
        .api(CONTACTS, Method::DELETE, ONE, &path, None)
        .await;
    reply.expect(204).conforms(CONTACTS, "DELETE", ONE);
    let reply = sandbox
        .api(CONTACTS, Method::DELETE, ONE, &path, None)
        .await;
    reply.expect(204);
    let reply = sandbox.api(CONTACTS, Method::GET, ONE, &path, None).await;
    reply.expect(404).conforms(CONTACTS, "GET", ONE);
    let reply = sandbox
        .post(READ, read_body(&[&grace, &alan, &ada], None))
        .await;
    reply.expect(207).conforms(CONTACTS, "POST", READ);
    assert_eq!(
        ids_of(&reply.body["errors"]),
        [grace.as_str(), alan.as_str()]
    );
    let list = "/crm/v3/objects/contacts";
    let reply = sandbox.api(CONTACTS, Method::GET, list, list, None).await;
    reply.expect(200).conforms(CONTACTS, "GET", list);
    assert_eq!(reply.body["results"].as_array().map(Vec::len), Some(2));
    let search = search_body(
        json!([{"propertyName": "email", "operator": "EQ", "value": "grace@example.com"}]),
        10,
        "",
    );
    assert_eq!(sandbox.post(SEARCH, search).await.body["total"], 0);
    let upsert = json!({"inputs": [upsert_input("grace@example.com", json!({}))]});
    let reply = sandbox.post(UPSERT, upsert).await;
    reply.expect(200);
    assert_eq!(
        reply.body["results"][0]["new"], true,
        "an archived email is free again"
    );
    let emails: Vec<String> = sandbox
        .records("contacts")
        .await
        .iter()
        .filter_map(|r| r["properties"]["email"].as_str().map(String::from))
        .collect();
    assert_eq!(
        emails,
        ["ada@example.com", "edsger@example.com", "grace@example.com"]
    );

    let stats = sandbox.control(Method::GET, "/_sandbox/stats", None).await;
    for (kind, count) in [
        ("create", 3),
        ("batch_create", 4),
        ("batch_archive", 1),
        ("archive", 2),
        ("batch_upsert", 1),
    ] {
        assert_eq!(stats["requests"][kind], count, "{kind}");
    }
    assert_eq!(stats["write_requests"], 11);
}

#[tokio::test]
async fn required_properties_on_create_and_update() {
    let sandbox = Sandbox::default().await;
    let car = sandbox.create_car().await;
    let type_id = car["objectTypeId"].as_str().unwrap_or_default().to_owned();
    let create = format!("/crm/v3/objects/{type_id}");
    let template = "/crm/v3/objects/{objectType}";
    let missing = json!({"properties": {"vin": "V1"}, "associations": []});
    let reply = sandbox
        .api(CUSTOM, Method::POST, template, &create, Some(missing))
        .await;
    reply.expect(400).conforms(CUSTOM, "POST", template);
    assert_eq!(reply.body["category"], "VALIDATION_ERROR");
    assert_eq!(reply.body["context"]["properties"], json!(["model"]));
    let good = json!({"properties": {"vin": "V1", "model": "T", "registered_on": "2020-01-01"},
        "associations": []});
    let reply = sandbox
        .api(CUSTOM, Method::POST, template, &create, Some(good))
        .await;
    reply.expect(201).conforms(CUSTOM, "POST", template);
    let id = reply.body["id"].as_str().unwrap_or_default().to_owned();
    let bad_date = json!({"properties": {"vin": "V2", "model": "S",
        "registered_on": "1635535865000"}, "associations": []});
    let reply = sandbox
        .api(CUSTOM, Method::POST, template, &create, Some(bad_date))
        .await;
    reply.expect(400).conforms(CUSTOM, "POST", template);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("INVALID_DATE")
    );

    let batch = format!("/crm/v3/objects/{type_id}/batch/create");
    let batch_template = "/crm/v3/objects/{objectType}/batch/create";
    let body = json!({"inputs": [{"properties": {"vin": "V3"}, "associations": []}]});
    let reply = sandbox
        .api(CUSTOM, Method::POST, batch_template, &batch, Some(body))
        .await;
    reply.expect(400).conforms(CUSTOM, "POST", batch_template);
    assert_eq!(reply.body["context"]["properties"], json!(["model"]));

    let update = format!("/crm/v3/objects/{type_id}/batch/update");
    let update_template = "/crm/v3/objects/{objectType}/batch/update";
    let body = json!({"inputs": [{"id": id, "properties": {"model": "", "vin": ""}}]});
    let reply = sandbox
        .api(CUSTOM, Method::POST, update_template, &update, Some(body))
        .await;
    reply.expect(207).conforms(CUSTOM, "POST", update_template);
    assert_eq!(
        reply.body["errors"][0]["context"]["properties"],
        json!(["vin", "model"])
    );

    let ticket = json!({"properties": {"subject": "Broken"}, "associations": []});
    let reply = sandbox
        .api(
            GENERIC,
            Method::POST,
            template,
            "/crm/v3/objects/tickets",
            Some(ticket),
        )
        .await;
    reply.expect(400).conforms(GENERIC, "POST", template);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Cannot create object with type: TICKET.")
    );
    let deal = json!({"properties": {"dealname": "Big", "dealstage": "closedwon",
        "amount": "100"}, "associations": []});
    let reply = sandbox
        .api(
            DEALS,
            Method::POST,
            "/crm/v3/objects/0-3",
            "/crm/v3/objects/0-3",
            Some(deal),
        )
        .await;
    reply
        .expect(201)
        .conforms(DEALS, "POST", "/crm/v3/objects/0-3");
}

#[tokio::test]
async fn emails_and_domains_match_whatever_their_case() {
    let sandbox = Sandbox::default().await;
    let reply = sandbox
        .post(
            UPSERT,
            json!({"inputs": [upsert_input("Ann@X.com", json!({"firstname": "Ann"}))]}),
        )
        .await;
    reply.expect(200).conforms(CONTACTS, "POST", UPSERT);
    assert_eq!(reply.body["results"][0]["properties"]["email"], "ann@x.com");
    let ann = reply.body["results"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let reply = sandbox
        .post(
            UPSERT,
            json!({"inputs": [upsert_input("ann@x.COM", json!({"lastname": "Lee"}))]}),
        )
        .await;
    reply.expect(200);
    assert_eq!(reply.body["results"][0]["new"], false);
    assert_eq!(reply.body["results"][0]["id"], ann.as_str());
    let duplicate = json!({"inputs": [
        upsert_input("bob@y.org", json!({})),
        upsert_input("BOB@y.org", json!({})),
    ]});
    sandbox
        .post(UPSERT, duplicate)
        .await
        .expect(400)
        .conforms(CONTACTS, "POST", UPSERT);
    let create = json!({"properties": {"email": "ANN@x.com"}, "associations": []});
    let reply = sandbox.post(CREATE, create).await;
    reply.expect(409).conforms(CONTACTS, "POST", CREATE);
    assert_eq!(
        reply.body["message"],
        format!("Contact already exists. Existing ID: {ann}")
    );
    let path = "/crm/v3/objects/contacts/Ann@X.Com?idProperty=email";
    let reply = sandbox.api(CONTACTS, Method::GET, ONE, path, None).await;
    reply.expect(200).conforms(CONTACTS, "GET", ONE);
    assert_eq!(reply.body["id"], ann.as_str());
    let reply = sandbox
        .post(READ, read_body(&["ANN@X.COM"], Some("email")))
        .await;
    reply.expect(200);
    assert_eq!(reply.body["results"][0]["id"], ann.as_str());
    let records = sandbox.records("contacts").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["properties"]["email"], "ann@x.com");

    let path = "/crm/v3/objects/companies/batch/upsert";
    for domain in ["Example.COM", "example.com"] {
        let body = json!({"inputs": [{"idProperty": "domain", "id": domain, "properties": {}}]});
        sandbox
            .api(COMPANIES, Method::POST, path, path, Some(body))
            .await
            .expect(200)
            .conforms(COMPANIES, "POST", path);
    }
    let companies = sandbox.records("companies").await;
    assert_eq!(companies.len(), 1);
    assert_eq!(companies[0]["properties"]["domain"], "example.com");
}

#[tokio::test]
async fn a_created_property_can_change_type_and_options() {
    let sandbox = Sandbox::default().await;
    let list = "/crm/v3/properties/contacts";
    let one = "/crm/v3/properties/contacts/signed_up";
    let signed_up = json!({"name": "signed_up", "label": "Signed up", "type": "string",
        "fieldType": "text", "groupName": "contactinformation"});
    sandbox
        .api(
            PROPERTIES,
            Method::POST,
            PROPERTY_LIST,
            list,
            Some(signed_up),
        )
        .await
        .expect(201);
    let reply = sandbox
        .api(
            PROPERTIES,
            Method::PATCH,
            PROPERTY_ONE,
            one,
            Some(json!({"type": "date", "fieldType": "date"})),
        )
        .await;
    reply
        .expect(200)
        .conforms(PROPERTIES, "PATCH", PROPERTY_ONE);
    assert_eq!(reply.body["type"], "date");
    assert_eq!(reply.body["label"], "Signed up");
    let reply = sandbox
        .api(PROPERTIES, Method::GET, PROPERTY_ONE, one, None)
        .await;
    assert_eq!(reply.body["type"], "date");
    // Values are now checked as dates.
    let body = json!({"inputs": [upsert_input("a@example.com", json!({"signed_up": "soon"}))]});
    let reply = sandbox.post(UPSERT, body).await;
    reply.expect(207);
    assert!(
        reply.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("signed_up")),
        "{}",
        reply.body
    );

    for (path, change, status) in [
        (
            one,
            json!({"type": "enumeration", "fieldType": "select"}),
            400,
        ),
        (
            "/crm/v3/properties/contacts/email",
            json!({"label": "Mail"}),
            400,
        ),
        (
            "/crm/v3/properties/contacts/nothing_here",
            json!({"label": "x"}),
            404,
        ),
    ] {
        let reply = sandbox
            .api(PROPERTIES, Method::PATCH, PROPERTY_ONE, path, Some(change))
            .await;
        reply
            .expect(status)
            .conforms(PROPERTIES, "PATCH", PROPERTY_ONE);
    }
}
