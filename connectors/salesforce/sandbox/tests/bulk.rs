//! Bulk API 2.0 ingest through `/jobs/ingest` (FACTS B1–B5, L5, I3).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::{Body, Reply, Sandbox, TOKEN, V};

async fn create(sandbox: &Sandbox, body: Value) -> String {
    let reply = sandbox.api(Method::POST, "/jobs/ingest", Some(body)).await;
    reply.expect(200);
    reply.body["id"].as_str().unwrap_or_default().to_owned()
}

async fn upload(sandbox: &Sandbox, id: &str, csv: &str) -> Reply {
    sandbox
        .send(
            Some(TOKEN),
            Method::PUT,
            &format!("{V}/jobs/ingest/{id}/batches"),
            Body::Csv(csv.to_owned()),
        )
        .await
}

/// Polls the job with a growing pause until it reaches a terminal state; answers the states
/// seen and the final info.
async fn wait(sandbox: &Sandbox, id: &str) -> (Vec<String>, Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut pause = Duration::from_millis(5);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let info = sandbox
            .api(Method::GET, &format!("/jobs/ingest/{id}"), None)
            .await;
        info.expect(200);
        let state = info.body["state"].as_str().unwrap_or_default().to_owned();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if ["JobComplete", "Failed", "Aborted"].contains(&state.as_str()) {
            return (seen, info.body);
        }
        assert!(Instant::now() < deadline, "job {id} stuck in {state}");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// A result file as rows of cells.
async fn results(sandbox: &Sandbox, id: &str, which: &str) -> Vec<Vec<String>> {
    let reply = sandbox
        .api(Method::GET, &format!("/jobs/ingest/{id}/{which}/"), None)
        .await;
    reply.expect(200);
    assert_eq!(reply.header("content-type"), Some("text/csv"));
    let mut lines = Vec::new();
    let mut reader = csv_rows(&reply.text);
    lines.append(&mut reader);
    lines
}

/// A tiny CSV reader for the result files (every value quoted, no embedded newlines here).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| {
            let mut cells = Vec::new();
            let mut cell = String::new();
            let mut quoted = false;
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                match (c, quoted) {
                    ('"', true) if chars.peek() == Some(&'"') => {
                        cell.push('"');
                        chars.next();
                    }
                    ('"', _) => quoted = !quoted,
                    (',', false) => cells.push(std::mem::take(&mut cell)),
                    (c, _) => cell.push(c),
                }
            }
            cells.push(cell);
            cells
        })
        .collect()
}

