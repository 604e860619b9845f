//! JSON Schemas (draft-07, what yaml-language-server reads best) of the three spec files, for
//! editors: completion, hover text and red squiggles while typing. `engine schema` prints
//! them; `engine init` writes them beside a new project.
//!
//! The schemas describe what the checks in `engine_file.rs`, `sources.rs`, `model.rs` and
//! `sync.rs` accept, with the wording of `docs/spec.md`. They are a convenience, not the
//! authority: `engine validate` still checks what a schema cannot (references between files,
//! SQL, templates, files on disk). Tests keep them honest: every example project validates,
//! wrong specs do not, and the keys of each mapping equal the keys its parser allows.

use serde_json::{Map, Value, json};

use crate::check::MAX_NAME_LENGTH;
use crate::sync::{MAX_BATCH_SIZE, MAX_HUBSPOT_BATCH_SIZE};

/// The draft the schemas are written in.
const DRAFT: &str = "http://json-schema.org/draft-07/schema#";

/// The three kinds of spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    /// `engine.yaml`.
    Engine,
    /// `models/*.yaml`.
    Model,
    /// `syncs/*.yaml`.
    Sync,
}

impl SchemaKind {
    /// Every kind, in the order of the flow.
    pub const ALL: [SchemaKind; 3] = [SchemaKind::Engine, SchemaKind::Model, SchemaKind::Sync];

    /// `engine`, `model` or `sync`.
    pub fn name(self) -> &'static str {
        match self {
            SchemaKind::Engine => "engine",
            SchemaKind::Model => "model",
            SchemaKind::Sync => "sync",
        }
    }

    /// The file `engine schema --out DIR` writes: `engine.schema.json`, ….
    pub fn file_name(self) -> String {
        format!("{}.schema.json", self.name())
    }

    /// The schema of this kind of file.
    pub fn schema(self) -> Value {
        match self {
            SchemaKind::Engine => engine_schema(),
            SchemaKind::Model => model_schema(),
            SchemaKind::Sync => sync_schema(),
        }
    }
}

/// Adds `description` to a schema object.
fn described(mut schema: Value, description: &str) -> Value {
    if let Value::Object(map) = &mut schema {
        map.insert("description".into(), Value::String(description.into()));
    }
    schema
}

/// A mapping with exactly these properties (`additionalProperties: false`, as the parser
/// refuses unknown keys with `spec::unknown_key`).
fn closed(description: &str, properties: Vec<(&str, Value)>, required: &[&str]) -> Value {
    let mut props = Map::new();
    for (key, schema) in properties {
        props.insert(key.to_string(), schema);
    }
    let mut schema = json!({
        "type": "object",
        "description": description,
        "properties": props,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn string(description: &str) -> Value {
    json!({ "type": "string", "minLength": 1, "description": description })
}

fn choice(description: &str, values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values, "description": description })
}

fn boolean(description: &str) -> Value {
    json!({ "type": "boolean", "description": description })
}

/// A name: ASCII letters, digits, `_` and `-`, starting with a letter or `_`.
fn name(description: &str) -> Value {
    json!({
        "type": "string",
        "pattern": "^[A-Za-z_][A-Za-z0-9_-]*$",
        "maxLength": MAX_NAME_LENGTH,
        "description": description,
    })
}

/// A secret: exactly one `${env:NAME}` reference.
fn secret(description: &str) -> Value {
    json!({
        "type": "string",
        "pattern": "^\\$\\{env:[A-Za-z_][A-Za-z0-9_]*\\}$",
        "description": description,
    })
}

/// The schema of `engine.yaml`.
pub fn engine_schema() -> Value {
    let mut root = closed(
        "engine.yaml: the project's name, where its state lives, file tables, warehouse sources and destinations",
        vec![
            (
                "version",
                json!({ "const": 1, "description": "The file format; must be `1`." }),
            ),
            (
                "project",
                name(
                    "The project's name: ASCII letters, digits, `_` and `-`, starting with a letter or `_`.",
                ),
            ),
            ("state", json!({ "$ref": "#/definitions/state" })),
            (
                "tables",
                json!({
                    "type": ["object", "null"],
                    "description": "File tables visible to every model's SQL; each key is the SQL table name.",
                    "propertyNames": { "pattern": "^[a-z_][a-z0-9_]*$", "maxLength": MAX_NAME_LENGTH },
                    "additionalProperties": { "$ref": "#/definitions/table" },
                }),
            ),
            (
                "sources",
                json!({
                    "type": ["object", "null"],
                    "description": "Warehouses (PostgreSQL, MySQL/MariaDB) that models with `source:` run in.",
                    "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_-]*$", "maxLength": MAX_NAME_LENGTH },
                    "additionalProperties": { "$ref": "#/definitions/source" },
                }),
            ),
            (
                "destinations",
                json!({
                    "type": ["object", "null"],
                    "description": "CRM accounts; each key is the destination's name, used by syncs' `destination:`.",
                    "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_-]*$", "maxLength": MAX_NAME_LENGTH },
                    "additionalProperties": { "$ref": "#/definitions/destination" },
                }),
            ),
        ],
        &["version", "project"],
    );
    root["$schema"] = json!(DRAFT);
    root["$id"] = json!("https://engine.local/schema/engine.schema.json");
    root["title"] = json!("engine.yaml");
    root["definitions"] = json!({
        "state": state(),
        "retention": closed(
            "How much run history the state keeps; each defaults on its own.",
            vec![
                ("runs", json!({ "type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 100,
                    "description": "Finished runs kept in history per sync; the newest run of a sync is always kept." })),
                ("days", json!({ "type": "integer", "minimum": 1, "maximum": 36_500, "default": 90,
                    "description": "Days a finished run is kept, whatever `runs` says." })),
            ],
            &[],
        ),
        "table": table(),
        "source": source(),
        "destination": destination(),
        "rate_limit": closed(
            "How fast engine writes to this destination's account.",
            vec![
                ("requests_per_second", json!({ "type": "number", "exclusiveMinimum": 0,
                    "description": "At most this many requests per second to this destination's account, shared by every sync that writes to it in one `engine apply`." })),
                ("daily_share", json!({ "type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.8,
                    "description": "Salesforce: the run stops once this share of the org's daily API allocation is used." })),
            ],
            &[],
        ),
        "auth": auth(),
    });
    root
}

