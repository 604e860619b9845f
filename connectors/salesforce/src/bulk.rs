//! Bulk API 2.0 ingest (FACTS B1–B5, L5) for batches above the Bulk threshold: create a job,
//! upload one CSV, close it (`UploadComplete`), poll until a terminal state, then read the
//! successful, failed and unprocessed results back into one outcome per operation.
//!
//! How the engine drives it, so a crash never uploads a job twice:
//!
//! ```text
//!  create_bulk_job(ops) ─► job id (state Open, nothing uploaded) ─► engine journals the id
//!  resume_bulk(id, ops): Open ─► upload CSV ─► close ─► poll ─► results ─► BatchResult
//!                        UploadComplete / InProgress ─► poll ─► results
//!                        JobComplete / Failed / Aborted ─► results
//! ```
//!
//! [`SalesforceDestination::send_bulk`] is both in one call. After a crash the engine calls
//! `resume_bulk` with the journaled id and the same operations: an Open job is uploaded
//! (a second upload is refused by Salesforce, and then just closed), a running one polled.
//!
//! Results come back in no order (FACTS B4); each result row is matched to its operation by
//! the key column it echoes: the external id for upserts, `Id` for updates and deletes. An
//! insert has no key column Salesforce accepts, so its rows are matched on every cell sent:
//! two operations with identical cells are interchangeable (each gets one of the created
//! ids). Rows in no result file are retried. Polling backs off from 250 ms to 5 s; past the
//! destination's `bulk_timeout` the result is `RetryAll` naming the job, to be resumed.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use connector_core::{BatchResult, Operation, OperationKind, RowOutcome};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Body, RawResponse};
use crate::convert::csv_cell;
use crate::response::{self, ApiError, RecordError};
use crate::{SalesforceDestination, call_failed, passing_or_fatal};

/// The separator of the cells of an insert's match key (a control character no CSV cell of
/// ours holds unescaped).
const KEY_SEPARATOR: char = '\u{1f}';

/// A job's CSV: the header, and per operation its cells or its rejection.
pub(crate) struct JobFile {
    operation: &'static str,
    header: Vec<String>,
    /// Per operation: `Ok(cells)` to upload, `Err(message)` rejected before upload.
    rows: Vec<Result<Vec<String>, String>>,
    /// How many leading columns make the match key (0: every column).
    key_columns: usize,
}

impl JobFile {
    /// The CSV text (LF line endings, every cell quoted when needed).
    fn csv(&self) -> Vec<u8> {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        let _ = writer.write_record(&self.header);
        for cells in self.rows.iter().flatten() {
            let _ = writer.write_record(cells);
        }
        writer.into_inner().unwrap_or_default()
    }

    fn key_of(&self, cells: &[String]) -> String {
        let n = if self.key_columns == 0 {
            cells.len()
        } else {
            self.key_columns
        };
        let mut key = String::new();
        for cell in cells.iter().take(n) {
            key.push_str(cell);
            key.push(KEY_SEPARATOR);
        }
        key
    }
}

impl SalesforceDestination {
    /// Writes a batch of any size (all of one kind) through one Bulk API 2.0 job: create,
    /// upload, close, poll, results. For crash safety prefer [`Self::create_bulk_job`], then
    /// journal the id, then [`Self::resume_bulk`].
    pub async fn send_bulk(&self, operations: &[Operation]) -> BatchResult {
        if operations.is_empty() {
            return BatchResult::PerRow(Vec::new());
        }
        let job = match self.create_bulk_job(operations).await {
            Ok(job) => job,
            Err(result) => return result,
        };
        self.resume_bulk(&job, operations).await
    }

    /// Creates an ingest job for `operations` (state Open; nothing is uploaded, so a crash
    /// here writes nothing) and returns its id (`750…`), for the engine to journal.
    pub async fn create_bulk_job(&self, operations: &[Operation]) -> Result<String, BatchResult> {
        match self.create_job(operations).await {
            Ok(id) => Ok(id),
            Err(result) => Err(self.redact_result(result).await),
        }
    }

