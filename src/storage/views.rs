//! Histogram views: how a first-class histogram series is seen by readers.
//!
//! A histogram series is stored once, under its *family* labels (e.g.
//! `{__name__="http_latency_seconds", job="api"}`), as columns: finite upper
//! bounds once per run, then one column per bucket (cumulative counts, the
//! last being `+Inf`), a sum column and a count column.
//!
//! Readers see it as the classic Prometheus float series ("views"):
//! - `<family>_bucket{le="<bound>", ...}`, one per finite bound plus `le="+Inf"`,
//! - `<family>_sum{...}`,
//! - `<family>_count{...}`.
//!
//! Indexing rule shared by the head and by blocks: a histogram series is
//! entered in the postings under `__name__` = each of the three view names
//! (`f_bucket`, `f_sum`, `f_count`) plus its other family labels; `le` is
//! *not* indexed (its values depend on the bounds of each run). A reader that
//! evaluates matchers through postings must therefore treat every histogram
//! series as a candidate for a matcher on `le` and then call
//! [`select_views`], which applies every matcher exactly, per view and per
//! bound.
//!
//! The family labels never contain `le` (the head rejects such a histogram
//! series as invalid) nor a `__name__` ending in a view suffix by necessity;
//! the functions here only assume `__name__` is present.

use std::sync::Arc;

use crate::model::{Label, Labels, METRIC_NAME, Matcher};
use crate::storage::api::{HistogramSeries, Series};

/// The label that carries a bucket's upper bound in `_bucket` views.
pub(crate) const LE: &str = "le";
/// Suffix of the bucket view's metric name.
pub(crate) const BUCKET_SUFFIX: &str = "_bucket";
/// Suffix of the sum view's metric name.
pub(crate) const SUM_SUFFIX: &str = "_sum";
/// Suffix of the count view's metric name.
pub(crate) const COUNT_SUFFIX: &str = "_count";

/// One of the three views of a histogram family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ViewKind {
    /// `<family>_bucket{le=...}`.
    Bucket,
    /// `<family>_sum`.
    Sum,
    /// `<family>_count`.
    Count,
}

impl ViewKind {
    /// All kinds, in the order their names sort for a family whose name is a
    /// plain identifier (`_bucket` < `_count` < `_sum`).
    pub(crate) const ALL: [ViewKind; 3] = [ViewKind::Bucket, ViewKind::Count, ViewKind::Sum];

    /// The metric-name suffix of this view.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            ViewKind::Bucket => BUCKET_SUFFIX,
            ViewKind::Sum => SUM_SUFFIX,
            ViewKind::Count => COUNT_SUFFIX,
        }
    }
}

/// The metric name of view `kind` of family `family`.
pub(crate) fn view_name(family: &str, kind: ViewKind) -> String {
    let mut s = String::with_capacity(family.len() + 7);
    s.push_str(family);
    s.push_str(kind.suffix());
    s
}

/// The three view names of a family, in the order of [`ViewKind::ALL`]
/// (these are the `__name__` values a histogram series is indexed under).
pub(crate) fn view_names(family: &str) -> [String; 3] {
    ViewKind::ALL.map(|k| view_name(family, k))
}

