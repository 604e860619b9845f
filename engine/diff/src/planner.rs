//! Computes one sync's plan: map → write rows → key checks → join → read back changed rows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::Int64Type;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use engine_diag::Diagnostic;
use engine_mapping::SyncMapping;
use engine_plan::{
    Action, ChangeSet, ChangeWriter, FieldChange, GuardCheck, HeldRow, RemoveBehaviour, RowChange,
    RowsAre, SkippedRow, Summary, SyncPlan, WriteMode, match_key,
};
use engine_spec::{OnInvalidMatch, OnNull, OnRemove, SyncMode, SyncSpec};
use futures_util::StreamExt;

use crate::snapshot::SnapshotWriter;

/// How many offending keys a key error names.
pub(crate) const SHOWN_KEYS: usize = 5;

/// Everything [`plan_sync`] needs besides the model's row stream.
pub struct SyncDiffInput<'a> {
    /// The sync.
    pub sync: &'a SyncSpec,
    /// Its compiled mapping.
    pub mapping: &'a SyncMapping,
    /// The state generation the plan is made against.
    pub base_generation: u64,
    /// The snapshot of that generation (None before the first apply).
    pub previous_snapshot: Option<PathBuf>,
    /// Rows that failed last time.
    pub pending: HashMap<String, Pending>,
    /// Send rows the destination rejected again even when their data has not changed.
    pub retry_failed: bool,
    /// The destination compares match values case-insensitively (HubSpot's `email`).
    pub match_case_insensitive: bool,
    /// A scratch directory for this plan (the mapped rows are written there).
    pub work_dir: &'a Path,
    /// Told what the plan is doing, for a progress display.
    pub progress: &'a dyn PlanProgress,
    /// The diagnostic for an error the model's stream ended with, when its producer knows it
    /// better than "the model failed" (a warehouse's statement timeout, a value it cannot
    /// read); `None` leaves the generic one.
    pub stream_error: &'a dyn Fn(&datafusion::error::DataFusionError) -> Option<Diagnostic>,
}

/// For [`SyncDiffInput::stream_error`]: no better diagnostic than the generic one.
pub fn no_stream_diagnostic(_: &datafusion::error::DataFusionError) -> Option<Diagnostic> {
    None
}

/// What a plan is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanStage {
    /// Reading the model and mapping its rows; rows mapped so far.
    Mapping {
        /// Rows so far.
        rows: u64,
    },
    /// Checking keys and match values, and comparing with the last snapshot.
    Diffing,
    /// Writing the changes; changes written so far.
    Writing {
        /// Changes so far.
        rows: u64,
    },
}

/// Receives [`PlanStage`]s while a plan runs.
pub trait PlanProgress: Sync {
    /// Called as the plan moves on (often: keep it cheap).
    fn stage(&self, stage: PlanStage);
}

/// No progress display.
impl PlanProgress for () {
    fn stage(&self, _stage: PlanStage) {}
}

/// How many changes are written between two progress reports.
pub(crate) const PROGRESS_EVERY: u64 = 65_536;

/// A row that failed last time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The destination's message.
    pub message: String,
    /// Set when the destination rejected the row's data: the fingerprint of the change it
    /// rejected ([`RowChange::fingerprint`]). The same change is held back, not resent.
    pub held_fingerprint: Option<String>,
}

static TABLE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Rows with a value their property's type cannot take (`engine_mapping::ValueKind`), one
/// entry per row (its first bad value), by key.
#[derive(Default)]
struct InvalidValues {
    rows: BTreeMap<String, SkippedRow>,
}

impl InvalidValues {
    fn add(&mut self, failures: Vec<engine_mapping::ConversionFailure>) {
        for failure in failures {
            self.rows
                .entry(failure.key.clone())
                .or_insert_with(|| SkippedRow {
                    reason: failure.reason(),
                    key: failure.key,
                    match_value: failure.match_value,
                    invalid_value: true,
                });
        }
    }
}

/// The rows left out of the plan: for their match value, then for a value of the wrong type,
/// in key order.
pub(crate) fn with_invalid_values(
    skipped: Vec<SkippedRow>,
    invalid_values: BTreeMap<String, SkippedRow>,
) -> Vec<SkippedRow> {
    if invalid_values.is_empty() {
        return skipped;
    }
    let mut rows: BTreeMap<String, SkippedRow> = invalid_values;
    for row in skipped {
        rows.insert(row.key.clone(), row);
    }
    rows.into_values().collect()
}

