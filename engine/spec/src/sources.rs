//! `sources:` of `engine.yaml`: the warehouses models can run in (PostgreSQL, MySQL /
//! MariaDB). A model with `source: <name>` sends its SQL to that warehouse, whole; models
//! without one run over the project's file tables.
//!
//! ```yaml
//! sources:
//!   warehouse:
//!     type: postgres                  # postgres | mysql
//!     url: "${env:WAREHOUSE_URL}"     # or postgres://ci:${env:PGPASSWORD}@db:5432/analytics
//!     tls: require                    # disable | prefer | require | verify_full (default:
//!                                     # the URL's sslmode, else prefer)
//!     ca_file: certs/warehouse.pem    # optional, for verify_full with a private CA
//!     statement_timeout: 10m          # optional
//! ```

use std::path::Path;
use std::time::Duration;

use engine_diag::Diagnostic;

use crate::check::Cx;
use crate::engine_file::{has_literal_password, named_entries};
use crate::env::{self, Piece};
use crate::types::{EnvTemplate, Located, SourceKind, SourceSpec, SourceTls};
use crate::yaml::Node;

pub(crate) const SOURCE_KEYS: &[&str] = &["type", "url", "tls", "ca_file", "statement_timeout"];
pub(crate) const SOURCE_TYPES: &[&str] = &["postgres", "mysql"];
pub(crate) const TLS_MODES: &[&str] = &["disable", "prefer", "require", "verify_full"];

/// `sources:` a mapping of source names to warehouses.
pub(crate) fn check_sources(
    cx: &mut Cx<'_>,
    root: &Path,
    node: &Node,
    key: Option<&Node>,
) -> Vec<SourceSpec> {
    named_entries(
        cx,
        node,
        key,
        (
            "sources",
            "source",
            "a mapping of source names to warehouses",
        ),
        |cx, key| cx.name(key, "sources", "source"),
        |cx, name, key, value| check_source(cx, root, name, key, value),
    )
}

fn check_source(
    cx: &mut Cx<'_>,
    root: &Path,
    name: Located<String>,
    key: &Node,
    node: &Node,
) -> Option<SourceSpec> {
    let what = format!("source `{}`", name.value);
    let fields = cx.mapping(node, Some(key), &name.value, what, SOURCE_KEYS)?;
    let kind = cx.required(&fields, "type").and_then(|t| {
        match cx.choice(t, "type", SOURCE_TYPES, &[])? {
            "postgres" => Some(SourceKind::Postgres),
            _ => Some(SourceKind::Mysql),
        }
    });
    let owner = format!("source `{}`", name.value);
    let variable = format!("{}_URL", name.value.to_ascii_uppercase().replace('-', "_"));
    let url = cx
        .required(&fields, "url")
        .and_then(|n| url(cx, n, kind, &owner, &variable));
    let tls = tls_mode(cx, fields.get("tls"));
    let ca_file = match fields.get("ca_file") {
        None => Some(None),
        Some(node) => cx
            .non_empty_string(node, "ca_file")
            .map(|p| Some(root.join(p.value))),
    };
    let statement_timeout = match fields.get("statement_timeout") {
        None => Some(None),
        Some(node) => duration(cx, node, "statement_timeout").map(Some),
    };
    Some(SourceSpec {
        name,
        kind: kind?,
        url: url?,
        tls: tls?,
        ca_file: ca_file?,
        statement_timeout: statement_timeout?,
    })
}

/// `tls:` of a source or of the PostgreSQL state: `None` on error, `Some(None)` when not given.
pub(crate) fn tls_mode(cx: &mut Cx<'_>, node: Option<&Node>) -> Option<Option<SourceTls>> {
    match node {
        None => Some(None),
        Some(node) => cx
            .choice(node, "tls", TLS_MODES, &[])
            .map(|mode| match mode {
                "disable" => Some(SourceTls::Disable),
                "prefer" => Some(SourceTls::Prefer),
                "require" => Some(SourceTls::Require),
                _ => Some(SourceTls::VerifyFull),
            }),
    }
}

/// `url:` a `postgres://` / `mysql://` URL, or `${env:NAME}` (a password must come from the
/// environment: a whole-URL reference, or `${env:…}` in its place). `owner` names what the
/// URL belongs to (``source `warehouse` ``, `` `state` ``) and `variable` the variable a hint
/// suggests.
pub(crate) fn url(
    cx: &mut Cx<'_>,
    node: &Node,
    kind: Option<SourceKind>,
    owner: &str,
    variable: &str,
) -> Option<EnvTemplate> {
    let s = cx.non_empty_string(node, "url")?;
    let pieces = match env::parse(&s.value) {
        Err(error) => {
            cx.push(
                Diagnostic::error("spec::invalid_env_reference", error.message("url"))
                    .at(node.sub_span(cx.source, error.start, error.len))
                    .hint(error.hint(false)),
            );
            return None;
        }
        Ok(pieces) => pieces,
    };
    if has_literal_password(&s.value) {
        cx.push(
            Diagnostic::error(
                "spec::literal_secret",
                format!("a password is written in the `url` of {owner}; secrets must come from the environment"),
            )
            .at(node.span.clone())
            .note("a password committed to git is leaked: change it")
            .hint(format!("export the whole URL and write `url: \"${{env:{variable}}}\"`, or write the password as `${{env:NAME}}`")),
        );
        return None;
    }
    let starts_with_var = matches!(pieces.first(), Some(Piece::Var(_)));
    let lower = s.value.to_ascii_lowercase();
    let schemes: &[&str] = match kind {
        Some(SourceKind::Postgres) => &["postgres://", "postgresql://"],
        Some(SourceKind::Mysql) => &["mysql://", "mariadb://"],
        None => &["postgres://", "postgresql://", "mysql://", "mariadb://"],
    };
    if !starts_with_var && !schemes.iter().any(|scheme| lower.starts_with(scheme)) {
        let example = match kind {
            Some(SourceKind::Mysql) => "mysql://user:${env:MYSQL_PASSWORD}@host:3306/database",
            _ => "postgres://user:${env:PGPASSWORD}@host:5432/database",
        };
        cx.push(
            Diagnostic::error(
                "spec::invalid_url",
                format!("`url` must start with {}", schemes.join(" or ")),
            )
            .at(node.span.clone())
            .hint(format!("write the connection URL, e.g. `{example}`")),
        );
        return None;
    }
    Some(EnvTemplate {
        raw: s.value,
        span: node.span.clone(),
    })
}

/// A duration such as `30s`, `10m`, `2h`, `1h 30m`.
pub(crate) fn duration(cx: &mut Cx<'_>, node: &Node, key: &str) -> Option<Duration> {
    let text = node.scalar_text(cx.source).unwrap_or_default();
    match humantime::parse_duration(text.trim()) {
        Ok(duration) if !duration.is_zero() => Some(duration),
        Ok(_) => {
            cx.push(
                Diagnostic::error(
                    "spec::invalid_value",
                    format!("`{key}` must be longer than 0"),
                )
                .at(node.span.clone())
                .hint("write a duration such as `30s`, `10m` or `2h`, or leave it out"),
            );
            None
        }
        Err(error) => {
            cx.push(
                Diagnostic::error(
                    "spec::invalid_value",
                    format!("`{key}` must be a duration, found `{}`", text.trim()),
                )
                .at(node.span.clone())
                .note(format!("{error}"))
                .hint("write a number with its unit: `30s`, `10m`, `2h` or `1h 30m`"),
            );
            None
        }
    }
}
