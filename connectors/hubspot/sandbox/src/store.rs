//! The in-memory portal: the object-type registry and one [`Table`] per object type, record
//! ids handed out in increasing order across all of them.
//!
//! Every lookup goes through an index (by id, or by a unique property's value), so no request
//! costs more as the store grows. An empty string clears a property (FACTS U4): the key is
//! removed. The registry lives here, under the same lock as the records, because it changes at
//! run time and every write is checked against it.
//!
//! The rest of the portal lives here too, under the same lock, because its rules read or
//! follow the records: associations and their types (a record's archive removes its
//! associations), lists (an archive removes the record from its lists), custom event
//! definitions and sent events (an event names a contact), and owners.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::association_types::{AssociationTypes, USER_DEFINED};
use crate::associations::Associations;
use crate::errors::ApiError;
use crate::events::Events;
use crate::lists::Lists;
use crate::owners::Owners;
use crate::properties::PropertyDef;
use crate::record::Record;
use crate::registry::{ObjectDef, ObjectType, Registry};
use crate::schema::SchemaEgg;
use crate::table::Table;

/// The number of the first custom object type id: `2-1000001`.
const FIRST_CUSTOM_TYPE: u64 = 1_000_001;

/// Association definition ids of custom objects start above HubSpot's own (279 and the like).
const FIRST_ASSOCIATION: u64 = 1_000;

/// All object types and all their records.
#[derive(Debug)]
pub(crate) struct Store {
    next_id: u64,
    /// The number of the next custom object type id (`2-<n>`); not reset, like record ids.
    next_custom: u64,
    /// The last association definition id handed out; not reset.
    pub(crate) next_association: u64,
    registry: Registry,
    tables: HashMap<ObjectType, Table>,
    /// The associations between records.
    pub(crate) associations: Associations,
    /// The association types (labels) of every pair of object types.
    pub(crate) association_types: AssociationTypes,
    /// Lists and their memberships.
    pub(crate) lists: Lists,
    /// Custom event definitions and the events sent.
    pub(crate) events: Events,
    /// The owners (users records can be assigned to).
    pub(crate) owners: Owners,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            next_id: 1,
            next_custom: FIRST_CUSTOM_TYPE,
            next_association: FIRST_ASSOCIATION,
            registry: Registry::default(),
            tables: HashMap::new(),
            associations: Associations::default(),
            association_types: AssociationTypes::default(),
            lists: Lists::default(),
            events: Events::default(),
            owners: Owners::default(),
        }
    }
}

impl Store {
    /// A fresh portal: every record and every run-time definition go. Ids keep increasing so
    /// a reset never reuses one.
    pub(crate) fn clear(&mut self) {
        self.tables.clear();
        self.registry = Registry::default();
        self.associations = Associations::default();
        self.association_types = AssociationTypes::default();
        self.lists.clear();
        self.events.clear();
        self.owners = Owners::default();
    }

    /// The object types.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Creates a custom object type from a schema; returns its key.
    pub(crate) fn create_schema(
        &mut self,
        egg: SchemaEgg,
        now: DateTime<Utc>,
    ) -> Result<ObjectType, ApiError> {
        let def = egg.build(
            &self.registry,
            self.next_custom,
            &mut self.next_association,
            now,
        )?;
        self.next_custom += 1;
        let from = def.type_id.to_string();
        for association in def.custom.iter().flat_map(|c| &c.associations) {
            self.next_association += 1;
            self.association_types.add_pair(
                [&from, &association.to_type_id],
                [association.id, self.next_association],
                USER_DEFINED,
                None,
                None,
            );
        }
        Ok(self.registry.add(def))
    }

    /// Adds a property to an object type, with a unique index if it has unique values.
    pub(crate) fn add_property(&mut self, object: ObjectType, property: PropertyDef) {
        if property.unique
            && let Some(table) = self.tables.get_mut(&object)
        {
            table.add_index(property.name.clone());
        }
        self.registry.get_mut(object).properties.push(property);
    }

