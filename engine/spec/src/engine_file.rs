//! `engine.yaml`: the project's name, where state lives, file tables, warehouse sources
//! (`sources.rs`) and destinations.

use std::path::{Path, PathBuf};

use engine_diag::{Diagnostic, did_you_mean};

use crate::check::{Cx, Fields, list};
use crate::env::{self, Piece};
use crate::types::{
    DEFAULT_STATE_SCHEMA, DestinationKind, DestinationSpec, EnvTemplate, FileFormat, Located,
    Retention, SalesforceAuthSpec, SourceSpec, StateBackend, StatePostgresSpec, TableSpec,
};
use crate::yaml::{Node, Value};

pub(crate) const ROOT_KEYS: &[&str] = &[
    "version",
    "project",
    "state",
    "tables",
    "sources",
    "destinations",
];
pub(crate) const STATE_KEYS: &[&str] = &[
    "backend",
    "path",
    "retention",
    "url",
    "schema",
    "tls",
    "ca_file",
];
pub(crate) const STATE_BACKENDS: &[&str] = &["local", "postgres"];
/// The keys only `backend: postgres` takes.
pub(crate) const POSTGRES_STATE_KEYS: &[&str] = &["url", "schema", "tls", "ca_file"];
pub(crate) const RETENTION_KEYS: &[&str] = &["runs", "days"];
pub(crate) const TABLE_KEYS: &[&str] = &["path", "format", "has_header", "delimiter"];
pub(crate) const DESTINATION_KEYS: &[&str] = &[
    "type",
    "base_url",
    "token",
    "rate_limit",
    "login",
    "auth",
    "api_version",
];
pub(crate) const RATE_LIMIT_KEYS: &[&str] = &["requests_per_second", "daily_share"];
pub(crate) const AUTH_KEYS: &[&str] = &[
    "consumer_key",
    "consumer_secret",
    "refresh_token",
    "username",
    "private_key",
];
/// The keys of each OAuth flow `auth:` can describe.
pub(crate) const REFRESH_TOKEN_KEYS: &[&str] = &["consumer_secret", "refresh_token"];
pub(crate) const JWT_BEARER_KEYS: &[&str] = &["username", "private_key"];
/// Keys only a HubSpot destination takes, and only a Salesforce one.
pub(crate) const HUBSPOT_ONLY: &[&str] = &["base_url", "token"];
pub(crate) const SALESFORCE_ONLY: &[&str] = &["login", "auth", "api_version"];
pub(crate) const FORMATS: &[&str] = &["csv", "parquet", "ndjson"];
pub(crate) const DESTINATION_TYPES: &[&str] = &["hubspot", "salesforce"];

/// What `engine.yaml` yields; fields are `None` (or partial) where there were errors.
#[derive(Default)]
pub(crate) struct EngineFile {
    /// `project:`.
    pub name: Option<String>,
    /// `state.path:` resolved against the root (default `.engine`).
    pub state_dir: Option<PathBuf>,
    /// `state.retention:` (defaults where not given).
    pub retention: Retention,
    /// `state.backend:` and its settings.
    pub state_backend: StateBackend,
    /// Tables that checked out.
    pub tables: Vec<TableSpec>,
    /// Warehouse sources that checked out.
    pub sources: Vec<SourceSpec>,
    /// Every source name written, for models' references; `None` when `sources:` could not
    /// be read at all.
    pub source_names: Option<Vec<Located<String>>>,
    /// Destinations that checked out.
    pub destinations: Vec<DestinationSpec>,
    /// Every destination name written, for syncs' references; `None` when `destinations:`
    /// could not be read at all (so unknown-destination errors would be noise).
    pub destination_names: Option<Vec<Located<String>>>,
}

