//! `engine plan`: what apply would do, without writing to any destination.

use std::path::Path;

use engine_diag::Diagnostic;
use engine_plan::{FORMAT_VERSION, HumanOptions, render_human};
use engine_sync::Registry;

use crate::report::CliReporter;
use crate::views;

pub async fn run(
    dir: &Path,
    syncs: &[String],
    out: Option<&Path>,
    json: bool,
    detailed_exitcode: bool,
    max_rows: usize,
) -> u8 {
    let fail = |problems: &[Diagnostic]| {
        views::diagnostics(problems, dir);
        if json {
            views::error_document_json(FORMAT_VERSION, problems);
        }
        1
    };
    let plan = match engine_sync::load_project(dir) {
        Err(problems) => Err(problems),
        Ok((project, _)) => {
            let reporter = CliReporter::new(project.root.clone());
            engine_sync::plan_project(&Registry::default(), &project, syncs, &reporter).await
        }
    };
    match plan {
        Err(problems) => fail(&problems),
        Ok(mut planned) => {
            if out.is_none() && json {
                planned.seal();
            }
            if let Some(path) = out
                && let Err(e) = planned.save(path)
            {
                let hint = if engine_state::disk::is_disk_full(&e) {
                    "the disk holding it is full: free space there, or save the plan on another disk"
                } else {
                    "check that the directory exists and is writable"
                };
                return fail(&[Diagnostic::error(
                    "plan::unwritable",
                    format!("cannot write the plan to `{}`: {e}", path.display()),
                )
                .hint(hint)]);
            }
            let plan = &planned.plan;
            if json {
                views::out_with(|out| plan.write_json(out));
            } else {
                views::out(&render_human(plan, HumanOptions { max_rows }));
                if let Some(path) = out {
                    views::out(&format!(
                        "\nSaved the plan to `{}`; apply it with `engine apply {}`.\n",
                        path.display(),
                        path.display()
                    ));
                }
            }
            if detailed_exitcode && !plan.is_empty() {
                2
            } else {
                0
            }
        }
    }
}
