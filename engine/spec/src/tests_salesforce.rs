//! Salesforce destinations and syncs: the keys each type takes, `auth:` secrets,
//! `match_records:` and `bulk_threshold:`, as the user sees their errors.

use insta::assert_snapshot;

use crate::tests::{errors, load};
use crate::*;

const ENGINE: &str = r#"version: 1
project: thankview
tables:
  engagement:
    path: data/users.csv
destinations:
  salesforce:
    type: salesforce
    login: "${env:SALESFORCE_LOGIN_URL}"
    api_version: "v62.0"
    auth:
      consumer_key: "${env:SALESFORCE_CONSUMER_KEY}"
      consumer_secret: "${env:SALESFORCE_CONSUMER_SECRET}"
      refresh_token: "${env:SALESFORCE_REFRESH_TOKEN}"
    rate_limit:
      requests_per_second: 5
      daily_share: 0.5
"#;

const SYNC: &str = r#"name: thankviews
model: contacts
destination: salesforce
object: ThankView__c
match:
  property: Send_Id__c
  column: id
mapping:
  - property: Event_Name__c
    column: first_name
match_records:
  id_column: id
  email_column: email
  contact_field: Contact__c
  lead_field: Lead__c
  on_duplicate: most_recent
bulk_threshold: 50
"#;

#[test]
fn a_salesforce_destination_and_sync_load() {
    let (_dir, project, warnings) = load(&[
        ("engine.yaml", ENGINE),
        ("syncs/contacts_to_hubspot.yaml", ""),
        ("syncs/thankviews.yaml", SYNC),
    ]);
    assert!(warnings.is_empty(), "{warnings:?}");
    let destination = &project.destinations[0];
    assert_eq!(destination.kind, DestinationKind::Salesforce);
    assert_eq!(
        destination.login.as_ref().map(|l| l.raw.as_str()),
        Some("${env:SALESFORCE_LOGIN_URL}")
    );
    assert_eq!(
        destination.api_version.as_ref().map(|v| v.value.as_str()),
        Some("v62.0")
    );
    assert_eq!(destination.daily_share, Some(0.5));
    let auth = destination.auth.as_ref().expect("auth");
    let SalesforceAuthSpec::RefreshToken { refresh_token, .. } = auth else {
        panic!("the refresh-token flow: {auth:?}");
    };
    assert_eq!(refresh_token.raw, "${env:SALESFORCE_REFRESH_TOKEN}");
    let extra = project.salesforce_sync("thankviews").expect("settings");
    assert_eq!(extra.bulk_threshold.as_ref().map(|b| b.value), Some(50));
    let records = extra.match_records.as_ref().expect("match_records");
    assert_eq!(records.contact_field.value, "Contact__c");
    assert_eq!(records.on_duplicate, OnDuplicate::MostRecent);
    // The cascade's columns travel as two extra mapped properties.
    let sync = project.sync("thankviews").expect("sync");
    let names: Vec<&str> = sync
        .mapping
        .iter()
        .map(|m| m.property.value.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "Event_Name__c",
            MATCH_RECORDS_ID_PROPERTY,
            MATCH_RECORDS_EMAIL_PROPERTY
        ]
    );
}

