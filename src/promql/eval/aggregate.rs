//! Aggregation operators. Group membership is computed once per input
//! series; values are accumulated per (group, step).

use std::collections::HashMap;

use crate::model::Labels;

use super::super::ast::{AggregateExpr, AggregateOp};
use super::super::engine::EvalError;
use super::rollup::quantile;
use super::{
    Collector, Ctx, Grid, Series, Val, drop_name_labels, go_format_f, go_format_g, kahan_inc,
};

/// Running state of one (group, step) cell for the simple aggregations.
#[derive(Clone, Copy, Default)]
pub(crate) struct Acc {
    pub(crate) seen: bool,
    count: f64,
    value: f64,
    kahan: f64,
    mean: f64,
    incremental: bool,
    /// Sum of non-finite inputs (for `avg`, whose result they decide).
    non_finite: Option<f64>,
}

/// The grouping labels of `l` for `by`/`without`.
pub(crate) fn group_labels(l: &Labels, grouping: &[String], without: bool) -> Labels {
    if without {
        let mut b = l.builder();
        for n in grouping {
            b.del(n);
        }
        drop_name_labels(&mut b);
        b.build()
    } else {
        l.keep(grouping)
    }
}

impl<'a> Ctx<'a> {
    /// Evaluates an aggregation.
    pub(crate) fn eval_aggregate(&mut self, a: &AggregateExpr, g: &Grid) -> Result<Val, EvalError> {
        // Parameters first, like Prometheus (their errors win).
        let param: Option<Val> = match &a.param {
            Some(p) => Some(self.eval(p, g)?),
            None => None,
        };
        if let Some(v) = self.aggregate_streamed(a, g)? {
            return Ok(v);
        }
        let input = self.eval_vector(&a.expr, g)?;
        // Group index per input series.
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<(Labels, bool)> = Vec::new();
        let mut gid = Vec::with_capacity(input.len());
        for s in &input {
            let gl = group_labels(&s.labels, &a.grouping, a.without);
            let id = *index.entry(gl.clone()).or_insert_with(|| {
                groups.push((gl, false));
                groups.len() - 1
            });
            if s.drop_name {
                groups[id].1 = true;
            }
            gid.push(id);
        }
        let scalar_param = |p: &Option<Val>| -> Result<Vec<f64>, EvalError> {
            match p {
                Some(Val::Scalar(v)) => Ok(v.clone()),
                _ => Err(EvalError::BadData("expected scalar parameter".into())),
            }
        };
        match a.op {
            AggregateOp::Topk
            | AggregateOp::Bottomk
            | AggregateOp::Limitk
            | AggregateOp::LimitRatio => {
                let p = scalar_param(&param)?;
                self.eval_select_k(a.op, &p, &input, &gid, groups.len(), g)
                    .map(Val::Vector)
            }
            AggregateOp::CountValues => {
                let label = match &param {
                    Some(Val::Str(s)) => s.clone(),
                    _ => {
                        return Err(EvalError::BadData(
                            "expected string parameter in count_values".into(),
                        ));
                    }
                };
                if label.is_empty() {
                    return Err(EvalError::Execution(format!(
                        "invalid label name {label:?}"
                    )));
                }
                let mut col = Collector::new(g.n);
                let mut counts: HashMap<(usize, u64), f64> = HashMap::new();
                for i in 0..g.n {
                    counts.clear();
                    let mut order = Vec::new();
                    for (s, &id) in input.iter().zip(&gid) {
                        if let Some(v) = s.vals[i] {
                            let key = (id, v.to_bits());
                            let e = counts.entry(key).or_insert_with(|| {
                                order.push((id, v));
                                0.0
                            });
                            *e += 1.0;
                        }
                    }
                    for (id, v) in order {
                        let mut b = groups[id].0.builder();
                        b.set(label.as_str(), go_format_f(v));
                        let slot = col.slot(b.build(), false);
                        col.set(slot, i, counts[&(id, v.to_bits())])?;
                    }
                }
                Ok(Val::Vector(col.finish()))
            }
            AggregateOp::Quantile => {
                let q = scalar_param(&param)?;
                if let Some(x) = q.iter().find(|q| q.is_nan() || **q < 0.0 || **q > 1.0) {
                    self.warn(format!(
                        "quantile value should be between 0 and 1, got {}",
                        go_format_g(*x)
                    ));
                }
                let mut out: Vec<Series> = groups
                    .iter()
                    .map(|(l, d)| Series {
                        labels: l.clone(),
                        drop_name: *d,
                        vals: vec![None; g.n],
                    })
                    .collect();
                let mut buf: Vec<Vec<f64>> = vec![Vec::new(); groups.len()];
                for (i, &qi) in q.iter().enumerate() {
                    for b in &mut buf {
                        b.clear();
                    }
                    for (s, &id) in input.iter().zip(&gid) {
                        if let Some(v) = s.vals[i] {
                            buf[id].push(v);
                        }
                    }
                    for (id, b) in buf.iter_mut().enumerate() {
                        if !b.is_empty() {
                            out[id].vals[i] = Some(quantile(qi, b));
                        }
                    }
                }
                Ok(Val::Vector(
                    out.into_iter()
                        .filter(|s| s.vals.iter().any(Option::is_some))
                        .collect(),
                ))
            }
            op => {
                let n = g.n;
                let mut acc = vec![Acc::default(); groups.len() * n];
                for (s, &id) in input.iter().zip(&gid) {
                    self.check_deadline()?;
                    let cells = &mut acc[id * n..(id + 1) * n];
                    for (c, v) in cells.iter_mut().zip(&s.vals) {
                        if let Some(v) = *v {
                            accumulate(op, c, v);
                        }
                    }
                }
                Ok(Val::Vector(finish_groups(op, groups, &acc, n)))
            }
        }
    }

