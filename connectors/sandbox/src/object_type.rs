//! The object types the sandbox knows, and how a URL segment names one.
//!
//! HubSpot accepts an object type by name (`contacts`, `contact`) or by type id (`0-1`)
//! (FACTS U6); everything downstream works with this enum instead of strings.

use crate::properties::{self, PropertyDef};

/// A CRM object type served by the sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ObjectType {
    Contacts,
    Companies,
}

impl ObjectType {
    /// Parses the `{objectType}` path segment: plural name, singular name or type id.
    pub(crate) fn parse(segment: &str) -> Option<Self> {
        match segment.to_ascii_lowercase().as_str() {
            "contacts" | "contact" | "0-1" => Some(ObjectType::Contacts),
            "companies" | "company" | "0-2" => Some(ObjectType::Companies),
            _ => None,
        }
    }

    /// The plural name used in paths (`contacts`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contacts",
            ObjectType::Companies => "companies",
        }
    }

    /// HubSpot's object type id (`0-1`), used in some of its error messages.
    pub(crate) fn type_id(self) -> &'static str {
        match self {
            ObjectType::Contacts => "0-1",
            ObjectType::Companies => "0-2",
        }
    }

    /// The upper-case singular HubSpot uses in batch read errors (`CONTACT`).
    pub(crate) fn upper(self) -> &'static str {
        match self {
            ObjectType::Contacts => "CONTACT",
            ObjectType::Companies => "COMPANY",
        }
    }

    /// The singular label used in conflict messages (`Contact already exists`).
    pub(crate) fn singular(self) -> &'static str {
        match self {
            ObjectType::Contacts => "Contact",
            ObjectType::Companies => "Company",
        }
    }

    /// Properties returned when a read does not name any (FACTS U5).
    pub(crate) fn default_properties(self) -> &'static [&'static str] {
        match self {
            ObjectType::Contacts => &[
                "createdate",
                "email",
                "firstname",
                "hs_object_id",
                "lastmodifieddate",
                "lastname",
            ],
            ObjectType::Companies => &[
                "createdate",
                "domain",
                "hs_object_id",
                "lastmodifieddate",
                "name",
            ],
        }
    }

    /// The built-in property registry of this object type.
    pub(crate) fn properties(self) -> &'static [PropertyDef] {
        match self {
            ObjectType::Contacts => properties::CONTACTS,
            ObjectType::Companies => properties::COMPANIES,
        }
    }

    /// One property by internal name.
    pub(crate) fn property(self, name: &str) -> Option<&'static PropertyDef> {
        self.properties().iter().find(|p| p.name == name)
    }

    /// The unique properties the store indexes: every one but `hs_object_id`, which is the
    /// record id itself.
    pub(crate) fn indexed_properties(self) -> impl Iterator<Item = &'static str> {
        self.properties()
            .iter()
            .filter(|p| p.unique && p.name != "hs_object_id")
            .map(|p| p.name)
    }

    /// True when `name` may be used as `idProperty` (a property with unique values).
    pub(crate) fn is_unique(self, name: &str) -> bool {
        self.property(name).is_some_and(|p| p.unique)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_ids() {
        assert_eq!(ObjectType::parse("contacts"), Some(ObjectType::Contacts));
        assert_eq!(ObjectType::parse("0-1"), Some(ObjectType::Contacts));
        assert_eq!(ObjectType::parse("COMPANY"), Some(ObjectType::Companies));
        assert_eq!(ObjectType::parse("0-2"), Some(ObjectType::Companies));
        assert_eq!(ObjectType::parse("deals"), None);
    }

    #[test]
    fn unique_properties() {
        assert!(ObjectType::Contacts.is_unique("email"));
        assert!(ObjectType::Contacts.is_unique("hs_object_id"));
        assert!(!ObjectType::Contacts.is_unique("firstname"));
        assert!(ObjectType::Companies.is_unique("domain"));
        assert!(!ObjectType::Companies.is_unique("name"));
    }

    #[test]
    fn indexed_properties() {
        let names = |object: ObjectType| object.indexed_properties().collect::<Vec<_>>();
        assert_eq!(names(ObjectType::Contacts), ["email"]);
        assert_eq!(names(ObjectType::Companies), ["domain"]);
    }
}