/// Checks the root node of `engine.yaml`.
pub(crate) fn check(cx: &mut Cx<'_>, root: &Path, node: &Node) -> EngineFile {
    let mut out = EngineFile::default();
    let Some(fields) = cx.mapping(node, None, "engine.yaml", "`engine.yaml`", ROOT_KEYS) else {
        return out;
    };
    if let Some(version) = cx.required(&fields, "version")
        && let Some(n) = cx.integer(version, "version")
        && n != 1
    {
        cx.push(
            Diagnostic::error(
                "spec::unsupported_version",
                format!("unsupported `version: {n}`"),
            )
            .at(version.span.clone())
            .hint("this engine reads `version: 1`"),
        );
    }
    if let Some(project) = cx.required(&fields, "project") {
        out.name = cx.name(project, "project", "project").map(|n| n.value);
    }
    (out.state_dir, out.retention, out.state_backend) = state_settings(cx, root, &fields);
    if let Some(tables) = fields.get("tables") {
        out.tables = check_tables(cx, root, tables, fields.key("tables"));
    }
    match fields.get_raw("sources") {
        None => out.source_names = Some(Vec::new()),
        Some(node) if matches!(node.value, Value::Null) => out.source_names = Some(Vec::new()),
        Some(node) => {
            if matches!(node.value, Value::Map(_)) {
                out.source_names = Some(map_keys(node));
            }
            out.sources = crate::sources::check_sources(cx, root, node, fields.key("sources"));
        }
    }
    match fields.get_raw("destinations") {
        None => out.destination_names = Some(Vec::new()),
        Some(node) if matches!(node.value, Value::Null) => out.destination_names = Some(Vec::new()),
        Some(node) => {
            if matches!(node.value, Value::Map(_)) {
                out.destination_names = Some(map_keys(node));
            }
            out.destinations = check_destinations(cx, node, fields.key("destinations"));
        }
    }
    out
}

/// The names written as keys of a mapping (each once), for references to them.
fn map_keys(node: &Node) -> Vec<Located<String>> {
    let mut names: Vec<Located<String>> = Vec::new();
    if let Value::Map(entries) = &node.value {
        for (key, _) in entries {
            if let Value::Str(name) = &key.value
                && !names.iter().any(|n| n.value == *name)
            {
                names.push(Located {
                    value: name.clone(),
                    span: key.span.clone(),
                });
            }
        }
    }
    names
}

/// `state:`: where the state lives (default `.engine`), how much history it keeps, and which
/// backend holds it.
fn state_settings(
    cx: &mut Cx<'_>,
    root: &Path,
    fields: &Fields<'_>,
) -> (Option<PathBuf>, Retention, StateBackend) {
    let default = root.join(".engine");
    let Some(state) = fields.get("state") else {
        return (Some(default), Retention::DEFAULT, StateBackend::Local);
    };
    let Some(state) = cx.mapping(state, fields.key("state"), "state", "`state`", STATE_KEYS) else {
        return (None, Retention::DEFAULT, StateBackend::Local);
    };
    let dir = match state.get("path") {
        None => Some(default),
        Some(path) => cx
            .non_empty_string(path, "path")
            .map(|p| root.join(p.value)),
    };
    let retention = match state.get("retention") {
        None => Retention::DEFAULT,
        Some(node) => retention(cx, node, state.key("retention")),
    };
    let postgres = match state.get("backend") {
        None => false,
        Some(node) => match cx.choice(node, "backend", STATE_BACKENDS, &[]) {
            Some("postgres") => true,
            Some(_) => false,
            None => return (None, retention, StateBackend::Local),
        },
    };
    if !postgres {
        let mut ok = true;
        for key in POSTGRES_STATE_KEYS {
            if let Some(k) = state.key(key) {
                cx.push(
                    Diagnostic::error(
                        "spec::option_for_other_type",
                        format!("`state.{key}` applies only to the PostgreSQL state backend"),
                    )
                    .at(k.span.clone())
                    .hint(format!(
                        "add `backend: postgres` to `state:` to keep the state in PostgreSQL, or remove `{key}`"
                    )),
                );
                ok = false;
            }
        }
        return (dir.filter(|_| ok), retention, StateBackend::Local);
    }
    let url_node = cx.required(&state, "url");
    let url = url_node.and_then(|node| {
        crate::sources::url(
            cx,
            node,
            Some(crate::types::SourceKind::Postgres),
            "`state`",
            "STATE_URL",
        )
    });
    let schema = match state.get("schema") {
        None => url_node.map(|node| Located {
            value: DEFAULT_STATE_SCHEMA.to_string(),
            span: node.span.clone(),
        }),
        Some(node) => schema_name(cx, node),
    };
    let tls = crate::sources::tls_mode(cx, state.get("tls"));
    let ca_file = match state.get("ca_file") {
        None => Some(None),
        Some(node) => cx
            .non_empty_string(node, "ca_file")
            .map(|p| Some(root.join(p.value))),
    };
    let backend = match (url, schema, tls, ca_file) {
        (Some(url), Some(schema), Some(tls), Some(ca_file)) => {
            Some(StateBackend::Postgres(StatePostgresSpec {
                url,
                schema,
                tls,
                ca_file,
            }))
        }
        _ => None,
    };
    match backend {
        Some(backend) => (dir, retention, backend),
        None => (None, retention, StateBackend::Local),
    }
}

