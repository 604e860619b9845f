//! Which destination record each changed row writes: record identity across a plan.
//!
//! A record is found by its match value (HubSpot upserts by `email`), and the state remembers
//! which row owns which record. When keys or match values move between rows, writing each row
//! "to its own key" can wipe or merge records: a re-keyed row would upsert onto the record its
//! old key is about to clear, and two rows trading match values would collide. This module
//! assigns every changed row exactly one record, so a plan never writes one record twice, nor
//! writes and clears one record:
//!
//! 1. A continuing row whose match value did not change keeps its record.
//! 2. A row whose match value is held by a record that is being given up (its row left the
//!    model, or moved on to another record itself) takes that record over: a re-key, an
//!    update of that record, never a create plus a clear.
//! 3. A continuing row whose new match value is free keeps its record and changes the value;
//!    when the value is still held by a row that is about to change it, the update waits for
//!    that one (a higher `wave`). Rows trading values in a cycle each take the record holding
//!    their new value.
//! 4. Any other new row creates a record (an upsert, sent after every update).
//! 5. A removed row's record is cleared (per `on_remove`) unless another row took it over;
//!    a record a moving row left behind is cleared in the place of a removed row whose own
//!    record was taken over.
//!
//! Only rows in the diff take part: an unchanged row cannot share a match value with a
//! changed one, because duplicate match values stop the plan (or are skipped) beforehand.

use std::collections::{BTreeMap, HashMap, HashSet};

/// A row of the previous snapshot that changed or left the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OldRecord {
    /// The match value it was synced with (normalized).
    pub match_value: Option<String>,
    /// True when the row is still in the model.
    pub continuing: bool,
}

/// Where a changed row's values go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// The row's own record (from the previous snapshot); `wave` orders match-value changes.
    Own {
        /// Sending order among updates.
        wave: u32,
    },
    /// The record the given old row owned.
    Take(String),
    /// A new record, upserted by match value.
    Create,
}

/// What happens to a removed row's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Release {
    /// Its own record gets the sync's `on_remove`.
    Own,
    /// Its record was taken over; the record the given continuing row left is cleared instead.
    Vacated(String),
    /// Its record was taken over and nothing is left to clear: the state forgets the row.
    Absorbed,
}

/// The assignment for one plan.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Assignment {
    /// For every added or changed row.
    pub targets: BTreeMap<String, Target>,
    /// For every removed row.
    pub releases: BTreeMap<String, Release>,
}

/// Assigns records. `old` holds the changed and removed rows of the previous snapshot, `new`
/// the added and changed rows of the model with their (normalized) match values.
pub(crate) fn assign(
    old: &BTreeMap<String, OldRecord>,
    new: &BTreeMap<String, Option<String>>,
) -> Assignment {
    let holder: HashMap<&str, &str> = old
        .iter()
        .filter_map(|(key, o)| o.match_value.as_deref().map(|v| (v, key.as_str())))
        .collect();
    let mut resolver = Resolver {
        old,
        new,
        holder,
        resolved: HashMap::new(),
        visiting: Vec::new(),
    };
    let mut targets = BTreeMap::new();
    for key in new.keys() {
        let target = resolver.resolve(key);
        targets.insert(key.clone(), target);
    }

    // Records given up: taken over by somebody, or left behind.
    let taken: HashSet<&str> = targets
        .values()
        .filter_map(|t| match t {
            Target::Take(from) => Some(from.as_str()),
            _ => None,
        })
        .collect();
    let mut left_behind: Vec<&str> = targets
        .iter()
        .filter(|(key, t)| matches!(t, Target::Take(_)) && old.contains_key(*key))
        .map(|(key, _)| key.as_str())
        .filter(|key| !taken.contains(key))
        .collect();
    left_behind.sort_unstable();
    let mut left_behind = left_behind.into_iter();
    let mut releases = BTreeMap::new();
    for key in old.iter().filter(|(_, o)| !o.continuing).map(|(k, _)| k) {
        let release = if !taken.contains(key.as_str()) {
            Release::Own
        } else if let Some(moved) = left_behind.next() {
            Release::Vacated(moved.to_string())
        } else {
            Release::Absorbed
        };
        releases.insert(key.clone(), release);
    }
    Assignment { targets, releases }
}

struct Resolver<'a> {
    old: &'a BTreeMap<String, OldRecord>,
    new: &'a BTreeMap<String, Option<String>>,
    holder: HashMap<&'a str, &'a str>,
    resolved: HashMap<String, Target>,
    visiting: Vec<String>,
}

