//! The Postman collection's requests replayed (`shared/contracts/salesforce/
//! postman-salesforce-apis/`, Salesforce's own collection, FACTS' companion).
//!
//! The collection carries requests but no response bodies (its `responses` entries have
//! empty `text`), so each replayed request's answer is checked against the shape FACTS gives
//! for that route: the same keys with the same JSON types.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{Value, json};

use crate::{Body, Sandbox, TOKEN};

/// The collection's folder, from this crate (connectors/salesforce/sandbox) up to /work.
fn collection() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../../shared/contracts/salesforce/postman-salesforce-apis")
}

fn load(file: &str) -> Value {
    let path = collection().join(file);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON value's shape: objects by key, arrays by their first element, scalars by type.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("boolean"),
        Value::Null => json!("null"),
    }
}

/// Whether shape `a` has everything of shape `e`: every key of an object (recursively), the
/// first element of an array, the same scalar type.
fn covers(a: &Value, e: &Value) -> bool {
    match (a, e) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|x| covers(x, v))),
        (Value::Array(a), Value::Array(e)) => match (a.first(), e.first()) {
            (_, None) => true,
            (Some(x), Some(y)) => covers(x, y),
            (None, Some(_)) => false,
        },
        _ => a == e,
    }
}

/// Asserts `actual` has every key of `expected` with the same JSON type.
#[track_caller]
fn same_shape(actual: &Value, expected: &Value) {
    assert!(
        covers(&shape(actual), &shape(expected)),
        "{actual}\ndoes not have the shape of\n{expected}"
    );
}

/// The request's URL with the collection's variables filled in for the sandbox.
fn url(template: &str, object: &str, job: &str) -> String {
    template
        .replace("{{_endpoint}}", "")
        .replace("{{url}}", "")
        .replace("{{site}}", "")
        .replace("{{version}}", "62.0")
        .replace("{{_jobId}}", job)
        .replace("<SOBJECT_API_NAME>", object)
}

fn method(request: &Value) -> Method {
    request["method"]
        .as_str()
        .and_then(|m| m.parse().ok())
        .unwrap_or(Method::GET)
}

#[tokio::test]
async fn the_collection_is_where_the_tests_expect_it() {
    let index = load("index.json");
    assert!(index["name"].is_string() || index.is_object());
}

#[tokio::test]
async fn rest_requests_replay_with_facts_shapes() {
    let sandbox = Sandbox::default().await;
    // rest/versions.json: GET /services/data (no auth).
    let versions = load("rest/versions.json");
    let reply = sandbox
        .send(
            None,
            method(&versions),
            &url(versions["url"].as_str().unwrap_or_default(), "", ""),
            Body::None,
        )
        .await;
    reply.expect(200);
    same_shape(
        &reply.body,
        &json!([{"label": "", "url": "", "version": ""}]),
    );
    // Its saved example request: POST sobjects/Lead with FirstName and LastName only. Lead
    // requires Company, so Salesforce answers REQUIRED_FIELD_MISSING (FACTS E4, E1).
    let example = &versions["responses"][0]["requestObject"];
    let body: Value =
        serde_json::from_str(example["rawModeData"].as_str().unwrap_or("{}")).unwrap_or_default();
    let reply = sandbox
        .send(
            Some(TOKEN),
            method(example),
            &url(example["url"].as_str().unwrap_or_default(), "Lead", ""),
            Body::Json(body),
        )
        .await;
    reply.error(400, "REQUIRED_FIELD_MISSING");
    assert_eq!(reply.body[0]["fields"], json!(["Company"]));
    // rest/sobject_create.json: POST sobjects/<SOBJECT_API_NAME> {"Name":"test"} (Account).
    let create = load("rest/sobject_create.json");
    let body: Value =
        serde_json::from_str(create["rawModeData"].as_str().unwrap_or("{}")).unwrap_or_default();
    let reply = sandbox
        .send(
            Some(TOKEN),
            method(&create),
            &url(create["url"].as_str().unwrap_or_default(), "Account", ""),
            Body::Json(body),
        )
        .await;
    reply.expect(201);
    same_shape(
        &reply.body,
        &json!({"id": "", "success": true, "errors": []}),
    );
    // rest/describe_global.json, rest/sobject_describe.json, rest/limit.json,
    // rest/resources_by_version.json, rest/query.json: GETs.
    for (file, expected) in [
        (
            "rest/describe_global.json",
            json!({"encoding": "", "maxBatchSize": 0, "sobjects": [{"name": "", "keyPrefix": "", "custom": false, "createable": true}]}),
        ),
        (
            "rest/sobject_describe.json",
            json!({"name": "", "keyPrefix": "", "createable": true, "updateable": true, "fields": [{"name": "", "type": "", "length": 0, "nillable": true, "createable": true, "updateable": true, "externalId": false, "idLookup": true, "unique": false, "picklistValues": [], "referenceTo": []}]}),
        ),
        (
            "rest/sobject_basic_information.json",
            json!({"objectDescribe": {"name": ""}, "recentItems": []}),
        ),
        (
            "rest/limit.json",
            json!({"DailyApiRequests": {"Max": 0, "Remaining": 0}}),
        ),
        (
            "rest/resources_by_version.json",
            json!({"sobjects": "", "query": "", "limits": ""}),
        ),
        (
            "rest/query.json",
            json!({"totalSize": 0, "done": true, "records": [{"attributes": {"type": "", "url": ""}, "Name": ""}]}),
        ),
    ] {
        let request = load(file);
        let path = url(request["url"].as_str().unwrap_or_default(), "Account", "");
        let reply = sandbox
            .send(Some(TOKEN), method(&request), &path, Body::None)
            .await;
        reply.expect(200);
        same_shape(&reply.body, &expected);
    }
}