    async fn create_job(&self, operations: &[Operation]) -> Result<String, BatchResult> {
        if operations.is_empty() {
            return Err(BatchResult::PerRow(Vec::new()));
        }
        if let Some(diagnostic) = self.past_allocation_share() {
            return Err(BatchResult::Fatal(diagnostic));
        }
        let loaded = self.loaded().await.map_err(passing_or_fatal)?;
        let operation = bulk_operation(&operations[0].kind);
        let mut body = json!({
            "object": loaded.describe.name,
            "operation": operation,
            "contentType": "CSV",
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
        });
        if operation == "upsert" {
            body["externalIdFieldName"] =
                json!(self.config.external_id_field.as_deref().unwrap_or("Id"));
        }
        let answer = self
            .call_json(Method::POST, "/jobs/ingest", Some(&body))
            .await?;
        let id = json_field(&answer.body, "id");
        if answer.status != 200 || id.is_empty() {
            return Err(self.bulk_refused(operations.len(), &answer));
        }
        Ok(id)
    }

    /// Finishes the job `job_id` created for `operations` (the same operations, in the same
    /// order): uploads and closes it when still Open, polls it to a terminal state, and reads
    /// its results into one outcome per operation. Safe to call again after a crash.
    pub async fn resume_bulk(&self, job_id: &str, operations: &[Operation]) -> BatchResult {
        let result = self.finish_job(job_id, operations).await;
        self.redact_result(result).await
    }

    async fn finish_job(&self, job_id: &str, operations: &[Operation]) -> BatchResult {
        let loaded = match self.loaded().await {
            Ok(loaded) => loaded,
            Err(diagnostic) => return passing_or_fatal(diagnostic),
        };
        let file = match self.job_file(&loaded, operations).await {
            Ok(file) => file,
            Err(result) => return result,
        };
        let path = format!("/jobs/ingest/{job_id}");
        let mut info = match self.job_info(job_id).await {
            Ok(info) => info,
            Err(result) => return result,
        };
        if state_of(&info) == "Open" {
            if file.rows.iter().all(Result::is_err) {
                // Nothing to upload: abort the empty job and report the rejections.
                let _ = self
                    .call_json(Method::PATCH, &path, Some(&json!({"state": "Aborted"})))
                    .await;
                return BatchResult::PerRow(outcomes(&file, HashMap::new(), job_id));
            }
            let upload = self
                .client
                .call(
                    Method::PUT,
                    &self.client.data_path(&format!("{path}/batches")),
                    Body::Csv(file.csv()),
                )
                .await;
            match upload {
                Ok(answer) if (200..=299).contains(&answer.status) => {}
                // A second upload of a job that got one before a crash: close it as it is.
                Ok(answer)
                    if answer.status == 400 && response::summary(&answer).contains("multiple") => {}
                Ok(answer) => return self.bulk_refused(operations.len(), &answer),
                Err(error) => return call_failed(&self.config, error),
            }
            match self
                .call_json(
                    Method::PATCH,
                    &path,
                    Some(&json!({"state": "UploadComplete"})),
                )
                .await
            {
                Ok(answer) if answer.status == 200 => {}
                Ok(answer) => return self.bulk_refused(operations.len(), &answer),
                Err(result) => return result,
            }
        }
        // Poll with backoff until a terminal state (the one wait the protocol demands).
        let deadline = Instant::now() + self.config.bulk_timeout;
        let mut pause = Duration::from_millis(250);
        loop {
            let state = state_of(&info);
            if matches!(state.as_str(), "JobComplete" | "Failed" | "Aborted") {
                break;
            }
            if Instant::now() + pause > deadline {
                return BatchResult::RetryAll {
                    reason: format!(
                        "Bulk job {job_id} is still {state} after {} s; resume it by its id",
                        self.config.bulk_timeout.as_secs()
                    ),
                    after: None,
                };
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 3 / 2).min(Duration::from_secs(5));
            info = match self.job_info(job_id).await {
                Ok(info) => info,
                Err(result) => return result,
            };
        }
        let mut results: HashMap<usize, RowOutcome> = HashMap::new();
        let mut index = KeyIndex::new(&file);
        for which in ["successfulResults", "failedResults", "unprocessedrecords"] {
            let answer = match self
                .client
                .call(
                    Method::GET,
                    &self.client.data_path(&format!("{path}/{which}/")),
                    Body::Empty,
                )
                .await
            {
                Ok(answer) if answer.status == 200 => answer,
                Ok(answer) => return self.bulk_refused(operations.len(), &answer),
                Err(error) => return call_failed(&self.config, error),
            };
            read_results(
                which,
                &answer.body,
                &file,
                &mut index,
                &mut results,
                operations,
            );
        }
        let job_error = json_text(&info, "errorMessage");
        if state_of(&info) == "Failed" && !job_error.is_empty() {
            // Rows the job never reached fail with the job's message.
            for (i, row) in file.rows.iter().enumerate() {
                if row.is_ok() && !results.contains_key(&i) {
                    results.insert(
                        i,
                        RowOutcome::Rejected {
                            message: format!("Bulk job {job_id} failed: {job_error}"),
                        },
                    );
                }
            }
        }
        BatchResult::PerRow(outcomes(&file, results, job_id))
    }

