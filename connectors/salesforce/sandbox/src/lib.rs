//! A local Salesforce-compatible API server for tests, the end-to-end suite and examples.
//!
//! The engine's Salesforce connector and its tests talk to this server instead of an org. It
//! is faithful to the public contract material in `shared/contracts/salesforce`: `FACTS.md`
//! (error bodies, ids, limits, Collections, upsert, describe, query, OAuth, Bulk 2.0; rows are
//! cited as `FACTS <row>` throughout) and the Postman collection's requests, which the
//! contract tests replay. It keeps the org in memory for its lifetime and lets a test inject
//! faults. It depends on no connector crate, so it tests the connector rather than mirroring
//! it.
//!
//! ```text
//!  request ─► URI length (414) ─► bearer token (401 INVALID_SESSION_ID) ─► latency
//!     ─► API_DISABLED_FOR_ORG (403) ─► daily allocation (403 REQUEST_LIMIT_EXCEEDED)
//!     ─► version (404) ─► injected 503 / 403 ─► route ─► store / SOQL / Bulk worker
//!     ─► dropped connection? ─► Sforce-Limit-Info: api-usage=used/max
//! ```
//!
//! # Routes
//!
//! `vXX.X` is any version from 20.0 to 66.0 (another is 404 `NOT_FOUND`). Every
//! `/services/data/vXX.X/…` route needs `Authorization: Bearer <token>`; object names and
//! field names ignore case, ids may be given in 15- or 18-character form.
//!
//! | method | path | answers |
//! | --- | --- | --- |
//! | POST | `/services/oauth2/token` (form; `grant_type=refresh_token` or `urn:ietf:params:oauth:grant-type:jwt-bearer`) | 200 `{access_token, instance_url, id, token_type, issued_at, signature, scope}` (O2); 400 `{error, error_description}` (O3) |
//! | POST | `/services/oauth2/revoke` (form `token=`) | 200 empty; 400 `unsupported_token_type` |
//! | GET | `/services/data/` | 200 `[{label, url, version}]`, no auth, no limit header (L3) |
//! | GET | `/services/data/vXX.X/` | 200 the version's resources |
//! | GET | `/limits` | 200 `{"DailyApiRequests":{"Max","Remaining"}, …}` (L3) |
//! | GET | `/sobjects` | 200 `{encoding, maxBatchSize, sobjects:[…]}` without hidden objects (D1) |
//! | GET | `/sobjects/{SObject}` | 200 `{objectDescribe, recentItems}`; 404 |
//! | GET | `/sobjects/{SObject}/describe` | 200 DescribeSObjectResult (D1); 404 `NOT_FOUND` |
//! | POST | `/sobjects/{SObject}` (and `/sobjects/{SObject}/Id`, U2) | 201 `{id, success, errors}` (+`created` for `/Id`); 400 error array; 404 |
//! | GET | `/sobjects/{SObject}/{id}?fields=` | 200 record; 404 `NOT_FOUND` / `ENTITY_IS_DELETED` |
//! | PATCH | `/sobjects/{SObject}/{id}` | 204; 400; 404 |
//! | DELETE | `/sobjects/{SObject}/{id}` | 204; 404 `ENTITY_IS_DELETED` the second time |
//! | PATCH | `/sobjects/{SObject}/{field}/{value}?updateOnly=` | 201 `created:true`; 200 `created:false` (204 before v46.0); 300 `[url, …]` on several matches, nothing written (U1); 400; 404 unknown field |
//! | GET, DELETE | `/sobjects/{SObject}/{field}/{value}` | 200 record / 204; 300; 404 |
//! | POST | `/composite/sobjects` | 200 `[SaveResult]` in request order (C1, C2, E3); 400 for a request that cannot be read or > 200 records |
//! | PATCH | `/composite/sobjects` (also `/composite/sobjects/{SObject}`) | 200 `[SaveResult]` (update by `id`) |
//! | DELETE | `/composite/sobjects?ids=&allOrNone=` (also with `/{SObject}`) | 200 `[SaveResult]` |
//! | PATCH | `/composite/sobjects/{SObject}/{ExternalIdField}` | 200 `[UpsertResult]` with `created` (C4) |
//! | GET, POST | `/composite/sobjects/{SObject}` (`?ids&fields`, or body `{ids, fields}`) | 200 `[record or null]` |
//! | GET | `/query?q=` and `/queryAll?q=` | 200 `{totalSize, done, records, nextRecordsUrl?}` (Q1, L4); 400 `MALFORMED_QUERY`, `INVALID_FIELD`, `INVALID_TYPE`, `INVALID_QUERY_FILTER_OPERATOR` |
//! | GET | `/query/{locator}-{offset}` | 200 the next page; 400 `INVALID_QUERY_LOCATOR` |
//! | POST | `/jobs/ingest` | 200 JobInfo, state `Open`, id `750…` (B1); 400 `INVALIDENTITY`, `INVALIDJOB` |
//! | GET | `/jobs/ingest` | 200 `{done, records:[JobInfo], nextRecordsUrl}` |
//! | PUT | `/jobs/ingest/{id}/batches` (`text/csv`) | 201 (B2); 409 `INVALIDJOBSTATE` unless Open; 400 `BULK_API_ERROR` for a second upload |
//! | PATCH | `/jobs/ingest/{id}` `{"state":"UploadComplete"\|"Aborted"}` | 200 JobInfo (B3); 409 `INVALIDJOBSTATE` |
//! | GET | `/jobs/ingest/{id}` | 200 JobInfo with `numberRecordsProcessed`, `numberRecordsFailed`, `errorMessage`, `retries`, `totalProcessingTime` (B3) |
//! | GET | `/jobs/ingest/{id}/successfulResults/`, `/failedResults/`, `/unprocessedrecords/` | 200 `text/csv`: `"sf__Id","sf__Created",<columns>` / `"sf__Id","sf__Error",<columns>` / `<columns>` (B4), rows shuffled |
//! | DELETE | `/jobs/ingest/{id}` | 204 (UploadComplete or terminal); 409 |
//!
//! Every error is Salesforce's array `[{"message","errorCode","fields"?}]` with
//! `content-type: application/json;charset=UTF-8` (E1); 401s add `www-authenticate: Token`.
//! A wrong method is 405 `METHOD_NOT_ALLOWED`, a URI over 16,384 characters 414.
//!
//! Test-control routes (no auth, no allocation, no faults, not counted):
//!
//! | method | path | does |
//! | --- | --- | --- |
//! | GET | `/_sandbox/records/{SObject}` | `{"object","total","records":[every field]}` in creation order (hidden objects too) |
//! | POST | `/_sandbox/objects` | defines custom objects or adds custom fields ([`CustomObject`], or a list); 201 with their describes; 400 `INVALID_INPUT` |
//! | GET | `/_sandbox/stats` | `{"requests":{kind: n},"total_requests","unauthorized","limit_refused","faults":{kind: n},"token_grants","api_usage","api_allocation"}` |
//! | GET | `/_sandbox/faults` | every knob below with its value |
//! | POST | `/_sandbox/faults` | any knob below; a key left out keeps its value, `null` turns it off; an unknown key or bad value is a 400 and changes nothing |
//! | POST | `/_sandbox/expire-sessions` | every access token expires now; `{"expired": n}` |
//! | POST | `/_sandbox/convert-lead/{id}` | marks a Lead converted (`IsConverted` true), as conversion in Salesforce does; the Lead, or 404 `NOT_FOUND` |
//! | POST | `/_sandbox/reset` | a fresh org: the configured custom objects again, no records, cursors or jobs, usage 0; sessions, limits and faults stay |
//!
//! # Knobs
//!
//! | key | flag ([`SandboxArgs`]) | value | effect |
//! | --- | --- | --- | --- |
//! | — | `--client-id`, `--client-secret`, `--refresh-token`, `--username` | text | the credentials the token endpoint takes |
//! | `api_allocation` | `--api-allocation` | n | daily allocation (default 100,000, L2); past it 403 `REQUEST_LIMIT_EXCEEDED` "TotalRequests Limit exceeded." |
//! | `api_usage` | — | n | sets the requests used so far |
//! | `token_ttl_requests`, `token_ttl_seconds` | same names | n | access tokens expire after n requests / seconds, then 401 `INVALID_SESSION_ID` |
//! | `refresh_token_revoked` | — | bool | the refresh grant answers 400 `invalid_grant` "expired access/refresh token" |
//! | `bulk_processing_ms` | `--bulk-processing-ms` | ms | time a Bulk job spends in UploadComplete and again in InProgress (default 200) |
//! | — | `--objects` | file | custom objects to load at start (JSON, or YAML by extension) |
//! | `latency_ms` | `--latency-ms` | ms | every API request waits first |
//! | `unavailable_requests` | `--unavailable-requests` | N | the next N API requests: 503 `SERVER_UNAVAILABLE`, unapplied |
//! | `limit_exceeded_requests` | `--limit-exceeded-requests` | N | the next N: 403 `REQUEST_LIMIT_EXCEEDED` "ConcurrentPerOrgLongTxn Limit exceeded.", unapplied |
//! | `dropped_requests` | `--dropped-requests` | N | the next N are applied, then the connection closes with no answer |
//! | `api_disabled` | `--api-disabled` | bool | 403 `API_DISABLED_FOR_ORG` "The REST API is not enabled for this Organization." |
//! | `inaccessible_objects` | `--inaccessible-objects` | `[name]` | those objects vanish from describe global; 404 on their routes, `INVALID_TYPE` in SOQL and Collections, `INVALIDENTITY` for Bulk |
//!
//! # Behaviour, and where FACTS is silent
//!
//! - Objects: Account (`001`), Asset (`02i`, the Postman Bulk example's object), Contact
//!   (`003`, `LastName` required, `Email` an `idLookup`, `AccountId` → Account), Lead (`00Q`,
//!   `LastName` and `Company` required, restricted `Status` defaulting to "Open - Not
//!   Contacted"), User (`005`, the API user). Custom objects get `a00`, `a01`, … and the
//!   standard fields; custom fields may be external ids, unique or not (a non-unique
//!   external id is what lets an upsert answer 300), and lookups to any object.
//! - Write rules and their codes are in `write`; deserialization errors (unknown field,
//!   wrong JSON type) refuse the whole request, save errors are per record. Lookups: a
//!   malformed id or one of another object is `MALFORMED_ID` "`Contact ID: id value of
//!   incorrect type: 001…`" (E4), a missing record `INVALID_CROSS_REFERENCE_KEY` "invalid cross reference
//!   id". `FIELD_INTEGRITY_EXCEPTION` is not produced: FACTS gives it no case.
//! - The allocation counts every API request that gets past auth (refused ones are not
//!   counted); its header is on every answer after auth, refusals included, not on 401s.
//! - OAuth, Collections, Bulk and SOQL choices are documented in their route modules.
//!
//! # Store and speed
//!
//! Records live in memory, one table per object, found by id through a hash map and by each
//! indexed field (external ids, unique fields, `idLookup` fields such as `Email`) through a
//! hash map keyed by the lower-cased value, so writes, upserts, id lookups and SOQL filters on
//! `Id` or an indexed field cost the same whatever the org holds; other SOQL filters scan
//! the object. Each part of the state has its own mutex, never held across an `.await`; a
//! Bulk worker takes the store's lock for 2,000 rows at a time.

