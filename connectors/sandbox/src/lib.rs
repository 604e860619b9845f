//! A local HubSpot-compatible API server for tests, examples and the README quickstart.
//!
//! The engine's HubSpot connector, its conformance suite and the end-to-end tests talk to this
//! server instead of `api.hubapi.com`. It is faithful to the public contracts in
//! `shared/contracts/hubspot` (the OpenAPI files, and `FACTS.md` for what the files do not say:
//! batch limits, error bodies, 207s, 401/429 shapes, value formats), keeps records in memory for
//! its lifetime, and lets a test inject faults (rate limits, a write request that never answers).
//! It depends on no connector crate, so it tests the connector rather than mirroring it.
//!
//! ```text
//!  request ─► correlation id ─► auth (401) ─► rate limit (429) ─► route ─► batch / search rules
//!                                                                   │            │
//!                                             rate-limit headers ◄──┘   store (Mutex, indexed)
//! ```
//!
//! # Routes
//!
//! Every `/crm/…` route needs `Authorization: Bearer <token>`. `{objectType}` names a built-in
//! object type by plural name, singular name or type id (FACTS U6): `contacts` / `contact` /
//! `0-1`, `companies` / `0-2`, `deals` / `0-3`, `tickets` / `0-5` (names ignore case), and a
//! custom object by type id (`2-1000001`), fully qualified name (`p12345678_car`, see
//! [`PORTAL_ID`]) or `p_car`; anything else is HubSpot's 400 `Unable to infer object type
//! from: …`.
//!
//! | method | path | answers |
//! | --- | --- | --- |
//! | POST | `/crm/v3/objects/{objectType}/batch/upsert` | 200 `BatchResponseSimplePublicUpsertObject`, 207 with errors, 400 |
//! | POST | `/crm/v3/objects/{objectType}/batch/update` | 200 `BatchResponseSimplePublicObject`, 207 with errors, 400 |
//! | POST | `/crm/v3/objects/{objectType}` | 201 `SimplePublicObject`, 400, 409 `Contact already exists. Existing ID: N` |
//! | POST | `/crm/v3/objects/{objectType}/batch/create` | 201 `BatchResponseSimplePublicObject`; 207 only when every input has its own `objectWriteTraceId`; else 400 / 409 for the whole batch |
//! | POST | `/crm/v3/objects/{objectType}/batch/archive` | 204 (unknown ids ignored), 400 |
//! | DELETE | `/crm/v3/objects/{objectType}/{objectId}` | 204 (also for an unknown id) |
//! | POST | `/crm/v3/objects/{objectType}/batch/read` | 200, 207 (`OBJECT_NOT_FOUND` for missing ids), 400 |
//! | POST | `/crm/v3/objects/{objectType}/search` | 200 `CollectionResponseWithTotalSimplePublicObject`, 400 |
//! | GET | `/crm/v3/objects/{objectType}?limit&after&properties` | 200 `CollectionResponse…ForwardPaging` |
//! | GET | `/crm/v3/objects/{objectType}/{id}?idProperty&properties` | 200 `SimplePublicObjectWithAssociations`, 404 |
//! | GET | `/crm/v3/properties/{objectType}` | 200 `CollectionResponsePropertyNoPaging` |
//! | GET | `/crm/v3/properties/{objectType}/{propertyName}` | 200 `Property`, 404 |
//! | POST | `/crm/v3/properties/{objectType}` | 201 `Property` (+ `Location`), 400, 409 for a taken name |
//! | GET | `/crm-object-schemas/v3/schemas` | 200 `CollectionResponseObjectSchemaNoPaging` (custom objects) |
//! | POST | `/crm-object-schemas/v3/schemas` | 201 `ObjectSchema`, 400, 409 for a taken name |
//! | GET | `/crm-object-schemas/v3/schemas/{objectType}` | 200 `ObjectSchema` by type id, fully qualified name, `p_<name>` or name; 404 (built-ins too) |
//!
//! The newer `/crm/v3/schemas` alias is not served: crm-schemas-v3.json does not name it.
//!
//! Test-control routes (no auth, no rate limit, not counted):
//!
//! | method | path | does |
//! | --- | --- | --- |
//! | GET | `/_sandbox/records/{objectType}` | `{"objectType","total","results":[SimplePublicObject with every property]}` |
//! | GET | `/_sandbox/stats` | `{"requests":{kind: n},"total_requests","write_requests","rate_limited","unauthorized"}` |
//! | GET | `/_sandbox/faults` | the faults in force |
//! | POST | `/_sandbox/faults` | `{"requests_per_second": n\|null, "hang_before_write": n\|null, "hang_after_write": n\|null}`; a key left out keeps its value |
//! | POST | `/_sandbox/reset` | a fresh portal: clears records, custom objects, created properties and counters; faults and the rate limit stay, record and type ids keep increasing |
//!
//! Route kinds in the stats: `batch_upsert`, `batch_update`, `batch_read`, `batch_create`,
//! `batch_archive`, `create`, `archive`, `search`, `list`, `get`, `properties_list`,
//! `property_get`, `property_create`, `schemas_list`, `schema_get`, `schema_create`, `other`.
//! `write_requests` numbers the record writes (batch upsert, batch update, create, batch
//! create, batch archive, delete) that got past auth and the rate limit, from 1 (since start
//! or the last reset);
//! `hang_before_write: N` holds the N-th of them before it touches the store,
//! `hang_after_write: N` applies it fully and then never answers (until shutdown), so a test can
//! kill a client right after the server accepted a batch.
//!
//! # Behaviour worth knowing
//!
//! - Records hold only written properties; `hs_object_id`, `createdate`, `lastmodifieddate` are
//!   derived. `""` clears a property (the key disappears). `lastmodifieddate` moves only when a
//!   write changes a value, so a rerun that changes nothing leaves records untouched.
//! - Creates (`create`): a single create and a batch create without trace ids refuse as a
//!   whole at the first bad input, a unique-value conflict as 409 `CONFLICT`
//!   (`"<Singular> already exists. Existing ID: N"`, FACTS E4); with one `objectWriteTraceId`
//!   per input a batch create is multi-status (E8). Two inputs with one unique value are a 400
//!   (U3). `associations` must be empty: the sandbox keeps none.
//! - Archived records (batch archive, `DELETE`) vanish from get, list, search, batch read
//!   (`OBJECT_NOT_FOUND`) and upsert matching, and release their unique values; ids are never
//!   reused.
//! - Unset properties are left out of responses (the contract types values as strings, never
//!   `null`).
//! - Unique properties: contacts `email`, companies `domain`, `hs_object_id`, and created
//!   `hasUniqueValue` properties. HubSpot treats `Ann@X.com` and `ann@x.com` as one contact and
//!   stores the email in lower case; the sandbox does the same for `email` and for companies'
//!   `domain` (domain names are case-insensitive, and the engine's HubSpot connector already
//!   matches both ignoring case): values are lower-cased when written, and upsert, create conflicts, batch
//!   duplicates, batch read and get by `idProperty` lower-case the value they look for, so
//!   `/_sandbox/records` shows what is stored. Other unique values (created properties) match
//!   exactly (case-sensitive). Upsert by `hs_object_id` (or with no `idProperty`) only updates.
//! - Object types and their properties live in a registry inside the store (`registry`,
//!   `builtin`). Deals: `dealname`, `amount`, `dealstage` (the seven stages of the `default`
//!   pipeline), `pipeline`, `closedate`, `hubspot_owner_id`, `description`. Tickets: `subject`,
//!   `content`, `hs_pipeline` (`0`), `hs_pipeline_stage` (`1`..`4`), `hs_ticket_priority`
//!   (`LOW`, `MEDIUM`, `HIGH`, `URGENT`), `hubspot_owner_id`. Owner ids are external options:
//!   any value is taken. Every type has `hs_object_id`, `createdate`, `lastmodifieddate`.
//! - Custom objects (`schema`): the schema's properties are validated like built-ins and get
//!   the three system properties; `requiredProperties` are required as below; a
//!   `hasUniqueValue` property is indexed and may be an upsert `idProperty`. Created properties
//!   (`property_create`) join their object type's registry the same way; only `string` and
//!   `number` properties may have unique values; `calculation_equation` is refused (the sandbox
//!   computes no formulas).
//! - Required properties: tickets need `hs_pipeline_stage` and a custom object its
//!   `requiredProperties` when a create, batch create or upsert makes a record, and an update
//!   may not set them to `""`: 400 `VALIDATION_ERROR` ("Cannot create object with type:
//!   TICKET. The following required properties were missing: [...]"), per input inside a 207
//!   for upserts and updates, naming the properties in `context.properties`. Deals need nothing: HubSpot's API falls back to the default
//!   pipeline, its docs only say a deal "should" have `dealname` and `dealstage`.
//! - Searches compare strings case-insensitively, order by id and treat `after` as an offset;
//!   search responses carry no rate-limit headers (FACTS R3).
//! - Rate limit: a fixed one-second window of `requests_per_second` requests; 429 with
//!   `Retry-After: 1`. Interval rate-limit headers are sent only when a limit is set.
//!
//! # Store and speed
//!
//! Records live in memory, one table per object type: in id order, found by id through a
//! hash map and by each unique property (`email`, `domain`, created ones) through an index
//! keyed by the value in lower case (exact lookups compare the candidates exactly, search uses
//! the bucket as is). Creates, updates and archives keep the indexes in step; a reset drops
//! them with the records. An archived record stays in its table as a tombstone until
//! tombstones outnumber live records, then the table is compacted, so an archive costs O(1)
//! amortised. So the cost of a create, a batch upsert, update, create, read or archive, of a
//! get by id or `idProperty`, and of a search whose every filter group has an EQ or IN filter
//! on `hs_object_id` or a unique property does not depend on how many records the sandbox
//! holds. Other searches scan the object type's records; list pages start by binary search
//! (and step over at most as many tombstones as there are live records); `/_sandbox/records`
//! returns everything.
//!
//! The store's mutex is held only while a request reads or changes records, never across an
//! `.await`. Nothing is logged per request (held writes and fault changes are logged at
//! `info`). `cargo bench -p engine-sandbox --bench throughput` prints records per second at several
//! store sizes, the CPU time per record and the memory per record. On a shared 2-core machine,
//! batch upserts of 100 contacts ran at 30,000 to 80,000 records per second (the machine's
//! other load decides where in that range) using 10 to 15 µs of CPU per record, sandbox and
//! benchmark client together, with 100,000 contacts stored as with 1,000,000; each stored
//! contact took about 590 bytes.
//!
//! The [`contract`] module validates JSON against the OpenAPI files; the HubSpot connector's
//! tests use it for request bodies, this crate's tests for every response.