    /// Builds the job's CSV from the operations (values converted as for Collections).
    async fn job_file(
        &self,
        loaded: &crate::Loaded,
        operations: &[Operation],
    ) -> Result<JobFile, BatchResult> {
        let kind = operations[0].kind.clone();
        let operation = bulk_operation(&kind);
        let ext = self
            .config
            .external_id_field
            .clone()
            .unwrap_or_else(|| "Id".into());
        let (key_column, key_columns) = match operation {
            "upsert" => (Some(ext.clone()), 1),
            "update" | "delete" => (Some("Id".to_string()), 1),
            _ => (None, 0),
        };
        let matched = if kind == OperationKind::UpdateMatched {
            self.ids_by_match_value(operations).await?
        } else {
            Vec::new()
        };
        let mut header: Vec<String> = key_column.iter().cloned().collect();
        if operation != "delete" {
            for op in operations {
                for (name, _) in &op.properties {
                    if !header.contains(name) {
                        header.push(name.clone());
                    }
                }
            }
        }
        let creating = operation == "insert";
        let mut rows = Vec::with_capacity(operations.len());
        for (i, op) in operations.iter().enumerate() {
            let key = match operation {
                "upsert" => op
                    .match_value
                    .clone()
                    .ok_or_else(|| "the row has no external-id value to upsert on".to_string()),
                "update" | "delete" if kind == OperationKind::UpdateMatched => matched[i].clone(),
                "update" | "delete" => op
                    .destination_id
                    .as_deref()
                    .ok_or_else(|| "the row has no Salesforce record id".to_string())
                    .and_then(crate::ids::parse_id)
                    .map(|id| id.to_string()),
                _ => Ok(String::new()),
            };
            let row = key.and_then(|key| {
                let body = if operation == "delete" {
                    serde_json::Map::new()
                } else {
                    crate::collections::record_body(&loaded.describe.name, loaded, op, creating)?
                };
                Ok(header
                    .iter()
                    .enumerate()
                    .map(|(column, name)| {
                        if column == 0 && key_columns == 1 {
                            return key.clone();
                        }
                        match body.get(name) {
                            Some(value) if creating && value.is_null() => String::new(),
                            Some(value) => csv_cell(value),
                            None => String::new(),
                        }
                    })
                    .collect())
            });
            rows.push(row);
        }
        Ok(JobFile {
            operation,
            header,
            rows,
            key_columns,
        })
    }

    async fn job_info(&self, job_id: &str) -> Result<Value, BatchResult> {
        let answer = self
            .call_json(Method::GET, &format!("/jobs/ingest/{job_id}"), None)
            .await?;
        if answer.status != 200 {
            return Err(self.bulk_refused(0, &answer));
        }
        serde_json::from_slice(&answer.body).map_err(|_| BatchResult::RetryAll {
            reason: format!("Salesforce's answer about Bulk job {job_id} could not be read"),
            after: None,
        })
    }

    async fn call_json(
        &self,
        method: Method,
        rest: &str,
        body: Option<&Value>,
    ) -> Result<RawResponse, BatchResult> {
        let body = match body {
            Some(value) => Body::Json(serde_json::to_vec(value).unwrap_or_default()),
            None => Body::Empty,
        };
        self.client
            .call(method, &self.client.data_path(rest), body)
            .await
            .map_err(|error| call_failed(&self.config, error))
    }

