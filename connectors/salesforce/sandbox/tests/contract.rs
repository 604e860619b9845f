//! Contract tests of the Salesforce sandbox: a real server on a free port, real HTTP, every
//! answer checked against a row of `shared/contracts/salesforce/FACTS.md` (cited as `FACTS
//! <row>`) and the requests of the Postman collection in
//! `shared/contracts/salesforce/postman-salesforce-apis/` replayed.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Client, Method};
use salesforce_sandbox::{CustomObject, SandboxConfig, SandboxHandle, spawn};
use serde_json::{Value, json};

mod bulk;
mod postman;
mod query;

const TOKEN: &str = "sandbox-token";
const V: &str = "/services/data/v62.0";

/// One HTTP answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
    pub(crate) body: Value,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    pub(crate) fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status, body: {}",
            self.text
        );
        self
    }

    /// Asserts a REST error array whose first entry has `code` (FACTS E1).
    #[track_caller]
    pub(crate) fn error(&self, status: u16, code: &str) -> &Self {
        self.expect(status);
        let first = &self.body[0];
        assert_eq!(first["errorCode"], code, "{}", self.text);
        assert!(first["message"].is_string(), "{}", self.text);
        assert!(
            self.body.as_array().is_some_and(|a| a.len() == 1),
            "{}",
            self.text
        );
        self
    }
}

/// A request body.
pub(crate) enum Body {
    Json(Value),
    Form(Vec<(&'static str, String)>),
    Csv(String),
    None,
}

pub(crate) struct Sandbox {
    pub(crate) handle: SandboxHandle,
    client: Client,
}

/// An object with a non-unique external id on Contact (so an upsert can match twice,
/// FACTS U1) and a custom object with lookups to Contact and Lead.
pub(crate) fn test_objects() -> Vec<CustomObject> {
    serde_json::from_value(json!([
        {"name": "Contact", "fields": [
            {"name": "Ext_Id__c", "type": "string", "externalId": true, "unique": true, "length": 40},
            {"name": "Legacy_Ref__c", "type": "string", "externalId": true}
        ]},
        {"name": "ThankView__c", "fields": [
            {"name": "Transaction_Id__c", "type": "string", "externalId": true, "unique": true},
            {"name": "Contact__c", "type": "reference", "referenceTo": "Contact"},
            {"name": "Lead__c", "type": "reference", "referenceTo": "Lead"},
            {"name": "Amount__c", "type": "currency"},
            {"name": "Sent_On__c", "type": "date"},
            {"name": "Status__c", "type": "picklist", "picklistValues": ["Sent", "Viewed"], "restrictedPicklist": true}
        ]}
    ]))
    .expect("the test objects are valid definitions")
}

impl Sandbox {
    pub(crate) async fn start(config: SandboxConfig) -> Self {
        let handle = spawn(config)
            .await
            .expect("the sandbox binds a loopback port");
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a plain HTTP client builds");
        Sandbox { handle, client }
    }

    /// A sandbox with the test objects and Bulk stages of 20 ms.
    pub(crate) async fn default() -> Self {
        Sandbox::start(SandboxConfig {
            custom_objects: test_objects(),
            bulk_processing_ms: 20,
            ..SandboxConfig::default()
        })
        .await
    }

    pub(crate) async fn send(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Body,
    ) -> Reply {
        let url = format!("{}{path}", self.handle.base_url);
        let mut request = self.client.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::Json(value) => request.json(&value),
            Body::Form(fields) => request.form(&fields),
            Body::Csv(text) => request.header("content-type", "text/csv").body(text),
            Body::None => request,
        };
        let response = request.send().await.expect("the sandbox answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("the body arrives");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            body,
        }
    }

    /// An API call with the sandbox token, `path` under `/services/data/v62.0`.
    pub(crate) async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let body = body.map_or(Body::None, Body::Json);
        self.send(Some(TOKEN), method, &format!("{V}{path}"), body)
            .await
    }

    pub(crate) async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let body = body.map_or(Body::None, Body::Json);
        self.send(None, method, path, body).await
    }

    pub(crate) async fn faults(&self, faults: Value) {
        self.admin(Method::POST, "/_sandbox/faults", Some(faults))
            .await
            .expect(200);
    }

    /// Every record of an object, through the test route.
    pub(crate) async fn records(&self, object: &str) -> Vec<Value> {
        let reply = self
            .admin(Method::GET, &format!("/_sandbox/records/{object}"), None)
            .await;
        reply.expect(200);
        reply.body["records"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Creates a contact and answers its id.
    pub(crate) async fn contact(&self, body: Value) -> String {
        let reply = self
            .api(Method::POST, "/sobjects/Contact", Some(body))
            .await;
        reply.expect(201);
        reply.body["id"].as_str().unwrap_or_default().to_owned()
    }
}

/// The 18-character suffix of a 15-character id (FACTS I2), computed here independently.
fn suffix(id15: &str) -> String {
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .map(|(j, _)| 1usize << j)
                .sum::<usize>();
            char::from(table[bits])
        })
        .collect()
}

