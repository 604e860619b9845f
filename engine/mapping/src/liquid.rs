//! Liquid templates as minijinja source: a rewriter run on every `template:` before it is
//! compiled, so the Liquid that Hightouch and Census users paste works unchanged.
//!
//! minijinja has no API for custom tags, so Liquid's tags and its `| filter: arg` syntax are
//! rewritten, token by token, into the Jinja that means the same:
//!
//! | Liquid | compiled as |
//! | --- | --- |
//! | `{{ x \| date: "%Y", … }}` (any filter, chains, keyword `key: v`) | `{{ x \| date( "%Y", …)}}` (`key=v`) |
//! | `{% assign v = e %}` | `{% set    v = e %}` |
//! | `{% capture v %}…{% endcapture %}` | `{% set     v %}…{% endset    %}` |
//! | `{% unless c %}…{% endunless %}` | `{% if not (c) %}…{% endif    %}` |
//! | `{% elsif c %}` | `{% elif  c %}` |
//! | `{% case e %}{% when a, b %}…{% else %}…{% endcase %}` | `{% set liquid_case_1 = e -%}{% if   liquid_case_1 == a or liquid_case_1 == b %}…{% else %}…{% endif  %}` |
//! | `{% comment %}…{% endcomment %}`, `{% # … %}` | `{#…#}` |
//! | `{% echo e %}` | `{{ e }}` |
//! | `a contains b` | `liquid_contains(a , b)` |
//! | `x == blank`, `x != empty` (either side) | `liquid_blank(x)`, `not liquid_empty(x)` |
//! | `a <> b` | `a != b` |
//! | `forloop.index`, `forloop.rindex` | `loop.index`, `loop.revindex` |
//!
//! **Only Liquid templates are rewritten.** A template that uses none of the forms above is
//! compiled exactly as written, so Jinja templates keep Jinja's meaning. A template that uses
//! at least one is taken as Liquid as a whole, and two more rewrites apply to the conditions of
//! its `if`, `elsif` / `elif` and `unless` tags:
//!
//! - **Truthiness.** In Liquid only nil and `false` are false; `""`, `0` and empty lists are
//!   true. Each operand of a condition that is not a comparison is wrapped in
//!   `liquid_truthy(…)` (`{% if row.phone %}` → `{% if liquid_truthy(row.phone) %}`).
//!   Deciding per template keeps a Jinja `{% if row.phone %}` (false for `""`) meaning what it
//!   meant: switching every template to Liquid truthiness would silently change the values
//!   of existing mappings. A template written in the syntax both share (only `{{ }}`, `if`,
//!   `else`, `for` and filters without arguments) therefore has Jinja truthiness.
//! - **Grouping.** Liquid evaluates `and` / `or` from right to left without precedence
//!   (`a and b or c` is `a and (b or c)`); conditions that mix them are parenthesised so.
//!
//! The rewrite is string-literal aware (nothing inside `"…"` / `'…'` changes), leaves
//! `{% raw %}` blocks and `{# #}` comments alone, and **never adds or removes a newline**, so
//! the line numbers of minijinja's errors are the user's. Columns move where a rewrite is
//! longer than the text it replaces (`unless` → `if not (`, `contains`, added `)`); keywords
//! replaced by shorter ones are padded with spaces and a `)` closing filter arguments takes
//! the place of a space when there is one, so most rewritten lines keep their columns anyway.
//! Every byte of the rewritten source remembers the byte of the template it came from
//! ([`Rewritten::original_range`]), and diagnostics are placed through that map, so error
//! positions are exact either way.
//!
//! Not rewritten (a syntax error whose hint gives the Jinja form): `for` parameters
//! (`limit:`, `offset:`, `reversed`), ranges `(1..5)`, `increment`, `decrement`, `cycle`,
//! `tablerow`, `{% liquid %}`, `render` / `include`, and `.size` / `.first` / `.last` as
//! properties (use the filters). Liquid's `case` renders the first matching `when` only.

use std::ops::Range;

use minijinja::value::ValueKind;
use minijinja::{Environment, Value};

/// A template's source as it is compiled, and where each of its bytes came from.
#[derive(Debug, Clone)]
pub(crate) struct Rewritten {
    /// The source to compile: the template itself when it uses no Liquid-only form.
    pub(crate) source: String,
    /// For each byte of `source` and one past its end, the byte of the template it stands for;
    /// empty when `source` is the template unchanged.
    origin: Vec<usize>,
}

impl Rewritten {
    /// True when the template was taken as Liquid and rewritten.
    pub(crate) fn is_rewritten(&self) -> bool {
        !self.origin.is_empty()
    }

    /// The byte range of the template that `range` (bytes of [`source`](Self::source))
    /// comes from. Text the rewrite inserted maps to the place it was inserted at.
    pub(crate) fn original_range(&self, range: Range<usize>) -> Range<usize> {
        if self.origin.is_empty() {
            return range;
        }
        let last = self.origin.len() - 1;
        let at = |i: usize| self.origin[i.min(last)];
        let start = at(range.start);
        let end = if range.end > range.start {
            at(range.end - 1) + 1
        } else {
            start
        };
        start..end.max(start)
    }
}

