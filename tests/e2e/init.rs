//! `engine init` and `engine schema` as a user runs them: a project created from a CSV file
//! validates and plans its rows as creates against `engine sandbox hubspot`; existing files are
//! never overwritten; the modelines point at the schemas written beside the project.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use crate::support::{ENGINE, TestProject, csv, users};

const TOKEN: &str = "pat-init-e2e-123";

/// `engine ARGS` in `dir`, with no terminal on stdin (so `init` asks nothing).
fn engine(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(ENGINE);
    command
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env_remove("ENGINE_PROJECT")
        .env_remove("HUBSPOT_BASE_URL")
        .env_remove("HUBSPOT_TOKEN");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the engine runs")
}

fn text(output: &Output) -> String {
    format!(
        "code {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `engine sandbox hubspot` on a free port, killed when dropped.
struct CliSandbox {
    child: Child,
    base_url: String,
}

impl CliSandbox {
    fn start() -> CliSandbox {
        let mut child = Command::new(ENGINE)
            .args(["sandbox", "hubspot", "--port", "0", "--token", TOKEN])
            .env_remove("SANDBOX_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sandbox starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let line = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|l| l.contains("listening on"))
            .expect("the sandbox says where it listens");
        // Keep reading its stderr so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        let base_url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("a URL")
            .trim_end_matches(['.', ','])
            .to_string();
        CliSandbox { child, base_url }
    }
}

impl Drop for CliSandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_project_made_by_init_from_a_csv_validates_and_plans_its_rows_as_creates() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let csv = tmp.path().join("people.csv");
    fs_err::write(
        &csv,
        "Customer ID,E-mail,First Name,Last Name,Plan\n\
         1,Ada@Example.com,Ada,Lovelace,pro\n\
         2,grace@example.com,Grace,Hopper,free\n\
         3,linus@example.com,Linus,Torvalds,pro\n",
    )
    .expect("write the CSV");
    let init = engine(
        tmp.path(),
        &[
            "init",
            "crm-sync",
            "--csv",
            "people.csv",
            "--key",
            "customer_id",
        ],
        &[],
    );
    assert_eq!(init.status.code(), Some(0), "{}", text(&init));
    let project = tmp.path().join("crm-sync");
    for file in [
        "engine.yaml",
        "models/people.yaml",
        "syncs/people_to_hubspot.yaml",
        ".gitignore",
        ".engine-schema/engine.schema.json",
        ".engine-schema/model.schema.json",
        ".engine-schema/sync.schema.json",
    ] {
        assert!(project.join(file).is_file(), "{file} was not written");
    }
    let gitignore = fs_err::read_to_string(project.join(".gitignore")).expect(".gitignore");
    assert!(gitignore.lines().any(|l| l == ".engine/"), "{gitignore}");
    let engine_yaml = fs_err::read_to_string(project.join("engine.yaml")).expect("engine.yaml");
    assert!(engine_yaml.contains("project: crm-sync"), "{engine_yaml}");
    assert!(
        engine_yaml.contains("token: \"${env:HUBSPOT_TOKEN}\""),
        "{engine_yaml}"
    );
    let sync = fs_err::read_to_string(project.join("syncs/people_to_hubspot.yaml")).expect("sync");
    assert!(
        sync.contains("column: e_mail"),
        "the email column is the match: {sync}"
    );

    let validate = engine(&project, &["validate"], &[]);
    assert_eq!(validate.status.code(), Some(0), "{}", text(&validate));

    let sandbox = CliSandbox::start();
    let env = [
        ("HUBSPOT_BASE_URL", sandbox.base_url.as_str()),
        ("HUBSPOT_TOKEN", TOKEN),
    ];
    let plan = engine(&project, &["plan", "--json"], &env);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let json: Value = serde_json::from_slice(&plan.stdout).expect("the plan is JSON");
    let summary = &json["syncs"][0]["summary"];
    assert_eq!(summary["create"], 3, "{}", text(&plan));
    assert_eq!(summary["update"], 0, "{summary}");
    let human = engine(&project, &["plan"], &env);
    assert_eq!(human.status.code(), Some(0), "{}", text(&human));
    let shown = String::from_utf8_lossy(&human.stdout);
    for email in ["ada@example.com", "grace@example.com", "linus@example.com"] {
        assert!(shown.contains(email), "{email} not in the plan:\n{shown}");
    }
}

#[test]
fn init_never_overwrites_a_file_and_names_it() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    fs_err::write(tmp.path().join("engine.yaml"), "# mine\n").expect("write engine.yaml");
    fs_err::write(tmp.path().join(".gitignore"), "target/").expect("write .gitignore");
    let init = engine(tmp.path(), &["init", "--yes"], &[]);
    assert_eq!(init.status.code(), Some(1), "{}", text(&init));
    let stderr = String::from_utf8_lossy(&init.stderr);
    assert!(stderr.contains("engine.yaml` already exists"), "{stderr}");
    assert!(
        stderr.contains("hint: run `engine init NEW_DIR`"),
        "{stderr}"
    );
    assert_eq!(
        fs_err::read_to_string(tmp.path().join("engine.yaml")).expect("engine.yaml"),
        "# mine\n"
    );
    assert!(
        !tmp.path().join("models").exists(),
        "nothing else is written"
    );

    // Elsewhere in the same directory, with the sample data: an existing .gitignore gets the
    // state directory added, the rest of it kept.
    fs_err::remove_file(tmp.path().join("engine.yaml")).expect("remove engine.yaml");
    let init = engine(tmp.path(), &["init", "--yes", "--name", "demo"], &[]);
    assert_eq!(init.status.code(), Some(0), "{}", text(&init));
    assert_eq!(
        fs_err::read_to_string(tmp.path().join(".gitignore")).expect(".gitignore"),
        "target/\n# engine's state: plans, snapshots, run history\n.engine/\n"
    );
    let validate = engine(tmp.path(), &["validate"], &[]);
    assert_eq!(validate.status.code(), Some(0), "{}", text(&validate));
}

#[test]
fn init_refuses_bad_flags_naming_what_to_change() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    for (args, expected) in [
        (
            vec!["init", "p", "--name", "9lives"],
            "invalid project name `9lives`",
        ),
        (vec!["init", "p", "--csv", "missing.csv"], "missing.csv"),
        (
            vec!["init", "p", "--key", "nope"],
            "the data has no column `nope`",
        ),
        (
            vec!["init", "p", "--warehouse-env", "not-a-name"],
            "invalid environment variable name",
        ),
    ] {
        let output = engine(tmp.path(), &args, &[]);
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!tmp.path().join("p").exists(), "{args:?} wrote files");
    }
}

