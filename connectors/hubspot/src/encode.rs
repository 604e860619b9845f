//! Operations → one batch request. Pure: no I/O, so every body is snapshot-tested.
//!
//! - upsert → `POST /crm/v3/objects/{object}/batch/upsert`, each input
//!   `{"idProperty": <match property>, "id": <match value>, "properties": {…}}`; the match
//!   property is always part of `properties`, with the match value, so the record keeps the
//!   value it is matched on.
//! - update and clear → `POST /crm/v3/objects/{object}/batch/update`, each input
//!   `{"id": <record id>, "properties": {…}}`; a clear sends `""` for each property, which
//!   empties it (FACTS U4).
//! - update of a matched record (`mode: update`) → `batch/update` with
//!   `{"idProperty": <match property>, "id": <match value>, "properties": {…}}` (FACTS U4), or
//!   `{"id": <record id>, …}` when the match property is `hs_object_id`.
//! - archive → `POST /crm/v3/objects/{object}/batch/archive`, each input `{"id": <record id>}`;
//!   HubSpot answers 204 with no body.
//! - create (`mode: insert`) → `POST /crm/v3/objects/{object}/batch/create`, each input
//!   `{"objectWriteTraceId", "properties": {…, <match property>: <match value>}}`; the trace
//!   ids turn on HubSpot's multi-status answer (FACTS E8), so a record that exists already
//!   fails its own input only.
//!
//! Every input also carries `objectWriteTraceId`: its position in the batch. The contract's
//! result objects carry it back (`SimplePublicUpsertObject.objectWriteTraceId`), and an error
//! whose `context` names it is attributed by it, so a response can be split per row even when
//! the record id or match value comes back rewritten (e.g. a lowercased email).

use connector_core::{Diagnostic, Operation, OperationKind};

use crate::internal;

/// Which batch endpoint a request goes to; it decides how results are matched back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `batch/upsert`: results are matched on the match property's value.
    Upsert,
    /// `batch/update`: results are matched on the record id.
    Update,
    /// `batch/archive`: a 204 without a body means every record is gone.
    Archive,
    /// `batch/create`: results and errors are matched by their trace id.
    Create,
}

/// One request, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EncodedBatch {
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// The path below the base URL, e.g. `/crm/v3/objects/contacts/batch/upsert`.
    pub path: String,
    /// The JSON body, serialized: written straight from the operations, with no document
    /// built in between.
    pub body: Vec<u8>,
}

impl EncodedBatch {
    /// The body as a JSON document (for tests and contract checks).
    #[cfg(test)]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the encoder writes JSON")
    }
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
        OperationKind::Update | OperationKind::Clear | OperationKind::UpdateMatched => {
            Endpoint::Update
        }
        OperationKind::Archive => Endpoint::Archive,
        OperationKind::Create => Endpoint::Create,
    };
    for op in operations {
        check_input(match_property, op)?;
    }
    let action = match endpoint {
        Endpoint::Upsert => "upsert",
        Endpoint::Update => "update",
        Endpoint::Archive => "archive",
        Endpoint::Create => "create",
    };
    let body = write_inputs(match_property, operations);
    Ok(EncodedBatch {
        endpoint,
        path: format!("/crm/v3/objects/{object}/batch/{action}"),
        body,
    })
}

/// An upsert needs its match value, an update or clear its record id.
fn check_input(match_property: &str, op: &Operation) -> Result<(), Diagnostic> {
    match op.kind {
        OperationKind::Upsert | OperationKind::UpdateMatched | OperationKind::Create
            if op.match_value.is_none() =>
        {
            Err(internal(format!(
                "the {} of row `{}` has no value for the match property `{match_property}`",
                kind_name(&op.kind),
                op.key
            )))
        }
        OperationKind::Update | OperationKind::Clear | OperationKind::Archive
            if op.destination_id.is_none() =>
        {
            Err(internal(format!(
                "the {} of row `{}` has no HubSpot record id",
                kind_name(&op.kind),
                op.key
            )))
        }
        _ => Ok(()),
    }
}

