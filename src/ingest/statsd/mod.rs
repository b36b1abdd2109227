//! The StatsD/DogStatsD door (spec `statsd.md`).
//!
//! - [`parse`]: the pure line grammar (no I/O, borrowed slices);
//! - [`aggregate`]: per-window aggregation into counters, gauges,
//!   histograms and set gauges, written through the storage `Appender`;
//! - [`mapping`]: statsd_exporter-style mapping rules;
//! - [`metrics`]: the door's self-metrics;
//! - [`listener`]: UDP, TCP and unix datagram sockets, the worker and the
//!   wall-clock-aligned flusher.
//!
//! Wiring (what `watchpost serve` does):
//!
//! ```no_run
//! use std::sync::Arc;
//! use watchpost::ingest::statsd::{StatsdConfig, StatsdServer};
//! # fn wire(db: Arc<dyn watchpost::storage::Appendable>) -> Result<(), Box<dyn std::error::Error>> {
//! let server = StatsdServer::start(StatsdConfig::default(), db, Arc::new(watchpost::model::SystemClock))?;
//! println!("{:?}", server.local_addrs());
//! server.shutdown()?; // final flush included
//! # Ok(()) }
//! ```

pub mod aggregate;
pub mod listener;
pub mod mapping;
pub mod metrics;
pub mod parse;
mod shard;

pub use aggregate::{
    Aggregator, AggregatorConfig, DEFAULT_BUCKETS, FlushError, FlushSample, GaugeSign,
};
pub use listener::{
    FlushReport, LocalAddrs, StatsdConfig, StatsdError, StatsdFlushError, StatsdHandle,
    StatsdServer, parse_listen_addrs,
};
pub use mapping::{MappingConfig, MappingError};
pub use metrics::StatsdMetrics;
pub use parse::{BadReason, Line, LineParser, MetricType, Parsed, format_line, parse_line};
