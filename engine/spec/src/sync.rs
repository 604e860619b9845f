//! `syncs/*.yaml`: one sync per file. References to models and destinations are checked by
//! the loader once every file is read.

use engine_diag::Diagnostic;

use crate::check::{Cx, Fields};
use crate::types::{
    AssociationSpec, AssociationWhen, EventSpec, Guards, ListSpec, Located,
    MATCH_RECORDS_EMAIL_PROPERTY, MATCH_RECORDS_ID_PROPERTY, MappingSource, MappingSpec,
    MatchLookup, MatchRecordsSpec, MatchSpec, OnDuplicate, OnInvalidMatch, OnNull, OnRemove,
    SalesforceSyncSpec, SyncMode, SyncSpec,
};
use crate::yaml::{Node, Value};

pub(crate) const SYNC_KEYS: &[&str] = &[
    "name",
    "model",
    "destination",
    "object",
    "mode",
    "match",
    "mapping",
    "on_remove",
    "guards",
    "batch_size",
    "associations",
    "event",
    "list",
    "match_records",
    "bulk_threshold",
];
pub(crate) const MATCH_RECORDS_KEYS: &[&str] = &[
    "id_column",
    "email_column",
    "contact_field",
    "lead_field",
    "on_duplicate",
];
pub(crate) const MATCH_KEYS: &[&str] = &["property", "column", "on_invalid", "lookup", "fallback"];
pub(crate) const MAPPING_KEYS: &[&str] = &["property", "column", "value", "template", "on_null"];
pub(crate) const SOURCE_KEYS: &[&str] = &["column", "value", "template"];
pub(crate) const GUARD_KEYS: &[&str] = &["max_deletes", "max_change_ratio"];
pub(crate) const EVENT_KEYS: &[&str] = &["name", "name_column", "occurred_at"];
pub(crate) const LIST_KEYS: &[&str] = &["name", "id"];
pub(crate) const ASSOCIATION_KEYS: &[&str] = &[
    "name",
    "to",
    "column",
    "by",
    "label",
    "when",
    "remove_stale",
];

/// The largest `batch_size` any destination takes (Salesforce's sObject Collections: 200
/// records a call); HubSpot's batch endpoints take at most [`MAX_HUBSPOT_BATCH_SIZE`], which
/// the project check holds HubSpot syncs to.
pub const MAX_BATCH_SIZE: usize = 200;

/// The largest `batch_size` of a sync to HubSpot (its batch endpoints take 100 records).
pub const MAX_HUBSPOT_BATCH_SIZE: usize = 100;

/// What a sync file yields: names for the cross-file checks, and the sync when it checked out.
pub(crate) struct SyncFile {
    /// `name:` when readable.
    pub name: Option<Located<String>>,
    /// `model:` when readable.
    pub model: Option<Located<String>>,
    /// `destination:` when readable.
    pub destination: Option<Located<String>>,
    /// The sync, when the file had no error.
    pub spec: Option<SyncSpec>,
    /// Its Salesforce-only settings, when it has any and they checked out.
    pub salesforce: Option<SalesforceSyncSpec>,
    /// The keys of Salesforce-only settings written (for the check against the destination's
    /// type).
    pub salesforce_keys: Vec<Located<String>>,
}

