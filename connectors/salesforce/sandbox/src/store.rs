//! The in-memory org: every object's definition and one table of records per object, with
//! ids made from the object's key prefix (FACTS I1–I3).
//!
//! A table keeps its records in creation order (a `BTreeMap` by sequence number), finds them
//! by id through a hash map, and by the value of each indexed field (external ids, unique
//! fields, `idLookup` fields such as `Email`) through a hash map keyed by the value in lower
//! case: Salesforce matches external ids and text ignoring case. So a write, an upsert, a
//! lookup by id or by an indexed value, and a query filtering on one of them cost the same
//! however many records the org holds. Deleted ids are remembered, so a second delete or an
//! update of a deleted record says `ENTITY_IS_DELETED` (FACTS E4).
//!
//! Changes can be recorded in an [`Undo`] log and rolled back: `allOrNone` (FACTS C3).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::builtin::standard_objects;
use crate::custom::{self, CustomObject};
use crate::ids;
use crate::schema::{FieldDef, FieldType, ObjectDef};

/// An object's place in the store.
pub(crate) type ObjectKey = usize;

/// One record: the values written (canonical field names, no nulls) and its times.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) values: HashMap<String, Value>,
    pub(crate) created: DateTime<Utc>,
    pub(crate) modified: DateTime<Utc>,
}

/// Salesforce's datetime form: `2024-01-01T00:00:00.000+0000`.
pub(crate) fn format_datetime(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

/// The index key of a value: text in lower case, other values as JSON text.
pub(crate) fn index_key(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.to_lowercase()),
        other => Some(other.to_string()),
    }
}

/// The records of one object.
#[derive(Debug, Default)]
pub(crate) struct Table {
    records: BTreeMap<u64, Record>,
    by_id: HashMap<String, u64>,
    indexes: HashMap<String, HashMap<String, Vec<u64>>>,
    deleted: HashSet<String>,
}

impl Table {
    fn index_add(&mut self, field: &str, value: &Value, seq: u64) {
        if let (Some(index), Some(key)) = (self.indexes.get_mut(field), index_key(value)) {
            index.entry(key).or_default().push(seq);
        }
    }

    fn index_remove(&mut self, field: &str, value: &Value, seq: u64) {
        if let (Some(index), Some(key)) = (self.indexes.get_mut(field), index_key(value))
            && let Some(seqs) = index.get_mut(&key)
        {
            seqs.retain(|s| *s != seq);
            if seqs.is_empty() {
                index.remove(&key);
            }
        }
    }

    fn put(&mut self, seq: u64, record: Record) {
        let indexed: Vec<String> = self.indexes.keys().cloned().collect();
        for field in indexed {
            if let Some(value) = record.values.get(&field).cloned() {
                self.index_add(&field, &value, seq);
            }
        }
        self.deleted.remove(&record.id);
        self.by_id.insert(record.id.clone(), seq);
        self.records.insert(seq, record);
    }

    fn take(&mut self, seq: u64) -> Option<Record> {
        let record = self.records.remove(&seq)?;
        let indexed: Vec<String> = self.indexes.keys().cloned().collect();
        for field in indexed {
            if let Some(value) = record.values.get(&field) {
                self.index_remove(&field, value, seq);
            }
        }
        self.by_id.remove(&record.id);
        Some(record)
    }

    /// Records in creation order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Record> {
        self.records.values()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// The record with this 18-character id.
    pub(crate) fn get(&self, id: &str) -> Option<&Record> {
        self.by_id.get(id).and_then(|seq| self.records.get(seq))
    }

    pub(crate) fn was_deleted(&self, id: &str) -> bool {
        self.deleted.contains(id)
    }

    /// Whether `field` has an index.
    pub(crate) fn is_indexed(&self, field: &str) -> bool {
        self.indexes.contains_key(field)
    }

