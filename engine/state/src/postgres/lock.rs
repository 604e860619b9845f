//! The apply lock of a sync in the shared state: a PostgreSQL session-level advisory lock,
//! taken without waiting on a connection of its own that the [`SyncLock`] keeps open. The
//! server releases it when that connection closes, whether the apply finished, failed, or its
//! process or machine died, so a crashed holder never blocks the next apply for long.
//!
//! The connection's `application_name` says who holds it (`engine apply <sync> pid=… host=…
//! started=…`); a second apply reads it back from `pg_locks` joined with `pg_stat_activity`.

use sha2::{Digest, Sha256};

use super::worker::{Worker, pg_error};
use crate::{StateError, SyncLock};

/// PostgreSQL cuts `application_name` at this many bytes.
const NAME_BYTES: usize = 63;

/// The advisory lock key of `sync` in the state `lineage`: two non-negative 32-bit halves of
/// a digest, so different states sharing a database never share a key.
pub(crate) fn lock_key(lineage: &str, sync: &str) -> (i32, i32) {
    let digest = Sha256::digest(format!("engine apply lock\0{lineage}\0{sync}").as_bytes());
    let half = |i: usize| {
        i32::from_be_bytes([digest[i], digest[i + 1], digest[i + 2], digest[i + 3]]) & i32::MAX
    };
    (half(0), half(4))
}

/// Who this process is, as the lock's connection shows it.
fn application_name(sync: &str) -> String {
    let mut name = format!(
        "engine apply {sync} pid={} host={} started={}",
        std::process::id(),
        crate::lock::hostname(),
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
    if name.len() > NAME_BYTES {
        let mut end = NAME_BYTES;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

/// Takes the lock of `sync`, failing at once with [`StateError::Locked`] naming the holder.
pub(crate) fn lock_sync(
    worker: &Worker,
    lineage: &str,
    sync: &str,
) -> Result<SyncLock, StateError> {
    let (high, low) = lock_key(lineage, sync);
    let connect = std::sync::Arc::clone(&worker.connect);
    let name = application_name(sync);
    let sync_name = sync.to_string();
    let taken = worker.run(async move {
        let client = connect(name).await.map_err(StateError::Connect)?;
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&high, &low])
            .await
            .map_err(pg_error)?
            .get(0);
        if got {
            return Ok(Ok(client));
        }
        let holder = client
            .query_opt(
                "SELECT a.application_name, a.pid, a.backend_start::text,
                        coalesce(host(a.client_addr), 'a local socket')
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                   AND l.classid = $1::int4::oid AND l.objid = $2::int4::oid
                 LIMIT 1",
                &[&high, &low],
            )
            .await
            .map_err(pg_error)?
            .map(|row| {
                let name: Option<String> = row.get(0);
                let pid: i32 = row.get(1);
                let since: Option<String> = row.get(2);
                let from: String = row.get(3);
                format!(
                    "`{}`, PostgreSQL backend {pid} connected from {from} since {}",
                    name.filter(|n| !n.is_empty())
                        .unwrap_or_else(|| "an unnamed session".into()),
                    since.unwrap_or_else(|| "an unknown time".into())
                )
            })
            .unwrap_or_else(|| "a session this user cannot see".to_string());
        Ok(Err(holder))
    })?;
    match taken {
        Ok(client) => Ok(SyncLock::held_by(Box::new((client, worker.clone())))),
        Err(holder) => Err(StateError::Locked {
            sync: sync_name,
            holder,
        }),
    }
}