/// Plans one sync: every added, changed (field by field) and removed row.
///
/// Duplicate or null keys, and rows the mapping cannot render, stop the plan with
/// diagnostics naming the keys, before anything could be sent.
pub async fn plan_sync(
    ctx: &SessionContext,
    mut stream: SendableRecordBatchStream,
    input: SyncDiffInput<'_>,
) -> Result<SyncPlan, Vec<Diagnostic>> {
    let sync_name = input.sync.name.value.as_str();
    let properties: Vec<String> = input
        .mapping
        .properties()
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let internal = |e: &dyn std::fmt::Display| {
        vec![
            Diagnostic::error("diff::io", format!("sync `{sync_name}`: {e}"))
                .hint("check free disk space and permissions of the state directory"),
        ]
    };

    // 1. Map every model row and write key + fingerprint + values to a Parquet file.
    fs_err::create_dir_all(input.work_dir).map_err(|e| internal(&e))?;
    let rows_path = input.work_dir.join(format!("{sync_name}.rows.parquet"));
    let mut writer =
        SnapshotWriter::create(&rows_path, &properties, false).map_err(|e| internal(&e))?;
    let mut null_keys = NullKeys::default();
    let mut invalid_values = InvalidValues::default();
    let mut mapped_rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| {
            if let Some(diagnostic) = (input.stream_error)(&e) {
                return vec![diagnostic];
            }
            let root = e.find_root();
            let hint = if matches!(root, datafusion::error::DataFusionError::ResourcesExhausted(_)) {
                "the model's query needs more memory than `ENGINE_MEMORY_LIMIT` (bytes) allows: raise it, or make the model's joins smaller (e.g. join onto the small table, filter first)"
            } else {
                "fix the malformed data in the model's tables, or CAST the column in the model's SQL"
            };
            vec![Diagnostic::error("model::execution", format!("sync `{sync_name}`: model `{}` failed: {}", input.sync.model.value, one_line(&root.to_string())))
                .at(input.sync.model.span.clone())
                .hint(hint)]
        })?;
        let (mapped, failures) = input
            .mapping
            .map_and_convert(&batch)
            .map_err(|e| vec![e.to_diagnostic(sync_name)])?;
        invalid_values.add(failures);
        let mapped = null_keys.remove_from(&mapped);
        if mapped.num_rows() > 0 {
            writer.write_mapped(&mapped).map_err(|e| internal(&e))?;
        }
        mapped_rows += batch.num_rows() as u64;
        input
            .progress
            .stage(PlanStage::Mapping { rows: mapped_rows });
    }
    let model_rows = writer.finish().map_err(|e| internal(&e))? + null_keys.count;
    if null_keys.count > 0 {
        return Err(vec![
            null_keys.diagnostic(input.sync, input.mapping.key_columns()),
        ]);
    }

    // 2. Duplicate keys stop the plan.
    input.progress.stage(PlanStage::Diffing);
    let id = TABLE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let rows_table = format!("engine_rows_{id}");
    ctx.register_parquet(
        &rows_table,
        rows_path.to_string_lossy().as_ref(),
        ParquetReadOptions::default(),
    )
    .await
    .map_err(|e| internal(&e))?;
    let result = diff_registered(
        ctx,
        &input,
        &properties,
        &rows_table,
        model_rows,
        invalid_values.rows,
    )
    .await;
    let _ = ctx.deregister_table(&rows_table);
    result
}

