//! Custom behavioural events: their definitions and the occurrences sent
//! (events-custom-event-definitions-v3.json, events-custom-behavioral-send-v3.json, FACTS
//! V1, V2).
//!
//! A definition has an internal name (`^[a-z][a-z0-9_]*$`, at most 50 characters, made from
//! the label when none is given), the fully qualified name `pe<portalId>_<name>` that sends
//! must use, a primary object (contacts unless said otherwise) and typed properties
//! (`string`, `number`, `enumeration` with options, `datetime`), plus HubSpot's default event
//! properties when `includeDefaultProperties` is set. A send must name a defined event,
//! identify a record by `objectId` (a live record of the primary object), `email` (a contact,
//! or no record: HubSpot documents no contact creation, so the occurrence stays unassociated)
//! or `utk`, and give only defined properties with values of their type, at most 50. A second
//! occurrence with the same `uuid` for an event is dropped, as HubSpot keeps the first. Sent
//! occurrences are kept for the control route; HubSpot only answers 204.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::PORTAL_ID;
use crate::errors::{ApiError, category};
use crate::record::iso;
use crate::registry::ObjectType;
use crate::store::Store;

/// Most properties one occurrence may carry (FACTS V2).
const MAX_PROPERTIES: usize = 50;
/// Longest label or internal name (FACTS V2).
const MAX_NAME: usize = 50;
/// Most occurrences one batch send may carry. Not in FACTS.md nor the OpenAPI files; HubSpot's
/// send-event guide gives 500 per batch.
pub(crate) const MAX_BATCH: usize = 500;
/// The property types an event property may have (the contract's description of `type`).
const TYPES: [&str; 4] = ["string", "number", "enumeration", "datetime"];
/// HubSpot's default event properties (strings), added by `includeDefaultProperties`.
const DEFAULT_PROPERTIES: [&str; 12] = [
    "hs_browser",
    "hs_city",
    "hs_country",
    "hs_device_type",
    "hs_language",
    "hs_operating_system",
    "hs_page_title",
    "hs_page_url",
    "hs_referrer",
    "hs_region",
    "hs_utm_campaign",
    "hs_utm_source",
];
/// The object types an event may be about (`primaryObject`).
const PRIMARY_OBJECTS: [(&str, &str); 4] = [
    ("CONTACT", "0-1"),
    ("COMPANY", "0-2"),
    ("DEAL", "0-3"),
    ("TICKET", "0-5"),
];

/// `OptionInput`.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct OptionInput {
    label: String,
    value: String,
}

/// `ExternalBehavioralEventPropertyCreate`.
#[derive(Debug, Deserialize)]
pub(crate) struct PropertyInput {
    #[serde(default)]
    label: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    options: Vec<OptionInput>,
}

/// `ExternalBehavioralEventTypeDefinitionEgg`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DefinitionEgg {
    #[serde(default)]
    label: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    primary_object: Option<String>,
    #[serde(default)]
    include_default_properties: bool,
    #[serde(default)]
    property_definitions: Vec<PropertyInput>,
}

/// `BehavioralEventHttpCompletionRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Occurrence {
    #[serde(default)]
    event_name: String,
    #[serde(default)]
    properties: BTreeMap<String, String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    object_id: Option<String>,
    #[serde(default)]
    utk: Option<String>,
    #[serde(default)]
    occurred_at: Option<String>,
    #[serde(default)]
    uuid: Option<String>,
}

/// `BatchedBehavioralEventHttpCompletionRequest`.
#[derive(Debug, Deserialize)]
pub(crate) struct Batch {
    pub(crate) inputs: Vec<Occurrence>,
}

/// One property of an event.
#[derive(Clone, Debug)]
struct EventProperty {
    name: String,
    label: String,
    kind: String,
    options: Vec<OptionInput>,
    hubspot_defined: bool,
}

impl EventProperty {
    /// `Property` of the definitions contract.
    fn to_json(&self, index: usize) -> Value {
        let field_type = match self.kind.as_str() {
            "number" => "number",
            "enumeration" => "select",
            "datetime" => "date",
            _ => "text",
        };
        let options: Vec<Value> = self
            .options
            .iter()
            .enumerate()
            .map(|(i, o)| json!({"label": o.label, "value": o.value, "displayOrder": i, "hidden": false}))
            .collect();
        json!({
            "name": self.name,
            "label": self.label,
            "type": self.kind,
            "fieldType": field_type,
            "groupName": "event_properties",
            "description": "",
            "options": options,
            "displayOrder": index,
            "hidden": false,
            "hubspotDefined": self.hubspot_defined,
        })
    }

