//! A local HubSpot-compatible API server for tests, examples and the README quickstart.
//!
//! The engine's HubSpot connector, its conformance suite and the end-to-end tests talk to this
//! server instead of `api.hubapi.com`. It is faithful to the public contracts in
//! `shared/contracts/hubspot` (the OpenAPI files, and `FACTS.md` for what the files do not say:
//! batch limits, error bodies, 207s, 401/429 shapes, value formats), keeps records in memory for
//! its lifetime, and lets a test inject faults (rate limits, server errors, refusals, latency,
//! dropped connections, a write request that never answers).
//! It depends on no connector crate, so it tests the connector rather than mirroring it.
//!
//! ```text
//!  request ─► correlation id ─► auth (401) ─► latency ─► limits (429) ─► injected 403/477/423/5xx
//!                                                                                │
//!      rate-limit headers / dropped connection ◄── route ─► batch / search rules ─► store
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
//! | PATCH | `/crm/v3/properties/{objectType}/{propertyName}` | 200 `Property`; 400 for a HubSpot-defined property or a definition that does not fit; 404 |
//! | GET | `/crm-object-schemas/v3/schemas` | 200 `CollectionResponseObjectSchemaNoPaging` (custom objects) |
//! | POST | `/crm-object-schemas/v3/schemas` | 201 `ObjectSchema`, 400, 409 for a taken name |
//! | GET | `/crm-object-schemas/v3/schemas/{objectType}` | 200 `ObjectSchema` by type id, fully qualified name, `p_<name>` or name; 404 (built-ins too) |
//!
//! | POST | `/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/create` | 201 `BatchResponseLabelsBetweenObjectPair`, 207 (`OBJECT_NOT_FOUND` per missing record), 400 |
//! | POST | `/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/associate/default` | 200 `BatchResponsePublicDefaultAssociation` (missing records in its `errors`: the contract declares no 207), 400 |
//! | POST | `/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read` | 200 `BatchResponsePublicAssociationMultiWithLabel`, 207 (missing record, or none associated), 400 |
//! | POST | `/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/archive` | 204 (unknown records ignored), 400 |
//! | POST | `/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/labels/archive` | 204, 400 |
//! | GET | `/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}?after&limit` | 200 `CollectionResponseMultiAssociatedObjectWithLabelForwardPaging` (at most 500), 400, 404 |
//! | PUT | `/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}` | 201 `LabelsBetweenObjectPair` (body: `[AssociationSpec]`), 400, 404 |
//! | PUT | `/crm/v4/objects/{objectType}/{objectId}/associations/default/{toObjectType}/{toObjectId}` | 200 `BatchResponsePublicDefaultAssociation`, 400, 404 |
//! | DELETE | `/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}` | 204 |
//! | GET | `/crm/v4/associations/{fromObjectType}/{toObjectType}/labels` | 200 `CollectionResponseAssociationSpecWithLabelNoPaging` |
//! | POST | `/crm/v4/associations/{fromObjectType}/{toObjectType}/labels` | 200 (the new type, then its inverse), 400, 409 for a taken name |
//! | PUT | `/crm/v4/associations/{fromObjectType}/{toObjectType}/labels` | 204, 400 (not a user-defined label), 404 |
//! | DELETE | `/crm/v4/associations/{fromObjectType}/{toObjectType}/labels/{associationTypeId}` | 204, 400 (not a user-defined label), 404 |
//! | POST | `/crm/v3/lists` | 200 `ListCreateResponse`, 400 (unknown object type or processing type, a `DYNAMIC` list without `filterBranch`), 409 for a taken name |
//! | GET | `/crm/v3/lists?listIds&includeFilters` | 200 `ListsByIdResponse` (unknown ids left out) |
//! | POST | `/crm/v3/lists/search` | 200 `ListSearchResponse`, 400 for a `count` over 500 |
//! | GET | `/crm/v3/lists/{listId}?includeFilters` | 200 `ListFetchResponse`, 404 |
//! | GET | `/crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}` | 200 `ListFetchResponse`, 400, 404 |
//! | DELETE | `/crm/v3/lists/{listId}` | 204, 404 |
//! | PUT | `/crm/v3/lists/{listId}/memberships/add`, `/remove` (body: record ids) | 200 `MembershipsUpdateResponse`, 400 (`DYNAMIC` list, over 100,000 ids), 404 |
//! | PUT | `/crm/v3/lists/{listId}/memberships/add-and-remove` | 200 `MembershipsUpdateResponse`, 400, 404 |
//! | GET | `/crm/v3/lists/{listId}/memberships?after&before&limit` | 200 `ApiCollectionResponseJoinTimeAndRecordId` (at most 250), 400, 404 |
//! | DELETE | `/crm/v3/lists/{listId}/memberships` | 204, 400 (`DYNAMIC` list), 404 |
//! | GET | `/events/v3/event-definitions?limit&after&searchString&includeProperties` | 200 `CollectionResponseWithTotalExternalBehavioralEventTypeDefinition` (`after` is an offset) |
//! | POST | `/events/v3/event-definitions` | 201 `ExternalBehavioralEventTypeDefinition`, 400, 409 for a taken name |
//! | GET | `/events/v3/event-definitions/{eventName}` | 200 (by internal or fully qualified name, with properties), 404 |
//! | DELETE | `/events/v3/event-definitions/{eventName}` | 204, 404 |
//! | POST | `/events/v3/send` | 204, 400 |
//! | POST | `/events/v3/send/batch` | 204, 400 for the whole batch (at most 500 inputs) |
//! | GET | `/crm/v3/owners?email&after&limit&archived` | 200 `{"results":[PublicOwner],"paging"?}` (no contract file: HubSpot's documented shape, see `owners`), 400 |
//! | GET | `/crm/v3/owners/{ownerId}?idProperty=id\|userId` | 200 `PublicOwner`, 400, 404 |
//!
//! The newer `/crm/v3/schemas` alias is not served: crm-schemas-v3.json does not name it.
//! Nor are the association `definitions/configurations` routes of
//! crm-associations-v4-schema-definitions.json, nor its `/crm/associations/v4/…/labels` alias.
//!
//! Test-control routes (no auth, no rate limit, no faults, not counted):
//!
//! | method | path | does |
//! | --- | --- | --- |
//! | GET | `/_sandbox/records/{objectType}` | `{"objectType","total","results":[SimplePublicObject with every property]}` |
//! | GET | `/_sandbox/associations/{fromObjectType}/{toObjectType}` | `{"fromObjectTypeId","toObjectTypeId","total","results":[{"fromObjectId","toObjectId","associationTypeIds":[n]}]}` in id order (each association appears read either way, with the inverse ids the other way) |
//! | GET | `/_sandbox/lists` | `{"total","results":[PublicObjectList + "recordIds":[id]]}`: every list in id order with its members |
//! | GET | `/_sandbox/events` | `{"total","results":[{"eventName","objectId"?,"email"?,"utk"?,"occurredAt","uuid","properties"}]}`: every custom event occurrence accepted, in the order sent |
//! | GET | `/_sandbox/owners` | `{"total","results":[PublicOwner]}` in id order |
//! | POST | `/_sandbox/owners` | `{"email","firstName"?,"lastName"?}` adds an owner (the next id) and answers it; 400 for a taken or malformed email |
//! | GET | `/_sandbox/stats` | `{"requests":{kind: n},"total_requests","write_requests","rate_limited","rate_limited_by":{"secondly","ten_secondly_rolling","daily","search"},"unauthorized","faults":{"latency","missing_scopes","locked","migration","daily_limit","server_error","dropped"}}` |
//! | GET | `/_sandbox/faults` | every limit and fault key below with its value (`null` when off) |
//! | POST | `/_sandbox/faults` | any of the keys below; a key left out keeps its value, `null` turns it off; an unknown key or bad value is a 400 and changes nothing; the answer is the new state |
//! | POST | `/_sandbox/reset` | a fresh portal: clears records, custom objects, created properties, associations and user-defined labels, lists, event definitions and sent events, added owners (the three seeded ones come back), and counters; limits and faults stay, the fault draws start over from the seed, record, type and association type ids keep increasing |
//!
//! Route kinds in the stats: `batch_upsert`, `batch_update`, `batch_read`, `batch_create`,
//! `batch_archive`, `create`, `archive`, `search`, `list`, `get`, `properties_list`,
//! `property_get`, `property_create`, `property_update`, `schemas_list`, `schema_get`, `schema_create`,
//! `associations_create`, `associations_create_default`, `associations_read`,
//! `associations_archive`, `associations_archive_labels`, `associations_list`,
//! `association_put`, `association_put_default`, `association_delete`,
//! `association_labels_list`, `association_label_create`, `association_label_update`,
//! `association_label_delete`, `list_create`, `lists_get`, `lists_search`, `list_get`,
//! `list_delete`, `list_memberships`, `list_memberships_add`, `list_memberships_remove`,
//! `list_memberships_add_and_remove`, `list_memberships_clear`, `event_definitions_list`,
//! `event_definition_create`, `event_definition_get`, `event_definition_delete`,
//! `event_send`, `event_send_batch`, `owners_list`, `owner_get`, `other`.
//! `write_requests` numbers the writes (record writes: batch upsert, batch update, create,
//! batch create, batch archive, delete; association writes: the v4 batch create, default,
//! archive and labels archive, and the single-record PUTs and DELETE; list membership
//! changes; event sends) that got past auth, the
//! limits and the injected refusals
//! (403, 477, 423, 5xx), from 1 (since start or the last reset); `rate_limited` counts the
//! limiter's 429s (`rate_limited_by` splits them; `search` is the search bucket), `faults`
//! the injected faults by kind (the `daily_limit_reached` 429s count there, not in
//! `rate_limited`).
//!
//! # Limits and faults
//!
//! Set at start through [`SandboxConfig`] (or the flags of [`SandboxArgs`]), changed at run
//! time through `POST /_sandbox/faults`. "API requests" are every request but `/_sandbox/`;
//! "writes" are the record writes numbered by `write_requests`.
//!
//! | key | flag | value | applies to | effect |
//! | --- | --- | --- | --- | --- |
//! | `requests_per_second` | `--rate-limit` | n | API requests but search | fixed 1 s window; 429 `SECONDLY`, `Retry-After: 1` |
//! | `requests_per_ten_seconds` | `--burst-limit` | n | API requests but search | rolling 10 s window; 429 `TEN_SECONDLY_ROLLING`, no `Retry-After` |
//! | `requests_per_day` | `--daily-limit` | n | API requests | per UTC day; 429 `DAILY`, no `Retry-After` |
//! | `search_requests_per_second` | `--search-rate-limit` | n | search | fixed 1 s window of its own; 429 `SECONDLY`, `Retry-After: 1` |
//! | — | `--tier` | tier | | burst and daily limits of a HubSpot tier and 4 searches per second |
//! | `hang_before_write` | — | N | the N-th write | held before it touches the store, until shutdown |
//! | `hang_after_write` | — | N | the N-th write | applied, then never answered (until shutdown) |
//! | `latency_ms`, `latency_jitter_ms` | `--latency-ms`, `--latency-jitter-ms` | ms | API requests | wait `latency_ms` plus a drawn 0..=`latency_jitter_ms` before anything else |
//! | `daily_limit_reached` | `--daily-limit-reached` | bool | API requests | 429 `DAILY` until cleared |
//! | `whole_batch_conflicts` | — | bool | batch creates | refuse the whole batch with 409 at its first existing record, even with trace ids (no multi-status) |
//! | `missing_scopes` | `--missing-scopes` | `[scope]` | requests needing one of them | 403 `MISSING_SCOPES` |
//! | `migration_requests`, `migration_retry_after` | `--migration-requests`, `--migration-retry-after` | N, s | the next N API requests | 477 with `Retry-After` (default 1 s) |
//! | `locked_writes` | `--locked-writes` | N | the next N writes | 423, unapplied |
//! | `busy_link_writes` | — | N | the next N association writes | 429 `SECONDLY`, unapplied (checked before `locked_writes`) |
//! | `error_rate`, `error_status` | `--error-rate`, `--error-status` | 0..=1, 500..=599 | writes | that share of writes get the 5xx (default 500), unapplied |
//! | `drop_rate` | `--drop-rate` | 0..=1 | writes | that share of writes are applied, then the connection closes with no answer |
//! | `seed` | `--seed` | n | | seeds the draws of the three random knobs (default 0) |
//!
//! After auth the checks run in this order: latency, the daily fault, the limits (daily,
//! ten-secondly, secondly; for a search: daily, search), 403, 477, 423, 5xx, the route, the
//! drop. A request refused by one check is not seen by the later ones and uses up
//! no limit. The random knobs each draw from their own generator seeded from `seed`, so the
//! same requests in the same order meet the same faults (the draws start over whenever the
//! faults are posted and on reset); `error_rate: 1` fails every write.
//! The countdown knobs (`locked_writes`, `migration_requests`) turn themselves off (`null`)
//! when used up. Scopes follow HubSpot's granular names: `crm.objects.<type>.read|write` for
//! records (batch read and search read), `crm.schemas.<type>.read|write` for properties,
//! `crm.schemas.custom.read|write` for schemas, `<type>` being `contacts`, `companies`,
//! `deals` or `custom`; tickets need the legacy `tickets` scope.
//!
//! # Behaviour worth knowing
//!
//! - Associations (`association_batch`, `associations`, `association_types`): both records
//!   must exist (else an `OBJECT_NOT_FOUND` error naming the id in `context.ids`, per input),
//!   and every type id must be one the pair of object types has, in its category (else a
//!   400 for the whole batch). An association is stored both ways, the other way with the
//!   inverse type id, and indexed by record, so reading one record's associations costs only
//!   those associations. Creating one that exists changes nothing; a labelled one brings the
//!   pair's unlabelled default with it, and archiving the default archives every label
//!   between the two records (crm-associations-v4.json). A record's archive removes its
//!   associations. HubSpot-defined type ids, with their inverses: contact → company 279 / 280
//!   and `Primary` 1 / 2, contact → deal 4 / 3, contact → ticket 15 / 16, company → deal
//!   342 / 341 and `Primary` 6 / 5, company → ticket 340 / 339 and `Primary` 25 / 26, deal →
//!   ticket 27 / 28 (279 is FACTS A1; the others come from HubSpot's published table of
//!   association type ids, see `association_types`). A custom object's schema gives each of
//!   its `associatedObjects` an unlabelled `USER_DEFINED` type (the schema's association id)
//!   and its inverse; user-defined labels get fresh ids per direction. Deleting a label
//!   removes it from the associations that had it. Batch limits: read 1,000 inputs (B3),
//!   the writes 2,000 (B4); a read pages at 500 associations per record.
//! - Lists (`lists`): `MANUAL` and `SNAPSHOT` lists take membership changes; `DYNAMIC`
//!   lists refuse them with a 400, as HubSpot does, and stay empty (the sandbox evaluates no
//!   filters). Names are unique in the portal ignoring case. Membership ids that are no live
//!   record of the list's object type come back in `recordIdsMissing`; adding a member or
//!   removing a non-member is ignored (FACTS L1). Memberships read in record id order, the
//!   cursor being the last record id (`before` reads backwards). A record's archive takes it
//!   out of its lists. A membership request takes at most 100,000 ids (HubSpot documents no
//!   figure; B6's 100,000 is used).
//! - Custom events (`events`): a definition's name is `^[a-z][a-z0-9_]*$` (made from the
//!   label if not given, at most 50 characters, FACTS V2), its properties `string`,
//!   `number`, `enumeration` (with options) or `datetime`, `hs_` names reserved;
//!   `includeDefaultProperties` adds HubSpot's default event properties (strings). A send
//!   names the event by `pe<portalId>_<name>` ([`PORTAL_ID`]) and a record by `objectId` (a
//!   live record of the primary object, contacts by default), `email` (the contact with it,
//!   else none: HubSpot documents no contact creation) or `utk`; properties must be defined
//!   and fit their type, at most 50; `occurredAt` defaults to now. A repeated `uuid` of an
//!   event is dropped silently (HubSpot keeps the first). The contract marks the send routes
//!   exempt from the daily and ten-second limits; the sandbox counts them like every route.
//! - Owners (`owners`): three seeded (ids 10001..10003, user ids 20001..20003); pages of
//!   `limit` (default 100, at most 500) after an `after` owner id.
//! - Records hold only written properties; `hs_object_id`, `createdate`, `lastmodifieddate` are
//!   derived. `""` clears a property (the key disappears). `lastmodifieddate` moves only when a
//!   write changes a value, so a rerun that changes nothing leaves records untouched.
//! - Creates (`create`): a single create and a batch create without trace ids refuse as a
//!   whole at the first bad input, a unique-value conflict as 409 `CONFLICT`
//!   (`"<Singular> already exists. Existing ID: N"`, FACTS E4); with one `objectWriteTraceId`
//!   per input a batch create is multi-status (E8). Two inputs with one unique value are a 400
//!   (U3). `associations` must be empty: associations are made through the v4 routes.
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
//!   search responses carry no rate-limit headers (FACTS R3), their 429s included. A search
//!   is refused with a 400 `VALIDATION_ERROR` naming the field in `errors[].in` for a `limit`
//!   over 200, more than 6 filter groups, more than 6 filters in a group or 18 in all, a
//!   `query` over 3000 characters, or an `after` of 10,000 or more (HubSpot's search pages
//!   through at most 10,000 results; a page stops at the 10,000th and offers no next page
//!   past it).
//! - Rate-limit answers (FACTS R5): 429 `{"status":"error","message":"You have reached your
//!   <secondly|ten_secondly_rolling|daily> limit.","errorType":"RATE_LIMIT","correlationId",
//!   "policyName":"SECONDLY|TEN_SECONDLY_ROLLING|DAILY","requestId","category":"RATE_LIMITS"}`.
//!   HubSpot documents `Retry-After` only for 477 (R6), so the ten-second and daily 429s
//!   carry none (a client waits 10 s for the burst window, as HubSpot's SDK does); the
//!   secondly 429s keep the `Retry-After: 1` the sandbox has always sent, which is what a
//!   client would wait anyway. Headers (R3, R4): `X-HubSpot-RateLimit-Daily` and
//!   `-Daily-Remaining` always (the daily limit, or the Enterprise 1,000,000 reported but not
//!   enforced when none is set); `-Interval-Milliseconds` (`10000` with a burst limit, else
//!   `1000`), `-Max` and `-Remaining` when a burst or secondly limit is set; the legacy
//!   `-Secondly` and `-Secondly-Remaining` when a secondly limit is set. Injected refusals
//!   after the limiter carry the same headers.
//! - Injected answers: 403 `{"category":"MISSING_SCOPES","message":"This app hasn't been
//!   granted all required scopes to make this call. …","errors":[{"message":"One or more of
//!   the following scopes are required.","context":{"requiredGranularScopes":[scope]}}],
//!   "links":{"scopes":…}}` (HubSpot's shape); 423 category `LOCKED`; 477 category
//!   `MIGRATION_IN_PROGRESS` with `Retry-After`; 5xx category `INTERNAL_ERROR`, message
//!   `internal error` for 500 and the reason phrase otherwise (FACTS gives the statuses, not
//!   these bodies: the wording is the sandbox's). A dropped connection is a response whose
//!   body fails before its first byte: hyper closes the socket without writing a status line,
//!   and a client sees the connection closed before an answer.
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
//! `info`). `cargo bench -p hubspot-sandbox --bench throughput` prints records per second at several
//! store sizes, the CPU time per record and the memory per record. On a shared 2-core machine,
//! batch upserts of 100 contacts ran at 30,000 to 80,000 records per second (the machine's
//! other load decides where in that range) using 10 to 15 µs of CPU per record, sandbox and
//! benchmark client together, with 100,000 contacts stored as with 1,000,000; each stored
//! contact took about 590 bytes.
//!
//! The [`contract`] module validates JSON against the OpenAPI files; the HubSpot connector's
//! tests use it for request bodies, this crate's tests for every response.