/// Registers the functions rewritten conditions call.
pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_function("liquid_truthy", |value: Value| truthy(&value));
    env.add_function("liquid_contains", contains);
    env.add_function("liquid_blank", |value: Value| blank(&value));
    env.add_function("liquid_empty", |value: Value| empty(&value));
}

/// Liquid truthiness: only nil (`none`, undefined) and `false` are false.
fn truthy(value: &Value) -> bool {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => false,
        ValueKind::Bool => value.is_true(),
        _ => true,
    }
}

/// `a contains b`: a substring of a string, an item of a list, a key of a map; false for nil.
fn contains(haystack: Value, needle: Value) -> bool {
    match haystack.kind() {
        ValueKind::String => {
            let text = haystack.as_str().unwrap_or_default();
            match needle.kind() {
                ValueKind::Undefined | ValueKind::None => false,
                ValueKind::String => text.contains(needle.as_str().unwrap_or_default()),
                _ => text.contains(&needle.to_string()),
            }
        }
        ValueKind::Seq | ValueKind::Iterable => haystack
            .try_iter()
            .is_ok_and(|mut items| items.any(|item| item == needle)),
        ValueKind::Map => haystack
            .get_item(&needle)
            .is_ok_and(|value| !value.is_undefined()),
        _ => false,
    }
}

/// `x == blank` (as LiquidJS, which Hightouch uses): nil, `false`, a string of only white
/// space, an empty list or map.
fn blank(value: &Value) -> bool {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => true,
        ValueKind::Bool => !value.is_true(),
        ValueKind::String => value.as_str().unwrap_or_default().trim().is_empty(),
        ValueKind::Seq | ValueKind::Map => value.len() == Some(0),
        _ => false,
    }
}

/// `x == empty`: an empty string, list or map (nil is not empty).
fn empty(value: &Value) -> bool {
    match value.kind() {
        ValueKind::String | ValueKind::Seq | ValueKind::Map => value.len() == Some(0),
        _ => false,
    }
}

// ---------------------------------------------------------------- lexing

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ident,
    Str,
    Num,
    Punct,
}

/// A token inside a tag, with its byte range in the template.
#[derive(Debug, Clone, Copy)]
struct Tok<'a> {
    kind: Kind,
    text: &'a str,
    start: usize,
    end: usize,
}

impl Tok<'_> {
    fn is(&self, kind: Kind, text: &str) -> bool {
        self.kind == kind && self.text == text
    }

    fn is_ident(&self, text: &str) -> bool {
        self.is(Kind::Ident, text)
    }

    fn is_punct(&self, text: &str) -> bool {
        self.is(Kind::Punct, text)
    }
}

