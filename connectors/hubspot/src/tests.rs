//! Unit tests: request bodies (inline snapshots, checked against HubSpot's OpenAPI contract),
//! response classification per status, schema checks, and secrets that never show.

use std::time::Duration;

use connector_core::{
    BatchResult, Destination, Operation, OperationKind, RowOutcome, SecretString,
};
use serde_json::{Value, json};

use crate::client::{RawResponse, TransportError, parse_retry_after};
use crate::config::HubspotConfig;
use crate::encode::{EncodedBatch, Endpoint, encode_batch};
use crate::response::{Context, classify};
use crate::schema::{Properties, check_properties, parse_describe, transport_diagnostic};
use crate::{HubspotDestination, redact_result, transport_retry};

const TOKEN: &str = "pat-na1-11111111-2222-3333-4444-555555555555";

// ---------------------------------------------------------------------------------------------
// Helpers

fn upsert(key: &str, email: &str, properties: &[(&str, &str)]) -> Operation {
    Operation {
        key: key.to_string(),
        kind: OperationKind::Upsert,
        destination_id: None,
        match_value: Some(email.to_string()),
        properties: properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn update(key: &str, id: &str, properties: &[(&str, &str)]) -> Operation {
    Operation {
        key: key.to_string(),
        kind: OperationKind::Update,
        destination_id: Some(id.to_string()),
        match_value: None,
        properties: properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn clear(key: &str, id: &str, names: &[&str]) -> Operation {
    Operation {
        kind: OperationKind::Clear,
        ..update(
            key,
            id,
            &names.iter().map(|n| (*n, "ignored")).collect::<Vec<_>>(),
        )
    }
}

fn encode(ops: &[Operation]) -> EncodedBatch {
    encode_batch("contacts", "email", ops).expect("the operations are well formed")
}

/// Checks a body against the official contract of the contacts API.
fn assert_contract(path_template: &str, body: &Value) {
    if let Err(errors) = hubspot_sandbox::contract::validate_request(
        "crm-objects-contacts-v3.json",
        "POST",
        path_template,
        body,
    ) {
        panic!("the body does not follow the contract of {path_template}: {errors:#?}\n{body:#}");
    }
}

fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_sort_maps(true);
    settings
}

fn ctx(endpoint: Endpoint) -> Context<'static> {
    Context {
        endpoint,
        object: "contacts",
        match_property: "email",
    }
}

fn respond(status: u16, body: &str) -> RawResponse {
    RawResponse {
        status,
        retry_after: None,
        body: body.as_bytes().to_vec(),
    }
}

fn rows(result: BatchResult) -> Vec<RowOutcome> {
    match result {
        BatchResult::PerRow(rows) => rows,
        other => panic!("expected one outcome per row, got {other:?}"),
    }
}

fn succeeded(id: &str, created: bool) -> RowOutcome {
    RowOutcome::Succeeded {
        destination_id: id.to_string(),
        created,
    }
}

fn rejected(message: &str) -> RowOutcome {
    RowOutcome::Rejected {
        message: message.to_string(),
    }
}

fn config() -> HubspotConfig {
    HubspotConfig::new(SecretString::new(TOKEN), "contacts", "email")
}

// ---------------------------------------------------------------------------------------------
// Encode

#[test]
fn upsert_body_matches_on_the_match_property() {
    let batch = encode(&[
        upsert(
            "1",
            "ada@example.com",
            &[("firstname", "Ada"), ("lifecyclestage", "lead")],
        ),
        upsert("2", "Grace@Example.com", &[("firstname", "Grace")]),
    ]);
    assert_eq!(batch.endpoint, Endpoint::Upsert);
    assert_eq!(batch.path, "/crm/v3/objects/contacts/batch/upsert");
    assert_contract("/crm/v3/objects/contacts/batch/upsert", &batch.json());
    snapshot_settings().bind(|| {
        insta::assert_json_snapshot!(batch.json(), @r#"
        {
          "inputs": [
            {
              "id": "ada@example.com",
              "idProperty": "email",
              "objectWriteTraceId": "0",
              "properties": {
                "email": "ada@example.com",
                "firstname": "Ada",
                "lifecyclestage": "lead"
              }
            },
            {
              "id": "Grace@Example.com",
              "idProperty": "email",
              "objectWriteTraceId": "1",
              "properties": {
                "email": "Grace@Example.com",
                "firstname": "Grace"
              }
            }
          ]
        }
        "#);
    });
}

#[test]
fn upsert_keeps_the_match_value_over_a_mapped_value() {
    let batch = encode(&[upsert(
        "1",
        "ada@example.com",
        &[("email", "other@example.com")],
    )]);
    assert_eq!(
        batch.json()["inputs"][0]["properties"]["email"],
        "ada@example.com"
    );
}

#[test]
fn upsert_by_hs_object_id_does_not_write_the_id() {
    let op = upsert("1", "12345", &[("firstname", "Ada")]);
    let batch = encode_batch("contacts", "hs_object_id", &[op]).expect("well formed");
    assert_eq!(
        batch.json()["inputs"][0]["properties"],
        json!({"firstname": "Ada"})
    );
    assert_eq!(batch.json()["inputs"][0]["idProperty"], "hs_object_id");
}

#[test]
fn values_that_need_escaping_are_written_as_serde_json_writes_them() {
    let tricky = [
        "plain",
        "quote \" inside",
        "back\\slash",
        "line\nbreak\ttab\u{1}control",
        "Zoë ✓ 日本 \u{1F600}",
        "</script>",
        "",
    ];
    for value in tricky {
        let batch = encode(&[upsert("1", value, &[("note", value), (value, "name")])]);
        let expected = serde_json::to_vec(&serde_json::json!({
            "inputs": [{
                "idProperty": "email",
                "id": value,
                "objectWriteTraceId": "0",
                "properties": { "note": value, value: "name", "email": value }
            }]
        }))
        .unwrap();
        // Same bytes as serde_json (its map keeps insertion order only with preserve_order,
        // so compare documents and, for the escapes, the strings as written).
        assert_eq!(
            batch.json(),
            serde_json::from_slice::<Value>(&expected).unwrap()
        );
        let written = String::from_utf8(batch.body.clone()).unwrap();
        assert!(
            written.contains(&serde_json::to_string(value).unwrap()),
            "{value:?} is not written as serde_json writes it: {written}"
        );
    }
}

#[test]
fn update_body_addresses_records_by_id() {
    let batch = encode(&[
        update(
            "1",
            "101",
            &[("firstname", "Ada"), ("phone", "+44 20 7946 0000")],
        ),
        update(
            "2",
            "102",
            &[("firstname", "Grace"), ("firstname", "Grace B.")],
        ),
    ]);
    assert_eq!(batch.endpoint, Endpoint::Update);
    assert_eq!(batch.path, "/crm/v3/objects/contacts/batch/update");
    assert_contract("/crm/v3/objects/contacts/batch/update", &batch.json());
    snapshot_settings().bind(|| {
        insta::assert_json_snapshot!(batch.json(), @r#"
        {
          "inputs": [
            {
              "id": "101",
              "objectWriteTraceId": "0",
              "properties": {
                "firstname": "Ada",
                "phone": "+44 20 7946 0000"
              }
            },
            {
              "id": "102",
              "objectWriteTraceId": "1",
              "properties": {
                "firstname": "Grace B."
              }
            }
          ]
        }
        "#);
    });
}

#[test]
fn clear_body_sends_empty_strings() {
    let batch = encode(&[clear("1", "101", &["firstname", "lifecyclestage"])]);
    assert_eq!(batch.path, "/crm/v3/objects/contacts/batch/update");
    assert_contract("/crm/v3/objects/contacts/batch/update", &batch.json());
    snapshot_settings().bind(|| {
        insta::assert_json_snapshot!(batch.json(), @r#"
        {
          "inputs": [
            {
              "id": "101",
              "objectWriteTraceId": "0",
              "properties": {
                "firstname": "",
                "lifecyclestage": ""
              }
            }
          ]
        }
        "#);
    });
}

#[test]
fn custom_objects_use_their_type_in_the_path() {
    let batch =
        encode_batch("2-1234", "external_id", &[upsert("1", "X-1", &[])]).expect("well formed");
    assert_eq!(batch.path, "/crm/v3/objects/2-1234/batch/upsert");
    assert_eq!(
        batch.json()["inputs"][0]["properties"],
        json!({"external_id": "X-1"})
    );
}

#[test]
fn a_mixed_batch_is_an_internal_error() {
    let error = encode_batch(
        "contacts",
        "email",
        &[upsert("1", "a@x.io", &[]), update("2", "1", &[])],
    )
    .expect_err("mixed kinds are refused");
    assert_eq!(error.code, "internal");
    assert!(
        error.message.contains("mixed `upsert` and `update`"),
        "{}",
        error.message
    );
    assert!(error.message.contains("bug in engine"), "{}", error.message);
}

#[test]
fn an_upsert_without_match_value_or_an_update_without_id_is_an_internal_error() {
    let mut op = upsert("row-7", "a@x.io", &[]);
    op.match_value = None;
    let error = encode_batch("contacts", "email", &[op]).expect_err("no match value");
    assert_eq!(error.code, "internal");
    assert!(error.message.contains("`row-7`"));
    let mut op = update("row-8", "1", &[]);
    op.destination_id = None;
    let error = encode_batch("contacts", "email", &[op]).expect_err("no id");
    assert_eq!(error.code, "internal");
    assert!(encode_batch("contacts", "email", &[]).is_err());
}

#[test]
fn a_mixed_batch_is_fatal_in_send_batch() {
    let destination = HubspotDestination::new(config().with_base_url("http://127.0.0.1:9"))
        .expect("valid config");
    let result =
        block_on(destination.send_batch(&[upsert("1", "a@x.io", &[]), clear("2", "1", &["a"])]));
    let BatchResult::Fatal(diagnostic) = result else {
        panic!("expected Fatal, got {result:?}")
    };
    assert_eq!(diagnostic.code, "internal");
}

// ---------------------------------------------------------------------------------------------
// Classify: 2xx

#[test]
fn ok_upsert_matches_results_by_email_case_insensitively() {
    let ops = [
        upsert("1", "Ada@Example.com", &[]),
        upsert("2", "grace@example.com", &[]),
    ];
    // Results in another order, emails lowercased, no trace ids.
    let body = r#"{"status":"COMPLETE","results":[
        {"id":"202","new":false,"properties":{"email":"grace@example.com"}},
        {"id":"201","new":true,"properties":{"email":"ada@example.com"}}
    ],"startedAt":"2026-01-01T00:00:00Z","completedAt":"2026-01-01T00:00:01Z"}"#;
    let outcome = rows(classify(&ctx(Endpoint::Upsert), &ops, &respond(200, body)));
    assert_eq!(
        outcome,
        vec![succeeded("201", true), succeeded("202", false)]
    );
}

#[test]
fn ok_results_are_matched_by_trace_id_first() {
    let ops = [upsert("1", "a@x.io", &[]), upsert("2", "b@x.io", &[])];
    let body = r#"{"results":[
        {"id":"2","new":true,"objectWriteTraceId":"1","properties":{}},
        {"id":"1","new":false,"objectWriteTraceId":"0","properties":{}}
    ]}"#;
    let outcome = rows(classify(&ctx(Endpoint::Upsert), &ops, &respond(200, body)));
    assert_eq!(outcome, vec![succeeded("1", false), succeeded("2", true)]);
}

#[test]
fn the_usual_answer_is_read_in_one_light_pass_with_the_same_outcomes() {
    use crate::response::{all_written, parse_body, split_per_row};
    let ops = [
        upsert("1", "a@x.io", &[]),
        upsert("2", "b@x.io", &[]),
        upsert("3", "c@x.io", &[]),
    ];
    let context = ctx(Endpoint::Upsert);
    let full = |body: &str| {
        rows(split_per_row(
            &context,
            &ops,
            200,
            body.as_bytes(),
            parse_body(body.as_bytes()).as_ref(),
        ))
    };
    // Out of order, ids as strings and numbers, properties echoed: read by trace id.
    let usual = r#"{"status":"COMPLETE","results":[
        {"id":"12","new":true,"objectWriteTraceId":"1","properties":{"email":"b@x.io","x":{"deep":[1,2]}}},
        {"id":13,"objectWriteTraceId":2,"properties":{}},
        {"id":"11","new":false,"objectWriteTraceId":"0"}
    ]}"#;
    let light = all_written(&context, &ops, usual.as_bytes()).expect("every input written");
    assert_eq!(rows(light), full(usual));
    assert_eq!(
        full(usual),
        vec![
            succeeded("11", false),
            succeeded("12", true),
            succeeded("13", false)
        ]
    );

    // Anything unusual is left to the full reading.
    for unusual in [
        // an error
        r#"{"results":[{"id":"11","objectWriteTraceId":"0"},{"id":"12","objectWriteTraceId":"1"},{"id":"13","objectWriteTraceId":"2"}],"errors":[{"message":"x"}]}"#,
        // a result missing
        r#"{"results":[{"id":"11","objectWriteTraceId":"0"},{"id":"12","objectWriteTraceId":"1"}]}"#,
        // a trace id twice
        r#"{"results":[{"id":"11","objectWriteTraceId":"0"},{"id":"12","objectWriteTraceId":"0"},{"id":"13","objectWriteTraceId":"2"}]}"#,
        // no trace ids
        r#"{"results":[{"id":"11"},{"id":"12"},{"id":"13"}]}"#,
        // a result without an id, one out of range
        r#"{"results":[{"objectWriteTraceId":"0"},{"id":"12","objectWriteTraceId":"1"},{"id":"13","objectWriteTraceId":"7"}]}"#,
        // not an object
        r#"[1,2,3]"#,
    ] {
        assert!(
            all_written(&context, &ops, unusual.as_bytes()).is_none(),
            "{unusual}"
        );
    }
}

