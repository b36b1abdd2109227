//! Binary operators: arithmetic, comparisons (filtering or `bool`), set
//! operators, with one-to-one and many-to-one/one-to-many matching.
//! Matching signatures are computed once per series; values are matched
//! step by step.

use std::collections::HashMap;

use crate::model::Labels;

use super::super::ast::{BinaryExpr, BinaryOp, Cardinality, VectorMatching};
use super::super::engine::EvalError;
use super::{Collector, Ctx, Grid, Series, Val, drop_name_labels};

/// Applies a scalar operator. Returns (value, keep) where `keep` is the
/// comparison outcome (always true for arithmetic).
pub(crate) fn scalar_op(op: BinaryOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinaryOp::Add => (l + r, true),
        BinaryOp::Sub => (l - r, true),
        BinaryOp::Mul => (l * r, true),
        BinaryOp::Div => (l / r, true),
        BinaryOp::Pow => (l.powf(r), true),
        BinaryOp::Mod => (l % r, true),
        BinaryOp::Atan2 => (l.atan2(r), true),
        BinaryOp::Eql => (l, l == r),
        BinaryOp::Neq => (l, l != r),
        BinaryOp::Gtr => (l, l > r),
        BinaryOp::Lss => (l, l < r),
        BinaryOp::Gte => (l, l >= r),
        BinaryOp::Lte => (l, l <= r),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Unless => (f64::NAN, false),
    }
}

/// The matching signature of a series: the `on` labels, or all labels but
/// the `ignoring` ones and `__name__` (`__type__`/`__unit__` do take part in
/// matching, as upstream's type-and-unit scripts require).
fn signature(l: &Labels, m: &VectorMatching) -> Labels {
    if m.on {
        l.keep(&m.labels)
    } else {
        let mut b = l.builder();
        b.del(crate::model::METRIC_NAME);
        for n in &m.labels {
            b.del(n);
        }
        b.build()
    }
}

/// Interns signatures: equal signatures get equal ids.
fn sig_ids(series: &[Series], m: &VectorMatching, ids: &mut HashMap<Labels, usize>) -> Vec<usize> {
    series
        .iter()
        .map(|s| {
            let sig = signature(&s.labels, m);
            let n = ids.len();
            *ids.entry(sig).or_insert(n)
        })
        .collect()
}