    /// The records whose indexed `field` equals `value` ignoring case, in creation order.
    pub(crate) fn lookup(&self, field: &str, value: &Value) -> Vec<&Record> {
        let Some(key) = index_key(value) else {
            return Vec::new();
        };
        let mut seqs: Vec<u64> = self
            .indexes
            .get(field)
            .and_then(|index| index.get(&key))
            .cloned()
            .unwrap_or_default();
        seqs.sort_unstable();
        seqs.iter().filter_map(|s| self.records.get(s)).collect()
    }
}

/// One change, as [`Store::undo`] reverses it.
#[derive(Debug)]
enum Change {
    Created(ObjectKey, String),
    Updated(ObjectKey, u64, Record),
    Deleted(ObjectKey, u64, Record),
}

/// The changes of a request that may have to be rolled back.
#[derive(Debug, Default)]
pub(crate) struct Undo(Vec<Change>);

/// Every object and every record.
#[derive(Debug)]
pub(crate) struct Store {
    objects: Vec<ObjectDef>,
    tables: Vec<Table>,
    by_name: HashMap<String, ObjectKey>,
    by_prefix: HashMap<String, ObjectKey>,
    next_seq: u64,
    next_custom: usize,
    /// The id of the API user (`005…`), owner and author of every record.
    pub(crate) user_id: String,
    /// The org id (`00D…`).
    pub(crate) org_id: String,
}

impl Store {
    /// An org with the standard objects and its API user.
    pub(crate) fn new(username: &str) -> Self {
        let mut store = Store {
            objects: Vec::new(),
            tables: Vec::new(),
            by_name: HashMap::new(),
            by_prefix: HashMap::new(),
            next_seq: 1,
            next_custom: 0,
            user_id: String::new(),
            org_id: ids::make("00D", 1),
        };
        for object in standard_objects() {
            store.add_object(object);
        }
        if let Some(user) = store.object("User") {
            let values = HashMap::from([
                ("Username".to_owned(), json!(username)),
                ("LastName".to_owned(), json!("User")),
                ("FirstName".to_owned(), json!("Integration")),
                ("Email".to_owned(), json!(username)),
                ("Alias".to_owned(), json!("integ")),
                ("IsActive".to_owned(), json!(true)),
            ]);
            store.user_id = store.insert(user, values, Utc::now(), None);
        }
        store
    }

    fn add_object(&mut self, object: ObjectDef) -> ObjectKey {
        let key = self.objects.len();
        let mut table = Table::default();
        for field in object.indexed_fields() {
            table.indexes.insert(field.name.clone(), HashMap::new());
        }
        self.by_name.insert(object.name.to_ascii_lowercase(), key);
        self.by_prefix.insert(object.key_prefix.clone(), key);
        self.objects.push(object);
        self.tables.push(table);
        key
    }

    /// Defines a custom object, or adds custom fields to an existing object. Nothing changes
    /// unless the whole definition is valid.
    pub(crate) fn define(&mut self, definition: &CustomObject) -> Result<ObjectKey, String> {
        let existing = self.object(&definition.name);
        let mut object = match existing {
            Some(key) => self.objects[key].clone(),
            None => {
                let prefix = loop {
                    let prefix = ids::custom_prefix(self.next_custom);
                    self.next_custom += 1;
                    if !self.by_prefix.contains_key(&prefix) {
                        break prefix;
                    }
                };
                custom::new_object(definition, &prefix)?
            }
        };
        let own_name = object.name.clone();
        for field in &definition.fields {
            let built = custom::field(field, |target| {
                if target.eq_ignore_ascii_case(&own_name) {
                    return Some(own_name.clone());
                }
                self.object(target).map(|k| self.objects[k].name.clone())
            })?;
            object.push(built);
        }
        Ok(match existing {
            Some(key) => {
                for field in object.indexed_fields() {
                    if !self.tables[key].indexes.contains_key(&field.name) {
                        let mut index: HashMap<String, Vec<u64>> = HashMap::new();
                        for (seq, record) in &self.tables[key].records {
                            if let Some(k) = record.values.get(&field.name).and_then(index_key) {
                                index.entry(k).or_default().push(*seq);
                            }
                        }
                        self.tables[key].indexes.insert(field.name.clone(), index);
                    }
                }
                self.objects[key] = object;
                key
            }
            None => self.add_object(object),
        })
    }

