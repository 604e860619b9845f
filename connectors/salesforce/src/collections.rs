//! sObject Collections writes (FACTS C1–C4): operations → requests of at most 200 records
//! with `allOrNone: false`, answers → one outcome per row.
//!
//! | operation | request | result |
//! | --- | --- | --- |
//! | create (`mode: insert`) | `POST /composite/sobjects` | `Succeeded{created: true}`; `DUPLICATE_VALUE` on the external id → `Skipped` |
//! | upsert | `PATCH /composite/sobjects/{Object}/{ExtField}`, the match value in each body | `created` from the answer |
//! | update, clear | `PATCH /composite/sobjects`, `id` in each body; a clear sends `null`s | `created: false` |
//! | update by match value (`mode: update`) | ids found with one SOQL `IN` query, then as update | none found / several → `Rejected` |
//! | delete (archive) | `DELETE /composite/sobjects?ids=…&allOrNone=false` | a record already gone counts as deleted |
//!
//! Each row's values are converted first (`convert.rs`); a value that does not fit rejects
//! its row only and the row is not sent. Results come back in request order (FACTS C2).
//! Before each batch the last `Sforce-Limit-Info` is compared with the configured share of
//! the daily allocation: past it, the batch is not sent and the run stops (`Fatal`), so no
//! written row is ever reported as unwritten.

use std::collections::HashMap;

use connector_core::{BatchResult, Operation, OperationKind, RowOutcome};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::Body;
use crate::response::{self, RecordError};
use crate::{Loaded, MAX_BATCH_SIZE, SalesforceDestination, call_failed, passing_or_fatal};

/// Which Collections call a batch becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Insert,
    Update,
    Upsert,
    Delete,
}

/// Converts one operation's properties into a record body (`attributes.type` included), or
/// the row's rejection. Empty values are `null` (cleared) on updates and left out on creates.
pub(crate) fn record_body(
    object: &str,
    loaded: &Loaded,
    op: &Operation,
    creating: bool,
) -> Result<Map<String, Value>, String> {
    let mut record = Map::new();
    record.insert("attributes".into(), json!({ "type": object }));
    for (name, text) in &op.properties {
        if connector_core::is_association(name) {
            return Err(format!(
                "`{name}`: Salesforce links records through lookup fields; map the lookup field (such as `Contact__c`) instead"
            ));
        }
        let Some(kind) = loaded.kinds.get(name) else {
            return Err(format!(
                "`{name}`: the Salesforce object `{object}` has no such field (was it renamed or deleted?)"
            ));
        };
        let value = crate::convert::convert(name, kind, text)?;
        if creating && value.is_null() {
            continue;
        }
        record.insert(name.clone(), value);
    }
    Ok(record)
}