impl<'a> Ctx<'a> {
    /// Evaluates a binary expression.
    pub(crate) fn eval_binary(&mut self, b: &BinaryExpr, g: &Grid) -> Result<Val, EvalError> {
        let lhs = self.eval(&b.lhs, g)?;
        let rhs = self.eval(&b.rhs, g)?;
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
                l.iter()
                    .zip(&r)
                    .map(|(&x, &y)| {
                        let (v, keep) = scalar_op(b.op, x, y);
                        if b.op.is_comparison() {
                            if keep { 1.0 } else { 0.0 }
                        } else {
                            v
                        }
                    })
                    .collect(),
            )),
            (Val::Vector(l), Val::Scalar(r)) => Ok(Val::Vector(vector_scalar(b, l, &r, false))),
            (Val::Scalar(l), Val::Vector(r)) => Ok(Val::Vector(vector_scalar(b, r, &l, true))),
            (Val::Vector(l), Val::Vector(r)) => {
                let default = VectorMatching {
                    card: if b.op.is_set() {
                        Cardinality::ManyToMany
                    } else {
                        Cardinality::OneToOne
                    },
                    ..VectorMatching::default()
                };
                let m = b.matching.as_ref().unwrap_or(&default);
                if b.op.is_set() {
                    Ok(Val::Vector(set_op(b.op, l, r, m, g)))
                } else {
                    self.vector_vector(b, l, r, m, g).map(Val::Vector)
                }
            }
            (l, r) => Err(EvalError::BadData(format!(
                "binary expression must contain only scalar and instant vector types, got {} and {}",
                l.type_name(),
                r.type_name()
            ))),
        }
    }

    fn vector_vector(
        &mut self,
        b: &BinaryExpr,
        lhs: Vec<Series>,
        rhs: Vec<Series>,
        m: &VectorMatching,
        g: &Grid,
    ) -> Result<Vec<Series>, EvalError> {
        // For one-to-many, swap sides so that the right side is the "one".
        let swapped = m.card == Cardinality::OneToMany;
        let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
        let mut ids = HashMap::new();
        let many_sig = sig_ids(&many, m, &mut ids);
        let one_sig = sig_ids(&one, m, &mut ids);
        let nsig = ids.len();
        let mut sig_labels: Vec<Option<Labels>> = vec![None; nsig];
        for (sig, id) in ids {
            sig_labels[id] = Some(sig);
        }
        // Per step: which `one` series holds each signature; which many-side
        // signatures were already matched (one-to-one duplicate detection).
        let mut one_at: Vec<usize> = vec![usize::MAX; nsig];
        let mut one_stamp: Vec<usize> = vec![usize::MAX; nsig];
        let mut used_stamp: Vec<usize> = vec![usize::MAX; nsig];
        let mut many_stamp: Vec<usize> = vec![usize::MAX; nsig];
        let mut pair_slot: HashMap<(usize, usize), usize> = HashMap::new();
        let mut col = Collector::new(g.n);
        let mut seen_out: HashMap<(usize, Labels), usize> = HashMap::new();
        let is_cmp = b.op.is_comparison();
        for i in 0..g.n {
            self.check_deadline()?;
            for (oi, s) in one.iter().enumerate() {
                if s.vals[i].is_none() {
                    continue;
                }
                let sig = one_sig[oi];
                if one_stamp[sig] == i {
                    let side = if swapped { "left" } else { "right" };
                    let matched = sig_labels[sig].clone().unwrap_or_default();
                    let mut pair = [go_labels(&s.labels), go_labels(&one[one_at[sig]].labels)];
                    pair.sort();
                    return Err(EvalError::Execution(format!(
                        "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                        go_labels(&matched),
                        pair[0],
                        pair[1],
                    )));
                }
                one_stamp[sig] = i;
                one_at[sig] = oi;
            }
            for (mi, s) in many.iter().enumerate() {
                let Some(mv) = s.vals[i] else { continue };
                let sig = many_sig[mi];
                many_stamp[sig] = i;
                if one_stamp[sig] != i {
                    // Experimental fill: a missing "one" side takes the
                    // fill value (sides as after the group_right swap).
                    if let Some(fill) = m.fill_rhs {
                        let (l, r) = if swapped { (fill, mv) } else { (mv, fill) };
                        let (mut v, keep) = scalar_op(b.op, l, r);
                        if b.return_bool {
                            v = if keep { 1.0 } else { 0.0 };
                        } else if !keep {
                            continue;
                        }
                        let slot = match pair_slot.get(&(mi, usize::MAX)) {
                            Some(&sl) => sl,
                            None => {
                                let labels = result_labels(&s.labels, &Labels::empty(), b.op, m);
                                let sl = col.slot(labels, b.return_bool || (is_cmp && s.drop_name));
                                pair_slot.insert((mi, usize::MAX), sl);
                                sl
                            }
                        };
                        col.set(slot, i, v)?;
                    }
                    continue;
                }
                let oi = one_at[sig];
                let ov = one[oi].vals[i].unwrap_or(f64::NAN);
                // One-to-one: a second match of the same signature is an
                // error even if the comparison would filter it out.
                if m.card == Cardinality::OneToOne {
                    if used_stamp[sig] == i {
                        return Err(EvalError::Execution(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                        ));
                    }
                    used_stamp[sig] = i;
                }
                let (l, r) = if swapped { (ov, mv) } else { (mv, ov) };
                let (mut v, keep) = scalar_op(b.op, l, r);
                if b.return_bool {
                    v = if keep { 1.0 } else { 0.0 };
                } else if !keep {
                    continue;
                }
                let slot = match pair_slot.get(&(mi, oi)) {
                    Some(&sl) => sl,
                    None => {
                        let labels = result_labels(&s.labels, &one[oi].labels, b.op, m);
                        let drop = b.return_bool || (is_cmp && s.drop_name);
                        let sl = col.slot(labels, drop);
                        pair_slot.insert((mi, oi), sl);
                        sl
                    }
                };
                if m.card != Cardinality::OneToOne {
                    let key = (sig, col.out[slot].labels.clone());
                    if seen_out.get(&key) == Some(&i) {
                        return Err(EvalError::Execution(
                            "multiple matches for labels: grouping labels must ensure unique matches".into(),
                        ));
                    }
                    seen_out.insert(key, i);
                }
                col.set(slot, i, v)?;
            }
            // Experimental fill: "one" side samples nobody matched get a
            // filled "many" side; the result carries the match group labels.
            if let Some(fill) = m.fill_lhs {
                for (oi, s) in one.iter().enumerate() {
                    let Some(ov) = s.vals[i] else { continue };
                    let sig = one_sig[oi];
                    if many_stamp[sig] == i || one_at[sig] != oi {
                        continue;
                    }
                    let (l, r) = if swapped { (ov, fill) } else { (fill, ov) };
                    let (mut v, keep) = scalar_op(b.op, l, r);
                    if b.return_bool {
                        v = if keep { 1.0 } else { 0.0 };
                    } else if !keep {
                        continue;
                    }
                    let slot = match pair_slot.get(&(usize::MAX, oi)) {
                        Some(&sl) => sl,
                        None => {
                            let labels = sig_labels[sig].clone().unwrap_or_default();
                            let sl = col.slot(labels, false);
                            pair_slot.insert((usize::MAX, oi), sl);
                            sl
                        }
                    };
                    col.set(slot, i, v)?;
                }
            }
        }
        Ok(col.finish())
    }
}

