//! Warehouse sources: a model's SQL runs inside PostgreSQL or MySQL/MariaDB, verbatim, and its
//! rows come back as Arrow record batches, so warehouse models feed the same diff and mapping
//! code as file models.
//!
//! ```text
//!  WarehouseConfig ──connect──▶ Warehouse ─┬─ schema(sql) ─ prepare; nothing runs ──────▶ SchemaRef
//!  (url, tls, timeouts)         (a session) ├─ check(sql)  ─ prepare + EXPLAIN ─────────▶ () or WarehouseError
//!                                           └─ stream(sql) ─┬─ PostgreSQL: COPY (sql) TO STDOUT (FORMAT binary)
//!                                                           └─ MySQL: prepared statement, binary rows
//!                                                                │ decoded row by row into Arrow builders
//!                                                                ▼ one RecordBatch per `batch_rows` rows
//!                                                           SendableRecordBatchStream
//! ```
//!
//! Each stream reads on a connection of its own, opened with the session's settings, so the
//! session stays free for `schema` and `check`, and a stream dropped before its end can stop its
//! query (PostgreSQL: the connection is cut; MySQL: `KILL QUERY`) instead of having the rest of
//! the result read and thrown away. Memory stays at about one batch: PostgreSQL rows arrive
//! through binary `COPY` and are decoded as the stream is polled; MySQL rows are decoded by a
//! task that hands batches over a channel of two.
//!
//! Every session is read-only (`default_transaction_read_only` / `SET SESSION TRANSACTION READ
//! ONLY`), so a model cannot write, and MySQL sessions run in UTC (`time_zone = '+00:00'`) so
//! `TIMESTAMP` values arrive normalised. The statement timeout covers the whole transfer,
//! including the time the consumer takes to read the result.
//!
//! # Types
//!
//! Every column is nullable. Values are converted exactly or refused with an error naming the
//! column; nothing is rounded.
//!
//! | PostgreSQL | MySQL / MariaDB | Arrow |
//! | --- | --- | --- |
//! | `bool` | — | `Boolean` |
//! | — | `TINYINT`, including `TINYINT(1)`: MySQL's `BOOLEAN` is that type, so a flag cannot be told from a small number and stays one | `Int8` |
//! | `int2` | `SMALLINT`, `YEAR` | `Int16` |
//! | `int4` | `MEDIUMINT` (signed or not), `INT` | `Int32` |
//! | `int8` | `BIGINT` | `Int64` |
//! | `oid` | `INT UNSIGNED` | `UInt32` |
//! | — | `TINYINT` / `SMALLINT` / `BIGINT UNSIGNED` | `UInt8` / `UInt16` / `UInt64` |
//! | `float4` / `float8` | `FLOAT` / `DOUBLE` | `Float32` / `Float64` |
//! | `numeric(p,s)`, p ≤ 38 | `DECIMAL(p,s)`, p ≤ 38 | `Decimal128(p,s)` |
//! | `numeric` without a precision, or p > 38 | `DECIMAL(p,s)`, p > 38 | `Utf8`, the exact decimal text |
//! | `text`, `varchar`, `char`, `name`, enums | `CHAR`, `VARCHAR`, `TEXT`, `ENUM`, `SET` | `Utf8` |
//! | `json` / `jsonb` | `JSON` | `Utf8` (the JSON text) |
//! | `uuid` | (`UUID` on MariaDB is text) | `Utf8`, canonical lower-case form |
//! | `bytea` | `BINARY`, `VARBINARY`, `BLOB`, `GEOMETRY` | `Binary` |
//! | — | `BIT(n)` | `UInt64` |
//! | `date` | `DATE` | `Date32` |
//! | `timestamp` | `DATETIME` | `Timestamp(Microsecond, None)` |
//! | `timestamptz` | `TIMESTAMP` | `Timestamp(Microsecond, "UTC")`, normalised to UTC |
//! | `time` | — | `Time64(Microsecond)` |
//! | — | `TIME` (a duration: −838:59:59 to 838:59:59) | `Utf8`, as MySQL prints it |
//! | `T[]` (one dimension) | — | `List(T)`; elements of types without a mapping become `List(Utf8)` |
//! | `interval`, `timetz`, `inet`, `money`, ranges, composites, … | — | `Utf8`, PostgreSQL's text form |
//! | — | `NULL` (the type of a bare `NULL`) | `Utf8`, always null |
//!
//! PostgreSQL columns without a binary mapping are cast to `text` (`text[]` for arrays) around the
//! model's query, so any type PostgreSQL can print arrives as its text. Multi-dimensional array
//! values, `±infinity` dates and timestamps, and `NaN` in a `numeric(p,s)` column are refused with
//! an error that names the column. MySQL's zero dates (`0000-00-00`, and dates with a zero month or
//! day) arrive as NULL, as most MySQL clients read them.

