//! The snapshot fold: previous snapshot ⊕ what an apply actually wrote = the next snapshot.
//!
//! Used at the end of every apply and to recover a crashed one from its journal, so both paths
//! produce the same state. Rows that failed are left as they were (and so show up again in
//! the next plan); rows that succeeded take the plan's values and the destination's id, and a
//! row whose record another row took over (a re-key) leaves the snapshot with it.
//!
//! The fold is a merge of three streams sorted by row key: the previous snapshot, the plan's
//! changes and the keys the run wrote (read from the journal). Nothing is held per row, so
//! folding a 10-million-row apply takes the memory of one batch of each; the snapshot it
//! writes is sorted by key again, ready for the next fold.

use std::collections::{HashMap, HashSet};
use std::iter::Peekable;
use std::path::Path;

use engine_plan::{Action, RowChange, SyncPlan};

use crate::snapshot::{SnapshotReader, SnapshotWriter};

/// What the fold wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoldOutcome {
    /// Rows in the new snapshot.
    pub rows: u64,
}

/// A stream of the keys a run wrote, in ascending key order, each with the record id the
/// destination reported (creates need it; updates and removes may give None).
pub type Written<'a> = dyn Iterator<Item = std::io::Result<(String, Option<String>)>> + 'a;

/// What a run did, as the fold needs it.
pub struct RunOutcomes<'a> {
    /// The keys the run wrote, ascending (see [`Written`]).
    pub written: &'a mut Written<'a>,
    /// Which of these keys the run wrote: asked once, with the rows that took over another
    /// row's record (a re-key), whose old key may sort before or after them.
    pub wrote: &'a dyn Fn(&HashSet<String>) -> std::io::Result<HashSet<String>>,
    /// Values found in the destination for rows crash recovery read back, in place of the
    /// planned ones (aligned with the plan's properties).
    pub observed: &'a HashMap<String, Vec<Option<String>>>,
}

/// Writes the next snapshot to `out` (via a temporary file, fsync and rename), with the run's
/// outcomes given as a map of written keys (convenient where the run was small: tests, and
/// callers that already hold the keys).
pub fn fold_snapshot(
    previous: Option<&Path>,
    plan: &SyncPlan,
    succeeded: &HashMap<String, Option<String>>,
    out: &Path,
) -> std::io::Result<FoldOutcome> {
    let mut sorted: Vec<(String, Option<String>)> = succeeded
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    sorted.sort_unstable();
    let mut written = sorted.into_iter().map(Ok);
    let wrote = |keys: &HashSet<String>| {
        Ok(keys
            .iter()
            .filter(|key| succeeded.contains_key(*key))
            .cloned()
            .collect())
    };
    fold_run(
        previous,
        plan,
        RunOutcomes {
            written: &mut written,
            wrote: &wrote,
            observed: &HashMap::new(),
        },
        out,
    )
}