pub mod contract;

mod batch;
mod builtin;
mod create;
mod errors;
#[cfg(test)]
mod index_tests;
mod properties;
mod property_create;
mod property_map;
mod rate_limit;
mod record;
mod registry;
mod required;
mod respond;
mod routes;
mod schema;
mod search;
mod state;
mod store;
mod table;
mod unique_index;
mod validate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::state::Shared;

/// The sandbox's HubSpot account (portal) id: custom objects are named `p12345678_<name>`
/// (their `fullyQualifiedName`, FACTS U6 and C1).
pub const PORTAL_ID: u64 = 12_345_678;

/// How long [`SandboxHandle::shutdown`] waits for open connections before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How a sandbox behaves: the token it accepts and the limits it enforces.
#[derive(Clone)]
pub struct SandboxConfig {
    /// The bearer token every `/crm/…` request must carry; anything else gets HubSpot's 401.
    pub token: String,
    /// Requests per second before 429s; `None` is unlimited. Changeable at run time through
    /// `POST /_sandbox/faults`.
    pub requests_per_second: Option<u32>,
    /// Most inputs one batch request may carry (HubSpot: 100, FACTS B1).
    pub max_batch_inputs: usize,
}

impl Default for SandboxConfig {
    /// Token `sandbox-token`, no rate limit, 100 inputs per batch.
    fn default() -> Self {
        SandboxConfig {
            token: "sandbox-token".to_owned(),
            requests_per_second: None,
            max_batch_inputs: 100,
        }
    }
}

