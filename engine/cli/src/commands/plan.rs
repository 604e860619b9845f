//! `engine plan`: what apply would do, without writing to any destination.

use std::path::Path;

use engine_diag::Diagnostic;
use engine_plan::{
    FORMAT_VERSION, HtmlOptions, HumanOptions, MarkdownOptions, Plan, UNREADABLE_CHANGES,
    render_human, render_markdown, render_markdown_failure, write_html,
};
use engine_sync::Registry;

use crate::args::PlanFormat;
use crate::report::CliReporter;
use crate::views;

/// What `engine plan` was asked to do with the plan.
pub struct PlanOptions<'a> {
    /// `--out`: save the plan for `engine apply FILE`.
    pub out: Option<&'a Path>,
    /// `--format` (or `--json`).
    pub format: PlanFormat,
    /// `--html`: also write the analysts' page.
    pub html: Option<&'a Path>,
    /// `--detailed-exitcode`: exit 2 when there are changes.
    pub detailed_exitcode: bool,
    /// `--max-rows`.
    pub max_rows: usize,
}

pub async fn run(dir: &Path, syncs: &[String], options: PlanOptions<'_>) -> u8 {
    let format = options.format;
    let fail = |problems: &[Diagnostic]| {
        views::diagnostics(problems, dir);
        match format {
            PlanFormat::Json => views::error_document_json(FORMAT_VERSION, problems),
            PlanFormat::Markdown => views::out(&render_markdown_failure(problems)),
            PlanFormat::Text => {}
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
            if options.out.is_none() && format == PlanFormat::Json {
                planned.seal();
            }
            if let Some(path) = options.out
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
            if let Some(path) = options.html
                && let Err(problem) = save_html(plan, path)
            {
                return fail(&[problem]);
            }
            match format {
                PlanFormat::Json => views::out_with(|out| plan.write_json(out)),
                PlanFormat::Markdown => views::out(&render_markdown(
                    plan,
                    MarkdownOptions {
                        max_rows: options.max_rows,
                        ..MarkdownOptions::default()
                    },
                )),
                PlanFormat::Text => {
                    views::out(&render_human(
                        plan,
                        HumanOptions {
                            max_rows: options.max_rows,
                        },
                    ));
                    if let Some(path) = options.out {
                        views::out(&format!(
                            "\nSaved the plan to `{}`; apply it with `engine apply {}`.\n",
                            path.display(),
                            path.display()
                        ));
                    }
                    if let Some(path) = options.html {
                        views::out(&format!(
                            "Wrote the plan's page to `{}`; open it in a browser.\n",
                            path.display()
                        ));
                    }
                }
            }
            if options.detailed_exitcode && !plan.is_empty() {
                2
            } else {
                0
            }
        }
    }
}

/// Writes the HTML page beside `path` and renames it into place, so a reader never sees a
/// half-written page; on failure nothing is left behind.
fn save_html(plan: &Plan, path: &Path) -> Result<(), Diagnostic> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let partial = path.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let written = fs_err::File::create(&partial)
        .and_then(|file| write_html(plan, HtmlOptions::default(), file))
        .and_then(|()| fs_err::rename(&partial, path));
    written.map_err(|e| {
        let _ = fs_err::remove_file(&partial);
        let hint = if e.to_string().starts_with(UNREADABLE_CHANGES) {
            "the plan's change files under the state directory could not be read: run `engine state check`, then plan again"
        } else if engine_state::disk::is_disk_full(&e) {
            "the disk holding it is full: free space there, or write the page to another disk"
        } else if path.is_dir() {
            "`--html` takes a file name, such as `plan.html`, not a directory"
        } else {
            "create the directory, or pass a writable path to `--html`"
        };
        Diagnostic::error(
            "plan::html_unwritable",
            format!("cannot write the plan's page to `{}`: {e}", path.display()),
        )
        .hint(hint)
    })
}
