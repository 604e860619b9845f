//! engine-state