async fn diff_registered(
    ctx: &SessionContext,
    input: &SyncDiffInput<'_>,
    properties: &[String],
    rows_table: &str,
    model_rows: u64,
    invalid_values: BTreeMap<String, SkippedRow>,
) -> Result<SyncPlan, Vec<Diagnostic>> {
    let sync_name = input.sync.name.value.as_str();
    let internal = |e: &dyn std::fmt::Display| {
        vec![Diagnostic::error("diff::query", format!("sync `{sync_name}`: {e}")).hint(
            "if this says resources are exhausted, raise `ENGINE_DIFF_MEMORY_LIMIT` (bytes; it is capped at `ENGINE_MEMORY_LIMIT`); otherwise this is a bug in engine",
        )]
    };
    let match_property = properties.first().cloned().unwrap_or_default();
    let Some(snapshot) = &input.previous_snapshot else {
        check_duplicate_keys(ctx, input, rows_table)
            .await
            .map_err(|e| internal(&e))??;
        let skipped = check_all_match_values(ctx, input, rows_table, &match_property)
            .await
            .map_err(|e| internal(&e))??;
        let skipped = with_invalid_values(skipped, invalid_values);
        return first_backfill(ctx, input, properties, rows_table, model_rows, skipped).await;
    };

    crate::incremental::plan_incremental(
        ctx,
        input,
        properties,
        rows_table,
        model_rows,
        invalid_values,
        snapshot,
    )
    .await
}

/// A sync plan without changes or counts: what the sync is and how it maps.
pub(crate) fn header(input: &SyncDiffInput<'_>, properties: &[String]) -> SyncPlan {
    SyncPlan {
        sync: input.sync.name.value.clone(),
        model: input.sync.model.value.clone(),
        destination: input.sync.destination.value.clone(),
        object: input.sync.object.value.clone(),
        base_generation: input.base_generation,
        properties: properties.to_vec(),
        match_property: properties.first().cloned().unwrap_or_default(),
        clear_on_null: input
            .mapping
            .properties()
            .iter()
            .filter(|p| p.on_null == OnNull::Clear)
            .map(|p| p.name.clone())
            .collect(),
        on_remove: match input.sync.on_remove {
            OnRemove::Nothing => RemoveBehaviour::Nothing,
            OnRemove::ClearFields => RemoveBehaviour::ClearFields,
            OnRemove::Delete => RemoveBehaviour::Delete,
        },
        mode: match input.sync.mode {
            SyncMode::Upsert => WriteMode::Upsert,
            SyncMode::Update => WriteMode::Update,
            SyncMode::Insert => WriteMode::Insert,
        },
        rows_are: if input.sync.sends_events() {
            RowsAre::Events
        } else if input.sync.list.is_some() {
            RowsAre::Memberships
        } else {
            RowsAre::Records
        },
        match_case_insensitive: input.match_case_insensitive,
        guards: Vec::new(),
        summary: Summary::default(),
        changes: ChangeSet::default(),
        skipped: Vec::new(),
        held: Vec::new(),
    }
}

/// A first backfill (no snapshot yet): every row not skipped is a create. The mapped rows are
/// read back sorted by key (DataFusion sorts under its memory pool, spilling to disk) and
/// written straight to the change file, so memory does not grow with the number of rows.
async fn first_backfill(
    ctx: &SessionContext,
    input: &SyncDiffInput<'_>,
    properties: &[String],
    rows_table: &str,
    model_rows: u64,
    skipped: Vec<SkippedRow>,
) -> Result<SyncPlan, Vec<Diagnostic>> {
    let sync_name = input.sync.name.value.as_str();
    let internal = |e: &dyn std::fmt::Display| {
        vec![Diagnostic::error("diff::query", format!("sync `{sync_name}`: {e}")).hint(
            "check free disk space under the state directory; if this says resources are exhausted, raise `ENGINE_DIFF_MEMORY_LIMIT` (bytes; it is capped at `ENGINE_MEMORY_LIMIT`)",
        )]
    };
    let skipped_keys: HashSet<&str> = skipped.iter().map(|s| s.key.as_str()).collect();
    let columns = properties
        .iter()
        .map(|p| quoted(p))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stream = ctx
        .sql(&format!(
            "SELECT __key, {columns} FROM {rows_table} ORDER BY __key"
        ))
        .await
        .map_err(|e| internal(&e))?
        .execute_stream()
        .await
        .map_err(|e| internal(&e))?;
    let path = input.work_dir.join(format!("{sync_name}.changes.parquet"));
    let mut writer = ChangeWriter::create(&path).map_err(|e| internal(&e))?;
    let mut held = Vec::new();
    let mut create = 0u64;
    let mut retried = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| internal(&e))?;
        let keys = utf8(batch.column(0)).map_err(|e| internal(&e))?;
        let values: Vec<StringArray> = (1..batch.num_columns())
            .map(|i| utf8(batch.column(i)))
            .collect::<Result<_, _>>()
            .map_err(|e| internal(&e))?;
        for row in 0..batch.num_rows() {
            let key = keys.value(row);
            if skipped_keys.contains(key) {
                continue;
            }
            let values: Vec<Option<String>> = values
                .iter()
                .map(|a| (!a.is_null(row)).then(|| a.value(row).to_string()))
                .collect();
            let change = RowChange {
                fields: created_fields(properties, &values),
                values: Some(values),
                ..change(Action::Create, key, None, &input.pending)
            };
            let pending = input.pending.get(key);
            if !input.retry_failed
                && let Some(p) = pending
                && p.held_fingerprint.as_deref() == Some(change.fingerprint().as_str())
            {
                held.push(HeldRow {
                    key: key.to_string(),
                    message: p.message.clone(),
                });
                continue;
            }
            retried += u64::from(change.last_error.is_some());
            create += 1;
            writer.push(&change).map_err(|e| internal(&e))?;
            if create.is_multiple_of(PROGRESS_EVERY) {
                input.progress.stage(PlanStage::Writing { rows: create });
            }
        }
    }
    writer.finish().map_err(|e| internal(&e))?;
    let summary = Summary {
        model_rows,
        previous_rows: 0,
        create,
        unchanged: model_rows.saturating_sub(create + skipped.len() as u64 + held.len() as u64),
        retried,
        skipped: skipped.len() as u64,
        held: held.len() as u64,
        ..Summary::default()
    };
    Ok(SyncPlan {
        guards: guards(input.sync, &summary),
        summary,
        changes: ChangeSet::from_files(vec![path], create),
        skipped,
        held,
        ..header(input, properties)
    })
}

