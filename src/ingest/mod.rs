//! Ingest doors: protocols in, samples out through the storage
//! [`Appender`](crate::storage::Appender). Parsers and decoders are pure;
//! sockets and HTTP handlers live next to them or in `http`.

pub mod otlp;
pub mod pushgateway;
pub mod remote_write;
pub mod statsd;
pub mod text;

#[cfg(test)]
pub(crate) mod testutil;