/// `state.schema:` a plain lowercase SQL identifier (it is written into statements).
fn schema_name(cx: &mut Cx<'_>, node: &Node) -> Option<Located<String>> {
    let name = cx.non_empty_string(node, "schema")?;
    let mut chars = name.value.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.value.len() <= 63;
    if !valid {
        cx.push(
            Diagnostic::error(
                "spec::invalid_value",
                format!("`schema` must be a lowercase SQL identifier, found `{}`", name.value),
            )
            .at(node.span.clone())
            .hint("use lowercase letters, digits and `_`, starting with a letter or `_` (at most 63), e.g. `schema: engine_state`"),
        );
        return None;
    }
    Some(name)
}

/// `state.retention: { runs: N, days: D }`; each defaults on its own.
fn retention(cx: &mut Cx<'_>, node: &Node, key: Option<&Node>) -> Retention {
    let mut out = Retention::DEFAULT;
    let Some(retention) = cx.mapping(node, key, "retention", "`state.retention`", RETENTION_KEYS)
    else {
        return out;
    };
    if let Some(runs) = retention.get("runs")
        && let Some(n) = cx.integer_in(runs, "runs", 1, Some(1_000_000))
    {
        out.runs = n as u32;
    }
    if let Some(days) = retention.get("days")
        && let Some(n) = cx.integer_in(days, "days", 1, Some(36_500))
    {
        out.days = n as u32;
    }
    out
}

fn check_tables(cx: &mut Cx<'_>, root: &Path, node: &Node, key: Option<&Node>) -> Vec<TableSpec> {
    named_entries(
        cx,
        node,
        key,
        ("tables", "table", "a mapping of table names to files"),
        table_name,
        |cx, name, key, value| check_table(cx, root, name, key, value),
    )
}

