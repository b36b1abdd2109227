//! `info(v, [selector])` (experimental in Prometheus 3.x): enriches series
//! with the data labels of info series (`target_info` by default) that share
//! their identifying labels (`instance`, `job`).
//!
//! Rules, as the upstream scripts pin them:
//! - info series are looked up at the same reference time as the base
//!   samples (the base selector's `@`/`offset`, through subqueries), with
//!   the usual lookback and staleness;
//! - without a `__name__` matcher the info metric is `target_info`; with
//!   only negative `__name__` matchers, `=~".+_info"` is implied;
//! - base series that match all `__name__` matchers are info series
//!   themselves and pass through unchanged;
//! - with data-label matchers only those labels are added, otherwise all
//!   labels but `__name__` and the identifying ones; labels the base series
//!   already has are never overwritten;
//! - several series of one info metric: the latest sample wins; different
//!   info metrics disagreeing on a label value are an error;
//! - no match: the base sample is kept unchanged when every data matcher
//!   accepts the empty string, dropped otherwise.

use std::collections::BTreeMap;

use crate::model::{Labels, METRIC_NAME, MatchOp, Matcher, is_stale_nan};
use crate::storage::SelectHints;

use super::super::ast::{Call, Expr};
use super::super::engine::EvalError;
use super::{Collector, Ctx, Grid, Series};

const IDENTIFYING: [&str; 2] = ["instance", "job"];

impl<'a> Ctx<'a> {
    /// The time (ms) at which the samples of `e` evaluated at `t` were read:
    /// the first selector's `@`/`offset`, through enclosing subqueries.
    fn reference_time(&self, e: &Expr, t: i64) -> Option<i64> {
        match e {
            Expr::VectorSelector(vs) => {
                Some(vs.at.as_ref().map_or(t, |a| self.at_time(a)) - vs.offset)
            }
            Expr::MatrixSelector(ms) => {
                let vs = &ms.selector;
                Some(vs.at.as_ref().map_or(t, |a| self.at_time(a)) - vs.offset)
            }
            Expr::Subquery(sq) => {
                let inner_t = sq.at.as_ref().map_or(t, |a| self.at_time(a)) - sq.offset;
                self.reference_time(&sq.expr, inner_t)
            }
            Expr::Paren(x) | Expr::Unary(_, x) => self.reference_time(x, t),
            Expr::Binary(b) => self
                .reference_time(&b.lhs, t)
                .or_else(|| self.reference_time(&b.rhs, t)),
            Expr::Call(c) => c.args.iter().find_map(|a| self.reference_time(a, t)),
            Expr::Aggregate(a) => self.reference_time(&a.expr, t),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => None,
        }
    }

