//! An incremental plan (a snapshot exists), in three streaming passes, so that its memory
//! does not grow with the number of rows that differ (a mapping change can make every row of
//! a ten-million-row model differ):
//!
//! 1. [`key_diff`]: the model's keys and fingerprints, sorted, merged with the snapshot; the
//!    keys that differ go to a scratch file, with their match values before and after.
//! 2. Record assignment (`ownership`) for the few rows whose match value another row gives
//!    up: only they need to see each other. Every other row keeps its own record, creates
//!    one, or releases its own.
//! 3. The whole rows of the keys that differ, sorted by key (a semi-join on the scratch file
//!    when they are few, the sorted model otherwise), merged with the snapshot into changes
//!    written straight to the change file, in key order.

mod diff_rows;
mod key_diff;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{Array, StringArray};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use engine_diag::Diagnostic;
use engine_plan::{
    Action, ChangeSet, ChangeWriter, FieldChange, HeldRow, RowChange, SkippedRow, Summary, SyncPlan,
};
use engine_spec::OnRemove;
use futures_util::StreamExt;

use self::diff_rows::{DiffRow, DiffRowReader, Kind};
use self::key_diff::{Contested, MatchValues, diff_keys};
use crate::ownership::{self, Assignment, OldRecord, Release, Target};
use crate::planner::{
    PROGRESS_EVERY, PlanStage, SyncDiffInput, change, check_all_match_values, created_fields,
    guards, header, quoted, utf8, with_invalid_values,
};
use crate::snapshot::{SnapshotReader, StoredRow, snapshot_row_count};

/// Up to this many added and changed rows, pass 3 reads their whole rows with a semi-join
/// on the diff rows (a hash table of their keys, well inside the diff's memory pool);
/// beyond it, it reads the whole model sorted by key (a sort that spills) and passes over
/// the rows that did not change. Both give the same rows; a test lowers it to check that.
pub(crate) static SEMI_JOIN_MAX_ROWS: AtomicU64 = AtomicU64::new(1_000_000);

