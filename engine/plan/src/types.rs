//! The plan's JSON shape (format version 1).

use serde::{Deserialize, Serialize};

use crate::ChangeSet;

/// A plan for one or more syncs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Always [`crate::FORMAT_VERSION`] when written by this engine.
    pub format_version: u32,
    /// A fresh UUID per plan.
    pub plan_id: String,
    /// RFC 3339 time the plan was made.
    pub created_at: String,
    /// The engine version that made it.
    pub engine_version: String,
    /// The project's name.
    pub project: String,
    /// The state's lineage (a UUID created with the state).
    pub lineage: String,
    /// One entry per planned sync.
    pub syncs: Vec<SyncPlan>,
    /// A keyed digest over everything above, bound to the state that made the plan (see
    /// [`crate::seal`]); `engine apply PLAN` refuses a plan whose digest does not verify.
    #[serde(default)]
    pub digest: String,
}

/// What happens when a row leaves the model (mirrors the sync's `on_remove`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoveBehaviour {
    /// The record is left alone; the state forgets the row.
    Nothing,
    /// The record's mapped properties are emptied.
    ClearFields,
    /// The record is deleted (HubSpot archives it).
    Delete,
}

/// How a sync's rows reach records (mirrors the sync's `mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// New rows are upserted on the match property: created, or matched to a record.
    #[default]
    Upsert,
    /// New rows update the record found by the match property; none is ever created.
    Update,
    /// New rows create records; a record that exists is left alone, and changed rows send
    /// nothing.
    Insert,
}

impl WriteMode {
    /// True for the default, which plans leave out.
    pub fn is_upsert(&self) -> bool {
        *self == WriteMode::Upsert
    }
}

/// What a sync's rows are at the destination: records (the default), events sent once, or
/// memberships of a list. Read by the executor (a membership row whose match value changes
/// moves, even in insert mode) and the human view, so neither tests the object's name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowsAre {
    /// One record per row.
    #[default]
    Records,
    /// One event per added row (`object: events`).
    Events,
    /// One list membership per row (`object: lists`).
    Memberships,
}

impl RowsAre {
    /// True for the default, which plans leave out.
    pub fn is_records(&self) -> bool {
        *self == RowsAre::Records
    }
}

/// The plan of one sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncPlan {
    /// The sync's name.
    pub sync: String,
    /// Its model.
    pub model: String,
    /// Its destination's name.
    pub destination: String,
    /// The destination object, e.g. `contacts`.
    pub object: String,
    /// The state generation this plan was computed against (0 before the first apply).
    pub base_generation: u64,
    /// Mapped properties in snapshot order; the first is the match property.
    pub properties: Vec<String>,
    /// The unique property records are matched on.
    pub match_property: String,
    /// Properties whose null means "clear" (the others keep the destination's value).
    pub clear_on_null: Vec<String>,
    /// What removal does.
    pub on_remove: RemoveBehaviour,
    /// How new rows reach records (absent in a plan file: upsert).
    #[serde(default, skip_serializing_if = "WriteMode::is_upsert")]
    pub mode: WriteMode,
    /// What the rows are at the destination (absent in a plan file: records).
    #[serde(default, skip_serializing_if = "RowsAre::is_records")]
    pub rows_are: RowsAre,
    /// True when the destination compares match values case-insensitively (HubSpot's
    /// `email` and `domain`): two values differing only in case are one record.
    #[serde(default)]
    pub match_case_insensitive: bool,
    /// Counts.
    pub summary: Summary,
    /// Guard checks, evaluated at plan time and again at apply.
    pub guards: Vec<GuardCheck>,
    /// Every added, changed and removed row, sorted by action then key.
    pub changes: ChangeSet,
    /// Rows left out of this plan because of their match value (`match.on_invalid: skip`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedRow>,
    /// Rows the destination rejected last time whose data has not changed since: not sent
    /// again until their data changes or `engine apply --retry-failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<HeldRow>,
}

