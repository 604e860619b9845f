//! OAuth 2.0: the refresh-token grant at `POST {login}/services/oauth2/token` (FACTS O1–O4),
//! and what its refusals mean for a person.
//!
//! The token response gives `access_token` and `instance_url`; every API call goes to that
//! instance (FACTS O4). There is no `expires_in` (FACTS O2): a session is used until the API
//! answers 401 `INVALID_SESSION_ID`, then refreshed once (`client.rs`). Token errors are
//! OAuth-shaped `{"error","error_description"}` (FACTS O3), not the REST array.

use connector_core::{Diagnostic, SecretString};
use serde_json::Value;

use crate::client::{CallError, RawResponse, transport_error};
use crate::config::{Auth, SalesforceConfig};

/// A live session: the token and the instance it is good for.
#[derive(Clone)]
pub(crate) struct Session {
    /// The bearer token.
    pub access_token: SecretString,
    /// Where API calls go, without a trailing slash.
    pub instance_url: String,
}

const RECONNECT_HINT: &str = "re-authorize the connected app (log in to Salesforce through its \
     OAuth flow again) and put the new refresh token into the environment variable the \
     destination's `refresh_token` reads";

/// Asks the token endpoint for a session with the configured credentials.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    config: &SalesforceConfig,
) -> Result<Session, CallError> {
    let url = format!("{}/services/oauth2/token", config.login.url());
    let assertion;
    let form: Vec<(&str, &str)> = match &config.auth {
        Auth::RefreshToken {
            consumer_key,
            consumer_secret,
            refresh_token,
        } => vec![
            ("grant_type", "refresh_token"),
            ("client_id", consumer_key.as_str()),
            ("client_secret", consumer_secret.expose()),
            ("refresh_token", refresh_token.expose()),
            ("format", "json"),
        ],
        Auth::JwtBearer {
            consumer_key,
            username,
            private_key_pem,
        } => {
            assertion = jwt_assertion(
                consumer_key,
                username,
                config.login.audience(),
                private_key_pem,
            )
            .map_err(CallError::Auth)?;
            vec![
                ("grant_type", JWT_GRANT),
                ("assertion", assertion.as_str()),
                ("format", "json"),
            ]
        }
    };
    let response = http
        .post(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| CallError::Transport(transport_error(e)))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| CallError::Transport(transport_error(e)))?
        .to_vec();
    parse_token(config, &RawResponse { status, body })
}

/// The grant type of the JWT bearer flow (RFC 7523).
const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How long an assertion is valid: Salesforce allows at most three minutes.
const ASSERTION_LIFETIME_SECONDS: i64 = 180;

/// The claims of a JWT bearer assertion.
#[derive(serde::Serialize)]
struct AssertionClaims<'a> {
    /// The connected app's consumer key.
    iss: &'a str,
    /// The user the session acts as.
    sub: &'a str,
    /// The authorization server.
    aud: &'a str,
    /// Expiry, seconds since the epoch.
    exp: i64,
}

/// Reads the connected app certificate's private key (PEM, PKCS#1 or PKCS#8); the error never
/// shows the key.
pub(crate) fn signing_key(pem: &SecretString) -> Result<jsonwebtoken::EncodingKey, Diagnostic> {
    jsonwebtoken::EncodingKey::from_rsa_pem(pem.expose().as_bytes()).map_err(|_| {
        Diagnostic::error(
            "salesforce::private_key",
            "the JWT bearer flow's private key is not an RSA private key in PEM form",
        )
        .note("the value should start with `-----BEGIN PRIVATE KEY-----` or `-----BEGIN RSA PRIVATE KEY-----`")
        .hint("put the private key of the certificate uploaded to the connected app (Use digital signatures) into the variable `private_key` reads, line breaks included")
    })
}

