//! The per-sync apply lock: an OS file lock, so a process killed with `kill -9` releases it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::StateError;

/// Held while an apply of one sync runs; dropping it releases the lock.
#[derive(Debug)]
pub struct SyncLock {
    _held: Held,
}

/// What keeps the lock: an open file with an OS lock (local state), or the PostgreSQL
/// connection that holds an advisory lock (closing it releases the lock).
enum Held {
    File(#[allow(dead_code, reason = "held for its lock")] File),
    Connection(#[allow(dead_code, reason = "held for its lock")] Box<dyn Send>),
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Held::File(file) => f.debug_tuple("File").field(file).finish(),
            Held::Connection(_) => f.write_str("Connection"),
        }
    }
}

impl SyncLock {
    /// Takes the lock at `path` for `sync` without waiting; on failure names the holder.
    pub(crate) fn acquire(path: &Path, sync: &str) -> Result<SyncLock, StateError> {
        let mut file = fs_err::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?
            .into_parts()
            .0;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(StateError::Locked {
                    sync: sync.to_string(),
                    holder: if holder.is_empty() {
                        "unknown holder".into()
                    } else {
                        holder.into()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(error.into()),
        }
        let who = format!(
            "pid {} on {}, since {}",
            std::process::id(),
            hostname(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(who.as_bytes())?;
        file.flush()?;
        Ok(SyncLock {
            _held: Held::File(file),
        })
    }
}

impl SyncLock {
    /// A lock held by a connection (PostgreSQL's advisory lock): released when `connection`,
    /// and with it the session, is dropped, or when the process dies.
    pub(crate) fn held_by(connection: Box<dyn Send>) -> SyncLock {
        SyncLock {
            _held: Held::Connection(connection),
        }
    }
}

/// This machine's name, for lock holders.
pub(crate) fn hostname() -> String {
    fs_err::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".to_string())
}
