//! engine-mapping
