//! The evaluator proper. Every expression is evaluated once over a whole
//! step grid (one step for instant queries): instant-vector values are
//! dense per-step columns ([`Series`]), so binary operators, aggregations and
//! functions work series by series and compute label transformations once,
//! not once per step.
//!
//! Files are split by function family, like VictoriaMetrics's evaluator:
//! `selector` (storage access, lookback, windows, subqueries), `rollup`
//! (range-vector functions), `aggregate`, `binary`, `functions` (instant
//! functions), `histogram` (`histogram_quantile`/`histogram_fraction`),
//! `stream` (aggregations over plain selectors folded series by series from
//! `Querier::select_visit`, without materialising the selection).

mod aggregate;
mod binary;
mod functions;
mod histogram;
mod histogram_fast;
mod info;
mod rollup;
mod selector;
mod stream;

#[cfg(test)]
mod fast_tests;

use std::collections::HashMap;
use std::time::Instant;

use crate::model::{Labels, METRIC_NAME, Sample};
use crate::storage::Querier;

use super::ast::{AtModifier, Expr, UnaryOp};
use super::engine::{EngineOptions, EvalError};
use super::value::{EvalResult, RangeSeries, Value, VectorSample};

/// The evaluation grid: `start, start + step, ... <= end` (ms). `n == 0`
/// when `end < start` (an empty subquery range).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Grid {
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub n: usize,
}

impl Grid {
    pub(crate) fn new(start: i64, end: i64, step: i64) -> Grid {
        let n = if end < start {
            0
        } else {
            ((end - start) / step) as usize + 1
        };
        Grid {
            start,
            end,
            step,
            n,
        }
    }
    /// Timestamp (ms) of step `i`.
    #[inline]
    pub(crate) fn t(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }
}

/// An instant vector over all steps of a grid: one label set, one value
/// slot per step (`None` = no sample at that step).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub labels: Labels,
    /// Delayed name removal: `__name__` is still in `labels` but is removed
    /// when the query finishes.
    pub drop_name: bool,
    pub vals: Vec<Option<f64>>,
}

/// Raw samples of one series (stale markers removed), for range functions
/// and for range-vector results.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RangeData {
    pub labels: Labels,
    pub drop_name: bool,
    pub ts: Vec<i64>,
    pub vs: Vec<f64>,
}

/// Intermediate values.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    Str(String),
    Vector(Vec<Series>),
    /// A range vector at a single evaluation time (instant queries only).
    Matrix(Vec<RangeData>),
}

impl Val {
    fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Str(_) => "string",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
        }
    }
}

/// Per-query state: limits, deadline, annotations.
pub(crate) struct Ctx<'a> {
    pub opts: &'a EngineOptions,
    pub q: &'a dyn Querier,
    /// Start and end of the top-level query (for `@ start()` / `@ end()`).
    pub query_start: i64,
    pub query_end: i64,
    /// Step of the top-level query in ms (0 for instant queries).
    pub query_step: i64,
    deadline: Instant,
    samples: usize,
    series: usize,
    warnings: Vec<String>,
    infos: Vec<String>,
}

/// Error text Prometheus uses when two output series collapse into one.
pub(crate) const DUP_LABELSET: &str = "vector cannot contain metrics with the same labelset";

impl<'a> Ctx<'a> {
    pub(crate) fn check_deadline(&self) -> Result<(), EvalError> {
        if Instant::now() > self.deadline {
            return Err(EvalError::Timeout("query execution"));
        }
        Ok(())
    }

    /// The query's deadline.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Samples the query may still charge before `max_samples` is passed.
    pub(crate) fn samples_room(&self) -> usize {
        self.opts.max_samples.saturating_sub(self.samples)
    }

    pub(crate) fn add_samples(&mut self, n: usize) -> Result<(), EvalError> {
        self.samples += n;
        if self.samples > self.opts.max_samples {
            return Err(EvalError::TooManySamples(
                "query execution",
                self.opts.max_samples,
            ));
        }
        Ok(())
    }

    pub(crate) fn add_series(&mut self, n: usize) -> Result<(), EvalError> {
        self.series += n;
        if self.series > self.opts.max_series {
            return Err(EvalError::TooManySeries(self.opts.max_series));
        }
        Ok(())
    }

    /// Adds a `PromQL warning: ...` annotation (de-duplicated).
    pub(crate) fn warn(&mut self, msg: impl Into<String>) {
        let m = format!("PromQL warning: {}", msg.into());
        if !self.warnings.contains(&m) {
            self.warnings.push(m);
        }
    }

    /// Adds a `PromQL info: ...` annotation (de-duplicated).
    pub(crate) fn info(&mut self, msg: impl Into<String>) {
        let m = format!("PromQL info: {}", msg.into());
        if !self.infos.contains(&m) {
            self.infos.push(m);
        }
    }