mod args;
mod auth;
mod builtin;
mod bulk;
mod custom;
mod encoding;
mod errors;
mod faults;
mod ids;
mod respond;
mod routes;
mod schema;
mod soql;
mod state;
mod store;
mod write;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::state::Shared;

pub use crate::args::SandboxArgs;
pub use crate::custom::{CustomField, CustomObject};
pub use crate::faults::Faults;

/// The API version the sandbox's answers name when a request does not (URLs in query
/// results, `contentUrl` of Bulk jobs use the request's own version).
pub const LATEST_VERSION: &str = "66.0";

/// How long [`SandboxHandle::shutdown`] waits for open connections before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How a sandbox behaves: the credentials it accepts, its limits, its custom objects and the
/// faults it injects. Build it with `..SandboxConfig::default()` or from [`SandboxArgs`].
#[derive(Clone)]
pub struct SandboxConfig {
    /// An access token accepted from the start, so tests need no OAuth round trip; the token
    /// endpoint issues more.
    pub token: String,
    /// The connected app's consumer key (`client_id`; the JWT grant's `iss`).
    pub client_id: String,
    /// The connected app's consumer secret; also the key of the token response's `signature`.
    pub client_secret: String,
    /// The refresh token the refresh grant accepts (until revoked).
    pub refresh_token: String,
    /// The API user's username (the JWT grant's `sub`).
    pub username: String,
    /// The public key (PEM) of the certificate uploaded to the connected app: when set, a JWT
    /// bearer assertion must carry an RS256 signature it verifies; when not, the assertion's
    /// claims are checked and its signature is not.
    pub jwt_public_key: Option<PathBuf>,
    /// The daily API allocation (FACTS L2: 100,000 and more); past it, 403
    /// `REQUEST_LIMIT_EXCEEDED`.
    pub api_allocation: u64,
    /// Access tokens expire after this many API requests (`None`: never).
    pub token_ttl_requests: Option<u64>,
    /// Access tokens expire after this many seconds (`None`: never; Salesforce's default
    /// session timeout is two hours).
    pub token_ttl_seconds: Option<u64>,
    /// How long a Bulk job spends in UploadComplete, then again in InProgress, before its
    /// rows are processed (milliseconds).
    pub bulk_processing_ms: u64,
    /// Custom objects and fields to load at start (JSON, or YAML by extension).
    pub objects_file: Option<PathBuf>,
    /// Custom objects and fields to define at start, after the file's.
    pub custom_objects: Vec<CustomObject>,
    /// Faults injected from the start (all off by default).
    pub faults: Faults,
}

