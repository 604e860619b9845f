//! Contract tests of the associations v4 routes and their label definitions: every answer
//! against crm-associations-v4.json / crm-associations-v4-labels.json, and what the control
//! route `/_sandbox/associations/{from}/{to}` then shows.

use super::*;

const ASSOCIATIONS: &str = "crm-associations-v4.json";
const LABELS: &str = "crm-associations-v4-labels.json";
const BATCH: &str = "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch";
const LABEL_LIST: &str = "/crm/v4/associations/{fromObjectType}/{toObjectType}/labels";
const RECORD: &str = "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}";

impl Sandbox {
    /// Creates `n` records of a built-in type without properties; returns their ids.
    pub(crate) async fn make(&self, object: &str, n: usize) -> Vec<String> {
        let inputs: Vec<Value> = (0..n)
            .map(|_| json!({"properties": {}, "associations": []}))
            .collect();
        let template = "/crm/v3/objects/{objectType}/batch/create";
        let path = format!("/crm/v3/objects/{object}/batch/create");
        let reply = self
            .api(
                GENERIC,
                Method::POST,
                template,
                &path,
                Some(json!({"inputs": inputs})),
            )
            .await;
        reply.expect(201);
        let mut ids: Vec<String> = reply.body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect();
        ids.sort_by_key(|id| id.parse::<u64>().unwrap_or_default());
        ids
    }

    /// A v4 batch call between two object types.
    async fn v4_batch(&self, pair: &str, action: &str, body: Value) -> Reply {
        let template = format!("{BATCH}/{action}");
        let path = format!("/crm/v4/associations/{pair}/batch/{action}");
        self.api(ASSOCIATIONS, Method::POST, &template, &path, Some(body))
            .await
    }

    /// `[(fromObjectId, toObjectId, typeIds)]` from the control route.
    async fn associated(&self, pair: &str) -> Vec<(String, String, Vec<u64>)> {
        let body = self
            .control(Method::GET, &format!("/_sandbox/associations/{pair}"), None)
            .await;
        body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let types = r["associationTypeIds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_u64)
                    .collect();
                let id = |key: &str| r[key].as_str().unwrap_or_default().to_owned();
                (id("fromObjectId"), id("toObjectId"), types)
            })
            .collect()
    }
}

fn labelled(from: &str, to: &str, types: &[(&str, u64)]) -> Value {
    let types: Vec<Value> = types
        .iter()
        .map(|(category, id)| json!({"associationCategory": category, "associationTypeId": id}))
        .collect();
    json!({"from": {"id": from}, "to": {"id": to}, "types": types})
}

fn owned(from: &str, to: &str, types: &[u64]) -> (String, String, Vec<u64>) {
    (from.to_owned(), to.to_owned(), types.to_vec())
}

