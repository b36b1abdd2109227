//! Range-vector functions (`rate`, `*_over_time`, ...): one pass per series
//! over sliding windows.

use crate::model::Matcher;

use super::super::ast::{Call, Expr};
use super::super::engine::EvalError;
use super::selector::{RangeArg, windows};
use super::{Collector, Ctx, Grid, Series, go_format_g, kahan_inc, strip_parens};

/// One window handed to a rollup function.
pub(crate) struct Window<'w> {
    pub ts: &'w [i64],
    pub vs: &'w [f64],
    /// Window start (exclusive) and end (inclusive), ms.
    pub range_start: i64,
    pub range_end: i64,
    /// Window length (ms).
    pub range: i64,
    /// Evaluation time of the step (ms).
    pub t: i64,
}

/// Names of the range-vector functions this module implements.
pub(crate) fn is_rollup(name: &str) -> bool {
    matches!(
        name,
        "rate"
            | "irate"
            | "increase"
            | "delta"
            | "idelta"
            | "deriv"
            | "predict_linear"
            | "resets"
            | "changes"
            | "avg_over_time"
            | "min_over_time"
            | "max_over_time"
            | "sum_over_time"
            | "count_over_time"
            | "quantile_over_time"
            | "stddev_over_time"
            | "stdvar_over_time"
            | "last_over_time"
            | "first_over_time"
            | "present_over_time"
            | "mad_over_time"
            | "absent_over_time"
            | "holt_winters"
            | "double_exponential_smoothing"
            | "ts_of_min_over_time"
            | "ts_of_max_over_time"
            | "ts_of_first_over_time"
            | "ts_of_last_over_time"
    )
}

