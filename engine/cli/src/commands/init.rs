//! `engine init`: a new project that passes `engine validate` as written. At a terminal it
//! asks a few questions (each with a default); otherwise, or with `--yes`, flags and defaults
//! decide. It never overwrites a file: every file it would write is checked first, and the
//! command refuses naming the ones that exist.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use engine_spec::SchemaKind;

use crate::args::{InitArgs, InitDestination, InitWarehouse};
use crate::commands::schema;
use crate::views;

/// The directory `engine init` fills with the JSON Schemas the files' modelines point at.
const SCHEMA_DIR: &str = ".engine-schema";

/// The sample written when no CSV is given.
const SAMPLE_CSV: &str = "\
id,email,first_name,last_name,phone
1,ada@example.com,Ada,Lovelace,+44 20 7946 0001
2,grace@example.com,Grace,Hopper,+1 212 555 0102
3,linus@example.com,Linus,Torvalds,
";

/// Where the model's rows come from.
enum Data {
    /// `data/users.csv`, written by init.
    Sample,
    /// A CSV file the user named: its path as written in engine.yaml, its table name and its
    /// columns.
    Csv {
        path: String,
        table: String,
        columns: Vec<String>,
    },
    /// A warehouse whose URL is in an environment variable.
    Warehouse { env: String, kind: InitWarehouse },
}

/// Everything the files are written from.
struct Answers {
    name: String,
    destination: InitDestination,
    object: String,
    data: Data,
    key: String,
    match_column: String,
    match_property: String,
}

pub fn run(args: &InitArgs) -> u8 {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    if dir.exists() && !dir.is_dir() {
        views::error_line(&format!(
            "error: `{}` is a file, not a directory\n  = hint: name a new or existing directory: `engine init my-project`",
            dir.display()
        ));
        return 1;
    }
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut prompt = Prompt::new(!args.yes && std::io::stdin().is_terminal(), &mut input);
    let answers = match answers(args, &dir, &mut prompt) {
        Ok(answers) => answers,
        Err(message) => {
            views::error_line(&format!("error: {message}"));
            return 1;
        }
    };
    let files = files(&answers);
    let existing: Vec<String> = files
        .iter()
        .map(|(path, _)| path)
        .chain(std::iter::once(&PathBuf::from(SCHEMA_DIR)))
        .filter(|path| dir.join(path).exists())
        .map(|path| format!("`{}`", dir.join(path).display()))
        .collect();
    if !existing.is_empty() {
        views::error_line(&format!(
            "error: {} already exist{}; `engine init` never overwrites files\n  = hint: run `engine init NEW_DIR` to create the project elsewhere, or remove {}",
            existing.join(", "),
            if existing.len() == 1 { "s" } else { "" },
            if existing.len() == 1 { "it" } else { "them" },
        ));
        return 1;
    }
    match write(&dir, &files) {
        Ok(()) => {
            views::status(&next_steps(&dir, &answers));
            0
        }
        Err(message) => {
            views::error_line(&format!("error: {message}"));
            1
        }
    }
}

/// Questions at a terminal (asked on stderr, answered on `input`); defaults elsewhere.
struct Prompt<'i> {
    interactive: bool,
    input: &'i mut dyn BufRead,
}

