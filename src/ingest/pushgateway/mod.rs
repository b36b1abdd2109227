//! Pushgateway.