impl<'a> Ctx<'a> {
    /// Evaluates a call of a range-vector function.
    pub(crate) fn eval_rollup(&mut self, c: &Call, g: &Grid) -> Result<Vec<Series>, EvalError> {
        let name = c.func.as_str();
        // Position of the range argument and scalar parameters per step.
        let (range_idx, params): (usize, Vec<Vec<f64>>) = match name {
            "quantile_over_time" => (1, vec![self.eval_scalar(&c.args[0], g)?]),
            "predict_linear" => (0, vec![self.eval_scalar(&c.args[1], g)?]),
            "holt_winters" | "double_exponential_smoothing" => (
                0,
                vec![
                    self.eval_scalar(&c.args[1], g)?,
                    self.eval_scalar(&c.args[2], g)?,
                ],
            ),
            _ => (0, Vec::new()),
        };
        let arg_expr = c
            .args
            .get(range_idx)
            .ok_or_else(|| EvalError::BadData(format!("wrong number of arguments for {name}")))?;
        if let Expr::MatrixSelector(ms) = strip_parens(arg_expr) {
            check_extended_range(name, ms.selector.anchored, ms.selector.smoothed)?;
        }
        let arg = self.range_arg(arg_expr, g)?;
        if name == "absent_over_time" {
            return Ok(absent_over_time(&arg, arg_expr, g));
        }
        if let Some(q) = params
            .first()
            .filter(|_| name == "quantile_over_time")
            .and_then(|p| p.iter().find(|q| q.is_nan() || **q < 0.0 || **q > 1.0))
        {
            self.warn(format!(
                "quantile value should be between 0 and 1, got {}",
                go_format_g(*q)
            ));
        }
        if name == "holt_winters" || name == "double_exponential_smoothing" {
            for (sf, tf) in params[0].iter().zip(&params[1]) {
                if !(*sf > 0.0 && *sf < 1.0) {
                    return Err(EvalError::Execution(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                    )));
                }
                if !(*tf > 0.0 && *tf < 1.0) {
                    return Err(EvalError::Execution(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                    )));
                }
            }
        }
        let anchored =
            matches!(strip_parens(arg_expr), Expr::MatrixSelector(ms) if ms.selector.anchored);
        let smoothed =
            matches!(strip_parens(arg_expr), Expr::MatrixSelector(ms) if ms.selector.smoothed);
        let f = RollupFn::of(name)
            .ok_or_else(|| EvalError::BadData(format!("unknown function {name}")))?;
        if !anchored && !smoothed && matches!(strip_parens(arg_expr), Expr::MatrixSelector(_)) {
            return self.rollup_plain(f, arg, &params, g);
        }
        let lookback = self.opts.lookback_delta_ms;
        let keep_name = matches!(name, "last_over_time" | "first_over_time");
        let mut scratch = Vec::new();
        let mut col = Collector::new(g.n);
        for s in &arg.data {
            self.check_deadline()?;
            let ws = windows(&s.ts, &arg.ends, arg.range);
            let mut slot = None;
            for (i, &(a, b)) in ws.iter().enumerate() {
                if smoothed {
                    let end = arg.ends[i];
                    let start = end - arg.range;
                    let prev = (a > 0 && s.ts[a - 1] > start - lookback).then(|| a - 1);
                    let next = (b < s.ts.len() && s.ts[b] < end + lookback).then_some(b);
                    // Data must reach the window from both sides: a sample
                    // inside it, or samples both before and after it.
                    let inside = a < b;
                    if !inside && (prev.is_none() || next.is_none()) {
                        continue;
                    }
                    let idx: Vec<usize> = prev.into_iter().chain(a..b).chain(next).collect();
                    if let Some(v) = smoothed_value(name, &s.ts, &s.vs, &idx, start, end, arg.range)
                    {
                        let sl = match slot {
                            Some(sl) => sl,
                            None => {
                                let sl = col.slot(s.labels.clone(), true);
                                slot = Some(sl);
                                sl
                            }
                        };
                        col.set(sl, i, v)?;
                    }
                    continue;
                }
                if a == b {
                    continue;
                }
                if anchored {
                    // Prepend the last sample at or before the window start
                    // (within one lookback) and take plain differences.
                    let start = arg.ends[i] - arg.range;
                    let lo = if a > 0 && s.ts[a - 1] > start - lookback {
                        a - 1
                    } else {
                        a
                    };
                    if let Some(v) = anchored_value(name, &s.vs[lo..b], arg.range) {
                        let sl = match slot {
                            Some(sl) => sl,
                            None => {
                                let sl = col.slot(s.labels.clone(), true);
                                slot = Some(sl);
                                sl
                            }
                        };
                        col.set(sl, i, v)?;
                    }
                    continue;
                }
                let w = Window {
                    ts: &s.ts[a..b],
                    vs: &s.vs[a..b],
                    range_start: arg.ends[i] - arg.range,
                    range_end: arg.ends[i],
                    range: arg.range,
                    t: g.t(i),
                };
                if let Some(v) = f.apply(&w, |k| params[k][i], &mut scratch) {
                    let sl = match slot {
                        Some(sl) => sl,
                        None => {
                            let sl = col.slot(s.labels.clone(), s.drop_name || !keep_name);
                            slot = Some(sl);
                            sl
                        }
                    };
                    col.set(sl, i, v)?;
                }
            }
        }
        let out = col.finish();
        self.add_samples(out.len() * g.n)?;
        Ok(out)
    }

    /// The common case: a range function over a plain matrix selector. The
    /// selector's series have distinct label sets, so each input series
    /// maps to its own output series without any label hashing; window
    /// bounds move forward with two indices (no per-step allocation, no
    /// per-step search) and every step is evaluated once per series.
    fn rollup_plain(
        &mut self,
        f: RollupFn,
        arg: RangeArg,
        params: &[Vec<f64>],
        g: &Grid,
    ) -> Result<Vec<Series>, EvalError> {
        let keep_name = matches!(f, RollupFn::Last | RollupFn::First);
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        let ends = &arg.ends;
        let mut resets = Resets::default();
        for s in arg.data {
            self.check_deadline()?;
            // Allocated at the first value: most series of a sparse
            // selection have none.
            let mut vals: Vec<Option<f64>> = Vec::new();
            let (ts, vs) = (&s.ts[..], &s.vs[..]);
            rollup_series(
                f,
                ts,
                vs,
                ends,
                arg.range,
                params,
                g,
                &mut scratch,
                &mut resets,
                |i, v| {
                    if vals.is_empty() {
                        vals = vec![None; g.n];
                    }
                    vals[i] = Some(v);
                },
            );
            if !vals.is_empty() {
                out.push(Series {
                    labels: s.labels,
                    drop_name: s.drop_name || !keep_name,
                    vals,
                });
            }
        }
        self.add_samples(out.len() * g.n)?;
        Ok(out)
    }
}

