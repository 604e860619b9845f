//! Compile-time checks of a sync's mapping against the model's columns ([`Checker`]), and the
//! static scan of a template's source behind them: the columns it reads through `row`, the
//! filters it calls and the names it uses, each with its byte range, so diagnostics point into
//! the YAML.
//!
//! The scan is a small lexer over minijinja's default syntax, not a parser: it finds `row.name`,
//! `row['name']` / `row["name"]`, `| filter` and bare identifiers inside `{{ }}` and `{% %}`,
//! skipping comments, string literals and `{% raw %}` blocks. When a template rebinds `row`
//! (`{% for row in … %}`, `{% set row = … %}`) its column references are not checked.

use std::fmt::Write as _;
use std::ops::Range;

use engine_diag::{Diagnostic, SourceSpan, did_you_mean};
use engine_spec::{Located, SyncSpec};
use minijinja::{Environment, ErrorKind};

use crate::filters;

/// A name found in a template, with its byte range in the template source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub name: String,
    pub range: Range<usize>,
}

/// What a template refers to.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// `row.x` / `row['x']` references; the range covers the whole expression.
    pub columns: Vec<Found>,
    /// Filter names after `|` (and in `{% filter %}`).
    pub filters: Vec<Found>,
    /// Identifiers not preceded by `.`, first occurrence of each.
    pub names: Vec<Found>,
    /// The template binds a variable called `row` itself.
    pub row_rebound: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Punct(char),
}

fn lex_block(src: &str, start: usize, end_delim: &str) -> (Vec<(Tok, Range<usize>)>, usize) {
    let bytes = src.as_bytes();
    let mut tokens = Vec::new();
    let mut i = start;
    while i < bytes.len() {
        if src[i..].starts_with(end_delim) {
            return (tokens, i + end_delim.len());
        }
        let c = bytes[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let begin = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            tokens.push((Tok::Ident(src[begin..i].to_owned()), begin..i));
        } else if c.is_ascii_digit() {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
        } else if c == b'\'' || c == b'"' {
            let begin = i;
            let mut value = String::new();
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                    let escaped = src[i..].chars().next().unwrap_or('\\');
                    value.push(match escaped {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        other => other,
                    });
                    i += escaped.len_utf8();
                } else {
                    let ch = src[i..].chars().next().unwrap_or('\u{fffd}');
                    value.push(ch);
                    i += ch.len_utf8().max(1);
                }
            }
            i = (i + 1).min(bytes.len());
            tokens.push((Tok::Str(value), begin..i));
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else {
            let ch = src[i..].chars().next().unwrap_or('\u{fffd}');
            tokens.push((Tok::Punct(ch), i..i + ch.len_utf8()));
            i += ch.len_utf8().max(1);
        }
    }
    (tokens, bytes.len())
}

fn ident(tok: Option<&(Tok, Range<usize>)>) -> Option<(&str, Range<usize>)> {
    match tok {
        Some((Tok::Ident(name), range)) => Some((name.as_str(), range.clone())),
        _ => None,
    }
}

fn is_punct(tok: Option<&(Tok, Range<usize>)>, c: char) -> bool {
    matches!(tok, Some((Tok::Punct(p), _)) if *p == c)
}

impl Scan {
    fn block(&mut self, tokens: &[(Tok, Range<usize>)], statement: bool) {
        if statement {
            self.statement(tokens);
        }
        for (i, (tok, range)) in tokens.iter().enumerate() {
            let Tok::Ident(name) = tok else { continue };
            let after_dot = i > 0 && is_punct(tokens.get(i - 1), '.');
            if after_dot {
                continue;
            }
            if !self.names.iter().any(|f| f.name == *name) {
                self.names.push(Found {
                    name: name.clone(),
                    range: range.clone(),
                });
            }
            if i > 0 && is_punct(tokens.get(i - 1), '|') {
                self.filters.push(Found {
                    name: name.clone(),
                    range: range.clone(),
                });
            }
            if name != "row" {
                continue;
            }
            if is_punct(tokens.get(i + 1), '.') {
                if let Some((column, end)) = ident(tokens.get(i + 2)) {
                    self.columns.push(Found {
                        name: column.to_owned(),
                        range: range.start..end.end,
                    });
                }
            } else if is_punct(tokens.get(i + 1), '[')
                && is_punct(tokens.get(i + 3), ']')
                && let Some((Tok::Str(column), _)) = tokens.get(i + 2)
                && let Some((_, end)) = tokens.get(i + 3)
            {
                self.columns.push(Found {
                    name: column.clone(),
                    range: range.start..end.end,
                });
            }
        }
    }

