//! Processing an ingest job's CSV: parsing (the `csv` crate, the job's delimiter), checking
//! the header and line ending, then writing each row through the same rules as the REST API
//! and recording its result (FACTS B2, B4, B5).
//!
//! Per-row errors are the REST save errors plus the CSV decode errors
//! (`INVALID_TYPE_ON_FIELD_IN_RECORD`); the `sf__Error` cell is `CODE:message:fields --`.
//! File-level problems fail the job with Salesforce's `errorMessage` forms: "InvalidBatch :
//! Field name not found : X" and "ClientInputError : LineEnding is invalid on user data.
//! Current LineEnding setting is LF". Results are shuffled (FACTS B4: no order guarantee),
//! with a generator seeded by the job's number so a run repeats.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Operation, State};
use crate::errors::{RecordError, code};
use crate::ids;
use crate::state::{Shared, lock};
use crate::store::{ObjectKey, Store};
#[cfg(test)]
use crate::write::Entry;
use crate::write::{self, Draft, Mode};
use chrono::Utc;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Rows written per hold of the store's lock.
const CHUNK: usize = 2_000;

/// Parses a job's CSV: header and rows, or the job's `errorMessage`.
pub(crate) fn parse(
    data: &[u8],
    delimiter: u8,
    line_ending: &str,
) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let crlf = data.windows(2).position(|w| w == b"\r\n");
    let lf = data.iter().position(|b| *b == b'\n');
    let uses_crlf = matches!((crlf, lf), (Some(c), Some(l)) if c + 1 == l);
    if lf.is_some() && uses_crlf != (line_ending == "CRLF") {
        return Err(format!(
            "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is {line_ending}"
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(data);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| format!("InvalidBatch : Failed to parse CSV header: {e}"))?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("InvalidBatch : Failed to parse CSV: {e}"))?;
        rows.push(record.iter().map(str::to_owned).collect());
    }
    Ok((header, rows))
}

/// Checks the header against the object: the job's `errorMessage` for the first unknown
/// column.
fn check_header(store: &Store, key: ObjectKey, header: &[String]) -> Result<(), String> {
    let def = store.def(key);
    for column in header {
        let known = match column.split_once('.') {
            Some((relationship, _)) => def.relationship(relationship).is_some(),
            None => def.field(column).is_some(),
        };
        if !known {
            return Err(format!("InvalidBatch : Field name not found : {column}"));
        }
    }
    Ok(())
}

/// The outcome of one row: the id and whether it was created, or the error (with the id
/// when one was named).
type RowResult = Result<(String, bool), (String, RecordError)>;