#[tokio::test]
async fn ids_have_the_key_prefix_and_the_case_safe_suffix() {
    let sandbox = Sandbox::default().await;
    let id = sandbox.contact(json!({"LastName": "Smith"})).await;
    // FACTS I1, I3: 18 characters, base 62, key prefix 003.
    assert_eq!(id.len(), 18);
    assert!(id.starts_with("003"));
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
    // FACTS I2: the suffix is the checksum of the first 15.
    assert_eq!(&id[15..], suffix(&id[..15]));
    // Both forms are accepted as input; answers use the 18-character form.
    let by15 = sandbox
        .api(
            Method::GET,
            &format!("/sobjects/Contact/{}", &id[..15]),
            None,
        )
        .await;
    by15.expect(200);
    assert_eq!(by15.body["Id"], id.as_str());
    assert_eq!(by15.body["attributes"]["type"], "Contact");
    assert_eq!(
        by15.body["attributes"]["url"],
        format!("{V}/sobjects/Contact/{id}").as_str()
    );
    // Datetimes are written as Salesforce writes them.
    let created = by15.body["CreatedDate"].as_str().unwrap_or_default();
    assert_eq!(
        created.len(),
        "2024-01-01T00:00:00.000+0000".len(),
        "{created}"
    );
    assert!(created.ends_with("+0000"), "{created}");
    // A custom object gets an a0… prefix (FACTS I3).
    let tv = sandbox
        .api(
            Method::POST,
            "/sobjects/ThankView__c",
            Some(json!({"Name": "TV-1", "Contact__c": id})),
        )
        .await;
    tv.expect(201);
    let tv_id = tv.body["id"].as_str().unwrap_or_default();
    assert!(tv_id.starts_with("a0"), "{tv_id}");
    assert_eq!(&tv_id[15..], suffix(&tv_id[..15]));
}

#[tokio::test]
async fn versions_need_no_auth_and_carry_no_limit_header() {
    let sandbox = Sandbox::default().await;
    let reply = sandbox
        .send(None, Method::GET, "/services/data/", Body::None)
        .await;
    reply.expect(200);
    // FACTS L3: every REST response except GET /services/data/ carries Sforce-Limit-Info.
    assert_eq!(reply.header("sforce-limit-info"), None);
    let versions = reply.body.as_array().cloned().unwrap_or_default();
    assert!(
        versions
            .iter()
            .any(|v| v["version"] == "62.0" && v["url"] == V)
    );
    for version in &versions {
        assert!(version["label"].is_string() && version["url"].is_string());
    }
    // An unknown version is a 404 NOT_FOUND (FACTS E2, E4).
    let unknown = sandbox
        .send(
            Some(TOKEN),
            Method::GET,
            "/services/data/v99.0/sobjects",
            Body::None,
        )
        .await;
    unknown.error(404, "NOT_FOUND");
    assert_eq!(
        unknown.body[0]["message"],
        "The requested resource does not exist"
    );
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_401_invalid_session_id() {
    let sandbox = Sandbox::default().await;
    for token in [None, Some("wrong")] {
        let reply = sandbox
            .send(token, Method::GET, &format!("{V}/sobjects"), Body::None)
            .await;
        // FACTS E1: the array body, its content type and www-authenticate: Token.
        reply.error(401, "INVALID_SESSION_ID");
        assert_eq!(reply.body[0]["message"], "Session expired or invalid");
        assert_eq!(reply.header("www-authenticate"), Some("Token"));
        assert_eq!(
            reply.header("content-type"),
            Some("application/json;charset=UTF-8")
        );
    }
}

/// The refresh grant's form (FACTS O2).
fn refresh_form(refresh_token: &str) -> Body {
    Body::Form(vec![
        ("grant_type", "refresh_token".to_owned()),
        ("client_id", "sandbox-client-id".to_owned()),
        ("client_secret", "sandbox-client-secret".to_owned()),
        ("refresh_token", refresh_token.to_owned()),
    ])
}

#[tokio::test]
async fn the_refresh_grant_answers_facts_o2() {
    let sandbox = Sandbox::default().await;
    let reply = sandbox
        .send(
            None,
            Method::POST,
            "/services/oauth2/token",
            refresh_form("sandbox-refresh-token"),
        )
        .await;
    reply.expect(200);
    let body = &reply.body;
    for key in [
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
        "scope",
    ] {
        assert!(body[key].is_string(), "{key} in {body}");
    }
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["instance_url"], sandbox.handle.base_url.as_str());
    assert!(
        body["issued_at"]
            .as_str()
            .is_some_and(|t| t.parse::<u64>().is_ok())
    );
    let id = body["id"].as_str().unwrap_or_default();
    assert!(
        id.starts_with(&format!("{}/id/00D", sandbox.handle.base_url)),
        "{id}"
    );
    // No expires_in and no new refresh token.
    assert!(body.get("expires_in").is_none() && body.get("refresh_token").is_none());
    // FACTS O4: the token works at instance_url.
    let token = body["access_token"].as_str().unwrap_or_default();
    sandbox
        .send(
            Some(token),
            Method::GET,
            &format!("{V}/sobjects"),
            Body::None,
        )
        .await
        .expect(200);
}

