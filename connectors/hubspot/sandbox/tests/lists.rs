//! Contract tests of the lists v3 routes: every answer against crm-lists-v3.json, and what the
//! control route `/_sandbox/lists` then shows.

use super::*;

const LISTS: &str = "crm-lists-v3.json";
const LIST_ROOT: &str = "/crm/v3/lists";
const LIST: &str = "/crm/v3/lists/{listId}";
const MEMBERSHIPS: &str = "/crm/v3/lists/{listId}/memberships";

impl Sandbox {
    async fn create_list(&self, name: &str, processing_type: &str) -> Reply {
        let mut body =
            json!({"name": name, "objectTypeId": "0-1", "processingType": processing_type});
        if processing_type == "DYNAMIC" {
            body["filterBranch"] = json!({"filterBranchType": "OR", "filterBranchOperator": "OR",
                "filterBranches": [], "filters": []});
        }
        self.api(LISTS, Method::POST, LIST_ROOT, LIST_ROOT, Some(body))
            .await
    }

    async fn membership(&self, list: &str, action: &str, body: Value) -> Reply {
        let template = format!("{MEMBERSHIPS}/{action}");
        let path = format!("/crm/v3/lists/{list}/memberships/{action}");
        self.api(LISTS, Method::PUT, &template, &path, Some(body))
            .await
    }

    /// The record ids of a list, from the control route.
    async fn members(&self, list: &str) -> Vec<String> {
        let body = self.control(Method::GET, "/_sandbox/lists", None).await;
        body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["listId"] == list)
            .and_then(|l| l["recordIds"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|id| id.as_str().map(str::to_owned))
            .collect()
    }
}

