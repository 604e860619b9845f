//! `engine schema`: the JSON Schemas of the spec files, for editors (docs/operations.md).

use std::path::Path;

use engine_spec::SchemaKind;

use crate::args::SchemaKindArg;
use crate::views;

pub fn run(kind: Option<SchemaKindArg>, out: Option<&Path>) -> u8 {
    match (kind, out) {
        (_, Some(dir)) => match write_all(dir) {
            Ok(written) => {
                for file in written {
                    views::status(&format!("Wrote {file}."));
                }
                0
            }
            Err(message) => {
                views::error_line(&message);
                1
            }
        },
        (Some(kind), None) => {
            views::out(&format!("{}\n", render(kind_of(kind))));
            0
        }
        (None, None) => {
            views::error_line(
                "error: name the file kind to describe: `engine schema engine`, `model` or `sync`\n  = hint: or write all three with `engine schema --out DIR`",
            );
            1
        }
    }
}

fn kind_of(kind: SchemaKindArg) -> SchemaKind {
    match kind {
        SchemaKindArg::Engine => SchemaKind::Engine,
        SchemaKindArg::Model => SchemaKind::Model,
        SchemaKindArg::Sync => SchemaKind::Sync,
    }
}

/// A schema as pretty JSON.
pub fn render(kind: SchemaKind) -> String {
    // A `serde_json::Value` always serializes.
    serde_json::to_string_pretty(&kind.schema()).unwrap_or_default()
}

/// Writes the three schemas into `dir` (created if missing); the paths written, or the error
/// naming the file.
pub fn write_all(dir: &Path) -> Result<Vec<String>, String> {
    fs_err::create_dir_all(dir).map_err(|e| format!("error: cannot create the directory: {e}"))?;
    let mut written = Vec::new();
    for kind in SchemaKind::ALL {
        let path = dir.join(kind.file_name());
        fs_err::write(&path, format!("{}\n", render(kind)))
            .map_err(|e| format!("error: cannot write the schema: {e}"))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}
