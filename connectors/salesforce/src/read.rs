//! Reading records back by id or by external-id value, for crash recovery and `engine state
//! rebuild`: SOQL `SELECT Id, CreatedDate, <fields> FROM <Object> WHERE <field> IN (…)`,
//! chunked under the URL limit, every page followed. Read-only.

use std::collections::BTreeMap;

use connector_core::{Diagnostic, Record, RecordRef};
use serde_json::Value;

use crate::SalesforceDestination;

/// A record of a query result: its id, its requested fields that hold a value (as text), and
/// its creation time.
pub(crate) fn record_of(value: &Value, fields: &[String]) -> Option<Record> {
    let id = value.get("Id").and_then(Value::as_str)?.to_string();
    let mut properties = BTreeMap::new();
    for field in fields {
        let text = match value.get(field) {
            None | Some(Value::Null) => continue,
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        };
        properties.insert(field.clone(), text);
    }
    Some(Record {
        id,
        properties,
        created_at: value
            .get("CreatedDate")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

impl SalesforceDestination {
    /// Reads records of the sync's object by record id or by the external-id field's values
    /// (read-only). Records that do not exist are left out of the answer.
    pub async fn read_records(
        &self,
        by: RecordRef,
        values: &[String],
        properties: &[String],
    ) -> Result<Vec<Record>, Diagnostic> {
        let field = match by {
            RecordRef::Id => "Id".to_string(),
            RecordRef::MatchValue => self
                .config
                .external_id_field
                .clone()
                .unwrap_or_else(|| "Id".to_string()),
        };
        let values: Vec<&str> = match by {
            // Ids are compared in their 18-character form; a value that is no id matches none.
            RecordRef::Id => values
                .iter()
                .filter(|v| crate::ids::parse_id(v).is_ok())
                .map(String::as_str)
                .collect(),
            RecordRef::MatchValue => values.iter().map(String::as_str).collect(),
        };
        let mut fields: Vec<String> = vec!["Id".into(), "CreatedDate".into()];
        for name in properties.iter().chain(std::iter::once(&field)) {
            if !fields.contains(name) {
                fields.push(name.clone());
            }
        }
        let select = format!("SELECT {} FROM {}", fields.join(", "), self.config.object);
        let mut records = Vec::new();
        for query in crate::soql::in_queries(&select, &field, &values, self.query_url_overhead()) {
            let found = self.query(&query).await.map_err(|d| self.redact(d))?;
            records.extend(found.iter().filter_map(|r| record_of(r, &fields[2..])));
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_keep_values_as_text_and_drop_nulls() {
        let record = record_of(
            &json!({"attributes":{"type":"Contact"},"Id":"003","CreatedDate":"2024-01-01T00:00:00.000+0000",
                    "Email":"a@x.com","Opened__c":true,"Views__c":3,"Title":null}),
            &["Email".into(), "Opened__c".into(), "Views__c".into(), "Title".into()],
        )
        .expect("a record");
        assert_eq!(record.properties["Opened__c"], "true");
        assert_eq!(record.properties["Views__c"], "3");
        assert!(!record.properties.contains_key("Title"));
        assert!(record.created_at.is_some());
        assert!(record_of(&json!({"Email":"x"}), &[]).is_none());
    }
}
