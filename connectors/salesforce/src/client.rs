//! The HTTP client: one `reqwest` client per destination, with timeouts and the engine's
//! user agent, and the session it calls the API with (see `auth.rs`).
//!
//! [`Client::call`] sends one API request to the session's `instance_url` with the bearer
//! token. The one retry it makes is the one the protocol demands: a 401
//! `INVALID_SESSION_ID` refreshes the token once and sends the request once more (FACTS O4).
//! Everything else (429-like 403s, 5xx, timeouts) is reported as it came back; it never
//! sleeps. Every HTTP request, token requests included, is counted for the executor's budget,
//! and every `Sforce-Limit-Info` header is remembered (FACTS L3).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use connector_core::{Diagnostic, SecretString, error_chain};
use reqwest::Method;
use reqwest::header::{self, HeaderValue};

use crate::auth::{self, Session};
use crate::config::SalesforceConfig;

/// `engine/<version>`, so Salesforce's login history and a proxy can tell our requests apart.
pub(crate) const USER_AGENT: &str = concat!("engine/", env!("CARGO_PKG_VERSION"));

/// What Salesforce answered, before any interpretation.
#[derive(Debug, Clone)]
pub(crate) struct RawResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The body as received (may be empty or not JSON).
    pub body: Vec<u8>,
}

/// A request that got no HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TransportError {
    /// The request took longer than the timeout.
    Timeout,
    /// No connection could be made: refused, DNS failure, TLS handshake.
    Connect(String),
    /// Anything else that went wrong on the way.
    Other(String),
}

/// Why an API call has no answer to classify.
#[derive(Debug, Clone)]
pub(crate) enum CallError {
    /// No HTTP answer from the API or the token endpoint.
    Transport(TransportError),
    /// The token endpoint is down (5xx): try again later.
    LoginUnavailable(String),
    /// No session can be had (revoked refresh token, wrong consumer key, a session refused
    /// right after a refresh): the run must stop.
    Auth(Diagnostic),
}

/// The body of an API request.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// No body.
    Empty,
    /// A JSON document, already serialized.
    Json(Vec<u8>),
    /// A CSV upload (Bulk API 2.0).
    Csv(Vec<u8>),
}

/// The org's daily API usage, from the last `Sforce-Limit-Info: api-usage=used/max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUsage {
    /// Requests used in the rolling 24 hours.
    pub used: u64,
    /// The org's daily allocation.
    pub max: u64,
}

impl ApiUsage {
    /// Used over allocation, from 0.
    pub fn share(&self) -> f64 {
        if self.max == 0 {
            return 1.0;
        }
        self.used as f64 / self.max as f64
    }
}

/// Reads `api-usage=used/max` from a `Sforce-Limit-Info` value (other parts, like
/// `api-bursts=…`, are ignored).
pub(crate) fn parse_limit_info(value: &str) -> Option<ApiUsage> {
    value.split(';').find_map(|part| {
        let (name, value) = part.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("api-usage") {
            return None;
        }
        let (used, max) = value.trim().split_once('/')?;
        Some(ApiUsage {
            used: used.trim().parse().ok()?,
            max: max.trim().parse().ok()?,
        })
    })
}

/// A connected client for one org.
pub(crate) struct Client {
    http: reqwest::Client,
    config: SalesforceConfig,
    /// The session in use; `None` before the first call.
    session: tokio::sync::Mutex<Option<Session>>,
    /// Requests sent, for the executor's accounting of the org's budget.
    sent: AtomicU64,
    /// The last `Sforce-Limit-Info` usage seen (requests used; `max == 0`: none seen yet).
    used: AtomicU64,
    max: AtomicU64,
}