static DIFF_TABLE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Plans a sync against its previous `snapshot` (see the module's documentation).
pub(crate) async fn plan_incremental(
    ctx: &SessionContext,
    input: &SyncDiffInput<'_>,
    properties: &[String],
    rows_table: &str,
    model_rows: u64,
    invalid_values: BTreeMap<String, SkippedRow>,
    snapshot: &Path,
) -> Result<SyncPlan, Vec<Diagnostic>> {
    let sync_name = input.sync.name.value.as_str();
    let internal = |e: &dyn std::fmt::Display| {
        vec![Diagnostic::error("diff::query", format!("sync `{sync_name}`: {e}")).hint(
            "check free disk space under the state directory; if this says resources are exhausted, raise `ENGINE_DIFF_MEMORY_LIMIT` (bytes; it is capped at `ENGINE_MEMORY_LIMIT`)",
        )]
    };
    let match_property = properties.first().cloned().unwrap_or_default();
    crate::sort_snapshot(ctx, snapshot)
        .await
        .map_err(|e| internal(&e))?;
    let previous_rows = snapshot_row_count(snapshot).map_err(|e| internal(&e))?;

    // 1. Which keys differ.
    let matching = MatchValues {
        case_insensitive: input.match_case_insensitive,
        identity: !input.sync.sends_events(),
    };
    let diff_path = input.work_dir.join(format!("{sync_name}.diff.parquet"));
    let key_diff = diff_keys(
        ctx,
        rows_table,
        snapshot,
        &match_property,
        matching,
        &diff_path,
    )
    .await
    .map_err(|e| internal(&e))?;
    if let Some(duplicates) = &key_diff.duplicates {
        return Err(vec![duplicates.diagnostic(input)]);
    }
    let skipped = check_all_match_values(ctx, input, rows_table, &match_property)
        .await
        .map_err(|e| internal(&e))??;
    let skipped = with_invalid_values(skipped, invalid_values);
    let skipped_keys: HashSet<&str> = skipped.iter().map(|s| s.key.as_str()).collect();

    // 2. Records that change hands.
    let assignment = assign_contested(&diff_path, &key_diff.contested, matching, &skipped_keys)
        .map_err(|e| internal(&e))?;
    let sources = source_rows(snapshot, properties, &assignment).map_err(|e| internal(&e))?;

    // 3. Whole rows, merged into changes.
    let wanted = key_diff.added + key_diff.changed;
    let (mut stream, diff_table) = new_rows(ctx, rows_table, &diff_path, properties, wanted)
        .await
        .map_err(|e| internal(&e))?;
    let path = input.work_dir.join(format!("{sync_name}.changes.parquet"));
    let mut emitter = Emitter {
        input,
        properties,
        match_property: &match_property,
        assignment: &assignment,
        sources: &sources,
        old: SnapshotReader::open(snapshot, properties).map_err(|e| internal(&e))?,
        writer: ChangeWriter::create(&path).map_err(|e| internal(&e))?,
        held: Vec::new(),
        counts: Counts::default(),
    };
    let mut diffs = DiffRowReader::open(&diff_path)
        .map_err(|e| internal(&e))?
        .peekable();
    let merged = async {
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let keys = utf8(batch.column(0))?;
            let columns: Vec<StringArray> = (1..batch.num_columns())
                .map(|i| utf8(batch.column(i)))
                .collect::<Result<_, _>>()?;
            for row in 0..batch.num_rows() {
                let key = keys.value(row);
                while let Some(diff) = next_diff_before(&mut diffs, key)? {
                    emitter.removed_or_missing(diff, &skipped_keys)?;
                }
                if diffs
                    .peek()
                    .is_some_and(|d| d.as_ref().is_ok_and(|d| d.key == key))
                    && let Some(diff) = diffs.next().transpose()?
                {
                    if skipped_keys.contains(key) {
                        continue;
                    }
                    let values: Vec<Option<String>> = columns
                        .iter()
                        .map(|a| (!a.is_null(row)).then(|| a.value(row).to_string()))
                        .collect();
                    emitter.model_row(diff, values)?;
                }
            }
        }
        for diff in diffs.by_ref() {
            emitter.removed_or_missing(diff?, &skipped_keys)?;
        }
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    }
    .await;
    if let Some(table) = diff_table {
        let _ = ctx.deregister_table(&table);
    }
    merged.map_err(|e| internal(&e))?;
    let Emitter {
        writer,
        held,
        counts,
        ..
    } = emitter;
    writer.finish().map_err(|e| internal(&e))?;
    let _ = fs_err::remove_file(&diff_path);

    let summary = Summary {
        model_rows,
        previous_rows,
        create: counts.create,
        update: counts.update,
        remove: counts.remove,
        unchanged: model_rows
            .saturating_sub(counts.create + counts.update)
            .saturating_sub(skipped.len() as u64 + held.len() as u64),
        retried: counts.retried,
        skipped: skipped.len() as u64,
        held: held.len() as u64,
    };
    let total = counts.create + counts.update + counts.remove;
    Ok(SyncPlan {
        guards: guards(input.sync, &summary),
        summary,
        changes: ChangeSet::from_files(vec![path], total),
        skipped,
        held,
        ..header(input, properties)
    })
}

/// The next diff row whose key comes before `key`, if any (taken from the stream).
fn next_diff_before(
    diffs: &mut std::iter::Peekable<DiffRowReader>,
    key: &str,
) -> std::io::Result<Option<DiffRow>> {
    match diffs.peek() {
        Some(Ok(d)) if d.key.as_str() < key => diffs.next().transpose(),
        Some(Err(_)) => diffs.next().transpose(),
        _ => Ok(None),
    }
}

/// Pass 2: record assignment among the rows whose match values are contested (none, most
/// of the time: then nothing is read).
fn assign_contested(
    diff_path: &Path,
    contested: &Contested,
    matching: MatchValues,
    skipped: &HashSet<&str>,
) -> std::io::Result<Assignment> {
    if contested.is_empty() {
        return Ok(Assignment::default());
    }
    let mut old: BTreeMap<String, OldRecord> = BTreeMap::new();
    let mut new: BTreeMap<String, Option<String>> = BTreeMap::new();
    for diff in DiffRowReader::open(diff_path)? {
        let diff = diff?;
        let (before, after) = (diff.old_match.as_deref(), diff.new_match.as_deref());
        if skipped.contains(diff.key.as_str()) || !contested.involves(&matching, before, after) {
            continue;
        }
        if diff.kind != Kind::Added {
            old.insert(
                diff.key.clone(),
                OldRecord {
                    match_value: matching.normalize(before),
                    continuing: diff.kind == Kind::Changed,
                },
            );
        }
        if diff.kind != Kind::Removed {
            new.insert(diff.key, matching.normalize(after));
        }
    }
    Ok(ownership::assign(&old, &new))
}

