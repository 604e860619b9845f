//! The written properties of one record, stored compactly.
//!
//! A sorted `Vec` of `(name, value)` pairs: a record has a handful of properties, so a binary
//! search is as fast as a tree and the whole map is one allocation plus one per value. Names
//! of the built-in registries are borrowed from their declaration tables rather than copied
//! into each record; names of properties created at run time are copied.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::OnceLock;

use crate::builtin;

/// Property values by name, in name order; values are never empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PropertyMap {
    entries: Vec<(Cow<'static, str>, Box<str>)>,
}

/// Every property name of the built-in declaration tables.
fn builtin_names() -> &'static HashSet<&'static str> {
    static NAMES: OnceLock<HashSet<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        builtin::REGISTRIES
            .iter()
            .flat_map(|registry| registry.iter())
            .filter_map(|def| match def.name {
                Cow::Borrowed(name) => Some(name),
                Cow::Owned(_) => None,
            })
            .collect()
    })
}

/// The declaration table's copy of a property name when a built-in type defines it, else a
/// copy (properties created at run time).
fn intern(name: &str) -> Cow<'static, str> {
    builtin_names()
        .get(name)
        .map_or_else(|| Cow::Owned(name.to_owned()), |name| Cow::Borrowed(*name))
}

impl PropertyMap {
    fn position(&self, name: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|(held, _)| held.as_ref().cmp(name))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.position(name)
            .ok()
            .map(|at| self.entries[at].1.as_ref())
    }

    /// Sets a property; returns the value it replaced.
    pub(crate) fn insert(&mut self, name: &str, value: &str) -> Option<Box<str>> {
        match self.position(name) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value.into())),
            Err(at) => {
                self.entries.insert(at, (intern(name), value.into()));
                None
            }
        }
    }

    /// Clears a property; returns the value it had.
    pub(crate) fn remove(&mut self, name: &str) -> Option<Box<str>> {
        let at = self.position(name).ok()?;
        Some(self.entries.remove(at).1)
    }

    /// `(name, value)` pairs in name order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(name, value)| (name.as_ref(), value.as_ref()))
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(name, _)| name)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(_, value)| value)
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for PropertyMap {
    /// Non-empty values only (`""` means "no value"); a later pair for a name wins. The map
    /// is allocated once, at its final size.
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(pairs: I) -> Self {
        let mut pairs: Vec<(&str, &str)> =
            pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        pairs.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = later.1;
            }
            same
        });
        let entries = pairs
            .into_iter()
            .map(|(name, value)| (intern(name), value.into()))
            .collect();
        PropertyMap { entries }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_set_replace_remove() {
        let mut map: PropertyMap = [("lastname", "Lovelace"), ("email", "a@x.co"), ("x", "")]
            .into_iter()
            .collect();
        assert_eq!(map.names().collect::<Vec<_>>(), ["email", "lastname"]);
        assert_eq!(map.insert("custom_name", "1"), None);
        assert_eq!(map.insert("email", "b@x.co").as_deref(), Some("a@x.co"));
        assert_eq!(map.get("email"), Some("b@x.co"));
        assert_eq!(
            map.iter().collect::<Vec<_>>(),
            [
                ("custom_name", "1"),
                ("email", "b@x.co"),
                ("lastname", "Lovelace")
            ]
        );
        assert_eq!(map.remove("lastname").as_deref(), Some("Lovelace"));
        assert_eq!(map.remove("lastname"), None);
        assert_eq!(map.values().collect::<Vec<_>>(), ["1", "b@x.co"]);
    }

    #[test]
    fn registry_names_are_borrowed() {
        let map: PropertyMap = [("email", "a@x.co"), ("not_a_property", "1")]
            .into_iter()
            .collect();
        let borrowed: Vec<bool> = map
            .entries
            .iter()
            .map(|(name, _)| matches!(name, Cow::Borrowed(_)))
            .collect();
        assert_eq!(borrowed, [true, false]);
    }
}