#[test]
fn ok_update_matches_results_by_id_and_never_reports_created() {
    let ops = [update("1", "101", &[]), clear("2", "102", &["firstname"])];
    let body = r#"{"results":[{"id":"102","new":true},{"id":"101"}]}"#;
    let outcome = rows(classify(&ctx(Endpoint::Update), &ops, &respond(200, body)));
    assert_eq!(
        outcome,
        vec![succeeded("101", false), succeeded("102", false)]
    );
}

#[test]
fn multi_status_splits_successes_and_errors_per_row() {
    let ops = [
        update("1", "101", &[]),
        update("2", "102", &[]),
        update("3", "103", &[]),
    ];
    let body = r#"{"status":"COMPLETE","numErrors":2,
      "results":[{"id":"101","properties":{}}],
      "errors":[
        {"status":"error","category":"VALIDATION_ERROR","context":{"ids":["102"]},
         "message":"Property values were not valid: [{\"isValid\":false,\"message\":\"bogus was not one of the allowed options: [subscriber, lead]\",\"error\":\"INVALID_OPTION\",\"name\":\"lifecyclestage\"}]",
         "errors":[],"links":{}},
        {"status":"error","category":"OBJECT_NOT_FOUND","context":{"ids":["103"]},
         "message":"Object not found.  objectId are usually numeric.","errors":[],"links":{}}
      ]}"#;
    let outcome = rows(classify(&ctx(Endpoint::Update), &ops, &respond(207, body)));
    assert_eq!(
        outcome,
        vec![
            succeeded("101", false),
            rejected(
                "Property values were not valid: `lifecyclestage`: bogus was not one of the allowed options: [subscriber, lead]"
            ),
            rejected("Object not found.  objectId are usually numeric."),
        ]
    );
}