/// The sliding pass of a range function over one series: calls
/// `emit(step, value)` for every step with a value, in step order.
/// `params[k][step]` is the function's k-th scalar argument at each step
/// (empty for functions without one). `ends` may be constant (`@`) or
/// increasing, never decreasing, so both window bounds only move forward.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rollup_series(
    f: RollupFn,
    ts: &[i64],
    vs: &[f64],
    ends: &[i64],
    range: i64,
    params: &[Vec<f64>],
    g: &Grid,
    scratch: &mut Vec<f64>,
    resets: &mut Resets,
    mut emit: impl FnMut(usize, f64),
) {
    let counter = f.counts_resets();
    if counter {
        resets.scan(vs);
    }
    let (mut a, mut b) = (0usize, 0usize);
    for (i, &end) in ends.iter().enumerate() {
        while b < ts.len() && ts[b] <= end {
            b += 1;
        }
        let start = end - range;
        while a < b && ts[a] <= start {
            a += 1;
        }
        if a == b {
            continue;
        }
        let w = Window {
            ts: &ts[a..b],
            vs: &vs[a..b],
            range_start: start,
            range_end: end,
            range,
            t: g.t(i),
        };
        let may_reset = counter && resets.within(a, b);
        if let Some(v) = f.apply_hinted(
            &w,
            |k| params.get(k).map_or(f64::NAN, |p| p[i]),
            scratch,
            may_reset,
        ) {
            emit(i, v);
        }
    }
}

/// A range-vector function, resolved once per call instead of matching the
/// name at every step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RollupFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    Resets,
    Changes,
    Avg,
    Sum,
    Count,
    Min,
    Max,
    Last,
    First,
    Present,
    Quantile,
    Stddev,
    Stdvar,
    Mad,
    Smoothing,
    TsOfMin,
    TsOfMax,
    TsOfFirst,
    TsOfLast,
}

impl RollupFn {
    /// The function for `name`; `None` for names evaluated elsewhere
    /// (`absent_over_time`) or unknown.
    pub(crate) fn of(name: &str) -> Option<RollupFn> {
        use RollupFn::*;
        Some(match name {
            "rate" => Rate,
            "increase" => Increase,
            "delta" => Delta,
            "irate" => Irate,
            "idelta" => Idelta,
            "deriv" => Deriv,
            "predict_linear" => PredictLinear,
            "resets" => Resets,
            "changes" => Changes,
            "avg_over_time" => Avg,
            "sum_over_time" => Sum,
            "count_over_time" => Count,
            "min_over_time" => Min,
            "max_over_time" => Max,
            "last_over_time" => Last,
            "first_over_time" => First,
            "present_over_time" => Present,
            "quantile_over_time" => Quantile,
            "stddev_over_time" => Stddev,
            "stdvar_over_time" => Stdvar,
            "mad_over_time" => Mad,
            "holt_winters" | "double_exponential_smoothing" => Smoothing,
            "ts_of_min_over_time" => TsOfMin,
            "ts_of_max_over_time" => TsOfMax,
            "ts_of_first_over_time" => TsOfFirst,
            "ts_of_last_over_time" => TsOfLast,
            _ => return None,
        })
    }

    /// The function's value over one non-empty window. `p(k)` is scalar
    /// parameter `k` at this step; `scratch` is reused by the functions
    /// that sort a copy of the window.
    #[inline]
    pub(crate) fn apply(
        self,
        w: &Window,
        p: impl Fn(usize) -> f64,
        scratch: &mut Vec<f64>,
    ) -> Option<f64> {
        self.apply_hinted(w, p, scratch, true)
    }

    /// True for the functions that look for counter resets (`rate`,
    /// `increase`): callers sliding over a series can find the resets once
    /// ([`Resets`]) and tell each window whether it holds one.
    pub(crate) fn counts_resets(self) -> bool {
        matches!(self, RollupFn::Rate | RollupFn::Increase)
    }