/// The entries of a mapping keyed by names (`tables:`, `sources:`, `destinations:`): each
/// name read by `name`, each body by `check` (even under a bad or repeated name, so every
/// problem is reported at once); a repeated name is an error and keeps the first entry.
/// `what` is (the section's key, the noun of one entry, what the section must be).
pub(crate) fn named_entries<T>(
    cx: &mut Cx<'_>,
    node: &Node,
    key: Option<&Node>,
    what: (&str, &str, &str),
    name: impl Fn(&mut Cx<'_>, &Node) -> Option<Located<String>>,
    mut check: impl FnMut(&mut Cx<'_>, Located<String>, &Node, &Node) -> Option<T>,
) -> Vec<T> {
    let (section, noun, expected) = what;
    let Value::Map(entries) = &node.value else {
        cx.wrong_type_in(node, key, section, expected);
        return Vec::new();
    };
    let mut out: Vec<T> = Vec::new();
    let mut seen: Vec<Located<String>> = Vec::new();
    for (key, value) in entries {
        let name = name(cx, key);
        let first = name
            .as_ref()
            .and_then(|n| seen.iter().find(|s| s.value == n.value).cloned());
        let checked = check(
            cx,
            name.clone().unwrap_or_else(|| placeholder(cx, key)),
            key,
            value,
        );
        match (name, first) {
            (Some(name), Some(first)) => cx.push(duplicate_entry(noun, &name, &first)),
            (Some(name), None) => {
                seen.push(name);
                out.extend(checked);
            }
            (None, _) => {}
        }
    }
    out
}

/// Table names are SQL identifiers; DataFusion folds unquoted names to lowercase.
fn table_name(cx: &mut Cx<'_>, key: &Node) -> Option<Located<String>> {
    cx.checked_name(
        key,
        "tables",
        "table",
        |first, rest| {
            (first.is_ascii_lowercase() || first == '_')
                && rest.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        },
        "table names are SQL identifiers: use lowercase letters, digits and `_`, starting with a letter or `_`",
    )
}

fn check_table(
    cx: &mut Cx<'_>,
    root: &Path,
    name: Located<String>,
    key: &Node,
    node: &Node,
) -> Option<TableSpec> {
    let what = format!("table `{}`", name.value);
    let fields = cx.mapping(node, Some(key), &name.value, what, TABLE_KEYS)?;
    let path_node = cx.required(&fields, "path");
    let path = path_node.and_then(|p| cx.non_empty_string(p, "path"));
    let mut ok = path.is_some();
    let mut exists = false;
    if let (Some(path), Some(path_node)) = (&path, path_node) {
        exists = root.join(&path.value).exists();
        if !exists {
            let mut diagnostic = Diagnostic::error(
                "spec::table_not_found",
                format!("table file `{}` does not exist", path.value),
            )
            .at(path_node.span.clone())
            .hint("paths are relative to the directory that holds `engine.yaml`");
            if path.value.contains("${") {
                diagnostic =
                    diagnostic.note("`${env:NAME}` is expanded only in `base_url` and `token`");
            }
            cx.push(diagnostic);
            ok = false;
        }
    }
    let format = match fields.get("format") {
        Some(format) => match cx.choice(format, "format", FORMATS, &[]) {
            Some("csv") => Some(FileFormat::Csv),
            Some("parquet") => Some(FileFormat::Parquet),
            Some(_) => Some(FileFormat::Ndjson),
            None => None,
        },
        None => match (&path, path_node) {
            (Some(path), Some(path_node)) => {
                let inferred = infer_format(&path.value);
                if inferred.is_none() && exists {
                    let mut diagnostic = Diagnostic::error(
                        "spec::unknown_format",
                        format!(
                            "cannot tell the format of `{}` from its extension",
                            path.value
                        ),
                    )
                    .at(path_node.span.clone())
                    .hint("add `format: csv`, `format: parquet` or `format: ndjson`");
                    if path.value.to_ascii_lowercase().ends_with(".json") {
                        diagnostic = diagnostic
                            .note("only newline-delimited JSON (one object per line) is read");
                    }
                    cx.push(diagnostic);
                }
                inferred
            }
            _ => None,
        },
    };
    let has_header = fields
        .get("has_header")
        .map(|n| (n, cx.boolean(n, "has_header")));
    let delimiter = fields.get("delimiter").map(|n| (n, delimiter(cx, n)));
    if let Some(format) = format.filter(|f| *f != FileFormat::Csv) {
        for key in ["has_header", "delimiter"] {
            if let Some(k) = fields.key(key) {
                cx.push(
                    Diagnostic::warning(
                        "spec::ignored_option",
                        format!(
                            "`{key}` applies only to CSV tables and is ignored for `{}`",
                            format_name(format)
                        ),
                    )
                    .at(k.span.clone())
                    .hint(format!("remove `{key}`")),
                );
            }
        }
    }
    let has_header = match has_header {
        Some((_, None)) => return None,
        Some((_, Some(b))) => b,
        None => true,
    };
    let delimiter = match delimiter {
        Some((_, None)) => return None,
        Some((_, Some(d))) => d,
        None => b',',
    };
    let (Some(path), Some(path_node), Some(format), true) = (path, path_node, format, ok) else {
        return None;
    };
    Some(TableSpec {
        name,
        path: root.join(&path.value),
        path_span: path_node.span.clone(),
        format,
        has_header,
        delimiter,
    })
}

fn format_name(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Csv => "csv",
        FileFormat::Parquet => "parquet",
        FileFormat::Ndjson => "ndjson",
    }
}

/// The format implied by a file extension.
fn infer_format(path: &str) -> Option<FileFormat> {
    let extension = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "csv" => Some(FileFormat::Csv),
        "parquet" => Some(FileFormat::Parquet),
        "ndjson" | "jsonl" => Some(FileFormat::Ndjson),
        _ => None,
    }
}

fn delimiter(cx: &mut Cx<'_>, node: &Node) -> Option<u8> {
    let s = cx.string(node, "delimiter")?;
    match s.value.as_bytes() {
        [b] if b.is_ascii() && !matches!(b, b'\n' | b'\r' | b'"') => Some(*b),
        _ => {
            let shown = s.value.escape_debug();
            cx.push(
                Diagnostic::error(
                    "spec::invalid_delimiter",
                    format!("`delimiter` must be one ASCII character, found `{shown}`"),
                )
                .at(node.span.clone())
                .hint("write one character such as `\",\"`, `\";\"` or `\"\\t\"` (not a line break or `\"`)"),
            );
            None
        }
    }
}

fn check_destinations(cx: &mut Cx<'_>, node: &Node, key: Option<&Node>) -> Vec<DestinationSpec> {
    named_entries(
        cx,
        node,
        key,
        (
            "destinations",
            "destination",
            "a mapping of destination names to settings",
        ),
        |cx, key| cx.name(key, "destinations", "destination"),
        check_destination,
    )
}