#[tokio::test]
async fn associations_are_created_read_and_archived_both_ways() {
    let sandbox = Sandbox::default().await;
    let contacts = sandbox.make("contacts", 3).await;
    let [ada, alan, grace] = [&contacts[0], &contacts[1], &contacts[2]];
    let acme = &sandbox.make("companies", 1).await[0];
    let pair = "contacts/companies";

    let body = json!({"inputs": [
        labelled(ada, acme, &[("HUBSPOT_DEFINED", 1)]),
        labelled(alan, acme, &[("HUBSPOT_DEFINED", 279)]),
        labelled("999999", acme, &[("HUBSPOT_DEFINED", 279)]),
    ]});
    for _ in 0..2 {
        let reply = sandbox.v4_batch(pair, "create", body.clone()).await;
        reply
            .expect(207)
            .conforms(ASSOCIATIONS, "POST", &format!("{BATCH}/create"));
        assert_eq!(reply.body["results"][0]["labels"], json!(["Primary"]));
        assert_eq!(reply.body["results"][0]["fromObjectTypeId"], "0-1");
        assert_eq!(reply.body["results"][1]["labels"], json!([]));
        assert_eq!(reply.body["numErrors"], 1);
        assert_eq!(ids_of(&reply.body["errors"]), ["999999"]);
        assert_eq!(reply.body["errors"][0]["category"], "OBJECT_NOT_FOUND");
    }
    assert_eq!(
        sandbox.associated(pair).await,
        [owned(ada, acme, &[1, 279]), owned(alan, acme, &[279])],
        "a repeated create changes nothing; a labelled one brings the default"
    );
    assert_eq!(
        sandbox.associated("companies/contacts").await,
        [owned(acme, ada, &[2, 280]), owned(acme, alan, &[280])]
    );

    let good = json!({"inputs": [labelled(ada, acme, &[("HUBSPOT_DEFINED", 279)])]});
    let reply = sandbox.v4_batch("contacts/0-2", "create", good).await;
    reply
        .expect(201)
        .conforms(ASSOCIATIONS, "POST", &format!("{BATCH}/create"));

    let read = |ids: &[&str]| json!({"inputs": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()});
    let reply = sandbox
        .v4_batch("companies/contacts", "read", read(&[acme]))
        .await;
    reply
        .expect(200)
        .conforms(ASSOCIATIONS, "POST", &format!("{BATCH}/read"));
    let to = &reply.body["results"][0]["to"];
    assert_eq!(to[0]["toObjectId"], ada.as_str());
    assert_eq!(
        to[0]["associationTypes"],
        json!([{"category": "HUBSPOT_DEFINED", "typeId": 2, "label": "Primary"},
               {"category": "HUBSPOT_DEFINED", "typeId": 280}])
    );
    assert_eq!(to[1]["toObjectId"], alan.as_str());
    let reply = sandbox
        .v4_batch(pair, "read", read(&[ada, grace, "424242"]))
        .await;
    reply
        .expect(207)
        .conforms(ASSOCIATIONS, "POST", &format!("{BATCH}/read"));
    assert_eq!(reply.body["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(ids_of(&reply.body["errors"]), [grace.as_str(), "424242"]);

    let path = format!("/crm/v4/objects/contacts/{ada}/associations/companies");
    let reply = sandbox
        .api(ASSOCIATIONS, Method::GET, RECORD, &path, None)
        .await;
    reply.expect(200).conforms(ASSOCIATIONS, "GET", RECORD);
    assert_eq!(reply.body["results"][0]["toObjectId"], acme.as_str());
    let reply = sandbox
        .api(
            ASSOCIATIONS,
            Method::GET,
            RECORD,
            &format!("{path}?limit=501"),
            None,
        )
        .await;
    reply.expect(400).conforms(ASSOCIATIONS, "GET", RECORD);

    for wrong in [
        ("HUBSPOT_DEFINED", 4),
        ("USER_DEFINED", 279),
        ("HUBSPOT_DEFINED", 9999),
    ] {
        let body = json!({"inputs": [labelled(grace, acme, &[wrong])]});
        let reply = sandbox.v4_batch(pair, "create", body).await;
        reply
            .expect(400)
            .conforms(ASSOCIATIONS, "POST", &format!("{BATCH}/create"));
        assert_eq!(reply.body["category"], "VALIDATION_ERROR");
    }
    let too_many: Vec<Value> = (0..1001).map(|i| json!({"id": i.to_string()})).collect();
    let reply = sandbox
        .v4_batch(pair, "read", json!({"inputs": too_many}))
        .await;
    reply
        .expect(400)
        .conforms(ASSOCIATIONS, "POST", &format!("{BATCH}/read"));

    let unlabel = json!({"inputs": [labelled(ada, acme, &[("HUBSPOT_DEFINED", 1)])]});
    let reply = sandbox.v4_batch(pair, "labels/archive", unlabel).await;
    reply
        .expect(204)
        .conforms(ASSOCIATIONS, "POST", &format!("{BATCH}/labels/archive"));
    let archive = json!({"inputs": [{"from": {"id": acme}, "to": [{"id": alan}, {"id": "7"}]}]});
    let reply = sandbox
        .v4_batch("companies/contacts", "archive", archive)
        .await;
    reply
        .expect(204)
        .conforms(ASSOCIATIONS, "POST", &format!("{BATCH}/archive"));
    assert_eq!(sandbox.associated(pair).await, [owned(ada, acme, &[279])]);

    let delete = format!("/crm/v3/objects/companies/{acme}");
    sandbox
        .api(COMPANIES, Method::DELETE, &delete, &delete, None)
        .await
        .expect(204);
    assert!(sandbox.associated(pair).await.is_empty());
    assert!(sandbox.associated("companies/contacts").await.is_empty());

    let stats = sandbox.control(Method::GET, "/_sandbox/stats", None).await;
    assert_eq!(stats["requests"]["associations_create"], 6);
    assert_eq!(stats["requests"]["associations_read"], 3);
    assert_eq!(stats["requests"]["associations_list"], 2);
    sandbox.handle.shutdown().await;
}

#[tokio::test]
async fn defaults_single_records_and_user_defined_labels() {
    let sandbox = Sandbox::default().await;
    let ada = &sandbox.make("contacts", 1).await[0];
    let acme = &sandbox.make("companies", 1).await[0];
    let deal = &sandbox.make("deals", 1).await[0];

    let body = json!({"inputs": [
        {"from": {"id": deal}, "to": {"id": ada}},
        {"from": {"id": deal}, "to": {"id": "999999"}},
    ]});
    let reply = sandbox
        .v4_batch("deals/contacts", "associate/default", body)
        .await;
    reply
        .expect(200)
        .conforms(ASSOCIATIONS, "POST", &format!("{BATCH}/associate/default"));
    assert_eq!(
        reply.body["results"][0]["associationSpec"],
        json!({"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3})
    );
    assert_eq!(reply.body["numErrors"], 1);
    assert_eq!(
        sandbox.associated("contacts/deals").await,
        [owned(ada, deal, &[4])]
    );
    let reply = sandbox
        .v4_batch(
            "contacts/contacts",
            "associate/default",
            json!({"inputs": []}),
        )
        .await;
    reply
        .expect(400)
        .conforms(ASSOCIATIONS, "POST", &format!("{BATCH}/associate/default"));

    let template = "/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/\
                    {toObjectType}/{toObjectId}";
    let path = format!("/crm/v4/objects/contacts/{ada}/associations/default/companies/{acme}");
    let reply = sandbox
        .api(ASSOCIATIONS, Method::PUT, template, &path, None)
        .await;
    reply.expect(200).conforms(ASSOCIATIONS, "PUT", template);
    assert_eq!(
        reply.body["results"][0]["associationSpec"]["associationTypeId"],
        279
    );

    let labels = "/crm/v4/associations/contacts/companies/labels";
    let reply = sandbox
        .api(LABELS, Method::GET, LABEL_LIST, labels, None)
        .await;
    reply.expect(200).conforms(LABELS, "GET", LABEL_LIST);
    assert_eq!(
        reply.body["results"],
        json!([{"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"},
               {"category": "HUBSPOT_DEFINED", "typeId": 279}])
    );
    let create = json!({"label": "Manager", "name": "manager"});
    let reply = sandbox
        .api(
            LABELS,
            Method::POST,
            LABEL_LIST,
            labels,
            Some(create.clone()),
        )
        .await;
    reply.expect(200).conforms(LABELS, "POST", LABEL_LIST);
    assert_eq!(reply.body["results"][0]["category"], "USER_DEFINED");
    assert_eq!(reply.body["results"][0]["label"], "Manager");
    let manager = reply.body["results"][0]["typeId"]
        .as_u64()
        .unwrap_or_default();
    let inverse = reply.body["results"][1]["typeId"]
        .as_u64()
        .unwrap_or_default();
    assert!(manager > 279 && inverse > 279 && manager != inverse);
    let reply = sandbox
        .api(LABELS, Method::POST, LABEL_LIST, labels, Some(create))
        .await;
    reply.expect(409).conforms(LABELS, "POST", LABEL_LIST);

    let rename = json!({"associationTypeId": manager, "label": "Boss"});
    let reply = sandbox
        .api(LABELS, Method::PUT, LABEL_LIST, labels, Some(rename))
        .await;
    reply.expect(204).conforms(LABELS, "PUT", LABEL_LIST);
    let hubspot_own = json!({"associationTypeId": 279, "label": "Mine"});
    let reply = sandbox
        .api(LABELS, Method::PUT, LABEL_LIST, labels, Some(hubspot_own))
        .await;
    reply.expect(400).conforms(LABELS, "PUT", LABEL_LIST);

    let single = "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}";
    let path = format!("/crm/v4/objects/contacts/{ada}/associations/companies/{acme}");
    let types = json!([{"associationCategory": "USER_DEFINED", "associationTypeId": manager}]);
    let reply = sandbox
        .api(
            ASSOCIATIONS,
            Method::PUT,
            single,
            &path,
            Some(types.clone()),
        )
        .await;
    reply.expect(201).conforms(ASSOCIATIONS, "PUT", single);
    assert_eq!(reply.body["labels"], json!(["Boss"]));
    assert_eq!(
        sandbox.associated("companies/contacts").await,
        [owned(acme, ada, &[280, inverse])]
    );
    let missing = format!("/crm/v4/objects/contacts/{ada}/associations/companies/999999");
    let reply = sandbox
        .api(ASSOCIATIONS, Method::PUT, single, &missing, Some(types))
        .await;
    reply.expect(404).conforms(ASSOCIATIONS, "PUT", single);

    let delete_template = format!("{LABEL_LIST}/{{associationTypeId}}");
    let reply = sandbox
        .api(
            LABELS,
            Method::DELETE,
            &delete_template,
            &format!("{labels}/{manager}"),
            None,
        )
        .await;
    reply
        .expect(204)
        .conforms(LABELS, "DELETE", &delete_template);
    assert_eq!(
        sandbox.associated("contacts/companies").await,
        [owned(ada, acme, &[279])],
        "a deleted label leaves the associations that had it"
    );
    let reply = sandbox
        .api(
            LABELS,
            Method::DELETE,
            &delete_template,
            &format!("{labels}/279"),
            None,
        )
        .await;
    reply
        .expect(400)
        .conforms(LABELS, "DELETE", &delete_template);

    let reply = sandbox
        .api(ASSOCIATIONS, Method::DELETE, single, &path, None)
        .await;
    reply.expect(204).conforms(ASSOCIATIONS, "DELETE", single);
    assert!(sandbox.associated("contacts/companies").await.is_empty());

    sandbox.control(Method::POST, "/_sandbox/reset", None).await;
    assert!(sandbox.associated("contacts/deals").await.is_empty());
    let reply = sandbox
        .api(LABELS, Method::GET, LABEL_LIST, labels, None)
        .await;
    assert_eq!(reply.body["results"].as_array().map(Vec::len), Some(2));
    sandbox.handle.shutdown().await;
}

#[tokio::test]
async fn custom_objects_associate_through_their_schema() {
    let sandbox = Sandbox::default().await;
    let car = sandbox.create_car().await;
    let type_id = car["objectTypeId"].as_str().unwrap_or_default().to_owned();
    let definition = car["associations"][0]["id"].as_str().unwrap_or_default();
    let labels = format!("/crm/v4/associations/{type_id}/contacts/labels");
    let reply = sandbox
        .api(LABELS, Method::GET, LABEL_LIST, &labels, None)
        .await;
    reply.expect(200).conforms(LABELS, "GET", LABEL_LIST);
    assert_eq!(reply.body["results"][0]["category"], "USER_DEFINED");
    assert_eq!(
        reply.body["results"][0]["typeId"].to_string(),
        definition,
        "the schema's association definition is the car → contact type"
    );

    let create = format!("/crm/v3/objects/{type_id}");
    let body = json!({"properties": {"vin": "VF1", "model": "Zoe"}, "associations": []});
    let reply = sandbox
        .api(
            CUSTOM,
            Method::POST,
            "/crm/v3/objects/{objectType}",
            &create,
            Some(body),
        )
        .await;
    reply.expect(201);
    let vehicle = reply.body["id"].as_str().unwrap_or_default().to_owned();
    let ada = &sandbox.make("contacts", 1).await[0];
    let body = json!({"inputs": [{"from": {"id": ada}, "to": {"id": vehicle}}]});
    let reply = sandbox
        .v4_batch("contacts/p_car", "associate/default", body)
        .await;
    reply
        .expect(200)
        .conforms(ASSOCIATIONS, "POST", &format!("{BATCH}/associate/default"));
    let reply = sandbox
        .v4_batch(
            &format!("contacts/{type_id}"),
            "read",
            json!({"inputs": [{"id": ada}]}),
        )
        .await;
    reply
        .expect(200)
        .conforms(ASSOCIATIONS, "POST", &format!("{BATCH}/read"));
    assert_eq!(
        reply.body["results"][0]["to"][0]["toObjectId"],
        vehicle.as_str()
    );
    let reply = sandbox
        .v4_batch(
            "companies/p_car",
            "associate/default",
            json!({"inputs": []}),
        )
        .await;
    reply
        .expect(400)
        .conforms(ASSOCIATIONS, "POST", &format!("{BATCH}/associate/default"));
    sandbox.handle.shutdown().await;
}