#[tokio::test]
async fn an_expired_token_is_401_until_the_client_refreshes() {
    let sandbox = Sandbox::start(SandboxConfig {
        token_ttl_requests: Some(2),
        ..SandboxConfig::default()
    })
    .await;
    sandbox
        .api(Method::GET, "/sobjects", None)
        .await
        .expect(200);
    sandbox
        .api(Method::GET, "/sobjects", None)
        .await
        .expect(200);
    // FACTS O4: an expired token gives 401 INVALID_SESSION_ID; the client refreshes.
    sandbox
        .api(Method::GET, "/sobjects", None)
        .await
        .error(401, "INVALID_SESSION_ID");
    let grant = sandbox
        .send(
            None,
            Method::POST,
            "/services/oauth2/token",
            refresh_form("sandbox-refresh-token"),
        )
        .await;
    grant.expect(200);
    let token = grant.body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    sandbox
        .send(
            Some(&token),
            Method::GET,
            &format!("{V}/sobjects"),
            Body::None,
        )
        .await
        .expect(200);
    // Expiry by the test route, as a session timeout would.
    sandbox
        .admin(Method::POST, "/_sandbox/expire-sessions", None)
        .await
        .expect(200);
    sandbox
        .send(
            Some(&token),
            Method::GET,
            &format!("{V}/sobjects"),
            Body::None,
        )
        .await
        .error(401, "INVALID_SESSION_ID");
}

#[tokio::test]
async fn a_revoked_refresh_token_is_invalid_grant() {
    let sandbox = Sandbox::default().await;
    let grant = sandbox
        .send(
            None,
            Method::POST,
            "/services/oauth2/token",
            refresh_form("sandbox-refresh-token"),
        )
        .await;
    let token = grant.body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let revoke = Body::Form(vec![("token", "sandbox-refresh-token".to_owned())]);
    sandbox
        .send(None, Method::POST, "/services/oauth2/revoke", revoke)
        .await
        .expect(200);
    // FACTS O3.
    let refused = sandbox
        .send(
            None,
            Method::POST,
            "/services/oauth2/token",
            refresh_form("sandbox-refresh-token"),
        )
        .await;
    refused.expect(400);
    assert_eq!(
        refused.body,
        json!({"error": "invalid_grant", "error_description": "expired access/refresh token"})
    );
    // The access tokens issued from it are revoked too.
    sandbox
        .send(
            Some(&token),
            Method::GET,
            &format!("{V}/sobjects"),
            Body::None,
        )
        .await
        .error(401, "INVALID_SESSION_ID");
    // The knob puts it back.
    sandbox
        .faults(json!({"refresh_token_revoked": false}))
        .await;
    sandbox
        .send(
            None,
            Method::POST,
            "/services/oauth2/token",
            refresh_form("sandbox-refresh-token"),
        )
        .await
        .expect(200);
}

#[tokio::test]
async fn token_errors_are_oauth_shaped() {
    let sandbox = Sandbox::default().await;
    // FACTS O3.
    let missing = sandbox
        .send(
            None,
            Method::POST,
            "/services/oauth2/token",
            Body::Form(vec![("client_id", "x".into())]),
        )
        .await;
    missing.expect(400);
    assert_eq!(
        missing.body,
        json!({"error": "invalid_request", "error_description": "grant type is missing"})
    );
    let wrong_client = sandbox
        .send(
            None,
            Method::POST,
            "/services/oauth2/token",
            Body::Form(vec![
                ("grant_type", "refresh_token".into()),
                ("client_id", "nope".into()),
                ("refresh_token", "sandbox-refresh-token".into()),
            ]),
        )
        .await;
    wrong_client.expect(400);
    assert_eq!(
        wrong_client.body,
        json!({"error": "invalid_client_id", "error_description": "client identifier invalid"})
    );
}

/// The test-only RSA keys the connector's tests use too.
fn jwt_fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// A JWT bearer assertion with these claims, signed (RS256) with a fixture key.
fn signed_assertion(claims: &Value, key: &str) -> String {
    let pem = fs_err::read(jwt_fixture(key)).expect("the fixture key");
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("an RSA key");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        claims,
        &key,
    )
    .expect("signed")
}

/// A JWT bearer assertion with these claims (signed with the test key; the default sandbox
/// does not verify signatures).
fn assertion(claims: Value) -> String {
    signed_assertion(&claims, "jwt-test-key.pem")
}

