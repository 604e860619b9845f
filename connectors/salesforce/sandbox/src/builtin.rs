//! The standard objects every sandbox org has: Account (`001`), Contact (`003`), Lead (`00Q`),
//! User (`005`) and Asset (`02i`, the object of the Postman collection's Bulk example), with
//! the fields a connector maps most often, as Salesforce describes them (FACTS D1, I3).

use serde_json::Value;

use crate::schema::{FieldDef, FieldType as T, ObjectDef};

/// The fields every object has: `Id`, the audit fields and `IsDeleted` (and `OwnerId` for
/// objects owned by users).
pub(crate) fn system_fields(object: &mut ObjectDef, owned: bool) {
    object.push(
        FieldDef::new("Id", &format!("{} ID", object.label), T::Id)
            .system()
            .id_lookup(),
    );
    if owned {
        object.push(
            FieldDef::new("OwnerId", "Owner ID", T::Reference)
                .reference("User", "Owner")
                .defaulted(Value::Null),
        );
    }
    object.push(FieldDef::new("IsDeleted", "Deleted", T::Boolean).system());
    object.push(FieldDef::new("CreatedDate", "Created Date", T::DateTime).system());
    object.push(
        FieldDef::new("CreatedById", "Created By ID", T::Reference)
            .reference("User", "CreatedBy")
            .system(),
    );
    object.push(FieldDef::new("LastModifiedDate", "Last Modified Date", T::DateTime).system());
    object.push(
        FieldDef::new("LastModifiedById", "Last Modified By ID", T::Reference)
            .reference("User", "LastModifiedBy")
            .system(),
    );
    object.push(FieldDef::new("SystemModstamp", "System Modstamp", T::DateTime).system());
}

fn address(object: &mut ObjectDef, prefix: &str, label: &str) {
    for (suffix, name, length) in [
        ("Street", "Street", 255),
        ("City", "City", 40),
        ("State", "State/Province", 80),
        ("PostalCode", "Zip/Postal Code", 20),
        ("Country", "Country", 80),
    ] {
        object.push(
            FieldDef::new(
                &format!("{prefix}{suffix}"),
                &format!("{label} {name}"),
                T::String,
            )
            .length(length),
        );
    }
}

fn account() -> ObjectDef {
    let mut o = ObjectDef::new("Account", "Account", "Accounts", "001");
    system_fields(&mut o, true);
    o.push(
        FieldDef::new("Name", "Account Name", T::String)
            .required()
            .id_lookup(),
    );
    o.push(FieldDef::new("Type", "Account Type", T::Picklist).picklist(
        &[
            "Prospect",
            "Customer - Direct",
            "Customer - Channel",
            "Partner",
            "Other",
        ],
        false,
    ));
    o.push(FieldDef::new("Industry", "Industry", T::Picklist).picklist(
        &["Agriculture", "Banking", "Education", "Technology", "Other"],
        false,
    ));
    o.push(FieldDef::new("Website", "Website", T::Url));
    o.push(FieldDef::new("Phone", "Account Phone", T::Phone).length(40));
    o.push(FieldDef::new(
        "Description",
        "Account Description",
        T::TextArea,
    ));
    o.push(FieldDef::new("NumberOfEmployees", "Employees", T::Int));
    o.push(FieldDef::new(
        "AnnualRevenue",
        "Annual Revenue",
        T::Currency,
    ));
    o.push(
        FieldDef::new("ParentId", "Parent Account ID", T::Reference).reference("Account", "Parent"),
    );
    address(&mut o, "Billing", "Billing");
    o
}

fn contact() -> ObjectDef {
    let mut o = ObjectDef::new("Contact", "Contact", "Contacts", "003");
    o.compound_name = true;
    system_fields(&mut o, true);
    o.push(FieldDef::new("AccountId", "Account ID", T::Reference).reference("Account", "Account"));
    o.push(
        FieldDef::new("Salutation", "Salutation", T::Picklist)
            .picklist(&["Mr.", "Ms.", "Mrs.", "Dr.", "Prof."], false)
            .length(40),
    );
    o.push(FieldDef::new("FirstName", "First Name", T::String).length(40));
    o.push(
        FieldDef::new("LastName", "Last Name", T::String)
            .length(80)
            .required(),
    );
    o.push(
        FieldDef::new("Name", "Full Name", T::String)
            .length(121)
            .system()
            .id_lookup(),
    );
    o.push(FieldDef::new("Email", "Email", T::Email).id_lookup());
    o.push(FieldDef::new("Phone", "Business Phone", T::Phone).length(40));
    o.push(FieldDef::new("MobilePhone", "Mobile Phone", T::Phone).length(40));
    o.push(FieldDef::new("Title", "Title", T::String).length(128));
    o.push(FieldDef::new("Department", "Department", T::String).length(80));
    o.push(FieldDef::new("Birthdate", "Birthdate", T::Date));
    o.push(
        FieldDef::new("LeadSource", "Lead Source", T::Picklist).picklist(
            &[
                "Web",
                "Phone Inquiry",
                "Partner Referral",
                "Purchased List",
                "Other",
            ],
            false,
        ),
    );
    o.push(FieldDef::new(
        "HasOptedOutOfEmail",
        "Email Opt Out",
        T::Boolean,
    ));
    o.push(FieldDef::new(
        "Description",
        "Contact Description",
        T::TextArea,
    ));
    address(&mut o, "Mailing", "Mailing");
    o
}