/// The snapshot rows whose records other rows take over or leave behind, by key.
fn source_rows(
    snapshot: &Path,
    properties: &[String],
    assignment: &Assignment,
) -> std::io::Result<HashMap<String, StoredRow>> {
    let mut keys: Vec<&str> = assignment
        .targets
        .values()
        .filter_map(|t| match t {
            Target::Take(from) => Some(from.as_str()),
            _ => None,
        })
        .chain(assignment.releases.values().filter_map(|r| match r {
            Release::Vacated(moved) => Some(moved.as_str()),
            _ => None,
        }))
        .collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    keys.sort_unstable();
    keys.dedup();
    let mut reader = SnapshotReader::open(snapshot, properties)?;
    let mut rows = HashMap::new();
    for key in keys {
        if let Some(row) = reader.seek(key)? {
            rows.insert(key.to_string(), row);
        }
    }
    Ok(rows)
}

/// Pass 3's input: the mapped rows of the added and changed keys (or of every key), sorted by
/// key, `__key` first and then the properties in order; and the table to deregister after.
async fn new_rows(
    ctx: &SessionContext,
    rows_table: &str,
    diff_path: &Path,
    properties: &[String],
    wanted: u64,
) -> datafusion::error::Result<(SendableRecordBatchStream, Option<String>)> {
    let columns = properties
        .iter()
        .map(|p| quoted(p))
        .collect::<Vec<_>>()
        .join(", ");
    let (sql, table) = if wanted <= SEMI_JOIN_MAX_ROWS.load(Ordering::Relaxed) {
        let table = format!(
            "engine_diff_{}",
            DIFF_TABLE_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        ctx.register_parquet(
            &table,
            diff_path.to_string_lossy().as_ref(),
            ParquetReadOptions::default(),
        )
        .await?;
        (
            format!(
                "SELECT __key, {columns} FROM {rows_table} WHERE __key IN \
                 (SELECT __key FROM {table} WHERE {kind} <> {removed}) ORDER BY __key",
                kind = diff_rows::KIND_COLUMN,
                removed = Kind::Removed as u8,
            ),
            Some(table),
        )
    } else {
        (
            format!("SELECT __key, {columns} FROM {rows_table} ORDER BY __key"),
            None,
        )
    };
    let stream = match ctx.sql(&sql).await {
        Ok(frame) => frame.execute_stream().await,
        Err(e) => Err(e),
    };
    match stream {
        Ok(stream) => Ok((stream, table)),
        Err(e) => {
            if let Some(table) = table {
                let _ = ctx.deregister_table(&table);
            }
            Err(e)
        }
    }
}

/// How many changes of each kind were written.
#[derive(Debug, Default)]
struct Counts {
    create: u64,
    update: u64,
    remove: u64,
    retried: u64,
}

/// Turns diff rows into changes, in key order, straight into the change file.
struct Emitter<'a> {
    input: &'a SyncDiffInput<'a>,
    properties: &'a [String],
    match_property: &'a str,
    assignment: &'a Assignment,
    sources: &'a HashMap<String, StoredRow>,
    /// The snapshot, read forward as the keys ascend.
    old: SnapshotReader,
    writer: ChangeWriter,
    held: Vec<HeldRow>,
    counts: Counts,
}