/// Formats a bucket bound the way Prometheus clients write `le` values:
/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` (shortest representation that
/// round-trips; exponent form when the decimal exponent is < -4 or >= 21),
/// with `+Inf`, `-Inf` and `NaN` spelled as Prometheus does.
///
/// Examples: `0.005`, `1`, `2.5`, `123456`, `1e+06`, `1e-05`, `+Inf`.
pub(crate) fn format_le(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Rust's `{:e}` prints the shortest round-tripping digits as
    // `d[.ddd]e<exp>`; re-lay them out per Go's rules.
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let nd = digits.len() as i32;
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    // Go's 'g' with shortest precision uses exponent form when the decimal
    // exponent is < -4 or >= 6 (`eprec = 6` in strconv/ftoa.go).
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if nd > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let a = exp.unsigned_abs();
        if a < 10 {
            out.push('0');
        }
        out.push_str(&a.to_string());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = (exp + 1) as usize;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// The labels of one view: `family` with `__name__` replaced by the view
/// name and, for a bucket view, `le` set to `le`.
pub(crate) fn view_labels(family: &Labels, kind: ViewKind, le: Option<&str>) -> Labels {
    let fam = family.metric_name().unwrap_or("");
    let name: Arc<str> = Arc::from(view_name(fam, kind));
    let mut v: Vec<Label> = Vec::with_capacity(family.len() + 1);
    let mut le_done = le.is_none();
    for l in family.iter() {
        if !le_done && &*l.name > LE {
            v.push(Label::new(LE, le.unwrap_or("")));
            le_done = true;
        }
        if &*l.name == METRIC_NAME {
            v.push(Label {
                name: l.name.clone(),
                value: name.clone(),
            });
        } else if &*l.name != LE {
            v.push(l.clone());
        }
    }
    if !le_done {
        v.push(Label::new(LE, le.unwrap_or("")));
    }
    if family.metric_name().is_none() {
        v.push(Label::new(METRIC_NAME, name));
        v.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Labels::from_sorted(v)
}

/// The labels of the `_bucket` view without `le`: the identity of a
/// [`HistogramSeries`].
pub(crate) fn bucket_labels(family: &Labels) -> Labels {
    view_labels(family, ViewKind::Bucket, None)
}

/// Which views of one histogram run a matcher list selects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ViewSelection {
    /// Selected bucket indices (0..=bounds.len(), the last being `+Inf`),
    /// ascending.
    pub(crate) buckets: Vec<usize>,
    /// The `_sum` view is selected.
    pub(crate) sum: bool,
    /// The `_count` view is selected.
    pub(crate) count: bool,
}

impl ViewSelection {
    /// True when no view is selected.
    pub(crate) fn is_empty(&self) -> bool {
        self.buckets.is_empty() && !self.sum && !self.count
    }

    /// The label sets of the selected views, unsorted (bucket views first in
    /// bound order, then sum, then count).
    pub(crate) fn labels(&self, family: &Labels, bounds: &[f64]) -> Vec<Labels> {
        let mut out = Vec::with_capacity(self.buckets.len() + 2);
        for &i in &self.buckets {
            let le = bucket_le(bounds, i);
            out.push(view_labels(family, ViewKind::Bucket, Some(&le)));
        }
        if self.sum {
            out.push(view_labels(family, ViewKind::Sum, None));
        }
        if self.count {
            out.push(view_labels(family, ViewKind::Count, None));
        }
        out
    }
}

/// The `le` value of bucket `i` (`+Inf` for `i == bounds.len()`).
pub(crate) fn bucket_le(bounds: &[f64], i: usize) -> String {
    match bounds.get(i) {
        Some(&b) => format_le(b),
        None => "+Inf".to_string(),
    }
}

/// Value of label `name` in view `kind` of `family` (`""` when absent), not
/// counting `le`.
fn view_value<'a>(family: &'a Labels, name: &str, view: &'a str) -> &'a str {
    if name == METRIC_NAME {
        view
    } else {
        family.get(name).unwrap_or("")
    }
}

/// Decides which views of a histogram run (family labels + bounds) match
/// every matcher, with Prometheus semantics: non-`le` matchers are applied to
/// the view's labels (`__name__` being the view name, an absent label being
/// `""`); `le` matchers are applied to each bucket's formatted bound, and to
/// `""` for the `_sum` and `_count` views (which have no `le`).
pub(crate) fn select_views(family: &Labels, bounds: &[f64], matchers: &[Matcher]) -> ViewSelection {
    let fam = family.metric_name().unwrap_or("");
    let mut sel = ViewSelection::default();
    for kind in ViewKind::ALL {
        let name = view_name(fam, kind);
        let others_ok = matchers
            .iter()
            .filter(|m| m.name != LE)
            .all(|m| m.matches(view_value(family, &m.name, &name)));
        if !others_ok {
            continue;
        }
        let mut le_ms = matchers.iter().filter(|m| m.name == LE).peekable();
        match kind {
            ViewKind::Bucket => {
                if le_ms.peek().is_none() {
                    sel.buckets = (0..=bounds.len()).collect();
                } else {
                    let le_ms: Vec<&Matcher> = le_ms.collect();
                    sel.buckets = (0..=bounds.len())
                        .filter(|&i| {
                            let le = bucket_le(bounds, i);
                            le_ms.iter().all(|m| m.matches(&le))
                        })
                        .collect();
                }
            }
            ViewKind::Sum => sel.sum = le_ms.all(|m| m.matches("")),
            ViewKind::Count => sel.count = le_ms.all(|m| m.matches("")),
        }
    }
    sel
}

/// True when the `_bucket` view of `family` matches every non-`le` matcher
/// (the rule of [`crate::storage::Querier::select_histograms`]).
pub(crate) fn bucket_view_matches_ignoring_le(family: &Labels, matchers: &[Matcher]) -> bool {
    let name = view_name(family.metric_name().unwrap_or(""), ViewKind::Bucket);
    matchers
        .iter()
        .filter(|m| m.name != LE)
        .all(|m| m.matches(view_value(family, &m.name, &name)))
}

/// Columns of one histogram run in a time range. `buckets[i][j]` is the
/// cumulative count of bucket `i` at `timestamps[j]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HistogramColumns<'a> {
    /// Finite upper bounds, ascending.
    pub(crate) bounds: &'a [f64],
    /// Timestamps (ms), strictly increasing.
    pub(crate) timestamps: &'a [i64],
    /// One column per bucket (bounds.len() + 1).
    pub(crate) buckets: &'a [Vec<f64>],
    /// Sum column.
    pub(crate) sum: &'a [f64],
    /// Count column.
    pub(crate) count: &'a [f64],
}

