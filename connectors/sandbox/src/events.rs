//! Custom behavioural events.

/// Event definitions and sent events.
#[derive(Debug, Default)]
pub(crate) struct Events {}

impl Events {
    /// A fresh portal: no definitions, no events.
    pub(crate) fn clear(&mut self) {}
}
