use std::path::PathBuf;

use engine_diag::SourceSpan;
use engine_spec::{FileFormat, Located, ModelSpec, TableSpec};
use futures_util::TryStreamExt;

use super::*;

fn span(line: usize, column: usize) -> SourceSpan {
    SourceSpan {
        file: PathBuf::from("models/m.yaml"),
        line,
        column,
        length: 0,
    }
}

fn model(sql: &str) -> ModelSpec {
    ModelSpec {
        name: Located {
            value: "m".into(),
            span: span(1, 7),
        },
        file: PathBuf::from("models/m.yaml"),
        description: None,
        source: None,
        primary_key: vec![Located {
            value: "id".into(),
            span: span(2, 15),
        }],
        sql: sql.into(),
        sql_span: span(4, 3),
        sql_indent: 2,
    }
}

async fn engine_with_csv(body: &str) -> (tempfile::TempDir, ModelEngine) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    fs_err::write(&path, body).unwrap();
    let engine = ModelEngine::empty(&EngineOptions::default()).unwrap();
    engine
        .context()
        .register_csv("users", path.to_str().unwrap(), CsvReadOptions::new())
        .await
        .unwrap();
    (dir, engine)
}

#[tokio::test]
async fn runs_a_model_over_csv() {
    let (_dir, engine) = engine_with_csv("id,email\n1,a@x.io\n2,b@x.io\n").await;
    let stream = engine
        .execute(&model("SELECT id, upper(email) AS email FROM users"))
        .await
        .unwrap();
    let batches: Vec<_> = stream.try_collect().await.unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
}

#[tokio::test]
async fn unknown_column_points_into_the_yaml() {
    let (_dir, engine) = engine_with_csv("id,email\n1,a@x.io\n").await;
    let d = engine
        .schema(&model("SELECT id,\n  emial FROM users"))
        .await
        .unwrap_err();
    assert_eq!(d.code, "model::unknown_column", "{d}");
    let Some(engine_diag::Location::Source(s)) = &d.location else {
        panic!("{d}")
    };
    assert_eq!((s.line, s.column), (5, 5), "{d}");
}

#[tokio::test]
async fn syntax_error_points_into_the_yaml() {
    let (_dir, engine) = engine_with_csv("id,email\n1,a@x.io\n").await;
    let d = engine
        .schema(&model("SELEC id FROM users"))
        .await
        .unwrap_err();
    assert_eq!(d.code, "model::sql_syntax", "{d}");
}

#[tokio::test]
async fn unknown_table_is_named() {
    let (_dir, engine) = engine_with_csv("id,email\n1,a@x.io\n").await;
    let d = engine
        .schema(&model("SELECT * FROM userz"))
        .await
        .unwrap_err();
    assert_eq!(d.code, "model::unknown_table", "{d}");
    assert!(d.message.contains("userz"), "{d}");
}

#[test]
fn positions_shift_by_the_sql_scalar() {
    let m = model("x");
    assert_eq!(sql_position_to_file(&m, 1, 1), (4, 3));
    assert_eq!(sql_position_to_file(&m, 2, 5), (5, 7));
}

