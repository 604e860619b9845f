//! The associations between records, indexed from both ends.
//!
//! An association is kept once per direction: `a → b` with its type ids, and `b → a` with
//! their inverses (see `association_types`), so reading a record's associations to an object
//! type is one map lookup and a walk over exactly those associations, never a scan. Archiving a
//! record removes its associations from both ends in time proportional to how many it has.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use crate::registry::ObjectType;

/// One record: its object type and id.
pub(crate) type Node = (ObjectType, u64);

/// The type ids from one record to another.
pub(crate) type TypeIds = BTreeSet<u64>;

/// `(from type, to type)` → from id → to id → type ids (from → to).
#[derive(Debug, Default)]
pub(crate) struct Associations {
    pairs: HashMap<(ObjectType, ObjectType), BTreeMap<u64, BTreeMap<u64, TypeIds>>>,
}

impl Associations {
    fn side_mut(&mut self, from: Node, to: Node) -> &mut TypeIds {
        self.pairs
            .entry((from.0, to.0))
            .or_default()
            .entry(from.1)
            .or_default()
            .entry(to.1)
            .or_default()
    }

    /// Adds type `id` from `from` to `to` and `inverse` back; true when it was not there.
    pub(crate) fn add(&mut self, from: Node, to: Node, id: u64, inverse: u64) -> bool {
        let new = self.side_mut(from, to).insert(id);
        self.side_mut(to, from).insert(inverse);
        new
    }

    /// Removes `ids` from one side, dropping the entry once it has no type left.
    fn remove_side(&mut self, from: Node, to: Node, ids: &[u64]) {
        let Some(by_from) = self.pairs.get_mut(&(from.0, to.0)) else {
            return;
        };
        let Some(targets) = by_from.get_mut(&from.1) else {
            return;
        };
        if let Some(types) = targets.get_mut(&to.1) {
            for id in ids {
                types.remove(id);
            }
            if types.is_empty() {
                targets.remove(&to.1);
            }
        }
        if targets.is_empty() {
            by_from.remove(&from.1);
        }
    }

    /// Removes type `id` (and `inverse` the other way) between two records.
    pub(crate) fn remove(&mut self, from: Node, to: Node, id: u64, inverse: u64) {
        self.remove_side(from, to, &[id]);
        self.remove_side(to, from, &[inverse]);
    }

    /// Removes every type between two records.
    pub(crate) fn remove_between(&mut self, from: Node, to: Node) {
        let forward: Vec<u64> = self
            .between(from, to)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        let back: Vec<u64> = self
            .between(to, from)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        self.remove_side(from, to, &forward);
        self.remove_side(to, from, &back);
    }

    /// The type ids from one record to another, if they are associated.
    pub(crate) fn between(&self, from: Node, to: Node) -> Option<&TypeIds> {
        self.pairs.get(&(from.0, to.0))?.get(&from.1)?.get(&to.1)
    }

    /// A record's associations to records of `to`, from the first id above `after`, in id
    /// order.
    pub(crate) fn targets(
        &self,
        from: Node,
        to: ObjectType,
        after: u64,
    ) -> impl Iterator<Item = (u64, &TypeIds)> {
        self.pairs
            .get(&(from.0, to))
            .and_then(|by_from| by_from.get(&from.1))
            .into_iter()
            .flat_map(move |targets| targets.range((Bound::Excluded(after), Bound::Unbounded)))
            .map(|(id, types)| (*id, types))
    }

    /// Forgets every association of a record (it was archived).
    pub(crate) fn remove_record(&mut self, node: Node) {
        let keys: Vec<(ObjectType, ObjectType)> = self
            .pairs
            .keys()
            .filter(|(from, _)| *from == node.0)
            .copied()
            .collect();
        for key in keys {
            let targets = self
                .pairs
                .get_mut(&key)
                .and_then(|by_from| by_from.remove(&node.1));
            for (to_id, _) in targets.into_iter().flatten() {
                let other = (key.1, to_id);
                let back: Vec<u64> = self
                    .between(other, node)
                    .into_iter()
                    .flatten()
                    .copied()
                    .collect();
                self.remove_side(other, node, &back);
            }
        }
    }

    /// Removes type `id` and its inverse wherever they are used (a label was deleted). Walks
    /// the associations between the label's two object types only.
    pub(crate) fn remove_type(&mut self, [from, to]: [ObjectType; 2], [id, inverse]: [u64; 2]) {
        let mut uses = Vec::new();
        if let Some(by_from) = self.pairs.get(&(from, to)) {
            for (a, targets) in by_from {
                for (b, types) in targets {
                    if types.contains(&id) {
                        uses.push(((from, *a), (to, *b)));
                    }
                }
            }
        }
        for (a, b) in uses {
            self.remove(a, b, id, inverse);
        }
    }

    /// Every association from `from` records to `to` records, in id order (for the control
    /// route).
    pub(crate) fn all(
        &self,
        from: ObjectType,
        to: ObjectType,
    ) -> impl Iterator<Item = (u64, u64, &TypeIds)> {
        self.pairs.get(&(from, to)).into_iter().flat_map(|by_from| {
            by_from
                .iter()
                .flat_map(|(a, targets)| targets.iter().map(move |(b, types)| (*a, *b, types)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTACT: ObjectType = ObjectType::CONTACTS;
    const COMPANY: ObjectType = ObjectType::COMPANIES;

    #[test]
    fn both_directions_are_kept_and_archive_clears_them() {
        let mut associations = Associations::default();
        assert!(associations.add((CONTACT, 1), (COMPANY, 2), 279, 280));
        assert!(!associations.add((CONTACT, 1), (COMPANY, 2), 279, 280));
        associations.add((CONTACT, 1), (COMPANY, 2), 1, 2);
        associations.add((CONTACT, 3), (COMPANY, 2), 279, 280);
        let back: Vec<(u64, Vec<u64>)> = associations
            .targets((COMPANY, 2), CONTACT, 0)
            .map(|(id, types)| (id, types.iter().copied().collect()))
            .collect();
        assert_eq!(back, [(1, vec![2, 280]), (3, vec![280])]);
        assert_eq!(associations.targets((COMPANY, 2), CONTACT, 1).count(), 1);
        associations.remove((CONTACT, 1), (COMPANY, 2), 1, 2);
        assert_eq!(
            associations
                .between((COMPANY, 2), (CONTACT, 1))
                .map(|t| t.len()),
            Some(1)
        );
        associations.remove_record((COMPANY, 2));
        assert_eq!(associations.all(CONTACT, COMPANY).count(), 0);
        assert_eq!(associations.all(COMPANY, CONTACT).count(), 0);
    }

    #[test]
    fn remove_between_and_remove_type() {
        let mut associations = Associations::default();
        associations.add((CONTACT, 1), (COMPANY, 2), 279, 280);
        associations.add((CONTACT, 1), (COMPANY, 2), 1001, 1002);
        associations.add((CONTACT, 4), (COMPANY, 2), 1001, 1002);
        associations.remove_type([CONTACT, COMPANY], [1001, 1002]);
        assert_eq!(associations.all(CONTACT, COMPANY).count(), 1);
        associations.remove_between((COMPANY, 2), (CONTACT, 1));
        assert_eq!(associations.all(CONTACT, COMPANY).count(), 0);
        assert_eq!(associations.all(COMPANY, CONTACT).count(), 0);
    }
}
