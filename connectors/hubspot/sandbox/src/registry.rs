//! The object types of the sandbox's portal and how a URL segment names one.
//!
//! The registry changes at run time (custom object schemas, created properties), so it lives
//! in the store, under the store's mutex, and everything downstream names an object type by an
//! [`ObjectType`] key into it. Built-ins come first, in a fixed order, so their keys are
//! constants. HubSpot accepts an object type by plural or singular name (`contacts`,
//! `contact`) or by type id (`0-1`), and a custom object by type id (`2-…`), fully qualified
//! name (`p<portalId>_<name>`) or `p_<name>` (FACTS U6); names compare ignoring case.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::builtin;
use crate::properties::{PropertyDef, Text};
use crate::schema::CustomSchema;

/// A key naming one object type of a [`Registry`] (its position there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ObjectType(usize);

/// The built-ins' keys (tests name object types directly; routes resolve path segments).
#[cfg(test)]
impl ObjectType {
    /// Contacts (`0-1`).
    pub(crate) const CONTACTS: ObjectType = ObjectType(0);
    /// Companies (`0-2`).
    pub(crate) const COMPANIES: ObjectType = ObjectType(1);
    /// Deals (`0-3`).
    pub(crate) const DEALS: ObjectType = ObjectType(2);
    /// Tickets (`0-5`).
    pub(crate) const TICKETS: ObjectType = ObjectType(3);
}

/// One object type: its names, properties and rules.
#[derive(Clone, Debug)]
pub(crate) struct ObjectDef {
    /// HubSpot's object type id (`0-1`, `2-1000001`).
    pub(crate) type_id: Text,
    /// The plural name of a built-in (`contacts`), the schema `name` of a custom object.
    pub(crate) name: Text,
    /// What a path may call it besides the type id, in lower case.
    aliases: Vec<Text>,
    pub(crate) singular_label: Text,
    pub(crate) plural_label: Text,
    pub(crate) properties: Vec<PropertyDef>,
    /// Properties returned when a read names none (FACTS U5).
    pub(crate) default_properties: Vec<Text>,
    /// Properties a created record must have, and an update must not clear.
    pub(crate) required: Vec<Text>,
    /// What only custom objects have (fully qualified name, schema settings).
    pub(crate) custom: Option<CustomSchema>,
}

impl ObjectDef {
    /// A built-in object type over a declaration table.
    pub(crate) fn builtin(
        type_id: &'static str,
        [plural, singular]: [&'static str; 2],
        [singular_label, plural_label]: [&'static str; 2],
        properties: &'static [PropertyDef],
        default_properties: Vec<Text>,
        required: Vec<Text>,
    ) -> Self {
        ObjectDef {
            type_id: Cow::Borrowed(type_id),
            name: Cow::Borrowed(plural),
            aliases: vec![Cow::Borrowed(plural), Cow::Borrowed(singular)],
            singular_label: Cow::Borrowed(singular_label),
            plural_label: Cow::Borrowed(plural_label),
            properties: properties.to_vec(),
            default_properties,
            required,
            custom: None,
        }
    }

    /// A custom object type described by its schema.
    pub(crate) fn custom(
        schema: CustomSchema,
        [singular_label, plural_label]: [String; 2],
        properties: Vec<PropertyDef>,
        required: Vec<String>,
    ) -> Self {
        let mut default_properties: Vec<Text> = ["createdate", "hs_object_id", "lastmodifieddate"]
            .into_iter()
            .map(Cow::Borrowed)
            .collect();
        if let Some(primary) = &schema.primary_display_property {
            default_properties.push(Cow::Owned(primary.clone()));
        }
        ObjectDef {
            type_id: Cow::Owned(schema.object_type_id()),
            name: Cow::Owned(schema.name.clone()),
            aliases: vec![
                Cow::Owned(schema.fully_qualified_name.to_ascii_lowercase()),
                Cow::Owned(format!("p_{}", schema.name.to_ascii_lowercase())),
            ],
            singular_label: Cow::Owned(singular_label),
            plural_label: Cow::Owned(plural_label),
            properties,
            default_properties,
            required: required.into_iter().map(Cow::Owned).collect(),
            custom: Some(schema),
        }
    }

    /// One property by internal name.
    pub(crate) fn property(&self, name: &str) -> Option<&PropertyDef> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// True when `name` may be used as `idProperty` (a property with unique values).
    pub(crate) fn is_unique(&self, name: &str) -> bool {
        self.property(name).is_some_and(|p| p.unique)
    }

    /// The unique properties the store indexes: every one but `hs_object_id`, which is the
    /// record id itself.
    pub(crate) fn indexed_properties(&self) -> impl Iterator<Item = &PropertyDef> {
        self.properties
            .iter()
            .filter(|p| p.unique && p.name != "hs_object_id")
    }

    /// A value as the store keeps it: in lower case for the properties HubSpot lower-cases
    /// (contacts `email`, companies `domain`), as given otherwise.
    pub(crate) fn stored_value<'a>(&self, name: &str, value: &'a str) -> Cow<'a, str> {
        let lower = self.property(name).is_some_and(|p| p.lower_case);
        if lower && value.chars().any(char::is_uppercase) {
            Cow::Owned(value.to_lowercase())
        } else {
            Cow::Borrowed(value)
        }
    }

    /// The upper-case singular HubSpot uses in error messages (`CONTACT`).
    pub(crate) fn upper(&self) -> String {
        self.singular_label.to_uppercase()
    }