    /// Statements that bind `row` or apply a filter block.
    fn statement(&mut self, tokens: &[(Tok, Range<usize>)]) {
        let Some((keyword, _)) = ident(tokens.first()) else {
            return;
        };
        let binds_row = |toks: &[(Tok, Range<usize>)]| {
            toks.iter()
                .any(|(t, _)| matches!(t, Tok::Ident(n) if n == "row"))
        };
        match keyword {
            "for" => {
                let until_in = tokens
                    .iter()
                    .position(|(t, _)| matches!(t, Tok::Ident(n) if n == "in"))
                    .unwrap_or(tokens.len());
                self.row_rebound |= binds_row(&tokens[1..until_in]);
            }
            "set" => self.row_rebound |= matches!(ident(tokens.get(1)), Some(("row", _))),
            "with" => {
                self.row_rebound |= tokens.windows(2).any(|pair| {
                    matches!(&pair[0].0, Tok::Ident(n) if n == "row")
                        && pair[1].0 == Tok::Punct('=')
                });
            }
            // Macro parameters (and `caller(row)`) named `row`.
            "macro" | "call" => self.row_rebound |= binds_row(&tokens[1..]),
            "filter" => {
                if let Some((name, range)) = ident(tokens.get(1)) {
                    self.filters.push(Found {
                        name: name.to_owned(),
                        range,
                    });
                }
            }
            _ => {}
        }
    }
}

/// Scans a template's source (minijinja default syntax).
pub(crate) fn scan(src: &str) -> Scan {
    let mut scan = Scan::default();
    let mut i = 0;
    while let Some(offset) = src[i..].find('{') {
        let open = i + offset;
        let rest = &src[open..];
        let mut content = open + 2;
        if rest.starts_with("{#") {
            i = src[content..]
                .find("#}")
                .map_or(src.len(), |p| content + p + 2);
            continue;
        }
        let (end_delim, statement) = if rest.starts_with("{{") {
            ("}}", false)
        } else if rest.starts_with("{%") {
            ("%}", true)
        } else {
            i = open + 1;
            continue;
        };
        if matches!(src.as_bytes().get(content), Some(b'-' | b'+' | b'~')) {
            content += 1;
        }
        let (tokens, next) = lex_block(src, content, end_delim);
        i = next;
        if statement && matches!(ident(tokens.first()), Some(("raw", _))) {
            // Everything up to `{% endraw %}` is text.
            let Some(end) = src[i..].find("endraw") else {
                break;
            };
            i = src[i + end..]
                .find("%}")
                .map_or(src.len(), |p| i + end + p + 2);
            continue;
        }
        scan.block(&tokens, statement);
    }
    scan
}

