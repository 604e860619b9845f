//! Offline unit tests, then tests against real servers: PostgreSQL at 127.0.0.1:5432 and
//! MariaDB/MySQL at 127.0.0.1:3306 (override with `WAREHOUSE_TEST_POSTGRES_URL` and
//! `WAREHOUSE_TEST_MYSQL_URL`; the admin user must be able to create tables, types and users).
//! A server that cannot be reached fails its tests with a message saying so. Every test creates
//! its own uniquely named tables and users and drops them, also when it fails.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use datafusion::arrow::array::{Array, Int32Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::arrow::util::display::array_value_to_string;
use futures_util::{FutureExt, TryStreamExt};
use mysql_async::prelude::Queryable;

use super::*;

// ---------------------------------------------------------------------------------------------
// Offline

#[test]
fn urls_never_show_their_password() {
    let url = WarehouseUrl::new("postgres://loader:s3cr%40t@db.example.com:5432/analytics");
    assert_eq!(
        url.to_string(),
        "postgres://loader:****@db.example.com:5432/analytics"
    );
    assert!(!format!("{url:?}").contains("s3cr"));
    let config = WarehouseConfig::from_url(url.expose()).unwrap();
    assert!(!format!("{config:?}").contains("s3cr"), "{config:?}");
    // Not a URL the parser understands (two hosts): nothing after the scheme is shown.
    let odd = WarehouseUrl::new("postgres://loader:pw@h1:5432,h2:5432/db");
    assert_eq!(odd.to_string(), "postgres://****");
}

#[test]
fn warehouses_can_be_shared_across_tasks() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<Warehouse>();
    // Every future is `Send`, so a multi-threaded runtime can run them; checked at compile time.
    fn futures_are_send(warehouse: &Warehouse, config: &WarehouseConfig) {
        send(&Warehouse::connect(config));
        send(&warehouse.schema(""));
        send(&warehouse.check(""));
        send(&warehouse.stream("", 0));
    }
    let _ = futures_are_send;
}

