//! The store's indexes checked against scans.
//!
//! Seeded random sequences of creates, updates (a unique value set, moved to a case variant,
//! cleared, held by two records at once), updates of missing records, archives (which
//! tombstone and compact) and resets; after every
//! step each lookup the sandbox makes (by unique value, exact; the conflict check; search EQ /
//! IN / OR-ed groups, case-insensitive; search by record id) is compared with a naive scan of
//! the records, and every index with one rebuilt from the records.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::{Value, json};

use crate::properties::text;
use crate::registry::ObjectType;
use crate::search::{self, SearchBody};
use crate::store::Store;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const OBJECTS: [ObjectType; 2] = [ObjectType::CONTACTS, ObjectType::COMPANIES];

/// Base values; each is also written upper-cased and capitalised. `zoë` checks that the fold
/// is Unicode's, not ASCII's.
fn bases(object: ObjectType) -> [&'static str; 4] {
    if object == ObjectType::CONTACTS {
        ["ada@x.co", "bob@x.co", "zoë@y.org", "eve@y.org"]
    } else {
        ["acme.com", "globex.io", "zoë.net", "initech.co"]
    }
}

fn variants(base: &str) -> [String; 3] {
    let mut chars = base.chars();
    let capitalised = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    [base.to_owned(), base.to_uppercase(), capitalised]
}

/// Contacts: `email`, stored in lower case. Companies: a created unique property, whose
/// values keep their case (so one value can sit in two records in different cases).
fn unique_property(object: ObjectType) -> &'static str {
    if object == ObjectType::CONTACTS {
        "email"
    } else {
        "ext_code"
    }
}

/// A store whose companies have the created unique property `ext_code`.
fn new_store() -> Store {
    let mut store = Store::default();
    add_code(&mut store);
    store
}

fn add_code(store: &mut Store) {
    let code = text("ext_code", "External code", "companyinformation")
        .unique()
        .custom();
    store.add_property(ObjectType::COMPANIES, code);
}

fn other_property(object: ObjectType) -> &'static str {
    if object == ObjectType::CONTACTS {
        "firstname"
    } else {
        "name"
    }
}

fn random_value(rng: &mut Rng, object: ObjectType) -> String {
    let base = bases(object)[rng.below(4)];
    variants(base)[rng.below(3)].clone()
}

/// Random values for a create or an update: the unique property set, cleared or left out,
/// and sometimes the other property.
fn random_values(rng: &mut Rng, object: ObjectType) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    match rng.below(5) {
        0 => {}
        1 => {
            values.insert(unique_property(object).to_owned(), String::new());
        }
        _ => {
            values.insert(
                unique_property(object).to_owned(),
                random_value(rng, object),
            );
        }
    }
    if rng.chance(50) {
        let value = format!("n{}", rng.below(3));
        values.insert(other_property(object).to_owned(), value);
    }
    values
}

fn step(rng: &mut Rng, store: &mut Store, next_id: &mut u64) {
    let object = OBJECTS[rng.below(2)];
    let roll = rng.below(100);
    if roll < 2 {
        store.clear();
        add_code(store);
    } else if roll < 12 {
        let id = u64::try_from(rng.below(usize::try_from(*next_id + 1).unwrap_or(1))).unwrap_or(0);
        store.archive(object, id);
    } else if roll < 50 {
        *next_id = store.create(object, &random_values(rng, object), Utc::now()) + 1;
    } else {
        // Sometimes an id of the other object type or one never handed out.
        let id = u64::try_from(rng.below(usize::try_from(*next_id + 1).unwrap_or(1))).unwrap_or(0);
        store.update(object, id, &random_values(rng, object), Utc::now());
    }
}

/// The first record (id order) holding exactly `value`, other than `except`, by a scan.
fn scan_first(
    store: &Store,
    object: ObjectType,
    property: &str,
    value: &str,
    except: Option<u64>,
) -> Option<u64> {
    store
        .records(object)
        .find(|r| {
            let stored = store.def(object).stored_value(property, value);
            Some(r.id) != except && r.properties.get(property) == Some(stored.as_ref())
        })
        .map(|r| r.id)
}

/// Ids of the records whose `property` equals one of `values` ignoring case, by a scan.
fn scan_folded(store: &Store, object: ObjectType, property: &str, values: &[&str]) -> Vec<u64> {
    store
        .records(object)
        .filter(|r| {
            r.properties
                .get(property)
                .is_some_and(|v| values.iter().any(|w| v.to_lowercase() == w.to_lowercase()))
        })
        .map(|r| r.id)
        .collect()
}

