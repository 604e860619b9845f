//! Contract tests of the rate limits, the search limits and the injected faults: every refusal
//! body against the contract, the headers each one carries, and the counters in the stats.
//! None depends on precise timing: windows are only ever required to hold for a few requests
//! sent back to back, and a secondly refusal is looked for in a few tries.

use super::*;

const LIST: &str = "/crm/v3/objects/contacts";

async fn set_faults(sandbox: &Sandbox, faults: Value) -> Value {
    sandbox
        .control(Method::POST, "/_sandbox/faults", Some(faults))
        .await
}

async fn stats(sandbox: &Sandbox) -> Value {
    sandbox.control(Method::GET, "/_sandbox/stats", None).await
}

async fn list(sandbox: &Sandbox) -> Reply {
    sandbox.api(CONTACTS, Method::GET, LIST, LIST, None).await
}

async fn upsert(sandbox: &Sandbox, email: &str) -> Reply {
    sandbox
        .post(UPSERT, json!({"inputs": [upsert_input(email, json!({}))]}))
        .await
}

fn assert_rate_limited(reply: &Reply, policy: &str, message: &str) {
    assert_eq!(reply.status, 429, "body: {:#}", reply.body);
    assert_eq!(reply.body["policyName"], policy);
    assert_eq!(reply.body["message"], message);
    assert_eq!(reply.body["errorType"], "RATE_LIMIT");
    assert_eq!(reply.body["category"], "RATE_LIMITS");
    assert_eq!(
        reply.body["correlationId"].as_str(),
        reply.header("x-hubspot-correlation-id")
    );
}

#[tokio::test]
async fn the_ten_second_window_answers_429_ten_secondly_rolling() {
    let sandbox = Sandbox::start(SandboxConfig {
        requests_per_ten_seconds: Some(3),
        ..SandboxConfig::default()
    })
    .await;
    for remaining in ["2", "1", "0"] {
        let reply = list(&sandbox).await;
        reply.expect(200);
        assert_eq!(
            reply.header("x-hubspot-ratelimit-interval-milliseconds"),
            Some("10000")
        );
        assert_eq!(reply.header("x-hubspot-ratelimit-max"), Some("3"));
        assert_eq!(
            reply.header("x-hubspot-ratelimit-remaining"),
            Some(remaining)
        );
        assert!(reply.header("x-hubspot-ratelimit-secondly").is_none());
    }
    let reply = upsert(&sandbox, "burst@example.com").await;
    reply.conforms(CONTACTS, "POST", UPSERT);
    assert_rate_limited(
        &reply,
        "TEN_SECONDLY_ROLLING",
        "You have reached your ten_secondly_rolling limit.",
    );
    assert!(reply.header("retry-after").is_none(), "HubSpot sends none");
    assert_eq!(reply.header("x-hubspot-ratelimit-remaining"), Some("0"));
    assert!(sandbox.records("contacts").await.is_empty());
    let stats = stats(&sandbox).await;
    assert_eq!(stats["rate_limited"], 1);
    assert_eq!(stats["rate_limited_by"]["ten_secondly_rolling"], 1);
    assert_eq!(stats["rate_limited_by"]["secondly"], 0);

    // Both windows: the interval headers describe the burst, the legacy pair the second.
    let faults = set_faults(
        &sandbox,
        json!({"requests_per_ten_seconds": 50, "requests_per_second": 40}),
    )
    .await;
    assert_eq!(faults["requests_per_ten_seconds"], 50);
    let reply = list(&sandbox).await;
    reply.expect(200);
    assert_eq!(reply.header("x-hubspot-ratelimit-max"), Some("50"));
    assert_eq!(reply.header("x-hubspot-ratelimit-remaining"), Some("49"));
    assert_eq!(reply.header("x-hubspot-ratelimit-secondly"), Some("40"));
    assert_eq!(
        reply.header("x-hubspot-ratelimit-secondly-remaining"),
        Some("39")
    );
}

