//! `kill -9` during apply, then `engine apply` again: the journal is folded into the state,
//! nothing is created twice, and only what did not succeed is sent again. Also the per-sync
//! apply lock.
//!
//! The sandbox's write faults make the crash points exact: `hang_after_write: N` applies the
//! N-th batch and never answers, `hang_before_write: N` holds it without applying it. The test
//! waits until the sandbox has received that write, then kills the engine with SIGKILL. Tests
//! of one exact crash point send one request at a time ([`SEQUENTIAL`]); the randomised trials
//! and `kill_while_batches_are_in_flight_then_recover` keep several in flight.

use serde_json::{Value, json};

use crate::support::{Fixture, SYNC, TestProject, csv, users};

/// One request in flight at a time, so "the N-th write" is one batch at one point of the plan.
const SEQUENTIAL: &[(&str, Option<&str>)] = &[("ENGINE_MAX_IN_FLIGHT", Some("1"))];

/// Six rows in three batches of two, a fault, a kill once write `kill_at` arrived (and
/// `applied` contacts exist), then a clean rerun that must write exactly `rerun_creates` rows.
fn crash_then_recover(fault: Value, kill_at: u64, applied: usize, rerun_creates: usize) {
    let rows = users(6);
    let project = TestProject::with(
        Fixture {
            batch_size: 2,
            ..Fixture::default()
        },
        &csv(&rows),
    );
    project.sandbox.set_faults(fault);

    let mut apply = project.spawn_engine_with(&["apply"], SEQUENTIAL);
    project.sandbox.wait_for_writes(kill_at, &mut apply);
    project
        .sandbox
        .wait_until("the accepted batches are stored", || {
            project.contacts().len() >= applied
        });
    let killed = apply.kill();
    assert_eq!(killed.code, None, "killed by a signal\n{killed}");
    assert_eq!(
        project.contacts().len(),
        applied,
        "{:?}",
        project.contacts()
    );

    project.sandbox.clear_faults();
    let rerun = project.engine(&["apply"]);
    rerun
        .assert_code(0)
        .assert_stderr_contains("Recovered run 1");
    if rerun_creates == 0 {
        rerun.assert_contains("Nothing to apply.");
    } else {
        rerun
            .assert_contains(&format!(
                "Plan: {rerun_creates} to create, 0 to update, 0 to remove."
            ))
            .assert_contains(&format!(
                "{rerun_creates} created/upserted, 0 updated, 0 removed, 0 failed (run 2)"
            ));
    }
    project.assert_contacts_exactly(&rows);

    let runs = project.engine(&["runs"]);
    runs.assert_code(0);
    let first = runs
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap_or_else(|| panic!("run 1 is not listed\n{runs}"));
    assert!(
        first.contains(SYNC) && first.contains("recovered"),
        "{runs}"
    );
    project
        .engine(&["runs", "show", "1"])
        .assert_code(0)
        .assert_contains("recovered")
        .assert_contains("stopped unexpectedly");
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn kill_after_a_middle_batch_was_accepted_then_recover() {
    // Batches 1 and 2 are in the sandbox; batch 2's answer never came, so its rows are read
    // back from the sandbox (found written); batch 1 comes from the journal; batch 3 is sent.
    crash_then_recover(json!({"hang_after_write": 2}), 2, 4, 2);
}

#[test]
fn kill_before_anything_was_accepted_then_recover() {
    crash_then_recover(json!({"hang_before_write": 1}), 1, 0, 6);
}

#[test]
fn kill_after_the_last_batch_was_accepted_then_recover() {
    crash_then_recover(json!({"hang_after_write": 3}), 3, 6, 0);
}

#[test]
fn kill_during_updates_and_removals_then_recover() {
    // One row per batch: three updates, then one clear. The sandbox applies the second update
    // and never answers; the rerun reads it back (written) and sends the third update and the
    // clear, and nothing else.
    let mut rows = users(4);
    let project = TestProject::with(
        Fixture {
            batch_size: 1,
            ..Fixture::default()
        },
        &csv(&rows),
    );
    project.engine(&["apply"]).assert_code(0);
    let writes = project.sandbox.write_requests();

    rows[0].last_name = "Changed1".into();
    rows[1].last_name = "Changed2".into();
    rows[2].last_name = "Changed3".into();
    let removed = rows.remove(3);
    project.write_csv(&csv(&rows));
    project
        .sandbox
        .set_faults(json!({"hang_after_write": writes + 2}));
    let mut apply = project.spawn_engine_with(&["apply"], SEQUENTIAL);
    project.sandbox.wait_for_writes(writes + 2, &mut apply);
    project
        .sandbox
        .wait_until("the second update is stored", || {
            project
                .contacts()
                .iter()
                .filter(|c| c.get("lastname").is_some_and(|n| n.starts_with("Changed")))
                .count()
                >= 2
        });
    apply.kill();

    project.sandbox.clear_faults();
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_stderr_contains("Recovered run 2")
        .assert_contains("Plan: 0 to create, 1 to update, 1 to remove.")
        .assert_contains("0 created/upserted, 1 updated, 1 removed, 0 failed (run 3)");
    let contacts = project.contacts();
    assert_eq!(contacts.len(), 4, "{contacts:?}");
    for row in &rows {
        let contact = contacts
            .iter()
            .find(|c| c.get("email") == Some(row.email.as_str()));
        assert_eq!(
            contact.map(|c| c.mapped()),
            Some(row.properties()),
            "{contacts:?}"
        );
    }
    let cleared = contacts
        .iter()
        .find(|c| c.get("email") == Some(removed.email.as_str()));
    assert_eq!(
        cleared.map(|c| c.mapped().len()),
        Some(1),
        "only the email is left: {contacts:?}"
    );
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn kill_while_batches_are_in_flight_then_recover() {
    // Three batches of two, several in flight: batch 2 is applied and never answered, batch 3
    // goes out beside it and is answered. The journal holds batches 1 and 3 as written and
    // batch 2 as sent; the rerun reads batch 2 back (found written) and sends nothing.
    let rows = users(6);
    let project = TestProject::with(
        Fixture {
            batch_size: 2,
            ..Fixture::default()
        },
        &csv(&rows),
    );
    project.sandbox.set_faults(json!({"hang_after_write": 2}));
    let mut apply = project.spawn_engine(&["apply"]);
    // One request at a time would never send write 3 while write 2 hangs.
    project.sandbox.wait_for_writes(3, &mut apply);
    project
        .sandbox
        .wait_until("every batch is stored", || project.contacts().len() >= 6);
    // Batch 3's answer may or may not be journaled yet: either way recovery finds it written.
    let killed = apply.kill();
    assert_eq!(killed.code, None, "killed by a signal\n{killed}");

    project.sandbox.clear_faults();
    let rerun = project.engine(&["apply"]);
    rerun
        .assert_code(0)
        .assert_stderr_contains("Recovered run 1")
        .assert_stderr_contains("were found written");
    project.assert_contacts_exactly(&rows);
    assert_eq!(project.contacts().len(), 6, "nothing was created twice");
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn a_second_apply_of_a_locked_sync_fails_at_once_naming_the_holder() {
    let rows = users(4);
    let project = TestProject::new(&csv(&rows));
    project.sandbox.set_faults(json!({"hang_before_write": 1}));

    let mut first = project.spawn_engine(&["apply"]);
    project.sandbox.wait_for_writes(1, &mut first);
    let second = project.engine(&["apply"]);
    second
        .assert_code(1)
        .assert_stderr_contains("locked")
        .assert_stderr_contains(&format!("pid {}", first.pid()));
    assert_eq!(
        project.sandbox.write_requests(),
        1,
        "the second apply sent nothing"
    );
    first.kill();

    // The crash released the lock; the next apply recovers and finishes.
    project.sandbox.clear_faults();
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_stderr_contains("Recovered run 1");
    project.assert_contacts_exactly(&rows);
}

#[test]
fn a_write_applied_but_never_answered_then_a_changed_model_leaves_no_orphan_or_duplicate() {
    // Batch 2 (users 3 and 4) is applied by the sandbox, its answer never comes, and the engine
    // is killed. Before the rerun, user 3 leaves the model and user 4 changes email. Without
    // reading the destination, user 3's record would keep its values and user 4 would get a
    // second record.
    let mut rows = users(6);
    let project = TestProject::with(
        Fixture {
            batch_size: 2,
            ..Fixture::default()
        },
        &csv(&rows),
    );
    project.sandbox.set_faults(json!({"hang_after_write": 2}));
    let mut apply = project.spawn_engine_with(&["apply"], SEQUENTIAL);
    project.sandbox.wait_for_writes(2, &mut apply);
    project
        .sandbox
        .wait_until("batch 2 is stored", || project.contacts().len() >= 4);
    apply.kill();

    let gone = rows.remove(2);
    rows[2].email = "user4-new@example.com".into();
    project.write_csv(&csv(&rows));
    project.sandbox.clear_faults();
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_stderr_contains("of 2 row(s) whose batch was never answered, 2 were found written");
    let contacts = project.contacts();
    assert_eq!(
        contacts.len(),
        6,
        "one record per user ever sent: {contacts:?}"
    );
    for row in &rows {
        let matching: Vec<_> = contacts
            .iter()
            .filter(|c| c.get("email") == Some(row.email.as_str()))
            .collect();
        assert_eq!(matching.len(), 1, "{}: {contacts:?}", row.email);
        assert_eq!(matching[0].mapped(), row.properties(), "{}", row.email);
    }
    assert!(
        !contacts
            .iter()
            .any(|c| c.get("email") == Some("user4@example.com")),
        "user 4's record changed its email rather than staying behind: {contacts:?}"
    );
    let left = contacts
        .iter()
        .find(|c| c.get("email") == Some(gone.email.as_str()))
        .expect("user 3's record stays");
    assert_eq!(
        left.mapped().len(),
        1,
        "user 3's record was cleared: {left:?}"
    );
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

/// A small deterministic generator, so every trial can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Changes a model at random: renames, email changes, removals, re-keys, newcomers. Emails
/// stay unique.
fn mutate(rows: &mut Vec<crate::support::User>, rng: &mut Rng, next_id: &mut u32, version: u32) {
    let mut out = Vec::new();
    for mut row in rows.drain(..) {
        match rng.below(10) {
            0 => continue, // leaves the model
            1 => row.first_name = format!("F{}v{version}", row.id),
            2 => row.email = format!("user{}-v{version}@example.com", row.id),
            3 => {
                // re-key: a new id, the same email
                *next_id += 1;
                row.id = *next_id;
            }
            4 => {
                row.lifecycle = if row.lifecycle == "lead" {
                    "customer"
                } else {
                    "lead"
                }
                .into()
            }
            _ => {}
        }
        out.push(row);
    }
    for _ in 0..rng.below(3) {
        *next_id += 1;
        out.push(crate::support::User::new(*next_id));
    }
    *rows = out;
}

/// One seeded trial: a first apply (sometimes killed), a model change, an apply killed inside
/// a write (applied-but-unanswered or held before the store), another model change, a clean
/// rerun; then the sandbox must hold exactly the model (every row once, with its values), any
/// other record must have been cleared, and the next plan must be empty.
fn crash_trial(seed: u64) -> [u32; 3] {
    // Kills after an applied, unanswered write; kills before a write was stored; applies
    // that finished before the fault's write came.
    let mut seen = [0u32; 3];
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut rows = users(3 + rng.below(5) as u32);
    let mut next_id = 100;
    let project = TestProject::with(
        Fixture {
            batch_size: 1 + rng.below(2) as usize,
            ..Fixture::default()
        },
        &csv(&rows),
    );
    let context = |what: &str| format!("seed {seed}: {what}");
    for round in 1..=2u32 {
        let at = project.sandbox.write_requests() + 1 + rng.below(3);
        let fault = if rng.chance(60) {
            "hang_after_write"
        } else {
            "hang_before_write"
        };
        project.sandbox.set_faults(json!({ fault: at }));
        let mut apply = project.spawn_engine(&["apply"]);
        if project.sandbox.wait_for_writes_or_exit(at, &mut apply) && !apply.has_exited() {
            if fault == "hang_after_write" {
                // Give the store a moment to finish applying the held batch.
                std::thread::sleep(std::time::Duration::from_millis(100));
                seen[0] += 1;
            } else {
                seen[1] += 1;
            }
            apply.kill();
        } else {
            seen[2] += 1;
            apply.wait();
        }
        project.sandbox.clear_faults();
        mutate(&mut rows, &mut rng, &mut next_id, round);
        project.write_csv(&csv(&rows));
    }
    let rerun = project.engine(&["apply"]);
    assert_eq!(
        rerun.code,
        Some(0),
        "{}\n{rerun}",
        context("the rerun succeeds")
    );
    let contacts = project.contacts();
    let emails: Vec<&str> = contacts.iter().filter_map(|c| c.get("email")).collect();
    let unique: std::collections::BTreeSet<&str> = emails.iter().copied().collect();
    assert_eq!(
        unique.len(),
        emails.len(),
        "{}",
        context("no duplicate email")
    );
    for row in &rows {
        let contact = contacts
            .iter()
            .find(|c| c.get("email") == Some(row.email.as_str()))
            .unwrap_or_else(|| {
                panic!(
                    "{}: {contacts:?}",
                    context(&format!("{} exists", row.email))
                )
            });
        assert_eq!(
            contact.mapped(),
            row.properties(),
            "{}",
            context(&row.email)
        );
    }
    for contact in &contacts {
        let in_model = rows
            .iter()
            .any(|r| Some(r.email.as_str()) == contact.get("email"));
        if !in_model {
            assert_eq!(
                contact.mapped().len(),
                1,
                "{}: {contact:?}",
                context("a record no row owns is cleared")
            );
        }
    }
    let plan = project.engine(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.code,
        Some(0),
        "{}\n{plan}",
        context("the next plan is empty")
    );
    seen
}

/// How many seeded trials to run per test (4 tests); `ENGINE_CRASH_TRIALS=100` runs 400.
fn trials() -> u64 {
    std::env::var("ENGINE_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

fn crash_trials(offset: u64) {
    let first = std::env::var("ENGINE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut seen = [0u32; 3];
    for n in 0..trials() {
        let trial = crash_trial(first + offset + n * 4);
        for (total, count) in seen.iter_mut().zip(trial) {
            *total += count;
        }
    }
    eprintln!(
        "{} trials (2 applies each): {} killed after an applied but unanswered write, {} killed before a write was stored, {} finished before the fault",
        trials(),
        seen[0],
        seen[1],
        seen[2]
    );
}

#[test]
fn randomised_kill_trials_a() {
    crash_trials(1);
}

#[test]
fn randomised_kill_trials_b() {
    crash_trials(2);
}

#[test]
fn randomised_kill_trials_c() {
    crash_trials(3);
}

#[test]
fn randomised_kill_trials_d() {
    crash_trials(4);
}

/// `on_remove: delete`, one row per batch: two removed rows are two deletes. The sandbox holds
/// the first delete (`fault`), the engine is killed, and the rerun must tell from the records
/// whether that delete happened: a record still there is deleted again, a record gone is not
/// asked for again.
fn kill_during_deletes_then_recover(fault: &str, planned_again: usize) {
    let rows = users(3);
    let project = TestProject::with(
        Fixture {
            batch_size: 1,
            ..Fixture::default()
        },
        &csv(&rows),
    );
    project.edit(
        &format!("syncs/{SYNC}.yaml"),
        "on_remove: clear_fields",
        "on_remove: delete",
    );
    project.engine(&["apply"]).assert_code(0);
    let writes = project.sandbox.write_requests();

    project.write_csv(&csv(&rows[2..]));
    project.sandbox.set_faults(json!({ fault: writes + 1 }));
    let mut apply = project.spawn_engine_with(&["apply"], SEQUENTIAL);
    project.sandbox.wait_for_writes(writes + 1, &mut apply);
    if fault == "hang_after_write" {
        project
            .sandbox
            .wait_until("the first delete is applied", || {
                project.contacts().len() == 2
            });
    }
    apply.kill();

    project.sandbox.clear_faults();
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_stderr_contains("Recovered run 2")
        .assert_contains(&format!(
            "Plan: 0 to create, 0 to update, {planned_again} to remove."
        ));
    project.assert_contacts_exactly(&rows[2..]);
    project
        .engine(&["plan", "--detailed-exitcode"])
        .assert_code(0);
}

#[test]
fn kill_after_a_delete_was_applied_then_recover() {
    kill_during_deletes_then_recover("hang_after_write", 1);
}

#[test]
fn kill_before_a_delete_was_applied_then_recover() {
    kill_during_deletes_then_recover("hang_before_write", 2);
}

/// Insert and update mode, one row per batch: the sandbox applies the first write and never
/// answers, the engine is killed, and the rerun must neither create a second record nor
/// touch a record that existed before (insert), nor create anything (update).
#[test]
fn kill_after_an_insert_or_an_update_mode_write_then_recover() {
    for mode in ["insert", "update"] {
        let rows = users(3);
        let project = TestProject::with(
            Fixture {
                batch_size: 1,
                ..Fixture::default()
            },
            &csv(&rows),
        );
        project.edit(
            &format!("syncs/{SYNC}.yaml"),
            "mode: upsert",
            &format!("mode: {mode}"),
        );
        // Someone else's contact holds user 2's email (and, in update mode, user 1's too).
        let theirs: Vec<usize> = if mode == "insert" {
            vec![1]
        } else {
            vec![0, 1]
        };
        for i in &theirs {
            project.sandbox.admin(
                "/crm/v3/objects/contacts",
                &json!({"properties": {"email": rows[*i].email, "firstname": "Theirs"}}),
            );
        }
        let writes = project.sandbox.write_requests();
        project
            .sandbox
            .set_faults(json!({"hang_after_write": writes + 1}));
        let mut apply = project.spawn_engine_with(&["apply"], SEQUENTIAL);
        project.sandbox.wait_for_writes(writes + 1, &mut apply);
        apply.kill();

        project.sandbox.clear_faults();
        project
            .engine(&["apply"])
            .assert_stderr_contains("Recovered run 1");
        let contacts = project.contacts();
        for (i, row) in rows.iter().enumerate() {
            let holding: Vec<_> = contacts
                .iter()
                .filter(|c| c.get("email") == Some(row.email.as_str()))
                .collect();
            match (mode, theirs.contains(&i)) {
                ("insert", true) => {
                    assert_eq!(holding.len(), 1, "{mode}: {contacts:?}");
                    assert_eq!(holding[0].get("firstname"), Some("Theirs"), "untouched");
                }
                ("insert", false) => {
                    assert_eq!(
                        holding.len(),
                        1,
                        "{mode}: one record, no duplicate: {contacts:?}"
                    );
                    assert_eq!(holding[0].mapped(), row.properties());
                }
                (_, true) => {
                    assert_eq!(holding.len(), 1, "{mode}: {contacts:?}");
                    assert_eq!(holding[0].mapped(), row.properties(), "updated");
                }
                (_, false) => assert!(holding.is_empty(), "{mode} creates nothing: {contacts:?}"),
            }
        }
        let writes = project.sandbox.write_requests();
        project.engine(&["plan"]).assert_code(0);
        project.engine(&["apply"]);
        assert_eq!(
            project.sandbox.write_requests(),
            writes,
            "{mode}: nothing is sent again"
        );
    }
}

/// Matching through search look-ups (`match.lookup: search`), one row per batch: the sandbox
/// applies the first create and never answers, the engine is killed, and the rerun must find
/// that record by search (a batch read needs a unique property) instead of creating a second.
#[test]
fn kill_after_a_write_matched_by_search_then_recover() {
    let rows = users(3);
    let project = TestProject::with(
        Fixture {
            batch_size: 1,
            ..Fixture::default()
        },
        &csv(&rows),
    );
    project.write(
        &format!("syncs/{SYNC}.yaml"),
        &format!(
            "name: {SYNC}\nmodel: users\ndestination: hubspot\nobject: companies\nbatch_size: 1\n\
             match:\n  property: name\n  column: email\n  lookup: search\nmapping:\n  \
             - {{ property: city, column: first_name }}\n"
        ),
    );
    let writes = project.sandbox.write_requests();
    project
        .sandbox
        .set_faults(json!({"hang_after_write": writes + 1}));
    let mut apply = project.spawn_engine_with(&["apply"], SEQUENTIAL);
    project.sandbox.wait_for_writes(writes + 1, &mut apply);
    apply.kill();

    project.sandbox.clear_faults();
    project
        .engine(&["apply"])
        .assert_code(0)
        .assert_stderr_contains("Recovered run 1");
    let companies = project.sandbox.records("companies");
    assert_eq!(companies.len(), rows.len(), "no duplicate: {companies:?}");
    for row in &rows {
        let holding: Vec<_> = companies
            .iter()
            .filter(|c| c.get("name") == Some(row.email.as_str()))
            .collect();
        assert_eq!(holding.len(), 1, "{companies:?}");
        assert_eq!(holding[0].get("city"), Some(row.first_name.as_str()));
    }
    let writes = project.sandbox.write_requests();
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("No changes");
    project.engine(&["apply"]).assert_code(0);
    assert_eq!(
        project.sandbox.write_requests(),
        writes,
        "nothing is sent again"
    );
}