/// Duplicate primary keys stop the plan (a first backfill, with no snapshot to merge with,
/// finds them with an aggregate).
async fn check_duplicate_keys(
    ctx: &SessionContext,
    input: &SyncDiffInput<'_>,
    rows_table: &str,
) -> datafusion::error::Result<Result<(), Vec<Diagnostic>>> {
    let duplicates = query(
        ctx,
        &format!(
            "SELECT __key, n, count(*) OVER () AS groups FROM \
             (SELECT __key, count(*) AS n FROM {rows_table} GROUP BY __key HAVING count(*) > 1) d \
             ORDER BY __key LIMIT {SHOWN_KEYS}"
        ),
    )
    .await?;
    let Some(first) = duplicates.first().filter(|b| b.num_rows() > 0) else {
        return Ok(Ok(()));
    };
    let mut found = DuplicateKeys {
        groups: first
            .column(2)
            .as_primitive_opt::<Int64Type>()
            .map(|a| a.value(0))
            .unwrap_or_default()
            .max(0) as u64,
        shown: Vec::new(),
    };
    for batch in &duplicates {
        let names = utf8(batch.column(0))?;
        let counts = datafusion::arrow::compute::cast(batch.column(1), &DataType::Int64)?;
        let counts = counts.as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            found
                .shown
                .push((names.value(i).to_string(), counts.value(i).max(0) as u64));
        }
    }
    Ok(Err(vec![found.diagnostic(input)]))
}

/// Primary key values that appear more than once in the model.
#[derive(Debug, Default)]
pub(crate) struct DuplicateKeys {
    /// How many key values appear more than once.
    pub(crate) groups: u64,
    /// The first few, in key order, with how many rows each.
    pub(crate) shown: Vec<(String, u64)>,
}

impl DuplicateKeys {
    pub(crate) fn diagnostic(&self, input: &SyncDiffInput<'_>) -> Diagnostic {
        let sync_name = input.sync.name.value.as_str();
        let keys: Vec<String> = self
            .shown
            .iter()
            .map(|(key, rows)| format!("`{key}` ({rows} rows)"))
            .collect();
        Diagnostic::error(
            "diff::duplicate_keys",
            format!("sync `{sync_name}`: {} primary key value(s) appear more than once in model `{}`", self.groups, input.sync.model.value),
        )
        .at_row(sync_name, None, None)
        .note(format!("first duplicates: {}", keys.join(", ")))
        .hint("make the model's `primary_key` unique, e.g. with GROUP BY or a ROW_NUMBER() filter in its SQL")
    }
}

