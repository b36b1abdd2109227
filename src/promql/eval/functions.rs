//! Instant-vector and scalar functions, and the call dispatcher.

use std::f64::consts::PI;

use crate::model::{Labels, METRIC_NAME, MatchOp, Matcher};

use super::super::ast::{Call, Expr};
use super::super::engine::EvalError;
use super::rollup::is_rollup;
use super::{Collector, Ctx, Grid, Series, Val, go_max, go_min, strip_parens};

/// Labels for `absent()`/`absent_over_time()`: the equality matchers of the
/// selector (other than `__name__`); a name matched twice is left out.
pub(crate) fn absent_labels(matchers: &[Matcher]) -> Labels {
    // Same order-dependent rule as Prometheus: the first `=` matcher of a
    // name sets it; any later matcher of that name, or any non-`=` matcher,
    // removes it.
    let mut b = crate::model::LabelsBuilder::new();
    let mut has: Vec<&str> = Vec::new();
    for m in matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == MatchOp::Equal && !has.contains(&m.name.as_str()) {
            b.set(m.name.as_str(), m.value.as_str());
            has.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

/// A simple per-value float function, or None if `name` is not one.
fn simple(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |v| v * 180.0 / PI,
        "rad" => |v| v * PI / 180.0,
        "sgn" => |v: f64| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v // 0, -0 and NaN are returned as they are
            }
        },
        _ => return None,
    })
}

/// Civil-from-days (proleptic Gregorian, UTC): (year, month 1-12, day 1-31).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// A calendar function of a Unix time in seconds (UTC).
fn date_part(name: &str, secs: f64) -> f64 {
    if secs.is_nan() || secs.is_infinite() {
        return f64::NAN;
    }
    let s = secs.floor() as i64;
    let days = s.div_euclid(86_400);
    let sod = s.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    match name {
        "minute" => ((sod / 60) % 60) as f64,
        "hour" => (sod / 3600) as f64,
        "day_of_week" => ((days + 4).rem_euclid(7)) as f64,
        "day_of_month" => d as f64,
        "day_of_year" => {
            let cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
            let mut doy = cum[(m - 1) as usize] + d as i64;
            if m > 2 && is_leap(y) {
                doy += 1;
            }
            doy as f64
        }
        "days_in_month" => match m {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31.0,
            4 | 6 | 9 | 11 => 30.0,
            _ => {
                if is_leap(y) {
                    29.0
                } else {
                    28.0
                }
            }
        },
        "month" => m as f64,
        "year" => y as f64,
        _ => f64::NAN,
    }
}

fn is_date_fn(name: &str) -> bool {
    matches!(
        name,
        "minute"
            | "hour"
            | "day_of_week"
            | "day_of_month"
            | "day_of_year"
            | "days_in_month"
            | "month"
            | "year"
    )
}

/// Valid label name per Prometheus's legacy/UTF-8 rules: any valid UTF-8,
/// non-empty (3.x accepts UTF-8 names).
fn valid_label_name(n: &str) -> bool {
    !n.is_empty()
}

