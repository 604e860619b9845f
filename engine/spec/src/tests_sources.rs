//! Warehouse sources: `sources:` in `engine.yaml` and `source:` on models, as the user sees
//! their errors.

use std::time::Duration;

use crate::tests::{ENGINE, MODEL, errors, load};
use crate::*;

/// The test project's `engine.yaml` with `sources` added before `destinations:`.
fn engine_with(sources: &str) -> String {
    ENGINE.replace(
        "destinations:\n",
        &format!("sources:\n{sources}destinations:\n"),
    )
}

const WAREHOUSE: &str = r#"  warehouse:
    type: postgres
    url: "postgres://ci:${env:PGPASSWORD}@db.internal:5432/analytics"
    tls: verify_full
    ca_file: certs/ca.pem
    statement_timeout: 10m
  shop:
    type: mysql
    url: "${env:SHOP_URL}"
"#;

#[test]
fn a_model_runs_in_a_declared_warehouse() {
    let model = MODEL.replace("primary_key:", "source: warehouse\nprimary_key:");
    let (dir, project, warnings) = load(&[
        ("engine.yaml", &engine_with(WAREHOUSE)),
        ("models/contacts.yaml", &model),
    ]);
    assert!(warnings.is_empty(), "{warnings:?}");
    let warehouse = project.source("warehouse").expect("the source");
    assert_eq!(warehouse.kind, SourceKind::Postgres);
    assert_eq!(warehouse.tls, Some(SourceTls::VerifyFull));
    assert_eq!(warehouse.statement_timeout, Some(Duration::from_secs(600)));
    assert_eq!(
        warehouse.ca_file.as_deref(),
        Some(dir.path().join("certs/ca.pem").as_path())
    );
    let shop = project.source("shop").expect("the source");
    assert_eq!(shop.kind, SourceKind::Mysql);
    assert_eq!(shop.tls, None, "as the URL says");
    let contacts = project.model("contacts").expect("the model");
    assert_eq!(
        contacts.source.as_ref().map(|s| s.value.as_str()),
        Some("warehouse")
    );
}

#[test]
fn sources_refuse_passwords_unknown_names_and_bad_values() {
    let bad = r#"  warehouse:
    type: postgre
    url: "postgres://ci:hunter2@db:5432/analytics"
    tls: strict
    statement_timeout: soon
  shop:
    type: mysql
    url: "https://shop.example.com"
"#;
    let model = MODEL.replace("primary_key:", "source: warehous\nprimary_key:");
    let shown = errors(&[
        ("engine.yaml", &engine_with(bad)),
        ("models/contacts.yaml", &model),
    ]);
    assert!(shown.contains("unknown `type` value `postgre`"), "{shown}");
    assert!(shown.contains("did you mean `postgres`?"), "{shown}");
    assert!(
        shown.contains("a password is written in the `url` of source `warehouse`"),
        "{shown}"
    );
    assert!(
        !shown.contains("hunter2"),
        "the password is never shown: {shown}"
    );
    assert!(shown.contains("unknown `tls` value `strict`"), "{shown}");
    assert!(
        shown.contains("`statement_timeout` must be a duration, found `soon`"),
        "{shown}"
    );
    assert!(
        shown.contains("`url` must start with mysql:// or mariadb://"),
        "{shown}"
    );
    assert!(shown.contains("unknown source `warehous`"), "{shown}");
    assert!(shown.contains("models/contacts.yaml:3:9"), "{shown}");

    let no_sources = MODEL.replace("primary_key:", "source: warehouse\nprimary_key:");
    let shown = errors(&[("models/contacts.yaml", &no_sources)]);
    assert!(shown.contains("unknown source `warehouse`"), "{shown}");
    assert!(
        shown.contains("add `warehouse:` under `sources:` in `engine.yaml`"),
        "{shown}"
    );
}

/// The test project's `engine.yaml` with a `state:` section.
fn engine_with_state(state: &str) -> String {
    ENGINE.replace("state:\n  path: .engine\n", &format!("state:\n{state}"))
}

#[test]
fn the_state_can_live_in_postgres() {
    let (dir, project, warnings) = load(&[(
        "engine.yaml",
        &engine_with_state(
            "  backend: postgres\n  url: \"${env:STATE_URL}\"\n  schema: ci_state\n  tls: require\n  path: cache\n",
        ),
    )]);
    assert!(warnings.is_empty(), "{warnings:?}");
    let StateBackend::Postgres(spec) = &project.state_backend else {
        panic!("expected the PostgreSQL backend");
    };
    assert_eq!(spec.url.raw, "${env:STATE_URL}");
    assert_eq!(spec.schema.value, "ci_state");
    assert_eq!(spec.tls, Some(SourceTls::Require));
    assert_eq!(project.state_dir, dir.path().join("cache"));

    let (_, project, _) = load(&[(
        "engine.yaml",
        &engine_with_state("  backend: postgres\n  url: \"${env:STATE_URL}\"\n"),
    )]);
    let StateBackend::Postgres(spec) = &project.state_backend else {
        panic!("expected the PostgreSQL backend");
    };
    assert_eq!(spec.schema.value, DEFAULT_STATE_SCHEMA);
    let (_, project, _) = load(&[]);
    assert!(matches!(project.state_backend, StateBackend::Local));
}

#[test]
fn a_postgres_state_needs_a_url_without_a_written_password_and_a_plain_schema() {
    let missing = errors(&[("engine.yaml", &engine_with_state("  backend: postgres\n"))]);
    assert!(missing.contains("`url`"), "{missing}");
    assert!(missing.contains("engine.yaml:"), "{missing}");

    let literal = errors(&[(
        "engine.yaml",
        &engine_with_state("  backend: postgres\n  url: postgres://ci:hunter2@db:5432/engine\n"),
    )]);
    assert!(literal.contains("spec::literal_secret"), "{literal}");
    assert!(literal.contains("`url` of `state`"), "{literal}");
    assert!(!literal.contains("hunter2"), "{literal}");

    let scheme = errors(&[(
        "engine.yaml",
        &engine_with_state("  backend: postgres\n  url: mysql://db/engine\n"),
    )]);
    assert!(scheme.contains("spec::invalid_url"), "{scheme}");

    let schema = errors(&[(
        "engine.yaml",
        &engine_with_state(
            "  backend: postgres\n  url: ${env:STATE_URL}\n  schema: \"Engine State\"\n",
        ),
    )]);
    assert!(schema.contains("lowercase SQL identifier"), "{schema}");

    let local = errors(&[(
        "engine.yaml",
        &engine_with_state("  url: ${env:STATE_URL}\n"),
    )]);
    assert!(local.contains("spec::option_for_other_type"), "{local}");
    assert!(local.contains("backend: postgres"), "{local}");

    let backend = errors(&[("engine.yaml", &engine_with_state("  backend: mysql\n"))]);
    assert!(backend.contains("`local`"), "{backend}");
}
