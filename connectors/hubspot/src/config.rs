//! What the connector needs to reach one HubSpot object type.
//!
//! The spec crate resolves the destination (`base_url`, `token`) and the sync's target
//! (`object`, `match_property`) and hands them over here; this module only holds and checks them.

use std::fmt;
use std::time::Duration;

use connector_core::{Diagnostic, SecretString};
use engine_diag::{redact_url, url_credentials};

/// HubSpot's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";

/// How long one request may take before it counts as a timeout (retried by the executor).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

const OBJECT_HINT: &str = "use an object name such as `contacts`, `companies`, `deals`, \
     or a custom object id such as `2-1234`";

/// A HubSpot destination and the object one sync writes to.
///
/// `Debug` never shows the token ([`SecretString`] prints `**redacted**`) nor credentials in
/// the base URL.
#[derive(Clone)]
pub struct HubspotConfig {
    /// The API's base URL, without a trailing slash; default `https://api.hubapi.com`, or a
    /// sandbox's URL.
    pub base_url: String,
    /// A private-app access token, sent as `Authorization: Bearer <token>`.
    pub token: SecretString,
    /// The object type as the API paths name it: `contacts`, `companies`, `deals`, or a custom
    /// object's `2-<n>` id or fully qualified name.
    pub object: String,
    /// The property new rows are matched on, e.g. `email` for contacts.
    pub match_property: String,
    /// True when `match_property` is matched through search look-ups (`match.lookup: search`:
    /// its values need not be unique) instead of in the write itself.
    pub search_match: bool,
    /// Properties tried in order when `match_property` finds no record (`match.fallback`,
    /// first hit wins); only with `search_match`. Their values are read from each row's
    /// properties.
    pub fallback_properties: Vec<String>,
    /// The sync's associations: operations carry their changes under `@name` properties.
    pub associations: Vec<crate::AssociationConfig>,
    /// For `object: events`: the sync sends events instead of writing records.
    pub event: Option<crate::EventConfig>,
    /// For `object: lists`: the sync keeps a list's members instead of writing records.
    pub list: Option<crate::ListConfig>,
    /// The timeout of one request, connection included.
    pub timeout: Duration,
}

impl fmt::Debug for HubspotConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubspotConfig")
            .field("base_url", &self.display_url())
            .field("token", &self.token)
            .field("object", &self.object)
            .field("match_property", &self.match_property)
            .field("search_match", &self.search_match)
            .field("fallback_properties", &self.fallback_properties)
            .field("associations", &self.associations)
            .field("event", &self.event)
            .field("list", &self.list)
            .field("timeout", &self.timeout)
            .finish()
    }
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
            search_match: false,
            fallback_properties: Vec::new(),
            associations: Vec::new(),
            event: None,
            list: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Matches new rows through search look-ups (`match.lookup: search`).
    pub fn with_search_match(mut self) -> Self {
        self.search_match = true;
        self
    }

    /// Looks new rows up by `properties`, in order, when the match property finds no record
    /// (`match.fallback`); implies [`Self::with_search_match`].
    pub fn with_fallback(mut self, properties: Vec<String>) -> Self {
        self.search_match = true;
        self.fallback_properties = properties;
        self
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
        let shown = self.display_url();
        let url = reqwest::Url::parse(&self.base_url).map_err(|error| {
            Diagnostic::error(
                "hubspot::config",
                format!("the HubSpot `base_url` `{shown}` is not a URL: {error}"),
            )
            .hint(format!(
                "use `{DEFAULT_BASE_URL}` or a sandbox URL such as `http://127.0.0.1:8080`"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(Diagnostic::error(
                "hubspot::config",
                format!("the HubSpot `base_url` `{shown}` is not an http(s) URL"),
            )
            .hint(format!("use `{DEFAULT_BASE_URL}`")));
        }
        // The engine appends `/crm/v3/...` itself; a path here would make every object
        // "unknown" (the API would answer 404 for `.../crm/v3/objects/crm/v3/properties/...`).
        if !matches!(url.path(), "" | "/") {
            let mut root = url.clone();
            root.set_path("");
            root.set_query(None);
            root.set_fragment(None);
            let root = redact_url(root.as_str().trim_end_matches('/'));
            return Err(Diagnostic::error(
                "hubspot::config",
                format!(
                    "the HubSpot `base_url` `{shown}` has a path (`{}`); it must be the API root",
                    url.path()
                ),
            )
            .note("the engine adds the API paths (`/crm/v3/...`) itself")
            .hint(format!(
                "write the root only: `base_url: {root}` (for HubSpot itself, `{DEFAULT_BASE_URL}`)"
            )));
        }
        let valid_object = !self.object.is_empty()
            && self
                .object
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_object {
            return Err(Diagnostic::error(
                "hubspot::unknown_object",
                format!("`{}` is not a HubSpot object type", self.object),
            )
            .hint(OBJECT_HINT));
        }
        if self.match_property.trim().is_empty() {
            return Err(Diagnostic::error(
                "hubspot::no_match_property",
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

    /// The base URL as messages show it: credentials in it are masked
    /// (`http://user:****@host`).
    pub fn display_url(&self) -> String {
        redact_url(&self.base_url)
    }

    /// Who this configuration writes as, for sharing one rate budget between syncs: HubSpot
    /// limits requests per account (portal and app), so syncs reaching the same base URL with
    /// the same token share a limit. The key is the base URL as messages show it (credentials
    /// masked) and a BLAKE3 digest of the token and the full URL; it never contains the token.
    pub fn account_key(&self) -> String {
        let secret = format!("{}\n{}", self.base(), self.token.expose());
        let digest = blake3::hash(secret.as_bytes()).to_hex();
        format!(
            "hubspot {} {}",
            redact_url(self.base()),
            &digest.as_str()[..16]
        )
    }

    /// The secrets messages must never show: the token, and a password (or token-like user
    /// name) in the base URL.
    pub(crate) fn secrets(&self) -> Vec<SecretString> {
        std::iter::once(self.token.clone())
            .chain(url_credentials(&self.base_url))
            .collect()
    }

    /// The base URL without a trailing slash, ready to have a path appended.
    pub(crate) fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }
}
