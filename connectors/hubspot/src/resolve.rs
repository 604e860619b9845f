//! Which record each new row writes, once its match values have been looked up: by the match
//! property first, then by each `match.fallback` property in order (first hit wins). Pure: the
//! destination searches; this module reads the records found.
//!
//! A fallback never hands a row a record that another match value owns: a record found by a
//! fallback whose match property holds a different value is refused for writing (an insert
//! still skips it, since it leaves the record as it is).

use std::collections::HashMap;

use connector_core::{Operation, OperationKind, Record};

use crate::config::HubspotConfig;
use crate::lookup;

/// What the look-ups found for one row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Found {
    /// No record holds any of the row's match values.
    Nothing,
    /// One record, found by `property` holding `value`.
    One {
        /// The record's id.
        id: String,
        /// The property that found it.
        property: String,
        /// The row's value of that property.
        value: String,
    },
    /// Several records hold the value that matched first: the row cannot tell which to write.
    Several(String),
    /// A fallback found a record that belongs to another match value.
    Refused(String),
}

/// The row's value of a match property: the match value for the match property, else the
/// value the row writes to that property (`None` when it writes none).
pub(crate) fn value_of<'a>(
    config: &HubspotConfig,
    op: &'a Operation,
    property: &str,
) -> Option<&'a str> {
    let value = if property == config.match_property {
        op.match_value.as_deref()
    } else {
        op.properties
            .iter()
            .find(|(name, _)| name == property)
            .map(|(_, value)| value.as_str())
    };
    value.filter(|v| !v.trim().is_empty())
}

/// A value as records found for a batch are keyed: in lower case where HubSpot compares
/// values ignoring case (`email`, `domain`, and every search).
pub(crate) fn key(config: &HubspotConfig, value: &str) -> String {
    if config.search_match || crate::match_is_case_insensitive(&config.match_property) {
        value.to_lowercase()
    } else {
        value.to_string()
    }
}

/// Resolves the rows still at [`Found::Nothing`] from the records found by `property`
/// (keyed by [`key`]). The match property resolves every row; a fallback resolves a row to a
/// record only when the record's match property is empty or holds the row's own value.
pub(crate) fn resolve(
    config: &HubspotConfig,
    operations: &[Operation],
    found: &mut [Found],
    property: &str,
    records: &HashMap<String, Vec<Record>>,
) {
    let fallback = property != config.match_property;
    for (op, slot) in operations.iter().zip(found.iter_mut()) {
        if *slot != Found::Nothing {
            continue;
        }
        let Some(value) = value_of(config, op, property) else {
            continue;
        };
        let hits = records
            .get(&key(config, value))
            .map(Vec::as_slice)
            .unwrap_or_default();
        *slot = match hits {
            [] => Found::Nothing,
            [record] if fallback && op.kind != OperationKind::Create => {
                match owned_elsewhere(config, op, record) {
                    Some(other) => Found::Refused(refused(config, property, value, record, other)),
                    None => one(record, property, value),
                }
            }
            [record] => one(record, property, value),
            several => {
                let ids: Vec<String> = several.iter().map(|r| r.id.clone()).collect();
                Found::Several(lookup::ambiguous(&config.object, property, value, &ids))
            }
        };
    }
}

fn one(record: &Record, property: &str, value: &str) -> Found {
    Found::One {
        id: record.id.clone(),
        property: property.to_string(),
        value: value.to_string(),
    }
}

/// The record's match value, when it holds one that is not the row's.
fn owned_elsewhere<'r>(
    config: &HubspotConfig,
    op: &Operation,
    record: &'r Record,
) -> Option<&'r str> {
    let theirs = record
        .properties
        .get(&config.match_property)
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())?;
    let ours = op.match_value.as_deref().unwrap_or_default();
    (key(config, theirs) != key(config, ours)).then_some(theirs)
}

fn refused(
    config: &HubspotConfig,
    property: &str,
    value: &str,
    record: &Record,
    theirs: &str,
) -> String {
    format!(
        "the {object} record {id} found by {property} `{value}` has {matched} `{theirs}`, so it \
         is another {matched}'s record and the row is not written to it: correct the row's \
         {property} or {matched} in the model, or the record in HubSpot",
        object = config.object,
        id = record.id,
        matched = config.match_property,
    )
}

#[cfg(test)]
mod tests {
    use connector_core::SecretString;

    use super::*;

    fn config() -> HubspotConfig {
        HubspotConfig::new(SecretString::new("t"), "companies", "domain")
            .with_fallback(vec!["name".into()])
    }

    fn op(kind: OperationKind, domain: &str, name: &str) -> Operation {
        Operation {
            key: domain.into(),
            kind,
            destination_id: None,
            match_value: Some(domain.into()),
            properties: vec![
                ("domain".into(), domain.into()),
                ("name".into(), name.into()),
            ],
        }
    }

    fn records(property: &str, list: &[(&str, &str, &str)]) -> HashMap<String, Vec<Record>> {
        let found = list
            .iter()
            .map(|(id, domain, name)| Record {
                id: (*id).into(),
                properties: [("domain", *domain), ("name", *name)]
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                created_at: None,
            })
            .collect();
        lookup::group(found, property)
    }

    #[test]
    fn the_first_property_that_finds_a_record_wins() {
        let config = config();
        let ops = [
            op(OperationKind::Upsert, "acme.com", "Acme"),
            op(OperationKind::Upsert, "globex.com", "Globex"),
            op(OperationKind::Upsert, "initech.com", "Initech"),
        ];
        let mut found = vec![Found::Nothing; 3];
        resolve(
            &config,
            &ops,
            &mut found,
            "domain",
            &records("domain", &[("1", "ACME.com", "Acme Inc")]),
        );
        resolve(
            &config,
            &ops,
            &mut found,
            "name",
            &records("name", &[("1", "acme.com", "Acme"), ("2", "", "globex")]),
        );
        assert_eq!(
            found[0],
            one(
                &Record {
                    id: "1".into(),
                    properties: Default::default(),
                    created_at: None,
                },
                "domain",
                "acme.com"
            )
        );
        assert_eq!(
            found[1],
            one(
                &Record {
                    id: "2".into(),
                    properties: Default::default(),
                    created_at: None,
                },
                "name",
                "Globex"
            )
        );
        assert_eq!(found[2], Found::Nothing);
    }

    #[test]
    fn a_fallback_never_hands_over_a_record_another_match_value_owns() {
        let config = config();
        let ops = [
            op(OperationKind::Upsert, "acme.de", "Acme"),
            op(OperationKind::Create, "acme.fr", "Acme"),
        ];
        let mut found = vec![Found::Nothing; 2];
        resolve(
            &config,
            &ops,
            &mut found,
            "name",
            &records("name", &[("1", "acme.com", "Acme")]),
        );
        let Found::Refused(message) = &found[0] else {
            panic!("{found:?}");
        };
        assert!(message.contains("record 1 found by name `Acme` has domain `acme.com`"));
        // An insert leaves the record as it is, so it may find it and skip.
        assert!(matches!(&found[1], Found::One { id, .. } if id == "1"));
    }

    #[test]
    fn several_records_with_one_value_fail_the_row_naming_them() {
        let config = config();
        let ops = [op(OperationKind::Upsert, "acme.com", "Acme")];
        let mut found = vec![Found::Nothing];
        resolve(
            &config,
            &ops,
            &mut found,
            "name",
            &records("name", &[("1", "", "Acme"), ("2", "", "acme")]),
        );
        assert!(matches!(&found[0], Found::Several(m) if m.contains("(ids 1, 2)")));
    }
}