/// Labels of a vector/vector result, as Prometheus's `resultMetric`.
fn result_labels(many: &Labels, one: &Labels, op: BinaryOp, m: &VectorMatching) -> Labels {
    let mut b = many.builder();
    if !op.is_comparison() {
        drop_name_labels(&mut b);
    }
    match m.card {
        Cardinality::OneToOne => {
            if m.on {
                let keep: Vec<String> = many
                    .iter()
                    .filter(|l| !m.labels.iter().any(|n| **n == *l.name))
                    .map(|l| l.name.to_string())
                    .collect();
                for n in keep {
                    b.del(&n);
                }
            } else {
                for n in &m.labels {
                    b.del(n);
                }
            }
        }
        Cardinality::ManyToOne | Cardinality::OneToMany => {
            for n in &m.include {
                match one.get(n) {
                    Some(v) => {
                        b.set(n.as_str(), v);
                    }
                    None => {
                        b.del(n);
                    }
                }
            }
        }
        Cardinality::ManyToMany => {}
    }
    b.build()
}

/// Vector/scalar operations. `scalar_left` is true for `scalar op vector`.
fn vector_scalar(b: &BinaryExpr, v: Vec<Series>, s: &[f64], scalar_left: bool) -> Vec<Series> {
    let mut out = Vec::with_capacity(v.len());
    let is_cmp = b.op.is_comparison();
    for mut ser in v {
        let mut any = false;
        for (i, x) in ser.vals.iter_mut().enumerate() {
            let Some(val) = *x else { continue };
            let (l, r) = if scalar_left {
                (s[i], val)
            } else {
                (val, s[i])
            };
            let (mut res, keep) = scalar_op(b.op, l, r);
            if is_cmp && scalar_left {
                res = val;
            }
            if b.return_bool {
                res = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                *x = None;
                continue;
            }
            *x = Some(res);
            any = true;
        }
        if !is_cmp || b.return_bool {
            ser.drop_name = true;
        }
        if any {
            out.push(ser);
        }
    }
    out
}

/// `and`, `or`, `unless`, step by step on signatures.
fn set_op(
    op: BinaryOp,
    lhs: Vec<Series>,
    rhs: Vec<Series>,
    m: &VectorMatching,
    g: &Grid,
) -> Vec<Series> {
    let mut ids = HashMap::new();
    let lsig = sig_ids(&lhs, m, &mut ids);
    let rsig = sig_ids(&rhs, m, &mut ids);
    let nsig = ids.len();
    let mut stamp = vec![usize::MAX; nsig];
    match op {
        BinaryOp::And | BinaryOp::Unless => {
            let mut out = lhs;
            for i in 0..g.n {
                for (ri, s) in rhs.iter().enumerate() {
                    if s.vals[i].is_some() {
                        stamp[rsig[ri]] = i;
                    }
                }
                for (li, s) in out.iter_mut().enumerate() {
                    if s.vals[i].is_none() {
                        continue;
                    }
                    let hit = stamp[lsig[li]] == i;
                    if hit != (op == BinaryOp::And) {
                        s.vals[i] = None;
                    }
                }
            }
            out.retain(|s| s.vals.iter().any(Option::is_some));
            out
        }
        _ => {
            let mut right = rhs;
            for i in 0..g.n {
                for (li, s) in lhs.iter().enumerate() {
                    if s.vals[i].is_some() {
                        stamp[lsig[li]] = i;
                    }
                }
                for (ri, s) in right.iter_mut().enumerate() {
                    if s.vals[i].is_some() && stamp[rsig[ri]] == i {
                        s.vals[i] = None;
                    }
                }
            }
            // Merge by label set: the same labels may come from the left at
            // some steps and from the right at others.
            let mut col = Collector::new(g.n);
            for s in lhs.into_iter().chain(right) {
                let slot = col.slot(s.labels, s.drop_name);
                for (i, v) in s.vals.into_iter().enumerate() {
                    if let Some(v) = v {
                        // Cannot collide: equal labels mean equal signatures.
                        let _ = col.set(slot, i, v);
                    }
                }
            }
            col.finish()
        }
    }
}

/// Go-style `{a="b", c="d"}` label printing used in error messages
/// (Prometheus's `labels.Labels.String()`, name included as `__name__`).
fn go_labels(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|x| format!("{}={:?}", x.name, &*x.value))
        .collect();
    format!("{{{}}}", parts.join(", "))
}
