//! The built-in object types of every portal and their property registries.
//!
//! A declaration table: one line per property, so each registry reads like HubSpot's settings
//! page. Contacts (`0-1`), companies (`0-2`), deals (`0-3`) and tickets (`0-5`), with the type
//! ids of FACTS U6. Deal stages and ticket statuses are the internal values of HubSpot's default
//! pipelines (`default`, `0`); owners are external options (FACTS P4), so any owner id is taken.
//! Tickets require `hs_pipeline_stage` on create, as HubSpot does ("Cannot create object with
//! type: TICKET. The following required properties were missing"); deals require nothing: the
//! API falls back to the default pipeline (HubSpot's docs only say a deal "should" have
//! `dealname` and `dealstage`).

use std::borrow::Cow;

use crate::properties::{
    PropertyDef, PropertyOption, ValueType, boolean, choice, def, external, opt, text,
};
use crate::registry::ObjectDef;

const LIFECYCLE_STAGES: &[PropertyOption] = &[
    opt("subscriber", "Subscriber"),
    opt("lead", "Lead"),
    opt("marketingqualifiedlead", "Marketing Qualified Lead"),
    opt("salesqualifiedlead", "Sales Qualified Lead"),
    opt("opportunity", "Opportunity"),
    opt("customer", "Customer"),
    opt("evangelist", "Evangelist"),
    opt("other", "Other"),
];

const LEAD_STATUSES: &[PropertyOption] = &[
    opt("NEW", "New"),
    opt("OPEN", "Open"),
    opt("IN_PROGRESS", "In Progress"),
    opt("OPEN_DEAL", "Open Deal"),
    opt("UNQUALIFIED", "Unqualified"),
    opt("ATTEMPTED_TO_CONTACT", "Attempted to Contact"),
    opt("CONNECTED", "Connected"),
    opt("BAD_TIMING", "Bad Timing"),
];

const DEAL_PIPELINES: &[PropertyOption] = &[opt("default", "Sales Pipeline")];

const DEAL_STAGES: &[PropertyOption] = &[
    opt("appointmentscheduled", "Appointment Scheduled"),
    opt("qualifiedtobuy", "Qualified To Buy"),
    opt("presentationscheduled", "Presentation Scheduled"),
    opt("decisionmakerboughtin", "Decision Maker Bought-In"),
    opt("contractsent", "Contract Sent"),
    opt("closedwon", "Closed Won"),
    opt("closedlost", "Closed Lost"),
];

const TICKET_PIPELINES: &[PropertyOption] = &[opt("0", "Support Pipeline")];

const TICKET_STAGES: &[PropertyOption] = &[
    opt("1", "New"),
    opt("2", "Waiting on contact"),
    opt("3", "Waiting on us"),
    opt("4", "Closed"),
];

const TICKET_PRIORITIES: &[PropertyOption] = &[
    opt("LOW", "Low"),
    opt("MEDIUM", "Medium"),
    opt("HIGH", "High"),
    opt("URGENT", "Urgent"),
];

const CONTACT: &str = "contactinformation";
const COMPANY: &str = "companyinformation";
const DEAL: &str = "dealinformation";
const TICKET: &str = "ticketinformation";

/// The three system properties every object type has, derived from the record.
pub(crate) fn system(group: &'static str) -> [PropertyDef; 3] {
    [record_id(group), created(group), modified(group)]
}

/// `hs_object_id`: the record id, unique and read-only (every object type has it).
const fn record_id(group: &'static str) -> PropertyDef {
    def(
        "hs_object_id",
        "Record ID",
        ValueType::Number,
        "number",
        group,
    )
    .unique()
    .read_only()
}

/// `createdate`: derived from the record, read-only.
const fn created(group: &'static str) -> PropertyDef {
    def(
        "createdate",
        "Create Date",
        ValueType::DateTime,
        "date",
        group,
    )
    .read_only()
}

/// `lastmodifieddate`: derived from the record, read-only.
const fn modified(group: &'static str) -> PropertyDef {
    def(
        "lastmodifieddate",
        "Last Modified Date",
        ValueType::DateTime,
        "date",
        group,
    )
    .read_only()
}

/// Contacts (`0-1`).
pub(crate) static CONTACTS: &[PropertyDef] = &[
    text("email", "Email", CONTACT)
        .unique()
        .email()
        .lower_case(),
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
    choice(
        "lifecyclestage",
        "Lifecycle Stage",
        "radio",
        CONTACT,
        LIFECYCLE_STAGES,
    ),
    choice(
        "hs_lead_status",
        "Lead Status",
        "radio",
        "sales_properties",
        LEAD_STATUSES,
    ),
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
    boolean("is_vip", "VIP", CONTACT).custom(),
    record_id(CONTACT),
    created(CONTACT),
    modified(CONTACT),
];