impl SalesforceDestination {
    /// Writes one batch through sObject Collections.
    pub(crate) async fn send_collections(&self, operations: &[Operation]) -> BatchResult {
        if let Some(diagnostic) = self.past_allocation_share() {
            return BatchResult::Fatal(diagnostic);
        }
        let loaded = match self.loaded().await {
            Ok(loaded) => loaded,
            Err(diagnostic) => return passing_or_fatal(diagnostic),
        };
        // Describe itself may have shown the org past its share.
        if let Some(diagnostic) = self.past_allocation_share() {
            return BatchResult::Fatal(diagnostic);
        }
        let object = loaded.describe.name.clone();
        let mut outcomes: Vec<Option<RowOutcome>> = vec![None; operations.len()];
        // Rows to send, as (index in the batch, record body).
        let mut sendable: Vec<(usize, Map<String, Value>)> = Vec::new();
        let kind = operations[0].kind.clone();
        let call = match kind {
            OperationKind::Create => Call::Insert,
            OperationKind::Upsert => Call::Upsert,
            OperationKind::Update | OperationKind::Clear | OperationKind::UpdateMatched => {
                Call::Update
            }
            OperationKind::Archive => Call::Delete,
        };
        let ext = self.config.external_id_field.clone();
        let matched_ids = if kind == OperationKind::UpdateMatched {
            match self.ids_by_match_value(operations).await {
                Ok(ids) => ids,
                Err(result) => return result,
            }
        } else {
            Vec::new()
        };
        for (index, op) in operations.iter().enumerate() {
            if op.kind != kind {
                outcomes[index] = Some(RowOutcome::Retry {
                    reason: "a batch mixed operation kinds; the row is sent again in its own batch"
                        .into(),
                    after: None,
                });
                continue;
            }
            if call == Call::Delete {
                match op.destination_id.as_deref().map(crate::ids::parse_id) {
                    Some(Ok(id)) => {
                        let mut record = Map::new();
                        record.insert("id".into(), Value::String(id.to_string()));
                        sendable.push((index, record));
                    }
                    Some(Err(why)) => outcomes[index] = Some(RowOutcome::Rejected { message: why }),
                    None => outcomes[index] = Some(missing_id(op)),
                }
                continue;
            }
            let creating = matches!(call, Call::Insert);
            let mut record = match record_body(&object, &loaded, op, creating) {
                Ok(record) => record,
                Err(message) => {
                    outcomes[index] = Some(RowOutcome::Rejected { message });
                    continue;
                }
            };
            match call {
                Call::Upsert | Call::Insert => {
                    if let (Some(ext), Some(value)) = (&ext, &op.match_value)
                        && ext != "Id"
                    {
                        record.insert(ext.clone(), Value::String(value.clone()));
                    }
                    if call == Call::Upsert && op.match_value.is_none() {
                        outcomes[index] = Some(RowOutcome::Rejected {
                            message: "the row has no external-id value to upsert on".into(),
                        });
                        continue;
                    }
                }
                Call::Update => {
                    let id = if kind == OperationKind::UpdateMatched {
                        match &matched_ids[index] {
                            Ok(id) => Some(id.clone()),
                            Err(message) => {
                                outcomes[index] = Some(RowOutcome::Rejected {
                                    message: message.clone(),
                                });
                                continue;
                            }
                        }
                    } else {
                        op.destination_id.clone()
                    };
                    let Some(id) = id else {
                        outcomes[index] = Some(missing_id(op));
                        continue;
                    };
                    record.insert("id".into(), Value::String(id));
                }
                Call::Delete => {}
            }
            sendable.push((index, record));
        }
        for chunk in sendable.chunks(MAX_BATCH_SIZE) {
            let rows = self.send_chunk(&object, call, operations, chunk).await;
            let rows = match rows {
                BatchResult::PerRow(rows) if rows.len() == chunk.len() => rows,
                BatchResult::PerRow(_) => crate::retry_rows(
                    chunk.len(),
                    "Salesforce's answer did not cover every record of the request",
                ),
                // Nothing of this chunk was written; rows decided before (rejected values)
                // keep their outcome only when the whole batch is answered per row, so a
                // whole-request failure of the first chunk is the batch's.
                other if outcomes.iter().all(Option::is_none) && sendable.len() == chunk.len() => {
                    return other;
                }
                BatchResult::Fatal(diagnostic) => return BatchResult::Fatal(diagnostic),
                BatchResult::RetryAll { reason, .. } | BatchResult::Unreachable { reason, .. } => {
                    crate::retry_rows(chunk.len(), &reason)
                }
            };
            for ((index, _), row) in chunk.iter().zip(rows) {
                outcomes[*index] = Some(row);
            }
        }
        BatchResult::PerRow(
            outcomes
                .into_iter()
                .map(|o| {
                    o.unwrap_or_else(|| RowOutcome::Retry {
                        reason: "the row was not sent".into(),
                        after: None,
                    })
                })
                .collect(),
        )
    }