    fn bulk_refused(&self, count: usize, answer: &RawResponse) -> BatchResult {
        if answer.status == 400 || answer.status == 409 {
            // INVALIDJOB / INVALIDENTITY / INVALIDJOBSTATE: the job cannot go on.
            let errors = response::errors_of(&answer.body);
            if errors.first().is_some_and(|e| e.code == "INVALIDENTITY") {
                return BatchResult::Fatal(response::no_access(
                    &self.config.object,
                    &response::summary(answer),
                ));
            }
            return BatchResult::Fatal(
                connector_core::Diagnostic::error(
                    "salesforce::bulk",
                    "Salesforce refused the Bulk API job",
                )
                .note(response::summary(answer))
                .hint("check the sync's object and external-id field, or lower the Bulk threshold's batches to Collections"),
            );
        }
        response::refused_batch(&self.config.object, count, answer)
    }
}

/// The Bulk operation of an operation kind.
fn bulk_operation(kind: &OperationKind) -> &'static str {
    match kind {
        OperationKind::Create => "insert",
        OperationKind::Upsert => "upsert",
        OperationKind::Update | OperationKind::Clear | OperationKind::UpdateMatched => "update",
        OperationKind::Archive => "delete",
    }
}

/// Operation indices by match key, each consumed once.
struct KeyIndex(HashMap<String, VecDeque<usize>>);

impl KeyIndex {
    fn new(file: &JobFile) -> Self {
        let mut map: HashMap<String, VecDeque<usize>> = HashMap::new();
        for (i, row) in file.rows.iter().enumerate() {
            if let Ok(cells) = row {
                map.entry(file.key_of(cells)).or_default().push_back(i);
            }
        }
        Self(map)
    }

    fn take(&mut self, key: &str) -> Option<usize> {
        self.0.get_mut(key).and_then(VecDeque::pop_front)
    }
}

