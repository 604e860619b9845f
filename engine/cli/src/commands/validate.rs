//! `engine validate`: every check that needs no network, all problems at once.

use std::path::Path;

use engine_diag::{Diagnostic, Severity};

use crate::views;

pub async fn run(dir: &Path, json: bool) -> u8 {
    let (project, diagnostics) = engine_sync::validate(dir).await;
    if let Some(project) = project
        && !diagnostics.iter().any(Diagnostic::is_error)
        && !json
    {
        views::status(&format!(
            "The project `{}` is valid: {} table(s), {} model(s), {} sync(s).",
            project.name,
            project.tables.len(),
            project.models.len(),
            project.syncs.len()
        ));
    }
    let failed = diagnostics.iter().any(|d| d.severity == Severity::Error);
    if json {
        views::diagnostics_json(&diagnostics);
    } else {
        views::diagnostics(&diagnostics, dir);
    }
    u8::from(failed)
}
