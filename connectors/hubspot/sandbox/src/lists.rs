//! Lists and their memberships (crm-lists-v3.json, FACTS B6, L1, L2).
//!
//! A list holds records of one object type. `MANUAL` and `SNAPSHOT` lists take membership
//! changes through the API; `DYNAMIC` lists are kept by their filters, so HubSpot refuses
//! membership changes to them (400), and the sandbox, which evaluates no filters, keeps them
//! empty. Names are unique in the portal, ignoring case. Memberships are indexed both ways:
//! list → record ids (in id order, with the time each joined) for reads and paging, and
//! record → lists so that archiving a record leaves its lists in time proportional to how
//! many it is in. List ids keep increasing across resets, like record ids.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::errors::{ApiError, category};
use crate::record::iso;
use crate::registry::ObjectType;

/// Most record ids one membership request may carry. HubSpot documents no figure for this;
/// 100,000 is the size its other membership routes stop at (FACTS B6).
pub(crate) const MAX_MEMBERSHIP_IDS: usize = 100_000;
/// Most lists one search returns (`count`, crm-lists-v3.json `ListSearchRequest`).
pub(crate) const MAX_SEARCH_COUNT: usize = 500;
const DEFAULT_SEARCH_COUNT: usize = 20;

/// The processing types a list may have.
const PROCESSING_TYPES: [&str; 3] = ["MANUAL", "SNAPSHOT", "DYNAMIC"];

/// `ListCreateRequest` (the fields the sandbox uses; folders and permissions are ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListEgg {
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) object_type_id: String,
    #[serde(default)]
    processing_type: String,
    #[serde(default)]
    filter_branch: Option<Value>,
}

/// `ListSearchRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchBody {
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    count: Option<i64>,
    #[serde(default)]
    processing_types: Vec<String>,
    #[serde(default)]
    list_ids: Vec<String>,
    #[serde(default)]
    object_type_id: Option<String>,
}

/// One list.
#[derive(Debug)]
pub(crate) struct List {
    pub(crate) id: u64,
    name: String,
    pub(crate) object: ObjectType,
    object_type_id: String,
    processing_type: String,
    filter_branch: Option<Value>,
    /// Record id → when it joined.
    members: BTreeMap<u64, DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_added: Option<DateTime<Utc>>,
    last_removed: Option<DateTime<Utc>>,
}

impl List {
    /// `PublicObjectList`; the filters only when asked for.
    pub(crate) fn to_json(&self, include_filters: bool) -> Value {
        let mut list = json!({
            "listId": self.id.to_string(),
            "listVersion": 1,
            "name": self.name,
            "objectTypeId": self.object_type_id,
            "processingStatus": "COMPLETE",
            "processingType": self.processing_type,
            "size": self.members.len(),
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "filtersUpdatedAt": iso(self.created_at),
        });
        if let Some(filters) = self.filter_branch.as_ref().filter(|_| include_filters) {
            list["filterBranch"] = filters.clone();
        }
        list
    }

    /// `PublicObjectListSearchResult`, with the list properties HubSpot fetches by default
    /// (those that have a value).
    fn search_json(&self) -> Value {
        let mut properties = Map::new();
        properties.insert("hs_list_size".into(), json!(self.members.len().to_string()));
        properties.insert("hs_list_reference_count".into(), json!("0"));
        for (key, at) in [
            ("hs_last_record_added_at", self.last_added),
            ("hs_last_record_removed_at", self.last_removed),
        ] {
            if let Some(at) = at {
                properties.insert(key.into(), json!(at.timestamp_millis().to_string()));
            }
        }
        json!({
            "listId": self.id.to_string(),
            "listVersion": 1,
            "name": self.name,
            "objectTypeId": self.object_type_id,
            "processingStatus": "COMPLETE",
            "processingType": self.processing_type,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "filtersUpdatedAt": iso(self.created_at),
            "additionalProperties": properties,
        })
    }

    /// The member ids and join times, for the control route.
    pub(crate) fn members(&self) -> impl Iterator<Item = (u64, DateTime<Utc>)> + '_ {
        self.members.iter().map(|(id, at)| (*id, *at))
    }

    /// How many records the list holds.
    pub(crate) fn size(&self) -> usize {
        self.members.len()
    }
}

/// What a membership change did (`MembershipsUpdateResponse`).
#[derive(Debug, Default)]
pub(crate) struct Change {
    added: Vec<String>,
    removed: Vec<String>,
    missing: Vec<String>,
}

