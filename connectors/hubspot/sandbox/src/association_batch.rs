//! The associations v4 rules (crm-associations-v4.json, FACTS A1, B3, B4, E9): create with
//! types, create the default, read, archive, archive labels.
//!
//! Two levels of refusal, as for record batches: the whole request (400) for too many inputs
//! or a type id the pair of object types does not have (or an empty `types`); one input (a
//! `StandardError`, category `OBJECT_NOT_FOUND`, naming the missing id in `context.ids`) for a
//! record that does not exist. Creating an association that exists changes nothing and
//! succeeds. A labelled association brings the pair's unlabelled default with it, as on
//! HubSpot, and archiving the default archives every label between the two records.
//! Everything here is pure over `&mut Store`; the routes parse, lock and answer.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::association_types::AssociationType;
use crate::associations::Node;
use crate::batch::{self, Outcome};
use crate::errors::{ApiError, InputError, category};
use crate::registry::ObjectType;
use crate::store::Store;

/// Most inputs of a batch read (FACTS B3).
pub(crate) const MAX_READ_INPUTS: usize = 1_000;
/// Most inputs of the other batches: HubSpot documents no limit, integrators cap creates at
/// 2,000 (FACTS B4), and the sandbox holds every write batch to that.
pub(crate) const MAX_WRITE_INPUTS: usize = 2_000;
/// Most associations one read returns per record (FACTS B4: "Limit 500 per call").
pub(crate) const PAGE: usize = 500;

/// `PublicObjectId`.
#[derive(Debug, Deserialize)]
pub(crate) struct ObjectId {
    id: String,
}

/// `AssociationSpec`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Spec {
    association_category: String,
    association_type_id: u64,
}

/// `BatchInputPublicAssociationMultiPost` (create and labels archive).
#[derive(Debug, Deserialize)]
pub(crate) struct LabelledBody {
    inputs: Vec<LabelledInput>,
}

#[derive(Debug, Deserialize)]
struct LabelledInput {
    from: ObjectId,
    to: ObjectId,
    types: Vec<Spec>,
}

/// `BatchInputPublicDefaultAssociationMultiPost`.
#[derive(Debug, Deserialize)]
pub(crate) struct DefaultBody {
    inputs: Vec<PairInput>,
}

#[derive(Debug, Deserialize)]
struct PairInput {
    from: ObjectId,
    to: ObjectId,
}

/// `BatchInputPublicFetchAssociationsBatchRequest`.
#[derive(Debug, Deserialize)]
pub(crate) struct ReadBody {
    inputs: Vec<ReadInput>,
}

#[derive(Debug, Deserialize)]
struct ReadInput {
    id: String,
    #[serde(default)]
    after: Option<String>,
}

/// `BatchInputPublicAssociationMultiArchive`.
#[derive(Debug, Deserialize)]
pub(crate) struct ArchiveBody {
    inputs: Vec<ArchiveInput>,
}

#[derive(Debug, Deserialize)]
struct ArchiveInput {
    from: ObjectId,
    to: Vec<ObjectId>,
}

/// The two object types of an associations route.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pair {
    pub(crate) from: ObjectType,
    pub(crate) to: ObjectType,
}

impl Pair {
    /// The type ids of both object types.
    fn type_ids(self, store: &Store) -> [String; 2] {
        [self.from, self.to].map(|o| store.def(o).type_id.to_string())
    }
}

/// The id of a live record of `object`, if `id` names one.
pub(crate) fn live(store: &Store, object: ObjectType, id: &str) -> Option<u64> {
    let id = id.trim().parse().ok()?;
    store.get(object, id).map(|_| id)
}

/// The per-input error for a record that does not exist.
fn missing(store: &Store, object: ObjectType, id: &str) -> InputError {
    InputError::new(
        category::OBJECT_NOT_FOUND,
        format!(
            "No {} with id {id} exists; it may be archived or never have existed",
            store.def(object).upper()
        ),
    )
    .context("ids", vec![id.to_owned()])
}