mod batch;
mod mysql;
mod mysql_types;
mod pg_types;
mod postgres;
mod tls;

pub use postgres::connect_read_write;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;

/// Rows per record batch when the caller has no reason to choose another size; Arrow kernels
/// work well at this size, and it bounds the memory one batch holds.
pub const DEFAULT_BATCH_ROWS: usize = 8192;

/// How long `connect` waits for the server by default, so an unroutable host fails in seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which database engine a warehouse URL points at; it picks the driver and the SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarehouseKind {
    /// PostgreSQL, read through binary `COPY`.
    Postgres,
    /// MySQL or MariaDB, read through prepared statements.
    MySql,
}

impl WarehouseKind {
    /// The kind a URL's scheme names (`postgres://`, `postgresql://`, `mysql://`, `mariadb://`),
    /// so a spec needs only the URL.
    pub fn from_url(url: &str) -> Option<WarehouseKind> {
        let scheme = url.split_once("://")?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "postgres" | "postgresql" => Some(WarehouseKind::Postgres),
            "mysql" | "mariadb" => Some(WarehouseKind::MySql),
            _ => None,
        }
    }
}

impl fmt::Display for WarehouseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WarehouseKind::Postgres => "PostgreSQL",
            WarehouseKind::MySql => "MySQL",
        })
    }
}

/// Whether and how the connection is encrypted; the same four levels for both engines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, plain otherwise; the certificate is not checked
    /// (libpq's default, `sslmode=prefer`).
    #[default]
    Prefer,
    /// TLS or no connection; the certificate is not checked (`sslmode=require`,
    /// `ssl-mode=REQUIRED`): protects against eavesdropping, not against impersonation.
    Require,
    /// TLS with the certificate chain and host name verified (`sslmode=verify-full`,
    /// `ssl-mode=VERIFY_IDENTITY`; `verify-ca` is read as this stricter mode).
    VerifyFull {
        /// PEM file with the CA certificates to trust instead of the system's (PostgreSQL) or
        /// Mozilla's (MySQL) roots.
        ca_file: Option<PathBuf>,
    },
}

/// A warehouse URL, which may carry a password: `Debug` and `Display` show it with the password
/// replaced by `****`, so it can sit in configs that get logged.
#[derive(Clone, PartialEq, Eq)]
pub struct WarehouseUrl(String);

impl WarehouseUrl {
    /// Wraps a URL such as `postgres://user:pass@host:5432/db?sslmode=require`.
    pub fn new(url: impl Into<String>) -> WarehouseUrl {
        WarehouseUrl(url.into())
    }

    /// The URL with its password, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password replaced by `****`.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut url) => {
                if url.password().is_some() {
                    // Setting a password only fails for URLs that cannot have one.
                    let _ = url.set_password(Some("****"));
                }
                url.to_string()
            }
            Err(_) => match self.0.split_once("://") {
                Some((scheme, _)) => format!("{scheme}://****"),
                None => "****".to_string(),
            },
        }
    }
}

impl fmt::Debug for WarehouseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WarehouseUrl({:?})", self.redacted())
    }
}

