//! Validation: every check of a project that needs no network and no state, all problems at
//! once.

use std::path::Path;

use engine_diag::Diagnostic;
use engine_mapping::SyncMapping;
use engine_spec::Project;

use crate::{load_project, model_engine_readonly};

/// Validates the project in `dir`: the spec, unset `${env:…}` variables (warnings), every
/// model's SQL (a warehouse model's against its warehouse, or a warning when it cannot be
/// reached) and every sync's mapping against its model's schema. Returns the project when
/// it loaded, and every diagnostic found.
pub async fn validate(dir: &Path) -> (Option<Project>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let (project, warnings) = match load_project(dir) {
        Err(problems) => return (None, problems),
        Ok(loaded) => loaded,
    };
    diagnostics.extend(warnings);
    for destination in &project.destinations {
        for template in [&destination.token, &destination.base_url]
            .into_iter()
            .flatten()
        {
            for name in template.variables() {
                if std::env::var_os(&name).is_none() {
                    diagnostics.push(
                        Diagnostic::warning(
                            "spec::missing_env",
                            format!("environment variable `{name}` is not set"),
                        )
                        .at(template.span.clone())
                        .hint(format!(
                            "set `{name}` before `engine plan` or `engine apply`"
                        )),
                    );
                }
            }
        }
    }
    match model_engine_readonly(&project).await {
        Err(problems) => diagnostics.extend(problems),
        Ok(engine) => {
            let mut schemas = std::collections::HashMap::new();
            for model in &project.models {
                match engine.schema(model).await {
                    Ok(schema) => {
                        schemas.insert(model.name.value.clone(), schema);
                    }
                    // A warehouse out of reach (no VPN, a laptop) is said plainly, and the
                    // rest of the project is still validated.
                    Err(d) if engine_models::is_unreachable(&d) => {
                        diagnostics.push(unchecked_model(model, d));
                    }
                    Err(d) => diagnostics.push(d),
                }
            }
            for sync in &project.syncs {
                let Some(model) = project.model(&sync.model.value) else {
                    continue;
                };
                let Some(schema) = schemas.get(&model.name.value) else {
                    continue;
                };
                if let Err(problems) = SyncMapping::compile(sync, &model.primary_key, schema) {
                    diagnostics.extend(problems);
                }
            }
        }
    }
    (Some(project), diagnostics)
}

/// The warning for a warehouse model whose source could not be reached: its SQL and the
/// mappings of its syncs were not checked.
fn unchecked_model(model: &engine_spec::ModelSpec, unreachable: Diagnostic) -> Diagnostic {
    let source = model.source.as_ref().map_or("", |s| s.value.as_str());
    let mut warning = Diagnostic::warning(
        "source::not_checked",
        format!(
            "model `{}` was not checked: source `{source}` cannot be reached from here",
            model.name.value
        ),
    )
    .note(unreachable.message.clone());
    if let Some(location) = unreachable.location.clone() {
        warning.location = Some(location);
    }
    warning
        .note("its SQL and the mappings of the syncs reading it are checked when the warehouse can be reached (by `engine validate` there, and by every `engine plan`)")
        .hint("run `engine validate` where the warehouse is reachable (CI, a VPN), or fix the source's `url`")
}