/// Both records of an input, or the error naming the first that does not exist.
fn both(store: &Store, pair: Pair, from: &str, to: &str) -> Result<(Node, Node), InputError> {
    let a = live(store, pair.from, from).ok_or_else(|| missing(store, pair.from, from))?;
    let b = live(store, pair.to, to).ok_or_else(|| missing(store, pair.to, to))?;
    Ok(((pair.from, a), (pair.to, b)))
}

/// The types named by `specs`, checked against the pair (400 for any that do not fit).
fn checked_types(
    store: &Store,
    pair: Pair,
    specs: &[Spec],
) -> Result<Vec<AssociationType>, ApiError> {
    if specs.is_empty() {
        return Err(ApiError::validation(
            "`types` must name at least one association type",
        ));
    }
    let [from, to] = pair.type_ids(store);
    specs
        .iter()
        .map(|spec| {
            store
                .association_types
                .check(
                    &from,
                    &to,
                    &spec.association_category,
                    spec.association_type_id,
                )
                .cloned()
        })
        .collect()
}

/// Writes `types` (and the pair's default) between two records; returns the labels written.
fn associate(
    store: &mut Store,
    pair: Pair,
    a: Node,
    b: Node,
    types: &[AssociationType],
) -> Vec<String> {
    let [from, to] = pair.type_ids(store);
    let default = store.association_types.default_for(&from, &to).cloned();
    for t in default.iter().chain(types) {
        store.associations.add(a, b, t.id, t.inverse);
    }
    types.iter().filter_map(|t| t.label.clone()).collect()
}

/// `LabelsBetweenObjectPair`.
fn labels_json(store: &Store, a: Node, b: Node, labels: Vec<String>) -> Value {
    json!({
        "fromObjectTypeId": store.def(a.0).type_id,
        "fromObjectId": a.1.to_string(),
        "toObjectTypeId": store.def(b.0).type_id,
        "toObjectId": b.1.to_string(),
        "labels": labels,
    })
}

/// `POST /crm/v4/associations/{from}/{to}/batch/create`.
pub(crate) fn create(
    store: &mut Store,
    pair: Pair,
    body: LabelledBody,
) -> Result<Outcome, ApiError> {
    if body.inputs.len() > MAX_WRITE_INPUTS {
        return Err(batch::too_many(body.inputs.len(), MAX_WRITE_INPUTS));
    }
    let mut checked = Vec::with_capacity(body.inputs.len());
    for input in &body.inputs {
        checked.push(checked_types(store, pair, &input.types)?);
    }
    let mut outcome = Outcome::default();
    for (input, types) in body.inputs.iter().zip(checked) {
        match both(store, pair, &input.from.id, &input.to.id) {
            Ok((a, b)) => {
                let labels = associate(store, pair, a, b, &types);
                outcome.results.push(labels_json(store, a, b, labels));
            }
            Err(error) => outcome.errors.push(error),
        }
    }
    Ok(outcome)
}

/// `PUT /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}`:
/// one create, a missing record being a 404.
pub(crate) fn create_one(
    store: &mut Store,
    pair: Pair,
    [from, to]: [&str; 2],
    specs: &[Spec],
) -> Result<Value, ApiError> {
    let types = checked_types(store, pair, specs)?;
    let (a, b) = both(store, pair, from, to).map_err(InputError::into_api_error)?;
    let labels = associate(store, pair, a, b, &types);
    Ok(labels_json(store, a, b, labels))
}

/// The pair's default type, or the 400 when it has none.
fn default_type(store: &Store, pair: Pair) -> Result<AssociationType, ApiError> {
    let [from, to] = pair.type_ids(store);
    store
        .association_types
        .default_for(&from, &to)
        .cloned()
        .ok_or_else(|| {
            ApiError::validation(format!(
                "There is no default association type from {from} to {to}"
            ))
        })
}

/// `PublicDefaultAssociation`.
fn default_json(a: Node, b: Node, t: &AssociationType) -> Value {
    json!({
        "from": {"id": a.1.to_string()},
        "to": {"id": b.1.to_string()},
        "associationSpec": {"associationCategory": t.category, "associationTypeId": t.id},
    })
}