impl<'i> Prompt<'i> {
    fn new(interactive: bool, input: &'i mut dyn BufRead) -> Prompt<'i> {
        Prompt { interactive, input }
    }

    /// `given` when a flag gave it; else the answer to `question` (empty: `default`), or
    /// `default` when not at a terminal.
    fn ask(&mut self, given: Option<&str>, question: &str, default: &str) -> String {
        if let Some(given) = given {
            return given.to_string();
        }
        if !self.interactive {
            return default.to_string();
        }
        let mut stderr = std::io::stderr().lock();
        let _ = if default.is_empty() {
            write!(stderr, "{question}: ")
        } else {
            write!(stderr, "{question} [{default}]: ")
        };
        let _ = stderr.flush();
        let mut line = String::new();
        match self.input.read_line(&mut line) {
            Ok(0) | Err(_) => {
                // End of input: take the defaults from here on.
                self.interactive = false;
                default.to_string()
            }
            Ok(_) if line.trim().is_empty() => default.to_string(),
            Ok(_) => line.trim().to_string(),
        }
    }

    /// Asks until `check` accepts the answer; with a flag or without a terminal, a refused
    /// answer is the error.
    fn ask_valid(
        &mut self,
        given: Option<&str>,
        question: &str,
        default: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Result<String, String> {
        loop {
            let from_flag = given.is_some();
            let answer = self.ask(given, question, default);
            match check(&answer) {
                Ok(()) => return Ok(answer),
                Err(message) if self.interactive && !from_flag => {
                    views::error_line(&format!("  {message}"));
                }
                Err(message) => return Err(message),
            }
        }
    }
}

fn answers(args: &InitArgs, dir: &Path, prompt: &mut Prompt<'_>) -> Result<Answers, String> {
    let default_name = dir
        .canonicalize()
        .ok()
        .or_else(|| Some(dir.to_path_buf()))
        .and_then(|d| {
            d.file_name()
                .map(|n| identifier(&n.to_string_lossy(), false))
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "my-project".to_string());
    let name = prompt.ask_valid(args.name.as_deref(), "Project name", &default_name, |n| {
        check_name(n, "project")
    })?;
    let destination = match args.destination {
        Some(d) => d,
        None => {
            let answer = prompt.ask_valid(
                None,
                "Destination (hubspot, salesforce)",
                "hubspot",
                |d| match d {
                    "hubspot" | "salesforce" => Ok(()),
                    _ => Err(format!(
                        "unknown destination `{d}`: answer `hubspot` or `salesforce`"
                    )),
                },
            )?;
            if answer == "salesforce" {
                InitDestination::Salesforce
            } else {
                InitDestination::Hubspot
            }
        }
    };
    let default_object = match destination {
        InitDestination::Hubspot => "contacts",
        InitDestination::Salesforce => "Contact",
    };
    let object = prompt.ask_valid(
        args.object.as_deref(),
        "Destination object",
        default_object,
        |o| non_empty(o, "the object"),
    )?;
    let data = data(args, dir, prompt)?;
    let columns: Vec<String> = match &data {
        Data::Sample => SAMPLE_CSV
            .lines()
            .next()
            .unwrap_or_default()
            .split(',')
            .map(str::to_string)
            .collect(),
        Data::Csv { columns, .. } => columns.iter().map(|c| identifier(c, true)).collect(),
        Data::Warehouse { .. } => ["id", "email", "first_name", "last_name"]
            .map(str::to_string)
            .to_vec(),
    };
    // A warehouse's columns are not known before its SQL runs: any name goes.
    let any_column = matches!(data, Data::Warehouse { .. });
    let column_check = |what: &'static str| {
        let columns = columns.clone();
        move |c: &str| {
            if any_column || columns.iter().any(|k| k == c) {
                non_empty(c, what)
            } else {
                Err(format!(
                    "the data has no column `{c}`; its columns are {}",
                    columns
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
    };
    let default_key = if columns.iter().any(|c| c == "id") {
        "id".to_string()
    } else {
        columns.first().cloned().unwrap_or_else(|| "id".to_string())
    };
    let key = prompt.ask_valid(
        args.key.as_deref(),
        "Key column (identifies a row)",
        &default_key,
        column_check("the key column"),
    )?;
    // HubSpot matches contacts by email; a Salesforce upsert goes by an External ID field,
    // which usually holds the row's key.
    let default_match = match destination {
        InitDestination::Hubspot => columns.iter().find(|c| is_email(c)).cloned(),
        InitDestination::Salesforce => None,
    }
    .unwrap_or_else(|| key.clone());
    let match_column = prompt.ask_valid(
        args.match_column.as_deref(),
        "Match column (its value finds the destination record)",
        &default_match,
        column_check("the match column"),
    )?;
    let default_property = match (destination, object.as_str()) {
        (InitDestination::Hubspot, "contacts" | "contact") => "email".to_string(),
        (InitDestination::Hubspot, "companies" | "company") => "domain".to_string(),
        (InitDestination::Hubspot, _) => match_column.clone(),
        (InitDestination::Salesforce, _) => "External_Id__c".to_string(),
    };
    let match_property = prompt.ask_valid(
        args.match_property.as_deref(),
        "Match property (a unique property of the destination object)",
        &default_property,
        |p| non_empty(p, "the match property"),
    )?;
    Ok(Answers {
        name,
        destination,
        object,
        data,
        key,
        match_column,
        match_property,
    })
}

/// `--csv`, `--warehouse-env`, or the question "CSV file, `env:NAME` or nothing".
fn data(args: &InitArgs, dir: &Path, prompt: &mut Prompt<'_>) -> Result<Data, String> {
    if let Some(env) = &args.warehouse_env {
        check_env_name(env)?;
        return Ok(Data::Warehouse {
            env: env.clone(),
            kind: args.warehouse_type,
        });
    }
    let answer = match &args.csv {
        Some(path) => path.display().to_string(),
        None => prompt.ask_valid(
            None,
            "Data: a CSV file, `env:NAME` for a warehouse URL in variable NAME, or empty for a sample",
            "",
            |a| match a.strip_prefix("env:") {
                Some(env) => check_env_name(env),
                None if a.is_empty() || Path::new(a).is_file() => Ok(()),
                None => Err(format!("no file `{a}`")),
            },
        )?,
    };
    if answer.is_empty() {
        return Ok(Data::Sample);
    }
    if let Some(env) = answer.strip_prefix("env:") {
        return Ok(Data::Warehouse {
            env: env.to_string(),
            kind: args.warehouse_type,
        });
    }
    let path = PathBuf::from(&answer);
    let columns = csv_columns(&path)?;
    let stem = path
        .file_stem()
        .map(|s| identifier(&s.to_string_lossy(), true))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "rows".to_string());
    // engine.yaml's paths are relative to the project directory: a file inside it is written
    // relative to it (the project moves with its data), any other as an absolute path.
    let absolute = std::path::absolute(&path).unwrap_or(path);
    let inside = std::path::absolute(dir)
        .ok()
        .and_then(|dir| absolute.strip_prefix(dir).ok().map(Path::to_path_buf));
    Ok(Data::Csv {
        path: inside.unwrap_or(absolute).display().to_string(),
        table: stem,
        columns,
    })
}

/// The header of a CSV file.
fn csv_columns(path: &Path) -> Result<Vec<String>, String> {
    let file = fs_err::File::open(path).map_err(|e| {
        format!("{e}\n  = hint: pass an existing CSV file with `--csv PATH`, or leave it out for sample data")
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(file);
    let headers = reader.headers().map_err(|e| {
        format!(
            "cannot read the header line of `{}`: {e}\n  = hint: the first line must name the columns",
            path.display()
        )
    })?;
    let columns: Vec<String> = headers.iter().map(|h| h.trim().to_string()).collect();
    if columns.iter().all(String::is_empty) {
        return Err(format!(
            "`{}` has no header line\n  = hint: the first line must name the columns, e.g. `id,email,first_name`",
            path.display()
        ));
    }
    Ok(columns)
}

fn check_name(name: &str, what: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= engine_spec::MAX_NAME_LENGTH;
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} name `{name}`: use ASCII letters, digits, `_` and `-`, starting with a letter or `_`"
        ))
    }
}

fn check_env_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid environment variable name `{name}`: use letters, digits and `_`, e.g. `WAREHOUSE_URL`"
        ))
    }
}

