//! Tests: a good project, every main error kind as the user sees it (insta inline snapshots of
//! `render_human`), `${env:NAME}` handling, and the SQL-position → file-position map.

use std::path::Path;

use engine_diag::{Diagnostic, render_human};
use insta::assert_snapshot;
use tempfile::TempDir;

use crate::env::{self, Piece, Problem};
use crate::*;

pub(crate) const ENGINE: &str = r#"version: 1
project: quickstart
state:
  path: .engine
tables:
  users:
    path: data/users.csv
    has_header: true
    delimiter: ","
  events:
    path: data/events.jsonl
destinations:
  hubspot:
    type: hubspot
    base_url: "${env:HUBSPOT_BASE_URL}"
    token: "${env:HUBSPOT_TOKEN}"
    rate_limit:
      requests_per_second: 10
"#;

pub(crate) const MODEL: &str = "name: contacts
description: Active users as HubSpot contacts
primary_key: [user_id]
sql: |
  SELECT id AS user_id, lower(email) AS email, first_name
  FROM users
";

pub(crate) const SYNC: &str = r#"name: contacts_to_hubspot
model: contacts
destination: hubspot
object: contacts
mode: upsert
match:
  property: email
  column: email
mapping:
  - property: firstname
    column: first_name
  - property: phone
    column: phone
    on_null: clear
  - property: lifecyclestage
    value: lead
  - property: company
    template: "{{ row['company'] | upper }}"
on_remove: clear_fields
guards:
  max_deletes: 100
  max_change_ratio: 0.5
batch_size: 50
"#;

/// A project holding the base files, with `files` added or replacing them (by path).
pub(crate) fn project(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory can be created");
    let base = [
        ("engine.yaml", ENGINE),
        ("models/contacts.yaml", MODEL),
        ("syncs/contacts_to_hubspot.yaml", SYNC),
        (
            "data/users.csv",
            "id,email,first_name\n1,a@example.com,Ada\n",
        ),
        ("data/events.jsonl", "{\"id\": 1}\n"),
    ];
    for (path, text) in base
        .iter()
        .filter(|(p, _)| !files.iter().any(|(f, _)| f == p))
        .chain(files)
    {
        if text.is_empty() {
            continue; // an empty text leaves the base file out
        }
        let path = dir.path().join(path);
        fs_err::create_dir_all(path.parent().expect("test paths have a parent"))
            .expect("test directories can be created");
        fs_err::write(&path, text).expect("test files can be written");
    }
    dir
}

/// Loads a project expected to fail and renders its diagnostics as a user sees them.
pub(crate) fn errors(files: &[(&str, &str)]) -> String {
    let dir = project(files);
    match load_project(dir.path()) {
        Ok(_) => panic!("the project loaded, but errors were expected"),
        Err(diagnostics) => render_human(&diagnostics, dir.path()),
    }
}

/// Loads a project expected to succeed.
pub(crate) fn load(files: &[(&str, &str)]) -> (TempDir, Project, Vec<Diagnostic>) {
    let dir = project(files);
    match load_project(dir.path()) {
        Ok((project, warnings)) => (dir, project, warnings),
        Err(diagnostics) => panic!("{}", render_human(&diagnostics, dir.path())),
    }
}

#[test]
fn good_project_loads_with_defaults_and_spans() {
    let (dir, project, warnings) = load(&[]);
    assert!(warnings.is_empty(), "{warnings:?}");
    let root = std::path::absolute(dir.path()).unwrap();
    assert_eq!(project.root, root);
    assert_eq!(project.name, "quickstart");
    assert_eq!(project.state_dir, root.join(".engine"));

    let [users, events] = project.tables.as_slice() else {
        panic!("two tables")
    };
    assert_eq!(users.name.value, "users");
    assert_eq!(users.path, root.join("data/users.csv"));
    assert_eq!(users.format, FileFormat::Csv);
    assert!(users.has_header);
    assert_eq!(users.delimiter, b',');
    assert_eq!((users.path_span.line, users.path_span.column), (7, 11));
    assert_eq!(events.format, FileFormat::Ndjson);

    let hubspot = project.destination("hubspot").unwrap();
    assert_eq!(hubspot.kind, DestinationKind::Hubspot);
    assert_eq!(hubspot.requests_per_second, Some(10.0));
    let token = hubspot.token.as_ref().unwrap();
    assert_eq!(token.raw, "${env:HUBSPOT_TOKEN}");
    assert_eq!(token.variables(), ["HUBSPOT_TOKEN"]);
    assert_eq!(token.span.to_string(), "engine.yaml:16:12");

    let model = project.model("contacts").unwrap();
    assert_eq!(model.file, Path::new("models/contacts.yaml"));
    assert_eq!(
        model.description.as_deref(),
        Some("Active users as HubSpot contacts")
    );
    assert_eq!(model.primary_key[0].value, "user_id");
    assert_eq!(
        model.sql,
        "SELECT id AS user_id, lower(email) AS email, first_name\nFROM users\n"
    );
    assert_eq!(
        (model.sql_span.line, model.sql_span.column, model.sql_indent),
        (5, 3, 2)
    );

    let sync = project.sync("contacts_to_hubspot").unwrap();
    assert_eq!(sync.file, Path::new("syncs/contacts_to_hubspot.yaml"));
    assert_eq!(sync.mode, SyncMode::Upsert);
    assert_eq!(sync.match_on.property.value, "email");
    assert_eq!(sync.on_remove, OnRemove::ClearFields);
    assert_eq!(
        sync.guards,
        Guards {
            max_deletes: Some(100),
            max_change_ratio: Some(0.5)
        }
    );
    assert_eq!(sync.batch_size.as_ref().map(|b| b.value), Some(50));
    let properties: Vec<_> = sync
        .mapping
        .iter()
        .map(|m| m.property.value.as_str())
        .collect();
    assert_eq!(
        properties,
        ["firstname", "phone", "lifecyclestage", "company"]
    );
    assert!(matches!(&sync.mapping[0].source, MappingSource::Column(c) if c.value == "first_name"));
    assert_eq!(sync.mapping[1].on_null, OnNull::Clear);
    assert!(matches!(&sync.mapping[2].source, MappingSource::Value(v) if v.value == "lead"));
    assert!(
        matches!(&sync.mapping[3].source, MappingSource::Template(t) if t.value == "{{ row['company'] | upper }}")
    );
    assert_eq!(sync.mapping[0].on_null, OnNull::Keep);
}

