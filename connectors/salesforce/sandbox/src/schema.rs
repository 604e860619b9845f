//! Object and field definitions and their describe answers (FACTS D1).
//!
//! An [`ObjectDef`] is what `GET /sobjects/{SObject}/describe` shows and what every write,
//! query and Bulk row is checked against. Field names are looked up ignoring case, as
//! Salesforce does; answers use the canonical spelling.

use std::collections::HashMap;

use serde_json::{Value, json};

/// A field's data type, with the `type` and `soapType` describe shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldType {
    Id,
    String,
    TextArea,
    Email,
    Url,
    Phone,
    Boolean,
    Date,
    DateTime,
    Double,
    Currency,
    Percent,
    Int,
    Picklist,
    MultiPicklist,
    Reference,
}

impl FieldType {
    /// Every type, for the error that lists them.
    pub(crate) const ALL: [FieldType; 16] = [
        FieldType::Id,
        FieldType::String,
        FieldType::TextArea,
        FieldType::Email,
        FieldType::Url,
        FieldType::Phone,
        FieldType::Boolean,
        FieldType::Date,
        FieldType::DateTime,
        FieldType::Double,
        FieldType::Currency,
        FieldType::Percent,
        FieldType::Int,
        FieldType::Picklist,
        FieldType::MultiPicklist,
        FieldType::Reference,
    ];

    /// The describe `type`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::String => "string",
            FieldType::TextArea => "textarea",
            FieldType::Email => "email",
            FieldType::Url => "url",
            FieldType::Phone => "phone",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::Double => "double",
            FieldType::Currency => "currency",
            FieldType::Percent => "percent",
            FieldType::Int => "int",
            FieldType::Picklist => "picklist",
            FieldType::MultiPicklist => "multipicklist",
            FieldType::Reference => "reference",
        }
    }

    /// The type a describe `type` names.
    pub(crate) fn parse(text: &str) -> Option<FieldType> {
        FieldType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(text))
    }

    fn soap_type(self) -> &'static str {
        match self {
            FieldType::Id | FieldType::Reference => "tns:ID",
            FieldType::Boolean => "xsd:boolean",
            FieldType::Date => "xsd:date",
            FieldType::DateTime => "xsd:dateTime",
            FieldType::Double | FieldType::Currency | FieldType::Percent => "xsd:double",
            FieldType::Int => "xsd:int",
            _ => "xsd:string",
        }
    }

    /// Whether values are text held in a string (length-checked).
    pub(crate) fn is_text(self) -> bool {
        matches!(
            self,
            FieldType::String
                | FieldType::TextArea
                | FieldType::Email
                | FieldType::Url
                | FieldType::Phone
                | FieldType::Picklist
                | FieldType::MultiPicklist
        )
    }
}

/// One field of an object.
#[derive(Clone, Debug)]
pub(crate) struct FieldDef {
    pub(crate) name: String,
    pub(crate) label: String,
    pub(crate) kind: FieldType,
    /// Characters for text types; 0 otherwise.
    pub(crate) length: u32,
    pub(crate) precision: u32,
    pub(crate) scale: u32,
    pub(crate) createable: bool,
    pub(crate) updateable: bool,
    pub(crate) nillable: bool,
    pub(crate) defaulted_on_create: bool,
    pub(crate) external_id: bool,
    pub(crate) unique: bool,
    pub(crate) id_lookup: bool,
    pub(crate) custom: bool,
    pub(crate) picklist: Vec<String>,
    pub(crate) restricted: bool,
    /// The value a create gets when it leaves the field out (picklist default, checkbox).
    pub(crate) default: Option<Value>,
    pub(crate) reference_to: Vec<String>,
    pub(crate) relationship_name: Option<String>,
}