impl fmt::Display for WarehouseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Everything needed to open a warehouse session.
#[derive(Debug, Clone)]
pub struct WarehouseConfig {
    /// The engine behind the URL.
    pub kind: WarehouseKind,
    /// `postgres://user:pass@host:port/db?…` or `mysql://user:pass@host:port/db?…`. TLS
    /// parameters in it (`sslmode`, `sslrootcert`, `ssl-mode`, `ssl-ca`) are read by
    /// [`WarehouseConfig::from_url`] and removed before the driver sees the URL: `tls` decides.
    pub url: WarehouseUrl,
    /// Encryption of the connection.
    pub tls: TlsMode,
    /// The server cancels a model's query after this long (`statement_timeout` in PostgreSQL,
    /// `max_execution_time` in MySQL, `max_statement_time` in MariaDB); `None` keeps the server's.
    pub statement_timeout: Option<Duration>,
    /// How long to wait for the connection and login.
    pub connect_timeout: Duration,
}

impl WarehouseConfig {
    /// A config from a URL alone: the kind from its scheme, TLS from `sslmode`/`sslrootcert`
    /// (or MySQL's `ssl-mode`/`ssl-ca`), default timeouts.
    pub fn from_url(url: &str) -> Result<WarehouseConfig, WarehouseError> {
        let kind = WarehouseKind::from_url(url).ok_or_else(|| WarehouseError::InvalidUrl {
            reason: "the scheme must be `postgres://`, `postgresql://`, `mysql://` or `mariadb://`"
                .to_string(),
        })?;
        let tls = tls::mode_from_url(url)?;
        Ok(WarehouseConfig {
            kind,
            url: WarehouseUrl::new(url),
            tls,
            statement_timeout: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        })
    }
}

/// A connected warehouse session that describes, checks and streams models' queries.
pub struct Warehouse {
    backend: Backend,
}

enum Backend {
    // Boxed: the driver's connection config is large.
    Postgres(Box<postgres::PgSource>),
    MySql(mysql::MySqlSource),
}

impl fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, target) = match &self.backend {
            Backend::Postgres(source) => (WarehouseKind::Postgres, source.target()),
            Backend::MySql(source) => (WarehouseKind::MySql, source.target()),
        };
        f.debug_struct("Warehouse")
            .field("kind", &kind)
            .field("target", &target)
            .finish_non_exhaustive()
    }
}

impl Warehouse {
    /// Connects and logs in, applying the statement timeout and a read-only session.
    pub async fn connect(config: &WarehouseConfig) -> Result<Warehouse, WarehouseError> {
        let backend = match config.kind {
            WarehouseKind::Postgres => {
                Backend::Postgres(Box::new(postgres::PgSource::connect(config).await?))
            }
            WarehouseKind::MySql => Backend::MySql(mysql::MySqlSource::connect(config).await?),
        };
        Ok(Warehouse { backend })
    }

    /// The engine this session talks to.
    pub fn kind(&self) -> WarehouseKind {
        match self.backend {
            Backend::Postgres(_) => WarehouseKind::Postgres,
            Backend::MySql(_) => WarehouseKind::MySql,
        }
    }

    /// The Arrow schema of the query's result, from the server's description of the prepared
    /// statement: nothing runs, so `plan` can type a model without reading it.
    pub async fn schema(&self, sql: &str) -> Result<SchemaRef, WarehouseError> {
        match &self.backend {
            Backend::Postgres(source) => source.schema(sql).await,
            Backend::MySql(source) => source.schema(sql).await,
        }
    }

    /// Runs the query and streams its rows, `batch_rows` to a batch (0 means
    /// [`DEFAULT_BATCH_ROWS`]). Errors while rows flow arrive as the stream's items; get the
    /// typed error back with [`WarehouseError::from_datafusion`].
    pub async fn stream(
        &self,
        sql: &str,
        batch_rows: usize,
    ) -> Result<SendableRecordBatchStream, WarehouseError> {
        let batch_rows = if batch_rows == 0 {
            DEFAULT_BATCH_ROWS
        } else {
            batch_rows
        };
        match &self.backend {
            Backend::Postgres(source) => source.stream(sql, batch_rows).await,
            Backend::MySql(source) => source.stream(sql, batch_rows).await,
        }
    }

