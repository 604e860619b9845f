//! MySQL and MariaDB: `mysql_async` over rustls. Column types come from a prepared statement's
//! metadata (nothing runs); rows come from executing it (binary protocol) on a connection of
//! their own, read by a task that hands batches over a channel of two, so a slow consumer holds
//! back the reading instead of filling memory.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures_util::stream;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, DriverError, IoError, Opts, OptsBuilder, Value};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::batch::{BatchBuilder, schema_of};
use super::mysql_types::{Decoder, plan_columns};
use super::postgres::first_quoted;
use super::{TlsMode, WarehouseConfig, WarehouseError, WarehouseKind, query_body, tls};

const KIND: WarehouseKind = WarehouseKind::MySql;

/// Batches in flight between the reading task and the consumer.
const CHANNEL_BATCHES: usize = 2;

/// A MySQL/MariaDB session: one connection for describing and checking queries, and the
/// options to open one more per stream.
pub(super) struct MySqlSource {
    opts: Opts,
    control: Mutex<Conn>,
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
}

impl MySqlSource {
    pub(super) async fn connect(config: &WarehouseConfig) -> Result<MySqlSource, WarehouseError> {
        let url = tls::driver_url(config.url.expose());
        let opts = Opts::from_url(&url).map_err(|e| WarehouseError::InvalidUrl {
            reason: e.to_string(),
        })?;
        let context = Arc::new(Context::new(&opts, config));
        // Every session reads only, in UTC so TIMESTAMP values arrive normalised.
        let mut setup = vec![
            "SET time_zone = '+00:00'".to_string(),
            "SET SESSION TRANSACTION READ ONLY".to_string(),
        ];
        let builder = OptsBuilder::from_opts(opts)
            .setup(setup.clone())
            .ssl_opts(tls::mysql_ssl_opts(&config.tls));
        let (mut conn, builder) = match open(builder.clone(), &context).await {
            Ok(conn) => (conn, builder),
            Err(mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer))
                if config.tls == TlsMode::Prefer =>
            {
                let plain = builder.ssl_opts(None);
                let conn = open(plain.clone(), &context)
                    .await
                    .map_err(|e| context.classify(e, None))?;
                (conn, plain)
            }
            Err(error) => return Err(context.classify(error, None)),
        };
        if let Some(limit) = config.statement_timeout {
            let version: Option<String> = conn
                .query_first("SELECT VERSION()")
                .await
                .map_err(|e| context.classify(e, None))?;
            let statement = if version.unwrap_or_default().contains("MariaDB") {
                format!("SET SESSION max_statement_time = {}", limit.as_secs_f64())
            } else {
                format!(
                    "SET SESSION max_execution_time = {}",
                    limit.as_millis().max(1)
                )
            };
            conn.query_drop(statement.as_str())
                .await
                .map_err(|e| context.classify(e, None))?;
            setup.push(statement);
        }
        Ok(MySqlSource {
            opts: builder.setup(setup).into(),
            control: Mutex::new(conn),
            context,
        })
    }

    pub(super) fn target(&self) -> &str {
        &self.context.target
    }

    pub(super) async fn schema(&self, sql: &str) -> Result<SchemaRef, WarehouseError> {
        let mut conn = self.control.lock().await;
        let statement = conn
            .prep(query_body(sql))
            .await
            .map_err(|e| self.context.classify(e, Some(sql)))?;
        let (fields, _) = plan_columns(&statement.columns())?;
        Ok(schema_of(fields))
    }

    pub(super) async fn check(&self, sql: &str) -> Result<(), WarehouseError> {
        self.schema(sql).await?;
        let mut conn = self.control.lock().await;
        conn.query_drop(format!("EXPLAIN {}", query_body(sql)))
            .await
            .map_err(|e| self.context.classify(e, Some(sql)))
    }

    pub(super) async fn stream(
        &self,
        sql: &str,
        batch_rows: usize,
    ) -> Result<SendableRecordBatchStream, WarehouseError> {
        let (schema_tx, schema_rx) = oneshot::channel();
        let (batch_tx, batch_rx) = mpsc::channel(CHANNEL_BATCHES);
        let reader = Reader {
            context: Arc::clone(&self.context),
            sql: sql.to_string(),
            batch_rows,
            batch_tx,
        };
        tokio::spawn(reader.run(self.opts.clone(), schema_tx));
        let schema = schema_rx.await.map_err(|_| WarehouseError::Other {
            message: "internal error: this is a bug in engine: the reading task ended before the result's columns".to_string(),
        })??;
        let batches = stream::unfold(batch_rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

/// Connects within the connect timeout.
async fn open(opts: OptsBuilder, context: &Context) -> Result<Conn, mysql_async::Error> {
    tokio::time::timeout(context.connect_timeout, Conn::new(opts))
        .await
        .unwrap_or_else(|_| {
            Err(mysql_async::Error::Io(IoError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {:?}", context.connect_timeout),
            ))))
        })
}

