//! What the connector needs to reach one Salesforce object: the org (login host, API
//! version, credentials) and the sync's target (object, external id, mode), plus the limits
//! it keeps to (Bulk threshold, the share of the daily allocation it may use, timeouts).
//!
//! The spec crate resolves `${env:…}` secrets and hands them over here as [`SecretString`]s;
//! this module only holds and checks them. `Debug` never shows a secret.

use std::fmt;
use std::time::Duration;

use connector_core::{Diagnostic, SecretString};
use engine_diag::{redact_url, url_credentials};

/// The API version used when the spec names none: the newest one the connector was checked
/// against (the sandbox serves 20.0 to 66.0).
pub const DEFAULT_API_VERSION: &str = "v62.0";

/// How long one request may take before it counts as a timeout (retried by the executor).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Above this many rows of one kind in one apply the engine should use Bulk API 2.0 instead
/// of sObject Collections (FACTS L5: "Use Bulk for > 2,000 records").
pub const DEFAULT_BULK_THRESHOLD: usize = 2_000;

/// The share of the org's daily API allocation after which the connector stops the run.
pub const DEFAULT_STOP_AT_SHARE: f64 = 0.8;

/// How long a Bulk job may take, from close to a terminal state, before `send_bulk` returns
/// and leaves the job to be resumed by its id.
pub const DEFAULT_BULK_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Production and Developer Edition orgs log in here (FACTS O1).
pub const PRODUCTION_LOGIN: &str = "https://login.salesforce.com";

/// Sandbox orgs log in here (FACTS O1).
pub const SANDBOX_LOGIN: &str = "https://test.salesforce.com";

/// Where the OAuth token endpoint is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginHost {
    /// `login.salesforce.com`: production and Developer Edition orgs.
    Production,
    /// `test.salesforce.com`: sandbox orgs.
    Sandbox,
    /// The org's My Domain (`https://acme.my.salesforce.com`), or a local sandbox server.
    Url(String),
}

impl LoginHost {
    /// Reads the spec's `login` value: `login`, `test`, or a URL.
    pub fn parse(text: &str) -> Self {
        match text.trim() {
            "login" | "production" => Self::Production,
            "test" | "sandbox" => Self::Sandbox,
            other => Self::Url(other.trim_end_matches('/').to_string()),
        }
    }

    /// The login URL, without a trailing slash.
    pub fn url(&self) -> &str {
        match self {
            Self::Production => PRODUCTION_LOGIN,
            Self::Sandbox => SANDBOX_LOGIN,
            Self::Url(url) => url.trim_end_matches('/'),
        }
    }

    /// The `aud` of a JWT bearer assertion: the authorization server, which Salesforce names
    /// as `https://login.salesforce.com` for production orgs and `https://test.salesforce.com`
    /// for sandbox orgs even when tokens are asked of a My Domain; any other URL (an
    /// Experience Cloud site, the bundled sandbox) is its own audience.
    pub fn audience(&self) -> &str {
        match self {
            Self::Production => PRODUCTION_LOGIN,
            Self::Sandbox => SANDBOX_LOGIN,
            Self::Url(url) => {
                let host = url
                    .split_once("://")
                    .map_or(url.as_str(), |(_, rest)| rest)
                    .split(['/', ':'])
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if host.ends_with(".sandbox.my.salesforce.com") || host == "test.salesforce.com" {
                    SANDBOX_LOGIN
                } else if host.ends_with(".my.salesforce.com") || host == "login.salesforce.com" {
                    PRODUCTION_LOGIN
                } else {
                    url.trim_end_matches('/')
                }
            }
        }
    }
}

