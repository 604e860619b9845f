//! The loader: reads every file of a project, checks each one, then the references between
//! them, and returns a [`Project`] only when nothing is wrong.

use std::path::{Path, PathBuf};

use engine_diag::{Diagnostic, Location, SourceSpan};

use crate::check::Cx;
use crate::engine_file::{self, EngineFile, names_list, suggest};
use crate::model::{self, ModelFile};
use crate::sync::{self, MAX_HUBSPOT_BATCH_SIZE, SyncFile};
use crate::types::{DestinationKind, Located, Project};
use crate::yaml::{self, Node, Value};

/// Loads and checks the project in `dir`: `engine.yaml` (or `engine.yml`), `models/*.yaml`
/// and `syncs/*.yaml` (`.yml` too).
///
/// Every problem in every file is reported: `Ok` carries the project and the warnings, `Err`
/// every error found (and the warnings), in file order. Spans are relative to `dir`.
pub fn load_project(dir: &Path) -> Result<(Project, Vec<Diagnostic>), Vec<Diagnostic>> {
    let root = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut diagnostics = Vec::new();

    let Some(engine_path) = engine_file_path(&root, &mut diagnostics) else {
        diagnostics.push(
            Diagnostic::error(
                "spec::no_project",
                format!("no `engine.yaml` in `{}`", dir.display()),
            )
            .hint("run the command in the project directory, or create `engine.yaml` there"),
        );
        return Err(diagnostics);
    };
    let engine = load_file(&root, &engine_path, &mut diagnostics, |cx, node| {
        engine_file::check(cx, &root, node)
    });
    let model_files = yaml_files(&root, "models", &mut diagnostics);
    let sync_files = yaml_files(&root, "syncs", &mut diagnostics);
    let models: Vec<ModelFile> = model_files
        .iter()
        .map(|file| {
            load_file(&root, file, &mut diagnostics, model::check).unwrap_or(ModelFile {
                name: None,
                spec: None,
            })
        })
        .collect();
    let syncs: Vec<SyncFile> = sync_files
        .iter()
        .map(|file| {
            load_file(&root, file, &mut diagnostics, sync::check).unwrap_or(SyncFile {
                name: None,
                model: None,
                destination: None,
                spec: None,
                salesforce: None,
                salesforce_keys: Vec::new(),
            })
        })
        .collect();

    duplicates(
        "model",
        models.iter().filter_map(|m| m.name.as_ref()),
        &mut diagnostics,
    );
    duplicates(
        "sync",
        syncs.iter().filter_map(|s| s.name.as_ref()),
        &mut diagnostics,
    );
    // A reference is checked only when every name it could match was readable; otherwise a
    // broken model file would also show up as "unknown model" in each of its syncs.
    let model_names: Option<Vec<Located<String>>> = models.iter().map(|m| m.name.clone()).collect();
    let destination_names = engine.as_ref().and_then(|e| e.destination_names.clone());
    let source_names = engine.as_ref().and_then(|e| e.source_names.clone());
    for model in &models {
        if let (Some(source), Some(names)) = (
            model.spec.as_ref().and_then(|m| m.source.as_ref()),
            &source_names,
        ) {
            check_reference(source, "source", names, &mut diagnostics, |name| {
                format!("add `{name}:` under `sources:` in `engine.yaml`")
            });
        }
    }
    for sync in &syncs {
        if let (Some(model), Some(names)) = (&sync.model, &model_names) {
            check_reference(model, "model", names, &mut diagnostics, |name| {
                format!("create `models/{name}.yaml` with `name: {name}`")
            });
        }
        if let (Some(destination), Some(engine)) = (&sync.destination, &engine) {
            salesforce_only(sync, destination, engine, &mut diagnostics);
        }
        if let (Some(destination), Some(names)) = (&sync.destination, &destination_names) {
            check_reference(
                destination,
                "destination",
                names,
                &mut diagnostics,
                |name| format!("add `{name}:` under `destinations:` in `engine.yaml`"),
            );
        }
    }

    // Read like a compiler's output: file by file in load order, top to bottom in each.
    let files: Vec<&PathBuf> = std::iter::once(&engine_path)
        .chain(&model_files)
        .chain(&sync_files)
        .collect();
    diagnostics.sort_by_key(|d| match &d.location {
        Some(Location::Source(span)) => (
            files
                .iter()
                .position(|f| **f == span.file)
                .unwrap_or(files.len()),
            span.line,
            span.column,
        ),
        _ => (files.len() + 1, 0, 0),
    });
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(diagnostics);
    }
    let Some(EngineFile {
        name: Some(name),
        state_dir: Some(state_dir),
        retention,
        state_backend,
        tables,
        sources,
        destinations,
        ..
    }) = engine
    else {
        // Every path that leaves these unset also records an error.
        diagnostics.push(Diagnostic::error(
            "spec::internal",
            "`engine.yaml` was read without error but is incomplete; this is a bug in engine",
        ));
        return Err(diagnostics);
    };
    let salesforce_syncs: Vec<_> = syncs.iter().filter_map(|s| s.salesforce.clone()).collect();
    let mut models: Vec<_> = models.into_iter().filter_map(|m| m.spec).collect();
    models.sort_by(|a, b| a.name.value.cmp(&b.name.value));
    let mut syncs: Vec<_> = syncs.into_iter().filter_map(|s| s.spec).collect();
    syncs.sort_by(|a, b| a.name.value.cmp(&b.name.value));
    let project = Project {
        root,
        name,
        state_dir,
        retention,
        state_backend,
        tables,
        sources,
        destinations,
        models,
        syncs,
        salesforce_syncs,
    };
    Ok((project, diagnostics))
}

