//! The bad-input corpus: YAML, types, names, SQL, templates, properties, CSV data, state
//! damage and saved plans. Every case breaks a project that was applied once, runs one
//! command, and expects exit 1, its error code, where it happened (`file:LINE:COL`, or the sync
//! and row), no write request to the destination, and the state as it was.
//!
//! The cases share one applied project per test function; each case's edits are undone
//! (project files and `.engine/`) before the next one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::{SYNC, TestProject, csv, files_under, users};

/// Where a case's error must point.
#[derive(Debug, Clone, Copy)]
enum At {
    /// `file:LINE:COL` in this project file.
    File(&'static str),
    /// This text (a sync, a row key, a file name) in the message.
    Text(&'static str),
}

/// One bad input.
struct Case {
    name: &'static str,
    /// Breaks the project (files, state, environment file).
    breaks: fn(&TestProject),
    /// The command (default `plan`).
    args: &'static [&'static str],
    /// Environment for the command.
    env: &'static [(&'static str, Option<&'static str>)],
    /// The error code expected on stderr.
    code: &'static str,
    at: At,
}

const SYNC_FILE: &str = "syncs/users_to_hubspot.yaml";
const MODEL_FILE: &str = "models/users.yaml";

fn edit(project: &TestProject, file: &str, from: &str, to: &str) {
    project.edit(file, from, to);
}

fn append(project: &TestProject, file: &str, text: &str) {
    let current = project.read(file);
    project.write(file, &format!("{current}{text}"));
}

fn plan(project: &TestProject, name: &str) {
    project.engine(&["plan", "--out", name]).assert_code(0);
}

fn edit_plan(project: &TestProject, file: &str, change: impl FnOnce(&mut serde_json::Value)) {
    let mut plan: serde_json::Value =
        serde_json::from_str(&project.read(file)).expect("a saved plan is JSON");
    change(&mut plan);
    project.write(file, &plan.to_string());
}

fn state_path(project: &TestProject, relative: &str) -> PathBuf {
    project.path().join(".engine").join(relative)
}

fn only_snapshot(project: &TestProject) -> PathBuf {
    let dir = state_path(project, &format!("snapshots/{SYNC}"));
    fs_err::read_dir(&dir)
        .expect("the sync has a snapshot directory")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("a snapshot file")
}

fn cases_yaml() -> Vec<Case> {
    vec![
        Case {
            name: "unknown key in engine.yaml",
            breaks: |p| edit(p, "engine.yaml", "tables:", "tabels:"),
            args: &[],
            env: &[],
            code: "spec::unknown_key",
            at: At::File("engine.yaml"),
        },
        Case {
            name: "unsupported version",
            breaks: |p| edit(p, "engine.yaml", "version: 1", "version: 2"),
            args: &[],
            env: &[],
            code: "spec::unsupported_version",
            at: At::File("engine.yaml"),
        },
        Case {
            name: "invalid YAML",
            breaks: |p| append(p, "engine.yaml", "oops: [unclosed\n"),
            args: &[],
            env: &[],
            code: "spec::yaml",
            at: At::File("engine.yaml"),
        },
        Case {
            name: "unknown destination type",
            breaks: |p| edit(p, "engine.yaml", "type: hubspot", "type: hubspt"),
            args: &[],
            env: &[],
            code: "spec::invalid_value",
            at: At::File("engine.yaml"),
        },
        Case {
            name: "literal token",
            breaks: |p| {
                edit(
                    p,
                    "engine.yaml",
                    "token: ${env:HUBSPOT_TOKEN}",
                    "token: pat-na1-0123456789abcdef",
                )
            },
            args: &[],
            env: &[],
            code: "spec::literal_secret",
            at: At::File("engine.yaml"),
        },
        Case {
            name: "base_url not http",
            breaks: |p| {
                edit(
                    p,
                    "engine.yaml",
                    "base_url: ${env:HUBSPOT_BASE_URL}",
                    "base_url: ftp://example.com",
                )
            },
            args: &[],
            env: &[],
            code: "spec::invalid_url",
            at: At::File("engine.yaml"),
        },
        Case {
            name: "env reference without env:",
            breaks: |p| {
                edit(
                    p,
                    "engine.yaml",
                    "${env:HUBSPOT_BASE_URL}",
                    "${HUBSPOT_BASE_URL}",
                )
            },
            args: &[],
            env: &[],
            code: "spec::invalid_env_reference",
            at: At::File("engine.yaml"),
        },
        Case {
            name: "table file missing",
            breaks: |p| edit(p, "engine.yaml", "data/users.csv", "data/nope.csv"),
            args: &[],
            env: &[],
            code: "spec::table_not_found",
            at: At::File("engine.yaml"),
        },
        Case {
            name: "table format unknown",
            breaks: |p| {
                p.write("data/users.txt", "id\n");
                edit(p, "engine.yaml", "data/users.csv", "data/users.txt")
            },
            args: &[],
            env: &[],
            code: "spec::unknown_format",
            at: At::File("engine.yaml"),
        },
        Case {
            name: "delimiter too long",
            breaks: |p| {
                edit(
                    p,
                    "engine.yaml",
                    "path: data/users.csv",
                    "path: data/users.csv\n    delimiter: \";;\"",
                )
            },
            args: &[],
            env: &[],
            code: "spec::invalid_delimiter",
            at: At::File("engine.yaml"),
        },
        Case {
            name: "negative rate limit",
            breaks: |p| {
                edit(
                    p,
                    "engine.yaml",
                    "type: hubspot",
                    "type: hubspot\n    rate_limit:\n      requests_per_second: -1",
                )
            },
            args: &[],
            env: &[],
            code: "spec::out_of_range",
            at: At::File("engine.yaml"),
        },
        Case {
            name: "key written twice",
            breaks: |p| append(p, "engine.yaml", "project: again\n"),
            args: &[],
            env: &[],
            code: "spec::duplicate_key",
            at: At::File("engine.yaml"),
        },
        Case {
            name: "invalid project name",
            breaks: |p| edit(p, "engine.yaml", "project: e2e", "project: \"9 lives\""),
            args: &[],
            env: &[],
            code: "spec::invalid_name",
            at: At::File("engine.yaml"),
        },
        Case {
            name: "model without sql",
            breaks: |p| p.write(MODEL_FILE, "name: users\nprimary_key: [user_id]\n"),
            args: &[],
            env: &[],
            code: "spec::missing_key",
            at: At::File(MODEL_FILE),
        },
        Case {
            name: "empty primary key",
            breaks: |p| edit(p, MODEL_FILE, "primary_key: [user_id]", "primary_key: []"),
            args: &[],
            env: &[],
            code: "spec::empty_primary_key",
            at: At::File(MODEL_FILE),
        },
        Case {
            name: "primary key column twice",
            breaks: |p| {
                edit(
                    p,
                    MODEL_FILE,
                    "primary_key: [user_id]",
                    "primary_key: [user_id, user_id]",
                )
            },
            args: &[],
            env: &[],
            code: "spec::duplicate_column",
            at: At::File(MODEL_FILE),
        },
        Case {
            name: "invalid model name",
            breaks: |p| edit(p, MODEL_FILE, "name: users", "name: 9users"),
            args: &[],
            env: &[],
            code: "spec::invalid_name",
            at: At::File(MODEL_FILE),
        },
        Case {
            name: "model defined twice",
            breaks: |p| p.write("models/copy.yaml", &p.read(MODEL_FILE)),
            args: &[],
            env: &[],
            code: "spec::duplicate_name",
            at: At::File("models/copy.yaml"),
        },
        Case {
            name: "empty model file",
            breaks: |p| p.write("models/empty.yaml", ""),
            args: &[],
            env: &[],
            code: "spec::empty_file",
            at: At::Text("models/empty.yaml"),
        },
        Case {
            name: "sync names an unknown model",
            breaks: |p| edit(p, SYNC_FILE, "model: users", "model: user"),
            args: &[],
            env: &[],
            code: "spec::unknown_model",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "sync names an unknown destination",
            breaks: |p| {
                edit(
                    p,
                    SYNC_FILE,
                    "destination: hubspot",
                    "destination: hubspots",
                )
            },
            args: &[],
            env: &[],
            code: "spec::unknown_destination",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "unknown mode",
            breaks: |p| edit(p, SYNC_FILE, "mode: upsert", "mode: merge"),
            args: &[],
            env: &[],
            code: "spec::invalid_value",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "on_remove delete in update mode",
            breaks: |p| {
                edit(p, SYNC_FILE, "mode: upsert", "mode: update");
                edit(p, SYNC_FILE, "on_remove: clear_fields", "on_remove: delete");
            },
            args: &[],
            env: &[],
            code: "spec::delete_in_update_mode",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "batch size too large",
            breaks: |p| edit(p, SYNC_FILE, "batch_size: 100", "batch_size: 500"),
            args: &[],
            env: &[],
            code: "spec::out_of_range",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "batch size not a number",
            breaks: |p| edit(p, SYNC_FILE, "batch_size: 100", "batch_size: ten"),
            args: &[],
            env: &[],
            code: "spec::wrong_type",
            at: At::File(SYNC_FILE),
        },
    ]
}

fn cases_sync() -> Vec<Case> {
    vec![
        Case {
            name: "match without column",
            breaks: |p| edit(p, SYNC_FILE, "  column: email\n", ""),
            args: &[],
            env: &[],
            code: "spec::missing_key",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "mapping with two sources",
            breaks: |p| {
                edit(
                    p,
                    SYNC_FILE,
                    "    column: first_name",
                    "    column: first_name\n    value: x",
                )
            },
            args: &[],
            env: &[],
            code: "spec::mapping_source",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "property mapped twice",
            breaks: |p| {
                edit(
                    p,
                    SYNC_FILE,
                    "  - property: lastname",
                    "  - property: firstname",
                )
            },
            args: &[],
            env: &[],
            code: "spec::duplicate_property",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "match property mapped",
            breaks: |p| {
                edit(
                    p,
                    SYNC_FILE,
                    "  - property: lastname",
                    "  - property: email",
                )
            },
            args: &[],
            env: &[],
            code: "spec::mapped_match_property",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "sync name too long",
            breaks: |p| {
                edit(
                    p,
                    SYNC_FILE,
                    &format!("name: {SYNC}"),
                    &format!("name: {}", "s".repeat(300)),
                )
            },
            args: &[],
            env: &[],
            code: "spec::invalid_name",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "sync name with a path",
            breaks: |p| edit(p, SYNC_FILE, &format!("name: {SYNC}"), "name: ../../x"),
            args: &[],
            env: &[],
            code: "spec::invalid_name",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "change ratio above one",
            breaks: |p| append(p, SYNC_FILE, "guards:\n  max_change_ratio: 2\n"),
            args: &[],
            env: &[],
            code: "spec::out_of_range",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "unknown on_invalid",
            breaks: |p| {
                edit(
                    p,
                    SYNC_FILE,
                    "  column: email\n",
                    "  column: email\n  on_invalid: maybe\n",
                )
            },
            args: &[],
            env: &[],
            code: "spec::invalid_value",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "unknown on_null",
            breaks: |p| {
                edit(
                    p,
                    SYNC_FILE,
                    "    column: first_name",
                    "    column: first_name\n    on_null: sometimes",
                )
            },
            args: &[],
            env: &[],
            code: "spec::invalid_value",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "mapping names an unknown column",
            breaks: |p| edit(p, SYNC_FILE, "column: first_name", "column: frist_name"),
            args: &[],
            env: &[],
            code: "mapping::unknown_column",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "template syntax error",
            breaks: |p| edit(p, SYNC_FILE, "| upcase }}", "| }}"),
            args: &[],
            env: &[],
            code: "mapping::template_syntax",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "unknown template filter",
            breaks: |p| edit(p, SYNC_FILE, "| upcase }}", "| upcse }}"),
            args: &[],
            env: &[],
            code: "mapping::unknown_filter",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "template variable outside row",
            breaks: |p| edit(p, SYNC_FILE, "row['company'] | upcase", "company | upcase"),
            args: &[],
            env: &[],
            code: "mapping::unknown_variable",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "association label the pair does not have",
            breaks: |p| {
                append(
                    p,
                    SYNC_FILE,
                    "associations:\n  - to: companies\n    column: company\n    label: Primry\n",
                )
            },
            args: &["plan"],
            env: &[],
            code: "hubspot::unknown_association_label",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "association to an object that does not exist",
            breaks: |p| {
                append(
                    p,
                    SYNC_FILE,
                    "associations:\n  - to: planets\n    column: company\n",
                )
            },
            args: &["plan"],
            env: &[],
            code: "hubspot::unknown_object",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "event the portal does not have",
            breaks: |p| {
                edit(p, SYNC_FILE, "object: contacts", "object: events");
                edit(p, SYNC_FILE, "mode: upsert\n", "event:\n  name: purchse\n");
                edit(p, SYNC_FILE, "on_remove: clear_fields\n", "");
            },
            args: &["plan"],
            env: &[],
            code: "hubspot::unknown_event",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "Liquid tag the engine does not support in a template",
            breaks: |p| {
                edit(
                    p,
                    SYNC_FILE,
                    "{{ row['company'] | upcase }}",
                    "{% cycle 'a', 'b' %}",
                )
            },
            args: &[],
            env: &[],
            code: "mapping::template_syntax",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "template fails on a row",
            breaks: |p| {
                edit(
                    p,
                    SYNC_FILE,
                    "row['company'] | upcase",
                    "row['company'] | to_unix",
                )
            },
            args: &[],
            env: &[],
            code: "mapping::render_failed",
            at: At::Text("users_to_hubspot"),
        },
        Case {
            name: "unknown destination property",
            breaks: |p| edit(p, SYNC_FILE, "property: firstname", "property: firstnme"),
            args: &[],
            env: &[],
            code: "hubspot::unknown_property",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "read-only destination property",
            breaks: |p| edit(p, SYNC_FILE, "property: lastname", "property: hs_object_id"),
            args: &[],
            env: &[],
            code: "hubspot::read_only_property",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "match property not unique",
            breaks: |p| {
                edit(
                    p,
                    SYNC_FILE,
                    "  property: email\n  column: email",
                    "  property: lastname\n  column: last_name",
                );
                edit(
                    p,
                    SYNC_FILE,
                    "  - property: lastname\n    column: last_name\n",
                    "",
                )
            },
            args: &[],
            env: &[],
            code: "hubspot::match_property_not_unique",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "unknown object",
            breaks: |p| edit(p, SYNC_FILE, "object: contacts", "object: contcts"),
            args: &[],
            env: &[],
            code: "hubspot::unknown_object",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "token too short to be real",
            breaks: |_| {},
            args: &[],
            env: &[("HUBSPOT_TOKEN", Some("abc"))],
            code: "spec::secret_too_short",
            at: At::Text("HUBSPOT_TOKEN"),
        },
        Case {
            name: "base_url with a path",
            breaks: |_| {},
            args: &[],
            env: &[(
                "HUBSPOT_BASE_URL",
                Some("http://127.0.0.1:9/crm/v3/objects"),
            )],
            code: "hubspot::config",
            at: At::File("engine.yaml"),
        },
        Case {
            name: "token not set",
            breaks: |_| {},
            args: &[],
            env: &[("HUBSPOT_TOKEN", None)],
            code: "spec::missing_env",
            at: At::File("engine.yaml"),
        },
        Case {
            name: "wrong token",
            breaks: |_| {},
            args: &[],
            env: &[("HUBSPOT_TOKEN", Some("pat-wrong-token-0000"))],
            code: "hubspot::auth",
            at: At::Text("HubSpot"),
        },
    ]
}

fn cases_data() -> Vec<Case> {
    vec![
        Case {
            name: "SQL syntax error",
            breaks: |p| edit(p, MODEL_FILE, "SELECT id", "SELEC id"),
            args: &[],
            env: &[],
            code: "model::sql_syntax",
            at: At::File(MODEL_FILE),
        },
        Case {
            name: "DDL as a model",
            breaks: |p| {
                edit(
                    p,
                    MODEL_FILE,
                    "sql: |\n  SELECT id AS user_id,",
                    "sql: |\n  CREATE TABLE t AS SELECT id AS user_id,",
                )
            },
            args: &[],
            env: &[],
            code: "model::not_a_query",
            at: At::File(MODEL_FILE),
        },
        Case {
            name: "empty CSV file",
            breaks: |p| p.write_csv(""),
            args: &[],
            env: &[],
            code: "model::empty_table",
            at: At::Text("data/users.csv"),
        },
        Case {
            name: "unknown table in SQL",
            breaks: |p| edit(p, MODEL_FILE, "FROM users", "FROM userz"),
            args: &[],
            env: &[],
            code: "model::unknown_table",
            at: At::File(MODEL_FILE),
        },
        Case {
            name: "unknown column in SQL",
            breaks: |p| edit(p, MODEL_FILE, "lower(email)", "lower(emial)"),
            args: &[],
            env: &[],
            code: "model::unknown_column",
            at: At::File(MODEL_FILE),
        },
        Case {
            name: "primary key not a model column",
            breaks: |p| {
                edit(
                    p,
                    MODEL_FILE,
                    "primary_key: [user_id]",
                    "primary_key: [uid]",
                )
            },
            args: &[],
            env: &[],
            code: "mapping::unknown_column",
            at: At::File(MODEL_FILE),
        },
        Case {
            name: "malformed CSV row",
            breaks: |p| p.write_csv(&format!("{}9,only-two\n", csv(&users(3)))),
            args: &[],
            env: &[],
            code: "model::table_unreadable",
            at: At::File("engine.yaml"),
        },
        Case {
            name: "duplicate primary keys",
            breaks: |p| p.write_csv(&format!("{}3,dup@example.com,A,B,C,lead\n", csv(&users(3)))),
            args: &[],
            env: &[],
            code: "diff::duplicate_keys",
            at: At::Text("users_to_hubspot"),
        },
        Case {
            name: "null primary key",
            breaks: |p| {
                p.write_csv(&format!(
                    "{},nokey@example.com,A,B,C,lead\n",
                    csv(&users(3))
                ))
            },
            args: &[],
            env: &[],
            code: "diff::null_keys",
            at: At::Text("users_to_hubspot"),
        },
        Case {
            name: "two rows with one email",
            breaks: |p| {
                p.write_csv(&format!(
                    "{}9,USER1@example.com,A,B,C,lead\n",
                    csv(&users(3))
                ))
            },
            args: &[],
            env: &[],
            code: "diff::duplicate_match_values",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "a row without an email",
            breaks: |p| p.write_csv(&format!("{}9,,A,B,C,lead\n", csv(&users(3)))),
            args: &[],
            env: &[],
            code: "diff::null_match_values",
            at: At::File(SYNC_FILE),
        },
        Case {
            name: "state database deleted",
            breaks: |p| {
                fs_err::remove_file(state_path(p, "state.db")).unwrap();
                let _ = fs_err::remove_file(state_path(p, "state.db-wal"));
                let _ = fs_err::remove_file(state_path(p, "state.db-shm"));
            },
            args: &[],
            env: &[],
            code: "state::corrupt",
            at: At::Text("state.db"),
        },
        Case {
            name: "state database emptied",
            breaks: |p| {
                fs_err::write(state_path(p, "state.db"), b"").unwrap();
                let _ = fs_err::remove_file(state_path(p, "state.db-wal"));
                let _ = fs_err::remove_file(state_path(p, "state.db-shm"));
            },
            args: &["apply"],
            env: &[],
            code: "state::corrupt",
            at: At::Text("state.db"),
        },
        Case {
            name: "state database garbage",
            breaks: |p| {
                fs_err::write(state_path(p, "state.db"), vec![7u8; 8192]).unwrap();
                let _ = fs_err::remove_file(state_path(p, "state.db-wal"));
                let _ = fs_err::remove_file(state_path(p, "state.db-shm"));
            },
            args: &[],
            env: &[],
            code: "state::corrupt",
            at: At::Text("state.db"),
        },
        Case {
            name: "snapshot deleted",
            breaks: |p| fs_err::remove_file(only_snapshot(p)).unwrap(),
            args: &[],
            env: &[],
            code: "state::corrupt",
            at: At::Text("gen-1.parquet"),
        },
        Case {
            name: "snapshot corrupted",
            breaks: |p| fs_err::write(only_snapshot(p), b"not parquet at all").unwrap(),
            args: &["apply"],
            env: &[],
            code: "state::corrupt",
            at: At::Text("gen-1.parquet"),
        },
        Case {
            name: "saved plan with an edited value",
            breaks: |p| {
                plan(p, "plan.json");
                edit_plan(p, "plan.json", |v| {
                    v["syncs"][0]["changes"][0]["fields"][0]["after"] = "evil@example.com".into()
                })
            },
            args: &["apply", "plan.json"],
            env: &[],
            code: "plan::tampered",
            at: At::Text("saved plan"),
        },
        Case {
            name: "saved plan with an injected row",
            breaks: |p| {
                plan(p, "plan.json");
                edit_plan(p, "plan.json", |v| {
                    let row = v["syncs"][0]["changes"][0].clone();
                    let mut row = row;
                    row["key"] = "999".into();
                    v["syncs"][0]["changes"].as_array_mut().unwrap().push(row)
                })
            },
            args: &["apply", "plan.json"],
            env: &[],
            code: "plan::tampered",
            at: At::Text("saved plan"),
        },
        Case {
            name: "saved plan with a path as sync name",
            breaks: |p| {
                plan(p, "plan.json");
                edit_plan(p, "plan.json", |v| v["syncs"][0]["sync"] = "../../x".into())
            },
            args: &["apply", "plan.json"],
            env: &[],
            code: "plan::tampered",
            at: At::Text("saved plan"),
        },
        Case {
            name: "saved plan with edited properties",
            breaks: |p| {
                plan(p, "plan.json");
                edit_plan(p, "plan.json", |v| {
                    v["syncs"][0]["properties"][1] = "hs_lead_status".into()
                })
            },
            args: &["apply", "plan.json"],
            env: &[],
            code: "plan::tampered",
            at: At::Text("saved plan"),
        },
        Case {
            name: "saved plan without digest",
            breaks: |p| {
                plan(p, "plan.json");
                edit_plan(p, "plan.json", |v| {
                    v.as_object_mut().unwrap().remove("digest");
                })
            },
            args: &["apply", "plan.json"],
            env: &[],
            code: "plan::tampered",
            at: At::Text("saved plan"),
        },
        Case {
            name: "saved plan not JSON",
            breaks: |p| p.write("plan.json", "{ not json"),
            args: &["apply", "plan.json"],
            env: &[],
            code: "plan::unreadable",
            at: At::Text("plan.json"),
        },
        Case {
            name: "saved plan of another version",
            breaks: |p| {
                plan(p, "plan.json");
                edit_plan(p, "plan.json", |v| v["format_version"] = 2.into())
            },
            args: &["apply", "plan.json"],
            env: &[],
            code: "plan::unreadable",
            at: At::Text("plan.json"),
        },
    ]
}

/// Every file under `.engine/` (but scratch space and locks), with its bytes.
fn state_files(project: &TestProject) -> BTreeMap<PathBuf, Vec<u8>> {
    let root = project.path().join(".engine");
    files_under(&root)
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(&root).ok()?.to_path_buf();
            let scratch = relative.starts_with("tmp") || relative.starts_with("locks");
            (!scratch).then(|| (relative, fs_err::read(&path).unwrap_or_default()))
        })
        .collect()
}

