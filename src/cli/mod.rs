//! The work behind the `watchpost` subcommands other than `serve`: a small
//! HTTP client for `watchpost query`, result tables, and the offline TSDB
//! tools. `main.rs` parses flags and calls in here; nothing in this module
//! reads flags or the environment itself.

pub mod client;
pub mod query;
pub mod tsdb;