/// Writes one row.
fn write_row(
    store: &mut Store,
    key: ObjectKey,
    operation: Operation,
    external_id: Option<&str>,
    header: &[String],
    row: &[String],
) -> RowResult {
    let mut draft = Draft::default();
    let mut id_cell = None;
    for (column, cell) in header.iter().zip(row) {
        if column.eq_ignore_ascii_case("Id") {
            id_cell = Some(cell.clone()).filter(|c| !c.is_empty());
            continue;
        }
        match write::decode_cell(store, key, column, cell) {
            Ok(Some(entry)) => draft.entries.push(entry),
            Ok(None) => {}
            Err(error) => return Err((String::new(), error)),
        }
    }
    let now = Utc::now();
    let existing = |store: &Store, raw: &str| -> Result<String, (String, RecordError)> {
        let id = ids::normalize(raw)
            .filter(|id| store.object_of_id(id) == Some(key))
            .ok_or_else(|| {
                (
                    raw.to_owned(),
                    RecordError::new(code::MALFORMED_ID, format!("malformed id {raw}")),
                )
            })?;
        if store.table(key).get(&id).is_some() {
            Ok(id)
        } else if store.table(key).was_deleted(&id) {
            Err((
                id,
                RecordError::new(code::ENTITY_IS_DELETED, "entity is deleted"),
            ))
        } else {
            Err((
                id,
                RecordError::new(
                    code::INVALID_CROSS_REFERENCE_KEY,
                    "invalid cross reference id",
                ),
            ))
        }
    };
    let missing_id = || {
        (
            String::new(),
            RecordError::new(code::MISSING_ARGUMENT, "Id not specified in an update call"),
        )
    };
    match operation {
        Operation::Insert => {
            let values =
                write::check(store, key, draft, Mode::Create).map_err(|e| (String::new(), e))?;
            Ok((store.insert(key, write::into_map(values), now, None), true))
        }
        Operation::Update => {
            let id = existing(store, &id_cell.ok_or_else(missing_id)?)?;
            update(store, key, &id, draft)
        }
        Operation::Delete | Operation::HardDelete => {
            let id = existing(store, &id_cell.ok_or_else(missing_id)?)?;
            store.delete(key, &id, None);
            Ok((id, false))
        }
        Operation::Upsert => {
            let field = external_id.unwrap_or("Id");
            if field.eq_ignore_ascii_case("Id") {
                return match id_cell {
                    Some(raw) => {
                        let id = existing(store, &raw)?;
                        update(store, key, &id, draft)
                    }
                    None => {
                        let values = write::check(store, key, draft, Mode::Create)
                            .map_err(|e| (String::new(), e))?;
                        Ok((store.insert(key, write::into_map(values), now, None), true))
                    }
                };
            }
            let Some(value) = draft.get(field).filter(|v| !v.is_null()).cloned() else {
                return Err((
                    String::new(),
                    RecordError::new(code::MISSING_ARGUMENT, format!("{field} not specified"))
                        .on(&[field]),
                ));
            };
            let matches: Vec<String> = store
                .table(key)
                .lookup(field, &value)
                .iter()
                .map(|r| r.id.clone())
                .collect();
            match matches.as_slice() {
                [] => {
                    let values = write::check(store, key, draft, Mode::Create)
                        .map_err(|e| (String::new(), e))?;
                    Ok((store.insert(key, write::into_map(values), now, None), true))
                }
                [id] => {
                    draft.take(field);
                    update(store, key, id, draft)
                }
                many => Err((
                    String::new(),
                    RecordError::new(
                        code::DUPLICATE_EXTERNAL_ID,
                        format!(
                            "{field}: more than one record found for external id field: [{}]",
                            many.join(", ")
                        ),
                    ),
                )),
            }
        }
    }
}

fn update(store: &mut Store, key: ObjectKey, id: &str, draft: Draft) -> RowResult {
    let record = store.table(key).get(id).cloned().ok_or_else(|| {
        (
            id.to_owned(),
            RecordError::new(code::ENTITY_IS_DELETED, "entity is deleted"),
        )
    })?;
    let changes =
        write::check(store, key, draft, Mode::Update(&record)).map_err(|e| (id.to_owned(), e))?;
    store.update(key, id, changes, Utc::now(), None);
    Ok((id.to_owned(), false))
}

/// Sets a job's state (when it still exists and is not aborted).
fn advance(shared: &Shared, id: &str, from: State, to: State) -> bool {
    let mut jobs = lock(&shared.jobs);
    match jobs.all.get_mut(id) {
        Some(job) if job.state == from => {
            job.state = to;
            job.modified = Utc::now();
            true
        }
        _ => false,
    }
}

/// The worker of one closed job: wait, `InProgress`, wait, write the rows, `JobComplete` (or
/// `Failed`). Stops early when the job is aborted or deleted, or the server stops.
pub(crate) async fn run(shared: Arc<Shared>, id: String) {
    let started = Instant::now();
    let pause = Duration::from_millis(*lock(&shared.bulk_processing_ms));
    tokio::time::sleep(pause).await;
    if shared.is_stopped() || !advance(&shared, &id, State::UploadComplete, State::InProgress) {
        return;
    }
    tokio::time::sleep(pause).await;
    let setup = {
        let jobs = lock(&shared.jobs);
        jobs.all
            .get(&id)
            .filter(|j| j.state == State::InProgress)
            .map(|job| {
                (
                    job.key,
                    job.operation,
                    job.external_id.clone(),
                    job.line_ending,
                    job.delimiter.1,
                    job.data.clone().unwrap_or_default(),
                )
            })
    };
    let Some((key, operation, external_id, line_ending, delimiter, data)) = setup else {
        return;
    };
    let parsed = parse(&data, delimiter, line_ending).and_then(|(header, rows)| {
        check_header(&lock(&shared.store), key, &header).map(|()| (header, rows))
    });
    let (header, rows) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => {
            let mut jobs = lock(&shared.jobs);
            if let Some(job) = jobs.all.get_mut(&id) {
                job.state = State::Failed;
                job.error_message = Some(message);
                job.modified = Utc::now();
            }
            return;
        }
    };
    let mut successes = Vec::new();
    let mut failures = Vec::new();
    for chunk in rows.chunks(CHUNK) {
        {
            let mut store = lock(&shared.store);
            for row in chunk {
                match write_row(
                    &mut store,
                    key,
                    operation,
                    external_id.as_deref(),
                    &header,
                    row,
                ) {
                    Ok((record_id, created)) => {
                        let mut line = vec![record_id, created.to_string()];
                        line.extend(row.iter().cloned());
                        successes.push(line);
                    }
                    Err((record_id, error)) => {
                        let mut line = vec![record_id, error.to_bulk_cell()];
                        line.extend(row.iter().cloned());
                        failures.push(line);
                    }
                }
            }
        }
        tokio::task::yield_now().await;
    }
    let mut rng = StdRng::seed_from_u64(
        id.bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))),
    );
    successes.shuffle(&mut rng);
    failures.shuffle(&mut rng);
    let mut jobs = lock(&shared.jobs);
    if let Some(job) = jobs.all.get_mut(&id) {
        job.header = header;
        job.successes = successes;
        job.failures = failures;
        job.state = State::JobComplete;
        job.modified = Utc::now();
        job.processing_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    }
}

