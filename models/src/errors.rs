//! DataFusion errors as diagnostics pointing into the model's YAML.

use datafusion::error::DataFusionError;
use engine_diag::{Diagnostic, SourceSpan};
use engine_spec::{FileFormat, ModelSpec, TableSpec};

/// Maps a (1-based) line and column inside a model's SQL text to a position in its file.
pub fn sql_position_to_file(model: &ModelSpec, line: usize, column: usize) -> (usize, usize) {
    let line = line.max(1);
    let column = column.max(1);
    if line == 1 {
        (model.sql_span.line, model.sql_span.column + column - 1)
    } else {
        (model.sql_span.line + line - 1, model.sql_indent + column)
    }
}

/// Turns a DataFusion error about a model's SQL into a diagnostic at the right place.
pub fn model_error(model: &ModelSpec, error: &DataFusionError) -> Diagnostic {
    let name = &model.name.value;
    let root = error.find_root();
    let message = one_line(&root.to_string());
    let (code, hint) = classify(&message);
    let mut diagnostic = Diagnostic::error(code, format!("model `{name}`: {message}")).hint(hint);
    let position = error
        .diagnostic()
        .and_then(|d| d.span)
        .map(|span| {
            (
                span.start.line as usize,
                span.start.column as usize,
                span_len(&span),
            )
        })
        .or_else(|| parse_line_column(&message).map(|(l, c)| (l, c, 1)));
    let span = match position {
        Some((line, column, length)) => {
            let (line, column) = sql_position_to_file(model, line, column);
            SourceSpan {
                file: model.file.clone(),
                line,
                column,
                length,
            }
        }
        None => model.sql_span.clone(),
    };
    diagnostic = diagnostic.at(span);
    if let Some(d) = error.diagnostic() {
        for help in &d.helps {
            diagnostic = diagnostic.hint(help.message.clone());
        }
    }
    diagnostic
}

/// The diagnostic for a model whose `sql:` is not one query (`found`: "a `CREATE TABLE`
/// statement", "more than one statement"), underlining `underline` characters of the SQL.
pub(crate) fn not_a_query(model: &ModelSpec, found: &str, underline: usize) -> Diagnostic {
    Diagnostic::error(
        "model::not_a_query",
        format!(
            "model `{}`: `sql` must be a single query (`SELECT` or `WITH`), found {found}",
            model.name.value
        ),
    )
    .at(SourceSpan {
        length: underline.max(1),
        ..model.sql_span.clone()
    })
    .note("a model describes rows; it cannot create, change or drop tables")
    .hint("write the rows the sync keeps as one `SELECT`; declare the files it reads under `tables:` in `engine.yaml`")
}

/// What a statement that is not a query is, for [`not_a_query`]: "a `DROP TABLE` statement"
/// and how many characters of its first line to underline.
pub(crate) fn statement_found(sql: &str) -> (String, usize) {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(2)
        .map(str::to_uppercase)
        .collect();
    let keyword = match words.as_slice() {
        [first, second] if matches!(first.as_str(), "CREATE" | "DROP" | "ALTER") => {
            format!("{first} {second}")
        }
        [first, ..] => first.clone(),
        [] => String::new(),
    };
    let underline = keyword.chars().count();
    (format!("a `{keyword}` statement"), underline)
}

fn span_len(span: &datafusion::common::Span) -> usize {
    if span.end.line == span.start.line && span.end.column > span.start.column {
        (span.end.column - span.start.column) as usize
    } else {
        1
    }
}

fn classify(message: &str) -> (&'static str, &'static str) {
    let lower = message.to_lowercase();
    if lower.contains("table") && lower.contains("not found") {
        (
            "model::unknown_table",
            "declare the table under `tables:` in engine.yaml, or fix its name",
        )
    } else if lower.contains("field") && lower.contains("not found")
        || lower.contains("no field named")
        || lower.contains("schema error")
    {
        (
            "model::unknown_column",
            "check the column names of the tables the SQL reads",
        )
    } else if lower.contains("parser error")
        || lower.contains("sql error")
        || lower.contains("expected")
    {
        (
            "model::sql_syntax",
            "fix the SQL syntax at the marked position",
        )
    } else if lower.contains("csv")
        || lower.contains("incorrect number of fields")
        || lower.contains("parse")
    {
        (
            "model::bad_data",
            "fix the malformed row in the table's file, or CAST the column in SQL",
        )
    } else {
        ("model::sql_error", "fix the model's SQL")
    }
}

/// The diagnostic for a table whose file is empty: not even a CSV header names its columns.
pub(crate) fn empty_table(table: &TableSpec) -> Diagnostic {
    let hint = match table.format {
        FileFormat::Csv if table.has_header => {
            "write at least the header line (`id,email,…`): a header and no rows is a table with no rows"
        }
        FileFormat::Csv => {
            "write at least one row, or set `has_header: true` and write the header line"
        }
        FileFormat::Parquet | FileFormat::Ndjson => {
            "write at least one row, or point `path:` at the right file"
        }
    };
    Diagnostic::error(
        "model::empty_table",
        format!(
            "table `{}`: the file `{}` is empty, so the table has no columns",
            table.name.value,
            table.path.display()
        ),
    )
    .at(table.path_span.clone())
    .hint(hint)
}

/// `text` with every registered table path that lost its leading `/` (DataFusion shows files
/// by their object-store path, `tmp/p/data/users.csv`) written as the real path again.
pub(crate) fn real_paths(text: &str, paths: &[String]) -> String {
    let mut text = text.to_string();
    for path in paths {
        let stripped = &path[1..];
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find(stripped) {
            let before = rest[..at]
                .chars()
                .next_back()
                .or_else(|| out.chars().next_back());
            out.push_str(&rest[..at]);
            if !matches!(before, Some(c) if c == '/' || c.is_alphanumeric() || c == '.') {
                out.push('/');
            }
            out.push_str(stripped);
            rest = &rest[at + stripped.len()..];
        }
        out.push_str(rest);
        text = out;
    }
    text
}

pub(crate) fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Finds `Line: 3, Column: 14` (sqlparser's wording) in a message.
fn parse_line_column(message: &str) -> Option<(usize, usize)> {
    let at = message.find("Line: ")?;
    let rest = &message[at + 6..];
    let line: usize = rest
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let col_at = rest.find("Column: ")?;
    let column: usize = rest[col_at + 8..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some((line, column))
}
