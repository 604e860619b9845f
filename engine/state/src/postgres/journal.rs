//! The apply journal in PostgreSQL, with the local backend's layout: a batch about to be sent
//! is one `sent_batches` row (its rows encoded by `batch_codec`); a batch whose rows were all
//! written stays that one row with their record ids; any other answer becomes one `journal`
//! row per row and the batch row goes, in the same transaction.

use std::path::PathBuf;

use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::worker::pg_error;
use crate::{ByKey, JournalRow, JournaledBatch, RowState, StateError};

/// Writes journal rows of a run (a row's later outcome replaces its earlier one).
pub(crate) async fn write_rows(
    client: &Client,
    schema: &str,
    run_id: i64,
    rows: &[JournalRow],
) -> Result<(), StateError> {
    if rows.is_empty() {
        return Ok(());
    }
    let statement = client
        .prepare(&format!(
            "INSERT INTO {schema}.journal (run_id, key, action, state, destination_id, message)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (run_id, key) DO UPDATE SET action = excluded.action,
                 state = excluded.state, destination_id = excluded.destination_id,
                 message = excluded.message"
        ))
        .await
        .map_err(pg_error)?;
    for row in rows {
        client
            .execute(
                &statement,
                &[
                    &run_id,
                    &row.key,
                    &row.action,
                    &row.state.as_str(),
                    &row.destination_id,
                    &row.message,
                ],
            )
            .await
            .map_err(pg_error)?;
    }
    Ok(())
}

/// Records one batch about to be sent.
pub(crate) async fn write_sent(
    client: &Client,
    schema: &str,
    run_id: i64,
    rows: &[(String, String)],
) -> Result<(), StateError> {
    let Some((first_key, _)) = rows.first() else {
        return Ok(());
    };
    let encoded = crate::batch_codec::encode_rows(rows);
    client
        .execute(
            &format!(
                "INSERT INTO {schema}.sent_batches (run_id, first_key, row_count, rows) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (run_id, first_key) DO UPDATE SET row_count = excluded.row_count,
                     rows = excluded.rows, written = NULL"
            ),
            &[&run_id, first_key, &(rows.len() as i64), &encoded],
        )
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// Records one batch's outcomes (see the module docs).
pub(crate) async fn write_outcomes(
    client: &Client,
    schema: &str,
    run_id: i64,
    rows: &[JournalRow],
) -> Result<(), StateError> {
    if let Some(first) = rows.first()
        && rows
            .iter()
            .all(|row| row.state == RowState::Succeeded && row.message.is_none())
    {
        let ids: Vec<Option<&str>> = rows
            .iter()
            .map(|row| row.destination_id.as_deref())
            .collect();
        let written = crate::batch_codec::encode_ids(&ids);
        let updated = client
            .execute(
                &format!(
                    "UPDATE {schema}.sent_batches SET written = $3
                     WHERE run_id = $1 AND first_key = $2 AND row_count = $4 AND written IS NULL"
                ),
                &[&run_id, &first.key, &written, &(rows.len() as i64)],
            )
            .await
            .map_err(pg_error)?;
        if updated == 1 {
            return Ok(());
        }
    }
    write_rows(client, schema, run_id, rows).await?;
    if let Some(first) = rows.first() {
        client
            .execute(
                &format!("DELETE FROM {schema}.sent_batches WHERE run_id = $1 AND first_key = $2"),
                &[&run_id, &first.key],
            )
            .await
            .map_err(pg_error)?;
    }
    Ok(())
}

/// The columns [`decode`] reads, in order.
pub(crate) const BATCH_COLUMNS: &str = "first_key, rows, written";

/// A stored batch row, parsed; one that does not parse is a damaged state.
pub(crate) fn decode(
    schema: &str,
    run_id: i64,
    row: &tokio_postgres::Row,
) -> Result<JournaledBatch, StateError> {
    let corrupt = |message: String| StateError::Corrupt {
        file: PathBuf::from(format!("{schema}.sent_batches")),
        message: format!("a batch in the journal of run {run_id} {message}"),
    };
    let first_key: String = row.get(0);
    let rows: String = row.get(1);
    let written: Option<String> = row.get(2);
    crate::batch_codec::decode_batch(first_key, &rows, written.as_deref(), corrupt)
}

/// Every row of run `run_id`'s batches in state `only` (all when None), in no order.
pub(crate) async fn batch_rows_all(
    client: &Client,
    schema: &str,
    run_id: i64,
    only: Option<RowState>,
) -> Result<Vec<JournalRow>, StateError> {
    let filter = match only {
        None => "",
        Some(RowState::Sent) => "AND written IS NULL",
        Some(RowState::Succeeded) => "AND written IS NOT NULL",
        Some(_) => return Ok(Vec::new()),
    };
    let stored = client
        .query(
            &format!(
                "SELECT {BATCH_COLUMNS} FROM {schema}.sent_batches WHERE run_id = $1 {filter}"
            ),
            &[&run_id],
        )
        .await
        .map_err(pg_error)?;
    let mut rows = Vec::new();
    for row in &stored {
        rows.extend(decode(schema, run_id, row)?.into_rows());
    }
    Ok(rows)
}

/// Up to `limit` rows of a run's batches with keys after `after`, in key order.
pub(crate) async fn batch_rows(
    client: &Client,
    schema: &str,
    run_id: i64,
    after: Option<&str>,
    only: Option<RowState>,
    limit: usize,
) -> Result<Vec<JournalRow>, StateError> {
    let mut kept = std::collections::BinaryHeap::new();
    for row in batch_rows_all(client, schema, run_id, only).await? {
        if after.is_none_or(|after| row.key.as_str() > after) {
            kept.push(ByKey(row));
            if kept.len() > limit {
                kept.pop();
            }
        }
    }
    let mut rows: Vec<JournalRow> = kept.into_iter().map(|ByKey(row)| row).collect();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(rows)
}

/// A `journal` row (key, action, state, destination id, message) as a journal row.
pub(crate) fn journal_row(row: &tokio_postgres::Row) -> JournalRow {
    let state: String = row.get(2);
    JournalRow {
        key: row.get(0),
        action: row.get(1),
        state: RowState::parse(&state),
        destination_id: row.get(3),
        message: row.get(4),
    }
}

/// Up to `limit` of the journal table's own rows of a run after `after`, in key order.
pub(crate) async fn table_page(
    client: &Client,
    schema: &str,
    run_id: i64,
    only: Option<RowState>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<JournalRow>, StateError> {
    let mut sql = format!(
        "SELECT key, action, state, destination_id, message FROM {schema}.journal WHERE run_id = $1"
    );
    let limit = limit.min(i64::MAX as usize) as i64;
    let state = only.map(RowState::as_str);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&run_id];
    if let Some(after) = &after {
        params.push(after);
        sql.push_str(&format!(" AND key > ${}", params.len()));
    }
    if let Some(state) = &state {
        params.push(state);
        sql.push_str(&format!(" AND state = ${}", params.len()));
    }
    params.push(&limit);
    sql.push_str(&format!(" ORDER BY key LIMIT ${}", params.len()));
    let rows = client.query(&sql, &params).await.map_err(pg_error)?;
    Ok(rows.iter().map(journal_row).collect())
}