#[tokio::test]
async fn the_daily_limit_answers_429_daily() {
    let sandbox = Sandbox::start(SandboxConfig {
        requests_per_day: Some(2),
        ..SandboxConfig::default()
    })
    .await;
    for remaining in ["1", "0"] {
        let reply = list(&sandbox).await;
        reply.expect(200);
        assert_eq!(reply.header("x-hubspot-ratelimit-daily"), Some("2"));
        assert_eq!(
            reply.header("x-hubspot-ratelimit-daily-remaining"),
            Some(remaining)
        );
    }
    let reply = upsert(&sandbox, "late@example.com").await;
    reply.conforms(CONTACTS, "POST", UPSERT);
    assert_rate_limited(&reply, "DAILY", "You have reached your daily limit.");
    assert!(reply.header("retry-after").is_none());
    let search = sandbox.post(SEARCH, search_body(json!([]), 10, "")).await;
    search.conforms(CONTACTS, "POST", SEARCH);
    assert_rate_limited(&search, "DAILY", "You have reached your daily limit.");
    assert!(search.header("x-hubspot-ratelimit-daily").is_none());
    assert_eq!(stats(&sandbox).await["rate_limited_by"]["daily"], 2);

    // A reset starts the day's count over; lifting the limit reports the Enterprise allowance.
    sandbox.control(Method::POST, "/_sandbox/reset", None).await;
    list(&sandbox).await.expect(200);
    set_faults(&sandbox, json!({"requests_per_day": null})).await;
    let reply = list(&sandbox).await;
    reply.expect(200);
    assert_eq!(reply.header("x-hubspot-ratelimit-daily"), Some("1000000"));
}