#[tokio::test]
async fn the_jwt_bearer_grant_checks_iss_sub_and_aud() {
    let sandbox = Sandbox::default().await;
    let exp = chrono::Utc::now().timestamp() + 300;
    let grant = |claims: Value| {
        Body::Form(vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned(),
            ),
            ("assertion", assertion(claims)),
        ])
    };
    let good = json!({"iss": "sandbox-client-id", "sub": "sandbox@example.com", "aud": "https://test.salesforce.com", "exp": exp});
    let reply = sandbox
        .send(None, Method::POST, "/services/oauth2/token", grant(good))
        .await;
    reply.expect(200);
    assert_eq!(reply.body["instance_url"], sandbox.handle.base_url.as_str());
    let cases = [
        (
            json!({"iss": "other", "sub": "sandbox@example.com", "aud": "https://login.salesforce.com", "exp": exp}),
            "invalid_client_id",
        ),
        (
            json!({"iss": "sandbox-client-id", "sub": "sandbox@example.com", "aud": "https://evil.example.com", "exp": exp}),
            "invalid_grant",
        ),
        (
            json!({"iss": "sandbox-client-id", "sub": "someone@else.com", "aud": "https://login.salesforce.com", "exp": exp}),
            "invalid_grant",
        ),
        (
            json!({"iss": "sandbox-client-id", "sub": "sandbox@example.com", "aud": "https://login.salesforce.com", "exp": 1}),
            "invalid_grant",
        ),
    ];
    for (claims, error) in cases {
        let reply = sandbox
            .send(
                None,
                Method::POST,
                "/services/oauth2/token",
                grant(claims.clone()),
            )
            .await;
        reply.expect(400);
        assert_eq!(reply.body["error"], error, "{claims}");
    }
    let garbage = Body::Form(vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned(),
        ),
        ("assertion", "not-a-jwt".to_owned()),
    ]);
    sandbox
        .send(None, Method::POST, "/services/oauth2/token", garbage)
        .await
        .expect(400);
}

#[tokio::test]
async fn the_limit_header_counts_and_the_allocation_refuses_with_403() {
    let sandbox = Sandbox::start(SandboxConfig {
        api_allocation: 3,
        ..SandboxConfig::default()
    })
    .await;
    // FACTS L3: api-usage=used/max on every response.
    for used in 1..=3 {
        let reply = sandbox.api(Method::GET, "/sobjects", None).await;
        reply.expect(200);
        assert_eq!(
            reply.header("sforce-limit-info"),
            Some(format!("api-usage={used}/3").as_str())
        );
    }
    // FACTS L2, E4: past the allocation, 403 REQUEST_LIMIT_EXCEEDED (not 429, no Retry-After).
    let refused = sandbox.api(Method::GET, "/sobjects", None).await;
    refused.error(403, "REQUEST_LIMIT_EXCEEDED");
    assert_eq!(refused.body[0]["message"], "TotalRequests Limit exceeded.");
    assert_eq!(refused.header("sforce-limit-info"), Some("api-usage=3/3"));
    assert_eq!(refused.header("retry-after"), None);
    sandbox.faults(json!({"api_allocation": 10})).await;
    let limits = sandbox.api(Method::GET, "/limits", None).await;
    limits.expect(200);
    assert_eq!(
        limits.body["DailyApiRequests"],
        json!({"Max": 10, "Remaining": 6})
    );
}

#[tokio::test]
async fn describe_answers_facts_d1() {
    let sandbox = Sandbox::default().await;
    let global = sandbox.api(Method::GET, "/sobjects", None).await;
    global.expect(200);
    let names: Vec<&str> = global.body["sobjects"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o["name"].as_str()).collect())
        .unwrap_or_default();
    for name in ["Account", "Contact", "Lead", "User", "ThankView__c"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let contact = sandbox
        .api(Method::GET, "/sobjects/Contact/describe", None)
        .await;
    contact.expect(200);
    let body = &contact.body;
    assert_eq!(body["keyPrefix"], "003");
    assert_eq!(body["createable"], true);
    let field = |name: &str| -> Value {
        body["fields"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["name"] == name).cloned())
            .unwrap_or(Value::Null)
    };
    for key in [
        "name",
        "label",
        "type",
        "length",
        "createable",
        "updateable",
        "nillable",
        "defaultedOnCreate",
        "externalId",
        "unique",
        "idLookup",
        "picklistValues",
        "restrictedPicklist",
        "referenceTo",
        "precision",
        "scale",
    ] {
        assert!(field("Email").get(key).is_some(), "{key}");
    }
    assert_eq!(field("LastName")["nillable"], false);
    assert_eq!(field("Email")["type"], "email");
    assert_eq!(field("AccountId")["type"], "reference");
    assert_eq!(field("AccountId")["referenceTo"], json!(["Account"]));
    assert_eq!(field("Id")["type"], "id");
    assert_eq!(field("Ext_Id__c")["externalId"], true);
    assert_eq!(field("Legacy_Ref__c")["unique"], false);
    let lead = sandbox
        .api(Method::GET, "/sobjects/Lead/describe", None)
        .await;
    let status = lead.body["fields"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == "Status").cloned())
        .unwrap_or(Value::Null);
    assert_eq!(status["type"], "picklist");
    assert_eq!(status["restrictedPicklist"], true);
    assert_eq!(status["picklistValues"][0]["active"], true);
    let tv = sandbox
        .api(Method::GET, "/sobjects/ThankView__c/describe", None)
        .await;
    assert_eq!(tv.body["custom"], true);
    assert!(
        tv.body["keyPrefix"]
            .as_str()
            .is_some_and(|p| p.starts_with("a0"))
    );
    sandbox
        .api(Method::GET, "/sobjects/Nope__c/describe", None)
        .await
        .error(404, "NOT_FOUND");
}