/// A `CREATE TABLE` as a model's SQL ran (creating a table) and planned to no columns, which
/// gave a cascade of "no column" errors; it is one `model::not_a_query` at the `sql:`.
#[tokio::test]
async fn a_statement_that_is_not_a_query_is_one_clear_error() {
    let (_dir, engine) = engine_with_csv("id,email\n1,a@x.io\n").await;
    for (sql, found) in [
        ("CREATE TABLE t AS SELECT id FROM users", "`CREATE TABLE`"),
        ("create table t (id int)", "`CREATE TABLE`"),
        ("DROP TABLE users", "`DROP TABLE`"),
        ("INSERT INTO users VALUES (2, 'b@x.io')", "`INSERT`"),
        ("EXPLAIN SELECT id FROM users", "`EXPLAIN`"),
        ("SELECT id FROM users; SELECT 1", "more than one statement"),
    ] {
        let d = engine.schema(&model(sql)).await.unwrap_err();
        assert_eq!(d.code, "model::not_a_query", "{sql}: {d}");
        assert!(d.message.contains(found), "{sql}: {d}");
        let Some(engine_diag::Location::Source(s)) = &d.location else {
            panic!("{d}")
        };
        assert_eq!((s.line, s.column), (4, 3), "{d}");
        if found == "`CREATE TABLE`" {
            assert_eq!(
                s.length,
                "CREATE TABLE".len(),
                "the keyword is underlined: {d}"
            );
        }
        assert!(engine.execute(&model(sql)).await.is_err(), "{sql}");
    }
    // Nothing ran: the table is still there, unchanged.
    let batches: Vec<_> = engine
        .execute(&model("SELECT id FROM users"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    for sql in [
        "WITH u AS (SELECT id FROM users) SELECT * FROM u",
        "VALUES (1)",
    ] {
        engine.schema(&model(sql)).await.expect(sql);
    }
}

fn csv_table(path: &std::path::Path) -> TableSpec {
    TableSpec {
        name: Located {
            value: "users".into(),
            span: span(5, 3),
        },
        path: path.to_path_buf(),
        path_span: span(6, 11),
        format: FileFormat::Csv,
        has_header: true,
        delimiter: b',',
    }
}

/// An engine with `body` registered as the table `users` the way projects register tables.
async fn engine_with_table(body: &str) -> (tempfile::TempDir, ModelEngine, Result<(), Diagnostic>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    fs_err::write(&path, body).unwrap();
    let mut engine = ModelEngine::empty(&EngineOptions::default()).unwrap();
    let registered = engine.register_table(&csv_table(&path)).await;
    (dir, engine, registered)
}

/// A zero-byte CSV registered as a table with no columns, and every model reading it failed
/// with "No field named id".
#[tokio::test]
async fn an_empty_table_file_is_a_clear_error_naming_it() {
    for body in ["", "\n \n"] {
        let (dir, _engine, registered) = engine_with_table(body).await;
        let d = registered.unwrap_err();
        assert_eq!(d.code, "model::empty_table", "{d}");
        let path = dir.path().join("users.csv");
        assert!(
            d.message.contains(&format!("`{}`", path.display())),
            "the real path: {d}"
        );
        assert!(d.message.contains("table `users`"), "{d}");
        assert_eq!(d.location, Some(engine_diag::Location::Source(span(6, 11))));
        assert!(d.hints[0].contains("header"), "{d}");
    }
}

/// A header without rows is a table with the header's columns and no rows.
#[tokio::test]
async fn a_header_only_csv_is_a_table_with_no_rows() {
    let (_dir, engine, registered) = engine_with_table("id,email\n").await;
    registered.unwrap();
    let m = model("SELECT id, lower(email) AS email FROM users");
    let schema = engine.schema(&m).await.unwrap();
    assert_eq!(schema.fields().len(), 2);
    let batches: Vec<_> = engine
        .execute(&m)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
}

/// CSV errors named the file by its object-store path, without the leading `/`.
#[tokio::test]
async fn csv_errors_name_the_real_absolute_path() {
    // Malformed within the rows DataFusion reads to infer the schema: registering fails.
    // (Errors while running a model name files by their real path already.)
    let (dir, _engine, registered) =
        engine_with_table("id,email\n1,a@x.io\n2,b@x.io,extra\n").await;
    let path = dir.path().join("users.csv").display().to_string();
    let d = registered.unwrap_err();
    assert_eq!(d.code, "model::table_unreadable", "{d}");
    assert!(d.message.contains(&format!(" {path}")), "{path}: {d}");
    assert!(!d.message.contains('\n'), "one line: {d}");
}

#[test]
fn real_paths_restore_only_stripped_paths() {
    let paths = ["/tmp/p/users.csv".to_string()];
    assert_eq!(
        errors::real_paths("file tmp/p/users.csv: bad", &paths),
        "file /tmp/p/users.csv: bad"
    );
    assert_eq!(
        errors::real_paths("tmp/p/users.csv and /tmp/p/users.csv", &paths),
        "/tmp/p/users.csv and /tmp/p/users.csv"
    );
    assert_eq!(
        errors::real_paths("/x/tmp/p/users.csv", &paths),
        "/x/tmp/p/users.csv"
    );
}