#[tokio::test]
async fn collection_requests_with_placeholder_bodies_are_400_arrays() {
    let sandbox = Sandbox::default().await;
    // The collection's Collections bodies are templates ("allOrNone": "Boolean", "records":
    // "SObject[]"): Salesforce cannot deserialize them, a 400 JSON_PARSER_ERROR (FACTS E3, E1).
    for file in [
        "composite/sobject_collections_create.json",
        "composite/sobject_collections_update.json",
    ] {
        let request = load(file);
        let body: Value = serde_json::from_str(request["rawModeData"].as_str().unwrap_or("{}"))
            .unwrap_or_default();
        let path = url(request["url"].as_str().unwrap_or_default(), "Contact", "");
        let reply = sandbox
            .send(Some(TOKEN), method(&request), &path, Body::Json(body))
            .await;
        reply.error(400, "JSON_PARSER_ERROR");
    }
    // With real values in the collection's shape, they answer FACTS C2's SaveResult array.
    let create = load("composite/sobject_collections_create.json");
    let path = url(create["url"].as_str().unwrap_or_default(), "Contact", "");
    let reply = sandbox
        .send(Some(TOKEN), method(&create), &path, Body::Json(json!({"allOrNone": false, "records": [{"attributes": {"type": "Contact"}, "LastName": "P"}]})))
        .await;
    reply.expect(200);
    same_shape(
        &reply.body,
        &json!([{"id": "", "success": true, "errors": []}]),
    );
    let id = reply.body[0]["id"].as_str().unwrap_or_default().to_owned();
    // composite/sobject_collections_retrieve.json and _delete.json, their query parameters filled in.
    let retrieve = load("composite/sobject_collections_retrieve.json");
    let path = url(retrieve["url"].as_str().unwrap_or_default(), "Contact", "")
        .replace("?ids&fields", &format!("?ids={id}&fields=Id,LastName"));
    let reply = sandbox
        .send(Some(TOKEN), method(&retrieve), &path, Body::None)
        .await;
    reply.expect(200);
    same_shape(
        &reply.body,
        &json!([{"attributes": {"type": "", "url": ""}, "Id": "", "LastName": ""}]),
    );
    let delete = load("composite/sobject_collections_delete.json");
    let path = url(delete["url"].as_str().unwrap_or_default(), "Contact", "")
        .replace("?ids&allOrNone", &format!("?ids={id}&allOrNone=true"));
    let reply = sandbox
        .send(Some(TOKEN), method(&delete), &path, Body::None)
        .await;
    reply.expect(200);
    same_shape(
        &reply.body,
        &json!([{"id": "", "success": true, "errors": []}]),
    );
}