/// Expands the selected views of a histogram run into float [`Series`]
/// (unsorted: buckets in bound order, then sum, then count). A bucket index
/// without a column yields no series (defensive: callers pass matching
/// shapes). With `labels_only`, sample vectors are left empty.
pub(crate) fn expand_views(
    family: &Labels,
    cols: HistogramColumns<'_>,
    sel: &ViewSelection,
    labels_only: bool,
) -> Vec<Series> {
    let mk = |labels: Labels, values: &[f64]| Series {
        labels,
        timestamps: if labels_only {
            Vec::new()
        } else {
            cols.timestamps.to_vec()
        },
        values: if labels_only {
            Vec::new()
        } else {
            values.to_vec()
        },
    };
    let mut out = Vec::with_capacity(sel.buckets.len() + 2);
    for &i in &sel.buckets {
        if let Some(col) = cols.buckets.get(i) {
            let le = bucket_le(cols.bounds, i);
            out.push(mk(view_labels(family, ViewKind::Bucket, Some(&le)), col));
        }
    }
    if sel.sum {
        out.push(mk(view_labels(family, ViewKind::Sum, None), cols.sum));
    }
    if sel.count {
        out.push(mk(view_labels(family, ViewKind::Count, None), cols.count));
    }
    out
}

/// Builds the [`HistogramSeries`] of a run (labels = `_bucket` labels
/// without `le`).
pub(crate) fn histogram_series(
    family: &Labels,
    bounds: Arc<[f64]>,
    timestamps: Vec<i64>,
    buckets: Vec<Vec<f64>>,
    sum: Vec<f64>,
    count: Vec<f64>,
) -> HistogramSeries {
    HistogramSeries {
        labels: bucket_labels(family),
        upper_bounds: bounds,
        timestamps,
        buckets,
        sum,
        count,
    }
}

/// Label names a histogram run contributes through its selected views.
pub(crate) fn view_label_names(family: &Labels, sel: &ViewSelection) -> Vec<Arc<str>> {
    if sel.is_empty() {
        return Vec::new();
    }
    let mut names: Vec<Arc<str>> = family.iter().map(|l| l.name.clone()).collect();
    if !sel.buckets.is_empty() && family.get(LE).is_none() {
        names.push(Arc::from(LE));
    }
    if family.metric_name().is_none() {
        names.push(Arc::from(METRIC_NAME));
    }
    names
}