pub mod contract;

mod args;
mod association_batch;
mod association_types;
mod associations;
mod batch;
mod builtin;
mod create;
mod errors;
mod events;
mod faults;
#[cfg(test)]
mod index_tests;
mod lists;
mod owners;
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
mod scopes;
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

pub use crate::args::{HUBSPOT_SEARCH_REQUESTS_PER_SECOND, SandboxArgs, Tier};
pub use crate::faults::{DEFAULT_ERROR_STATUS, DEFAULT_MIGRATION_RETRY_AFTER, Faults};

/// The sandbox's HubSpot account (portal) id: custom objects are named `p12345678_<name>`
/// (their `fullyQualifiedName`, FACTS U6 and C1).
pub const PORTAL_ID: u64 = 12_345_678;

/// How long [`SandboxHandle::shutdown`] waits for open connections before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How a sandbox behaves: the token it accepts, the limits it enforces and the faults it
/// injects. Build it with `..SandboxConfig::default()` or from [`SandboxArgs`].
#[derive(Clone)]
pub struct SandboxConfig {
    /// The bearer token every `/crm/…` request must carry; anything else gets HubSpot's 401.
    pub token: String,
    /// Requests per second before 429s (`SECONDLY`); `None` is unlimited. Changeable at run
    /// time through `POST /_sandbox/faults`, as are the other limits.
    pub requests_per_second: Option<u32>,
    /// Most inputs one batch request may carry (HubSpot: 100, FACTS B1).
    pub max_batch_inputs: usize,
    /// Requests per rolling ten seconds before 429s (`TEN_SECONDLY_ROLLING`; HubSpot: 100 on
    /// Free and Starter, 190 on Professional and Enterprise, FACTS R1); `None` is unlimited.
    pub requests_per_ten_seconds: Option<u32>,
    /// Requests per UTC day before 429s (`DAILY`; HubSpot: 250,000 to 1,000,000, FACTS R1);
    /// `None` is unlimited.
    pub requests_per_day: Option<u64>,
    /// Searches per second, a bucket of their own (HubSpot: 4, FACTS R2); `None` is unlimited.
    pub search_requests_per_second: Option<u32>,
    /// Faults injected from the start (all off by default).
    pub faults: Faults,
}

impl Default for SandboxConfig {
    /// Token `sandbox-token`, no limits, 100 inputs per batch, no faults.
    fn default() -> Self {
        SandboxConfig {
            token: "sandbox-token".to_owned(),
            requests_per_second: None,
            max_batch_inputs: 100,
            requests_per_ten_seconds: None,
            requests_per_day: None,
            search_requests_per_second: None,
            faults: Faults::default(),
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
            .field("requests_per_ten_seconds", &self.requests_per_ten_seconds)
            .field("requests_per_day", &self.requests_per_day)
            .field(
                "search_requests_per_second",
                &self.search_requests_per_second,
            )
            .field("faults", &self.faults)
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