impl<'a> Ctx<'a> {
    /// Evaluates a function call.
    pub(crate) fn eval_call(&mut self, c: &Call, g: &Grid) -> Result<Val, EvalError> {
        let name = c.func.as_str();
        // The parser checks calls; hand-built ASTs get the same check here so
        // that a wrong argument count is an error, never an index panic.
        let Some(sig) = crate::promql::get_function(name) else {
            return Err(EvalError::BadData(format!(
                "unknown function with name \"{name}\""
            )));
        };
        if c.args.len() < sig.min_args() || sig.max_args().is_some_and(|m| c.args.len() > m) {
            return Err(EvalError::BadData(format!(
                "wrong number of arguments for function \"{name}\": got {}",
                c.args.len()
            )));
        }
        if is_rollup(name) {
            return Ok(Val::Vector(self.eval_rollup(c, g)?));
        }
        if let Some(f) = simple(name) {
            let v = self.eval_vector(&c.args[0], g)?;
            return Ok(Val::Vector(map_values(v, f)));
        }
        if is_date_fn(name) {
            if c.args.is_empty() {
                let vals = (0..g.n)
                    .map(|i| Some(date_part(name, g.t(i) as f64 / 1000.0)))
                    .collect();
                return Ok(Val::Vector(vec![Series {
                    labels: Labels::empty(),
                    drop_name: false,
                    vals,
                }]));
            }
            let v = self.eval_vector(&c.args[0], g)?;
            return Ok(Val::Vector(map_values(v, |x| date_part(name, x))));
        }
        match name {
            "time" => Ok(Val::Scalar(
                (0..g.n).map(|i| g.t(i) as f64 / 1000.0).collect(),
            )),
            "pi" => Ok(Val::Scalar(vec![PI; g.n])),
            // Query-context functions (experimental in Prometheus 3.x).
            "step" => Ok(Val::Scalar(vec![self.query_step as f64 / 1000.0; g.n])),
            "range" => Ok(Val::Scalar(vec![
                (self.query_end - self.query_start) as f64
                    / 1000.0;
                g.n
            ])),
            "start" => Ok(Val::Scalar(vec![self.query_start as f64 / 1000.0; g.n])),
            "end" => Ok(Val::Scalar(vec![self.query_end as f64 / 1000.0; g.n])),
            // Experimental scalar helpers: Go's math.Min/math.Max (NaN wins).
            "min_of" | "max_of" => {
                let a = self.eval_scalar(&c.args[0], g)?;
                let b = self.eval_scalar(&c.args[1], g)?;
                let f = if name == "min_of" { go_min } else { go_max };
                Ok(Val::Scalar(
                    a.iter().zip(&b).map(|(x, y)| f(*x, *y)).collect(),
                ))
            }
            "vector" => {
                let s = self.eval_scalar(&c.args[0], g)?;
                Ok(Val::Vector(vec![Series {
                    labels: Labels::empty(),
                    drop_name: false,
                    vals: s.into_iter().map(Some).collect(),
                }]))
            }
            "scalar" => {
                let v = self.eval_vector(&c.args[0], g)?;
                let mut out = vec![f64::NAN; g.n];
                let mut count = vec![0u32; g.n];
                for s in &v {
                    for (i, x) in s.vals.iter().enumerate() {
                        if let Some(x) = x {
                            count[i] += 1;
                            out[i] = *x;
                        }
                    }
                }
                for (o, c) in out.iter_mut().zip(count) {
                    if c != 1 {
                        *o = f64::NAN;
                    }
                }
                Ok(Val::Scalar(out))
            }
            "timestamp" => {
                let arg = strip_parens(&c.args[0]);
                let v = if let Expr::VectorSelector(vs) = arg {
                    self.vector_selector(vs, g, true)?
                } else {
                    let v = self.eval_vector(arg, g)?;
                    v.into_iter()
                        .map(|mut s| {
                            for (i, x) in s.vals.iter_mut().enumerate() {
                                if x.is_some() {
                                    *x = Some(g.t(i) as f64 / 1000.0);
                                }
                            }
                            s
                        })
                        .collect()
                };
                Ok(Val::Vector(
                    v.into_iter()
                        .map(|mut s| {
                            s.drop_name = true;
                            s
                        })
                        .collect(),
                ))
            }
            "round" => {
                let v = self.eval_vector(&c.args[0], g)?;
                let to = match c.args.get(1) {
                    Some(e) => self.eval_scalar(e, g)?,
                    None => vec![1.0; g.n],
                };
                Ok(Val::Vector(map_values_step(v, |i, x| {
                    let inv = 1.0 / to[i];
                    (x * inv + 0.5).floor() / inv
                })))
            }
            "clamp" | "clamp_min" | "clamp_max" => {
                let v = self.eval_vector(&c.args[0], g)?;
                let (lo, hi) = match name {
                    "clamp" => (
                        self.eval_scalar(&c.args[1], g)?,
                        self.eval_scalar(&c.args[2], g)?,
                    ),
                    "clamp_min" => (self.eval_scalar(&c.args[1], g)?, vec![f64::INFINITY; g.n]),
                    _ => (
                        vec![f64::NEG_INFINITY; g.n],
                        self.eval_scalar(&c.args[1], g)?,
                    ),
                };
                let mut out = Vec::with_capacity(v.len());
                for mut s in v {
                    let mut any = false;
                    for (i, x) in s.vals.iter_mut().enumerate() {
                        if let Some(val) = *x {
                            if name == "clamp" && hi[i] < lo[i] {
                                *x = None;
                                continue;
                            }
                            let r = match name {
                                "clamp" => go_max(lo[i], go_min(hi[i], val)),
                                "clamp_min" => go_max(lo[i], val),
                                _ => go_min(hi[i], val),
                            };
                            *x = Some(r);
                            any = true;
                        }
                    }
                    s.drop_name = true;
                    if any {
                        out.push(s);
                    }
                }
                Ok(Val::Vector(out))
            }
            "absent" => {
                let v = self.eval_vector(&c.args[0], g)?;
                let mut present = vec![false; g.n];
                for s in &v {
                    for (i, x) in s.vals.iter().enumerate() {
                        if x.is_some() {
                            present[i] = true;
                        }
                    }
                }
                if present.iter().all(|p| *p) {
                    return Ok(Val::Vector(Vec::new()));
                }
                let labels = match strip_parens(&c.args[0]) {
                    Expr::VectorSelector(vs) => absent_labels(&vs.matchers),
                    _ => Labels::empty(),
                };
                Ok(Val::Vector(vec![Series {
                    labels,
                    drop_name: false,
                    vals: present
                        .iter()
                        .map(|p| if *p { None } else { Some(1.0) })
                        .collect(),
                }]))
            }
            "sort" | "sort_desc" => {
                let mut v = self.eval_vector(&c.args[0], g)?;
                if g.n > 1 || self.query_start != self.query_end {
                    self.warn("sort is ineffective for range queries since results are always ordered by labels");
                }
                if g.n == 1 {
                    let key = |s: &Series| s.vals[0].unwrap_or(f64::NAN);
                    let desc = name == "sort_desc";
                    v.sort_by(|a, b| {
                        let (x, y) = (key(a), key(b));
                        match (x.is_nan(), y.is_nan()) {
                            (true, true) => std::cmp::Ordering::Equal,
                            (true, false) => std::cmp::Ordering::Greater,
                            (false, true) => std::cmp::Ordering::Less,
                            _ if desc => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
                            _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                        }
                    });
                }
                Ok(Val::Vector(v))
            }
            "sort_by_label" | "sort_by_label_desc" => {
                let mut v = self.eval_vector(&c.args[0], g)?;
                if self.query_start != self.query_end {
                    self.warn(
                        "sort is ineffective for range queries since results are always ordered by labels",
                    );
                }
                let mut names = Vec::new();
                for a in &c.args[1..] {
                    names.push(self.eval_string(a, g)?);
                }
                let desc = name == "sort_by_label_desc";
                v.sort_by(|a, b| {
                    for n in &names {
                        let o = natural_cmp(
                            a.labels.get(n).unwrap_or(""),
                            b.labels.get(n).unwrap_or(""),
                        );
                        if o != std::cmp::Ordering::Equal {
                            return if desc { o.reverse() } else { o };
                        }
                    }
                    let o = a.labels.cmp(&b.labels);
                    if desc { o.reverse() } else { o }
                });
                Ok(Val::Vector(v))
            }
            "label_replace" => {
                let v = self.eval_vector(&c.args[0], g)?;
                let dst = self.eval_string(&c.args[1], g)?;
                let repl = self.eval_string(&c.args[2], g)?;
                let src = self.eval_string(&c.args[3], g)?;
                let re_src = self.eval_string(&c.args[4], g)?;
                let re = regex::Regex::new(&format!("^(?s:{re_src})$")).map_err(|e| {
                    EvalError::Execution(format!(
                        "invalid regular expression in label_replace(): {re_src}: {e}"
                    ))
                })?;
                if !valid_label_name(&dst) {
                    return Err(EvalError::Execution(format!(
                        "invalid destination label name in label_replace(): {dst}"
                    )));
                }
                let mut col = Collector::new(g.n);
                for s in v {
                    let sv = s.labels.get(&src).unwrap_or("");
                    let (labels, drop) = match re.captures(sv) {
                        Some(caps) => {
                            let mut res = String::new();
                            caps.expand(&repl, &mut res);
                            let mut b = s.labels.builder();
                            b.set(dst.as_str(), res.as_str());
                            let drop = if dst == METRIC_NAME {
                                false
                            } else {
                                s.drop_name
                            };
                            (b.build(), drop)
                        }
                        None => (s.labels.clone(), s.drop_name),
                    };
                    push_series(&mut col, labels, drop, &s.vals)?;
                }
                Ok(Val::Vector(col.finish()))
            }
            "label_join" => {
                let v = self.eval_vector(&c.args[0], g)?;
                let dst = self.eval_string(&c.args[1], g)?;
                let sep = self.eval_string(&c.args[2], g)?;
                let mut srcs = Vec::new();
                for a in &c.args[3..] {
                    srcs.push(self.eval_string(a, g)?);
                }
                if !valid_label_name(&dst) {
                    return Err(EvalError::Execution(format!(
                        "invalid destination label name in label_join(): {dst}"
                    )));
                }
                let mut col = Collector::new(g.n);
                for s in v {
                    let joined: Vec<&str> =
                        srcs.iter().map(|n| s.labels.get(n).unwrap_or("")).collect();
                    let joined = joined.join(&sep);
                    let mut b = s.labels.builder();
                    b.set(dst.as_str(), joined.as_str());
                    let drop = if dst == METRIC_NAME {
                        false
                    } else {
                        s.drop_name
                    };
                    push_series(&mut col, b.build(), drop, &s.vals)?;
                }
                Ok(Val::Vector(col.finish()))
            }
            "histogram_quantile" => Ok(Val::Vector(self.eval_histogram_quantile(c, g)?)),
            "info" => Ok(Val::Vector(self.eval_info(c, g)?)),
            // These read native-histogram samples only and skip floats; this
            // engine holds no native histograms (classic histograms are
            // float `le` series), so the result is always empty.
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
            | "histogram_stdvar" => {
                self.eval_vector(&c.args[0], g)?;
                Ok(Val::Vector(Vec::new()))
            }
            "histogram_quantiles" => Ok(Val::Vector(self.eval_histogram_quantiles(c, g)?)),
            "histogram_fraction" => Ok(Val::Vector(self.eval_histogram_fraction(c, g)?)),
            other => Err(EvalError::BadData(format!(
                "function \"{other}\" is not supported"
            ))),
        }
    }
}

fn push_series(
    col: &mut Collector,
    labels: Labels,
    drop: bool,
    vals: &[Option<f64>],
) -> Result<(), EvalError> {
    let slot = col.slot(labels, drop);
    for (i, v) in vals.iter().enumerate() {
        if let Some(v) = v {
            col.set(slot, i, *v)?;
        }
    }
    Ok(())
}

/// Applies `f` to every value; the result drops `__name__` (delayed).
fn map_values(v: Vec<Series>, f: impl Fn(f64) -> f64) -> Vec<Series> {
    map_values_step(v, |_, x| f(x))
}

fn map_values_step(mut v: Vec<Series>, f: impl Fn(usize, f64) -> f64) -> Vec<Series> {
    for s in &mut v {
        s.drop_name = true;
        for (i, x) in s.vals.iter_mut().enumerate() {
            if let Some(val) = x {
                *val = f(i, *val);
            }
        }
    }
    v
}

/// Natural ordering of label values (digit runs compare numerically).
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let na = a[si..i].trim_start_matches('0');
            let nb = b[sj..j].trim_start_matches('0');
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        } else {
            if ab[i] != bb[j] {
                return ab[i].cmp(&bb[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}