/// Checks the root node of a sync file.
pub(crate) fn check(cx: &mut Cx<'_>, node: &Node) -> SyncFile {
    let mut out = SyncFile {
        name: None,
        model: None,
        destination: None,
        spec: None,
        salesforce: None,
        salesforce_keys: Vec::new(),
    };
    let Some(fields) = cx.mapping(node, None, "sync", "the sync", SYNC_KEYS) else {
        return out;
    };
    out.name = cx
        .required(&fields, "name")
        .and_then(|n| cx.name(n, "name", "sync"));
    out.model = cx
        .required(&fields, "model")
        .and_then(|n| cx.non_empty_string(n, "model"));
    out.destination = cx
        .required(&fields, "destination")
        .and_then(|n| cx.non_empty_string(n, "destination"));
    let object = cx
        .required(&fields, "object")
        .and_then(|n| cx.non_empty_string(n, "object"));
    let sends_events = object.as_ref().is_some_and(|o| o.value == "events");
    let keeps_list = object.as_ref().is_some_and(|o| o.value == "lists");
    let mode = match fields.get("mode") {
        None if sends_events || keeps_list => Some(SyncMode::Insert),
        None => Some(SyncMode::Upsert),
        Some(mode) => match cx.choice(mode, "mode", &["upsert", "insert", "update"], &[]) {
            Some("insert") => Some(SyncMode::Insert),
            Some("update") => Some(SyncMode::Update),
            Some(_) => Some(SyncMode::Upsert),
            None => None,
        },
    };
    let match_on = cx
        .required(&fields, "match")
        .and_then(|n| match_spec(cx, n, fields.key("match")));
    let mapping = match fields.get("mapping") {
        None => Some(Vec::new()),
        Some(node) => mapping(cx, node, fields.key("mapping"), match_on.as_ref()),
    };
    let match_on = match (match_on, &mapping) {
        (Some(match_on), Some(mapping)) => fallbacks_mapped(cx, match_on, mapping),
        (match_on, _) => match_on,
    };
    for key in ["match_records", "bulk_threshold"] {
        if let Some(k) = fields.key(key) {
            out.salesforce_keys.push(Located {
                value: key.to_string(),
                span: k.span.clone(),
            });
        }
    }
    let match_records = match fields.get("match_records") {
        None => Some(None),
        Some(node) => {
            match_records(cx, node, fields.key("match_records"), mapping.as_ref()).map(Some)
        }
    };
    let bulk_threshold = match fields.get("bulk_threshold") {
        None => Some(None),
        Some(node) => cx
            .integer_in(node, "bulk_threshold", 1, Some(100_000_000))
            .and_then(|n| usize::try_from(n).ok())
            .map(|n| {
                Some(Located {
                    value: n,
                    span: node.span.clone(),
                })
            }),
    };
    // The cascade's columns travel with each row under names no Salesforce field has, so the
    // connector can match the rows it sends (and a changed email is a changed row).
    let mapping = match (mapping, &match_records) {
        (Some(mut mapping), Some(Some(records))) => {
            for (column, property) in [
                (&records.id_column, MATCH_RECORDS_ID_PROPERTY),
                (&records.email_column, MATCH_RECORDS_EMAIL_PROPERTY),
            ] {
                if let Some(column) = column {
                    mapping.push(MappingSpec {
                        property: Located {
                            value: property.to_string(),
                            span: column.span.clone(),
                        },
                        source: MappingSource::Column(column.clone()),
                        on_null: OnNull::Clear,
                    });
                }
            }
            Some(mapping)
        }
        (mapping, _) => mapping,
    };
    let on_remove = match fields.get("on_remove") {
        // A contact whose row leaves a list sync's model leaves the list.
        None if keeps_list => Some(OnRemove::Delete),
        None => Some(OnRemove::Nothing),
        Some(node) => match cx.choice(
            node,
            "on_remove",
            &["nothing", "clear_fields", "delete"],
            &[],
        ) {
            Some("nothing") => Some(OnRemove::Nothing),
            Some("delete") if mode == Some(SyncMode::Update) => {
                cx.push(
                    Diagnostic::error(
                        "spec::delete_in_update_mode",
                        "`on_remove: delete` cannot go with `mode: update`",
                    )
                    .at(node.span.clone())
                    .note(
                        "a sync in update mode writes to records it did not create, so deleting \
                         them when a row leaves the model would delete records that belong to \
                         others",
                    )
                    .hint("use `on_remove: clear_fields` or `nothing`, or `mode: upsert`"),
                );
                None
            }
            Some("delete") => Some(OnRemove::Delete),
            Some(_) => Some(OnRemove::ClearFields),
            None => None,
        },
    };
    let guards = match fields.get("guards") {
        None => Some(Guards::default()),
        Some(node) => guards(cx, node, &fields),
    };
    let batch_size = match fields.get("batch_size") {
        None => Some(None),
        Some(node) => {
            // The range keeps the value small, so the conversion cannot fail.
            cx.integer_in(node, "batch_size", 1, Some(MAX_BATCH_SIZE as i128))
                .and_then(|n| usize::try_from(n).ok())
                .map(|value| {
                    Some(Located {
                        value,
                        span: node.span.clone(),
                    })
                })
        }
    };
    let associations = match fields.get("associations") {
        None => Some(Vec::new()),
        Some(node) => associations(cx, node, fields.key("associations")),
    };
    let event = event_sync(cx, &fields, object.as_ref(), mode, on_remove);
    let list = list_sync(
        cx,
        &fields,
        object.as_ref(),
        out.model.as_ref(),
        mode,
        on_remove,
        mapping.as_ref(),
    );
    if let (
        Some(name),
        Some(model),
        Some(destination),
        Some(object),
        Some(mode),
        Some(match_on),
        Some(mapping),
        Some(on_remove),
        Some(guards),
        Some(batch_size),
        Some(associations),
        Some(event),
        Some(list),
    ) = (
        out.name.clone(),
        out.model.clone(),
        out.destination.clone(),
        object,
        mode,
        match_on,
        mapping,
        on_remove,
        guards,
        batch_size,
        associations,
        event,
        list,
    ) {
        if let (Some(match_records), Some(bulk_threshold)) = (match_records, bulk_threshold)
            && (match_records.is_some() || bulk_threshold.is_some())
        {
            out.salesforce = Some(SalesforceSyncSpec {
                sync: name.value.clone(),
                match_records,
                bulk_threshold,
            });
        }
        out.spec = Some(SyncSpec {
            name,
            file: cx.file.to_path_buf(),
            model,
            destination,
            object,
            mode,
            match_on,
            mapping,
            on_remove,
            guards,
            batch_size,
            associations,
            event,
            list,
        });
    }
    out
}