fn non_empty(value: &str, what: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err(format!("{what} must not be empty"))
    } else {
        Ok(())
    }
}

/// A name from free text: lowercase SQL identifier (`sql`) or a project name.
fn identifier(text: &str, sql: bool) -> String {
    let mut out: String = text
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                if sql { c.to_ascii_lowercase() } else { c }
            } else if c == '-' && !sql {
                '-'
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        out.insert(0, '_');
    }
    out
}

/// True for a column that holds e-mail addresses, by its name (`email`, `e_mail`, …).
fn is_email(column: &str) -> bool {
    column
        .replace('_', "")
        .to_ascii_lowercase()
        .contains("email")
}

/// A column of the CSV as written in SQL: quoted unless a plain lowercase identifier.
fn sql_column(column: &str) -> String {
    let plain = column
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && column
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        column.to_string()
    } else {
        format!("\"{}\"", column.replace('"', "\"\""))
    }
}

/// Destination properties for well-known column names.
fn known_property(
    destination: InitDestination,
    object: &str,
    column: &str,
) -> Option<&'static str> {
    let column = column.replace('_', "");
    match (destination, object) {
        (InitDestination::Hubspot, "contacts" | "contact") => match column.as_str() {
            "firstname" | "first" => Some("firstname"),
            "lastname" | "last" | "surname" => Some("lastname"),
            "phone" | "phonenumber" => Some("phone"),
            "company" | "companyname" => Some("company"),
            "jobtitle" | "title" => Some("jobtitle"),
            "city" => Some("city"),
            "country" => Some("country"),
            "website" => Some("website"),
            "email" => Some("email"),
            _ => None,
        },
        (InitDestination::Hubspot, "companies" | "company") => match column.as_str() {
            "name" | "companyname" => Some("name"),
            "domain" | "website" => Some("domain"),
            "city" => Some("city"),
            "country" => Some("country"),
            "phone" => Some("phone"),
            _ => None,
        },
        (InitDestination::Salesforce, "Contact" | "Lead") => match column.as_str() {
            "firstname" | "first" => Some("FirstName"),
            "lastname" | "last" | "surname" => Some("LastName"),
            "phone" => Some("Phone"),
            "email" => Some("Email"),
            "title" | "jobtitle" => Some("Title"),
            _ => None,
        },
        _ => None,
    }
}