/// `POST /crm/v4/associations/{from}/{to}/batch/associate/default` (and the single-record
/// `PUT …/associations/default/…`, one input).
pub(crate) fn create_default<'a>(
    store: &mut Store,
    pair: Pair,
    inputs: impl ExactSizeIterator<Item = [&'a str; 2]>,
) -> Result<Outcome, ApiError> {
    if inputs.len() > MAX_WRITE_INPUTS {
        return Err(batch::too_many(inputs.len(), MAX_WRITE_INPUTS));
    }
    let default = default_type(store, pair)?;
    let mut outcome = Outcome::default();
    for [from, to] in inputs {
        match both(store, pair, from, to) {
            Ok((a, b)) => {
                store.associations.add(a, b, default.id, default.inverse);
                outcome.results.push(default_json(a, b, &default));
            }
            Err(error) => outcome.errors.push(error),
        }
    }
    Ok(outcome)
}

impl DefaultBody {
    /// The `[from, to]` ids of the inputs.
    pub(crate) fn pairs(&self) -> impl ExactSizeIterator<Item = [&str; 2]> {
        self.inputs
            .iter()
            .map(|i| [i.from.id.as_str(), i.to.id.as_str()])
    }
}

/// `MultiAssociatedObjectWithLabel` entries of one record from `after`, at most `limit`, and
/// the cursor of the next page.
pub(crate) fn page(
    store: &Store,
    pair: Pair,
    from: Node,
    after: u64,
    limit: usize,
) -> (Vec<Value>, Option<String>) {
    let mut targets = store.associations.targets(from, pair.to, after).peekable();
    let mut results = Vec::new();
    let mut last = None;
    while results.len() < limit {
        let Some((to, types)) = targets.next() else {
            break;
        };
        let types: Vec<Value> = types
            .iter()
            .filter_map(|id| store.association_types.get(*id))
            .map(AssociationType::to_json)
            .collect();
        results.push(json!({"toObjectId": to.to_string(), "associationTypes": types}));
        last = Some(to);
    }
    let next = last
        .filter(|_| targets.peek().is_some())
        .map(|l| l.to_string());
    (results, next)
}

/// A paging cursor (the last `toObjectId` seen), or the 400 for a malformed one.
pub(crate) fn cursor(after: Option<&str>) -> Result<u64, ApiError> {
    match after.map(str::trim).filter(|a| !a.is_empty()) {
        None => Ok(0),
        Some(text) => text
            .parse()
            .map_err(|_| ApiError::validation(format!("Invalid paging cursor after={text}"))),
    }
}

/// `POST /crm/v4/associations/{from}/{to}/batch/read`: a missing record, or one with no
/// associations to the other type, is an `OBJECT_NOT_FOUND` error of its own.
pub(crate) fn read(store: &Store, pair: Pair, body: ReadBody) -> Result<Outcome, ApiError> {
    if body.inputs.len() > MAX_READ_INPUTS {
        return Err(batch::too_many(body.inputs.len(), MAX_READ_INPUTS));
    }
    let mut outcome = Outcome::default();
    for input in &body.inputs {
        let after = cursor(input.after.as_deref())?;
        let Some(id) = live(store, pair.from, &input.id) else {
            outcome.errors.push(missing(store, pair.from, &input.id));
            continue;
        };
        let (to, next) = page(store, pair, (pair.from, id), after, PAGE);
        if to.is_empty() && after == 0 {
            outcome.errors.push(
                InputError::new(
                    category::OBJECT_NOT_FOUND,
                    format!(
                        "No {} is associated with {} {id}",
                        store.def(pair.to).singular_label.to_lowercase(),
                        store.def(pair.from).singular_label.to_lowercase(),
                    ),
                )
                .context("ids", vec![input.id.clone()]),
            );
            continue;
        }
        let mut result = json!({"from": {"id": id.to_string()}, "to": to});
        if let Some(next) = next {
            result["paging"] = json!({"next": {"after": next}});
        }
        outcome.results.push(result);
    }
    Ok(outcome)
}

/// `POST /crm/v4/associations/{from}/{to}/batch/archive`: every type between the records
/// goes; unknown records are ignored.
pub(crate) fn archive(store: &mut Store, pair: Pair, body: ArchiveBody) -> Result<(), ApiError> {
    if body.inputs.len() > MAX_WRITE_INPUTS {
        return Err(batch::too_many(body.inputs.len(), MAX_WRITE_INPUTS));
    }
    for input in &body.inputs {
        for to in &input.to {
            archive_one(store, pair, [&input.from.id, &to.id]);
        }
    }
    Ok(())
}

