//! The server's shared state: the org, sessions, the API allocation, faults, query cursors,
//! Bulk jobs, counters and the shutdown signal.
//!
//! Each part has its own `std::sync::Mutex`, held only for a few statements and never across
//! an `.await`. A poisoned lock is recovered (the data is plain values), so no request can
//! panic the server through it.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::SandboxConfig;
use crate::auth::Sessions;
use crate::bulk::Jobs;
use crate::custom;
use crate::faults::Faults;
use crate::soql::Cursors;
use crate::store::Store;

/// Locks a mutex, recovering from poisoning.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The daily API allocation (FACTS L2, L3): requests used and the maximum.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Allocation {
    pub(crate) used: u64,
    pub(crate) max: u64,
}

impl Allocation {
    /// Counts one request; false when the allocation is used up (the request is refused and
    /// not counted).
    pub(crate) fn take(&mut self) -> bool {
        if self.used >= self.max {
            return false;
        }
        self.used += 1;
        true
    }

    /// The `Sforce-Limit-Info` value.
    pub(crate) fn header(&self) -> String {
        format!("api-usage={}/{}", self.used, self.max)
    }
}

/// What `/_sandbox/stats` reports.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) requests: BTreeMap<&'static str, u64>,
    pub(crate) unauthorized: u64,
    pub(crate) limit_refused: u64,
    pub(crate) faults: BTreeMap<&'static str, u64>,
    pub(crate) token_grants: u64,
}

impl Stats {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "requests": self.requests,
            "total_requests": self.requests.values().sum::<u64>(),
            "unauthorized": self.unauthorized,
            "limit_refused": self.limit_refused,
            "faults": self.faults,
            "token_grants": self.token_grants,
        })
    }
}

/// The OAuth client the token endpoint accepts.
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) id: String,
    pub(crate) secret: String,
    pub(crate) refresh_token: String,
    pub(crate) username: String,
    /// Verifies JWT bearer assertions' RS256 signatures (none: signatures are not checked).
    pub(crate) jwt_key: Option<jsonwebtoken::DecodingKey>,
}

/// Everything the handlers share.
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) config: SandboxConfig,
    pub(crate) store: Mutex<Store>,
    pub(crate) sessions: Mutex<Sessions>,
    pub(crate) allocation: Mutex<Allocation>,
    pub(crate) faults: Mutex<Faults>,
    /// Milliseconds a Bulk job spends in each of UploadComplete and InProgress.
    pub(crate) bulk_processing_ms: Mutex<u64>,
    pub(crate) cursors: Mutex<Cursors>,
    pub(crate) jobs: Mutex<Jobs>,
    pub(crate) stats: Mutex<Stats>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    /// The state a config describes; fails when its custom objects (or their file) do not
    /// load.
    pub(crate) fn new(config: SandboxConfig) -> std::io::Result<Self> {
        let store = fresh_store(&config)?;
        let jwt_key = match &config.jwt_public_key {
            Some(path) => Some(
                jsonwebtoken::DecodingKey::from_rsa_pem(&fs_err::read(path)?).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{} is not an RSA public key in PEM form: {e}",
                            path.display()
                        ),
                    )
                })?,
            ),
            None => None,
        };
        Ok(Shared {
            client: Client {
                id: config.client_id.clone(),
                secret: config.client_secret.clone(),
                refresh_token: config.refresh_token.clone(),
                username: config.username.clone(),
                jwt_key,
            },
            store: Mutex::new(store),
            sessions: Mutex::new(Sessions::new(
                &config.token,
                config.token_ttl_requests,
                config.token_ttl_seconds,
            )),
            allocation: Mutex::new(Allocation {
                used: 0,
                max: config.api_allocation,
            }),
            faults: Mutex::new(config.faults.clone()),
            bulk_processing_ms: Mutex::new(config.bulk_processing_ms),
            cursors: Mutex::new(Cursors::default()),
            jobs: Mutex::new(Jobs::default()),
            stats: Mutex::new(Stats::default()),
            shutdown: watch::Sender::new(false),
            config,
        })
    }

    /// Counts an API request by route kind.
    pub(crate) fn count_request(&self, kind: &'static str) {
        *lock(&self.stats).requests.entry(kind).or_default() += 1;
    }

    /// Counts an injected fault by kind.
    pub(crate) fn count_fault(&self, kind: &'static str) {
        *lock(&self.stats).faults.entry(kind).or_default() += 1;
    }

    /// A fresh org: the configured custom objects again, no records, no jobs, no cursors,
    /// counters and API usage at 0; sessions, faults and limits stay.
    pub(crate) fn reset(&self) -> std::io::Result<()> {
        let store = fresh_store(&self.config)?;
        *lock(&self.store) = store;
        *lock(&self.cursors) = Cursors::default();
        *lock(&self.jobs) = Jobs::default();
        *lock(&self.stats) = Stats::default();
        lock(&self.allocation).used = 0;
        Ok(())
    }

    /// Resolves when [`Shared::stop`] is called.
    pub(crate) async fn stopped(&self) {
        let mut stopped = self.shutdown.subscribe();
        let _ = stopped.wait_for(|stop| *stop).await;
    }

    /// Tells the server (and Bulk workers) to stop.
    pub(crate) fn stop(&self) {
        self.shutdown.send_replace(true);
    }

    pub(crate) fn is_stopped(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// The org at start: standard objects, then the custom objects of the file, then those of
/// the config.
fn fresh_store(config: &SandboxConfig) -> std::io::Result<Store> {
    let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidData, message);
    let mut store = Store::new(&config.username);
    let mut definitions = Vec::new();
    if let Some(path) = &config.objects_file {
        let text = fs_err::read_to_string(path)?;
        definitions.extend(
            custom::parse_file(path, &text)
                .map_err(|e| invalid(format!("{}: {e}", path.display())))?,
        );
    }
    definitions.extend(config.custom_objects.iter().cloned());
    for definition in &definitions {
        store
            .define(definition)
            .map_err(|e| invalid(format!("custom object `{}`: {e}", definition.name)))?;
    }
    Ok(store)
}