impl Default for SandboxConfig {
    /// Token `sandbox-token`, client `sandbox-client-id` / `sandbox-client-secret`, refresh
    /// token `sandbox-refresh-token`, user `sandbox@example.com`, 100,000 requests a day,
    /// tokens that never expire, 200 ms per Bulk stage, no custom objects, no faults.
    fn default() -> Self {
        SandboxConfig {
            token: "sandbox-token".to_owned(),
            client_id: "sandbox-client-id".to_owned(),
            client_secret: "sandbox-client-secret".to_owned(),
            refresh_token: "sandbox-refresh-token".to_owned(),
            username: "sandbox@example.com".to_owned(),
            jwt_public_key: None,
            api_allocation: 100_000,
            token_ttl_requests: None,
            token_ttl_seconds: None,
            bulk_processing_ms: 200,
            objects_file: None,
            custom_objects: Vec::new(),
            faults: Faults::default(),
        }
    }
}

impl std::fmt::Debug for SandboxConfig {
    /// Redacts the token, the client secret and the refresh token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("token", &"<redacted>")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("username", &self.username)
            .field("jwt_public_key", &self.jwt_public_key)
            .field("api_allocation", &self.api_allocation)
            .field("token_ttl_requests", &self.token_ttl_requests)
            .field("token_ttl_seconds", &self.token_ttl_seconds)
            .field("bulk_processing_ms", &self.bulk_processing_ms)
            .field("objects_file", &self.objects_file)
            .field("custom_objects", &self.custom_objects.len())
            .field("faults", &self.faults)
            .finish()
    }
}

