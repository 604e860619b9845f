//! The harness: a temporary project, an in-process HubSpot sandbox on a free port, and the
//! real `engine` binary run as a child process against both.
//!
//! Every test owns one [`TestProject`] (its own directory, sandbox and state), so tests run in
//! parallel threads without sharing anything. Commands run with a clean environment for the
//! engine's knobs: `HUBSPOT_BASE_URL` and `HUBSPOT_TOKEN` point at the test's sandbox, and
//! nothing inherited from the developer's shell (`RUST_LOG`, `ENGINE_*`, `GITHUB_ACTIONS`)
//! changes the output.
//!
//! Secrets: every command's stdout and stderr, and every file under the project's `.engine/`
//! (checked when the project is dropped), must be free of [`TOKEN`].

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hubspot_sandbox::{SandboxConfig, SandboxHandle};
use serde_json::{Value, json};

/// The token the sandbox accepts and the engine sends; distinctive, so a leak is easy to spot.
pub const TOKEN: &str = "pat-secret-e2e-123";

/// The fixture's sync.
pub const SYNC: &str = "users_to_hubspot";

/// The binary under test, always freshly built by cargo.
pub const ENGINE: &str = env!("CARGO_BIN_EXE_engine");

/// How long one `engine` command may run before the test gives up on it (a hang is a failure,
/// not a slow machine: the slowest command here finishes in seconds).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

/// How long to wait for a condition (the sandbox received write N, …).
const POLL_TIMEOUT: Duration = Duration::from_secs(60);

/// Environment variables the engine reads, cleared before every command.
const ENGINE_ENV: &[&str] = &[
    "HUBSPOT_BASE_URL",
    "HUBSPOT_TOKEN",
    "ENGINE_PROJECT",
    "ENGINE_MAX_ATTEMPTS",
    "ENGINE_MAX_IN_FLIGHT",
    "ENGINE_RETRY_TIMEOUT",
    "ENGINE_MEMORY_LIMIT",
    "ENGINE_DIFF_MEMORY_LIMIT",
    "NO_COLOR",
    "RUST_LOG",
    "GITHUB_ACTIONS",
    "SANDBOX_TOKEN",
];

// ---------------------------------------------------------------------------------------------
// Rows

/// One row of the fixture's `data/users.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: u32,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub company: String,
    pub lifecycle: String,
}

impl User {
    /// A distinct, valid user: `user{id}@example.com`, lifecycle `lead` or `customer`.
    pub fn new(id: u32) -> User {
        User {
            id,
            email: format!("user{id}@example.com"),
            first_name: format!("First{id}"),
            last_name: format!("Last{id}"),
            company: format!("Company {id}"),
            lifecycle: if id.is_multiple_of(2) {
                "customer"
            } else {
                "lead"
            }
            .to_string(),
        }
    }

    fn csv_line(&self) -> String {
        format!(
            "{},{},{},{},{},{}",
            self.id, self.email, self.first_name, self.last_name, self.company, self.lifecycle
        )
    }

