//! The sandboxes as a user starts them (`engine sandbox …`): the Salesforce one answers the
//! OAuth refresh-token grant with an instance URL on itself, and the calls a connector makes
//! next (describe, a SOQL query) with that token.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::ENGINE;

#[test]
fn the_salesforce_sandbox_serves_oauth_describe_and_soql_from_the_cli() {
    let mut sandbox = Command::new(ENGINE)
        .args(["sandbox", "salesforce", "--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the engine starts");
    let stderr = sandbox.stderr.take().expect("stderr is piped");
    let line = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("listening on"))
        .expect("the sandbox says where it listens");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("a URL")
        .to_string();
    assert!(line.contains("Salesforce sandbox"), "{line}");

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client");
    runtime.block_on(async {
        let token: Value = client
            .post(format!("{base}/services/oauth2/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", "sandbox-client-id"),
                ("client_secret", "sandbox-client-secret"),
                ("refresh_token", "sandbox-refresh-token"),
            ])
            .send()
            .await
            .expect("the token endpoint answers")
            .json()
            .await
            .expect("JSON");
        assert_eq!(token["instance_url"], base.as_str(), "{token}");
        let access = token["access_token"].as_str().expect("an access token");

        let describe = client
            .get(format!(
                "{base}/services/data/v62.0/sobjects/Contact/describe"
            ))
            .bearer_auth(access)
            .send()
            .await
            .expect("describe answers");
        assert_eq!(describe.status(), 200);
        assert!(
            describe
                .headers()
                .get("sforce-limit-info")
                .is_some_and(|v| v.to_str().unwrap_or("").starts_with("api-usage=")),
            "the allocation header"
        );
        let describe: Value = describe.json().await.expect("JSON");
        assert_eq!(describe["keyPrefix"], "003");

        let query: Value = client
            .get(format!("{base}/services/data/v62.0/query"))
            .query(&[(
                "q",
                "SELECT Id FROM Contact WHERE Email = 'o\\'brien@example.com'",
            )])
            .bearer_auth(access)
            .send()
            .await
            .expect("the query answers")
            .json()
            .await
            .expect("JSON");
        assert_eq!(query["totalSize"], 0, "{query}");
        assert_eq!(query["done"], true);
    });
    sandbox.kill().expect("the sandbox stops");
    let _ = sandbox.wait();
}
