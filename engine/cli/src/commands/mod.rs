//! One module per command; each returns the process exit code.

mod apply;
mod init;
mod plan;
mod runs;
mod sandbox;
mod schema;
mod state;
mod validate;

use crate::args::{Cli, Command, PlanFormat};

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Init(args) => init::run(&args),
        Command::Schema {
            kind,
            kind_flag,
            out,
        } => schema::run(kind.or(kind_flag), out.as_deref()),
        Command::Validate { project, json } => validate::run(&project.project, json).await,
        Command::Plan {
            project,
            syncs,
            out,
            format,
            json,
            html,
            detailed_exitcode,
            max_rows,
        } => {
            let options = plan::PlanOptions {
                out: out.as_deref(),
                format: if json { PlanFormat::Json } else { format },
                html: html.as_deref(),
                detailed_exitcode,
                max_rows,
            };
            plan::run(&project.project, &syncs, options).await
        }
        Command::Apply {
            plan,
            project,
            syncs,
            override_guards,
            retry_failed,
        } => {
            let options = engine_sync::ApplyOptions {
                override_guards,
                retry_failed,
                progress: engine_executor::ProgressMode::Hidden,
            };
            apply::run(&project.project, plan.as_deref(), &syncs, options).await
        }
        Command::State { project, command } => state::run(&project.project, command).await,
        Command::Runs {
            project,
            limit,
            command,
        } => runs::run(&project.project, limit, command),
        Command::Sandbox { kind } => sandbox::run(*kind).await,
    }
}
