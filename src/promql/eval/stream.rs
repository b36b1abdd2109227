//! Streamed aggregations: `agg by/without (...) (f(selector[range]))` and
//! `agg by/without (...) (selector)` read their series through
//! [`Querier::select_visit`] and fold each series into per-group
//! accumulators as soon as it is decoded, instead of materialising every
//! selected sample, every per-series result column and then aggregating.
//!
//! Guarantees (what makes the result the materialising path's):
//! - per series, the same sliding pass computes the same values (the same
//!   `RollupFn::apply` on the same windows, stale markers removed; for
//!   instant selectors the same lookback and staleness rule);
//! - a group exists once a series with at least one value maps to it, and
//!   groups are numbered in order of first appearance in label order (each
//!   worker sees a contiguous run of the sorted order; partials are merged
//!   in worker order);
//! - within a worker values are accumulated in label order with the
//!   aggregation's own `accumulate`; partials are combined with
//!   [`merge`](super::aggregate::merge), so sums differ from one sequential
//!   pass only by the rounding of one compensated addition per worker
//!   (relative 1e-15, far inside the 1e-9 the properties check), and the
//!   result does not depend on thread scheduling;
//! - limits: the same series and sample counts are charged as by the
//!   materialising path (all selected samples, plus one step column per
//!   series with a value), after the read; work stops early once a limit
//!   or the deadline is passed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use crate::model::{Labels, is_stale_nan};
use crate::storage::{SelectHints, Series as StoredSeries};

use super::super::ast::{AggregateExpr, AggregateOp, Expr, MatrixSelector, VectorSelector};
use super::super::engine::EvalError;
use super::aggregate::{Acc, accumulate, finish, finish_groups, group_labels, merge};
use super::rollup::{Resets, RollupFn, rollup_series};
use super::selector::select_threads;
use super::{Ctx, Grid, NAME_LABELS, Val, strip_parens};