fn state() -> Value {
    let postgres_only = |key: &str| (key.to_string(), Value::Bool(false));
    let mut state = closed(
        "Where the state lives (docs/state.md).",
        vec![
            (
                "backend",
                described(
                    choice("", &["local", "postgres"]),
                    "`local`: everything under `state.path`; `postgres`: a PostgreSQL schema shared by every machine that reaches it, with `state.path` as its snapshot cache and scratch space.",
                ),
            ),
            (
                "path",
                string(
                    "Directory, relative to the project directory (or absolute): the whole state (`local`), or the cache and scratch files (`postgres`). Default `.engine`.",
                ),
            ),
            ("retention", json!({ "$ref": "#/definitions/retention" })),
            (
                "url",
                string(
                    "PostgreSQL backend: the connection URL, e.g. `${env:STATE_URL}`; a password only through `${env:NAME}`.",
                ),
            ),
            (
                "schema",
                json!({ "type": "string", "pattern": "^[a-z_][a-z0-9_]*$", "maxLength": 63, "default": "engine_state",
                "description": "PostgreSQL backend: the schema holding the state's tables (a lowercase SQL identifier), created on first use." }),
            ),
            (
                "tls",
                choice(
                    "PostgreSQL backend: TLS to the state database (default: the URL's `sslmode`, else `prefer`).",
                    &["disable", "prefer", "require", "verify_full"],
                ),
            ),
            (
                "ca_file",
                string("PostgreSQL backend: CA certificates (PEM) for `tls: verify_full`."),
            ),
        ],
        &[],
    );
    let others: Map<String, Value> = ["url", "schema", "tls", "ca_file"]
        .iter()
        .map(|k| postgres_only(k))
        .collect();
    state["if"] =
        json!({ "properties": { "backend": { "const": "postgres" } }, "required": ["backend"] });
    state["then"] = json!({ "required": ["url"] });
    state["else"] = json!({ "properties": others });
    state
}

fn table() -> Value {
    closed(
        "A file table: its path and how to read it.",
        vec![
            (
                "path",
                string(
                    "The file (or a directory of files of one format), relative to the project directory; must exist.",
                ),
            ),
            (
                "format",
                choice(
                    "From the extension when left out: `.csv` → `csv`, `.parquet` → `parquet`, `.ndjson` / `.jsonl` → `ndjson`; required for other extensions and directories.",
                    &["csv", "parquet", "ndjson"],
                ),
            ),
            (
                "has_header",
                boolean("CSV only: the first line holds the column names (default `true`)."),
            ),
            (
                "delimiter",
                json!({ "type": "string", "minLength": 1, "maxLength": 1, "not": { "enum": ["\n", "\r", "\""] },
                "description": "CSV only: the field separator, one ASCII character such as `\";\"` or `\"\\t\"` (default `\",\"`)." }),
            ),
        ],
        &["path"],
    )
}

