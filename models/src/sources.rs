//! Models that run in a warehouse (`source:` on the model): the project's sources connected
//! once per run, on first use, and every warehouse error turned into a diagnostic that points
//! at what to fix — the source's `url:` in `engine.yaml` for connection problems, the model's
//! SQL (at the position the server gives) for query problems.
//!
//! ```text
//!  ModelEngine::schema / execute(model with `source: warehouse`)
//!        │ single query? (the warehouse's dialect; DDL and DML are refused before sending)
//!        ▼
//!  Sources::warehouse ── first use: connect (url from ${env:…}, tls, statement_timeout) ── cached
//!        │
//!        ├─ schema(sql): prepared, nothing runs
//!        └─ stream(sql): rows arrive as Arrow batches, one at a time
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
use datafusion::sql::sqlparser::parser::Parser;
use engine_diag::{Diagnostic, SourceSpan};
use engine_spec::{ModelSpec, Project, SourceKind, SourceSpec, SourceTls};

use crate::errors::{not_a_query, statement_found};
use crate::sql_position_to_file;
use crate::warehouse::{
    DEFAULT_BATCH_ROWS, TlsMode, Warehouse, WarehouseConfig, WarehouseError, WarehouseKind,
    line_column,
};

/// The project's warehouse sources, each connected on first use.
#[derive(Default)]
pub(crate) struct Sources {
    specs: Vec<SourceSpec>,
    connected: tokio::sync::Mutex<HashMap<String, Arc<Warehouse>>>,
}

impl Sources {
    /// The sources of `project`, none connected yet.
    pub(crate) fn new(project: &Project) -> Sources {
        Sources {
            specs: project.sources.clone(),
            connected: tokio::sync::Mutex::default(),
        }
    }

    /// The result schema of a warehouse model, from the server's description of the prepared
    /// query (nothing runs).
    pub(crate) async fn schema(&self, model: &ModelSpec) -> Result<SchemaRef, Diagnostic> {
        let (spec, warehouse) = self.warehouse(model).await?;
        warehouse
            .schema(&model.sql)
            .await
            .map_err(|e| diagnostic(model, spec, &e))
    }

    /// Runs a warehouse model and streams its rows.
    pub(crate) async fn execute(
        &self,
        model: &ModelSpec,
    ) -> Result<SendableRecordBatchStream, Diagnostic> {
        let (spec, warehouse) = self.warehouse(model).await?;
        warehouse
            .stream(&model.sql, DEFAULT_BATCH_ROWS)
            .await
            .map_err(|e| diagnostic(model, spec, &e))
    }

    /// The diagnostic for a warehouse error a model's stream ended with.
    pub(crate) fn stream_error(
        &self,
        model: &ModelSpec,
        error: &datafusion::error::DataFusionError,
    ) -> Option<Diagnostic> {
        let warehouse_error = WarehouseError::from_datafusion(error)?;
        let name = model.source.as_ref()?;
        let spec = self.specs.iter().find(|s| s.name.value == name.value)?;
        Some(diagnostic(model, spec, warehouse_error))
    }

    /// The model's source, connected (once per run), after checking that its SQL is a
    /// single query in the warehouse's dialect.
    async fn warehouse(
        &self,
        model: &ModelSpec,
    ) -> Result<(&SourceSpec, Arc<Warehouse>), Diagnostic> {
        let Some(name) = &model.source else {
            return Err(Diagnostic::error(
                "model::internal",
                format!(
                    "model `{}` has no source; this is a bug in engine",
                    model.name.value
                ),
            ));
        };
        let Some(spec) = self.specs.iter().find(|s| s.name.value == name.value) else {
            return Err(Diagnostic::error(
                "spec::unknown_source",
                format!("unknown source `{}`", name.value),
            )
            .at(name.span.clone())
            .hint(format!(
                "add `{}:` under `sources:` in `engine.yaml`",
                name.value
            )));
        };
        check_is_query(model, spec.kind)?;
        let mut connected = self.connected.lock().await;
        if let Some(warehouse) = connected.get(&spec.name.value) {
            return Ok((spec, Arc::clone(warehouse)));
        }
        let config = config(spec)?;
        let warehouse = Warehouse::connect(&config)
            .await
            .map_err(|e| diagnostic(model, spec, &e))?;
        let warehouse = Arc::new(warehouse);
        connected.insert(spec.name.value.clone(), Arc::clone(&warehouse));
        Ok((spec, warehouse))
    }
}

/// The connection settings of a source, its URL read from the environment.
fn config(spec: &SourceSpec) -> Result<WarehouseConfig, Diagnostic> {
    let url = spec.url.resolve_secret()?;
    let mut config = WarehouseConfig::from_url(url.expose()).map_err(|e| {
        Diagnostic::error(
            "source::invalid_url",
            format!("source `{}`: {e}", spec.name.value),
        )
        .at(spec.url.span.clone())
        .hint(e.hint().unwrap_or("check the source's `url`"))
    })?;
    let expected = match spec.kind {
        SourceKind::Postgres => WarehouseKind::Postgres,
        SourceKind::Mysql => WarehouseKind::MySql,
    };
    if config.kind != expected {
        return Err(Diagnostic::error(
            "source::invalid_url",
            format!(
                "source `{}` is `type: {}`, and its URL is a {} URL",
                spec.name.value,
                type_name(spec.kind),
                config.kind
            ),
        )
        .at(spec.url.span.clone())
        .hint("make the URL's scheme match `type:` (`postgres://` or `mysql://`)"));
    }
    apply_tls(&mut config, spec.tls, spec.ca_file.as_ref());
    config.statement_timeout = spec.statement_timeout;
    Ok(config)
}