    /// The HubSpot properties the fixture's sync maps this row to.
    pub fn properties(&self) -> BTreeMap<String, String> {
        [
            ("email", self.email.clone()),
            ("firstname", self.first_name.clone()),
            ("lastname", self.last_name.clone()),
            ("company", self.company.to_uppercase()),
            ("lifecyclestage", self.lifecycle.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// Users `1..=n`.
pub fn users(n: u32) -> Vec<User> {
    (1..=n).map(User::new).collect()
}

/// The CSV text of `rows`, with the fixture's header.
pub fn csv(rows: &[User]) -> String {
    let mut out = String::from("id,email,first_name,last_name,company,lifecycle\n");
    for row in rows {
        out.push_str(&row.csv_line());
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The fixture project

/// Knobs of the fixture project's sync.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// `batch_size:` of the sync.
    pub batch_size: usize,
    /// Extra top-level YAML appended to the sync file (e.g. `guards:`).
    pub sync_extra: String,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture {
            batch_size: 100,
            sync_extra: String::new(),
        }
    }
}

const ENGINE_YAML: &str = "\
version: 1
project: e2e

tables:
  users:
    path: data/users.csv

destinations:
  hubspot:
    type: hubspot
    base_url: ${env:HUBSPOT_BASE_URL}
    token: ${env:HUBSPOT_TOKEN}
";

const MODEL_YAML: &str = "\
name: users
description: One HubSpot contact per user
primary_key: [user_id]
sql: |
  SELECT id AS user_id,
         lower(email) AS email,
         first_name,
         last_name,
         company,
         lifecycle
  FROM users
";

fn sync_yaml(fixture: &Fixture) -> String {
    format!(
        "\
name: {SYNC}
model: users
destination: hubspot
object: contacts
mode: upsert
match:
  property: email
  column: email
mapping:
  - property: firstname
    column: first_name
  - property: lastname
    column: last_name
  - property: company
    template: \"{{{{ row['company'] | upcase }}}}\"
  - property: lifecyclestage
    column: lifecycle
on_remove: clear_fields
batch_size: {}
{}",
        fixture.batch_size, fixture.sync_extra
    )
}

/// The result of one `engine` command.
#[derive(Debug)]
pub struct Output {
    /// The exit code; `None` when the process was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Asserts the exit code, printing both streams when it differs.
    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, Some(expected), "unexpected exit code\n{self}");
        self
    }

    /// Asserts stdout or stderr contains `needle`.
    #[track_caller]
    pub fn assert_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle) || self.stderr.contains(needle),
            "expected the output to contain {needle:?}\n{self}"
        );
        self
    }

    /// Asserts stderr contains `needle`.
    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "expected stderr to contain {needle:?}\n{self}"
        );
        self
    }

    /// True when stderr names `file:LINE:COL`.
    pub fn points_at(&self, file: &str) -> bool {
        self.stderr
            .match_indices(&format!("{file}:"))
            .any(|(at, m)| {
                let rest = &self.stderr[at + m.len()..];
                let line: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let after = &rest[line.len()..];
                !line.is_empty()
                    && after.starts_with(':')
                    && after[1..].starts_with(|c: char| c.is_ascii_digit())
            })
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{self}"))
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- exit code: {:?}\n--- stdout:\n{}\n--- stderr:\n{}\n---",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A temporary project with its own sandbox. Dropping it checks that no file under `.engine/`
/// holds the token, stops the sandbox and removes the directory.
pub struct TestProject {
    root: tempfile::TempDir,
    pub sandbox: Sandbox,
    commands: Cell<u32>,
}

impl TestProject {
    /// The fixture project with default knobs and `csv` as `data/users.csv`.
    pub fn new(csv: &str) -> TestProject {
        TestProject::with(Fixture::default(), csv)
    }

    /// The fixture project with `fixture`'s knobs.
    pub fn with(fixture: Fixture, csv: &str) -> TestProject {
        TestProject::with_sandbox(fixture, csv, Sandbox::start(TOKEN))
    }

    /// The fixture project against a given sandbox.
    pub fn with_sandbox(fixture: Fixture, csv: &str, sandbox: Sandbox) -> TestProject {
        let root = tempfile::Builder::new()
            .prefix("engine-e2e-")
            .tempdir()
            .expect("a temporary directory can be created");
        let project = TestProject {
            root,
            sandbox,
            commands: Cell::new(0),
        };
        fs_err::create_dir_all(project.path().join("data")).expect("create data/");
        fs_err::create_dir_all(project.path().join("models")).expect("create models/");
        fs_err::create_dir_all(project.path().join("syncs")).expect("create syncs/");
        fs_err::create_dir_all(project.root.path().join("logs")).expect("create logs/");
        project.write("engine.yaml", ENGINE_YAML);
        project.write("models/users.yaml", MODEL_YAML);
        project.write(&format!("syncs/{SYNC}.yaml"), &sync_yaml(&fixture));
        project.write_csv(csv);
        project
    }

    /// A copy of the repository's `examples/NAME` (all of it but `run.sh` and a `.engine/`)
    /// in place of the fixture project, with its own sandbox.
    pub fn example(name: &str) -> TestProject {
        fn copy(from: &Path, to: &Path) {
            fs_err::create_dir_all(to).expect("create a directory of the example's copy");
            for entry in fs_err::read_dir(from).expect("read the example") {
                let entry = entry.expect("an entry of the example");
                let file_name = entry.file_name();
                if file_name == "run.sh" || file_name == ".engine" {
                    continue;
                }
                let (source, target) = (entry.path(), to.join(&file_name));
                if source.is_dir() {
                    copy(&source, &target);
                } else {
                    fs_err::copy(&source, &target).expect("copy a file of the example");
                }
            }
        }
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name);
        assert!(source.is_dir(), "no example {}", source.display());
        let project = TestProject::new("");
        fs_err::remove_dir_all(project.path()).expect("remove the fixture project");
        copy(&source, &project.path());
        project
    }

    /// The project directory.
    pub fn path(&self) -> PathBuf {
        self.root.path().join("project")
    }

    /// Writes a file of the project (relative path).
    pub fn write(&self, relative: &str, contents: &str) {
        let path = self.path().join(relative);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).expect("create the file's directory");
        }
        fs_err::write(path, contents).expect("write a project file");
    }

    /// Reads a file of the project.
    pub fn read(&self, relative: &str) -> String {
        fs_err::read_to_string(self.path().join(relative)).expect("read a project file")
    }

    /// Replaces `from` (which must occur) by `to` in a project file.
    #[track_caller]
    pub fn edit(&self, relative: &str, from: &str, to: &str) {
        let text = self.read(relative);
        assert!(
            text.contains(from),
            "{relative} does not contain {from:?}:\n{text}"
        );
        self.write(relative, &text.replacen(from, to, 1));
    }

    /// Replaces `data/users.csv`.
    pub fn write_csv(&self, csv: &str) {
        self.write("data/users.csv", csv);
    }

    /// Runs `engine ARGS` in the project directory against the sandbox and waits for it.
    pub fn engine(&self, args: &[&str]) -> Output {
        self.engine_with(args, &[])
    }

    /// Like [`TestProject::engine`], with extra environment: `Some` sets, `None` removes.
    pub fn engine_with(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
        self.spawn_engine_with(args, env).wait()
    }

    /// Starts `engine ARGS` in the background (killed when the handle is dropped).
    pub fn spawn_engine(&self, args: &[&str]) -> RunningEngine {
        self.spawn_engine_with(args, &[])
    }

    /// Like [`TestProject::spawn_engine`], with extra environment.
    pub fn spawn_engine_with(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> RunningEngine {
        let n = self.commands.get() + 1;
        self.commands.set(n);
        let logs = self.root.path().join("logs");
        let stdout_path = logs.join(format!("{n}.stdout"));
        let stderr_path = logs.join(format!("{n}.stderr"));
        let mut command = Command::new(ENGINE);
        command
            .args(args)
            .current_dir(self.path())
            .stdin(Stdio::null());
        for name in ENGINE_ENV {
            command.env_remove(name);
        }
        command
            .env("HUBSPOT_BASE_URL", &self.sandbox.base_url)
            .env("HUBSPOT_TOKEN", TOKEN);
        for (name, value) in env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        command
            .stdout(
                fs_err::File::create(&stdout_path)
                    .expect("create stdout log")
                    .into_parts()
                    .0,
            )
            .stderr(
                fs_err::File::create(&stderr_path)
                    .expect("create stderr log")
                    .into_parts()
                    .0,
            );
        let child = command.spawn().expect("the engine binary starts");
        RunningEngine {
            child,
            stdout_path,
            stderr_path,
            args: args.join(" "),
        }
    }

    /// Every record of the sandbox's `contacts`.
    pub fn contacts(&self) -> Vec<Contact> {
        self.sandbox.contacts()
    }

    /// Asserts the sandbox holds exactly one contact per row of `rows`, with the mapped
    /// properties, and nothing else (no duplicates, no extra record).
    #[track_caller]
    pub fn assert_contacts_exactly(&self, rows: &[User]) {
        let contacts = self.contacts();
        let emails: Vec<&str> = contacts.iter().filter_map(|c| c.get("email")).collect();
        let unique: std::collections::BTreeSet<&str> = emails.iter().copied().collect();
        assert_eq!(
            unique.len(),
            emails.len(),
            "duplicate emails in the sandbox: {emails:?}"
        );
        assert_eq!(
            contacts.len(),
            rows.len(),
            "the sandbox holds {} contacts, the model {} rows: {emails:?}",
            contacts.len(),
            rows.len()
        );
        for row in rows {
            let contact = contacts
                .iter()
                .find(|c| c.get("email") == Some(row.email.as_str()))
                .unwrap_or_else(|| {
                    panic!("no contact for {}; the sandbox has {emails:?}", row.email)
                });
            assert_eq!(contact.mapped(), row.properties(), "contact {}", row.email);
        }
    }

    /// What `engine runs` prints and which snapshot files exist: equal before and after a
    /// command that must not touch the state.
    pub fn state_fingerprint(&self) -> (String, Vec<String>) {
        let runs = self.engine(&["runs"]);
        runs.assert_code(0);
        let mut snapshots: Vec<String> =
            files_under(&self.path().join(".engine").join("snapshots"))
                .into_iter()
                .map(|p| p.display().to_string())
                .collect();
        snapshots.sort();
        (runs.stdout, snapshots)
    }

    /// The project's own files (everything but `.engine/`), to put back after a test broke
    /// them.
    pub fn source_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let state = self.path().join(".engine");
        files_under(&self.path())
            .into_iter()
            .filter(|p| !p.starts_with(&state))
            .map(|p| {
                let bytes = fs_err::read(&p).expect("read a project file");
                (p, bytes)
            })
            .collect()
    }

    /// Puts back files saved by [`TestProject::source_files`].
    pub fn restore_source_files(&self, files: &[(PathBuf, Vec<u8>)]) {
        for (path, bytes) in files {
            fs_err::write(path, bytes).expect("restore a project file");
        }
    }
}

