//! Sessions: the access tokens the sandbox accepts, their expiry, and refresh-token
//! revocation (FACTS O2–O4).
//!
//! The configured token is accepted from the start (so a test can call the API without the
//! OAuth dance); the token endpoint issues more. A token expires after `token_ttl_requests`
//! API requests or `token_ttl_seconds` seconds (whichever comes first, both off by default),
//! then every request with it gets 401 `INVALID_SESSION_ID` and a client must refresh.
//! Revoking a refresh token (`POST /services/oauth2/revoke`) revokes the access tokens issued
//! from it; the refresh grant then answers `invalid_grant` "expired access/refresh token".

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// One access token's life so far.
#[derive(Debug)]
struct Session {
    issued: Instant,
    requests: u64,
    refresh_token: Option<String>,
}

/// The live access tokens and the revoked refresh tokens.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    live: HashMap<String, Session>,
    revoked: HashSet<String>,
    /// Requests an access token serves before it expires.
    pub(crate) ttl_requests: Option<u64>,
    /// Seconds an access token lives.
    pub(crate) ttl_seconds: Option<u64>,
}

impl Sessions {
    /// Sessions accepting `token` from the start.
    pub(crate) fn new(token: &str, ttl_requests: Option<u64>, ttl_seconds: Option<u64>) -> Self {
        let mut sessions = Sessions {
            ttl_requests,
            ttl_seconds,
            ..Sessions::default()
        };
        sessions.add(token.to_owned(), None);
        sessions
    }

    fn add(&mut self, token: String, refresh_token: Option<String>) {
        self.live.insert(
            token,
            Session {
                issued: Instant::now(),
                requests: 0,
                refresh_token,
            },
        );
    }

    /// Issues a fresh access token (from a refresh token, or a JWT grant when `None`).
    pub(crate) fn issue(&mut self, org_id: &str, refresh_token: Option<&str>) -> String {
        let token = format!(
            "{}!AQ{}{}",
            &org_id[..15.min(org_id.len())],
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        self.add(token.clone(), refresh_token.map(str::to_owned));
        token
    }

    /// Admits one API request with `token`: false when it is unknown, revoked or expired
    /// (an expired token is forgotten).
    pub(crate) fn admit(&mut self, token: &str) -> bool {
        let (ttl_requests, ttl_seconds) = (self.ttl_requests, self.ttl_seconds);
        let Some(session) = self.live.get_mut(token) else {
            return false;
        };
        let too_old =
            ttl_seconds.is_some_and(|s| session.issued.elapsed() >= Duration::from_secs(s));
        let used_up = ttl_requests.is_some_and(|n| session.requests >= n);
        if too_old || used_up {
            self.live.remove(token);
            return false;
        }
        session.requests += 1;
        true
    }

    /// Whether a refresh token was revoked.
    pub(crate) fn is_revoked(&self, refresh_token: &str) -> bool {
        self.revoked.contains(refresh_token)
    }

    /// Revokes an access token, or a refresh token and the access tokens issued from it;
    /// false when `token` is neither a live access token nor `known_refresh`.
    pub(crate) fn revoke(&mut self, token: &str, known_refresh: &str) -> bool {
        if self.live.remove(token).is_some() {
            return true;
        }
        if token == known_refresh && !self.revoked.contains(token) {
            self.revoked.insert(token.to_owned());
            self.live
                .retain(|_, s| s.refresh_token.as_deref() != Some(token));
            return true;
        }
        false
    }

    /// Un-revokes a refresh token (the `refresh_token_revoked: false` knob).
    pub(crate) fn restore(&mut self, refresh_token: &str) {
        self.revoked.remove(refresh_token);
    }

    /// Expires every access token now (the `/_sandbox/expire-sessions` route).
    pub(crate) fn expire_all(&mut self) -> usize {
        let n = self.live.len();
        self.live.clear();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_after_their_requests() {
        let mut sessions = Sessions::new("t", Some(2), None);
        assert!(sessions.admit("t"));
        assert!(sessions.admit("t"));
        assert!(!sessions.admit("t"));
        assert!(!sessions.admit("t"));
        let fresh = sessions.issue("00DHs0000000001AAA", Some("r"));
        assert!(sessions.admit(&fresh));
    }

    #[test]
    fn revoking_a_refresh_token_ends_its_sessions() {
        let mut sessions = Sessions::new("t", None, None);
        let issued = sessions.issue("00D", Some("r"));
        assert!(sessions.revoke("r", "r"));
        assert!(sessions.is_revoked("r"));
        assert!(!sessions.admit(&issued));
        assert!(sessions.admit("t"));
        assert!(!sessions.revoke("r", "r"));
        assert!(!sessions.revoke("unknown", "r"));
        sessions.restore("r");
        assert!(!sessions.is_revoked("r"));
    }
}
