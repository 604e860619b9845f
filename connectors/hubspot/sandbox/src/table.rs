//! The records of one object type and their indexes: by id, and by each unique property.
//!
//! Records sit in a `Vec` in id order: ids are handed out in increasing order, so a new record
//! always goes at the end. A hash map finds a record's slot from its id, and one
//! [`UniqueIndex`] per unique property (contacts `email`, companies `domain`, created
//! `hasUniqueValue` properties) finds records by value. Every write goes through
//! [`Table::insert`], [`Table::update`] or [`Table::archive`], which keep the indexes in step:
//! a unique value that changes moves its entry, a cleared or archived one loses it.
//!
//! Archiving leaves a tombstone in the `Vec` (the slot map and the indexes forget the record at
//! once) so that no slot moves; once tombstones outnumber live records the `Vec` is compacted
//! and the slot map rebuilt. That costs time in proportion to the live records, paid once per
//! as many archives, so an archive costs O(1) amortised, and at most half of the `Vec` is ever
//! tombstones for a list page to step over.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::properties::Text;
#[cfg(test)]
use crate::property_map::PropertyMap;
use crate::record::Record;
use crate::registry::ObjectDef;
use crate::unique_index::UniqueIndex;

/// One object type's records.
#[derive(Debug)]
pub(crate) struct Table {
    records: Vec<Record>,
    slots: HashMap<u64, usize>,
    unique: Vec<UniqueIndex>,
    /// How many of `records` are tombstones.
    archived: usize,
}

impl Table {
    /// An empty table with an index for each unique property of `object`.
    pub(crate) fn new(object: &ObjectDef) -> Self {
        Table {
            records: Vec::new(),
            slots: HashMap::new(),
            unique: object
                .indexed_properties()
                .map(|p| UniqueIndex::new(p.name.clone()))
                .collect(),
            archived: 0,
        }
    }

    /// Adds an index for a unique property created after the table. No record can hold a
    /// value of a property that did not exist (writes refuse unknown properties), so the new
    /// index starts empty.
    pub(crate) fn add_index(&mut self, property: Text) {
        if self.index(&property).is_none() {
            self.unique.push(UniqueIndex::new(property));
        }
    }

