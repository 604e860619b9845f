//! Loads a project's YAML (`engine.yaml`, `models/*.yaml`, `syncs/*.yaml`) into a checked
//! [`Project`], with every problem reported at once as a [`Diagnostic`] at file:line:column.
//!
//! ```text
//!  files ──► yaml (serde-saphyr → node tree, every node with its span)
//!                 │
//!                 ▼
//!            check (typed reads that record a diagnostic and go on)
//!                 │  engine_file · model · sync, one file at a time
//!                 ▼
//!            project (names defined twice, syncs' references) ──► Project or every error
//! ```
//!
//! Secrets are never read here: a destination's `token` is kept as an [`EnvTemplate`]
//! (`${env:NAME}`) and resolved only by the command that sends it. The keys and their
//! defaults are documented in `docs/spec.md`, the diagnostic codes in `docs/errors.md`.
//!
//! [`Diagnostic`]: engine_diag::Diagnostic

mod check;
mod engine_file;
mod env;
mod model;
mod project;
mod schema;
mod sources;
mod sync;
mod types;
mod yaml;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_salesforce;
#[cfg(test)]
mod tests_schema;
#[cfg(test)]
mod tests_sources;

pub use check::MAX_NAME_LENGTH;
pub use project::load_project;
pub use schema::{SchemaKind, engine_schema, model_schema, sync_schema};
pub use sync::{MAX_BATCH_SIZE, MAX_HUBSPOT_BATCH_SIZE};
pub use types::*;
