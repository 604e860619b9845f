//! PostgreSQL: `tokio-postgres` over rustls. Column types come from `prepare` (nothing runs);
//! rows come from `COPY (<sql>) TO STDOUT (FORMAT binary)` on a connection of the stream's own,
//! decoded as the stream is polled. A stream dropped before its end closes that connection, so
//! the server stops the query instead of sending the rest to nobody. Server errors are sorted by
//! SQLSTATE, and positions are shifted back into the model's SQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use rustls::ClientConfig;
use tokio::task::AbortHandle;
use tokio_postgres::binary_copy::{BinaryCopyOutRow, BinaryCopyOutStream};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::ErrorPosition;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config, NoTls, Socket, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::batch::{BatchBuilder, schema_of};
use super::pg_types::{Decoder, PgColumn, Raw, plan_column};
use super::{
    TlsMode, WarehouseConfig, WarehouseError, WarehouseKind, char_offset_to_byte, query_body, tls,
};

const KIND: WarehouseKind = WarehouseKind::Postgres;

/// A PostgreSQL session for describing and checking queries, and what it takes to open one
/// more per stream. Connections run on spawned tasks.
pub(super) struct PgSource {
    pg: Config,
    /// `None` for plain TCP.
    tls: Option<ClientConfig>,
    /// Run on every new connection: read-only, the statement timeout.
    setup: String,
    client: Client,
    context: Arc<Context>,
}

/// What error messages need to know about the session.
struct Context {
    /// `host:port/database`.
    target: String,
    /// `host:port`.
    address: String,
    user: String,
    database: String,
    connect_timeout: Duration,
    statement_timeout: Option<Duration>,
    /// Why the connection task ended, if it failed; reported when a later call finds the
    /// connection closed.
    connection_error: Mutex<Option<String>>,
}

/// A read-write PostgreSQL connection for the engine's own use (the shared state backend), with
/// the same URL reading, TLS and error sorting as a warehouse session, but neither read-only nor
/// bounded by a statement timeout. `application_name` is what `pg_stat_activity` shows for it.
/// The connection task is spawned on the caller's runtime and ends when the client is dropped.
pub async fn connect_read_write(
    config: &WarehouseConfig,
    application_name: &str,
) -> Result<Client, WarehouseError> {
    let (mut pg, tls, context) = driver_config(config)?;
    pg.application_name(application_name);
    let (client, _) = session(&pg, tls.as_ref(), "", &context).await?;
    Ok(client)
}

/// The driver's config, the TLS config (`None` for plain TCP) and the error context of a URL.
fn driver_config(
    config: &WarehouseConfig,
) -> Result<(Config, Option<ClientConfig>, Arc<Context>), WarehouseError> {
    let url = tls::driver_url(config.url.expose());
    let mut pg: Config =
        url.parse()
            .map_err(|e: tokio_postgres::Error| WarehouseError::InvalidUrl {
                reason: error_chain(&e),
            })?;
    pg.connect_timeout(config.connect_timeout);
    pg.ssl_mode(match config.tls {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        TlsMode::Require | TlsMode::VerifyFull { .. } => SslMode::Require,
    });
    let context = Arc::new(Context::new(&pg, config));
    let tls = match &config.tls {
        TlsMode::Disable => None,
        mode => Some(
            tls::pg_client_config(mode).map_err(|reason| WarehouseError::Tls {
                kind: KIND,
                target: context.target.clone(),
                reason,
            })?,
        ),
    };
    Ok((pg, tls, context))
}

impl PgSource {
    pub(super) async fn connect(config: &WarehouseConfig) -> Result<PgSource, WarehouseError> {
        let (pg, tls, context) = driver_config(config)?;
        let mut setup = String::from("SET default_transaction_read_only = on;");
        if let Some(limit) = config.statement_timeout {
            setup.push_str(&format!(
                " SET statement_timeout = {};",
                limit.as_millis().max(1)
            ));
        }
        let (client, _) = session(&pg, tls.as_ref(), &setup, &context).await?;
        Ok(PgSource {
            pg,
            tls,
            setup,
            client,
            context,
        })
    }