fn check_destination(
    cx: &mut Cx<'_>,
    name: Located<String>,
    key: &Node,
    node: &Node,
) -> Option<DestinationSpec> {
    let what = format!("destination `{}`", name.value);
    let fields = cx.mapping(node, Some(key), &name.value, what, DESTINATION_KEYS)?;
    let kind = cx.required(&fields, "type").and_then(|t| {
        match cx.choice(t, "type", DESTINATION_TYPES, &[])? {
            "hubspot" => Some(DestinationKind::Hubspot),
            _ => Some(DestinationKind::Salesforce),
        }
    });
    // Misplaced keys are reported; the destination is still kept, for the syncs' checks.
    if let Some(kind) = kind {
        other_kinds_keys(cx, &fields, kind, &name.value);
    }
    let base_url = fields.get("base_url").map(|n| base_url(cx, n));
    let token = fields.get("token").map(|n| token(cx, n, &name.value));
    let rate = fields
        .get("rate_limit")
        .map(|n| rate_limit(cx, n, fields.key("rate_limit"), kind));
    let login = fields.get("login").map(|n| login(cx, n));
    let auth = fields
        .get("auth")
        .map(|n| auth(cx, n, fields.key("auth"), &name.value));
    let api_version = fields.get("api_version").map(|n| api_version(cx, n));
    let base_url = match base_url {
        Some(None) => return None,
        Some(Some(t)) => Some(t),
        None => None,
    };
    let token = match token {
        Some(None) => return None,
        Some(Some(t)) => Some(t),
        None => None,
    };
    let (requests_per_second, daily_share) = match rate {
        Some(None) => return None,
        Some(Some(r)) => r,
        None => (None, None),
    };
    let login = match login {
        Some(None) => return None,
        Some(Some(l)) => Some(l),
        None => None,
    };
    let auth = match auth {
        Some(None) => return None,
        Some(Some(a)) => Some(a),
        None => None,
    };
    let api_version = match api_version {
        Some(None) => return None,
        Some(Some(v)) => Some(v),
        None => None,
    };
    Some(DestinationSpec {
        name,
        kind: kind?,
        base_url,
        token,
        requests_per_second,
        login,
        auth,
        api_version,
        daily_share,
    })
}

/// Refuses keys that belong to the other destination type (`token:` on a Salesforce
/// destination, `auth:` on a HubSpot one).
fn other_kinds_keys(
    cx: &mut Cx<'_>,
    fields: &Fields<'_>,
    kind: DestinationKind,
    destination: &str,
) {
    let (foreign, this, other, instead) = match kind {
        DestinationKind::Hubspot => (
            SALESFORCE_ONLY,
            "hubspot",
            "Salesforce",
            "a HubSpot destination signs in with `token:` (and `base_url:` for the sandbox)",
        ),
        DestinationKind::Salesforce => (
            HUBSPOT_ONLY,
            "salesforce",
            "HubSpot",
            "a Salesforce destination signs in with `login:` and `auth: { consumer_key, consumer_secret, refresh_token }` (or `auth: { consumer_key, username, private_key }` for the JWT bearer flow)",
        ),
    };
    for key in foreign {
        if let Some(at) = fields.key(key) {
            cx.push(
                Diagnostic::error(
                    "spec::option_for_other_type",
                    format!(
                        "`{key}` is a {other} setting, and destination `{destination}` is `type: {this}`"
                    ),
                )
                .at(at.span.clone())
                .note(instead)
                .hint(format!("remove `{key}`, or change `type:`")),
            );
        }
    }
}

