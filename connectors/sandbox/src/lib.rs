//! engine-sandbox
