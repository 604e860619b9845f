//! `examples/warehouse-postgres`, end to end as its `run.sh` runs it: the example's own
//! `setup/seed.sql` seeds the local PostgreSQL, the model (a join of two tables, run in the
//! warehouse) is validated, planned and applied to the sandbox, the contacts are checked
//! property by property; then `setup/change.sql` changes the warehouse, and the saved plan of
//! exactly that change is applied and checked too, leaving nothing to do.
//!
//! The example's schema (`engine_example`) is renamed in the SQL files and the model to one
//! of this run's own, so parallel runs cannot collide; it is dropped at the end.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::*;

const PG_URL: &str = "postgres://root@127.0.0.1:5432/test";

/// The schema the example's files name.
const EXAMPLE_SCHEMA: &str = "engine_example";

/// The mapped properties (the match property first), as the sandbox holds them.
const PROPERTIES: [&str; 8] = [
    "email",
    "firstname",
    "lastname",
    "company",
    "lifecyclestage",
    "num_orders",
    "is_vip",
    "last_seen_at",
];

/// Runs SQL text in the local PostgreSQL's `test` database as `psql -f` runs a file, stopping
/// at the first error.
#[track_caller]
fn psql(sql: &str) {
    let mut child = Command::new("psql")
        .args([PG_URL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql runs (PostgreSQL's client must be installed)");
    child
        .stdin
        .take()
        .expect("psql's stdin")
        .write_all(sql.as_bytes())
        .expect("SQL written to psql");
    let out = child.wait_with_output().expect("psql finishes");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// This run's copy of the example's schema; dropped when the test ends, passed or not.
struct Schema(String);

impl Schema {
    fn new() -> Schema {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Schema(format!("{EXAMPLE_SCHEMA}_{}_{nanos}", std::process::id()))
    }

    /// `text` with the example's schema replaced by this run's (it must name it).
    #[track_caller]
    fn rename(&self, text: &str) -> String {
        assert!(
            text.contains(EXAMPLE_SCHEMA),
            "the text does not name {EXAMPLE_SCHEMA}:\n{text}"
        );
        text.replace(EXAMPLE_SCHEMA, &self.0)
    }

    /// This run's schema for the engine's state (the example keeps it in PostgreSQL).
    fn state(&self) -> String {
        format!("{}_state", self.0)
    }

    /// Runs one of the example's setup files (`setup/NAME.sql`) against this run's schema.
    fn run(&self, project: &TestProject, file: &str) {
        psql(&self.rename(&project.read(&format!("setup/{file}.sql"))));
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let dropped = Command::new("psql")
            .args([PG_URL, "-X", "-q", "-c"])
            .arg(format!(
                "DROP SCHEMA IF EXISTS {} CASCADE; DROP SCHEMA IF EXISTS {} CASCADE",
                self.0,
                self.state()
            ))
            .output();
        if !std::thread::panicking() {
            let out = dropped.expect("psql runs");
            assert!(
                out.status.success(),
                "the schema {} was not dropped: {}",
                self.0,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

type Contacts = BTreeMap<String, BTreeMap<String, String>>;

/// The sandbox's contacts by email, with the sync's properties only; one contact per email.
#[track_caller]
fn contacts(project: &TestProject) -> Contacts {
    let records = project.contacts();
    let found: Contacts = records
        .iter()
        .map(|c| {
            let mapped = c
                .properties
                .iter()
                .filter(|(k, _)| PROPERTIES.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (c.get("email").unwrap_or_default().to_string(), mapped)
        })
        .collect();
    assert_eq!(
        found.len(),
        records.len(),
        "one contact per email: {found:#?}"
    );
    found
}

/// One contact's properties: `values` in the order of [`PROPERTIES`], `""` for a property it
/// does not hold.
fn contact(values: [&str; 8]) -> (String, BTreeMap<String, String>) {
    let properties = PROPERTIES
        .iter()
        .zip(values)
        .filter(|(_, v)| !v.is_empty())
        .map(|(p, v)| (p.to_string(), v.to_string()))
        .collect();
    (values[0].to_string(), properties)
}

/// The sandbox's contacts after the example's seed: the seven active users, emails in lower
/// case, the CASE's stage, the numeric's flag and `last_seen_at` in milliseconds (UTC).
fn seeded() -> Contacts {
    [
        [
            "ada@example.com",
            "Ada",
            "Lovelace",
            "Analytical Engines Ltd",
            "customer",
            "12",
            "true",
            "1714552200000",
        ],
        [
            "grace@navy.example",
            "Grace",
            "Hopper",
            "US Navy",
            "opportunity",
            "7",
            "false",
            "1714672800000",
        ],
        // Never seen: NULL in the warehouse, no value in HubSpot.
        [
            "alan@bletchley.example",
            "Alan",
            "Turing",
            "Analytical Engines Ltd",
            "lead",
            "0",
            "false",
            "",
        ],
        [
            "edsger@tue.example",
            "Edsger",
            "Dijkstra",
            "TU Eindhoven",
            "lead",
            "3",
            "false",
            "1714284900000",
        ],
        [
            "barbara@mit.example",
            "Barbara",
            "Liskov",
            "MIT",
            "customer",
            "21",
            "true",
            "1714772700000",
        ],
        [
            "dennis@bell.example",
            "Dennis",
            "Ritchie",
            "Bell Labs",
            "opportunity",
            "4",
            "false",
            "1714515000000",
        ],
        [
            "john@mit.example",
            "John",
            "McCarthy",
            "MIT",
            "lead",
            "2",
            "false",
            "1710514800000",
        ],
    ]
    .into_iter()
    .map(contact)
    .collect()
}

#[test]
fn warehouse_postgres_syncs_a_join_run_in_postgres_and_follows_its_changes() {
    let project = TestProject::example("warehouse-postgres");
    let schema = Schema::new();
    let model = "models/contacts.yaml";
    project.write(model, &schema.rename(&project.read(model)));
    schema.run(&project, "seed");
    project.edit(
        "engine.yaml",
        "schema: engine_example_state",
        &format!("schema: {}", schema.state()),
    );
    let env = [("WAREHOUSE_URL", Some(PG_URL)), ("STATE_URL", Some(PG_URL))];

    project.engine_with(&["validate"], &env).assert_code(0);
    project
        .engine_with(&["plan"], &env)
        .assert_code(0)
        .assert_contains("Plan: 7 to create, 0 to update, 0 to remove.");
    project.engine_with(&["apply"], &env).assert_code(0);
    let mut expected = seeded();
    assert_eq!(contacts(&project), expected, "Ken is inactive: no contact");
    project
        .engine_with(&["plan", "--detailed-exitcode"], &env)
        .assert_code(0);

    // MIT is renamed (two contacts), Alan is deleted, Margaret signs up.
    schema.run(&project, "change");
    project
        .engine_with(&["plan", "--out", "plan.json"], &env)
        .assert_code(0)
        .assert_contains("Plan: 1 to create, 2 to update, 1 to remove.")
        .assert_contains("\"MIT\" → \"Massachusetts Institute of Technology\"");
    project
        .engine_with(&["apply", "plan.json"], &env)
        .assert_code(0)
        .assert_contains("1 created/upserted, 2 updated, 1 removed, 0 failed");
    for email in ["barbara@mit.example", "john@mit.example"] {
        expected.get_mut(email).expect("an MIT contact").insert(
            "company".into(),
            "Massachusetts Institute of Technology".into(),
        );
    }
    let alan = expected
        .get_mut("alan@bletchley.example")
        .expect("Alan's contact");
    // on_remove: clear_fields: the contact stays, with its mapped fields cleared.
    alan.retain(|property, _| property == "email");
    expected.extend([contact([
        "margaret@mit.example",
        "Margaret",
        "Hamilton",
        "Massachusetts Institute of Technology",
        "customer",
        "5",
        "true",
        "1714820400000",
    ])]);
    assert_eq!(contacts(&project), expected);
    project
        .engine_with(&["plan", "--detailed-exitcode"], &env)
        .assert_code(0);
}