/// `login:` `login` (production), `test` (sandbox orgs), or an http(s) URL (My Domain, the
/// bundled sandbox), possibly from `${env:NAME}`.
fn login(cx: &mut Cx<'_>, node: &Node) -> Option<EnvTemplate> {
    let s = cx.non_empty_string(node, "login")?;
    let pieces = match env::parse(&s.value) {
        Err(error) => {
            cx.push(
                Diagnostic::error("spec::invalid_env_reference", error.message("login"))
                    .at(node.sub_span(cx.source, error.start, error.len))
                    .hint(error.hint(false)),
            );
            return None;
        }
        Ok(pieces) => pieces,
    };
    let starts_with_var = matches!(pieces.first(), Some(Piece::Var(_)));
    let lower = s.value.to_ascii_lowercase();
    let named = matches!(lower.as_str(), "login" | "test");
    if !starts_with_var && !named && !lower.starts_with("http://") && !lower.starts_with("https://")
    {
        let mut diagnostic = Diagnostic::error(
            "spec::invalid_login",
            format!(
                "`login` must be `login`, `test` or an http(s) URL, found `{}`",
                s.value
            ),
        )
        .at(node.span.clone())
        .hint("use `login` for production and Developer Edition orgs, `test` for sandbox orgs, or your My Domain URL such as `https://acme.my.salesforce.com`");
        if let Some(near) = did_you_mean(&lower, ["login", "test"]) {
            diagnostic = diagnostic.hint(format!("did you mean `{near}`?"));
        }
        cx.push(diagnostic);
        return None;
    }
    if has_literal_password(&s.value) {
        cx.push(
            Diagnostic::error(
                "spec::literal_secret",
                "a password is written in `login`; secrets must come from the environment",
            )
            .at(node.span.clone())
            .note("a password committed to git is leaked: change it")
            .hint("write the URL without credentials"),
        );
        return None;
    }
    Some(EnvTemplate {
        raw: s.value,
        span: node.span.clone(),
    })
}

/// `auth:` the refresh-token flow's three values or the JWT bearer flow's three, each a
/// `${env:NAME}` reference; the flow is told by its keys, and keys of both are refused.
fn auth(
    cx: &mut Cx<'_>,
    node: &Node,
    key: Option<&Node>,
    destination: &str,
) -> Option<SalesforceAuthSpec> {
    let fields = cx.mapping(node, key, "auth", "`auth`", AUTH_KEYS)?;
    let prefix = env_prefix(destination);
    let read = |cx: &mut Cx<'_>, key: &str, noun: &str| {
        let node = cx.required(&fields, key)?;
        let suggested = format!("{prefix}_{}", key.to_ascii_uppercase());
        secret(cx, node, key, noun, &suggested)
    };
    let has = |keys: &'static [&'static str]| -> Option<&'static str> {
        keys.iter().find(|k| fields.key(k).is_some()).copied()
    };
    let jwt = match (has(REFRESH_TOKEN_KEYS), has(JWT_BEARER_KEYS)) {
        (Some(refresh), Some(jwt)) => {
            let at = fields.key(jwt).map(|k| k.span.clone());
            let mut diagnostic = Diagnostic::error(
                "spec::mixed_auth",
                format!(
                    "`auth` mixes the refresh-token flow (`{refresh}`) and the JWT bearer flow (`{jwt}`)"
                ),
            )
            .hint("keep `consumer_key`, `consumer_secret` and `refresh_token` for the refresh-token flow, or `consumer_key`, `username` and `private_key` for the JWT bearer flow");
            if let Some(at) = at {
                diagnostic = diagnostic.at(at);
            }
            cx.push(diagnostic);
            return None;
        }
        (None, Some(_)) => true,
        _ => false,
    };
    let consumer_key = read(cx, "consumer_key", "consumer key");
    if jwt {
        let username = read(cx, "username", "Salesforce username");
        let private_key = read(cx, "private_key", "certificate's private key (PEM)");
        return Some(SalesforceAuthSpec::JwtBearer {
            consumer_key: consumer_key?,
            username: username?,
            private_key: private_key?,
        });
    }
    let consumer_secret = read(cx, "consumer_secret", "consumer secret");
    let refresh_token = read(cx, "refresh_token", "refresh token");
    Some(SalesforceAuthSpec::RefreshToken {
        consumer_key: consumer_key?,
        consumer_secret: consumer_secret?,
        refresh_token: refresh_token?,
    })
}

/// `api_version:` `vXX.X` or `XX.X`.
fn api_version(cx: &mut Cx<'_>, node: &Node) -> Option<Located<String>> {
    let text = node.scalar_text(cx.source).unwrap_or_default();
    let bare = text.trim().trim_start_matches(['v', 'V']);
    let valid = bare.split_once('.').is_some_and(|(major, minor)| {
        !major.is_empty()
            && major.chars().all(|c| c.is_ascii_digit())
            && minor.len() == 1
            && minor.chars().all(|c| c.is_ascii_digit())
    });
    if !valid {
        cx.push(
            Diagnostic::error(
                "spec::invalid_api_version",
                format!("`api_version` must look like `v62.0`, found `{text}`"),
            )
            .at(node.span.clone())
            .hint("write the REST API version as `vXX.X` (quote it: `api_version: \"v62.0\"`), or leave it out for the connector's default"),
        );
        return None;
    }
    Some(Located {
        value: format!("v{bare}"),
        span: node.span.clone(),
    })
}