#[tokio::test]
async fn bulk_requests_replay_in_order() {
    let sandbox = Sandbox::default().await;
    // bulk_v2/create_job.json: {"object":"Asset","operation":"update"} (FACTS B1).
    let create = load("bulk_v2/create_job.json");
    let body: Value =
        serde_json::from_str(create["rawModeData"].as_str().unwrap_or("{}")).unwrap_or_default();
    let reply = sandbox
        .send(
            Some(TOKEN),
            method(&create),
            &url(create["url"].as_str().unwrap_or_default(), "", ""),
            Body::Json(body),
        )
        .await;
    reply.expect(200);
    let job_shape = json!({"id": "", "operation": "", "object": "", "state": "", "contentType": "", "contentUrl": "", "jobType": "", "concurrencyMode": "", "lineEnding": "", "columnDelimiter": "", "apiVersion": 0, "createdDate": "", "createdById": ""});
    same_shape(&reply.body, &job_shape);
    assert_eq!(reply.body["state"], "Open");
    let job = reply.body["id"].as_str().unwrap_or_default().to_owned();
    // An asset to update, then upload_job_data.json (text/csv), close_or_abort_a_job.json.
    let asset = sandbox
        .api(
            Method::POST,
            "/sobjects/Asset",
            Some(json!({"Name": "Laptop"})),
        )
        .await;
    let asset_id = asset.body["id"].as_str().unwrap_or_default().to_owned();
    let upload = load("bulk_v2/upload_job_data.json");
    let reply = sandbox
        .send(
            Some(TOKEN),
            method(&upload),
            &url(upload["url"].as_str().unwrap_or_default(), "", &job),
            Body::Csv(format!("Id,SerialNumber\n{asset_id},SN-1\n")),
        )
        .await;
    reply.expect(201);
    let close = load("bulk_v2/close_or_abort_a_job.json");
    let body: Value =
        serde_json::from_str(close["rawModeData"].as_str().unwrap_or("{}")).unwrap_or_default();
    let reply = sandbox
        .send(
            Some(TOKEN),
            method(&close),
            &url(close["url"].as_str().unwrap_or_default(), "", &job),
            Body::Json(body),
        )
        .await;
    reply.expect(200);
    assert_eq!(reply.body["state"], "UploadComplete");
    // get_job_info.json until done (FACTS B3's fields).
    let info_request = load("bulk_v2/get_job_info.json");
    let info_path = url(info_request["url"].as_str().unwrap_or_default(), "", &job);
    let mut info = Value::Null;
    for _ in 0..200 {
        info = sandbox
            .send(Some(TOKEN), method(&info_request), &info_path, Body::None)
            .await
            .body;
        if info["state"] == "JobComplete" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut counts = job_shape.clone();
    for (key, kind) in [
        ("numberRecordsProcessed", json!(0)),
        ("numberRecordsFailed", json!(0)),
        ("retries", json!(0)),
        ("totalProcessingTime", json!(0)),
    ] {
        counts[key] = kind;
    }
    same_shape(&info, &counts);
    assert_eq!(info["numberRecordsProcessed"], 1);
    for (file, header) in [
        (
            "bulk_v2/get_job_successful_record_results.json",
            "\"sf__Id\",\"sf__Created\",\"Id\",\"SerialNumber\"",
        ),
        (
            "bulk_v2/get_job_failed_record_results.json",
            "\"sf__Id\",\"sf__Error\",\"Id\",\"SerialNumber\"",
        ),
        (
            "bulk_v2/get_job_unprocessed_record_results.json",
            "\"Id\",\"SerialNumber\"",
        ),
    ] {
        let request = load(file);
        let reply = sandbox
            .send(
                Some(TOKEN),
                method(&request),
                &url(request["url"].as_str().unwrap_or_default(), "", &job),
                Body::None,
            )
            .await;
        reply.expect(200);
        assert_eq!(reply.text.lines().next(), Some(header), "{file}");
    }
    assert_eq!(sandbox.records("Asset").await[0]["SerialNumber"], "SN-1");
    let all = load("bulk_v2/get_all_jobs.json");
    let reply = sandbox
        .send(
            Some(TOKEN),
            method(&all),
            &url(all["url"].as_str().unwrap_or_default(), "", &job),
            Body::None,
        )
        .await;
    reply.expect(200);
    same_shape(&reply.body, &json!({"done": true, "records": [job_shape]}));
    let delete = load("bulk_v2/delete_job.json");
    sandbox
        .send(
            Some(TOKEN),
            method(&delete),
            &url(delete["url"].as_str().unwrap_or_default(), "", &job),
            Body::None,
        )
        .await
        .expect(204);
}

#[tokio::test]
async fn auth_requests_replay_with_facts_o2_shape() {
    let sandbox = Sandbox::default().await;
    let refresh = load("auth/refresh_token.json");
    let fields: Vec<(&'static str, String)> = refresh["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|f| {
            let key: &'static str = match f["key"].as_str()? {
                "grant_type" => "grant_type",
                "client_id" => "client_id",
                "client_secret" => "client_secret",
                "refresh_token" => "refresh_token",
                _ => return None,
            };
            let value = f["value"]
                .as_str()?
                .replace("{{clientId}}", "sandbox-client-id")
                .replace("{{clientSecret}}", "sandbox-client-secret")
                .replace("{{_refreshToken}}", "sandbox-refresh-token");
            Some((key, value))
        })
        .collect();
    assert_eq!(fields.len(), 4);
    let reply = sandbox
        .send(
            None,
            method(&refresh),
            &url(refresh["url"].as_str().unwrap_or_default(), "", ""),
            Body::Form(fields),
        )
        .await;
    reply.expect(200);
    same_shape(
        &reply.body,
        &json!({"access_token": "", "instance_url": "", "id": "", "token_type": "", "issued_at": "", "signature": "", "scope": ""}),
    );
    let token = reply.body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let revoke = load("auth/revoke_token.json");
    let reply = sandbox
        .send(
            None,
            method(&revoke),
            &url(revoke["url"].as_str().unwrap_or_default(), "", ""),
            Body::Form(vec![("token", token.clone())]),
        )
        .await;
    reply.expect(200);
    sandbox
        .send(
            Some(&token),
            Method::GET,
            "/services/data/v62.0/sobjects",
            Body::None,
        )
        .await
        .error(401, "INVALID_SESSION_ID");
}