    fn eval_select_k(
        &mut self,
        op: AggregateOp,
        p: &[f64],
        input: &[Series],
        gid: &[usize],
        ngroups: usize,
        g: &Grid,
    ) -> Result<Vec<Series>, EvalError> {
        let mut keep: Vec<Vec<Option<f64>>> = vec![vec![None; g.n]; input.len()];
        // For instant queries the output order is: groups in order of first
        // appearance, within a group by rank.
        let mut order: Vec<usize> = Vec::new();
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); ngroups];
        for (si, &id) in gid.iter().enumerate() {
            members[id].push(si);
        }
        let mut ratio_warned = false;
        for i in 0..g.n {
            let param = p[i];
            match op {
                AggregateOp::LimitRatio => {
                    if param.is_nan() {
                        return Err(EvalError::Execution("Ratio value is NaN".into()));
                    }
                }
                _ => {
                    if param.is_nan() {
                        return Err(EvalError::Execution("Parameter value is NaN".into()));
                    }
                }
            }
            for m in &members {
                let present: Vec<usize> = m
                    .iter()
                    .copied()
                    .filter(|&si| input[si].vals[i].is_some())
                    .collect();
                if present.is_empty() {
                    continue;
                }
                let chosen: Vec<usize> = match op {
                    AggregateOp::LimitRatio => {
                        let mut r = param;
                        if !(-1.0..=1.0).contains(&r) {
                            let capped = r.clamp(-1.0, 1.0);
                            if !ratio_warned {
                                self.warn(format!(
                                    "ratio value should be between -1 and 1, got {}, capping to {}",
                                    go_format_g(r),
                                    go_format_g(capped)
                                ));
                                ratio_warned = true;
                            }
                            r = capped;
                        }
                        present
                            .into_iter()
                            .filter(|&si| {
                                let h = label_hash_ratio(&input[si].labels);
                                if r >= 0.0 { h < r } else { h >= 1.0 + r }
                            })
                            .collect()
                    }
                    _ => {
                        let k = if param >= 9.2e18 {
                            i64::MAX
                        } else {
                            param as i64
                        };
                        if k < 1 {
                            continue;
                        }
                        let k = (k as usize).min(present.len());
                        match op {
                            AggregateOp::Limitk => present[..k].to_vec(),
                            _ => {
                                let top = op == AggregateOp::Topk;
                                let mut sorted = present;
                                sorted.sort_by(|&x, &y| {
                                    let (a, b) = (
                                        input[x].vals[i].unwrap_or(f64::NAN),
                                        input[y].vals[i].unwrap_or(f64::NAN),
                                    );
                                    match (a.is_nan(), b.is_nan()) {
                                        (true, true) => std::cmp::Ordering::Equal,
                                        (true, false) => std::cmp::Ordering::Greater,
                                        (false, true) => std::cmp::Ordering::Less,
                                        _ if top => {
                                            b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal)
                                        }
                                        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
                                    }
                                });
                                sorted.truncate(k);
                                sorted
                            }
                        }
                    }
                };
                for si in chosen {
                    keep[si][i] = input[si].vals[i];
                    if g.n == 1 {
                        order.push(si);
                    }
                }
            }
        }
        if g.n == 1 {
            return Ok(order
                .into_iter()
                .map(|si| Series {
                    labels: input[si].labels.clone(),
                    drop_name: input[si].drop_name,
                    vals: keep[si].clone(),
                })
                .collect());
        }
        Ok(input
            .iter()
            .zip(keep)
            .filter(|(_, k)| k.iter().any(Option::is_some))
            .map(|(s, k)| Series {
                labels: s.labels.clone(),
                drop_name: s.drop_name,
                vals: k,
            })
            .collect())
    }
}