fn lead() -> ObjectDef {
    let mut o = ObjectDef::new("Lead", "Lead", "Leads", "00Q");
    o.compound_name = true;
    system_fields(&mut o, true);
    o.push(FieldDef::new("FirstName", "First Name", T::String).length(40));
    o.push(
        FieldDef::new("LastName", "Last Name", T::String)
            .length(80)
            .required(),
    );
    o.push(
        FieldDef::new("Name", "Full Name", T::String)
            .length(121)
            .system()
            .id_lookup(),
    );
    o.push(FieldDef::new("Company", "Company", T::String).required());
    o.push(FieldDef::new("Email", "Email", T::Email).id_lookup());
    o.push(FieldDef::new("Phone", "Phone", T::Phone).length(40));
    o.push(FieldDef::new("Title", "Title", T::String).length(128));
    o.push(
        FieldDef::new("Status", "Status", T::Picklist)
            .picklist(
                &[
                    "Open - Not Contacted",
                    "Working - Contacted",
                    "Closed - Converted",
                    "Closed - Not Converted",
                ],
                true,
            )
            .length(40)
            .required()
            .defaulted(Value::String("Open - Not Contacted".to_owned())),
    );
    o.push(
        FieldDef::new("LeadSource", "Lead Source", T::Picklist).picklist(
            &[
                "Web",
                "Phone Inquiry",
                "Partner Referral",
                "Purchased List",
                "Other",
            ],
            false,
        ),
    );
    o.push(FieldDef::new("Website", "Website", T::Url));
    o.push(FieldDef::new("NumberOfEmployees", "Employees", T::Int));
    o.push(FieldDef::new("IsConverted", "Converted", T::Boolean).system());
    o.push(FieldDef::new(
        "HasOptedOutOfEmail",
        "Email Opt Out",
        T::Boolean,
    ));
    o.push(FieldDef::new("Description", "Description", T::TextArea));
    address(&mut o, "", "");
    o
}

fn user() -> ObjectDef {
    let mut o = ObjectDef::new("User", "User", "Users", "005");
    o.compound_name = true;
    system_fields(&mut o, false);
    o.push(
        FieldDef::new("Username", "Username", T::String)
            .length(80)
            .required()
            .id_lookup(),
    );
    o.push(FieldDef::new("FirstName", "First Name", T::String).length(40));
    o.push(
        FieldDef::new("LastName", "Last Name", T::String)
            .length(80)
            .required(),
    );
    o.push(
        FieldDef::new("Name", "Full Name", T::String)
            .length(121)
            .system()
            .id_lookup(),
    );
    o.push(FieldDef::new("Email", "Email", T::Email).required());
    o.push(
        FieldDef::new("Alias", "Alias", T::String)
            .length(8)
            .required(),
    );
    o.push(FieldDef::new("IsActive", "Active", T::Boolean));
    o
}

fn asset() -> ObjectDef {
    let mut o = ObjectDef::new("Asset", "Asset", "Assets", "02i");
    system_fields(&mut o, true);
    o.push(
        FieldDef::new("Name", "Asset Name", T::String)
            .required()
            .id_lookup(),
    );
    o.push(FieldDef::new("AccountId", "Account ID", T::Reference).reference("Account", "Account"));
    o.push(FieldDef::new("ContactId", "Contact ID", T::Reference).reference("Contact", "Contact"));
    o.push(FieldDef::new("SerialNumber", "Serial Number", T::String).length(80));
    o.push(FieldDef::new("Quantity", "Quantity", T::Double));
    o.push(
        FieldDef::new("Status", "Status", T::Picklist)
            .picklist(
                &[
                    "Purchased",
                    "Shipped",
                    "Installed",
                    "Registered",
                    "Obsolete",
                ],
                false,
            )
            .length(40),
    );
    o.push(FieldDef::new("Description", "Description", T::TextArea));
    o
}

/// The standard objects, in describe-global order.
pub(crate) fn standard_objects() -> Vec<ObjectDef> {
    vec![account(), asset(), contact(), lead(), user()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_fields_are_those_salesforce_requires() {
        let objects = standard_objects();
        let required = |name: &str| -> Vec<String> {
            objects
                .iter()
                .find(|o| o.name == name)
                .map(|o| {
                    o.fields
                        .iter()
                        .filter(|f| f.is_required())
                        .map(|f| f.name.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(required("Contact"), ["LastName"]);
        assert_eq!(required("Lead"), ["LastName", "Company"]);
        assert_eq!(required("Account"), ["Name"]);
    }
}
