//! SOQL through `GET /query` (FACTS Q1, L4, E4).

use reqwest::Method;
use serde_json::{Value, json};

use crate::{Body, Sandbox, TOKEN, V};

/// `GET /query?q=…` with the query percent-encoded as a client sends it.
async fn query(sandbox: &Sandbox, soql: &str) -> crate::Reply {
    let url = format!("{}{V}/query", sandbox.handle.base_url);
    let encoded = reqwest::Url::parse_with_params(&url, &[("q", soql)]).expect("a valid URL");
    let path = format!("{}?{}", encoded.path(), encoded.query().unwrap_or_default());
    sandbox
        .send(Some(TOKEN), Method::GET, &path, Body::None)
        .await
}

fn last_names(reply: &crate::Reply) -> Vec<String> {
    reply.body["records"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|r| r["LastName"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn string_literals_unescape_as_soql_says() {
    let sandbox = Sandbox::default().await;
    sandbox
        .contact(json!({"LastName": "O'Brien", "Email": "ob@example.com"}))
        .await;
    sandbox
        .contact(json!({"LastName": "Back\\slash", "Email": "Ann@Example.com"}))
        .await;
    sandbox.contact(json!({"LastName": "Tab\there"})).await;
    sandbox.contact(json!({"LastName": "Quote\"d"})).await;
    let cases = [
        (
            r"SELECT LastName FROM Contact WHERE LastName = 'O\'Brien'",
            vec!["O'Brien"],
        ),
        (
            r"SELECT LastName FROM Contact WHERE LastName = 'Back\\slash'",
            vec!["Back\\slash"],
        ),
        (
            r"SELECT LastName FROM Contact WHERE LastName = 'tab\THERE'",
            vec!["Tab\there"],
        ),
        (
            r#"SELECT LastName FROM Contact WHERE LastName = 'Quote\"d'"#,
            vec!["Quote\"d"],
        ),
        (
            r"SELECT LastName FROM Contact WHERE LastName IN ('o\'brien', 'BACK\\SLASH')",
            vec!["O'Brien", "Back\\slash"],
        ),
        // Emails compare ignoring case.
        (
            "SELECT LastName FROM Contact WHERE Email = 'ANN@EXAMPLE.COM'",
            vec!["Back\\slash"],
        ),
        (
            "SELECT LastName FROM Contact WHERE Email IN ('ann@example.com') OR LastName LIKE 'o\\'b%'",
            vec!["O'Brien", "Back\\slash"],
        ),
    ];
    for (soql, expected) in cases {
        let reply = query(&sandbox, soql).await;
        reply.expect(200);
        assert_eq!(last_names(&reply), expected, "{soql}");
        assert_eq!(reply.body["totalSize"], expected.len(), "{soql}");
        assert_eq!(reply.body["done"], true);
    }
    // An unknown escape is a parse error.
    query(&sandbox, r"SELECT Id FROM Contact WHERE LastName = 'a\qb'")
        .await
        .error(400, "MALFORMED_QUERY");
}

#[tokio::test]
async fn query_answers_have_facts_q1_shape() {
    let sandbox = Sandbox::default().await;
    let account = sandbox
        .api(
            Method::POST,
            "/sobjects/Account",
            Some(json!({"Name": "Acme"})),
        )
        .await;
    let account_id = account.body["id"].as_str().unwrap_or_default().to_owned();
    let id = sandbox
        .contact(json!({"LastName": "Smith", "AccountId": &account_id}))
        .await;
    sandbox.contact(json!({"LastName": "Jones"})).await;
    let reply = query(
        &sandbox,
        &format!(
            "SELECT Id, Name, Account.Name FROM Contact WHERE Id = '{}'",
            &id[..15]
        ),
    )
    .await;
    reply.expect(200);
    assert!(reply.header("sforce-limit-info").is_some());
    let record = &reply.body["records"][0];
    assert_eq!(
        record["attributes"],
        json!({"type": "Contact", "url": format!("{V}/sobjects/Contact/{id}")})
    );
    assert_eq!(record["Id"], id.as_str());
    assert_eq!(record["Name"], "Smith");
    assert_eq!(record["Account"]["Name"], "Acme");
    assert_eq!(record["Account"]["attributes"]["type"], "Account");
    assert!(reply.body.get("nextRecordsUrl").is_none());
    let count = query(&sandbox, "SELECT COUNT() FROM Contact").await;
    assert_eq!(
        count.body,
        json!({"totalSize": 2, "done": true, "records": []})
    );
    let ordered = query(
        &sandbox,
        "SELECT LastName FROM Contact ORDER BY LastName DESC LIMIT 1",
    )
    .await;
    assert_eq!(last_names(&ordered), ["Smith"]);
    let and_or = query(&sandbox, "select lastname from contact where (LastName = 'smith' or LastName = 'Nobody') and AccountId != null").await;
    assert_eq!(last_names(&and_or), ["Smith"]);
    // The Postman collection's example, in lower case (rest/query.json).
    let postman = query(&sandbox, "SELECT name from Account").await;
    postman.expect(200);
    assert_eq!(postman.body["records"][0]["Name"], "Acme");
}

#[tokio::test]
async fn bad_queries_are_400_with_salesforce_codes() {
    let sandbox = Sandbox::default().await;
    // FACTS Q1: invalid SOQL is MALFORMED_QUERY, located like Salesforce's messages.
    let reply = query(&sandbox, "SELECT Id FROM Contact WHERE").await;
    reply.error(400, "MALFORMED_QUERY");
    assert_eq!(
        reply.body[0]["message"],
        "\nSELECT Id FROM Contact WHERE\n                            ^\nERROR at Row:1:Column:29\nunexpected token: <EOF>"
    );
    // FACTS E4: an unknown column is INVALID_FIELD.
    let field = query(&sandbox, "SELECT Id, Foo__c FROM Contact").await;
    field.error(400, "INVALID_FIELD");
    assert!(
        field.body[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("No such column 'Foo__c' on entity 'Contact'"))
    );
    query(&sandbox, "SELECT Id FROM Nope__c")
        .await
        .error(400, "INVALID_TYPE");
    query(&sandbox, "SELECT Id FROM Contact WHERE Id = 'abc'")
        .await
        .error(400, "INVALID_QUERY_FILTER_OPERATOR");
    query(
        &sandbox,
        "SELECT Id FROM Contact WHERE CreatedDate > '2024-01-01'",
    )
    .await
    .error(400, "MALFORMED_QUERY");
    sandbox
        .send(Some(TOKEN), Method::GET, &format!("{V}/query"), Body::None)
        .await
        .error(400, "MALFORMED_QUERY");
    sandbox
        .send(
            Some(TOKEN),
            Method::GET,
            &format!("{V}/query/01gXX-2000"),
            Body::None,
        )
        .await
        .error(400, "INVALID_QUERY_LOCATOR");
    // A hidden object is not supported either.
    sandbox
        .faults(json!({"inaccessible_objects": ["Lead"]}))
        .await;
    query(&sandbox, "SELECT Id FROM Lead")
        .await
        .error(400, "INVALID_TYPE");
    // A URI past 16,384 characters is 414.
    let long = format!(
        "SELECT Id FROM Contact WHERE LastName IN ({})",
        vec!["'x'"; 5_000].join(",")
    );
    assert_eq!(query(&sandbox, &long).await.status, 414);
}

#[tokio::test]
async fn large_results_page_through_next_records_url() {
    let sandbox = Sandbox::default().await;
    for batch in 0..23 {
        let records: Vec<Value> = (0..200)
            .map(|i| json!({"attributes": {"type": "Contact"}, "LastName": format!("L{}", batch * 200 + i)}))
            .collect();
        let reply = sandbox
            .api(
                Method::POST,
                "/composite/sobjects",
                Some(json!({"records": records})),
            )
            .await;
        reply.expect(200);
    }
    // FACTS L4: 2,000 per page; Q1: done, nextRecordsUrl, totalSize.
    let first = query(&sandbox, "SELECT Id FROM Contact").await;
    first.expect(200);
    assert_eq!(first.body["totalSize"], 4_600);
    assert_eq!(first.body["done"], false);
    let mut seen: Vec<String> = Vec::new();
    let mut page = first;
    let mut pages = 0;
    loop {
        pages += 1;
        let records = page.body["records"].as_array().cloned().unwrap_or_default();
        assert!(records.len() <= 2_000);
        seen.extend(
            records
                .iter()
                .filter_map(|r| r["Id"].as_str().map(str::to_owned)),
        );
        let Some(next) = page.body["nextRecordsUrl"].as_str().map(str::to_owned) else {
            assert_eq!(page.body["done"], true);
            break;
        };
        assert!(next.starts_with(&format!("{V}/query/01g")), "{next}");
        page = sandbox
            .send(Some(TOKEN), Method::GET, &next, Body::None)
            .await;
        page.expect(200);
    }
    assert_eq!(pages, 3);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4_600);
    // Sforce-Query-Options: batchSize (200 to 2,000).
    let url = format!(
        "{}{V}/query?q=SELECT+Id+FROM+Contact",
        sandbox.handle.base_url
    );
    let small = reqwest::Client::builder()
        .build()
        .expect("a client")
        .get(url)
        .bearer_auth(TOKEN)
        .header("Sforce-Query-Options", "batchSize=500")
        .send()
        .await
        .expect("an answer")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(small["records"].as_array().map(Vec::len), Some(500));
    // Indexed lookups answer the same as scans.
    let by_index = query(&sandbox, "SELECT Id FROM Contact WHERE LastName = 'L4599'").await;
    assert_eq!(by_index.body["totalSize"], 1);
}