#[tokio::test]
async fn single_record_writes_refuse_with_the_error_array() {
    let sandbox = Sandbox::default().await;
    // FACTS E4: each save rule's code, and `fields` for field errors (E1).
    let cases = [
        (
            json!({"Email": "a@example.com"}),
            "REQUIRED_FIELD_MISSING",
            Some(json!(["LastName"])),
        ),
        (json!({"LastName": "x", "Foo__c": 1}), "INVALID_FIELD", None),
        (
            json!({"LastName": "x", "Name": "y"}),
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            Some(json!(["Name"])),
        ),
        (
            json!({"LastName": "x".repeat(81)}),
            "STRING_TOO_LONG",
            Some(json!(["LastName"])),
        ),
        (
            json!({"LastName": "x", "Birthdate": "next week"}),
            "JSON_PARSER_ERROR",
            None,
        ),
        (
            json!({"LastName": "x", "AccountId": "not-an-id"}),
            "MALFORMED_ID",
            Some(json!(["AccountId"])),
        ),
        (
            json!({"LastName": "x", "AccountId": "001D0000001aH2A"}),
            "INVALID_CROSS_REFERENCE_KEY",
            Some(json!(["AccountId"])),
        ),
    ];
    for (body, code, fields) in cases {
        let reply = sandbox
            .api(Method::POST, "/sobjects/Contact", Some(body.clone()))
            .await;
        reply.error(400, code);
        if let Some(fields) = fields {
            assert_eq!(reply.body[0]["fields"], fields, "{body}");
        }
    }
    let reply = sandbox
        .api(
            Method::POST,
            "/sobjects/Contact",
            Some(json!({"LastName": "x", "Foo__c": 1})),
        )
        .await;
    assert_eq!(
        reply.body[0]["message"],
        "No such column 'Foo__c' on sobject of type Contact"
    );
    // Restricted picklists are case-sensitive.
    let lead = sandbox
        .api(
            Method::POST,
            "/sobjects/Lead",
            Some(json!({"LastName": "x", "Company": "c", "Status": "open - not contacted"})),
        )
        .await;
    lead.error(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
    // A duplicate value on a unique external id.
    sandbox
        .contact(json!({"LastName": "a", "Ext_Id__c": "C-1"}))
        .await;
    let dup = sandbox
        .api(
            Method::POST,
            "/sobjects/Contact",
            Some(json!({"LastName": "b", "Ext_Id__c": "c-1"})),
        )
        .await;
    dup.error(400, "DUPLICATE_VALUE");
    assert!(dup.body[0]["message"].as_str().is_some_and(|m| {
        m.starts_with("duplicate value found: Ext_Id__c duplicates value on record with id: 003")
    }));
    // Update, delete, and the deleted record.
    let id = sandbox.contact(json!({"LastName": "Old"})).await;
    sandbox
        .api(
            Method::PATCH,
            &format!("/sobjects/Contact/{id}"),
            Some(json!({"LastName": "New"})),
        )
        .await
        .expect(204);
    let got = sandbox
        .api(
            Method::GET,
            &format!("/sobjects/Contact/{id}?fields=LastName,Name"),
            None,
        )
        .await;
    assert_eq!(got.body["LastName"], "New");
    assert!(got.body.get("Email").is_none());
    sandbox
        .api(Method::DELETE, &format!("/sobjects/Contact/{id}"), None)
        .await
        .expect(204);
    sandbox
        .api(Method::DELETE, &format!("/sobjects/Contact/{id}"), None)
        .await
        .error(404, "ENTITY_IS_DELETED");
    sandbox
        .api(Method::GET, &format!("/sobjects/Contact/{id}"), None)
        .await
        .expect(404);
}

#[tokio::test]
async fn collections_answer_200_with_per_record_status_codes() {
    let sandbox = Sandbox::default().await;
    let reply = sandbox
        .api(
            Method::POST,
            "/composite/sobjects",
            Some(json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Contact"}, "LastName": "Good"},
                {"attributes": {"type": "Contact"}, "Email": "no-last-name@example.com"},
                {"attributes": {"type": "Lead"}, "LastName": "L", "Company": "C", "Email": "bad"},
                {"attributes": {"type": "Account"}, "Name": "Acme"}
            ]})),
        )
        .await;
    // FACTS E3: 200 although records failed; C2: results in request order.
    reply.expect(200);
    let results = reply.body.as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["success"], true);
    assert!(
        results[0]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("003"))
    );
    assert_eq!(results[0]["errors"], json!([]));
    // C2: a failure has no id and uses statusCode (E3).
    assert_eq!(results[1]["success"], false);
    assert!(results[1].get("id").is_none());
    assert_eq!(
        results[1]["errors"][0]["statusCode"],
        "REQUIRED_FIELD_MISSING"
    );
    assert_eq!(results[1]["errors"][0]["fields"], json!(["LastName"]));
    assert!(results[1]["errors"][0].get("errorCode").is_none());
    assert_eq!(
        results[2]["errors"][0]["statusCode"],
        "INVALID_EMAIL_ADDRESS"
    );
    assert!(
        results[3]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("001"))
    );
    assert_eq!(sandbox.records("Contact").await.len(), 1);

    // Update by id (C1): a malformed id is MALFORMED_ID "malformed id …" (E3), an id of
    // another object "Contact ID: id value of incorrect type" (E4).
    let contact_id = results[0]["id"].as_str().unwrap_or_default().to_owned();
    let account_id = results[3]["id"].as_str().unwrap_or_default().to_owned();
    let update = sandbox
        .api(
            Method::PATCH,
            "/composite/sobjects",
            Some(json!({"records": [
                {"attributes": {"type": "Contact"}, "id": contact_id, "Title": "CEO"},
                {"attributes": {"type": "Contact"}, "id": "001RM000003oLrB000", "Title": "x"},
                {"attributes": {"type": "Contact"}, "id": account_id, "Title": "x"},
                {"attributes": {"type": "Contact"}, "Title": "x"}
            ]})),
        )
        .await;
    update.expect(200);
    assert_eq!(update.body[0]["success"], true);
    assert_eq!(
        update.body[1]["errors"][0],
        json!({"statusCode": "MALFORMED_ID", "message": "malformed id 001RM000003oLrB000", "fields": []})
    );
    assert_eq!(update.body[2]["errors"][0]["statusCode"], "MALFORMED_ID");
    assert_eq!(
        update.body[2]["errors"][0]["message"],
        format!("Contact ID: id value of incorrect type: {account_id}").as_str()
    );
    assert_eq!(
        update.body[3]["errors"][0]["statusCode"],
        "MISSING_ARGUMENT"
    );

    // Delete (C1) with a bad id among good ones.
    let delete = sandbox
        .api(
            Method::DELETE,
            &format!("/composite/sobjects?ids={contact_id},001RM000003oLrB000&allOrNone=false"),
            None,
        )
        .await;
    delete.expect(200);
    assert_eq!(
        delete.body[0],
        json!({"id": contact_id, "success": true, "errors": []})
    );
    assert_eq!(delete.body[1]["errors"][0]["statusCode"], "MALFORMED_ID");
    // Retrieve (C1): null for a record that is gone.
    let retrieve = sandbox
        .api(
            Method::GET,
            &format!("/composite/sobjects/Account?ids={account_id},{contact_id}&fields=Id,Name"),
            None,
        )
        .await;
    retrieve.expect(200);
    assert_eq!(retrieve.body[0]["Name"], "Acme");
    assert_eq!(retrieve.body[1], Value::Null);
}