/// The files to write: path relative to the project directory, and contents.
fn files(a: &Answers) -> Vec<(PathBuf, String)> {
    let (table, columns): (String, Vec<(String, String)>) = match &a.data {
        Data::Sample => (
            "users".into(),
            SAMPLE_CSV
                .lines()
                .next()
                .unwrap_or_default()
                .split(',')
                .map(|c| (c.to_string(), c.to_string()))
                .collect(),
        ),
        Data::Csv { table, columns, .. } => (
            table.clone(),
            columns
                .iter()
                .map(|c| (sql_column(c), identifier(c, true)))
                .collect(),
        ),
        Data::Warehouse { .. } => (
            "users".into(),
            ["id", "email", "first_name", "last_name"]
                .iter()
                .map(|c| (c.to_string(), c.to_string()))
                .collect(),
        ),
    };
    let model = identifier(&table, true);
    let destination = match a.destination {
        InitDestination::Hubspot => "hubspot",
        InitDestination::Salesforce => "salesforce",
    };
    let sync = format!("{model}_to_{destination}");
    let mut out = vec![
        (PathBuf::from("engine.yaml"), engine_yaml(a, &table)),
        (
            PathBuf::from(format!("models/{model}.yaml")),
            model_yaml(a, &model, &table, &columns),
        ),
        (
            PathBuf::from(format!("syncs/{sync}.yaml")),
            sync_yaml(a, &sync, &model, destination, &columns),
        ),
    ];
    if matches!(a.data, Data::Sample) {
        out.push((PathBuf::from("data/users.csv"), SAMPLE_CSV.to_string()));
    }
    out
}

fn engine_yaml(a: &Answers, table: &str) -> String {
    let mut text = format!(
        "# yaml-language-server: $schema={SCHEMA_DIR}/engine.schema.json\n\
         # The project: where state lives, the data models read, and the destinations syncs\n\
         # write to (docs/spec.md). Secrets come from the environment: `${{env:NAME}}`.\n\
         version: 1\nproject: {}\n\n\
         state:\n  \
         # Plans, snapshots and run history (ignored by git); `backend: postgres` shares\n  \
         # them between machines (docs/state.md).\n  \
         path: .engine\n  retention:\n    runs: 100\n    days: 90\n",
        a.name
    );
    match &a.data {
        Data::Sample => text.push_str(&format!(
            "\ntables:\n  {table}:\n    path: data/users.csv\n"
        )),
        Data::Csv { path, .. } => text.push_str(&format!(
            "\ntables:\n  {table}:\n    path: {}\n",
            yaml_string(path)
        )),
        Data::Warehouse { env, kind } => {
            let kind = match kind {
                InitWarehouse::Postgres => "postgres",
                InitWarehouse::Mysql => "mysql",
            };
            text.push_str(&format!(
                "\nsources:\n  warehouse:\n    type: {kind}\n    url: \"${{env:{env}}}\"\n"
            ));
        }
    }
    match a.destination {
        InitDestination::Hubspot => text.push_str(
            "\ndestinations:\n  hubspot:\n    type: hubspot\n    \
             # https://api.hubapi.com for your portal, or the URL `engine sandbox hubspot` prints.\n    \
             base_url: \"${env:HUBSPOT_BASE_URL}\"\n    \
             # A private app's access token.\n    \
             token: \"${env:HUBSPOT_TOKEN}\"\n",
        ),
        InitDestination::Salesforce => text.push_str(
            "\ndestinations:\n  salesforce:\n    type: salesforce\n    \
             # `login` (production), `test` (sandbox orgs), your My Domain URL, or the URL\n    \
             # `engine sandbox salesforce` prints.\n    \
             login: \"${env:SALESFORCE_LOGIN_URL}\"\n    \
             auth:\n      \
             consumer_key: \"${env:SALESFORCE_CONSUMER_KEY}\"\n      \
             consumer_secret: \"${env:SALESFORCE_CONSUMER_SECRET}\"\n      \
             refresh_token: \"${env:SALESFORCE_REFRESH_TOKEN}\"\n",
        ),
    }
    text
}