/// `match_records:` (Salesforce): the cascade's columns, the lookup fields it fills, and what
/// several records with one email do. A lookup field the cascade fills cannot also be mapped.
fn match_records(
    cx: &mut Cx<'_>,
    node: &Node,
    key: Option<&Node>,
    mapping: Option<&Vec<MappingSpec>>,
) -> Option<MatchRecordsSpec> {
    let fields = cx.mapping(
        node,
        key,
        "match_records",
        "`match_records`",
        MATCH_RECORDS_KEYS,
    )?;
    let id_column = fields
        .get("id_column")
        .map(|n| cx.non_empty_string(n, "id_column"));
    let email_column = fields
        .get("email_column")
        .map(|n| cx.non_empty_string(n, "email_column"));
    let contact_field = cx
        .required(&fields, "contact_field")
        .and_then(|n| cx.non_empty_string(n, "contact_field"));
    let lead_field = fields
        .get("lead_field")
        .map(|n| cx.non_empty_string(n, "lead_field"));
    let on_duplicate = match fields.get("on_duplicate") {
        None => Some(OnDuplicate::Fail),
        Some(n) => match cx.choice(n, "on_duplicate", &["fail", "most_recent"], &[]) {
            Some("most_recent") => Some(OnDuplicate::MostRecent),
            Some(_) => Some(OnDuplicate::Fail),
            None => None,
        },
    };
    let mut ok = true;
    if id_column.is_none() && email_column.is_none() {
        cx.push(
            Diagnostic::error(
                "spec::match_records_columns",
                "`match_records` needs an `id_column`, an `email_column`, or both",
            )
            .at(key.unwrap_or(node).span.clone())
            .hint("add `email_column: <column>` (records are found by email) and, when rows hold Contact ids, `id_column: <column>`"),
        );
        ok = false;
    }
    if let (Some(contact), Some(Some(lead))) = (&contact_field, &lead_field)
        && contact.value == lead.value
    {
        cx.push(
            Diagnostic::error(
                "spec::match_records_fields",
                format!("`contact_field` and `lead_field` are both `{}`", lead.value),
            )
            .at(lead.span.clone())
            .hint(
                "a Contact and a Lead go in two lookup fields, such as `Contact__c` and `Lead__c`",
            ),
        );
        ok = false;
    }
    let contact_field = contact_field?;
    let lead_field = match lead_field {
        None => None,
        Some(None) => return None,
        Some(Some(f)) => Some(f),
    };
    for field in std::iter::once(&contact_field).chain(lead_field.as_ref()) {
        if let Some(entry) =
            mapping.and_then(|m| m.iter().find(|e| e.property.value == field.value))
        {
            cx.push(
                Diagnostic::error(
                    "spec::match_records_field_mapped",
                    format!(
                        "`{}` is filled by `match_records` and cannot also be mapped",
                        field.value
                    ),
                )
                .at(entry.property.span.clone())
                .note(format!("`match_records` sets it at {}", field.span))
                .hint("remove this mapping"),
            );
            ok = false;
        }
    }
    let id_column = match id_column {
        None => None,
        Some(None) => return None,
        Some(Some(c)) => Some(c),
    };
    let email_column = match email_column {
        None => None,
        Some(None) => return None,
        Some(Some(c)) => Some(c),
    };
    let on_duplicate = on_duplicate?;
    ok.then(|| MatchRecordsSpec {
        id_column,
        email_column,
        contact_field,
        lead_field,
        on_duplicate,
        span: key.unwrap_or(node).span.clone(),
    })
}