#[tokio::test]
async fn all_or_none_rolls_back_every_record() {
    let sandbox = Sandbox::default().await;
    let reply = sandbox
        .api(
            Method::POST,
            "/composite/sobjects",
            Some(json!({"allOrNone": true, "records": [
                {"attributes": {"type": "Contact"}, "LastName": "One"},
                {"attributes": {"type": "Contact"}, "FirstName": "No last name"},
                {"attributes": {"type": "Contact"}, "LastName": "Three"}
            ]})),
        )
        .await;
    reply.expect(200);
    // FACTS C3: the failing record has its own error, the others are rolled back with the id
    // they would have had, and nothing is committed.
    assert_eq!(
        reply.body[1]["errors"][0]["statusCode"],
        "REQUIRED_FIELD_MISSING"
    );
    for at in [0, 2] {
        let item = &reply.body[at];
        assert_eq!(item["success"], false);
        assert!(item["id"].as_str().is_some_and(|id| id.starts_with("003")));
        assert_eq!(
            item["errors"][0],
            json!({"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "Record rolled back because not all records were valid and the request was using AllOrNone header", "fields": []})
        );
    }
    assert!(sandbox.records("Contact").await.is_empty());
    // Updates roll back too.
    let id = sandbox.contact(json!({"LastName": "Before"})).await;
    let reply = sandbox
        .api(
            Method::PATCH,
            "/composite/sobjects",
            Some(json!({"allOrNone": true, "records": [
                {"attributes": {"type": "Contact"}, "id": id, "LastName": "After"},
                {"attributes": {"type": "Contact"}, "id": id, "LastName": null}
            ]})),
        )
        .await;
    assert_eq!(
        reply.body[1]["errors"][0]["statusCode"],
        "REQUIRED_FIELD_MISSING"
    );
    assert_eq!(sandbox.records("Contact").await[0]["LastName"], "Before");
}

#[tokio::test]
async fn collections_refuse_more_than_200_records_as_a_whole() {
    let sandbox = Sandbox::default().await;
    let records: Vec<Value> = (0..201)
        .map(|i| json!({"attributes": {"type": "Contact"}, "LastName": format!("L{i}")}))
        .collect();
    // FACTS L1, E3: a malformed request is a 400.
    let reply = sandbox
        .api(
            Method::POST,
            "/composite/sobjects",
            Some(json!({"records": records})),
        )
        .await;
    reply.error(400, "EXCEEDED_ID_LIMIT");
    assert!(sandbox.records("Contact").await.is_empty());
    // An unknown field in any record fails deserialization of the whole request.
    let reply = sandbox
        .api(
            Method::POST,
            "/composite/sobjects",
            Some(json!({"records": [{"attributes": {"type": "Contact"}, "LastName": "a"}, {"attributes": {"type": "Contact"}, "Nope__c": 1}]})),
        )
        .await;
    reply.error(400, "INVALID_FIELD");
    assert!(sandbox.records("Contact").await.is_empty());
}

#[tokio::test]
async fn collection_upserts_say_which_records_they_created() {
    let sandbox = Sandbox::default().await;
    sandbox
        .contact(json!({"LastName": "Existing", "Ext_Id__c": "C-1"}))
        .await;
    let reply = sandbox
        .api(
            Method::PATCH,
            "/composite/sobjects/Contact/Ext_Id__c",
            Some(json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Contact"}, "Ext_Id__c": "c-1", "Title": "Updated"},
                {"attributes": {"type": "Contact"}, "Ext_Id__c": "C-2", "LastName": "New"},
                {"attributes": {"type": "Contact"}, "Ext_Id__c": "C-3"},
                {"attributes": {"type": "Contact"}, "LastName": "No ext"}
            ]})),
        )
        .await;
    // FACTS C4: UpsertResult with `created`, HTTP 200; ext ids match ignoring case.
    reply.expect(200);
    assert_eq!(reply.body[0]["created"], false);
    assert_eq!(reply.body[0]["success"], true);
    assert_eq!(reply.body[1]["created"], true);
    assert_eq!(
        reply.body[2]["errors"][0]["statusCode"],
        "REQUIRED_FIELD_MISSING"
    );
    assert_eq!(reply.body[3]["errors"][0]["statusCode"], "MISSING_ARGUMENT");
    let contacts = sandbox.records("Contact").await;
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[0]["Title"], "Updated");
    assert_eq!(contacts[0]["Ext_Id__c"], "C-1");
}