pub(crate) fn accumulate(op: AggregateOp, c: &mut Acc, v: f64) {
    if !c.seen {
        c.seen = true;
        c.count = 1.0;
        match op {
            AggregateOp::Stddev | AggregateOp::Stdvar => {
                c.mean = v;
                c.value = if v.is_finite() { 0.0 } else { f64::NAN };
            }
            AggregateOp::Avg if !v.is_finite() => {
                c.non_finite = Some(v);
                c.value = 0.0;
            }
            AggregateOp::Count | AggregateOp::Group => c.value = 1.0,
            _ => c.value = v,
        }
        return;
    }
    c.count += 1.0;
    match op {
        AggregateOp::Sum => (c.value, c.kahan) = kahan_inc(v, c.value, c.kahan),
        AggregateOp::Avg if !v.is_finite() => {
            c.non_finite = Some(c.non_finite.map_or(v, |x| x + v));
        }
        AggregateOp::Avg => {
            if !c.incremental {
                let (nv, nc) = kahan_inc(v, c.value, c.kahan);
                if !nv.is_infinite() {
                    c.value = nv;
                    c.kahan = nc;
                    return;
                }
                c.incremental = true;
                c.mean = c.value / (c.count - 1.0);
                c.kahan /= c.count - 1.0;
            }
            let q = (c.count - 1.0) / c.count;
            (c.mean, c.kahan) = kahan_inc(v / c.count, q * c.mean, q * c.kahan);
        }
        AggregateOp::Count => c.value += 1.0,
        AggregateOp::Group => {}
        AggregateOp::Max if c.value < v || c.value.is_nan() => c.value = v,
        AggregateOp::Min if c.value > v || c.value.is_nan() => c.value = v,
        AggregateOp::Stddev | AggregateOp::Stdvar => {
            let delta = v - c.mean;
            c.mean += delta / c.count;
            c.value += delta * (v - c.mean);
        }
        _ => {}
    }
}

/// Folds the partial `o` (of inputs that all come after those of `c`) into
/// `c`, for the ops of [`super::stream::mergeable`]: counts and extremes
/// combine exactly as one sequential pass would; sums add the compensated
/// partial sums (one extra rounding); averages add sums, or combine means
/// weighted by counts once a sum has overflowed; non-finite inputs of
/// `avg` (which decide its result) are summed as the sequential pass does.
pub(crate) fn merge(op: AggregateOp, c: &mut Acc, o: &Acc) {
    if !o.seen {
        return;
    }
    if !c.seen {
        *c = *o;
        return;
    }
    match op {
        AggregateOp::Sum => {
            (c.value, c.kahan) = kahan_inc(o.value, c.value, c.kahan);
            if c.value.is_infinite() {
                c.kahan = 0.0;
            } else {
                c.kahan += o.kahan;
            }
        }
        AggregateOp::Avg => {
            c.non_finite = match (c.non_finite, o.non_finite) {
                (Some(x), Some(y)) => Some(x + y),
                (x, y) => x.or(y),
            };
            let total = c.count + o.count;
            if !c.incremental && !o.incremental {
                let (nv, nc) = kahan_inc(o.value, c.value, c.kahan);
                if !nv.is_infinite() {
                    c.value = nv;
                    c.kahan = nc + o.kahan;
                    c.count = total;
                    return;
                }
            }
            let mean = |a: &Acc| {
                if a.incremental {
                    a.mean + a.kahan
                } else {
                    (a.value + a.kahan) / a.count
                }
            };
            let (mc, mo) = (mean(c), mean(o));
            c.mean = mc * (c.count / total) + mo * (o.count / total);
            c.kahan = 0.0;
            c.incremental = true;
            c.count = total;
            return;
        }
        AggregateOp::Count => c.value += o.value,
        AggregateOp::Max if c.value < o.value || c.value.is_nan() => c.value = o.value,
        AggregateOp::Min if c.value > o.value || c.value.is_nan() => c.value = o.value,
        _ => {}
    }
    c.count += o.count;
}