impl FieldDef {
    /// A createable, updateable, nillable field of `kind` (the common case; builders below
    /// change what differs).
    pub(crate) fn new(name: &str, label: &str, kind: FieldType) -> Self {
        let length = match kind {
            FieldType::Id | FieldType::Reference => 18,
            FieldType::String | FieldType::Phone | FieldType::Picklist => 255,
            FieldType::Email => 80,
            FieldType::Url => 255,
            FieldType::TextArea => 32_000,
            FieldType::MultiPicklist => 4_099,
            _ => 0,
        };
        let (precision, scale) = match kind {
            FieldType::Double | FieldType::Currency | FieldType::Percent => (18, 2),
            _ => (0, 0),
        };
        FieldDef {
            name: name.to_owned(),
            label: label.to_owned(),
            kind,
            length,
            precision,
            scale,
            createable: true,
            updateable: true,
            nillable: kind != FieldType::Boolean,
            defaulted_on_create: kind == FieldType::Boolean,
            external_id: false,
            unique: false,
            id_lookup: false,
            custom: name.ends_with("__c"),
            picklist: Vec::new(),
            restricted: false,
            default: (kind == FieldType::Boolean).then_some(Value::Bool(false)),
            reference_to: Vec::new(),
            relationship_name: None,
        }
    }

    /// A field the system sets: neither createable nor updateable.
    pub(crate) fn system(mut self) -> Self {
        self.createable = false;
        self.updateable = false;
        self.defaulted_on_create = true;
        self
    }

    /// A field a create must set (not nillable, not defaulted).
    pub(crate) fn required(mut self) -> Self {
        self.nillable = false;
        self.defaulted_on_create = false;
        self
    }

    pub(crate) fn length(mut self, length: u32) -> Self {
        self.length = length;
        self
    }

    pub(crate) fn id_lookup(mut self) -> Self {
        self.id_lookup = true;
        self
    }

    pub(crate) fn reference(mut self, to: &str, relationship: &str) -> Self {
        self.reference_to = vec![to.to_owned()];
        self.relationship_name = Some(relationship.to_owned());
        self
    }

    pub(crate) fn picklist(mut self, values: &[&str], restricted: bool) -> Self {
        self.picklist = values.iter().map(|v| (*v).to_owned()).collect();
        self.restricted = restricted;
        self
    }

    pub(crate) fn defaulted(mut self, value: Value) -> Self {
        self.defaulted_on_create = true;
        self.default = Some(value);
        self
    }

    /// Whether a create must give a value (REQUIRED_FIELD_MISSING otherwise).
    #[cfg(test)]
    pub(crate) fn is_required(&self) -> bool {
        self.createable && !self.nillable && !self.defaulted_on_create
    }

    /// Whether the field can match records by value (upsert, Bulk `externalIdFieldName`).
    pub(crate) fn is_indexed(&self) -> bool {
        self.external_id || self.unique || self.id_lookup
    }

    /// The describe entry (FACTS D1).
    pub(crate) fn describe(&self) -> Value {
        let picklist: Vec<Value> = self
            .picklist
            .iter()
            .map(|value| {
                json!({
                    "active": true,
                    "defaultValue": self.default.as_ref().and_then(Value::as_str) == Some(value),
                    "label": value,
                    "validFor": null,
                    "value": value,
                })
            })
            .collect();
        let digits = if self.kind == FieldType::Int { 9 } else { 0 };
        json!({
            "name": self.name,
            "label": self.label,
            "type": self.kind.as_str(),
            "soapType": self.kind.soap_type(),
            "length": self.length,
            "byteLength": self.length * 3,
            "digits": digits,
            "precision": self.precision,
            "scale": self.scale,
            "createable": self.createable,
            "updateable": self.updateable,
            "nillable": self.nillable,
            "defaultedOnCreate": self.defaulted_on_create,
            "defaultValue": self.default,
            "externalId": self.external_id,
            "unique": self.unique,
            "idLookup": self.id_lookup,
            "custom": self.custom,
            "calculated": false,
            "autoNumber": false,
            "caseSensitive": false,
            "filterable": true,
            "sortable": self.kind != FieldType::TextArea && self.kind != FieldType::MultiPicklist,
            "groupable": true,
            "nameField": self.name == "Name",
            "picklistValues": picklist,
            "restrictedPicklist": self.restricted,
            "referenceTo": self.reference_to,
            "relationshipName": self.relationship_name,
            "polymorphicForeignKey": self.reference_to.len() > 1,
        })
    }
}