impl Drop for TestProject {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        for path in files_under(&self.path().join(".engine")) {
            let bytes = fs_err::read(&path).unwrap_or_default();
            assert!(
                !contains(&bytes, TOKEN.as_bytes()),
                "the token leaked into the state file {}",
                path.display()
            );
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file below `dir` (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = fs_err::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// An `engine` command running in the background; killed (SIGKILL) when dropped.
pub struct RunningEngine {
    child: Child,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    args: String,
}

impl RunningEngine {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics with the command's output if it has already exited (it should be running).
    #[track_caller]
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("poll engine") {
            let output = self.read_output(status.code());
            panic!(
                "`engine {}` exited while it should still be running\n{output}",
                self.args
            );
        }
    }

    /// True when the process has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kills the process with SIGKILL (`kill -9`) and returns what it printed.
    pub fn kill(mut self) -> Output {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the killed engine");
        self.read_output(status.code())
    }

    /// Waits for the process to exit; a command that hangs fails the test.
    pub fn wait(mut self) -> Output {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for engine") {
                return self.read_output(status.code());
            }
            if Instant::now() > deadline {
                let args = self.args.clone();
                let output = self.kill();
                panic!("`engine {args}` did not finish within {COMMAND_TIMEOUT:?}\n{output}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn read_output(&self, code: Option<i32>) -> Output {
        let output = Output {
            code,
            stdout: fs_err::read_to_string(&self.stdout_path).unwrap_or_default(),
            stderr: fs_err::read_to_string(&self.stderr_path).unwrap_or_default(),
        };
        assert!(
            !output.stdout.contains(TOKEN) && !output.stderr.contains(TOKEN),
            "`engine {}` printed the token\n{output}",
            self.args
        );
        output
    }
}

impl Drop for RunningEngine {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The sandbox

/// One sandbox record.
#[derive(Debug, Clone)]
pub struct Contact {
    pub id: String,
    pub properties: BTreeMap<String, String>,
}

impl Contact {
    /// A property's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }

    /// The properties the fixture maps (derived ones like `createdate` left out).
    pub fn mapped(&self) -> BTreeMap<String, String> {
        self.properties
            .iter()
            .filter(|(k, _)| {
                [
                    "email",
                    "firstname",
                    "lastname",
                    "company",
                    "lifecyclestage",
                ]
                .contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// A HubSpot sandbox served by a runtime this struct owns.
pub struct Sandbox {
    runtime: tokio::runtime::Runtime,
    handle: Option<SandboxHandle>,
    client: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
}

impl Sandbox {
    /// Starts a sandbox accepting `token` on a free port.
    pub fn start(token: &str) -> Sandbox {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let config = SandboxConfig {
            token: token.to_string(),
            ..SandboxConfig::default()
        };
        let handle = runtime
            .block_on(hubspot_sandbox::spawn(config))
            .expect("the sandbox starts");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        Sandbox {
            base_url: handle.base_url.clone(),
            runtime,
            handle: Some(handle),
            client,
        }
    }

    fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.base_url);
        self.runtime.block_on(async {
            let response = self
                .client
                .get(&url)
                .send()
                .await
                .expect("the sandbox answers");
            assert!(
                response.status().is_success(),
                "GET {path}: {}",
                response.status()
            );
            response.json().await.expect("the sandbox answers JSON")
        })
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let url = format!("{}{path}", self.base_url);
        self.runtime.block_on(async {
            let response = self
                .client
                .post(&url)
                .json(body)
                .send()
                .await
                .expect("the sandbox answers");
            assert!(
                response.status().is_success(),
                "POST {path}: {}",
                response.status()
            );
            response.json().await.expect("the sandbox answers JSON")
        })
    }

    /// Sends an API request as a portal admin would (schemas, properties, records), with the
    /// token; the answer must be a success.
    pub fn admin(&self, path: &str, body: &Value) -> Value {
        self.admin_request(reqwest::Method::POST, path, body)
    }

    /// [`Sandbox::admin`] with another method (`PATCH` a property, say).
    pub fn admin_request(&self, method: reqwest::Method, path: &str, body: &Value) -> Value {
        let url = format!("{}{path}", self.base_url);
        self.runtime.block_on(async {
            let response = self
                .client
                .request(method.clone(), &url)
                .bearer_auth(TOKEN)
                .json(body)
                .send()
                .await
                .expect("the sandbox answers");
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert!(status.is_success(), "{method} {path}: {status} {text}");
            serde_json::from_str(&text).unwrap_or(Value::Null)
        })
    }

    /// Creates one record as someone else would (`POST /crm/v3/objects/{object}`) and returns
    /// its id.
    pub fn create_record(&self, object: &str, properties: &Value) -> String {
        let answer = self.admin(
            &format!("/crm/v3/objects/{object}"),
            &serde_json::json!({ "properties": properties }),
        );
        answer["id"]
            .as_str()
            .expect("a created record has an id")
            .to_string()
    }

    /// Every contact, in id order.
    pub fn contacts(&self) -> Vec<Contact> {
        self.records("contacts")
    }

    /// Every record of an object type (name or type id), in id order.
    pub fn records(&self, object: &str) -> Vec<Contact> {
        let body = self.get(&format!("/_sandbox/records/{object}"));
        body["results"]
            .as_array()
            .expect("records have `results`")
            .iter()
            .map(|r| Contact {
                id: r["id"].as_str().unwrap_or_default().to_string(),
                properties: r["properties"]
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// The associations from `from` to `to` records: `(from id, to id)` → their type ids.
    pub fn associations(&self, from: &str, to: &str) -> BTreeMap<(String, String), Vec<u64>> {
        let body = self.get(&format!("/_sandbox/associations/{from}/{to}"));
        body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                let id = |k: &str| match &a[k] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let mut types: Vec<u64> = a["associationTypeIds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_u64)
                    .collect();
                types.sort_unstable();
                ((id("fromObjectId"), id("toObjectId")), types)
            })
            .collect()
    }

    /// Every list, by name, with its members' record ids (sorted).
    pub fn lists(&self) -> BTreeMap<String, Vec<String>> {
        self.get("/_sandbox/lists")["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                let mut ids: Vec<String> = l["recordIds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                ids.sort();
                (l["name"].as_str().unwrap_or_default().to_string(), ids)
            })
            .collect()
    }

    /// The custom events the sandbox accepted, in the order sent.
    pub fn events(&self) -> Vec<Value> {
        self.get("/_sandbox/events")["results"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// `/_sandbox/stats`.
    pub fn stats(&self) -> Value {
        self.get("/_sandbox/stats")
    }

    /// Batch upserts and updates that got past auth and the rate limit so far.
    pub fn write_requests(&self) -> u64 {
        self.stats()["write_requests"]
            .as_u64()
            .expect("stats have `write_requests`")
    }

    /// Sets faults (`requests_per_second`, `hang_before_write`, `hang_after_write`).
    pub fn set_faults(&self, faults: Value) {
        self.post("/_sandbox/faults", &faults);
    }

    /// Turns every fault off.
    pub fn clear_faults(&self) {
        self.set_faults(json!({
            "requests_per_second": null,
            "hang_before_write": null,
            "hang_after_write": null,
        }));
    }

    /// Polls `condition` until it holds; fails the test after a generous timeout.
    #[track_caller]
    pub fn wait_until(&self, what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + POLL_TIMEOUT;
        while !condition() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting: {what}: {}",
                self.stats()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the sandbox has received at least `n` write requests; false when `engine`
    /// exited first (it had fewer batches to send).
    pub fn wait_for_writes_or_exit(&self, n: u64, engine: &mut RunningEngine) -> bool {
        let deadline = Instant::now() + POLL_TIMEOUT;
        loop {
            if self.write_requests() >= n {
                return true;
            }
            if engine.has_exited() {
                return self.write_requests() >= n;
            }
            assert!(
                Instant::now() < deadline,
                "the sandbox did not receive write request {n} within {POLL_TIMEOUT:?}: {}",
                self.stats()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the sandbox has received at least `n` write requests, while `engine` keeps
    /// running.
    #[track_caller]
    pub fn wait_for_writes(&self, n: u64, engine: &mut RunningEngine) {
        let deadline = Instant::now() + POLL_TIMEOUT;
        loop {
            engine.assert_running();
            if self.write_requests() >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the sandbox did not receive write request {n} within {POLL_TIMEOUT:?}: {}",
                self.stats()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Stopping releases held requests; the runtime then drops whatever is left.
        drop(self.handle.take());
    }
}

/// The run id an `engine apply` printed (`… (run N).`).
#[track_caller]
pub fn run_id(output: &Output) -> String {
    let start = output
        .stdout
        .find("(run ")
        .unwrap_or_else(|| panic!("no run id in the output\n{output}"));
    output.stdout[start + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The Salesforce sandbox

/// The Salesforce sandbox's connected app, as its defaults accept it.
pub const SALESFORCE_CONSUMER_KEY: &str = "sandbox-client-id";
/// The consumer secret the Salesforce sandbox accepts by default.
pub const SALESFORCE_CONSUMER_SECRET: &str = "sandbox-client-secret";
/// The refresh token the Salesforce sandbox accepts by default.
pub const SALESFORCE_REFRESH_TOKEN: &str = "sandbox-refresh-token";
/// The access token the Salesforce sandbox accepts from the start (admin calls use it).
const SALESFORCE_ADMIN_TOKEN: &str = "sandbox-token";

/// A Salesforce sandbox served by a runtime this struct owns.
pub struct SalesforceSandbox {
    runtime: tokio::runtime::Runtime,
    handle: Option<salesforce_sandbox::SandboxHandle>,
    client: reqwest::Client,
    /// `http://127.0.0.1:PORT`: the login URL and the instance URL.
    pub base_url: String,
}

impl SalesforceSandbox {
    /// Starts a sandbox with `config`'s knobs (its credentials should stay the defaults).
    pub fn start(config: salesforce_sandbox::SandboxConfig) -> SalesforceSandbox {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let handle = runtime
            .block_on(salesforce_sandbox::spawn(config))
            .expect("the Salesforce sandbox starts");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        SalesforceSandbox {
            base_url: handle.base_url.clone(),
            runtime,
            handle: Some(handle),
            client,
        }
    }

    /// The environment a Salesforce destination of the examples reads.
    pub fn env(&self) -> Vec<(&'static str, Option<&str>)> {
        vec![
            ("SALESFORCE_LOGIN_URL", Some(self.base_url.as_str())),
            ("SALESFORCE_CONSUMER_KEY", Some(SALESFORCE_CONSUMER_KEY)),
            (
                "SALESFORCE_CONSUMER_SECRET",
                Some(SALESFORCE_CONSUMER_SECRET),
            ),
            ("SALESFORCE_REFRESH_TOKEN", Some(SALESFORCE_REFRESH_TOKEN)),
        ]
    }

    fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Value {
        let url = format!("{}{path}", self.base_url);
        self.runtime.block_on(async {
            let mut request = self
                .client
                .request(method.clone(), &url)
                .bearer_auth(SALESFORCE_ADMIN_TOKEN);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.expect("the sandbox answers");
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert!(status.is_success(), "{method} {path}: {status} {text}");
            serde_json::from_str(&text).unwrap_or(Value::Null)
        })
    }

    /// Defines custom objects (`POST /_sandbox/objects`: one object or a list).
    pub fn define_objects(&self, definitions: &Value) {
        self.send(
            reqwest::Method::POST,
            "/_sandbox/objects",
            Some(definitions),
        );
    }

    /// Creates one record as the org's admin and returns its id.
    pub fn create(&self, object: &str, fields: &Value) -> String {
        let answer = self.send(
            reqwest::Method::POST,
            &format!("/services/data/v62.0/sobjects/{object}"),
            Some(fields),
        );
        answer["id"]
            .as_str()
            .expect("a created record has an id")
            .to_string()
    }

    /// The sandbox's request counts (`GET /_sandbox/stats`).
    pub fn stats(&self) -> Value {
        self.send(reqwest::Method::GET, "/_sandbox/stats", None)
    }

    /// Requests of one kind the sandbox has served (`collections_upsert`, `bulk`, …).
    pub fn requests(&self, kind: &str) -> u64 {
        self.stats()["requests"][kind].as_u64().unwrap_or(0)
    }

    /// Every Bulk API 2.0 ingest job, each with its processing counts.
    pub fn bulk_jobs(&self) -> Vec<Value> {
        let list = self.send(
            reqwest::Method::GET,
            "/services/data/v62.0/jobs/ingest",
            None,
        );
        list["records"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|job| {
                let id = job["id"].as_str().unwrap_or_default();
                self.send(
                    reqwest::Method::GET,
                    &format!("/services/data/v62.0/jobs/ingest/{id}"),
                    None,
                )
            })
            .collect()
    }

    /// Every record of an object, in creation order, with every field.
    pub fn records(&self, object: &str) -> Vec<Value> {
        let body = self.send(
            reqwest::Method::GET,
            &format!("/_sandbox/records/{object}"),
            None,
        );
        body["records"]
            .as_array()
            .cloned()
            .expect("records have `records`")
    }
}

impl Drop for SalesforceSandbox {
    fn drop(&mut self) {
        // Stopping releases held requests; the runtime then drops whatever is left.
        drop(self.handle.take());
    }
}

/// Runs one SQL statement in the local PostgreSQL's `test` database and returns its rows as
/// `psql -t -A` prints them (the warehouse and shared-state tests seed and inspect with it).
#[track_caller]
pub fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "root",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-q", "-t", "-A", "-c", sql])
        .output()
        .expect("psql runs (PostgreSQL's client must be installed)");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