fn restore_state(project: &TestProject, files: &BTreeMap<PathBuf, Vec<u8>>) {
    let root = project.path().join(".engine");
    let _ = fs_err::remove_dir_all(&root);
    for (relative, bytes) in files {
        let path = root.join(relative);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).expect("recreate a state directory");
        }
        fs_err::write(&path, bytes).expect("restore a state file");
    }
}

fn run_cases(cases: Vec<Case>) {
    let project = TestProject::new(&csv(&users(3)));
    project.engine(&["apply"]).assert_code(0);
    project.write_csv(&csv(&users(4))); // so a plan has something to do
    let sources = project.source_files();
    let state = state_files(&project);
    let mut failures = Vec::new();
    for case in &cases {
        let writes = project.sandbox.write_requests();
        let contacts = project.contacts().len();
        (case.breaks)(&project);
        let damaged = state_files(&project);
        let args: &[&str] = if case.args.is_empty() {
            &["plan"]
        } else {
            case.args
        };
        let output = project.engine_with(args, case.env);
        let mut problems = Vec::new();
        if output.code != Some(1) {
            problems.push(format!("exit code {:?}, expected 1", output.code));
        }
        if !output.stderr.contains(case.code) {
            problems.push(format!("no `{}` on stderr", case.code));
        }
        match case.at {
            At::File(file) if !output.points_at(file) => {
                problems.push(format!("no `{file}:LINE:COL` location"))
            }
            At::Text(text) if !output.stderr.contains(text) => {
                problems.push(format!("the message does not name `{text}`"))
            }
            _ => {}
        }
        if output.stderr.contains("panicked") || output.stderr.contains("this is a bug") {
            problems.push("a panic or internal error".into());
        }
        if project.sandbox.write_requests() != writes || project.contacts().len() != contacts {
            problems.push("the destination was written".into());
        }
        if state_files(&project) != damaged {
            problems.push("the state was changed".into());
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}\n{output}", case.name, problems.join("; ")));
        }
        // Undo the case: project files (and the ones it added), state, saved plans.
        for extra in [
            "models/copy.yaml",
            "models/empty.yaml",
            "data/users.txt",
            "plan.json",
        ] {
            let _ = fs_err::remove_file(project.path().join(extra));
        }
        project.restore_source_files(&sources);
        restore_state(&project, &state);
    }
    // The directory outside the state a crafted sync name aimed at stays empty.
    assert!(!Path::new(&project.path().join("x.lock")).exists());
    assert!(!Path::new(&project.path().join("../x.lock")).exists());
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn bad_yaml_names_and_types_are_refused_where_they_are_written() {
    run_cases(cases_yaml());
}

#[test]
fn bad_syncs_templates_properties_and_credentials_are_refused() {
    run_cases(cases_sync());
}

#[test]
fn bad_data_damaged_state_and_edited_plans_are_refused() {
    run_cases(cases_data());
}

#[test]
fn the_corpus_has_at_least_fifty_cases() {
    let total = cases_yaml().len() + cases_sync().len() + cases_data().len();
    assert!(total >= 50, "{total} cases");
}