/// `DELETE /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}`.
pub(crate) fn archive_one(store: &mut Store, pair: Pair, [from, to]: [&str; 2]) {
    if let Ok((a, b)) = both(store, pair, from, to) {
        store.associations.remove_between(a, b);
    }
}

/// `POST /crm/v4/associations/{from}/{to}/batch/labels/archive`: removes the named types;
/// the pair's unlabelled default takes every label with it. Unknown records are ignored.
pub(crate) fn archive_labels(
    store: &mut Store,
    pair: Pair,
    body: LabelledBody,
) -> Result<(), ApiError> {
    if body.inputs.len() > MAX_WRITE_INPUTS {
        return Err(batch::too_many(body.inputs.len(), MAX_WRITE_INPUTS));
    }
    let mut checked = Vec::with_capacity(body.inputs.len());
    for input in &body.inputs {
        checked.push(checked_types(store, pair, &input.types)?);
    }
    for (input, types) in body.inputs.iter().zip(checked) {
        let Ok((a, b)) = both(store, pair, &input.from.id, &input.to.id) else {
            continue;
        };
        for t in types {
            if t.label.is_none() {
                store.associations.remove_between(a, b);
            } else {
                store.associations.remove(a, b, t.id, t.inverse);
            }
        }
    }
    Ok(())
}

/// A batch answer whose contract declares only 200 (`batch/associate/default`): errors ride
/// in the body, the status stays 200.
pub(crate) fn always_ok(outcome: Outcome, started_at: DateTime<Utc>) -> Value {
    outcome.into_wire(started_at).1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn store_with_records() -> (Store, u64, u64) {
        let mut store = Store::default();
        let now = Utc::now();
        let contact = store.create(ObjectType::CONTACTS, &BTreeMap::new(), now);
        let company = store.create(ObjectType::COMPANIES, &BTreeMap::new(), now);
        (store, contact, company)
    }

    const PAIR: Pair = Pair {
        from: ObjectType::CONTACTS,
        to: ObjectType::COMPANIES,
    };

    fn labelled(inputs: Value) -> LabelledBody {
        serde_json::from_value(json!({ "inputs": inputs }))
            .unwrap_or(LabelledBody { inputs: vec![] })
    }

    #[test]
    fn create_is_idempotent_and_brings_the_default() {
        let (mut store, contact, company) = store_with_records();
        let input = json!([{"from": {"id": contact.to_string()}, "to": {"id": company.to_string()},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]}]);
        for _ in 0..2 {
            let outcome = create(&mut store, PAIR, labelled(input.clone()));
            let outcome = outcome.unwrap_or_default();
            assert!(outcome.errors.is_empty());
            assert_eq!(outcome.results[0]["labels"], json!(["Primary"]));
        }
        let types: Vec<u64> = store
            .associations
            .between(
                (ObjectType::COMPANIES, company),
                (ObjectType::CONTACTS, contact),
            )
            .into_iter()
            .flatten()
            .copied()
            .collect();
        assert_eq!(types, [2, 280]);
        store.archive(ObjectType::CONTACTS, contact);
        assert_eq!(
            store
                .associations
                .all(ObjectType::COMPANIES, ObjectType::CONTACTS)
                .count(),
            0
        );
    }

    #[test]
    fn bad_types_refuse_the_batch_and_missing_records_one_input() {
        let (mut store, contact, company) = store_with_records();
        let bad = json!([{"from": {"id": contact.to_string()}, "to": {"id": company.to_string()},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 4}]}]);
        assert!(create(&mut store, PAIR, labelled(bad)).is_err());
        let missing = json!([{"from": {"id": "999"}, "to": {"id": company.to_string()},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}]);
        let outcome = create(&mut store, PAIR, labelled(missing)).unwrap_or_default();
        assert_eq!(outcome.errors.len(), 1);
        assert_eq!(
            outcome.errors[0].to_json()["context"]["ids"],
            json!(["999"])
        );
    }
}
