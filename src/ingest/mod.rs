//! Ingestion doors. Each submodule decodes and validates one wire format and
//! writes only through [`crate::storage::Appender`]; sockets and HTTP live
//! elsewhere (the `http` module calls these libraries).

pub mod otlp;
pub mod pushgateway;
pub mod remote_write;

#[cfg(test)]
pub(crate) mod testutil;
