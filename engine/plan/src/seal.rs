//! The saved plan's seal: a keyed BLAKE3 digest over the plan's content.
//!
//! The key is a random secret kept in the state (never in the plan), so a plan is bound to the
//! state that made it: its lineage, each sync's base generation, every row and value. Any edit
//! of a saved plan (a value, an injected row, a property list, a sync name) breaks the seal,
//! and `engine apply PLAN` refuses it before anything else happens.

use crate::Plan;

/// Computes the digest of `plan` under `key`, ignoring the plan's own `digest` field.
pub fn digest(plan: &Plan, key: &[u8; 32]) -> String {
    let mut unsealed = plan.clone();
    unsealed.digest = String::new();
    // serde_json writes struct fields in declaration order, so the bytes are stable; they are
    // streamed into the hash, changes read a chunk at a time. A change file that cannot be
    // read gives a digest that matches nothing.
    // serde_json writes in small pieces; BLAKE3 is fast on large ones, so they are gathered.
    let mut hasher = blake3::Hasher::new_keyed(key);
    let mut buffered = std::io::BufWriter::with_capacity(1 << 16, &mut hasher);
    if serde_json::to_writer(&mut buffered, &unsealed).is_err()
        || std::io::Write::flush(&mut buffered).is_err()
    {
        return String::new();
    }
    drop(buffered);
    hasher.finalize().to_hex().to_string()
}

impl Plan {
    /// Seals the plan with the state's key (sets [`Plan::digest`]).
    pub fn seal(&mut self, key: &[u8; 32]) {
        self.digest = digest(self, key);
    }

    /// Writes the plan to `path` as a saved plan, sealed with `key`, in one pass over its
    /// changes: the compact document with an empty digest, in the line layout of
    /// [`crate::layout`], goes to the file and (without its newlines) to the hasher at once, then the digest is written between the empty quotes at the end (the digest is
    /// the document's last field). The file is written beside `path` and renamed into place,
    /// so `path` holds a whole plan or nothing. Sets [`Plan::digest`].
    pub fn save_sealed(&mut self, path: &std::path::Path, key: &[u8; 32]) -> std::io::Result<()> {
        use std::io::{Seek, Write};
        self.digest.clear();
        let tmp = path.with_extension("tmp");
        let written = (|| {
            let mut hasher = blake3::Hasher::new_keyed(key);
            let mut file = fs_err::File::create(&tmp)?;
            {
                let both = Both {
                    file: &mut file,
                    hasher: &mut hasher,
                };
                let mut out = std::io::BufWriter::with_capacity(1 << 16, both);
                self.write_lines(&mut out)?;
                out.flush()?;
            }
            let digest = hasher.finalize().to_hex().to_string();
            // The document ends with `"digest":""}`: drop the closing `"}` and write the
            // digest, the quote and the brace back.
            let length = file.metadata()?.len();
            file.set_len(length.saturating_sub(2))?;
            file.seek(std::io::SeekFrom::End(0))?;
            file.write_all(format!("{digest}\"}}\n").as_bytes())?;
            fs_err::rename(&tmp, path)?;
            Ok(digest)
        })();
        match written {
            Ok(digest) => {
                self.digest = digest;
                Ok(())
            }
            Err(e) => {
                let _ = fs_err::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// True when the plan's digest matches its content under `key`.
    pub fn seal_holds(&self, key: &[u8; 32]) -> bool {
        !self.digest.is_empty()
            && constant_time_eq(self.digest.as_bytes(), digest(self, key).as_bytes())
    }
}

/// Verifies a saved plan from the bytes of its file as they are read, without serializing the
/// plan again.
///
/// `engine plan --out` writes exactly the bytes the digest is computed over, with newlines
/// between row changes (left out of the hash, see [`crate::layout`]), the empty `"digest":""`
/// at the end filled in, and a newline. So the digest of the file is the keyed
/// hash of everything before the last `,"digest":"…"}`, followed by `,"digest":""}`. The last
/// bytes are held back from the hasher until the end, when that field can be found; a file
/// that does not end that way gets no verdict, and the caller checks it the slow way.
pub(crate) struct FileSeal {
    hasher: blake3::Hasher,
    /// The bytes seen and not hashed yet: at least the last [`HELD_BACK`] of them.
    tail: Vec<u8>,
}

/// How many of the last bytes are held back: the digest field and some whitespace.
const HELD_BACK: usize = 256;

/// The digest field as the engine writes it, before its value.
const DIGEST_FIELD: &[u8] = b",\"digest\":\"";

impl FileSeal {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        FileSeal {
            hasher: blake3::Hasher::new_keyed(key),
            tail: Vec::with_capacity(HASH_BLOCK + 2 * HELD_BACK),
        }
    }

    /// True or false when the file ends with the engine's digest field; None otherwise.
    pub(crate) fn verdict(mut self) -> Option<bool> {
        let (at, claimed) = digest_field(&self.tail)?;
        let claimed = claimed.to_vec();
        self.hasher.update(&self.tail[..at]);
        self.hasher.update(b",\"digest\":\"\"}");
        let actual = self.hasher.finalize().to_hex();
        Some(constant_time_eq(&claimed, actual.as_bytes()))
    }
}

/// Finds the digest field a saved plan ends with (`,"digest":"<64 hex>"}` then whitespace) in
/// `tail`, the file's last bytes: where the field starts, and the claimed digest.
pub(crate) fn digest_field(tail: &[u8]) -> Option<(usize, &[u8])> {
    let at = tail
        .windows(DIGEST_FIELD.len())
        .rposition(|w| w == DIGEST_FIELD)?;
    let rest = &tail[at + DIGEST_FIELD.len()..];
    let hex_len = rest.iter().position(|b| *b == b'"')?;
    let (claimed, end) = rest.split_at(hex_len);
    let well_formed = hex_len == 64
        && claimed.iter().all(u8::is_ascii_hexdigit)
        && end.starts_with(b"\"}")
        && end[2..].iter().all(u8::is_ascii_whitespace);
    well_formed.then_some((at, claimed))
}

impl std::io::Write for FileSeal {
    /// Takes the file's bytes; its newlines are layout, not content, and are left out.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::layout::without_newlines(buf, |run| self.absorb(run));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl FileSeal {
    /// Gathers bytes and hashes them in large blocks (BLAKE3 is fastest on those), always
    /// keeping the last [`HELD_BACK`] bytes unhashed for [`FileSeal::verdict`].
    fn absorb(&mut self, buf: &[u8]) {
        self.tail.extend_from_slice(buf);
        if self.tail.len() >= HASH_BLOCK + HELD_BACK {
            let hashed = self.tail.len() - HELD_BACK;
            self.hasher.update(&self.tail[..hashed]);
            self.tail.copy_within(hashed.., 0);
            self.tail.truncate(HELD_BACK);
        }
    }
}

/// How many bytes [`FileSeal`] gathers before it hashes them.
const HASH_BLOCK: usize = 1 << 16;

/// Writes to a file and a hasher at once.
struct Both<'a> {
    file: &'a mut fs_err::File,
    hasher: &'a mut blake3::Hasher,
}

impl std::io::Write for Both<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        crate::layout::without_newlines(&buf[..n], |run| {
            self.hasher.update(run);
        });
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