/// How the connector gets an access token.
#[derive(Clone)]
pub enum Auth {
    /// The OAuth 2.0 refresh-token flow (FACTS O2): a connected app's consumer key and
    /// secret and a refresh token obtained when a user authorized the app.
    RefreshToken {
        /// The connected app's consumer key (`client_id`).
        consumer_key: String,
        /// The connected app's consumer secret (`client_secret`).
        consumer_secret: SecretString,
        /// The refresh token the user's authorization gave.
        refresh_token: SecretString,
    },
    /// The OAuth 2.0 JWT bearer flow: an RS256 assertion signed with the private key of the
    /// certificate uploaded to the connected app, for servers that run with no person to
    /// authorize them (no refresh token to expire or revoke).
    JwtBearer {
        /// The connected app's consumer key (the assertion's `iss`).
        consumer_key: String,
        /// The Salesforce user to act as (the assertion's `sub`).
        username: String,
        /// The PEM private key matching the connected app's certificate.
        private_key_pem: SecretString,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RefreshToken {
                consumer_key,
                consumer_secret,
                refresh_token,
            } => f
                .debug_struct("RefreshToken")
                .field("consumer_key", consumer_key)
                .field("consumer_secret", consumer_secret)
                .field("refresh_token", refresh_token)
                .finish(),
            Self::JwtBearer {
                consumer_key,
                username,
                private_key_pem,
            } => f
                .debug_struct("JwtBearer")
                .field("consumer_key", consumer_key)
                .field("username", username)
                .field("private_key_pem", private_key_pem)
                .finish(),
        }
    }
}

/// What a sync does to records (the spec's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Create records only: fields must be createable.
    Insert,
    /// Change existing records only: fields must be updateable.
    Update,
    /// Create or update by the external id: fields must be both.
    Upsert,
}

impl WriteMode {
    /// True when the mode may create records (required fields must then be mapped).
    pub fn creates(self) -> bool {
        matches!(self, Self::Insert | Self::Upsert)
    }

    /// True when the mode may change existing records.
    pub fn updates(self) -> bool {
        matches!(self, Self::Update | Self::Upsert)
    }
}

/// Several Contacts (or Leads) share one email: what the matching cascade does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicateMatches {
    /// The row fails with an error listing the records' ids (the default: nothing is linked
    /// to a record picked by chance).
    #[default]
    Reject,
    /// The most recently modified record wins.
    MostRecent,
}

/// A Salesforce org and the object one sync writes to.
#[derive(Clone)]
pub struct SalesforceConfig {
    /// Where to get tokens: `login`, `test`, or a My Domain / sandbox URL.
    pub login: LoginHost,
    /// The credentials.
    pub auth: Auth,
    /// The REST API version, `vXX.X` (default [`DEFAULT_API_VERSION`]).
    pub api_version: String,
    /// The object's API name: `Contact`, `ThankView__c`.
    pub object: String,
    /// The external-id field upserts match on (`Ext_Id__c`), or `Id` for record ids;
    /// `None` for syncs that only insert.
    pub external_id_field: Option<String>,
    /// Insert, update or upsert.
    pub mode: WriteMode,
    /// Rows of one kind in one apply above which the engine uses Bulk API 2.0.
    pub bulk_threshold: usize,
    /// The share of the daily API allocation (0 to 1) after which the run stops.
    pub stop_at_share: f64,
    /// What the matching cascade does when several records share one email.
    pub duplicate_matches: DuplicateMatches,
    /// The timeout of one request, connection included.
    pub timeout: Duration,
    /// How long a Bulk job may take before `send_bulk` leaves it to be resumed.
    pub bulk_timeout: Duration,
}

impl fmt::Debug for SalesforceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SalesforceConfig")
            .field("login", &redact_url(self.login.url()))
            .field("auth", &self.auth)
            .field("api_version", &self.api_version)
            .field("object", &self.object)
            .field("external_id_field", &self.external_id_field)
            .field("mode", &self.mode)
            .field("bulk_threshold", &self.bulk_threshold)
            .field("stop_at_share", &self.stop_at_share)
            .field("duplicate_matches", &self.duplicate_matches)
            .field("timeout", &self.timeout)
            .field("bulk_timeout", &self.bulk_timeout)
            .finish()
    }
}

impl SalesforceConfig {
    /// A configuration with the defaults: production login, [`DEFAULT_API_VERSION`], the
    /// Bulk threshold, 80% of the allocation, duplicate matches rejected.
    pub fn new(auth: Auth, object: impl Into<String>, mode: WriteMode) -> Self {
        Self {
            login: LoginHost::Production,
            auth,
            api_version: DEFAULT_API_VERSION.to_string(),
            object: object.into(),
            external_id_field: None,
            mode,
            bulk_threshold: DEFAULT_BULK_THRESHOLD,
            stop_at_share: DEFAULT_STOP_AT_SHARE,
            duplicate_matches: DuplicateMatches::Reject,
            timeout: DEFAULT_TIMEOUT,
            bulk_timeout: DEFAULT_BULK_TIMEOUT,
        }
    }

