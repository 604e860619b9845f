//! Static checks of a template's source: the columns it reads through `row`, the filters it
//! calls and the names it uses, each with its byte range, so diagnostics point into the YAML.
//!
//! This is a small lexer over minijinja's default syntax, not a parser: it finds `row.name`,
//! `row['name']` / `row["name"]`, `| filter` and bare identifiers inside `{{ }}` and `{% %}`,
//! skipping comments, string literals and `{% raw %}` blocks. When a template rebinds `row`
//! (`{% for row in … %}`, `{% set row = … %}`) its column references are not checked.

use std::ops::Range;

use engine_diag::SourceSpan;

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