    /// The object named `name`, ignoring case.
    pub(crate) fn object(&self, name: &str) -> Option<ObjectKey> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    /// The object whose key prefix starts `id`.
    pub(crate) fn object_of_id(&self, id: &str) -> Option<ObjectKey> {
        id.get(..3)
            .and_then(|prefix| self.by_prefix.get(prefix))
            .copied()
    }

    pub(crate) fn def(&self, key: ObjectKey) -> &ObjectDef {
        &self.objects[key]
    }

    pub(crate) fn table(&self, key: ObjectKey) -> &Table {
        &self.tables[key]
    }

    /// Every object, in definition order.
    pub(crate) fn objects(&self) -> impl Iterator<Item = (ObjectKey, &ObjectDef)> {
        self.objects.iter().enumerate()
    }

    /// The id the next record of `key` gets (for rolled-back items, FACTS C3).
    fn next_id(&mut self, key: ObjectKey) -> (u64, String) {
        let seq = self.next_seq;
        self.next_seq += 1;
        (seq, ids::make(&self.objects[key].key_prefix, seq))
    }

    /// Creates a record from checked values; returns its id.
    pub(crate) fn insert(
        &mut self,
        key: ObjectKey,
        values: HashMap<String, Value>,
        now: DateTime<Utc>,
        undo: Option<&mut Undo>,
    ) -> String {
        let (seq, id) = self.next_id(key);
        let record = Record {
            id: id.clone(),
            values,
            created: now,
            modified: now,
        };
        self.tables[key].put(seq, record);
        if let Some(undo) = undo {
            undo.0.push(Change::Created(key, id.clone()));
        }
        id
    }

    /// Sets (or, for `null`, clears) checked values of a record.
    pub(crate) fn update(
        &mut self,
        key: ObjectKey,
        id: &str,
        changes: Vec<(String, Value)>,
        now: DateTime<Utc>,
        undo: Option<&mut Undo>,
    ) {
        let table = &mut self.tables[key];
        let Some(&seq) = table.by_id.get(id) else {
            return;
        };
        let Some(mut record) = table.take(seq) else {
            return;
        };
        if let Some(undo) = undo {
            undo.0.push(Change::Updated(key, seq, record.clone()));
        }
        for (field, value) in changes {
            if value.is_null() {
                record.values.remove(&field);
            } else {
                record.values.insert(field, value);
            }
        }
        record.modified = now;
        table.put(seq, record);
    }

    /// Deletes a record; false when there is none with this id.
    pub(crate) fn delete(&mut self, key: ObjectKey, id: &str, undo: Option<&mut Undo>) -> bool {
        let table = &mut self.tables[key];
        let Some(&seq) = table.by_id.get(id) else {
            return false;
        };
        let Some(record) = table.take(seq) else {
            return false;
        };
        table.deleted.insert(record.id.clone());
        if let Some(undo) = undo {
            undo.0.push(Change::Deleted(key, seq, record));
        }
        true
    }

    /// Reverses the changes in `undo`, last first.
    pub(crate) fn undo(&mut self, undo: Undo) {
        for change in undo.0.into_iter().rev() {
            match change {
                Change::Created(key, id) => {
                    let table = &mut self.tables[key];
                    if let Some(&seq) = table.by_id.get(&id) {
                        table.take(seq);
                    }
                }
                Change::Updated(key, seq, before) => {
                    let table = &mut self.tables[key];
                    table.take(seq);
                    table.put(seq, before);
                }
                Change::Deleted(key, seq, before) => {
                    self.tables[key].put(seq, before);
                }
            }
        }
    }

