//! The row fingerprint: a versioned, canonical hash of a row's mapped values.

use xxhash_rust::xxh3::Xxh3;

/// Bumped when the encoding below changes, so old snapshots are recomputed rather than
/// reported as "everything changed".
pub const FP_VERSION: u32 = 1;

/// XXH3-128 over the non-null `(property, value)` pairs in mapping order, each length-prefixed
/// so no two different rows encode alike. Null values are left out: a property whose value is
/// null (and a property that is not mapped at all) contribute nothing, so adding a mapping that
/// is null everywhere does not mark every row as changed.
pub fn fingerprint_row<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> [u8; 16] {
    let mut hasher = Xxh3::new();
    for (property, value) in pairs {
        if let Some(value) = value {
            hasher.update(&(property.len() as u64).to_le_bytes());
            hasher.update(property.as_bytes());
            hasher.update(&(value.len() as u64).to_le_bytes());
            hasher.update(value.as_bytes());
        }
    }
    hasher.digest128().to_le_bytes()
}
