//! The built-in property registries and their wire form (`Property` in crm-properties-v3.json).
//!
//! A declaration table: one line per property, so the registry reads like HubSpot's settings
//! page. Writes are checked against it (`validate`), `GET /crm/v3/properties/{objectType}`
//! renders it. Values follow FACTS P1/P4/P5: `type` and `fieldType` from HubSpot's sets,
//! enumeration options by internal value, read-only properties flagged `calculated` and
//! `modificationMetadata.readOnlyValue`.

use serde_json::{Value, json};

/// When every built-in property claims to have been created (the registry is static).
const DEFINED_AT: &str = "2019-08-06T02:41:52.720Z";

/// The data type of a property (`Property.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueType {
    String,
    Number,
    Bool,
    Date,
    DateTime,
    Enumeration,
}

impl ValueType {
    fn wire(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Number => "number",
            ValueType::Bool => "bool",
            ValueType::Date => "date",
            ValueType::DateTime => "datetime",
            ValueType::Enumeration => "enumeration",
        }
    }
}

/// One property definition: what `GET /crm/v3/properties` shows and what writes are checked by.
#[derive(Debug)]
pub(crate) struct PropertyDef {
    pub(crate) name: &'static str,
    pub(crate) label: &'static str,
    pub(crate) value_type: ValueType,
    pub(crate) field_type: &'static str,
    pub(crate) group: &'static str,
    /// `(value, label)` pairs; the value is what the API accepts (FACTS P4).
    pub(crate) options: &'static [(&'static str, &'static str)],
    pub(crate) unique: bool,
    pub(crate) read_only: bool,
    pub(crate) hubspot_defined: bool,
    /// Values must be email addresses (`textDisplayHint: email`).
    pub(crate) email: bool,
}

const fn def(
    name: &'static str,
    label: &'static str,
    value_type: ValueType,
    field_type: &'static str,
    group: &'static str,
) -> PropertyDef {
    PropertyDef {
        name,
        label,
        value_type,
        field_type,
        group,
        options: &[],
        unique: false,
        read_only: false,
        hubspot_defined: true,
        email: false,
    }
}

const fn text(name: &'static str, label: &'static str, group: &'static str) -> PropertyDef {
    def(name, label, ValueType::String, "text", group)
}

impl PropertyDef {
    const fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    const fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }
    const fn custom(mut self) -> Self {
        self.hubspot_defined = false;
        self
    }
    const fn email(mut self) -> Self {
        self.email = true;
        self
    }
    const fn options(mut self, options: &'static [(&'static str, &'static str)]) -> Self {
        self.options = options;
        self
    }

    /// The option values, in display order (used in `INVALID_OPTION` messages).
    pub(crate) fn option_values(&self) -> Vec<&'static str> {
        self.options.iter().map(|(value, _)| *value).collect()
    }

    /// The `Property` object of crm-properties-v3.json.
    pub(crate) fn to_json(&self, display_order: usize) -> Value {
        let options: Vec<Value> = self
            .options
            .iter()
            .enumerate()
            .map(|(i, (value, label))| {
                json!({"label": label, "value": value, "displayOrder": i, "hidden": false})
            })
            .collect();
        let mut property = json!({
            "name": self.name,
            "label": self.label,
            "type": self.value_type.wire(),
            "fieldType": self.field_type,
            "description": "",
            "groupName": self.group,
            "options": options,
            "displayOrder": display_order,
            "calculated": self.read_only,
            "externalOptions": false,
            "hasUniqueValue": self.unique,
            "hidden": false,
            "hubspotDefined": self.hubspot_defined,
            "formField": !self.read_only,
            "archived": false,
            "createdAt": DEFINED_AT,
            "updatedAt": DEFINED_AT,
            "dataSensitivity": "non_sensitive",
            "modificationMetadata": {
                "archivable": !self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyOptions": self.value_type != ValueType::Enumeration,
                "readOnlyValue": self.read_only,
            },
        });
        if self.email {
            property["textDisplayHint"] = json!("email");
        }
        property
    }
}

const BOOL_OPTIONS: &[(&str, &str)] = &[("true", "Yes"), ("false", "No")];

const LIFECYCLE_STAGES: &[(&str, &str)] = &[
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
];