/// Reads one result file into outcomes by operation index.
fn read_results(
    which: &str,
    body: &[u8],
    file: &JobFile,
    index: &mut KeyIndex,
    results: &mut HashMap<usize, RowOutcome>,
    operations: &[Operation],
) {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(body);
    let Ok(headers) = reader.headers().cloned() else {
        return;
    };
    let position = |name: &str| headers.iter().position(|h| h == name);
    let columns: Vec<Option<usize>> = file.header.iter().map(|h| position(h)).collect();
    let (id_at, created_at, error_at) = (
        position("sf__Id"),
        position("sf__Created"),
        position("sf__Error"),
    );
    for record in reader.records().flatten() {
        let cells: Vec<String> = columns
            .iter()
            .map(|at| {
                at.and_then(|at| record.get(at))
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        let Some(i) = index.take(&file.key_of(&cells)) else {
            continue;
        };
        let cell = |at: Option<usize>| at.and_then(|at| record.get(at)).unwrap_or_default();
        let outcome = match which {
            "successfulResults" => RowOutcome::Succeeded {
                destination_id: match cell(id_at) {
                    "" => operations[i].destination_id.clone().unwrap_or_default(),
                    id => id.to_string(),
                },
                created: file.operation == "insert"
                    || cell(created_at).eq_ignore_ascii_case("true"),
            },
            "failedResults" => failed_outcome(file.operation, cell(error_at), cell(id_at)),
            _ => RowOutcome::Retry {
                reason: "the Bulk job ended before it processed this row".into(),
                after: None,
            },
        };
        results.insert(i, outcome);
    }
}

/// A failed row's outcome from its `sf__Error` cell (`CODE:message:fields --`).
fn failed_outcome(operation: &str, error: &str, id: &str) -> RowOutcome {
    let (code, message) = error.split_once(':').unwrap_or(("", error));
    let api_error = ApiError {
        code: code.trim().to_string(),
        message: message.trim().trim_end_matches("--").trim().to_string(),
        fields: Vec::new(),
    };
    match response::record_error(std::slice::from_ref(&api_error), operation == "delete") {
        RecordError::Retry(reason) => RowOutcome::Retry {
            reason,
            after: None,
        },
        RecordError::AlreadyDeleted => RowOutcome::Succeeded {
            destination_id: id.to_string(),
            created: false,
        },
        RecordError::Reject(message) | RecordError::Duplicate(message) => {
            RowOutcome::Rejected { message }
        }
    }
}

/// One outcome per operation: results found, rejections made before upload, and a retry for
/// rows in no result file.
fn outcomes(
    file: &JobFile,
    mut results: HashMap<usize, RowOutcome>,
    job_id: &str,
) -> Vec<RowOutcome> {
    file.rows
        .iter()
        .enumerate()
        .map(|(i, row)| match row {
            Err(message) => RowOutcome::Rejected {
                message: message.clone(),
            },
            Ok(_) => results.remove(&i).unwrap_or_else(|| RowOutcome::Retry {
                reason: format!("the row is in none of Bulk job {job_id}'s result files"),
                after: None,
            }),
        })
        .collect()
}

fn state_of(info: &Value) -> String {
    json_text(info, "state")
}

fn json_text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn json_field(body: &[u8], key: &str) -> String {
    serde_json::from_slice::<Value>(body)
        .map(|v| json_text(&v, key))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(operation: &'static str, key_columns: usize, rows: &[&[&str]]) -> JobFile {
        JobFile {
            operation,
            header: vec!["Send_Id__c".into(), "Name".into()],
            rows: rows
                .iter()
                .map(|r| Ok(r.iter().map(|c| c.to_string()).collect()))
                .collect(),
            key_columns,
        }
    }

    fn ops(n: usize) -> Vec<Operation> {
        (0..n)
            .map(|i| Operation {
                key: i.to_string(),
                kind: OperationKind::Upsert,
                destination_id: None,
                match_value: None,
                properties: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn shuffled_results_find_their_rows_by_key() {
        let file = file("upsert", 1, &[&["S-1", "a"], &["S-2", "b"], &["S-3", "c"]]);
        let mut index = KeyIndex::new(&file);
        let mut results = HashMap::new();
        let ok = "\"sf__Id\",\"sf__Created\",\"Send_Id__c\",\"Name\"\n\"a01\",\"false\",\"S-3\",\"c\"\n\"a00\",\"true\",\"S-1\",\"a\"\n";
        read_results(
            "successfulResults",
            ok.as_bytes(),
            &file,
            &mut index,
            &mut results,
            &ops(3),
        );
        let failed = "\"sf__Id\",\"sf__Error\",\"Send_Id__c\",\"Name\"\n\"\",\"STRING_TOO_LONG:Name: data value too large:Name --\",\"S-2\",\"b\"\n";
        read_results(
            "failedResults",
            failed.as_bytes(),
            &file,
            &mut index,
            &mut results,
            &ops(3),
        );
        let rows = outcomes(&file, results, "750x");
        assert_eq!(
            rows[0],
            RowOutcome::Succeeded {
                destination_id: "a00".into(),
                created: true
            }
        );
        assert!(
            matches!(&rows[1], RowOutcome::Rejected { message } if message.starts_with("STRING_TOO_LONG: Name: data value too large")),
            "{:?}",
            rows[1]
        );
        assert_eq!(
            rows[2],
            RowOutcome::Succeeded {
                destination_id: "a01".into(),
                created: false
            }
        );
    }

    #[test]
    fn inserts_match_on_every_cell_and_identical_rows_each_get_one_id() {
        let file = file("insert", 0, &[&["", "same"], &["", "same"], &["", "other"]]);
        let mut index = KeyIndex::new(&file);
        let mut results = HashMap::new();
        let ok =
            "sf__Id,sf__Created,Send_Id__c,Name\nid2,true,,other\nid0,true,,same\nid1,true,,same\n";
        read_results(
            "successfulResults",
            ok.as_bytes(),
            &file,
            &mut index,
            &mut results,
            &ops(3),
        );
        let rows = outcomes(&file, results, "750x");
        let ids: Vec<String> = rows
            .iter()
            .map(|r| match r {
                RowOutcome::Succeeded { destination_id, .. } => destination_id.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, ["id0", "id1", "id2"]);
    }

    #[test]
    fn rows_in_no_result_file_are_retried() {
        let file = file("upsert", 1, &[&["S-1", "a"]]);
        let rows = outcomes(&file, HashMap::new(), "750x");
        assert!(matches!(&rows[0], RowOutcome::Retry { reason, .. } if reason.contains("750x")));
        let csv = String::from_utf8(file.csv()).expect("utf-8");
        assert_eq!(csv, "Send_Id__c,Name\nS-1,a\n");
        assert!(matches!(
            failed_outcome("delete", "ENTITY_IS_DELETED:entity is deleted:--", "001"),
            RowOutcome::Succeeded { .. }
        ));
        assert!(matches!(
            failed_outcome(
                "update",
                "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access:--",
                ""
            ),
            RowOutcome::Retry { .. }
        ));
    }
}