/// `{"inputs": [...]}`: one input per operation, checked by [`check_input`] first.
///
/// Each input is `{"idProperty", "id", "objectWriteTraceId", "properties"}` for an upsert,
/// `{"id", "objectWriteTraceId", "properties"}` for an update or a clear. The body is written
/// straight into bytes: a request holds a hundred inputs, and building them as serde values
/// first cost more than the rest of the request.
fn write_inputs(match_property: &str, operations: &[Operation]) -> Vec<u8> {
    let estimate: usize = operations
        .iter()
        .map(|op| {
            let values: usize = op
                .properties
                .iter()
                .map(|(n, v)| n.len() + v.len() + 6)
                .sum();
            values + op.match_value.as_ref().map_or(0, |v| 2 * v.len()) + 96
        })
        .sum();
    let mut json = JsonWriter(Vec::with_capacity(estimate + 16));
    json.raw(b"{\"inputs\":[");
    for (index, op) in operations.iter().enumerate() {
        if index > 0 {
            json.raw(b",");
        }
        if op.kind == OperationKind::Archive {
            json.raw(b"{\"id\":");
            json.string(op.destination_id.as_deref().unwrap_or_default());
            json.raw(b"}");
            continue;
        }
        let mut properties = properties(op, op.kind == OperationKind::Clear);
        json.raw(b"{");
        match op.kind {
            OperationKind::Upsert => {
                let match_value = op.match_value.as_deref().unwrap_or_default();
                // `hs_object_id` is the record id: HubSpot refuses to have it written.
                if match_property != "hs_object_id" {
                    properties.insert(match_property, match_value);
                }
                json.raw(b"\"idProperty\":");
                json.string(match_property);
                json.raw(b",\"id\":");
                json.string(match_value);
            }
            OperationKind::UpdateMatched => {
                let match_value = op.match_value.as_deref().unwrap_or_default();
                // The record id is read-only: it finds the record and is never written.
                properties.0.retain(|(name, _)| *name != "hs_object_id");
                // The record id itself needs no `idProperty`.
                if match_property != "hs_object_id" {
                    json.raw(b"\"idProperty\":");
                    json.string(match_property);
                    json.raw(b",");
                }
                json.raw(b"\"id\":");
                json.string(match_value);
            }
            OperationKind::Update | OperationKind::Clear | OperationKind::Archive => {
                json.raw(b"\"id\":");
                json.string(op.destination_id.as_deref().unwrap_or_default());
            }
            OperationKind::Create => {
                // The record keeps the value it is matched on, as an upsert's does.
                properties.insert(
                    match_property,
                    op.match_value.as_deref().unwrap_or_default(),
                );
            }
        }
        if op.kind != OperationKind::Create {
            json.raw(b",");
        }
        json.raw(b"\"objectWriteTraceId\":\"");
        json.raw(index.to_string().as_bytes());
        json.raw(b"\",\"properties\":{");
        for (position, (name, value)) in properties.0.iter().enumerate() {
            if position > 0 {
                json.raw(b",");
            }
            json.string(name);
            json.raw(b":");
            json.string(value);
        }
        json.raw(b"}}");
    }
    json.raw(b"]}");
    json.0
}

/// A few properties by name, kept in a vector (a record has a handful), in mapping order; a
/// later duplicate of a name wins, as it would in the mapping. A clear sends `""` for each.
fn properties(op: &Operation, clear: bool) -> Properties<'_> {
    let mut properties = Properties(Vec::with_capacity(op.properties.len() + 1));
    for (name, value) in &op.properties {
        properties.insert(name, if clear { "" } else { value.as_str() });
    }
    properties
}

/// The `properties` object's entries (all values are strings in HubSpot, FACTS P2).
struct Properties<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Properties<'a> {
    /// Sets `name` to `value`, replacing an earlier value of the same name.
    fn insert(&mut self, name: &'a str, value: &'a str) {
        match self.0.iter_mut().find(|(existing, _)| *existing == name) {
            Some(entry) => entry.1 = value,
            None => self.0.push((name, value)),
        }
    }
}

/// JSON text written into a buffer: the structure is written by the caller, strings here.
struct JsonWriter(Vec<u8>);

impl JsonWriter {
    /// Bytes that are already JSON.
    fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// A string literal. Most values need no escape and are copied as they are; one that
    /// does is escaped by serde_json, so the text is byte for byte what serde_json writes.
    fn string(&mut self, text: &str) {
        // Folded without an early exit, so the check runs over many bytes at a time.
        let needs_escape = text.bytes().fold(false, |any, b| {
            any | (b < 0x20) | (b == b'"') | (b == b'\\')
        });
        if !needs_escape {
            self.0.reserve(text.len() + 2);
            self.0.push(b'"');
            self.0.extend_from_slice(text.as_bytes());
            self.0.push(b'"');
        } else {
            // Writing a string into a vector cannot fail.
            let _ = serde_json::to_writer(&mut self.0, text);
        }
    }
}

pub(crate) fn kind_name(kind: &OperationKind) -> &'static str {
    match kind {
        OperationKind::Upsert => "upsert",
        OperationKind::Update => "update",
        OperationKind::Clear => "clear",
        OperationKind::UpdateMatched => "update",
        OperationKind::Archive => "archive",
        OperationKind::Create => "create",
    }
}