/// One property rows are matched on, as [`check_match_values`] checks it.
struct MatchColumn<'a> {
    /// The destination property (a column of the mapped rows).
    property: &'a str,
    /// Where the spec names it, for the diagnostics.
    span: engine_diag::SourceSpan,
    /// The model column it is mapped from, for the hints.
    column: &'a str,
    /// Compared ignoring case, as the destination compares it.
    case_insensitive: bool,
    /// Every row needs a value (the first match property); a fallback may be null.
    required: bool,
    /// Rows may share a value: an event sync sends one event per row, many to one contact.
    shared_allowed: bool,
}

/// [`check_match_values`] for the match property and then each `match.fallback` property
/// (compared ignoring case, as search does): a row sharing a fallback value with another row
/// could reach the record the other writes. Rows skipped by several checks are listed once.
pub(crate) async fn check_all_match_values(
    ctx: &SessionContext,
    input: &SyncDiffInput<'_>,
    rows_table: &str,
    match_property: &str,
) -> datafusion::error::Result<Result<Vec<SkippedRow>, Vec<Diagnostic>>> {
    let match_on = &input.sync.match_on;
    let mut columns = vec![MatchColumn {
        property: match_property,
        span: match_on.column.span.clone(),
        column: &match_on.column.value,
        case_insensitive: input.match_case_insensitive,
        required: true,
        shared_allowed: input.sync.sends_events(),
    }];
    for fallback in &match_on.fallback {
        columns.push(MatchColumn {
            property: &fallback.value,
            span: fallback.span.clone(),
            column: &fallback.value,
            case_insensitive: true,
            required: false,
            shared_allowed: false,
        });
    }
    let mut skipped: Vec<SkippedRow> = Vec::new();
    let mut problems: Vec<Diagnostic> = Vec::new();
    for column in &columns {
        match check_match_values(ctx, input, rows_table, column).await? {
            Ok(rows) => {
                for row in rows {
                    if !skipped.iter().any(|s| s.key == row.key) {
                        skipped.push(row);
                    }
                }
            }
            Err(more) => problems.extend(more),
        }
    }
    skipped.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(if problems.is_empty() {
        Ok(skipped)
    } else {
        Err(problems)
    })
}