#[tokio::test]
async fn an_insert_job_runs_to_job_complete_with_results_that_add_up() {
    let sandbox = Sandbox::default().await;
    let id = create(&sandbox, json!({"object": "Contact", "operation": "insert", "contentType": "CSV", "lineEnding": "LF"})).await;
    // FACTS I3: job ids start with 750; B1: the job answer.
    assert!(id.starts_with("750"), "{id}");
    let info = sandbox
        .api(Method::GET, &format!("/jobs/ingest/{id}"), None)
        .await;
    assert_eq!(info.body["state"], "Open");
    assert_eq!(info.body["jobType"], "V2Ingest");
    assert_eq!(
        info.body["contentUrl"],
        format!("services/data/v62.0/jobs/ingest/{id}/batches").as_str()
    );
    let csv = "LastName,Email,Birthdate,Description\n\
               \"O'Brien, Jr.\",ob@example.com,1990-01-31,\"says \"\"hi\"\"\"\n\
               ,missing@example.com,,\n\
               Smith,not-an-email,,\n\
               Jones,jones@example.com,31/01/1990,\n\
               Brown,brown@example.com,,#N/A\n";
    upload(&sandbox, &id, csv).await.expect(201);
    // Only one upload per job.
    upload(&sandbox, &id, csv)
        .await
        .error(400, "BULK_API_ERROR");
    let closed = sandbox
        .api(
            Method::PATCH,
            &format!("/jobs/ingest/{id}"),
            Some(json!({"state": "UploadComplete"})),
        )
        .await;
    closed.expect(200);
    assert_eq!(closed.body["state"], "UploadComplete");
    // No upload once closed.
    upload(&sandbox, &id, csv)
        .await
        .error(409, "INVALIDJOBSTATE");
    let (states, info) = wait(&sandbox, &id).await;
    // FACTS B3: Open → UploadComplete → InProgress → JobComplete.
    assert!(states.contains(&"InProgress".to_owned()), "{states:?}");
    assert_eq!(states.last().map(String::as_str), Some("JobComplete"));
    assert_eq!(info["numberRecordsProcessed"], 5);
    assert_eq!(info["numberRecordsFailed"], 3);
    // FACTS B4: sf__Id, sf__Created + the original columns; failures with sf__Error.
    let ok = results(&sandbox, &id, "successfulResults").await;
    assert_eq!(
        ok[0],
        [
            "sf__Id",
            "sf__Created",
            "LastName",
            "Email",
            "Birthdate",
            "Description"
        ]
    );
    let failed = results(&sandbox, &id, "failedResults").await;
    assert_eq!(
        failed[0],
        [
            "sf__Id",
            "sf__Error",
            "LastName",
            "Email",
            "Birthdate",
            "Description"
        ]
    );
    assert_eq!(ok.len() - 1 + failed.len() - 1, 5);
    assert!(
        ok[1..]
            .iter()
            .all(|row| row[0].starts_with("003") && row[1] == "true")
    );
    let obrien = ok
        .iter()
        .find(|r| r[2] == "O'Brien, Jr.")
        .cloned()
        .unwrap_or_default();
    assert_eq!(obrien[5], "says \"hi\"");
    let errors: Vec<&str> = failed[1..]
        .iter()
        .map(|r| r[1].split(':').next().unwrap_or_default())
        .collect();
    for code in [
        "REQUIRED_FIELD_MISSING",
        "INVALID_EMAIL_ADDRESS",
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
    ] {
        assert!(errors.contains(&code), "{code} in {errors:?}");
    }
    assert_eq!(results(&sandbox, &id, "unprocessedrecords").await.len(), 1);
    let contacts = sandbox.records("Contact").await;
    assert_eq!(contacts.len(), 2);
    // `#N/A` is null (FACTS B5).
    assert!(contacts.iter().all(|c| c["Description"] != "#N/A"));
    // The list, and delete once done.
    let list = sandbox.api(Method::GET, "/jobs/ingest", None).await;
    assert_eq!(list.body["records"][0]["id"], id.as_str());
    assert_eq!(list.body["done"], true);
    sandbox
        .api(Method::DELETE, &format!("/jobs/ingest/{id}"), None)
        .await
        .expect(204);
    sandbox
        .api(Method::GET, &format!("/jobs/ingest/{id}"), None)
        .await
        .error(404, "NOT_FOUND");
}

