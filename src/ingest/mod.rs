//! Ingest doors: protocols in, samples out through the storage
//! [`Appender`](crate::storage::Appender). Parsers are pure; sockets and
//! HTTP handlers live next to them or in `http`.

pub mod statsd;
pub mod text;
