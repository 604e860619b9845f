//! Bulk API 2.0 ingest jobs (FACTS B1–B5, L5): their settings, their state machine, and the
//! rows of their results.
//!
//! A job is `Open` until the client closes it (`UploadComplete`) or aborts it (`Aborted`).
//! After `UploadComplete` a worker ([`process`]) waits `bulk_processing_ms`, moves the job to
//! `InProgress`, waits again, then writes the rows and ends in `JobComplete` (or `Failed`
//! when the file itself is unusable: an unknown column, a line ending that does not match
//! `lineEnding`, broken CSV). So a client must poll `GET /jobs/ingest/{id}` and back off.

pub(crate) mod process;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::store::{ObjectKey, format_datetime};

/// A job's state (FACTS B3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Open,
    UploadComplete,
    InProgress,
    JobComplete,
    Failed,
    Aborted,
}

impl State {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Open => "Open",
            State::UploadComplete => "UploadComplete",
            State::InProgress => "InProgress",
            State::JobComplete => "JobComplete",
            State::Failed => "Failed",
            State::Aborted => "Aborted",
        }
    }

    /// Whether the job will not change any more.
    pub(crate) fn is_terminal(self) -> bool {
        matches!(self, State::JobComplete | State::Failed | State::Aborted)
    }
}

/// A job's operation (FACTS B1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    Insert,
    Update,
    Upsert,
    Delete,
    HardDelete,
}

impl Operation {
    pub(crate) fn parse(text: &str) -> Option<Operation> {
        Some(match text {
            "insert" => Operation::Insert,
            "update" => Operation::Update,
            "upsert" => Operation::Upsert,
            "delete" => Operation::Delete,
            "hardDelete" => Operation::HardDelete,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Upsert => "upsert",
            Operation::Delete => "delete",
            Operation::HardDelete => "hardDelete",
        }
    }
}

/// The column delimiters of FACTS B1, by name.
pub(crate) const DELIMITERS: [(&str, u8); 6] = [
    ("COMMA", b','),
    ("TAB", b'\t'),
    ("PIPE", b'|'),
    ("SEMICOLON", b';'),
    ("CARET", b'^'),
    ("BACKQUOTE", b'`'),
];

/// One ingest job.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) object: String,
    pub(crate) key: ObjectKey,
    pub(crate) operation: Operation,
    pub(crate) external_id: Option<String>,
    pub(crate) line_ending: &'static str,
    pub(crate) delimiter: (&'static str, u8),
    pub(crate) state: State,
    pub(crate) created: DateTime<Utc>,
    pub(crate) modified: DateTime<Utc>,
    pub(crate) version: String,
    pub(crate) creator: String,
    /// The uploaded CSV (one upload per job).
    pub(crate) data: Option<Vec<u8>>,
    /// The uploaded header, for the result files.
    pub(crate) header: Vec<String>,
    /// `sf__Id`, `sf__Created` and the row as uploaded.
    pub(crate) successes: Vec<Vec<String>>,
    /// `sf__Id`, `sf__Error` and the row as uploaded.
    pub(crate) failures: Vec<Vec<String>>,
    /// Rows never processed (aborted or failed jobs).
    pub(crate) unprocessed: Vec<Vec<String>>,
    pub(crate) error_message: Option<String>,
    pub(crate) processing_ms: u64,
}

impl Job {
    /// The JobInfo answer (FACTS B1, B3); `counts` adds the processing fields of `GET`.
    pub(crate) fn info(&self, counts: bool) -> Value {
        let mut body = json!({
            "id": self.id,
            "operation": self.operation.as_str(),
            "object": self.object,
            "createdById": self.creator,
            "createdDate": format_datetime(self.created),
            "systemModstamp": format_datetime(self.modified),
            "state": self.state.as_str(),
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": self.version.parse::<f64>().unwrap_or(0.0),
            "contentUrl": format!("services/data/v{}/jobs/ingest/{}/batches", self.version, self.id),
            "lineEnding": self.line_ending,
            "columnDelimiter": self.delimiter.0,
            "jobType": "V2Ingest",
        });
        if let Some(field) = &self.external_id {
            body["externalIdFieldName"] = json!(field);
        }
        if counts {
            body["retries"] = json!(0);
            body["totalProcessingTime"] = json!(self.processing_ms);
            body["apiActiveProcessingTime"] = json!(self.processing_ms);
            body["apexProcessingTime"] = json!(0);
            body["numberRecordsProcessed"] = json!(self.successes.len() + self.failures.len());
            body["numberRecordsFailed"] = json!(self.failures.len());
            body["errorMessage"] = json!(self.error_message);
        }
        body
    }
}

/// Every job, by id.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    pub(crate) all: BTreeMap<String, Job>,
    pub(crate) next: u64,
}

impl Jobs {
    /// The id of the next job: `750…` (FACTS I3).
    pub(crate) fn next_id(&mut self) -> String {
        self.next += 1;
        crate::ids::make("750", self.next)
    }
}
