//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Declarative reverse ETL: SQL models in git, planned and applied to your CRM.
#[derive(Debug, Parser)]
#[command(name = "engine", version, about)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the project is.
#[derive(Debug, Args, Clone)]
pub struct ProjectArgs {
    /// The project directory (holds engine.yaml).
    #[arg(long, short = 'p', env = "ENGINE_PROJECT", default_value = ".")]
    pub project: PathBuf,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a project: engine.yaml, one model, one sync, a .gitignore and the editor schemas.
    /// Asks a few questions at a terminal; takes flags (and defaults) otherwise.
    Init(InitArgs),
    /// Print the JSON Schema of a spec file, for editors (yaml-language-server, VS Code), or
    /// write all three to a directory with `--out`.
    Schema {
        /// The file kind: `engine` (engine.yaml), `model` (models/*.yaml), `sync`
        /// (syncs/*.yaml).
        #[arg(value_enum)]
        kind: Option<SchemaKindArg>,
        /// The file kind, as an option.
        #[arg(long = "kind", value_enum, conflicts_with = "kind")]
        kind_flag: Option<SchemaKindArg>,
        /// Write engine.schema.json, model.schema.json and sync.schema.json into this
        /// directory (created if missing) instead of printing one schema.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["kind", "kind_flag"])]
        out: Option<PathBuf>,
    },
    /// Check the project's YAML, SQL, mappings and templates, without network.
    Validate {
        #[command(flatten)]
        project: ProjectArgs,
        /// Print diagnostics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what apply would change, without writing to any destination.
    Plan {
        #[command(flatten)]
        project: ProjectArgs,
        /// Only these syncs (repeatable).
        #[arg(long = "sync", short = 's')]
        syncs: Vec<String>,
        /// Save the plan to this file, for `engine apply FILE`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// How to print the plan: `text` for people, `json` (docs/plan-format.md), or
        /// `markdown`, a pull-request comment within GitHub's size limit (docs/operations.md).
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Print the plan as JSON: the same as `--format json`.
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Also write the plan as one self-contained HTML page to this file, for analysts:
        /// counts, guards, and a searchable table of the changed rows (docs/operations.md).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Exit 0 with no changes, 2 with changes, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Rows shown per sync in the human view, and per section of each sync in the
        /// markdown comment.
        #[arg(long, default_value_t = 20)]
        max_rows: usize,
    },
    /// Apply a saved plan, or plan and apply now.
    Apply {
        /// A plan saved with `engine plan --out FILE`.
        plan: Option<PathBuf>,
        #[command(flatten)]
        project: ProjectArgs,
        /// Only these syncs (repeatable; without a saved plan).
        #[arg(long = "sync", short = 's')]
        syncs: Vec<String>,
        /// Apply even when a sync's guards (`max_deletes`, `max_change_ratio`) are breached.
        #[arg(long)]
        override_guards: bool,
        /// Resend rows the destination rejected, even when their data has not changed since
        /// (without it they are held back and listed in the plan).
        #[arg(long)]
        retry_failed: bool,
    },
    /// Inspect or repair the state (`.engine/`).
    State {
        #[command(flatten)]
        project: ProjectArgs,
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Run history: recent runs, or one run's failed rows.
    Runs {
        #[command(flatten)]
        project: ProjectArgs,
        /// How many runs to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(subcommand)]
        command: Option<RunsCommand>,
    },
    /// Run a local API sandbox (no account, no network).
    Sandbox {
        /// Boxed: a sandbox's settings are larger than every other command's arguments.
        #[command(subcommand)]
        kind: Box<SandboxKind>,
    },
}

/// The spec file kinds `engine schema` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKindArg {
    /// engine.yaml.
    Engine,
    /// models/*.yaml.
    Model,
    /// syncs/*.yaml.
    Sync,
}

/// The destinations `engine init` can set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitDestination {
    /// HubSpot (a private-app token).
    Hubspot,
    /// Salesforce (a connected app's refresh token).
    Salesforce,
}

/// The warehouses `engine init --warehouse-env` can set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitWarehouse {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