/// `KILL QUERY` for the statement running on connection `id` (users may always stop their own).
async fn stop_query(opts: Opts, id: u32, context: &Context) {
    let opts = OptsBuilder::from_opts(opts).setup(Vec::<String>::new());
    if let Ok(mut conn) = open(opts, context).await {
        let _ = conn.query_drop(format!("KILL QUERY {id}")).await;
        let _ = conn.disconnect().await;
    }
}

/// The task that reads one result on its own connection.
struct Reader {
    context: Arc<Context>,
    sql: String,
    batch_rows: usize,
    batch_tx: mpsc::Sender<Result<RecordBatch, DataFusionError>>,
}

type SchemaSender = oneshot::Sender<Result<SchemaRef, WarehouseError>>;

/// How reading a result ended.
enum Outcome {
    /// The server sent the whole result (or an error in its place).
    Ended,
    /// Reading stopped while the server still sends rows: the consumer went away, or a value
    /// could not be decoded.
    Abandoned,
}

impl Reader {
    async fn run(self, opts: Opts, schema_tx: SchemaSender) {
        let mut conn = match open(OptsBuilder::from_opts(opts.clone()), &self.context).await {
            Ok(conn) => conn,
            Err(error) => {
                let _ = schema_tx.send(Err(self.context.classify(error, None)));
                return;
            }
        };
        if let Outcome::Abandoned = self.read(&mut conn, schema_tx).await {
            // The driver reads a pending result to its end before it sends anything else,
            // `COM_QUIT` included, so the query is stopped first from another connection.
            stop_query(opts, conn.id(), &self.context).await;
        }
        let _ = conn.disconnect().await;
    }

    async fn read(&self, conn: &mut Conn, schema_tx: SchemaSender) -> Outcome {
        let sql = self.sql.as_str();
        let mut result = match conn.exec_iter(query_body(sql), ()).await {
            Ok(result) => result,
            Err(error) => {
                let _ = schema_tx.send(Err(self.context.classify(error, Some(sql))));
                return Outcome::Ended;
            }
        };
        let columns = result.columns().unwrap_or_else(|| Arc::from(Vec::new()));
        let (fields, decoders) = match plan_columns(&columns) {
            Ok(plan) => plan,
            Err(error) => {
                let _ = schema_tx.send(Err(error));
                return Outcome::Abandoned;
            }
        };
        let schema = schema_of(fields);
        if schema_tx.send(Ok(Arc::clone(&schema))).is_err() {
            return Outcome::Abandoned;
        }
        let mut batch = BatchBuilder::new(schema, self.batch_rows);
        loop {
            let row = match result.next().await {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(error) => {
                    self.fail(self.context.classify(error, Some(sql))).await;
                    return Outcome::Ended;
                }
            };
            if let Err(error) = decode(row.unwrap_raw(), &decoders, &mut batch) {
                self.fail(error).await;
                return Outcome::Abandoned;
            }
            if batch.row_done() && !self.send(batch.flush()).await {
                return Outcome::Abandoned;
            }
        }
        self.send(batch.flush()).await;
        Outcome::Ended
    }

    /// Hands a batch to the consumer; false when it is gone or the batch failed.
    async fn send(&self, batch: Result<Option<RecordBatch>, WarehouseError>) -> bool {
        match batch {
            Ok(Some(batch)) => self.batch_tx.send(Ok(batch)).await.is_ok(),
            Ok(None) => true,
            Err(error) => {
                self.fail(error).await;
                false
            }
        }
    }

    async fn fail(&self, error: WarehouseError) {
        let _ = self.batch_tx.send(Err(error.into_datafusion())).await;
    }
}

fn decode(
    values: Vec<Option<Value>>,
    decoders: &[(String, Decoder)],
    batch: &mut BatchBuilder,
) -> Result<(), WarehouseError> {
    for (index, ((column, decoder), value)) in decoders.iter().zip(values).enumerate() {
        decoder
            .append(value.unwrap_or(Value::NULL), batch.column(index))
            .map_err(|reason| WarehouseError::Decode {
                column: column.clone(),
                reason,
            })?;
    }
    Ok(())
}