/// `ACME_CRM` for destination `acme-crm`: the prefix of suggested variable names.
fn env_prefix(destination: &str) -> String {
    let mut prefix: String = destination
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if !env::is_var_name(&format!("{prefix}_X")) {
        prefix.insert(0, '_');
    }
    prefix
}

fn base_url(cx: &mut Cx<'_>, node: &Node) -> Option<EnvTemplate> {
    let s = cx.non_empty_string(node, "base_url")?;
    match env::parse(&s.value) {
        Err(error) => {
            cx.push(
                Diagnostic::error("spec::invalid_env_reference", error.message("base_url"))
                    .at(node.sub_span(cx.source, error.start, error.len))
                    .hint(error.hint(false)),
            );
            None
        }
        Ok(pieces) => {
            let starts_with_var = matches!(pieces.first(), Some(Piece::Var(_)));
            let lower = s.value.to_ascii_lowercase();
            if !starts_with_var && !lower.starts_with("http://") && !lower.starts_with("https://") {
                cx.push(
                    Diagnostic::error(
                        "spec::invalid_url",
                        "`base_url` must start with `http://` or `https://`",
                    )
                    .at(node.span.clone())
                    .hint("write the full URL, e.g. `https://api.hubapi.com`"),
                );
                return None;
            }
            if has_literal_password(&s.value) {
                cx.push(
                    Diagnostic::error(
                        "spec::literal_secret",
                        "a password is written in `base_url`; secrets must come from the environment",
                    )
                    .at(node.span.clone())
                    .note("a password committed to git is leaked: change it")
                    .hint("write the password as a reference: `base_url: \"https://user:${env:HUBSPOT_PASSWORD}@host\"`"),
                );
                return None;
            }
            Some(EnvTemplate {
                raw: s.value,
                span: node.span.clone(),
            })
        }
    }
}

/// True when a URL's user information holds a password written out rather than a
/// `${env:NAME}` reference (`https://user:secret@host`).
pub(crate) fn has_literal_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return false;
    };
    match userinfo.split_once(':') {
        Some((_, password)) => !password.is_empty() && !password.starts_with("${env:"),
        None => false,
    }
}

/// A token must be exactly one `${env:NAME}` (see [`secret`]).
fn token(cx: &mut Cx<'_>, node: &Node, destination: &str) -> Option<EnvTemplate> {
    let suggested = format!("{}_TOKEN", env_prefix(destination));
    secret(cx, node, "token", "token", &suggested)
}

/// A secret (`token`, `consumer_secret`, …) must be exactly one `${env:NAME}`. Every problem
/// with it is a `spec::literal_secret` (whose snippet the renderer masks), and no message
/// quotes it: what was written may be a pasted secret.
fn secret(
    cx: &mut Cx<'_>,
    node: &Node,
    key: &str,
    noun: &str,
    suggested: &str,
) -> Option<EnvTemplate> {
    let example = format!("{key}: \"${{env:{suggested}}}\"");
    let refuse = |cx: &mut Cx<'_>, message: String, hint: String| {
        cx.push(
            Diagnostic::error("spec::literal_secret", message)
                .at(node.span.clone())
                .hint(hint),
        );
        None
    };
    let Value::Str(raw) = &node.value else {
        return refuse(
            cx,
            format!(
                "`{key}` must be a `${{env:NAME}}` reference, found {}",
                node.value.kind()
            ),
            format!("export the {noun} as `{suggested}` and write `{example}`"),
        );
    };
    match env::parse(raw) {
        Err(error) => refuse(cx, error.message(key), error.hint(true)),
        Ok(pieces) => {
            match pieces.as_slice() {
                [Piece::Var(_)] => Some(EnvTemplate {
                    raw: raw.clone(),
                    span: node.span.clone(),
                }),
                pieces if !pieces.iter().any(|p| matches!(p, Piece::Var(_))) && !raw.is_empty() => {
                    cx.push(
                    Diagnostic::error(
                        "spec::literal_secret",
                        format!("`{key}` is written in the file; secrets must come from the environment"),
                    )
                    .at(node.span.clone())
                    .note(format!("a {noun} committed to git is leaked: revoke it and create a new one"))
                    .hint(format!("export the {noun} as `{suggested}` and write `{example}`")),
                );
                    None
                }
                _ => refuse(
                    cx,
                    format!(
                        "`{key}` must be exactly one `${{env:NAME}}` reference, with nothing around it"
                    ),
                    format!("write `{example}` and put the whole {noun} in the variable"),
                ),
            }
        }
    }
}