/// What a streamed aggregation reads and computes per series.
#[derive(Clone, Copy)]
enum Source<'e> {
    /// `f(selector[range])` over a plain matrix selector.
    Rollup(RollupFn, &'e MatrixSelector),
    /// A plain instant selector (no `@`, not smoothed).
    Instant(&'e VectorSelector),
}

/// Range functions whose value depends only on the window (no scalar
/// parameter).
fn parameterless(f: RollupFn) -> bool {
    !matches!(
        f,
        RollupFn::Quantile | RollupFn::PredictLinear | RollupFn::Smoothing
    )
}

/// Aggregations whose partial results combine exactly enough (see
/// [`merge`]).
pub(crate) fn mergeable(op: AggregateOp) -> bool {
    matches!(
        op,
        AggregateOp::Sum
            | AggregateOp::Avg
            | AggregateOp::Count
            | AggregateOp::Min
            | AggregateOp::Max
            | AggregateOp::Group
    )
}

/// One worker's partial aggregation.
#[derive(Default)]
struct Partial {
    index: HashMap<Labels, usize>,
    /// Group labels and delayed-name-removal flag, in first-appearance order.
    groups: Vec<(Labels, bool)>,
    /// `groups.len() * n` cells, group-major.
    acc: Vec<Acc>,
    /// Stale-free copies of the current series (reused).
    ts: Vec<i64>,
    vs: Vec<f64>,
    scratch: Vec<f64>,
    resets: Resets,
    /// Group of the last series with a value.
    last: Option<usize>,
}

impl Partial {
    /// The group of `labels`, created on first use.
    fn group(
        &mut self,
        labels: &Labels,
        by: &[String],
        without: bool,
        drop: bool,
        n: usize,
    ) -> usize {
        // Neighbours in label order usually share their group: check the
        // last one without building and hashing a label set.
        if let Some(id) = self.last
            && in_group(labels, &self.groups[id].0, by, without)
        {
            if drop {
                self.groups[id].1 = true;
            }
            return id;
        }
        let gl = group_labels(labels, by, without);
        let id = match self.index.get(&gl) {
            Some(&id) => id,
            None => {
                let id = self.groups.len();
                self.index.insert(gl.clone(), id);
                self.groups.push((gl, false));
                self.acc.resize((id + 1) * n, Acc::default());
                id
            }
        };
        if drop {
            self.groups[id].1 = true;
        }
        self.last = Some(id);
        id
    }
}

/// Whether `group_labels(l, by, without) == gl`, without building it.
fn in_group(l: &Labels, gl: &Labels, by: &[String], without: bool) -> bool {
    if without {
        let mut kept = l
            .iter()
            .filter(|x| !NAME_LABELS.contains(&&*x.name) && !by.iter().any(|n| **n == *x.name));
        gl.iter().all(|g| kept.next() == Some(g)) && kept.next().is_none()
    } else {
        by.iter().all(|n| l.get(n) == gl.get(n))
    }
}

/// Counters shared by the workers (for limits and early stop).
pub(crate) struct Budget {
    series: AtomicUsize,
    samples: AtomicUsize,
    outputs: AtomicUsize,
    stop: AtomicBool,
    timed_out: AtomicBool,
    deadline: Instant,
    /// Samples the query may still charge.
    room: usize,
    /// Samples charged per series with a value (its result column: the
    /// number of steps), 0 where the materialising path charges none.
    n: usize,
}

impl Budget {
    pub(crate) fn new(ctx: &Ctx<'_>, n: usize) -> Budget {
        Budget {
            series: AtomicUsize::new(0),
            samples: AtomicUsize::new(0),
            outputs: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            timed_out: AtomicBool::new(false),
            deadline: ctx.deadline(),
            room: ctx.samples_room(),
            n,
        }
    }

    /// Charges one selected series; false when work should stop.
    pub(crate) fn charge(&self, samples: usize) -> bool {
        self.series.fetch_add(1, Ordering::Relaxed);
        let total = self.samples.fetch_add(samples, Ordering::Relaxed) + samples;
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        let charged = total.saturating_add(self.outputs.load(Ordering::Relaxed) * self.n);
        if charged > self.room {
            self.stop.store(true, Ordering::Relaxed);
            return false;
        }
        if Instant::now() > self.deadline {
            self.timed_out.store(true, Ordering::Relaxed);
            self.stop.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// One series produced at least one value.
    pub(crate) fn output(&self) {
        self.outputs.fetch_add(1, Ordering::Relaxed);
    }

    /// Charges the totals to the query, in the materialising path's order
    /// (series, selected samples, result columns).
    pub(crate) fn settle(&self, ctx: &mut Ctx<'_>) -> Result<(), EvalError> {
        if self.timed_out.load(Ordering::Relaxed) {
            return Err(EvalError::Timeout("query execution"));
        }
        ctx.add_series(self.series.load(Ordering::Relaxed))?;
        ctx.add_samples(self.samples.load(Ordering::Relaxed))?;
        ctx.add_samples(self.outputs.load(Ordering::Relaxed) * self.n)?;
        ctx.check_deadline()
    }
}

/// `(ts, vs)` of `s` without stale markers: the stored columns when there
/// are none, else copies in `tbuf`/`vbuf`.
pub(crate) fn without_stale<'s>(
    s: &'s StoredSeries,
    tbuf: &'s mut Vec<i64>,
    vbuf: &'s mut Vec<f64>,
) -> (&'s [i64], &'s [f64]) {
    if !s.values.iter().any(|x| is_stale_nan(*x)) {
        return (&s.timestamps, &s.values);
    }
    tbuf.clear();
    vbuf.clear();
    for (&t, &x) in s.timestamps.iter().zip(&s.values) {
        if !is_stale_nan(x) {
            tbuf.push(t);
            vbuf.push(x);
        }
    }
    (tbuf, vbuf)
}

impl<'a> Ctx<'a> {
    /// Evaluates `a` by streaming when it has a supported shape; `None`
    /// sends the caller to the materialising path.
    pub(crate) fn aggregate_streamed(
        &mut self,
        a: &AggregateExpr,
        g: &Grid,
    ) -> Result<Option<Val>, EvalError> {
        if !self.opts.stream_aggregations || a.param.is_some() || !mergeable(a.op) || g.n == 0 {
            return Ok(None);
        }
        let src = match strip_parens(&a.expr) {
            Expr::Call(c) if c.args.len() == 1 => {
                match (RollupFn::of(&c.func), strip_parens(&c.args[0])) {
                    (Some(f), Expr::MatrixSelector(ms))
                        if parameterless(f)
                            && !ms.selector.anchored
                            && !ms.selector.smoothed
                            && ms.range_expr.is_none()
                            && ms.selector.offset_expr.is_none() =>
                    {
                        Source::Rollup(f, ms)
                    }
                    _ => return Ok(None),
                }
            }
            Expr::VectorSelector(vs)
                if vs.at.is_none() && !vs.smoothed && !vs.anchored && vs.offset_expr.is_none() =>
            {
                Source::Instant(vs)
            }
            _ => return Ok(None),
        };
        self.check_deadline()?;
        let n = g.n;
        let lookback = self.opts.lookback_delta_ms;
        // Reference time per step and the read range, as the materialising
        // path computes them.
        let (matchers, ends, hints, range) = match src {
            Source::Rollup(_, ms) => {
                let vs = &ms.selector;
                let ends: Vec<i64> = match &vs.at {
                    Some(at) => vec![self.at_time(at) - vs.offset; n],
                    None => (0..n).map(|i| g.t(i) - vs.offset).collect(),
                };
                let hints = SelectHints::range(ends[0] - ms.range + 1, ends[n - 1]);
                (&vs.matchers, ends, hints, ms.range)
            }
            Source::Instant(vs) => {
                let ends: Vec<i64> = (0..n).map(|i| g.t(i) - vs.offset).collect();
                let hints = SelectHints::range(ends[0] - lookback + 1, ends[n - 1]);
                (&vs.matchers, ends, hints, lookback)
            }
        };
        let op = a.op;
        let (by, without) = (&a.grouping[..], a.without);
        let workers = select_threads();
        let parts: Vec<Mutex<Partial>> = (0..workers).map(|_| Mutex::default()).collect();
        let budget = Budget::new(self, n);
        let visit = |w: usize, s: &StoredSeries| {
            if !budget.charge(s.timestamps.len()) {
                return;
            }
            let mut guard = parts[w.min(workers - 1)].lock();
            let p = &mut *guard;
            let mut gid: Option<usize> = None;
            match src {
                Source::Rollup(f, _) => {
                    let drop = !matches!(f, RollupFn::Last | RollupFn::First);
                    let (mut tb, mut vb, mut sc, mut rs) = (
                        std::mem::take(&mut p.ts),
                        std::mem::take(&mut p.vs),
                        std::mem::take(&mut p.scratch),
                        std::mem::take(&mut p.resets),
                    );
                    let (ts, vs) = without_stale(s, &mut tb, &mut vb);
                    rollup_series(f, ts, vs, &ends, range, &[], g, &mut sc, &mut rs, |i, v| {
                        let id =
                            *gid.get_or_insert_with(|| p.group(&s.labels, by, without, drop, n));
                        accumulate(op, &mut p.acc[id * n + i], v);
                    });
                    (p.ts, p.vs, p.scratch, p.resets) = (tb, vb, sc, rs);
                }
                Source::Instant(_) => {
                    let (ts, vs) = (&s.timestamps, &s.values);
                    let mut j = 0usize;
                    for (i, &t) in ends.iter().enumerate() {
                        while j < ts.len() && ts[j] <= t {
                            j += 1;
                        }
                        if j == 0 {
                            continue;
                        }
                        let v = vs[j - 1];
                        if ts[j - 1] > t - lookback && !is_stale_nan(v) {
                            let id = *gid
                                .get_or_insert_with(|| p.group(&s.labels, by, without, false, n));
                            accumulate(op, &mut p.acc[id * n + i], v);
                        }
                    }
                }
            }
            if gid.is_some() {
                budget.output();
            }
        };
        self.q.select_visit(&hints, matchers, workers, &visit)?;
        budget.settle(self)?;
        // Merge the partials in worker order (= label order).
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<(Labels, bool)> = Vec::new();
        let mut acc: Vec<Acc> = Vec::new();
        for part in parts {
            let p = part.into_inner();
            for (k, (labels, drop)) in p.groups.into_iter().enumerate() {
                let cells = &p.acc[k * n..(k + 1) * n];
                match index.get(&labels) {
                    Some(&id) => {
                        groups[id].1 |= drop;
                        for (c, o) in acc[id * n..(id + 1) * n].iter_mut().zip(cells) {
                            merge(op, c, o);
                        }
                    }
                    None => {
                        index.insert(labels.clone(), groups.len());
                        groups.push((labels, drop));
                        acc.extend_from_slice(cells);
                    }
                }
            }
        }
        Ok(Some(Val::Vector(finish_groups(op, groups, &acc, n))))
    }
}

/// One `(group, bound)` cell of a streamed `sum by (le, ...)`.
struct HistCell {
    key: Labels,
    ub: f64,
    /// The contributing series whose labels without `le` are smallest
    /// (then by `le`): the position of the cell in the materialising
    /// path's order, which sorts by labels without `le`.
    first: (Labels, String),
    acc: Vec<Acc>,
}

/// One worker's partial `sum by (le, ...)`.
#[derive(Default)]
struct HistPartial {
    index: HashMap<(Labels, u64), usize>,
    cells: Vec<HistCell>,
    warnings: Vec<String>,
    ts: Vec<i64>,
    vs: Vec<f64>,
    scratch: Vec<f64>,
    resets: Resets,
    /// `(bound bits, cell)` of the cells of the last series' group key.
    run: Vec<(u64, usize)>,
}

impl HistPartial {
    /// The cell of a bucket series with labels `l` (`le` = `le`, bound
    /// `ub`), created on first use.
    fn cell(&mut self, l: &Labels, le: &str, ub: f64, keep: &[&String], n: usize) -> usize {
        // Neighbours in label order usually share the group key (they
        // differ in `le` or in dropped labels): look among the cells of the
        // last key before building and hashing one.
        let same_key = self
            .run
            .first()
            .is_some_and(|&(_, id)| keep.iter().all(|k| l.get(k) == self.cells[id].key.get(k)));
        if !same_key {
            self.run.clear();
        }
        let cached = self
            .run
            .iter()
            .find(|(b, _)| *b == ub.to_bits())
            .map(|&(_, id)| id);
        let id = match cached {
            Some(id) => id,
            None => {
                let key = l.keep(keep);
                let id = match self.index.get(&(key.clone(), ub.to_bits())) {
                    Some(&id) => id,
                    None => {
                        let id = self.cells.len();
                        self.index.insert((key.clone(), ub.to_bits()), id);
                        self.cells.push(HistCell {
                            key,
                            ub,
                            first: (l.clone(), le.to_string()),
                            acc: vec![Acc::default(); n],
                        });
                        return self.cached(ub, id);
                    }
                };
                self.cached(ub, id)
            }
        };
        let first = &mut self.cells[id].first;
        if cmp_skip_le(l, &first.0)
            .then_with(|| le.cmp(&first.1))
            .is_lt()
        {
            *first = (l.clone(), le.to_string());
        }
        id
    }

    fn cached(&mut self, ub: f64, id: usize) -> usize {
        self.run.push((ub.to_bits(), id));
        id
    }
}

/// Label sets compared as if without `le`.
fn cmp_skip_le(a: &Labels, b: &Labels) -> std::cmp::Ordering {
    let f = |x: &&crate::model::Label| &*x.name != "le";
    a.iter().filter(f).cmp(b.iter().filter(f))
}

/// What a streamed `sum by (le, ...)` reads: the selector's matchers and
/// read range, the window end per step, the window length (ms) and the
/// range function (`rate` or `increase`).
#[derive(Clone, Copy)]
pub(crate) struct BucketRead<'r> {
    pub matchers: &'r [crate::model::Matcher],
    pub hints: &'r SelectHints,
    pub ends: &'r [i64],
    pub range: i64,
    pub f: RollupFn,
}

/// A summed bucket: group labels, bound, value per step.
pub(crate) type SummedBucket = (Labels, f64, Vec<Option<f64>>);

impl<'a> Ctx<'a> {
    /// `sum by (le, keep...) (f(x_bucket[range]))` over classic float
    /// bucket series (`f` is `rate` or `increase`), streamed: the cells in
    /// the order the column path of `histogram_quantile` creates them (by
    /// the smallest contributing label set without `le`, then `le`).
    pub(crate) fn histogram_sums_streamed(
        &mut self,
        read: &BucketRead<'_>,
        keep: &[&String],
        g: &Grid,
    ) -> Result<Vec<SummedBucket>, EvalError> {
        let BucketRead {
            matchers,
            hints,
            ends,
            range,
            f,
        } = *read;
        let n = g.n;
        let workers = select_threads();
        let parts: Vec<Mutex<HistPartial>> = (0..workers).map(|_| Mutex::default()).collect();
        // The column path charges selected series and samples only.
        let budget = Budget::new(self, 0);
        let visit = |w: usize, s: &StoredSeries| {
            if !budget.charge(s.timestamps.len()) {
                return;
            }
            let mut guard = parts[w.min(workers - 1)].lock();
            let p = &mut *guard;
            let le = s.labels.get("le").unwrap_or("");
            let Some(ub) = super::histogram::parse_le(le) else {
                let name = s.labels.get(crate::model::METRIC_NAME).unwrap_or("");
                let msg = format!(
                    "bucket label \"le\" is missing or has a malformed value of \"{le}\" for metric name \"{name}\""
                );
                if !p.warnings.contains(&msg) {
                    p.warnings.push(msg);
                }
                return;
            };
            let (mut tb, mut vb, mut sc, mut rs) = (
                std::mem::take(&mut p.ts),
                std::mem::take(&mut p.vs),
                std::mem::take(&mut p.scratch),
                std::mem::take(&mut p.resets),
            );
            let (ts, vs) = without_stale(s, &mut tb, &mut vb);
            let mut id: Option<usize> = None;
            rollup_series(f, ts, vs, ends, range, &[], g, &mut sc, &mut rs, |i, v| {
                let id = *id.get_or_insert_with(|| p.cell(&s.labels, le, ub, keep, n));
                accumulate(AggregateOp::Sum, &mut p.cells[id].acc[i], v);
            });
            (p.ts, p.vs, p.scratch, p.resets) = (tb, vb, sc, rs);
        };
        self.q.select_visit(hints, matchers, workers, &visit)?;
        let mut index: HashMap<(Labels, u64), usize> = HashMap::new();
        let mut cells: Vec<HistCell> = Vec::new();
        for part in parts {
            let p = part.into_inner();
            for w in p.warnings {
                self.warn(w);
            }
            for c in p.cells {
                let k = (c.key.clone(), c.ub.to_bits());
                match index.get(&k) {
                    Some(&id) => {
                        let into = &mut cells[id];
                        for (a, o) in into.acc.iter_mut().zip(&c.acc) {
                            merge(AggregateOp::Sum, a, o);
                        }
                        if cmp_skip_le(&c.first.0, &into.first.0).is_lt() {
                            into.first = c.first;
                        }
                    }
                    None => {
                        index.insert(k, cells.len());
                        cells.push(c);
                    }
                }
            }
        }
        budget.settle(self)?;
        cells.sort_by(|a, b| {
            cmp_skip_le(&a.first.0, &b.first.0).then_with(|| a.first.1.cmp(&b.first.1))
        });
        Ok(cells
            .into_iter()
            .map(|c| {
                let vals = c
                    .acc
                    .iter()
                    .map(|a| a.seen.then(|| finish(AggregateOp::Sum, a)))
                    .collect();
                (c.key, c.ub, vals)
            })
            .collect())
    }
}
