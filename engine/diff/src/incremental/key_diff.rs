//! Pass 1 of an incremental plan: which keys differ.
//!
//! The model rows' keys, fingerprints and match values, sorted by key (DataFusion sorts under
//! its memory pool, spilling to disk), are merged with the snapshot, which is kept in key
//! order. Each key that differs goes to the diff rows file; duplicate keys come side by side
//! and are counted. Nothing is kept per key but two 8-byte hashes of match values (see
//! [`Contested`]).

use std::path::Path;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::prelude::SessionContext;
use futures_util::StreamExt;
use xxhash_rust::xxh3::xxh3_64;

use super::diff_rows::{DiffRowWriter, Kind};
use crate::planner::{DuplicateKeys, SHOWN_KEYS, quoted, utf8};
use crate::snapshot::KeyFingerprints;

/// How match values are compared: as the destination compares them (`match_key`), and not
/// at all for rows that own no record (events).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatchValues {
    /// The destination compares them ignoring case.
    pub(crate) case_insensitive: bool,
    /// Rows own records (false for events: every row is a new event).
    pub(crate) identity: bool,
}

impl MatchValues {
    /// The value as records are found by it, or None when it takes no part in ownership.
    pub(crate) fn normalize(&self, value: Option<&str>) -> Option<String> {
        value
            .filter(|_| self.identity)
            .map(|v| engine_plan::match_key(v, self.case_insensitive))
    }

    fn hash(&self, value: Option<&str>) -> Option<u64> {
        self.normalize(value).map(|v| xxh3_64(v.as_bytes()))
    }
}

/// Match values that some row gives up and another row takes: by hash, so that the set of
/// candidates costs 8 bytes per changed key while it is gathered. A row whose match value
/// (before or after) is contested takes part in record assignment (`ownership`); every
/// other row keeps its own record, creates one, or releases its own. A hash collision only
/// adds a row to the assignment, which then finds nothing to move.
#[derive(Debug, Default)]
pub(crate) struct Contested {
    given_up: Vec<u64>,
    wanted: Vec<u64>,
    values: std::collections::HashSet<u64>,
}

impl Contested {
    /// Notes a differing row: `before` is the value its snapshot row holds (changed and
    /// removed rows), `after` the value the model gives it (added and changed rows).
    fn note(&mut self, matching: &MatchValues, before: Option<&str>, after: Option<&str>) {
        let (before, after) = (matching.hash(before), matching.hash(after));
        // A row that keeps its value keeps its record: nothing moves.
        if before.is_some() && before == after {
            return;
        }
        self.given_up.extend(before);
        self.wanted.extend(after);
    }

    /// The values both given up and wanted (the vectors are dropped).
    fn settle(&mut self) {
        let mut given_up = std::mem::take(&mut self.given_up);
        let mut wanted = std::mem::take(&mut self.wanted);
        given_up.sort_unstable();
        given_up.dedup();
        wanted.sort_unstable();
        wanted.dedup();
        let (mut i, mut j) = (0, 0);
        while i < given_up.len() && j < wanted.len() {
            match given_up[i].cmp(&wanted[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    self.values.insert(given_up[i]);
                    i += 1;
                    j += 1;
                }
            }
        }
    }

    /// True when no value is contested: every row keeps, creates or releases its own record.
    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// True when a row with these values takes part in record assignment.
    pub(crate) fn involves(
        &self,
        matching: &MatchValues,
        before: Option<&str>,
        after: Option<&str>,
    ) -> bool {
        !self.values.is_empty()
            && [matching.hash(before), matching.hash(after)]
                .into_iter()
                .flatten()
                .any(|h| self.values.contains(&h))
    }
}

/// What pass 1 found.
pub(crate) struct KeyDiff {
    pub(crate) added: u64,
    pub(crate) changed: u64,
    pub(crate) removed: u64,
    /// Set when a key appears more than once in the model: the plan stops.
    pub(crate) duplicates: Option<DuplicateKeys>,
    pub(crate) contested: Contested,
}

/// Merges the model rows of `rows_table` with `snapshot` and writes every key that differs
/// to `out` (see the module's documentation).
pub(crate) async fn diff_keys(
    ctx: &SessionContext,
    rows_table: &str,
    snapshot: &Path,
    match_property: &str,
    matching: MatchValues,
    out: &Path,
) -> Result<KeyDiff, Box<dyn std::error::Error + Send + Sync>> {
    let mut old = KeyFingerprints::open_with(snapshot, Some(match_property))?;
    let mut next_old = old.next_with_value().transpose()?;
    let mut writer = DiffRowWriter::create(out)?;
    let mut diff = KeyDiff {
        added: 0,
        changed: 0,
        removed: 0,
        duplicates: None,
        contested: Contested::default(),
    };
    let mut duplicates = DuplicateKeys::default();
    // The last model key seen, and how many rows had it so far.
    let mut last: Option<(String, u64)> = None;
    let close_run = |last: &Option<(String, u64)>, duplicates: &mut DuplicateKeys| {
        if let Some((key, rows)) = last
            && *rows > 1
        {
            duplicates.groups += 1;
            if duplicates.shown.len() < SHOWN_KEYS {
                duplicates.shown.push((key.clone(), *rows));
            }
        }
    };
    let mut stream = ctx
        .sql(&format!(
            "SELECT __key, __fp, {} FROM {rows_table} ORDER BY __key",
            quoted(match_property)
        ))
        .await?
        .execute_stream()
        .await?;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let keys = utf8(batch.column(0))?;
        let fps = batch
            .column(1)
            .as_fixed_size_binary_opt()
            .ok_or("the fingerprint column is not 16 bytes wide")?;
        let matches = utf8(batch.column(2))?;
        for row in 0..batch.num_rows() {
            let key = keys.value(row);
            if let Some((last_key, rows)) = &mut last
                && last_key == key
            {
                *rows += 1;
                continue;
            }
            close_run(&last, &mut duplicates);
            last = Some((key.to_string(), 1));
            let new_match = (!matches.is_null(row)).then(|| matches.value(row));
            // Snapshot keys before this one left the model.
            while next_old.as_ref().is_some_and(|(k, _, _)| k.as_str() < key) {
                if let Some((old_key, _, old_match)) = next_old.take() {
                    diff.contested.note(&matching, old_match.as_deref(), None);
                    writer.push(&old_key, Kind::Removed, old_match.as_deref(), None)?;
                    diff.removed += 1;
                }
                next_old = old.next_with_value().transpose()?;
            }
            if next_old.as_ref().is_some_and(|(k, _, _)| k == key) {
                if let Some((_, old_fp, old_match)) = next_old.take()
                    && old_fp.as_slice() != fps.value(row)
                {
                    diff.contested
                        .note(&matching, old_match.as_deref(), new_match);
                    writer.push(key, Kind::Changed, old_match.as_deref(), new_match)?;
                    diff.changed += 1;
                }
                next_old = old.next_with_value().transpose()?;
            } else {
                diff.contested.note(&matching, None, new_match);
                writer.push(key, Kind::Added, None, new_match)?;
                diff.added += 1;
            }
        }
    }
    close_run(&last, &mut duplicates);
    while let Some((old_key, _, old_match)) = next_old {
        diff.contested.note(&matching, old_match.as_deref(), None);
        writer.push(&old_key, Kind::Removed, old_match.as_deref(), None)?;
        diff.removed += 1;
        next_old = old.next_with_value().transpose()?;
    }
    writer.finish()?;
    diff.contested.settle();
    if duplicates.groups > 0 {
        diff.duplicates = Some(duplicates);
    }
    Ok(diff)
}