/// `None` on error, else `requests_per_second` and (Salesforce) `daily_share`, each when
/// given.
fn rate_limit(
    cx: &mut Cx<'_>,
    node: &Node,
    key: Option<&Node>,
    kind: Option<DestinationKind>,
) -> Option<(Option<f64>, Option<f64>)> {
    let fields = cx.mapping(node, key, "rate_limit", "`rate_limit`", RATE_LIMIT_KEYS)?;
    let mut ok = true;
    let mut share = None;
    if let Some(node) = fields.get("daily_share") {
        if kind == Some(DestinationKind::Hubspot) {
            cx.push(
                Diagnostic::error(
                    "spec::option_for_other_type",
                    "`daily_share` is a Salesforce setting (the share of the org's daily API allocation a run may use)",
                )
                .at(fields.key("daily_share").unwrap_or(node).span.clone())
                .hint("remove `daily_share`"),
            );
        } else {
            match cx.number(node, "daily_share") {
                Some(n) if n > 0.0 && n <= 1.0 => share = Some(n),
                Some(n) => {
                    cx.push(
                        Diagnostic::error(
                            "spec::out_of_range",
                            format!("`daily_share` must be greater than 0 and at most 1, found {n}"),
                        )
                        .at(node.span.clone())
                        .hint("write a fraction such as `0.8` (stop at 80% of the org's daily API requests)"),
                    );
                    ok = false;
                }
                None => ok = false,
            }
        }
    }
    let Some(rps) = fields.get("requests_per_second") else {
        return ok.then_some((None, share));
    };
    let n = cx.number(rps, "requests_per_second")?;
    if n <= 0.0 {
        cx.push(
            Diagnostic::error(
                "spec::out_of_range",
                format!("`requests_per_second` must be greater than 0, found {n}"),
            )
            .at(rps.span.clone())
            .hint(
                "use a positive number, e.g. `requests_per_second: 10`, or leave it out for the connector's default",
            ),
        );
        return None;
    }
    ok.then_some((Some(n), share))
}

/// The key's text as a name, for checking an entry whose name was refused.
pub(crate) fn placeholder(cx: &Cx<'_>, key: &Node) -> Located<String> {
    Located {
        value: key.scalar_text(cx.source).unwrap_or_default(),
        span: key.span.clone(),
    }
}

/// "`x` is defined twice" for two entries of one mapping (tables, destinations).
pub(crate) fn duplicate_entry(
    kind: &str,
    name: &Located<String>,
    first: &Located<String>,
) -> Diagnostic {
    Diagnostic::error(
        "spec::duplicate_name",
        format!("{kind} `{}` is defined twice", name.value),
    )
    .at(name.span.clone())
    .note(format!("first defined at {}", first.span))
    .hint(format!("rename or remove one of the {kind}s"))
}

/// Suggestions among destination names, for syncs.
pub(crate) fn suggest<'a>(word: &str, names: &'a [Located<String>]) -> Option<&'a str> {
    did_you_mean(word, names.iter().map(|n| n.value.as_str()))
}

/// "`a`, `b`" for hints.
pub(crate) fn names_list(names: &[Located<String>]) -> String {
    let names: Vec<&str> = names.iter().map(|n| n.value.as_str()).collect();
    list(&names)
}

#[cfg(test)]
mod url_tests {
    use super::has_literal_password;

    #[test]
    fn a_password_in_a_url_must_be_an_env_reference() {
        assert!(has_literal_password("https://ann:hunter2@example.com/x"));
        assert!(has_literal_password("http://ann:p%40ss@127.0.0.1:8080"));
        assert!(!has_literal_password("https://ann:${env:PASS}@example.com"));
        assert!(!has_literal_password("https://ann@example.com"));
        assert!(!has_literal_password("https://example.com/a:b@c"));
        assert!(!has_literal_password("${env:HUBSPOT_BASE_URL}"));
        assert!(!has_literal_password("https://api.hubapi.com"));
    }
}
