//! engine-models
