//! `engine validate`: every check that needs no network, all problems at once.

use std::path::Path;

use engine_diag::{Diagnostic, Severity};
use engine_mapping::SyncMapping;

use crate::{context, views};

pub async fn run(dir: &Path, json: bool) -> u8 {
    let mut diagnostics = Vec::new();
    match context::load_project(dir) {
        Err(problems) => diagnostics.extend(problems),
        Ok((project, warnings)) => {
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
            match context::model_engine_readonly(&project).await {
                Err(problems) => diagnostics.extend(problems),
                Ok(engine) => {
                    let mut schemas = std::collections::HashMap::new();
                    for model in &project.models {
                        match engine.schema(model).await {
                            Ok(schema) => {
                                schemas.insert(model.name.value.clone(), schema);
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
                        if let Err(problems) =
                            SyncMapping::compile(sync, &model.primary_key, schema)
                        {
                            diagnostics.extend(problems);
                        }
                    }
                }
            }
            if !diagnostics.iter().any(Diagnostic::is_error) && !json {
                views::status(&format!(
                    "The project `{}` is valid: {} table(s), {} model(s), {} sync(s).",
                    project.name,
                    project.tables.len(),
                    project.models.len(),
                    project.syncs.len()
                ));
            }
        }
    }
    let failed = diagnostics.iter().any(|d| d.severity == Severity::Error);
    if json {
        views::diagnostics_json(&diagnostics);
    } else {
        views::diagnostics(&diagnostics, dir);
    }
    u8::from(failed)
}
