//! Evaluates models: one DataFusion `SessionContext` per run, with the project's file tables
//! (CSV, Parquet, NDJSON) registered under their names, and each model's SQL planned and run
//! against them.
//!
//! SQL problems become diagnostics that point into the model's YAML file: DataFusion reports a
//! line and column inside the SQL text, and [`sql_position_to_file`] shifts it by where the
//! `sql:` scalar starts. Memory is bounded by a fair spill pool (`memory_limit`), so large
//! sorts and aggregations spill to the state directory instead of exhausting the machine.

mod errors;

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{
    CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionConfig, SessionContext,
};
use engine_diag::Diagnostic;
use engine_spec::{FileFormat, ModelSpec, Project, TableSpec};

pub use errors::{model_error, sql_position_to_file};

/// Default memory bound for one run's DataFusion work (joins, sorts, aggregations).
pub const DEFAULT_MEMORY_LIMIT: usize = 1536 * 1024 * 1024;

/// A run's query engine with the project's tables registered.
pub struct ModelEngine {
    ctx: SessionContext,
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
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            memory_limit: DEFAULT_MEMORY_LIMIT,
            spill_dir: None,
            target_partitions: None,
        }
    }
}

impl ModelEngine {
    /// A session with no tables (the diff planner uses it for snapshot joins).
    pub fn empty(options: &EngineOptions) -> Result<ModelEngine, Diagnostic> {
        let mut runtime = RuntimeEnvBuilder::new().with_memory_limit(options.memory_limit, 1.0);
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
        })
    }

    /// A session with every table of the project registered; a table that cannot be read
    /// (missing file, unreadable header) is a diagnostic at its `path:`.
    pub async fn for_project(
        project: &Project,
        options: &EngineOptions,
    ) -> Result<ModelEngine, Vec<Diagnostic>> {
        let engine = ModelEngine::empty(options).map_err(|d| vec![d])?;
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

    async fn register_table(&self, table: &TableSpec) -> Result<(), Diagnostic> {
        let name = table.name.value.as_str();
        let path = table.path.to_string_lossy().to_string();
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
                format!("cannot read table `{name}`: {e}"),
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
        let df = self
            .ctx
            .sql(&model.sql)
            .await
            .map_err(|e| model_error(model, &e))?;
        Ok(Arc::clone(df.schema().inner()))
    }

    /// Runs the model and streams its rows.
    pub async fn execute(
        &self,
        model: &ModelSpec,
    ) -> Result<SendableRecordBatchStream, Diagnostic> {
        let df = self
            .ctx
            .sql(&model.sql)
            .await
            .map_err(|e| model_error(model, &e))?;
        df.execute_stream()
            .await
            .map_err(|e| model_error(model, &e))
    }
}

fn extension_of(path: &Path) -> String {
    path.extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
