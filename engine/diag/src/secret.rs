//! A string that never shows itself.

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

    /// Replaces every occurrence of the secret in `text`, for error messages built from
    /// responses or URLs that might echo it back.
    pub fn redact_in(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, "**redacted**")
        }
    }
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
}