/// Applies `tls:` and `ca_file:` of a spec (a source's, or the PostgreSQL state's) over what
/// the URL says: `tls:` wins; a `ca_file:` fills in a `verify-full` URL's missing CA.
pub fn apply_tls(config: &mut WarehouseConfig, tls: Option<SourceTls>, ca_file: Option<&PathBuf>) {
    if let Some(tls) = tls {
        config.tls = match tls {
            SourceTls::Disable => TlsMode::Disable,
            SourceTls::Prefer => TlsMode::Prefer,
            SourceTls::Require => TlsMode::Require,
            SourceTls::VerifyFull => TlsMode::VerifyFull {
                ca_file: ca_file.cloned(),
            },
        };
    } else if let (Some(ca_file), TlsMode::VerifyFull { ca_file: from_url }) =
        (ca_file, &mut config.tls)
        && from_url.is_none()
    {
        *from_url = Some(ca_file.clone());
    }
}

fn type_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Postgres => "postgres",
        SourceKind::Mysql => "mysql",
    }
}

/// A warehouse model's `sql:` must be one query: what the warehouse's dialect parses as
/// anything else (DDL, DML, several statements) is refused before it is sent. SQL the parser
/// does not know is left to the warehouse, which knows its own dialect best (and whose session
/// is read-only).
fn check_is_query(model: &ModelSpec, kind: SourceKind) -> Result<(), Diagnostic> {
    let dialect: &dyn Dialect = match kind {
        SourceKind::Postgres => &PostgreSqlDialect {},
        SourceKind::Mysql => &MySqlDialect {},
    };
    let Ok(statements) = Parser::parse_sql(dialect, &model.sql) else {
        return Ok(());
    };
    let first_line = model.sql.lines().next().unwrap_or_default().trim_end();
    match statements.as_slice() {
        [Statement::Query(_)] => Ok(()),
        [] => Ok(()),
        [_] => {
            let (found, underline) = statement_found(&model.sql);
            Err(not_a_query(model, &found, underline))
        }
        _ => Err(not_a_query(
            model,
            "more than one statement",
            first_line.chars().count(),
        )),
    }
}

/// A warehouse error as a diagnostic: connection problems point at the source's `url:`,
/// query problems at the model's SQL (at the server's position when it gives one).
pub(crate) fn diagnostic(
    model: &ModelSpec,
    spec: &SourceSpec,
    error: &WarehouseError,
) -> Diagnostic {
    let source = &spec.name.value;
    let at_url = |code: &str| {
        Diagnostic::error(code, format!("source `{source}`: {error}"))
            .at(spec.url.span.clone())
            .note(format!(
                "model `{}` runs in source `{source}`",
                model.name.value
            ))
    };
    let at_sql = |code: &str, span: SourceSpan| {
        Diagnostic::error(code, format!("model `{}`: {error}", model.name.value))
            .at(span)
            .note(format!("the query ran in source `{source}`"))
    };
    let sql_span = match error.position() {
        Some(offset) => {
            let (line, column) = line_column(&model.sql, offset);
            let (file_line, file_column) = sql_position_to_file(model, line, column);
            SourceSpan {
                file: model.sql_span.file.clone(),
                line: file_line,
                column: file_column,
                length: 1,
            }
        }
        None => model.sql_span.clone(),
    };
    let diagnostic = match error {
        WarehouseError::InvalidUrl { .. } => at_url("source::invalid_url"),
        WarehouseError::Unreachable { .. } => at_url("source::unreachable"),
        WarehouseError::Tls { .. } => at_url("source::tls"),
        WarehouseError::Auth { .. } => at_url("source::auth"),
        WarehouseError::UnknownDatabase { .. } => at_url("source::unknown_database"),
        WarehouseError::MissingTable { .. } => at_sql("model::missing_table", sql_span),
        WarehouseError::Syntax { .. } => at_sql("model::sql_syntax", sql_span),
        WarehouseError::PermissionDenied { .. } => at_sql("model::permission_denied", sql_span),
        WarehouseError::Timeout { .. } => at_sql("model::timeout", sql_span).hint(format!(
            "raise `statement_timeout` of source `{source}` in `engine.yaml`, or make the query cheaper"
        )),
        WarehouseError::Query { .. } => at_sql("model::query", sql_span),
        WarehouseError::UnsupportedType { .. } | WarehouseError::Decode { .. } => {
            at_sql("model::column_type", sql_span)
        }
        WarehouseError::Other { .. } => at_url("source::error"),
    };
    match (error, error.hint()) {
        (WarehouseError::Timeout { .. }, _) => diagnostic,
        (_, Some(hint)) => diagnostic.hint(hint),
        (WarehouseError::Syntax { .. } | WarehouseError::Query { .. }, None) => diagnostic
            .hint("fix the model's SQL at the marked place; it runs in the warehouse's own dialect"),
        (_, None) => diagnostic.hint(
            "check that the warehouse is up and the source's `url` is right; `RUST_LOG=debug` shows the driver's detail",
        ),
    }
}

/// True for diagnostics that say a source could not be reached from here at all (no route,
/// no TLS, its URL's variable not set on this machine): `engine validate` then says the
/// model was not checked, instead of failing.
pub fn is_unreachable(diagnostic: &Diagnostic) -> bool {
    matches!(
        diagnostic.code.as_str(),
        "source::unreachable" | "source::tls" | "spec::missing_env"
    )
}
