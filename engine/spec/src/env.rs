//! `${env:NAME}` references: parsed at load time (syntax errors are spec errors), resolved
//! only when a command needs the value, so `engine validate` works without secrets.
//!
//! Syntax: `${env:NAME}` where `NAME` is `[A-Za-z_][A-Za-z0-9_]*`; `$${` writes a literal
//! `${`; any other `$` is literal text.

use std::env::VarError;

use engine_diag::{Diagnostic, SecretString};

use crate::types::EnvTemplate;

/// A piece of a template: literal text or a variable reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Literal text.
    Text(String),
    /// `${env:NAME}`.
    Var(String),
}

/// A syntax error in a template, at characters `start..start + len` of the raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    /// First character of the bad reference.
    pub start: usize,
    /// Its length in characters.
    pub len: usize,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// `${` without a closing `}`.
    Unclosed,
    /// `${NAME}`: a variable name without the `env:` prefix.
    MissingPrefix(String),
    /// `${env:}`.
    EmptyName,
    /// `${env:NOT-A-NAME}` or `${something else}`.
    Malformed,
}

impl SyntaxError {
    /// One-line message; it never quotes the text (which may be a pasted token).
    pub fn message(&self, key: &str) -> String {
        match &self.problem {
            Problem::Unclosed => format!("unclosed `${{` in `{key}`"),
            Problem::MissingPrefix(_) => {
                format!("environment reference in `{key}` is missing the `env:` prefix")
            }
            Problem::EmptyName => format!("empty variable name in `{key}`"),
            Problem::Malformed => format!("malformed environment reference in `{key}`"),
        }
    }

    /// What to write instead; `secret` avoids echoing anything that might be a token.
    pub fn hint(&self, secret: bool) -> String {
        match &self.problem {
            Problem::MissingPrefix(name) if !secret => format!("write `${{env:{name}}}`"),
            Problem::Unclosed => {
                "close the reference with `}`, or write `$${` for a literal `${`".to_string()
            }
            _ => "write `${env:NAME}`, where `NAME` is letters, digits and `_`".to_string(),
        }
    }
}

/// True for `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits `raw` into literal text and variable references.
pub(crate) fn parse(raw: &str) -> Result<Vec<Piece>, SyntaxError> {
    let chars: Vec<char> = raw.chars().collect();
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' && chars.get(i + 1) == Some(&'$') && chars.get(i + 2) == Some(&'{') {
            text.push_str("${");
            i += 3;
        } else if chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
            let Some(close) = chars[i + 2..].iter().position(|c| *c == '}') else {
                return Err(SyntaxError {
                    start: i,
                    len: chars.len() - i,
                    problem: Problem::Unclosed,
                });
            };
            let inner: String = chars[i + 2..i + 2 + close].iter().collect();
            let len = close + 3;
            let problem = match inner.strip_prefix("env:") {
                Some(name) if is_var_name(name) => None,
                Some("") => Some(Problem::EmptyName),
                Some(_) => Some(Problem::Malformed),
                None if is_var_name(&inner) => Some(Problem::MissingPrefix(inner.clone())),
                None => Some(Problem::Malformed),
            };
            if let Some(problem) = problem {
                return Err(SyntaxError {
                    start: i,
                    len,
                    problem,
                });
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Var(inner["env:".len()..].to_string()));
            i += len;
        } else {
            text.push(chars[i]);
            i += 1;
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

#[expect(
    clippy::result_large_err,
    reason = "the public API returns one `Diagnostic`, like every crate; errors here are rare"
)]
impl EnvTemplate {
    /// Substitutes every `${env:NAME}` from the process environment; a missing variable is a
    /// `spec::missing_env` diagnostic pointing at the template, with a hint `set `NAME` in the
    /// environment`.
    pub fn resolve(&self) -> Result<String, Diagnostic> {
        self.substitute(|name| std::env::var(name), false)
    }

    /// Same as [`EnvTemplate::resolve`], as a [`SecretString`]; the diagnostic never contains
    /// the value. An empty value is an error too (an empty token is never what was meant), and
    /// so is one shorter than [`SecretString::MIN_LEN`] (`spec::secret_too_short`): a real
    /// token is longer, and masking a very short value in messages would mask ordinary words.
    pub fn resolve_secret(&self) -> Result<SecretString, Diagnostic> {
        self.substitute(|name| std::env::var(name), true)
            .map(SecretString::new)
    }

    /// Like [`EnvTemplate::resolve_secret`] with variables looked up by `lookup` instead of the
    /// process environment (tests, or a CLI that reads a `.env` file).
    pub fn resolve_secret_with(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<SecretString, Diagnostic> {
        self.substitute(|name| lookup(name).ok_or(VarError::NotPresent), true)
            .map(SecretString::new)
    }

    /// Like [`EnvTemplate::resolve`] with variables looked up by `lookup` instead of the
    /// process environment (tests, or a CLI that reads a `.env` file).
    pub fn resolve_with(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<String, Diagnostic> {
        self.substitute(|name| lookup(name).ok_or(VarError::NotPresent), false)
    }

    /// Names of the variables referenced, in order, each once.
    pub fn variables(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for piece in parse(&self.raw).unwrap_or_default() {
            if let Piece::Var(name) = piece
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
        names
    }

    fn substitute(
        &self,
        lookup: impl Fn(&str) -> Result<String, VarError>,
        secret: bool,
    ) -> Result<String, Diagnostic> {
        let pieces = parse(&self.raw).map_err(|error| {
            Diagnostic::error("spec::invalid_env_reference", error.message("value"))
                .at(self.span.clone())
                .hint(error.hint(secret))
        })?;
        let mut out = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(text) => out.push_str(&text),
                Piece::Var(name) => match lookup(&name) {
                    Ok(value) if secret && value.is_empty() => {
                        return Err(Diagnostic::error(
                            "spec::missing_env",
                            format!("environment variable `{name}` is empty"),
                        )
                        .at(self.span.clone())
                        .hint(format!("set `{name}` in the environment")));
                    }
                    Ok(value) if secret && value.trim().chars().count() < SecretString::MIN_LEN => {
                        // Never quote the value, not even its length: it may be half a token.
                        return Err(Diagnostic::error(
                            "spec::secret_too_short",
                            format!(
                                "environment variable `{name}` is too short to be a token (fewer than {} characters)",
                                SecretString::MIN_LEN
                            ),
                        )
                        .at(self.span.clone())
                        .hint(format!(
                            "set `{name}` to the whole access token (a HubSpot private-app token starts with `pat-`), not a placeholder"
                        )));
                    }
                    Ok(value) => out.push_str(&value),
                    Err(VarError::NotPresent) => {
                        return Err(Diagnostic::error(
                            "spec::missing_env",
                            format!("environment variable `{name}` is not set"),
                        )
                        .at(self.span.clone())
                        .hint(format!("set `{name}` in the environment")));
                    }
                    Err(VarError::NotUnicode(_)) => {
                        return Err(Diagnostic::error(
                            "spec::missing_env",
                            format!("environment variable `{name}` is not valid UTF-8"),
                        )
                        .at(self.span.clone())
                        .hint(format!("set `{name}` to a UTF-8 value")));
                    }
                },
            }
        }
        Ok(out)
    }
}
