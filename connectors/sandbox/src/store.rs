//! The in-memory record store: one table per object type, ids handed out in increasing order.
//!
//! Records hold only the properties written to them; `hs_object_id`, `createdate` and
//! `lastmodifieddate` are derived from the record's id and timestamps, so they can never drift
//! and can never be written. An empty string clears a property (FACTS U4): the key is removed.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::object_type::ObjectType;

/// ISO-8601 with milliseconds and `Z`, as HubSpot writes timestamps.
pub(crate) fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One CRM record.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) id: u64,
    pub(crate) properties: BTreeMap<String, String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

/// Which properties a read returns.
#[derive(Clone, Debug)]
pub(crate) enum Selection {
    /// The object type's defaults (FACTS U5).
    Defaults,
    /// The named ones plus the three system properties; unknown names are ignored.
    Named(Vec<String>),
    /// Everything the record has (used by upsert/update results and the control routes).
    All,
}

impl Selection {
    /// `Named` when the client asked for properties, `Defaults` otherwise.
    pub(crate) fn from_request(names: Vec<String>) -> Self {
        let names: Vec<String> = names.into_iter().filter(|n| !n.is_empty()).collect();
        if names.is_empty() {
            Selection::Defaults
        } else {
            Selection::Named(names)
        }
    }
}

const SYSTEM_PROPERTIES: [&str; 3] = ["createdate", "hs_object_id", "lastmodifieddate"];

impl Record {
    /// A property's current value, including the derived system properties.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        match name {
            "hs_object_id" => Some(self.id.to_string()),
            "createdate" => Some(iso(self.created_at)),
            "lastmodifieddate" => Some(iso(self.updated_at)),
            _ => self.properties.get(name).cloned(),
        }
    }

    /// The selected properties as a map; properties without a value are left out (the
    /// contract types every value as a string, so there is no `null`).
    pub(crate) fn select(
        &self,
        object: ObjectType,
        selection: &Selection,
    ) -> BTreeMap<String, String> {
        let mut names: Vec<&str> = match selection {
            Selection::Defaults => object.default_properties().to_vec(),
            Selection::Named(names) => names.iter().map(String::as_str).collect(),
            Selection::All => self.properties.keys().map(String::as_str).collect(),
        };
        names.extend(SYSTEM_PROPERTIES);
        names
            .iter()
            .filter_map(|n| self.get(n).map(|v| ((*n).to_owned(), v)))
            .collect()
    }

    /// The `SimplePublicObject` form of this record.
    pub(crate) fn to_json(&self, object: ObjectType, selection: &Selection) -> Value {
        json!({
            "id": self.id.to_string(),
            "properties": self.select(object, selection),
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "archived": false,
        })
    }
}

/// All records of all object types.
#[derive(Debug)]
pub(crate) struct Store {
    next_id: u64,
    tables: HashMap<ObjectType, BTreeMap<u64, Record>>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            next_id: 1,
            tables: HashMap::new(),
        }
    }
}

impl Store {
    /// Removes every record. Ids keep increasing so a reset never reuses one.
    pub(crate) fn clear(&mut self) {
        self.tables.clear();
    }

    fn table(&self, object: ObjectType) -> impl Iterator<Item = &Record> {
        self.tables
            .get(&object)
            .into_iter()
            .flat_map(BTreeMap::values)
    }

    /// Records of one type, in id order.
    pub(crate) fn records(&self, object: ObjectType) -> Vec<&Record> {
        self.table(object).collect()
    }

    pub(crate) fn get(&self, object: ObjectType, id: u64) -> Option<&Record> {
        self.tables.get(&object).and_then(|t| t.get(&id))
    }

    /// Finds a record by a unique property (`hs_object_id` is the record id itself).
    pub(crate) fn find(&self, object: ObjectType, property: &str, value: &str) -> Option<&Record> {
        if property == "hs_object_id" {
            return value.parse().ok().and_then(|id| self.get(object, id));
        }
        self.table(object)
            .find(|r| r.properties.get(property).is_some_and(|v| v == value))
    }

    /// The id of another record holding `value` in the unique `property`, if any.
    pub(crate) fn unique_owner(
        &self,
        object: ObjectType,
        property: &str,
        value: &str,
        except: Option<u64>,
    ) -> Option<u64> {
        self.table(object)
            .find(|r| {
                Some(r.id) != except && r.properties.get(property).is_some_and(|v| v == value)
            })
            .map(|r| r.id)
    }

    /// Creates a record from non-empty values and returns its id.
    pub(crate) fn create(
        &mut self,
        object: ObjectType,
        values: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let properties = values
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let record = Record {
            id,
            properties,
            created_at: now,
            updated_at: now,
        };
        self.tables.entry(object).or_default().insert(id, record);
        id
    }

    /// Applies values to a record (`""` clears); bumps `updatedAt` only if something changed.
    /// Returns false when there is no such record.
    pub(crate) fn update(
        &mut self,
        object: ObjectType,
        id: u64,
        values: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(record) = self.tables.get_mut(&object).and_then(|t| t.get_mut(&id)) else {
            return false;
        };
        let mut changed = false;
        for (name, value) in values {
            if value.is_empty() {
                changed |= record.properties.remove(name).is_some();
            } else if record.properties.get(name) != Some(value) {
                record.properties.insert(name.clone(), value.clone());
                changed = true;
            }
        }
        if changed {
            record.updated_at = now;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn create_find_update_clear() {
        let mut store = Store::default();
        let now = Utc::now();
        let id = store.create(ObjectType::Contacts, &values(&[("email", "a@b.co")]), now);
        assert_eq!(id, 1);
        assert_eq!(
            store
                .find(ObjectType::Contacts, "email", "a@b.co")
                .map(|r| r.id),
            Some(1)
        );
        assert_eq!(
            store
                .find(ObjectType::Contacts, "hs_object_id", "1")
                .map(|r| r.id),
            Some(1)
        );
        assert!(
            store
                .find(ObjectType::Companies, "hs_object_id", "1")
                .is_none()
        );
        let later = now + chrono::Duration::seconds(5);
        assert!(store.update(
            ObjectType::Contacts,
            1,
            &values(&[("firstname", "Ada")]),
            later
        ));
        assert_eq!(
            store.get(ObjectType::Contacts, 1).map(|r| r.updated_at),
            Some(later)
        );
        store.update(
            ObjectType::Contacts,
            1,
            &values(&[("firstname", "")]),
            later,
        );
        let record = store.get(ObjectType::Contacts, 1);
        assert_eq!(record.and_then(|r| r.get("firstname")), None);
        assert_eq!(
            record.and_then(|r| r.get("hs_object_id")).as_deref(),
            Some("1")
        );
    }

    #[test]
    fn unchanged_update_keeps_timestamp() {
        let mut store = Store::default();
        let now = Utc::now();
        store.create(ObjectType::Contacts, &values(&[("email", "a@b.co")]), now);
        let later = now + chrono::Duration::seconds(5);
        store.update(
            ObjectType::Contacts,
            1,
            &values(&[("email", "a@b.co")]),
            later,
        );
        assert_eq!(
            store.get(ObjectType::Contacts, 1).map(|r| r.updated_at),
            Some(now)
        );
    }

    #[test]
    fn ids_are_not_reused_after_clear() {
        let mut store = Store::default();
        store.create(ObjectType::Contacts, &BTreeMap::new(), Utc::now());
        store.clear();
        assert_eq!(
            store.create(ObjectType::Contacts, &BTreeMap::new(), Utc::now()),
            2
        );
    }
}
