//! Salesforce record ids (FACTS I1–I3): 15 characters (case-sensitive) or 18 (15 plus a
//! case-safe checksum), base 62, the first three characters the object's key prefix.
//!
//! A value that is not an id is a per-row error that says why (`1004422` is a number, not an
//! id; a checksum that does not match means the letters' case was changed, as spreadsheets
//! do); an id of another object than a lookup's target says which object it belongs to.

/// The alphabet of the 18-character suffix (FACTS I2).
const SUFFIX_CHARS: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// Key prefixes of standard objects (FACTS I3), for messages.
const KNOWN_PREFIXES: &[(&str, &str)] = &[
    ("001", "Account"),
    ("003", "Contact"),
    ("005", "User"),
    ("006", "Opportunity"),
    ("00Q", "Lead"),
    ("00D", "Organization"),
    ("012", "RecordType"),
    ("00T", "Task"),
    ("00U", "Event"),
    ("500", "Case"),
    ("701", "Campaign"),
    ("750", "Bulk job"),
    ("751", "Bulk batch"),
];

/// A checked record id in its 18-character form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SalesforceId(String);

impl SalesforceId {
    /// The 18-character form, as the API returns ids.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 15-character, case-sensitive form.
    pub fn short(&self) -> &str {
        &self.0[..15]
    }

    /// The object's key prefix (`003` for Contacts).
    pub fn key_prefix(&self) -> &str {
        &self.0[..3]
    }
}

impl std::fmt::Display for SalesforceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The 3-character suffix of a 15-character id (FACTS I2). `short` must be 15 ASCII chars.
fn suffix(short: &[u8]) -> String {
    short
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |bits, (j, _)| bits | (1 << j));
            char::from(SUFFIX_CHARS[bits])
        })
        .collect()
}

/// The object a key prefix names, when it is a standard one.
pub fn object_of_prefix(prefix: &str) -> Option<&'static str> {
    KNOWN_PREFIXES
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, object)| *object)
}

/// Checks `text` as a record id: 15 or 18 base-62 characters, with a matching checksum when
/// 18. Returns the 18-character form, or why it is not an id.
pub fn parse_id(text: &str) -> Result<SalesforceId, String> {
    let value = text.trim();
    const FORMAT: &str = "Salesforce ids are 15 or 18 letters and digits and start with the \
                          object's key prefix, such as `003` for Contacts";
    if value.is_empty() {
        return Err("not a Salesforce id: the value is empty".into());
    }
    if let Some(bad) = value.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(format!(
            "not a Salesforce id: `{value}` holds `{bad}`; {FORMAT}"
        ));
    }
    let length = value.len();
    if length != 15 && length != 18 {
        let what = if value.chars().all(|c| c.is_ascii_digit()) {
            format!("`{value}` is a number ({length} digits)")
        } else {
            format!("`{value}` has {length} characters")
        };
        return Err(format!("not a Salesforce id: {what}; {FORMAT}"));
    }
    let short = &value.as_bytes()[..15];
    let expected = suffix(short);
    if length == 18 {
        let given = &value[15..];
        if !given.eq_ignore_ascii_case(&expected) {
            return Err(format!(
                "not a Salesforce id: the checksum of `{value}` does not match (expected `{}{expected}`); \
                 the letters' case was probably changed (ids are case-sensitive)",
                &value[..15]
            ));
        }
    }
    Ok(SalesforceId(format!("{}{expected}", &value[..15])))
}

/// Checks that `id` belongs to one of the lookup's target objects, given as
/// `(object name, key prefix)`. Targets without a known prefix are not checked.
pub fn check_target(id: &SalesforceId, targets: &[(String, String)]) -> Result<(), String> {
    if targets.is_empty() || targets.iter().any(|(_, p)| p.is_empty()) {
        return Ok(());
    }
    if targets.iter().any(|(_, prefix)| prefix == id.key_prefix()) {
        return Ok(());
    }
    let belongs = object_of_prefix(id.key_prefix())
        .map(|object| format!("a {object} id"))
        .unwrap_or_else(|| format!("an id with key prefix `{}`", id.key_prefix()));
    let wanted: Vec<String> = targets
        .iter()
        .map(|(object, prefix)| format!("{object} (`{prefix}…`)"))
        .collect();
    Err(format!(
        "`{}` is {belongs}, but the field looks up {}",
        id.short(),
        wanted.join(" or ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_matches_the_documented_ids() {
        for (short, long) in [
            ("00190000001pPvH", "00190000001pPvHAAU"),
            ("001xx000003Gaf9", "001xx000003Gaf9AAC"),
            ("003D0000001aH2A", "003D0000001aH2AIAU"),
        ] {
            assert_eq!(parse_id(short).map(|id| id.0), Ok(long.to_string()));
            assert_eq!(parse_id(long).map(|id| id.0), Ok(long.to_string()));
            // The suffix is case-safe: a lower-cased suffix still matches.
            let lowered = format!("{short}{}", long[15..].to_lowercase());
            assert_eq!(parse_id(&lowered).map(|id| id.0), Ok(long.to_string()));
        }
        let id = parse_id("003D0000001aH2A").expect("an id");
        assert_eq!(id.key_prefix(), "003");
        assert_eq!(id.short(), "003D0000001aH2A");
    }

    #[test]
    fn numbers_and_malformed_values_say_why() {
        let numeric = parse_id("1004422").expect_err("not an id");
        assert!(
            numeric.contains("`1004422` is a number (7 digits)"),
            "{numeric}"
        );
        assert!(numeric.starts_with("not a Salesforce id"));
        assert!(
            parse_id("003D0000001aH2A-x")
                .expect_err("dash")
                .contains("holds `-`")
        );
        assert!(parse_id("").is_err());
        let case_changed = parse_id("003d0000001ah2aIAU").expect_err("case changed");
        assert!(case_changed.contains("checksum"), "{case_changed}");
        assert!(
            parse_id("003123456789012a")
                .expect_err("16")
                .contains("16 characters")
        );
    }

    #[test]
    fn the_prefix_must_be_the_lookups_target() {
        let lead = parse_id("00Q000000000001").expect("an id");
        let contact_only = [("Contact".to_string(), "003".to_string())];
        let message = check_target(&lead, &contact_only).expect_err("a lead id");
        assert!(message.contains("is a Lead id"), "{message}");
        assert!(message.contains("Contact (`003…`)"), "{message}");
        let either = [
            ("Contact".to_string(), "003".to_string()),
            ("Lead".to_string(), "00Q".to_string()),
        ];
        assert!(check_target(&lead, &either).is_ok());
        let custom = parse_id("a00000000000001").expect("an id");
        assert!(
            check_target(&custom, &contact_only)
                .expect_err("custom")
                .contains("key prefix `a00`")
        );
    }
}