fn model_yaml(a: &Answers, model: &str, table: &str, columns: &[(String, String)]) -> String {
    let mut text = format!(
        "# yaml-language-server: $schema=../{SCHEMA_DIR}/model.schema.json\n\
         name: {model}\nprimary_key: [{}]\n",
        a.key
    );
    if matches!(a.data, Data::Warehouse { .. }) {
        text.push_str(
            "# Runs in the warehouse, in its own SQL dialect: edit the table and columns.\n\
             source: warehouse\n",
        );
    }
    let select: Vec<String> = columns
        .iter()
        .map(|(sql, name)| {
            let expr = if *name == a.match_column && is_email(name) {
                format!("lower({sql})")
            } else {
                sql.clone()
            };
            if expr == *name {
                expr
            } else {
                format!("{expr} AS {name}")
            }
        })
        .collect();
    text.push_str(&format!(
        "sql: |\n  SELECT {}\n  FROM {}\n",
        select.join(",\n         "),
        sql_column(table)
    ));
    text
}

fn sync_yaml(
    a: &Answers,
    sync: &str,
    model: &str,
    destination: &str,
    columns: &[(String, String)],
) -> String {
    let mut text = format!(
        "# yaml-language-server: $schema=../{SCHEMA_DIR}/sync.schema.json\n\
         name: {sync}\nmodel: {model}\ndestination: {destination}\nobject: {}\nmode: upsert\n\
         match:\n  property: {}\n  column: {}\n",
        yaml_string(&a.object),
        yaml_string(&a.match_property),
        a.match_column
    );
    let mut mapped = Vec::new();
    let mut unmapped = Vec::new();
    for (_, column) in columns {
        if *column == a.match_column {
            continue;
        }
        match known_property(a.destination, &a.object, column) {
            Some(property) if property != a.match_property => mapped.push((property, column)),
            Some(_) => {}
            None if *column != a.key => unmapped.push(column),
            None => {}
        }
    }
    if mapped.is_empty() {
        text.push_str("mapping: []\n");
    } else {
        text.push_str("mapping:\n");
        for (property, column) in &mapped {
            text.push_str(&format!("  - property: {property}\n    column: {column}\n"));
        }
    }
    if !unmapped.is_empty() {
        text.push_str(
            "  # Columns without a known property: name the destination property to map them.\n",
        );
        for column in unmapped {
            text.push_str(&format!(
                "  # - property: {column}\n  #   column: {column}\n"
            ));
        }
    }
    text.push_str(
        "# When a row leaves the model: `nothing`, `clear_fields` or `delete`.\non_remove: nothing\n\
         # Refuse an apply that would remove too many records at once (with `on_remove: delete`):\n\
         # guards:\n#   max_deletes: 10\n",
    );
    text
}

/// A YAML scalar: plain when safe, else double-quoted.
fn yaml_string(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.'))
        && !text.starts_with(['-', '.']);
    if plain {
        text.to_string()
    } else {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn write(dir: &Path, files: &[(PathBuf, String)]) -> Result<(), String> {
    for (path, contents) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        // `create_new`: a file that appeared since the check is not overwritten either.
        let mut file = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| e.to_string())?;
        file.write_all(contents.as_bytes())
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    }
    schema::write_all(&dir.join(SCHEMA_DIR))?;
    gitignore(dir)
}

/// `.engine/` in `.gitignore`: a new file, or a line added to the one there.
fn gitignore(dir: &Path) -> Result<(), String> {
    let path = dir.join(".gitignore");
    let current = match fs_err::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e.to_string()),
    };
    if current
        .lines()
        .any(|l| matches!(l.trim(), ".engine/" | ".engine" | "/.engine/" | "/.engine"))
    {
        return Ok(());
    }
    let mut file = fs_err::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|e| e.to_string())?;
    let separator = if current.is_empty() || current.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    file.write_all(
        format!("{separator}# engine's state: plans, snapshots, run history\n.engine/\n")
            .as_bytes(),
    )
    .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