    pub(super) fn target(&self) -> &str {
        &self.context.target
    }

    pub(super) async fn schema(&self, sql: &str) -> Result<SchemaRef, WarehouseError> {
        let statement = self.prepare(sql).await?;
        Ok(schema_of(plan(&statement).into_iter().map(|c| c.field)))
    }

    pub(super) async fn check(&self, sql: &str) -> Result<(), WarehouseError> {
        self.schema(sql).await?;
        let explain = "EXPLAIN ";
        self.client
            .query(&format!("{explain}{}", query_body(sql)), &[])
            .await
            .map_err(|e| self.context.classify(&e, Some((sql, explain.len()))))?;
        Ok(())
    }

    pub(super) async fn stream(
        &self,
        sql: &str,
        batch_rows: usize,
    ) -> Result<SendableRecordBatchStream, WarehouseError> {
        let statement = self.prepare(sql).await?;
        let columns = plan(&statement);
        let wire_types: Vec<Type> = columns
            .iter()
            .zip(statement.columns())
            .map(|(column, declared)| column.wire_type(declared.type_()))
            .collect();
        let schema = schema_of(columns.iter().map(|c| c.field.clone()));
        let (copy, prefix_chars) = copy_statement(query_body(sql), &columns);
        let (client, connection) =
            session(&self.pg, self.tls.as_ref(), &self.setup, &self.context).await?;
        let out = client
            .copy_out(copy.as_str())
            .await
            .map_err(|e| self.context.classify(&e, Some((sql, prefix_chars))))?;
        let state = CopyState {
            rows: BinaryCopyOutStream::new(out, &wire_types).boxed(),
            connection: StreamConnection {
                client: Some(client),
                task: connection,
            },
            decoders: columns
                .into_iter()
                .map(|c| (c.field.name().clone(), c.decoder))
                .collect(),
            batch: BatchBuilder::new(Arc::clone(&schema), batch_rows),
            context: Arc::clone(&self.context),
            sql: sql.to_string(),
            prefix_chars,
            done: false,
        };
        let batches = stream::try_unfold(state, next_batch);
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }

    async fn prepare(&self, sql: &str) -> Result<Statement, WarehouseError> {
        self.client
            .prepare(query_body(sql))
            .await
            .map_err(|e| self.context.classify(&e, Some((sql, 0))))
    }
}

/// A new connection, set up for models: within the connect timeout, TLS as configured, the
/// connection task spawned (its handle returned, to end it early).
async fn session(
    pg: &Config,
    tls: Option<&ClientConfig>,
    setup: &str,
    context: &Arc<Context>,
) -> Result<(Client, AbortHandle), WarehouseError> {
    let (client, task) = match tls {
        None => open(pg, NoTls, context).await?,
        Some(config) => open(pg, MakeRustlsConnect::new(config.clone()), context).await?,
    };
    if !setup.is_empty() {
        client
            .batch_execute(setup)
            .await
            .map_err(|e| context.classify(&e, None))?;
    }
    Ok((client, task))
}

async fn open<T>(
    pg: &Config,
    tls: T,
    context: &Arc<Context>,
) -> Result<(Client, AbortHandle), WarehouseError>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, connection) = tokio::time::timeout(context.connect_timeout, pg.connect(tls))
        .await
        .map_err(|_| WarehouseError::Unreachable {
            kind: KIND,
            target: context.address.clone(),
            reason: format!("no answer within {:?}", context.connect_timeout),
        })?
        .map_err(|e| context.classify(&e, None))?;
    let watcher = Arc::clone(context);
    let task = tokio::spawn(async move {
        if let Err(error) = connection.await {
            let mut slot = watcher
                .connection_error
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            *slot = Some(error_chain(&error));
        }
    });
    Ok((client, task.abort_handle()))
}

fn plan(statement: &Statement) -> Vec<PgColumn> {
    statement
        .columns()
        .iter()
        .map(|c| plan_column(c.name(), c.type_(), c.type_modifier()))
        .collect()
}

