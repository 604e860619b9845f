//! The matching cascade (the ThankView guide's "How Contact Matching Works"): per row, the
//! record-id column if it holds the id of an existing Contact; else a Contact by email; else
//! a Lead by email; else no match, reported per row and not synced. Converted Leads are never
//! matched (`IsConverted = false`): once converted, the person is the Contact it became.
//!
//! Look-ups are batched: one SOQL `IN` query per URL-sized chunk of ids or emails
//! (`soql.rs`), never one query per row, with every email escaped as a SOQL literal
//! (`O'Brien@x.com`, `a\b@x.com`). Emails are compared ignoring case, as Salesforce does.
//! Several Contacts (or Leads) with one email fail the row with their ids, or give the most
//! recently modified one when the destination says [`DuplicateMatches::MostRecent`].
//!
//! The engine calls [`SalesforceDestination::resolve_cascade`] before it builds operations
//! and fills the lookup fields (`Contact__c` or `Lead__c`) from each [`CascadeMatch`].

use std::collections::HashMap;

use connector_core::Diagnostic;
use serde_json::Value;

use crate::config::DuplicateMatches;
use crate::{SalesforceDestination, ids};

/// The Contact key prefix (FACTS I3).
const CONTACT_PREFIX: &str = "003";

/// One row to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CascadeInput {
    /// The row's key, echoed in the result.
    pub key: String,
    /// The record-id column (ThankView's Donor ID), when the row has one.
    pub record_id: Option<String>,
    /// The recipient's email, when the row has one.
    pub email: Option<String>,
}

/// What the cascade found for one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CascadeMatch {
    /// A Contact, by the row's record id (`by_email: false`) or by email.
    Contact {
        /// The Contact's 18-character id.
        id: String,
        /// True when found by email.
        by_email: bool,
    },
    /// A Lead, by email.
    Lead {
        /// The Lead's 18-character id.
        id: String,
    },
    /// Nothing matched: the row is reported and not synced.
    Unmatched {
        /// Why, naming what was tried.
        reason: String,
    },
    /// The row cannot be matched safely (several records share its email).
    Ambiguous {
        /// Which records, by id.
        message: String,
    },
}