fn match_spec(cx: &mut Cx<'_>, node: &Node, key: Option<&Node>) -> Option<MatchSpec> {
    let fields = cx.mapping(node, key, "match", "`match`", MATCH_KEYS)?;
    let property = cx
        .required(&fields, "property")
        .and_then(|n| cx.non_empty_string(n, "property"));
    let column = cx
        .required(&fields, "column")
        .and_then(|n| cx.non_empty_string(n, "column"));
    let on_invalid = match fields.get("on_invalid") {
        None => Some(OnInvalidMatch::Fail),
        Some(node) => match cx.choice(node, "on_invalid", &["fail", "skip"], &[]) {
            Some("skip") => Some(OnInvalidMatch::Skip),
            Some(_) => Some(OnInvalidMatch::Fail),
            None => None,
        },
    };
    let property = property?;
    let fallback = match fields.get("fallback") {
        None => Some(Vec::new()),
        Some(node) => fallback_list(cx, node, fields.key("fallback"), &property),
    };
    let has_fallback = fallback.as_ref().is_some_and(|f| !f.is_empty());
    let lookup = match fields.get("lookup") {
        None if has_fallback => Some(MatchLookup::Search),
        None => Some(MatchLookup::Unique),
        Some(node) => match cx.choice(node, "lookup", &["unique", "search"], &[]) {
            Some("search") => Some(MatchLookup::Search),
            Some(_) if has_fallback => {
                cx.push(
                    Diagnostic::error(
                        "spec::fallback_needs_search",
                        "`match.fallback` cannot go with `lookup: unique`",
                    )
                    .at(node.span.clone())
                    .note(
                        "a fallback property is tried only when the first finds no record, so \
                         records are looked up before they are written; a unique match writes \
                         without looking",
                    )
                    .hint("remove `lookup: unique` (a fallback looks records up by search)"),
                );
                // Reported; the rest of `match` is still checked.
                Some(MatchLookup::Search)
            }
            Some(_) => Some(MatchLookup::Unique),
            None => None,
        },
    };
    Some(MatchSpec {
        property,
        column: column?,
        on_invalid: on_invalid?,
        lookup: lookup?,
        fallback: fallback?,
    })
}

/// `match.fallback:` a list of property names, each once and none the match property. The
/// names that check out are returned even when others did not, so that their mappings are
/// checked too.
fn fallback_list(
    cx: &mut Cx<'_>,
    node: &Node,
    key: Option<&Node>,
    match_property: &Located<String>,
) -> Option<Vec<Located<String>>> {
    let Value::Seq(items) = &node.value else {
        cx.wrong_type_in(node, key, "fallback", "a list of property names");
        return None;
    };
    let mut out: Vec<Located<String>> = Vec::new();
    for item in items {
        let Some(name) = cx.non_empty_string(item, "fallback") else {
            continue;
        };
        if name.value == match_property.value {
            cx.push(
                Diagnostic::error(
                    "spec::fallback_is_match_property",
                    format!(
                        "`{}` is the match property and cannot also be its fallback",
                        name.value
                    ),
                )
                .at(name.span.clone())
                .hint("list only other properties under `fallback`"),
            );
        } else if let Some(first) = out.iter().find(|p| p.value == name.value) {
            cx.push(
                Diagnostic::error(
                    "spec::duplicate_fallback",
                    format!("property `{}` is listed twice under `fallback`", name.value),
                )
                .at(name.span.clone())
                .note(format!("first listed at {}", first.span))
                .hint("remove one of the two"),
            );
        } else {
            out.push(name);
        }
    }
    Some(out)
}