/// Refuses a sync's Salesforce-only keys (`match_records:`, `bulk_threshold:`) and a
/// `batch_size` above HubSpot's when its destination is not a Salesforce one.
fn salesforce_only(
    sync: &SyncFile,
    destination: &Located<String>,
    engine: &EngineFile,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let Some(kind) = engine
        .destinations
        .iter()
        .find(|d| d.name.value == destination.value)
        .map(|d| d.kind)
    else {
        return;
    };
    if kind == DestinationKind::Salesforce {
        return;
    }
    if let Some(batch_size) = sync
        .spec
        .as_ref()
        .and_then(|s| s.batch_size.as_ref())
        .filter(|b| b.value > MAX_HUBSPOT_BATCH_SIZE)
    {
        diagnostics.push(
            Diagnostic::error(
                "spec::out_of_range",
                format!(
                    "`batch_size` must be between 1 and {MAX_HUBSPOT_BATCH_SIZE} for HubSpot, found {}",
                    batch_size.value
                ),
            )
            .at(batch_size.span.clone())
            .note(format!(
                "HubSpot's batch endpoints take at most {MAX_HUBSPOT_BATCH_SIZE} records a request"
            ))
            .hint(format!(
                "use {MAX_HUBSPOT_BATCH_SIZE} or less, or leave `batch_size` out"
            )),
        );
    }
    for key in &sync.salesforce_keys {
        diagnostics.push(
            Diagnostic::error(
                "spec::option_for_other_type",
                format!(
                    "`{}` is a Salesforce setting, and destination `{}` is `type: hubspot`",
                    key.value, destination.value
                ),
            )
            .at(key.span.clone())
            .hint(format!(
                "remove `{}`, or send this sync to a Salesforce destination",
                key.value
            )),
        );
    }
}

/// `engine.yaml`, else `engine.yml` (relative to the root).
fn engine_file_path(root: &Path, diagnostics: &mut Vec<Diagnostic>) -> Option<PathBuf> {
    let yaml = root.join("engine.yaml").is_file();
    let yml = root.join("engine.yml").is_file();
    if yaml && yml {
        diagnostics.push(
            Diagnostic::warning(
                "spec::ignored_file",
                "`engine.yml` is ignored because `engine.yaml` exists",
            )
            .at(SourceSpan::new("engine.yml", 1, 1, 0))
            .hint("delete one of the two files"),
        );
    }
    if yaml {
        Some(PathBuf::from("engine.yaml"))
    } else if yml {
        Some(PathBuf::from("engine.yml"))
    } else {
        None
    }
}