impl Resolver<'_> {
    fn resolve(&mut self, key: &str) -> Target {
        if let Some(done) = self.resolved.get(key) {
            return done.clone();
        }
        let wanted = self.new.get(key).cloned().flatten();
        let own = self.old.get(key);
        // 1. Unchanged match value: the row keeps its record.
        if let Some(own) = own
            && own.match_value == wanted
        {
            return self.settle(key, Target::Own { wave: 0 });
        }
        let holder = wanted
            .as_deref()
            .and_then(|v| self.holder.get(v).copied())
            .filter(|h| *h != key)
            .map(str::to_string);
        let target = match holder {
            // 4. / 3. A free value: create, or keep the record and change its value.
            None => match own {
                Some(_) => Target::Own { wave: 0 },
                None => Target::Create,
            },
            Some(holder) => {
                let holder_continues = self.old.get(&holder).is_some_and(|o| o.continuing);
                if !holder_continues {
                    // 2. The holder left the model: take its record over (a re-key).
                    Target::Take(holder)
                } else if let Some(start) = self.visiting.iter().position(|k| *k == holder) {
                    // 3. A cycle of rows trading values: each takes the record holding its
                    // new value.
                    for member in self.visiting[start..].iter().cloned() {
                        let value = self.new.get(&member).cloned().flatten();
                        if let Some(h) = value.as_deref().and_then(|v| self.holder.get(v)) {
                            let h = h.to_string();
                            self.resolved.insert(member, Target::Take(h));
                        }
                    }
                    Target::Take(holder)
                } else {
                    self.visiting.push(key.to_string());
                    let holder_target = self.resolve(&holder);
                    self.visiting.pop();
                    if let Some(done) = self.resolved.get(key) {
                        return done.clone(); // settled as part of a cycle
                    }
                    match (holder_target, own) {
                        // The holder moves to another record: take the one it leaves.
                        (Target::Take(_), _) => Target::Take(holder),
                        // The holder keeps its record and changes its value first.
                        (Target::Own { wave }, Some(_)) => Target::Own { wave: wave + 1 },
                        // A new row: upserts go after every update, so the value is free then.
                        (Target::Own { .. }, None) => Target::Create,
                        (Target::Create, _) => match own {
                            Some(_) => Target::Own { wave: 0 },
                            None => Target::Create,
                        },
                    }
                }
            }
        };
        self.settle(key, target)
    }

    fn settle(&mut self, key: &str, target: Target) -> Target {
        self.resolved.insert(key.to_string(), target.clone());
        target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old(rows: &[(&str, &str, bool)]) -> BTreeMap<String, OldRecord> {
        rows.iter()
            .map(|(k, v, continuing)| {
                (
                    k.to_string(),
                    OldRecord {
                        match_value: Some(v.to_string()),
                        continuing: *continuing,
                    },
                )
            })
            .collect()
    }

    fn new(rows: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
        rows.iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    }

    fn take(from: &str) -> Target {
        Target::Take(from.to_string())
    }

    #[test]
    fn a_re_keyed_row_takes_over_the_record_of_its_old_key() {
        let a = assign(&old(&[("1", "a@x", false)]), &new(&[("2", "a@x")]));
        assert_eq!(a.targets["2"], take("1"));
        assert_eq!(a.releases["1"], Release::Absorbed);
    }

    #[test]
    fn a_changed_value_keeps_the_record_and_a_new_row_gets_the_old_value_after_it() {
        // Row 1 moves from a@x to b@x; new row 2 takes a@x: row 1 updates first, 2 creates.
        let a = assign(
            &old(&[("1", "a@x", true)]),
            &new(&[("1", "b@x"), ("2", "a@x")]),
        );
        assert_eq!(a.targets["1"], Target::Own { wave: 0 });
        assert_eq!(a.targets["2"], Target::Create);
        assert!(a.releases.is_empty());
    }

    #[test]
    fn a_chain_of_value_changes_is_ordered_in_waves() {
        // 1: a→b, 2: b→c, 3: c→d (free): 3 first, then 2, then 1.
        let a = assign(
            &old(&[("1", "a", true), ("2", "b", true), ("3", "c", true)]),
            &new(&[("1", "b"), ("2", "c"), ("3", "d")]),
        );
        assert_eq!(a.targets["3"], Target::Own { wave: 0 });
        assert_eq!(a.targets["2"], Target::Own { wave: 1 });
        assert_eq!(a.targets["1"], Target::Own { wave: 2 });
    }

    #[test]
    fn rows_trading_values_take_each_others_records() {
        let a = assign(
            &old(&[("1", "a", true), ("2", "b", true)]),
            &new(&[("1", "b"), ("2", "a")]),
        );
        assert_eq!(a.targets["1"], take("2"));
        assert_eq!(a.targets["2"], take("1"));
    }

    #[test]
    fn a_row_moving_onto_a_removed_rows_value_takes_its_record_and_its_own_is_cleared() {
        // 1: a→b where b was row 9's (removed): 1 takes 9's record; 1's old record (a) is
        // cleared in 9's place.
        let a = assign(
            &old(&[("1", "a", true), ("9", "b", false)]),
            &new(&[("1", "b")]),
        );
        assert_eq!(a.targets["1"], take("9"));
        assert_eq!(a.releases["9"], Release::Vacated("1".into()));
    }

    #[test]
    fn a_new_row_takes_a_record_left_behind() {
        // 1: a→b (row 9's, removed); new row 2 wants a: 2 takes the record 1 left.
        let a = assign(
            &old(&[("1", "a", true), ("9", "b", false)]),
            &new(&[("1", "b"), ("2", "a")]),
        );
        assert_eq!(a.targets["1"], take("9"));
        assert_eq!(a.targets["2"], take("1"));
        assert_eq!(a.releases["9"], Release::Absorbed);
    }

    #[test]
    fn a_plain_removal_is_released_and_a_free_new_value_is_created() {
        let a = assign(&old(&[("1", "a", false)]), &new(&[("2", "b")]));
        assert_eq!(a.targets["2"], Target::Create);
        assert_eq!(a.releases["1"], Release::Own);
    }

    #[test]
    fn no_record_is_written_twice_or_written_and_released() {
        // A brute-force check over small random permutations of values.
        let values = ["a", "b", "c", "d", "e"];
        for seed in 0..500u64 {
            let mut rng = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut next = |n: usize| {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((rng >> 33) as usize) % n
            };
            let mut old_rows = BTreeMap::new();
            let mut pool: Vec<&str> = values.to_vec();
            for key in ["1", "2", "3", "4"] {
                if next(3) == 0 || pool.is_empty() {
                    continue;
                }
                let v = pool.remove(next(pool.len()));
                old_rows.insert(key.to_string(), (v, next(3) != 0));
            }
            let mut pool: Vec<&str> = values.to_vec();
            let mut new_rows = BTreeMap::new();
            for key in ["1", "2", "3", "4", "5", "6"] {
                let continuing = old_rows.get(key).is_some_and(|(_, c)| *c);
                let added = !old_rows.contains_key(key) && next(2) == 0;
                if (continuing || added) && !pool.is_empty() {
                    let v = pool.remove(next(pool.len()));
                    new_rows.insert(key.to_string(), Some(v.to_string()));
                }
            }
            // Continuing rows must be in `new`; drop those the pool ran out for.
            let old: BTreeMap<String, OldRecord> = old_rows
                .iter()
                .map(|(k, (v, c))| {
                    (
                        k.clone(),
                        OldRecord {
                            match_value: Some(v.to_string()),
                            continuing: *c && new_rows.contains_key(k),
                        },
                    )
                })
                .collect();
            let a = assign(&old, &new_rows);
            // Records written: own (by key) or taken.
            let mut written: Vec<String> = Vec::new();
            for (key, target) in &a.targets {
                match target {
                    Target::Own { .. } => written.push(key.clone()),
                    Target::Take(from) => written.push(from.clone()),
                    Target::Create => {}
                }
            }
            let unique: HashSet<&String> = written.iter().collect();
            assert_eq!(unique.len(), written.len(), "seed {seed}: {a:?}");
            for (key, release) in &a.releases {
                let cleared = match release {
                    Release::Own => Some(key.clone()),
                    Release::Vacated(k) => Some(k.clone()),
                    Release::Absorbed => None,
                };
                if let Some(cleared) = cleared {
                    assert!(!written.contains(&cleared), "seed {seed}: {a:?}");
                }
            }
            // Every record changing hands ends up with one value each: a created value is
            // never held by a record that keeps it.
            for (key, target) in &a.targets {
                if *target == Target::Create {
                    let v = new_rows[key].as_deref().unwrap_or_default();
                    if let Some((holder, o)) = old
                        .iter()
                        .find(|(_, o)| o.match_value.as_deref() == Some(v))
                    {
                        assert!(
                            matches!(a.targets.get(holder), Some(Target::Own { .. })),
                            "seed {seed}: created {v} still held by {holder} {o:?}: {a:?}"
                        );
                    }
                }
            }
        }
    }
}
