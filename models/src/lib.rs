//! Evaluates models: one DataFusion `SessionContext` per run, with the project's file tables
//! (CSV, Parquet, NDJSON) registered under their names, and each model's SQL planned and run
//! against them; a model with `source:` runs in that warehouse instead (`sources.rs`,
//! `warehouse/`), its rows streamed back as the same Arrow batches.
//!
//! SQL problems become diagnostics that point into the model's YAML file: DataFusion reports a
//! line and column inside the SQL text, and [`sql_position_to_file`] shifts it by where the
//! `sql:` scalar starts. Memory is bounded by a fair spill pool (`memory_limit`), so large
//! sorts and aggregations spill to the state directory instead of exhausting the machine.

mod errors;
mod sources;
pub mod warehouse;

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::dataframe::DataFrame;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{
    CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionConfig, SessionContext,
};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use engine_diag::Diagnostic;
use engine_spec::{FileFormat, ModelSpec, Project, TableSpec};

pub use errors::{model_error, sql_position_to_file};
pub use sources::{apply_tls, is_unreachable};

/// Default memory bound for one run's DataFusion work (joins, sorts, aggregations).
pub const DEFAULT_MEMORY_LIMIT: usize = 1536 * 1024 * 1024;

/// A run's query engine with the project's tables registered.
pub struct ModelEngine {
    ctx: SessionContext,
    /// The absolute paths of the registered tables, to put back the leading `/` that
    /// DataFusion's object-store paths drop from its messages about reading them.
    table_paths: Vec<String>,
    /// The project's warehouses, for models with `source:`.
    sources: sources::Sources,
}

/// How the engine's DataFusion session is set up.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Bytes DataFusion may use before spilling (or failing, for operators that cannot spill).
    pub memory_limit: usize,
    /// Where spill files go.
    pub spill_dir: Option<std::path::PathBuf>,
    /// Parallelism (defaults to the number of cores).
    pub target_partitions: Option<usize>,
    /// Share the pool fairly between operators that can spill (sorts, aggregates), so that
    /// merging spilled runs always finds memory; for sessions that only sort and aggregate
    /// (the diff). Model sessions keep first-come pooling, which suits hash joins.
    pub spill_fairly: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            memory_limit: DEFAULT_MEMORY_LIMIT,
            spill_dir: None,
            target_partitions: None,
            spill_fairly: false,
        }
    }
}

impl ModelEngine {
    /// A session with no tables (the diff planner uses it for snapshot joins).
    pub fn empty(options: &EngineOptions) -> Result<ModelEngine, Diagnostic> {
        let mut runtime = if options.spill_fairly {
            let pool = datafusion::execution::memory_pool::TrackConsumersPool::new(
                datafusion::execution::memory_pool::FairSpillPool::new(options.memory_limit),
                std::num::NonZeroUsize::new(5).unwrap_or(std::num::NonZeroUsize::MIN),
            );
            RuntimeEnvBuilder::new().with_memory_pool(std::sync::Arc::new(pool))
        } else {
            RuntimeEnvBuilder::new().with_memory_limit(options.memory_limit, 1.0)
        };
        if let Some(dir) = &options.spill_dir {
            runtime = runtime.with_temp_file_path(dir);
        }
        let runtime = runtime.build_arc().map_err(|e| {
            Diagnostic::error(
                "model::runtime",
                format!("cannot start the query engine: {e}"),
            )
        })?;
        let mut config = SessionConfig::new()
            .with_information_schema(false)
            .set_bool("datafusion.sql_parser.collect_spans", true)
            .set_bool("datafusion.sql_parser.enable_ident_normalization", true);
        if let Some(partitions) = options.target_partitions {
            config = config.with_target_partitions(partitions);
        }
        Ok(ModelEngine {
            ctx: SessionContext::new_with_config_rt(config, runtime),
            table_paths: Vec::new(),
            sources: sources::Sources::default(),
        })
    }

    /// A session with every table of the project registered; a table that cannot be read
    /// (missing file, unreadable header) is a diagnostic at its `path:`.
    pub async fn for_project(
        project: &Project,
        options: &EngineOptions,
    ) -> Result<ModelEngine, Vec<Diagnostic>> {
        let mut engine = ModelEngine::empty(options).map_err(|d| vec![d])?;
        engine.sources = sources::Sources::new(project);
        let mut problems = Vec::new();
        for table in &project.tables {
            if let Err(d) = engine.register_table(table).await {
                problems.push(d);
            }
        }
        if problems.is_empty() {
            Ok(engine)
        } else {
            Err(problems)
        }
    }