/// The `*.yaml` and `*.yml` files directly in `root/dir`, sorted, relative to the root.
fn yaml_files(root: &Path, dir: &str, diagnostics: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let path = root.join(dir);
    if !path.is_dir() {
        return Vec::new();
    }
    let entries = match fs_err::read_dir(&path) {
        Ok(entries) => entries,
        Err(error) => {
            diagnostics.push(io_error(Path::new(dir), &error));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
        })
        .map(|name| Path::new(dir).join(name))
        .collect();
    files.sort();
    files
}

/// Reads and parses `file` (relative to `root`), then runs `check` on its root node.
/// `None` when the file could not be read or parsed, or is empty (all reported).
fn load_file<T>(
    root: &Path,
    file: &Path,
    diagnostics: &mut Vec<Diagnostic>,
    check: impl FnOnce(&mut Cx<'_>, &Node) -> T,
) -> Option<T> {
    let text = match fs_err::read_to_string(root.join(file)) {
        Ok(text) => text,
        Err(error) => {
            diagnostics.push(io_error(file, &error));
            return None;
        }
    };
    let node = match yaml::parse(file, &text) {
        Ok(node) => node,
        Err(diagnostic) => {
            diagnostics.push(diagnostic);
            return None;
        }
    };
    if matches!(node.value, Value::Null) {
        diagnostics.push(
            Diagnostic::error("spec::empty_file", format!("`{}` is empty", file.display()))
                .at(SourceSpan::new(file, 1, 1, 0))
                .hint("write its keys (see docs/spec.md), or delete the file"),
        );
        return None;
    }
    let mut cx = Cx {
        file,
        source: &text,
        diagnostics,
    };
    Some(check(&mut cx, &node))
}

fn io_error(file: &Path, error: &std::io::Error) -> Diagnostic {
    // fs-err's message already names the path; keep only the cause.
    let cause = match error.kind() {
        std::io::ErrorKind::InvalidData => "it is not valid UTF-8".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => std::io::Error::from(error.kind()).to_string(),
    };
    Diagnostic::error(
        "spec::io",
        format!("cannot read `{}`: {cause}", file.display()),
    )
    .hint("check that the file exists and is readable")
}

/// Reports every name after the first one of each spelling.
fn duplicates<'a>(
    kind: &str,
    names: impl Iterator<Item = &'a Located<String>>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut seen: Vec<&Located<String>> = Vec::new();
    for name in names {
        if let Some(first) = seen.iter().find(|f| f.value == name.value) {
            diagnostics.push(
                Diagnostic::error(
                    "spec::duplicate_name",
                    format!("{kind} `{}` is defined twice", name.value),
                )
                .at(name.span.clone())
                .note(format!("first defined at {}", first.span))
                .hint(format!("give each {kind} its own name")),
            );
        } else {
            seen.push(name);
        }
    }
}

/// Reports `reference` unless it is one of `names`, with a did-you-mean hint.
fn check_reference(
    reference: &Located<String>,
    kind: &str,
    names: &[Located<String>],
    diagnostics: &mut Vec<Diagnostic>,
    create: impl Fn(&str) -> String,
) {
    if names.iter().any(|n| n.value == reference.value) {
        return;
    }
    let mut diagnostic = Diagnostic::error(
        format!("spec::unknown_{kind}"),
        format!("unknown {kind} `{}`", reference.value),
    )
    .at(reference.span.clone());
    if let Some(suggestion) = suggest(&reference.value, names) {
        diagnostic = diagnostic.hint(format!("did you mean `{suggestion}`?"));
    } else if names.is_empty() {
        diagnostic = diagnostic.hint(create(&reference.value));
    } else {
        diagnostic = diagnostic.hint(format!("the {kind}s are {}", names_list(names)));
    }
    diagnostics.push(diagnostic);
}