#[test]
fn minimal_project_uses_defaults() {
    let (dir, project, _) = load(&[
        ("engine.yml", "version: 1\nproject: p\n"),
        ("engine.yaml", ""),
        ("models/contacts.yaml", ""),
        ("syncs/contacts_to_hubspot.yaml", ""),
    ]);
    assert_eq!(
        project.state_dir,
        std::path::absolute(dir.path()).unwrap().join(".engine")
    );
    assert!(project.tables.is_empty() && project.models.is_empty() && project.syncs.is_empty());
}

#[test]
fn models_and_syncs_are_sorted_and_yml_is_read() {
    let (_dir, project, _) = load(&[
        (
            "models/b.yml",
            "name: b_model\nprimary_key: id\nsql: SELECT 1 AS id\n",
        ),
        (
            "models/a.yaml",
            "name: z_model\nprimary_key: [id, k]\nsql: 'SELECT 1 AS id'\n",
        ),
        ("models/notes.txt", "not yaml"),
    ]);
    let names: Vec<_> = project
        .models
        .iter()
        .map(|m| m.name.value.as_str())
        .collect();
    assert_eq!(names, ["b_model", "contacts", "z_model"]);
    assert_eq!(project.model("b_model").unwrap().primary_key.len(), 1);
}

#[test]
fn malformed_yaml_is_reported_with_the_other_files_errors() {
    assert_snapshot!(errors(&[
        ("models/contacts.yaml", "name: contacts\nsql: SELECT 1\n  primary_key: [id]\n"),
        ("syncs/broken.yaml", "name: [unclosed\n"),
    ]), @r"
        error[spec::yaml]: invalid YAML: mapping values are not allowed in this context
         --> models/contacts.yaml:3:14
          |
        3 |   primary_key: [id]
          |              ^
          = hint: check the indentation and quoting at this position

        error[spec::yaml]: invalid YAML: unclosed bracket '['
         --> syncs/broken.yaml:1:7
          |
        1 | name: [unclosed
          |       ^
          = hint: check the indentation and quoting at this position
        ");
}

#[test]
fn unknown_and_missing_keys_and_wrong_types() {
    assert_snapshot!(errors(&[
        ("models/contacts.yaml", "name: contacts\nprimery_key: [user_id]\nsql: 42\ncolour: red\n"),
        (
            "syncs/contacts_to_hubspot.yaml",
            "name: contacts_to_hubspot\nmodel: contacts\ndestination: hubspot\nobject: contacts\nmatch:\n  property: email\nbatch_size: ten\nmapping:\n  property: x\n",
        ),
    ]), @r"
        error[spec::missing_key]: the model is missing the required key `primary_key`
         --> models/contacts.yaml:1:1
          |
        1 | name: contacts
          | ^
          = hint: add `primary_key:` to the model

        error[spec::unknown_key]: unknown key `primery_key` in the model
         --> models/contacts.yaml:2:1
          |
        2 | primery_key: [user_id]
          | ^^^^^^^^^^^
          = hint: did you mean `primary_key`?

        error[spec::wrong_type]: `sql` must be a string, found an integer
         --> models/contacts.yaml:3:6
          |
        3 | sql: 42
          |      ^^

        error[spec::unknown_key]: unknown key `colour` in the model
         --> models/contacts.yaml:4:1
          |
        4 | colour: red
          | ^^^^^^
          = hint: valid keys are `name`, `description`, `source`, `primary_key` and `sql`

        error[spec::missing_key]: `match` is missing the required key `column`
         --> syncs/contacts_to_hubspot.yaml:5:1
          |
        5 | match:
          | ^^^^^
          = hint: add `column:` to `match`

        error[spec::wrong_type]: `batch_size` must be an integer, found a string
         --> syncs/contacts_to_hubspot.yaml:7:13
          |
        7 | batch_size: ten
          |             ^^^

        error[spec::wrong_type]: `mapping` must be a list of `- property: …` entries, found a mapping
         --> syncs/contacts_to_hubspot.yaml:8:1
          |
        8 | mapping:
          | ^^^^^^^
        ");
}

#[test]
fn engine_yaml_problems() {
    let engine = r#"version: 2
project: quickstart
tables:
  users:
    path: data/missing.csv
  Events:
    path: data/users.csv
  notes:
    path: data/notes.txt
  semi:
    path: data/users.csv
    format: cvs
    delimiter: ";;"
    has_header: yes
destinations:
  hubspot:
    type: hubspt
    base_url: "https://${HUBSPOT_HOST}/api"
    token: "pat-na1-11111111-2222"
    rate_limit:
      requests_per_second: 0
"#;
    let out = errors(&[("engine.yaml", engine), ("data/notes.txt", "x\n")]);
    assert!(
        !out.contains("pat-na1"),
        "the literal token must never be shown:\n{out}"
    );
    assert_snapshot!(out, @r#"
        error[spec::unsupported_version]: unsupported `version: 2`
         --> engine.yaml:1:10
          |
        1 | version: 2
          |          ^
          = hint: this engine reads `version: 1`

        error[spec::table_not_found]: table file `data/missing.csv` does not exist
         --> engine.yaml:5:11
          |
        5 |     path: data/missing.csv
          |           ^^^^^^^^^^^^^^^^
          = hint: paths are relative to the directory that holds `engine.yaml`

        error[spec::invalid_name]: invalid table name `Events`
         --> engine.yaml:6:3
          |
        6 |   Events:
          |   ^^^^^^
          = hint: table names are SQL identifiers: use lowercase letters, digits and `_`, starting with a letter or `_`

        error[spec::unknown_format]: cannot tell the format of `data/notes.txt` from its extension
         --> engine.yaml:9:11
          |
        9 |     path: data/notes.txt
          |           ^^^^^^^^^^^^^^
          = hint: add `format: csv`, `format: parquet` or `format: ndjson`

        error[spec::invalid_value]: unknown `format` value `cvs`
          --> engine.yaml:12:13
           |
        12 |     format: cvs
           |             ^^^
           = hint: did you mean `csv`?

        error[spec::invalid_delimiter]: `delimiter` must be one ASCII character, found `;;`
          --> engine.yaml:13:16
           |
        13 |     delimiter: ";;"
           |                ^^^^
           = hint: write one character such as `","`, `";"` or `"\t"` (not a line break or `"`)

        error[spec::wrong_type]: `has_header` must be `true` or `false`, found a string
          --> engine.yaml:14:17
           |
        14 |     has_header: yes
           |                 ^^^

        error[spec::invalid_value]: unknown `type` value `hubspt`
          --> engine.yaml:17:11
           |
        17 |     type: hubspt
           |           ^^^^^^
           = hint: did you mean `hubspot`?

        error[spec::invalid_env_reference]: environment reference in `base_url` is missing the `env:` prefix
          --> engine.yaml:18:24
           |
        18 |     base_url: "https://${HUBSPOT_HOST}/api"
           |                        ^^^^^^^^^^^^^^^
           = hint: write `${env:HUBSPOT_HOST}`

        error[spec::literal_secret]: `token` is written in the file; secrets must come from the environment
          --> engine.yaml:19:12
           |
        19 |     token: ***********************
           |            ^^^^^^^^^^^^^^^^^^^^^^^
           = note: a token committed to git is leaked: revoke it and create a new one
           = hint: export the token as `HUBSPOT_TOKEN` and write `token: "${env:HUBSPOT_TOKEN}"`

        error[spec::out_of_range]: `requests_per_second` must be greater than 0, found 0
          --> engine.yaml:21:28
           |
        21 |       requests_per_second: 0
           |                            ^
           = hint: use a positive number, e.g. `requests_per_second: 10`, or leave it out for the connector's default
        "#);
}

#[test]
fn token_mixed_with_text_or_malformed_is_refused_without_echo() {
    let engine = "version: 1\nproject: p\ndestinations:\n  a:\n    type: hubspot\n    token: \"Bearer ${env:A_TOKEN}\"\n  b:\n    type: hubspot\n    token: \"${env:pat-na1-secret}\"\n";
    let out = errors(&[("engine.yaml", engine)]);
    assert!(!out.contains("Bearer") && !out.contains("pat-na1"), "{out}");
    assert_snapshot!(out, @r#"
        error[spec::literal_secret]: `token` must be exactly one `${env:NAME}` reference, with nothing around it
         --> engine.yaml:6:12
          |
        6 |     token: ***********************
          |            ^^^^^^^^^^^^^^^^^^^^^^^
          = hint: write `token: "${env:A_TOKEN}"` and put the whole token in the variable

        error[spec::literal_secret]: malformed environment reference in `token`
         --> engine.yaml:9:12
          |
        9 |     token: ***********************
          |            ^^^^^^^^^^^^^^^^^^^^^^^
          = hint: write `${env:NAME}`, where `NAME` is letters, digits and `_`

        error[spec::unknown_destination]: unknown destination `hubspot`
         --> syncs/contacts_to_hubspot.yaml:3:14
          |
        3 | destination: hubspot
          |              ^^^^^^^
          = hint: the destinations are `a` and `b`
        "#);
}

#[test]
fn model_problems_and_duplicate_names() {
    assert_snapshot!(errors(&[
        ("models/empty.yaml", "name: empty\nprimary_key: []\nsql: |\n  \n"),
        ("models/again.yaml", "name: contacts\nprimary_key: [id, id]\nsql: SELECT 1\n"),
        ("syncs/again.yaml", &SYNC.replace("batch_size: 50", "batch_size: 100")),
    ]), @r"
        error[spec::duplicate_column]: column `id` is listed twice in `primary_key`
         --> models/again.yaml:2:19
          |
        2 | primary_key: [id, id]
          |                   ^^
          = note: first listed at models/again.yaml:2:15
          = hint: list each column once

        error[spec::duplicate_name]: model `contacts` is defined twice
         --> models/contacts.yaml:1:7
          |
        1 | name: contacts
          |       ^^^^^^^^
          = note: first defined at models/again.yaml:1:7
          = hint: give each model its own name

        error[spec::empty_primary_key]: `primary_key` must name at least one column
         --> models/empty.yaml:2:14
          |
        2 | primary_key: []
          |              ^
          = hint: list the columns that identify a row, e.g. `primary_key: [user_id]`

        error[spec::empty_sql]: `sql` is empty
         --> models/empty.yaml:3:6
          |
        3 | sql: |
          |      ^
          = hint: write the model's query, e.g. `sql: SELECT id, email FROM users`

        error[spec::duplicate_name]: sync `contacts_to_hubspot` is defined twice
         --> syncs/contacts_to_hubspot.yaml:1:7
          |
        1 | name: contacts_to_hubspot
          |       ^^^^^^^^^^^^^^^^^^^
          = note: first defined at syncs/again.yaml:1:7
          = hint: give each sync its own name
        ");
}

#[test]
fn sync_problems() {
    let sync = r#"name: contacts_to_hubspot
model: contact
destination: hubspots
object: contacts
mode: upsrt
match:
  property: email
  column: email
mapping:
  - property: firstname
  - property: lastname
    column: last_name
    value: Smith
  - property: firstname
    column: first_name
  - property: email
    column: email
  - property: phone
    column: phone
    on_null: empty
on_remove: clear
guards:
  max_deletes: -1
  max_change_ratio: 1.5
batch_size: 500
"#;
    assert_snapshot!(errors(&[("syncs/contacts_to_hubspot.yaml", sync)]), @r"
        error[spec::unknown_model]: unknown model `contact`
         --> syncs/contacts_to_hubspot.yaml:2:8
          |
        2 | model: contact
          |        ^^^^^^^
          = hint: did you mean `contacts`?

        error[spec::unknown_destination]: unknown destination `hubspots`
         --> syncs/contacts_to_hubspot.yaml:3:14
          |
        3 | destination: hubspots
          |              ^^^^^^^^
          = hint: did you mean `hubspot`?

        error[spec::invalid_value]: unknown `mode` value `upsrt`
         --> syncs/contacts_to_hubspot.yaml:5:7
          |
        5 | mode: upsrt
          |       ^^^^^
          = hint: did you mean `upsert`?

        error[spec::mapping_source]: the mapping for `firstname` has no source
          --> syncs/contacts_to_hubspot.yaml:10:15
           |
        10 |   - property: firstname
           |               ^^^^^^^^^
           = hint: add one of `column:`, `value:` or `template:`

        error[spec::mapping_source]: the mapping for `lastname` has more than one source: `column`, `value`
          --> syncs/contacts_to_hubspot.yaml:13:5
           |
        13 |     value: Smith
           |     ^^^^^
           = hint: keep exactly one of `column:`, `value:` or `template:`

        error[spec::duplicate_property]: property `firstname` is mapped twice
          --> syncs/contacts_to_hubspot.yaml:14:15
           |
        14 |   - property: firstname
           |               ^^^^^^^^^
           = note: first mapped at syncs/contacts_to_hubspot.yaml:10:15
           = hint: remove one of the two mappings

        error[spec::mapped_match_property]: property `email` is the match property and cannot be mapped
          --> syncs/contacts_to_hubspot.yaml:16:15
           |
        16 |   - property: email
           |               ^^^^^
           = note: `email` is set from `match.column` (`email`) automatically
           = hint: remove this mapping

        error[spec::invalid_value]: unknown `on_null` value `empty`
          --> syncs/contacts_to_hubspot.yaml:20:14
           |
        20 |     on_null: empty
           |              ^^^^^
           = hint: valid values are `keep` and `clear`

        error[spec::invalid_value]: unknown `on_remove` value `clear`
          --> syncs/contacts_to_hubspot.yaml:21:12
           |
        21 | on_remove: clear
           |            ^^^^^
           = hint: did you mean `clear_fields`?

        error[spec::out_of_range]: `max_deletes` must be at least 0, found -1
          --> syncs/contacts_to_hubspot.yaml:23:16
           |
        23 |   max_deletes: -1
           |                ^^
           = hint: use 0 or more

        error[spec::out_of_range]: `max_change_ratio` must be greater than 0 and at most 1, found 1.5
          --> syncs/contacts_to_hubspot.yaml:24:21
           |
        24 |   max_change_ratio: 1.5
           |                     ^^^
           = hint: write a fraction such as `0.5` (half of the synced rows)

        error[spec::out_of_range]: `batch_size` must be between 1 and 200, found 500
          --> syncs/contacts_to_hubspot.yaml:25:13
           |
        25 | batch_size: 500
           |             ^^^
           = hint: use a value between 1 and 200
        ");
}

#[test]
fn unknown_values_and_duplicate_keys() {
    let sync = SYNC.replace("mode: upsert", "mode: insrt\nmode: upsert");
    assert_snapshot!(errors(&[("syncs/contacts_to_hubspot.yaml", &sync)]), @r"
        error[spec::invalid_value]: unknown `mode` value `insrt`
         --> syncs/contacts_to_hubspot.yaml:5:7
          |
        5 | mode: insrt
          |       ^^^^^
          = hint: did you mean `insert`?

        error[spec::duplicate_key]: key `mode` is written twice in the sync
         --> syncs/contacts_to_hubspot.yaml:6:1
          |
        6 | mode: upsert
          | ^^^^
          = note: first written at syncs/contacts_to_hubspot.yaml:5:1
          = hint: remove one of them
        ");
}

#[test]
fn insert_and_update_modes_and_delete_on_remove() {
    let update = SYNC.replace("mode: upsert", "mode: update");
    let (_dir, project, _) = load(&[("syncs/contacts_to_hubspot.yaml", &update)]);
    assert_eq!(project.syncs[0].mode, SyncMode::Update);
    let insert = SYNC.replace("mode: upsert", "mode: insert");
    let (_dir, project, _) = load(&[("syncs/contacts_to_hubspot.yaml", &insert)]);
    assert_eq!(project.syncs[0].mode, SyncMode::Insert);
    let delete = SYNC.replace("on_remove: clear_fields", "on_remove: delete");
    let (_dir, project, _) = load(&[("syncs/contacts_to_hubspot.yaml", &delete)]);
    assert_eq!(project.syncs[0].on_remove, OnRemove::Delete);
    let both = update.replace("on_remove: clear_fields", "on_remove: delete");
    assert_snapshot!(errors(&[("syncs/contacts_to_hubspot.yaml", &both)]), @r"
        error[spec::delete_in_update_mode]: `on_remove: delete` cannot go with `mode: update`
          --> syncs/contacts_to_hubspot.yaml:19:12
           |
        19 | on_remove: delete
           |            ^^^^^^
           = note: a sync in update mode writes to records it did not create, so deleting them when a row leaves the model would delete records that belong to others
           = hint: use `on_remove: clear_fields` or `nothing`, or `mode: upsert`
        ");
}

#[test]
fn references_are_not_checked_against_a_broken_file() {
    // The model file cannot be parsed: its sync must not also say "unknown model".
    let out = errors(&[("models/contacts.yaml", "name: contacts\nsql: [\n")]);
    assert!(out.contains("spec::yaml"), "{out}");
    assert!(!out.contains("unknown_model"), "{out}");
}

#[test]
fn empty_file_and_missing_project() {
    assert_snapshot!(errors(&[("syncs/contacts_to_hubspot.yaml", "# nothing yet\n")]), @r"
        error[spec::empty_file]: `syncs/contacts_to_hubspot.yaml` is empty
         --> syncs/contacts_to_hubspot.yaml:1:1
          |
        1 | # nothing yet
          | ^
          = hint: write its keys (see docs/spec.md), or delete the file
        ");
    let dir = tempfile::tempdir().unwrap();
    let diagnostics = load_project(&dir.path().join("nowhere")).unwrap_err();
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].code, "spec::no_project");
}

#[test]
fn csv_options_on_other_formats_are_warnings() {
    let engine = ENGINE.replace("data/users.csv", "data/users.parquet");
    let (dir, project, warnings) =
        load(&[("engine.yaml", &engine), ("data/users.parquet", "PAR1")]);
    assert_eq!(project.tables[0].format, FileFormat::Parquet);
    assert_snapshot!(render_human(&warnings, dir.path()), @r#"
        warning[spec::ignored_option]: `has_header` applies only to CSV tables and is ignored for `parquet`
         --> engine.yaml:8:5
          |
        8 |     has_header: true
          |     ^^^^^^^^^^
          = hint: remove `has_header`

        warning[spec::ignored_option]: `delimiter` applies only to CSV tables and is ignored for `parquet`
         --> engine.yaml:9:5
          |
        9 |     delimiter: ","
          |     ^^^^^^^^^
          = hint: remove `delimiter`
        "#);
}

#[test]
fn static_values_keep_their_spelling_and_strict_booleans() {
    let sync = SYNC
        .replace("value: lead", "value: 007")
        .replace("batch_size: 50", "");
    let (_dir, project, _) = load(&[("syncs/contacts_to_hubspot.yaml", &sync)]);
    let sync = &project.syncs[0];
    assert!(matches!(&sync.mapping[2].source, MappingSource::Value(v) if v.value == "007"));
    assert_eq!(sync.batch_size, None);
    assert_eq!(sync.batch_size_or(MAX_HUBSPOT_BATCH_SIZE), 100);

    // `yes` is a string under YAML 1.2, not a boolean.
    let engine = ENGINE.replace("has_header: true", "has_header: yes");
    let out = errors(&[("engine.yaml", &engine)]);
    assert!(
        out.contains("`has_header` must be `true` or `false`, found a string"),
        "{out}"
    );
}

// ---- `${env:NAME}` -------------------------------------------------------------------------

fn template(raw: &str) -> EnvTemplate {
    EnvTemplate {
        raw: raw.to_string(),
        span: engine_diag::SourceSpan::new("engine.yaml", 3, 5, 10),
    }
}

#[test]
fn env_references_parse() {
    assert_eq!(
        env::parse("https://${env:HOST}:8080/$x$${env:LITERAL}").unwrap(),
        [
            Piece::Text("https://".into()),
            Piece::Var("HOST".into()),
            Piece::Text(":8080/$x${env:LITERAL}".into()),
        ]
    );
    let problem = |raw| env::parse(raw).unwrap_err().problem;
    assert_eq!(problem("${HOST}"), Problem::MissingPrefix("HOST".into()));
    assert_eq!(problem("${env:}"), Problem::EmptyName);
    assert_eq!(problem("${env:A-B}"), Problem::Malformed);
    assert_eq!(problem("${env:A"), Problem::Unclosed);
    let error = env::parse("ab${x y}").unwrap_err();
    assert_eq!((error.start, error.len), (2, 6));
}

#[test]
fn env_templates_resolve() {
    let t = template("${env:HOST}/v3/${env:HOST}?k=${env:KEY}");
    assert_eq!(t.variables(), ["HOST", "KEY"]);
    let lookup = |name: &str| match name {
        "HOST" => Some("h".to_string()),
        "KEY" => Some("k".to_string()),
        _ => None,
    };
    assert_eq!(t.resolve_with(lookup).unwrap(), "h/v3/h?k=k");

    let missing = template("${env:ENGINE_SPEC_TEST_SURELY_UNSET_VARIABLE}")
        .resolve()
        .unwrap_err();
    assert_snapshot!(missing.to_string(), @r"
        error[spec::missing_env]: environment variable `ENGINE_SPEC_TEST_SURELY_UNSET_VARIABLE` is not set
          --> engine.yaml:3:5
          hint: set `ENGINE_SPEC_TEST_SURELY_UNSET_VARIABLE` in the environment
        ");

    // A set variable resolves as a secret, and nothing shows it.
    let secret = template("${env:PATH}").resolve_secret().unwrap();
    assert_eq!(secret.to_string(), "**redacted**");
    assert_eq!(secret.expose(), std::env::var("PATH").unwrap());
    let error = template("${env:ENGINE_SPEC_TEST_SURELY_UNSET_VARIABLE}")
        .resolve_secret()
        .unwrap_err();
    assert_eq!(error.code, "spec::missing_env");
}

/// A three-letter token used to be accepted, and then masked `abc` inside every word of
/// every message; it is refused, naming the variable and never quoting the value.
#[test]
fn a_secret_too_short_to_be_a_token_is_refused() {
    let token = template("${env:HUBSPOT_TOKEN}");
    let short = token
        .resolve_secret_with(|_| Some("abc".to_string()))
        .unwrap_err();
    assert_eq!(short.code, "spec::secret_too_short");
    assert!(short.message.contains("`HUBSPOT_TOKEN`"), "{short}");
    assert!(!short.to_string().contains("abc"), "{short}");
    let blank = token
        .resolve_secret_with(|_| Some("   x    ".to_string()))
        .unwrap_err();
    assert_eq!(blank.code, "spec::secret_too_short");
    let real = token
        .resolve_secret_with(|_| Some("pat-na1-0000".to_string()))
        .unwrap();
    assert_eq!(real.expose(), "pat-na1-0000");
    // Only secrets are held to it: a short base URL part is fine.
    assert_eq!(
        template("${env:HOST}")
            .resolve_with(|_| Some("h".into()))
            .unwrap(),
        "h"
    );
}

// ---- SQL positions -------------------------------------------------------------------------

/// Loads `model` and checks that every character of its SQL maps to the same character in
/// the file.
fn assert_sql_maps_exactly(model: &str, expected_sql: &str) {
    let (dir, project, _) = load(&[("models/contacts.yaml", model)]);
    let spec = project.model("contacts").unwrap();
    assert_eq!(spec.sql, expected_sql);
    let file = fs_err::read_to_string(dir.path().join(&spec.file)).unwrap();
    let file_lines: Vec<Vec<char>> = file.lines().map(|l| l.chars().collect()).collect();
    for (i, sql_line) in spec.sql.split('\n').enumerate() {
        for (j, c) in sql_line.chars().enumerate() {
            let span = spec.sql_source_span(i + 1, j + 1, 1);
            let found = file_lines
                .get(span.line - 1)
                .and_then(|l| l.get(span.column - 1));
            assert_eq!(found, Some(&c), "SQL {}:{} maps to {span}", i + 1, j + 1);
        }
    }
}

#[test]
fn sql_positions_map_into_literal_blocks() {
    assert_sql_maps_exactly(
        "name: contacts\nprimary_key: id\nsql: |\n  SELECT id,\n    email\n  FROM users\n",
        "SELECT id,\n  email\nFROM users\n",
    );
    // Leading empty lines, strip chomping and a comment after the header.
    assert_sql_maps_exactly(
        "name: contacts\nprimary_key: id\nsql: |- # the query\n\n    SELECT id\n    FROM users\n",
        "\nSELECT id\nFROM users",
    );
    // An indentation indicator: the first line keeps its extra spaces.
    assert_sql_maps_exactly(
        "name: contacts\nprimary_key: id\nsql: |2\n    SELECT id\n  FROM users\n",
        "  SELECT id\nFROM users\n",
    );
    // Windows line endings and a tab inside the text.
    assert_sql_maps_exactly(
        "name: contacts\r\nprimary_key: id\r\nsql: |\r\n  SELECT\tid\r\n  FROM users\r\n",
        "SELECT\tid\nFROM users\n",
    );
}

#[test]
fn sql_positions_map_into_folded_blocks_read_as_literal() {
    // `>` keeps its line breaks, so a `--` comment ends at its line.
    assert_sql_maps_exactly(
        "name: contacts\nprimary_key: id\nsql: >\n  SELECT id -- the key\n  FROM users\n\n  WHERE id > 1\n",
        "SELECT id -- the key\nFROM users\n\nWHERE id > 1\n",
    );
    assert_sql_maps_exactly(
        "name: contacts\nprimary_key: id\nsql: >-\n    SELECT id\n    FROM users\n\n\n",
        "SELECT id\nFROM users",
    );
}

#[test]
fn sql_positions_map_into_one_line_scalars() {
    assert_sql_maps_exactly(
        "name: contacts\nprimary_key: id\nsql: SELECT 1 AS id\n",
        "SELECT 1 AS id",
    );
    assert_sql_maps_exactly(
        "name: contacts\nprimary_key: id\nsql:   \"SELECT 'a' AS id\"\n",
        "SELECT 'a' AS id",
    );
    assert_sql_maps_exactly(
        "name: contacts\nprimary_key: id\nsql: 'SELECT 2 AS id'  # c\n",
        "SELECT 2 AS id",
    );
    assert_sql_maps_exactly(
        "name: contacts\nprimary_key: id\nsql:\n  SELECT 3 AS id\n",
        "SELECT 3 AS id",
    );
}

#[test]
fn sql_span_points_at_the_first_sql_character() {
    let (_dir, project, _) = load(&[(
        "models/contacts.yaml",
        "name: contacts\nprimary_key: id\nsql: |\n\n  SELECT 1\n",
    )]);
    let model = project.model("contacts").unwrap();
    // The block starts on line 4 (an empty line), indented by 2.
    assert_eq!(
        (model.sql_span.line, model.sql_span.column, model.sql_indent),
        (4, 3, 2)
    );
    let span = model.sql_source_span(2, 8, 1);
    assert_eq!((span.line, span.column), (5, 10)); // the `1` of `SELECT 1`
}

#[test]
fn more_engine_yaml_problems() {
    let engine = r#"version: "1"
project: my project
state:
  path: ""
tables: []
destinations:
  crm:
    type: hubspot
    base_url: api.hubapi.com
  crm:
    type: salesforce
  2nd:
    type: hubspot
    token: 12345
"#;
    assert_snapshot!(errors(&[("engine.yaml", engine)]), @r#"
        error[spec::wrong_type]: `version` must be an integer, found a string
         --> engine.yaml:1:10
          |
        1 | version: "1"
          |          ^^^

        error[spec::invalid_name]: invalid project name `my project`
         --> engine.yaml:2:10
          |
        2 | project: my project
          |          ^^^^^^^^^^
          = hint: use ASCII letters, digits, `_` and `-`, starting with a letter or `_`

        error[spec::empty_value]: `path` must not be empty
         --> engine.yaml:4:9
          |
        4 |   path: ""
          |         ^^
          = hint: write a value for `path`

        error[spec::wrong_type]: `tables` must be a mapping of table names to files, found a list
         --> engine.yaml:5:1
          |
        5 | tables: []
          | ^^^^^^

        error[spec::invalid_url]: `base_url` must start with `http://` or `https://`
         --> engine.yaml:9:15
          |
        9 |     base_url: api.hubapi.com
          |               ^^^^^^^^^^^^^^
          = hint: write the full URL, e.g. `https://api.hubapi.com`

        error[spec::duplicate_name]: destination `crm` is defined twice
          --> engine.yaml:10:3
           |
        10 |   crm:
           |   ^^^
           = note: first defined at engine.yaml:7:3
           = hint: rename or remove one of the destinations

        error[spec::invalid_name]: invalid destination name `2nd`
          --> engine.yaml:12:3
           |
        12 |   2nd:
           |   ^^^
           = hint: use ASCII letters, digits, `_` and `-`, starting with a letter or `_`

        error[spec::literal_secret]: `token` must be a `${env:NAME}` reference, found an integer
          --> engine.yaml:14:12
           |
        14 |     token: *****
           |            ^^^^^
           = hint: export the token as `_2ND_TOKEN` and write `token: "${env:_2ND_TOKEN}"`

        error[spec::unknown_destination]: unknown destination `hubspot`
         --> syncs/contacts_to_hubspot.yaml:3:14
          |
        3 | destination: hubspot
          |              ^^^^^^^
          = hint: the destinations are `crm` and `2nd`
        "#);
}

#[test]
fn table_formats_need_a_known_extension_or_format() {
    let engine = "version: 1\nproject: p\ntables:\n  dir:\n    path: data\n  json:\n    path: data/events.json\n  ok:\n    path: data\n    format: parquet\n";
    assert_snapshot!(errors(&[("engine.yaml", engine), ("data/events.json", "{}\n")]), @r"
        error[spec::unknown_format]: cannot tell the format of `data` from its extension
         --> engine.yaml:5:11
          |
        5 |     path: data
          |           ^^^^
          = hint: add `format: csv`, `format: parquet` or `format: ndjson`

        error[spec::unknown_format]: cannot tell the format of `data/events.json` from its extension
         --> engine.yaml:7:11
          |
        7 |     path: data/events.json
          |           ^^^^^^^^^^^^^^^^
          = note: only newline-delimited JSON (one object per line) is read
          = hint: add `format: csv`, `format: parquet` or `format: ndjson`

        error[spec::unknown_destination]: unknown destination `hubspot`
         --> syncs/contacts_to_hubspot.yaml:3:14
          |
        3 | destination: hubspot
          |              ^^^^^^^
          = hint: add `hubspot:` under `destinations:` in `engine.yaml`
        ");
}

#[test]
fn multiple_documents_and_ignored_options() {
    let model = "name: a\nprimary_key: id\nsql: SELECT 1 AS id\n---\nname: b\n";
    assert_snapshot!(errors(&[("models/contacts.yaml", model)]), @r"
        error[spec::yaml]: invalid YAML: only single YAML document expected but multiple found
         --> models/contacts.yaml:5:1
          |
        5 | name: b
          | ^
          = hint: write one model or sync per file: move what follows `---` into a file of its own
        ");

    let sync = SYNC.replace("    value: lead", "    value: lead\n    on_null: clear");
    let (dir, _project, warnings) = load(&[
        ("syncs/contacts_to_hubspot.yaml", &sync),
        ("engine.yml", "version: 1\n"),
    ]);
    assert_snapshot!(render_human(&warnings, dir.path()), @r"
        warning[spec::ignored_option]: `on_null` has no effect on a static `value`, which is never null
          --> syncs/contacts_to_hubspot.yaml:17:5
           |
        17 |     on_null: clear
           |     ^^^^^^^
           = hint: remove `on_null`

        warning[spec::ignored_file]: `engine.yml` is ignored because `engine.yaml` exists
         --> engine.yml:1:1
          |
        1 | version: 1
          | ^
          = hint: delete one of the two files
        ");
}

#[test]
fn anchors_aliases_and_merge_keys_work() {
    let sync = SYNC.replace(
        "mapping:\n",
        "mapping:\n  - &base\n    property: jobtitle\n    column: title\n    on_null: clear\n  - <<: *base\n    property: department\n",
    );
    let (_dir, project, _) = load(&[("syncs/contacts_to_hubspot.yaml", &sync)]);
    let mapping = &project.syncs[0].mapping;
    assert_eq!(mapping[1].property.value, "department");
    assert!(matches!(&mapping[1].source, MappingSource::Column(c) if c.value == "title"));
    assert_eq!(mapping[1].on_null, OnNull::Clear);
    assert_eq!(mapping[1].property.span.line, 15);
}

#[test]
fn fallback_match_properties() {
    let with =
        |fallback: &str| SYNC.replace("  column: email\n", &format!("  column: email\n{fallback}"));
    let ok = with("  fallback: [phone, company]\n");
    let (_dir, project, _) = load(&[("syncs/contacts_to_hubspot.yaml", &ok)]);
    let names: Vec<&str> = project.syncs[0]
        .match_on
        .fallback
        .iter()
        .map(|p| p.value.as_str())
        .collect();
    assert_eq!(names, ["phone", "company"]);
    assert_eq!(project.syncs[0].match_on.lookup, MatchLookup::Search);

    let bad = with("  lookup: unique\n  fallback: [phone, phone, email, mobile]\n");
    assert_snapshot!(errors(&[("syncs/contacts_to_hubspot.yaml", &bad)]), @r"
        error[spec::fallback_needs_search]: `match.fallback` cannot go with `lookup: unique`
         --> syncs/contacts_to_hubspot.yaml:9:11
          |
        9 |   lookup: unique
          |           ^^^^^^
          = note: a fallback property is tried only when the first finds no record, so records are looked up before they are written; a unique match writes without looking
          = hint: remove `lookup: unique` (a fallback looks records up by search)

        error[spec::duplicate_fallback]: property `phone` is listed twice under `fallback`
          --> syncs/contacts_to_hubspot.yaml:10:21
           |
        10 |   fallback: [phone, phone, email, mobile]
           |                     ^^^^^
           = note: first listed at syncs/contacts_to_hubspot.yaml:10:14
           = hint: remove one of the two

        error[spec::fallback_is_match_property]: `email` is the match property and cannot also be its fallback
          --> syncs/contacts_to_hubspot.yaml:10:28
           |
        10 |   fallback: [phone, phone, email, mobile]
           |                            ^^^^^
           = hint: list only other properties under `fallback`

        error[spec::unmapped_fallback]: fallback property `mobile` is not mapped
          --> syncs/contacts_to_hubspot.yaml:10:35
           |
        10 |   fallback: [phone, phone, email, mobile]
           |                                   ^^^^^^
           = note: a row is looked up by the value it writes to the fallback property, so the property needs a mapping
           = hint: add `- property: mobile` with a `column:` or `template:` under `mapping`
        ");
}

#[test]
fn event_and_list_syncs_refuse_what_they_cannot_do() {
    let code_of = |sync: &str| -> Vec<String> {
        let dir = project(&[("syncs/contacts_to_hubspot.yaml", sync)]);
        match load_project(dir.path()) {
            Ok(_) => Vec::new(),
            Err(diagnostics) => diagnostics.into_iter().map(|d| d.code).collect(),
        }
    };
    let events = SYNC
        .replace(
            "object: contacts",
            "object: events\nevent:\n  name: purchase",
        )
        .replace("mode: upsert\n", "")
        .replace("on_remove: clear_fields\n", "");
    assert!(code_of(&events).is_empty(), "{:?}", code_of(&events));
    assert!(
        code_of(&events.replace("event:", "mode: update\nevent:"))
            .contains(&"spec::event_mode".to_string())
    );
    let misplaced = SYNC.replace("object: contacts", "object: contacts\nevent:\n  name: x");
    assert!(code_of(&misplaced).contains(&"spec::event_without_events_object".to_string()));
    let lists = SYNC
        .replace("object: contacts", "object: lists")
        .replace("mode: upsert\n", "");
    let codes = code_of(&lists);
    assert!(
        codes.contains(&"spec::list_on_remove".to_string()),
        "{codes:?}"
    );
    assert!(
        codes.contains(&"spec::list_mapping".to_string()),
        "{codes:?}"
    );
    let misplaced = SYNC.replace("object: contacts", "object: contacts\nlist:\n  name: VIP");
    assert!(code_of(&misplaced).contains(&"spec::list_without_lists_object".to_string()));
}
