//! engine-cli
