//! Lists (crm-lists-v3.json).

use crate::registry::ObjectType;

/// The portal's lists and their memberships.
#[derive(Debug, Default)]
pub(crate) struct Lists {}

impl Lists {
    /// A fresh portal: no lists (ids keep increasing).
    pub(crate) fn clear(&mut self) {}

    /// Removes an archived record from every list it was in.
    pub(crate) fn forget_record(&mut self, _object: ObjectType, _id: u64) {}
}
