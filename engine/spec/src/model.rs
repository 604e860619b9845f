//! `models/*.yaml`: one model per file, and the map from SQL positions to file positions.

use engine_diag::{Diagnostic, SourceSpan};

use crate::check::Cx;
use crate::types::{Located, ModelSpec};
use crate::yaml::{self, Node, ScalarStyle, Value};

pub(crate) const MODEL_KEYS: &[&str] = &["name", "description", "source", "primary_key", "sql"];

/// What a model file yields: its name (for duplicate and reference checks, even when the
/// rest has errors) and the model when it checked out.
pub(crate) struct ModelFile {
    /// `name:` when readable.
    pub name: Option<Located<String>>,
    /// The model, when the file had no error.
    pub spec: Option<ModelSpec>,
}

/// Checks the root node of a model file.
pub(crate) fn check(cx: &mut Cx<'_>, node: &Node) -> ModelFile {
    let mut out = ModelFile {
        name: None,
        spec: None,
    };
    let Some(fields) = cx.mapping(node, None, "model", "the model", MODEL_KEYS) else {
        return out;
    };
    out.name = cx
        .required(&fields, "name")
        .and_then(|n| cx.name(n, "name", "model"));
    let description = match fields.get("description") {
        Some(d) => cx.string(d, "description").map(|d| Some(d.value)),
        None => Some(None),
    };
    let source = match fields.get("source") {
        Some(node) => cx.name(node, "source", "source").map(Some),
        None => Some(None),
    };
    let primary_key = cx
        .required(&fields, "primary_key")
        .and_then(|n| primary_key(cx, n));
    let sql = cx.required(&fields, "sql").and_then(|n| sql(cx, n));
    if let (
        Some(name),
        Some(description),
        Some(source),
        Some(primary_key),
        Some((sql, sql_span, sql_indent)),
    ) = (out.name.clone(), description, source, primary_key, sql)
    {
        out.spec = Some(ModelSpec {
            name,
            file: cx.file.to_path_buf(),
            description,
            source,
            primary_key,
            sql,
            sql_span,
            sql_indent,
        });
    }
    out
}

fn primary_key(cx: &mut Cx<'_>, node: &Node) -> Option<Vec<Located<String>>> {
    let empty = |cx: &mut Cx<'_>, span: &SourceSpan| {
        cx.push(
            Diagnostic::error(
                "spec::empty_primary_key",
                "`primary_key` must name at least one column",
            )
            .at(span.clone())
            .hint("list the columns that identify a row, e.g. `primary_key: [user_id]`"),
        );
    };
    let columns = match &node.value {
        Value::Str(_) => vec![node],
        Value::Seq(items) if items.is_empty() => {
            empty(cx, &node.span);
            return None;
        }
        Value::Seq(items) => items.iter().collect(),
        _ => {
            cx.wrong_type(
                node,
                "primary_key",
                "a column name or a list of column names",
            );
            return None;
        }
    };
    let mut out: Vec<Located<String>> = Vec::new();
    let mut ok = true;
    for column in columns {
        let Some(name) = cx.string(column, "primary_key") else {
            ok = false;
            continue;
        };
        if name.value.trim().is_empty() {
            empty(cx, &column.span);
            ok = false;
        } else if let Some(first) = out.iter().find(|c| c.value == name.value) {
            cx.push(
                Diagnostic::error(
                    "spec::duplicate_column",
                    format!("column `{}` is listed twice in `primary_key`", name.value),
                )
                .at(name.span.clone())
                .note(format!("first listed at {}", first.span))
                .hint("list each column once"),
            );
            ok = false;
        } else {
            out.push(name);
        }
    }
    ok.then_some(out)
}

/// The SQL text, where it starts and the indentation of its lines (see [`ModelSpec`]).
fn sql(cx: &mut Cx<'_>, node: &Node) -> Option<(String, SourceSpan, usize)> {
    let text = cx.string(node, "sql")?;
    if text.value.trim().is_empty() {
        cx.push(
            Diagnostic::error("spec::empty_sql", "`sql` is empty")
                .at(node.span.clone())
                .hint("write the model's query, e.g. `sql: SELECT id, email FROM users`"),
        );
        return None;
    }
    let Some(layout) = yaml::scalar_layout(cx.source, node) else {
        // No position information (should not happen for text read from a file).
        return Some((
            text.value,
            node.span.clone(),
            node.span.column.saturating_sub(1),
        ));
    };
    let sql = match layout.style {
        ScalarStyle::Folded => {
            yaml::unfolded(cx.source, node, layout.indent, &text.value).unwrap_or(text.value)
        }
        _ => text.value,
    };
    let first_line = sql.split('\n').next().unwrap_or_default().chars().count();
    let span = SourceSpan {
        file: cx.file.to_path_buf(),
        line: layout.line,
        column: layout.column,
        length: first_line,
    };
    Some((sql, span, layout.indent))
}

impl ModelSpec {
    /// Maps a position inside [`ModelSpec::sql`] (1-based line and column, in characters, as
    /// DataFusion's SQL spans give them) to the file position, underlining `length` characters.
    ///
    /// Exact for block scalars (`|`, `|-`, `|+`, `>`, which is read like `|`) and for plain or
    /// quoted scalars on one line without escapes; a plain or quoted scalar folded over several
    /// lines maps only its first line exactly.
    pub fn sql_source_span(&self, line: usize, column: usize, length: usize) -> SourceSpan {
        let line = line.max(1);
        let column = column.max(1);
        let file_column = if line == 1 {
            self.sql_span.column + column - 1
        } else {
            self.sql_indent + column
        };
        SourceSpan {
            file: self.sql_span.file.clone(),
            line: self.sql_span.line + line - 1,
            column: file_column,
            length,
        }
    }
}
