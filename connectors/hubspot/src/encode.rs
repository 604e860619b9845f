//! Operations → one batch request. Pure: no I/O, so every body is snapshot-tested.
//!
//! - upsert → `POST /crm/v3/objects/{object}/batch/upsert`, each input
//!   `{"idProperty": <match property>, "id": <match value>, "properties": {…}}`; the match
//!   property is always part of `properties`, with the match value, so the record keeps the
//!   value it is matched on.
//! - update and clear → `POST /crm/v3/objects/{object}/batch/update`, each input
//!   `{"id": <record id>, "properties": {…}}`; a clear sends `""` for each property, which
//!   empties it (FACTS U4).
//!
//! Every input also carries `objectWriteTraceId`: its position in the batch. The contract's
//! result objects carry it back (`SimplePublicUpsertObject.objectWriteTraceId`), and an error
//! whose `context` names it is attributed by it, so a response can be split per row even when
//! the record id or match value comes back rewritten (e.g. a lowercased email).

use connector_core::{Diagnostic, Operation, OperationKind};
use serde_json::{Map, Value, json};

use crate::internal;

/// Which batch endpoint a request goes to; it decides how results are matched back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `batch/upsert`: results are matched on the match property's value.
    Upsert,
    /// `batch/update`: results are matched on the record id.
    Update,
}

/// One request, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EncodedBatch {
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// The path below the base URL, e.g. `/crm/v3/objects/contacts/batch/upsert`.
    pub path: String,
    /// The JSON body.
    pub body: Value,
}

/// Encodes a batch whose operations all have one kind.
///
/// A mixed batch, an upsert without a match value or an update without a record id is a bug
/// in the executor or the planner, reported as an `internal` diagnostic.
pub(crate) fn encode_batch(
    object: &str,
    match_property: &str,
    operations: &[Operation],
) -> Result<EncodedBatch, Diagnostic> {
    let Some(first) = operations.first() else {
        return Err(internal("the executor sent an empty batch to HubSpot"));
    };
    if let Some(other) = operations.iter().find(|op| op.kind != first.kind) {
        return Err(internal(format!(
            "a batch for HubSpot mixed `{}` and `{}` operations",
            kind_name(&first.kind),
            kind_name(&other.kind)
        )));
    }
    let endpoint = match first.kind {
        OperationKind::Upsert => Endpoint::Upsert,
        OperationKind::Update | OperationKind::Clear => Endpoint::Update,
    };
    let inputs = operations
        .iter()
        .enumerate()
        .map(|(index, op)| encode_input(match_property, index, op))
        .collect::<Result<Vec<_>, _>>()?;
    let action = match endpoint {
        Endpoint::Upsert => "upsert",
        Endpoint::Update => "update",
    };
    Ok(EncodedBatch {
        endpoint,
        path: format!("/crm/v3/objects/{object}/batch/{action}"),
        body: json!({ "inputs": inputs }),
    })
}

fn encode_input(match_property: &str, index: usize, op: &Operation) -> Result<Value, Diagnostic> {
    let trace = Value::String(index.to_string());
    match op.kind {
        OperationKind::Upsert => {
            let Some(match_value) = &op.match_value else {
                return Err(internal(format!(
                    "the upsert of row `{}` has no value for the match property `{match_property}`",
                    op.key
                )));
            };
            let mut properties = properties(op, false);
            // `hs_object_id` is the record id: HubSpot refuses to have it written.
            if match_property != "hs_object_id" {
                properties.insert(
                    match_property.to_string(),
                    Value::String(match_value.clone()),
                );
            }
            Ok(json!({
                "idProperty": match_property,
                "id": match_value,
                "objectWriteTraceId": trace,
                "properties": properties,
            }))
        }
        OperationKind::Update | OperationKind::Clear => {
            let Some(id) = &op.destination_id else {
                return Err(internal(format!(
                    "the {} of row `{}` has no HubSpot record id",
                    kind_name(&op.kind),
                    op.key
                )));
            };
            let properties = properties(op, op.kind == OperationKind::Clear);
            Ok(json!({ "id": id, "objectWriteTraceId": trace, "properties": properties }))
        }
    }
}

/// The `properties` object (all values are strings in HubSpot, FACTS P2); a later duplicate
/// of a name wins, as it would in the mapping.
fn properties(op: &Operation, clear: bool) -> Map<String, Value> {
    op.properties
        .iter()
        .map(|(name, value)| {
            let value = if clear { String::new() } else { value.clone() };
            (name.clone(), Value::String(value))
        })
        .collect()
}

pub(crate) fn kind_name(kind: &OperationKind) -> &'static str {
    match kind {
        OperationKind::Upsert => "upsert",
        OperationKind::Update => "update",
        OperationKind::Clear => "clear",
    }
}