    /// Replaces the definition of the property of the same name (a `PropertyUpdate`; unique
    /// values never change, so the indexes stay as they are).
    pub(crate) fn replace_property(&mut self, object: ObjectType, property: PropertyDef) {
        let properties = &mut self.registry.get_mut(object).properties;
        if let Some(slot) = properties.iter_mut().find(|p| p.name == property.name) {
            *slot = property;
        }
    }

    /// The object type a path segment names, if any.
    pub(crate) fn resolve(&self, segment: &str) -> Option<ObjectType> {
        self.registry.resolve(segment)
    }

    /// One object type's definition.
    pub(crate) fn def(&self, object: ObjectType) -> &ObjectDef {
        self.registry.get(object)
    }

    /// The table of one object type, if a record of it was ever created (since a reset).
    pub(crate) fn table(&self, object: ObjectType) -> Option<&Table> {
        self.tables.get(&object)
    }

    /// Records of one type, in id order.
    pub(crate) fn records(&self, object: ObjectType) -> impl Iterator<Item = &Record> {
        self.table(object).into_iter().flat_map(Table::records)
    }

    /// Records of one type with an id greater than `after`, in id order.
    pub(crate) fn records_after(
        &self,
        object: ObjectType,
        after: u64,
    ) -> impl Iterator<Item = &Record> {
        self.table(object)
            .into_iter()
            .flat_map(move |t| t.records_after(after))
    }

    pub(crate) fn get(&self, object: ObjectType, id: u64) -> Option<&Record> {
        self.table(object).and_then(|t| t.get(id))
    }

    /// Finds a record by a unique property (`hs_object_id` is the record id itself); values
    /// match exactly, after lower-casing for `email` and `domain` (which are stored so).
    pub(crate) fn find(&self, object: ObjectType, property: &str, value: &str) -> Option<&Record> {
        if property == "hs_object_id" {
            return value.parse().ok().and_then(|id| self.get(object, id));
        }
        let value = self.def(object).stored_value(property, value);
        self.table(object)?.first_holding(property, &value, None)
    }

    /// The id of another record holding `value` in the unique `property`, if any.
    pub(crate) fn unique_owner(
        &self,
        object: ObjectType,
        property: &str,
        value: &str,
        except: Option<u64>,
    ) -> Option<u64> {
        let value = self.def(object).stored_value(property, value);
        self.table(object)?
            .first_holding(property, &value, except)
            .map(|r| r.id)
    }

    /// Creates a record from the non-empty values (`(name, value)` pairs, e.g. a map) and
    /// returns its id.
    pub(crate) fn create<'a>(
        &mut self,
        object: ObjectType,
        values: impl IntoIterator<Item = (&'a String, &'a String)>,
        now: DateTime<Utc>,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let def = self.registry.get(object);
        let stored: Vec<(&str, Cow<'_, str>)> = values
            .into_iter()
            .map(|(k, v)| (k.as_str(), def.stored_value(k, v)))
            .collect();
        let properties = stored.iter().map(|(k, v)| (*k, v.as_ref())).collect();
        let record = Record {
            id,
            properties,
            created_at: now,
            updated_at: now,
            archived: false,
        };
        let registry = &self.registry;
        self.tables
            .entry(object)
            .or_insert_with(|| Table::new(registry.get(object)))
            .insert(record);
        id
    }

