//! The JSON Schemas against the parsers: every example project and test spec the parser
//! accepts validates, wrong specs do not, and each closed mapping of a schema lists exactly the
//! keys its parser allows.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::schema::SchemaKind;
use crate::yaml::{Node, Value};
use crate::{engine_file, model, sources, sync};

/// A YAML node as JSON, the way an editor's YAML language server sees the file.
fn to_json(node: &Node, source: &str) -> Json {
    match &node.value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => match i64::try_from(*i) {
            Ok(i) => Json::from(i),
            Err(_) => Json::from(*i as f64),
        },
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Seq(items) => Json::Array(items.iter().map(|n| to_json(n, source)).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match &k.value {
                        Value::Str(s) => s.clone(),
                        _ => k.scalar_text(source).unwrap_or_default(),
                    };
                    (key, to_json(v, source))
                })
                .collect(),
        ),
    }
}

fn parse(file: &Path, text: &str) -> Json {
    let node = crate::yaml::parse(file, text)
        .unwrap_or_else(|d| panic!("{} is not YAML: {}", file.display(), d.message));
    to_json(&node, text)
}

/// The schema errors of `text` as a file of `kind`.
fn errors(kind: SchemaKind, file: &Path, text: &str) -> Vec<String> {
    let schema = kind.schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema is a valid schema");
    let instance = parse(file, text);
    validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every project under `examples/`: its directory and its spec files with their kind.
fn example_files() -> Vec<(PathBuf, Vec<(SchemaKind, PathBuf)>)> {
    let mut projects = Vec::new();
    let mut dirs: Vec<PathBuf> = fs_err::read_dir(repo().join("examples"))
        .expect("examples/ is readable")
        .map(|e| e.expect("an entry of examples/").path())
        .filter(|p| p.join("engine.yaml").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut files = vec![(SchemaKind::Engine, dir.join("engine.yaml"))];
        for (kind, sub) in [(SchemaKind::Model, "models"), (SchemaKind::Sync, "syncs")] {
            let mut found: Vec<PathBuf> = fs_err::read_dir(dir.join(sub))
                .map(|entries| {
                    entries
                        .map(|e| e.expect("an entry").path())
                        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            files.extend(found.into_iter().map(|p| (kind, p)));
        }
        projects.push((dir, files));
    }
    projects
}

#[test]
fn every_example_the_parser_accepts_validates_against_the_schemas() {
    let projects = example_files();
    assert!(projects.len() >= 5, "examples found: {}", projects.len());
    let mut checked = 0;
    for (dir, files) in projects {
        if let Err(diagnostics) = crate::load_project(&dir) {
            let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
            panic!("{} does not load: {messages:?}", dir.display());
        }
        for (kind, file) in files {
            let text = fs_err::read_to_string(&file).expect("read a spec file");
            let found = errors(kind, &file, &text);
            assert!(found.is_empty(), "{}: {found:#?}", file.display());
            checked += 1;
        }
    }
    assert!(checked >= 20, "spec files checked: {checked}");
}

#[test]
fn the_parser_tests_specs_validate() {
    for (kind, text) in [
        (SchemaKind::Engine, crate::tests::ENGINE),
        (SchemaKind::Model, crate::tests::MODEL),
        (SchemaKind::Sync, crate::tests::SYNC),
    ] {
        let found = errors(kind, Path::new("spec.yaml"), text);
        assert!(found.is_empty(), "{text}\n{found:#?}");
    }
}

/// Specs with one mistake each, valid apart from it: the schema must refuse every one.
#[test]
fn wrong_specs_do_not_validate() {
    let engine = crate::tests::ENGINE;
    let sync = crate::tests::SYNC;
    let cases: Vec<(SchemaKind, String)> = vec![
        (SchemaKind::Engine, format!("{engine}colour: blue\n")),
        (
            SchemaKind::Engine,
            engine.replace("version: 1", "version: 2"),
        ),
        (
            SchemaKind::Engine,
            engine.replace("type: hubspot", "type: pipedrive"),
        ),
        (
            SchemaKind::Engine,
            engine.replace("state:\n  path: .engine\n", "state:\n  backend: sqlite\n"),
        ),
        (
            SchemaKind::Engine,
            engine.replace(
                "state:\n  path: .engine\n",
                "state:\n  url: postgres://db/engine\n",
            ),
        ),
        (
            SchemaKind::Engine,
            engine.replace("state:\n  path: .engine\n", "state:\n  backend: postgres\n"),
        ),
        (
            SchemaKind::Engine,
            engine.replace(
                "state:\n  path: .engine\n",
                "state:\n  retention:\n    weeks: 2\n",
            ),
        ),
        (
            SchemaKind::Engine,
            engine.replace("type: hubspot", "type: hubspot\n    api_version: \"v62.0\""),
        ),
        (
            SchemaKind::Engine,
            format!("{engine}sources:\n  dw:\n    type: oracle\n    url: ${{env:DW_URL}}\n"),
        ),
        (
            SchemaKind::Engine,
            format!(
                "{engine}  sf:\n    type: salesforce\n    auth:\n      consumer_key: ${{env:K}}\n      consumer_secret: ${{env:S}}\n      refresh_token: ${{env:R}}\n      username: ${{env:U}}\n"
            ),
        ),
        (
            SchemaKind::Model,
            "name: m\nprimary_key: [id]\nsql: SELECT 1\nkey: id\n".into(),
        ),
        (
            SchemaKind::Model,
            "name: m\nprimary_key: []\nsql: SELECT 1\n".into(),
        ),
        (
            SchemaKind::Model,
            "name: 1m\nprimary_key: id\nsql: SELECT 1\n".into(),
        ),
        (
            SchemaKind::Sync,
            sync.replace("mode: upsert", "mode: merge"),
        ),
        (SchemaKind::Sync, format!("{sync}schedule: hourly\n")),
        (
            SchemaKind::Sync,
            sync.replace("column: first_name", "column: first_name\n    value: x"),
        ),
        (
            SchemaKind::Sync,
            sync.replace("column: first_name", "colum: first_name"),
        ),
        (SchemaKind::Sync, format!("{sync}batch_size: 500\n")),
        (
            SchemaKind::Sync,
            format!("{sync}guards:\n  max_change_ratio: 2\n"),
        ),
    ];
    for (kind, text) in cases {
        let found = errors(kind, Path::new("wrong.yaml"), &text);
        assert!(
            !found.is_empty(),
            "the {} schema accepts:\n{text}",
            kind.name()
        );
    }
}

/// The keys of a schema's mapping.
fn keys(schema: &Json) -> BTreeSet<String> {
    schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no properties in {schema}"))
        .keys()
        .cloned()
        .collect()
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// Every closed mapping (`additionalProperties: false`) in a schema, by its JSON pointer.
fn closed_mappings(schema: &Json, at: &str, out: &mut Vec<String>) {
    match schema {
        Json::Object(map) => {
            if map.get("additionalProperties") == Some(&Json::Bool(false)) {
                out.push(at.to_string());
            }
            for (k, v) in map {
                closed_mappings(v, &format!("{at}/{k}"), out);
            }
        }
        Json::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                closed_mappings(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_schemas_list_exactly_the_keys_the_parsers_allow() {
    let engine = SchemaKind::Engine.schema();
    let model = SchemaKind::Model.schema();
    let sync = SchemaKind::Sync.schema();
    let defs = |schema: &Json, name: &str| schema["definitions"][name].clone();
    let pairs: Vec<(&str, Json, &[&str])> = vec![
        ("engine", engine.clone(), engine_file::ROOT_KEYS),
        (
            "engine/state",
            defs(&engine, "state"),
            engine_file::STATE_KEYS,
        ),
        (
            "engine/retention",
            defs(&engine, "retention"),
            engine_file::RETENTION_KEYS,
        ),
        (
            "engine/table",
            defs(&engine, "table"),
            engine_file::TABLE_KEYS,
        ),
        (
            "engine/source",
            defs(&engine, "source"),
            sources::SOURCE_KEYS,
        ),
        (
            "engine/destination",
            defs(&engine, "destination"),
            engine_file::DESTINATION_KEYS,
        ),
        (
            "engine/rate_limit",
            defs(&engine, "rate_limit"),
            engine_file::RATE_LIMIT_KEYS,
        ),
        ("engine/auth", defs(&engine, "auth"), engine_file::AUTH_KEYS),
        ("model", model.clone(), model::MODEL_KEYS),
        ("sync", sync.clone(), sync::SYNC_KEYS),
        ("sync/match", defs(&sync, "match"), sync::MATCH_KEYS),
        (
            "sync/mapping",
            defs(&sync, "mapping_entry"),
            sync::MAPPING_KEYS,
        ),
        ("sync/guards", defs(&sync, "guards"), sync::GUARD_KEYS),
        (
            "sync/association",
            defs(&sync, "association"),
            sync::ASSOCIATION_KEYS,
        ),
        ("sync/event", defs(&sync, "event"), sync::EVENT_KEYS),
        ("sync/list", defs(&sync, "list"), sync::LIST_KEYS),
        (
            "sync/match_records",
            defs(&sync, "match_records"),
            sync::MATCH_RECORDS_KEYS,
        ),
    ];
    for (what, schema, parser) in &pairs {
        assert_eq!(
            keys(schema),
            set(parser),
            "{what}: schema keys vs parser keys"
        );
    }
    // Every closed mapping of the schemas is one of those compared above.
    let mut closed = Vec::new();
    for schema in [&engine, &model, &sync] {
        closed_mappings(schema, "", &mut closed);
    }
    assert_eq!(closed.len(), pairs.len(), "closed mappings: {closed:#?}");

    // Choices and the keys one type refuses.
    let state = defs(&engine, "state");
    assert_eq!(
        state["properties"]["backend"]["enum"],
        serde_json::json!(engine_file::STATE_BACKENDS)
    );
    assert_eq!(keys(&state["else"]), set(engine_file::POSTGRES_STATE_KEYS));
    let table = defs(&engine, "table");
    assert_eq!(
        table["properties"]["format"]["enum"],
        serde_json::json!(engine_file::FORMATS)
    );
    let destination = defs(&engine, "destination");
    assert_eq!(
        destination["properties"]["type"]["enum"],
        serde_json::json!(engine_file::DESTINATION_TYPES)
    );
    let mut salesforce_only = keys(&destination["then"]);
    salesforce_only.remove("rate_limit");
    assert_eq!(salesforce_only, set(engine_file::SALESFORCE_ONLY));
    assert_eq!(keys(&destination["else"]), set(engine_file::HUBSPOT_ONLY));
    let source = defs(&engine, "source");
    assert_eq!(
        source["properties"]["type"]["enum"],
        serde_json::json!(sources::SOURCE_TYPES)
    );
    assert_eq!(
        source["properties"]["tls"]["enum"],
        serde_json::json!(sources::TLS_MODES)
    );
    assert_eq!(
        state["properties"]["tls"]["enum"],
        serde_json::json!(sources::TLS_MODES)
    );
    let auth = defs(&engine, "auth");
    assert_eq!(
        auth["oneOf"][0]["required"],
        serde_json::json!(engine_file::REFRESH_TOKEN_KEYS)
    );
    assert_eq!(
        auth["oneOf"][1]["required"],
        serde_json::json!(engine_file::JWT_BEARER_KEYS)
    );
    let sources_of_a_mapping: Vec<Json> = defs(&sync, "mapping_entry")["oneOf"]
        .as_array()
        .expect("oneOf")
        .iter()
        .map(|b| b["required"][0].clone())
        .collect();
    assert_eq!(
        Json::Array(sources_of_a_mapping),
        serde_json::json!(sync::SOURCE_KEYS)
    );
}

/// Specs that use every key the examples leave out; the parser accepts them, and so must the
/// schemas.
const EVERY_KEY_ENGINE: &str = r#"version: 1
project: every-key
state:
  backend: local
  path: .engine
  retention:
    runs: 50
    days: 30
tables:
  users:
    path: data/users.csv
    format: csv
    has_header: true
    delimiter: ";"
sources:
  dw:
    type: postgres
    url: "${env:DW_URL}"
    tls: verify_full
    ca_file: certs/ca.pem
    statement_timeout: 10m
destinations:
  hubspot:
    type: hubspot
    base_url: "${env:HUBSPOT_BASE_URL}"
    token: "${env:HUBSPOT_TOKEN}"
    rate_limit:
      requests_per_second: 9.5
  salesforce:
    type: salesforce
    login: test
    api_version: "v61.0"
    auth:
      consumer_key: "${env:SF_KEY}"
      username: "${env:SF_USER}"
      private_key: "${env:SF_PRIVATE_KEY}"
    rate_limit:
      daily_share: 0.5
"#;

const EVERY_KEY_POSTGRES_STATE: &str = r#"version: 1
project: shared-state
state:
  backend: postgres
  url: "${env:STATE_URL}"
  schema: engine_state
  tls: require
  ca_file: certs/ca.pem
destinations:
"#;

const EVERY_KEY_SYNC: &str = r#"name: companies
model: contacts
destination: hubspot
object: companies
match:
  property: domain
  column: email
  on_invalid: skip
  lookup: search
  fallback: [name]
mapping:
  - property: name
    column: first_name
    on_null: keep
  - property: founded
    value: 1999
associations:
  - name: owner
    to: contacts
    column: user_id
    by: email
    label: Primary
    when: always
    remove_stale: true
batch_size: 100
guards:
  max_deletes: 0
"#;

const EVERY_KEY_EVENTS: &str = r#"name: signups
model: contacts
destination: hubspot
object: events
match:
  property: email
  column: email
event:
  name_column: first_name
  occurred_at: user_id
"#;

const EVERY_KEY_LIST: &str = r#"name: newsletter
model: contacts
destination: hubspot
object: lists
match:
  property: email
  column: email
list:
  id: 42
on_remove: delete
"#;

const EVERY_KEY_SALESFORCE: &str = r#"name: donations
model: contacts
destination: salesforce
object: Donation__c
match:
  property: External_Id__c
  column: user_id
mapping:
  - property: Amount__c
    template: "{{ row.user_id }}"
match_records:
  id_column: user_id
  email_column: email
  contact_field: Contact__c
  lead_field: Lead__c
  on_duplicate: most_recent
bulk_threshold: 5000
"#;

const EVERY_KEY_MODEL: &str = "name: warehouse_users
description: Users, read in the warehouse
source: dw
primary_key: id
sql: SELECT id, email FROM users
";

#[test]
fn specs_with_every_key_load_and_validate() {
    let csv = "id;email;first_name\n1;a@example.com;Ada\n";
    let files = [
        ("engine.yaml", EVERY_KEY_ENGINE),
        ("data/users.csv", csv),
        ("models/warehouse_users.yaml", EVERY_KEY_MODEL),
        ("syncs/companies.yaml", EVERY_KEY_SYNC),
        ("syncs/signups.yaml", EVERY_KEY_EVENTS),
        ("syncs/newsletter.yaml", EVERY_KEY_LIST),
        ("syncs/donations.yaml", EVERY_KEY_SALESFORCE),
    ];
    let dir = crate::tests::project(&files);
    if let Err(diagnostics) = crate::load_project(dir.path()) {
        let messages: Vec<String> = diagnostics
            .iter()
            .map(|d| format!("{} {}", d.code, d.message))
            .collect();
        panic!("the parser refuses the spec: {messages:#?}");
    }
    let state = crate::tests::project(&[
        ("engine.yaml", EVERY_KEY_POSTGRES_STATE),
        ("syncs/contacts_to_hubspot.yaml", ""),
    ]);
    if let Err(diagnostics) = crate::load_project(state.path()) {
        let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
        panic!("the parser refuses the PostgreSQL state: {messages:#?}");
    }
    for (kind, text) in [
        (SchemaKind::Engine, EVERY_KEY_ENGINE),
        (SchemaKind::Engine, EVERY_KEY_POSTGRES_STATE),
        (SchemaKind::Model, EVERY_KEY_MODEL),
        (SchemaKind::Sync, EVERY_KEY_SYNC),
        (SchemaKind::Sync, EVERY_KEY_EVENTS),
        (SchemaKind::Sync, EVERY_KEY_LIST),
        (SchemaKind::Sync, EVERY_KEY_SALESFORCE),
    ] {
        let found = errors(kind, Path::new("every-key.yaml"), text);
        assert!(found.is_empty(), "{text}\n{found:#?}");
    }
}