pub(crate) fn finish(op: AggregateOp, c: &Acc) -> f64 {
    match op {
        AggregateOp::Sum => c.value + c.kahan,
        AggregateOp::Avg if c.non_finite.is_some() => c.non_finite.unwrap_or(f64::NAN),
        AggregateOp::Avg => {
            if c.incremental {
                c.mean + c.kahan
            } else {
                (c.value + c.kahan) / c.count
            }
        }
        AggregateOp::Stdvar => c.value / c.count,
        AggregateOp::Stddev => (c.value / c.count).sqrt(),
        _ => c.value,
    }
}

/// `limit_ratio`'s position of a series in [0, 1): XXH64 (seed 0) of the
/// label set in Prometheus's default "stringlabels" byte form (per label a
/// length byte then the name, a length byte then the value), divided by
/// `u64::MAX`.
fn label_hash_ratio(l: &Labels) -> f64 {
    let mut buf = Vec::new();
    for lab in l {
        for s in [&*lab.name, &*lab.value] {
            let n = s.len();
            if n <= 254 {
                buf.push(n as u8);
            } else {
                buf.push(0xff);
                buf.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
            }
            buf.extend_from_slice(s.as_bytes());
        }
    }
    xxh64(&buf, 0) as f64 / u64::MAX as f64
}

/// XXH64 (the public xxHash 64-bit algorithm).
fn xxh64(data: &[u8], seed: u64) -> u64 {
    const P1: u64 = 0x9E37_79B1_85EB_CA87;
    const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    const P3: u64 = 0x1656_67B1_9E37_79F9;
    const P4: u64 = 0x85EB_CA77_C2B2_AE63;
    const P5: u64 = 0x27D4_EB2F_1656_67C5;
    fn round(acc: u64, input: u64) -> u64 {
        acc.wrapping_add(input.wrapping_mul(P2))
            .rotate_left(31)
            .wrapping_mul(P1)
    }
    fn merge(acc: u64, val: u64) -> u64 {
        (acc ^ round(0, val)).wrapping_mul(P1).wrapping_add(P4)
    }
    let rd64 = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
    let rd32 = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap_or([0; 4])) as u64;
    let len = data.len();
    let mut p = 0;
    let mut h: u64;
    if len >= 32 {
        let mut v1 = seed.wrapping_add(P1).wrapping_add(P2);
        let mut v2 = seed.wrapping_add(P2);
        let mut v3 = seed;
        let mut v4 = seed.wrapping_sub(P1);
        while p + 32 <= len {
            v1 = round(v1, rd64(&data[p..]));
            v2 = round(v2, rd64(&data[p + 8..]));
            v3 = round(v3, rd64(&data[p + 16..]));
            v4 = round(v4, rd64(&data[p + 24..]));
            p += 32;
        }
        h = v1
            .rotate_left(1)
            .wrapping_add(v2.rotate_left(7))
            .wrapping_add(v3.rotate_left(12))
            .wrapping_add(v4.rotate_left(18));
        h = merge(h, v1);
        h = merge(h, v2);
        h = merge(h, v3);
        h = merge(h, v4);
    } else {
        h = seed.wrapping_add(P5);
    }
    h = h.wrapping_add(len as u64);
    while p + 8 <= len {
        h ^= round(0, rd64(&data[p..]));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        p += 8;
    }
    if p + 4 <= len {
        h ^= rd32(&data[p..]).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        p += 4;
    }
    while p < len {
        h ^= (data[p] as u64).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
        p += 1;
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^= h >> 32;
    h
}

/// The output series of accumulated groups: group `id`'s cells are
/// `acc[id * n..(id + 1) * n]` (one per step); a step no member reached
/// stays empty and a group no step reached is left out.
pub(super) fn finish_groups(
    op: AggregateOp,
    groups: Vec<(Labels, bool)>,
    acc: &[Acc],
    n: usize,
) -> Vec<Series> {
    groups
        .into_iter()
        .enumerate()
        .filter_map(|(id, (labels, drop))| {
            let cells = &acc[id * n..(id + 1) * n];
            let vals: Vec<Option<f64>> = cells
                .iter()
                .map(|c| c.seen.then(|| finish(op, c)))
                .collect();
            vals.iter().any(Option::is_some).then_some(Series {
                labels,
                drop_name: drop,
                vals,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::xxh64;

    #[test]
    fn xxh64_known_vectors() {
        // Reference values of the xxHash specification's test suite.
        assert_eq!(xxh64(b"", 0), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxh64(b"a", 0), 0xD24E_C4F1_A98C_6E5B);
        assert_eq!(xxh64(b"abc", 0), 0x44BC_2CF5_AD77_0999);
    }
}
