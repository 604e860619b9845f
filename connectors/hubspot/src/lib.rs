//! connector-hubspot
