//! The plan: what `engine apply` will do, as a versioned JSON document.
//!
//! The JSON form is the source of truth (see `docs/plan-format.md`); the human view
//! ([`render_human`]), the pull-request comment ([`render_markdown`]) and the analysts'
//! page ([`write_html`]) are rendered from the same structs, and a saved plan (`--out`) is this
//! JSON on disk. Every plan names the state lineage and, per sync, the generation it was
//! computed against, so `apply` can refuse a plan the state has moved past.

mod changes;
mod html;
mod human;
mod kept;
mod layout;
mod markdown;
mod saved;
mod seal;
mod types;

pub use changes::{CHUNK_ROWS, ChangeChunks, ChangeOutline, ChangeSet, ChangeWriter};
pub use html::{
    HTML_MAX_ROWS, HtmlOptions, UNREADABLE_CHANGES, content_security_policy, write_html,
};
pub use human::{HumanOptions, render_human};
pub use kept::{KEPT_PLANS, KeptPlans};
pub use markdown::{
    COMMENT_MARKER, MARKDOWN_LIMIT, MarkdownOptions, render_markdown, render_markdown_failure,
};
pub use seal::digest;
pub use types::*;

/// The `format_version` this engine writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Errors reading a saved plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    /// The file could not be read.
    #[error("cannot read the plan file `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a plan.
    #[error("`{path}` is not a plan file: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The plan was written in another format version.
    #[error("`{path}` has plan format version {found}; this engine reads version {FORMAT_VERSION}")]
    Version {
        /// The file.
        path: String,
        /// Its version.
        found: u32,
    },
}

impl Plan {
    /// Reads a saved plan as a stream: each sync's changes are written to a change file under
    /// `changes_dir` (which must exist) rather than held in memory.
    pub fn read(
        path: &std::path::Path,
        changes_dir: &std::path::Path,
    ) -> Result<Plan, PlanFileError> {
        match Plan::read_lines(path, changes_dir, std::io::sink())? {
            Some(plan) => Ok(plan),
            None => Plan::read_from(path, changes_dir, std::io::sink()),
        }
    }

    /// Reads a saved plan like [`Plan::read`] and tells whether its seal holds under `key`.
    ///
    /// A plan file as `engine plan --out` wrote it is verified from its own bytes while they
    /// are parsed (see [`seal::FileSeal`]), so the changes are not serialized again; any
    /// other file (pretty-printed, say, or edited) is verified by [`Plan::seal_holds`].
    pub fn read_sealed(
        path: &std::path::Path,
        changes_dir: &std::path::Path,
        key: &[u8; 32],
    ) -> Result<(Plan, bool), PlanFileError> {
        let mut file_seal = seal::FileSeal::new(key);
        let plan = match Plan::read_lines(path, changes_dir, &mut file_seal)? {
            Some(plan) => plan,
            None => {
                file_seal = seal::FileSeal::new(key);
                Plan::read_from(path, changes_dir, &mut file_seal)?
            }
        };
        // Bytes that are not the engine's own layout may still be the same sealed document.
        let holds = file_seal.verdict() == Some(true) || plan.seal_holds(key);
        Ok((plan, holds))
    }

    /// Reads the plan at `path` if it is in the engine's line layout (see
    /// [`saved::read_lines`]), copying every byte read into `copy`.
    fn read_lines(
        path: &std::path::Path,
        changes_dir: &std::path::Path,
        copy: impl std::io::Write,
    ) -> Result<Option<Plan>, PlanFileError> {
        let read_error = |source| PlanFileError::Read {
            path: path.display().to_string(),
            source,
        };
        let file = fs_err::File::open(path).map_err(read_error)?;
        saved::read_lines(
            std::io::BufReader::with_capacity(1 << 16, file),
            saved::Changes::WriteTo(changes_dir),
            copy,
        )
        .map_err(read_error)
    }

    /// Parses the plan at `path` as a JSON stream, copying every byte read into `copy`.
    fn read_from(
        path: &std::path::Path,
        changes_dir: &std::path::Path,
        copy: impl std::io::Write,
    ) -> Result<Plan, PlanFileError> {
        use serde::de::DeserializeSeed;
        let shown = path.display().to_string();
        let file = fs_err::File::open(path).map_err(|source| PlanFileError::Read {
            path: shown.clone(),
            source,
        })?;
        let tee = Tee { inner: file, copy };
        let mut deserializer =
            serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 16, tee));
        let parsed = saved::PlanSeed { dir: changes_dir }
            .deserialize(&mut deserializer)
            .and_then(|plan| deserializer.end().map(|()| plan));
        parsed.map_err(|source| {
            let message = source.to_string();
            match message
                .split_once(saved::VERSION_MISMATCH)
                .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
            {
                Some(found) => PlanFileError::Version { path: shown, found },
                None => PlanFileError::Parse {
                    path: shown,
                    source,
                },
            }
        })
    }

    /// Writes the plan as pretty JSON (for people and `--json`), streaming the changes.
    pub fn write_json(&self, writer: impl std::io::Write) -> std::io::Result<()> {
        let mut writer = std::io::BufWriter::new(writer);
        serde_json::to_writer_pretty(&mut writer, self).map_err(std::io::Error::other)?;
        std::io::Write::write_all(&mut writer, b"\n")?;
        std::io::Write::flush(&mut writer)
    }

    /// Writes the plan as a saved plan does: compact JSON (about half the size of the pretty
    /// form) with each row change on a line of its own (see [`layout`]), streaming the changes.
    pub fn write_compact_json(&self, writer: impl std::io::Write) -> std::io::Result<()> {
        let mut writer = std::io::BufWriter::new(writer);
        self.write_lines(&mut writer)?;
        std::io::Write::write_all(&mut writer, b"\n")?;
        std::io::Write::flush(&mut writer)
    }

    /// Serializes the plan in the saved plan's line layout (see [`layout`]).
    pub(crate) fn write_lines(&self, writer: impl std::io::Write) -> std::io::Result<()> {
        use serde::Serialize;
        let mut serializer =
            serde_json::Serializer::with_formatter(writer, layout::ChangeLines::default());
        self.serialize(&mut serializer)
            .map_err(std::io::Error::other)
    }

    /// True when no sync has any change.
    pub fn is_empty(&self) -> bool {
        self.syncs.iter().all(|s| s.changes.is_empty())
    }

    /// Rows left out because a value does not fit its property (per-row errors the data must
    /// fix), over every sync.
    pub fn left_out(&self) -> u64 {
        self.syncs
            .iter()
            .flat_map(|s| &s.skipped)
            .filter(|row| row.invalid_value)
            .count() as u64
    }
}

/// A reader that copies what it reads into a writer (the seal's hasher).
struct Tee<R, W> {
    inner: R,
    copy: W,
}

impl<R: std::io::Read, W: std::io::Write> std::io::Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