fn source() -> Value {
    closed(
        "A warehouse that models with `source:` run in (docs/sources.md).",
        vec![
            (
                "type",
                choice("The kind of warehouse.", &["postgres", "mysql"]),
            ),
            (
                "url",
                string(
                    "The connection URL, e.g. `${env:WAREHOUSE_URL}`; a password only through `${env:NAME}`.",
                ),
            ),
            (
                "tls",
                choice(
                    "TLS to the warehouse (default: the URL's `sslmode`, else `prefer`).",
                    &["disable", "prefer", "require", "verify_full"],
                ),
            ),
            (
                "ca_file",
                string(
                    "CA certificates (PEM) for `tls: verify_full`, relative to the project directory.",
                ),
            ),
            (
                "statement_timeout",
                json!({ "type": "string", "pattern": "^\\s*[0-9]",
                "description": "How long a model's query may run, such as `30s`, `10m`, `2h` or `1h 30m`." }),
            ),
        ],
        &["type", "url"],
    )
}

fn destination() -> Value {
    let mut destination = closed(
        "A CRM account. Keys marked HubSpot or Salesforce are refused on the other type.",
        vec![
            (
                "type",
                choice("The kind of CRM.", &["hubspot", "salesforce"]),
            ),
            (
                "base_url",
                json!({ "type": "string", "pattern": "^(\\$\\{env:|[Hh][Tt][Tt][Pp][Ss]?://)",
                "description": "HubSpot: the root of the API (`https://api.hubapi.com`, no path), or text with `${env:NAME}` (e.g. to point at the sandbox)." }),
            ),
            (
                "token",
                secret("HubSpot: the API token (a private-app token), as `${env:NAME}`."),
            ),
            ("rate_limit", json!({ "$ref": "#/definitions/rate_limit" })),
            (
                "login",
                string(
                    "Salesforce: where tokens come from: `login` (production), `test` (sandbox orgs), a My Domain URL, or `${env:NAME}`.",
                ),
            ),
            ("auth", json!({ "$ref": "#/definitions/auth" })),
            (
                "api_version",
                json!({ "type": ["string", "number"], "pattern": "^[vV]?[0-9]+\\.[0-9]$",
                "description": "Salesforce: the REST API version, `\"vXX.X\"` (default `v62.0`)." }),
            ),
        ],
        &["type"],
    );
    let refuse = |keys: &[&str]| -> Map<String, Value> {
        keys.iter()
            .map(|k| (k.to_string(), Value::Bool(false)))
            .collect()
    };
    let mut hubspot = refuse(&["login", "auth", "api_version"]);
    hubspot.insert(
        "rate_limit".into(),
        json!({ "properties": { "daily_share": false } }),
    );
    destination["if"] =
        json!({ "properties": { "type": { "const": "hubspot" } }, "required": ["type"] });
    destination["then"] = json!({ "properties": hubspot });
    destination["else"] = json!({ "properties": refuse(&["base_url", "token"]) });
    destination
}

fn auth() -> Value {
    let mut auth = closed(
        "Salesforce: the connected app's credentials, each a `${env:NAME}` reference: `consumer_key`, `consumer_secret` and `refresh_token` (refresh-token flow), or `consumer_key`, `username` and `private_key` (JWT bearer flow).",
        vec![
            ("consumer_key", secret("The connected app's consumer key.")),
            (
                "consumer_secret",
                secret("Refresh-token flow: the connected app's consumer secret."),
            ),
            (
                "refresh_token",
                secret("Refresh-token flow: the refresh token."),
            ),
            (
                "username",
                secret("JWT bearer flow: the Salesforce username."),
            ),
            (
                "private_key",
                secret("JWT bearer flow: the certificate's private key (PEM)."),
            ),
        ],
        &["consumer_key"],
    );
    auth["oneOf"] = json!([
        { "required": ["consumer_secret", "refresh_token"],
          "properties": { "username": false, "private_key": false } },
        { "required": ["username", "private_key"],
          "properties": { "consumer_secret": false, "refresh_token": false } },
    ]);
    auth
}

