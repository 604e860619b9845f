//! Which records a search examines: the index entries of its EQ / IN filters when every
//! filter group has one, every record otherwise.
//!
//! A group matches only records that pass each of its filters, so the records one of its
//! filters accepts contain the group's matches, and the union over the groups contains every
//! match of the search. The candidates are then checked against all the filters (and the
//! `query`), so the indexes decide how many records are examined, never which ones match.
//!
//! A filter is answered by an index when it is EQ or IN and
//! - its property is `hs_object_id`: values compare as numbers, so `"7"`, `"7.0"` and `7` all
//!   name record 7, and a value that is not a number names none;
//! - its property has a [`UniqueIndex`](crate::unique_index::UniqueIndex) and no value reads
//!   as a number or a date: such values compare as case-folded text, which is what the index
//!   is keyed by. (A numeric value compares numerically, `1.0` equalling `1`; that rare filter
//!   is left to the scan.)

use crate::registry::ObjectType;
use crate::store::Store;

use super::filter::{Filter, FilterGroup, as_number};

/// 2^53: from here on integers are not all exact as `f64`, so a numeric `hs_object_id` value
/// this large is left to the scan.
const EXACT_F64_INTEGERS: f64 = 9_007_199_254_740_992.0;

/// The records a search has to look at.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Candidates {
    /// Every record of the object type, in id order.
    All,
    /// These ids, increasing, without repeats. An id may name no record of the object type
    /// (an `hs_object_id` filter names any number); the search skips those.
    Ids(Vec<u64>),
}

/// The candidates of a search whose filters passed validation.
pub(crate) fn candidates(store: &Store, object: ObjectType, groups: &[FilterGroup]) -> Candidates {
    if groups.is_empty() {
        return Candidates::All;
    }
    let mut ids = Vec::new();
    for group in groups {
        let smallest = group
            .filters
            .iter()
            .filter_map(|f| indexed(store, object, f))
            .min_by_key(Vec::len);
        match smallest {
            Some(found) => ids.extend(found),
            None => return Candidates::All,
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Candidates::Ids(ids)
}

/// The ids whose records may pass `filter`, when an index can tell.
fn indexed(store: &Store, object: ObjectType, filter: &Filter) -> Option<Vec<u64>> {
    let wanted = match filter.operator.as_str() {
        "EQ" => vec![filter.value()?],
        "IN" => filter.values(),
        _ => return None,
    };
    let mut ids = Vec::new();
    if filter.property_name == "hs_object_id" {
        for value in &wanted {
            ids.extend(record_id(value)?);
        }
        return Some(ids);
    }
    if !store
        .def(object)
        .indexed_properties()
        .any(|p| p.name == filter.property_name)
    {
        return None;
    }
    let index = store
        .table(object)
        .and_then(|t| t.index(&filter.property_name));
    for value in &wanted {
        if as_number(value).is_some() {
            return None;
        }
        ids.extend_from_slice(index.map_or(&[], |i| i.candidates(value)));
    }
    Some(ids)
}

/// The record id an `hs_object_id` EQ value names: `Some(None)` for none, `None` when only a
/// scan can tell.
fn record_id(value: &str) -> Option<Option<u64>> {
    let Some(number) = as_number(value) else {
        // Compared as text with ids, which are all numbers: equal to none of them.
        return Some(None);
    };
    if number >= EXACT_F64_INTEGERS {
        return None;
    }
    if number.fract() != 0.0 || number < 1.0 {
        return Some(None);
    }
    // Integral and below 2^53, so the conversion is exact and no other id equals it.
    Some(Some(number as u64))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Utc;
    use serde_json::{Value, json};

    use super::*;

    /// 2,000 contacts `user{n}@x.co`, ids 1..=2000, and one company (id 2001).
    fn store() -> Store {
        let mut store = Store::default();
        for n in 1..=2000 {
            let values = BTreeMap::from([
                ("email".to_owned(), format!("user{n}@x.co")),
                ("firstname".to_owned(), "Ada".to_owned()),
            ]);
            store.create(ObjectType::CONTACTS, &values, Utc::now());
        }
        let values = BTreeMap::from([("domain".to_owned(), "acme.com".to_owned())]);
        store.create(ObjectType::COMPANIES, &values, Utc::now());
        store
    }

    fn of(groups: Value) -> Candidates {
        let groups: Vec<FilterGroup> = serde_json::from_value(groups).unwrap_or_default();
        candidates(&store(), ObjectType::CONTACTS, &groups)
    }

    fn filter(property: &str, operator: &str, operand: Value) -> Value {
        let key = if operator == "IN" { "values" } else { "value" };
        json!({"propertyName": property, "operator": operator, key: operand})
    }

    #[test]
    fn equality_on_an_indexed_property_examines_only_its_records() {
        let eq = |value: &str| json!([{"filters": [filter("email", "EQ", json!(value))]}]);
        assert_eq!(of(eq("USER7@x.co")), Candidates::Ids(vec![7]));
        assert_eq!(of(eq("nobody@x.co")), Candidates::Ids(vec![]));
        let within = json!([{"filters": [
            filter("firstname", "EQ", json!("Ada")),
            filter("email", "IN", json!(["user9@x.co", "user3@x.co", "nobody@x.co"])),
        ]}]);
        assert_eq!(of(within), Candidates::Ids(vec![3, 9]));
        let either = json!([
            {"filters": [filter("email", "EQ", json!("user5@x.co"))]},
            {"filters": [filter("hs_object_id", "IN", json!(["12", 5, "7.0", "x", "2.5"]))]},
        ]);
        assert_eq!(of(either), Candidates::Ids(vec![5, 7, 12]));
        // Ids name any record; the search skips those of another object type.
        let id = json!([{"filters": [filter("hs_object_id", "EQ", json!("2001"))]}]);
        assert_eq!(of(id), Candidates::Ids(vec![2001]));
    }

    #[test]
    fn other_searches_scan() {
        assert_eq!(of(json!([])), Candidates::All);
        let plain = json!([{"filters": [filter("firstname", "EQ", json!("Ada"))]}]);
        assert_eq!(of(plain), Candidates::All);
        let one_group_unindexed = json!([
            {"filters": [filter("email", "EQ", json!("user5@x.co"))]},
            {"filters": [filter("firstname", "EQ", json!("Bob"))]},
        ]);
        assert_eq!(of(one_group_unindexed), Candidates::All);
        let not_eq = json!([{"filters": [filter("email", "NEQ", json!("user5@x.co"))]}]);
        assert_eq!(of(not_eq), Candidates::All);
        // Numbers and dates compare numerically, which the text index cannot answer.
        let number = json!([{"filters": [filter("email", "EQ", json!("17"))]}]);
        assert_eq!(of(number), Candidates::All);
        let huge = json!([{"filters": [filter("hs_object_id", "EQ", json!("1e300"))]}]);
        assert_eq!(of(huge), Candidates::All);
    }
}