    /// The segment this sandbox writes in paging links (`contacts`, `2-1000001`).
    pub(crate) fn path_name(&self) -> &str {
        if self.custom.is_some() {
            &self.type_id
        } else {
            &self.name
        }
    }
}

/// Every object type of the portal, and the names paths may use for them.
#[derive(Clone, Debug)]
pub(crate) struct Registry {
    objects: Vec<ObjectDef>,
    /// Path names (lower case) to keys: names, type ids, fully qualified names.
    paths: HashMap<String, ObjectType>,
}

impl Default for Registry {
    /// A fresh portal: the built-in object types only.
    fn default() -> Self {
        let mut registry = Registry {
            objects: Vec::new(),
            paths: HashMap::new(),
        };
        for object in builtin::objects() {
            registry.add(object);
        }
        registry
    }
}

impl Registry {
    /// The object type a path segment names, if any.
    pub(crate) fn resolve(&self, segment: &str) -> Option<ObjectType> {
        self.paths
            .get(segment.to_ascii_lowercase().as_str())
            .copied()
    }

    /// The custom object a schema route names: by type id, fully qualified name, `p_<name>` or
    /// schema `name` (built-ins have no schema).
    pub(crate) fn resolve_custom(&self, segment: &str) -> Option<ObjectType> {
        let by_path = self
            .resolve(segment)
            .filter(|o| self.get(*o).custom.is_some());
        by_path.or_else(|| self.custom_named(segment))
    }

    /// The custom object whose schema `name` is `name` (ignoring case).
    pub(crate) fn custom_named(&self, name: &str) -> Option<ObjectType> {
        self.customs()
            .find(|(_, def)| def.name.eq_ignore_ascii_case(name))
            .map(|(key, _)| key)
    }

    /// The definition behind a key.
    pub(crate) fn get(&self, object: ObjectType) -> &ObjectDef {
        self.objects
            .get(object.0)
            .expect("an ObjectType comes from this registry, which only grows while it lives")
    }

    /// The definition behind a key, to add a property to.
    pub(crate) fn get_mut(&mut self, object: ObjectType) -> &mut ObjectDef {
        self.objects
            .get_mut(object.0)
            .expect("an ObjectType comes from this registry, which only grows while it lives")
    }

    /// Adds an object type and its path names; returns its key.
    pub(crate) fn add(&mut self, def: ObjectDef) -> ObjectType {
        let key = ObjectType(self.objects.len());
        let names = def.aliases.iter().chain(std::iter::once(&def.type_id));
        for name in names {
            self.paths.insert(name.to_ascii_lowercase(), key);
        }
        self.objects.push(def);
        key
    }

    /// The custom object types, in creation order.
    pub(crate) fn customs(&self) -> impl Iterator<Item = (ObjectType, &ObjectDef)> {
        self.objects
            .iter()
            .enumerate()
            .filter(|(_, def)| def.custom.is_some())
            .map(|(i, def)| (ObjectType(i), def))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_ids() {
        let registry = Registry::default();
        let resolve = |s: &str| registry.resolve(s);
        assert_eq!(resolve("contacts"), Some(ObjectType::CONTACTS));
        assert_eq!(resolve("0-1"), Some(ObjectType::CONTACTS));
        assert_eq!(resolve("COMPANY"), Some(ObjectType::COMPANIES));
        assert_eq!(resolve("0-2"), Some(ObjectType::COMPANIES));
        assert_eq!(resolve("deals"), Some(ObjectType::DEALS));
        assert_eq!(resolve("0-3"), Some(ObjectType::DEALS));
        assert_eq!(resolve("ticket"), Some(ObjectType::TICKETS));
        assert_eq!(resolve("0-5"), Some(ObjectType::TICKETS));
        assert_eq!(resolve("widgets"), None);
        assert_eq!(resolve("0-4"), None);
        assert_eq!(registry.resolve_custom("contacts"), None);
    }

    #[test]
    fn unique_and_indexed_properties() {
        let registry = Registry::default();
        let contacts = registry.get(ObjectType::CONTACTS);
        assert!(contacts.is_unique("email"));
        assert!(contacts.is_unique("hs_object_id"));
        assert!(!contacts.is_unique("firstname"));
        let companies = registry.get(ObjectType::COMPANIES);
        assert!(companies.is_unique("domain"));
        assert!(!companies.is_unique("name"));
        let names = |object: ObjectType| {
            registry
                .get(object)
                .indexed_properties()
                .map(|p| p.name.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(ObjectType::CONTACTS), ["email"]);
        assert_eq!(names(ObjectType::COMPANIES), ["domain"]);
        assert!(names(ObjectType::DEALS).is_empty());
        assert_eq!(
            registry.get(ObjectType::TICKETS).required,
            ["hs_pipeline_stage"]
        );
    }

    #[test]
    fn emails_and_domains_are_kept_in_lower_case() {
        let registry = Registry::default();
        let contacts = registry.get(ObjectType::CONTACTS);
        assert_eq!(contacts.stored_value("email", "Ann@X.com"), "ann@x.com");
        assert_eq!(contacts.stored_value("firstname", "Ann"), "Ann");
        let companies = registry.get(ObjectType::COMPANIES);
        assert_eq!(
            companies.stored_value("domain", "Example.COM"),
            "example.com"
        );
    }
}
