//! SOQL: a tokenizer with Salesforce's string escapes ([`lexer`]), a parser of the forms a
//! connector sends ([`parse`]), evaluation against the store ([`eval`]), and the cursors of
//! `nextRecordsUrl` paging (FACTS Q1, L4).

pub(crate) mod eval;
pub(crate) mod lexer;
pub(crate) mod parse;

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

/// How many open cursors the sandbox keeps; the oldest is forgotten past it (Salesforce
/// keeps a limited number per user and expires them after 15 minutes of inactivity).
const MAX_CURSORS: usize = 1_000;

/// One query's remaining pages.
#[derive(Debug)]
pub(crate) struct Cursor {
    pub(crate) records: Vec<Value>,
    pub(crate) batch: usize,
}

/// Open query cursors, by locator (`01g…`).
#[derive(Debug, Default)]
pub(crate) struct Cursors {
    open: HashMap<String, Cursor>,
    order: VecDeque<String>,
    next: u64,
}

impl Cursors {
    /// Keeps a query's records and answers its locator.
    pub(crate) fn open(&mut self, records: Vec<Value>, batch: usize) -> String {
        self.next += 1;
        let locator = crate::ids::make("01g", self.next);
        if self.order.len() >= MAX_CURSORS
            && let Some(old) = self.order.pop_front()
        {
            self.open.remove(&old);
        }
        self.order.push_back(locator.clone());
        self.open.insert(locator.clone(), Cursor { records, batch });
        locator
    }

    pub(crate) fn get(&self, locator: &str) -> Option<&Cursor> {
        self.open.get(locator)
    }
}