    /// The value of `field` on `record`, computed fields included (`Id`, audit fields,
    /// `Name` of Contact and Lead); `null` when unset.
    pub(crate) fn value(&self, key: ObjectKey, record: &Record, field: &FieldDef) -> Value {
        let def = &self.objects[key];
        match field.name.as_str() {
            "Id" => json!(record.id),
            "CreatedDate" => json!(format_datetime(record.created)),
            "LastModifiedDate" | "SystemModstamp" => json!(format_datetime(record.modified)),
            "CreatedById" | "LastModifiedById" => json!(self.user_id),
            "IsDeleted" => json!(false),
            "OwnerId" => record
                .values
                .get("OwnerId")
                .cloned()
                .unwrap_or_else(|| json!(self.user_id)),
            "Name" if def.compound_name => {
                let part = |name: &str| {
                    record
                        .values
                        .get(name)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                };
                let joined = format!("{} {}", part("FirstName"), part("LastName"));
                json!(joined.trim())
            }
            _ => record
                .values
                .get(&field.name)
                .cloned()
                .or_else(|| (field.kind == FieldType::Boolean).then_some(json!(false)))
                .unwrap_or(Value::Null),
        }
    }

    /// A record as the REST API shows it: `attributes` and the chosen fields (all when
    /// `fields` is `None`).
    pub(crate) fn render(
        &self,
        key: ObjectKey,
        record: &Record,
        fields: Option<&[&FieldDef]>,
        version: &str,
    ) -> Value {
        let def = &self.objects[key];
        let mut body = Map::new();
        body.insert(
            "attributes".into(),
            json!({
                "type": def.name,
                "url": format!("/services/data/v{version}/sobjects/{}/{}", def.name, record.id),
            }),
        );
        let all: Vec<&FieldDef> = def.fields.iter().collect();
        for field in fields.unwrap_or(&all) {
            body.insert(field.name.clone(), self.value(key, record, field));
        }
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_restores_records_and_indexes() {
        let mut store = Store::new("api@example.com");
        let contact = store.object("contact").unwrap_or_default();
        let now = Utc::now();
        let kept = store.insert(
            contact,
            HashMap::from([
                ("LastName".into(), json!("A")),
                ("Email".into(), json!("A@x.com")),
            ]),
            now,
            None,
        );
        let mut undo = Undo::default();
        store.insert(
            contact,
            HashMap::from([("LastName".into(), json!("B"))]),
            now,
            Some(&mut undo),
        );
        store.update(
            contact,
            &kept,
            vec![("Email".into(), json!("b@x.com"))],
            now,
            Some(&mut undo),
        );
        assert_eq!(
            store
                .table(contact)
                .lookup("Email", &json!("B@X.COM"))
                .len(),
            1
        );
        assert!(store.delete(contact, &kept, Some(&mut undo)));
        store.undo(undo);
        let table = store.table(contact);
        assert_eq!(table.len(), 1);
        assert_eq!(table.lookup("Email", &json!("a@x.com")).len(), 1);
        assert!(table.lookup("Email", &json!("b@x.com")).is_empty());
        assert!(!table.was_deleted(&kept));
    }

    #[test]
    fn custom_objects_get_prefixes_and_indexes() {
        let mut store = Store::new("api@example.com");
        let definition: CustomObject = serde_json::from_value(json!({
            "name": "ThankView__c",
            "fields": [
                {"name": "Ext__c", "type": "string", "externalId": true},
                {"name": "Contact__c", "type": "reference", "referenceTo": "Contact"}
            ]
        }))
        .unwrap_or_default();
        let key = store.define(&definition).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.def(key).key_prefix, "a00");
        assert!(store.table(key).is_indexed("Ext__c"));
        let more: CustomObject =
            serde_json::from_value(json!({"name": "contact", "fields": [{"name": "Ext_Id__c", "type": "string", "externalId": true, "unique": true}]}))
                .unwrap_or_default();
        let contact = store.define(&more).unwrap_or_else(|e| panic!("{e}"));
        assert!(store.table(contact).is_indexed("Ext_Id__c"));
        assert_eq!(store.def(contact).name, "Contact");
    }
}
