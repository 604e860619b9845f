//! Custom object schemas (crm-schemas-v3.json, FACTS C1): creating one and its wire form.
//!
//! `POST /crm-object-schemas/v3/schemas` takes an `ObjectSchemaEgg`. The sandbox checks it as
//! HubSpot does: a `name` (a letter, then letters, digits, underscores) not already taken by
//! another custom object (409 `CONFLICT`), both labels, valid properties (see
//! `property_create`), and `requiredProperties`, `searchableProperties`,
//! `secondaryDisplayProperties` and `primaryDisplayProperty` naming only those properties;
//! `associatedObjects` must name object types of the portal. The new type gets the id `2-<n>`
//! (`n` keeps increasing across resets, like record ids), the fully qualified name
//! `p<portalId>_<name>` with the sandbox's [`PORTAL_ID`], the three system properties every
//! type has, and one association definition per associated object.

use std::collections::HashSet;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::PORTAL_ID;
use crate::builtin;
use crate::errors::{ApiError, category};
use crate::property_create::PropertyInput;
use crate::record::iso;
use crate::registry::{ObjectDef, Registry};

/// The group of a custom object's properties when the schema names none.
const GROUP: &str = "objectinformation";

/// What a custom object type has beyond its properties.
#[derive(Clone, Debug)]
pub(crate) struct CustomSchema {
    /// The number of the type id `2-<id>`, also the schema's `id`.
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) fully_qualified_name: String,
    pub(crate) description: String,
    pub(crate) primary_display_property: Option<String>,
    pub(crate) searchable: Vec<String>,
    pub(crate) secondary: Vec<String>,
    pub(crate) associations: Vec<AssociationDef>,
    pub(crate) created_at: DateTime<Utc>,
}

/// One `AssociationDefinition` of a schema.
#[derive(Clone, Debug)]
pub(crate) struct AssociationDef {
    pub(crate) id: u64,
    pub(crate) to_type_id: String,
    pub(crate) name: String,
}

impl CustomSchema {
    /// `2-<id>`.
    pub(crate) fn object_type_id(&self) -> String {
        format!("2-{}", self.id)
    }
}

/// `ObjectTypeDefinitionLabels`.
#[derive(Debug, Default, Deserialize)]
struct Labels {
    #[serde(default)]
    singular: Option<String>,
    #[serde(default)]
    plural: Option<String>,
}

/// `ObjectSchemaEgg`; the arrays may be left out (they default to empty).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SchemaEgg {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    labels: Labels,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    primary_display_property: Option<String>,
    #[serde(default)]
    required_properties: Vec<String>,
    #[serde(default)]
    searchable_properties: Vec<String>,
    #[serde(default)]
    secondary_display_properties: Vec<String>,
    #[serde(default)]
    properties: Vec<PropertyInput>,
    #[serde(default)]
    associated_objects: Vec<String>,
}

/// True when `name` is a schema name HubSpot takes.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Refuses names in `listed` that are not among `known`.
fn check_known(what: &str, listed: &[String], known: &HashSet<&str>) -> Result<(), ApiError> {
    let unknown: Vec<String> = listed
        .iter()
        .filter(|n| !known.contains(n.as_str()))
        .cloned()
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(ApiError::validation(format!(
        "{what} names properties the schema does not define: [{}]",
        unknown.join(", ")
    ))
    .context(what, unknown))
}

impl SchemaEgg {
    /// The object type this schema describes, or the 400/409 refusing it. `id` numbers the type,
    /// `next_association` numbers its association definitions.
    pub(crate) fn build(
        self,
        registry: &Registry,
        id: u64,
        next_association: &mut u64,
        now: DateTime<Utc>,
    ) -> Result<ObjectDef, ApiError> {
        let name = self.name.unwrap_or_default();
        if !valid_name(&name) {
            return Err(ApiError::validation(format!(
                "Invalid object name `{name}`: a name starts with a letter and holds only \
                 letters, digits and underscores"
            ))
            .context("name", vec![name]));
        }
        if let Some(existing) = registry.custom_named(&name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                category::CONFLICT,
                format!(
                    "An object type named {name} already exists: {}",
                    registry.get(existing).type_id
                ),
            ));
        }
        let label = |label: Option<String>, which: &str| {
            label.filter(|l| !l.trim().is_empty()).ok_or_else(|| {
                ApiError::validation(format!("The schema needs `labels.{which}`"))
                    .context("labels", vec![which.to_owned()])
            })
        };
        let labels = [
            label(self.labels.singular, "singular")?,
            label(self.labels.plural, "plural")?,
        ];
        let mut properties = builtin::system(GROUP).to_vec();
        for input in self.properties {
            let property = input.build(Some(GROUP), now)?;
            if properties.iter().any(|p| p.name == property.name) {
                return Err(ApiError::validation(format!(
                    "Property `{}` is defined twice",
                    property.name
                ))
                .context("properties", vec![property.name.to_string()]));
            }
            properties.push(property);
        }
        let known: HashSet<&str> = properties.iter().map(|p| p.name.as_ref()).collect();
        check_known("requiredProperties", &self.required_properties, &known)?;
        check_known("searchableProperties", &self.searchable_properties, &known)?;
        check_known(
            "secondaryDisplayProperties",
            &self.secondary_display_properties,
            &known,
        )?;
        let primary = self.primary_display_property.filter(|p| !p.is_empty());
        check_known("primaryDisplayProperty", primary.as_slice(), &known)?;
        let mut associations = Vec::new();
        for target in &self.associated_objects {
            let to = registry.resolve(target).ok_or_else(|| {
                ApiError::validation(format!(
                    "Unknown associated object type `{target}`: use a name or type id such as \
                     CONTACT or 0-1"
                ))
                .context("associatedObjects", vec![target.clone()])
            })?;
            let to = registry.get(to);
            *next_association += 1;
            associations.push(AssociationDef {
                id: *next_association,
                to_type_id: to.type_id.to_string(),
                name: format!(
                    "{}_to_{}",
                    name.to_lowercase(),
                    to.singular_label.to_lowercase()
                ),
            });
        }
        let schema = CustomSchema {
            id,
            fully_qualified_name: format!("p{PORTAL_ID}_{name}"),
            name,
            description: self.description.unwrap_or_default(),
            primary_display_property: primary,
            searchable: self.searchable_properties,
            secondary: self.secondary_display_properties,
            associations,
            created_at: now,
        };
        Ok(ObjectDef::custom(
            schema,
            labels,
            properties,
            self.required_properties,
        ))
    }
}