/// Values of label `name` a histogram run contributes through its selected
/// views (may contain repeats only if bounds repeat; callers dedup).
pub(crate) fn view_label_values(
    family: &Labels,
    bounds: &[f64],
    sel: &ViewSelection,
    name: &str,
) -> Vec<String> {
    if sel.is_empty() {
        return Vec::new();
    }
    if name == LE {
        return sel.buckets.iter().map(|&i| bucket_le(bounds, i)).collect();
    }
    if name == METRIC_NAME {
        let fam = family.metric_name().unwrap_or("");
        let mut v = Vec::new();
        if !sel.buckets.is_empty() {
            v.push(view_name(fam, ViewKind::Bucket));
        }
        if sel.sum {
            v.push(view_name(fam, ViewKind::Sum));
        }
        if sel.count {
            v.push(view_name(fam, ViewKind::Count));
        }
        return v;
    }
    family
        .get(name)
        .map(|s| vec![s.to_string()])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MatchOp;

    fn fam() -> Labels {
        Labels::from_pairs([(METRIC_NAME, "lat"), ("job", "api"), ("zone", "a")])
    }

    fn m(op: MatchOp, n: &str, v: &str) -> Matcher {
        Matcher::new(op, n, v).unwrap()
    }

    #[test]
    fn format_le_matches_go() {
        let cases: &[(f64, &str)] = &[
            (0.005, "0.005"),
            (0.01, "0.01"),
            (0.025, "0.025"),
            (0.1, "0.1"),
            (0.25, "0.25"),
            (1.0, "1"),
            (2.5, "2.5"),
            (10.0, "10"),
            (100.0, "100"),
            (1000.0, "1000"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for &(f, want) in cases {
            assert_eq!(format_le(f), want, "format_le({f:e})");
        }
    }

    proptest::proptest! {
        #[test]
        fn format_le_round_trips(f in proptest::num::f64::ANY) {
            let s = format_le(f);
            let back: f64 = match s.as_str() {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                other => other.parse().unwrap(),
            };
            if f.is_nan() {
                proptest::prop_assert!(back.is_nan());
            } else {
                proptest::prop_assert_eq!(back.to_bits(), f.to_bits());
            }
        }
    }

    #[test]
    fn view_names_and_labels() {
        assert_eq!(view_names("f"), ["f_bucket", "f_count", "f_sum"]);
        let l = view_labels(&fam(), ViewKind::Bucket, Some("0.5"));
        assert_eq!(
            l.to_string(),
            r#"lat_bucket{job="api", le="0.5", zone="a"}"#
        );
        let l = view_labels(&fam(), ViewKind::Sum, None);
        assert_eq!(l.to_string(), r#"lat_sum{job="api", zone="a"}"#);
        let only_name = Labels::from_pairs([(METRIC_NAME, "x")]);
        assert_eq!(
            view_labels(&only_name, ViewKind::Bucket, Some("+Inf")).to_string(),
            r#"x_bucket{le="+Inf"}"#
        );
        assert_eq!(
            bucket_labels(&fam()).to_string(),
            r#"lat_bucket{job="api", zone="a"}"#
        );
    }

    #[test]
    fn selection_by_name_and_le() {
        let bounds = [0.1, 1.0];
        let all = select_views(
            &fam(),
            &bounds,
            &[m(MatchOp::RegexMatch, METRIC_NAME, "lat_.*")],
        );
        assert_eq!(all.buckets, vec![0, 1, 2]);
        assert!(all.sum && all.count);

        let b = select_views(
            &fam(),
            &bounds,
            &[Matcher::equal(METRIC_NAME, "lat_bucket")],
        );
        assert_eq!(b.buckets, vec![0, 1, 2]);
        assert!(!b.sum && !b.count);

        let s = select_views(&fam(), &bounds, &[Matcher::equal(METRIC_NAME, "lat_sum")]);
        assert!(s.buckets.is_empty() && s.sum && !s.count);

        let none = select_views(&fam(), &bounds, &[Matcher::equal(METRIC_NAME, "lat")]);
        assert!(none.is_empty());

        // le matcher: buckets by bound; sum/count have le="" which "1" rejects.
        let le = select_views(
            &fam(),
            &bounds,
            &[
                m(MatchOp::RegexMatch, METRIC_NAME, "lat_.*"),
                Matcher::equal(LE, "1"),
            ],
        );
        assert_eq!(le.buckets, vec![1]);
        assert!(!le.sum && !le.count);

        let inf = select_views(&fam(), &bounds, &[Matcher::equal(LE, "+Inf")]);
        assert_eq!(inf.buckets, vec![2]);

        // le!="1" matches "" so sum and count stay.
        let ne = select_views(&fam(), &bounds, &[m(MatchOp::NotEqual, LE, "1")]);
        assert_eq!(ne.buckets, vec![0, 2]);
        assert!(ne.sum && ne.count);

        // Absent label matches "" (Prometheus semantics).
        let absent = select_views(&fam(), &bounds, &[Matcher::equal("missing", "")]);
        assert_eq!(absent.buckets.len(), 3);
        let absent = select_views(&fam(), &bounds, &[m(MatchOp::RegexMatch, "missing", ".+")]);
        assert!(absent.is_empty());

        // Other labels.
        let job = select_views(&fam(), &bounds, &[m(MatchOp::NotEqual, "job", "api")]);
        assert!(job.is_empty());
    }

    #[test]
    fn expand_and_histogram_series() {
        let bounds: Arc<[f64]> = Arc::from(vec![0.5]);
        let ts = vec![1000, 2000];
        let buckets = vec![vec![1.0, 2.0], vec![3.0, 5.0]];
        let sum = vec![0.7, 1.9];
        let count = vec![3.0, 5.0];
        let cols = HistogramColumns {
            bounds: &bounds,
            timestamps: &ts,
            buckets: &buckets,
            sum: &sum,
            count: &count,
        };
        let sel = select_views(&fam(), &bounds, &[]);
        let s = expand_views(&fam(), cols, &sel, false);
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].labels.get(LE), Some("0.5"));
        assert_eq!(s[1].labels.get(LE), Some("+Inf"));
        assert_eq!(s[1].values, vec![3.0, 5.0]);
        assert_eq!(s[2].labels.metric_name(), Some("lat_sum"));
        assert_eq!(s[2].values, sum);
        assert_eq!(s[3].labels.metric_name(), Some("lat_count"));
        assert_eq!(s[3].timestamps, ts);
        let lo = expand_views(&fam(), cols, &sel, true);
        assert!(lo.iter().all(|s| s.timestamps.is_empty()));
        assert_eq!(
            sel.labels(&fam(), &bounds),
            s.iter().map(|s| s.labels.clone()).collect::<Vec<_>>()
        );

        let h = histogram_series(&fam(), bounds.clone(), ts.clone(), buckets, sum, count);
        assert_eq!(h.labels.to_string(), r#"lat_bucket{job="api", zone="a"}"#);
        assert!(bucket_view_matches_ignoring_le(
            &fam(),
            &[
                Matcher::equal(METRIC_NAME, "lat_bucket"),
                Matcher::equal(LE, "0.5")
            ]
        ));
        assert!(!bucket_view_matches_ignoring_le(
            &fam(),
            &[Matcher::equal(METRIC_NAME, "lat_sum")]
        ));
    }

    #[test]
    fn label_names_and_values() {
        let bounds = [0.25];
        let sel = select_views(&fam(), &bounds, &[]);
        let names: Vec<String> = view_label_names(&fam(), &sel)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(names.contains(&"le".to_string()) && names.contains(&"job".to_string()));
        assert_eq!(
            view_label_values(&fam(), &bounds, &sel, LE),
            vec!["0.25", "+Inf"]
        );
        assert_eq!(
            view_label_values(&fam(), &bounds, &sel, METRIC_NAME),
            vec!["lat_bucket", "lat_sum", "lat_count"]
        );
        let sum_only = select_views(&fam(), &bounds, &[Matcher::equal(METRIC_NAME, "lat_sum")]);
        let names: Vec<String> = view_label_names(&fam(), &sum_only)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(!names.contains(&"le".to_string()));
    }
}
