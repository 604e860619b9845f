//! engine-plan