/// Each fallback property must be mapped: its mapped value is what the look-up searches for,
/// so the record found is the one the row's values describe.
fn fallbacks_mapped(
    cx: &mut Cx<'_>,
    match_on: MatchSpec,
    mapping: &[MappingSpec],
) -> Option<MatchSpec> {
    let mut ok = true;
    for fallback in &match_on.fallback {
        if !mapping.iter().any(|m| m.property.value == fallback.value) {
            cx.push(
                Diagnostic::error(
                    "spec::unmapped_fallback",
                    format!("fallback property `{}` is not mapped", fallback.value),
                )
                .at(fallback.span.clone())
                .note(
                    "a row is looked up by the value it writes to the fallback property, so \
                     the property needs a mapping",
                )
                .hint(format!(
                    "add `- property: {}` with a `column:` or `template:` under `mapping`",
                    fallback.value
                )),
            );
            ok = false;
        }
    }
    ok.then_some(match_on)
}

fn mapping(
    cx: &mut Cx<'_>,
    node: &Node,
    key: Option<&Node>,
    match_on: Option<&MatchSpec>,
) -> Option<Vec<MappingSpec>> {
    let Value::Seq(items) = &node.value else {
        cx.wrong_type_in(node, key, "mapping", "a list of `- property: …` entries");
        return None;
    };
    let mut out: Vec<MappingSpec> = Vec::new();
    let mut seen: Vec<Located<String>> = Vec::new();
    let mut ok = true;
    for item in items {
        let (property, entry) = mapping_entry(cx, item);
        ok &= entry.is_some();
        let Some(property) = property else { continue };
        if let Some(first) = seen.iter().find(|p| p.value == property.value) {
            cx.push(
                Diagnostic::error(
                    "spec::duplicate_property",
                    format!("property `{}` is mapped twice", property.value),
                )
                .at(property.span.clone())
                .note(format!("first mapped at {}", first.span))
                .hint("remove one of the two mappings"),
            );
            ok = false;
            continue;
        }
        seen.push(property.clone());
        if let Some(match_on) = match_on
            && match_on.property.value == property.value
        {
            cx.push(
                Diagnostic::error(
                    "spec::mapped_match_property",
                    format!(
                        "property `{}` is the match property and cannot be mapped",
                        property.value
                    ),
                )
                .at(property.span.clone())
                .note(format!(
                    "`{}` is set from `match.column` (`{}`) automatically",
                    match_on.property.value, match_on.column.value
                ))
                .hint("remove this mapping"),
            );
            ok = false;
            continue;
        }
        out.extend(entry);
    }
    ok.then_some(out)
}

/// One `- property: …` entry: its property (for the duplicate checks, even when the entry has
/// other errors) and the entry when it checked out.
fn mapping_entry(cx: &mut Cx<'_>, node: &Node) -> (Option<Located<String>>, Option<MappingSpec>) {
    let Some(fields) = cx.mapping(node, None, "mapping", "a `mapping` entry", MAPPING_KEYS) else {
        return (None, None);
    };
    let property = cx
        .required(&fields, "property")
        .and_then(|n| cx.non_empty_string(n, "property"));
    let sources: Vec<(&str, &Node)> = SOURCE_KEYS
        .iter()
        .filter_map(|k| fields.get_raw(k).map(|n| (*k, n)))
        .collect();
    let about = property
        .as_ref()
        .map_or_else(String::new, |p| format!(" for `{}`", p.value));
    let source = match sources.as_slice() {
        [] => {
            let span = property
                .as_ref()
                .map_or_else(|| node.span.clone(), |p| p.span.clone());
            cx.push(
                Diagnostic::error(
                    "spec::mapping_source",
                    format!("the mapping{about} has no source"),
                )
                .at(span)
                .hint("add one of `column:`, `value:` or `template:`"),
            );
            None
        }
        [(key, value)] => source(cx, key, value),
        [_, (second, _), ..] => {
            let names: Vec<String> = sources.iter().map(|(k, _)| format!("`{k}`")).collect();
            let span = fields
                .key(second)
                .map_or_else(|| node.span.clone(), |k| k.span.clone());
            cx.push(
                Diagnostic::error(
                    "spec::mapping_source",
                    format!(
                        "the mapping{about} has more than one source: {}",
                        names.join(", ")
                    ),
                )
                .at(span)
                .hint("keep exactly one of `column:`, `value:` or `template:`"),
            );
            None
        }
    };
    let on_null = match fields.get("on_null") {
        None => Some(OnNull::Keep),
        Some(node) => {
            let on_null = match cx.choice(node, "on_null", &["keep", "clear"], &[]) {
                Some("keep") => Some(OnNull::Keep),
                Some(_) => Some(OnNull::Clear),
                None => None,
            };
            if matches!(source, Some(MappingSource::Value(_)))
                && let Some(key) = fields.key("on_null")
            {
                cx.push(
                    Diagnostic::warning(
                        "spec::ignored_option",
                        "`on_null` has no effect on a static `value`, which is never null",
                    )
                    .at(key.span.clone())
                    .hint("remove `on_null`"),
                );
            }
            on_null
        }
    };
    let entry = match (property.clone(), source, on_null) {
        (Some(property), Some(source), Some(on_null)) => Some(MappingSpec {
            property,
            source,
            on_null,
        }),
        _ => None,
    };
    (property, entry)
}

