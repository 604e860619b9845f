//! Typed reads from a node tree that record a diagnostic for every problem and keep going.
//!
//! Each reader returns `None` after reporting, so a caller builds what it can and the loader
//! decides at the end (any error ⇒ no [`crate::Project`]).

use std::path::Path;

use engine_diag::{Diagnostic, SourceSpan, did_you_mean};

use crate::types::Located;
use crate::yaml::{Node, Value};

/// The file being checked and the diagnostics found so far.
pub(crate) struct Cx<'a> {
    /// The file, relative to the project directory.
    pub file: &'a Path,
    /// Its text.
    pub source: &'a str,
    /// Every diagnostic of the load, all files together.
    pub diagnostics: &'a mut Vec<Diagnostic>,
}

/// The entries of a checked mapping, by key.
pub(crate) struct Fields<'n> {
    /// The mapping node.
    pub node: &'n Node,
    /// The key that holds this mapping (`match:`), when there is one: missing keys point there.
    pub owner: Option<&'n Node>,
    /// What the mapping is, for messages: "the model", "`match`", "table `users`".
    pub what: String,
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// The value of `key` (the first one when written twice), `None` when absent or null.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.get_raw(key)
            .filter(|n| !matches!(n.value, Value::Null))
    }

    /// The value of `key`, null included.
    pub fn get_raw(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
    }

    /// The key node of `key`.
    pub fn key(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, k, _)| *k)
    }
}