    /// Whether `value` fits the property's type; the reason when it does not.
    fn check(&self, value: &str) -> Result<(), String> {
        let fits = match self.kind.as_str() {
            "number" => value.trim().parse::<f64>().is_ok_and(f64::is_finite),
            "datetime" => {
                value.trim().parse::<i64>().is_ok()
                    || DateTime::parse_from_rfc3339(value.trim()).is_ok()
                    || NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").is_ok()
            }
            "enumeration" => self.options.iter().any(|o| o.value == value),
            _ => true,
        };
        if fits {
            return Ok(());
        }
        let expected = match self.kind.as_str() {
            "enumeration" => format!(
                "one of the options [{}]",
                self.options
                    .iter()
                    .map(|o| o.value.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "datetime" => "an epoch-millisecond or ISO-8601 time".to_owned(),
            kind => format!("a {kind}"),
        };
        Err(format!(
            "{value} is not a valid value of property {}: expected {expected}",
            self.name
        ))
    }
}

/// One event definition.
#[derive(Debug)]
pub(crate) struct Definition {
    id: u64,
    name: String,
    label: String,
    primary_object: &'static str,
    properties: Vec<EventProperty>,
    created_at: DateTime<Utc>,
}

impl Definition {
    /// `pe<portalId>_<name>`, what sends name the event by.
    pub(crate) fn fully_qualified_name(&self) -> String {
        format!("pe{PORTAL_ID}_{}", self.name)
    }

    /// `ExternalBehavioralEventTypeDefinition`; properties only when asked for.
    pub(crate) fn to_json(&self, include_properties: bool) -> Value {
        let properties: Vec<Value> = if include_properties {
            self.properties
                .iter()
                .enumerate()
                .map(|(i, p)| p.to_json(i))
                .collect()
        } else {
            Vec::new()
        };
        json!({
            "id": self.id.to_string(),
            "name": self.name,
            "fullyQualifiedName": self.fully_qualified_name(),
            "labels": {"singular": self.label},
            "objectTypeId": format!("6-{}", self.id),
            "primaryObject": self.primary_object,
            "trackingType": "MANUAL",
            "archived": false,
            "associations": [],
            "properties": properties,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.created_at),
        })
    }

    fn property(&self, name: &str) -> Option<&EventProperty> {
        self.properties.iter().find(|p| p.name == name)
    }
}

/// One occurrence the sandbox accepted.
#[derive(Debug)]
struct Sent {
    event_name: String,
    object_id: Option<u64>,
    email: Option<String>,
    utk: Option<String>,
    occurred_at: DateTime<Utc>,
    uuid: String,
    properties: BTreeMap<String, String>,
}

/// Event definitions and the occurrences sent to them.
#[derive(Debug)]
pub(crate) struct Events {
    definitions: BTreeMap<u64, Definition>,
    by_name: HashMap<String, u64>,
    sent: Vec<Sent>,
    uuids: HashSet<(u64, String)>,
    next_id: u64,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            definitions: BTreeMap::new(),
            by_name: HashMap::new(),
            sent: Vec::new(),
            uuids: HashSet::new(),
            next_id: 1,
        }
    }
}

/// `label` as an internal name: lower case, runs of other characters as one `_`.
fn name_from(label: &str) -> String {
    let mut name = String::new();
    for c in label.trim().chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    name.trim_matches('_').to_owned()
}

/// The name given (or made from the label), or the 400 naming `what`.
fn valid_name(what: &str, label: &str, name: Option<&str>) -> Result<String, ApiError> {
    if label.trim().is_empty() || label.chars().count() > MAX_NAME {
        return Err(ApiError::validation(format!(
            "The {what} label must have 1 to {MAX_NAME} characters, got `{label}`"
        ))
        .context("label", vec![label.to_owned()]));
    }
    let name = name.map_or_else(|| name_from(label), str::to_owned);
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= MAX_NAME;
    if !ok {
        return Err(ApiError::validation(format!(
            "Invalid {what} name `{name}`: a name matches ^[a-z][a-z0-9_]*$ and has at most \
             {MAX_NAME} characters"
        ))
        .context("name", vec![name]));
    }
    Ok(name)
}

fn build_property(input: PropertyInput) -> Result<EventProperty, ApiError> {
    let name = valid_name("property", &input.label, input.name.as_deref())?;
    if name.starts_with("hs_") {
        return Err(ApiError::validation(format!(
            "Property name `{name}` is reserved: names starting with hs_ are HubSpot's"
        ))
        .context("name", vec![name]));
    }
    if !TYPES.contains(&input.kind.as_str()) {
        return Err(ApiError::validation(format!(
            "Property `{name}` has type `{}`: use one of {}",
            input.kind,
            TYPES.join(", ")
        ))
        .context("type", vec![input.kind]));
    }
    if input.kind == "enumeration" && input.options.is_empty() {
        return Err(
            ApiError::validation(format!("Enumeration property `{name}` needs options"))
                .context("options", vec![name]),
        );
    }
    Ok(EventProperty {
        name,
        label: input.label,
        kind: input.kind,
        options: input.options,
        hubspot_defined: false,
    })
}