fn source(cx: &mut Cx<'_>, key: &str, node: &Node) -> Option<MappingSource> {
    match key {
        "column" => cx
            .non_empty_string(node, "column")
            .map(MappingSource::Column),
        "template" => cx
            .non_empty_string(node, "template")
            .map(MappingSource::Template),
        _ => match (&node.value, node.scalar_text(cx.source)) {
            (Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_), Some(text)) => {
                Some(MappingSource::Value(Located {
                    value: text,
                    span: node.span.clone(),
                }))
            }
            _ => {
                cx.wrong_type(node, "value", "a string, number or boolean");
                None
            }
        },
    }
}

/// `event:` with `object: events` (and only there): the event's name, static or per row,
/// and when it happened. An event sync only adds (`mode: insert`, `on_remove: nothing`), so
/// other modes are refused with why. `Some(None)` for a sync that writes records.
fn event_sync(
    cx: &mut Cx<'_>,
    fields: &Fields<'_>,
    object: Option<&Located<String>>,
    mode: Option<SyncMode>,
    on_remove: Option<OnRemove>,
) -> Option<Option<EventSpec>> {
    let is_events = object.is_some_and(|o| o.value == "events");
    let node = fields.get("event");
    let (node, object) = match (node, object) {
        (None, Some(object)) if is_events => {
            cx.push(
                Diagnostic::error("spec::missing_event", "`object: events` needs an `event:`")
                    .at(object.span.clone())
                    .hint("add `event: { name: <event name> }` (the event's internal name)"),
            );
            return None;
        }
        (None, _) => return Some(None),
        (Some(node), _) if !is_events => {
            misplaced_block(cx, fields, node, "event", "events");
            return None;
        }
        (Some(node), Some(object)) => (node, object),
        (Some(_), None) => return None,
    };
    let event = cx.mapping(node, fields.key("event"), "event", "`event`", EVENT_KEYS)?;
    let name = event
        .get("name")
        .and_then(|n| cx.non_empty_string(n, "name"));
    let name_column = event
        .get("name_column")
        .and_then(|n| cx.non_empty_string(n, "name_column"));
    let occurred_at = event
        .get("occurred_at")
        .and_then(|n| cx.non_empty_string(n, "occurred_at"));
    let mut ok = true;
    if name.is_some() == name_column.is_some() {
        cx.push(
            Diagnostic::error(
                "spec::event_name",
                "an event sync needs exactly one of `event.name` and `event.name_column`",
            )
            .at(node.span.clone())
            .hint("write `name: <event name>`, or `name_column: <column>` when rows name it"),
        );
        ok = false;
    }
    if matches!(mode, Some(SyncMode::Upsert | SyncMode::Update)) && fields.get("mode").is_some() {
        refuse_at(
            cx,
            fields,
            "mode",
            object,
            Diagnostic::error(
                "spec::event_mode",
                "an event sync can only add: events cannot be updated",
            )
            .note("each row added to the model sends one event, once; changed rows send nothing")
            .hint("remove `mode:` (event syncs are `mode: insert`)"),
        );
        ok = false;
    }
    if matches!(on_remove, Some(OnRemove::ClearFields | OnRemove::Delete)) {
        refuse_at(
            cx,
            fields,
            "on_remove",
            object,
            Diagnostic::error(
                "spec::event_on_remove",
                "an event sync cannot undo events when rows leave the model",
            )
            .hint("remove `on_remove:` (event syncs leave sent events as they are)"),
        );
        ok = false;
    }
    ok.then_some(Some(EventSpec {
        name,
        name_column,
        occurred_at,
    }))
}

