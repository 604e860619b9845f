//! Bulk ingest jobs a run created, kept between runs (`bulk_jobs` table of `state.db`): what
//! lets a crashed apply finish a job by polling it instead of uploading its rows again.
//!
//! A connector that writes a batch through a job (Salesforce Bulk API 2.0) creates the job
//! first, records its id here with the keys of the rows it carries, and only then uploads
//! anything. After a crash, recovery finds the job of the run's unanswered rows here and
//! asks the destination for its results. With the local backend the store has its own
//! connection to `state.db` (as [`crate::LookupStore`] does), so a connector can write it from
//! its request tasks while the apply writes the journal through [`crate::LocalState`]; with
//! the PostgreSQL backend it is the `bulk_jobs` table of the shared schema, so recovery on
//! another machine finds the jobs too.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, params};

use crate::StateError;

/// The table, created on first use (an additive change: older engines ignore it). `keys`
/// holds the rows' keys in the order they were put in the job, one per line.
pub(crate) const BULK_JOBS_TABLE: &str = "CREATE TABLE IF NOT EXISTS bulk_jobs (
    run_id INTEGER NOT NULL,
    sync TEXT NOT NULL,
    first_key TEXT NOT NULL,
    job_id TEXT NOT NULL,
    keys TEXT NOT NULL,
    PRIMARY KEY (run_id, first_key)
);";

/// One job a run created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkJob {
    /// The run that created it.
    pub run_id: i64,
    /// The sync it writes.
    pub sync: String,
    /// The destination's job id.
    pub job_id: String,
    /// The keys of the rows it carries, in the job's order.
    pub keys: Vec<String>,
}

/// The bulk jobs of one project's state.
#[derive(Debug)]
pub struct BulkJobStore {
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Local(Mutex<Connection>),
    Postgres {
        worker: crate::postgres::Worker,
        schema: String,
    },
}

impl BulkJobStore {
    /// Opens the bulk jobs of the state in `dir` (which [`crate::LocalState::open`] created).
    pub fn open(dir: &Path) -> Result<BulkJobStore, StateError> {
        let conn = Connection::open(dir.join("state.db"))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute_batch(BULK_JOBS_TABLE)?;
        Ok(BulkJobStore {
            backend: Backend::Local(Mutex::new(conn)),
        })
    }

    /// The bulk jobs of a state kept in PostgreSQL.
    pub(crate) fn postgres(state: &crate::PostgresState) -> BulkJobStore {
        BulkJobStore {
            backend: Backend::Postgres {
                worker: state.worker().clone(),
                schema: state.schema().to_string(),
            },
        }
    }

    fn local(&self) -> Option<std::sync::MutexGuard<'_, Connection>> {
        match &self.backend {
            Backend::Local(conn) => Some(conn.lock().unwrap_or_else(PoisonError::into_inner)),
            Backend::Postgres { .. } => None,
        }
    }

    /// Records a job before anything is uploaded to it.
    pub fn record(&self, job: &BulkJob) -> Result<(), StateError> {
        let Some(conn) = self.local() else {
            return self.pg(|schema| {
                let job = job.clone();
                async move |client: &tokio_postgres::Client| {
                    client
                        .execute(
                            &format!(
                                "INSERT INTO {schema}.bulk_jobs (run_id, sync, first_key, job_id, keys)
                                 VALUES ($1, $2, $3, $4, $5)
                                 ON CONFLICT (run_id, first_key) DO UPDATE SET sync = excluded.sync,
                                     job_id = excluded.job_id, keys = excluded.keys"
                            ),
                            &[
                                &job.run_id,
                                &job.sync,
                                &job.keys.first().map(String::as_str).unwrap_or_default(),
                                &job.job_id,
                                &job.keys.join("\n"),
                            ],
                        )
                        .await
                        .map_err(crate::postgres::pg_error)?;
                    Ok(())
                }
            });
        };
        conn.execute(
            "INSERT OR REPLACE INTO bulk_jobs (run_id, sync, first_key, job_id, keys) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                job.run_id,
                job.sync,
                job.keys.first().map(String::as_str).unwrap_or_default(),
                job.job_id,
                job.keys.join("\n")
            ],
        )?;
        Ok(())
    }

    /// The jobs run `run_id` created, oldest first.
    pub fn of_run(&self, run_id: i64) -> Result<Vec<BulkJob>, StateError> {
        let Some(conn) = self.local() else {
            return self.pg(|schema| async move |client: &tokio_postgres::Client| {
                let rows = client
                    .query(
                        &format!(
                            "SELECT sync, job_id, keys FROM {schema}.bulk_jobs WHERE run_id = $1 ORDER BY seq"
                        ),
                        &[&run_id],
                    )
                    .await
                    .map_err(crate::postgres::pg_error)?;
                Ok(rows
                    .iter()
                    .map(|row| {
                        let keys: String = row.get(2);
                        BulkJob {
                            run_id,
                            sync: row.get(0),
                            job_id: row.get(1),
                            keys: keys.lines().map(str::to_string).collect(),
                        }
                    })
                    .collect())
            });
        };
        let mut statement = conn.prepare_cached(
            "SELECT sync, job_id, keys FROM bulk_jobs WHERE run_id = ?1 ORDER BY rowid",
        )?;
        let jobs = statement
            .query_map([run_id], |row| {
                let keys: String = row.get(2)?;
                Ok(BulkJob {
                    run_id,
                    sync: row.get(0)?,
                    job_id: row.get(1)?,
                    keys: keys.lines().map(str::to_string).collect(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(jobs)
    }

    /// Forgets the jobs of run `run_id` (its journal holds their outcomes now).
    pub fn forget_run(&self, run_id: i64) -> Result<(), StateError> {
        let Some(conn) = self.local() else {
            return self.pg(|schema| {
                async move |client: &tokio_postgres::Client| {
                    client
                        .execute(
                            &format!("DELETE FROM {schema}.bulk_jobs WHERE run_id = $1"),
                            &[&run_id],
                        )
                        .await
                        .map_err(crate::postgres::pg_error)?;
                    Ok(())
                }
            });
        };
        conn.execute("DELETE FROM bulk_jobs WHERE run_id = ?1", [run_id])?;
        Ok(())
    }
}

impl BulkJobStore {
    /// Runs a query of the PostgreSQL backend, given the schema (only called on it).
    fn pg<T, F>(&self, job: impl FnOnce(String) -> F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: AsyncFnOnce(&tokio_postgres::Client) -> Result<T, StateError> + Send + 'static,
    {
        match &self.backend {
            Backend::Postgres { worker, schema } => worker.call(job(schema.clone())),
            Backend::Local(_) => Err(StateError::Incompatible(
                "this is a bug in engine: a local bulk job store queried PostgreSQL".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_kept_per_run_and_forgotten() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = BulkJobStore::open(dir.path()).expect("the store opens");
        let job = BulkJob {
            run_id: 3,
            sync: "s".into(),
            job_id: "750000000000001AAA".into(),
            keys: vec!["a".into(), "b".into()],
        };
        store.record(&job).expect("recorded");
        assert_eq!(store.of_run(3).expect("read"), vec![job]);
        assert!(store.of_run(4).expect("read").is_empty());
        store.forget_run(3).expect("forgotten");
        assert!(store.of_run(3).expect("read").is_empty());
    }
}