impl Events {
    /// A fresh portal: no definitions and no events; ids keep increasing.
    pub(crate) fn clear(&mut self) {
        *self = Events {
            next_id: self.next_id,
            ..Events::default()
        };
    }

    /// Every definition, in creation order.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Definition> {
        self.definitions.values()
    }

    /// A definition by internal or fully qualified name.
    pub(crate) fn get(&self, name: &str) -> Option<&Definition> {
        let name = name.to_lowercase();
        let prefix = format!("pe{PORTAL_ID}_");
        let name = name.strip_prefix(&prefix).unwrap_or(&name);
        self.by_name
            .get(name)
            .and_then(|id| self.definitions.get(id))
    }

    /// Creates a definition: 400 for a bad label, name, primary object or property, 409 for
    /// a taken name.
    pub(crate) fn create(
        &mut self,
        egg: DefinitionEgg,
        now: DateTime<Utc>,
    ) -> Result<&Definition, ApiError> {
        let name = valid_name("event", &egg.label, egg.name.as_deref())?;
        if self.by_name.contains_key(&name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                category::CONFLICT,
                format!("An event definition named {name} already exists"),
            )
            .context("name", vec![name]));
        }
        let primary = egg.primary_object.as_deref().unwrap_or("CONTACT");
        let primary_object = PRIMARY_OBJECTS
            .iter()
            .find(|(p, _)| p.eq_ignore_ascii_case(primary))
            .map(|(p, _)| *p)
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "primaryObject must be one of CONTACT, COMPANY, DEAL, TICKET, got {primary}"
                ))
                .context("primaryObject", vec![primary.to_owned()])
            })?;
        let mut properties: Vec<EventProperty> = Vec::new();
        for input in egg.property_definitions {
            let property = build_property(input)?;
            if properties.iter().any(|p| p.name == property.name) {
                return Err(ApiError::validation(format!(
                    "Property `{}` is defined twice",
                    property.name
                )));
            }
            properties.push(property);
        }
        if egg.include_default_properties {
            properties.extend(DEFAULT_PROPERTIES.iter().map(|name| EventProperty {
                name: (*name).to_owned(),
                label: (*name).to_owned(),
                kind: "string".to_owned(),
                options: Vec::new(),
                hubspot_defined: true,
            }));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.by_name.insert(name.clone(), id);
        let definition = Definition {
            id,
            name,
            label: egg.label,
            primary_object,
            properties,
            created_at: now,
        };
        Ok(self.definitions.entry(id).or_insert(definition))
    }

    /// Deletes a definition (404 for an unknown name); what was sent to it stays recorded.
    pub(crate) fn delete(&mut self, name: &str) -> Result<(), ApiError> {
        let definition = self.get(name).ok_or_else(|| unknown(name))?;
        let (id, key) = (definition.id, definition.name.clone());
        self.definitions.remove(&id);
        self.by_name.remove(&key);
        Ok(())
    }

    /// Every occurrence accepted, in the order sent (for the control route).
    pub(crate) fn sent_json(&self) -> Vec<Value> {
        self.sent
            .iter()
            .map(|s| {
                let mut event = json!({
                    "eventName": s.event_name,
                    "occurredAt": iso(s.occurred_at),
                    "uuid": s.uuid,
                    "properties": s.properties,
                });
                if let Some(id) = s.object_id {
                    event["objectId"] = json!(id.to_string());
                }
                if let Some(email) = &s.email {
                    event["email"] = json!(email);
                }
                if let Some(utk) = &s.utk {
                    event["utk"] = json!(utk);
                }
                event
            })
            .collect()
    }

    /// Keeps checked occurrences, dropping repeated uuids of an event.
    fn record(&mut self, checked: Vec<(u64, Sent)>) {
        for (definition, sent) in checked {
            if self.uuids.insert((definition, sent.uuid.clone())) {
                self.sent.push(sent);
            }
        }
    }
}

/// The 404 for an event name no definition has.
pub(crate) fn unknown(name: &str) -> ApiError {
    ApiError::not_found(format!("No event definition named {name} exists"))
}