#[tokio::test]
async fn single_upserts_answer_201_200_and_300() {
    let sandbox = Sandbox::default().await;
    let path = "/sobjects/Contact/Legacy_Ref__c/L-1";
    // FACTS U1: no match → 201 created:true.
    let first = sandbox
        .api(Method::PATCH, path, Some(json!({"LastName": "One"})))
        .await;
    first.expect(201);
    let id = first.body["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        first.body,
        json!({"id": id, "success": true, "errors": [], "created": true})
    );
    // One match → 200 created:false (current versions), 204 on old ones.
    let second = sandbox
        .api(Method::PATCH, path, Some(json!({"Title": "Two"})))
        .await;
    second.expect(200);
    assert_eq!(
        second.body,
        json!({"id": id, "success": true, "errors": [], "created": false})
    );
    sandbox
        .send(
            Some(TOKEN),
            Method::PATCH,
            &format!("/services/data/v40.0{path}"),
            Body::Json(json!({"Title": "Old API"})),
        )
        .await
        .expect(204);
    // A second record with the same (non-unique) external id: 300 with both URLs, nothing written.
    sandbox
        .contact(json!({"LastName": "Twin", "Legacy_Ref__c": "l-1"}))
        .await;
    let multiple = sandbox
        .api(Method::PATCH, path, Some(json!({"Title": "Three"})))
        .await;
    multiple.expect(300);
    let urls = multiple.body.as_array().cloned().unwrap_or_default();
    assert_eq!(urls.len(), 2);
    assert!(urls.iter().all(|u| {
        u.as_str()
            .is_some_and(|u| u.starts_with(&format!("{V}/sobjects/Contact/003")))
    }));
    assert!(
        sandbox
            .records("Contact")
            .await
            .iter()
            .all(|c| c["Title"] != "Three")
    );
    sandbox.api(Method::GET, path, None).await.expect(300);
    // updateOnly refuses to create.
    sandbox
        .api(
            Method::PATCH,
            "/sobjects/Contact/Legacy_Ref__c/L-9?updateOnly=true",
            Some(json!({"LastName": "x"})),
        )
        .await
        .expect(404);
    sandbox
        .api(
            Method::PATCH,
            "/sobjects/Contact/Nope__c/1",
            Some(json!({})),
        )
        .await
        .error(404, "NOT_FOUND");
    // A value with a quote and a space travels percent-encoded.
    let odd = sandbox
        .api(
            Method::PATCH,
            "/sobjects/Contact/Ext_Id__c/O%27Brien%201",
            Some(json!({"LastName": "O'Brien"})),
        )
        .await;
    odd.expect(201);
    assert!(
        sandbox
            .records("Contact")
            .await
            .iter()
            .any(|c| c["Ext_Id__c"] == "O'Brien 1")
    );
}