impl Cx<'_> {
    /// Records a diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Reports that `node` (the value of `key`) has the wrong type.
    pub fn wrong_type(&mut self, node: &Node, key: &str, expected: &str) {
        self.wrong_type_in(node, None, key, expected);
    }

    /// Same, pointing at the key node `owner` when the value is a block list or mapping (whose
    /// own position is its first entry, further down).
    pub fn wrong_type_in(&mut self, node: &Node, owner: Option<&Node>, key: &str, expected: &str) {
        let span = match (&node.value, owner) {
            (Value::Map(_) | Value::Seq(_), Some(owner)) => owner.span.clone(),
            _ => node.span.clone(),
        };
        let message = if matches!(node.value, Value::Null) {
            format!("`{key}` has no value; expected {expected}")
        } else {
            format!("`{key}` must be {expected}, found {}", node.value.kind())
        };
        self.push(Diagnostic::error("spec::wrong_type", message).at(span));
    }

    /// Checks that `node` is a mapping whose keys are all in `allowed` (and written once).
    pub fn mapping<'n>(
        &mut self,
        node: &'n Node,
        owner: Option<&'n Node>,
        key: &str,
        what: impl Into<String>,
        allowed: &[&str],
    ) -> Option<Fields<'n>> {
        let Value::Map(map) = &node.value else {
            self.wrong_type_in(node, owner, key, "a mapping");
            return None;
        };
        let what = what.into();
        let mut entries: Vec<(&'n str, &'n Node, &'n Node)> = Vec::new();
        for (k, v) in map {
            let Value::Str(name) = &k.value else {
                let text = k
                    .scalar_text(self.source)
                    .unwrap_or_else(|| k.value.kind().to_string());
                let diagnostic = Diagnostic::error(
                    "spec::unknown_key",
                    format!("unknown key `{text}` in {what}"),
                )
                .at(k.span.clone());
                self.push(with_valid_keys(diagnostic, allowed));
                continue;
            };
            if let Some((_, first, _)) = entries.iter().find(|(n, _, _)| n == name) {
                let first = first.span.clone();
                self.push(
                    Diagnostic::error(
                        "spec::duplicate_key",
                        format!("key `{name}` is written twice in {what}"),
                    )
                    .at(k.span.clone())
                    .note(format!("first written at {first}"))
                    .hint("remove one of them"),
                );
                continue;
            }
            if !allowed.contains(&name.as_str()) {
                let mut diagnostic = Diagnostic::error(
                    "spec::unknown_key",
                    format!("unknown key `{name}` in {what}"),
                )
                .at(k.span.clone());
                match did_you_mean(name, allowed.iter().copied()) {
                    Some(suggestion) => {
                        diagnostic = diagnostic.hint(format!("did you mean `{suggestion}`?"));
                    }
                    None => diagnostic = with_valid_keys(diagnostic, allowed),
                }
                self.push(diagnostic);
                continue;
            }
            entries.push((name.as_str(), k, v));
        }
        Some(Fields {
            node,
            owner,
            what,
            entries,
        })
    }

    /// The value of a required key; reports it missing (at the owner key, or the mapping).
    pub fn required<'n>(&mut self, fields: &Fields<'n>, key: &str) -> Option<&'n Node> {
        match fields.get_raw(key) {
            Some(node) if !matches!(node.value, Value::Null) => Some(node),
            Some(node) => {
                let span = fields
                    .key(key)
                    .map_or_else(|| node.span.clone(), |k| k.span.clone());
                self.push(
                    Diagnostic::error("spec::missing_key", format!("`{key}` has no value"))
                        .at(span)
                        .hint(format!("write a value after `{key}:`")),
                );
                None
            }
            None => {
                let span = match fields.owner {
                    Some(owner) => owner.span.clone(),
                    None => SourceSpan {
                        length: 0,
                        ..fields.node.span.clone()
                    },
                };
                self.push(
                    Diagnostic::error(
                        "spec::missing_key",
                        format!("{} is missing the required key `{key}`", fields.what),
                    )
                    .at(span)
                    .hint(format!("add `{key}:` to {}", fields.what)),
                );
                None
            }
        }
    }

    /// A string.
    pub fn string(&mut self, node: &Node, key: &str) -> Option<Located<String>> {
        match &node.value {
            Value::Str(s) => Some(Located {
                value: s.clone(),
                span: node.span.clone(),
            }),
            _ => {
                self.wrong_type(node, key, "a string");
                None
            }
        }
    }

    /// A string that is not empty (or only white space).
    pub fn non_empty_string(&mut self, node: &Node, key: &str) -> Option<Located<String>> {
        let s = self.string(node, key)?;
        if s.value.trim().is_empty() {
            self.push(
                Diagnostic::error("spec::empty_value", format!("`{key}` must not be empty"))
                    .at(node.span.clone())
                    .hint(format!("write a value for `{key}`")),
            );
            return None;
        }
        Some(s)
    }

    /// `true` or `false`.
    pub fn boolean(&mut self, node: &Node, key: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.wrong_type(node, key, "`true` or `false`");
                None
            }
        }
    }

    /// An integer.
    pub fn integer(&mut self, node: &Node, key: &str) -> Option<i128> {
        match node.value {
            Value::Int(i) => Some(i),
            _ => {
                self.wrong_type(node, key, "an integer");
                None
            }
        }
    }

    /// A number (integer or decimal).
    pub fn number(&mut self, node: &Node, key: &str) -> Option<f64> {
        match node.value {
            #[allow(
                clippy::cast_precision_loss,
                reason = "YAML integers in a float setting"
            )]
            Value::Int(i) => Some(i as f64),
            Value::Float(f) if f.is_finite() => Some(f),
            _ => {
                self.wrong_type(node, key, "a number");
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub fn integer_in(
        &mut self,
        node: &Node,
        key: &str,
        min: i128,
        max: Option<i128>,
    ) -> Option<i128> {
        let n = self.integer(node, key)?;
        if n < min || max.is_some_and(|max| n > max) {
            let (range, hint) = match max {
                Some(max) => (
                    format!("between {min} and {max}"),
                    format!("use a value between {min} and {max}"),
                ),
                None => (format!("at least {min}"), format!("use {min} or more")),
            };
            self.push(
                Diagnostic::error(
                    "spec::out_of_range",
                    format!("`{key}` must be {range}, found {n}"),
                )
                .at(node.span.clone())
                .hint(hint),
            );
            return None;
        }
        Some(n)
    }

    /// One of `choices`; `later` lists values that are known but not supported yet, with the
    /// hint to show for them.
    pub fn choice<'c>(
        &mut self,
        node: &Node,
        key: &str,
        choices: &[&'c str],
        later: &[(&str, &str)],
    ) -> Option<&'c str> {
        let s = self.string(node, key)?;
        if let Some(choice) = choices.iter().find(|c| **c == s.value) {
            return Some(choice);
        }
        if let Some((_, hint)) = later.iter().find(|(v, _)| *v == s.value) {
            self.push(
                Diagnostic::error(
                    "spec::unsupported_value",
                    format!("`{key}: {}` is not supported yet", s.value),
                )
                .at(node.span.clone())
                .hint(*hint),
            );
            return None;
        }
        let diagnostic = Diagnostic::error(
            "spec::invalid_value",
            format!("unknown `{key}` value `{}`", s.value),
        )
        .at(node.span.clone());
        self.push(match did_you_mean(&s.value, choices.iter().copied()) {
            Some(suggestion) => diagnostic.hint(format!("did you mean `{suggestion}`?")),
            None => diagnostic.hint(format!("valid values are {}", list(choices))),
        });
        None
    }

    /// A name (of a model, sync, destination, project): letters, digits, `_` and `-`,
    /// starting with a letter or `_`. `key` is the YAML key holding it, or the mapping whose
    /// keys are names (`destinations`).
    pub fn name(&mut self, node: &Node, key: &str, kind: &str) -> Option<Located<String>> {
        self.checked_name(
            node,
            key,
            kind,
            |first, rest| {
                (first.is_ascii_alphabetic() || first == '_')
                    && rest
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            },
            "use ASCII letters, digits, `_` and `-`, starting with a letter or `_`",
        )
    }

    /// A name checked by `valid(first character, the rest)`; a number or boolean written
    /// where a name goes is an invalid name rather than a wrong type.
    pub fn checked_name(
        &mut self,
        node: &Node,
        key: &str,
        kind: &str,
        valid: impl Fn(char, &str) -> bool,
        hint: &str,
    ) -> Option<Located<String>> {
        let text = match &node.value {
            Value::Str(s) => s.clone(),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                node.scalar_text(self.source).unwrap_or_default()
            }
            _ => {
                self.wrong_type(node, key, "a name");
                return None;
            }
        };
        if text.trim().is_empty() {
            self.push(
                Diagnostic::error(
                    "spec::empty_value",
                    format!("the {kind} name must not be empty"),
                )
                .at(node.span.clone())
                .hint(format!("write a name for the {kind}")),
            );
            return None;
        }
        if text.chars().count() > MAX_NAME_LENGTH {
            self.push(
                Diagnostic::error(
                    "spec::invalid_name",
                    format!(
                        "the {kind} name is {} characters long; names have at most {MAX_NAME_LENGTH}",
                        text.chars().count()
                    ),
                )
                .at(node.span.clone())
                .hint("names become file names in the state directory: choose a shorter one"),
            );
            return None;
        }
        let mut chars = text.chars();
        let is_valid = chars
            .next()
            .is_some_and(|first| valid(first, chars.as_str()));
        if !is_valid || !matches!(node.value, Value::Str(_)) {
            self.push(
                Diagnostic::error(
                    "spec::invalid_name",
                    format!("invalid {kind} name `{text}`"),
                )
                .at(node.span.clone())
                .hint(hint),
            );
            return None;
        }
        Some(Located {
            value: text,
            span: node.span.clone(),
        })
    }
}

/// The longest name: names become file names in the state directory (255 bytes at most on
/// common file systems, with room for suffixes such as `.lock` and `.rows.parquet`).
pub const MAX_NAME_LENGTH: usize = 100;

/// Adds "valid keys are …" to an unknown-key diagnostic.
fn with_valid_keys(diagnostic: Diagnostic, allowed: &[&str]) -> Diagnostic {
    diagnostic.hint(format!("valid keys are {}", list(allowed)))
}

/// "`a`, `b` and `c`".
pub(crate) fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
