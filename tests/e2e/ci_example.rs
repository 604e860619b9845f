//! `examples/ci/engine.yml`, the GitHub Actions workflow of docs/operations.md: it parses as
//! YAML and has the jobs and steps the docs describe.

use serde_json::Value;

fn workflow() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/ci/engine.yml");
    let text = fs_err::read_to_string(path).expect("examples/ci/engine.yml is readable");
    let options = serde_saphyr::options! { strict_booleans: true };
    serde_saphyr::from_str_with_options(&text, options)
        .unwrap_or_else(|e| panic!("examples/ci/engine.yml is not valid YAML: {e}"))
}

/// Every `run:` script of a job, joined.
fn scripts(job: &Value) -> String {
    job["steps"]
        .as_array()
        .expect("a job has steps")
        .iter()
        .filter_map(|step| step["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_ci_workflow_plans_pull_requests_and_applies_the_reviewed_plan_on_main() {
    let workflow = workflow();
    assert!(
        workflow["on"].get("pull_request").is_some(),
        "runs on pull requests"
    );
    assert_eq!(workflow["on"]["push"]["branches"][0], "main");

    let plan = &workflow["jobs"]["plan"];
    assert_eq!(plan["if"], "github.event_name == 'pull_request'");
    assert_eq!(plan["permissions"]["pull-requests"], "write");
    let run = scripts(plan);
    assert!(run.contains("engine validate"), "{run}");
    assert!(
        run.contains(
            "engine plan --format markdown --html plan.html --out plan.json --detailed-exitcode"
        ),
        "{run}"
    );
    // One comment, found by the renderer's marker and updated in place.
    assert!(run.contains(engine_marker()), "{run}");
    assert!(
        run.contains("--method PATCH") && run.contains("--method POST"),
        "{run}"
    );
    let uploads: Vec<&Value> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .collect();
    assert_eq!(uploads.len(), 1, "the page is uploaded");
    assert!(
        uploads[0]["with"]["path"]
            .as_str()
            .is_some_and(|p| p.contains("plan.html") && p.contains("plan.json"))
    );

    let apply = &workflow["jobs"]["apply"];
    assert_eq!(
        apply["if"],
        "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    );
    let run = scripts(apply);
    assert!(run.contains("gh run download"), "{run}");
    assert!(run.contains("engine apply reviewed/plan.json"), "{run}");

    // Secrets come from the repository's secrets, as environment variables.
    assert_eq!(
        workflow["env"]["HUBSPOT_TOKEN"],
        "${{ secrets.HUBSPOT_TOKEN }}"
    );
}

/// The first line of every comment `engine plan --format markdown` writes.
fn engine_marker() -> &'static str {
    "<!-- engine-plan -->"
}
