//! engine-spec
