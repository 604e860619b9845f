//! Association types (HubSpot's "labels") between two object types: what a `types[]` entry of
//! an association may name, and what `GET /crm/v4/associations/{from}/{to}/labels` lists.
//!
//! Every type has one id per direction: contact → company 279 is company → contact 280, so an
//! association written one way is stored the other way with the inverse id. Three sources:
//!
//! - HubSpot-defined types between the built-in objects ([`BUILTIN`]): each pair has an
//!   unlabelled default and some a `Primary` label;
//! - the association definitions a custom object schema makes for its `associatedObjects`
//!   (`schema`): the schema's definition id is the custom object → target type, the inverse
//!   gets the next id; they are unlabelled and `USER_DEFINED`, as HubSpot reports them;
//! - user-defined labels (`POST …/labels`, FACTS A2): category `USER_DEFINED`, one new id per
//!   direction, both directions carrying the label.
//!
//! Ids of the last two come from the store's association counter, which a reset does not
//! rewind, so an id is never reused.

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::errors::{ApiError, category};

/// The category of HubSpot's own types.
pub(crate) const HUBSPOT_DEFINED: &str = "HUBSPOT_DEFINED";
/// The category of labels made in the portal (and of custom object associations).
pub(crate) const USER_DEFINED: &str = "USER_DEFINED";

/// HubSpot-defined types between built-in objects: `(from, to, id, inverse id, label)`.
///
/// Contact → company 279 is FACTS A1 (crm-associations-v4.json's example). The others are the
/// ids of HubSpot's published table of default association types ("Association type ID
/// values" in the associations v4 guide, developers.hubspot.com): neither FACTS.md nor the
/// OpenAPI files list them. `Primary` is the label HubSpot gives the primary company of a
/// contact, deal or ticket.
pub(crate) const BUILTIN: [(&str, &str, u64, u64, Option<&str>); 9] = [
    ("0-1", "0-2", 279, 280, None),
    ("0-1", "0-2", 1, 2, Some("Primary")),
    ("0-1", "0-3", 4, 3, None),
    ("0-1", "0-5", 15, 16, None),
    ("0-2", "0-3", 342, 341, None),
    ("0-2", "0-3", 6, 5, Some("Primary")),
    ("0-2", "0-5", 340, 339, None),
    ("0-2", "0-5", 25, 26, Some("Primary")),
    ("0-3", "0-5", 27, 28, None),
];

/// One direction of an association type.
#[derive(Clone, Debug)]
pub(crate) struct AssociationType {
    pub(crate) id: u64,
    /// The id of the same type seen from the other side.
    pub(crate) inverse: u64,
    pub(crate) category: &'static str,
    /// `None` for a pair's unlabelled default.
    pub(crate) label: Option<String>,
    /// The internal name of a user-defined label.
    name: Option<String>,
    from: String,
    to: String,
}

impl AssociationType {
    /// `AssociationSpecWithLabel`; an unlabelled type has no `label` (the contract types it as
    /// a string, never `null`).
    pub(crate) fn to_json(&self) -> Value {
        let mut spec = json!({"category": self.category, "typeId": self.id});
        if let Some(label) = &self.label {
            spec["label"] = json!(label);
        }
        spec
    }
}

/// Every association type of the portal, by id and by pair of object type ids.
#[derive(Clone, Debug)]
pub(crate) struct AssociationTypes {
    by_id: HashMap<u64, AssociationType>,
    /// `(from type id, to type id)` → the ids of that direction, in id order.
    by_pair: HashMap<(String, String), BTreeMap<u64, ()>>,
}

impl Default for AssociationTypes {
    /// A fresh portal: HubSpot's types between the built-in objects.
    fn default() -> Self {
        let mut types = AssociationTypes {
            by_id: HashMap::new(),
            by_pair: HashMap::new(),
        };
        for (from, to, id, inverse, label) in BUILTIN {
            let label = label.map(str::to_owned);
            types.add_pair([from, to], [id, inverse], HUBSPOT_DEFINED, label, None);
        }
        types
    }
}