    /// Checks the query against the warehouse without running it (`engine validate`): syntax,
    /// tables, columns and privileges through `EXPLAIN`, and that every column has a mapping.
    pub async fn check(&self, sql: &str) -> Result<(), WarehouseError> {
        match &self.backend {
            Backend::Postgres(source) => source.check(sql).await,
            Backend::MySql(source) => source.check(sql).await,
        }
    }
}

/// What went wrong talking to a warehouse, sorted by what the user has to fix. Messages name
/// the host, database, user or table, never the password.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WarehouseError {
    /// The URL cannot be read.
    #[error("invalid warehouse URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// No connection: refused, unknown host, no answer in time, or the connection dropped.
    #[error("cannot reach {kind} at `{target}`: {reason}")]
    Unreachable {
        /// The engine.
        kind: WarehouseKind,
        /// `host:port/database`.
        target: String,
        /// The operating system's or driver's reason.
        reason: String,
    },
    /// The TLS handshake failed or TLS was required and not offered.
    #[error("TLS with {kind} at `{target}` failed: {reason}")]
    Tls {
        /// The engine.
        kind: WarehouseKind,
        /// `host:port/database`.
        target: String,
        /// Why, e.g. the certificate is not valid for the host name.
        reason: String,
    },
    /// The server refused the login (wrong password, unknown user).
    #[error("{kind} at `{target}` refused the login of user `{user}`: {message}")]
    Auth {
        /// The engine.
        kind: WarehouseKind,
        /// `host:port/database`.
        target: String,
        /// The user in the URL.
        user: String,
        /// The server's message.
        message: String,
    },
    /// The database named in the URL does not exist.
    #[error("database `{database}` does not exist on {kind} at `{target}`")]
    UnknownDatabase {
        /// The engine.
        kind: WarehouseKind,
        /// `host:port`.
        target: String,
        /// The database in the URL.
        database: String,
    },
    /// The query reads a table that does not exist (or that the user cannot see).
    #[error("table `{table}` does not exist in the warehouse")]
    MissingTable {
        /// The table as the server names it (`schema.table` when it says so).
        table: String,
        /// The server's message.
        message: String,
    },
    /// The query is not valid SQL for this engine.
    #[error("SQL syntax error: {message}")]
    Syntax {
        /// The server's message.
        message: String,
        /// Byte offset into the SQL where the server places the error, when it says
        /// (see [`line_column`]).
        position: Option<usize>,
    },
    /// The user may not read something the query reads.
    #[error("permission denied: {message}")]
    PermissionDenied {
        /// The server's message, naming the object.
        message: String,
    },
    /// The server cancelled the query at the statement timeout.
    #[error("the query was cancelled by the statement timeout{}", limit.map(|l| format!(" of {l:?}")).unwrap_or_default())]
    Timeout {
        /// The configured limit.
        limit: Option<Duration>,
    },
    /// The server rejected the query for another reason (unknown column, bad cast, division by
    /// zero, …).
    #[error("the warehouse rejected the query: {message}")]
    Query {
        /// The server's message.
        message: String,
        /// Byte offset into the SQL, when the server gives one.
        position: Option<usize>,
    },
    /// A result column has a type this module cannot represent in Arrow.
    #[error("column `{column}` has type `{type_name}`, which cannot be read into Arrow")]
    UnsupportedType {
        /// The column.
        column: String,
        /// The server's name for the type.
        type_name: String,
    },
    /// A value cannot be represented in its column's Arrow type (e.g. `infinity` dates).
    #[error("cannot read a value of column `{column}`: {reason}")]
    Decode {
        /// The column.
        column: String,
        /// Why.
        reason: String,
    },
    /// Anything else: protocol errors, a driver failure.
    #[error("{message}")]
    Other {
        /// What happened.
        message: String,
    },
}

