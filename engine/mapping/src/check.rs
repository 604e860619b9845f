//! Compile-time checks of a sync's mapping against the model's columns ([`Checker`]), and the
//! static scan of a template's source behind them: the columns it reads through `row`, the
//! filters it calls and the names it uses, each with its byte range, so diagnostics point into
//! the YAML.
//!
//! The scan is a small lexer over minijinja's default syntax, not a parser: it finds `row.name`,
//! `row['name']` / `row["name"]`, `| filter` (and how many arguments it is given) and bare
//! identifiers inside `{{ }}` and `{% %}`, skipping comments, string literals and `{% raw %}`
//! blocks. When a template rebinds `row` (`{% for row in … %}`, `{% set row = … %}`) its column
//! references are not checked.
//!
//! Liquid templates are checked after [`crate::liquid`] has rewritten them, and every position
//! found in the rewritten source is mapped back to the template the user wrote.

use std::fmt::Write as _;
use std::ops::Range;

use engine_diag::{Diagnostic, SourceSpan, did_you_mean};
use engine_spec::{Located, SyncSpec};
use minijinja::{Environment, ErrorKind};

use crate::filters;
use crate::liquid::{self, Rewritten};

/// A name found in a template, with its byte range in the template source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub name: String,
    pub range: Range<usize>,
}

/// A filter a template applies, and how many arguments it passes (`| f(a, b)`: 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilterUse {
    pub found: Found,
    pub args: usize,
}

/// What a template refers to.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// `row.x` / `row['x']` references; the range covers the whole expression.
    pub columns: Vec<Found>,
    /// Filter names after `|` (and in `{% filter %}`).
    pub filters: Vec<FilterUse>,
    /// Identifiers not preceded by `.`, first occurrence of each.
    pub names: Vec<Found>,
    /// The template binds a variable called `row` itself.
    pub row_rebound: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num,
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
            let begin = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric()
                    || bytes[i] == b'_'
                    || (bytes[i] == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                i += 1;
            }
            tokens.push((Tok::Num, begin..i));
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

/// The number of arguments in a call's parentheses at the start of `tokens` (0 without them).
fn arguments(tokens: &[(Tok, Range<usize>)]) -> usize {
    if !is_punct(tokens.first(), '(') {
        return 0;
    }
    let mut depth = 0usize;
    let mut args = 0;
    for (i, (tok, _)) in tokens.iter().enumerate() {
        let starts_argument = depth == 1
            && (i == 1 || is_punct(tokens.get(i - 1), ','))
            && !matches!(tok, Tok::Punct(')' | ','));
        if starts_argument {
            args += 1;
        }
        match tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
    }
    args
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
                self.filters.push(FilterUse {
                    found: Found {
                        name: name.clone(),
                        range: range.clone(),
                    },
                    args: arguments(&tokens[i + 1..]),
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
                    self.filters.push(FilterUse {
                        found: Found {
                            name: name.to_owned(),
                            range,
                        },
                        args: arguments(&tokens[2..]),
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
        let rewritten = liquid::rewrite(src);
        // A position in the compiled source → its span in the project file.
        let at =
            |range: Range<usize>| sub_span(&template.span, src, rewritten.original_range(range));
        if let Err(err) = env.add_template_owned(property.to_owned(), rewritten.source.clone()) {
            self.diagnostics
                .push(syntax_diagnostic(property, template, &rewritten, &err));
            return;
        }
        let scan = scan(&rewritten.source);
        if !scan.row_rebound {
            for found in &scan.columns {
                if !self.has_column(&found.name) {
                    self.unknown_column(&found.name, at(found.range.clone()), "`row` reads", true);
                }
            }
        }
        let mut state = env.empty_state();
        for FilterUse { found, args } in &scan.filters {
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
                .at(at(found.range.clone()));
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
            } else if let Some((fewest, most, usage)) = filters::arity(&found.name)
                && !(fewest..=most).contains(args)
            {
                let given = match args {
                    0 => "no arguments".to_owned(),
                    1 => "one argument".to_owned(),
                    n => format!("{n} arguments"),
                };
                self.diagnostics.push(
                    Diagnostic::error(
                        "mapping::filter_arguments",
                        format!(
                            "the filter `{}` in the template for `{property}` is given {given}",
                            found.name,
                        ),
                    )
                    .at(at(found.range.clone()))
                    .hint(format!("`{}` {usage}", found.name)),
                );
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
            .at(at(range));
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

/// A template syntax error at its position in the YAML file, with a hint for the Liquid forms
/// that are not rewritten.
fn syntax_diagnostic(
    property: &str,
    template: &Located<String>,
    rewritten: &Rewritten,
    err: &minijinja::Error,
) -> Diagnostic {
    let src = template.value.as_str();
    let detail = err.detail().unwrap_or("invalid syntax");
    let span = match (err.range(), err.line()) {
        (Some(range), _) => sub_span(&template.span, src, rewritten.original_range(range)),
        // The rewrite keeps every newline where it was, so line numbers are the template's.
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
    let unsupported = [
        (
            "unknown statement increment",
            "Liquid's `increment` is not supported: `{% set n = n + 1 %}`",
        ),
        (
            "unknown statement decrement",
            "Liquid's `decrement` is not supported: `{% set n = n - 1 %}`",
        ),
        (
            "unknown statement cycle",
            "Liquid's `cycle` is not supported: `{{ loop.cycle(\"odd\", \"even\") }}` inside the loop",
        ),
        (
            "unknown statement tablerow",
            "Liquid's `tablerow` is not supported: build the text with `{% for %}`",
        ),
        (
            "unknown statement liquid",
            "Liquid's `{% liquid %}` is not supported: write each tag in its own `{% … %}`",
        ),
        (
            "unknown statement render",
            "a template cannot include another; write the text in place",
        ),
        (
            "unknown statement include",
            "a template cannot include another; write the text in place",
        ),
        (
            "unknown statement when",
            "`when` belongs inside `{% case … %}…{% endcase %}`",
        ),
    ];
    for (needle, hint) in unsupported {
        if detail.contains(needle) {
            d = d.hint(hint);
        }
    }
    let in_for =
        |word: &str| src.contains(&format!("{word}:")) || src.contains(&format!("{word} :"));
    if in_for("limit") || in_for("offset") || src.contains(" reversed") {
        d = d.hint(
            "`for` takes no `limit:`, `offset:` or `reversed`: slice or reverse the list, \
             `{% for x in (row.tags | reverse)[1:3] %}`",
        );
    } else if src.contains("..") && detail.contains('.') {
        d = d.hint("write `range(1, 6)` for Liquid's `(1..5)`");
    } else if detail.contains("unexpected `:`") {
        d = d.hint(
            "a filter's arguments follow a colon right after its name (`| append: \"!\"`) or go \
             in parentheses (`| append(\"!\")`)",
        );
    }
    if rewritten.is_rewritten() {
        d.note("the template is read as Liquid (its tags and filter arguments are rewritten to minijinja's Jinja before it is compiled)")
    } else {
        d.note("templates are minijinja (Jinja) or Liquid syntax, with Liquid's filters")
    }
}
