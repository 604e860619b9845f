//! YAML into a tree of nodes that all know where they were written.
//!
//! serde-saphyr parses the text; a small visitor keeps every node (keys too) wrapped in
//! [`serde_saphyr::Spanned`], so the checks in this crate can look at a whole file and report
//! every problem, instead of stopping at serde's first error. Duplicate keys are passed
//! through and reported by the checks, booleans are YAML 1.2 only (`yes` stays a string).

use std::fmt;
use std::path::Path;

use engine_diag::{Diagnostic, SourceSpan};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{MessageFormatter as _, Spanned, UserMessageFormatter};

/// One YAML node and where it is.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The value.
    pub value: Value,
    /// Where the node is used (for an alias: the `*alias` token).
    pub span: SourceSpan,
    /// Where its text is defined (for an alias: the anchored node), as byte offsets into the
    /// file; `None` when unknown.
    pub defined: Option<Defined>,
}

/// The position of a node's own text in the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Defined {
    /// Byte offset of the node's first character.
    pub offset: usize,
    /// Byte length of the node's text (for a block scalar: its content lines).
    pub len: usize,
    /// 1-based line of the first character.
    pub line: usize,
    /// 1-based column (in characters) of the first character.
    pub column: usize,
}

/// A YAML value.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A float.
    Float(f64),
    /// A string (quoted, or plain text that is not a number, boolean or null).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, entries in the order written (duplicates kept).
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// "a string", "a list", … for "found …" in messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The text of a scalar as written in the file (without quotes for quoted scalars), used to
    /// turn `value: 007` into the string `007` rather than `7`.
    pub fn scalar_text(&self, source: &str) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
                let raw = self
                    .defined
                    .and_then(|d| source.get(d.offset..d.offset + d.len));
                match raw {
                    Some(raw) if !raw.is_empty() && !raw.contains(['\n', '*', '&', '!']) => {
                        Some(raw.to_string())
                    }
                    _ => Some(match &self.value {
                        Value::Bool(b) => b.to_string(),
                        Value::Int(i) => i.to_string(),
                        Value::Float(f) => f.to_string(),
                        _ => unreachable!("matched above: only scalars reach this branch"),
                    }),
                }
            }
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// A span for characters `start..start + len` of a string scalar's value, when the value
    /// sits on one line with no escapes (so value positions are file positions); otherwise the
    /// whole node.
    pub fn sub_span(&self, source: &str, start: usize, len: usize) -> SourceSpan {
        if let (Value::Str(value), Some(defined)) = (&self.value, self.defined)
            && self.span.line == defined.line
            && self.span.column == defined.column
            && let Some(raw) = source.get(defined.offset..defined.offset + defined.len)
        {
            let quoted = raw.len() >= 2
                && ((raw.starts_with('"') && raw.ends_with('"'))
                    || (raw.starts_with('\'') && raw.ends_with('\'')));
            let (quote, inner) = match raw.get(1..raw.len().saturating_sub(1)) {
                Some(inner) if quoted => (1, inner),
                _ => (0, raw),
            };
            if inner == value && !inner.contains('\n') {
                return SourceSpan {
                    file: self.span.file.clone(),
                    line: self.span.line,
                    column: self.span.column + quote + start,
                    length: len,
                };
            }
        }
        self.span.clone()
    }
}

/// How a scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarStyle {
    /// Plain text.
    Plain,
    /// `'…'` or `"…"`.
    Quoted,
    /// `|` block.
    Literal,
    /// `>` block.
    Folded,
}

/// Where a string scalar's text starts and how it is laid out in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScalarLayout {
    /// How the scalar is written.
    pub style: ScalarStyle,
    /// 1-based line of the value's first character (for a block scalar: the line after the
    /// header, even when the block starts with empty lines).
    pub line: usize,
    /// 1-based column of the value's first character.
    pub column: usize,
    /// For block scalars, the indentation removed from every line; otherwise `column - 1`.
    pub indent: usize,
}

/// Finds how the string scalar `node` is written, from the source text around it.
pub(crate) fn scalar_layout(source: &str, node: &Node) -> Option<ScalarLayout> {
    let Value::Str(value) = &node.value else {
        return None;
    };
    let defined = node.defined?;
    let first = source.get(defined.offset..)?.chars().next();
    if matches!(first, Some('"' | '\'')) {
        return Some(ScalarLayout {
            style: ScalarStyle::Quoted,
            line: defined.line,
            column: defined.column + 1,
            indent: defined.column,
        });
    }
    let before_value = source.get(..defined.offset)?;
    // A block scalar's content starts on a line of its own, after a header line ending in
    // `|…` or `>…` (then maybe a comment). serde-saphyr points at the first non-empty content
    // line (at the start of the indentation when an indentation indicator is used).
    let line_start = before_value.rfind('\n').map_or(0, |i| i + 1);
    let before = &before_value[line_start..];
    let header = if before.trim().is_empty() {
        before_value[..line_start]
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(block_header)
    } else {
        None
    };
    let Some(style) = header else {
        return Some(ScalarLayout {
            style: ScalarStyle::Plain,
            line: defined.line,
            column: defined.column,
            indent: defined.column.saturating_sub(1),
        });
    };
    let indent = defined.column.saturating_sub(1);
    let leading_empty_lines = value.chars().take_while(|c| *c == '\n').count();
    Some(ScalarLayout {
        style,
        line: defined.line.saturating_sub(leading_empty_lines).max(1),
        column: indent + 1,
        indent,
    })
}

