//! End-to-end tests: the real `engine` binary against the bundled HubSpot sandbox over HTTP.
//!
//! Each test builds its own temporary project (`support::TestProject`: engine.yaml, a users
//! CSV, one model, one sync to HubSpot contacts) and its own in-process sandbox on a free port,
//! runs `engine` as a child process, and asserts exit codes, output and the sandbox's end state.
//!
//! | module | what |
//! | --- | --- |
//! | `plan_apply` | create, update, remove, partial 207, 429s, stale plans, guards, examples |
//! | `crash` | `kill -9` during apply at several points, then recovery; the apply lock |
//! | `errors` | inputs refused before any request, with the state left untouched |
//!
//! Run with `cargo test -p engine-cli --test e2e` (add `-- NAME` to filter).

mod crash;
mod errors;
mod plan_apply;
mod support;
