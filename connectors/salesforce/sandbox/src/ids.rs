//! Salesforce record ids: base-62, a 3-character key prefix naming the object, and the
//! 3-character case-safe suffix of the 18-character form (FACTS I1, I2).
//!
//! The sandbox hands out 18-character ids (every API call returns that form) and accepts
//! both forms as input; [`normalize`] turns either into the 18-character one, refusing
//! strings that are not ids (wrong length, a character outside `0-9a-zA-Z`, or an 18-character
//! id whose suffix does not match its first 15 characters).

/// The base-62 digits, in Salesforce's order.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The characters of the case-safe suffix (FACTS I2).
const SUFFIX: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The pod and reserved characters (4–6, FACTS I3) of every id the sandbox makes.
const POD: &str = "Hs0";

/// The 3-character suffix of a 15-character id: one character per chunk of five, whose bit j
/// is set when the chunk's j-th character (left to right) is an uppercase letter.
pub(crate) fn suffix(id15: &str) -> String {
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |bits, (j, _)| bits | (1 << j));
            char::from(SUFFIX[bits & 31])
        })
        .collect()
}

/// The 18-character form of a 15- or 18-character id, or `None` when `text` is not an id.
pub(crate) fn normalize(text: &str) -> Option<String> {
    if !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match text.len() {
        15 => Some(format!("{text}{}", suffix(text))),
        18 => {
            let (head, tail) = text.split_at(15);
            // The suffix is case-insensitive; the first 15 characters are authoritative.
            suffix(head)
                .eq_ignore_ascii_case(tail)
                .then(|| format!("{head}{}", suffix(head)))
        }
        _ => None,
    }
}

/// Makes the 18-character id of the `n`-th record of an object with `prefix`.
pub(crate) fn make(prefix: &str, n: u64) -> String {
    let mut digits = [b'0'; 9];
    let mut rest = n;
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(rest % 62) as usize];
        rest /= 62;
    }
    let id15 = format!("{prefix}{POD}{}", String::from_utf8_lossy(&digits));
    let tail = suffix(&id15);
    format!("{id15}{tail}")
}

/// The key prefix of a custom object: `a00`, `a01`, … (FACTS I3: org-specific, often `a0…`).
pub(crate) fn custom_prefix(n: usize) -> String {
    let second = BASE62[(n / 62) % 62];
    let third = BASE62[n % 62];
    format!("a{}{}", char::from(second), char::from(third))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_match_the_ids_in_salesforce_docs() {
        // FACTS I2.
        assert_eq!(
            normalize("00190000001pPvH").as_deref(),
            Some("00190000001pPvHAAU")
        );
        assert_eq!(
            normalize("001xx000003Gaf9").as_deref(),
            Some("001xx000003Gaf9AAC")
        );
        assert_eq!(
            normalize("003D0000001aH2A").as_deref(),
            Some("003D0000001aH2AIAU")
        );
        assert_eq!(
            normalize("003D0000001aH2AIAU").as_deref(),
            Some("003D0000001aH2AIAU")
        );
        assert_eq!(
            normalize("003D0000001aH2Aiau").as_deref(),
            Some("003D0000001aH2AIAU")
        );
    }

    #[test]
    fn non_ids_are_refused() {
        for text in [
            "",
            "003",
            "003D0000001aH2AAAA",
            "003D0000001aH2A!",
            "003D0000001aH2AIA",
        ] {
            assert_eq!(normalize(text), None, "{text}");
        }
    }

    #[test]
    fn made_ids_round_trip_and_keep_their_prefix() {
        for n in [0, 1, 61, 62, 12_345_678, u64::from(u32::MAX)] {
            let id = make("003", n);
            assert_eq!(id.len(), 18);
            assert!(id.starts_with("003Hs0"));
            assert_eq!(normalize(&id[..15]).as_deref(), Some(id.as_str()));
        }
        assert_ne!(make("003", 1), make("003", 2));
        assert_eq!(custom_prefix(0), "a00");
        assert_eq!(custom_prefix(11), "a0B");
    }
}
