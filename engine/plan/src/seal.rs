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

    /// True when the plan's digest matches its content under `key`.
    pub fn seal_holds(&self, key: &[u8; 32]) -> bool {
        !self.digest.is_empty()
            && constant_time_eq(self.digest.as_bytes(), digest(self, key).as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
