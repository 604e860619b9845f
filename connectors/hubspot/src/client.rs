//! The HTTP client: one `reqwest` client per destination, with timeouts, the engine's user
//! agent and the bearer token. It sends one request and reports what came back; it never
//! retries, sleeps or interprets a status (that is `response.rs`'s job).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use connector_core::{Diagnostic, error_chain};
use reqwest::header::{self, HeaderMap, HeaderValue};

use crate::config::HubspotConfig;

/// `engine/<version>`, so HubSpot's logs and a proxy can tell our requests apart.
pub(crate) const USER_AGENT: &str = concat!("engine/", env!("CARGO_PKG_VERSION"));

/// What HubSpot answered, before any interpretation.
#[derive(Debug, Clone)]
pub(crate) struct RawResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The `Retry-After` header, when it holds a number of seconds.
    pub retry_after: Option<Duration>,
    /// The body as received (may be empty or not JSON).
    pub body: Vec<u8>,
}

const TOKEN_CHARS_HINT: &str =
    "check that the destination's `token` holds only the token, without quotes or line breaks";

/// A request that got no HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TransportError {
    /// The request (connection, sending, or reading the body) took longer than the timeout.
    Timeout,
    /// No connection could be made: refused, DNS failure, TLS handshake.
    Connect(String),
    /// Anything else that went wrong on the way.
    Other(String),
}

/// A connected client for one destination.
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    /// Requests sent, for the executor's accounting of the account's budget.
    sent: AtomicU64,
}

impl std::fmt::Debug for Client {
    /// The base URL with its credentials masked; the token is in no field.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &engine_diag::redact_url(&self.base))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the client once; requests reuse its connection pool.
    pub fn new(config: &HubspotConfig) -> Result<Self, Diagnostic> {
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", config.token.expose()))
            .map_err(|_| {
                Diagnostic::error(
                    "hubspot::auth",
                    "the HubSpot token contains characters that cannot be sent in a header",
                )
                .hint(TOKEN_CHARS_HINT)
            })?;
        authorization.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, authorization);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)));
        if config.base().starts_with("http://") {
            // A plain-HTTP base (a sandbox on loopback) never verifies a certificate: loading
            // the system's root certificates would only cost every run's start.
            builder = builder.tls_certs_only(Vec::new());
        }
        let http = builder.build().map_err(|error| {
            Diagnostic::error(
                "hubspot::client",
                format!(
                    "could not build the HTTP client for HubSpot: {}",
                    config.token.redact_in(&error_chain(&error))
                ),
            )
        })?;
        Ok(Self {
            http,
            base: config.base().to_string(),
            sent: AtomicU64::new(0),
        })
    }

    /// `POST {base}{path}` with a JSON body.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<RawResponse, TransportError> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.execute(request).await
    }

    /// `POST {base}{path}` with a body already serialized as JSON.
    pub async fn post_json_bytes(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<RawResponse, TransportError> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        self.execute(request).await
    }

    /// `PUT {base}{path}` with a JSON body (list memberships).
    pub async fn put_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<RawResponse, TransportError> {
        let request = self.http.put(format!("{}{path}", self.base)).json(body);
        self.execute(request).await
    }

    /// `GET {base}{path}`.
    pub async fn get(&self, path: &str) -> Result<RawResponse, TransportError> {
        self.execute(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// How many requests this client has sent (answered or not).
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    async fn execute(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<RawResponse, TransportError> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        let body = response.bytes().await.map_err(transport_error)?.to_vec();
        Ok(RawResponse {
            status,
            retry_after,
            body,
        })
    }
}

/// `Retry-After` as delta-seconds (HubSpot sends seconds; an HTTP date is ignored).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0 && *seconds < 1e9)
        .map(Duration::from_secs_f64)
}

fn transport_error(error: reqwest::Error) -> TransportError {
    if error.is_timeout() {
        return TransportError::Timeout;
    }
    let connect = error.is_connect();
    // The URL is in our messages already; the chain's sources say what actually happened.
    let detail = error_chain(&error.without_url());
    if connect {
        TransportError::Connect(detail)
    } else {
        TransportError::Other(detail)
    }
}
