//! Saved plans applied on the machine that made them, without reading their changes again.
//!
//! `engine plan --out FILE` has each sync's changes in change files already. It keeps them
//! under `<root>/<digest>/` (hard links where the file system allows, copies where not), with
//! a manifest naming each sync's files and row count. `engine apply FILE` looks there first,
//! by the digest at the end of the file: when the files are there, the plan file is read only
//! to check its seal and take its header, and its change lines are counted, not parsed. The
//! seal is keyed by the state's secret, so a file whose digest verifies is byte for byte the
//! plan this state wrote, and the kept files are the changes that plan was written from. Any
//! mismatch (no kept files, another row count, a seal that fails) falls back to reading the
//! file in full, which also reports an edited plan.
//!
//! Only the newest [`KEPT_PLANS`] plans are kept; an apply that consumed a plan's files
//! removes what is left of its entry.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::saved::{Changes, read_lines};
use crate::seal::FileSeal;
use crate::{ChangeSet, Plan, PlanFileError};

/// How many saved plans keep their change files at once.
pub const KEPT_PLANS: usize = 3;

/// The manifest's file name inside a kept plan's directory.
const MANIFEST: &str = "kept.json";

/// Where saved plans keep their change files: `<state>/plans/`.
#[derive(Debug, Clone)]
pub struct KeptPlans {
    root: PathBuf,
}

/// What a kept plan's directory holds, per sync in plan order.
#[derive(Serialize, Deserialize)]
struct Manifest {
    syncs: Vec<KeptSync>,
}

#[derive(Serialize, Deserialize)]
struct KeptSync {
    sync: String,
    /// File names inside the directory, in order.
    parts: Vec<String>,
    rows: u64,
}

impl KeptPlans {
    /// Saved plans' change files under `root` (created on first use).
    pub fn new(root: PathBuf) -> Self {
        KeptPlans { root }
    }

    /// Keeps the change files of `plan`, which has just been saved (its digest is set), and
    /// drops the oldest kept plans beyond [`KEPT_PLANS`]. The plan's own files stay where they
    /// are.
    pub fn keep(&self, plan: &Plan) -> std::io::Result<()> {
        if plan.digest.is_empty() || plan.is_empty() {
            return Ok(());
        }
        fs_err::create_dir_all(&self.root)?;
        let dir = self.root.join(&plan.digest);
        let tmp = self.root.join(format!(".{}.tmp", plan.digest));
        let _ = fs_err::remove_dir_all(&tmp);
        fs_err::create_dir_all(&tmp)?;
        let kept = (|| {
            let mut manifest = Manifest { syncs: Vec::new() };
            for (n, sync) in plan.syncs.iter().enumerate() {
                let mut parts = Vec::new();
                for (p, part) in sync.changes.files().iter().enumerate() {
                    let name = format!("changes-{n}-{p}.parquet");
                    let target = tmp.join(&name);
                    if std::fs::hard_link(part, &target).is_err() {
                        fs_err::copy(part, &target)?;
                    }
                    parts.push(name);
                }
                if parts.is_empty() && !sync.changes.is_empty() {
                    // Changes held in memory have no file to keep: the plan is read in full.
                    return Err(std::io::Error::other("changes not in files"));
                }
                manifest.syncs.push(KeptSync {
                    sync: sync.sync.clone(),
                    parts,
                    rows: sync.changes.len(),
                });
            }
            let bytes = serde_json::to_vec(&manifest).map_err(std::io::Error::other)?;
            fs_err::write(tmp.join(MANIFEST), bytes)?;
            let _ = fs_err::remove_dir_all(&dir);
            fs_err::rename(&tmp, &dir)
        })();
        if kept.is_err() {
            let _ = fs_err::remove_dir_all(&tmp);
        }
        kept?;
        self.trim();
        Ok(())
    }

    /// Reads the saved plan at `path` with its kept change files, if this machine kept them
    /// and the file's seal holds under `key`. None means: read the file in full.
    pub fn read(&self, path: &Path, key: &[u8; 32]) -> Result<Option<Plan>, PlanFileError> {
        let read_error = |source| PlanFileError::Read {
            path: path.display().to_string(),
            source,
        };
        let Some(digest) = claimed_digest(path).map_err(read_error)? else {
            return Ok(None);
        };
        let dir = self.root.join(&digest);
        let Ok(bytes) = fs_err::read(dir.join(MANIFEST)) else {
            return Ok(None);
        };
        let Ok(manifest) = serde_json::from_slice::<Manifest>(&bytes) else {
            return Ok(None);
        };
        let file = fs_err::File::open(path).map_err(read_error)?;
        let mut file_seal = FileSeal::new(key);
        let Some(mut plan) = read_lines(
            std::io::BufReader::with_capacity(1 << 16, file),
            Changes::Count,
            &mut file_seal,
        )
        .map_err(read_error)?
        else {
            return Ok(None);
        };
        if file_seal.verdict() != Some(true) || plan.syncs.len() != manifest.syncs.len() {
            return Ok(None);
        }
        for (sync, kept) in plan.syncs.iter_mut().zip(manifest.syncs) {
            let parts: Vec<PathBuf> = kept.parts.iter().map(|p| dir.join(p)).collect();
            if sync.sync != kept.sync
                || sync.changes.len() != kept.rows
                || parts.iter().any(|p| !p.is_file())
            {
                return Ok(None);
            }
            sync.changes = ChangeSet::from_files(parts, kept.rows);
        }
        Ok(Some(plan))
    }

    /// Removes what is left of a kept plan once an apply has taken its files.
    pub fn forget(&self, digest: &str) {
        if is_digest(digest.as_bytes()) {
            let _ = fs_err::remove_dir_all(self.root.join(digest));
        }
    }

    /// Drops the oldest kept plans beyond [`KEPT_PLANS`], and leftovers of interrupted keeps.
    fn trim(&self) {
        let Ok(entries) = fs_err::read_dir(&self.root) else {
            return;
        };
        let mut kept: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if !is_digest(name.as_encoded_bytes()) {
                let _ = fs_err::remove_dir_all(&path);
                continue;
            }
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            kept.push((modified, path));
        }
        kept.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        for (_, path) in kept.into_iter().skip(KEPT_PLANS) {
            let _ = fs_err::remove_dir_all(path);
        }
    }
}

/// The digest a saved plan's file ends with (see [`crate::seal::digest_field`]).
pub(crate) fn claimed_digest(path: &Path) -> std::io::Result<Option<String>> {
    let mut file = fs_err::File::open(path)?;
    let length = file.metadata()?.len();
    let tail_length = length.min(256);
    file.seek(std::io::SeekFrom::Start(length - tail_length))?;
    let mut tail = Vec::with_capacity(tail_length as usize);
    file.read_to_end(&mut tail)?;
    Ok(crate::seal::digest_field(&tail)
        .map(|(_, claimed)| claimed)
        .filter(|claimed| is_digest(claimed))
        .map(|claimed| String::from_utf8_lossy(claimed).into_owned()))
}

/// True for 64 lowercase hex digits, the only names kept plans have.
fn is_digest(name: &[u8]) -> bool {
    name.len() == 64 && name.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
