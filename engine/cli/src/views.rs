//! Everything the CLI prints goes through here: stdout for results, stderr for diagnostics.
//! A closed pipe (`engine plan | head`) is not an error.

use std::io::{IsTerminal, Write};
use std::path::Path;

use engine_diag::Diagnostic;

/// Prints a result to stdout; a broken pipe is ignored.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Streams a large result to stdout; a broken pipe is ignored, and any other write error is
/// reported on stderr.
pub fn out_with(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
    let mut stdout = std::io::stdout().lock();
    match write(&mut stdout) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            error_line(&format!("error: cannot write to stdout: {e}"));
        }
        _ => {}
    }
    let _ = stdout.flush();
}

/// Prints a line to stderr.
pub fn error_line(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Prints progress or status information to stderr (keeps stdout for results).
pub fn status(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Prints diagnostics to stderr: human text, plus GitHub annotations when running in GitHub
/// Actions.
pub fn diagnostics(diagnostics: &[Diagnostic], root: &Path) {
    if diagnostics.is_empty() {
        return;
    }
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(engine_diag::render_human(diagnostics, root).as_bytes());
    if std::env::var_os("GITHUB_ACTIONS").is_some() {
        let _ = stderr.write_all(engine_diag::render_github(diagnostics).as_bytes());
    }
}

/// Prints diagnostics as JSON to stdout (`--json`).
pub fn diagnostics_json(diagnostics: &[Diagnostic]) {
    let value = serde_json::json!({ "diagnostics": engine_diag::render_json(diagnostics) });
    out(&format!(
        "{}\n",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    ));
}

/// Prints the JSON document of a failed `--json` command to stdout, so a script reading
/// stdout always gets JSON: `{"format_version": N, "error": true, "diagnostics": [...]}`.
pub fn error_document_json(format_version: u32, diagnostics: &[Diagnostic]) {
    let value = serde_json::json!({
        "format_version": format_version,
        "error": true,
        "diagnostics": engine_diag::render_json(diagnostics),
    });
    out(&format!(
        "{}\n",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    ));
}

/// True when stderr is a terminal (progress bars).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}