/// Null, empty and shared match values: two rows must never write one record, and a row
/// without a match value cannot be matched. They stop the plan, or with
/// `match.on_invalid: skip` the rows are left out and listed.
async fn check_match_values(
    ctx: &SessionContext,
    input: &SyncDiffInput<'_>,
    rows_table: &str,
    match_column: &MatchColumn<'_>,
) -> datafusion::error::Result<Result<Vec<SkippedRow>, Vec<Diagnostic>>> {
    let sync_name = input.sync.name.value.as_str();
    let match_property = match_column.property;
    let case_insensitive = match_column.case_insensitive;
    let skip = input.sync.match_on.on_invalid == OnInvalidMatch::Skip;
    let column = quoted(match_property);
    let normalized = if case_insensitive {
        format!("lower({column})")
    } else {
        column.clone()
    };
    let limit = if skip {
        String::new()
    } else {
        format!("LIMIT {SHOWN_KEYS}")
    };
    let missing = if match_column.required {
        query(
            ctx,
            &format!(
                "SELECT __key, count(*) OVER () AS total FROM {rows_table} \
                 WHERE ({column} IS NULL OR trim({column}) = '') ORDER BY __key {limit}"
            ),
        )
        .await?
    } else {
        Vec::new()
    };
    // Shared match values are rare: find whether any exist with one aggregate (it spills
    // under the memory pool) before joining rows to them.
    let any_shared = !match_column.shared_allowed
        && query(
            ctx,
            &format!(
                "SELECT {normalized} AS m FROM {rows_table} \
             WHERE ({column} IS NOT NULL AND trim({column}) <> '') \
             GROUP BY {normalized} HAVING count(*) > 1 LIMIT 1"
            ),
        )
        .await?
        .iter()
        .any(|b| b.num_rows() > 0);
    let shared = if !any_shared {
        Vec::new()
    } else {
        query(
            ctx,
            &format!(
                "WITH d AS (SELECT {normalized} AS m FROM {rows_table} \
                        WHERE ({column} IS NOT NULL AND trim({column}) <> '') \
                        GROUP BY {normalized} HAVING count(*) > 1) \
             SELECT r.__key, r.{column}, (SELECT count(*) FROM d) AS groups \
             FROM {rows_table} r JOIN d ON {normalized_r} = d.m \
             ORDER BY d.m, r.__key {shared_limit}",
                normalized_r = if case_insensitive {
                    format!("lower(r.{column})")
                } else {
                    format!("r.{column}")
                },
                shared_limit = if skip {
                    String::new()
                } else {
                    "LIMIT 20".into()
                },
            ),
        )
        .await?
    };

    let mut skipped = Vec::new();
    let mut missing_total = 0;
    for batch in &missing {
        let keys = utf8(batch.column(0))?;
        missing_total = first_count(batch.column(1))?;
        for i in 0..batch.num_rows() {
            skipped.push(SkippedRow {
                key: keys.value(i).to_string(),
                match_value: None,
                reason: format!("the match property `{match_property}` is null or empty"),
                invalid_value: false,
            });
        }
    }
    let mut shared_groups = 0;
    let mut shared_rows: Vec<(String, String)> = Vec::new();
    for batch in &shared {
        let keys = utf8(batch.column(0))?;
        let values = utf8(batch.column(1))?;
        shared_groups = first_count(batch.column(2))?;
        for i in 0..batch.num_rows() {
            shared_rows.push((keys.value(i).to_string(), values.value(i).to_string()));
        }
    }
    if skip {
        for (key, value) in shared_rows {
            skipped.push(SkippedRow {
                key,
                match_value: Some(value),
                reason: format!(
                    "another row has the same `{match_property}`{}",
                    if case_insensitive {
                        " (compared case-insensitively)"
                    } else {
                        ""
                    }
                ),
                invalid_value: false,
            });
        }
        skipped.sort_by(|a, b| a.key.cmp(&b.key));
        return Ok(Ok(skipped));
    }
    let mut problems = Vec::new();
    if missing_total > 0 {
        let keys: Vec<String> = skipped.iter().map(|s| format!("`{}`", s.key)).collect();
        problems.push(
            Diagnostic::error(
                "diff::null_match_values",
                format!(
                    "sync `{sync_name}`: {missing_total} row(s) of model `{}` have a null or empty `{match_property}`, so they cannot be matched to a record",
                    input.sync.model.value
                ),
            )
            .at(match_column.span.clone())
            .note(format!("first rows (primary key): {}", keys.join(", ")))
            .hint(format!(
                "filter them out in the model's SQL (`WHERE {} IS NOT NULL AND {} <> ''`), or set `match.on_invalid: skip` to leave them out and list them in the plan",
                match_column.column, match_column.column
            )),
        );
    }
    if shared_groups > 0 {
        let mut shown: Vec<String> = Vec::new();
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for (key, value) in shared_rows {
            let normalized = match_key(&value, case_insensitive);
            match groups.last_mut() {
                Some((v, keys)) if *v == normalized => keys.push(format!("`{key}`")),
                _ => groups.push((normalized, vec![format!("`{key}`")])),
            }
        }
        for (value, keys) in groups.into_iter().take(SHOWN_KEYS) {
            shown.push(format!("`{value}` (rows {})", keys.join(", ")));
        }
        problems.push(
            Diagnostic::error(
                "diff::duplicate_match_values",
                format!(
                    "sync `{sync_name}`: {shared_groups} `{match_property}` value(s) are shared by more than one row of model `{}`; two rows would write one record",
                    input.sync.model.value
                ),
            )
            .at(match_column.span.clone())
            .note(format!(
                "first shared values{}: {}",
                if case_insensitive { " (compared case-insensitively, as the destination does)" } else { "" },
                shown.join(", ")
            ))
            .hint("make the match column unique in the model's SQL (e.g. keep one row per value with ROW_NUMBER()), or set `match.on_invalid: skip` to leave those rows out and list them in the plan"),
        );
    }
    if problems.is_empty() {
        Ok(Ok(Vec::new()))
    } else {
        Ok(Err(problems))
    }
}

pub(crate) fn created_fields(properties: &[String], values: &[Option<String>]) -> Vec<FieldChange> {
    properties
        .iter()
        .zip(values)
        .filter_map(|(p, v)| {
            v.as_ref().map(|v| FieldChange {
                property: p.clone(),
                before: None,
                after: Some(v.clone()),
            })
        })
        .collect()
}

