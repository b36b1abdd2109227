//! Query-side configuration shared by the PromQL API handlers.

use std::time::Duration;

/// Limits and defaults for the query API.
#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// Timeout when the request gives none, and the cap on any it gives.
    pub timeout: Duration,
    /// Largest number of series `/api/v1/series` returns without `limit`.
    pub max_series_response: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            timeout: Duration::from_secs(120),
            max_series_response: 1_000_000,
        }
    }
}
