//! The plan: what `engine apply` will do, as a versioned JSON document.
//!
//! The JSON form is the source of truth (see `docs/plan-format.md`); the human view
//! ([`render_human`]) is rendered from the same structs, and a saved plan (`--out`) is this
//! JSON on disk. Every plan names the state lineage and, per sync, the generation it was
//! computed against, so `apply` can refuse a plan the state has moved past.

mod human;
mod seal;
mod types;

pub use human::{HumanOptions, render_human};
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
    /// Reads a saved plan.
    pub fn read(path: &std::path::Path) -> Result<Plan, PlanFileError> {
        let shown = path.display().to_string();
        let bytes = fs_err::read(path).map_err(|source| PlanFileError::Read {
            path: shown.clone(),
            source,
        })?;
        let version: VersionProbe =
            serde_json::from_slice(&bytes).map_err(|source| PlanFileError::Parse {
                path: shown.clone(),
                source,
            })?;
        if version.format_version != FORMAT_VERSION {
            return Err(PlanFileError::Version {
                path: shown,
                found: version.format_version,
            });
        }
        serde_json::from_slice(&bytes).map_err(|source| PlanFileError::Parse {
            path: shown,
            source,
        })
    }

    /// The plan as pretty JSON.
    pub fn to_json(&self) -> String {
        // Plan holds only strings, numbers and vectors: serialization cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// True when no sync has any change.
    pub fn is_empty(&self) -> bool {
        self.syncs.iter().all(|s| s.changes.is_empty())
    }
}

#[derive(serde::Deserialize)]
struct VersionProbe {
    format_version: u32,
}

#[cfg(test)]
mod tests;