    /// How many records the table holds (archived ones not counted).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.records.len() - self.archived
    }

    /// Every record, in id order.
    pub(crate) fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(|r| !r.archived)
    }

    /// The records whose id is greater than `after`, in id order.
    pub(crate) fn records_after(&self, after: u64) -> impl Iterator<Item = &Record> {
        let start = self.records.partition_point(|r| r.id <= after);
        self.records[start..].iter().filter(|r| !r.archived)
    }

    pub(crate) fn get(&self, id: u64) -> Option<&Record> {
        self.slots.get(&id).map(|&slot| &self.records[slot])
    }

    /// The index of a unique property, if it has one.
    pub(crate) fn index(&self, property: &str) -> Option<&UniqueIndex> {
        self.unique.iter().find(|i| i.property() == property)
    }

    /// The first record, in id order, holding exactly `value` in `property`, other than
    /// `except`. Uses the property's index (every unique property has one); scans otherwise.
    pub(crate) fn first_holding(
        &self,
        property: &str,
        value: &str,
        except: Option<u64>,
    ) -> Option<&Record> {
        let fits = |r: &&Record| {
            Some(r.id) != except && r.properties.get(property).is_some_and(|v| v == value)
        };
        match self.index(property) {
            Some(index) => index
                .candidates(value)
                .iter()
                .filter_map(|id| self.get(*id))
                .find(fits),
            None => self.records().find(fits),
        }
    }

    /// Adds a record whose id is greater than every id in the table.
    pub(crate) fn insert(&mut self, record: Record) {
        debug_assert!(self.records.last().is_none_or(|last| last.id < record.id));
        for index in &mut self.unique {
            if let Some(value) = record.properties.get(index.property()) {
                index.insert(value, record.id);
            }
        }
        self.slots.insert(record.id, self.records.len());
        self.records.push(record);
    }

    /// Applies values to a record (`""` clears); bumps `updatedAt` only if something changed.
    /// Returns false when there is no such record.
    pub(crate) fn update(
        &mut self,
        id: u64,
        values: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(&slot) = self.slots.get(&id) else {
            return false;
        };
        let record = &mut self.records[slot];
        let mut changed = false;
        for (name, value) in values {
            let new = Some(value.as_str()).filter(|v| !v.is_empty());
            if record.properties.get(name) == new {
                continue;
            }
            let old = match new {
                Some(new) => record.properties.insert(name, new),
                None => record.properties.remove(name),
            };
            changed = true;
            if let Some(index) = self.unique.iter_mut().find(|i| i.property() == name) {
                if let Some(old) = &old {
                    index.remove(old, id);
                }
                if let Some(new) = new {
                    index.insert(new, id);
                }
            }
        }
        if changed {
            record.updated_at = now;
        }
        true
    }

    /// Archives a record: it leaves the slot map and the indexes (releasing its unique values)
    /// and stays behind as a tombstone. Returns false when there is no such record.
    pub(crate) fn archive(&mut self, id: u64) -> bool {
        let Some(slot) = self.slots.remove(&id) else {
            return false;
        };
        let record = &mut self.records[slot];
        let properties = std::mem::take(&mut record.properties);
        record.archived = true;
        for index in &mut self.unique {
            if let Some(value) = properties.get(index.property()) {
                index.remove(value, id);
            }
        }
        self.archived += 1;
        if self.archived * 2 > self.records.len() {
            self.compact();
        }
        true
    }

    /// Drops the tombstones and renumbers the slots.
    fn compact(&mut self) {
        self.records.retain(|r| !r.archived);
        self.archived = 0;
        self.slots.clear();
        for (slot, record) in self.records.iter().enumerate() {
            self.slots.insert(record.id, slot);
        }
    }

    /// Checks every index against a scan of the records (tests only).
    #[cfg(test)]
    pub(crate) fn assert_indexes_consistent(&self) {
        use crate::unique_index::fold;
        assert_eq!(self.slots.len(), self.len());
        assert_eq!(
            self.records.iter().filter(|r| r.archived).count(),
            self.archived
        );
        assert!(self.archived * 2 <= self.records.len());
        for (slot, record) in self.records.iter().enumerate() {
            let expected = (!record.archived).then_some(&slot);
            assert_eq!(self.slots.get(&record.id), expected);
            if record.archived {
                assert_eq!(record.properties, PropertyMap::default());
            }
        }
        assert!(self.records.windows(2).all(|w| w[0].id < w[1].id));
        for index in &self.unique {
            let mut expected: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            for record in self.records() {
                if let Some(value) = record.properties.get(index.property()) {
                    expected
                        .entry(fold(value).into_owned())
                        .or_default()
                        .push(record.id);
                }
            }
            let actual: BTreeMap<String, Vec<u64>> = index
                .entries()
                .map(|(key, ids)| (key.to_owned(), ids.to_vec()))
                .collect();
            assert_eq!(actual, expected, "index of {}", index.property());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{ObjectType, Registry};

    fn record(id: u64, email: &str) -> Record {
        let now = Utc::now();
        Record {
            id,
            properties: [("email", email)].into_iter().collect(),
            created_at: now,
            updated_at: now,
            archived: false,
        }
    }

    fn contacts() -> Table {
        Table::new(Registry::default().get(ObjectType::CONTACTS))
    }

    #[test]
    fn lookups_go_through_the_index_not_a_scan() {
        let mut table = contacts();
        for id in 1..=1000 {
            table.insert(record(id, &format!("user{id}@x.co")));
        }
        // A record the index was not told about: a scan would find it, an index lookup not.
        let hidden = record(1001, "hidden@x.co");
        table.slots.insert(hidden.id, table.records.len());
        table.records.push(hidden);
        assert!(table.first_holding("email", "hidden@x.co", None).is_none());
        assert_eq!(
            table
                .first_holding("email", "user500@x.co", None)
                .map(|r| r.id),
            Some(500)
        );
        assert_eq!(
            table.index("email").map(|i| i.candidates("USER500@x.co")),
            Some(&[500][..])
        );
        // A property without an index is scanned.
        assert!(table.index("firstname").is_none());
    }

    #[test]
    fn update_moves_and_clears_index_entries() {
        let mut table = contacts();
        table.insert(record(1, "a@x.co"));
        table.insert(record(2, "b@x.co"));
        let set = |value: &str| BTreeMap::from([("email".to_owned(), value.to_owned())]);
        assert!(table.update(1, &set("c@x.co"), Utc::now()));
        table.assert_indexes_consistent();
        assert!(table.first_holding("email", "a@x.co", None).is_none());
        assert_eq!(
            table.first_holding("email", "c@x.co", None).map(|r| r.id),
            Some(1)
        );
        assert!(table.update(2, &set(""), Utc::now()));
        table.assert_indexes_consistent();
        assert!(table.first_holding("email", "b@x.co", None).is_none());
        assert!(!table.update(3, &set("d@x.co"), Utc::now()));
        assert_eq!(table.records_after(1).count(), 1);
    }

    #[test]
    fn archive_releases_values_and_compacts() {
        let mut table = contacts();
        for id in 1..=6 {
            table.insert(record(id, &format!("u{id}@x.co")));
        }
        assert!(table.archive(2));
        assert!(!table.archive(2), "a record is archived once");
        assert!(!table.archive(99));
        table.assert_indexes_consistent();
        assert!(table.get(2).is_none());
        assert!(table.first_holding("email", "u2@x.co", None).is_none());
        let ids = |t: &Table| t.records_after(1).map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(&table), [3, 4, 5, 6]);
        assert_eq!(table.records.len(), 6, "a tombstone until compaction");
        for id in [1, 3, 5] {
            assert!(table.archive(id));
            table.assert_indexes_consistent();
        }
        assert_eq!(
            table.records.len(),
            2,
            "compacted once tombstones outnumber records"
        );
        assert_eq!(ids(&table), [4, 6]);
        assert_eq!(table.len(), 2);
        assert_eq!(table.get(6).map(|r| r.id), Some(6));
        table.insert(record(7, "u2@x.co"));
        table.assert_indexes_consistent();
        assert_eq!(
            table.first_holding("email", "u2@x.co", None).map(|r| r.id),
            Some(7)
        );
    }
}
