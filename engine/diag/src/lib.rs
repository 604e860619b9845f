//! engine-diag