impl WarehouseError {
    /// Byte offset into the model's SQL where the server places the error, so the caller can
    /// point at `file:line:column` (with [`line_column`]).
    pub fn position(&self) -> Option<usize> {
        match self {
            WarehouseError::Syntax { position, .. } | WarehouseError::Query { position, .. } => {
                *position
            }
            _ => None,
        }
    }

    /// What the user can do about it, for the diagnostic's `hint:` line.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            WarehouseError::InvalidUrl { .. } => {
                "write it as `postgres://user:password@host:5432/database` or `mysql://user:password@host:3306/database`"
            }
            WarehouseError::Unreachable { .. } => {
                "check the host and port in the warehouse URL, and that the server accepts TCP connections from here"
            }
            WarehouseError::Tls { .. } => {
                "check the TLS mode and CA file; `sslmode=require` encrypts without checking the certificate"
            }
            WarehouseError::Auth { .. } => "check the user and password in the warehouse URL",
            WarehouseError::UnknownDatabase { .. } => {
                "check the database name at the end of the warehouse URL"
            }
            WarehouseError::MissingTable { .. } => {
                "check the table's name and schema; the warehouse user must be able to see it"
            }
            WarehouseError::PermissionDenied { .. } => {
                "grant the warehouse user `SELECT` on the tables the model reads"
            }
            WarehouseError::Timeout { .. } => {
                "raise the statement timeout or make the query cheaper"
            }
            WarehouseError::UnsupportedType { .. } | WarehouseError::Decode { .. } => {
                "cast the column in the model's SQL, e.g. to text"
            }
            WarehouseError::Syntax { .. }
            | WarehouseError::Query { .. }
            | WarehouseError::Other { .. } => return None,
        })
    }

    /// The warehouse error inside a stream's `DataFusionError`, if that is where it came from.
    pub fn from_datafusion(error: &DataFusionError) -> Option<&WarehouseError> {
        match error {
            DataFusionError::External(inner) => inner.downcast_ref::<WarehouseError>(),
            DataFusionError::Context(_, inner) => WarehouseError::from_datafusion(inner),
            DataFusionError::Shared(inner) => WarehouseError::from_datafusion(inner),
            // Operators that run batches through Arrow kernels wrap errors once more.
            DataFusionError::ArrowError(inner, _) => match inner.as_ref() {
                ArrowError::ExternalError(source) => {
                    source.downcast_ref::<WarehouseError>().or_else(|| {
                        source
                            .downcast_ref::<DataFusionError>()
                            .and_then(WarehouseError::from_datafusion)
                    })
                }
                _ => None,
            },
            _ => None,
        }
    }

    fn into_datafusion(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }
}

/// The 1-based line and character column of a byte offset into `sql`, the form
/// [`crate::sql_position_to_file`] takes.
pub fn line_column(sql: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(sql.len());
    while !sql.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &sql[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The query as sent to the server: trailing whitespace and semicolons removed, so it can be
/// wrapped (`COPY (…)`, `EXPLAIN …`); the start is kept so offsets stay valid.
fn query_body(sql: &str) -> &str {
    let mut body = sql.trim_end();
    while let Some(rest) = body.strip_suffix(';') {
        body = rest.trim_end();
    }
    body
}

/// The character offset (0-based) a server reports, as a byte offset into the model's SQL,
/// after removing `prefix_chars` characters the module put in front of it.
fn char_offset_to_byte(sql: &str, char_offset: usize, prefix_chars: usize) -> Option<usize> {
    let index = char_offset.checked_sub(prefix_chars)?;
    if index == sql.chars().count() {
        return Some(sql.len());
    }
    sql.char_indices().nth(index).map(|(byte, _)| byte)
}

#[cfg(test)]
mod tests;
