//! Renderers: human text with a source snippet, JSON, and GitHub Actions annotations.

use std::fmt::Write as _;
use std::path::Path;

use crate::{Diagnostic, Location, Severity};

/// Renders diagnostics for a terminal, rustc-style, with the offending source line when the
/// file can be read from `root` (the project directory).
///
/// A diagnostic whose code ends in `literal_secret` (a secret written in a file) shows its
/// source line with the underlined characters masked, so the secret does not reach logs.
pub fn render_human(diagnostics: &[Diagnostic], root: &Path) -> String {
    let mut out = String::new();
    for diagnostic in diagnostics {
        let level = match diagnostic.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{level}[{}]: {}", diagnostic.code, diagnostic.message);
        // rustc's layout: the gutter is as wide as the line number shown.
        let mut pad = " ".to_string();
        match &diagnostic.location {
            Some(Location::Source(span)) => {
                pad = " ".repeat(span.line.to_string().len());
                let _ = writeln!(out, "{pad}--> {span}");
                let path = if span.file.is_absolute() {
                    span.file.clone()
                } else {
                    root.join(&span.file)
                };
                if let Some(line) = fs_err::read_to_string(&path).ok().and_then(|text| {
                    text.lines()
                        .nth(span.line.saturating_sub(1))
                        .map(str::to_string)
                }) {
                    let mask = diagnostic.code.ends_with("literal_secret");
                    write_snippet(&mut out, span.line, span.column, span.length, &line, mask);
                }
            }
            Some(Location::Row { sync, key, field }) => {
                let mut place = format!("sync `{sync}`");
                if let Some(key) = key {
                    let _ = write!(place, ", row `{key}`");
                }
                if let Some(field) = field {
                    let _ = write!(place, ", field `{field}`");
                }
                let _ = writeln!(out, "{pad}--> {place}");
            }
            None => {}
        }
        for note in &diagnostic.notes {
            let _ = writeln!(out, "{pad} = note: {note}");
        }
        for hint in &diagnostic.hints {
            let _ = writeln!(out, "{pad} = hint: {hint}");
        }
        out.push('\n');
    }
    out
}

/// Writes one source line with carets under `column..column + length` (in characters).
///
/// Tabs are shown as one space so the carets stay aligned; the underline is clamped to the end
/// of the line (a multi-line span underlines its first line), and is at least one caret wide.
/// With `mask`, the underlined characters are shown as `*`.
fn write_snippet(
    out: &mut String,
    line_number: usize,
    column: usize,
    length: usize,
    line: &str,
    mask: bool,
) {
    let line_chars = line.chars().count();
    let start = column.saturating_sub(1).min(line_chars);
    let width = length.min(line_chars.saturating_sub(start)).max(1);
    let shown: String = line
        .chars()
        .enumerate()
        .map(|(i, c)| match c {
            _ if mask && (start..start + width).contains(&i) => '*',
            '\t' => ' ',
            c => c,
        })
        .collect();
    let number = line_number.to_string();
    let pad = " ".repeat(number.len());
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{number} | {}", shown.trim_end());
    let _ = writeln!(out, "{pad} | {}{}", " ".repeat(start), "^".repeat(width));
}

/// Renders diagnostics as a JSON array (for `--json`).
pub fn render_json(diagnostics: &[Diagnostic]) -> serde_json::Value {
    serde_json::to_value(diagnostics).unwrap_or(serde_json::Value::Null)
}

/// Renders diagnostics as GitHub Actions workflow commands (`::error file=…,line=…::…`).
///
/// Messages and properties are escaped as the workflow-command format requires (`%`, line
/// breaks, and in properties `:` and `,`), so a code such as `spec::unknown_key` survives.
pub fn render_github(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for diagnostic in diagnostics {
        let level = match diagnostic.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = diagnostic.message.clone();
        for note in &diagnostic.notes {
            message.push_str("\nnote: ");
            message.push_str(note);
        }
        for hint in &diagnostic.hints {
            message.push_str("\nhint: ");
            message.push_str(hint);
        }
        let message = escape_data(&message);
        let title = escape_property(&diagnostic.code);
        match &diagnostic.location {
            Some(Location::Source(span)) => {
                let _ = writeln!(
                    out,
                    "::{level} file={},line={},col={},title={title}::{message}",
                    escape_property(&span.file.display().to_string()),
                    span.line,
                    span.column,
                );
            }
            _ => {
                let _ = writeln!(out, "::{level} title={title}::{message}");
            }
        }
    }
    out
}

/// Escapes the message part of a workflow command.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value (`file=`, `title=`) of a workflow command.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceSpan;

    #[test]
    fn snippet_clamps_the_underline_and_keeps_tabs_aligned() {
        let mut out = String::new();
        write_snippet(&mut out, 7, 3, 40, "a:\tbc", false);
        assert_eq!(out, "  |\n7 | a: bc\n  |   ^^^\n");
    }

    #[test]
    fn snippet_masks_secrets() {
        let mut out = String::new();
        write_snippet(&mut out, 12, 12, 8, "    token: \"secret\" # x", true);
        assert_eq!(
            out,
            "   |\n12 |     token: ******** # x\n   |            ^^^^^^^^\n"
        );
    }

    #[test]
    fn github_annotations_escape_codes_and_line_breaks() {
        let diagnostic = Diagnostic::error("spec::unknown_key", "unknown key `x`, 100%")
            .at(SourceSpan::new("syncs/a.yaml", 3, 1, 1))
            .hint("did you mean `y`?");
        assert_eq!(
            render_github(&[diagnostic]),
            "::error file=syncs/a.yaml,line=3,col=1,title=spec%3A%3Aunknown_key::\
             unknown key `x`, 100%25%0Ahint: did you mean `y`?\n"
        );
    }
}