const LEAD_STATUSES: &[(&str, &str)] = &[
    ("NEW", "New"),
    ("OPEN", "Open"),
    ("IN_PROGRESS", "In Progress"),
    ("OPEN_DEAL", "Open Deal"),
    ("UNQUALIFIED", "Unqualified"),
    ("ATTEMPTED_TO_CONTACT", "Attempted to Contact"),
    ("CONNECTED", "Connected"),
    ("BAD_TIMING", "Bad Timing"),
];

const CONTACT: &str = "contactinformation";
const COMPANY: &str = "companyinformation";

/// Contacts (`0-1`).
pub(crate) static CONTACTS: &[PropertyDef] = &[
    text("email", "Email", CONTACT).unique().email(),
    text("firstname", "First Name", CONTACT),
    text("lastname", "Last Name", CONTACT),
    def(
        "phone",
        "Phone Number",
        ValueType::String,
        "phonenumber",
        CONTACT,
    ),
    text("company", "Company Name", CONTACT),
    text("website", "Website URL", CONTACT),
    text("city", "City", CONTACT),
    text("country", "Country/Region", CONTACT),
    text("jobtitle", "Job Title", CONTACT),
    def(
        "lifecyclestage",
        "Lifecycle Stage",
        ValueType::Enumeration,
        "radio",
        CONTACT,
    )
    .options(LIFECYCLE_STAGES),
    def(
        "hs_lead_status",
        "Lead Status",
        ValueType::Enumeration,
        "radio",
        "sales_properties",
    )
    .options(LEAD_STATUSES),
    def(
        "date_of_birth",
        "Date of birth",
        ValueType::Date,
        "date",
        CONTACT,
    )
    .custom(),
    def(
        "last_seen_at",
        "Last seen at",
        ValueType::DateTime,
        "date",
        CONTACT,
    )
    .custom(),
    def(
        "num_orders",
        "Number of orders",
        ValueType::Number,
        "number",
        CONTACT,
    )
    .custom(),
    def("is_vip", "VIP", ValueType::Bool, "booleancheckbox", CONTACT)
        .options(BOOL_OPTIONS)
        .custom(),
    def(
        "hs_object_id",
        "Record ID",
        ValueType::Number,
        "number",
        CONTACT,
    )
    .unique()
    .read_only(),
    def(
        "createdate",
        "Create Date",
        ValueType::DateTime,
        "date",
        CONTACT,
    )
    .read_only(),
    def(
        "lastmodifieddate",
        "Last Modified Date",
        ValueType::DateTime,
        "date",
        CONTACT,
    )
    .read_only(),
];

/// Companies (`0-2`).
pub(crate) static COMPANIES: &[PropertyDef] = &[
    text("name", "Company name", COMPANY),
    text("domain", "Company Domain Name", COMPANY).unique(),
    def(
        "phone",
        "Phone Number",
        ValueType::String,
        "phonenumber",
        COMPANY,
    ),
    text("city", "City", COMPANY),
    text("country", "Country/Region", COMPANY),
    text("industry", "Industry", COMPANY),
    def(
        "numberofemployees",
        "Number of Employees",
        ValueType::Number,
        "number",
        COMPANY,
    ),
    def(
        "hs_object_id",
        "Record ID",
        ValueType::Number,
        "number",
        COMPANY,
    )
    .unique()
    .read_only(),
    def(
        "createdate",
        "Create Date",
        ValueType::DateTime,
        "date",
        COMPANY,
    )
    .read_only(),
    def(
        "lastmodifieddate",
        "Last Modified Date",
        ValueType::DateTime,
        "date",
        COMPANY,
    )
    .read_only(),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_object() {
        for registry in [CONTACTS, COMPANIES] {
            let mut names: Vec<_> = registry.iter().map(|p| p.name).collect();
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len());
        }
    }

    #[test]
    fn read_only_properties_are_flagged() {
        let json = CONTACTS
            .iter()
            .find(|p| p.name == "hs_object_id")
            .map(|p| p.to_json(0))
            .unwrap_or_default();
        assert_eq!(json["calculated"], true);
        assert_eq!(json["modificationMetadata"]["readOnlyValue"], true);
    }
}