#[test]
fn salesforce_settings_in_the_wrong_place_or_shape_are_refused() {
    let engine = r#"version: 1
project: thankview
tables:
  engagement:
    path: data/users.csv
destinations:
  salesforce:
    type: salesforce
    token: "${env:SALESFORCE_TOKEN}"
    login: prod
    api_version: 62
    auth:
      consumer_key: "${env:SALESFORCE_CONSUMER_KEY}"
      consumer_secret: 3MVG9-pasted-secret
  hubspot:
    type: hubspot
    token: "${env:HUBSPOT_TOKEN}"
    login: test
    rate_limit:
      daily_share: 0.5
"#;
    let sync = r#"name: thankviews
model: contacts
destination: salesforce
object: ThankView__c
match:
  property: Send_Id__c
  column: id
mapping:
  - property: Contact__c
    column: id
match_records:
  contact_field: Contact__c
  on_duplicate: newest
"#;
    let hubspot_sync = r#"name: contacts_to_hubspot
model: contacts
destination: hubspot
object: contacts
match:
  property: email
  column: email
bulk_threshold: 10
"#;
    let out = errors(&[
        ("engine.yaml", engine),
        ("syncs/contacts_to_hubspot.yaml", hubspot_sync),
        ("syncs/thankviews.yaml", sync),
    ]);
    assert!(!out.contains("3MVG9"), "a secret is never echoed: {out}");
    assert_snapshot!(out, @r#"
        error[spec::option_for_other_type]: `token` is a HubSpot setting, and destination `salesforce` is `type: salesforce`
         --> engine.yaml:9:5
          |
        9 |     token: "${env:SALESFORCE_TOKEN}"
          |     ^^^^^
          = note: a Salesforce destination signs in with `login:` and `auth: { consumer_key, consumer_secret, refresh_token }` (or `auth: { consumer_key, username, private_key }` for the JWT bearer flow)
          = hint: remove `token`, or change `type:`

        error[spec::invalid_login]: `login` must be `login`, `test` or an http(s) URL, found `prod`
          --> engine.yaml:10:12
           |
        10 |     login: prod
           |            ^^^^
           = hint: use `login` for production and Developer Edition orgs, `test` for sandbox orgs, or your My Domain URL such as `https://acme.my.salesforce.com`

        error[spec::invalid_api_version]: `api_version` must look like `v62.0`, found `62`
          --> engine.yaml:11:18
           |
        11 |     api_version: 62
           |                  ^^
           = hint: write the REST API version as `vXX.X` (quote it: `api_version: "v62.0"`), or leave it out for the connector's default

        error[spec::missing_key]: `auth` is missing the required key `refresh_token`
          --> engine.yaml:12:5
           |
        12 |     auth:
           |     ^^^^
           = hint: add `refresh_token:` to `auth`

        error[spec::literal_secret]: `consumer_secret` is written in the file; secrets must come from the environment
          --> engine.yaml:14:24
           |
        14 |       consumer_secret: *******************
           |                        ^^^^^^^^^^^^^^^^^^^
           = note: a consumer secret committed to git is leaked: revoke it and create a new one
           = hint: export the consumer secret as `SALESFORCE_CONSUMER_SECRET` and write `consumer_secret: "${env:SALESFORCE_CONSUMER_SECRET}"`

        error[spec::option_for_other_type]: `login` is a Salesforce setting, and destination `hubspot` is `type: hubspot`
          --> engine.yaml:18:5
           |
        18 |     login: test
           |     ^^^^^
           = note: a HubSpot destination signs in with `token:` (and `base_url:` for the sandbox)
           = hint: remove `login`, or change `type:`

        error[spec::option_for_other_type]: `daily_share` is a Salesforce setting (the share of the org's daily API allocation a run may use)
          --> engine.yaml:20:7
           |
        20 |       daily_share: 0.5
           |       ^^^^^^^^^^^
           = hint: remove `daily_share`

        error[spec::option_for_other_type]: `bulk_threshold` is a Salesforce setting, and destination `hubspot` is `type: hubspot`
         --> syncs/contacts_to_hubspot.yaml:8:1
          |
        8 | bulk_threshold: 10
          | ^^^^^^^^^^^^^^
          = hint: remove `bulk_threshold`, or send this sync to a Salesforce destination

        error[spec::match_records_field_mapped]: `Contact__c` is filled by `match_records` and cannot also be mapped
         --> syncs/thankviews.yaml:9:15
          |
        9 |   - property: Contact__c
          |               ^^^^^^^^^^
          = note: `match_records` sets it at syncs/thankviews.yaml:12:18
          = hint: remove this mapping

        error[spec::match_records_columns]: `match_records` needs an `id_column`, an `email_column`, or both
          --> syncs/thankviews.yaml:11:1
           |
        11 | match_records:
           | ^^^^^^^^^^^^^
           = hint: add `email_column: <column>` (records are found by email) and, when rows hold Contact ids, `id_column: <column>`

        error[spec::invalid_value]: unknown `on_duplicate` value `newest`
          --> syncs/thankviews.yaml:13:17
           |
        13 |   on_duplicate: newest
           |                 ^^^^^^
           = hint: valid values are `fail` and `most_recent`
    "#);
}

#[test]
fn the_jwt_bearer_flow_is_told_by_its_keys_and_never_mixed() {
    let jwt = ENGINE.replace(
        "      consumer_secret: \"${env:SALESFORCE_CONSUMER_SECRET}\"\n      refresh_token: \"${env:SALESFORCE_REFRESH_TOKEN}\"",
        "      username: \"${env:SALESFORCE_USERNAME}\"\n      private_key: \"${env:SALESFORCE_PRIVATE_KEY}\"",
    );
    let (_dir, project, _) = load(&[
        ("engine.yaml", &jwt),
        ("syncs/contacts_to_hubspot.yaml", ""),
        ("syncs/thankviews.yaml", SYNC),
    ]);
    let auth = project.destinations[0].auth.as_ref().expect("auth");
    let SalesforceAuthSpec::JwtBearer {
        username,
        private_key,
        ..
    } = auth
    else {
        panic!("the JWT bearer flow: {auth:?}");
    };
    assert_eq!(username.raw, "${env:SALESFORCE_USERNAME}");
    assert_eq!(private_key.raw, "${env:SALESFORCE_PRIVATE_KEY}");

    let mixed = ENGINE.replace(
        "      refresh_token: \"${env:SALESFORCE_REFRESH_TOKEN}\"",
        "      refresh_token: \"${env:SALESFORCE_REFRESH_TOKEN}\"\n      private_key: |\n        -----BEGIN PRIVATE KEY-----",
    );
    let shown = errors(&[("engine.yaml", &mixed), ("syncs/thankviews.yaml", SYNC)]);
    assert!(shown.contains("spec::mixed_auth"), "{shown}");
    assert!(shown.contains("engine.yaml:15:7"), "{shown}");
    let pasted = jwt.replace(
        "      private_key: \"${env:SALESFORCE_PRIVATE_KEY}\"",
        "      private_key: |\n        -----BEGIN PRIVATE KEY-----\n        MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    );
    let shown = errors(&[("engine.yaml", &pasted), ("syncs/thankviews.yaml", SYNC)]);
    assert!(shown.contains("spec::literal_secret"), "{shown}");
    assert!(
        !shown.contains("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
        "{shown}"
    );
}

#[test]
fn batch_size_goes_to_200_for_salesforce_and_100_for_hubspot() {
    let (_dir, project, _) = load(&[
        ("engine.yaml", ENGINE),
        ("syncs/contacts_to_hubspot.yaml", ""),
        ("syncs/thankviews.yaml", &format!("{SYNC}batch_size: 200\n")),
    ]);
    let sync = project.sync("thankviews").expect("sync");
    assert_eq!(sync.batch_size_or(200), 200);
    let (_dir, project, _) = load(&[
        ("engine.yaml", ENGINE),
        ("syncs/contacts_to_hubspot.yaml", ""),
        ("syncs/thankviews.yaml", SYNC),
    ]);
    let sync = project.sync("thankviews").expect("sync");
    assert_eq!(sync.batch_size, None, "the destination's largest is used");
    assert_eq!(sync.batch_size_or(200), 200);

    let hubspot = crate::tests::SYNC.replace("batch_size: 50", "batch_size: 150");
    let shown = errors(&[("syncs/contacts_to_hubspot.yaml", &hubspot)]);
    assert!(
        shown.contains("`batch_size` must be between 1 and 100 for HubSpot, found 150"),
        "{shown}"
    );
    let too_big = format!("{SYNC}batch_size: 201\n");
    let shown = errors(&[
        ("engine.yaml", ENGINE),
        ("syncs/contacts_to_hubspot.yaml", ""),
        ("syncs/thankviews.yaml", &too_big),
    ]);
    assert!(
        shown.contains("`batch_size` must be between 1 and 200, found 201"),
        "{shown}"
    );
}