    /// Evaluates `info(...)`.
    pub(crate) fn eval_info(&mut self, c: &Call, g: &Grid) -> Result<Vec<Series>, EvalError> {
        let base = self.eval_vector(&c.args[0], g)?;
        let given: Vec<Matcher> = match c.args.get(1) {
            None => Vec::new(),
            Some(Expr::VectorSelector(vs)) => vs.matchers.clone(),
            Some(_) => {
                return Err(EvalError::BadData(
                    "the second argument of info() must be a label selector".into(),
                ));
            }
        };
        let mut name_m: Vec<Matcher> = given
            .iter()
            .filter(|m| m.name == METRIC_NAME)
            .cloned()
            .collect();
        if name_m.is_empty() {
            name_m.push(Matcher::equal(METRIC_NAME, "target_info"));
        } else if name_m
            .iter()
            .all(|m| matches!(m.op, MatchOp::NotEqual | MatchOp::RegexNoMatch))
        {
            name_m.push(
                Matcher::new(MatchOp::RegexMatch, METRIC_NAME, ".+_info")
                    .map_err(|e| EvalError::BadData(e.to_string()))?,
            );
        }
        let data_m: Vec<Matcher> = given
            .iter()
            .filter(|m| m.name != METRIC_NAME)
            .cloned()
            .collect();
        let empty_ok = data_m.iter().all(|m| m.matches(""));
        let refs: Vec<i64> = (0..g.n)
            .map(|i| self.reference_time(&c.args[0], g.t(i)).unwrap_or(g.t(i)))
            .collect();
        let (lo, hi) = match (refs.iter().min(), refs.iter().max()) {
            (Some(lo), Some(hi)) => (*lo, *hi),
            _ => return Ok(Vec::new()),
        };
        let lookback = self.opts.lookback_delta_ms;
        let mut all_m = name_m.clone();
        all_m.extend(data_m.iter().cloned());
        let infos = self
            .q
            .select(&SelectHints::range(lo - lookback + 1, hi), &all_m)?;
        self.add_series(infos.len())?;
        // Per info series and step: timestamp of the sample visible at the
        // reference time, if any.
        let visible: Vec<Vec<Option<i64>>> = infos
            .iter()
            .map(|s| {
                refs.iter()
                    .map(|&rt| {
                        let j = s.timestamps.partition_point(|&x| x <= rt);
                        (j > 0
                            && s.timestamps[j - 1] > rt - lookback
                            && !is_stale_nan(s.values[j - 1]))
                        .then(|| s.timestamps[j - 1])
                    })
                    .collect()
            })
            .collect();
        let is_info = |l: &Labels| {
            let n = l.get(METRIC_NAME).unwrap_or("");
            name_m.iter().all(|m| m.matches(n))
        };
        let mut col = Collector::new(g.n);
        for s in &base {
            self.check_deadline()?;
            if is_info(&s.labels) {
                let slot = col.slot(s.labels.clone(), s.drop_name);
                for (i, v) in s.vals.iter().enumerate() {
                    if let Some(v) = v {
                        col.set(slot, i, *v)?;
                    }
                }
                continue;
            }
            let candidates: Vec<usize> = (0..infos.len())
                .filter(|&k| {
                    IDENTIFYING.iter().all(|n| {
                        infos[k].labels.get(n).unwrap_or("") == s.labels.get(n).unwrap_or("")
                    })
                })
                .collect();
            for (i, v) in s.vals.iter().enumerate() {
                let Some(v) = *v else { continue };
                // Latest visible series per info metric name.
                let mut per_name: BTreeMap<&str, (i64, usize)> = BTreeMap::new();
                for &k in &candidates {
                    if let Some(ts) = visible[k][i] {
                        let name = infos[k].labels.get(METRIC_NAME).unwrap_or("");
                        let e = per_name.entry(name).or_insert((ts, k));
                        if ts > e.0 {
                            *e = (ts, k);
                        }
                    }
                }
                if per_name.is_empty() {
                    if empty_ok {
                        let slot = col.slot(s.labels.clone(), s.drop_name);
                        col.set(slot, i, v)?;
                    }
                    continue;
                }
                let mut added: BTreeMap<String, String> = BTreeMap::new();
                for (_, k) in per_name.values() {
                    for l in &infos[*k].labels {
                        let n = &*l.name;
                        if n == METRIC_NAME || IDENTIFYING.contains(&n) || s.labels.get(n).is_some()
                        {
                            continue;
                        }
                        if !data_m.is_empty() && !data_m.iter().any(|m| m.name == n) {
                            continue;
                        }
                        if let Some(prev) = added.get(n) {
                            if prev != &*l.value {
                                return Err(EvalError::Execution(format!(
                                    "conflicting label: {n} has values {prev:?} and {:?} in different info metrics",
                                    &*l.value
                                )));
                            }
                        } else {
                            added.insert(n.to_string(), l.value.to_string());
                        }
                    }
                }
                let mut b = s.labels.builder();
                for (n, val) in &added {
                    b.set(n.as_str(), val.as_str());
                }
                let slot = col.slot(b.build(), s.drop_name);
                col.set(slot, i, v)?;
            }
        }
        Ok(col.finish())
    }
}