impl CascadeMatch {
    /// The Contact id to put in the Contact lookup field, if any.
    pub fn contact_id(&self) -> Option<&str> {
        match self {
            Self::Contact { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The Lead id to put in the Lead lookup field, if any.
    pub fn lead_id(&self) -> Option<&str> {
        match self {
            Self::Lead { id } => Some(id),
            _ => None,
        }
    }
}

/// One row's result, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CascadeResult {
    /// The row's key.
    pub key: String,
    /// What matched.
    pub matched: CascadeMatch,
}

/// A record found by email: id and last modification (ISO 8601, comparable as text).
#[derive(Debug, Clone)]
struct Found {
    id: String,
    modified: String,
}

/// Picks the record for one email among those found, by the duplicates policy.
fn pick(
    object: &str,
    email: &str,
    found: &[Found],
    policy: DuplicateMatches,
) -> Option<Result<String, String>> {
    match found {
        [] => None,
        [one] => Some(Ok(one.id.clone())),
        several => match policy {
            DuplicateMatches::MostRecent => several
                .iter()
                .max_by(|a, b| a.modified.cmp(&b.modified).then(a.id.cmp(&b.id)))
                .map(|f| Ok(f.id.clone())),
            DuplicateMatches::Reject => {
                let ids: Vec<&str> = several.iter().map(|f| f.id.as_str()).collect();
                Some(Err(format!(
                    "{} {object}s have email `{email}` ({}); merge them in Salesforce, put the right {object} id in the row's id column, or let the sync take the most recently modified one",
                    several.len(),
                    ids.join(", ")
                )))
            }
        },
    }
}

impl SalesforceDestination {
    /// Matches rows to Contacts and Leads (read-only; see the module doc). One result per
    /// input, in order. A look-up that fails stops the whole resolution with its diagnostic
    /// (`salesforce::unavailable` is passing: try again).
    pub async fn resolve_cascade(
        &self,
        rows: &[CascadeInput],
    ) -> Result<Vec<CascadeResult>, Diagnostic> {
        let mut results: Vec<Option<CascadeMatch>> = vec![None; rows.len()];
        let mut notes: Vec<Vec<String>> = vec![Vec::new(); rows.len()];

        // 1. Record ids that are Contact ids, checked to exist.
        let mut by_id: Vec<(usize, String)> = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            let Some(text) = row.record_id.as_deref().filter(|t| !t.trim().is_empty()) else {
                continue;
            };
            match ids::parse_id(text) {
                Ok(id) if id.key_prefix() == CONTACT_PREFIX => by_id.push((index, id.to_string())),
                Ok(id) => notes[index].push(format!(
                    "the id `{}` is not a Contact id ({})",
                    id.short(),
                    ids::object_of_prefix(id.key_prefix())
                        .map(|o| format!("a {o} id"))
                        .unwrap_or_else(|| format!("prefix `{}`", id.key_prefix()))
                )),
                Err(why) => notes[index].push(why),
            }
        }
        if !by_id.is_empty() {
            let values: Vec<&str> = by_id.iter().map(|(_, id)| id.as_str()).collect();
            let existing = self.existing_ids("Contact", &values).await?;
            for (index, id) in by_id {
                if existing.iter().any(|e| e.eq_ignore_ascii_case(&id)) {
                    results[index] = Some(CascadeMatch::Contact {
                        id,
                        by_email: false,
                    });
                } else {
                    notes[index].push(format!("no Contact has id `{id}`"));
                }
            }
        }

        // 2. and 3. Contacts, then Leads, by email.
        for object in ["Contact", "Lead"] {
            let pending: Vec<(usize, &str)> = rows
                .iter()
                .enumerate()
                .filter(|(i, _)| results[*i].is_none())
                .filter_map(|(i, r)| {
                    r.email
                        .as_deref()
                        .map(str::trim)
                        .filter(|e| !e.is_empty())
                        .map(|e| (i, e))
                })
                .collect();
            if pending.is_empty() {
                break;
            }
            let emails: Vec<&str> = pending.iter().map(|(_, e)| *e).collect();
            let found = self.by_email(object, &emails).await?;
            for (index, email) in pending {
                let Some(records) = found.get(&email.to_lowercase()) else {
                    continue;
                };
                match pick(object, email, records, self.config.duplicate_matches) {
                    Some(Ok(id)) if object == "Contact" => {
                        results[index] = Some(CascadeMatch::Contact { id, by_email: true });
                    }
                    Some(Ok(id)) => results[index] = Some(CascadeMatch::Lead { id }),
                    Some(Err(message)) => {
                        results[index] = Some(CascadeMatch::Ambiguous { message })
                    }
                    None => {}
                }
            }
        }

        Ok(rows
            .iter()
            .zip(results)
            .zip(notes)
            .map(|((row, matched), notes)| CascadeResult {
                key: row.key.clone(),
                matched: matched.unwrap_or_else(|| CascadeMatch::Unmatched {
                    reason: unmatched_reason(row, &notes),
                }),
            })
            .collect())
    }

    /// The ids among `values` that exist in `object`.
    async fn existing_ids(&self, object: &str, values: &[&str]) -> Result<Vec<String>, Diagnostic> {
        let select = format!("SELECT Id FROM {object}");
        let mut found = Vec::new();
        for query in crate::soql::in_queries(&select, "Id", values, self.query_url_overhead()) {
            for record in self.query(&query).await.map_err(|d| self.redact(d))? {
                if let Some(id) = record.get("Id").and_then(Value::as_str) {
                    found.push(id.to_string());
                }
            }
        }
        Ok(found)
    }

    /// Records of `object` by lower-cased email.
    async fn by_email(
        &self,
        object: &str,
        emails: &[&str],
    ) -> Result<HashMap<String, Vec<Found>>, Diagnostic> {
        // A converted Lead lives on as the Contact (or Account) it became: never a match.
        let select = if object == "Lead" {
            "SELECT Id, Email, LastModifiedDate FROM Lead WHERE IsConverted = false".to_string()
        } else {
            format!("SELECT Id, Email, LastModifiedDate FROM {object}")
        };
        let mut found: HashMap<String, Vec<Found>> = HashMap::new();
        for query in crate::soql::in_queries(&select, "Email", emails, self.query_url_overhead()) {
            for record in self.query(&query).await.map_err(|d| self.redact(d))? {
                let text = |key: &str| record.get(key).and_then(Value::as_str).unwrap_or_default();
                if text("Id").is_empty() || text("Email").is_empty() {
                    continue;
                }
                found
                    .entry(text("Email").to_lowercase())
                    .or_default()
                    .push(Found {
                        id: text("Id").to_string(),
                        modified: text("LastModifiedDate").to_string(),
                    });
            }
        }
        Ok(found)
    }
}

fn unmatched_reason(row: &CascadeInput, notes: &[String]) -> String {
    let email = row
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let mut reason = match email {
        Some(email) => format!("no Contact or Lead has email `{email}`"),
        None => "the row has no valid Contact id and no email".to_string(),
    };
    if !notes.is_empty() {
        reason.push_str(&format!(" ({})", notes.join("; ")));
    }
    reason.push_str("; the row is not synced");
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(id: &str, modified: &str) -> Found {
        Found {
            id: id.into(),
            modified: modified.into(),
        }
    }

    #[test]
    fn duplicates_are_refused_or_the_latest_wins() {
        let two = [
            found("003A", "2024-01-02T00:00:00.000+0000"),
            found("003B", "2024-03-01T00:00:00.000+0000"),
        ];
        let refused = pick("Contact", "a@x.com", &two, DuplicateMatches::Reject);
        let Some(Err(message)) = refused else {
            panic!("refused");
        };
        assert!(
            message.starts_with("2 Contacts have email `a@x.com` (003A, 003B)"),
            "{message}"
        );
        assert_eq!(
            pick("Contact", "a@x.com", &two, DuplicateMatches::MostRecent),
            Some(Ok("003B".to_string()))
        );
        assert_eq!(pick("Lead", "a@x.com", &[], DuplicateMatches::Reject), None);
    }

    #[test]
    fn unmatched_rows_say_what_was_tried() {
        let row = CascadeInput {
            key: "1".into(),
            record_id: Some("1004422".into()),
            email: Some("nobody@x.com".into()),
        };
        let reason = unmatched_reason(&row, &["not a Salesforce id: `1004422` is a number".into()]);
        assert!(
            reason.starts_with("no Contact or Lead has email `nobody@x.com` (not a Salesforce id"),
            "{reason}"
        );
        let bare = CascadeInput {
            key: "2".into(),
            record_id: None,
            email: None,
        };
        assert!(unmatched_reason(&bare, &[]).contains("no valid Contact id and no email"));
    }
}