#[test]
fn config_reads_kind_and_tls_from_the_url() {
    let config = WarehouseConfig::from_url("postgresql://u@h/db").unwrap();
    assert_eq!(config.kind, WarehouseKind::Postgres);
    assert_eq!(config.tls, TlsMode::Prefer);
    assert_eq!(config.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    let config = WarehouseConfig::from_url("mariadb://u@h/db?ssl-mode=VERIFY_IDENTITY").unwrap();
    assert_eq!(config.kind, WarehouseKind::MySql);
    assert_eq!(config.tls, TlsMode::VerifyFull { ca_file: None });
    let config =
        WarehouseConfig::from_url("postgres://u@h/db?sslmode=verify-full&sslrootcert=/ca.pem")
            .unwrap();
    assert_eq!(
        config.tls,
        TlsMode::VerifyFull {
            ca_file: Some("/ca.pem".into())
        }
    );
    for (mode, expected) in [
        ("disable", TlsMode::Disable),
        ("require", TlsMode::Require),
        ("REQUIRED", TlsMode::Require),
    ] {
        let config = WarehouseConfig::from_url(&format!("postgres://u@h/db?sslmode={mode}"));
        assert_eq!(config.unwrap().tls, expected, "{mode}");
    }
    let error = WarehouseConfig::from_url("postgres://u@h/db?sslmode=sometimes").unwrap_err();
    assert!(
        matches!(error, WarehouseError::InvalidUrl { .. }),
        "{error}"
    );
    let error = WarehouseConfig::from_url("sqlite://file.db").unwrap_err();
    assert!(error.to_string().contains("postgres://"), "{error}");
}

#[test]
fn the_driver_gets_the_url_without_tls_parameters() {
    assert_eq!(
        tls::driver_url("postgres://u:p@h:5432/db?sslmode=require&options=-c%20TimeZone%3DUTC"),
        "postgres://u:p@h:5432/db?options=-c%20TimeZone%3DUTC"
    );
    assert_eq!(
        tls::driver_url("mariadb://u@h:3306/db?ssl-mode=REQUIRED&ssl-ca=/ca.pem"),
        "mysql://u@h:3306/db"
    );
    // Untouched, byte for byte, when there is nothing to remove.
    let plain = "postgres://u@h/db?options=-c+x";
    assert_eq!(tls::driver_url(plain), plain);
}

#[test]
fn positions_are_byte_offsets_into_the_model_sql() {
    let sql = "SELECT 'é',\n  nope";
    let offset = sql.find("nope").unwrap();
    assert_eq!(line_column(sql, offset), (2, 3));
    assert_eq!(line_column(sql, 0), (1, 1));
    assert_eq!(line_column(sql, 10_000), (2, 7));
    // `é` is one character and two bytes.
    assert_eq!(char_offset_to_byte(sql, 14, 0), Some(offset));
    assert_eq!(char_offset_to_byte(sql, 21, 7), Some(offset));
    assert_eq!(char_offset_to_byte(sql, 3, 7), None);
    assert_eq!(query_body("SELECT 1 ;\n ; \n"), "SELECT 1");
}

#[test]
fn mysql_syntax_errors_are_placed_by_the_quoted_text() {
    let sql = "SELECT 1 AS id,\nFROM t";
    let message = "You have an error in your SQL syntax; check the manual that corresponds to \
                   your MariaDB server version for the right syntax to use near 'FROM t' at line 2";
    assert_eq!(
        mysql::syntax_position(sql, message),
        Some(sql.find("FROM").unwrap())
    );
    let at_end = "… for the right syntax to use near '' at line 1";
    assert_eq!(mysql::syntax_position("SELECT (1;", at_end), Some(9));
    assert_eq!(mysql::syntax_position(sql, "no position here"), None);
}

/// A binary `numeric`: base-10000 digits, the first worth 10000^weight.
fn numeric(weight: i16, negative: bool, dscale: u16, digits: &[u16]) -> Vec<u8> {
    let mut raw = Vec::new();
    raw.extend_from_slice(&u16::try_from(digits.len()).unwrap().to_be_bytes());
    raw.extend_from_slice(&weight.to_be_bytes());
    raw.extend_from_slice(&(if negative { 0x4000_u16 } else { 0 }).to_be_bytes());
    raw.extend_from_slice(&dscale.to_be_bytes());
    for digit in digits {
        raw.extend_from_slice(&digit.to_be_bytes());
    }
    raw
}

#[test]
fn numerics_decode_exactly() {
    use pg_types::numeric_to_i128;
    // 12345678901234567890.123456789 at scale 9.
    let raw = numeric(
        4,
        false,
        9,
        &[1234, 5678, 9012, 3456, 7890, 1234, 5678, 9000],
    );
    assert_eq!(
        numeric_to_i128(&raw, 9).unwrap(),
        12_345_678_901_234_567_890_123_456_789
    );
    // 0.5 at scale 2 → 50; -0.0001 at scale 4 → -1; 20000 (one digit, weight 1) at scale 0.
    assert_eq!(
        numeric_to_i128(&numeric(-1, false, 1, &[5000]), 2).unwrap(),
        50
    );
    assert_eq!(numeric_to_i128(&numeric(-1, true, 4, &[1]), 4).unwrap(), -1);
    assert_eq!(
        numeric_to_i128(&numeric(1, false, 0, &[2]), 0).unwrap(),
        20_000
    );
    // 0.00001 (weight -2) at scale 5, and zero (no digits).
    assert_eq!(
        numeric_to_i128(&numeric(-2, false, 5, &[1000]), 5).unwrap(),
        1
    );
    assert_eq!(numeric_to_i128(&numeric(0, false, 2, &[]), 2).unwrap(), 0);
    // More places than the scale, NaN, more than 38 digits: refused, never rounded.
    assert!(numeric_to_i128(&numeric(-1, false, 4, &[1234]), 2).is_err());
    let nan = [0, 0, 0, 0, 0xC0, 0, 0, 0];
    assert!(numeric_to_i128(&nan, 2).unwrap_err().contains("NaN"));
    assert!(numeric_to_i128(&numeric(10, false, 0, &[1; 11]), 0).is_err());
}

#[test]
fn error_messages_name_the_place_and_say_what_to_do() {
    let error = WarehouseError::Unreachable {
        kind: WarehouseKind::Postgres,
        target: "db:5432".into(),
        reason: "Connection refused (os error 111)".into(),
    };
    assert_eq!(
        error.to_string(),
        "cannot reach PostgreSQL at `db:5432`: Connection refused (os error 111)"
    );
    assert!(error.hint().unwrap().contains("host and port"));
    let error = WarehouseError::Timeout {
        limit: Some(Duration::from_millis(200)),
    };
    assert_eq!(
        error.to_string(),
        "the query was cancelled by the statement timeout of 200ms"
    );
    let wrapped = DataFusionError::Context("reading".into(), Box::new(error.into_datafusion()));
    assert!(matches!(
        WarehouseError::from_datafusion(&wrapped),
        Some(WarehouseError::Timeout { .. })
    ));
    let through_arrow =
        DataFusionError::ArrowError(Box::new(ArrowError::ExternalError(Box::new(wrapped))), None);
    assert!(matches!(
        WarehouseError::from_datafusion(&through_arrow),
        Some(WarehouseError::Timeout { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Helpers for the server tests

const PASSWORD: &str = "secret-pw";

fn pg_url() -> String {
    std::env::var("WAREHOUSE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn mysql_url() -> String {
    std::env::var("WAREHOUSE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_string())
}

/// `url` with another user (and password) and database.
fn with_login(url: &str, user: &str, password: Option<&str>, database: Option<&str>) -> String {
    let mut url = url::Url::parse(url).unwrap();
    url.set_username(user).unwrap();
    url.set_password(password).unwrap();
    if let Some(database) = database {
        url.set_path(&format!("/{database}"));
    }
    url.to_string()
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

async fn pg_admin() -> tokio_postgres::Client {
    let url = pg_url();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the PostgreSQL test server at {} is not reachable ({e}): start it, or point \
                 WAREHOUSE_TEST_POSTGRES_URL at one",
                WarehouseUrl::new(url.clone())
            )
        });
    tokio::spawn(connection);
    client
}

async fn mysql_admin() -> mysql_async::Conn {
    let url = mysql_url();
    mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the MySQL/MariaDB test server at {} is not reachable ({e}): start it, or point \
                 WAREHOUSE_TEST_MYSQL_URL at one",
                WarehouseUrl::new(url.clone())
            )
        })
}

async fn connect(config: &WarehouseConfig) -> Warehouse {
    Warehouse::connect(config)
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", config.url))
}

fn config(url: &str) -> WarehouseConfig {
    WarehouseConfig::from_url(url).unwrap()
}

/// Runs `body`, then `cleanup` whether or not `body` panicked.
async fn cleaned_up(body: impl Future<Output = ()>, cleanup: impl Future<Output = ()>) {
    let outcome = AssertUnwindSafe(body).catch_unwind().await;
    cleanup.await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn pg_cleanup(statements: String) {
    if let Err(e) = pg_admin().await.batch_execute(&statements).await {
        eprintln!("cleanup failed: {e}");
    }
}

async fn mysql_cleanup(statements: Vec<String>) {
    let mut admin = mysql_admin().await;
    for statement in statements {
        if let Err(e) = admin.query_drop(statement).await {
            eprintln!("cleanup failed: {e}");
        }
    }
}

/// The streamed batches, checked against `schema()`.
async fn read_all(warehouse: &Warehouse, sql: &str, batch_rows: usize) -> Vec<RecordBatch> {
    let described = warehouse
        .schema(sql)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let stream = warehouse
        .stream(sql, batch_rows)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stream.schema(), described, "schema() and the stream differ");
    let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap_or_else(|e| panic!("{e}"));
    for batch in &batches {
        assert_eq!(batch.schema(), described);
    }
    batches
}

/// The error of running `sql`, whether `stream` refuses it or the stream fails.
async fn stream_error(warehouse: &Warehouse, sql: &str) -> WarehouseError {
    match warehouse.stream(sql, 0).await {
        Err(error) => error,
        Ok(stream) => {
            let error = stream
                .try_collect::<Vec<_>>()
                .await
                .expect_err("the query should fail");
            WarehouseError::from_datafusion(&error)
                .cloned()
                .unwrap_or_else(|| panic!("not a warehouse error: {error}"))
        }
    }
}

fn assert_no_password(error: &WarehouseError) {
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(PASSWORD), "password in `{text}`");
        assert!(!text.contains("wrong-pw"), "password in `{text}`");
    }
}

/// Row `row` of every column as Arrow prints it, with the column's type.
fn row_of(batch: &RecordBatch, row: usize) -> Vec<(String, DataType, String)> {
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            let value = if column.is_null(row) {
                "NULL".to_string()
            } else {
                array_value_to_string(column, row).unwrap()
            };
            (field.name().clone(), field.data_type().clone(), value)
        })
        .collect()
}

