//! Prometheus-format recording and alerting rules: rule-file loading and
//! validation, group scheduling, recording-rule writes, the alert state
//! machine and Go-compatible templates. Rules are handed a query function
//! and a notify function; they know nothing of storage internals or HTTP.

pub mod duration;
pub mod file;
pub mod template;