/// `(total, ids of the page)` of a search.
fn search_ids(store: &Store, object: ObjectType, body: Value) -> (u64, Vec<u64>) {
    let body: SearchBody = serde_json::from_value(body).unwrap_or_default();
    let result = search::run(store, object, body).unwrap_or_default();
    let ids = result["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str().and_then(|id| id.parse().ok()))
        .collect();
    (result["total"].as_u64().unwrap_or(u64::MAX), ids)
}

fn eq(property: &str, value: &str) -> Value {
    json!({"propertyName": property, "operator": "EQ", "value": value})
}

/// Checks every lookup of `object`; returns true when some value was held by several records
/// in different cases (so the run covered shared buckets).
fn check_lookups(store: &Store, object: ObjectType, rng: &mut Rng) -> bool {
    let mut shared = false;
    let property = unique_property(object);
    let ids: Vec<u64> = store.records(object).map(|r| r.id).collect();
    let some_id = ids.get(rng.below(ids.len())).copied();
    for base in bases(object) {
        for value in variants(base) {
            assert_eq!(
                store.find(object, property, &value).map(|r| r.id),
                scan_first(store, object, property, &value, None),
                "find {value}"
            );
            for except in [None, some_id] {
                assert_eq!(
                    store.unique_owner(object, property, &value, except),
                    scan_first(store, object, property, &value, except),
                    "owner of {value} except {except:?}"
                );
            }
            let expected = scan_folded(store, object, property, &[&value]);
            shared |= expected.len() > 1;
            let body = json!({"filterGroups": [{"filters": [eq(property, &value)]}], "limit": 200});
            let total = expected.len() as u64;
            assert_eq!(
                search_ids(store, object, body),
                (total, expected),
                "EQ {value}"
            );
        }
    }
    let [a, b, ..] = bases(object);
    let (upper_a, lower_b) = (a.to_uppercase(), b.to_owned());
    let expected = scan_folded(store, object, property, &[&upper_a, &lower_b]);
    let total = expected.len() as u64;
    let in_body = json!({"filterGroups": [{"filters": [
        {"propertyName": property, "operator": "IN", "values": [upper_a, lower_b]},
    ]}], "limit": 200});
    assert_eq!(
        search_ids(store, object, in_body),
        (total, expected.clone())
    );
    let or_body = json!({"filterGroups": [
        {"filters": [eq(property, &upper_a)]},
        {"filters": [eq(property, &lower_b)]},
    ], "limit": 200});
    assert_eq!(
        search_ids(store, object, or_body),
        (total, expected.clone())
    );
    // The second page of the same search.
    let paged = json!({"filterGroups": [
        {"filters": [eq(property, &upper_a)]},
        {"filters": [eq(property, &lower_b)]},
    ], "limit": 1, "after": "1"});
    let second: Vec<u64> = expected.iter().skip(1).take(1).copied().collect();
    assert_eq!(search_ids(store, object, paged), (total, second));
    if let Some(id) = some_id {
        let body = json!({"filterGroups": [{"filters": [eq("hs_object_id", &format!("{id}.0"))]}]});
        assert_eq!(search_ids(store, object, body), (1, vec![id]));
    }
    shared
}

#[test]
fn indexes_agree_with_scans_through_random_operations() {
    for seed in 1..=6u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut store = new_store();
        let mut next_id = 1;
        let mut shared = false;
        for _ in 0..200 {
            step(&mut rng, &mut store, &mut next_id);
            for object in OBJECTS {
                if let Some(table) = store.table(object) {
                    table.assert_indexes_consistent();
                }
                shared |= check_lookups(&store, object, &mut rng);
            }
        }
        assert!(shared, "seed {seed} never had one value in two cases");
    }
}

#[test]
fn reset_empties_the_indexes_and_the_same_value_comes_back() {
    let mut store = Store::default();
    let values = BTreeMap::from([("email".to_owned(), "a@x.co".to_owned())]);
    let first = store.create(ObjectType::CONTACTS, &values, Utc::now());
    store.clear();
    assert!(
        store
            .find(ObjectType::CONTACTS, "email", "a@x.co")
            .is_none()
    );
    let body = json!({"filterGroups": [{"filters": [eq("email", "A@X.CO")]}]});
    assert_eq!(
        search_ids(&store, ObjectType::CONTACTS, body.clone()),
        (0, vec![])
    );
    let second = store.create(ObjectType::CONTACTS, &values, Utc::now());
    assert!(second > first);
    assert_eq!(
        store
            .find(ObjectType::CONTACTS, "email", "a@x.co")
            .map(|r| r.id),
        Some(second)
    );
    assert_eq!(
        search_ids(&store, ObjectType::CONTACTS, body),
        (1, vec![second])
    );
}