fn check_row(actual: &[(String, DataType, String)], expected: &[(&str, DataType, &str)]) {
    assert_eq!(actual.len(), expected.len(), "columns: {actual:#?}");
    for ((name, data_type, value), (want_name, want_type, want_value)) in
        actual.iter().zip(expected)
    {
        assert_eq!(name, want_name);
        assert_eq!(data_type, want_type, "type of `{name}`");
        assert_eq!(value, want_value, "value of `{name}`");
    }
}

fn list_of(data_type: DataType) -> DataType {
    DataType::List(std::sync::Arc::new(Field::new_list_field(data_type, true)))
}

fn utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn micros(year: i32, month: u32, day: u32, h: u32, m: u32, s: u32, us: u32) -> i64 {
    NaiveDate::from_ymd_opt(year, month, day)
        .unwrap()
        .and_hms_micro_opt(h, m, s, us)
        .unwrap()
        .and_utc()
        .timestamp_micros()
}

fn timestamp_at(batch: &RecordBatch, column: &str, row: usize) -> i64 {
    let array = batch.column_by_name(column).unwrap();
    let array = array
        .as_any()
        .downcast_ref::<datafusion::arrow::array::TimestampMicrosecondArray>()
        .unwrap();
    array.value(row)
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

#[tokio::test]
async fn postgres_types_round_trip() {
    let s = unique();
    let admin = pg_admin().await;
    admin
        .batch_execute(&format!(
            r#"
            CREATE TYPE wh_mood_{s} AS ENUM ('sad', 'happy');
            CREATE DOMAIN wh_qty_{s} AS int4 CHECK (VALUE > 0);
            CREATE TABLE wh_types_{s} (
                id int4 PRIMARY KEY, i2 int2, i8 int8, f4 float4, f8 float8,
                n numeric(29,9), nu numeric, nbig numeric(50,10),
                t text, vc varchar(10), c char(3), nm name, b bool,
                d date, ts timestamp, tstz timestamptz, tm time,
                j json, jb jsonb, u uuid, by bytea,
                ai int4[], at text[], an numeric(10,2)[],
                mood wh_mood_{s}, iv interval, ip inet, qty wh_qty_{s}, o oid
            );
            INSERT INTO wh_types_{s} VALUES (
                1, -32768, 9223372036854775807, 1.5, -2.25,
                12345678901234567890.123456789, 12345678901234567890.123456789,
                -1234567890123456789012345678901234567890.0123456789,
                'Zoë 🦀 日本語', 'abc', 'x', 'pg_name', true,
                '2024-02-29', '2024-01-15 10:30:00.123456', '2024-01-15 10:30:00+02', '13:45:30.5',
                '{{"a": [1, 2]}}', '{{"b": null}}', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '\x00ff10',
                ARRAY[1, NULL, 3], ARRAY['x', NULL], ARRAY[1.5, -2.25],
                'happy', '1 day 02:00:00', '192.168.0.1/24', 7, 4294967295
            );
            INSERT INTO wh_types_{s} (id) VALUES (2);
            "#
        ))
        .await
        .unwrap();
    let body = async {
        // The session's zone is Tokyo: a timestamptz written without an offset is read as
        // Tokyo time and must arrive in UTC.
        let url = format!("{}?options=-c%20TimeZone%3DAsia%2FTokyo", pg_url());
        let warehouse = connect(&config(&url)).await;
        let sql = format!(
            "SELECT *, '2024-01-15 10:30:00'::timestamptz AS local_tstz,
                    ARRAY['happy'::wh_mood_{s}] AS moods, ARRAY['1 hour'::interval] AS ivs
             FROM wh_types_{s} ORDER BY id"
        );
        warehouse.check(&sql).await.unwrap();
        let batches = read_all(&warehouse, &sql, 0).await;
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!(batch.num_rows(), 2);
        let date = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        assert_eq!(
            date.signed_duration_since(NaiveDate::default()).num_days(),
            19_782
        );
        check_row(
            &row_of(batch, 0),
            &[
                ("id", DataType::Int32, "1"),
                ("i2", DataType::Int16, "-32768"),
                ("i8", DataType::Int64, "9223372036854775807"),
                ("f4", DataType::Float32, "1.5"),
                ("f8", DataType::Float64, "-2.25"),
                (
                    "n",
                    DataType::Decimal128(29, 9),
                    "12345678901234567890.123456789",
                ),
                ("nu", DataType::Utf8, "12345678901234567890.123456789"),
                (
                    "nbig",
                    DataType::Utf8,
                    "-1234567890123456789012345678901234567890.0123456789",
                ),
                ("t", DataType::Utf8, "Zoë 🦀 日本語"),
                ("vc", DataType::Utf8, "abc"),
                ("c", DataType::Utf8, "x  "),
                ("nm", DataType::Utf8, "pg_name"),
                ("b", DataType::Boolean, "true"),
                ("d", DataType::Date32, "2024-02-29"),
                (
                    "ts",
                    DataType::Timestamp(TimeUnit::Microsecond, None),
                    "2024-01-15T10:30:00.123456",
                ),
                ("tstz", utc(), "2024-01-15T08:30:00Z"),
                (
                    "tm",
                    DataType::Time64(TimeUnit::Microsecond),
                    "13:45:30.500",
                ),
                ("j", DataType::Utf8, r#"{"a": [1, 2]}"#),
                ("jb", DataType::Utf8, r#"{"b": null}"#),
                ("u", DataType::Utf8, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
                ("by", DataType::Binary, "00ff10"),
                ("ai", list_of(DataType::Int32), "[1, , 3]"),
                ("at", list_of(DataType::Utf8), "[x, ]"),
                ("an", list_of(DataType::Decimal128(10, 2)), "[1.50, -2.25]"),
                ("mood", DataType::Utf8, "happy"),
                ("iv", DataType::Utf8, "1 day 02:00:00"),
                ("ip", DataType::Utf8, "192.168.0.1/24"),
                ("qty", DataType::Int32, "7"),
                ("o", DataType::UInt32, "4294967295"),
                ("local_tstz", utc(), "2024-01-15T01:30:00Z"),
                ("moods", list_of(DataType::Utf8), "[happy]"),
                ("ivs", list_of(DataType::Utf8), "[01:00:00]"),
            ],
        );
        assert_eq!(
            timestamp_at(batch, "tstz", 0),
            Utc.with_ymd_and_hms(2024, 1, 15, 8, 30, 0)
                .unwrap()
                .timestamp_micros()
        );
        assert_eq!(
            timestamp_at(batch, "ts", 0),
            micros(2024, 1, 15, 10, 30, 0, 123_456)
        );
        // Row 2: NULL in every type.
        for (name, _, value) in row_of(batch, 1).into_iter().skip(1) {
            if !["local_tstz", "moods", "ivs"].contains(&name.as_str()) {
                assert_eq!(value, "NULL", "`{name}` should be NULL");
            }
        }
    };
    cleaned_up(
        body,
        pg_cleanup(format!(
            "DROP TABLE IF EXISTS wh_types_{s}; DROP TYPE IF EXISTS wh_mood_{s};
             DROP DOMAIN IF EXISTS wh_qty_{s};"
        )),
    )
    .await;
}

#[tokio::test]
async fn postgres_values_without_an_arrow_form_are_refused_by_column() {
    let warehouse = connect(&config(&pg_url())).await;
    for (sql, column, needle) in [
        ("SELECT 'NaN'::numeric(10,2) AS price", "price", "NaN"),
        ("SELECT 'infinity'::timestamptz AS seen", "seen", "infinity"),
        (
            "SELECT ARRAY[[1,2],[3,4]] AS grid",
            "grid",
            "multi-dimensional",
        ),
    ] {
        let stream = warehouse.stream(sql, 0).await.unwrap();
        let error = stream.try_collect::<Vec<_>>().await.unwrap_err();
        match WarehouseError::from_datafusion(&error) {
            Some(WarehouseError::Decode {
                column: got,
                reason,
            }) => {
                assert_eq!(got, column);
                assert!(reason.contains(needle), "{reason}");
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn postgres_streams_large_results_in_batches() {
    let s = unique();
    let admin = pg_admin().await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE wh_big_{s} AS
             SELECT g::int8 AS id, md5(g::text) AS label FROM generate_series(1, 200000) AS g"
        ))
        .await
        .unwrap();
    let body = async {
        let warehouse = connect(&config(&pg_url())).await;
        let batches = read_all(
            &warehouse,
            &format!("SELECT id, label FROM wh_big_{s} ORDER BY id;"),
            DEFAULT_BATCH_ROWS,
        )
        .await;
        assert!(batches.len() > 1, "{} batches", batches.len());
        assert_eq!(batches.len(), 200_000_usize.div_ceil(DEFAULT_BATCH_ROWS));
        assert!(batches.iter().all(|b| b.num_rows() <= DEFAULT_BATCH_ROWS));
        let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(total, 200_000);
        let ids = |b: &RecordBatch| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone()
        };
        assert_eq!(ids(&batches[0]).value(0), 1);
        let last = batches.last().unwrap();
        assert_eq!(ids(last).value(last.num_rows() - 1), 200_000);
    };
    cleaned_up(
        body,
        pg_cleanup(format!("DROP TABLE IF EXISTS wh_big_{s};")),
    )
    .await;
}

#[tokio::test]
async fn postgres_dropping_a_stream_stops_the_query() {
    let s = unique();
    let warehouse = connect(&config(&pg_url())).await;
    let marker = format!("wh_drop_{s}");
    let sql = format!("SELECT g AS {marker} FROM generate_series(1, 100000000) AS g");
    let mut stream = warehouse.stream(&sql, 1000).await.unwrap();
    let first = stream.try_next().await.unwrap().unwrap();
    assert_eq!(first.num_rows(), 1000);
    drop(stream);
    let admin = pg_admin().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let running: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE query LIKE $1 AND state <> 'idle' AND pid <> pg_backend_pid()",
                &[&format!("%{marker}%")],
            )
            .await
            .unwrap()
            .get(0);
        if running == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the query still runs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The session itself is untouched.
    read_all(&warehouse, "SELECT 1 AS one", 0).await;
}

#[tokio::test]
async fn postgres_unreachable_server_names_the_address_not_the_password() {
    let url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/test");
    let error = Warehouse::connect(&config(&url)).await.unwrap_err();
    assert!(
        matches!(error, WarehouseError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("127.0.0.1:1"), "{error}");
    assert_no_password(&error);
}

#[tokio::test]
async fn postgres_login_errors() {
    let s = unique();
    let admin = pg_admin().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE wh_pw_{s} LOGIN PASSWORD '{PASSWORD}'"
        ))
        .await
        .unwrap();
    let body = async {
        // A wrong password: refused, unless the server trusts local connections (as the test
        // server does), in which case it is let in.
        let url = with_login(&pg_url(), &format!("wh_pw_{s}"), Some("wrong-pw"), None);
        match Warehouse::connect(&config(&url)).await {
            Ok(_) => eprintln!("the server trusts 127.0.0.1: a wrong password is accepted"),
            Err(error) => {
                assert!(matches!(error, WarehouseError::Auth { .. }), "{error:?}");
                assert_no_password(&error);
            }
        }
        // An unknown user is refused whatever the authentication method.
        let user = format!("wh_nobody_{s}");
        let url = with_login(&pg_url(), &user, Some(PASSWORD), None);
        let error = Warehouse::connect(&config(&url)).await.unwrap_err();
        assert!(matches!(error, WarehouseError::Auth { .. }), "{error:?}");
        assert!(error.to_string().contains(&user), "{error}");
        assert!(error.to_string().contains("127.0.0.1:5432"), "{error}");
        assert_no_password(&error);
        // An unknown database.
        let database = format!("wh_nodb_{s}");
        let url = with_login(&pg_url(), "postgres", Some(PASSWORD), Some(&database));
        let error = Warehouse::connect(&config(&url)).await.unwrap_err();
        assert!(
            matches!(error, WarehouseError::UnknownDatabase { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(&database), "{error}");
        assert_no_password(&error);
    };
    cleaned_up(body, pg_cleanup(format!("DROP ROLE IF EXISTS wh_pw_{s};"))).await;
}

#[tokio::test]
async fn postgres_query_errors_name_the_table_and_place_the_error() {
    let s = unique();
    let warehouse = connect(&config(&pg_url())).await;
    let missing = format!("SELECT * FROM wh_missing_{s}");
    for error in [
        warehouse.schema(&missing).await.unwrap_err(),
        warehouse.check(&missing).await.unwrap_err(),
        stream_error(&warehouse, &missing).await,
    ] {
        match &error {
            WarehouseError::MissingTable { table, .. } => {
                assert_eq!(table, &format!("wh_missing_{s}"))
            }
            other => panic!("{other:?}"),
        }
        assert!(error.to_string().contains(&format!("wh_missing_{s}")));
    }
    let sql = "SELECT 1 AS id,\nFROM wh_x";
    for error in [
        warehouse.schema(sql).await.unwrap_err(),
        warehouse.check(sql).await.unwrap_err(),
        stream_error(&warehouse, sql).await,
    ] {
        assert!(matches!(error, WarehouseError::Syntax { .. }), "{error:?}");
        let position = error.position().expect("PostgreSQL gives a position");
        assert_eq!(position, sql.find("FROM").unwrap());
        assert_eq!(line_column(sql, position), (2, 1));
    }
    // Other errors about the SQL keep their position too.
    let sql = "SELECT nope FROM (SELECT 1 AS id) AS t";
    let error = warehouse.check(sql).await.unwrap_err();
    assert!(matches!(error, WarehouseError::Query { .. }), "{error:?}");
    assert_eq!(error.position(), sql.find("nope"));
}

#[tokio::test]
async fn postgres_statement_timeout_cancels_the_query() {
    let mut config = config(&pg_url());
    config.statement_timeout = Some(Duration::from_millis(200));
    let warehouse = connect(&config).await;
    let started = Instant::now();
    let error = stream_error(&warehouse, "SELECT pg_sleep(5)").await;
    assert!(
        matches!(error, WarehouseError::Timeout { limit: Some(l) } if l == Duration::from_millis(200)),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn postgres_permission_denied() {
    let s = unique();
    let admin = pg_admin().await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE wh_secret_{s} (id int4); CREATE ROLE wh_np_{s} LOGIN;"
        ))
        .await
        .unwrap();
    let body = async {
        let url = with_login(&pg_url(), &format!("wh_np_{s}"), None, None);
        let warehouse = connect(&config(&url)).await;
        let sql = format!("SELECT id FROM wh_secret_{s}");
        for error in [
            warehouse.check(&sql).await.unwrap_err(),
            stream_error(&warehouse, &sql).await,
        ] {
            assert!(
                matches!(error, WarehouseError::PermissionDenied { .. }),
                "{error:?}"
            );
            assert!(
                error.to_string().contains(&format!("wh_secret_{s}")),
                "{error}"
            );
        }
    };
    cleaned_up(
        body,
        pg_cleanup(format!(
            "DROP TABLE IF EXISTS wh_secret_{s}; DROP ROLE IF EXISTS wh_np_{s};"
        )),
    )
    .await;
}

#[tokio::test]
async fn postgres_sessions_are_read_only() {
    let s = unique();
    let admin = pg_admin().await;
    admin
        .batch_execute(&format!("CREATE TABLE wh_ro_{s} (id int4)"))
        .await
        .unwrap();
    let body = async {
        let warehouse = connect(&config(&pg_url())).await;
        let sql =
            format!("WITH x AS (INSERT INTO wh_ro_{s} VALUES (1) RETURNING id) SELECT * FROM x");
        let error = stream_error(&warehouse, &sql).await;
        assert!(error.to_string().contains("read-only"), "{error:?}");
        let count: i64 = pg_admin()
            .await
            .query_one(&format!("SELECT count(*) FROM wh_ro_{s}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, 0, "the insert must not have happened");
    };
    cleaned_up(body, pg_cleanup(format!("DROP TABLE IF EXISTS wh_ro_{s};"))).await;
}

#[tokio::test]
async fn postgres_tls_modes() {
    let admin = pg_admin().await;
    let ssl_on: String = admin.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    let encrypted = |warehouse: Warehouse| async move {
        let batches = read_all(
            &warehouse,
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            0,
        )
        .await;
        array_value_to_string(batches[0].column(0), 0).unwrap() == "true"
    };
    let mut config = config(&pg_url());
    config.tls = TlsMode::Disable;
    assert!(!encrypted(connect(&config).await).await);
    config.tls = TlsMode::Require;
    if ssl_on != "on" {
        let error = Warehouse::connect(&config).await.unwrap_err();
        assert!(matches!(error, WarehouseError::Tls { .. }), "{error:?}");
        return;
    }
    assert!(encrypted(connect(&config).await).await);
    config.tls = TlsMode::Prefer;
    assert!(encrypted(connect(&config).await).await);
    // verify-full against the server's own (self-signed) certificate as the CA: valid for the
    // names in the certificate, refused for an address it does not name.
    let cert_file: String = admin
        .query_one("SHOW ssl_cert_file", &[])
        .await
        .unwrap()
        .get(0);
    let ca_file = std::path::PathBuf::from(&cert_file);
    config.tls = TlsMode::VerifyFull {
        ca_file: Some(ca_file.clone()),
    };
    if !ca_file.is_file() {
        panic!("the server's certificate `{cert_file}` is not readable here");
    }
    let error = Warehouse::connect(&config).await.unwrap_err();
    assert!(matches!(error, WarehouseError::Tls { .. }), "{error:?}");
    assert!(error.to_string().contains("127.0.0.1"), "{error}");
    // …and accepted for `localhost`, the name the certificate carries.
    if pg_url().contains("127.0.0.1") {
        let mut by_name =
            WarehouseConfig::from_url(&pg_url().replace("127.0.0.1", "localhost")).unwrap();
        by_name.tls = config.tls.clone();
        assert!(encrypted(connect(&by_name).await).await);
    }
    config.tls = TlsMode::VerifyFull {
        ca_file: Some("/nonexistent/ca.pem".into()),
    };
    let error = Warehouse::connect(&config).await.unwrap_err();
    assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
}

/// Streams 1,000,000 rows of (bigint, text, numeric, timestamptz) and prints the rate; run with
/// `cargo test -p engine-models --release postgres_streaming_rate -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn postgres_streaming_rate() {
    let s = unique();
    let admin = pg_admin().await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE wh_rate_{s} AS
             SELECT g::int8 AS id, 'user-' || g || '@example.com' AS email,
                    (g % 100000)::numeric(12,2) / 7 AS amount,
                    timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' AS updated_at
             FROM generate_series(1, 1000000) AS g;
             ALTER TABLE wh_rate_{s} ALTER amount TYPE numeric(12,2);"
        ))
        .await
        .unwrap();
    let body = async {
        let warehouse = connect(&config(&pg_url())).await;
        let sql = format!("SELECT id, email, amount, updated_at FROM wh_rate_{s}");
        for _ in 0..3 {
            let started = Instant::now();
            let stream = warehouse.stream(&sql, DEFAULT_BATCH_ROWS).await.unwrap();
            let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
            let elapsed = started.elapsed();
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            assert_eq!(rows, 1_000_000);
            eprintln!(
                "PostgreSQL: {rows} rows in {} batches in {elapsed:?}: {:.0} rows/s ({})",
                batches.len(),
                rows as f64 / elapsed.as_secs_f64(),
                if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                }
            );
        }
    };
    cleaned_up(
        body,
        pg_cleanup(format!("DROP TABLE IF EXISTS wh_rate_{s};")),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// MySQL / MariaDB

#[tokio::test]
async fn mysql_types_round_trip() {
    let s = unique();
    let mut admin = mysql_admin().await;
    admin
        .query_drop(format!(
            "CREATE TABLE wh_types_{s} (
                id INT PRIMARY KEY, ti TINYINT, tb TINYINT(1), si SMALLINT, mi MEDIUMINT,
                i INT, bi BIGINT, ubi BIGINT UNSIGNED, uti TINYINT UNSIGNED,
                f FLOAT, d DOUBLE, n DECIMAL(38,9), nbig DECIMAL(65,30),
                nu DECIMAL(10,2) UNSIGNED, vc VARCHAR(50), c CHAR(3), t TEXT,
                dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL, tm TIME(3),
                j JSON, e ENUM('sad','happy'), st SET('a','b'),
                vb VARBINARY(10), bl BLOB, bit8 BIT(8), y YEAR,
                usi SMALLINT UNSIGNED, umi MEDIUMINT UNSIGNED, ui INT UNSIGNED, bn BINARY(3)
            ) CHARACTER SET utf8mb4"
        ))
        .await
        .unwrap();
    // Written from a session two hours east of UTC: the TIMESTAMP is stored as 08:30 UTC.
    admin.query_drop("SET time_zone = '+02:00'").await.unwrap();
    admin
        .query_drop(format!(
            "INSERT INTO wh_types_{s} VALUES (
                1, -128, 1, -32768, -8388608, -2147483648, -9223372036854775808,
                18446744073709551615, 255, 1.5, -2.25, 12345678901234567890.123456789,
                -12345678901234567890123456789012345.123456789012345678901234567890,
                12345678.90, 'Zoë 🦀 日本語', 'x', 'long text',
                '2024-02-29', '2024-01-15 10:30:00.123456', '2024-01-15 10:30:00.123456',
                '-12:30:00.500', '{{\"a\": [1, 2]}}', 'happy', 'a,b',
                X'00FF10', 'blob', b'10100101', 2024, 65535, 16777215, 4294967295, 'abc'
            )"
        ))
        .await
        .unwrap();
    admin
        .query_drop(format!("INSERT INTO wh_types_{s} (id) VALUES (2)"))
        .await
        .unwrap();
    let body = async {
        let warehouse = connect(&config(&mysql_url())).await;
        let sql = format!("SELECT *, NULL AS nothing FROM wh_types_{s} ORDER BY id");
        warehouse.check(&sql).await.unwrap();
        let batches = read_all(&warehouse, &sql, 0).await;
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!(batch.num_rows(), 2);
        check_row(
            &row_of(batch, 0),
            &[
                ("id", DataType::Int32, "1"),
                ("ti", DataType::Int8, "-128"),
                ("tb", DataType::Int8, "1"),
                ("si", DataType::Int16, "-32768"),
                ("mi", DataType::Int32, "-8388608"),
                ("i", DataType::Int32, "-2147483648"),
                ("bi", DataType::Int64, "-9223372036854775808"),
                ("ubi", DataType::UInt64, "18446744073709551615"),
                ("uti", DataType::UInt8, "255"),
                ("f", DataType::Float32, "1.5"),
                ("d", DataType::Float64, "-2.25"),
                (
                    "n",
                    DataType::Decimal128(38, 9),
                    "12345678901234567890.123456789",
                ),
                (
                    "nbig",
                    DataType::Utf8,
                    "-12345678901234567890123456789012345.123456789012345678901234567890",
                ),
                ("nu", DataType::Decimal128(10, 2), "12345678.90"),
                ("vc", DataType::Utf8, "Zoë 🦀 日本語"),
                ("c", DataType::Utf8, "x"),
                ("t", DataType::Utf8, "long text"),
                ("dt", DataType::Date32, "2024-02-29"),
                (
                    "dtm",
                    DataType::Timestamp(TimeUnit::Microsecond, None),
                    "2024-01-15T10:30:00.123456",
                ),
                ("ts", utc(), "2024-01-15T08:30:00.123456Z"),
                ("tm", DataType::Utf8, "-12:30:00.500"),
                ("j", DataType::Utf8, r#"{"a": [1, 2]}"#),
                ("e", DataType::Utf8, "happy"),
                ("st", DataType::Utf8, "a,b"),
                ("vb", DataType::Binary, "00ff10"),
                ("bl", DataType::Binary, "626c6f62"),
                ("bit8", DataType::UInt64, "165"),
                ("y", DataType::Int16, "2024"),
                ("usi", DataType::UInt16, "65535"),
                ("umi", DataType::Int32, "16777215"),
                ("ui", DataType::UInt32, "4294967295"),
                ("bn", DataType::Binary, "616263"),
                ("nothing", DataType::Utf8, "NULL"),
            ],
        );
        assert_eq!(
            timestamp_at(batch, "ts", 0),
            micros(2024, 1, 15, 8, 30, 0, 123_456)
        );
        for (name, _, value) in row_of(batch, 1).into_iter().skip(1) {
            assert_eq!(value, "NULL", "`{name}` should be NULL");
        }
    };
    cleaned_up(
        body,
        mysql_cleanup(vec![format!("DROP TABLE IF EXISTS wh_types_{s}")]),
    )
    .await;
}

#[tokio::test]
async fn mysql_streams_large_results_in_batches() {
    let s = unique();
    let mut admin = mysql_admin().await;
    admin
        .query_drop(format!(
            "CREATE TABLE wh_digits_{s} (d INT);
             INSERT INTO wh_digits_{s} VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)"
        ))
        .await
        .unwrap();
    let body = async {
        let warehouse = connect(&config(&mysql_url())).await;
        let sql = format!(
            "SELECT n, MD5(n) AS label FROM (
                 SELECT a.d + 10*b.d + 100*c.d + 1000*e.d + 10000*f.d + 100000*g.d + 1 AS n
                 FROM wh_digits_{s} a, wh_digits_{s} b, wh_digits_{s} c,
                      wh_digits_{s} e, wh_digits_{s} f, wh_digits_{s} g
             ) AS numbers WHERE n <= 200000"
        );
        let batches = read_all(&warehouse, &sql, 5000).await;
        assert!(batches.len() > 1, "{} batches", batches.len());
        assert_eq!(batches.len(), 40);
        let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(total, 200_000);
        let sum: i64 = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("n is a BIGINT expression")
                    .values()
                    .to_vec()
            })
            .sum();
        assert_eq!(sum, 200_000 * 200_001 / 2);
    };
    cleaned_up(
        body,
        mysql_cleanup(vec![format!("DROP TABLE IF EXISTS wh_digits_{s}")]),
    )
    .await;
}