    /// [`apply`](Self::apply), told whether the window may hold a counter
    /// reset (`false` only when the caller knows it holds none; the value
    /// is then the same, without scanning the window).
    #[inline]
    pub(crate) fn apply_hinted(
        self,
        w: &Window,
        p: impl Fn(usize) -> f64,
        scratch: &mut Vec<f64>,
        may_reset: bool,
    ) -> Option<f64> {
        use RollupFn::*;
        match self {
            Rate => extrapolated_rate(w, may_reset, true, true),
            Increase => extrapolated_rate(w, may_reset, true, false),
            Delta => extrapolated_rate(w, false, false, false),
            Irate => instant_value(w, true),
            Idelta => instant_value(w, false),
            Deriv => (w.vs.len() >= 2).then(|| linear_regression(w.ts, w.vs, w.ts[0]).0),
            PredictLinear => (w.vs.len() >= 2).then(|| {
                let (slope, icept) = linear_regression(w.ts, w.vs, w.t);
                slope * p(0) + icept
            }),
            Resets => Some(w.vs.windows(2).filter(|x| x[1] < x[0]).count() as f64),
            Changes => Some(
                w.vs.windows(2)
                    .filter(|x| x[1] != x[0] && !(x[0].is_nan() && x[1].is_nan()))
                    .count() as f64,
            ),
            Avg => Some(avg(w.vs)),
            Sum => Some(kahan_sum(w.vs)),
            Count => Some(w.vs.len() as f64),
            Min => Some(
                w.vs.iter()
                    .skip(1)
                    .fold(w.vs[0], |m, &x| if x < m || m.is_nan() { x } else { m }),
            ),
            Max => Some(
                w.vs.iter()
                    .skip(1)
                    .fold(w.vs[0], |m, &x| if x > m || m.is_nan() { x } else { m }),
            ),
            Last => Some(w.vs[w.vs.len() - 1]),
            First => Some(w.vs[0]),
            Present => Some(1.0),
            Quantile => {
                scratch.clear();
                scratch.extend_from_slice(w.vs);
                Some(quantile(p(0), scratch))
            }
            Stddev => Some(stdvar(w.vs).sqrt()),
            Stdvar => Some(stdvar(w.vs)),
            Mad if w.vs.iter().any(|x| x.is_nan()) => Some(f64::NAN),
            Mad => {
                scratch.clear();
                scratch.extend_from_slice(w.vs);
                let med = quantile(0.5, scratch);
                scratch.clear();
                scratch.extend(w.vs.iter().map(|x| (x - med).abs()));
                Some(quantile(0.5, scratch))
            }
            Smoothing => smoothing(w.vs, p(0), p(1)),
            TsOfMin => ts_of_extreme(w, |x, m| x <= m),
            TsOfMax => ts_of_extreme(w, |x, m| x >= m),
            TsOfFirst => Some(w.ts[0] as f64 / 1000.0),
            TsOfLast => Some(w.ts[w.ts.len() - 1] as f64 / 1000.0),
        }
    }
}

/// The experimental `anchored`/`smoothed` range modifiers: Prometheus's
/// error for functions that do not take them.
pub(crate) fn check_extended_range(
    func: &str,
    anchored: bool,
    smoothed: bool,
) -> Result<(), EvalError> {
    if anchored {
        if !matches!(func, "changes" | "delta" | "increase" | "rate" | "resets") {
            return Err(EvalError::BadData(format!(
                "anchored modifier can only be used with: changes, delta, increase, rate, resets - not with {func}"
            )));
        }
        return Ok(());
    }
    if smoothed {
        if !matches!(func, "delta" | "increase" | "rate") {
            return Err(EvalError::BadData(format!(
                "smoothed modifier can only be used with: delta, increase, rate - not with {func}"
            )));
        }
        return Ok(());
    }
    Ok(())
}

/// The `smoothed` variants: the (counter-adjusted for `rate`/`increase`)
/// series is linearly interpolated at the window's start and end, using the
/// samples around each boundary (`idx`: the sample before the start, those
/// inside, the one after the end); beyond the first/last sample the value is
/// held flat.
fn smoothed_value(
    func: &str,
    ts: &[i64],
    vs: &[f64],
    idx: &[usize],
    start: i64,
    end: i64,
    range_ms: i64,
) -> Option<f64> {
    if idx.is_empty() || !matches!(func, "rate" | "increase" | "delta") {
        return None;
    }
    let counter = func != "delta";
    let mut vals = Vec::with_capacity(idx.len());
    let mut correction = 0.0;
    let mut prev: Option<f64> = None;
    for &k in idx {
        let v = vs[k];
        if let Some(p) = prev
            && counter
            && v < p
        {
            correction += p;
        }
        prev = Some(v);
        vals.push(v + correction);
    }
    let at = |x: i64| -> f64 {
        let n = idx.len();
        if x <= ts[idx[0]] {
            return vals[0];
        }
        if x >= ts[idx[n - 1]] {
            return vals[n - 1];
        }
        let k = idx.partition_point(|&j| ts[j] <= x);
        let (t0, t1) = (ts[idx[k - 1]], ts[idx[k]]);
        let (v0, v1) = (vals[k - 1], vals[k]);
        v0 + (v1 - v0) * (x - t0) as f64 / (t1 - t0) as f64
    };
    let diff = at(end) - at(start);
    Some(if func == "rate" {
        diff / (range_ms as f64 / 1000.0)
    } else {
        diff
    })
}