/// One object (sObject type).
#[derive(Clone, Debug)]
pub(crate) struct ObjectDef {
    pub(crate) name: String,
    pub(crate) label: String,
    pub(crate) label_plural: String,
    pub(crate) key_prefix: String,
    pub(crate) custom: bool,
    pub(crate) fields: Vec<FieldDef>,
    by_lower: HashMap<String, usize>,
    /// `Name` is `FirstName LastName`, computed (Contact, Lead, User).
    pub(crate) compound_name: bool,
}

impl ObjectDef {
    pub(crate) fn new(name: &str, label: &str, plural: &str, prefix: &str) -> Self {
        ObjectDef {
            name: name.to_owned(),
            label: label.to_owned(),
            label_plural: plural.to_owned(),
            key_prefix: prefix.to_owned(),
            custom: name.ends_with("__c"),
            fields: Vec::new(),
            by_lower: HashMap::new(),
            compound_name: false,
        }
    }

    /// Adds a field (replacing one of the same name).
    pub(crate) fn push(&mut self, field: FieldDef) {
        let key = field.name.to_ascii_lowercase();
        if let Some(&at) = self.by_lower.get(&key) {
            self.fields[at] = field;
        } else {
            self.by_lower.insert(key, self.fields.len());
            self.fields.push(field);
        }
    }

    /// A field by name, ignoring case.
    pub(crate) fn field(&self, name: &str) -> Option<&FieldDef> {
        self.by_lower
            .get(&name.to_ascii_lowercase())
            .map(|&at| &self.fields[at])
    }

    /// The reference field whose relationship name is `name` (`Account` for `AccountId`,
    /// `Contact__r` for `Contact__c`), ignoring case.
    pub(crate) fn relationship(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| {
            f.relationship_name
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(name))
        })
    }

    /// The fields that match records by value.
    pub(crate) fn indexed_fields(&self) -> impl Iterator<Item = &FieldDef> {
        self.fields
            .iter()
            .filter(|f| f.is_indexed() && f.kind != FieldType::Id)
    }

    fn urls(&self, version: &str) -> Value {
        let base = format!("/services/data/v{version}/sobjects/{}", self.name);
        json!({
            "sobject": base,
            "describe": format!("{base}/describe"),
            "rowTemplate": format!("{base}/{{ID}}"),
        })
    }

    /// The entry in describe global (`GET /sobjects`).
    pub(crate) fn summary(&self, version: &str) -> Value {
        json!({
            "name": self.name,
            "label": self.label,
            "labelPlural": self.label_plural,
            "keyPrefix": self.key_prefix,
            "custom": self.custom,
            "createable": true,
            "updateable": true,
            "deletable": true,
            "queryable": true,
            "retrieveable": true,
            "searchable": true,
            "layoutable": true,
            "triggerable": true,
            "undeletable": true,
            "mergeable": false,
            "replicateable": true,
            "customSetting": false,
            "deprecatedAndHidden": false,
            "feedEnabled": false,
            "activateable": false,
            "urls": self.urls(version),
        })
    }

    /// The full describe (`GET /sobjects/{SObject}/describe`, FACTS D1).
    pub(crate) fn describe(&self, version: &str) -> Value {
        let mut body = self.summary(version);
        body["fields"] = self.fields.iter().map(FieldDef::describe).collect();
        body["childRelationships"] = json!([]);
        body["recordTypeInfos"] = json!([]);
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_ignoring_case() {
        let mut object = ObjectDef::new("Thing__c", "Thing", "Things", "a00");
        object.push(FieldDef::new("Ext__c", "Ext", FieldType::String));
        assert_eq!(
            object.field("ext__C").map(|f| f.name.as_str()),
            Some("Ext__c")
        );
        assert!(object.custom);
        let describe = object.describe("62.0");
        assert_eq!(describe["fields"][0]["type"], "string");
        assert_eq!(describe["fields"][0]["custom"], true);
        assert_eq!(FieldType::parse("DateTime"), Some(FieldType::DateTime));
    }
}
