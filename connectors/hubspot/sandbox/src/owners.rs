//! Owners: the users records can be assigned to (`hubspot_owner_id`).
//!
//! No file in `shared/contracts/hubspot` covers the owners API, so the shape follows HubSpot's
//! documented `GET /crm/v3/owners` (CRM owners v3 reference): `PublicOwner` objects with
//! `id`, `email`, `type` (`PERSON`), `firstName`, `lastName`, `userId`,
//! `userIdIncludingInactive`, `createdAt`, `updatedAt`, `archived` and `teams`, listed in
//! pages of `limit` (default 100, at most 500) with an `after` cursor. A fresh portal has
//! three seeded owners; tests add more through `POST /_sandbox/owners`.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::record::iso;

/// The owners every fresh portal has: `(id, user id, email, first name, last name)`.
const SEEDED: [(u64, u64, &str, &str, &str); 3] = [
    (
        10_001,
        20_001,
        "ada.lovelace@example.com",
        "Ada",
        "Lovelace",
    ),
    (10_002, 20_002, "alan.turing@example.com", "Alan", "Turing"),
    (
        10_003,
        20_003,
        "grace.hopper@example.com",
        "Grace",
        "Hopper",
    ),
];

/// Most owners one page returns.
pub(crate) const MAX_LIMIT: usize = 500;
/// Owners per page when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: usize = 100;

/// One owner.
#[derive(Clone, Debug)]
struct Owner {
    id: u64,
    user_id: u64,
    email: String,
    first_name: String,
    last_name: String,
    created_at: DateTime<Utc>,
}

impl Owner {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "email": self.email,
            "type": "PERSON",
            "firstName": self.first_name,
            "lastName": self.last_name,
            "userId": self.user_id,
            "userIdIncludingInactive": self.user_id,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.created_at),
            "archived": false,
            "teams": [],
        })
    }
}

/// What `POST /_sandbox/owners` takes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NewOwner {
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
}

/// The portal's owners, by id.
#[derive(Debug)]
pub(crate) struct Owners {
    owners: BTreeMap<u64, Owner>,
}

impl Default for Owners {
    /// The seeded owners.
    fn default() -> Self {
        let created_at = Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let owners = SEEDED
            .iter()
            .map(|(id, user_id, email, first, last)| {
                let owner = Owner {
                    id: *id,
                    user_id: *user_id,
                    email: (*email).to_owned(),
                    first_name: (*first).to_owned(),
                    last_name: (*last).to_owned(),
                    created_at,
                };
                (*id, owner)
            })
            .collect();
        Owners { owners }
    }
}

impl Owners {
    /// A page of owners in id order after `after`, optionally only those with `email`
    /// (ignoring case): the owners and the cursor of the next page.
    pub(crate) fn page(
        &self,
        email: Option<&str>,
        after: u64,
        limit: usize,
    ) -> (Vec<Value>, Option<String>) {
        let mut matching = self
            .owners
            .range(after + 1..)
            .map(|(_, owner)| owner)
            .filter(|o| email.is_none_or(|e| o.email.eq_ignore_ascii_case(e)));
        let page: Vec<&Owner> = matching.by_ref().take(limit).collect();
        let next = page
            .last()
            .filter(|_| matching.next().is_some())
            .map(|o| o.id.to_string());
        (page.iter().map(|o| o.to_json()).collect(), next)
    }

    /// One owner by id, or by user id when `by_user_id`.
    pub(crate) fn get(&self, id: &str, by_user_id: bool) -> Result<Value, ApiError> {
        let wanted: Option<u64> = id.trim().parse().ok();
        let found = self
            .owners
            .values()
            .find(|o| Some(if by_user_id { o.user_id } else { o.id }) == wanted);
        found
            .map(Owner::to_json)
            .ok_or_else(|| ApiError::not_found(format!("No owner with id {id} exists")))
    }

    /// Adds an owner (a control route); 400 for an email another owner has.
    pub(crate) fn add(&mut self, new: NewOwner, now: DateTime<Utc>) -> Result<Value, ApiError> {
        if !new.email.contains('@') {
            return Err(ApiError::validation(format!(
                "{} is not an email address",
                new.email
            )));
        }
        if self
            .owners
            .values()
            .any(|o| o.email.eq_ignore_ascii_case(&new.email))
        {
            return Err(ApiError::validation(format!(
                "An owner with email {} exists",
                new.email
            )));
        }
        let id = self
            .owners
            .keys()
            .next_back()
            .map_or(10_001, |last| last + 1);
        let owner = Owner {
            id,
            user_id: id + 10_000,
            email: new.email.to_lowercase(),
            first_name: new.first_name,
            last_name: new.last_name,
            created_at: now,
        };
        let json = owner.to_json();
        self.owners.insert(id, owner);
        Ok(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_owners_page_and_grow() {
        let mut owners = Owners::default();
        let (page, next) = owners.page(None, 0, 2);
        assert_eq!(page.len(), 2);
        assert_eq!(next.as_deref(), Some("10002"));
        let (rest, next) = owners.page(None, 10_002, 2);
        assert_eq!((rest.len(), next), (1, None));
        let (found, _) = owners.page(Some("ALAN.turing@example.com"), 0, 10);
        assert_eq!(found[0]["id"], "10002");
        let new = NewOwner {
            email: "k@example.com".to_owned(),
            first_name: "K".to_owned(),
            last_name: String::new(),
        };
        assert_eq!(
            owners.add(new, Utc::now()).map(|o| o["id"].clone()).ok(),
            Some(json!("10004"))
        );
        assert!(owners.get("20004", true).is_ok());
        assert!(owners.get("1", false).is_err());
    }
}
