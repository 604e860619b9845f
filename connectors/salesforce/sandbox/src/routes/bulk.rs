//! Bulk API 2.0 ingest routes under `/jobs/ingest` (FACTS B1–B5; Postman `bulk_v2/*`).
//!
//! Errors FACTS does not spell out, with the codes Salesforce's Bulk API uses: an object the
//! user cannot see or that does not exist is 400 `INVALIDENTITY` "Entity 'X' is not supported
//! by the Bulk API."; a bad operation, content type, line ending, delimiter or external-id
//! field is 400 `INVALIDJOB` naming it; an upload to a job that is not `Open`, or a state
//! change the state machine does not allow, is 409 `INVALIDJOBSTATE`; a second upload is 400
//! `BULK_API_ERROR` "Found multiple contents for job …" (Bulk 2.0 takes one upload per job);
//! an unknown job is 404 `NOT_FOUND`.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::{Value, json};

use super::sobjects::object_body;
use super::{Call, visible};
use crate::bulk::process::{self, result_csv};
use crate::bulk::{DELIMITERS, Job, Operation, State};
use crate::errors::{ApiError, code};
use crate::respond;
use crate::state::lock;

fn invalid_job(message: String) -> ApiError {
    ApiError::bad_request("INVALIDJOB", message)
}

fn invalid_state(message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code::INVALIDJOBSTATE, message)
}

/// Dispatches `/jobs/ingest/…`.
pub(super) fn route(call: &Call<'_>, rest: &[&str]) -> Result<Response, ApiError> {
    match (&call.method, rest) {
        (&Method::POST, []) => create(call),
        (&Method::GET, []) => list(call),
        (_, []) => Err(call.method_not_allowed("GET,POST")),
        (&Method::GET, [id]) => info(call, id),
        (&Method::PATCH, [id]) => change_state(call, id),
        (&Method::DELETE, [id]) => delete(call, id),
        (_, [_]) => Err(call.method_not_allowed("GET,PATCH,DELETE")),
        (&Method::PUT, [id, "batches"]) => upload(call, id),
        (_, [_, "batches"]) => Err(call.method_not_allowed("PUT")),
        (&Method::GET, [id, "successfulResults"]) => results(call, id, Kind::Successful),
        (&Method::GET, [id, "failedResults"]) => results(call, id, Kind::Failed),
        (&Method::GET, [id, "unprocessedrecords"]) => results(call, id, Kind::Unprocessed),
        _ => Err(ApiError::not_found()),
    }
}

/// `POST /jobs/ingest` (FACTS B1).
fn create(call: &Call<'_>) -> Result<Response, ApiError> {
    let body = object_body(call)?;
    let text = |key: &str| body.get(key).and_then(Value::as_str);
    let object_name = text("object").unwrap_or_default();
    let entity = || {
        ApiError::bad_request(
            code::INVALIDENTITY,
            format!("Entity '{object_name}' is not supported by the Bulk API."),
        )
    };
    let store = lock(&call.shared.store);
    let key = visible(call.shared, &store, object_name).map_err(|_| entity())?;
    let def = store.def(key);
    let operation_text = text("operation").unwrap_or_default();
    let operation = Operation::parse(operation_text)
        .ok_or_else(|| invalid_job(format!("InvalidJob : Invalid operation: {operation_text}")))?;
    if let Some(content) = text("contentType").filter(|c| *c != "CSV") {
        return Err(invalid_job(format!(
            "The only content type supported is CSV, not {content}"
        )));
    }
    let line_ending = match text("lineEnding").unwrap_or("LF") {
        "LF" => "LF",
        "CRLF" => "CRLF",
        other => {
            return Err(invalid_job(format!(
                "InvalidJob : Invalid lineEnding: {other}"
            )));
        }
    };
    let delimiter_name = text("columnDelimiter").unwrap_or("COMMA");
    let delimiter = DELIMITERS
        .iter()
        .find(|(name, _)| *name == delimiter_name)
        .copied()
        .ok_or_else(|| {
            invalid_job(format!(
                "InvalidJob : Invalid columnDelimiter: {delimiter_name}"
            ))
        })?;
    let external_id = match (operation, text("externalIdFieldName")) {
        (Operation::Upsert, None) => {
            return Err(invalid_job("InvalidJob : External ID was blank for upsert".to_owned()));
        }
        (Operation::Upsert, Some(name)) => Some(
            def.field(name)
                .filter(|f| f.is_indexed())
                .map(|f| f.name.clone())
                .ok_or_else(|| {
                    invalid_job(format!("InvalidJob : Field name provided, {name} is not an External ID or indexed field for {}", def.name))
                })?,
        ),
        (_, _) => None,
    };
    let object = def.name.clone();
    let creator = store.user_id.clone();
    drop(store);
    let mut jobs = lock(&call.shared.jobs);
    let id = jobs.next_id();
    let now = Utc::now();
    let job = Job {
        id: id.clone(),
        object,
        key,
        operation,
        external_id,
        line_ending,
        delimiter,
        state: State::Open,
        created: now,
        modified: now,
        version: call.version.clone(),
        creator,
        data: None,
        header: Vec::new(),
        successes: Vec::new(),
        failures: Vec::new(),
        unprocessed: Vec::new(),
        error_message: None,
        processing_ms: 0,
    };
    let body = job.info(false);
    jobs.all.insert(id, job);
    Ok(respond::ok(&body))
}