/// Splits `src[range]` (the inside of a tag) into tokens; white space is dropped.
fn lex(src: &str, range: Range<usize>) -> Vec<Tok<'_>> {
    let bytes = src.as_bytes();
    let end = range.end;
    let mut i = range.start;
    let mut tokens = Vec::new();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    while i < end {
        let c = bytes[i];
        let start = i;
        let kind = if c.is_ascii_whitespace() {
            i += 1;
            continue;
        } else if c.is_ascii_digit() {
            while i < end
                && (word(bytes[i])
                    || (bytes[i] == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                i += 1;
            }
            Kind::Num
        } else if word(c) {
            while i < end && word(bytes[i]) {
                i += 1;
            }
            Kind::Ident
        } else if c == b'"' || c == b'\'' {
            i += 1;
            while i < end && bytes[i] != c {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(end);
            Kind::Str
        } else {
            let two = src.get(i..i + 2);
            i += if matches!(
                two,
                Some("==" | "!=" | "<>" | "<=" | ">=" | ".." | "//" | "**")
            ) {
                2
            } else {
                src[i..].chars().next().map_or(1, char::len_utf8)
            };
            Kind::Punct
        };
        tokens.push(Tok {
            kind,
            text: &src[start..i],
            start,
            end: i,
        });
    }
    tokens
}

/// `{{ … }}` or `{% … %}` in the template.
#[derive(Debug, Clone)]
struct Tag {
    /// The `{` that opens it.
    start: usize,
    /// Inside the delimiters and their whitespace-control marks.
    body: Range<usize>,
    /// The closing `}}` / `%}`.
    close: usize,
    /// Just past the closing delimiter.
    end: usize,
    /// `{% %}` rather than `{{ }}`.
    block: bool,
}

fn is_trim_mark(b: Option<&u8>) -> bool {
    matches!(b, Some(b'-' | b'+' | b'~'))
}

/// The next tag at or after `from`, skipping `{# #}` comments; `None` at the end or when a
/// tag is not closed (minijinja reports that).
fn next_tag(src: &str, mut from: usize) -> Option<Tag> {
    let bytes = src.as_bytes();
    loop {
        let start = from + src.get(from..)?.find('{')?;
        let (close_delim, block) = match bytes.get(start + 1) {
            Some(b'{') => ("}}", false),
            Some(b'%') => ("%}", true),
            Some(b'#') => {
                from = start + 2 + src[start + 2..].find("#}")? + 2;
                continue;
            }
            _ => {
                from = start + 1;
                continue;
            }
        };
        let mut body_start = start + 2;
        if is_trim_mark(bytes.get(body_start)) {
            body_start += 1;
        }
        // Find the closing delimiter outside string literals.
        let mut i = body_start;
        let mut quote = None;
        while i < bytes.len() {
            let c = bytes[i];
            match quote {
                Some(_) if c == b'\\' => i += 1,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == b'"' || c == b'\'' => quote = Some(c),
                None if src[i..].starts_with(close_delim) => {
                    let body_end = if i > body_start && is_trim_mark(bytes.get(i - 1)) {
                        i - 1
                    } else {
                        i
                    };
                    return Some(Tag {
                        start,
                        body: body_start..body_end,
                        close: i,
                        end: i + 2,
                        block,
                    });
                }
                None => {}
            }
            i += 1;
        }
        return None;
    }
}

/// The first word inside a `{% … %}` tag.
fn tag_word(src: &str, tag: &Tag) -> Option<String> {
    let tokens = lex(src, tag.body.clone());
    tokens.first().map(|t| t.text.to_owned())
}

/// The `{% close %}` tag ending a block opened before `from`, counting nested `{% open %}`s.
/// The text in between is not parsed (string quotes in a comment do not matter).
fn find_block_end(src: &str, mut from: usize, open: &str, close: &str) -> Option<Tag> {
    let mut depth = 0usize;
    loop {
        let start = from + src.get(from..)?.find("{%")?;
        let end = start + 2 + src[start + 2..].find("%}")? + 2;
        let bytes = src.as_bytes();
        let mut body_start = start + 2;
        if is_trim_mark(bytes.get(body_start)) {
            body_start += 1;
        }
        let close_at = end - 2;
        let body_end = if close_at > body_start && is_trim_mark(bytes.get(close_at - 1)) {
            close_at - 1
        } else {
            close_at
        };
        let tag = Tag {
            start,
            body: body_start..body_end,
            close: close_at,
            end,
            block: true,
        };
        match tag_word(src, &tag).as_deref() {
            Some(word) if word == close && depth == 0 => return Some(tag),
            Some(word) if word == close => depth -= 1,
            Some(word) if word == open => depth += 1,
            _ => {}
        }
        from = end;
    }
}

// ---------------------------------------------------------------- writing

/// Builds the rewritten source: copies the template in order, replacing and inserting text,
/// and records each output byte's origin.
struct Writer<'a> {
    src: &'a str,
    /// How far the template has been copied (or skipped).
    pos: usize,
    out: String,
    origin: Vec<usize>,
    /// A Liquid-only form was rewritten.
    liquid: bool,
}

impl<'a> Writer<'a> {
    fn new(src: &'a str) -> Self {
        Writer {
            src,
            pos: 0,
            out: String::with_capacity(src.len() + 32),
            origin: Vec::with_capacity(src.len() + 32),
            liquid: false,
        }
    }

    /// Copies the template up to `end`.
    fn copy_to(&mut self, end: usize) {
        if end <= self.pos {
            return;
        }
        self.out.push_str(&self.src[self.pos..end]);
        self.origin.extend(self.pos..end);
        self.pos = end;
    }

    /// Drops the template up to `end`, keeping its newlines (there are none in the tokens
    /// this drops, but the invariant is cheap to keep).
    fn skip_to(&mut self, end: usize) {
        if end <= self.pos {
            return;
        }
        for (i, _) in self.src[self.pos..end].match_indices('\n') {
            self.out.push('\n');
            self.origin.push(self.pos + i);
        }
        self.pos = end;
    }

    /// Inserts `text` (no newlines) at the current position.
    fn insert(&mut self, text: &str) {
        debug_assert!(!text.contains('\n'));
        self.out.push_str(text);
        self.origin
            .extend(std::iter::repeat_n(self.pos, text.len()));
    }

    /// Inserts `text` right after the template's byte `at`.
    fn insert_at(&mut self, at: usize, text: &str) {
        self.copy_to(at);
        self.insert(text);
    }

    /// Replaces `range` with `text`.
    fn replace(&mut self, range: Range<usize>, text: &str) {
        self.copy_to(range.start);
        self.insert(text);
        self.skip_to(range.end);
    }

    /// Replaces a tag's keyword, padding a shorter replacement with spaces so the rest of the
    /// line keeps its columns. Marks the template as Liquid.
    fn keyword(&mut self, tok: &Tok<'_>, text: &str) {
        self.replace(tok.start..tok.end, text);
        let pad = tok.text.len().saturating_sub(text.len());
        self.insert(&" ".repeat(pad));
        self.liquid = true;
    }

