//! What the connector needs to reach one HubSpot object type.
//!
//! The spec crate resolves the destination (`base_url`, `token`) and the sync's target
//! (`object`, `match_property`) and hands them over here; this module only holds and checks them.

use std::time::Duration;

use connector_core::{Diagnostic, SecretString};

/// HubSpot's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";

/// How long one request may take before it counts as a timeout (retried by the executor).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

const OBJECT_HINT: &str = "use an object name such as `contacts`, `companies`, `deals`, \
     or a custom object id such as `2-1234`";

/// A HubSpot destination and the object one sync writes to.
///
/// `Debug` never shows the token: [`SecretString`] prints `**redacted**`.
#[derive(Debug, Clone)]
pub struct HubspotConfig {
    /// The API's base URL, without a trailing slash; default `https://api.hubapi.com`, or a
    /// sandbox's URL.
    pub base_url: String,
    /// A private-app access token, sent as `Authorization: Bearer <token>`.
    pub token: SecretString,
    /// The object type as the API paths name it: `contacts`, `companies`, `deals`, or a custom
    /// object's `2-<n>` id or fully qualified name.
    pub object: String,
    /// The unique property upserts match on, e.g. `email` for contacts.
    pub match_property: String,
    /// The timeout of one request, connection included.
    pub timeout: Duration,
}

impl HubspotConfig {
    /// A configuration for the production API with the default timeout.
    pub fn new(
        token: SecretString,
        object: impl Into<String>,
        match_property: impl Into<String>,
    ) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_string(),
            token,
            object: object.into(),
            match_property: match_property.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Replaces the base URL (a sandbox, a proxy).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Replaces the request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks what can be checked offline: a usable URL, an object name that is one path
    /// segment, a match property and a token.
    pub(crate) fn check(&self) -> Result<(), Diagnostic> {
        let url = reqwest::Url::parse(&self.base_url).map_err(|error| {
            Diagnostic::error(
                "hubspot::config",
                format!(
                    "the HubSpot `base_url` `{}` is not a URL: {error}",
                    self.base_url
                ),
            )
            .hint(format!(
                "use `{DEFAULT_BASE_URL}` or a sandbox URL such as `http://127.0.0.1:8080`"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(Diagnostic::error(
                "hubspot::config",
                format!(
                    "the HubSpot `base_url` `{}` is not an http(s) URL",
                    self.base_url
                ),
            )
            .hint(format!("use `{DEFAULT_BASE_URL}`")));
        }
        let valid_object = !self.object.is_empty()
            && self
                .object
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_object {
            return Err(Diagnostic::error(
                "hubspot::config",
                format!("`{}` is not a HubSpot object type", self.object),
            )
            .hint(OBJECT_HINT));
        }
        if self.match_property.trim().is_empty() {
            return Err(Diagnostic::error(
                "hubspot::config",
                format!(
                    "the sync to HubSpot `{}` has no match property",
                    self.object
                ),
            )
            .hint("name a unique property to match records on, such as `email` for contacts"));
        }
        if self.token.expose().trim().is_empty() {
            return Err(
                Diagnostic::error("hubspot::auth", "the HubSpot token is empty")
                    .hint("set the destination's `token` to a private-app access token"),
            );
        }
        Ok(())
    }

    /// The base URL without a trailing slash, ready to have a path appended.
    pub(crate) fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }
}