    /// Archives a record (HubSpot's delete): it vanishes from every read and releases its
    /// unique values, its associations and list memberships go. Returns false when there is
    /// no such record.
    pub(crate) fn archive(&mut self, object: ObjectType, id: u64) -> bool {
        let archived = self.tables.get_mut(&object).is_some_and(|t| t.archive(id));
        if archived {
            self.associations.remove_record((object, id));
            self.lists.forget_record(object, id);
        }
        archived
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
        let def = self.registry.get(object);
        let lowered = values
            .iter()
            .any(|(k, v)| matches!(def.stored_value(k, v), Cow::Owned(_)));
        let values = if lowered {
            Cow::Owned(
                values
                    .iter()
                    .map(|(k, v)| (k.clone(), def.stored_value(k, v).into_owned()))
                    .collect(),
            )
        } else {
            Cow::Borrowed(values)
        };
        self.tables
            .get_mut(&object)
            .is_some_and(|t| t.update(id, &values, now))
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
        let id = store.create(ObjectType::CONTACTS, &values(&[("email", "a@b.co")]), now);
        assert_eq!(id, 1);
        assert_eq!(
            store
                .find(ObjectType::CONTACTS, "email", "a@b.co")
                .map(|r| r.id),
            Some(1)
        );
        assert_eq!(
            store
                .find(ObjectType::CONTACTS, "hs_object_id", "1")
                .map(|r| r.id),
            Some(1)
        );
        assert!(
            store
                .find(ObjectType::COMPANIES, "hs_object_id", "1")
                .is_none()
        );
        let later = now + chrono::Duration::seconds(5);
        assert!(store.update(
            ObjectType::CONTACTS,
            1,
            &values(&[("firstname", "Ada")]),
            later
        ));
        assert_eq!(
            store.get(ObjectType::CONTACTS, 1).map(|r| r.updated_at),
            Some(later)
        );
        store.update(
            ObjectType::CONTACTS,
            1,
            &values(&[("firstname", "")]),
            later,
        );
        let record = store.get(ObjectType::CONTACTS, 1);
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
        store.create(ObjectType::CONTACTS, &values(&[("email", "a@b.co")]), now);
        let later = now + chrono::Duration::seconds(5);
        store.update(
            ObjectType::CONTACTS,
            1,
            &values(&[("email", "a@b.co")]),
            later,
        );
        assert_eq!(
            store.get(ObjectType::CONTACTS, 1).map(|r| r.updated_at),
            Some(now)
        );
    }

    #[test]
    fn emails_are_stored_and_found_in_lower_case() {
        let mut store = Store::default();
        let now = Utc::now();
        let id = store.create(
            ObjectType::CONTACTS,
            &values(&[("email", "Ann@X.com")]),
            now,
        );
        let email = |store: &Store| {
            store
                .get(ObjectType::CONTACTS, id)
                .and_then(|r| r.get("email"))
        };
        assert_eq!(email(&store).as_deref(), Some("ann@x.com"));
        let found = store
            .find(ObjectType::CONTACTS, "email", "ANN@x.COM")
            .map(|r| r.id);
        assert_eq!(found, Some(id));
        assert_eq!(
            store.unique_owner(ObjectType::CONTACTS, "email", "ann@X.com", None),
            Some(id)
        );
        store.update(
            ObjectType::CONTACTS,
            id,
            &values(&[("email", "Bob@Y.org")]),
            now,
        );
        assert_eq!(email(&store).as_deref(), Some("bob@y.org"));
        let domain = values(&[("domain", "Example.COM"), ("name", "Example Inc")]);
        let company = store.create(ObjectType::COMPANIES, &domain, now);
        let record = store.get(ObjectType::COMPANIES, company);
        assert_eq!(
            record.and_then(|r| r.get("domain")).as_deref(),
            Some("example.com")
        );
        assert_eq!(
            record.and_then(|r| r.get("name")).as_deref(),
            Some("Example Inc")
        );
    }

    #[test]
    fn ids_are_not_reused_after_clear() {
        let mut store = Store::default();
        store.create(ObjectType::CONTACTS, &BTreeMap::new(), Utc::now());
        store.clear();
        assert_eq!(
            store.create(ObjectType::CONTACTS, &BTreeMap::new(), Utc::now()),
            2
        );
    }
}
