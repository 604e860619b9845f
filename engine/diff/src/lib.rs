//! engine-diff
