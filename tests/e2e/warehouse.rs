//! Models that run in a warehouse: the fixture project's model moved into the local
//! PostgreSQL and MariaDB (`source:`), planned and applied to the HubSpot sandbox, then the
//! warehouse's data changed and applied again; and what a user sees when the warehouse is out
//! of reach, refuses the login, lacks a table, or the model is not a query. Checked against
//! the sandbox's records and the warehouse's tables.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::support::*;

const PG_URL: &str = "postgres://root@127.0.0.1:5432/test";
const MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// A table-name suffix no other test (or run) uses.
fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs SQL in the local MariaDB's `test` database.
#[track_caller]
fn mariadb(sql: &str) {
    let out = Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-u", "root", "test", "-e", sql])
        .output()
        .expect("mariadb runs (MariaDB's client must be installed)");
    assert!(
        out.status.success(),
        "mariadb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fixture project with a `warehouse` source and its model running there.
fn project(kind: &str, model_sql: &str, source_extra: &str) -> TestProject {
    let project = TestProject::new(&csv(&[]));
    let engine = project.read("engine.yaml").replace(
        "destinations:",
        &format!(
            "sources:\n  warehouse:\n    type: {kind}\n    url: ${{env:WAREHOUSE_URL}}\n    tls: disable\n{source_extra}\ndestinations:"
        ),
    );
    project.write("engine.yaml", &engine);
    let indented: String = model_sql.lines().map(|l| format!("  {l}\n")).collect();
    project.write(
        "models/users.yaml",
        &format!(
            "name: users\ndescription: One HubSpot contact per user, from the warehouse\nsource: warehouse\nprimary_key: [user_id]\nsql: |\n{indented}"
        ),
    );
    project
}

/// Contacts by email, with the fixture's mapped properties.
fn contacts(project: &TestProject) -> BTreeMap<String, BTreeMap<String, String>> {
    project
        .sandbox
        .contacts()
        .into_iter()
        .map(|c| (c.get("email").unwrap_or_default().to_string(), c.mapped()))
        .collect()
}

#[test]
fn a_model_joining_two_postgres_tables_syncs_and_follows_their_changes() {
    let n = unique();
    let (users, companies) = (format!("wh_users_{n}"), format!("wh_companies_{n}"));
    psql(&format!(
        "CREATE TABLE {companies} (id int PRIMARY KEY, name text NOT NULL);
         CREATE TABLE {users} (id bigint PRIMARY KEY, email text, first_name text, last_name text,
                               company_id int REFERENCES {companies}, plan text,
                               lifetime_value numeric(14,2), signed_up timestamptz);
         INSERT INTO {companies} VALUES (1, 'Acme'), (2, 'Globex');
         INSERT INTO {users} VALUES
           (1, 'Ada@Example.com', 'Ada', 'Lovelace', 1, 'enterprise', 123456789012.34, '2024-05-01 12:00+02'),
           (2, 'bob@example.com', 'Bob', 'Byte', 2, 'free', 0.10, '2024-05-02 08:00Z'),
           (3, 'cy@example.com', 'Cy', NULL, 1, 'free', NULL, NULL);"
    ));
    let sql = format!(
        "SELECT u.id AS user_id, lower(u.email) AS email, u.first_name, u.last_name,
       c.name AS company,
       CASE WHEN u.plan = 'enterprise' THEN 'customer' ELSE 'lead' END AS lifecycle,
       u.lifetime_value, u.signed_up
FROM {users} u JOIN {companies} c ON c.id = u.company_id"
    );
    let project = project("postgres", &sql, "");
    let env = [("WAREHOUSE_URL", Some(PG_URL))];

    project.engine_with(&["validate"], &env).assert_code(0);
    project
        .engine_with(&["plan"], &env)
        .assert_code(0)
        .assert_contains("Plan: 3 to create, 0 to update, 0 to remove.");
    project.engine_with(&["apply"], &env).assert_code(0);
    let found = contacts(&project);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert_eq!(found["ada@example.com"]["company"], "ACME");
    assert_eq!(found["ada@example.com"]["lifecyclestage"], "customer");
    assert_eq!(found["bob@example.com"]["company"], "GLOBEX");
    assert!(
        !found["cy@example.com"].contains_key("lastname"),
        "{found:#?}"
    );

    // The warehouse changes: a company renamed, a user gone, one added.
    psql(&format!(
        "UPDATE {companies} SET name = 'Acme Corp' WHERE id = 1;
         DELETE FROM {users} WHERE id = 2;
         INSERT INTO {users} VALUES (4, 'dee@example.com', 'Dee', 'Data', 2, 'enterprise', 5, now());"
    ));
    project
        .engine_with(&["plan"], &env)
        .assert_code(0)
        .assert_contains("Plan: 1 to create, 2 to update, 1 to remove.");
    project.engine_with(&["apply"], &env).assert_code(0);
    let found = contacts(&project);
    assert_eq!(found["ada@example.com"]["company"], "ACME CORP");
    assert_eq!(found["cy@example.com"]["company"], "ACME CORP");
    assert_eq!(found["dee@example.com"]["company"], "GLOBEX");
    assert!(
        !found["bob@example.com"].contains_key("company"),
        "a removed row clears its fields (on_remove: clear_fields): {found:#?}"
    );
    project
        .engine_with(&["plan", "--detailed-exitcode"], &env)
        .assert_code(0);
    psql(&format!("DROP TABLE {users}; DROP TABLE {companies};"));
}

#[test]
fn a_model_in_mariadb_syncs_too() {
    let users = format!("wh_users_{}", unique());
    mariadb(&format!(
        "CREATE TABLE {users} (id BIGINT PRIMARY KEY, email VARCHAR(200), first_name VARCHAR(50),
                               last_name VARCHAR(50), company VARCHAR(50), lifecycle VARCHAR(20),
                               score DECIMAL(30,10));
         INSERT INTO {users} VALUES
           (1, 'ann@example.com', 'Ann', 'Ário', 'Initech', 'lead', 12345678901234567890.0123456789),
           (2, 'ben@example.com', 'Ben', NULL, 'Hooli', 'customer', NULL);"
    ));
    let sql = format!(
        "SELECT id AS user_id, email, first_name, last_name, company, lifecycle, score FROM {users}"
    );
    let project = project("mysql", &sql, "");
    let env = [("WAREHOUSE_URL", Some(MYSQL_URL))];
    project.engine_with(&["apply"], &env).assert_code(0);
    let found = contacts(&project);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found["ann@example.com"]["lastname"], "Ário");
    assert_eq!(found["ben@example.com"]["company"], "HOOLI");
    mariadb(&format!(
        "UPDATE {users} SET lifecycle = 'customer' WHERE id = 1"
    ));
    project
        .engine_with(&["plan"], &env)
        .assert_code(0)
        .assert_contains("Plan: 0 to create, 1 to update, 0 to remove.");
    project.engine_with(&["apply"], &env).assert_code(0);
    assert_eq!(
        contacts(&project)["ann@example.com"]["lifecyclestage"],
        "customer"
    );
    mariadb(&format!("DROP TABLE {users}"));
}