#[test]
fn multi_status_upsert_errors_are_attributed_by_match_value_or_trace_id() {
    let ops = [
        upsert("1", "A@x.io", &[]),
        upsert("2", "b@x.io", &[]),
        upsert("3", "c@x.io", &[]),
    ];
    let body = r#"{"results":[{"id":"1","new":true,"properties":{"email":"a@x.io"}}],
      "errors":[
        {"message":"bad b","context":{"ids":["B@X.IO"]}},
        {"message":"bad c","errors":[{"message":"detail c","context":{"objectWriteTraceId":["2"]}}]}
      ]}"#;
    let outcome = rows(classify(&ctx(Endpoint::Upsert), &ops, &respond(207, body)));
    assert_eq!(
        outcome,
        vec![
            succeeded("1", true),
            rejected("bad b"),
            rejected("bad c: detail c")
        ]
    );
}

#[test]
fn multi_status_errors_without_context_go_to_the_rows_missing_from_results() {
    let ops = [upsert("1", "a@x.io", &[]), upsert("2", "b@x.io", &[])];
    let body = r#"{"results":[{"id":"1","new":false,"properties":{"email":"a@x.io"}}],
      "errors":[{"category":"VALIDATION_ERROR","message":"Property values were not valid: [{\"isValid\":false,\"message\":\"Email address b@x is invalid\",\"error\":\"INVALID_EMAIL\",\"name\":\"email\"}]"}]}"#;
    let outcome = rows(classify(&ctx(Endpoint::Upsert), &ops, &respond(207, body)));
    assert_eq!(
        outcome,
        vec![
            succeeded("1", false),
            rejected("Property values were not valid: `email`: Email address b@x is invalid")
        ]
    );
}