impl Context {
    fn new(opts: &Opts, config: &WarehouseConfig) -> Context {
        let address = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port());
        let database = opts.db_name().unwrap_or_default().to_string();
        Context {
            target: format!("{address}/{database}"),
            address,
            user: opts.user().unwrap_or_default().to_string(),
            database,
            connect_timeout: config.connect_timeout,
            statement_timeout: config.statement_timeout,
        }
    }

    /// Sorts a driver error into what the user has to fix; `sql` is the model's SQL, to place
    /// syntax errors.
    fn classify(&self, error: mysql_async::Error, sql: Option<&str>) -> WarehouseError {
        match error {
            mysql_async::Error::Server(server) => {
                let message = server.message;
                match server.code {
                    // ER_ACCESS_DENIED_ERROR, ER_ACCESS_DENIED_NO_PASSWORD_ERROR,
                    // ER_NOT_SUPPORTED_AUTH_MODE
                    1045 | 1698 | 1251 => WarehouseError::Auth {
                        kind: KIND,
                        target: self.target.clone(),
                        user: self.user.clone(),
                        message,
                    },
                    // ER_BAD_DB_ERROR
                    1049 => WarehouseError::UnknownDatabase {
                        kind: KIND,
                        target: self.address.clone(),
                        database: first_quoted(&message, '\'')
                            .unwrap_or_else(|| self.database.clone()),
                    },
                    // ER_NO_SUCH_TABLE
                    1146 => WarehouseError::MissingTable {
                        table: first_quoted(&message, '\'').unwrap_or_else(|| message.clone()),
                        message,
                    },
                    // ER_PARSE_ERROR
                    1064 => WarehouseError::Syntax {
                        position: sql.and_then(|sql| syntax_position(sql, &message)),
                        message,
                    },
                    // ER_QUERY_TIMEOUT (MySQL 5.7 and 8), ER_STATEMENT_TIMEOUT (MariaDB)
                    1907 | 3024 | 1969 => WarehouseError::Timeout {
                        limit: self.statement_timeout,
                    },
                    // ER_DBACCESS_DENIED_ERROR, ER_TABLEACCESS_DENIED_ERROR,
                    // ER_COLUMNACCESS_DENIED_ERROR, ER_SPECIFIC_ACCESS_DENIED_ERROR,
                    // ER_PROCACCESS_DENIED_ERROR
                    1044 | 1142 | 1143 | 1227 | 1370 => {
                        WarehouseError::PermissionDenied { message }
                    }
                    // ER_CON_COUNT_ERROR, ER_SERVER_SHUTDOWN
                    1040 | 1053 => WarehouseError::Unreachable {
                        kind: KIND,
                        target: self.target.clone(),
                        reason: message,
                    },
                    _ => WarehouseError::Query {
                        message,
                        position: None,
                    },
                }
            }
            mysql_async::Error::Io(IoError::Tls(error)) => WarehouseError::Tls {
                kind: KIND,
                target: self.target.clone(),
                reason: error.to_string(),
            },
            mysql_async::Error::Io(IoError::Io(error)) => WarehouseError::Unreachable {
                kind: KIND,
                target: self.address.clone(),
                reason: error.to_string(),
            },
            mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer) => {
                WarehouseError::Tls {
                    kind: KIND,
                    target: self.target.clone(),
                    reason: "the server does not offer TLS".to_string(),
                }
            }
            mysql_async::Error::Driver(error) => WarehouseError::Other {
                message: format!("{KIND} at `{}`: {error}", self.target),
            },
            mysql_async::Error::Url(error) => WarehouseError::InvalidUrl {
                reason: error.to_string(),
            },
            mysql_async::Error::Other(error) => WarehouseError::Other {
                message: format!("{KIND} at `{}`: {error}", self.target),
            },
        }
    }
}

/// Where a MySQL syntax error is: the server quotes the SQL from that point (`… near 'FRM t'
/// at line 2`), so the first occurrence of that text from the start of that line is it.
pub(super) fn syntax_position(sql: &str, message: &str) -> Option<usize> {
    const NEAR: &str = "near '";
    const AT_LINE: &str = "' at line ";
    let start = message.find(NEAR)? + NEAR.len();
    let end = message.rfind(AT_LINE)?;
    let snippet = message.get(start..end)?;
    let line: usize = message[end + AT_LINE.len()..].trim().parse().ok()?;
    let body = query_body(sql);
    if snippet.is_empty() {
        return Some(body.len());
    }
    let line_start: usize = body
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    body.get(line_start..)?
        .find(snippet)
        .map(|offset| line_start + offset)
}
