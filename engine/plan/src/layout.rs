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
    /// The last object key written at the current position (reused, never reallocated).
    key: String,
    /// True while an object key is being written.
    in_key: bool,
    /// For each open array: whether it is a `changes` array.
    arrays: Vec<bool>,
}

impl Formatter for ChangeLines {
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.key.clear();
        self.in_key = true;
        CompactFormatter.begin_object_key(writer, first)
    }

    fn end_object_key<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.in_key = false;
        CompactFormatter.end_object_key(writer)
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if self.in_key {
            self.key.push_str(fragment);
        }
        CompactFormatter.write_string_fragment(writer, fragment)
    }

    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        // The array is the value of the key just written, if any; its elements start afresh.
        self.arrays.push(self.key == CHANGES_KEY);
        self.key.clear();
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
        self.key.clear();
        CompactFormatter.begin_object(writer)
    }
}

/// Calls `visit` with the runs of `bytes` between newlines (the bytes the seal covers).
pub(crate) fn without_newlines(bytes: &[u8], mut visit: impl FnMut(&[u8])) {
    let mut start = 0;
    for newline in memchr::memchr_iter(b'\n', bytes) {
        if newline > start {
            visit(&bytes[start..newline]);
        }
        start = newline + 1;
    }
    if start < bytes.len() {
        visit(&bytes[start..]);
    }
}