/// A result file: the given columns, then the job's header, all values quoted.
pub(crate) fn result_csv(first: &[&str], header: &[String], rows: &[Vec<String>]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(Vec::new());
    let mut head: Vec<&str> = first.to_vec();
    head.extend(header.iter().map(String::as_str));
    let _ = writer.write_record(&head);
    for row in rows {
        let _ = writer.write_record(row);
    }
    writer.into_inner().unwrap_or_default()
}

/// A job's summary for logs and the `unprocessedrecords` file: the header and rows of a CSV
/// that was never processed.
pub(crate) fn unprocessed(data: &[u8], delimiter: u8) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(data);
    let header = reader
        .headers()
        .map(|h| h.iter().map(str::to_owned).collect())
        .unwrap_or_default();
    let rows = reader
        .records()
        .filter_map(Result::ok)
        .map(|r| r.iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// Whether an entry names `field` (for tests of the decode path).
#[cfg(test)]
fn names(entry: &Entry, field: &str) -> bool {
    matches!(entry, Entry::Set(name, _) if name == field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_parses_with_quotes_and_checks_line_endings() {
        let data = b"LastName,Description\n\"O'Brien, Jr.\",\"says \"\"hi\"\"\nthere\"\nSmith,\n";
        let (header, rows) = parse(data, b',', "LF").unwrap_or_default();
        assert_eq!(header, ["LastName", "Description"]);
        assert_eq!(rows[0], ["O'Brien, Jr.", "says \"hi\"\nthere"]);
        assert_eq!(rows[1], ["Smith", ""]);
        let crlf = parse(b"LastName\r\nSmith\r\n", b',', "LF")
            .err()
            .unwrap_or_default();
        assert!(
            crlf.starts_with("ClientInputError : LineEnding is invalid"),
            "{crlf}"
        );
        assert!(parse(b"LastName\r\nSmith\r\n", b',', "CRLF").is_ok());
        assert!(parse(b"a,b\n1,2,3\n", b',', "LF").is_err());
    }

    #[test]
    fn rows_write_through_the_rest_rules() {
        let mut store = Store::new("u@example.com");
        let key = store.object("Contact").unwrap_or_default();
        let header = vec!["LastName".to_owned(), "Email".to_owned()];
        let ok = write_row(
            &mut store,
            key,
            Operation::Insert,
            None,
            &header,
            &["Smith".into(), "s@x.com".into()],
        );
        assert!(matches!(ok, Ok((_, true))));
        let bad = write_row(
            &mut store,
            key,
            Operation::Insert,
            None,
            &header,
            &[String::new(), "s@x.com".into()],
        );
        assert_eq!(
            bad.err().map(|(_, e)| e.code),
            Some(code::REQUIRED_FIELD_MISSING)
        );
        let entry = write::decode_cell(&store, key, "Email", "a@b.co")
            .ok()
            .flatten();
        assert!(entry.is_some_and(|e| names(&e, "Email")));
        let csv = result_csv(
            &["sf__Id", "sf__Created"],
            &header,
            &[vec![
                "003".into(),
                "true".into(),
                "Smith".into(),
                "s@x.com".into(),
            ]],
        );
        assert_eq!(
            String::from_utf8_lossy(&csv),
            "\"sf__Id\",\"sf__Created\",\"LastName\",\"Email\"\n\"003\",\"true\",\"Smith\",\"s@x.com\"\n"
        );
    }
}