impl Change {
    /// The wire form, with HubSpot's spelling `recordsIdsAdded` (FACTS L1).
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "recordsIdsAdded": self.added,
            "recordIdsRemoved": self.removed,
            "recordIdsMissing": self.missing,
        })
    }
}

/// A page of memberships: `(record id, joined)` and the cursor past it, if more remain.
pub(crate) struct Page {
    pub(crate) members: Vec<(u64, DateTime<Utc>)>,
    pub(crate) next: Option<u64>,
}

/// The portal's lists.
#[derive(Debug)]
pub(crate) struct Lists {
    lists: BTreeMap<u64, List>,
    /// Lower-cased name → list id.
    by_name: HashMap<String, u64>,
    /// Record → the lists it is in.
    member_of: HashMap<(ObjectType, u64), BTreeSet<u64>>,
    next_id: u64,
}

impl Default for Lists {
    fn default() -> Self {
        Lists {
            lists: BTreeMap::new(),
            by_name: HashMap::new(),
            member_of: HashMap::new(),
            next_id: 1,
        }
    }
}

/// The 404 for a list id that names no list.
pub(crate) fn no_such_list(id: &str) -> ApiError {
    ApiError::not_found(format!("List {id} does not exist"))
}

impl Lists {
    /// A fresh portal: no lists; list ids keep increasing.
    pub(crate) fn clear(&mut self) {
        *self = Lists {
            next_id: self.next_id,
            ..Lists::default()
        };
    }

    /// Every list, in id order.
    pub(crate) fn all(&self) -> impl Iterator<Item = &List> {
        self.lists.values()
    }

    /// A list by its id (a path segment).
    pub(crate) fn get(&self, id: &str) -> Result<&List, ApiError> {
        id.trim()
            .parse::<u64>()
            .ok()
            .and_then(|n| self.lists.get(&n))
            .ok_or_else(|| no_such_list(id))
    }

    /// A list of an object type by name (ignoring case).
    pub(crate) fn named(&self, object: ObjectType, name: &str) -> Result<&List, ApiError> {
        self.by_name
            .get(&name.to_lowercase())
            .and_then(|id| self.lists.get(id))
            .filter(|list| list.object == object)
            .ok_or_else(|| {
                ApiError::not_found(format!("No list named {name} exists for this object type"))
            })
    }