/// Checks one occurrence against its definition and the records; `index` names it in a batch.
fn check(
    store: &Store,
    occurrence: Occurrence,
    index: Option<usize>,
    now: DateTime<Utc>,
) -> Result<(u64, Sent), ApiError> {
    let at = |message: String| match index {
        Some(i) => format!("inputs[{i}]: {message}"),
        None => message,
    };
    let refuse = |field: &str, message: String| {
        ApiError::validation(at(message)).context(field, vec![field.to_owned()])
    };
    let name = occurrence.event_name.trim();
    let definition = store
        .events
        .get(name)
        .filter(|d| d.fully_qualified_name() == name.to_lowercase())
        .ok_or_else(|| {
            refuse(
                "eventName",
                format!(
                    "Event {name} does not exist: send the fully qualified name \
                     (pe{PORTAL_ID}_<name>) of a defined event"
                ),
            )
        })?;
    if occurrence.email.is_none() && occurrence.object_id.is_none() && occurrence.utk.is_none() {
        return Err(refuse(
            "objectId",
            "An event occurrence needs an `email`, `objectId` or `utk`".to_owned(),
        ));
    }
    let primary = PRIMARY_OBJECTS
        .iter()
        .find(|(p, _)| *p == definition.primary_object)
        .and_then(|(_, type_id)| store.resolve(type_id));
    let object_id = match &occurrence.object_id {
        Some(text) => {
            let found = primary
                .zip(text.trim().parse::<u64>().ok())
                .filter(|(object, id)| store.get(*object, *id).is_some())
                .map(|(_, id)| id);
            Some(found.ok_or_else(|| {
                refuse(
                    "objectId",
                    format!("No {} with id {text} exists", definition.primary_object),
                )
            })?)
        }
        None => occurrence
            .email
            .as_deref()
            .filter(|_| primary == store.resolve("0-1"))
            .and_then(|email| store.find(contacts(store)?, "email", email))
            .map(|r| r.id),
    };
    if occurrence.properties.len() > MAX_PROPERTIES {
        return Err(refuse(
            "properties",
            format!(
                "An occurrence carries at most {MAX_PROPERTIES} properties, got {}",
                occurrence.properties.len()
            ),
        ));
    }
    for (name, value) in &occurrence.properties {
        let property = definition.property(name).ok_or_else(|| {
            refuse(
                "properties",
                format!(
                    "Property {name} is not defined on event {}",
                    definition.name
                ),
            )
        })?;
        property.check(value).map_err(|m| refuse("properties", m))?;
    }
    let occurred_at = match occurrence.occurred_at.as_deref() {
        None => now,
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                refuse(
                    "occurredAt",
                    format!("occurredAt {text} is no ISO-8601 time"),
                )
            })?,
    };
    let sent = Sent {
        event_name: definition.fully_qualified_name(),
        object_id,
        email: occurrence.email,
        utk: occurrence.utk,
        occurred_at,
        uuid: occurrence
            .uuid
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        properties: occurrence.properties,
    };
    Ok((definition.id, sent))
}

/// The contacts object type.
fn contacts(store: &Store) -> Option<ObjectType> {
    store.resolve("0-1")
}

/// `POST /events/v3/send` and `/send/batch`: checks every occurrence (a batch is refused as
/// a whole at its first bad one), then records them.
pub(crate) fn send(
    store: &mut Store,
    occurrences: Vec<Occurrence>,
    batch: bool,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    if batch && occurrences.len() > MAX_BATCH {
        return Err(crate::batch::too_many(occurrences.len(), MAX_BATCH));
    }
    let mut checked = Vec::with_capacity(occurrences.len());
    for (i, occurrence) in occurrences.into_iter().enumerate() {
        checked.push(check(store, occurrence, batch.then_some(i), now)?);
    }
    store.events.record(checked);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_labels_and_are_checked() {
        assert_eq!(name_from("Viewed Pricing Page!"), "viewed_pricing_page");
        assert!(valid_name("event", "Ok", Some("1bad")).is_err());
        assert!(valid_name("event", "", None).is_err());
        assert_eq!(
            valid_name("event", "Signed up", None).ok().as_deref(),
            Some("signed_up")
        );
    }

    #[test]
    fn property_values_are_typed() {
        let property = |kind: &str| EventProperty {
            name: "p".to_owned(),
            label: "P".to_owned(),
            kind: kind.to_owned(),
            options: vec![OptionInput {
                label: "Gold".to_owned(),
                value: "gold".to_owned(),
            }],
            hubspot_defined: false,
        };
        assert!(property("number").check("12.5").is_ok());
        assert!(property("number").check("twelve").is_err());
        assert!(property("datetime").check("2024-05-01T10:00:00Z").is_ok());
        assert!(property("datetime").check("1714557600000").is_ok());
        assert!(property("datetime").check("soon").is_err());
        assert!(property("enumeration").check("gold").is_ok());
        assert!(property("enumeration").check("Gold").is_err());
        assert!(property("string").check("anything").is_ok());
    }
}
