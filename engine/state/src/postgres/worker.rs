//! The thread that talks to PostgreSQL.
//!
//! [`crate::StateStore`] is synchronous and is called from async code, sometimes on a
//! current-thread runtime, where blocking on a future of the caller's runtime would panic. So
//! the connection lives on a thread of its own, with a small runtime of its own: a call sends a
//! job over a channel and waits for its answer on a plain (blocking) channel. Jobs run one at a
//! time, in the order they were sent, so a job's statements (a transaction's `BEGIN` … `COMMIT`)
//! never interleave with another's.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_postgres::Client;

use crate::StateError;

/// How a connection is opened: given the `application_name` it shows in `pg_stat_activity`,
/// a future (run on the worker's runtime) yielding a connected client, or a message that names
/// the server but never the password. The engine builds it from the warehouse connection code
/// (URL, TLS); tests connect without TLS.
pub type Connect = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<Client, String>> + Send>> + Send + Sync,
>;

/// A job: runs on the worker thread with the shared connection.
type Job = Box<dyn FnOnce(Rc<Client>) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// A lock connection's job: runs on the worker thread without the shared connection.
type Task = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

enum Request {
    Job(Job),
    Task(Task),
}

/// The handle to the worker thread; the thread ends when the last handle is dropped (a held
/// lock keeps a handle, so its connection outlives the store that took it).
#[derive(Clone)]
pub(crate) struct Worker {
    requests: mpsc::UnboundedSender<Request>,
    pub(crate) connect: Connect,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

/// The message when the worker thread is gone (its connection dropped, say).
const GONE: &str = "the connection to the state database was lost; run the command again";

impl Worker {
    /// Starts the thread and opens the shared connection on it.
    pub(crate) fn start(connect: Connect, application_name: String) -> Result<Worker, StateError> {
        let (requests, mut inbox) = mpsc::unbounded_channel::<Request>();
        let (ready, started) = std::sync::mpsc::sync_channel::<Result<(), String>>(1);
        let opener = Arc::clone(&connect);
        std::thread::Builder::new()
            .name("engine-state-pg".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(format!("cannot start its runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let client = match opener(application_name).await {
                        Ok(client) => Rc::new(client),
                        Err(message) => {
                            let _ = ready.send(Err(message));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    while let Some(request) = inbox.recv().await {
                        match request {
                            Request::Job(job) => job(Rc::clone(&client)).await,
                            // Lock connections run beside the jobs: their tasks only spawn.
                            Request::Task(task) => task().await,
                        }
                    }
                });
            })
            .map_err(|e| StateError::Connect(format!("cannot start the state thread: {e}")))?;
        match started.recv() {
            Ok(Ok(())) => Ok(Worker { requests, connect }),
            Ok(Err(message)) => Err(StateError::Connect(message)),
            Err(_) => Err(StateError::Connect(GONE.to_string())),
        }
    }

    /// Runs `job` with the shared connection and waits for its answer.
    pub(crate) fn call<T, F>(&self, job: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: AsyncFnOnce(&Client) -> Result<T, StateError> + Send + 'static,
    {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::new(move |client: Rc<Client>| {
            Box::pin(async move {
                let result = job(&client).await;
                let _ = answer.send(result);
            })
        });
        self.requests
            .send(Request::Job(job))
            .map_err(|_| StateError::Postgres(GONE.to_string()))?;
        answered
            .recv()
            .unwrap_or_else(|_| Err(StateError::Postgres(GONE.to_string())))
    }

    /// Runs `job` in one transaction: committed when it returns `Ok`, rolled back otherwise.
    pub(crate) fn transaction<T, F>(&self, job: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: AsyncFnOnce(&Client) -> Result<T, StateError> + Send + 'static,
    {
        self.call(async move |client: &Client| {
            client.batch_execute("BEGIN").await.map_err(pg_error)?;
            match job(client).await {
                Ok(value) => {
                    client.batch_execute("COMMIT").await.map_err(pg_error)?;
                    Ok(value)
                }
                Err(error) => {
                    let _ = client.batch_execute("ROLLBACK").await;
                    Err(error)
                }
            }
        })
    }

    /// Runs `task` on the worker's runtime without the shared connection (it opens its own, as
    /// a lock does) and waits for its answer; connection tasks it spawns keep running there.
    pub(crate) fn run<T, F>(&self, task: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StateError>> + Send + 'static,
    {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let task: Task = Box::new(move || {
            Box::pin(async move {
                let _ = answer.send(task.await);
            })
        });
        self.requests
            .send(Request::Task(task))
            .map_err(|_| StateError::Postgres(GONE.to_string()))?;
        answered
            .recv()
            .unwrap_or_else(|_| Err(StateError::Postgres(GONE.to_string())))
    }
}

/// A driver error as a state error: the server's message, its SQLSTATE and hint when it gives
/// them (the connection's password is never part of these).
pub(crate) fn pg_error(error: tokio_postgres::Error) -> StateError {
    if let Some(db) = error.as_db_error() {
        let mut message = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(hint) = db.hint() {
            message.push_str(&format!("; {hint}"));
        }
        return StateError::Postgres(message);
    }
    if error.is_closed() {
        return StateError::Postgres(GONE.to_string());
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    StateError::Postgres(message)
}