impl std::fmt::Debug for SandboxConfig {
    /// Redacts the token, like every credential the engine prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("token", &"<redacted>")
            .field("requests_per_second", &self.requests_per_second)
            .field("max_batch_inputs", &self.max_batch_inputs)
            .finish()
    }
}

/// A sandbox running in a background task (see [`spawn`]); dropping it stops the server.
pub struct SandboxHandle {
    /// Where to send requests, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub base_url: String,
    /// The bound address.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SandboxHandle {
    /// Stops the server: releases held requests, waits briefly for open connections to finish,
    /// then drops whatever is left.
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

/// Serves on an already-bound listener until the server fails (used by
/// `engine sandbox hubspot --port N`, which stops it by dropping the future).
pub async fn serve(config: SandboxConfig, listener: TcpListener) -> std::io::Result<()> {
    let shared = Arc::new(Shared::new(config));
    axum::serve(listener, routes::router(shared)).await
}

/// Binds `127.0.0.1:0` and serves in a background task (used by tests).
pub async fn spawn(config: SandboxConfig) -> std::io::Result<SandboxHandle> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(config));
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
    tracing::debug!(%addr, "HubSpot sandbox listening.");
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
    fn debug_redacts_the_token() {
        let config = SandboxConfig {
            token: "pat-na1-secret".to_owned(),
            ..SandboxConfig::default()
        };
        assert!(!format!("{config:?}").contains("secret"));
    }
}
