//! engine-executor