#[tokio::test]
async fn manual_lists_take_memberships_and_page_through_them() {
    let sandbox = Sandbox::default().await;
    let contacts = sandbox.make("contacts", 5).await;
    let company = &sandbox.make("companies", 1).await[0];

    let reply = sandbox.create_list("VIP customers", "MANUAL").await;
    reply.expect(200).conforms(LISTS, "POST", LIST_ROOT);
    let list = reply.body["list"]["listId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(reply.body["list"]["processingType"], "MANUAL");
    assert_eq!(reply.body["list"]["size"], 0);
    let reply = sandbox.create_list("vip CUSTOMERS", "MANUAL").await;
    reply.expect(409).conforms(LISTS, "POST", LIST_ROOT);
    let reply = sandbox.create_list("Static", "STATIC").await;
    reply.expect(400).conforms(LISTS, "POST", LIST_ROOT);

    let mut add: Vec<&str> = contacts.iter().map(String::as_str).collect();
    add.extend(["999999", company.as_str(), contacts[0].as_str()]);
    let reply = sandbox.membership(&list, "add", json!(add)).await;
    reply
        .expect(200)
        .conforms(LISTS, "PUT", &format!("{MEMBERSHIPS}/add"));
    assert_eq!(reply.body["recordsIdsAdded"], json!(contacts));
    assert_eq!(
        reply.body["recordIdsMissing"],
        json!(["999999", company]),
        "a company is no record of a contact list"
    );
    let reply = sandbox.membership(&list, "add", json!([contacts[0]])).await;
    assert_eq!(
        reply.body["recordsIdsAdded"],
        json!([]),
        "members are ignored"
    );

    let reply = sandbox
        .membership(&list, "remove", json!([contacts[1], "424242"]))
        .await;
    reply
        .expect(200)
        .conforms(LISTS, "PUT", &format!("{MEMBERSHIPS}/remove"));
    assert_eq!(reply.body["recordIdsRemoved"], json!([contacts[1]]));
    assert_eq!(reply.body["recordIdsMissing"], json!(["424242"]));
    let body = json!({"recordIdsToAdd": [contacts[1]], "recordIdsToRemove": [contacts[2]]});
    let reply = sandbox.membership(&list, "add-and-remove", body).await;
    reply
        .expect(200)
        .conforms(LISTS, "PUT", &format!("{MEMBERSHIPS}/add-and-remove"));
    assert_eq!(reply.body["recordsIdsAdded"], json!([contacts[1]]));
    assert_eq!(reply.body["recordIdsRemoved"], json!([contacts[2]]));

    let members = format!("/crm/v3/lists/{list}/memberships");
    let reply = sandbox
        .api(
            LISTS,
            Method::GET,
            MEMBERSHIPS,
            &format!("{members}?limit=2"),
            None,
        )
        .await;
    reply.expect(200).conforms(LISTS, "GET", MEMBERSHIPS);
    assert_eq!(reply.body["total"], 4);
    assert_eq!(reply.body["results"][0]["recordId"], contacts[0].as_str());
    let after = reply.body["paging"]["next"]["after"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let reply = sandbox
        .api(
            LISTS,
            Method::GET,
            MEMBERSHIPS,
            &format!("{members}?limit=2&after={after}"),
            None,
        )
        .await;
    reply.expect(200).conforms(LISTS, "GET", MEMBERSHIPS);
    let second: Vec<&str> = reply.body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["recordId"].as_str())
        .collect();
    assert_eq!(second, [contacts[3].as_str(), contacts[4].as_str()]);
    assert!(reply.body.get("paging").is_none());
    let reply = sandbox
        .api(
            LISTS,
            Method::GET,
            MEMBERSHIPS,
            &format!("{members}?limit=251"),
            None,
        )
        .await;
    reply.expect(400).conforms(LISTS, "GET", MEMBERSHIPS);

    let delete = format!("/crm/v3/objects/contacts/{}", contacts[0]);
    sandbox
        .api(CONTACTS, Method::DELETE, &delete, &delete, None)
        .await
        .expect(204);
    assert_eq!(
        sandbox.members(&list).await,
        [
            contacts[1].clone(),
            contacts[3].clone(),
            contacts[4].clone()
        ],
        "an archived record leaves its lists"
    );

    let reply = sandbox
        .api(LISTS, Method::DELETE, MEMBERSHIPS, &members, None)
        .await;
    reply.expect(204).conforms(LISTS, "DELETE", MEMBERSHIPS);
    assert!(sandbox.members(&list).await.is_empty());
    let stats = sandbox.control(Method::GET, "/_sandbox/stats", None).await;
    assert_eq!(stats["requests"]["list_memberships_add"], 2);
    assert_eq!(stats["requests"]["list_memberships"], 3);
    sandbox.handle.shutdown().await;
}

#[tokio::test]
async fn lists_are_found_by_id_name_and_search() {
    let sandbox = Sandbox::default().await;
    let ada = &sandbox.make("contacts", 1).await[0];
    let mut ids = Vec::new();
    for (name, processing_type) in [
        ("Newsletter", "MANUAL"),
        ("Newsletter bounces", "SNAPSHOT"),
        ("Everyone", "DYNAMIC"),
    ] {
        let reply = sandbox.create_list(name, processing_type).await;
        reply.expect(200).conforms(LISTS, "POST", LIST_ROOT);
        ids.push(
            reply.body["list"]["listId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }

    let reply = sandbox
        .api(
            LISTS,
            Method::GET,
            LIST,
            &format!("/crm/v3/lists/{}", ids[2]),
            None,
        )
        .await;
    reply.expect(200).conforms(LISTS, "GET", LIST);
    assert!(reply.body["list"].get("filterBranch").is_none());
    let with_filters = format!("/crm/v3/lists/{}?includeFilters=true", ids[2]);
    let reply = sandbox
        .api(LISTS, Method::GET, LIST, &with_filters, None)
        .await;
    reply.expect(200).conforms(LISTS, "GET", LIST);
    assert_eq!(reply.body["list"]["filterBranch"]["filterBranchType"], "OR");
    let reply = sandbox
        .api(LISTS, Method::GET, LIST, "/crm/v3/lists/424242", None)
        .await;
    reply.expect(404).conforms(LISTS, "GET", LIST);

    let by_name = "/crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}";
    let reply = sandbox
        .api(
            LISTS,
            Method::GET,
            by_name,
            "/crm/v3/lists/object-type-id/0-1/name/newsletter",
            None,
        )
        .await;
    reply.expect(200).conforms(LISTS, "GET", by_name);
    assert_eq!(reply.body["list"]["listId"], ids[0].as_str());
    let reply = sandbox
        .api(
            LISTS,
            Method::GET,
            by_name,
            "/crm/v3/lists/object-type-id/0-2/name/Newsletter",
            None,
        )
        .await;
    reply.expect(404).conforms(LISTS, "GET", by_name);

    let search = "/crm/v3/lists/search";
    let body = json!({"query": "newsletter", "offset": 0, "count": 1, "additionalProperties": []});
    let reply = sandbox
        .api(LISTS, Method::POST, search, search, Some(body))
        .await;
    reply.expect(200).conforms(LISTS, "POST", search);
    assert_eq!(reply.body["total"], 2);
    assert_eq!(reply.body["hasMore"], true);
    assert_eq!(
        reply.body["lists"][0]["additionalProperties"]["hs_list_size"],
        "0"
    );
    let body = json!({"query": "", "offset": 1, "count": 10, "additionalProperties": [],
        "processingTypes": ["SNAPSHOT", "DYNAMIC"]});
    let reply = sandbox
        .api(LISTS, Method::POST, search, search, Some(body))
        .await;
    reply.expect(200).conforms(LISTS, "POST", search);
    assert_eq!(reply.body["lists"][0]["listId"], ids[2].as_str());
    assert_eq!(reply.body["hasMore"], false);
    let body = json!({"offset": 0, "count": 501, "additionalProperties": []});
    let reply = sandbox
        .api(LISTS, Method::POST, search, search, Some(body))
        .await;
    reply.expect(400).conforms(LISTS, "POST", search);

    let reply = sandbox
        .api(
            LISTS,
            Method::GET,
            LIST_ROOT,
            &format!("/crm/v3/lists?listIds={}&listIds=9", ids[1]),
            None,
        )
        .await;
    reply.expect(200).conforms(LISTS, "GET", LIST_ROOT);
    assert_eq!(reply.body["lists"].as_array().map(Vec::len), Some(1));

    let reply = sandbox.membership(&ids[2], "add", json!([ada])).await;
    reply
        .expect(400)
        .conforms(LISTS, "PUT", &format!("{MEMBERSHIPS}/add"));
    let reply = sandbox.membership(&ids[1], "add", json!([ada])).await;
    reply.expect(200);
    let reply = sandbox.membership("424242", "add", json!([ada])).await;
    reply
        .expect(404)
        .conforms(LISTS, "PUT", &format!("{MEMBERSHIPS}/add"));

    let reply = sandbox
        .api(
            LISTS,
            Method::DELETE,
            LIST,
            &format!("/crm/v3/lists/{}", ids[0]),
            None,
        )
        .await;
    reply.expect(204).conforms(LISTS, "DELETE", LIST);
    sandbox.control(Method::POST, "/_sandbox/reset", None).await;
    let lists = sandbox.control(Method::GET, "/_sandbox/lists", None).await;
    assert_eq!(lists["total"], 0);
    sandbox.handle.shutdown().await;
}