    /// Creates a list of `object` (whose type id is `type_id`): 400 for a missing name or an
    /// unknown processing type, or a `DYNAMIC` list without filters; 409 for a taken name.
    pub(crate) fn create(
        &mut self,
        egg: ListEgg,
        object: ObjectType,
        type_id: &str,
        now: DateTime<Utc>,
    ) -> Result<&List, ApiError> {
        let name = egg.name.trim().to_owned();
        if name.is_empty() {
            return Err(ApiError::validation("A list needs a `name`").context("name", vec![]));
        }
        if let Some(existing) = self.by_name.get(&name.to_lowercase()) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                category::CONFLICT,
                format!("A list named {name} already exists: {existing}"),
            )
            .context("name", vec![name]));
        }
        let processing_type = egg.processing_type.to_uppercase();
        if !PROCESSING_TYPES.contains(&processing_type.as_str()) {
            return Err(ApiError::validation(format!(
                "processingType must be one of MANUAL, SNAPSHOT, DYNAMIC, got `{}`",
                egg.processing_type
            ))
            .context("processingType", vec![egg.processing_type]));
        }
        if processing_type == "DYNAMIC" && egg.filter_branch.is_none() {
            return Err(
                ApiError::validation("A DYNAMIC list needs a `filterBranch`")
                    .context("filterBranch", vec![]),
            );
        }
        let id = self.next_id;
        self.next_id += 1;
        self.by_name.insert(name.to_lowercase(), id);
        let list = List {
            id,
            name,
            object,
            object_type_id: type_id.to_owned(),
            processing_type,
            filter_branch: egg.filter_branch,
            members: BTreeMap::new(),
            created_at: now,
            updated_at: now,
            last_added: None,
            last_removed: None,
        };
        Ok(self.lists.entry(id).or_insert(list))
    }

    /// Deletes a list (its memberships go with it).
    pub(crate) fn delete(&mut self, id: &str) -> Result<(), ApiError> {
        let key = self.get(id)?.id;
        if let Some(list) = self.lists.remove(&key) {
            self.by_name.remove(&list.name.to_lowercase());
            for record in list.members.keys() {
                self.leave(list.object, *record, key);
            }
        }
        Ok(())
    }

    fn leave(&mut self, object: ObjectType, record: u64, list: u64) {
        if let Some(lists) = self.member_of.get_mut(&(object, record)) {
            lists.remove(&list);
            if lists.is_empty() {
                self.member_of.remove(&(object, record));
            }
        }
    }

    /// `POST /crm/v3/lists/search`: lists whose name contains `query` (ignoring case), in id
    /// order; returns the page, the total and the next offset.
    pub(crate) fn search(&self, body: &SearchBody) -> Result<Value, ApiError> {
        let count = match body.count {
            None => DEFAULT_SEARCH_COUNT,
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_SEARCH_COUNT).contains(n))
                .ok_or_else(|| {
                    ApiError::validation(format!(
                        "count must be between 1 and {MAX_SEARCH_COUNT}, got {n}"
                    ))
                    .context("count", vec![n.to_string()])
                })?,
        };
        let offset = usize::try_from(body.offset.unwrap_or(0)).map_err(|_| {
            ApiError::validation("offset must not be negative").context("offset", vec![])
        })?;
        let query = body.query.as_deref().unwrap_or("").trim().to_lowercase();
        let types: Vec<String> = body
            .processing_types
            .iter()
            .map(|t| t.to_uppercase())
            .collect();
        let matching: Vec<&List> = self
            .lists
            .values()
            .filter(|l| query.is_empty() || l.name.to_lowercase().contains(&query))
            .filter(|l| types.is_empty() || types.contains(&l.processing_type))
            .filter(|l| body.list_ids.is_empty() || body.list_ids.contains(&l.id.to_string()))
            .filter(|l| {
                body.object_type_id
                    .as_deref()
                    .is_none_or(|t| t == l.object_type_id)
            })
            .collect();
        let page: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(count)
            .map(|l| l.search_json())
            .collect();
        let next = offset + page.len();
        Ok(json!({
            "lists": page,
            "total": matching.len(),
            "offset": next,
            "hasMore": next < matching.len(),
        }))
    }

    /// Applies a membership change to list `id`. `add` and `remove` are the ids as sent, each
    /// with the record id it names if that record exists (`None`: missing). Refused for a
    /// `DYNAMIC` list (400).
    pub(crate) fn change(
        &mut self,
        id: &str,
        add: &[(String, Option<u64>)],
        remove: &[(String, Option<u64>)],
        now: DateTime<Utc>,
    ) -> Result<Change, ApiError> {
        let key = self.writable(id)?;
        let mut change = Change::default();
        let mut joined = Vec::new();
        let mut left = Vec::new();
        let list = self
            .lists
            .get_mut(&key)
            .expect("writable returned the id of an existing list");
        for (text, record) in add {
            match record {
                None => change.missing.push(text.clone()),
                Some(record) => {
                    if !list.members.contains_key(record) {
                        list.members.insert(*record, now);
                        change.added.push(record.to_string());
                        joined.push(*record);
                    }
                }
            }
        }
        for (text, record) in remove {
            match record {
                None => change.missing.push(text.clone()),
                Some(record) => {
                    if list.members.remove(record).is_some() {
                        change.removed.push(record.to_string());
                        left.push(*record);
                    }
                }
            }
        }
        if !joined.is_empty() {
            list.last_added = Some(now);
        }
        if !left.is_empty() {
            list.last_removed = Some(now);
        }
        if !joined.is_empty() || !left.is_empty() {
            list.updated_at = now;
        }
        let object = list.object;
        for record in joined {
            self.member_of
                .entry((object, record))
                .or_default()
                .insert(key);
        }
        for record in left {
            self.leave(object, record, key);
        }
        Ok(change)
    }

    /// The id of a list whose memberships the API may change, or the refusal.
    fn writable(&self, id: &str) -> Result<u64, ApiError> {
        let list = self.get(id)?;
        if list.processing_type == "DYNAMIC" {
            return Err(ApiError::validation(format!(
                "List {id} has processingType DYNAMIC: only MANUAL and SNAPSHOT lists take \
                 membership changes"
            ))
            .context("listId", vec![id.to_owned()]));
        }
        Ok(list.id)
    }

    /// Removes every record from list `id` (`DELETE …/memberships`).
    pub(crate) fn empty(&mut self, id: &str, now: DateTime<Utc>) -> Result<(), ApiError> {
        let key = self.writable(id)?;
        let Some(list) = self.lists.get_mut(&key) else {
            return Ok(());
        };
        let members = std::mem::take(&mut list.members);
        let object = list.object;
        if !members.is_empty() {
            list.last_removed = Some(now);
            list.updated_at = now;
        }
        for record in members.keys() {
            self.leave(object, *record, key);
        }
        Ok(())
    }

    /// Members of a list in record id order after `after` (or, with only `before`, in
    /// descending order before it), at most `limit`.
    pub(crate) fn page(
        &self,
        id: &str,
        after: Option<u64>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page, ApiError> {
        let list = self.get(id)?;
        let mut members: Box<dyn Iterator<Item = (&u64, &DateTime<Utc>)>> = match (after, before) {
            (None, Some(before)) => Box::new(list.members.range(..before).rev()),
            (after, _) => Box::new(
                list.members
                    .range((Bound::Excluded(after.unwrap_or(0)), Bound::Unbounded)),
            ),
        };
        let page: Vec<(u64, DateTime<Utc>)> = members
            .by_ref()
            .take(limit)
            .map(|(id, at)| (*id, *at))
            .collect();
        let next = page
            .last()
            .filter(|_| members.next().is_some())
            .map(|(id, _)| *id);
        Ok(Page {
            members: page,
            next,
        })
    }

    /// Takes an archived record out of every list it was in.
    pub(crate) fn forget_record(&mut self, object: ObjectType, id: u64) {
        let Some(lists) = self.member_of.remove(&(object, id)) else {
            return;
        };
        for key in lists {
            if let Some(list) = self.lists.get_mut(&key) {
                list.members.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn egg(name: &str, processing_type: &str) -> ListEgg {
        serde_json::from_value(json!({
            "name": name, "objectTypeId": "0-1", "processingType": processing_type,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn ids(ids: &[(&str, Option<u64>)]) -> Vec<(String, Option<u64>)> {
        ids.iter().map(|(t, r)| ((*t).to_owned(), *r)).collect()
    }

    #[test]
    fn memberships_change_page_and_forget_archived_records() {
        let mut lists = Lists::default();
        let now = Utc::now();
        let id = lists
            .create(egg("VIPs", "MANUAL"), ObjectType::CONTACTS, "0-1", now)
            .map(|l| l.id.to_string())
            .unwrap_or_default();
        assert!(
            lists
                .create(egg("vips", "MANUAL"), ObjectType::CONTACTS, "0-1", now)
                .is_err()
        );
        let add = ids(&[("3", Some(3)), ("1", Some(1)), ("x", None), ("3", Some(3))]);
        let change = lists.change(&id, &add, &[], now).unwrap_or_default();
        assert_eq!(change.to_json()["recordsIdsAdded"], json!(["3", "1"]));
        assert_eq!(change.to_json()["recordIdsMissing"], json!(["x"]));
        let page = lists
            .page(&id, None, None, 1)
            .map(|p| (p.members.len(), p.next));
        assert_eq!(page.ok(), Some((1, Some(1))));
        let before = lists.page(&id, None, Some(3), 10).map(|p| p.members.len());
        assert_eq!(before.ok(), Some(1));
        lists.forget_record(ObjectType::CONTACTS, 3);
        assert_eq!(lists.get(&id).map(List::size).ok(), Some(1));
        let change = lists.change(&id, &[], &ids(&[("1", Some(1))]), now);
        assert_eq!(
            change.map(|c| c.to_json()["recordIdsRemoved"].clone()).ok(),
            Some(json!(["1"]))
        );
        assert!(lists.member_of.is_empty());
    }

    #[test]
    fn dynamic_lists_refuse_membership_changes() {
        let mut lists = Lists::default();
        let now = Utc::now();
        assert!(
            lists
                .create(egg("All", "DYNAMIC"), ObjectType::CONTACTS, "0-1", now)
                .is_err(),
            "a DYNAMIC list needs filters"
        );
        let mut dynamic = egg("All", "DYNAMIC");
        dynamic.filter_branch = Some(json!({"filterBranchType": "OR"}));
        let id = lists
            .create(dynamic, ObjectType::CONTACTS, "0-1", now)
            .map(|l| l.id.to_string())
            .unwrap_or_default();
        assert!(
            lists
                .change(&id, &ids(&[("1", Some(1))]), &[], now)
                .is_err()
        );
        assert!(
            lists
                .create(egg("X", "STATIC"), ObjectType::CONTACTS, "0-1", now)
                .is_err()
        );
    }
}