    /// Resolves an `@` modifier to a timestamp (ms).
    pub(crate) fn at_time(&self, at: &AtModifier) -> i64 {
        match at {
            AtModifier::Timestamp(t) => *t,
            AtModifier::Start => self.query_start,
            AtModifier::End => self.query_end,
        }
    }

    /// Evaluates `e` over `g`.
    pub(crate) fn eval(&mut self, e: &Expr, g: &Grid) -> Result<Val, EvalError> {
        self.check_deadline()?;
        match e {
            Expr::NumberLiteral(v) => Ok(Val::Scalar(vec![*v; g.n])),
            Expr::StringLiteral(s) => Ok(Val::Str(s.clone())),
            Expr::Paren(inner) => self.eval(inner, g),
            Expr::VectorSelector(vs) if vs.anchored => Err(EvalError::BadData(
                "the anchored modifier can only be used on range selectors".into(),
            )),
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.vector_selector(vs, g, false)?)),
            Expr::MatrixSelector(ms) if ms.selector.smoothed || ms.selector.anchored => {
                Err(EvalError::BadData(
                    "the experimental anchored/smoothed modifiers are not supported by this engine"
                        .into(),
                ))
            }
            Expr::MatrixSelector(ms) => {
                let t = g.start;
                Ok(Val::Matrix(self.matrix_at(ms, t)?))
            }
            Expr::Subquery(sq) => Ok(Val::Matrix(self.subquery_at(sq, g.start)?)),
            Expr::Unary(op, inner) => {
                let v = self.eval(inner, g)?;
                match (op, v) {
                    (UnaryOp::Pos, v) => Ok(v),
                    (UnaryOp::Neg, Val::Scalar(mut s)) => {
                        s.iter_mut().for_each(|x| *x = -*x);
                        Ok(Val::Scalar(s))
                    }
                    (UnaryOp::Neg, Val::Vector(mut vs)) => {
                        for s in &mut vs {
                            s.drop_name = true;
                            s.vals.iter_mut().flatten().for_each(|x| *x = -*x);
                        }
                        Ok(Val::Vector(vs))
                    }
                    (_, other) => Err(EvalError::BadData(format!(
                        "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                        other.type_name()
                    ))),
                }
            }
            Expr::Binary(b) => self.eval_binary(b, g),
            Expr::Call(c) => self.eval_call(c, g),
            Expr::Aggregate(a) => self.eval_aggregate(a, g),
        }
    }

    /// Evaluates `e`, which must be an instant vector.
    pub(crate) fn eval_vector(&mut self, e: &Expr, g: &Grid) -> Result<Vec<Series>, EvalError> {
        match self.eval(e, g)? {
            Val::Vector(v) => Ok(v),
            other => Err(EvalError::BadData(format!(
                "expected type instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates `e`, which must be a scalar.
    pub(crate) fn eval_scalar(&mut self, e: &Expr, g: &Grid) -> Result<Vec<f64>, EvalError> {
        match self.eval(e, g)? {
            Val::Scalar(v) => Ok(v),
            other => Err(EvalError::BadData(format!(
                "expected type scalar, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates `e`, which must be a string literal (possibly parenthesised).
    pub(crate) fn eval_string(&mut self, e: &Expr, g: &Grid) -> Result<String, EvalError> {
        match self.eval(e, g)? {
            Val::Str(s) => Ok(s),
            other => Err(EvalError::BadData(format!(
                "expected type string, got {}",
                other.type_name()
            ))),
        }
    }
}

/// Collects output series keyed by label set; two outputs with the same
/// labels at the same step are an error, as in Prometheus's range
/// evaluation.
pub(crate) struct Collector {
    n: usize,
    index: HashMap<Labels, usize>,
    pub out: Vec<Series>,
}

impl Collector {
    pub(crate) fn new(n: usize) -> Self {
        Collector {
            n,
            index: HashMap::new(),
            out: Vec::new(),
        }
    }

    /// The output slot for `labels`, created on first use.
    pub(crate) fn slot(&mut self, labels: Labels, drop_name: bool) -> usize {
        if let Some(&i) = self.index.get(&labels) {
            if drop_name {
                self.out[i].drop_name = true;
            }
            return i;
        }
        let i = self.out.len();
        self.index.insert(labels.clone(), i);
        self.out.push(Series {
            labels,
            drop_name,
            vals: vec![None; self.n],
        });
        i
    }

    /// Sets a value; fails when the slot already has one at `step`.
    pub(crate) fn set(&mut self, slot: usize, step: usize, v: f64) -> Result<(), EvalError> {
        let cell = &mut self.out[slot].vals[step];
        if cell.is_some() {
            return Err(EvalError::Execution(DUP_LABELSET.into()));
        }
        *cell = Some(v);
        Ok(())
    }

    /// The collected series, leaving out those with no value at all.
    pub(crate) fn finish(self) -> Vec<Series> {
        self.out
            .into_iter()
            .filter(|s| s.vals.iter().any(Option::is_some))
            .collect()
    }
}

/// Applies delayed name removal and merges series that end up with the same
/// labels (an error if they overlap in a step).
pub(crate) fn finalize_names(mut series: Vec<Series>, n: usize) -> Result<Vec<Series>, EvalError> {
    if !series.iter().any(|s| s.drop_name) {
        return Ok(series);
    }
    // Usually no two series collide once names are dropped (`rate(x[5m])`
    // keeps its other labels): check that with one sort of indices and
    // keep the series as they are, without hashing or copying values.
    for s in &mut series {
        if s.drop_name {
            s.labels = drop_name(&s.labels);
            s.drop_name = false;
        }
    }
    let mut idx: Vec<usize> = (0..series.len()).collect();
    idx.sort_unstable_by(|&a, &b| series[a].labels.cmp(&series[b].labels));
    if !idx
        .windows(2)
        .any(|w| series[w[0]].labels == series[w[1]].labels)
    {
        return Ok(series);
    }
    let mut c = Collector::new(n);
    for s in series {
        let labels = if s.drop_name {
            drop_name(&s.labels)
        } else {
            s.labels
        };
        let slot = c.slot(labels, false);
        for (i, v) in s.vals.into_iter().enumerate() {
            if let Some(v) = v {
                c.set(slot, i, v)?;
            }
        }
    }
    Ok(c.finish())
}

/// Runs a query over the grid `[start, end]` with `step`; `instant` selects
/// the output shape.
pub(crate) fn run(
    opts: &EngineOptions,
    q: &dyn Querier,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
    instant: bool,
) -> Result<EvalResult, EvalError> {
    let mut ctx = Ctx {
        opts,
        q,
        query_start: start,
        query_end: end,
        query_step: if instant { 0 } else { step },
        deadline: Instant::now() + opts.timeout,
        samples: 0,
        series: 0,
        warnings: Vec::new(),
        infos: Vec::new(),
    };
    // Experimental duration expressions using step()/range() become plain
    // durations for this query's step and range.
    let resolved;
    let expr = if has_duration_exprs(expr) {
        let mut e = expr.clone();
        let query_step = if instant { 0 } else { step };
        crate::promql::resolve_durations(&mut e, query_step, end - start)
            .map_err(EvalError::BadData)?;
        resolved = e;
        &resolved
    } else {
        expr
    };
    check_time_bounds(expr, &[start, end, step])?;
    let g = Grid::new(start, end, step);
    if !instant
        && matches!(
            strip_parens(expr),
            Expr::MatrixSelector(_) | Expr::Subquery(_)
        )
    {
        return Err(EvalError::BadData(
            "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
        ));
    }
    let val = ctx.eval(expr, &g)?;
    let value = match (val, instant) {
        (Val::Scalar(v), true) => Value::Scalar { t: start, v: v[0] },
        (Val::Str(s), true) => Value::String { t: start, s },
        (Val::Vector(vs), true) => {
            let vs = finalize_names(vs, 1)?;
            Value::Vector(
                vs.into_iter()
                    .filter_map(|s| {
                        s.vals[0].map(|v| VectorSample {
                            labels: s.labels,
                            t: start,
                            v,
                        })
                    })
                    .collect(),
            )
        }
        (Val::Matrix(m), true) => {
            let mut out: Vec<RangeSeries> = m
                .into_iter()
                .map(|r| RangeSeries {
                    labels: if r.drop_name {
                        drop_name(&r.labels)
                    } else {
                        r.labels
                    },
                    samples: r
                        .ts
                        .iter()
                        .zip(&r.vs)
                        .map(|(&t, &v)| Sample { t, v })
                        .collect(),
                })
                .filter(|r| !r.samples.is_empty())
                .collect();
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            if out.windows(2).any(|w| w[0].labels == w[1].labels) {
                return Err(EvalError::Execution(DUP_LABELSET.into()));
            }
            Value::Matrix(out)
        }
        (Val::Scalar(v), false) => Value::Matrix(vec![RangeSeries {
            labels: Labels::empty(),
            samples: v
                .iter()
                .enumerate()
                .map(|(i, &v)| Sample { t: g.t(i), v })
                .collect(),
        }]),
        (Val::Vector(vs), false) => {
            let vs = finalize_names(vs, g.n)?;
            let mut out: Vec<RangeSeries> = vs
                .into_iter()
                .map(|s| RangeSeries {
                    samples: s
                        .vals
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| v.map(|v| Sample { t: g.t(i), v }))
                        .collect(),
                    labels: s.labels,
                })
                .filter(|r| !r.samples.is_empty())
                .collect();
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            Value::Matrix(out)
        }
        (other, false) => {
            return Err(EvalError::BadData(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                other.type_name()
            )));
        }
    };
    let points = match &value {
        Value::Vector(v) => v.len(),
        Value::Matrix(m) => m.iter().map(|s| s.samples.len()).sum(),
        _ => 1,
    };
    ctx.add_samples(points)?;
    Ok(EvalResult {
        value,
        warnings: ctx.warnings,
        infos: ctx.infos,
    })
}

/// Labels removed together when an operation drops the metric name:
/// `__name__` and the `__type__`/`__unit__` metadata labels.
pub(crate) const NAME_LABELS: [&str; 3] = [METRIC_NAME, "__type__", "__unit__"];

/// Removes the name labels from a builder.
pub(crate) fn drop_name_labels(b: &mut crate::model::LabelsBuilder) {
    for n in NAME_LABELS {
        b.del(n);
    }
}

/// A copy of `l` without the name labels.
pub(crate) fn drop_name(l: &Labels) -> Labels {
    if NAME_LABELS.iter().any(|n| l.get(n).is_some()) {
        l.drop_names(&NAME_LABELS)
    } else {
        l.clone()
    }
}

/// Largest magnitude (ms, about 31,700 years) accepted for query times,
/// offsets, ranges, steps and `@` timestamps. Keeping every input below it
/// means the time arithmetic of nested selectors and subqueries cannot
/// overflow an `i64`.
const MAX_TIME_MAGNITUDE_MS: i64 = 1_000_000_000_000_000;

/// True when the tree holds duration expressions still to be resolved.
fn has_duration_exprs(e: &Expr) -> bool {
    match e {
        Expr::VectorSelector(vs) => vs.offset_expr.is_some(),
        Expr::MatrixSelector(ms) => ms.range_expr.is_some() || ms.selector.offset_expr.is_some(),
        Expr::Subquery(sq) => {
            sq.range_expr.is_some()
                || sq.step_expr.is_some()
                || sq.offset_expr.is_some()
                || has_duration_exprs(&sq.expr)
        }
        Expr::Paren(x) | Expr::Unary(_, x) => has_duration_exprs(x),
        Expr::Binary(b) => has_duration_exprs(&b.lhs) || has_duration_exprs(&b.rhs),
        Expr::Call(c) => c.args.iter().any(has_duration_exprs),
        Expr::Aggregate(a) => {
            has_duration_exprs(&a.expr) || a.param.as_deref().is_some_and(has_duration_exprs)
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => false,
    }
}

fn check_time_bounds(e: &Expr, extra: &[i64]) -> Result<(), EvalError> {
    fn visit(e: &Expr, out: &mut Vec<i64>) {
        let at = |a: &Option<AtModifier>, out: &mut Vec<i64>| {
            if let Some(AtModifier::Timestamp(t)) = a {
                out.push(*t);
            }
        };
        match e {
            Expr::VectorSelector(vs) => {
                out.push(vs.offset);
                at(&vs.at, out);
            }
            Expr::MatrixSelector(ms) => {
                out.extend([ms.selector.offset, ms.range]);
                at(&ms.selector.at, out);
            }
            Expr::Subquery(sq) => {
                out.extend([sq.offset, sq.range, sq.step.unwrap_or(0)]);
                at(&sq.at, out);
                visit(&sq.expr, out);
            }
            Expr::Paren(x) | Expr::Unary(_, x) => visit(x, out),
            Expr::Binary(b) => {
                visit(&b.lhs, out);
                visit(&b.rhs, out);
            }
            Expr::Call(c) => c.args.iter().for_each(|a| visit(a, out)),
            Expr::Aggregate(a) => {
                visit(&a.expr, out);
                if let Some(p) = &a.param {
                    visit(p, out);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        }
    }
    let mut times = extra.to_vec();
    visit(e, &mut times);
    if let Some(t) = times
        .iter()
        .find(|t| t.unsigned_abs() > MAX_TIME_MAGNITUDE_MS as u64)
    {
        return Err(EvalError::BadData(format!(
            "time, offset, range or step of {t} ms is out of the supported range (±{MAX_TIME_MAGNITUDE_MS} ms)"
        )));
    }
    Ok(())
}

/// Removes any number of enclosing parentheses.
pub(crate) fn strip_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(inner) = e {
        e = inner;
    }
    e
}

/// Go's `math.Max`: NaN wins, `+0` beats `-0`.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { b } else { a }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`: NaN wins, `-0` beats `+0`.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

/// Kahan-Neumaier summation step, as Prometheus's `kahanSumInc`.
#[inline]
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Formats a float like Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub(crate) fn go_format_f(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

/// Formats a float like Go's `fmt` `%v` (shortest representation; exponent
/// form below 1e-4 and from 1e21 on)
pub(crate) fn go_format_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..21).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests;