/// The `COPY` for the model's query, and how many characters precede the query in it. Columns
/// without a binary decoder are cast to text in a wrapping `SELECT` whose column aliases avoid
/// any clash between the query's own column names.
fn copy_statement(body: &str, columns: &[PgColumn]) -> (String, usize) {
    // The newline before `)` keeps a trailing `-- comment` in the model from swallowing it.
    if columns.iter().all(|c| c.cast.is_none()) {
        let prefix = "COPY (\n";
        return (
            format!("{prefix}{body}\n) TO STDOUT (FORMAT binary)"),
            prefix.chars().count(),
        );
    }
    let select: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| match c.cast {
            Some(cast) => format!("q.c{}::{cast}", i + 1),
            None => format!("q.c{}", i + 1),
        })
        .collect();
    let aliases: Vec<String> = (1..=columns.len()).map(|i| format!("c{i}")).collect();
    let prefix = format!("COPY (SELECT {} FROM (\n", select.join(", "));
    (
        format!(
            "{prefix}{body}\n) AS q({})) TO STDOUT (FORMAT binary)",
            aliases.join(", ")
        ),
        prefix.chars().count(),
    )
}

/// The connection of one stream: closed politely when the result has been read, cut when the
/// stream is dropped before (the server then stops the query at its next write).
struct StreamConnection {
    client: Option<Client>,
    task: AbortHandle,
}

impl StreamConnection {
    /// The result has been read (or failed): let the connection end with a goodbye.
    fn finish(&mut self) {
        self.client = None;
    }
}

impl Drop for StreamConnection {
    fn drop(&mut self) {
        if self.client.is_some() {
            self.task.abort();
        }
    }
}

/// The state of one `COPY` stream between batches.
struct CopyState {
    rows: BoxStream<'static, Result<BinaryCopyOutRow, tokio_postgres::Error>>,
    connection: StreamConnection,
    decoders: Vec<(String, Decoder)>,
    batch: BatchBuilder,
    context: Arc<Context>,
    sql: String,
    prefix_chars: usize,
    done: bool,
}

impl CopyState {
    fn decode(&mut self, row: &BinaryCopyOutRow) -> Result<(), WarehouseError> {
        for (index, (column, decoder)) in self.decoders.iter().enumerate() {
            let decode_error = |reason: String| WarehouseError::Decode {
                column: column.clone(),
                reason,
            };
            let Raw(raw) = row
                .try_get::<Raw>(index)
                .map_err(|e| decode_error(error_chain(&e)))?;
            decoder
                .append(raw, self.batch.column(index))
                .map_err(decode_error)?;
        }
        Ok(())
    }
}

async fn next_batch(
    mut state: CopyState,
) -> Result<Option<(RecordBatch, CopyState)>, DataFusionError> {
    if state.done {
        return Ok(None);
    }
    while let Some(row) = state.rows.next().await {
        let row = match row {
            Ok(row) => row,
            Err(error) => {
                state.connection.finish();
                return Err(state
                    .context
                    .classify(&error, Some((&state.sql, state.prefix_chars)))
                    .into_datafusion());
            }
        };
        state
            .decode(&row)
            .map_err(WarehouseError::into_datafusion)?;
        if state.batch.row_done() {
            return match state
                .batch
                .flush()
                .map_err(WarehouseError::into_datafusion)?
            {
                Some(batch) => Ok(Some((batch, state))),
                None => Ok(None),
            };
        }
    }
    state.done = true;
    state.connection.finish();
    match state
        .batch
        .flush()
        .map_err(WarehouseError::into_datafusion)?
    {
        Some(batch) => Ok(Some((batch, state))),
        None => Ok(None),
    }
}

