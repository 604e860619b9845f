//! How a journaled batch's rows and record ids are stored in `sent_batches`: one text each,
//! written once per batch and read once by the fold, so their encoding is on the apply's hot
//! path. Length-prefixed, so keys and ids may hold any character:
//!
//! ```text
//! rows:    ~create 3:k-1update 1:9        (action, a space, the key's byte length, `:`, the key)
//! written: ~3:1011-2:77                   (per row: `-` for no id, or length `:` id)
//! ```
//!
//! States written before this encoding hold JSON (`[["k-1","create"],…]`, `["101",null]`);
//! they start with `[`, and are read as JSON, so an upgrade mid-run loses no batch.

/// What starts the compact encoding (JSON never does).
const MARK: char = '~';

/// Parses a stored batch: its first key, rows and (once answered) record ids, as every
/// backend keeps them. `damaged` turns what is wrong ("does not parse: …", "has 3 rows but 2
/// record ids") into the backend's error, naming where the batch is kept.
pub(crate) fn decode_batch(
    first_key: String,
    rows: &str,
    written: Option<&str>,
    damaged: impl Fn(String) -> crate::StateError,
) -> Result<crate::JournaledBatch, crate::StateError> {
    let unparsed = |e: String| damaged(format!("does not parse: {e}"));
    let rows = decode_rows(rows).map_err(unparsed)?;
    let written = written.map(decode_ids).transpose().map_err(unparsed)?;
    if let Some(ids) = &written
        && ids.len() != rows.len()
    {
        return Err(damaged(format!(
            "has {} rows but {} record ids",
            rows.len(),
            ids.len()
        )));
    }
    Ok(crate::JournaledBatch {
        first_key,
        rows,
        written,
    })
}

/// The rows of a batch: `(key, action)` pairs.
pub(crate) fn encode_rows(rows: &[(String, String)]) -> String {
    let bytes: usize = rows.iter().map(|(k, a)| k.len() + a.len() + 8).sum();
    let mut out = String::with_capacity(bytes + 1);
    out.push(MARK);
    for (key, action) in rows {
        out.push_str(action);
        out.push(' ');
        push_len(&mut out, key.len());
        out.push(':');
        out.push_str(key);
    }
    out
}

/// The record ids of a written batch, one per row.
pub(crate) fn encode_ids(ids: &[Option<&str>]) -> String {
    let bytes: usize = ids.iter().map(|id| id.map_or(1, |id| id.len() + 4)).sum();
    let mut out = String::with_capacity(bytes + 1);
    out.push(MARK);
    for id in ids {
        match id {
            None => out.push('-'),
            Some(id) => {
                push_len(&mut out, id.len());
                out.push(':');
                out.push_str(id);
            }
        }
    }
    out
}

/// Reads [`encode_rows`]'s text (or the JSON of older states).
pub(crate) fn decode_rows(text: &str) -> Result<Vec<(String, String)>, String> {
    let Some(mut rest) = text.strip_prefix(MARK) else {
        return serde_json::from_str(text).map_err(|e| e.to_string());
    };
    let mut rows = Vec::new();
    while !rest.is_empty() {
        let (action, after) = rest
            .split_once(' ')
            .ok_or_else(|| "a row has no action".to_string())?;
        let (key, after) = take_counted(after)?;
        rows.push((key.to_string(), action.to_string()));
        rest = after;
    }
    Ok(rows)
}

/// Reads [`encode_ids`]'s text (or the JSON of older states).
pub(crate) fn decode_ids(text: &str) -> Result<Vec<Option<String>>, String> {
    let Some(mut rest) = text.strip_prefix(MARK) else {
        return serde_json::from_str(text).map_err(|e| e.to_string());
    };
    let mut ids = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('-') {
            ids.push(None);
            rest = after;
            continue;
        }
        let (id, after) = take_counted(rest)?;
        ids.push(Some(id.to_string()));
        rest = after;
    }
    Ok(ids)
}

fn push_len(out: &mut String, len: usize) {
    use std::fmt::Write as _;
    let _ = write!(out, "{len}");
}

/// `len:text…` → (text, the rest).
fn take_counted(text: &str) -> Result<(&str, &str), String> {
    let (len, after) = text
        .split_once(':')
        .ok_or_else(|| "a value has no length".to_string())?;
    let len: usize = len
        .parse()
        .map_err(|_| format!("`{len}` is not a length"))?;
    if !after.is_char_boundary(len.min(after.len())) || after.len() < len {
        return Err("a value is shorter than its length".into());
    }
    Ok(after.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_ids_round_trip_whatever_they_hold() {
        let rows: Vec<(String, String)> = vec![
            ("k-1".into(), "create".into()),
            ("a key: with ~ spaces".into(), "update".into()),
            ("[\"é\",2]".into(), "remove".into()),
            (String::new(), "create".into()),
        ];
        let encoded = encode_rows(&rows);
        assert!(encoded.starts_with("~create 3:k-1update 20:"));
        assert_eq!(decode_rows(&encoded), Ok(rows));
        let ids = [Some("101"), None, Some("7:9"), Some("")];
        let encoded = encode_ids(&ids);
        assert_eq!(encoded, "~3:101-3:7:90:");
        assert_eq!(
            decode_ids(&encoded),
            Ok(ids.iter().map(|i| i.map(str::to_string)).collect())
        );
        assert_eq!(decode_rows("~"), Ok(Vec::new()));
    }

    #[test]
    fn older_states_hold_json() {
        assert_eq!(
            decode_rows(r#"[["k","create"]]"#),
            Ok(vec![("k".to_string(), "create".to_string())])
        );
        assert_eq!(
            decode_ids(r#"["101",null]"#),
            Ok(vec![Some("101".to_string()), None])
        );
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        for bad in ["~create", "~create x:k", "~create 9:k", "~create 1:é"] {
            assert!(decode_rows(bad).is_err(), "{bad}");
        }
        assert!(decode_ids("~5:ab").is_err());
    }
}
