//! Tests of the owners routes. No contract file covers owners, so the shape is checked field
//! by field (HubSpot's documented `PublicOwner`), and errors against the contracts' `Error`.

use super::*;

const OWNERS: &str = "/crm/v3/owners";

fn assert_error(reply: &Reply, status: u16) {
    reply.expect(status);
    if let Err(errors) = contract::validate_schema(CONTACTS, "Error", &reply.body) {
        panic!("not an Error body: {errors:#?}\n{:#}", reply.body);
    }
}

#[tokio::test]
async fn owners_are_seeded_paged_and_added() {
    let sandbox = Sandbox::default().await;
    let reply = sandbox.send(Some(TOKEN), Method::GET, OWNERS, None).await;
    reply.expect(200);
    let results = reply.body["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(results.len(), 3);
    let first = &results[0];
    for key in [
        "id",
        "email",
        "firstName",
        "lastName",
        "createdAt",
        "updatedAt",
    ] {
        assert!(first[key].is_string(), "{key}: {first:#}");
    }
    assert_eq!(first["type"], "PERSON");
    assert!(first["userId"].is_u64() && first["archived"] == false);

    let reply = sandbox
        .send(Some(TOKEN), Method::GET, &format!("{OWNERS}?limit=2"), None)
        .await;
    let after = reply.body["paging"]["next"]["after"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let reply = sandbox
        .send(
            Some(TOKEN),
            Method::GET,
            &format!("{OWNERS}?limit=2&after={after}"),
            None,
        )
        .await;
    assert_eq!(reply.body["results"].as_array().map(Vec::len), Some(1));
    assert!(reply.body.get("paging").is_none());
    let by_email = format!("{OWNERS}?email=GRACE.hopper@example.com");
    let reply = sandbox
        .send(Some(TOKEN), Method::GET, &by_email, None)
        .await;
    assert_eq!(reply.body["results"][0]["lastName"], "Hopper");

    let id = first["id"].as_str().unwrap_or_default();
    let reply = sandbox
        .send(Some(TOKEN), Method::GET, &format!("{OWNERS}/{id}"), None)
        .await;
    reply.expect(200);
    assert_eq!(reply.body["email"], first["email"]);
    let user = format!("{OWNERS}/{}?idProperty=userId", first["userId"]);
    let reply = sandbox.send(Some(TOKEN), Method::GET, &user, None).await;
    assert_eq!(reply.body["id"], id);
    let reply = sandbox
        .send(Some(TOKEN), Method::GET, &format!("{OWNERS}/1"), None)
        .await;
    assert_error(&reply, 404);
    let reply = sandbox
        .send(
            Some(TOKEN),
            Method::GET,
            &format!("{OWNERS}?limit=501"),
            None,
        )
        .await;
    assert_error(&reply, 400);
    let reply = sandbox.send(None, Method::GET, OWNERS, None).await;
    assert_error(&reply, 401);

    let new = json!({"email": "katherine@example.com", "firstName": "Katherine",
        "lastName": "Johnson"});
    let added = sandbox
        .control(Method::POST, "/_sandbox/owners", Some(new.clone()))
        .await;
    assert_eq!(added["firstName"], "Katherine");
    let reply = sandbox
        .send(
            None,
            Method::POST,
            "/_sandbox/owners",
            Some(Body::Json(new)),
        )
        .await;
    assert_error(&reply, 400);
    let all = sandbox.control(Method::GET, "/_sandbox/owners", None).await;
    assert_eq!(all["total"], 4);
    sandbox.control(Method::POST, "/_sandbox/reset", None).await;
    let all = sandbox.control(Method::GET, "/_sandbox/owners", None).await;
    assert_eq!(all["total"], 3);
    let stats = sandbox.control(Method::GET, "/_sandbox/stats", None).await;
    assert_eq!(stats["requests"], json!({}));
    sandbox.handle.shutdown().await;
}