#[tokio::test]
async fn mysql_dropping_a_stream_stops_the_query() {
    let s = unique();
    let mut admin = mysql_admin().await;
    admin
        .query_drop(format!(
            "CREATE TABLE wh_digits_{s} (d INT);
             INSERT INTO wh_digits_{s} VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)"
        ))
        .await
        .unwrap();
    let body = async {
        let warehouse = connect(&config(&mysql_url())).await;
        let marker = format!("wh_drop_{s}");
        let sql = format!(
            "SELECT a.d AS {marker} FROM wh_digits_{s} a, wh_digits_{s} b, wh_digits_{s} c,
                 wh_digits_{s} e, wh_digits_{s} f, wh_digits_{s} g, wh_digits_{s} h, wh_digits_{s} i"
        );
        let mut stream = warehouse.stream(&sql, 1000).await.unwrap();
        let first = stream.try_next().await.unwrap().unwrap();
        assert_eq!(first.num_rows(), 1000);
        drop(stream);
        let mut admin = mysql_admin().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let running: Option<i64> = admin
                .query_first(format!(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST
                     WHERE INFO LIKE '%{marker} FROM%' AND ID <> CONNECTION_ID()"
                ))
                .await
                .unwrap();
            if running == Some(0) {
                break;
            }
            assert!(Instant::now() < deadline, "the query still runs");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        read_all(&warehouse, "SELECT 1 AS one", 0).await;
    };
    cleaned_up(
        body,
        mysql_cleanup(vec![format!("DROP TABLE IF EXISTS wh_digits_{s}")]),
    )
    .await;
}

