//! One diagnostic model for every crate of the engine.
//!
//! A user error (bad YAML, unknown column, a destination rejection, an expired token) is a
//! [`Diagnostic`]: a stable code, a one-line message, where it happened (a file position or a
//! sync / row key / field) and `hint:` lines that say how to fix it. Bugs are not diagnostics;
//! they are internal errors that say "this is a bug in engine".
//!
//! [`SecretString`] lives here too: both are about what may safely be shown to a person.

mod render;
mod secret;

pub use render::{render_github, render_human, render_json};
pub use secret::{SecretString, redact_url, url_credentials};

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// How bad a diagnostic is; errors stop the command, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Stops the command with exit code 1.
    Error,
    /// Reported, but the command goes on.
    Warning,
}

/// A position in a project file (1-based line and column), as editors show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceSpan {
    /// The file, as given to the loader (usually relative to the project directory).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// How many characters to underline (0 when unknown).
    pub length: usize,
}

impl SourceSpan {
    /// A span in `file` at `line`:`column` (both 1-based), underlining `length` characters.
    pub fn new(file: impl Into<PathBuf>, line: usize, column: usize, length: usize) -> Self {
        Self {
            file: file.into(),
            line,
            column,
            length,
        }
    }
}

impl fmt::Display for SourceSpan {
    /// `file:line:column`, as editors and terminals link it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Where a diagnostic points: into a file, or at a row of a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Location {
    /// A position in a YAML or SQL file of the project.
    Source(SourceSpan),
    /// A row (and maybe one field) of a sync, when the problem is in the data.
    Row {
        /// The sync's name.
        sync: String,
        /// The row's primary key, when known.
        key: Option<String>,
        /// The destination property or model column, when known.
        field: Option<String>,
    },
}

/// A user-facing problem: what, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// Stable code such as `spec::unknown_key`, listed in `docs/errors.md`.
    pub code: String,
    /// Error or warning.
    pub severity: Severity,
    /// One sentence, no trailing period, literals in backticks.
    pub message: String,
    /// Where the problem is, when it has a place.
    pub location: Option<Location>,
    /// Related facts ("the model `contacts` is defined here").
    pub notes: Vec<String>,
    /// What to do about it ("did you mean `email`?").
    pub hints: Vec<String>,
}

impl Diagnostic {
    /// An error with a code and a message, to be completed with the builder methods.
    pub fn error(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            severity: Severity::Error,
            message: message.into(),
            location: None,
            notes: Vec::new(),
            hints: Vec::new(),
        }
    }

    /// A warning with a code and a message.
    pub fn warning(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, message)
        }
    }

    /// Points the diagnostic at a file position.
    pub fn at(mut self, span: SourceSpan) -> Self {
        self.location = Some(Location::Source(span));
        self
    }

    /// Points the diagnostic at a sync row (and field).
    pub fn at_row(
        mut self,
        sync: impl Into<String>,
        key: Option<String>,
        field: Option<String>,
    ) -> Self {
        self.location = Some(Location::Row {
            sync: sync.into(),
            key,
            field,
        });
        self
    }

    /// Adds a `hint:` line.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// Adds a `note:` line.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// One line per item, no source snippet: used in logs and in run history.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}[{}]: {}", self.code, self.message)?;
        match &self.location {
            Some(Location::Source(s)) => {
                write!(f, "\n  --> {}:{}:{}", s.file.display(), s.line, s.column)?
            }
            Some(Location::Row { sync, key, field }) => {
                write!(f, "\n  --> sync `{sync}`")?;
                if let Some(key) = key {
                    write!(f, ", row `{key}`")?;
                }
                if let Some(field) = field {
                    write!(f, ", field `{field}`")?;
                }
            }
            None => {}
        }
        for note in &self.notes {
            write!(f, "\n  note: {note}")?;
        }
        for hint in &self.hints {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// The closest candidate to `word`, for "did you mean" hints.
///
/// A candidate is close when, ignoring case, it is at most one edit (insertion, deletion,
/// substitution or swap of neighbours) away per three characters (`cvs` → `csv`,
/// `primery_key` → `primary_key`), or when the Jaro-Winkler similarity is above 0.8 (which
/// favours a shared prefix: `clear` → `clear_fields`). The fewest edits win, then similarity.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    candidates
        .into_iter()
        .filter_map(|candidate| {
            let lower = candidate.to_lowercase();
            let edits = strsim::osa_distance(&word_lower, &lower);
            let similarity = strsim::jaro_winkler(&word_lower, &lower);
            let longest = word_lower.chars().count().max(lower.chars().count());
            (edits <= longest / 3 || similarity > 0.8).then_some((edits, similarity, candidate))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_finds_typos_and_prefixes() {
        let formats = ["csv", "parquet", "ndjson"];
        assert_eq!(did_you_mean("cvs", formats), Some("csv"));
        assert_eq!(did_you_mean("Parquet", formats), Some("parquet"));
        assert_eq!(did_you_mean("xml", formats), None);
        assert_eq!(
            did_you_mean("primery_key", ["name", "primary_key", "sql"]),
            Some("primary_key")
        );
        assert_eq!(
            did_you_mean("clear", ["nothing", "clear_fields"]),
            Some("clear_fields")
        );
        assert_eq!(did_you_mean("a", ["b", "c"]), None);
        assert_eq!(
            did_you_mean("colour", ["name", "description", "primary_key", "sql"]),
            None
        );
    }
}