#[test]
fn warehouse_problems_point_at_what_to_fix_and_write_nothing() {
    let users = format!("wh_users_{}", unique());
    psql(&format!(
        "CREATE TABLE {users} (id bigint PRIMARY KEY, email text);
         INSERT INTO {users} VALUES (1, 'ada@example.com');"
    ));
    let env = [("WAREHOUSE_URL", Some(PG_URL))];
    let good = format!(
        "SELECT id AS user_id, email, email AS first_name, email AS last_name,\n       email AS company, 'lead' AS lifecycle\nFROM {users}"
    );

    // A table that does not exist: named, at the model's SQL.
    let missing = project("postgres", &good.replace(&users, "no_such_table_here"), "");
    let plan = missing.engine_with(&["plan"], &env);
    plan.assert_code(1)
        .assert_contains("model::missing_table")
        .assert_contains("no_such_table_here");
    assert!(plan.points_at("models/users.yaml"), "{plan}");

    // A syntax error: at its line and column in the model's file.
    let typo = project("postgres", &good.replace("FROM", "FORM"), "");
    let plan = typo.engine_with(&["plan"], &env);
    plan.assert_code(1)
        .assert_contains("model::sql_syntax")
        .assert_contains("fix the model's SQL at the marked place");
    assert!(plan.stderr.contains("models/users.yaml:8:3"), "{plan}");

    // Not a query: refused before anything reaches the warehouse.
    let drop = project("postgres", &format!("DROP TABLE {users}"), "");
    drop.engine_with(&["plan"], &env)
        .assert_code(1)
        .assert_contains("model::not_a_query");
    assert_eq!(
        psql(&format!("SELECT count(*) FROM {users}")),
        "1",
        "the table is still there"
    );

    // The statement timeout: cancelled, with the setting to change named.
    let slow = project(
        "postgres",
        &format!("{good}, pg_sleep(3)"),
        "    statement_timeout: 200ms\n",
    );
    slow.engine_with(&["plan"], &env)
        .assert_code(1)
        .assert_contains("model::timeout")
        .assert_contains("statement_timeout");

    // Out of reach: plan stops naming the host; validate says the model was not checked. The
    // password in the URL is never shown.
    let unreachable = project("postgres", &good, "");
    let closed = [(
        "WAREHOUSE_URL",
        Some("postgres://root:sekret-pw-42@127.0.0.1:1/test"),
    )];
    let plan = unreachable.engine_with(&["plan"], &closed);
    plan.assert_code(1)
        .assert_contains("source::unreachable")
        .assert_contains("127.0.0.1:1");
    assert!(plan.points_at("engine.yaml"), "{plan}");
    let validate = unreachable.engine_with(&["validate"], &closed);
    validate
        .assert_code(0)
        .assert_contains("source::not_checked")
        .assert_contains("model `users` was not checked");
    for output in [&plan, &validate] {
        assert!(
            !output.stdout.contains("sekret-pw-42") && !output.stderr.contains("sekret-pw-42"),
            "{output}"
        );
    }
    assert!(unreachable.sandbox.contacts().is_empty());
    psql(&format!("DROP TABLE {users}"));
}
