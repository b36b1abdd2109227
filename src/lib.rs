//! Watchpost: a single-node monitoring server (StatsD, remote write,
//! Pushgateway-style pushes and text imports in; an embedded TSDB; PromQL,
//! rules and alert delivery out; the Prometheus HTTP API on top).
//!
//! Dependencies point one way:
//! `ingest -> storage <- promql <- rules -> notify`, with `http` on top.
//! Ingest writes only through [`storage::Appender`]; PromQL reads only
//! through [`storage::Querier`]; rules get a query function and a notify
//! function; only `http` knows JSON.

#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod http;
pub mod ingest;
pub mod model;
pub mod notify;
pub mod promql;
pub mod rules;
pub mod storage;