#[tokio::test]
async fn fault_knobs_refuse_then_heal() {
    let sandbox = Sandbox::default().await;
    sandbox
        .faults(json!({"unavailable_requests": 1, "limit_exceeded_requests": 1}))
        .await;
    sandbox
        .api(Method::GET, "/sobjects", None)
        .await
        .error(503, "SERVER_UNAVAILABLE");
    let limited = sandbox.api(Method::GET, "/sobjects", None).await;
    limited.error(403, "REQUEST_LIMIT_EXCEEDED");
    assert!(limited.header("sforce-limit-info").is_some());
    sandbox
        .api(Method::GET, "/sobjects", None)
        .await
        .expect(200);
    // A dropped connection: the record is written, the client gets no answer.
    sandbox.faults(json!({"dropped_requests": 1})).await;
    let url = format!("{}{V}/sobjects/Contact", sandbox.handle.base_url);
    let client = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a plain HTTP client builds");
    let dropped = client
        .post(url)
        .bearer_auth(TOKEN)
        .json(&json!({"LastName": "Dropped"}))
        .send()
        .await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert_eq!(sandbox.records("Contact").await.len(), 1);
    // A user without API access.
    sandbox.faults(json!({"api_disabled": true})).await;
    let disabled = sandbox.api(Method::GET, "/sobjects", None).await;
    disabled.error(403, "API_DISABLED_FOR_ORG");
    assert_eq!(
        disabled.body[0]["message"],
        "The REST API is not enabled for this Organization."
    );
    sandbox
        .faults(json!({"api_disabled": false, "inaccessible_objects": ["Lead"]}))
        .await;
    // An object the user cannot see: not in describe global, 404 on its routes.
    let global = sandbox.api(Method::GET, "/sobjects", None).await;
    assert!(!global.text.contains("\"name\":\"Lead\""));
    sandbox
        .api(Method::GET, "/sobjects/Lead/describe", None)
        .await
        .error(404, "NOT_FOUND");
    sandbox
        .api(
            Method::POST,
            "/sobjects/Lead",
            Some(json!({"LastName": "x", "Company": "c"})),
        )
        .await
        .error(404, "NOT_FOUND");
    // Unknown knobs are refused and change nothing.
    let bad = sandbox
        .admin(Method::POST, "/_sandbox/faults", Some(json!({"nope": 1})))
        .await;
    bad.error(400, "INVALID_INPUT");
    let stats = sandbox.admin(Method::GET, "/_sandbox/stats", None).await;
    assert_eq!(stats.body["faults"]["unavailable"], 1);
}

#[tokio::test]
async fn custom_objects_load_from_a_file_and_the_setup_route() {
    let dir = std::env::temp_dir().join(format!("sf-sandbox-{}", std::process::id()));
    fs_create(&dir);
    let file = dir.join("objects.yaml");
    let yaml = "objects:\n  - name: Gift__c\n    fields:\n      - name: Lead__c\n        type: reference\n        referenceTo: Lead\n";
    std::fs::File::create(&file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, yaml.as_bytes()))
        .expect("the file is written");
    let sandbox = Sandbox::start(SandboxConfig {
        objects_file: Some(file.clone()),
        ..SandboxConfig::default()
    })
    .await;
    sandbox
        .api(Method::GET, "/sobjects/Gift__c/describe", None)
        .await
        .expect(200);
    let defined = sandbox
        .admin(
            Method::POST,
            "/_sandbox/objects",
            Some(json!({"name": "Note__c", "fields": [{"name": "Body__c", "type": "textarea"}]})),
        )
        .await;
    defined.expect(201);
    assert_eq!(defined.body[0]["name"], "Note__c");
    let bad = sandbox
        .admin(
            Method::POST,
            "/_sandbox/objects",
            Some(json!({"name": "NoSuffix"})),
        )
        .await;
    bad.error(400, "INVALID_INPUT");
    let broken = dir.join("broken.json");
    std::fs::File::create(&broken)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"[{\"name\": 1}]"))
        .expect("the file is written");
    let failed = spawn(SandboxConfig {
        objects_file: Some(broken),
        ..SandboxConfig::default()
    })
    .await;
    assert!(failed.is_err());
}

fn fs_create(dir: &std::path::Path) {
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(dir)
        .expect("a temp dir");
}

#[tokio::test]
async fn with_the_certificate_the_jwt_grant_verifies_the_signature() {
    let sandbox = Sandbox::start(SandboxConfig {
        jwt_public_key: Some(jwt_fixture("jwt-test-key.pub.pem")),
        ..SandboxConfig::default()
    })
    .await;
    let exp = chrono::Utc::now().timestamp() + 120;
    let claims = json!({"iss": "sandbox-client-id", "sub": "sandbox@example.com", "aud": "https://login.salesforce.com", "exp": exp});
    let grant = |assertion: String| {
        Body::Form(vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned(),
            ),
            ("assertion", assertion),
        ])
    };
    let token = "/services/oauth2/token";
    sandbox
        .send(
            None,
            Method::POST,
            token,
            grant(signed_assertion(&claims, "jwt-test-key.pem")),
        )
        .await
        .expect(200);
    for forged in [
        signed_assertion(&claims, "jwt-other-key.pem"),
        // The right claims under another signature.
        format!(
            "{}.c2lnbmF0dXJl",
            signed_assertion(&claims, "jwt-test-key.pem")
                .rsplit_once('.')
                .map(|(head, _)| head.to_owned())
                .unwrap_or_default()
        ),
    ] {
        let reply = sandbox.send(None, Method::POST, token, grant(forged)).await;
        reply.expect(400);
        assert_eq!(
            reply.body,
            json!({"error": "invalid_grant", "error_description": "invalid assertion"})
        );
    }
}