/// The schema of `models/*.yaml`.
pub fn model_schema() -> Value {
    let mut root = closed(
        "A model: a SQL query whose rows syncs send to destinations",
        vec![
            ("name", name("The model's name, used by syncs' `model:`.")),
            (
                "description",
                json!({ "type": "string", "description": "Free text." }),
            ),
            (
                "source",
                name(
                    "The warehouse (under `sources:` in `engine.yaml`) the SQL runs in, in that warehouse's own dialect; without it the SQL runs over the file tables.",
                ),
            ),
            (
                "primary_key",
                json!({
                    "description": "The column(s) that identify a row; each listed once (`primary_key: id` is `[id]`).",
                    "oneOf": [
                        { "type": "string", "minLength": 1 },
                        { "type": "array", "items": { "type": "string", "minLength": 1 }, "minItems": 1, "uniqueItems": true },
                    ],
                }),
            ),
            (
                "sql",
                json!({ "type": "string", "pattern": "\\S",
                "description": "The query: over the tables of `engine.yaml` (DataFusion SQL), or in the model's `source`." }),
            ),
        ],
        &["name", "primary_key", "sql"],
    );
    root["$schema"] = json!(DRAFT);
    root["$id"] = json!("https://engine.local/schema/model.schema.json");
    root["title"] = json!("models/*.yaml");
    root
}

/// The schema of `syncs/*.yaml`.
pub fn sync_schema() -> Value {
    let mut root = closed(
        "A sync: a model's rows kept as records of one destination object",
        vec![
            ("name", name("The sync's name (`engine plan --sync NAME`).")),
            ("model", string("A model's `name`.")),
            (
                "destination",
                string("A key under `destinations:` in `engine.yaml`."),
            ),
            (
                "object",
                string(
                    "The destination object: for HubSpot `contacts`, `companies`, `deals`, `tickets`, `events`, `lists` or a custom object; for Salesforce an sObject such as `Contact` or `ThankView__c`.",
                ),
            ),
            (
                "mode",
                choice(
                    "`upsert` (default): create the record when no record matches, update it otherwise. `insert`: create records for new rows only. `update`: update matched records, never create.",
                    &["upsert", "insert", "update"],
                ),
            ),
            ("match", json!({ "$ref": "#/definitions/match" })),
            (
                "mapping",
                json!({
                    "type": ["array", "null"],
                    "description": "Destination properties and where their values come from, in order.",
                    "items": { "$ref": "#/definitions/mapping_entry" },
                }),
            ),
            (
                "on_remove",
                choice(
                    "When a row leaves the model: leave the record (`nothing`, default), empty every mapped property except the match property (`clear_fields`), or delete the record the row wrote (`delete`).",
                    &["nothing", "clear_fields", "delete"],
                ),
            ),
            ("guards", json!({ "$ref": "#/definitions/guards" })),
            (
                "batch_size",
                json!({ "type": "integer", "minimum": 1, "maximum": MAX_BATCH_SIZE,
                "description": format!("Records per write request: 1 to {MAX_HUBSPOT_BATCH_SIZE} (HubSpot) or {MAX_BATCH_SIZE} (Salesforce); default the destination's largest.") }),
            ),
            (
                "associations",
                json!({
                    "type": "array",
                    "description": "Links from each written record to records of other objects.",
                    "items": { "$ref": "#/definitions/association" },
                }),
            ),
            ("event", json!({ "$ref": "#/definitions/event" })),
            ("list", json!({ "$ref": "#/definitions/list" })),
            (
                "match_records",
                json!({ "$ref": "#/definitions/match_records" }),
            ),
            (
                "bulk_threshold",
                json!({ "type": "integer", "minimum": 1, "maximum": 100_000_000, "default": 2000,
                "description": "Salesforce: an apply with more rows than this of one kind writes them through Bulk API 2.0 jobs." }),
            ),
        ],
        &["name", "model", "destination", "object", "match"],
    );
    root["$schema"] = json!(DRAFT);
    root["$id"] = json!("https://engine.local/schema/sync.schema.json");
    root["title"] = json!("syncs/*.yaml");
    root["definitions"] = json!({
        "match": match_schema(),
        "mapping_entry": mapping_entry(),
        "guards": closed(
            "Refuse an apply that changes too much (override with `engine apply --override-guards`).",
            vec![
                ("max_deletes", json!({ "type": "integer", "minimum": 0,
                    "description": "Refuse an apply that removes more rows than this." })),
                ("max_change_ratio", json!({ "type": "number", "exclusiveMinimum": 0, "maximum": 1,
                    "description": "Refuse an apply that changes or removes more than this fraction of the rows synced before." })),
            ],
            &[],
        ),
        "association": closed(
            "A link from each written record to a record of another object.",
            vec![
                ("name", name("The association's name (default: `to`).")),
                ("to", string("The object linked to.")),
                ("column", string("The model column holding the target(s): one, a comma-separated string, a list, or `{\"value\", \"label\"}` objects.")),
                ("by", string("`id` (default) or a unique property of `to` the column's values are matched on.")),
                ("label", json!({ "type": ["string", "integer"], "description": "The association label's name or type id." })),
                ("when", choice("`always` (default) or only when the record is `created`.", &["always", "created"])),
                ("remove_stale", boolean("Remove links the model no longer has (default `false`; not with `when: created`).")),
            ],
            &["to", "column"],
        ),
        "event": event(),
        "list": closed(
            "With `object: lists`: the static contacts list kept to the model's rows, by `name` (default: the model's name) or `id`.",
            vec![
                ("name", string("The list's name.")),
                ("id", json!({ "type": ["string", "integer"], "description": "The list's id." })),
            ],
            &[],
        ),
        "match_records": match_records(),
    });
    root
}