/// What a schema read includes (the `include…` query parameters, all true by default).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Include {
    pub(crate) properties: bool,
    pub(crate) associations: bool,
}

/// The `ObjectSchema` of a custom object type (`None` for a built-in).
pub(crate) fn to_json(object: &ObjectDef, include: Include) -> Option<Value> {
    let schema = object.custom.as_ref()?;
    let properties: Vec<Value> = if include.properties {
        object
            .properties
            .iter()
            .enumerate()
            .map(|(i, p)| p.to_json(i))
            .collect()
    } else {
        Vec::new()
    };
    let created = iso(schema.created_at);
    let associations: Vec<Value> = if include.associations {
        schema
            .associations
            .iter()
            .map(|a| {
                json!({
                    "id": a.id.to_string(),
                    "fromObjectTypeId": object.type_id,
                    "toObjectTypeId": a.to_type_id,
                    "name": a.name,
                    "createdAt": created,
                    "updatedAt": created,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut body = json!({
        "id": schema.id.to_string(),
        "objectTypeId": object.type_id,
        "fullyQualifiedName": schema.fully_qualified_name,
        "name": schema.name,
        "labels": {"singular": object.singular_label, "plural": object.plural_label},
        "description": schema.description,
        "requiredProperties": object.required,
        "searchableProperties": schema.searchable,
        "secondaryDisplayProperties": schema.secondary,
        "properties": properties,
        "associations": associations,
        "archived": false,
        "createdAt": created,
        "updatedAt": created,
    });
    if let Some(primary) = &schema.primary_display_property {
        body["primaryDisplayProperty"] = json!(primary);
    }
    Some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(registry: &Registry, body: Value) -> Result<ObjectDef, String> {
        let egg: SchemaEgg = serde_json::from_value(body).map_err(|e| e.to_string())?;
        egg.build(registry, 7, &mut 0, Utc::now())
            .map_err(|e| format!("{e:?}"))
    }

    fn car(extra: Value) -> Value {
        let mut body = json!({
            "name": "car",
            "labels": {"singular": "Car", "plural": "Cars"},
            "primaryDisplayProperty": "vin",
            "requiredProperties": ["vin"],
            "properties": [
                {"name": "vin", "label": "VIN", "type": "string", "fieldType": "text",
                 "hasUniqueValue": true},
                {"name": "year", "label": "Year", "type": "number", "fieldType": "number"},
            ],
            "associatedObjects": ["CONTACT"],
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    }

    #[test]
    fn a_schema_becomes_an_object_type() {
        let registry = Registry::default();
        let def = build(&registry, car(json!({}))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(def.type_id, "2-7");
        assert_eq!(def.required, ["vin"]);
        assert!(def.is_unique("vin"));
        assert!(def.property("hs_object_id").is_some_and(|p| p.read_only));
        let include = Include {
            properties: true,
            associations: true,
        };
        let json = to_json(&def, include).unwrap_or_default();
        assert_eq!(json["fullyQualifiedName"], format!("p{PORTAL_ID}_car"));
        assert_eq!(json["associations"][0]["toObjectTypeId"], "0-1");
        assert_eq!(json["associations"][0]["fromObjectTypeId"], "2-7");
    }

    #[test]
    fn bad_schemas() {
        let registry = Registry::default();
        for extra in [
            json!({"name": "1car"}),
            json!({"name": ""}),
            json!({"labels": {"singular": "Car"}}),
            json!({"requiredProperties": ["colour"]}),
            json!({"searchableProperties": ["colour"]}),
            json!({"primaryDisplayProperty": "colour"}),
            json!({"associatedObjects": ["SPACESHIP"]}),
            json!({"properties": [
                {"name": "vin", "label": "VIN", "type": "string", "fieldType": "text"},
                {"name": "vin", "label": "VIN", "type": "string", "fieldType": "text"},
            ]}),
            json!({"properties": [
                {"name": "hs_object_id", "label": "Id", "type": "string", "fieldType": "text"},
            ]}),
            json!({"properties": [
                {"name": "vin", "label": "VIN", "type": "string", "fieldType": "select"},
            ]}),
        ] {
            assert!(build(&registry, car(extra.clone())).is_err(), "{extra}");
        }
    }
}
