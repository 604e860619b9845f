//! SOQL look-ups: string literals escaped by Salesforce's rules, `IN` lists chunked so the
//! request URL stays under [`MAX_URL_CHARS`], and `GET /query` followed page by page through
//! `nextRecordsUrl` (FACTS Q1, L4). Shared by the matching cascade, `mode: update` by an
//! external id, and the record reads of crash recovery.

use connector_core::Diagnostic;
use reqwest::Method;
use serde_json::Value;

use crate::SalesforceDestination;
use crate::auth::call_diagnostic;
use crate::client::Body;
use crate::response;

/// The longest request URL the look-ups build, in characters (Salesforce refuses URIs over
/// 16,384 characters with 414; the rest is left for the host and the path).
pub const MAX_URL_CHARS: usize = 16_000;

/// A SOQL string literal, quoted, with Salesforce's escapes for `'`, `"`, `\` and control
/// characters (SOQL reference, "Quoted String Escape Sequences"): `O'Brien` → `'O\'Brien'`.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Percent-encodes a query-string value (`application/x-www-form-urlencoded`).
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3 / 2);
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// `{select} WHERE {field} IN (…)` queries covering `values` (each once), as many as needed
/// for every request URL to stay under [`MAX_URL_CHARS`], given `fixed_len` characters of
/// URL before the encoded query (instance, path, `?q=`). A `select` that has a `WHERE`
/// already keeps it: `… WHERE IsConverted = false AND Email IN (…)`.
pub fn in_queries(select: &str, field: &str, values: &[&str], fixed_len: usize) -> Vec<String> {
    let mut unique: Vec<&str> = values.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let joiner = if select.contains(" WHERE ") {
        " AND"
    } else {
        " WHERE"
    };
    let head = format!("{select}{joiner} {field} IN (");
    let head_len = fixed_len + encode_component(&head).len() + encode_component(")").len();
    let mut queries = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut length = head_len;
    for value in unique {
        let literal = quote(value);
        let cost = encode_component(&literal).len() + encode_component(",").len();
        if !current.is_empty() && length + cost > MAX_URL_CHARS {
            queries.push(format!("{head}{})", current.join(",")));
            current.clear();
            length = head_len;
        }
        length += cost;
        current.push(literal);
    }
    if !current.is_empty() {
        queries.push(format!("{head}{})", current.join(",")));
    }
    queries
}

impl SalesforceDestination {
    /// The characters of a query URL before the `q` value: instance URL (a generous guess
    /// until the session is known) and path.
    pub(crate) fn query_url_overhead(&self) -> usize {
        200 + self.client.data_path("/query?q=").len()
    }

    /// Runs one SOQL query and returns every record, following `nextRecordsUrl`.
    pub(crate) async fn query(&self, soql: &str) -> Result<Vec<Value>, Diagnostic> {
        let mut records = Vec::new();
        let mut path = self
            .client
            .data_path(&format!("/query?q={}", encode_component(soql)));
        loop {
            let answer = self
                .client
                .call(Method::GET, &path, Body::Empty)
                .await
                .map_err(|e| call_diagnostic(&self.config, e))?;
            if answer.status != 200 {
                return Err(self.query_failed(soql, &answer));
            }
            let page: Value = serde_json::from_slice(&answer.body).map_err(|_| {
                Diagnostic::error(
                    "salesforce::query",
                    "Salesforce answered a query with something that is not a query result",
                )
                .note(response::summary(&answer))
            })?;
            if let Some(page_records) = page.get("records").and_then(Value::as_array) {
                records.extend(page_records.iter().cloned());
            }
            let done = page.get("done").and_then(Value::as_bool).unwrap_or(true);
            match page.get("nextRecordsUrl").and_then(Value::as_str) {
                Some(next) if !done => path = next.to_string(),
                _ => break,
            }
        }
        Ok(records)
    }

    fn query_failed(&self, soql: &str, answer: &crate::client::RawResponse) -> Diagnostic {
        if let Some(d) = response::stopping_diagnostic(&self.config.object, answer) {
            return d;
        }
        let said = response::summary(answer);
        if answer.status >= 500 || answer.status == 403 {
            return Diagnostic::error(
                "salesforce::unavailable",
                "Salesforce could not answer a look-up right now",
            )
            .note(said)
            .hint("try again in a moment");
        }
        let shown: String = soql.chars().take(200).collect();
        Diagnostic::error("salesforce::query", "Salesforce refused a look-up query")
            .note(said)
            .note(format!("the query began: {shown}"))
            .hint("check that the connected user can read the object and its `Email` field")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_escaped_as_salesforce_reads_them() {
        assert_eq!(quote("O'Brien@x.com"), r"'O\'Brien@x.com'");
        assert_eq!(quote(r"a\b@x.com"), r"'a\\b@x.com'");
        assert_eq!(quote("say \"hi\"\n"), r#"'say \"hi\"\n'"#);
        assert_eq!(quote("plain"), "'plain'");
    }

    #[test]
    fn components_are_form_encoded() {
        assert_eq!(encode_component("a b'c@d,é"), "a+b%27c%40d%2C%C3%A9");
    }

    #[test]
    fn in_lists_are_chunked_under_the_url_limit() {
        let values: Vec<String> = (0..3000)
            .map(|i| format!("person.{i:05}@example.com"))
            .collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let queries = in_queries("SELECT Id, Email FROM Contact", "Email", &refs, 300);
        assert!(queries.len() > 1);
        let mut total = 0;
        for query in &queries {
            assert!(
                300 + encode_component(query).len() <= MAX_URL_CHARS,
                "{}",
                query.len()
            );
            assert!(query.starts_with("SELECT Id, Email FROM Contact WHERE Email IN ('"));
            total += query.matches("@example.com").count();
        }
        assert_eq!(total, 3000, "each value once");
        let dupes = in_queries("SELECT Id FROM Lead", "Email", &["a@x.com", "a@x.com"], 0);
        assert_eq!(dupes, ["SELECT Id FROM Lead WHERE Email IN ('a@x.com')"]);
        assert!(in_queries("SELECT Id FROM Lead", "Email", &[], 0).is_empty());
        assert_eq!(
            in_queries(
                "SELECT Id FROM Lead WHERE IsConverted = false",
                "Email",
                &["a@x.com"],
                0
            ),
            ["SELECT Id FROM Lead WHERE IsConverted = false AND Email IN ('a@x.com')"]
        );
    }
}
