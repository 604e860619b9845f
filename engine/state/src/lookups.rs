//! Record ids found by a unique property's value, kept between runs (`lookups` table of
//! `state.db`): what backs a connector's look-up cache.
//!
//! Each entry is `(scope, value) → record id` with the time it was last seen; entries older
//! than the store's time to live are neither returned nor kept (they are deleted when the
//! store opens). The store has its own connection to `state.db`, so a connector can use it
//! from its request tasks while the apply writes the journal through [`crate::LocalState`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};

use crate::StateError;

/// The table, created on first use by this or any later engine (an additive change: older
/// engines ignore it).
pub(crate) const LOOKUPS_TABLE: &str = "CREATE TABLE IF NOT EXISTS lookups (
    scope TEXT NOT NULL,
    value TEXT NOT NULL,
    record_id TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (scope, value)
) WITHOUT ROWID;";

/// The look-ups of one project's state.
#[derive(Debug)]
pub struct LookupStore {
    conn: Mutex<Connection>,
    ttl: Duration,
}

impl LookupStore {
    /// Opens the look-ups of the state in `dir` (which [`crate::LocalState::open`] created),
    /// keeping entries for `ttl`.
    pub fn open(dir: &Path, ttl: Duration) -> Result<LookupStore, StateError> {
        let conn = Connection::open(dir.join("state.db"))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute_batch(LOOKUPS_TABLE)?;
        conn.execute(
            "DELETE FROM lookups WHERE seen_at < ?1",
            [now().saturating_sub(ttl.as_secs() as i64)],
        )?;
        Ok(LookupStore {
            conn: Mutex::new(conn),
            ttl,
        })
    }

    /// The record ids of those of `values` seen within the time to live, keyed by value.
    pub fn get(
        &self,
        scope: &str,
        values: &[String],
    ) -> Result<HashMap<String, String>, StateError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest = now().saturating_sub(self.ttl.as_secs() as i64);
        let mut statement = conn.prepare_cached(
            "SELECT record_id FROM lookups WHERE scope = ?1 AND value = ?2 AND seen_at >= ?3",
        )?;
        let mut found = HashMap::new();
        for value in values {
            let mut rows = statement.query(params![scope, value, oldest])?;
            if let Some(row) = rows.next()? {
                found.insert(value.clone(), row.get(0)?);
            }
        }
        Ok(found)
    }

    /// Remembers `(value, record id)` pairs, seen now.
    pub fn put(&self, scope: &str, found: &[(String, String)]) -> Result<(), StateError> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction()?;
        {
            let mut statement = tx.prepare_cached(
                "INSERT OR REPLACE INTO lookups (scope, value, record_id, seen_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let seen = now();
            for (value, id) in found {
                statement.execute(params![scope, value, id, seen])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets `values`.
    pub fn forget(&self, scope: &str, values: &[String]) -> Result<(), StateError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let mut statement =
            conn.prepare_cached("DELETE FROM lookups WHERE scope = ?1 AND value = ?2")?;
        for value in values {
            statement.execute(params![scope, value])?;
        }
        Ok(())
    }
}

/// Seconds since the epoch.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kept_by_scope_and_value_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        crate::LocalState::open(dir.path()).unwrap();
        let store = LookupStore::open(dir.path(), Duration::from_secs(3600)).unwrap();
        store
            .put(
                "hubspot companies domain",
                &[
                    ("acme.example".into(), "11".into()),
                    ("globex.example".into(), "12".into()),
                ],
            )
            .unwrap();
        let wanted = ["acme.example".to_string(), "initech.example".to_string()];
        let found = store.get("hubspot companies domain", &wanted).unwrap();
        assert_eq!(found, HashMap::from([("acme.example".into(), "11".into())]));
        assert!(store.get("another scope", &wanted).unwrap().is_empty());
        store
            .forget("hubspot companies domain", &wanted[..1])
            .unwrap();
        assert!(
            store
                .get("hubspot companies domain", &wanted)
                .unwrap()
                .is_empty()
        );
        // A second store on the same state sees the entries; one with no time to live does not.
        let again = LookupStore::open(dir.path(), Duration::from_secs(3600)).unwrap();
        let globex = ["globex.example".to_string()];
        assert_eq!(
            again
                .get("hubspot companies domain", &globex)
                .unwrap()
                .len(),
            1
        );
        let expired = LookupStore::open(dir.path(), Duration::ZERO).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert!(
            expired
                .get("hubspot companies domain", &globex)
                .unwrap()
                .is_empty()
        );
    }
}
