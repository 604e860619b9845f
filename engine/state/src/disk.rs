//! Telling a full disk from a damaged state.
//!
//! SQLite answers a write that finds no space with `SQLITE_FULL`, but when it cannot grow its
//! write-ahead log's index it says only "disk I/O error"; the OS says `ENOSPC` ("No space
//! left on device", os error 28). Each of those, when the file system holding the state has
//! next to nothing left, is a full disk: the user frees space and runs again, nothing is
//! damaged. Calling it corruption would send them to rebuild a healthy state.

use std::error::Error;
use std::path::Path;

/// Below this many free bytes, an I/O error the OS or SQLite does not explain is taken for a
/// full disk.
const NEARLY_FULL: u64 = 1 << 20;

/// The texts with which the OS and SQLite say a disk is full, as they appear once an error
/// has been turned into a message (`io::Error` prints `(os error 28)` on Linux).
const FULL_MESSAGES: &[&str] = &[
    "No space left on device",
    "(os error 28)",
    "database or disk is full",
    "Disk quota exceeded",
];

/// Bytes this process may still write on the file system holding `path` (or its nearest
/// existing parent); None when that cannot be asked.
pub fn available_space(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let stat = rustix::fs::statvfs(existing).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// True when `error`, or an error that caused it, is the OS or SQLite saying the disk is full.
pub fn is_disk_full(error: &(dyn Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::StorageFull
                || io.kind() == std::io::ErrorKind::QuotaExceeded)
        {
            return true;
        }
        if let Some(rusqlite::Error::SqliteFailure(failure, _)) =
            error.downcast_ref::<rusqlite::Error>()
            && failure.code == rusqlite::ErrorCode::DiskFull
        {
            return true;
        }
        if says_disk_full(&error.to_string()) {
            return true;
        }
        next = error.source();
    }
    false
}

/// True when a message (an error already turned into text, e.g. by a library that wraps I/O
/// errors) carries the OS's or SQLite's words for a full disk.
pub fn says_disk_full(message: &str) -> bool {
    FULL_MESSAGES.iter().any(|m| message.contains(m))
}

/// True when `error` means the disk holding `dir` is full: said outright, or an I/O error
/// SQLite cannot explain while that disk has next to nothing left.
pub fn disk_full_at(dir: &Path, error: &(dyn Error + 'static)) -> bool {
    is_disk_full(error) || (is_io_error(error) && nearly_full(dir))
}

/// True when the file system holding `dir` has next to nothing left.
pub fn nearly_full(dir: &Path) -> bool {
    available_space(dir).is_some_and(|free| free < NEARLY_FULL)
}

fn is_io_error(error: &(dyn Error + 'static)) -> bool {
    match error.downcast_ref::<rusqlite::Error>() {
        Some(rusqlite::Error::SqliteFailure(failure, _)) => {
            failure.code == rusqlite::ErrorCode::SystemIoFailure
        }
        _ => error.downcast_ref::<std::io::Error>().is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_and_sqlite_words_for_a_full_disk_are_recognised() {
        let enospc = std::io::Error::from_raw_os_error(28);
        assert!(is_disk_full(&enospc), "{enospc}");
        let sqlite = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert!(is_disk_full(&sqlite), "{sqlite}");
        let wrapped = std::io::Error::other(format!("writing a change file: {enospc}"));
        assert!(is_disk_full(&wrapped), "{wrapped}");
        let denied = std::io::Error::from_raw_os_error(13);
        assert!(!is_disk_full(&denied), "{denied}");
    }

    #[test]
    fn an_unexplained_io_error_is_a_full_disk_only_when_little_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let io = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
            None,
        );
        // This machine's temporary directory has more than a mebibyte free.
        assert!(available_space(dir.path()).unwrap() > NEARLY_FULL);
        assert!(!disk_full_at(dir.path(), &io));
        assert!(available_space(&dir.path().join("not/yet/there")).is_some());
    }
}