/// A sandbox running in a background task (see [`spawn`]); dropping it stops the server.
pub struct SandboxHandle {
    /// Where to send requests, e.g. `http://127.0.0.1:41234` (no trailing slash); also the
    /// `instance_url` the token endpoint answers.
    pub base_url: String,
    /// The bound address.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SandboxHandle {
    /// Stops the server: waits briefly for open connections to finish, then drops whatever is
    /// left.
    pub async fn shutdown(mut self) {
        self.shared.stop();
        let Some(mut task) = self.task.take() else {
            return;
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

impl std::fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHandle")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

/// Serves on an already-bound listener until the server fails (for `engine sandbox
/// salesforce --port N`, which stops it by dropping the future). Fails at once when the
/// config's custom objects do not load.
pub async fn serve(config: SandboxConfig, listener: TcpListener) -> std::io::Result<()> {
    let shared = Arc::new(Shared::new(config)?);
    let result = axum::serve(listener, routes::router(shared.clone())).await;
    shared.stop();
    result
}

/// Binds `127.0.0.1:0` and serves in a background task (used by tests).
pub async fn spawn(config: SandboxConfig) -> std::io::Result<SandboxHandle> {
    let shared = Arc::new(Shared::new(config)?);
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let app = routes::router(shared.clone());
    let signal = {
        let shared = shared.clone();
        async move { shared.stopped().await }
    };
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await
    });
    tracing::debug!(%addr, "Salesforce sandbox listening.");
    Ok(SandboxHandle {
        base_url: format!("http://{addr}"),
        addr,
        shared,
        task: Some(task),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_secrets() {
        let config = SandboxConfig {
            token: "tok-hidden-1".to_owned(),
            client_secret: "cs-hidden-2".to_owned(),
            refresh_token: "rt-hidden-3".to_owned(),
            ..SandboxConfig::default()
        };
        assert!(!format!("{config:?}").contains("hidden"));
    }
}