    async fn register_table(&mut self, table: &TableSpec) -> Result<(), Diagnostic> {
        let name = table.name.value.as_str();
        let path = table.path.to_string_lossy().to_string();
        if let Some(absolute) = std::path::absolute(&table.path)
            .ok()
            .and_then(|p| p.to_str().map(str::to_string))
            .filter(|p| p.starts_with('/') && p.len() > 1)
        {
            self.table_paths.push(absolute);
        }
        // A file without a single byte has no columns either: DataFusion would register it,
        // and every model reading it would fail with "No field named …".
        if table.path.is_file() && is_blank_file(&table.path) {
            return Err(errors::empty_table(table));
        }
        let extension = extension_of(&table.path);
        let result = match table.format {
            FileFormat::Csv => {
                let options = CsvReadOptions::new()
                    .has_header(table.has_header)
                    .delimiter(table.delimiter)
                    .file_extension(&extension);
                self.ctx.register_csv(name, &path, options).await
            }
            FileFormat::Parquet => {
                let options = ParquetReadOptions {
                    file_extension: &extension,
                    ..Default::default()
                };
                self.ctx.register_parquet(name, &path, options).await
            }
            FileFormat::Ndjson => {
                let options = JsonReadOptions {
                    file_extension: &extension,
                    ..Default::default()
                };
                self.ctx.register_json(name, &path, options).await
            }
        };
        result.map_err(|e| {
            Diagnostic::error(
                "model::table_unreadable",
                format!(
                    "cannot read table `{name}`: {}",
                    errors::real_paths(&errors::one_line(&e.to_string()), &self.table_paths)
                ),
            )
            .at(table.path_span.clone())
            .hint("check that the file exists and matches its `format:`")
        })
    }

    /// The DataFusion session (the diff planner registers snapshots in it).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Plans the model's SQL without running it and returns its output schema; every SQL
    /// problem points into the model's YAML.
    pub async fn schema(&self, model: &ModelSpec) -> Result<SchemaRef, Diagnostic> {
        if model.source.is_some() {
            return self.sources.schema(model).await;
        }
        let df = self.plan(model).await?;
        Ok(Arc::clone(df.schema().inner()))
    }

    /// Runs the model and streams its rows.
    pub async fn execute(
        &self,
        model: &ModelSpec,
    ) -> Result<SendableRecordBatchStream, Diagnostic> {
        if model.source.is_some() {
            return self.sources.execute(model).await;
        }
        let df = self.plan(model).await?;
        df.execute_stream()
            .await
            .map_err(|e| model_error(model, &e))
    }

    /// The diagnostic for an error a warehouse model's rows stopped with (a statement
    /// timeout, a value that cannot be read), pointing at what to fix; `None` for other
    /// models and errors.
    pub fn stream_error(
        &self,
        model: &ModelSpec,
        error: &datafusion::error::DataFusionError,
    ) -> Option<Diagnostic> {
        model.source.as_ref()?;
        self.sources.stream_error(model, error)
    }

    /// Plans the model's query; anything but one query is refused before it can change the
    /// session (a `CREATE TABLE` would otherwise run, and plan to no columns at all).
    async fn plan(&self, model: &ModelSpec) -> Result<DataFrame, Diagnostic> {
        self.check_is_query(model)?;
        let read_only = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        self.ctx
            .sql_with_options(&model.sql, read_only)
            .await
            .map_err(|e| model_error(model, &e))
    }

    /// A model's `sql:` must be one `SELECT` (or `WITH … SELECT`, `VALUES`) query.
    fn check_is_query(&self, model: &ModelSpec) -> Result<(), Diagnostic> {
        let state = self.ctx.state();
        let dialect = state.config_options().sql_parser.dialect;
        let first_line = model.sql.lines().next().unwrap_or_default().trim_end();
        let (found, underline) = match state.sql_to_statement(&model.sql, &dialect) {
            Ok(DfStatement::Statement(statement))
                if matches!(*statement, SqlStatement::Query(_)) =>
            {
                return Ok(());
            }
            Ok(_) => errors::statement_found(&model.sql),
            Err(error) if error.to_string().contains("single SQL statement") => (
                "more than one statement".to_string(),
                first_line.chars().count(),
            ),
            // A syntax error: planning reports it at its position.
            Err(_) => return Ok(()),
        };
        Err(errors::not_a_query(model, &found, underline))
    }
}

/// True for a file with nothing but white space in it (read only when it is small).
fn is_blank_file(path: &Path) -> bool {
    match fs_err::metadata(path) {
        Ok(metadata) if metadata.len() == 0 => true,
        Ok(metadata) if metadata.len() <= 64 => {
            fs_err::read(path).is_ok_and(|bytes| bytes.iter().all(u8::is_ascii_whitespace))
        }
        _ => false,
    }
}

fn extension_of(path: &Path) -> String {
    path.extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