impl AssociationTypes {
    /// Registers a type and its inverse.
    pub(crate) fn add_pair(
        &mut self,
        [from, to]: [&str; 2],
        [id, inverse]: [u64; 2],
        category: &'static str,
        label: Option<String>,
        name: Option<String>,
    ) {
        for (a, b, id, inverse) in [(from, to, id, inverse), (to, from, inverse, id)] {
            self.by_id.insert(
                id,
                AssociationType {
                    id,
                    inverse,
                    category,
                    label: label.clone(),
                    name: name.clone(),
                    from: a.to_owned(),
                    to: b.to_owned(),
                },
            );
            self.by_pair
                .entry((a.to_owned(), b.to_owned()))
                .or_default()
                .insert(id, ());
        }
    }

    /// The types from one object type to another, in id order.
    pub(crate) fn for_pair<'a>(
        &'a self,
        from: &str,
        to: &str,
    ) -> impl Iterator<Item = &'a AssociationType> + 'a {
        self.by_pair
            .get(&(from.to_owned(), to.to_owned()))
            .into_iter()
            .flat_map(|ids| ids.keys())
            .filter_map(|id| self.by_id.get(id))
    }

    /// A type by id.
    pub(crate) fn get(&self, id: u64) -> Option<&AssociationType> {
        self.by_id.get(&id)
    }

    /// The pair's unlabelled default (what `batch/associate/default` writes), HubSpot's own
    /// first.
    pub(crate) fn default_for(&self, from: &str, to: &str) -> Option<&AssociationType> {
        let unlabelled = || self.for_pair(from, to).filter(|t| t.label.is_none());
        unlabelled()
            .find(|t| t.category == HUBSPOT_DEFINED)
            .or_else(|| unlabelled().next())
    }

    /// The type a `types[]` entry names, or the 400 when the pair has no such id or the
    /// category is not the type's.
    pub(crate) fn check(
        &self,
        from: &str,
        to: &str,
        category: &str,
        id: u64,
    ) -> Result<&AssociationType, ApiError> {
        let found = self.by_id.get(&id).filter(|t| t.from == from && t.to == to);
        let Some(found) = found else {
            return Err(ApiError::validation(format!(
                "associationTypeId {id} is not a valid association type from {from} to {to}"
            ))
            .context("associationTypeId", vec![id.to_string()]));
        };
        if found.category != category {
            return Err(ApiError::validation(format!(
                "associationTypeId {id} has category {}, not {category}",
                found.category
            ))
            .context("associationCategory", vec![category.to_owned()]));
        }
        Ok(found)
    }

    /// Creates a user-defined label from `from` to `to` (and its inverse), with ids taken from
    /// `next`; returns both directions, this one first. A name already used between the two
    /// types is a 409.
    pub(crate) fn create_label(
        &mut self,
        [from, to]: [&str; 2],
        label: &str,
        name: &str,
        next: &mut u64,
    ) -> Result<[AssociationType; 2], ApiError> {
        if label.trim().is_empty() || name.trim().is_empty() {
            return Err(ApiError::validation(
                "An association label needs a non-empty `label` and `name`",
            ));
        }
        let taken = self
            .for_pair(from, to)
            .any(|t| t.name.as_deref() == Some(name));
        if taken {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                category::CONFLICT,
                format!("An association label named {name} already exists from {from} to {to}"),
            )
            .context("name", vec![name.to_owned()]));
        }
        let id = *next + 1;
        let inverse = *next + 2;
        *next += 2;
        let (label, name) = (Some(label.to_owned()), Some(name.to_owned()));
        self.add_pair([from, to], [id, inverse], USER_DEFINED, label, name);
        Ok([id, inverse].map(|id| self.by_id[&id].clone()))
    }

    /// The user-defined type `id` of the pair, or the refusal: 404 for an id the pair does not
    /// have, 400 for a HubSpot-defined or unlabelled one (they cannot be changed).
    fn user_label(&self, from: &str, to: &str, id: u64) -> Result<&AssociationType, ApiError> {
        let found = self
            .by_id
            .get(&id)
            .filter(|t| t.from == from && t.to == to)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "No association type {id} exists from {from} to {to}"
                ))
            })?;
        if found.category != USER_DEFINED || found.label.is_none() {
            return Err(ApiError::validation(format!(
                "Association type {id} is not a user-defined label and cannot be changed"
            ))
            .context("associationTypeId", vec![id.to_string()]));
        }
        Ok(found)
    }

    /// Renames a user-defined label (both directions).
    pub(crate) fn rename(
        &mut self,
        [from, to]: [&str; 2],
        id: u64,
        label: &str,
    ) -> Result<(), ApiError> {
        if label.trim().is_empty() {
            return Err(ApiError::validation("An association label needs a `label`"));
        }
        let inverse = self.user_label(from, to, id)?.inverse;
        for id in [id, inverse] {
            if let Some(found) = self.by_id.get_mut(&id) {
                found.label = Some(label.to_owned());
            }
        }
        Ok(())
    }

    /// Deletes a user-defined label (both directions); returns its two ids.
    pub(crate) fn remove(&mut self, [from, to]: [&str; 2], id: u64) -> Result<[u64; 2], ApiError> {
        let inverse = self.user_label(from, to, id)?.inverse;
        for id in [id, inverse] {
            if let Some(found) = self.by_id.remove(&id)
                && let Some(ids) = self.by_pair.get_mut(&(found.from, found.to))
            {
                ids.remove(&id);
            }
        }
        Ok([id, inverse])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_types_have_inverses_and_defaults() {
        let types = AssociationTypes::default();
        assert_eq!(types.default_for("0-1", "0-2").map(|t| t.id), Some(279));
        assert_eq!(types.default_for("0-2", "0-1").map(|t| t.id), Some(280));
        assert_eq!(types.default_for("0-3", "0-1").map(|t| t.id), Some(3));
        assert_eq!(types.default_for("0-1", "0-1").map(|t| t.id), None);
        assert_eq!(types.get(1).map(|t| t.inverse), Some(2));
        assert!(types.check("0-1", "0-2", HUBSPOT_DEFINED, 1).is_ok());
        assert!(types.check("0-1", "0-2", USER_DEFINED, 1).is_err());
        assert!(types.check("0-1", "0-3", HUBSPOT_DEFINED, 279).is_err());
        let ids: Vec<u64> = types.for_pair("0-1", "0-2").map(|t| t.id).collect();
        assert_eq!(ids, [1, 279]);
    }

    #[test]
    fn labels_are_created_renamed_and_removed() {
        let mut types = AssociationTypes::default();
        let mut next = 1000;
        let [forward, inverse] = types
            .create_label(["0-1", "0-2"], "Manager", "manager", &mut next)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((forward.id, inverse.id, next), (1001, 1002, 1002));
        assert_eq!(forward.inverse, 1002);
        assert!(
            types
                .create_label(["0-1", "0-2"], "Boss", "manager", &mut next)
                .is_err()
        );
        assert!(types.rename(["0-1", "0-2"], 1001, "Boss").is_ok());
        assert_eq!(
            types.get(1002).and_then(|t| t.label.clone()).as_deref(),
            Some("Boss")
        );
        assert!(types.rename(["0-1", "0-2"], 279, "Nope").is_err());
        assert_eq!(types.remove(["0-1", "0-2"], 1001).ok(), Some([1001, 1002]));
        assert!(types.get(1002).is_none());
        assert_eq!(types.for_pair("0-2", "0-1").count(), 2);
    }
}
