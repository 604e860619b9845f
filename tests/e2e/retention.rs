//! The state stays small: every apply prunes its sync by `state.retention`, `engine state gc`
//! prunes the rest (with `--dry-run` first), `engine state check` reports the size by part,
//! and a kill during pruning leaves a state the next command accepts.

use std::time::{Duration, SystemTime};

use crate::support::{SYNC, TestProject, User, csv, files_under, users};

/// The fixture with `state.retention` set.
fn project_keeping(runs: u32, rows: &[User]) -> TestProject {
    let project = TestProject::new(&csv(rows));
    let yaml = project.read("engine.yaml");
    project.write(
        "engine.yaml",
        &format!("{yaml}\nstate:\n  retention:\n    runs: {runs}\n    days: 30\n"),
    );
    project
}

/// Run plan headers kept under `.engine/runs/`.
fn run_plans(project: &TestProject) -> Vec<String> {
    files_under(&project.path().join(".engine/runs"))
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".plan.json"))
        .collect()
}

#[test]
fn applies_keep_history_within_retention_and_gc_prunes_the_rest() {
    let mut rows = users(4);
    let project = project_keeping(2, &rows);
    for round in 0..4 {
        rows[round % 4].first_name = format!("Changed{round}");
        project.write_csv(&csv(&rows));
        project.engine(&["apply"]).assert_code(0);
        let plans = run_plans(&project);
        assert!(plans.len() <= 2, "round {round}: {plans:?}");
        let snapshots = files_under(&project.path().join(".engine/snapshots").join(SYNC));
        assert_eq!(
            snapshots.len(),
            1,
            "only the current snapshot: {snapshots:?}"
        );
    }
    project.assert_contacts_exactly(&rows);
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("No changes");
    let history = project.engine(&["runs"]);
    history.assert_code(0);
    assert_eq!(
        history.stdout.lines().filter(|l| l.contains(SYNC)).count(),
        2,
        "{}",
        history.stdout
    );

    // Leftovers of crashed commands: a plan header without a run, day-old scratch files.
    project.write(".engine/runs/9999.plan.json", "{}");
    project.write(".engine/tmp/plan-crashed/rows.parquet", "x");
    let old = SystemTime::now() - Duration::from_secs(3 * 24 * 3600);
    for path in [
        ".engine/tmp/plan-crashed/rows.parquet",
        ".engine/tmp/plan-crashed",
    ] {
        fs_err::File::open(project.path().join(path))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let before = files_under(&project.path().join(".engine"));
    project
        .engine(&["state", "gc", "--dry-run"])
        .assert_code(0)
        .assert_contains("Would remove")
        .assert_contains("9999.plan.json")
        .assert_contains("plan-crashed")
        .assert_contains("Nothing was changed");
    assert_eq!(files_under(&project.path().join(".engine")), before);
    project
        .engine(&["state", "gc"])
        .assert_code(0)
        .assert_contains("Removed")
        .assert_contains("freed");
    assert!(!project.path().join(".engine/runs/9999.plan.json").exists());
    assert!(!project.path().join(".engine/tmp/plan-crashed").exists());
    project
        .engine(&["state", "gc"])
        .assert_code(0)
        .assert_contains("Nothing to prune");
    project
        .engine(&["state", "check"])
        .assert_code(0)
        .assert_contains("size: ")
        .assert_contains("current snapshots")
        .assert_contains("The state is consistent.");
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("No changes");
}

#[test]
fn a_retention_that_keeps_nothing_is_refused_where_it_is_written() {
    let project = project_keeping(0, &users(1));
    project
        .engine(&["validate"])
        .assert_code(1)
        .assert_stderr_contains("spec::out_of_range")
        .assert_stderr_contains("`runs` must be between 1 and")
        .assert_stderr_contains("engine.yaml:");
}

/// `engine state gc` killed at random points while it removes thousands of leftovers: every
/// time, the state is still consistent, the next gc finishes the job, and the destination and
/// the next plan are as if nothing had happened.
#[test]
fn a_kill_during_pruning_leaves_a_state_the_next_command_accepts() {
    let rows = users(3);
    let project = project_keeping(1, &rows);
    project.engine(&["apply"]).assert_code(0);
    for trial in 0..5u64 {
        for i in 0..1500 {
            project.write(&format!(".engine/runs/{}.plan.json", 100_000 + i), "{}");
        }
        let mut gc = project.spawn_engine(&["state", "gc"]);
        std::thread::sleep(Duration::from_millis(5 + trial * 12));
        if !gc.has_exited() {
            gc.kill();
        }
        project
            .engine(&["state", "check"])
            .assert_code(0)
            .assert_contains("The state is consistent.");
        project
            .engine(&["plan"])
            .assert_code(0)
            .assert_contains("No changes");
    }
    project.engine(&["state", "gc"]).assert_code(0);
    assert_eq!(run_plans(&project).len(), 1, "{:?}", run_plans(&project));
    project.engine(&["apply"]).assert_code(0);
    project.assert_contacts_exactly(&rows);
}