/// Signs a JWT bearer assertion (RS256) for the consumer key and user, valid three minutes.
pub(crate) fn jwt_assertion(
    consumer_key: &str,
    username: &str,
    audience: &str,
    private_key_pem: &SecretString,
) -> Result<String, Diagnostic> {
    let key = signing_key(private_key_pem)?;
    let claims = AssertionClaims {
        iss: consumer_key,
        sub: username,
        aud: audience,
        exp: chrono::Utc::now().timestamp() + ASSERTION_LIFETIME_SECONDS,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .map_err(|e| {
        Diagnostic::error(
            "salesforce::private_key",
            format!("could not sign the JWT bearer assertion: {e}"),
        )
        .hint("check that `private_key` holds an RSA key of at least 2048 bits")
    })
}

/// Reads the token endpoint's answer: a session, or why there is none.
pub(crate) fn parse_token(
    config: &SalesforceConfig,
    response: &RawResponse,
) -> Result<Session, CallError> {
    let body: Option<Value> = serde_json::from_slice(&response.body).ok();
    let text = |key: &str| {
        body.as_ref()
            .and_then(|b| b.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let login = engine_diag::redact_url(config.login.url());
    match response.status {
        200..=299 => {
            let token = text("access_token");
            let instance = text("instance_url");
            if token.is_empty() || instance.is_empty() {
                return Err(CallError::Auth(
                    Diagnostic::error(
                        "salesforce::auth",
                        format!("the token endpoint at `{login}` answered without a session"),
                    )
                    .note("the answer had no `access_token` or no `instance_url`")
                    .hint("check the destination's `login`: it should be `login`, `test` or your My Domain URL"),
                ));
            }
            Ok(Session {
                access_token: SecretString::new(token),
                instance_url: instance.trim_end_matches('/').to_string(),
            })
        }
        500..=599 => Err(CallError::LoginUnavailable(format!(
            "the Salesforce token endpoint at `{login}` answered {}",
            response.status
        ))),
        _ => Err(CallError::Auth(token_refused(
            config,
            response.status,
            &text("error"),
            &text("error_description"),
        ))),
    }
}

/// The diagnostic for a refused token request (FACTS O3).
fn token_refused(
    config: &SalesforceConfig,
    status: u16,
    error: &str,
    description: &str,
) -> Diagnostic {
    let login = engine_diag::redact_url(config.login.url());
    let said = if error.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("{error}: {description}")
    };
    if let (Auth::JwtBearer { username, .. }, "invalid_grant") = (&config.auth, error) {
        return jwt_refused(username, &said, description);
    }
    match error {
        "invalid_grant" => Diagnostic::error(
            "salesforce::reconnect",
            "Salesforce refused the refresh token: the connection must be authorized again",
        )
        .note(format!("Salesforce said: {said}"))
        .note("a refresh token stops working when it is revoked, when the connected app's \
               refresh-token policy expires it, or when the user is deactivated")
        .hint(RECONNECT_HINT)
        .hint("if it keeps failing, ask your Salesforce admin whether the user is active and the connected app's access was not revoked"),
        "invalid_client_id" => Diagnostic::error(
            "salesforce::invalid_client",
            "Salesforce does not know the connected app's consumer key",
        )
        .note(format!("Salesforce said: {said}"))
        .hint("copy the consumer key from Setup → App Manager → the connected app → View, into the variable the destination's `consumer_key` reads")
        .hint(format!("check that `login` (`{login}`) is the org the app lives in: `test` for sandboxes")),
        "invalid_client" => Diagnostic::error(
            "salesforce::invalid_client",
            "Salesforce refused the connected app's consumer secret",
        )
        .note(format!("Salesforce said: {said}"))
        .hint("copy the consumer secret from the connected app into the variable the destination's `consumer_secret` reads"),
        _ if status == 404 => Diagnostic::error(
            "salesforce::config",
            format!("there is no Salesforce token endpoint at `{login}`"),
        )
        .note(format!("the answer was {said}"))
        .hint("set `login` to `login` (production), `test` (sandbox) or your My Domain URL"),
        _ => Diagnostic::error(
            "salesforce::auth",
            "Salesforce refused to issue an access token",
        )
        .note(format!("Salesforce said: {said}"))
        .hint(RECONNECT_HINT),
    }
}

/// The diagnostic for a JWT bearer assertion Salesforce refused, by what it said.
fn jwt_refused(username: &str, said: &str, description: &str) -> Diagnostic {
    let refused = Diagnostic::error(
        "salesforce::jwt_refused",
        format!("Salesforce refused the JWT bearer assertion for `{username}`"),
    )
    .note(format!("Salesforce said: {said}"));
    let description = description.to_ascii_lowercase();
    if description.contains("approved") {
        refused
            .note("the user has not been allowed to use the connected app")
            .hint("in the connected app's policies set \"Permitted Users\" to \"Admin approved users are pre-authorized\" and add the user's profile or a permission set")
            .hint("check that `username` is the user's Salesforce username, not their email")
    } else if description.contains("audience") {
        refused.hint("set `login` to `login` for a production org or `test` for a sandbox org (the assertion's audience follows it)")
    } else if description.contains("expired") {
        refused.hint("the assertion's expiry is three minutes from this machine's clock: check that the clock is right")
    } else {
        refused
            .hint("check that the certificate uploaded to the connected app (Use digital signatures) is the one whose private key `private_key` holds")
            .hint("a new connected app can take up to ten minutes before Salesforce accepts it")
    }
}

/// True when an API answer says the session is not (or no longer) valid (FACTS E1, O4).
pub(crate) fn is_invalid_session(response: &RawResponse) -> bool {
    response.status == 401
}

/// A session refused right after it was issued: refreshing again cannot help.
pub(crate) fn session_refused(config: &SalesforceConfig) -> Diagnostic {
    Diagnostic::error(
        "salesforce::session_refused",
        format!(
            "Salesforce refused a session it had just issued for `{}`",
            config.object
        ),
    )
    .note("the API answered 401 `INVALID_SESSION_ID` right after a token refresh")
    .hint("check that the connected app's OAuth scopes include `api` and `refresh_token`")
    .hint(RECONNECT_HINT)
}

/// The diagnostic for a call that could not be made or answered, outside a batch (describe,
/// look-ups): `salesforce::unreachable` / `salesforce::unavailable` are passing.
pub(crate) fn call_diagnostic(config: &SalesforceConfig, error: CallError) -> Diagnostic {
    let login = engine_diag::redact_url(config.login.url());
    match error {
        CallError::Auth(diagnostic) => diagnostic,
        CallError::LoginUnavailable(reason) => {
            Diagnostic::error("salesforce::unavailable", reason).hint("try again in a moment")
        }
        CallError::Transport(crate::client::TransportError::Timeout) => Diagnostic::error(
            "salesforce::unavailable",
            format!(
                "Salesforce did not answer within {} s",
                config.timeout.as_secs_f64()
            ),
        )
        .hint("try again in a moment"),
        CallError::Transport(crate::client::TransportError::Connect(detail)) => Diagnostic::error(
            "salesforce::unreachable",
            format!("could not reach Salesforce (login `{login}`): {detail}"),
        )
        .hint(
            "check the destination's `login` and the network; status.salesforce.com shows outages",
        ),
        CallError::Transport(crate::client::TransportError::Other(detail)) => Diagnostic::error(
            "salesforce::unavailable",
            format!("the request to Salesforce failed: {detail}"),
        )
        .hint("try again in a moment"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WriteMode;

    fn config() -> SalesforceConfig {
        SalesforceConfig::new(
            Auth::RefreshToken {
                consumer_key: "key".into(),
                consumer_secret: SecretString::new("secret-value"),
                refresh_token: SecretString::new("refresh-value"),
            },
            "Contact",
            WriteMode::Insert,
        )
    }

    fn answer(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_token_answer_gives_the_instance() {
        let session = parse_token(
            &config(),
            &answer(
                200,
                r#"{"access_token":"00D!AQ","instance_url":"https://na1.salesforce.com/","token_type":"Bearer"}"#,
            ),
        )
        .expect("a session");
        assert_eq!(session.instance_url, "https://na1.salesforce.com");
        assert_eq!(session.access_token.expose(), "00D!AQ");
    }

    #[test]
    fn a_revoked_refresh_token_says_how_to_reconnect() {
        let Err(CallError::Auth(d)) = parse_token(
            &config(),
            &answer(
                400,
                r#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#,
            ),
        ) else {
            panic!("an auth error");
        };
        assert_eq!(d.code, "salesforce::reconnect");
        assert!(d.hints[0].contains("re-authorize the connected app"), "{d}");
        assert!(d.notes[0].contains("expired access/refresh token"));
        let Err(CallError::Auth(d)) = parse_token(
            &config(),
            &answer(
                400,
                r#"{"error":"invalid_client_id","error_description":"client identifier invalid"}"#,
            ),
        ) else {
            panic!("an auth error");
        };
        assert_eq!(d.code, "salesforce::invalid_client");
        assert!(matches!(
            parse_token(&config(), &answer(503, "")),
            Err(CallError::LoginUnavailable(_))
        ));
    }
}
