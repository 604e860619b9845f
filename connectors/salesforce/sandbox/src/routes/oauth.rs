//! The OAuth 2.0 endpoints: `POST /services/oauth2/token` (refresh-token and JWT bearer
//! grants) and `POST /services/oauth2/revoke` (FACTS O1–O4).
//!
//! Answers are OAuth-shaped, not the REST error array (FACTS O3). The token response is
//! FACTS O2's: `access_token`, `instance_url` (the sandbox's own base URL, from the request's
//! `Host`), `id` (`<instance>/id/<orgId>/<userId>`), `token_type` `Bearer`, `issued_at` (ms),
//! `signature` (base64 HMAC-SHA256 of `id + issued_at` keyed by the client secret) and
//! `scope`; no `expires_in` and no new refresh token.
//!
//! FACTS gives three errors; for the cases it does not name the sandbox uses the codes of
//! Salesforce's OAuth error table: a wrong client secret is `invalid_client` "invalid client
//! credentials", an unknown grant type `unsupported_grant_type` "grant type not supported",
//! a JWT whose `aud` is not a login URL `invalid_grant` "audience is invalid", one whose
//! `sub` is not the API user `invalid_grant` "user hasn't approved this consumer", one with
//! no `exp` or a past one `invalid_grant` "expired authorization code", one that is not three
//! base64url parts with a JSON payload, or whose RS256 signature the configured public key does
//! not verify, `invalid_grant` "invalid assertion"; a revoke of an
//! unknown token `unsupported_token_type` "this token type is not supported".

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::base_url;
use crate::encoding;
use crate::errors::OAuthError;
use crate::respond;
use crate::state::{Shared, lock};

const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The audiences a JWT assertion may name (FACTS O1), besides the sandbox's own URL.
const AUDIENCES: [&str; 2] = [
    "https://login.salesforce.com",
    "https://test.salesforce.com",
];

/// The form fields of a request (`application/x-www-form-urlencoded`).
fn form(headers: &HeaderMap, body: &Bytes) -> Result<HashMap<String, String>, OAuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let text = std::str::from_utf8(body).unwrap_or_default();
    if !is_form && !text.is_empty() {
        return Err(OAuthError::new(
            "invalid_request",
            "request must be application/x-www-form-urlencoded",
        ));
    }
    Ok(respond::query_pairs(Some(text)).into_iter().collect())
}

/// `POST /services/oauth2/token`.
pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    grant(&shared, &headers, &body).unwrap_or_else(IntoResponse::into_response)
}

fn grant(shared: &Shared, headers: &HeaderMap, body: &Bytes) -> Result<Response, OAuthError> {
    let fields = form(headers, body)?;
    let field = |name: &str| {
        fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let client = &shared.client;
    let refresh = match field("grant_type") {
        None => return Err(OAuthError::new("invalid_request", "grant type is missing")),
        Some("refresh_token") => {
            if field("client_id") != Some(client.id.as_str()) {
                return Err(OAuthError::new(
                    "invalid_client_id",
                    "client identifier invalid",
                ));
            }
            if let Some(secret) = field("client_secret")
                && secret != client.secret
            {
                return Err(OAuthError::new(
                    "invalid_client",
                    "invalid client credentials",
                ));
            }
            let token = field("refresh_token").unwrap_or_default();
            if token != client.refresh_token || lock(&shared.sessions).is_revoked(token) {
                return Err(OAuthError::new(
                    "invalid_grant",
                    "expired access/refresh token",
                ));
            }
            Some(token.to_owned())
        }
        Some(JWT_GRANT) => {
            let assertion = field("assertion").unwrap_or_default();
            jwt_claims(shared, headers, assertion)?;
            None
        }
        Some(_) => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                "grant type not supported",
            ));
        }
    };
    let instance_url = base_url(headers);
    let (org_id, user_id) = {
        let store = lock(&shared.store);
        (store.org_id.clone(), store.user_id.clone())
    };
    let access_token = lock(&shared.sessions).issue(&org_id, refresh.as_deref());
    lock(&shared.stats).token_grants += 1;
    let id = format!("{instance_url}/id/{org_id}/{user_id}");
    let issued_at = chrono::Utc::now().timestamp_millis().to_string();
    let signature = encoding::base64(&encoding::hmac_sha256(
        client.secret.as_bytes(),
        format!("{id}{issued_at}").as_bytes(),
    ));
    Ok(respond::ok(&json!({
        "access_token": access_token,
        "instance_url": instance_url,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": signature,
        "scope": "api refresh_token",
    })))
}

/// Checks a JWT bearer assertion: its RS256 signature when the sandbox holds the connected
/// app's public key, then its claims: `iss` is the client id, `sub` the API user, `aud` a
/// login URL or the sandbox's own, `exp` not past.
fn jwt_claims(shared: &Shared, headers: &HeaderMap, assertion: &str) -> Result<(), OAuthError> {
    let invalid = || OAuthError::new("invalid_grant", "invalid assertion");
    let mut parts = assertion.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    if let Some(key) = &shared.client.jwt_key {
        // Only the signature here: the claims are checked below, with Salesforce's answers.
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Value>(assertion, key, &validation).map_err(|_| invalid())?;
    }
    let claims: Value = encoding::base64_decode(payload)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(invalid)?;
    let claim = |name: &str| claims.get(name).and_then(Value::as_str);
    if claim("iss") != Some(shared.client.id.as_str()) {
        return Err(OAuthError::new(
            "invalid_client_id",
            "client identifier invalid",
        ));
    }
    let own = base_url(headers);
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => {
            let aud = aud.trim_end_matches('/');
            AUDIENCES.contains(&aud) || aud == own
        }
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(|aud| {
            let aud = aud.trim_end_matches('/');
            AUDIENCES.contains(&aud) || aud == own
        }),
        _ => false,
    };
    if !audience_ok {
        return Err(OAuthError::new("invalid_grant", "audience is invalid"));
    }
    if claim("sub") != Some(shared.client.username.as_str()) {
        return Err(OAuthError::new(
            "invalid_grant",
            "user hasn't approved this consumer",
        ));
    }
    let now = chrono::Utc::now().timestamp();
    if claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_none_or(|exp| exp < now)
    {
        return Err(OAuthError::new(
            "invalid_grant",
            "expired authorization code",
        ));
    }
    Ok(())
}

/// `POST /services/oauth2/revoke` `token=…`: 200 with no body; an access token ends its
/// session, the refresh token is revoked with the sessions issued from it.
pub(super) async fn revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = || -> Result<Response, OAuthError> {
        let fields = form(&headers, &body)?;
        let token = fields.get("token").map(String::as_str).unwrap_or_default();
        if lock(&shared.sessions).revoke(token, &shared.client.refresh_token) {
            Ok(respond::empty(StatusCode::OK))
        } else {
            Err(OAuthError::new(
                "unsupported_token_type",
                "this token type is not supported",
            ))
        }
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}
