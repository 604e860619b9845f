//! The saved plan's line layout: compact JSON with each row change on a line of its own.
//!
//! ```text
//! {"format_version":1,…,"syncs":[{"sync":"a",…,"changes":[
//! {"action":"create","key":"1",…}
//! ,{"action":"create","key":"2",…}
//! ],"skipped":[…]},{"sync":"b",…,"changes":[
//! ],…}],"digest":"…"}
//! ```
//!
//! The newlines are whitespace to any JSON reader, so the file is the same document as the
//! compact one. They let `engine apply` parse a change at a time from a slice
//! ([`crate::saved::read_lines`]), several times faster than parsing the whole document from a
//! stream. Compact JSON holds no raw newline (strings escape them), so the seal is computed
//! over the bytes with every newline left out ([`without_newlines`]): the digest of the file
//! and of the compact document are the same.

use std::io::{self, Write};

use serde_json::ser::{CompactFormatter, Formatter};

/// The key whose array holds a sync's row changes.
pub(crate) const CHANGES_KEY: &str = "changes";

/// Compact JSON, with a newline before each element of a `changes` array and before its `]`.
#[derive(Default)]
pub(crate) struct ChangeLines {
    /// The object key being written, while it is written.
    key: Option<String>,
    /// The last key written at the current position.
    last_key: String,
    /// For each open array: whether it is a `changes` array.
    arrays: Vec<bool>,
}

impl Formatter for ChangeLines {
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.key = Some(String::new());
        CompactFormatter.begin_object_key(writer, first)
    }

    fn end_object_key<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.last_key = self.key.take().unwrap_or_default();
        CompactFormatter.end_object_key(writer)
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if let Some(key) = &mut self.key {
            key.push_str(fragment);
        }
        CompactFormatter.write_string_fragment(writer, fragment)
    }

    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.arrays
            .push(std::mem::take(&mut self.last_key) == CHANGES_KEY);
        CompactFormatter.begin_array(writer)
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if self.arrays.last() == Some(&true) {
            writer.write_all(b"\n")?;
        }
        CompactFormatter.begin_array_value(writer, first)
    }

    fn end_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if self.arrays.pop() == Some(true) {
            writer.write_all(b"\n")?;
        }
        CompactFormatter.end_array(writer)
    }

    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.last_key.clear();
        CompactFormatter.begin_object(writer)
    }
}

/// Calls `visit` with the runs of `bytes` between newlines (the bytes the seal covers).
pub(crate) fn without_newlines(bytes: &[u8], mut visit: impl FnMut(&[u8])) {
    for run in bytes.split(|b| *b == b'\n') {
        if !run.is_empty() {
            visit(run);
        }
    }
}