#[test]
fn rows_missing_from_a_response_without_errors_are_retried() {
    let ops = [update("1", "101", &[]), update("2", "102", &[])];
    let outcome = rows(classify(
        &ctx(Endpoint::Update),
        &ops,
        &respond(200, r#"{"results":[{"id":"101"}]}"#),
    ));
    assert_eq!(outcome[0], succeeded("101", false));
    assert_eq!(
        outcome[1],
        RowOutcome::Retry {
            reason: "missing from the response".to_string(),
            after: None
        }
    );
}

#[test]
fn a_garbage_success_body_retries_every_row() {
    let ops = [update("1", "101", &[]), update("2", "102", &[])];
    for body in ["<html>oops</html>", "", "[1,2]", "null"] {
        let outcome = rows(classify(&ctx(Endpoint::Update), &ops, &respond(200, body)));
        assert_eq!(outcome.len(), 2);
        for row in outcome {
            let RowOutcome::Retry {
                reason,
                after: None,
            } = row
            else {
                panic!("expected Retry, got {row:?}")
            };
            assert!(reason.starts_with("missing from the response"), "{reason}");
        }
    }
}

#[test]
fn fields_of_the_wrong_type_never_panic() {
    let ops = [upsert("1", "a@x.io", &[]), update("2", "7", &[])];
    let bodies = [
        r#"{"results":"nope","errors":5}"#,
        r#"{"results":[null,1,"x",{"id":null,"new":"yes","properties":[]}],"errors":[null,{"context":{"ids":"a@x.io"}},{"context":[1]}]}"#,
        r#"{"results":[{"id":7,"objectWriteTraceId":1}],"errors":[{"message":{"nested":true},"context":{"ids":[null,2]}}]}"#,
        r#"{"message":"Property values were not valid: [not json"}"#,
        r#"{"message":"Property values were not valid: [{}, 5, {\"name\":\"x\"}]"}"#,
    ];
    for endpoint in [Endpoint::Upsert, Endpoint::Update] {
        for body in bodies {
            for status in [200, 207, 400, 401, 409, 429, 500, 302, 100] {
                let _ = classify(&ctx(endpoint), &ops, &respond(status, body));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Classify: 4xx

#[test]
fn bad_request_rejects_every_row_with_the_message() {
    let ops = [upsert("1", "a@x.io", &[]), upsert("2", "b@x.io", &[])];
    let body = r#"{"status":"error","message":"Property values were not valid: [{\"isValid\":false,\"message\":\"1635535865 is at 22:18:55.865 UTC, not midnight!\",\"error\":\"INVALID_DATE\",\"name\":\"birthday\"}]","correlationId":"c0ffee","category":"VALIDATION_ERROR"}"#;
    let outcome = rows(classify(&ctx(Endpoint::Upsert), &ops, &respond(400, body)));
    let expected = rejected(
        "Property values were not valid: `birthday`: 1635535865 is at 22:18:55.865 UTC, not midnight! (400 VALIDATION_ERROR)",
    );
    assert_eq!(outcome, vec![expected.clone(), expected]);
}

#[test]
fn bad_request_naming_some_inputs_rejects_those_and_retries_the_others() {
    let ops = [
        upsert("1", "a@x.io", &[]),
        upsert("2", "dup@x.io", &[]),
        upsert("3", "dup@x.io", &[]),
    ];
    let body = r#"{"status":"error","category":"VALIDATION_ERROR","message":"Duplicate IDs found in batch input: [dup@x.io]. IDs must be unique","context":{"ids":["dup@x.io"]}}"#;
    let outcome = rows(classify(&ctx(Endpoint::Upsert), &ops, &respond(400, body)));
    let message =
        "Duplicate IDs found in batch input: [dup@x.io]. IDs must be unique (400 VALIDATION_ERROR)";
    assert!(
        matches!(&outcome[0], RowOutcome::Retry { reason, after: None } if reason.contains("other rows"))
    );
    assert_eq!(outcome[1], rejected(message));
    assert_eq!(outcome[2], rejected(message));
}

#[test]
fn conflict_rejects_every_row() {
    let ops = [upsert("1", "a@x.io", &[]), upsert("2", "b@x.io", &[])];
    let body = r#"{"status":"error","message":"Contact already exists. Existing ID: 37765128953","correlationId":"2dea5219","category":"CONFLICT"}"#;
    let outcome = rows(classify(&ctx(Endpoint::Upsert), &ops, &respond(409, body)));
    let expected = rejected("Contact already exists. Existing ID: 37765128953 (409 CONFLICT)");
    assert_eq!(outcome, vec![expected.clone(), expected]);
}

#[test]
fn other_client_errors_reject_every_row_even_with_a_garbage_body() {
    let ops = [update("1", "101", &[])];
    let outcome = rows(classify(
        &ctx(Endpoint::Update),
        &ops,
        &respond(404, "<html>\n Not   Found\n</html>"),
    ));
    assert_eq!(
        outcome,
        vec![rejected("HTTP 404: <html> Not Found </html>")]
    );
    let outcome = rows(classify(&ctx(Endpoint::Update), &ops, &respond(413, "")));
    assert_eq!(outcome, vec![rejected("HTTP 413 with an empty body")]);
}

#[test]
fn unauthorized_is_fatal_with_a_hint() {
    let body = r#"{"status":"error","message":"Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview","correlationId":"c0ffee","category":"INVALID_AUTHENTICATION"}"#;
    let result = classify(
        &ctx(Endpoint::Upsert),
        &[upsert("1", "a@x.io", &[])],
        &respond(401, body),
    );
    let BatchResult::Fatal(diagnostic) = result else {
        panic!("expected Fatal, got {result:?}")
    };
    assert_eq!(diagnostic.code, "hubspot::auth");
    insta::assert_snapshot!(diagnostic.to_string(), @r"
    error[hubspot::auth]: HubSpot rejected the token (401 INVALID_AUTHENTICATION)
      note: HubSpot said: Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview
      hint: check that the destination's `token` holds a private-app token with the `crm.objects.contacts.write` scope
    ");
}

#[test]
fn an_expired_token_says_to_refresh_it() {
    let body = r#"{"status":"error","message":"The OAuth token used to make this call expired 7 second(s) ago.","category":"EXPIRED_AUTHENTICATION"}"#;
    let result = classify(
        &ctx(Endpoint::Update),
        &[update("1", "1", &[])],
        &respond(401, body),
    );
    let BatchResult::Fatal(diagnostic) = result else {
        panic!("expected Fatal, got {result:?}")
    };
    assert_eq!(
        diagnostic.message,
        "HubSpot rejected the token (401 EXPIRED_AUTHENTICATION)"
    );
    assert!(
        diagnostic.hints[0].contains("expired"),
        "{:?}",
        diagnostic.hints
    );
}

#[test]
fn forbidden_names_the_missing_scope() {
    let body = r#"{"status":"error","message":"This app hasn't been granted all required scopes to make this call.","category":"MISSING_SCOPES"}"#;
    let context = Context {
        endpoint: Endpoint::Upsert,
        object: "deals",
        match_property: "deal_ref",
    };
    let result = classify(&context, &[upsert("1", "x", &[])], &respond(403, body));
    let BatchResult::Fatal(diagnostic) = result else {
        panic!("expected Fatal, got {result:?}")
    };
    assert_eq!(
        diagnostic.message,
        "HubSpot refused the request for lack of permission (403 MISSING_SCOPES)"
    );
    assert!(
        diagnostic.hints[0].contains("`crm.objects.deals.write`"),
        "{:?}",
        diagnostic.hints
    );
    // No body at all still gives a usable diagnostic.
    let result = classify(&context, &[upsert("1", "x", &[])], &respond(401, ""));
    let BatchResult::Fatal(diagnostic) = result else {
        panic!("expected Fatal, got {result:?}")
    };
    assert_eq!(diagnostic.message, "HubSpot rejected the token (401)");
}

// ---------------------------------------------------------------------------------------------
// Classify: 429 and 5xx

fn retry_all(result: BatchResult) -> (String, Option<Duration>) {
    match result {
        BatchResult::RetryAll { reason, after } => (reason, after),
        other => panic!("expected RetryAll, got {other:?}"),
    }
}

#[test]
fn rate_limits_wait_retry_after_or_the_policy_window() {
    let ops = [update("1", "1", &[])];
    let burst = r#"{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING","category":"RATE_LIMITS"}"#;
    let secondly = r#"{"status":"error","message":"You have reached your secondly limit.","errorType":"RATE_LIMIT","policyName":"SECONDLY"}"#;

    let with_header = RawResponse {
        retry_after: Some(Duration::from_secs(3)),
        ..respond(429, burst)
    };
    let (reason, after) = retry_all(classify(&ctx(Endpoint::Update), &ops, &with_header));
    assert_eq!(after, Some(Duration::from_secs(3)));
    assert_eq!(
        reason,
        "rate limited by HubSpot: You have reached your ten_secondly_rolling limit. (429 RATE_LIMITS)"
    );

    let (_, after) = retry_all(classify(&ctx(Endpoint::Update), &ops, &respond(429, burst)));
    assert_eq!(after, Some(Duration::from_secs(10)));
    let (_, after) = retry_all(classify(
        &ctx(Endpoint::Update),
        &ops,
        &respond(429, secondly),
    ));
    assert_eq!(after, Some(Duration::from_secs(1)));
    let (reason, after) = retry_all(classify(
        &ctx(Endpoint::Update),
        &ops,
        &respond(429, "slow down"),
    ));
    assert_eq!(
        (reason.as_str(), after),
        ("rate limited by HubSpot: HTTP 429: slow down", None)
    );
}

#[test]
fn the_daily_limit_is_fatal() {
    let body = r#"{"status":"error","message":"You have reached your daily limit.","errorType":"RATE_LIMIT","policyName":"DAILY"}"#;
    let result = classify(
        &ctx(Endpoint::Update),
        &[update("1", "1", &[])],
        &respond(429, body),
    );
    let BatchResult::Fatal(diagnostic) = result else {
        panic!("expected Fatal, got {result:?}")
    };
    assert_eq!(diagnostic.code, "hubspot::daily_limit");
}

#[test]
fn server_errors_retry_the_whole_batch() {
    let ops = [update("1", "1", &[])];
    let (reason, after) = retry_all(classify(
        &ctx(Endpoint::Update),
        &ops,
        &respond(502, "<html>Bad Gateway</html>"),
    ));
    assert_eq!(
        (reason.as_str(), after),
        (
            "HubSpot is unavailable: HTTP 502: <html>Bad Gateway</html>",
            None
        )
    );
    let migrating = RawResponse {
        retry_after: Some(Duration::from_secs(30)),
        ..respond(477, "{}")
    };
    let (_, after) = retry_all(classify(&ctx(Endpoint::Update), &ops, &migrating));
    assert_eq!(after, Some(Duration::from_secs(30)));
    let (_, after) = retry_all(classify(&ctx(Endpoint::Update), &ops, &respond(423, "")));
    assert_eq!(after, Some(Duration::from_secs(2)));
    for status in [500, 503, 504, 521, 524, 408] {
        retry_all(classify(&ctx(Endpoint::Update), &ops, &respond(status, "")));
    }
}

#[test]
fn an_unexpected_status_is_fatal() {
    let result = classify(
        &ctx(Endpoint::Update),
        &[update("1", "1", &[])],
        &respond(301, ""),
    );
    let BatchResult::Fatal(diagnostic) = result else {
        panic!("expected Fatal, got {result:?}")
    };
    assert_eq!(diagnostic.code, "hubspot::unexpected_status");
}

#[test]
fn retry_after_is_read_as_seconds() {
    assert_eq!(parse_retry_after("1"), Some(Duration::from_secs(1)));
    assert_eq!(parse_retry_after(" 10 "), Some(Duration::from_secs(10)));
    assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
    assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    assert_eq!(parse_retry_after("-3"), None);
    assert_eq!(parse_retry_after("NaN"), None);
    assert_eq!(parse_retry_after("1e300"), None);
}

#[test]
fn a_long_message_is_cut() {
    let long = "é".repeat(5000);
    let body = json!({"message": long, "category": "VALIDATION_ERROR"}).to_string();
    let outcome = rows(classify(
        &ctx(Endpoint::Update),
        &[update("1", "1", &[])],
        &respond(400, &body),
    ));
    let RowOutcome::Rejected { message } = &outcome[0] else {
        panic!("expected Rejected")
    };
    assert!(message.chars().count() < 1100, "{}", message.len());
}

// ---------------------------------------------------------------------------------------------
// Transport

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime can always be built")
        .block_on(future)
}

#[test]
fn connection_refused_retries_and_names_the_base_url() {
    // Bind a port, then free it: nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let destination = HubspotDestination::new(config().with_base_url(&base)).expect("valid config");
    let result = block_on(destination.send_batch(&[upsert("1", "a@x.io", &[])]));
    let BatchResult::Unreachable { target, reason } = result else {
        panic!("expected Unreachable, got {result:?}")
    };
    assert_eq!(target, format!("HubSpot at `{base}`"));
    assert!(reason.starts_with("could not connect: "), "{reason}");
    assert!(!reason.contains(TOKEN));
    let error = block_on(destination.describe()).expect_err("nothing listens");
    assert_eq!(error.code, "hubspot::unreachable");
    assert!(error.message.contains(&base), "{}", error.message);
}

#[test]
fn transport_failures_become_retry_all() {
    let config = config();
    let (reason, _) = retry_all(transport_retry(&config, &TransportError::Timeout));
    assert_eq!(
        reason,
        "HubSpot did not answer within 30 s at `https://api.hubapi.com`"
    );
    let (reason, _) = retry_all(transport_retry(
        &config,
        &TransportError::Other("reset".into()),
    ));
    assert_eq!(
        reason,
        "the request to HubSpot at `https://api.hubapi.com` failed: reset"
    );
    assert_eq!(
        transport_diagnostic(&config, &TransportError::Timeout).code,
        "hubspot::unreachable"
    );
}

#[test]
fn an_empty_batch_sends_nothing() {
    let destination = HubspotDestination::new(config().with_base_url("http://127.0.0.1:9"))
        .expect("valid config");
    assert_eq!(
        block_on(destination.send_batch(&[])),
        BatchResult::PerRow(Vec::new())
    );
    assert_eq!(destination.name(), "hubspot");
    assert_eq!(destination.capabilities().max_batch_size, 100);
    assert_eq!(destination.capabilities().default_requests_per_second, 10.0);
}

// ---------------------------------------------------------------------------------------------
// Config

#[test]
fn bad_configs_are_diagnostics() {
    let cases = [
        (config().with_base_url("not a url"), "hubspot::config"),
        (
            config().with_base_url("ftp://example.com"),
            "hubspot::config",
        ),
        (
            HubspotConfig::new(SecretString::new(TOKEN), "contacts/../x", "email"),
            "hubspot::unknown_object",
        ),
        (
            HubspotConfig::new(SecretString::new(TOKEN), "contacts", " "),
            "hubspot::no_match_property",
        ),
        (
            HubspotConfig::new(SecretString::new(""), "contacts", "email"),
            "hubspot::auth",
        ),
        (
            HubspotConfig::new(SecretString::new("a\nb"), "contacts", "email"),
            "hubspot::auth",
        ),
    ];
    for (config, code) in cases {
        let error = HubspotDestination::new(config).expect_err("invalid config");
        assert_eq!(error.code, code, "{error}");
    }
    let destination =
        HubspotDestination::new(config().with_base_url("http://127.0.0.1:8080/")).expect("valid");
    assert_eq!(destination.config().base(), "http://127.0.0.1:8080");
}

/// A `base_url` with the objects path made every object "unknown" (404) and hinted
/// `contacts`; it is refused before any request, saying what to write.
#[test]
fn a_base_url_with_a_path_is_refused() {
    let error = HubspotDestination::new(
        config().with_base_url("http://user:hunter22@127.0.0.1:1234/crm/v3/objects"),
    )
    .expect_err("a path is not an API root");
    assert_eq!(error.code, "hubspot::config");
    assert!(error.message.contains("`/crm/v3/objects`"), "{error}");
    assert!(error.message.contains("API root"), "{error}");
    assert!(
        error.hints[0].contains("`base_url: http://user:****@127.0.0.1:1234`"),
        "{error}"
    );
    assert!(!error.to_string().contains("hunter22"), "{error}");
    for root in ["https://api.hubapi.com", "http://127.0.0.1:1234/"] {
        HubspotDestination::new(config().with_base_url(root)).expect("an API root");
    }
}

// ---------------------------------------------------------------------------------------------
// Schema

const PROPERTIES: &str = r#"{"results":[
  {"name":"email","label":"Email","type":"string","fieldType":"text","options":[],"hasUniqueValue":false,
   "modificationMetadata":{"archivable":false,"readOnlyDefinition":true,"readOnlyValue":false}},
  {"name":"firstname","label":"First Name","type":"string","fieldType":"text","options":[]},
  {"name":"lifecyclestage","label":"Lifecycle Stage","type":"enumeration","fieldType":"radio",
   "options":[{"label":"Subscriber","value":"subscriber","hidden":false},{"label":"Lead","value":"lead"},{"label":"x"}]},
  {"name":"hs_object_id","label":"Record ID","type":"number","fieldType":"number","calculated":false,
   "modificationMetadata":{"readOnlyValue":true,"readOnlyDefinition":true,"archivable":false}},
  {"name":"days_to_close","label":"Days to close","type":"number","fieldType":"calculation_equation","calculated":true},
  {"name":"external_ref","label":"External ref","type":"string","fieldType":"text","hasUniqueValue":true},
  {"label":"no name"}, 42, null
]}"#;

fn properties() -> Properties {
    parse_describe(&config(), &respond(200, PROPERTIES)).expect("a property list")
}

#[test]
fn describe_parses_tolerantly() {
    let properties = properties();
    assert_eq!(properties.object, "contacts");
    assert_eq!(
        properties.names().collect::<Vec<_>>(),
        [
            "email",
            "firstname",
            "lifecyclestage",
            "hs_object_id",
            "days_to_close",
            "external_ref"
        ]
    );
    let stage = properties
        .get("lifecyclestage")
        .expect("lifecyclestage is listed");
    assert_eq!(stage.r#type, "enumeration");
    assert_eq!(stage.field_type, "radio");
    assert_eq!(
        stage
            .options
            .iter()
            .map(|o| o.value.as_str())
            .collect::<Vec<_>>(),
        ["subscriber", "lead"]
    );
    assert!(
        properties
            .get("hs_object_id")
            .expect("listed")
            .is_read_only()
    );
    assert!(
        properties
            .get("days_to_close")
            .expect("listed")
            .is_read_only()
    );
    assert!(!properties.get("firstname").expect("listed").is_read_only());
    assert!(
        properties
            .get("external_ref")
            .expect("listed")
            .has_unique_value
    );
}

#[test]
fn describe_errors_are_diagnostics() {
    let config = config();
    let error = parse_describe(&config, &respond(200, "<html/>")).expect_err("not JSON");
    assert_eq!(error.code, "hubspot::describe");
    let error = parse_describe(
        &config,
        &respond(401, r#"{"category":"INVALID_AUTHENTICATION"}"#),
    )
    .expect_err("401");
    assert_eq!(error.code, "hubspot::auth");
    assert!(
        error.hints[0].contains("crm.schemas.contacts.read"),
        "{error}"
    );
    let error = parse_describe(&config, &respond(404, "")).expect_err("404");
    assert_eq!(error.code, "hubspot::unknown_object");
    let error = parse_describe(
        &config,
        &respond(
            400,
            r#"{"message":"Unable to infer object type from: contactz"}"#,
        ),
    )
    .expect_err("400");
    assert_eq!(error.code, "hubspot::unknown_object");
    let error = parse_describe(&config, &respond(503, "")).expect_err("503");
    assert_eq!(error.code, "hubspot::unavailable");
}

#[test]
fn check_properties_reports_unknown_read_only_and_non_unique() {
    let properties = properties();
    let mapped = [
        "firstnme",
        "Lifecycle Stage",
        "hs_object_id",
        "days_to_close",
        "email",
        "firstname",
        "zzz",
    ]
    .map(String::from);
    let diagnostics = check_properties(&mapped, "firstname", &properties);
    let text = diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(text, @r"
    error[hubspot::unknown_property]: HubSpot `contacts` has no property `firstnme`
      hint: did you mean `firstname`?
    error[hubspot::unknown_property]: HubSpot `contacts` has no property `Lifecycle Stage`
      hint: `Lifecycle Stage` is the label of `lifecyclestage`; the API uses internal names
    error[hubspot::read_only_property]: the HubSpot `contacts` property `hs_object_id` is read-only
      note: HubSpot does not accept values for it through the API
      hint: remove `hs_object_id` from the sync's mapping
    error[hubspot::read_only_property]: the HubSpot `contacts` property `days_to_close` is read-only
      note: HubSpot calculates its value
      hint: remove `days_to_close` from the sync's mapping
    error[hubspot::unknown_property]: HubSpot `contacts` has no property `zzz`
      hint: use the property's internal name, as listed in HubSpot's property settings
    error[hubspot::match_property_not_unique]: the match property `firstname` does not have unique values in HubSpot `contacts`
      note: HubSpot upserts only by a property with `hasUniqueValue`, which is set when the property is created
      hint: match on a unique property (`external_ref`), or set `match.lookup: search` to find records through HubSpot's search (slower; a value several records hold fails its row)
    ");
}

#[test]
fn email_is_a_valid_match_property_for_contacts() {
    let properties = properties();
    let mapped = ["email".to_string(), "firstname".to_string()];
    assert_eq!(check_properties(&mapped, "email", &properties), vec![]);
    assert_eq!(
        check_properties(&mapped, "external_ref", &properties),
        vec![]
    );
    let companies = Properties {
        object: "companies".to_string(),
        ..properties
    };
    let diagnostics = check_properties(&mapped, "email", &companies);
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].code, "hubspot::match_property_not_unique");
    let diagnostics = check_properties(&[], "nope", &companies);
    assert_eq!(diagnostics[0].code, "hubspot::unknown_property");
}

// ---------------------------------------------------------------------------------------------
// Secrets

#[test]
fn the_token_never_shows_in_debug_output() {
    let config = config();
    assert!(!format!("{config:?}").contains(TOKEN));
    assert!(!format!("{config:#?}").contains(TOKEN));
    let destination = HubspotDestination::new(config).expect("valid config");
    let debug = format!("{destination:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(!debug.contains("pat-na1"), "{debug}");
}

/// A password in `base_url` was echoed by `hubspot::unreachable` and every message naming
/// the URL; they show `user:****@host` instead.
#[test]
fn credentials_in_the_base_url_never_show() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let password = "hunter22-password";
    let config = config().with_base_url(format!("http://user:{password}@127.0.0.1:{port}"));
    let shown = format!("http://user:****@127.0.0.1:{port}");
    let mut texts = vec![format!("{config:?}")];
    let destination = HubspotDestination::new(config.clone()).expect("valid config");
    texts.push(format!("{destination:?}"));
    let error = block_on(destination.describe()).expect_err("nothing listens");
    assert_eq!(error.code, "hubspot::unreachable");
    assert!(error.message.contains(&shown), "{error}");
    texts.push(error.to_string());
    texts.push(format!(
        "{:?}",
        block_on(destination.send_batch(&[upsert("1", "a@x.io", &[])]))
    ));
    for error in [TransportError::Timeout, TransportError::Other("x".into())] {
        texts.push(format!("{:?}", transport_retry(&config, &error)));
        texts.push(transport_diagnostic(&config, &error).to_string());
    }
    for bad in [
        format!("ftp://user:{password}@example.com"),
        format!("http://user:{password}@"),
    ] {
        let error = HubspotDestination::new(config.clone().with_base_url(bad)).expect_err("bad");
        texts.push(error.to_string());
    }
    for text in &texts {
        assert!(!text.contains(password), "the password leaked: {text}");
    }
    assert!(
        texts.iter().filter(|t| t.contains("user:****@")).count() >= 5,
        "{texts:#?}"
    );
}

#[test]
fn no_diagnostic_or_message_shows_the_token_even_when_hubspot_echoes_it() {
    let token = SecretString::new(TOKEN);
    let echo = json!({
        "status": "error",
        "message": format!("token {TOKEN} is invalid"),
        "category": "INVALID_AUTHENTICATION",
        "errors": [{"message": format!("bad {TOKEN}"), "context": {"ids": ["101"]}}],
    })
    .to_string();
    let ops = [update("1", "101", &[]), update("2", "102", &[])];
    let mut texts = Vec::new();
    for status in [200, 207, 400, 401, 403, 404, 409, 429, 500, 301] {
        let result = redact_result(
            classify(&ctx(Endpoint::Update), &ops, &respond(status, &echo)),
            &token,
        );
        texts.push(format!("{result:?}"));
        if let BatchResult::Fatal(diagnostic) = &result {
            texts.push(diagnostic.to_string());
        }
        if let Err(diagnostic) = parse_describe(&config(), &respond(status, &echo)) {
            texts.push(crate::redact_diagnostic(diagnostic, &token).to_string());
        }
    }
    for config in [
        config().with_base_url(format!("http://{TOKEN}.invalid:x")),
        HubspotConfig::new(SecretString::new(format!("{TOKEN}\n")), "contacts", "email"),
    ] {
        if let Err(diagnostic) = HubspotDestination::new(config) {
            texts.push(diagnostic.to_string());
        }
    }
    let result = redact_result(
        transport_retry(&config(), &TransportError::Connect(format!("echo {TOKEN}"))),
        &token,
    );
    texts.push(format!("{result:?}"));
    for text in &texts {
        assert!(!text.contains(TOKEN), "the token leaked: {text}");
    }
    assert!(
        texts.iter().any(|t| t.contains("**redacted**")),
        "the echo was not exercised"
    );
}

#[test]
fn classification_of_a_single_row_per_status_is_stable() {
    // One outcome per operation, in order, whatever the status.
    let ops = [
        update("1", "101", &[]),
        update("2", "102", &[]),
        update("3", "103", &[]),
    ];
    for status in [200, 207, 400, 404, 409, 422] {
        if let BatchResult::PerRow(rows) =
            classify(&ctx(Endpoint::Update), &ops, &respond(status, "{}"))
        {
            assert_eq!(rows.len(), ops.len(), "status {status}");
        }
    }
}

#[test]
fn the_account_key_names_the_portal_and_never_the_token() {
    let key = config().account_key();
    assert!(key.starts_with("hubspot https://api.hubapi.com "), "{key}");
    assert!(!key.contains(TOKEN), "{key}");
    assert_eq!(
        key,
        config()
            .with_base_url("https://api.hubapi.com/")
            .account_key(),
        "a trailing slash is the same account"
    );
    let other = HubspotConfig::new(SecretString::new("pat-na1-other"), "companies", "domain");
    assert_ne!(key, other.account_key(), "another token is another account");
    let same = HubspotConfig::new(SecretString::new(TOKEN), "companies", "domain");
    assert_eq!(
        key,
        same.account_key(),
        "another object of the same portal shares it"
    );
    let secret_url = config().with_base_url("http://user:hunter2@127.0.0.1:4010");
    assert!(!secret_url.account_key().contains("hunter2"));
}

#[test]
fn only_a_per_input_conflict_makes_an_insert_row_skipped() {
    let create = |key: &str, email: &str| Operation {
        kind: OperationKind::Create,
        ..upsert(key, email, &[])
    };
    let ops = [create("1", "a@x.co"), create("2", "b@x.co")];
    let conflict = r#"{"status":"error","message":"Contact already exists. Existing ID: 7","correlationId":"c","category":"CONFLICT"}"#;
    // A 409 for the whole batch names one record: no row may be taken as skipped.
    let whole = classify(&ctx(Endpoint::Create), &ops, &respond(409, conflict));
    let whole = rows(crate::explain(&config(), &ops, 409, whole));
    assert!(
        whole
            .iter()
            .all(|row| matches!(row, RowOutcome::Rejected { .. })),
        "{whole:?}"
    );
    // Multi-status: the input the conflict names is skipped, the other created.
    let body = r#"{"status":"COMPLETE","results":[{"id":"8","objectWriteTraceId":"1","properties":{"email":"b@x.co"}}],
        "errors":[{"status":"error","category":"CONFLICT","message":"Contact already exists. Existing ID: 7","context":{"objectWriteTraceId":["0"]}}]}"#;
    let split = classify(&ctx(Endpoint::Create), &ops, &respond(207, body));
    let split = rows(crate::explain(&config(), &ops, 207, split));
    assert!(
        matches!(&split[0], RowOutcome::Skipped { reason, existing_id: Some(id) }
            if reason.contains("Existing ID: 7") && id == "7"),
        "{split:?}"
    );
    assert_eq!(split[1], succeeded("8", true));
}

#[test]
fn a_conflict_message_names_the_existing_record() {
    assert_eq!(
        crate::existing_id("Contact already exists. Existing ID: 401"),
        Some("401")
    );
    assert_eq!(crate::existing_id("Existing ID: none"), None);
    assert_eq!(crate::existing_id("no id here"), None);
}
