//! A local Salesforce-compatible API server (DOC PLACEHOLDER).

mod args;
mod auth;
mod builtin;
mod bulk;
mod custom;
mod encoding;
mod errors;
mod faults;
mod ids;
mod respond;
mod routes;
mod schema;
mod soql;
mod state;
mod store;
mod write;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::state::Shared;

pub use crate::args::SandboxArgs;
pub use crate::custom::{CustomField, CustomObject};
pub use crate::faults::Faults;

/// The API version the sandbox's answers name when a request does not (URLs in query
/// results, `contentUrl` of Bulk jobs use the request's own version).
pub const LATEST_VERSION: &str = "66.0";

/// How long [`SandboxHandle::shutdown`] waits for open connections before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How a sandbox behaves: the credentials it accepts, its limits, its custom objects and the
/// faults it injects. Build it with `..SandboxConfig::default()` or from [`SandboxArgs`].
#[derive(Clone)]
pub struct SandboxConfig {
    /// An access token accepted from the start, so tests need no OAuth round trip; the token
    /// endpoint issues more.
    pub token: String,
    /// The connected app's consumer key (`client_id`; the JWT grant's `iss`).
    pub client_id: String,
    /// The connected app's consumer secret; also the key of the token response's `signature`.
    pub client_secret: String,
    /// The refresh token the refresh grant accepts (until revoked).
    pub refresh_token: String,
    /// The API user's username (the JWT grant's `sub`).
    pub username: String,
    /// The daily API allocation (FACTS L2: 100,000 and more); past it, 403
    /// `REQUEST_LIMIT_EXCEEDED`.
    pub api_allocation: u64,
    /// Access tokens expire after this many API requests (`None`: never).
    pub token_ttl_requests: Option<u64>,
    /// Access tokens expire after this many seconds (`None`: never; Salesforce's default
    /// session timeout is two hours).
    pub token_ttl_seconds: Option<u64>,
    /// How long a Bulk job spends in UploadComplete, then again in InProgress, before its
    /// rows are processed (milliseconds).
    pub bulk_processing_ms: u64,
    /// Custom objects and fields to load at start (JSON, or YAML by extension).
    pub objects_file: Option<PathBuf>,
    /// Custom objects and fields to define at start, after the file's.
    pub custom_objects: Vec<CustomObject>,
    /// Faults injected from the start (all off by default).
    pub faults: Faults,
}

impl Default for SandboxConfig {
    /// Token `sandbox-token`, client `sandbox-client-id` / `sandbox-client-secret`, refresh
    /// token `sandbox-refresh-token`, user `sandbox@example.com`, 100,000 requests a day,
    /// tokens that never expire, 200 ms per Bulk stage, no custom objects, no faults.
    fn default() -> Self {
        SandboxConfig {
            token: "sandbox-token".to_owned(),
            client_id: "sandbox-client-id".to_owned(),
            client_secret: "sandbox-client-secret".to_owned(),
            refresh_token: "sandbox-refresh-token".to_owned(),
            username: "sandbox@example.com".to_owned(),
            api_allocation: 100_000,
            token_ttl_requests: None,
            token_ttl_seconds: None,
            bulk_processing_ms: 200,
            objects_file: None,
            custom_objects: Vec::new(),
            faults: Faults::default(),
        }
    }
}

impl std::fmt::Debug for SandboxConfig {
    /// Redacts the token, the client secret and the refresh token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("token", &"<redacted>")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("username", &self.username)
            .field("api_allocation", &self.api_allocation)
            .field("token_ttl_requests", &self.token_ttl_requests)
            .field("token_ttl_seconds", &self.token_ttl_seconds)
            .field("bulk_processing_ms", &self.bulk_processing_ms)
            .field("objects_file", &self.objects_file)
            .field("custom_objects", &self.custom_objects.len())
            .field("faults", &self.faults)
            .finish()
    }
}

/// A sandbox running in a background task (see [`spawn`]); dropping it stops the server.
pub struct SandboxHandle {
    /// Where to send requests, e.g. `http://127.0.0.1:41234` (no trailing slash); also the
    /// `instance_url` the token endpoint answers.
    pub base_url: String,
    /// The bound address.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SandboxHandle {
    /// Stops the server: waits briefly for open connections to finish, then drops whatever is
    /// left.
    pub async fn shutdown(mut self) {
        self.shared.stop();
        let Some(mut task) = self.task.take() else {
            return;
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

impl std::fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHandle")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

/// Serves on an already-bound listener until the server fails (for `engine sandbox
/// salesforce --port N`, which stops it by dropping the future). Fails at once when the
/// config's custom objects do not load.
pub async fn serve(config: SandboxConfig, listener: TcpListener) -> std::io::Result<()> {
    let shared = Arc::new(Shared::new(config)?);
    let result = axum::serve(listener, routes::router(shared.clone())).await;
    shared.stop();
    result
}

/// Binds `127.0.0.1:0` and serves in a background task (used by tests).
pub async fn spawn(config: SandboxConfig) -> std::io::Result<SandboxHandle> {
    let shared = Arc::new(Shared::new(config)?);
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let app = routes::router(shared.clone());
    let signal = {
        let shared = shared.clone();
        async move { shared.stopped().await }
    };
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await
    });
    tracing::debug!(%addr, "Salesforce sandbox listening.");
    Ok(SandboxHandle {
        base_url: format!("http://{addr}"),
        addr,
        shared,
        task: Some(task),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_secrets() {
        let config = SandboxConfig {
            token: "tok-hidden-1".to_owned(),
            client_secret: "cs-hidden-2".to_owned(),
            refresh_token: "rt-hidden-3".to_owned(),
            ..SandboxConfig::default()
        };
        assert!(!format!("{config:?}").contains("hidden"));
    }
}