/// The position of `range` (bytes of a template's source) in the project file, given the
/// template's own span: line `span.line + line - 1`, column `span.column + column - 1`.
///
/// Exact for a template on one line and for block scalars (`template: |`) whose span is the
/// first character of the text, since every line of a block scalar has the same indentation;
/// approximate when a quoted scalar contains escapes or is folded over several lines.
pub(crate) fn sub_span(span: &SourceSpan, src: &str, range: Range<usize>) -> SourceSpan {
    let clamp = |mut at: usize| {
        at = at.min(src.len());
        while !src.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let (start, end) = (clamp(range.start), clamp(range.end.max(range.start)));
    let before = &src[..start];
    let line_index = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    let column = src[line_start..start].chars().count();
    let text = &src[start..end];
    let length = text.split('\n').next().unwrap_or_default().chars().count();
    SourceSpan {
        file: span.file.clone(),
        line: span.line + line_index,
        column: span.column + column,
        length,
    }
}

/// Collects compile diagnostics with the context they all need.
pub(crate) struct Checker<'a> {
    pub sync: &'a SyncSpec,
    pub columns: Vec<&'a str>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn has_column(&self, name: &str) -> bool {
        self.columns.contains(&name)
    }

    /// "did you mean" over the model's columns, preferring a match that differs only in case.
    fn suggest(&self, name: &str) -> Option<String> {
        self.columns
            .iter()
            .find(|c| c.eq_ignore_ascii_case(name))
            .copied()
            .or_else(|| did_you_mean(name, self.columns.iter().copied()))
            .map(str::to_owned)
    }

    fn columns_note(&self) -> String {
        const SHOWN: usize = 20;
        let mut note = format!("the model `{}` has the columns ", self.sync.model.value);
        for (i, c) in self.columns.iter().take(SHOWN).enumerate() {
            if i > 0 {
                note.push_str(", ");
            }
            let _ = write!(note, "`{c}`");
        }
        if self.columns.len() > SHOWN {
            let _ = write!(note, " and {} more", self.columns.len() - SHOWN);
        }
        note
    }

    fn unknown_column(&mut self, name: &str, span: SourceSpan, what: &str, in_template: bool) {
        let mut d = Diagnostic::error(
            "mapping::unknown_column",
            format!(
                "{what} `{name}` is not a column of the model `{}`",
                self.sync.model.value
            ),
        )
        .at(span);
        if let Some(suggestion) = self.suggest(name) {
            d = d.hint(if in_template {
                format!("did you mean `row.{suggestion}`?")
            } else {
                format!("did you mean `{suggestion}`?")
            });
        }
        d = d.note(self.columns_note());
        self.diagnostics.push(d);
    }

    pub(crate) fn check_column(&mut self, column: &Located<String>, what: &str) {
        if !self.has_column(&column.value) {
            self.unknown_column(&column.value, column.span.clone(), what, false);
        }
    }

    pub(crate) fn check_template(
        &mut self,
        env: &mut Environment<'static>,
        property: &str,
        template: &Located<String>,
    ) {
        let src = template.value.as_str();
        if let Err(err) = env.add_template_owned(property.to_owned(), src.to_owned()) {
            self.diagnostics
                .push(syntax_diagnostic(property, template, &err));
            return;
        }
        let scan = scan(src);
        if !scan.row_rebound {
            for found in &scan.columns {
                if !self.has_column(&found.name) {
                    let span = sub_span(&template.span, src, found.range.clone());
                    self.unknown_column(&found.name, span, "`row` reads", true);
                }
            }
        }
        let mut state = env.empty_state();
        for found in &scan.filters {
            let unknown = state
                .apply_filter(&found.name, &[])
                .is_err_and(|e| e.kind() == ErrorKind::UnknownFilter);
            if unknown {
                let mut d = Diagnostic::error(
                    "mapping::unknown_filter",
                    format!(
                        "unknown filter `{}` in the template for `{property}`",
                        found.name
                    ),
                )
                .at(sub_span(&template.span, src, found.range.clone()));
                let known = filters::LIQUID_FILTERS
                    .iter()
                    .chain(filters::BUILTIN_FILTERS);
                if let Some(suggestion) = did_you_mean(&found.name, known.copied()) {
                    d = d.hint(format!("did you mean `{suggestion}`?"));
                }
                d = d.note(format!(
                    "Liquid-compatible filters: {}; and minijinja's own filters",
                    filters::LIQUID_FILTERS.join(", ")
                ));
                self.diagnostics.push(d);
            }
        }
        drop(state);
        let Ok(compiled) = env.get_template(property) else {
            return;
        };
        let mut undeclared: Vec<String> = compiled
            .undeclared_variables(false)
            .into_iter()
            .filter(|name| {
                !matches!(
                    name.as_str(),
                    "row" | "loop" | "self" | "super" | "caller" | "varargs" | "kwargs"
                ) && env.globals().all(|(global, _)| global != name)
            })
            .collect();
        undeclared.sort();
        for name in undeclared {
            let range = scan
                .names
                .iter()
                .find(|f| f.name == name)
                .map_or(0..0, |f| f.range.clone());
            let mut d = Diagnostic::error(
                "mapping::unknown_variable",
                format!("unknown variable `{name}` in the template for `{property}`"),
            )
            .at(sub_span(&template.span, src, range));
            if let Some(column) = self.suggest(&name) {
                d = d.hint(format!(
                    "model columns are under `row`: did you mean `row.{column}`?"
                ));
            } else {
                d = d.hint(
                    "model columns are under `row`, e.g. `row.email`; `null` and `nil` are none",
                );
            }
            self.diagnostics.push(d);
        }
    }
}

/// A template syntax error at its position in the YAML file, with a hint for Liquid-isms.
fn syntax_diagnostic(
    property: &str,
    template: &Located<String>,
    err: &minijinja::Error,
) -> Diagnostic {
    let src = template.value.as_str();
    let detail = err.detail().unwrap_or("invalid syntax");
    let span = match (err.range(), err.line()) {
        (Some(range), _) => sub_span(&template.span, src, range),
        (None, Some(line)) => {
            let start = src
                .split_inclusive('\n')
                .take(line.saturating_sub(1))
                .map(str::len)
                .sum();
            SourceSpan {
                length: 0,
                ..sub_span(&template.span, src, start..start)
            }
        }
        (None, None) => template.span.clone(),
    };
    let mut d = Diagnostic::error(
        "mapping::template_syntax",
        format!("syntax error in the template for `{property}`: {detail}"),
    )
    .at(span);
    let liquid = [
        (
            "unknown statement assign",
            "minijinja has no `assign`: write `{% set x = … %}`",
        ),
        (
            "unknown statement unless",
            "minijinja has no `unless`: write `{% if not (…) %}`",
        ),
        (
            "unknown statement elsif",
            "write `{% elif … %}` instead of `{% elsif … %}`",
        ),
        (
            "unknown statement case",
            "minijinja has no `case`: write `{% if x == … %}…{% elif x == … %}`",
        ),
        (
            "unknown statement capture",
            "write `{% set x %}…{% endset %}` instead of `capture`",
        ),
        ("unknown statement comment", "write comments as `{# … #}`"),
        (
            "unexpected `:`",
            "filters take arguments in parentheses: `| append(\"x\")`, not `| append: \"x\"`",
        ),
    ];
    for (needle, hint) in liquid {
        if detail.contains(needle) {
            d = d.hint(hint);
        }
    }
    if detail.contains("unexpected identifier") && src.contains(" contains ") {
        d = d.hint("write `\"x\" in value` instead of `value contains \"x\"`");
    }
    d.note("templates use minijinja (Jinja) syntax with Liquid-named filters")
}
