//! OTLP metrics.