#[tokio::test]
async fn upsert_and_update_jobs_leave_empty_cells_unchanged() {
    let sandbox = Sandbox::default().await;
    let existing = sandbox
        .contact(json!({"LastName": "Old", "Title": "Keep", "Ext_Id__c": "E-1"}))
        .await;
    let id = create(&sandbox, json!({"object": "Contact", "operation": "upsert", "externalIdFieldName": "Ext_Id__c", "lineEnding": "CRLF"})).await;
    upload(
        &sandbox,
        &id,
        "Ext_Id__c,LastName,Title\r\ne-1,New,\r\nE-2,Fresh,Boss\r\n",
    )
    .await
    .expect(201);
    sandbox
        .api(
            Method::PATCH,
            &format!("/jobs/ingest/{id}"),
            Some(json!({"state": "UploadComplete"})),
        )
        .await
        .expect(200);
    let (_, info) = wait(&sandbox, &id).await;
    assert_eq!(info["state"], "JobComplete");
    assert_eq!(info["numberRecordsFailed"], 0);
    let ok = results(&sandbox, &id, "successfulResults").await;
    let created: Vec<&str> = ok[1..].iter().map(|r| r[1].as_str()).collect();
    assert!(created.contains(&"true") && created.contains(&"false"));
    let contacts = sandbox.records("Contact").await;
    let old = contacts
        .iter()
        .find(|c| c["Id"] == existing.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(old["LastName"], "New");
    assert_eq!(old["Title"], "Keep");
    // A delete job by id.
    let delete = create(
        &sandbox,
        json!({"object": "Contact", "operation": "delete"}),
    )
    .await;
    upload(
        &sandbox,
        &delete,
        &format!("Id\n{existing}\n001RM000003oLrB000\n"),
    )
    .await
    .expect(201);
    sandbox
        .api(
            Method::PATCH,
            &format!("/jobs/ingest/{delete}"),
            Some(json!({"state": "UploadComplete"})),
        )
        .await
        .expect(200);
    let (_, info) = wait(&sandbox, &delete).await;
    assert_eq!(
        (
            info["numberRecordsProcessed"].clone(),
            info["numberRecordsFailed"].clone()
        ),
        (json!(2), json!(1))
    );
    assert_eq!(sandbox.records("Contact").await.len(), 1);
}

#[tokio::test]
async fn bad_files_fail_the_job_and_aborts_keep_rows_unprocessed() {
    let sandbox = Sandbox::default().await;
    let unknown = create(
        &sandbox,
        json!({"object": "Contact", "operation": "insert"}),
    )
    .await;
    upload(&sandbox, &unknown, "LastName,Nope__c\nSmith,1\n")
        .await
        .expect(201);
    sandbox
        .api(
            Method::PATCH,
            &format!("/jobs/ingest/{unknown}"),
            Some(json!({"state": "UploadComplete"})),
        )
        .await
        .expect(200);
    let (_, info) = wait(&sandbox, &unknown).await;
    assert_eq!(info["state"], "Failed");
    assert_eq!(
        info["errorMessage"],
        "InvalidBatch : Field name not found : Nope__c"
    );
    let crlf = create(
        &sandbox,
        json!({"object": "Contact", "operation": "insert", "lineEnding": "LF"}),
    )
    .await;
    upload(&sandbox, &crlf, "LastName\r\nSmith\r\n")
        .await
        .expect(201);
    sandbox
        .api(
            Method::PATCH,
            &format!("/jobs/ingest/{crlf}"),
            Some(json!({"state": "UploadComplete"})),
        )
        .await
        .expect(200);
    let (_, info) = wait(&sandbox, &crlf).await;
    assert_eq!(info["state"], "Failed");
    assert!(
        info["errorMessage"]
            .as_str()
            .is_some_and(|m| m.starts_with("ClientInputError : LineEnding is invalid"))
    );
    let aborted = create(
        &sandbox,
        json!({"object": "Contact", "operation": "insert"}),
    )
    .await;
    upload(&sandbox, &aborted, "LastName\nA\nB\n")
        .await
        .expect(201);
    let reply = sandbox
        .api(
            Method::PATCH,
            &format!("/jobs/ingest/{aborted}"),
            Some(json!({"state": "Aborted"})),
        )
        .await;
    assert_eq!(reply.body["state"], "Aborted");
    assert_eq!(
        results(&sandbox, &aborted, "unprocessedrecords").await,
        [vec!["LastName"], vec!["A"], vec!["B"]]
    );
    sandbox
        .api(
            Method::PATCH,
            &format!("/jobs/ingest/{aborted}"),
            Some(json!({"state": "UploadComplete"})),
        )
        .await
        .error(409, "INVALIDJOBSTATE");
    assert!(sandbox.records("Contact").await.is_empty());
    // Job creation refusals.
    sandbox
        .api(
            Method::POST,
            "/jobs/ingest",
            Some(json!({"object": "Nope__c", "operation": "insert"})),
        )
        .await
        .error(400, "INVALIDENTITY");
    sandbox
        .api(
            Method::POST,
            "/jobs/ingest",
            Some(json!({"object": "Contact", "operation": "merge"})),
        )
        .await
        .error(400, "INVALIDJOB");
    sandbox
        .api(
            Method::POST,
            "/jobs/ingest",
            Some(json!({"object": "Contact", "operation": "upsert"})),
        )
        .await
        .error(400, "INVALIDJOB");
}
