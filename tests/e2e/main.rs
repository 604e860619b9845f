//! End-to-end tests: the real `engine` binary against the bundled HubSpot sandbox over HTTP.
//!
//! Each test builds its own temporary project (`support::TestProject`: engine.yaml, a users
//! CSV, one model, one sync to HubSpot contacts) and its own in-process sandbox on a free port,
//! runs `engine` as a child process, and asserts exit codes, output and the sandbox's end state.
//!
//! | module | what |
//! | --- | --- |
//! | `ci_example` | `examples/ci/engine.yml` parses and has its plan and apply jobs |
//! | `plan_page` | the plan for people: the markdown comment (counts, rows, escaping, 100,000 rows within GitHub's limit) and the HTML page in a headless Chromium without network (counts, search, filters, an injected script that does not run) |
//! | `init` | `engine init` from a CSV validates and plans its rows as creates against `engine sandbox hubspot`; no file overwritten; bad flags named; the modelines point at what `engine schema` prints |
//! | `plan_apply` | create, update, remove, partial 207, 429s, stale plans, guards, examples |
//! | `identity` | re-keyed rows, moving match values, duplicate and null match values |
//! | `objects` | `mode: insert` and `update`, `on_remove: delete`, deals and custom objects |
//! | `crash` | `kill -9` during apply at several points, then recovery; the apply lock |
//! | `retention` | run history within `state.retention`, `engine state gc`, a kill while pruning |
//! | `disk_full` | a full disk during plan and apply at several points, then the repairing run |
//! | `state` | damaged state named (`state::corrupt`), `engine state check` and `rebuild` |
//! | `state_postgres` | the state in PostgreSQL: a second project directory plans "no changes", the lock across machines and recovery after its holder dies, `engine state migrate` both ways, a wrong login, a missing `url`, a newer schema |
//! | `errors` | inputs refused before any request, with the state left untouched |
//! | `associations` | links by id and by property, labels, one-to-many, `when: created`, stale links removed, missing targets and unknown labels named |
//! | `events` | one event per added row, nothing for changed or removed rows, plan-time checks, exactly once across a crash |
//! | `lists` | contacts join and leave a static list created on the first run; missing contacts and active lists named |
//! | `example_hightouch` | `examples/hightouch`: companies, contacts with typed dates and labelled links, events and a list, the guide's 409 and 429 |
//! | `example_thankview` | `examples/thankview-salesforce`: one `ThankView__c` per send, the Contact/Lead cascade, an unmatched row reported, updates in place, plan-time describe errors |
//! | `example_warehouse` | `examples/warehouse-postgres`: its own seed and change SQL in PostgreSQL, a join run in the warehouse synced to contacts (text, number, checkbox and datetime properties), then the change applied from a saved plan |
//! | `salesforce_bulk` | Salesforce syncs above `bulk_threshold`: one Bulk API 2.0 job, failed rows reported and sent again once fixed, a kill while the job runs resumed by polling it; an ignored test measuring rows per second |
//! | `examples` | the integration examples (`thnks`, `clientsuccess`, `timerex`): setup, apply, data changes, final records and links |
//! | `warehouse` | models in PostgreSQL (a join of two tables) and MariaDB synced to the sandbox and followed through data changes; a missing table, a syntax error, DDL, a statement timeout and an unreachable warehouse, each pointing at what to fix with no password shown |
//! | `sandboxes` | `engine sandbox salesforce` started as a user starts it: OAuth, describe, SOQL |
//! | `corpus` | 50+ bad inputs (YAML, names, SQL, templates, properties, CSV, state damage, saved plans): exit code, error code, location, nothing written |
//!
//! Run with `cargo test -p engine-cli --test e2e` (add `-- NAME` to filter).

mod associations;
mod browser;
mod ci_example;
mod corpus;
mod crash;
mod disk_full;
mod errors;
mod events;
mod example_hightouch;
mod example_thankview;
mod example_warehouse;
mod examples;
mod identity;
mod init;
mod lists;
mod objects;
mod plan_apply;
mod plan_page;
mod retention;
mod salesforce_bulk;
mod sandboxes;
mod state;
mod state_postgres;
mod support;
mod warehouse;
