//! One CRM record and its wire form (`SimplePublicObject`).
//!
//! Records hold only the properties written to them; `hs_object_id`, `createdate` and
//! `lastmodifieddate` are derived from the record's id and timestamps, so they can never drift
//! and can never be written.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::property_map::PropertyMap;
use crate::registry::ObjectDef;

/// ISO-8601 with milliseconds and `Z`, as HubSpot writes timestamps.
pub(crate) fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One CRM record.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) id: u64,
    pub(crate) properties: PropertyMap,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    /// Archived records stay in their table as tombstones until it is compacted; nothing
    /// reads them.
    pub(crate) archived: bool,
}

/// Which properties a read returns.
#[derive(Clone, Debug)]
pub(crate) enum Selection {
    /// The object type's defaults (FACTS U5).
    Defaults,
    /// The named ones plus the three system properties; unknown names are ignored.
    Named(Vec<String>),
    /// Everything the record has (used by upsert/update results and the control routes).
    All,
}

impl Selection {
    /// `Named` when the client asked for properties, `Defaults` otherwise.
    pub(crate) fn from_request(names: Vec<String>) -> Self {
        let names: Vec<String> = names.into_iter().filter(|n| !n.is_empty()).collect();
        if names.is_empty() {
            Selection::Defaults
        } else {
            Selection::Named(names)
        }
    }
}

const SYSTEM_PROPERTIES: [&str; 3] = ["createdate", "hs_object_id", "lastmodifieddate"];

impl Record {
    /// A property's current value, including the derived system properties.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        match name {
            "hs_object_id" => Some(self.id.to_string()),
            "createdate" => Some(iso(self.created_at)),
            "lastmodifieddate" => Some(iso(self.updated_at)),
            _ => self.properties.get(name).map(str::to_owned),
        }
    }

    /// The selected properties as a JSON object, in name order; properties without a value
    /// are left out (the contract types every value as a string, so there is no `null`).
    pub(crate) fn select(&self, object: &ObjectDef, selection: &Selection) -> Map<String, Value> {
        let mut names: Vec<&str> = match selection {
            Selection::Defaults => object
                .default_properties
                .iter()
                .map(|n| n.as_ref())
                .collect(),
            Selection::Named(names) => names.iter().map(String::as_str).collect(),
            Selection::All => self.properties.names().collect(),
        };
        names.extend(SYSTEM_PROPERTIES);
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .filter_map(|n| self.get(n).map(|v| (n.to_owned(), Value::String(v))))
            .collect()
    }

    /// The `SimplePublicObject` form of this record.
    pub(crate) fn to_json(&self, object: &ObjectDef, selection: &Selection) -> Value {
        json!({
            "id": self.id.to_string(),
            "properties": self.select(object, selection),
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "archived": false,
        })
    }
}
