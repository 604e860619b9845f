//! The look-up cache connectors keep between runs (association targets found by a unique
//! property), backed by the state's `lookups` table.
//!
//! A failing cache never fails an apply: a read that fails is a miss (the targets are looked
//! up), a write that fails is logged.

use std::collections::HashMap;
use std::time::Duration;

use connector_core::LookupCache;
use engine_state::LookupStore;

/// How long a found record id is trusted: a record whose unique value moved to another record
/// within this time may still be linked by its old id (HubSpot refusing a link to a deleted
/// record makes the engine look the value up again at once).
pub(crate) const LOOKUP_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// [`LookupCache`] over the state's [`LookupStore`].
#[derive(Debug)]
pub(crate) struct StateLookups(pub(crate) LookupStore);

impl LookupCache for StateLookups {
    fn get(&self, scope: &str, values: &[String]) -> HashMap<String, String> {
        self.0.get(scope, values).unwrap_or_else(|error| {
            tracing::warn!(%error, "The look-up cache could not be read; looking up instead.");
            HashMap::new()
        })
    }

    fn put(&self, scope: &str, found: &[(String, String)]) {
        if let Err(error) = self.0.put(scope, found) {
            tracing::warn!(%error, "The look-up cache could not be written.");
        }
    }

    fn forget(&self, scope: &str, values: &[String]) {
        if let Err(error) = self.0.forget(scope, values) {
            tracing::warn!(%error, "The look-up cache could not forget stale entries.");
        }
    }
}
