//! `GET /query?q=…` and `/queryAll`, and the next pages at `nextRecordsUrl` (FACTS Q1, L4).
//!
//! A page holds at most 2,000 records, or the `batchSize` of `Sforce-Query-Options` (200 to
//! 2,000); when more remain the answer has `done:false` and `nextRecordsUrl`
//! `/services/data/vXX.X/query/<locator>-<offset>`. The result is taken when the query runs,
//! so later pages do not change with later writes. The sandbox keeps no deleted records, so
//! `queryAll` answers as `query` does.

use axum::http::Method;
use axum::response::Response;
use serde_json::json;

use super::Call;
use crate::errors::{ApiError, code};
use crate::respond;
use crate::soql::{eval, parse};
use crate::state::lock;

/// Records per page by default and at most (FACTS L4).
const MAX_BATCH: usize = 2_000;
/// The smallest `batchSize` honoured (FACTS L4).
const MIN_BATCH: usize = 200;

/// The page size a request asks for through `Sforce-Query-Options: batchSize=N`.
fn batch_size(call: &Call<'_>) -> usize {
    call.headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("batchSize"))
                .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        })
        .map_or(MAX_BATCH, |n| n.clamp(MIN_BATCH, MAX_BATCH))
}

/// One page of a result, with `nextRecordsUrl` when more remain.
fn page(
    call: &Call<'_>,
    locator: Option<&str>,
    records: &[serde_json::Value],
    offset: usize,
    batch: usize,
) -> Response {
    let end = (offset + batch).min(records.len());
    let mut body = json!({
        "totalSize": records.len(),
        "done": end >= records.len(),
        "records": records.get(offset..end).unwrap_or_default(),
    });
    if let Some(locator) = locator.filter(|_| end < records.len()) {
        body["nextRecordsUrl"] = json!(format!(
            "/services/data/v{}/query/{locator}-{end}",
            call.version
        ));
    }
    respond::ok(&body)
}

/// `GET /query?q=…`.
pub(super) fn query(call: &Call<'_>) -> Result<Response, ApiError> {
    if call.method != Method::GET {
        return Err(call.method_not_allowed("HEAD,GET"));
    }
    let text = call.param("q").unwrap_or_default().to_owned();
    if text.trim().is_empty() {
        return Err(ApiError::bad_request(
            code::MALFORMED_QUERY,
            "A query string has to be specified",
        ));
    }
    let parsed = parse::parse(&text)
        .map_err(|e| eval::located(&text, e.pos, code::MALFORMED_QUERY, &e.message))?;
    let faults = lock(&call.shared.faults).clone();
    let answer = {
        let store = lock(&call.shared.store);
        eval::run(
            &store,
            &text,
            &parsed,
            |name| faults.hides(name),
            &call.version,
        )?
    };
    if matches!(parsed.select, parse::Select::Count) {
        return Ok(respond::ok(
            &json!({"totalSize": answer.total, "done": true, "records": []}),
        ));
    }
    let batch = batch_size(call);
    if answer.records.len() <= batch {
        return Ok(page(call, None, &answer.records, 0, batch));
    }
    let locator = lock(&call.shared.cursors).open(answer.records, batch);
    let cursors = lock(&call.shared.cursors);
    let cursor = cursors.get(&locator).ok_or_else(ApiError::not_found)?;
    Ok(page(call, Some(&locator), &cursor.records, 0, cursor.batch))
}

/// `GET /query/{locator}-{offset}`: the next page.
pub(super) fn more(call: &Call<'_>, next: &str) -> Result<Response, ApiError> {
    if call.method != Method::GET {
        return Err(call.method_not_allowed("HEAD,GET"));
    }
    let invalid = || ApiError::bad_request(code::INVALID_QUERY_LOCATOR, "invalid query locator");
    let (locator, offset) = next.rsplit_once('-').ok_or_else(invalid)?;
    let offset: usize = offset.parse().map_err(|_| invalid())?;
    let cursors = lock(&call.shared.cursors);
    let cursor = cursors.get(locator).ok_or_else(invalid)?;
    if offset > cursor.records.len() {
        return Err(invalid());
    }
    Ok(page(
        call,
        Some(locator),
        &cursor.records,
        offset,
        cursor.batch,
    ))
}