    /// Sends one Collections request and reads it per record.
    async fn send_chunk(
        &self,
        object: &str,
        call: Call,
        operations: &[Operation],
        chunk: &[(usize, Map<String, Value>)],
    ) -> BatchResult {
        let (method, path, body) = match call {
            Call::Delete => {
                let ids: Vec<&str> = chunk
                    .iter()
                    .filter_map(|(_, r)| r.get("id").and_then(Value::as_str))
                    .collect();
                (
                    Method::DELETE,
                    self.client.data_path(&format!(
                        "/composite/sobjects?ids={}&allOrNone=false",
                        ids.join(",")
                    )),
                    Body::Empty,
                )
            }
            _ => {
                let records: Vec<&Map<String, Value>> = chunk.iter().map(|(_, r)| r).collect();
                let body = json!({ "allOrNone": false, "records": records });
                let bytes = serde_json::to_vec(&body).unwrap_or_default();
                let (method, path) = match call {
                    Call::Insert => (Method::POST, "/composite/sobjects".to_string()),
                    Call::Update => (Method::PATCH, "/composite/sobjects".to_string()),
                    Call::Upsert => (
                        Method::PATCH,
                        format!(
                            "/composite/sobjects/{object}/{}",
                            self.config.external_id_field.as_deref().unwrap_or("Id")
                        ),
                    ),
                    Call::Delete => (Method::DELETE, String::new()),
                };
                (method, self.client.data_path(&path), Body::Json(bytes))
            }
        };
        let answer = match self.client.call(method, &path, body).await {
            Ok(answer) => answer,
            Err(error) => return call_failed(&self.config, error),
        };
        if answer.status != 200 {
            return response::refused_batch(object, chunk.len(), &answer);
        }
        let Some(results) = response::save_results(&answer.body) else {
            return BatchResult::RetryAll {
                reason: format!(
                    "Salesforce answered 200 without per-record results: {}",
                    response::summary(&answer)
                ),
                after: None,
            };
        };
        if results.len() != chunk.len() {
            return BatchResult::PerRow(crate::retry_rows(
                chunk.len(),
                "Salesforce's answer did not have one result per record",
            ));
        }
        BatchResult::PerRow(
            chunk
                .iter()
                .zip(results)
                .map(|((index, record), result)| {
                    self.row_outcome(call, &operations[*index], record, result)
                })
                .collect(),
        )
    }

    fn row_outcome(
        &self,
        call: Call,
        op: &Operation,
        record: &Map<String, Value>,
        result: response::SaveResult,
    ) -> RowOutcome {
        let sent_id = record.get("id").and_then(Value::as_str).map(str::to_string);
        if result.success {
            return RowOutcome::Succeeded {
                destination_id: result.id.or(sent_id).unwrap_or_default(),
                created: match call {
                    Call::Insert => true,
                    Call::Upsert => result.created.unwrap_or(false),
                    Call::Update | Call::Delete => false,
                },
            };
        }
        match response::record_error(&result.errors, call == Call::Delete) {
            RecordError::Retry(reason) => RowOutcome::Retry {
                reason,
                after: None,
            },
            RecordError::Reject(message) => RowOutcome::Rejected { message },
            RecordError::AlreadyDeleted => RowOutcome::Succeeded {
                destination_id: sent_id.unwrap_or_default(),
                created: false,
            },
            RecordError::Duplicate(message) => {
                let on_match_field = self
                    .config
                    .external_id_field
                    .as_deref()
                    .is_some_and(|ext| message.contains(ext));
                if call == Call::Insert && on_match_field {
                    RowOutcome::Skipped {
                        reason: format!(
                            "a {} record with {} `{}` exists already ({message}); `mode: insert` leaves it as it is",
                            self.config.object,
                            self.config.external_id_field.as_deref().unwrap_or_default(),
                            op.match_value.as_deref().unwrap_or_default()
                        ),
                        existing_id: None,
                    }
                } else {
                    RowOutcome::Rejected { message }
                }
            }
        }
    }