fn match_schema() -> Value {
    closed(
        "How rows find their destination records.",
        vec![
            (
                "property",
                string("A unique destination property records are matched on, e.g. `email`."),
            ),
            (
                "column",
                string("The model column holding its value; the property is always set from it."),
            ),
            (
                "on_invalid",
                choice(
                    "Rows whose match value is null, empty or shared with another row: `fail` (default) stops the plan, `skip` leaves them out and lists them.",
                    &["fail", "skip"],
                ),
            ),
            (
                "lookup",
                choice(
                    "How a new row finds its record: `unique` (default), the destination matches in the write; `search`, records are looked up first.",
                    &["unique", "search"],
                ),
            ),
            (
                "fallback",
                json!({
                    "type": "array",
                    "items": { "type": "string", "minLength": 1 },
                    "uniqueItems": true,
                    "description": "Mapped properties tried in order when `match.property` finds no record; implies `lookup: search`.",
                }),
            ),
        ],
        &["property", "column"],
    )
}

fn mapping_entry() -> Value {
    let mut entry = closed(
        "One destination property and its source: exactly one of `column`, `value` or `template`.",
        vec![
            (
                "property",
                string(
                    "The destination's internal property name; each at most once, never `match.property`.",
                ),
            ),
            ("column", string("A model column.")),
            (
                "value",
                json!({ "type": ["string", "number", "boolean"],
                "description": "A static value, kept as written (`value: 007` is the text `007`)." }),
            ),
            (
                "template",
                string(
                    "A template rendered per row with `row` in scope (minijinja syntax, Liquid-named filters).",
                ),
            ),
            (
                "on_null",
                choice(
                    "When the value is null: leave the destination's value (`keep`, default) or empty it (`clear`).",
                    &["keep", "clear"],
                ),
            ),
        ],
        &["property"],
    );
    entry["oneOf"] = json!([
        { "required": ["column"] },
        { "required": ["value"] },
        { "required": ["template"] },
    ]);
    entry
}

fn event() -> Value {
    let mut event = closed(
        "With `object: events`: each added row sends one event, once.",
        vec![
            ("name", string("The event's internal name.")),
            (
                "name_column",
                string("The model column naming each row's event."),
            ),
            (
                "occurred_at",
                string("The model column holding when the event happened."),
            ),
        ],
        &[],
    );
    event["oneOf"] = json!([{ "required": ["name"] }, { "required": ["name_column"] }]);
    event
}

fn match_records() -> Value {
    let mut records = closed(
        "Salesforce: the record-matching cascade that fills lookup fields (a Contact by id, else a Contact, else a Lead, by email).",
        vec![
            (
                "id_column",
                string("The column holding a Contact id per row."),
            ),
            (
                "email_column",
                string("The column holding an email: a Contact, else a Lead, with it."),
            ),
            (
                "contact_field",
                string("The lookup field filled with the matched Contact."),
            ),
            (
                "lead_field",
                string("The lookup field filled with the matched Lead."),
            ),
            (
                "on_duplicate",
                choice(
                    "Several records with one email: `fail` (default) or take the `most_recent`.",
                    &["fail", "most_recent"],
                ),
            ),
        ],
        &["contact_field"],
    );
    records["anyOf"] = json!([{ "required": ["id_column"] }, { "required": ["email_column"] }]);
    records
}