/// `engine init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The project directory (created if missing; default: the current directory).
    pub dir: Option<PathBuf>,
    /// The project's name (default: the directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Where the rows go.
    #[arg(long, value_enum)]
    pub destination: Option<InitDestination>,
    /// The destination object (default: `contacts` for HubSpot, `Contact` for Salesforce).
    #[arg(long)]
    pub object: Option<String>,
    /// A CSV file the model reads (default: a small sample written to data/users.csv).
    #[arg(long, value_name = "PATH", conflicts_with = "warehouse_env")]
    pub csv: Option<PathBuf>,
    /// Run the model in a warehouse whose URL is in this environment variable, instead of
    /// over a CSV file.
    #[arg(long, value_name = "NAME")]
    pub warehouse_env: Option<String>,
    /// The kind of warehouse `--warehouse-env` points at.
    #[arg(long, value_enum, default_value_t = InitWarehouse::Postgres)]
    pub warehouse_type: InitWarehouse,
    /// The model's primary key column (default: `id` when the CSV has one, else its first
    /// column).
    #[arg(long)]
    pub key: Option<String>,
    /// The column holding the value records are matched on (default: `email` when the CSV has
    /// one, else the key).
    #[arg(long)]
    pub match_column: Option<String>,
    /// The destination property records are matched on (default: `email` for HubSpot
    /// contacts, `domain` for companies; an External ID field for Salesforce).
    #[arg(long)]
    pub match_property: Option<String>,
    /// Take the defaults for everything not given as a flag, without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// How `engine plan` prints the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Terraform-style text for people.
    Text,
    /// The plan document (docs/plan-format.md).
    Json,
    /// A pull-request comment (GitHub-flavoured markdown, at most 60,000 bytes).
    Markdown,
}

/// `engine state` subcommands.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Verify the state (database, generations, snapshots, locks) and report it, with its size
    /// by part; changes nothing.
    Check,
    /// Prune the state by `state.retention` in engine.yaml: run history beyond it, what
    /// finished runs no longer need, older snapshots, leftovers of crashed commands. Every
    /// apply prunes its own sync; this does the whole state on demand.
    Gc {
        /// Only show what would be removed, and how many bytes.
        #[arg(long)]
        dry_run: bool,
    },
    /// Rebuild a sync's snapshot from the destination's records (read by match value), shown
    /// as a plan; with `--apply` the rebuilt snapshot is committed as a new generation.
    Rebuild {
        /// The sync to rebuild.
        #[arg(long = "sync", short = 's')]
        sync: String,
        /// Commit the rebuilt snapshot (without it, only show what was found).
        #[arg(long)]
        apply: bool,
    },
    /// Move the state between `state.path` and the PostgreSQL schema `state.url` names (both
    /// from engine.yaml): lineage, generations and snapshots, run history, journal and pending
    /// rows. The target must be empty; the source is left as it was.
    Migrate {
        /// Where to move the state: `postgres` (from `state.path`) or `local` (into it).
        #[arg(long, value_enum)]
        to: MigrateTarget,
    },
}

/// The backends `engine state migrate --to` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MigrateTarget {
    /// The PostgreSQL schema of `state.url` / `state.schema`.
    Postgres,
    /// The directory `state.path`.
    Local,
}

/// `engine runs` subcommands.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run: counts and every row that failed, with the destination's message.
    Show {
        /// The run id (from `engine runs`).
        id: i64,
    },
}

/// The sandboxes.
#[derive(Debug, Subcommand)]
pub enum SandboxKind {
    /// A HubSpot-compatible CRM API (contacts, companies, deals, tickets, custom objects, schemas,
    /// properties), with HubSpot's rate limits and injectable faults.
    Hubspot {
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = 4010)]
        port: u16,
        /// The bearer token it accepts.
        #[arg(
            long,
            env = "SANDBOX_TOKEN",
            default_value = "sandbox-token",
            hide_env_values = true
        )]
        token: String,
        /// Rate limits and injected faults (all off by default).
        #[command(flatten)]
        limits: hubspot_sandbox::SandboxArgs,
    },
    /// A Salesforce-compatible API (OAuth token endpoint, describe, SOQL, sObject Collections,
    /// Bulk API 2.0 ingest), with the org's daily allocation and injectable faults.
    Salesforce {
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = 4020)]
        port: u16,
        /// An access token it accepts without the OAuth flow.
        #[arg(
            long,
            env = "SANDBOX_TOKEN",
            default_value = "sandbox-token",
            hide_env_values = true
        )]
        token: String,
        /// Credentials, allocation, token expiry and injected faults.
        #[command(flatten)]
        settings: salesforce_sandbox::SandboxArgs,
    },
}