pub(crate) fn change(
    action: Action,
    key: &str,
    destination_id: Option<String>,
    pending: &HashMap<String, Pending>,
) -> RowChange {
    RowChange {
        action,
        key: key.to_string(),
        destination_id,
        last_error: pending.get(key).map(|p| p.message.clone()),
        ..RowChange::default()
    }
}

/// Evaluates the sync's guards against a plan's counts.
pub(crate) fn guards(sync: &SyncSpec, summary: &Summary) -> Vec<GuardCheck> {
    let mut checks = Vec::new();
    if let Some(limit) = sync.guards.max_deletes {
        checks.push(GuardCheck {
            guard: "max_deletes".into(),
            limit: limit as f64,
            actual: summary.remove as f64,
            breached: summary.remove > limit,
        });
    }
    if let Some(limit) = sync.guards.max_change_ratio
        && summary.previous_rows > 0
    {
        {
            let ratio = (summary.update + summary.remove) as f64 / summary.previous_rows as f64;
            checks.push(GuardCheck {
                guard: "max_change_ratio".into(),
                limit,
                actual: (ratio * 1000.0).round() / 1000.0,
                breached: ratio > limit,
            });
        }
    }
    checks
}

/// The first value of a count column (the same on every row of a window count), 0 if none.
fn first_count(array: &ArrayRef) -> datafusion::error::Result<i64> {
    let counts = datafusion::arrow::compute::cast(array, &DataType::Int64)?;
    Ok(counts
        .as_primitive::<Int64Type>()
        .values()
        .first()
        .copied()
        .unwrap_or(0))
}

/// A string column as plain UTF-8 (Parquet scans may hand back view types).
/// A SQL identifier for a property name (quoted, inner quotes doubled).
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(crate) fn utf8(array: &ArrayRef) -> datafusion::error::Result<StringArray> {
    let cast = datafusion::arrow::compute::cast(array, &DataType::Utf8)?;
    Ok(cast.as_string::<i32>().clone())
}

async fn query(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<Vec<RecordBatch>> {
    ctx.sql(sql).await?.collect().await
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Rows whose key is null: counted, a few described by their match value, and dropped.
#[derive(Default)]
struct NullKeys {
    count: u64,
    examples: Vec<String>,
}

impl NullKeys {
    fn remove_from(&mut self, batch: &RecordBatch) -> RecordBatch {
        let keys = batch.column(0);
        if keys.null_count() == 0 {
            return batch.clone();
        }
        self.count += keys.null_count() as u64;
        if let Some(matches) = batch
            .columns()
            .get(1)
            .and_then(|c| c.as_string_opt::<i32>())
        {
            for row in (0..batch.num_rows()).filter(|r| keys.is_null(*r)) {
                if self.examples.len() < SHOWN_KEYS {
                    let shown = if matches.is_null(row) {
                        "null".to_string()
                    } else {
                        format!("`{}`", matches.value(row))
                    };
                    self.examples.push(shown);
                }
            }
        }
        let mask = datafusion::arrow::compute::is_not_null(keys).unwrap_or_else(|_| {
            datafusion::arrow::array::BooleanArray::from(vec![true; batch.num_rows()])
        });
        datafusion::arrow::compute::filter_record_batch(batch, &mask)
            .unwrap_or_else(|_| batch.clone())
    }

    fn diagnostic(&self, sync: &SyncSpec, key_columns: &[String]) -> Diagnostic {
        let filter = key_columns
            .iter()
            .map(|c| format!("{c} IS NOT NULL"))
            .collect::<Vec<_>>()
            .join(" AND ");
        Diagnostic::error(
            "diff::null_keys",
            format!(
                "sync `{}`: {} row(s) of model `{}` have a null primary key",
                sync.name.value, self.count, sync.model.value
            ),
        )
        .at_row(sync.name.value.clone(), None, None)
        .note(format!(
            "their `{}` values: {}",
            sync.match_on.property.value,
            self.examples.join(", ")
        ))
        .hint(format!(
            "filter those rows out in the model's SQL (`WHERE {filter}`) or fix the source data"
        ))
    }
}
