//! Owners.

/// The portal's owners.
#[derive(Debug, Default)]
pub(crate) struct Owners {}