/// `list:` with `object: lists`: the list by name (default: the model's name) or id. A list
/// sync only adds and removes members: `mode: insert`, `on_remove: delete` (leave the list) or
/// `nothing`, and no `mapping` (a list writes no property). `Some(None)` for other syncs.
#[allow(
    clippy::too_many_arguments,
    reason = "one check over the parts of a sync file"
)]
fn list_sync(
    cx: &mut Cx<'_>,
    fields: &Fields<'_>,
    object: Option<&Located<String>>,
    model: Option<&Located<String>>,
    mode: Option<SyncMode>,
    on_remove: Option<OnRemove>,
    mapping: Option<&Vec<MappingSpec>>,
) -> Option<Option<ListSpec>> {
    let keeps_list = object.is_some_and(|o| o.value == "lists");
    let node = fields.get("list");
    if !keeps_list {
        if let Some(node) = node {
            misplaced_block(cx, fields, node, "list", "lists");
            return None;
        }
        return Some(None);
    }
    let object = object?;
    let mut ok = true;
    let (name, id) = match node {
        None => (None, None),
        Some(node) => {
            let list = cx.mapping(node, fields.key("list"), "list", "`list`", LIST_KEYS)?;
            let name = list
                .get("name")
                .and_then(|n| cx.non_empty_string(n, "name"));
            let id = list.get("id").and_then(|n| match n.scalar_text(cx.source) {
                Some(text) if !text.trim().is_empty() => Some(Located {
                    value: text,
                    span: n.span.clone(),
                }),
                _ => {
                    cx.wrong_type(n, "id", "a list id");
                    None
                }
            });
            (name, id)
        }
    };
    let name = name.or_else(|| model.cloned())?;
    if matches!(mode, Some(SyncMode::Upsert | SyncMode::Update)) && fields.get("mode").is_some() {
        refuse_at(
            cx,
            fields,
            "mode",
            object,
            Diagnostic::error(
                "spec::list_mode",
                "a list sync only adds and removes members",
            )
            .hint("remove `mode:` (list syncs are `mode: insert`)"),
        );
        ok = false;
    }
    if on_remove == Some(OnRemove::ClearFields) {
        refuse_at(
            cx,
            fields,
            "on_remove",
            object,
            Diagnostic::error(
                "spec::list_on_remove",
                "`on_remove: clear_fields` has no meaning for a list: a list has no fields",
            )
            .hint(
                "use `on_remove: delete` (the contact leaves the list, the default) or `nothing`",
            ),
        );
        ok = false;
    }
    if let Some(first) = mapping.and_then(|m| m.first()) {
        cx.push(
            Diagnostic::error(
                "spec::list_mapping",
                "a list sync writes no property, so it has no `mapping`",
            )
            .at(first.property.span.clone())
            .hint("write the contacts' properties with a contacts sync, and keep this one for the list"),
        );
        ok = false;
    }
    ok.then_some(Some(ListSpec { name, id }))
}

/// `KEY:` written in a sync whose `object:` is not `OBJECT` (`event:` without
/// `object: events`): `spec::KEY_without_OBJECT_object`, at the key.
fn misplaced_block(cx: &mut Cx<'_>, fields: &Fields<'_>, node: &Node, key: &str, object: &str) {
    let at = fields.key(key).unwrap_or(node);
    cx.push(
        Diagnostic::error(
            format!("spec::{key}_without_{object}_object"),
            format!("`{key}:` is only for a sync with `object: {object}`"),
        )
        .at(at.span.clone())
        .hint(format!("set `object: {object}`, or remove `{key}:`")),
    );
}

/// A `KEY:` value a sync of this kind cannot take: `diagnostic`, at the value (or at
/// `object:` when the value is the kind's default).
fn refuse_at(
    cx: &mut Cx<'_>,
    fields: &Fields<'_>,
    key: &str,
    object: &Located<String>,
    diagnostic: Diagnostic,
) {
    let at = fields
        .get(key)
        .map_or(object.span.clone(), |n| n.span.clone());
    cx.push(diagnostic.at(at));
}