    /// Replaces the login host.
    pub fn with_login(mut self, login: LoginHost) -> Self {
        self.login = login;
        self
    }

    /// Sets the external-id field upserts match on.
    pub fn with_external_id(mut self, field: impl Into<String>) -> Self {
        self.external_id_field = Some(field.into());
        self
    }

    /// Replaces the request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The API version as URL paths write it (`v62.0`), whether or not the spec wrote the `v`.
    pub fn version(&self) -> String {
        let bare = self.api_version.trim().trim_start_matches(['v', 'V']);
        format!("v{bare}")
    }

    /// Checks what can be checked offline: a usable login URL, an API version, an object
    /// name, the credentials, the mode's needs and the allocation share.
    pub(crate) fn check(&self) -> Result<(), Diagnostic> {
        let shown = redact_url(self.login.url());
        let url = reqwest::Url::parse(self.login.url()).map_err(|error| {
            Diagnostic::error(
                "salesforce::config",
                format!("the Salesforce `login` `{shown}` is not a URL: {error}"),
            )
            .hint("use `login`, `test`, or your My Domain URL such as `https://acme.my.salesforce.com`")
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(Diagnostic::error(
                "salesforce::config",
                format!("the Salesforce `login` `{shown}` is not an http(s) URL"),
            )
            .hint("use `login`, `test`, or your My Domain URL"));
        }
        let bare = self.api_version.trim().trim_start_matches(['v', 'V']);
        let valid_version = bare.split_once('.').is_some_and(|(major, minor)| {
            !major.is_empty()
                && major.chars().all(|c| c.is_ascii_digit())
                && minor.len() == 1
                && minor.chars().all(|c| c.is_ascii_digit())
        });
        if !valid_version {
            return Err(Diagnostic::error(
                "salesforce::config",
                format!("`{}` is not a Salesforce API version", self.api_version),
            )
            .hint(format!("write it as `{DEFAULT_API_VERSION}`")));
        }
        let valid_object = !self.object.is_empty()
            && self
                .object
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_object {
            return Err(Diagnostic::error(
                "salesforce::unknown_object",
                format!("`{}` is not a Salesforce object API name", self.object),
            )
            .hint("use an object's API name such as `Contact` or `ThankView__c`"));
        }
        if !(self.stop_at_share > 0.0 && self.stop_at_share <= 1.0) {
            return Err(Diagnostic::error(
                "salesforce::config",
                format!(
                    "the allocation share `{}` must be above 0 and at most 1",
                    self.stop_at_share
                ),
            )
            .hint("use `0.8` to stop at 80% of the org's daily API requests"));
        }
        if self.mode == WriteMode::Upsert && self.external_id_field.is_none() {
            return Err(Diagnostic::error(
                "salesforce::no_external_id",
                format!(
                    "an upsert into `{}` needs an external-id field",
                    self.object
                ),
            )
            .hint("name the field upserts match on, such as `Ext_Id__c`, or use `mode: insert`"));
        }
        match &self.auth {
            Auth::RefreshToken {
                consumer_key,
                consumer_secret,
                refresh_token,
            } => {
                let missing = [
                    ("consumer key", consumer_key.trim().is_empty()),
                    (
                        "consumer secret",
                        consumer_secret.expose().trim().is_empty(),
                    ),
                    ("refresh token", refresh_token.expose().trim().is_empty()),
                ];
                if let Some((what, _)) = missing.iter().find(|(_, empty)| *empty) {
                    return Err(Diagnostic::error(
                        "salesforce::auth",
                        format!("the Salesforce {what} is empty"),
                    )
                    .hint("set the connected app's consumer key and secret and a refresh token, each from `${env:…}`"));
                }
                Ok(())
            }
            Auth::JwtBearer {
                consumer_key,
                username,
                private_key_pem,
            } => {
                let missing = [
                    ("consumer key", consumer_key.trim().is_empty()),
                    ("username", username.trim().is_empty()),
                    ("private key", private_key_pem.expose().trim().is_empty()),
                ];
                if let Some((what, _)) = missing.iter().find(|(_, empty)| *empty) {
                    return Err(Diagnostic::error(
                        "salesforce::auth",
                        format!("the Salesforce {what} is empty"),
                    )
                    .hint("set the connected app's consumer key, the API user's username and the certificate's private key, each from `${env:…}`"));
                }
                crate::auth::signing_key(private_key_pem).map(|_| ())
            }
        }
    }

    /// The secrets messages must never show: consumer secret, refresh token, private key,
    /// and credentials in the login URL.
    pub(crate) fn secrets(&self) -> Vec<SecretString> {
        let mut secrets = match &self.auth {
            Auth::RefreshToken {
                consumer_secret,
                refresh_token,
                ..
            } => vec![consumer_secret.clone(), refresh_token.clone()],
            Auth::JwtBearer {
                private_key_pem, ..
            } => vec![private_key_pem.clone()],
        };
        secrets.extend(url_credentials(self.login.url()));
        secrets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::RefreshToken {
            consumer_key: "key-1".into(),
            consumer_secret: SecretString::new("secret-hidden-1"),
            refresh_token: SecretString::new("refresh-hidden-2"),
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let config = SalesforceConfig::new(auth(), "Contact", WriteMode::Insert)
            .with_login(LoginHost::Url("http://user:pw-hidden-3@127.0.0.1:1".into()));
        let shown = format!("{config:?}");
        assert!(!shown.contains("hidden"), "{shown}");
        assert!(shown.contains("Contact"));
    }

    #[test]
    fn jwt_audiences_name_the_authorization_server() {
        assert_eq!(LoginHost::Production.audience(), PRODUCTION_LOGIN);
        assert_eq!(LoginHost::Sandbox.audience(), SANDBOX_LOGIN);
        let url = |u: &str| LoginHost::Url(u.into());
        assert_eq!(
            url("https://acme.my.salesforce.com/").audience(),
            PRODUCTION_LOGIN
        );
        assert_eq!(
            url("https://acme--uat.sandbox.my.salesforce.com").audience(),
            SANDBOX_LOGIN
        );
        assert_eq!(
            url("http://127.0.0.1:8080/").audience(),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn login_hosts_and_versions() {
        assert_eq!(LoginHost::parse("login").url(), PRODUCTION_LOGIN);
        assert_eq!(LoginHost::parse("test").url(), SANDBOX_LOGIN);
        assert_eq!(
            LoginHost::parse("https://acme.my.salesforce.com/").url(),
            "https://acme.my.salesforce.com"
        );
        let mut config = SalesforceConfig::new(auth(), "Contact", WriteMode::Insert);
        config.api_version = "62.0".into();
        assert_eq!(config.version(), "v62.0");
        assert!(config.check().is_ok());
        config.api_version = "62".into();
        assert_eq!(
            config.check().map_err(|d| d.code).err().as_deref(),
            Some("salesforce::config")
        );
    }

    #[test]
    fn offline_checks_name_the_problem() {
        let upsert = SalesforceConfig::new(auth(), "Contact", WriteMode::Upsert);
        assert_eq!(
            upsert.check().err().map(|d| d.code).as_deref(),
            Some("salesforce::no_external_id")
        );
        let jwt = SalesforceConfig::new(
            Auth::JwtBearer {
                consumer_key: "k".into(),
                username: "u@example.com".into(),
                private_key_pem: SecretString::new("pem"),
            },
            "Contact",
            WriteMode::Insert,
        );
        assert_eq!(
            jwt.check().err().map(|d| d.code).as_deref(),
            Some("salesforce::private_key")
        );
        let shown = jwt.check().err().map(|d| d.to_string()).unwrap_or_default();
        assert!(!shown.contains("pem"), "{shown}");
        let mut share = SalesforceConfig::new(auth(), "Contact", WriteMode::Insert);
        share.stop_at_share = 1.5;
        assert!(share.check().is_err());
        let bad_object = SalesforceConfig::new(auth(), "Thank View", WriteMode::Insert);
        assert_eq!(
            bad_object.check().err().map(|d| d.code).as_deref(),
            Some("salesforce::unknown_object")
        );
    }
}
