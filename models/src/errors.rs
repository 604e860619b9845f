//! DataFusion errors as diagnostics pointing into the model's YAML.

use datafusion::error::DataFusionError;
use engine_diag::{Diagnostic, SourceSpan};
use engine_spec::ModelSpec;

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

fn one_line(message: &str) -> String {
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