#[test]
fn init_for_salesforce_from_a_warehouse_validates() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let init = engine(
        tmp.path(),
        &[
            "init",
            "sf",
            "--destination",
            "salesforce",
            "--warehouse-env",
            "WAREHOUSE_URL",
            "--match-property",
            "Customer_Id__c",
        ],
        &[],
    );
    assert_eq!(init.status.code(), Some(0), "{}", text(&init));
    let engine_yaml = fs_err::read_to_string(tmp.path().join("sf/engine.yaml")).expect("read");
    assert!(
        engine_yaml.contains("url: \"${env:WAREHOUSE_URL}\""),
        "{engine_yaml}"
    );
    assert!(engine_yaml.contains("type: salesforce"), "{engine_yaml}");
    let validate = engine(&tmp.path().join("sf"), &["validate"], &[]);
    assert_eq!(validate.status.code(), Some(0), "{}", text(&validate));
}

#[test]
fn the_modelines_point_at_the_schemas_engine_schema_writes() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let init = engine(tmp.path(), &["init", "p", "--yes"], &[]);
    assert_eq!(init.status.code(), Some(0), "{}", text(&init));
    let project = tmp.path().join("p");
    for file in [
        "engine.yaml",
        "models/users.yaml",
        "syncs/users_to_hubspot.yaml",
    ] {
        let path = project.join(file);
        let first = fs_err::read_to_string(&path).expect("read");
        let target = first
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# yaml-language-server: $schema="))
            .unwrap_or_else(|| panic!("{file} has no modeline"));
        let schema = path.parent().expect("a parent").join(target);
        let written: Value =
            serde_json::from_str(&fs_err::read_to_string(&schema).expect("the schema exists"))
                .expect("JSON");
        let kind = target.rsplit('/').next().expect("a file name");
        let printed = engine(
            tmp.path(),
            &["schema", kind.trim_end_matches(".schema.json")],
            &[],
        );
        assert_eq!(printed.status.code(), Some(0), "{}", text(&printed));
        let printed: Value = serde_json::from_slice(&printed.stdout).expect("JSON");
        assert_eq!(
            written, printed,
            "{file}: {kind} is what `engine schema` prints"
        );
        assert_eq!(
            written["$schema"],
            "http://json-schema.org/draft-07/schema#"
        );
    }

    let out = engine(tmp.path(), &["schema", "--out", "schemas"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for name in ["engine", "model", "sync"] {
        assert!(
            tmp.path()
                .join(format!("schemas/{name}.schema.json"))
                .is_file()
        );
    }
    let flag = engine(tmp.path(), &["schema", "--kind", "model"], &[]);
    assert_eq!(flag.status.code(), Some(0), "{}", text(&flag));
    let none = engine(tmp.path(), &["schema"], &[]);
    assert_eq!(none.status.code(), Some(1), "{}", text(&none));
    assert!(String::from_utf8_lossy(&none.stderr).contains("engine schema --out DIR"));
}

#[test]
fn the_fixture_project_validates_against_the_printed_schemas() {
    let project = TestProject::new(&csv(&users(2)));
    for (kind, file) in [
        ("engine", "engine.yaml"),
        ("model", "models/users.yaml"),
        ("sync", "syncs/users_to_hubspot.yaml"),
    ] {
        let printed = engine(&project.path(), &["schema", kind], &[]);
        assert_eq!(printed.status.code(), Some(0), "{}", text(&printed));
        let schema: Value = serde_json::from_slice(&printed.stdout).expect("JSON");
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        let instance: Value =
            serde_saphyr::from_str(&project.read(file)).expect("the fixture is YAML");
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{file}: {errors:#?}");
        // And a key no parser knows is refused.
        let mut wrong = instance.clone();
        wrong["schedule"] = Value::from("hourly");
        assert!(!validator.is_valid(&wrong), "{file} with an unknown key");
    }
}