fn next_steps(dir: &Path, a: &Answers) -> String {
    let p = if dir == Path::new(".") {
        String::new()
    } else {
        format!(" -p {}", dir.display())
    };
    let secrets = match a.destination {
        InitDestination::Hubspot => {
            "export HUBSPOT_BASE_URL=https://api.hubapi.com HUBSPOT_TOKEN=…   # or `engine sandbox hubspot`"
        }
        InitDestination::Salesforce => {
            "export SALESFORCE_LOGIN_URL=login SALESFORCE_CONSUMER_KEY=… SALESFORCE_CONSUMER_SECRET=… SALESFORCE_REFRESH_TOKEN=…"
        }
    };
    let warehouse = match &a.data {
        Data::Warehouse { env, .. } => format!("\n  export {env}=postgres://…"),
        _ => String::new(),
    };
    let schemas: Vec<String> = SchemaKind::ALL
        .iter()
        .map(|k| format!("{SCHEMA_DIR}/{}", k.file_name()))
        .collect();
    format!(
        "Created the project `{}` in {} (editor schemas in {}).\n\nNext:\n  engine validate{p}\n  {secrets}{warehouse}\n  engine plan{p}",
        a.name,
        dir.display(),
        schemas.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn flags() -> InitArgs {
        InitArgs {
            dir: None,
            name: None,
            destination: None,
            object: None,
            csv: None,
            warehouse_env: None,
            warehouse_type: InitWarehouse::Postgres,
            key: None,
            match_column: None,
            match_property: None,
            yes: false,
        }
    }

    /// The answers to `typed` (one line per question) at a terminal.
    fn interactive(args: &InitArgs, typed: &str) -> Result<Answers, String> {
        let mut input = Cursor::new(typed.to_string());
        let mut prompt = Prompt::new(true, &mut input);
        answers(args, Path::new("acme-crm"), &mut prompt)
    }

    #[test]
    fn enter_takes_every_default() {
        let a = interactive(&flags(), "\n\n\n\n\n\n\n").expect("the defaults are valid");
        assert_eq!(a.name, "acme-crm");
        assert_eq!(a.destination, InitDestination::Hubspot);
        assert_eq!(a.object, "contacts");
        assert!(matches!(a.data, Data::Sample));
        assert_eq!((a.key.as_str(), a.match_column.as_str()), ("id", "email"));
        assert_eq!(a.match_property, "email");
    }

    #[test]
    fn a_refused_answer_is_asked_again_and_flags_are_not_asked() {
        let args = InitArgs {
            object: Some("Lead".into()),
            ..flags()
        };
        // A bad name, then a good one; a bad destination, then salesforce; the warehouse; a
        // key; Enter for the match column (the key) and the property.
        let typed = "9lives\nnine-lives\npipedrive\nsalesforce\nenv:DW_URL\nlead_id\n\n\n";
        let a = interactive(&args, typed).expect("valid in the end");
        assert_eq!(a.name, "nine-lives");
        assert_eq!(a.destination, InitDestination::Salesforce);
        assert_eq!(a.object, "Lead");
        assert!(matches!(&a.data, Data::Warehouse { env, .. } if env == "DW_URL"));
        assert_eq!(
            (a.key.as_str(), a.match_column.as_str()),
            ("lead_id", "lead_id")
        );
        assert_eq!(a.match_property, "External_Id__c");
    }

    #[test]
    fn the_end_of_input_takes_the_defaults_from_there() {
        let a = interactive(&flags(), "shop\n").expect("defaults after the end of input");
        assert_eq!(a.name, "shop");
        assert_eq!(a.destination, InitDestination::Hubspot);
    }

    #[test]
    fn without_a_terminal_a_bad_flag_is_the_error() {
        let args = InitArgs {
            name: Some("has space".into()),
            ..flags()
        };
        let mut input = Cursor::new(String::new());
        let mut prompt = Prompt::new(false, &mut input);
        let error = answers(&args, Path::new("x"), &mut prompt)
            .err()
            .expect("a bad name is refused");
        assert!(
            error.contains("invalid project name `has space`"),
            "{error}"
        );
    }

    #[test]
    fn column_names_become_sql_identifiers() {
        assert_eq!(identifier("First Name", true), "first_name");
        assert_eq!(identifier("2024 sales", true), "_2024_sales");
        assert_eq!(identifier("My Project", false), "My_Project");
        assert_eq!(sql_column("First Name"), "\"First Name\"");
        assert_eq!(sql_column("email"), "email");
        assert_eq!(yaml_string("a: b"), "\"a: b\"");
        assert!(is_email("E-mail".replace('-', "_").as_str()));
    }
}