/// Companies (`0-2`); `domain` is kept in lower case like `email`, as HubSpot does.
pub(crate) static COMPANIES: &[PropertyDef] = &[
    text("name", "Company name", COMPANY),
    text("domain", "Company Domain Name", COMPANY)
        .unique()
        .lower_case(),
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
    record_id(COMPANY),
    created(COMPANY),
    modified(COMPANY),
];

/// Deals (`0-3`).
pub(crate) static DEALS: &[PropertyDef] = &[
    text("dealname", "Deal Name", DEAL),
    def("amount", "Amount", ValueType::Number, "number", DEAL),
    choice("dealstage", "Deal Stage", "radio", DEAL, DEAL_STAGES),
    choice("pipeline", "Pipeline", "select", DEAL, DEAL_PIPELINES),
    def("closedate", "Close Date", ValueType::DateTime, "date", DEAL),
    external("hubspot_owner_id", "Deal owner", DEAL),
    def(
        "description",
        "Deal Description",
        ValueType::String,
        "textarea",
        DEAL,
    ),
    record_id(DEAL),
    created(DEAL),
    modified(DEAL),
];

/// Tickets (`0-5`).
pub(crate) static TICKETS: &[PropertyDef] = &[
    text("subject", "Ticket name", TICKET),
    def(
        "content",
        "Ticket description",
        ValueType::String,
        "textarea",
        TICKET,
    ),
    choice(
        "hs_pipeline",
        "Pipeline",
        "select",
        TICKET,
        TICKET_PIPELINES,
    ),
    choice(
        "hs_pipeline_stage",
        "Ticket status",
        "select",
        TICKET,
        TICKET_STAGES,
    ),
    choice(
        "hs_ticket_priority",
        "Priority",
        "select",
        TICKET,
        TICKET_PRIORITIES,
    ),
    external("hubspot_owner_id", "Ticket owner", TICKET),
    record_id(TICKET),
    created(TICKET),
    modified(TICKET),
];

/// Every registry of a built-in type, for interning property names.
pub(crate) const REGISTRIES: [&[PropertyDef]; 4] = [CONTACTS, COMPANIES, DEALS, TICKETS];

fn borrowed(names: &'static [&'static str]) -> Vec<Cow<'static, str>> {
    names.iter().map(|n| Cow::Borrowed(*n)).collect()
}

/// The built-in object types, in the order of their [`ObjectType`](crate::registry::ObjectType)
/// constants.
pub(crate) fn objects() -> Vec<ObjectDef> {
    vec![
        ObjectDef::builtin(
            "0-1",
            ["contacts", "contact"],
            ["Contact", "Contacts"],
            CONTACTS,
            borrowed(&[
                "createdate",
                "email",
                "firstname",
                "hs_object_id",
                "lastmodifieddate",
                "lastname",
            ]),
            Vec::new(),
        ),
        ObjectDef::builtin(
            "0-2",
            ["companies", "company"],
            ["Company", "Companies"],
            COMPANIES,
            borrowed(&[
                "createdate",
                "domain",
                "hs_object_id",
                "lastmodifieddate",
                "name",
            ]),
            Vec::new(),
        ),
        ObjectDef::builtin(
            "0-3",
            ["deals", "deal"],
            ["Deal", "Deals"],
            DEALS,
            borrowed(&[
                "amount",
                "closedate",
                "createdate",
                "dealname",
                "dealstage",
                "hs_object_id",
                "lastmodifieddate",
                "pipeline",
            ]),
            Vec::new(),
        ),
        ObjectDef::builtin(
            "0-5",
            ["tickets", "ticket"],
            ["Ticket", "Tickets"],
            TICKETS,
            borrowed(&[
                "content",
                "createdate",
                "hs_object_id",
                "hs_pipeline",
                "hs_pipeline_stage",
                "hs_ticket_priority",
                "lastmodifieddate",
                "subject",
            ]),
            borrowed(&["hs_pipeline_stage"]),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_object() {
        for registry in REGISTRIES {
            let mut names: Vec<_> = registry.iter().map(|p| p.name.as_ref()).collect();
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len());
        }
    }

    #[test]
    fn field_types_fit_value_types() {
        for property in REGISTRIES.iter().flat_map(|r| r.iter()) {
            assert!(
                property.value_type.fits(&property.field_type),
                "{}",
                property.name
            );
        }
    }
}
