//! The PromQL engine's public face: options, limits, errors and the two
//! entry points ([`Engine::instant`], [`Engine::range`]).
//!
//! Semantics follow Prometheus 3.x: left-open lookback and range windows
//! `(t - d, t]`, a 5 minute default lookback, staleness markers that end a
//! series, delayed `__name__` removal, `@` and negative offsets. The work is
//! done in the private `eval` module, split by function family.
//!
//! Range queries select each series once for the whole range and slide over
//! the decoded columns; no chunk is read twice for different steps.
//!
//! # Compatibility notes
//!
//! - Windows are left-open, `(t - range, t]` for range selectors and
//!   `(t - lookback, t]` for instant selectors, as in Prometheus 3.x.
//!   Prometheus 2.x (Debian ships 2.42) used closed windows, so a sample
//!   exactly at `t - range` is counted there and not here; queries evaluated
//!   off the sample grid give the same results in both.
//! - `__name__` removal is delayed to the end of the query (3.x behaviour):
//!   `label_replace(rate(x[5m]), "__name__", ...)` can keep a name, and
//!   series that only differ by a to-be-dropped name collide at the end.
//!   `__type__`/`__unit__` labels are dropped together with the name.
//! - Annotations carry Prometheus's texts but no `(line:col)` position (the
//!   AST has no positions).
//! - Experimental 3.x features are evaluated: `anchored`/`smoothed` range
//!   modifiers (and smoothed instant selectors), `fill()`/`fill_left()`/
//!   `fill_right()`, duration expressions with `step()`/`range()`/`min_of()`/
//!   `max_of()` (resolved per query), `info()`, `limitk`/`limit_ratio`,
//!   `histogram_quantiles`, `sort_by_label*`, `mad_over_time`, `ts_of_*`.
//! - Not supported: native (exponential) histograms and start timestamps.
//! - [`EngineOptions::max_samples`] counts samples read from storage, the
//!   per-step cells of selector and range-function results, and output
//!   points; Prometheus counts peak in-memory samples instead, so the same
//!   limit trips earlier here.

use std::time::Duration;

use crate::storage::{Querier, StorageError};

use super::ast::Expr;
use super::eval;
use super::value::EvalResult;

/// Engine settings. Limits apply per query.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for the latest sample (ms).
    pub lookback_delta_ms: i64,
    /// Maximum number of samples a query may hold: samples read from
    /// storage, per-step cells of intermediate results and output points,
    /// counted in total (Prometheus's `--query.max-samples` counts the peak
    /// instead; this is stricter).
    pub max_samples: usize,
    /// Maximum number of series a query may select from storage in total.
    pub max_series: usize,
    /// Wall-clock budget per query.
    pub timeout: Duration,
    /// Step for subqueries written without one (`x[5m:]`), in ms.
    pub default_subquery_step_ms: i64,
    /// Maximum number of output steps of a range query (Prometheus: 11,000).
    pub max_steps: usize,
    /// Evaluate `histogram_quantile(q, rate(x_bucket[w]))` and
    /// `histogram_quantile(q, sum by (le, ...) (rate(x_bucket[w])))` from
    /// histogram columns (`Querier::select_histograms`) instead of joining
    /// one float series per bucket. Results are identical; off only for
    /// testing that claim.
    pub histogram_fast_path: bool,
    /// Evaluate aggregations of range functions over plain selectors
    /// (`sum by (x) (rate(m[5m]))`), of plain selectors (`count(m)`) and
    /// the `sum by (le, ...)` under `histogram_quantile` by streaming the
    /// series through `Querier::select_visit` into per-group accumulators.
    /// Results equal the materialising path's up to the rounding of one
    /// compensated addition per read worker; off only for testing that.
    pub stream_aggregations: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 300_000,
            max_samples: 50_000_000,
            max_series: 1_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step_ms: 60_000,
            max_steps: 11_000,
            histogram_fast_path: true,
            stream_aggregations: true,
        }
    }
}

/// Why a query failed. `http` maps the variants to Prometheus's `errorType`:
/// `BadData` -> `bad_data` (400), `Execution` -> `execution` (422),
/// `Timeout` -> `timeout` (503), the limits -> `execution` (422),
/// `Storage` -> `internal` (500).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The query or its parameters are invalid (wrong types, bad step, ...).
    #[error("{0}")]
    BadData(String),
    /// The query is valid but could not be evaluated on this data
    /// (duplicate label sets, many-to-many matching, invalid function
    /// arguments found at run time, ...). Texts match Prometheus's.
    #[error("{0}")]
    Execution(String),
    /// The query ran longer than [`EngineOptions::timeout`].
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The query loaded more than [`EngineOptions::max_samples`] samples.
    #[error("query processing would load too many samples into memory in {0} (limit {1})")]
    TooManySamples(&'static str, usize),
    /// The query selected more than [`EngineOptions::max_series`] series.
    #[error("query would select too many series (limit {0})")]
    TooManySeries(usize),
    /// Storage failed.
    #[error("storage error: {0}")]
    Storage(#[from] StorageError),
}

/// The evaluator. Cheap to clone; holds only options.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

impl Engine {
    /// An engine with the given options.
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// The options in use.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `expr` at `t_ms`. The result is a scalar, string, vector, or
    /// (for a range-vector expression such as `x[5m]`) a matrix.
    pub fn instant(
        &self,
        q: &dyn Querier,
        expr: &Expr,
        t_ms: i64,
    ) -> Result<EvalResult, EvalError> {
        eval::run(&self.opts, q, expr, t_ms, t_ms, 1, true)
    }

    /// Evaluates `expr` at `start_ms, start_ms + step_ms, ... <= end_ms`.
    /// The result is always a matrix sorted by label set; scalars become one
    /// series with no labels. Range-vector and string expressions are
    /// rejected with [`EvalError::BadData`].
    pub fn range(
        &self,
        q: &dyn Querier,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<EvalResult, EvalError> {
        if step_ms <= 0 {
            return Err(EvalError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
                    .into(),
            ));
        }
        if end_ms < start_ms {
            return Err(EvalError::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        let steps = ((end_ms - start_ms) / step_ms) as usize + 1;
        if steps > self.opts.max_steps {
            return Err(EvalError::BadData(format!(
                "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
                self.opts.max_steps
            )));
        }
        eval::run(&self.opts, q, expr, start_ms, end_ms, step_ms, false)
    }
}