impl std::fmt::Debug for Client {
    /// The login URL with its credentials masked; no token is in any field shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("login", &engine_diag::redact_url(self.config.login.url()))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the client once; requests reuse its connection pool. No request is sent.
    pub fn new(config: &SalesforceConfig) -> Result<Self, Diagnostic> {
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)));
        if config.login.url().starts_with("http://") {
            // A plain-HTTP login (a sandbox on loopback) verifies no certificate: loading the
            // system's root certificates would only cost every run's start.
            builder = builder.tls_certs_only(Vec::new());
        }
        let http = builder.build().map_err(|error| {
            Diagnostic::error(
                "salesforce::client",
                format!(
                    "could not build the HTTP client for Salesforce: {}",
                    error_chain(&error)
                ),
            )
        })?;
        Ok(Self {
            http,
            config: config.clone(),
            session: tokio::sync::Mutex::new(None),
            sent: AtomicU64::new(0),
            used: AtomicU64::new(0),
            max: AtomicU64::new(0),
        })
    }

    /// How many HTTP requests this client has sent (answered or not), token requests too.
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// The org's API usage as the last answer reported it.
    pub fn usage(&self) -> Option<ApiUsage> {
        let max = self.max.load(Ordering::Relaxed);
        (max > 0).then(|| ApiUsage {
            used: self.used.load(Ordering::Relaxed),
            max,
        })
    }

    /// The access token in use, so messages built from answers can be redacted.
    pub async fn access_token(&self) -> Option<SecretString> {
        self.session
            .lock()
            .await
            .as_ref()
            .map(|s| s.access_token.clone())
    }

    /// The path of an API resource: `/services/data/v62.0{rest}`.
    pub fn data_path(&self, rest: &str) -> String {
        format!("/services/data/{}{rest}", self.config.version())
    }

    /// Sends one API request (`path` from the root, e.g. `/services/data/v62.0/sobjects`) with
    /// the session's token; a 401 `INVALID_SESSION_ID` refreshes the session once and sends
    /// the request once more.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<RawResponse, CallError> {
        let session = self.session(None).await?;
        let response = self
            .send_api(&session, method.clone(), path, body.clone())
            .await
            .map_err(CallError::Transport)?;
        if !auth::is_invalid_session(&response) {
            return Ok(response);
        }
        let session = self.session(Some(&session.access_token)).await?;
        let response = self
            .send_api(&session, method, path, body)
            .await
            .map_err(CallError::Transport)?;
        if auth::is_invalid_session(&response) {
            return Err(CallError::Auth(auth::session_refused(&self.config)));
        }
        Ok(response)
    }

    /// The session to use: the current one, or a new one when there is none or when `stale`
    /// is the token that was just refused (another task may have refreshed it meanwhile).
    async fn session(&self, stale: Option<&SecretString>) -> Result<Session, CallError> {
        let mut current = self.session.lock().await;
        if let Some(session) = current.as_ref()
            && stale.is_none_or(|stale| *stale != session.access_token)
        {
            return Ok(session.clone());
        }
        self.sent.fetch_add(1, Ordering::Relaxed);
        let session = auth::fetch_token(&self.http, &self.config).await?;
        *current = Some(session.clone());
        Ok(session)
    }

    async fn send_api(
        &self,
        session: &Session,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<RawResponse, TransportError> {
        let url = format!("{}{path}", session.instance_url);
        let mut authorization = HeaderValue::from_str(&format!(
            "Bearer {}",
            session.access_token.expose()
        ))
        .map_err(|_| {
            TransportError::Other("the access token holds characters a header cannot carry".into())
        })?;
        authorization.set_sensitive(true);
        let mut request = self
            .http
            .request(method, url)
            .header(header::AUTHORIZATION, authorization)
            .header(header::ACCEPT, "application/json");
        request = match body {
            Body::Empty => request,
            Body::Json(bytes) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(bytes),
            Body::Csv(bytes) => request.header(header::CONTENT_TYPE, "text/csv").body(bytes),
        };
        self.sent.fetch_add(1, Ordering::Relaxed);
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        if let Some(usage) = response
            .headers()
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_limit_info)
        {
            self.used.store(usage.used, Ordering::Relaxed);
            self.max.store(usage.max, Ordering::Relaxed);
        }
        let body = response.bytes().await.map_err(transport_error)?.to_vec();
        Ok(RawResponse { status, body })
    }
}

/// Sorts a `reqwest` error into the kinds the executor tells apart.
pub(crate) fn transport_error(error: reqwest::Error) -> TransportError {
    if error.is_timeout() {
        return TransportError::Timeout;
    }
    let connect = error.is_connect();
    let detail = error_chain(&error.without_url());
    if connect {
        TransportError::Connect(detail)
    } else {
        TransportError::Other(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_info_is_read_with_or_without_bursts() {
        assert_eq!(
            parse_limit_info("api-usage=10018/100000"),
            Some(ApiUsage {
                used: 10018,
                max: 100000
            })
        );
        assert_eq!(
            parse_limit_info("api-bursts=1/750; api-usage=5/10").map(|u| u.share()),
            Some(0.5)
        );
        assert_eq!(parse_limit_info("api-usage=x/10"), None);
        assert_eq!(parse_limit_info(""), None);
    }
}