/// Writes the next snapshot to `out` (via a temporary file, fsync and rename) by merging the
/// previous snapshot, the plan's changes and the run's outcomes, all sorted by key.
///
/// Fails with [`std::io::ErrorKind::InvalidData`] when an input is not sorted by key (a
/// snapshot written before snapshots were sorted must first go through
/// [`crate::sort_snapshot`]).
pub fn fold_run(
    previous: Option<&Path>,
    plan: &SyncPlan,
    outcomes: RunOutcomes<'_>,
    out: &Path,
) -> std::io::Result<FoldOutcome> {
    // Rows whose record another row took over (a re-key): the record is now that row's.
    let rekeys = plan.changes.rekeys()?;
    let rekeyed: HashSet<String> = rekeys.iter().map(|(key, _)| key.clone()).collect();
    let written_rekeys = if rekeyed.is_empty() {
        HashSet::new()
    } else {
        (outcomes.wrote)(&rekeyed)?
    };
    let handed_over: HashSet<String> = rekeys
        .into_iter()
        .filter(|(key, _)| written_rekeys.contains(key))
        .map(|(_, from)| from)
        .collect();

    let tmp = out.with_extension("parquet.tmp");
    let mut writer = SnapshotWriter::create(&tmp, &plan.properties, true)?;
    let mut old = match previous {
        Some(path) => Some(Ordered::new(
            SnapshotReader::open(path, &plan.properties)?,
            "the previous snapshot",
        )),
        None => None,
    };
    let changes = plan
        .changes
        .chunks_without_fields()
        .flat_map(|chunk| match chunk {
            Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e)],
        })
        .map(|c: std::io::Result<RowChange>| c.map(|mut c| (std::mem::take(&mut c.key), c)));
    let mut changes = Ordered::new(changes, "the plan's changes");
    let mut written = Ordered::new(outcomes.written, "the run's journal");

    // The row being folded: one buffer, reused from row to row.
    let mut key = String::new();
    loop {
        let old_key = match &mut old {
            Some(old) => old.peek_key()?,
            None => None,
        };
        let next = match (old_key, changes.peek_key()?) {
            (None, None) => break,
            (Some(o), None) => o,
            (None, Some(c)) => c,
            (Some(o), Some(c)) => o.min(c),
        };
        key.clear();
        key.push_str(next);
        let old_row = match &mut old {
            Some(old) => old.next_if_key(&key)?,
            None => None,
        };
        let change = changes.next_if_key(&key)?;
        let outcome = written.seek(&key)?;
        match (change, outcome) {
            (Some(change), Some(reported_id)) => {
                if change.action == Action::Remove {
                    continue;
                }
                let Some(values) = outcomes.observed.get(&key).or(change.values.as_ref()) else {
                    continue;
                };
                let id = reported_id.as_deref().or(change.destination_id.as_deref());
                let values: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
                writer.push(&key, id, &values)?;
            }
            _ => {
                if let Some(row) = old_row
                    && !handed_over.contains(&key)
                {
                    let values: Vec<Option<&str>> =
                        row.values.iter().map(|v| v.as_deref()).collect();
                    writer.push(&key, row.destination_id.as_deref(), &values)?;
                }
            }
        }
    }
    let rows = writer.finish()?;
    fs_err::rename(&tmp, out)?;
    if let Some(Ok(dir)) = out.parent().map(fs_err::File::open) {
        let _ = dir.sync_all();
    }
    Ok(FoldOutcome { rows })
}

/// A stream of `(key, item)` that must come in strictly ascending key order; a step back is an
/// error naming the stream, never a silently wrong merge.
struct Ordered<I: Iterator> {
    inner: Peekable<I>,
    what: &'static str,
    last: Option<String>,
}

impl<T: 'static, I> Ordered<I>
where
    I: Iterator<Item = std::io::Result<(String, T)>>,
{
    fn new(inner: I, what: &'static str) -> Self {
        Ordered {
            inner: inner.peekable(),
            what,
            last: None,
        }
    }

    /// The next key, without taking it (an error in the stream is returned here).
    fn peek_key(&mut self) -> std::io::Result<Option<&str>> {
        if matches!(self.inner.peek(), Some(Err(_)))
            && let Some(Err(e)) = self.inner.next()
        {
            return Err(e);
        }
        Ok(self
            .inner
            .peek()
            .and_then(|item| item.as_ref().ok())
            .map(|(key, _)| key.as_str()))
    }

    /// Takes the next item, checking that its key comes after the last one taken.
    fn take(&mut self) -> std::io::Result<Option<T>> {
        let Some(Ok((key, item))) = self.inner.next() else {
            return Ok(None);
        };
        if self.last.as_ref().is_some_and(|last| *last >= key) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} is not sorted by row key (`{key}` comes after `{}`)",
                    self.what,
                    self.last.as_deref().unwrap_or_default()
                ),
            ));
        }
        self.last = Some(key);
        Ok(Some(item))
    }

    /// Takes the next item when its key is `key`.
    fn next_if_key(&mut self, key: &str) -> std::io::Result<Option<T>> {
        if self.peek_key()? == Some(key) {
            self.take()
        } else {
            Ok(None)
        }
    }

    /// Skips items with keys before `key` and takes the one with `key`, if any.
    fn seek(&mut self, key: &str) -> std::io::Result<Option<T>> {
        while self.peek_key()?.is_some_and(|next| next < key) {
            self.take()?;
        }
        self.next_if_key(key)
    }
}