#[tokio::test]
async fn mysql_unreachable_server_names_the_address_not_the_password() {
    let url = format!("mysql://root:{PASSWORD}@127.0.0.1:1/test");
    let error = Warehouse::connect(&config(&url)).await.unwrap_err();
    assert!(
        matches!(error, WarehouseError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("127.0.0.1:1"), "{error}");
    assert_no_password(&error);
}

#[tokio::test]
async fn mysql_login_errors() {
    let s = unique();
    let user = format!("wh_pw_{s}");
    let mut admin = mysql_admin().await;
    admin
        .query_drop(format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'"
        ))
        .await
        .unwrap();
    let body = async {
        let url = with_login(&mysql_url(), &user, Some("wrong-pw"), None);
        let error = Warehouse::connect(&config(&url)).await.unwrap_err();
        assert!(matches!(error, WarehouseError::Auth { .. }), "{error:?}");
        assert!(error.to_string().contains(&user), "{error}");
        assert!(error.to_string().contains("127.0.0.1:3306"), "{error}");
        assert_no_password(&error);
        // The right password gets in.
        let url = with_login(&mysql_url(), &user, Some(PASSWORD), Some(""));
        connect(&config(&url)).await;
        let database = format!("wh_nodb_{s}");
        let url = with_login(&mysql_url(), "root", None, Some(&database));
        let error = Warehouse::connect(&config(&url)).await.unwrap_err();
        assert!(
            matches!(error, WarehouseError::UnknownDatabase { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(&database), "{error}");
    };
    cleaned_up(
        body,
        mysql_cleanup(vec![format!("DROP USER IF EXISTS '{user}'@'%'")]),
    )
    .await;
}

#[tokio::test]
async fn mysql_query_errors_name_the_table_and_place_the_error() {
    let s = unique();
    let warehouse = connect(&config(&mysql_url())).await;
    let missing = format!("SELECT * FROM wh_missing_{s}");
    for error in [
        warehouse.schema(&missing).await.unwrap_err(),
        warehouse.check(&missing).await.unwrap_err(),
        stream_error(&warehouse, &missing).await,
    ] {
        match &error {
            WarehouseError::MissingTable { table, .. } => {
                assert_eq!(table, &format!("test.wh_missing_{s}"))
            }
            other => panic!("{other:?}"),
        }
        assert!(error.to_string().contains(&format!("wh_missing_{s}")));
    }
    let sql = "SELECT 1 AS id,\nFROM wh_x";
    for error in [
        warehouse.schema(sql).await.unwrap_err(),
        warehouse.check(sql).await.unwrap_err(),
        stream_error(&warehouse, sql).await,
    ] {
        assert!(matches!(error, WarehouseError::Syntax { .. }), "{error:?}");
        let position = error.position().expect("the quoted text is found");
        assert_eq!(line_column(sql, position), (2, 1));
    }
}

#[tokio::test]
async fn mysql_statement_timeout_cancels_the_query() {
    let mut config = config(&mysql_url());
    config.statement_timeout = Some(Duration::from_millis(200));
    let warehouse = connect(&config).await;
    let started = Instant::now();
    let error = stream_error(&warehouse, "SELECT SLEEP(5) AS slept").await;
    assert!(
        matches!(error, WarehouseError::Timeout { limit: Some(l) } if l == Duration::from_millis(200)),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn mysql_permission_denied() {
    let s = unique();
    let user = format!("wh_np_{s}");
    let mut admin = mysql_admin().await;
    for statement in [
        format!("CREATE TABLE wh_public_{s} (id INT)"),
        format!("CREATE TABLE wh_secret_{s} (id INT)"),
        format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'"),
        format!("GRANT SELECT ON test.wh_public_{s} TO '{user}'@'%'"),
    ] {
        admin.query_drop(statement).await.unwrap();
    }
    let body = async {
        let url = with_login(&mysql_url(), &user, Some(PASSWORD), None);
        let warehouse = connect(&config(&url)).await;
        read_all(&warehouse, &format!("SELECT id FROM wh_public_{s}"), 0).await;
        let sql = format!("SELECT id FROM wh_secret_{s}");
        for error in [
            warehouse.check(&sql).await.unwrap_err(),
            stream_error(&warehouse, &sql).await,
        ] {
            assert!(
                matches!(error, WarehouseError::PermissionDenied { .. }),
                "{error:?}"
            );
            assert!(
                error.to_string().contains(&format!("wh_secret_{s}")),
                "{error}"
            );
            assert_no_password(&error);
        }
    };
    cleaned_up(
        body,
        mysql_cleanup(vec![
            format!("DROP USER IF EXISTS '{user}'@'%'"),
            format!("DROP TABLE IF EXISTS wh_public_{s}, wh_secret_{s}"),
        ]),
    )
    .await;
}

#[tokio::test]
async fn mysql_tls_modes() {
    let mut admin = mysql_admin().await;
    let have_ssl: Option<(String, String)> = admin
        .query_first("SHOW VARIABLES LIKE 'have_ssl'")
        .await
        .unwrap();
    let offered = have_ssl.is_some_and(|(_, value)| value == "YES");
    let mut config = config(&mysql_url());
    // `prefer` connects either way.
    config.tls = TlsMode::Prefer;
    let warehouse = connect(&config).await;
    let batches = read_all(&warehouse, "SELECT 1 AS one", 0).await;
    assert_eq!(
        batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .map(|a| a.value(0))
            .or_else(|| batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<Int32Array>()
                .map(|a| i64::from(a.value(0)))),
        Some(1)
    );
    config.tls = TlsMode::Require;
    let outcome = Warehouse::connect(&config).await;
    if offered {
        outcome.unwrap();
    } else {
        let error = outcome.unwrap_err();
        assert!(matches!(error, WarehouseError::Tls { .. }), "{error:?}");
        assert!(error.to_string().contains("does not offer TLS"), "{error}");
        assert!(error.to_string().contains("127.0.0.1:3306"), "{error}");
    }
}

#[tokio::test]
async fn mysql_sessions_are_read_only_and_in_utc() {
    let s = unique();
    let mut admin = mysql_admin().await;
    admin
        .query_drop(format!("CREATE TABLE wh_ro_{s} (id INT)"))
        .await
        .unwrap();
    let body = async {
        let warehouse = connect(&config(&mysql_url())).await;
        let batches = read_all(&warehouse, "SELECT @@session.time_zone AS tz", 0).await;
        assert_eq!(
            array_value_to_string(batches[0].column(0), 0).unwrap(),
            "+00:00"
        );
        let error = stream_error(&warehouse, &format!("INSERT INTO wh_ro_{s} VALUES (1)")).await;
        assert!(
            !matches!(error, WarehouseError::Timeout { .. }),
            "{error:?}"
        );
        let mut admin = mysql_admin().await;
        let count: Option<i64> = admin
            .query_first(format!("SELECT COUNT(*) FROM wh_ro_{s}"))
            .await
            .unwrap();
        assert_eq!(count, Some(0), "the insert must not have happened");
    };
    cleaned_up(
        body,
        mysql_cleanup(vec![format!("DROP TABLE IF EXISTS wh_ro_{s}")]),
    )
    .await;
}