/// `associations:` a list of links, each with a name no other has.
fn associations(cx: &mut Cx<'_>, node: &Node, key: Option<&Node>) -> Option<Vec<AssociationSpec>> {
    let Value::Seq(items) = &node.value else {
        cx.wrong_type_in(node, key, "associations", "a list of `- to: …` entries");
        return None;
    };
    let mut out: Vec<AssociationSpec> = Vec::new();
    let mut ok = true;
    for item in items {
        let Some(association) = association(cx, item) else {
            ok = false;
            continue;
        };
        if let Some(first) = out.iter().find(|a| a.name.value == association.name.value) {
            cx.push(
                Diagnostic::error(
                    "spec::duplicate_association",
                    format!("two associations are named `{}`", association.name.value),
                )
                .at(association.name.span.clone())
                .note(format!("the first is at {}", first.name.span))
                .hint("give each association to one object its own `name:`"),
            );
            ok = false;
            continue;
        }
        out.push(association);
    }
    ok.then_some(out)
}

fn association(cx: &mut Cx<'_>, node: &Node) -> Option<AssociationSpec> {
    let fields = cx.mapping(
        node,
        None,
        "associations",
        "an `associations` entry",
        ASSOCIATION_KEYS,
    )?;
    let to = cx
        .required(&fields, "to")
        .and_then(|n| cx.non_empty_string(n, "to"));
    let column = cx
        .required(&fields, "column")
        .and_then(|n| cx.non_empty_string(n, "column"));
    let name = match fields.get("name") {
        Some(n) => cx.name(n, "name", "association"),
        None => to.clone(),
    };
    let by = match fields.get("by") {
        None => Some(None),
        Some(n) => cx
            .non_empty_string(n, "by")
            .map(|by| (by.value != "id").then_some(by)),
    };
    let label = match fields.get("label") {
        None => Some(None),
        Some(n) => match n.scalar_text(cx.source) {
            Some(text) if !text.trim().is_empty() => Some(Some(Located {
                value: text,
                span: n.span.clone(),
            })),
            _ => {
                cx.wrong_type(n, "label", "a label's name or an association type id");
                None
            }
        },
    };
    let when = match fields.get("when") {
        None => Some(AssociationWhen::Always),
        Some(n) => match cx.choice(n, "when", &["always", "created"], &[]) {
            Some("created") => Some(AssociationWhen::Created),
            Some(_) => Some(AssociationWhen::Always),
            None => None,
        },
    };
    let remove_stale = match fields.get("remove_stale") {
        None => Some(false),
        Some(n) => cx.boolean(n, "remove_stale"),
    };
    if remove_stale == Some(true) && when == Some(AssociationWhen::Created) {
        if let Some(key) = fields.key("remove_stale") {
            cx.push(
                Diagnostic::error(
                    "spec::association_remove_when_created",
                    "`remove_stale: true` cannot go with `when: created`",
                )
                .at(key.span.clone())
                .note(
                    "links made only when a record is created are never revisited, so there is \
                     nothing to compare later runs with",
                )
                .hint("remove one of the two"),
            );
        }
        return None;
    }
    Some(AssociationSpec {
        name: name?,
        to: to?,
        column: column?,
        by: by?,
        label: label?,
        when: when?,
        remove_stale: remove_stale?,
    })
}

fn guards(cx: &mut Cx<'_>, node: &Node, parent: &Fields<'_>) -> Option<Guards> {
    let fields = cx.mapping(node, parent.key("guards"), "guards", "`guards`", GUARD_KEYS)?;
    let max_deletes = match fields.get("max_deletes") {
        None => Some(None),
        Some(n) => cx
            .integer_in(n, "max_deletes", 0, None)
            .map(|v| Some(u64::try_from(v).unwrap_or(u64::MAX))),
    };
    let max_change_ratio = match fields.get("max_change_ratio") {
        None => Some(None),
        Some(n) => {
            match cx.number(n, "max_change_ratio") {
                Some(ratio) if ratio > 0.0 && ratio <= 1.0 => Some(Some(ratio)),
                Some(ratio) => {
                    cx.push(
                    Diagnostic::error(
                        "spec::out_of_range",
                        format!("`max_change_ratio` must be greater than 0 and at most 1, found {ratio}"),
                    )
                    .at(n.span.clone())
                    .hint("write a fraction such as `0.5` (half of the synced rows)"),
                );
                    None
                }
                None => None,
            }
        }
    };
    Some(Guards {
        max_deletes: max_deletes?,
        max_change_ratio: max_change_ratio?,
    })
}