/// `Some(style)` when `line` ends a block scalar header (`key: |-  # comment`).
fn block_header(line: &str) -> Option<ScalarStyle> {
    // A comment starts at a `#` preceded by white space.
    let code = match line
        .char_indices()
        .find(|&(i, c)| c == '#' && line[..i].ends_with([' ', '\t']))
    {
        Some((i, _)) => &line[..i],
        None => line,
    };
    let token = code.split_whitespace().last()?;
    let style = match token.chars().next()? {
        '|' => ScalarStyle::Literal,
        '>' => ScalarStyle::Folded,
        _ => return None,
    };
    token[1..]
        .chars()
        .all(|c| matches!(c, '+' | '-' | '1'..='9'))
        .then_some(style)
}

/// The text of a folded (`>`) block scalar with its line breaks kept, as if written with `|`.
///
/// `parsed` is the folded value from the parser; its leading and trailing line breaks (which
/// folding and chomping leave as in `|`) are kept, the lines in between come from the source.
pub(crate) fn unfolded(source: &str, node: &Node, indent: usize, parsed: &str) -> Option<String> {
    let defined = node.defined?;
    let raw = source.get(defined.offset..defined.offset + defined.len)?;
    let raw = raw.replace("\r\n", "\n");
    let mut lines: Vec<&str> = raw.split('\n').collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    if parsed.trim_start_matches('\n').is_empty() {
        return Some(parsed.to_string());
    }
    let mut text = "\n".repeat(parsed.chars().take_while(|c| *c == '\n').count());
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            text.push('\n');
            let spaces = line.chars().take(indent).take_while(|c| *c == ' ').count();
            text.push_str(&line[spaces..]);
        } else {
            text.push_str(line);
        }
    }
    let trailing = parsed.len() - parsed.trim_end_matches('\n').len();
    text.push_str(&"\n".repeat(trailing));
    Some(text)
}

/// Parses `text` (the contents of `file`, relative to the project) into a node tree, or the
/// parser's error at its position.
#[expect(
    clippy::result_large_err,
    reason = "one `Diagnostic` per file that fails to parse"
)]
pub(crate) fn parse(file: &Path, text: &str) -> Result<Node, Diagnostic> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        with_snippet: false,
    };
    match serde_saphyr::from_str_with_options::<Spanned<Raw>>(text, options) {
        Ok(root) => Ok(convert(file, root)),
        Err(error) => {
            let error = error.without_snippet();
            let message = UserMessageFormatter.format_message(error);
            let message: String = message
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let mut diagnostic =
                Diagnostic::error("spec::yaml", format!("invalid YAML: {}", message.trim()));
            if let Some(location) = error.location().filter(|l| l.line() > 0) {
                diagnostic = diagnostic.at(SourceSpan {
                    file: file.to_path_buf(),
                    line: usize::try_from(location.line()).unwrap_or(usize::MAX),
                    column: usize::try_from(location.column()).unwrap_or(usize::MAX),
                    length: 1,
                });
            }
            let hint = if message.contains("multiple") {
                "write one model or sync per file: move what follows `---` into a file of its own"
            } else {
                "check the indentation and quoting at this position"
            };
            Err(diagnostic.hint(hint))
        }
    }
}

fn convert(file: &Path, node: Spanned<Raw>) -> Node {
    let location = node.referenced;
    let span = SourceSpan {
        file: file.to_path_buf(),
        line: to_usize(location.line()),
        column: to_usize(location.column()),
        length: to_usize(location.span().len()),
    };
    let defined = node.defined;
    let defined = match (defined.span().byte_offset(), defined.span().byte_len()) {
        (Some(offset), Some(len)) if defined.line() > 0 => Some(Defined {
            offset: to_usize(offset),
            len: to_usize(len),
            line: to_usize(defined.line()),
            column: to_usize(defined.column()),
        }),
        _ => None,
    };
    let value = match node.value {
        Raw::Null => Value::Null,
        Raw::Bool(b) => Value::Bool(b),
        Raw::Int(i) => Value::Int(i),
        Raw::Float(f) => Value::Float(f),
        Raw::Str(s) => Value::Str(s),
        Raw::Seq(items) => Value::Seq(items.into_iter().map(|n| convert(file, n)).collect()),
        Raw::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (convert(file, k), convert(file, v)))
                .collect(),
        ),
    };
    Node {
        value,
        span,
        defined,
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// What the visitor builds; converted to [`Node`] once the file name is attached.
enum Raw {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<Raw>, Spanned<Raw>)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Raw, E> {
        Ok(i128::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Raw, E> {
        Ok(Raw::Str(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
        Raw::deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
        Raw::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Raw::Map(entries))
    }
}