    /// Turns `src[range]` (from a `{%` to a `%}`) into a `{# … #}` comment, keeping its
    /// whitespace-control marks and breaking any `#}` inside.
    fn comment(&mut self, range: Range<usize>) {
        self.replace(range.start..range.start + 2, "{#");
        let close = range.end - 2;
        let inner_start = self.pos;
        let breaks: Vec<usize> = self.src[inner_start..close]
            .match_indices("#}")
            .map(|(i, _)| inner_start + i + 1)
            .collect();
        for at in breaks {
            self.insert_at(at, " ");
        }
        self.replace(close..range.end, "#}");
        self.liquid = true;
    }

    /// Closes a `| filter: …` argument list just after the template's byte `after`: a `)`
    /// takes the place of a following space or tab, or is inserted.
    fn close_arguments(&mut self, after: usize) {
        self.copy_to(after);
        if self.pos == after && matches!(self.src.as_bytes().get(after), Some(b' ' | b'\t')) {
            self.replace(after..after + 1, ")");
        } else {
            self.insert(")");
        }
    }

    /// An expression: `| f: a, b` argument lists become `| f( a, b)`, `key: v` arguments
    /// `key=v`, `forloop` `loop`. Copies the template through the last token.
    fn expr(&mut self, toks: &[Tok<'_>]) {
        // The brackets open at this point; Jinja's slices (`x[a:b]`) and dict literals
        // (`{k: v}`) keep their colons.
        let mut brackets: Vec<&str> = Vec::new();
        // Depths (open brackets) at which `| f:` argument lists are open.
        let mut open: Vec<usize> = Vec::new();
        for (i, tok) in toks.iter().enumerate() {
            let prev = i.checked_sub(1).map(|p| &toks[p]);
            let prev2 = i.checked_sub(2).map(|p| &toks[p]);
            let depth = brackets.len();
            match (tok.kind, tok.text) {
                (Kind::Punct, "(" | "[" | "{") => brackets.push(tok.text),
                (Kind::Punct, ")" | "]" | "}" | "|") => {
                    while open.last() == Some(&depth) {
                        open.pop();
                        self.close_arguments(prev.map_or(tok.start, |p| p.end));
                    }
                    if tok.text != "|" {
                        brackets.pop();
                    }
                }
                (Kind::Punct, ":")
                    if prev.is_some_and(|p| p.kind == Kind::Ident)
                        && prev2.is_some_and(|p| p.is_punct("|"))
                        && !matches!(brackets.last(), Some(&("[" | "{"))) =>
                {
                    self.replace(tok.start..tok.end, "(");
                    open.push(depth);
                    self.liquid = true;
                }
                (Kind::Punct, ":")
                    if open.last() == Some(&depth)
                        && prev.is_some_and(|p| p.kind == Kind::Ident)
                        && prev2.is_some_and(|p| p.is_punct(",") || p.is_punct(":")) =>
                {
                    self.replace(tok.start..tok.end, "=");
                }
                (Kind::Ident, "forloop") if !prev.is_some_and(|p| p.is_punct(".")) => {
                    self.replace(tok.start..tok.end, "loop");
                    self.liquid = true;
                }
                (Kind::Ident, "rindex" | "rindex0")
                    if prev.is_some_and(|p| p.is_punct("."))
                        && prev2.is_some_and(|p| p.is_ident("forloop")) =>
                {
                    let name = if tok.text == "rindex" {
                        "revindex"
                    } else {
                        "revindex0"
                    };
                    self.replace(tok.start..tok.end, name);
                }
                _ => {}
            }
        }
        if let Some(last) = toks.last() {
            self.copy_to(last.end);
            for _ in open.drain(..) {
                self.close_arguments(last.end);
            }
        }
    }

    /// The condition of `if`, `elsif` / `elif` and `unless`: operands split at `and` / `or`,
    /// Liquid truthiness for operands that are not comparisons, right-to-left grouping.
    fn condition(&mut self, toks: &[Tok<'_>]) {
        let mut clauses: Vec<&[Tok<'_>]> = Vec::new();
        let mut ops: Vec<&str> = Vec::new();
        let mut depth = 0usize;
        let mut start = 0;
        for (i, tok) in toks.iter().enumerate() {
            match (tok.kind, tok.text) {
                (Kind::Punct, "(" | "[" | "{") => depth += 1,
                (Kind::Punct, ")" | "]" | "}") => depth = depth.saturating_sub(1),
                (Kind::Ident, "and" | "or") if depth == 0 => {
                    clauses.push(&toks[start..i]);
                    ops.push(tok.text);
                    start = i + 1;
                }
                _ => {}
            }
        }
        clauses.push(&toks[start..]);
        let mixed = ops.contains(&"and") && ops.contains(&"or");
        let n = clauses.len();
        for (k, clause) in clauses.iter().enumerate() {
            if mixed
                && k >= 1
                && k < n - 1
                && let Some(first) = clause.first()
            {
                self.insert_at(first.start, "(");
            }
            self.clause(clause);
        }
        if mixed
            && n > 2
            && let Some(last) = toks.last()
        {
            self.insert_at(last.end, &")".repeat(n - 2));
        }
    }

    /// One operand of a condition.
    fn clause(&mut self, toks: &[Tok<'_>]) {
        let mut depth = 0usize;
        let mut op = None;
        for (i, tok) in toks.iter().enumerate() {
            match (tok.kind, tok.text) {
                (Kind::Punct, "(" | "[" | "{") => depth += 1,
                (Kind::Punct, ")" | "]" | "}") => depth = depth.saturating_sub(1),
                (Kind::Punct, "==" | "!=" | "<>" | "<" | ">" | "<=" | ">=")
                | (Kind::Ident, "contains" | "in" | "is")
                    if depth == 0 && i > 0 =>
                {
                    op = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(i) = op else {
            // Not a comparison: Liquid truthiness (after a Jinja `not`, if any).
            let body = match toks.first() {
                Some(first) if first.is_ident("not") => &toks[1..],
                _ => toks,
            };
            if let (Some(first), Some(last)) = (body.first(), body.last()) {
                self.insert_at(first.start, "liquid_truthy(");
                self.expr(body);
                self.insert_at(last.end, ")");
            }
            return;
        };
        let (left, op, right) = (&toks[..i], &toks[i], &toks[i + 1..]);
        let (Some(first), Some(last)) = (toks.first(), right.last()) else {
            self.expr(toks);
            return;
        };
        if op.is_ident("contains") {
            self.insert_at(first.start, "liquid_contains(");
            self.expr(left);
            self.replace(op.start..op.end, ",");
            self.expr(right);
            self.insert_at(last.end, ")");
            self.liquid = true;
            return;
        }
        let special = |side: &[Tok<'_>]| match side {
            [tok] if tok.is_ident("blank") => Some("liquid_blank("),
            [tok] if tok.is_ident("empty") => Some("liquid_empty("),
            _ => None,
        };
        let equality = op.is_punct("==") || op.is_punct("!=") || op.is_punct("<>");
        let negation = if op.is_punct("==") { "" } else { "not " };
        if equality && let Some(function) = special(right) {
            self.insert_at(first.start, &format!("{negation}{function}"));
            self.expr(left);
            self.replace(op.start..last.end, ")");
            self.liquid = true;
        } else if equality && let Some(function) = special(left) {
            self.replace(first.start..op.end, &format!("{negation}{function}"));
            self.expr(right);
            self.insert_at(last.end, ")");
            self.liquid = true;
        } else {
            self.expr(left);
            if op.is_punct("<>") {
                self.replace(op.start..op.end, "!=");
                self.liquid = true;
            }
            self.expr(right);
        }
    }
}

/// An open `{% case %}`.
struct Case {
    /// The variable holding the case's value.
    name: String,
    /// `when` (or `else`) branches seen so far.
    branches: usize,
}

/// Rewrites a Liquid template to minijinja; a template without Liquid-only forms comes back
/// unchanged (see the module documentation).
pub(crate) fn rewrite(src: &str) -> Rewritten {
    let unchanged = || Rewritten {
        source: src.to_owned(),
        origin: Vec::new(),
    };
    if !src.contains("{%") && !src.contains("{{") {
        return unchanged();
    }
    let mut w = Writer::new(src);
    let mut cases: Vec<Case> = Vec::new();
    let mut case_count = 0usize;
    let mut at = 0;
    while let Some(tag) = next_tag(src, at) {
        at = tag.end;
        let tokens = lex(src, tag.body.clone());
        if !tag.block {
            w.expr(&tokens);
            continue;
        }
        let Some(first) = tokens.first() else {
            continue;
        };
        let rest = &tokens[1..];
        match (first.kind, first.text) {
            (Kind::Punct, "#") => w.comment(tag.start..tag.end),
            (Kind::Ident, "raw") => {
                if let Some(end) = find_block_end(src, tag.end, "raw", "endraw") {
                    at = end.end;
                }
            }
            (Kind::Ident, "comment") => {
                if let Some(end) = find_block_end(src, tag.end, "comment", "endcomment") {
                    w.comment(tag.start..end.end);
                    at = end.end;
                }
            }
            (Kind::Ident, "assign") => {
                w.keyword(first, "set");
                w.expr(rest);
            }
            (Kind::Ident, "capture") => w.keyword(first, "set"),
            (Kind::Ident, "endcapture") => w.keyword(first, "endset"),
            (Kind::Ident, "unless") => {
                w.keyword(first, "if not (");
                w.condition(rest);
                w.insert_at(rest.last().map_or(first.end, |t| t.end), ")");
            }
            (Kind::Ident, "endunless") => w.keyword(first, "endif"),
            (Kind::Ident, "elsif") => {
                w.keyword(first, "elif");
                w.condition(rest);
            }
            (Kind::Ident, "if" | "elif") => w.condition(rest),
            (Kind::Ident, "echo") => {
                w.replace(tag.start..tag.start + 2, "{{");
                w.keyword(first, "");
                w.expr(rest);
                w.replace(tag.close..tag.end, "}}");
            }
            (Kind::Ident, "case") => {
                case_count += 1;
                let name = format!("liquid_case_{case_count}");
                w.keyword(first, &format!("set {name} ="));
                w.expr(rest);
                // Liquid prints nothing between `case` and the first `when`: trim the white
                // space there.
                let gap_end = src[tag.end..].find("{%").map_or(src.len(), |p| tag.end + p);
                if tag.body.end == tag.close && src[tag.end..gap_end].trim().is_empty() {
                    w.insert_at(tag.close, "-");
                }
                cases.push(Case { name, branches: 0 });
            }
            (Kind::Ident, "when") if !cases.is_empty() => {
                let case = cases.last_mut().map(|c| {
                    c.branches += 1;
                    (c.name.clone(), c.branches == 1)
                });
                let Some((name, first_branch)) = case else {
                    continue;
                };
                w.keyword(first, if first_branch { "if" } else { "elif" });
                let mut depth = 0usize;
                let mut start = 0;
                let compare = format!("{name} == ");
                for i in 0..=rest.len() {
                    let tok = rest.get(i);
                    let separator = match tok {
                        Some(t) if t.is_punct("(") || t.is_punct("[") || t.is_punct("{") => {
                            depth += 1;
                            false
                        }
                        Some(t) if t.is_punct(")") || t.is_punct("]") || t.is_punct("}") => {
                            depth = depth.saturating_sub(1);
                            false
                        }
                        Some(t) => depth == 0 && (t.is_punct(",") || t.is_ident("or")),
                        None => true,
                    };
                    if !separator {
                        continue;
                    }
                    let value = &rest[start..i];
                    if let Some(v) = value.first() {
                        w.insert_at(v.start, &compare);
                        w.expr(value);
                    }
                    if let Some(t) = tok
                        && t.is_punct(",")
                    {
                        w.replace(t.start..t.end, " or");
                    }
                    start = i + 1;
                }
            }
            (Kind::Ident, "else") if cases.last().is_some_and(|c| c.branches == 0) => {
                if let Some(case) = cases.last_mut() {
                    case.branches += 1;
                }
                w.keyword(first, "if true");
            }
            (Kind::Ident, "endcase") if !cases.is_empty() => match cases.pop() {
                Some(case) if case.branches > 0 => w.keyword(first, "endif"),
                _ => w.comment(tag.start..tag.end),
            },
            _ => w.expr(rest),
        }
    }
    if !w.liquid {
        return unchanged();
    }
    w.copy_to(src.len());
    let Writer {
        out, mut origin, ..
    } = w;
    origin.push(src.len());
    debug_assert_eq!(out.matches('\n').count(), src.matches('\n').count());
    Rewritten {
        source: out,
        origin,
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::rewrite;

    /// Each source, then its rewrite (or `(unchanged)`); checks that newlines stay put.
    fn show(sources: &[&str]) -> String {
        let mut out = String::new();
        for src in sources {
            let rewritten = rewrite(src);
            let lines_in: Vec<usize> = src.match_indices('\n').map(|(i, _)| i).collect();
            let lines_out: Vec<usize> = rewritten
                .source
                .match_indices('\n')
                .map(|(i, _)| rewritten.original_range(i..i + 1).start)
                .collect();
            assert_eq!(lines_in, lines_out, "newlines moved in {src:?}");
            if rewritten.is_rewritten() {
                let _ = writeln!(out, "{src}\n→ {}\n", rewritten.source);
            } else {
                assert_eq!(rewritten.source, *src);
                let _ = writeln!(out, "{src}\n→ (unchanged)\n");
            }
        }
        out
    }

    #[test]
    fn filter_arguments() {
        insta::assert_snapshot!(show(&[
            r#"{{ row.at | date: "%Y-%m-%d" }}"#,
            r#"{{ row.name | default: "x" | upcase }}"#,
            r#"{{row.csv|split:","|join:"; "}}"#,
            r#"{{ row.bio | truncate: 255 }} {{ row.bio | truncate: 20, "" }}"#,
            r#"{{ row.phone | replace: "-", " " | append: "!" | prepend: "tel: " }}"#,
            r#"{{ row.flag | default: true, allow_false: true }}"#,
            r#"{{ "a: b | c: d" | append: ':' }}"#,
            r#"{{ (row.a | plus: 1) | times: 2 }}"#,
            r#"{{ row.a | plus: 1 -}}"#,
            "{{ row.name | upcase }} {{ row.x[1:2] }} {{ {'a': 1} | tojson }}",
            "{{ row.x[row.n|int:] }} {{ {row.k|lower: 1} }}",
        ]), @r#"
    {{ row.at | date: "%Y-%m-%d" }}
    → {{ row.at | date( "%Y-%m-%d")}}

    {{ row.name | default: "x" | upcase }}
    → {{ row.name | default( "x")| upcase }}

    {{row.csv|split:","|join:"; "}}
    → {{row.csv|split(",")|join("; ")}}

    {{ row.bio | truncate: 255 }} {{ row.bio | truncate: 20, "" }}
    → {{ row.bio | truncate( 255)}} {{ row.bio | truncate( 20, "")}}

    {{ row.phone | replace: "-", " " | append: "!" | prepend: "tel: " }}
    → {{ row.phone | replace( "-", " ")| append( "!")| prepend( "tel: ")}}

    {{ row.flag | default: true, allow_false: true }}
    → {{ row.flag | default( true, allow_false= true)}}

    {{ "a: b | c: d" | append: ':' }}
    → {{ "a: b | c: d" | append( ':')}}

    {{ (row.a | plus: 1) | times: 2 }}
    → {{ (row.a | plus( 1)) | times( 2)}}

    {{ row.a | plus: 1 -}}
    → {{ row.a | plus( 1)-}}

    {{ row.name | upcase }} {{ row.x[1:2] }} {{ {'a': 1} | tojson }}
    → (unchanged)

    {{ row.x[row.n|int:] }} {{ {row.k|lower: 1} }}
    → (unchanged)
    "#);
    }

    #[test]
    fn tags() {
        insta::assert_snapshot!(show(&[
            r#"{% assign full = row.first | append: " " | append: row.last %}{{ full }}"#,
            "{% unless row.opted_out %}yes{% else %}no{% endunless %}",
            "{% if row.a %}a{% elsif row.b %}b{% else %}c{% endif %}",
            "{%- if row.x contains \"@\" -%}email{%- endif -%}",
            "{% capture greeting %}Hi {{ row.name }}{% endcapture %}{{ greeting }}",
            "{% comment %}{{ row.nope }} #} {% if %}{% endcomment %}x",
            "{%- comment -%}\nnote\n{%- endcomment -%}\n{{ row.a }}",
            "{% # a note %}{{ row.a }}",
            "{% echo row.a | upcase %}",
            "{% for t in row.tags %}{{ forloop.index }}/{{ forloop.rindex }} {{ t }}{% endfor %}",
            "{% raw %}{% unless %}{{ x | f: 1 }}{% endraw %}{{ row.a | f: 1 }}",
        ]), @r#"
    {% assign full = row.first | append: " " | append: row.last %}{{ full }}
    → {% set    full = row.first | append( " ")| append( row.last)%}{{ full }}

    {% unless row.opted_out %}yes{% else %}no{% endunless %}
    → {% if not ( liquid_truthy(row.opted_out)) %}yes{% else %}no{% endif     %}

    {% if row.a %}a{% elsif row.b %}b{% else %}c{% endif %}
    → {% if liquid_truthy(row.a) %}a{% elif  liquid_truthy(row.b) %}b{% else %}c{% endif %}

    {%- if row.x contains "@" -%}email{%- endif -%}
    → {%- if liquid_contains(row.x , "@") -%}email{%- endif -%}

    {% capture greeting %}Hi {{ row.name }}{% endcapture %}{{ greeting }}
    → {% set     greeting %}Hi {{ row.name }}{% endset     %}{{ greeting }}

    {% comment %}{{ row.nope }} #} {% if %}{% endcomment %}x
    → {# comment %}{{ row.nope }} # } {% if %}{% endcomment #}x

    {%- comment -%}
    note
    {%- endcomment -%}
    {{ row.a }}
    → {#- comment -%}
    note
    {%- endcomment -#}
    {{ row.a }}

    {% # a note %}{{ row.a }}
    → {# # a note #}{{ row.a }}

    {% echo row.a | upcase %}
    → {{      row.a | upcase }}

    {% for t in row.tags %}{{ forloop.index }}/{{ forloop.rindex }} {{ t }}{% endfor %}
    → {% for t in row.tags %}{{ loop.index }}/{{ loop.revindex }} {{ t }}{% endfor %}

    {% raw %}{% unless %}{{ x | f: 1 }}{% endraw %}{{ row.a | f: 1 }}
    → {% raw %}{% unless %}{{ x | f: 1 }}{% endraw %}{{ row.a | f( 1)}}
    "#);
    }

    #[test]
    fn case_when() {
        insta::assert_snapshot!(show(&[
            "{% case row.tier %}\n  {% when \"gold\" %}G\n  {% when \"silver\", \"bronze\" or 'tin' %}S\n  {% else %}-\n{% endcase %}",
            "{% case row.a %}{% when 1 %}one{% endcase %}{% case row.b %}{% when 2 %}{% case row.c %}{% when 3 %}x{% endcase %}{% endcase %}",
            "{% case row.a %}{% else %}always{% endcase %}{% case row.b %}{% endcase %}",
        ]), @r#"
    {% case row.tier %}
      {% when "gold" %}G
      {% when "silver", "bronze" or 'tin' %}S
      {% else %}-
    {% endcase %}
    → {% set liquid_case_1 = row.tier -%}
      {% if   liquid_case_1 == "gold" %}G
      {% elif liquid_case_1 == "silver" or liquid_case_1 == "bronze" or liquid_case_1 == 'tin' %}S
      {% else %}-
    {% endif   %}

    {% case row.a %}{% when 1 %}one{% endcase %}{% case row.b %}{% when 2 %}{% case row.c %}{% when 3 %}x{% endcase %}{% endcase %}
    → {% set liquid_case_1 = row.a -%}{% if   liquid_case_1 == 1 %}one{% endif   %}{% set liquid_case_2 = row.b -%}{% if   liquid_case_2 == 2 %}{% set liquid_case_3 = row.c -%}{% if   liquid_case_3 == 3 %}x{% endif   %}{% endif   %}

    {% case row.a %}{% else %}always{% endcase %}{% case row.b %}{% endcase %}
    → {% set liquid_case_1 = row.a -%}{% if true %}always{% endif   %}{% set liquid_case_2 = row.b -%}{# endcase #}
    "#);
    }

    #[test]
    fn conditions() {
        insta::assert_snapshot!(show(&[
            "{% if row.a == blank %}1{% endif %}{% if empty != row.b %}2{% endif %}",
            "{% if row.a <> 1 and row.b %}x{% endif %}",
            "{% if row.a and row.b or row.c %}x{% elsif row.a or row.b and row.c or row.d %}y{% endif %}",
            "{% if not row.a and row.b is none %}x{% endif %}{% assign y = 1 %}",
            "{% if row.tags contains 'vip' or row.name contains \"and\" %}x{% endif %}",
            "{% unless row.a == nil or row.b %}x{% endunless %}",
        ]), @r#"
    {% if row.a == blank %}1{% endif %}{% if empty != row.b %}2{% endif %}
    → {% if liquid_blank(row.a ) %}1{% endif %}{% if not liquid_empty( row.b) %}2{% endif %}

    {% if row.a <> 1 and row.b %}x{% endif %}
    → {% if row.a != 1 and liquid_truthy(row.b) %}x{% endif %}

    {% if row.a and row.b or row.c %}x{% elsif row.a or row.b and row.c or row.d %}y{% endif %}
    → {% if liquid_truthy(row.a) and (liquid_truthy(row.b) or liquid_truthy(row.c)) %}x{% elif  liquid_truthy(row.a) or (liquid_truthy(row.b) and (liquid_truthy(row.c) or liquid_truthy(row.d))) %}y{% endif %}

    {% if not row.a and row.b is none %}x{% endif %}{% assign y = 1 %}
    → {% if not liquid_truthy(row.a) and row.b is none %}x{% endif %}{% set    y = 1 %}

    {% if row.tags contains 'vip' or row.name contains "and" %}x{% endif %}
    → {% if liquid_contains(row.tags , 'vip') or liquid_contains(row.name , "and") %}x{% endif %}

    {% unless row.a == nil or row.b %}x{% endunless %}
    → {% if not ( row.a == nil or liquid_truthy(row.b)) %}x{% endif     %}
    "#);
    }

    /// Jinja, including forms that look like Liquid's, is left exactly as written.
    #[test]
    fn jinja_is_unchanged() {
        insta::assert_snapshot!(show(&[
            "{%- if row['col'] == null -%}{{ null }}{%- else -%}{{ row['col'] | to_unix }}{%- endif -%}",
            "{% if row.a %}{{ row.a | append('!') }}{% elif row.b %}b{% endif %}",
            "{% set x = {'a': row.b} %}{{ x.a }} {# {% assign %} #} {{ 'x | f: 1' }}",
            "{% for row in [{'q': 1}] %}{{ row.q }}{% endfor %}",
            "plain text, { braces } and {{ unclosed",
        ]), @r#"
    {%- if row['col'] == null -%}{{ null }}{%- else -%}{{ row['col'] | to_unix }}{%- endif -%}
    → (unchanged)

    {% if row.a %}{{ row.a | append('!') }}{% elif row.b %}b{% endif %}
    → (unchanged)

    {% set x = {'a': row.b} %}{{ x.a }} {# {% assign %} #} {{ 'x | f: 1' }}
    → (unchanged)

    {% for row in [{'q': 1}] %}{{ row.q }}{% endfor %}
    → (unchanged)

    plain text, { braces } and {{ unclosed
    → (unchanged)
    "#);
    }

    /// Positions in the rewrite map back to the text the user wrote.
    #[test]
    fn positions_map_back() {
        let src = "{% unless row.a contains 'x' %}{{ row.b | truncat: 5 }}{% endunless %}";
        let rewritten = rewrite(src);
        let at = rewritten.source.find("truncat").expect("kept");
        let original = rewritten.original_range(at..at + "truncat".len());
        assert_eq!(&src[original], "truncat");
        let at = rewritten.source.find("liquid_contains").expect("inserted");
        assert_eq!(
            rewritten.original_range(at..at + 3),
            src.find("row.a").expect("in source")..src.find("row.a").expect("in source") + 1
        );
    }
}