impl Emitter<'_> {
    /// An added or changed key, with its mapped values.
    fn model_row(&mut self, diff: DiffRow, values: Vec<Option<String>>) -> std::io::Result<()> {
        let key = diff.key;
        let target = self
            .assignment
            .targets
            .get(&key)
            .cloned()
            .unwrap_or(match diff.kind {
                Kind::Added => Target::Create,
                _ => Target::Own { wave: 0 },
            });
        let (before, rekeyed_from, wave) = match target {
            Target::Create => (None, None, 0),
            Target::Own { wave } => (self.old.seek(&key)?, None, wave),
            Target::Take(from) => (self.sources.get(&from).cloned(), Some(from), 0),
        };
        let pending = &self.input.pending;
        let Some(before) = before else {
            return self.push(RowChange {
                fields: created_fields(self.properties, &values),
                values: Some(values),
                ..change(Action::Create, &key, None, pending)
            });
        };
        let fields = changed_fields(self.properties, &values, &before.values);
        if fields.is_empty() && rekeyed_from.is_none() {
            return Ok(()); // only unmapped or reordered properties differ: nothing to send
        }
        self.push(RowChange {
            fields,
            values: Some(values),
            rekeyed_from,
            wave,
            ..change(Action::Update, &key, before.destination_id, pending)
        })
    }

    /// A removed key (any other kind here means the model rows lost a row: an error).
    fn removed_or_missing(
        &mut self,
        diff: DiffRow,
        skipped: &HashSet<&str>,
    ) -> std::io::Result<()> {
        if diff.kind != Kind::Removed {
            return Err(crate::snapshot::io_error(format!(
                "the model row of key `{}` differs from the snapshot but was not read back for the plan; nothing was planned or sent: run `engine plan` again, and report it with the model if it repeats",
                diff.key
            )));
        }
        if skipped.contains(diff.key.as_str()) {
            return Ok(());
        }
        let release = self
            .assignment
            .releases
            .get(&diff.key)
            .cloned()
            .unwrap_or(Release::Own);
        let (record_row, vacated_by) = match release {
            Release::Own => (self.old.seek(&diff.key)?, None),
            Release::Vacated(moved) => (self.sources.get(&moved).cloned(), Some(moved)),
            // Its record now belongs to the row that took it over; the fold forgets the key.
            Release::Absorbed => return Ok(()),
        };
        let Some(old) = record_row else {
            return Ok(());
        };
        let fields = match self.input.sync.on_remove {
            OnRemove::Nothing | OnRemove::Delete => Vec::new(),
            OnRemove::ClearFields => self
                .properties
                .iter()
                .zip(&old.values)
                .filter(|(p, _)| p.as_str() != self.match_property)
                .filter_map(|(p, v)| {
                    v.as_ref().map(|v| FieldChange {
                        property: p.clone(),
                        before: Some(v.clone()),
                        after: None,
                    })
                })
                .collect(),
        };
        self.push(RowChange {
            fields,
            vacated_by,
            ..change(
                Action::Remove,
                &diff.key,
                old.destination_id,
                &self.input.pending,
            )
        })
    }

    /// Writes a change, or holds it back when the destination rejected the same change
    /// before (unless the user asked to retry).
    fn push(&mut self, change: RowChange) -> std::io::Result<()> {
        if !self.input.retry_failed
            && let Some(pending) = self.input.pending.get(&change.key)
            && pending.held_fingerprint.as_deref() == Some(change.fingerprint().as_str())
        {
            self.held.push(HeldRow {
                key: change.key,
                message: pending.message.clone(),
            });
            return Ok(());
        }
        let counts = &mut self.counts;
        match change.action {
            Action::Create => counts.create += 1,
            Action::Update => counts.update += 1,
            Action::Remove => counts.remove += 1,
        }
        counts.retried += u64::from(change.last_error.is_some());
        self.writer.push(&change)?;
        let written = counts.create + counts.update + counts.remove;
        if written.is_multiple_of(PROGRESS_EVERY) {
            self.input
                .progress
                .stage(PlanStage::Writing { rows: written });
        }
        Ok(())
    }
}

/// The properties whose value differs from the snapshot's (`before`, aligned with
/// `properties`), with both values.
fn changed_fields(
    properties: &[String],
    values: &[Option<String>],
    before: &[Option<String>],
) -> Vec<FieldChange> {
    properties
        .iter()
        .zip(values)
        .zip(before)
        .filter(|((_, v), b)| v != b)
        .map(|((p, v), b)| FieldChange {
            property: p.clone(),
            before: b.clone(),
            after: v.clone(),
        })
        .collect()
}