/// `GET /jobs/ingest`: every job, oldest first.
fn list(call: &Call<'_>) -> Result<Response, ApiError> {
    let jobs = lock(&call.shared.jobs);
    let records: Vec<Value> = jobs.all.values().map(|j| j.info(false)).collect();
    Ok(respond::ok(
        &json!({"done": true, "records": records, "nextRecordsUrl": null}),
    ))
}

/// `GET /jobs/ingest/{id}` (FACTS B3).
fn info(call: &Call<'_>, id: &str) -> Result<Response, ApiError> {
    let jobs = lock(&call.shared.jobs);
    let job = jobs.all.get(id).ok_or_else(ApiError::not_found)?;
    Ok(respond::ok(&job.info(true)))
}

/// `PUT /jobs/ingest/{id}/batches` (FACTS B2): 201, once, while the job is Open.
fn upload(call: &Call<'_>, id: &str) -> Result<Response, ApiError> {
    let mut jobs = lock(&call.shared.jobs);
    let job = jobs.all.get_mut(id).ok_or_else(ApiError::not_found)?;
    if job.state != State::Open {
        return Err(invalid_state(format!(
            "Job {id} is {}: data can be uploaded only to an Open job",
            job.state.as_str()
        )));
    }
    if job.data.is_some() {
        return Err(ApiError::bad_request(
            code::BULK_API_ERROR,
            format!(
                "Found multiple contents for job: <{id}>, please 'Close' / 'Abort' / 'Delete' the current Job then create a new Job and make sure you only do 'PUT' once on a given Job."
            ),
        ));
    }
    job.data = Some(call.body.to_vec());
    job.modified = Utc::now();
    Ok(respond::empty(StatusCode::CREATED))
}

/// `PATCH /jobs/ingest/{id}` `{"state":"UploadComplete"|"Aborted"}` (FACTS B3).
fn change_state(call: &Call<'_>, id: &str) -> Result<Response, ApiError> {
    let body = object_body(call)?;
    let wanted = body
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut jobs = lock(&call.shared.jobs);
    let job = jobs.all.get_mut(id).ok_or_else(ApiError::not_found)?;
    let allowed = match wanted {
        "UploadComplete" => job.state == State::Open,
        "Aborted" => !job.state.is_terminal(),
        other => return Err(invalid_job(format!("InvalidJob : Invalid state: {other}"))),
    };
    if !allowed {
        return Err(invalid_state(format!(
            "Job {id} is {}: it cannot become {wanted}",
            job.state.as_str()
        )));
    }
    job.modified = Utc::now();
    if wanted == "Aborted" {
        job.state = State::Aborted;
        if job.successes.is_empty() && job.failures.is_empty() {
            let (header, rows) =
                process::unprocessed(job.data.as_deref().unwrap_or_default(), job.delimiter.1);
            job.header = header;
            job.unprocessed = rows;
        }
    } else {
        job.state = State::UploadComplete;
        tokio::spawn(process::run(call.shared.clone(), id.to_owned()));
    }
    Ok(respond::ok(&job.info(false)))
}

/// `DELETE /jobs/ingest/{id}`: 204 for a job in UploadComplete or a terminal state.
fn delete(call: &Call<'_>, id: &str) -> Result<Response, ApiError> {
    let mut jobs = lock(&call.shared.jobs);
    let job = jobs.all.get(id).ok_or_else(ApiError::not_found)?;
    if !(job.state.is_terminal() || job.state == State::UploadComplete) {
        return Err(invalid_state(format!(
            "Job {id} is {}: close or abort it before deleting it",
            job.state.as_str()
        )));
    }
    jobs.all.remove(id);
    Ok(respond::no_content())
}

enum Kind {
    Successful,
    Failed,
    Unprocessed,
}

/// The result files (FACTS B4): what is known so far (empty until the job is processed).
fn results(call: &Call<'_>, id: &str, kind: Kind) -> Result<Response, ApiError> {
    let jobs = lock(&call.shared.jobs);
    let job = jobs.all.get(id).ok_or_else(ApiError::not_found)?;
    let (first, rows): (&[&str], &[Vec<String>]) = match kind {
        Kind::Successful => (&["sf__Id", "sf__Created"], &job.successes),
        Kind::Failed => (&["sf__Id", "sf__Error"], &job.failures),
        Kind::Unprocessed => (&[], &job.unprocessed),
    };
    let header = if job.header.is_empty() {
        process::unprocessed(job.data.as_deref().unwrap_or_default(), job.delimiter.1).0
    } else {
        job.header.clone()
    };
    Ok(respond::csv(result_csv(first, &header, rows)))
}
