//! A full disk: the project's `.engine/` directory sits on a small filesystem of its own, a
//! filler file leaves only so many bytes free, and `engine plan` and `engine apply` run out of
//! space at whatever point that lands on. Each must stop with an error that says the disk is
//! full and what to do, never panic, and leave a state that the next run (with space freed)
//! repairs: the destination then holds exactly the model, and the next plan has no changes.
//!
//! The small filesystem is a tmpfs mounted for the test, which needs root (CI runs as root);
//! without it the tests say so and return, except under CI (`CI` set), where they fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Output, TestProject, User, csv, files_under, users};

/// A tmpfs of a fixed size mounted over a directory, unmounted when dropped.
struct SmallDisk {
    mount_point: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` over `mount_point` (created if missing); None when this
    /// process may not mount (not root).
    fn mount(mount_point: &Path, bytes: u64) -> Option<SmallDisk> {
        let uid = Command::new("id").arg("-u").output().expect("`id -u` runs");
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            // CI runs as root: there, a skip would hide the test.
            assert!(
                std::env::var_os("CI").is_none(),
                "the full-disk tests need root to mount a small file system, and CI must run them"
            );
            eprintln!("skipped: mounting a small filesystem needs root");
            return None;
        }
        fs_err::create_dir_all(mount_point).expect("create the mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(mount_point)
            .status()
            .expect("`mount` runs");
        assert!(
            status.success(),
            "root could not mount a tmpfs on {mount_point:?}"
        );
        Some(SmallDisk {
            mount_point: mount_point.to_path_buf(),
        })
    }

    fn filler(&self) -> PathBuf {
        self.mount_point.join("filler")
    }

    /// Fills the filesystem until at most `free` bytes are left (the filler is a file beside
    /// the state, removed by [`SmallDisk::free`]).
    fn fill_leaving(&self, free: u64) {
        self.free();
        let available = self.available();
        let take = available.saturating_sub(free);
        let file = fs_err::File::create(self.filler()).expect("create the filler");
        // Written, not just sized: tmpfs counts pages that hold data.
        let mut left = take;
        let block = vec![0x5au8; 64 * 1024];
        let mut writer = std::io::BufWriter::new(file);
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            if std::io::Write::write_all(&mut writer, &block[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        let _ = std::io::Write::flush(&mut writer);
    }

    /// Removes the filler.
    fn free(&self) {
        let _ = fs_err::remove_file(self.filler());
    }

    /// Bytes free on the filesystem.
    fn available(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.mount_point)
            .output()
            .expect("`df` runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df prints the free bytes")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
    }
}

/// Asserts a command that ran out of space failed the way a user can act on: exit 1, no
/// panic, the disk named as full, and the way out.
#[track_caller]
fn assert_disk_full_error(out: &Output, context: &str) {
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!all.contains("panicked"), "{context}: a panic:\n{all}");
    assert_eq!(out.code, Some(1), "{context}: exit code:\n{all}");
    assert!(
        all.contains("error[state::disk_full]: the disk holding"),
        "{context}: the error does not say the disk is full:\n{all}"
    );
    assert!(
        all.contains("free"),
        "{context}: the error does not say to free space:\n{all}"
    );
}

/// An apply with space again succeeds, the destination then holds exactly `rows`, and the next
/// plan has nothing to do.
#[track_caller]
fn assert_next_apply_repairs(project: &TestProject, rows: &[User]) {
    project.engine(&["apply"]).assert_code(0);
    project.assert_contacts_exactly(rows);
    project
        .engine(&["plan"])
        .assert_code(0)
        .assert_contains("No changes");
}

/// The project's scratch directory holds nothing once a command has ended.
#[track_caller]
fn assert_no_scratch_left(project: &TestProject, context: &str) {
    let left = files_under(&project.path().join(".engine/tmp"));
    assert!(left.is_empty(), "{context}: scratch files left: {left:?}");
}

#[test]
fn a_plan_that_runs_out_of_space_says_so_and_leaves_the_state_as_it_was() {
    let mut rows = users(40);
    let project = TestProject::new(&csv(&rows));
    let Some(disk) = SmallDisk::mount(&project.path().join(".engine"), 32 << 20) else {
        return;
    };
    project.engine(&["apply"]).assert_code(0);
    project.assert_contacts_exactly(&rows);
    let before = project.state_fingerprint();

    // A first backfill of many more rows needs more scratch than is left; each round leaves
    // a different amount, so the plan stops at a different write.
    rows = users(8_000);
    project.write_csv(&csv(&rows));
    let mut failures = 0;
    for free_kib in [0u64, 96, 400, 1200] {
        disk.fill_leaving(free_kib * 1024);
        let plan = project.engine(&["plan", "--out", "../plan.json"]);
        let context = format!("plan with {free_kib} KiB free");
        if plan.code != Some(0) {
            failures += 1;
            assert_disk_full_error(&plan, &context);
            assert!(
                !project.path().join("../plan.json").exists(),
                "{context}: a failed plan left a plan file"
            );
        }
        assert_no_scratch_left(&project, &context);
        disk.free();
        let _ = fs_err::remove_file(project.path().join("../plan.json"));
        assert_eq!(
            project.state_fingerprint(),
            before,
            "{context}: a plan changed the state"
        );
    }
    assert!(failures >= 3, "only {failures} plans ran out of space");
    assert_next_apply_repairs(&project, &rows);
}

#[test]
fn an_apply_that_runs_out_of_space_at_any_point_is_repaired_by_the_next_run() {
    // Each round leaves a different amount free, so the disk fills at a different point of
    // the apply: the change files, the journal, the snapshot, the commit.
    let project = TestProject::new(&csv(&users(10)));
    let Some(disk) = SmallDisk::mount(&project.path().join(".engine"), 64 << 20) else {
        return;
    };
    project.engine(&["apply"]).assert_code(0);
    let mut failures = 0;
    // Rounds whose apply had written to the destination before the disk stopped it: the
    // journal or the snapshot was being written.
    let mut stopped_after_sending = 0;
    for (round, free_kib) in [0u64, 8, 48, 160, 400, 900].into_iter().enumerate() {
        let mut rows = users(1500 + 500 * round as u32);
        for row in rows.iter_mut().step_by(3) {
            row.first_name = format!("Round{round}");
        }
        project.write_csv(&csv(&rows));
        disk.fill_leaving(free_kib * 1024);
        let writes_before = project.sandbox.write_requests();
        let apply = project.engine(&["apply"]);
        let context = format!("round {round} ({free_kib} KiB free)");
        if apply.code != Some(0) {
            failures += 1;
            assert_disk_full_error(&apply, &context);
            if project.sandbox.write_requests() > writes_before {
                stopped_after_sending += 1;
            }
        }
        disk.free();
        // The next run, with space again, repairs whatever the full disk interrupted.
        assert_next_apply_repairs(&project, &rows);
        project.engine(&["state", "check"]).assert_code(0);
        assert_no_scratch_left(&project, &context);
    }
    assert!(failures >= 3, "only {failures} rounds ran out of space");
    assert!(
        stopped_after_sending >= 1,
        "no round ran out of space after sending"
    );
}