/// A model row left out of a plan, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRow {
    /// The model's primary key text.
    pub key: String,
    /// The row's match value (None when null).
    pub match_value: Option<String>,
    /// Why it was skipped (a null, empty or shared match value, or a value that does not fit).
    pub reason: String,
    /// True when a value does not fit its property: a per-row error the data must fix, so an
    /// apply that leaves the row out does not succeed. False for rows left out by
    /// `match.on_invalid: skip`, as the sync asks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invalid_value: bool,
}

/// A row that failed with data the destination rejected and that is not resent unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRow {
    /// The model's primary key text.
    pub key: String,
    /// The destination's message from the failed attempt.
    pub message: String,
}

/// Counts for one sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Rows the model produced.
    pub model_rows: u64,
    /// Rows in the previous snapshot.
    pub previous_rows: u64,
    /// Rows to create.
    pub create: u64,
    /// Rows to update.
    pub update: u64,
    /// Rows that left the model.
    pub remove: u64,
    /// Rows with no change.
    pub unchanged: u64,
    /// Of the changes, rows that failed last time and are retried.
    pub retried: u64,
    /// Rows skipped for a null, empty or shared match value.
    #[serde(default)]
    pub skipped: u64,
    /// Rows rejected last time with the same data, held back (see [`SyncPlan::held`]).
    #[serde(default)]
    pub held: u64,
}

/// A guard and whether this plan breaches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardCheck {
    /// `max_deletes` or `max_change_ratio`.
    pub guard: String,
    /// The configured limit.
    pub limit: f64,
    /// This plan's figure.
    pub actual: f64,
    /// True when `actual` is over `limit`.
    pub breached: bool,
}

/// What happens to a row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// New in the model: upserted.
    #[default]
    Create,
    /// Changed mapped values: only the changed properties are sent.
    Update,
    /// Left the model: handled per `on_remove`.
    Remove,
}

/// One row's change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RowChange {
    /// Create, update or remove.
    pub action: Action,
    /// The model's primary key text.
    pub key: String,
    /// The destination record id, when known from the last sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_id: Option<String>,
    /// Field-level changes: before → after. For a create every non-null property, for an
    /// update the changed ones, for a remove the properties to clear (empty for `nothing`).
    pub fields: Vec<FieldChange>,
    /// The full mapped row after the change, aligned with [`SyncPlan::properties`]; absent
    /// for removes. The state's next snapshot is built from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Option<String>>>,
    /// The destination's message from the last failed attempt, when this row is a retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// For an update: the row that owned this record until now (a re-keyed row, or a row
    /// that takes over the record holding its match value). The state hands the record over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekeyed_from: Option<String>,
    /// For a remove: the record handled is the one this other row left (it moved to the
    /// record holding its new match value), not the removed row's own record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vacated_by: Option<String>,
    /// Sending order among updates: an update of wave N is sent after every update of
    /// waves below N (a record must give up a match value before another takes it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wave: u32,
}

impl RowChange {
    /// A digest of what this change sends (action, record, fields after): the same change
    /// planned again has the same fingerprint. A row the destination rejected is held back
    /// while its change keeps this fingerprint.
    pub fn fingerprint(&self) -> String {
        let sent = (
            self.action,
            &self.destination_id,
            self.fields
                .iter()
                .map(|f| (&f.property, &f.after))
                .collect::<Vec<_>>(),
        );
        // Strings and options only: serializing cannot fail.
        let bytes = serde_json::to_vec(&sent).unwrap_or_default();
        blake3::hash(&bytes).to_hex()[..32].to_string()
    }
}

/// The form in which the destination compares match values: lower case where it compares
/// them case-insensitively ([`SyncPlan::match_case_insensitive`]), as written otherwise.
pub fn match_key(value: &str, case_insensitive: bool) -> String {
    if case_insensitive {
        value.to_lowercase()
    } else {
        value.to_string()
    }
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// One property's before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The destination property.
    pub property: String,
    /// The value last synced (null when none).
    pub before: Option<String>,
    /// The value to sync (null when the model has none).
    pub after: Option<String>,
}