    /// For `mode: update` by a match value: each row's record id, or why there is none. With
    /// `Id` as the match field the value is the id; otherwise one SOQL query per URL-sized
    /// chunk of values finds the records.
    pub(crate) async fn ids_by_match_value(
        &self,
        operations: &[Operation],
    ) -> Result<Vec<Result<String, String>>, BatchResult> {
        let field = self.config.external_id_field.as_deref().unwrap_or("Id");
        let object = &self.config.object;
        if field == "Id" {
            return Ok(operations
                .iter()
                .map(|op| {
                    crate::ids::parse_id(op.match_value.as_deref().unwrap_or_default())
                        .map(|id| id.to_string())
                })
                .collect());
        }
        let values: Vec<&str> = operations
            .iter()
            .filter_map(|op| op.match_value.as_deref())
            .filter(|v| !v.is_empty())
            .collect();
        let mut found: HashMap<String, Vec<String>> = HashMap::new();
        let select = format!("SELECT Id, {field} FROM {object}");
        for query in crate::soql::in_queries(&select, field, &values, self.query_url_overhead()) {
            let records = self.query(&query).await.map_err(passing_or_fatal)?;
            for record in records {
                let (Some(id), Some(value)) = (
                    record.get("Id").and_then(Value::as_str),
                    record.get(field).and_then(Value::as_str),
                ) else {
                    continue;
                };
                found
                    .entry(value.to_lowercase())
                    .or_default()
                    .push(id.to_string());
            }
        }
        Ok(operations
            .iter()
            .map(|op| {
                let value = op.match_value.as_deref().unwrap_or_default();
                match found.get(&value.to_lowercase()).map(Vec::as_slice) {
                    Some([id]) => Ok(id.clone()),
                    Some(ids) if !ids.is_empty() => Err(format!(
                        "{} {object} records have {field} `{value}` ({}); `mode: update` changes one record per row",
                        ids.len(),
                        ids.join(", ")
                    )),
                    _ => Err(format!(
                        "no {object} record has {field} `{value}`, and `mode: update` creates none"
                    )),
                }
            })
            .collect())
    }
}

fn missing_id(op: &Operation) -> RowOutcome {
    RowOutcome::Rejected {
        message: format!(
            "the row `{}` has no Salesforce record id to write to; this is a bug in engine",
            op.key
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::FieldKind;
    use crate::schema::Describe;

    fn loaded() -> Loaded {
        let mut kinds = HashMap::new();
        kinds.insert("Opened__c".to_string(), FieldKind::Boolean);
        kinds.insert("Views__c".to_string(), FieldKind::Int);
        kinds.insert(
            "Text_Reply__c".to_string(),
            FieldKind::Text { max_chars: Some(5) },
        );
        Loaded {
            describe: Describe::default(),
            kinds,
        }
    }

    fn op(properties: &[(&str, &str)]) -> Operation {
        Operation {
            key: "k".into(),
            kind: OperationKind::Create,
            destination_id: None,
            match_value: None,
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn bodies_carry_typed_values() {
        let body = record_body(
            "ThankView__c",
            &loaded(),
            &op(&[
                ("Opened__c", "true"),
                ("Views__c", "3"),
                ("Text_Reply__c", ""),
            ]),
            true,
        )
        .expect("a body");
        assert_eq!(
            Value::Object(body).to_string(),
            r#"{"Opened__c":true,"Views__c":3,"attributes":{"type":"ThankView__c"}}"#
        );
        let cleared = record_body(
            "ThankView__c",
            &loaded(),
            &op(&[("Text_Reply__c", "")]),
            false,
        )
        .expect("a body");
        assert_eq!(cleared.get("Text_Reply__c"), Some(&Value::Null));
    }

    #[test]
    fn a_bad_value_rejects_its_row_naming_field_and_value() {
        let error = record_body(
            "ThankView__c",
            &loaded(),
            &op(&[("Views__c", "many")]),
            true,
        )
        .expect_err("bad");
        assert_eq!(error, "`Views__c`: `many` is not a whole number");
        let unknown = record_body("ThankView__c", &loaded(), &op(&[("Nope__c", "1")]), true)
            .expect_err("unknown");
        assert!(unknown.contains("no such field"));
        let link = record_body("ThankView__c", &loaded(), &op(&[("@contacts", "[]")]), true)
            .expect_err("link");
        assert!(link.contains("lookup field"));
    }
}
