//! Strings that never show themselves, and URLs shown without their credentials.

use std::fmt;

/// A credential (API token, client secret). `Display` and `Debug` print `**redacted**`;
/// only [`SecretString::expose`] gives the value, and only code that puts it on the wire calls it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it (an `Authorization` header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every whole occurrence of the secret in `text`, for error messages built from
    /// responses or URLs that might echo it back.
    ///
    /// An occurrence counts when it does not run on into a longer alphanumeric word: a secret
    /// `abc` is masked in `token=abc;` but not in `abcde`, so a short value cannot mask letters
    /// of ordinary words. (Secrets from the environment are at least
    /// [`SecretString::MIN_LEN`] characters long; the loader refuses shorter ones.)
    pub fn redact_in(&self, text: &str) -> String {
        let secret = self.0.as_str();
        if secret.is_empty() {
            return text.to_string();
        }
        let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(secret) {
            let before = out
                .chars()
                .next_back()
                .filter(|_| at == 0)
                .or_else(|| rest[..at].chars().next_back());
            let after = rest[at + secret.len()..].chars().next();
            let joins_before = word(before) && word(secret.chars().next());
            let joins_after = word(after) && word(secret.chars().next_back());
            if joins_before || joins_after {
                // Part of a longer word: keep it, and look again one character further on.
                let step = at + rest[at..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&rest[..step]);
                rest = &rest[step..];
            } else {
                out.push_str(&rest[..at]);
                out.push_str("**redacted**");
                rest = &rest[at + secret.len()..];
            }
        }
        out.push_str(rest);
        out
    }

    /// The fewest characters a secret from the environment may have: a shorter value is a
    /// placeholder or a mistake, never a real token.
    pub const MIN_LEN: usize = 8;
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(**redacted**)")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**redacted**")
    }
}

/// `url` as it may be shown: a password in its userinfo becomes `****`
/// (`http://user:****@host`), and a user name without a password, which may be a token,
/// is masked whole (`http://****@host`). Anything that is not a URL with credentials is
/// returned as is; the text need not parse as a URL.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let authority_start = scheme_end + 3;
    let authority_len = url[authority_start..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - authority_start);
    let authority = &url[authority_start..authority_start + authority_len];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let shown = match authority[..at].split_once(':') {
        Some((user, _password)) => format!("{user}:****"),
        None => "****".to_string(),
    };
    format!(
        "{}{shown}{}",
        &url[..authority_start],
        &url[authority_start + at..]
    )
}

/// The secret parts of a URL's userinfo (the password, or a user name without a password),
/// to be masked wherever they might be echoed in a message.
pub fn url_credentials(url: &str) -> Option<SecretString> {
    let scheme_end = url.find("://")?;
    let authority = url[scheme_end + 3..]
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let (userinfo, _host) = authority.rsplit_once('@')?;
    let secret = match userinfo.split_once(':') {
        Some((_user, password)) => password,
        None => userinfo,
    };
    (!secret.is_empty()).then(|| SecretString::new(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_debug_never_show_the_value() {
        let secret = SecretString::new("pat-na1-123456");
        assert_eq!(secret.to_string(), "**redacted**");
        assert!(!format!("{secret:?}").contains("123456"));
        assert_eq!(secret.expose(), "pat-na1-123456");
        assert_eq!(
            secret.redact_in("token pat-na1-123456 bad"),
            "token **redacted** bad"
        );
    }

    /// A short secret used to mask letters inside ordinary words (`ab` in `about`).
    #[test]
    fn redact_in_masks_whole_occurrences_only() {
        let short = SecretString::new("ab");
        assert_eq!(
            short.redact_in("about the tab: ab, `ab`, x=ab"),
            "about the tab: **redacted**, `**redacted**`, x=**redacted**"
        );
        assert_eq!(short.redact_in("ab"), "**redacted**");
        assert_eq!(short.redact_in("aab ab"), "aab **redacted**");
        let token = SecretString::new("pat-na1-123456");
        assert_eq!(
            token.redact_in(r#"{"token":"pat-na1-123456"}Bearer pat-na1-123456"#),
            r#"{"token":"**redacted**"}Bearer **redacted**"#
        );
        assert_eq!(
            token.redact_in("xpat-na1-1234567 é-pat-na1-123456"),
            "xpat-na1-1234567 é-**redacted**"
        );
        // Characters around the secret that are not letters or digits never hide it.
        let dashed = SecretString::new("-secret-");
        assert_eq!(dashed.redact_in("a-secret-b"), "a**redacted**b");
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(
            redact_url("http://user:PASS@host:8080/x?y#z"),
            "http://user:****@host:8080/x?y#z"
        );
        assert_eq!(
            redact_url("https://pat-token@api.example.com"),
            "https://****@api.example.com"
        );
        assert_eq!(redact_url("http://127.0.0.1:4609"), "http://127.0.0.1:4609");
        assert_eq!(
            redact_url("http://host/path@not-userinfo"),
            "http://host/path@not-userinfo"
        );
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(
            url_credentials("http://user:PASS@host").map(|s| s.expose().to_string()),
            Some("PASS".to_string())
        );
        assert_eq!(url_credentials("http://host/a@b"), None);
    }
}