impl Context {
    fn new(pg: &Config, config: &WarehouseConfig) -> Context {
        let ports = pg.get_ports();
        let address = pg
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let host = match host {
                    Host::Tcp(name) => name.clone(),
                    #[cfg(unix)]
                    Host::Unix(path) => path.display().to_string(),
                };
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                format!("{host}:{port}")
            })
            .collect::<Vec<_>>()
            .join(",");
        let user = pg.get_user().unwrap_or_default().to_string();
        let database = pg.get_dbname().unwrap_or(&user).to_string();
        Context {
            target: format!("{address}/{database}"),
            address,
            user,
            database,
            connect_timeout: config.connect_timeout,
            statement_timeout: config.statement_timeout,
            connection_error: Mutex::new(None),
        }
    }

    /// Sorts a driver error into what the user has to fix. `sql` is the model's SQL and the
    /// number of characters the statement sent put before it, to place positions.
    fn classify(
        &self,
        error: &tokio_postgres::Error,
        sql: Option<(&str, usize)>,
    ) -> WarehouseError {
        if let Some(db) = error.as_db_error() {
            // PostgreSQL's own hint ("Perhaps you meant to reference the column …") is kept.
            let message = match db.hint() {
                Some(hint) => format!("{}; {hint}", db.message()),
                None => db.message().to_string(),
            };
            let position = match (db.position(), sql) {
                (Some(ErrorPosition::Original(p)), Some((sql, prefix))) => {
                    char_offset_to_byte(sql, (*p as usize).saturating_sub(1), prefix)
                }
                _ => None,
            };
            return match db.code().code() {
                "28P01" | "28000" => WarehouseError::Auth {
                    kind: KIND,
                    target: self.target.clone(),
                    user: self.user.clone(),
                    message,
                },
                "3D000" => WarehouseError::UnknownDatabase {
                    kind: KIND,
                    target: self.address.clone(),
                    database: self.database.clone(),
                },
                "42P01" => WarehouseError::MissingTable {
                    table: first_quoted(&message, '"').unwrap_or_else(|| message.clone()),
                    message,
                },
                "42601" => WarehouseError::Syntax { message, position },
                "57014" if message.contains("statement timeout") => WarehouseError::Timeout {
                    limit: self.statement_timeout,
                },
                "42501" => WarehouseError::PermissionDenied { message },
                code if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03") => {
                    WarehouseError::Unreachable {
                        kind: KIND,
                        target: self.target.clone(),
                        reason: message,
                    }
                }
                _ => WarehouseError::Query { message, position },
            };
        }
        if error.is_closed() {
            let reason = self
                .connection_error
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone()
                .unwrap_or_else(|| "the server closed the connection".to_string());
            return WarehouseError::Unreachable {
                kind: KIND,
                target: self.target.clone(),
                reason,
            };
        }
        // tokio-postgres keeps its error kinds private; its messages for them are stable.
        let head = error.to_string();
        let cause = source_chain(error).unwrap_or_else(|| head.clone());
        match head.as_str() {
            "error performing TLS handshake" => WarehouseError::Tls {
                kind: KIND,
                target: self.target.clone(),
                reason: cause,
            },
            "error connecting to server" | "error communicating with the server" => {
                WarehouseError::Unreachable {
                    kind: KIND,
                    target: self.address.clone(),
                    reason: cause,
                }
            }
            "timeout waiting for server" => WarehouseError::Unreachable {
                kind: KIND,
                target: self.address.clone(),
                reason: format!("no answer within {:?}", self.connect_timeout),
            },
            _ => WarehouseError::Other {
                message: format!("{KIND} at `{}`: {}", self.target, error_chain(error)),
            },
        }
    }
}

/// The text between the first pair of `quote` characters in `message`.
pub(super) fn first_quoted(message: &str, quote: char) -> Option<String> {
    let start = message.find(quote)? + quote.len_utf8();
    let end = message[start..].find(quote)? + start;
    Some(message[start..end].to_string())
}

/// The error's causes joined with `: ` (the driver's own message says little on its own).
fn source_chain(error: &dyn std::error::Error) -> Option<String> {
    let mut parts = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    (!parts.is_empty()).then(|| parts.join(": "))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    match source_chain(error) {
        Some(causes) => format!("{error}: {causes}"),
        None => error.to_string(),
    }
}