/// The `anchored` variants: no extrapolation; the anchor sample (if any)
/// is the first of `vs`.
fn anchored_value(func: &str, vs: &[f64], range_ms: i64) -> Option<f64> {
    let first = *vs.first()?;
    let last = vs[vs.len() - 1];
    let increase = || {
        let mut r = last - first;
        for w in vs.windows(2) {
            if w[1] < w[0] {
                r += w[0];
            }
        }
        r
    };
    Some(match func {
        "increase" => increase(),
        "rate" => increase() / (range_ms as f64 / 1000.0),
        "delta" => last - first,
        "changes" => vs
            .windows(2)
            .filter(|x| x[1] != x[0] && !(x[0].is_nan() && x[1].is_nan()))
            .count() as f64,
        "resets" => vs.windows(2).filter(|x| x[1] < x[0]).count() as f64,
        _ => return None,
    })
}

/// Prometheus's `extrapolatedRate` for floats: the increase between the
/// first and last sample (with counter resets for counters), extrapolated
/// towards the window edges unless the series seems to start or end inside
/// the window.
///
/// `may_reset` false skips the scan for counter resets (the caller knows
/// the window holds none, so the scan would add nothing).
pub(crate) fn extrapolated_rate(
    w: &Window,
    may_reset: bool,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let n = w.vs.len();
    if n < 2 {
        return None;
    }
    let first_t = w.ts[0];
    let last_t = w.ts[n - 1];
    let mut result = w.vs[n - 1] - w.vs[0];
    if is_counter && may_reset {
        let mut prev = w.vs[0];
        for &cur in &w.vs[1..] {
            if cur < prev {
                result += prev;
            }
            prev = cur;
        }
    }
    let mut duration_to_start = (first_t - w.range_start) as f64 / 1000.0;
    let mut duration_to_end = (w.range_end - last_t) as f64 / 1000.0;
    let sampled_interval = (last_t - first_t) as f64 / 1000.0;
    let avg_between = sampled_interval / (n - 1) as f64;
    let threshold = avg_between * 1.1;
    let mut extrapolate_to = sampled_interval;
    if duration_to_start >= threshold {
        duration_to_start = avg_between / 2.0;
    }
    if is_counter && result > 0.0 && w.vs[0] >= 0.0 {
        // A counter cannot go below zero: do not extrapolate past the
        // point where it would have been zero.
        //
        // Order matters and is deliberate (Prometheus 3.x; changed by
        // prometheus/prometheus#13725, merged 2024, after 2.42): the half-interval limit above is
        // applied first and the zero point only shortens what is left.
        // Prometheus 2.42 capped the full distance to the window start at
        // the zero point before the threshold test, so when the zero point
        // lies between half an interval and 1.1 intervals before the first
        // sample (typical for counters, and histogram buckets, that start
        // near 0 inside the window), 2.42 extrapolates further left and
        // returns a larger rate. This is the cause of the histogram_quantile
        // range-query difference at the start of the data in BENCHMARKS.md
        // ("PromQL queries"); tests/promql/rate_extrapolation_start.test
        // pins the 3.x result.
        let duration_to_zero = sampled_interval * (w.vs[0] / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    extrapolate_to += duration_to_start;
    if duration_to_end >= threshold {
        duration_to_end = avg_between / 2.0;
    }
    extrapolate_to += duration_to_end;
    let mut factor = extrapolate_to / sampled_interval;
    if is_rate {
        factor /= w.range as f64 / 1000.0;
    }
    Some(result * factor)
}

/// The counter resets of one series (positions `k` with `vs[k] < vs[k-1]`),
/// for windows sliding forward over it: whether a window holds one is then
/// a pointer comparison instead of a scan of the window.
#[derive(Default)]
pub(crate) struct Resets {
    pos: Vec<usize>,
    next: usize,
}

impl Resets {
    /// Finds the resets of `vs` (replacing those of the previous series).
    pub(crate) fn scan(&mut self, vs: &[f64]) {
        self.pos.clear();
        self.next = 0;
        for k in 1..vs.len() {
            if vs[k] < vs[k - 1] {
                self.pos.push(k);
            }
        }
    }

    /// Whether the window `[a, b)` holds a reset (both samples of the
    /// pair inside it). `a` must not decrease between calls.
    #[inline]
    pub(crate) fn within(&mut self, a: usize, b: usize) -> bool {
        while self.next < self.pos.len() && self.pos[self.next] <= a {
            self.next += 1;
        }
        self.next < self.pos.len() && self.pos[self.next] < b
    }
}

/// `irate` (`is_rate`) and `idelta`: from the last two samples.
fn instant_value(w: &Window, is_rate: bool) -> Option<f64> {
    let n = w.vs.len();
    if n < 2 {
        return None;
    }
    let (last, prev) = (w.vs[n - 1], w.vs[n - 2]);
    let interval = w.ts[n - 1] - w.ts[n - 2];
    if interval == 0 {
        return None;
    }
    let mut r = if is_rate && last < prev {
        last
    } else {
        last - prev
    };
    if is_rate {
        r /= interval as f64 / 1000.0;
    }
    Some(r)
}

/// Least-squares fit of `(t - intercept_t)/1000 -> v`; returns (slope, intercept).
pub(crate) fn linear_regression(ts: &[i64], vs: &[f64], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = vs[0];
    let mut const_y = true;
    for (i, (&t, &v)) in ts.iter().zip(vs).enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(v, sy, cy);
        (sxy, cxy) = kahan_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// Kahan-compensated sum.
pub(crate) fn kahan_sum(vs: &[f64]) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for &v in vs {
        (s, c) = kahan_inc(v, s, c);
    }
    s + c
}

/// Mean with Kahan summation, switching to an incremental mean when the
/// running sum would overflow (as Prometheus does).
pub(crate) fn avg(vs: &[f64]) -> f64 {
    // With infinities or NaNs among the inputs the plain mean is exact
    // (±Inf or NaN); the compensated/incremental paths below are only for
    // finite inputs whose running sum may overflow.
    if vs.iter().any(|v| !v.is_finite()) {
        return vs.iter().sum::<f64>() / vs.len() as f64;
    }
    let (mut sum, mut c, mut mean) = (0.0, 0.0, 0.0);
    let mut incremental = false;
    let mut count = 0.0;
    for &v in vs {
        count += 1.0;
        if !incremental {
            let (ns, nc) = kahan_inc(v, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

/// Population variance (Welford with Kahan compensation).
pub(crate) fn stdvar(vs: &[f64]) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &v in vs {
        count += 1.0;
        let delta = v - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (v - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

/// Prometheus's `quantile` (linear interpolation between closest ranks).
/// Sorts `v` in place.
pub(crate) fn quantile(q: f64, v: &mut [f64]) -> f64 {
    if v.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    v.sort_by(|a, b| {
        a.partial_cmp(b)
            .unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()).reverse())
    });
    let n = v.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    v[lower as usize] * (1.0 - weight) + v[upper as usize] * weight
}

fn smoothing(vs: &[f64], sf: f64, tf: f64) -> Option<f64> {
    let l = vs.len();
    if l < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, vs[0]);
    let mut b = vs[1] - vs[0];
    for (i, &v) in vs.iter().enumerate().skip(1) {
        let x = sf * v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

fn ts_of_extreme(w: &Window, better: impl Fn(f64, f64) -> bool) -> Option<f64> {
    let mut best = w.vs[0];
    let mut best_t = w.ts[0];
    for (&t, &v) in w.ts.iter().zip(w.vs).skip(1) {
        if better(v, best) || best.is_nan() {
            best = v;
            best_t = t;
        }
    }
    Some(best_t as f64 / 1000.0)
}

/// `absent_over_time`: 1 at steps where no series has a sample in its
/// window, labelled from the selector's equality matchers.
fn absent_over_time(arg: &RangeArg, e: &Expr, g: &Grid) -> Vec<Series> {
    let mut present = vec![false; g.n];
    for s in &arg.data {
        for (i, (a, b)) in windows(&s.ts, &arg.ends, arg.range).into_iter().enumerate() {
            if a < b {
                present[i] = true;
            }
        }
    }
    if present.iter().all(|p| *p) {
        return Vec::new();
    }
    let matchers: &[Matcher] = match strip_parens(e) {
        Expr::MatrixSelector(ms) => &ms.selector.matchers,
        _ => &[],
    };
    vec![Series {
        labels: super::functions::absent_labels(matchers),
        drop_name: false,
        vals: present
            .iter()
            .map(|p| if *p { None } else { Some(1.0) })
            .collect(),
    }]
}
