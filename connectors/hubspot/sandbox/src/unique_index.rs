//! The index of one unique property: each value, case-folded, to the ids of the records
//! holding it.
//!
//! One index answers both questions the sandbox asks of a unique property, in time that does
//! not depend on how many records there are:
//! - exact lookups (upsert, update, read and get by `idProperty`, conflict checks), which are
//!   case-sensitive: the bucket of the folded value gives the candidates, the caller compares
//!   each candidate's value exactly;
//! - search's EQ / IN, which ignore case: the bucket is the answer.
//!
//! A bucket holds its ids in increasing order, so "the first record holding a value" is the
//! same record a scan in id order finds. It holds one id unless records hold the same value in
//! different cases (`a1`, `A1`), which a created case-sensitive unique property allows
//! (`email` and `domain` are stored in lower case, so theirs never do).

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::properties::Text;

/// The case folding search comparisons use (`str::to_lowercase`), and so the index keys.
/// Text that is already ASCII lower case (most emails and domains) is not copied.
pub(crate) fn fold(value: &str) -> Cow<'_, str> {
    if value
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(value.to_lowercase())
    }
}

/// The ids of one bucket; one id needs no allocation of its own.
#[derive(Debug)]
enum Ids {
    One(u64),
    Many(Vec<u64>),
}

impl Ids {
    fn as_slice(&self) -> &[u64] {
        match self {
            Ids::One(id) => std::slice::from_ref(id),
            Ids::Many(ids) => ids,
        }
    }
}

/// The index of one unique property of one object type.
#[derive(Debug)]
pub(crate) struct UniqueIndex {
    property: Text,
    buckets: HashMap<Box<str>, Ids>,
}

impl UniqueIndex {
    pub(crate) fn new(property: Text) -> Self {
        UniqueIndex {
            property,
            buckets: HashMap::new(),
        }
    }

    /// The indexed property's name.
    pub(crate) fn property(&self) -> &str {
        &self.property
    }

    /// Records that record `id` holds `value` (a non-empty value).
    pub(crate) fn insert(&mut self, value: &str, id: u64) {
        let bucket = match self.buckets.entry(fold(value).into()) {
            Entry::Vacant(entry) => {
                entry.insert(Ids::One(id));
                return;
            }
            Entry::Occupied(entry) => entry.into_mut(),
        };
        match bucket {
            Ids::One(held) if *held == id => {}
            Ids::One(held) => {
                let held = *held;
                *bucket = Ids::Many(vec![held.min(id), held.max(id)]);
            }
            Ids::Many(ids) => {
                if let Err(at) = ids.binary_search(&id) {
                    ids.insert(at, id);
                }
            }
        }
    }

    /// Forgets that record `id` holds `value`.
    pub(crate) fn remove(&mut self, value: &str, id: u64) {
        let key = fold(value);
        let Some(bucket) = self.buckets.get_mut(key.as_ref()) else {
            return;
        };
        match bucket {
            Ids::One(held) if *held == id => {
                self.buckets.remove(key.as_ref());
            }
            Ids::One(_) => {}
            Ids::Many(ids) => {
                ids.retain(|held| *held != id);
                if let [last] = ids.as_slice() {
                    *bucket = Ids::One(*last);
                }
            }
        }
    }

    /// The ids of the records whose value folds to the same text as `value`, in increasing
    /// order: every record holding `value` exactly is among them.
    pub(crate) fn candidates(&self, value: &str) -> &[u64] {
        self.buckets
            .get(fold(value).as_ref())
            .map_or(&[], |bucket| bucket.as_slice())
    }

    /// Every `(folded value, ids)` entry, for consistency checks in tests.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, &[u64])> {
        self.buckets
            .iter()
            .map(|(key, ids)| (key.as_ref(), ids.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_fold_case_and_keep_ids_in_order() {
        let mut index = UniqueIndex::new(Cow::Borrowed("email"));
        index.insert("B@x.co", 7);
        index.insert("b@x.co", 3);
        index.insert("b@X.co", 5);
        index.insert("b@x.co", 3);
        assert_eq!(index.candidates("B@X.CO"), [3, 5, 7]);
        index.remove("b@X.co", 5);
        assert_eq!(index.candidates("b@x.co"), [3, 7]);
        index.remove("b@x.co", 3);
        assert_eq!(index.candidates("b@x.co"), [7]);
        index.remove("B@x.co", 7);
        assert!(index.candidates("b@x.co").is_empty());
        assert_eq!(index.entries().count(), 0);
    }

    #[test]
    fn removing_an_id_that_is_not_there_changes_nothing() {
        let mut index = UniqueIndex::new(Cow::Borrowed("domain"));
        index.insert("acme.com", 1);
        index.remove("acme.com", 2);
        index.remove("other.com", 1);
        assert_eq!(index.candidates("ACME.com"), [1]);
    }
}
