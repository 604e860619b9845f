use std::path::PathBuf;

use engine_diag::SourceSpan;
use engine_spec::{Located, ModelSpec};
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