#[tokio::test]
async fn searches_have_their_own_limit_and_no_headers() {
    let sandbox = Sandbox::start(SandboxConfig {
        search_requests_per_second: Some(1),
        ..SandboxConfig::default()
    })
    .await;
    let body = search_body(json!([]), 10, "");
    let mut refused = None;
    for _ in 0..10 {
        let first = sandbox.post(SEARCH, body.clone()).await;
        let second = sandbox.post(SEARCH, body.clone()).await;
        // Other routes are not in the search bucket.
        list(&sandbox).await.expect(200);
        if first.status == 200 && second.status == 429 {
            refused = Some(second);
            break;
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let reply = refused.expect("a second search within one second is refused");
    reply.conforms(CONTACTS, "POST", SEARCH);
    assert_rate_limited(&reply, "SECONDLY", "You have reached your secondly limit.");
    assert_eq!(reply.header("retry-after"), Some("1"));
    let ratelimit_headers = reply
        .headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-hubspot-ratelimit"))
        .count();
    assert_eq!(ratelimit_headers, 0, "search sends no rate-limit headers");
    let stats = stats(&sandbox).await;
    assert!(stats["rate_limited_by"]["search"].as_u64() >= Some(1));
    assert_eq!(stats["rate_limited_by"]["secondly"], 0);
}

#[tokio::test]
async fn search_query_limits_are_400s() {
    let sandbox = Sandbox::default().await;
    let eq = json!({"propertyName": "email", "operator": "EQ", "value": "a@example.com"});
    let group = |n: usize| json!({"filters": vec![eq.clone(); n]});
    let with = |key: &str, value: Value| {
        let mut body = search_body(json!([]), 10, "");
        body[key] = value;
        body
    };
    let ok = with("filterGroups", json!([group(6), group(6), group(6)]));
    sandbox
        .post(SEARCH, ok)
        .await
        .expect(200)
        .conforms(CONTACTS, "POST", SEARCH);
    let cases = [
        ("filterGroups", with("filterGroups", json!([group(7)]))),
        (
            "filterGroups",
            with(
                "filterGroups",
                json!([group(6), group(6), group(6), group(1)]),
            ),
        ),
        (
            "filterGroups",
            with("filterGroups", json!(vec![group(1); 7])),
        ),
        ("query", with("query", json!("q".repeat(3001)))),
        ("after", with("after", json!("10000"))),
        ("limit", with("limit", json!(201))),
    ];
    for (field, body) in cases {
        let reply = sandbox.post(SEARCH, body).await;
        reply.expect(400).conforms(CONTACTS, "POST", SEARCH);
        assert_eq!(reply.body["category"], "VALIDATION_ERROR");
        assert_eq!(reply.body["errors"][0]["in"], field, "{:#}", reply.body);
    }
    sandbox
        .post(SEARCH, with("after", json!("9999")))
        .await
        .expect(200);
}

#[tokio::test]
async fn missing_scopes_answer_403_for_the_routes_needing_them() {
    let sandbox = Sandbox::default().await;
    let faults = set_faults(
        &sandbox,
        json!({"missing_scopes": ["crm.objects.contacts.write"]}),
    )
    .await;
    assert_eq!(
        faults["missing_scopes"],
        json!(["crm.objects.contacts.write"])
    );
    let reply = upsert(&sandbox, "scoped@example.com").await;
    reply.expect(403).conforms(CONTACTS, "POST", UPSERT);
    assert_eq!(reply.body["category"], "MISSING_SCOPES");
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("This app hasn't been granted all required scopes")
    );
    assert_eq!(
        reply.body["errors"][0]["context"]["requiredGranularScopes"],
        json!(["crm.objects.contacts.write"])
    );
    assert_eq!(
        reply.body["links"]["scopes"],
        "https://developers.hubspot.com/scopes"
    );
    list(&sandbox).await.expect(200);
    sandbox
        .post(SEARCH, search_body(json!([]), 10, ""))
        .await
        .expect(200);
    let companies = "/crm/v3/objects/companies/batch/upsert";
    let input = json!({"idProperty": "domain", "id": "example.com", "properties": {}});
    sandbox
        .api(
            COMPANIES,
            Method::POST,
            companies,
            companies,
            Some(json!({"inputs": [input]})),
        )
        .await
        .expect(200);
    assert!(sandbox.records("contacts").await.is_empty());
    assert_eq!(stats(&sandbox).await["faults"]["missing_scopes"], 1);
    set_faults(&sandbox, json!({"missing_scopes": null})).await;
    upsert(&sandbox, "scoped@example.com").await.expect(200);
}

#[tokio::test]
async fn locked_writes_and_migrations_count_down() {
    let sandbox = Sandbox::default().await;
    set_faults(
        &sandbox,
        json!({"locked_writes": 1, "migration_requests": 1, "migration_retry_after": 7}),
    )
    .await;
    let reply = list(&sandbox).await;
    reply.expect(477).conforms(CONTACTS, "GET", LIST);
    assert_eq!(reply.body["category"], "MIGRATION_IN_PROGRESS");
    assert_eq!(reply.header("retry-after"), Some("7"));
    list(&sandbox).await.expect(200);

    let reply = upsert(&sandbox, "locked@example.com").await;
    reply.expect(423).conforms(CONTACTS, "POST", UPSERT);
    assert_eq!(reply.body["category"], "LOCKED");
    assert!(reply.header("retry-after").is_none());
    assert!(
        sandbox.records("contacts").await.is_empty(),
        "a 423 applies nothing"
    );
    upsert(&sandbox, "locked@example.com").await.expect(200);

    let faults = sandbox.control(Method::GET, "/_sandbox/faults", None).await;
    assert_eq!(faults["locked_writes"], Value::Null);
    assert_eq!(faults["migration_requests"], Value::Null);
    let stats = stats(&sandbox).await;
    assert_eq!(stats["faults"]["locked"], 1);
    assert_eq!(stats["faults"]["migration"], 1);
    assert_eq!(
        stats["write_requests"], 1,
        "refused writes are not numbered"
    );
}

#[tokio::test]
async fn the_daily_limit_fault_refuses_everything_until_cleared() {
    let sandbox = Sandbox::default().await;
    set_faults(&sandbox, json!({"daily_limit_reached": true})).await;
    let reply = upsert(&sandbox, "day@example.com").await;
    reply.conforms(CONTACTS, "POST", UPSERT);
    assert_rate_limited(&reply, "DAILY", "You have reached your daily limit.");
    assert_rate_limited(
        &list(&sandbox).await,
        "DAILY",
        "You have reached your daily limit.",
    );
    // Control routes are never faulted.
    assert!(sandbox.records("contacts").await.is_empty());
    let stats = stats(&sandbox).await;
    assert_eq!(stats["faults"]["daily_limit"], 2);
    assert_eq!(stats["rate_limited"], 0, "the limiter refused nothing");
    set_faults(&sandbox, json!({"daily_limit_reached": null})).await;
    list(&sandbox).await.expect(200);
}

async fn write_statuses(sandbox: &Sandbox, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..n {
        statuses.push(upsert(sandbox, &format!("w{i}@example.com")).await.status);
    }
    statuses
}

#[tokio::test]
async fn server_errors_follow_the_seed() {
    let sandbox = Sandbox::default().await;
    set_faults(&sandbox, json!({"error_rate": 0.5, "seed": 7})).await;
    let first = write_statuses(&sandbox, 20).await;
    assert!(first.contains(&500) && first.contains(&200), "{first:?}");
    let applied = first.iter().filter(|s| **s == 200).count();
    assert_eq!(sandbox.records("contacts").await.len(), applied);
    assert_eq!(
        stats(&sandbox).await["faults"]["server_error"],
        20 - applied
    );
    // Reads are never failed.
    list(&sandbox).await.expect(200);

    sandbox.control(Method::POST, "/_sandbox/reset", None).await;
    assert_eq!(
        write_statuses(&sandbox, 20).await,
        first,
        "same seed, same pattern"
    );

    set_faults(&sandbox, json!({"error_rate": 1, "error_status": 503})).await;
    let reply = upsert(&sandbox, "down@example.com").await;
    reply.expect(503).conforms(CONTACTS, "POST", UPSERT);
    assert_eq!(reply.body["category"], "INTERNAL_ERROR");
    let reply = upsert(&sandbox, "down@example.com").await;
    assert_eq!(reply.status, 503);
    set_faults(&sandbox, json!({"error_rate": 1, "error_status": null})).await;
    let reply = upsert(&sandbox, "down@example.com").await;
    reply.expect(500).conforms(CONTACTS, "POST", UPSERT);
    assert_eq!(reply.body["message"], "internal error");
}

#[tokio::test]
async fn dropped_connections_are_transport_errors_after_the_write() {
    let sandbox = Sandbox::default().await;
    set_faults(&sandbox, json!({"drop_rate": 1})).await;
    let url = format!("{}{UPSERT}", sandbox.handle.base_url);
    let body = json!({"inputs": [upsert_input("dropped@example.com", json!({}))]});
    let result = sandbox
        .client
        .post(url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await;
    let error = result.expect_err("no answer arrives");
    assert!(error.status().is_none(), "not an HTTP answer: {error:?}");
    assert!(!error.is_timeout(), "closed at once: {error:?}");
    assert!(error.is_request(), "the request got no answer: {error:?}");
    let records = sandbox.records("contacts").await;
    assert_eq!(records.len(), 1, "the write was applied before the drop");
    list(&sandbox).await.expect(200);
    assert_eq!(stats(&sandbox).await["faults"]["dropped"], 1);
    set_faults(&sandbox, json!({"drop_rate": null})).await;
    upsert(&sandbox, "kept@example.com").await.expect(200);
}

#[tokio::test]
async fn latency_delays_every_api_request() {
    let sandbox = Sandbox::default().await;
    set_faults(
        &sandbox,
        json!({"latency_ms": 150, "latency_jitter_ms": 50}),
    )
    .await;
    let started = Instant::now();
    list(&sandbox).await.expect(200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    let started = Instant::now();
    sandbox.control(Method::GET, "/_sandbox/faults", None).await;
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "control routes never wait"
    );
    assert_eq!(stats(&sandbox).await["faults"]["latency"], 1);
}

#[tokio::test]
async fn the_faults_route_shows_validates_and_keeps_left_out_keys() {
    let sandbox = Sandbox::default().await;
    let faults = sandbox.control(Method::GET, "/_sandbox/faults", None).await;
    for key in [
        "requests_per_second",
        "requests_per_ten_seconds",
        "requests_per_day",
        "search_requests_per_second",
        "hang_before_write",
        "hang_after_write",
        "error_rate",
        "error_status",
        "drop_rate",
        "seed",
        "latency_ms",
        "latency_jitter_ms",
        "locked_writes",
        "migration_requests",
        "migration_retry_after",
    ] {
        assert_eq!(faults[key], Value::Null, "{key}");
    }
    assert_eq!(faults["missing_scopes"], json!([]));
    assert_eq!(faults["daily_limit_reached"], false);

    set_faults(&sandbox, json!({"seed": 3, "hang_after_write": 9})).await;
    let faults = set_faults(&sandbox, json!({"latency_ms": 1})).await;
    assert_eq!(faults["seed"], 3);
    assert_eq!(faults["hang_after_write"], 9);
    for bad in [
        json!({"error_rate": 2}),
        json!({"error_status": 404}),
        json!({"missing_scopes": "crm.objects.contacts.write"}),
        json!({"seed": 1, "nonsense": 1}),
    ] {
        let reply = sandbox
            .send(
                None,
                Method::POST,
                "/_sandbox/faults",
                Some(Body::Json(bad)),
            )
            .await;
        assert_eq!(reply.status, 400, "{:#}", reply.body);
        assert_eq!(reply.body["category"], "VALIDATION_ERROR");
    }
    let faults = sandbox.control(Method::GET, "/_sandbox/faults", None).await;
    assert_eq!(faults["seed"], 3, "a refused post changes nothing");

    let stats = stats(&sandbox).await;
    for key in [
        "latency",
        "missing_scopes",
        "locked",
        "migration",
        "daily_limit",
        "server_error",
        "dropped",
    ] {
        assert_eq!(stats["faults"][key], 0, "{key}");
    }
}
