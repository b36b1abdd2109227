//! The head's postings index: label pair -> sorted series refs, and matcher
//! evaluation over it with Prometheus semantics (a matcher that accepts ""
//! also selects series lacking the label).
//!
//! Histogram series are indexed under the three view names (`f_bucket`,
//! `f_sum`, `f_count`) for `__name__` and not under `le` (see
//! [`crate::storage::views`]). Evaluation therefore returns a *superset*
//! for histogram series (every histogram is a candidate for an `le`
//! matcher, and a `__name__` exclusion does not exclude a histogram whose
//! other views may still match); callers check candidates exactly.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Labels, METRIC_NAME, Matcher};
use crate::storage::views::{LE, view_names};

/// Label pair -> sorted refs, plus the list of all refs and of histogram refs.
#[derive(Debug, Default)]
pub(crate) struct Postings {
    by_name: HashMap<Arc<str>, HashMap<Arc<str>, Vec<u64>>>,
    all: Vec<u64>,
    histograms: Vec<u64>,
}

fn insert_sorted(v: &mut Vec<u64>, r: u64) {
    // Refs are allocated increasing, so this is a push in the common case.
    match v.last() {
        Some(&l) if l >= r => {
            if let Err(i) = v.binary_search(&r) {
                v.insert(i, r);
            }
        }
        _ => v.push(r),
    }
}

fn remove_sorted(v: &mut Vec<u64>, r: u64) {
    if let Ok(i) = v.binary_search(&r) {
        v.remove(i);
    }
}

/// Sorted-set intersection.
pub(crate) fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        if x < y {
            i += 1;
        } else if x > y {
            j += 1;
        } else {
            out.push(x);
            i += 1;
            j += 1;
        }
    }
    out
}

/// Sorted-set union.
pub(crate) fn union(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(a.len() + b.len()));
    loop {
        match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x < y => {
                out.push(x);
                i += 1;
            }
            (Some(&x), Some(&y)) if x > y => {
                out.push(y);
                j += 1;
            }
            (Some(&x), Some(_)) => {
                out.push(x);
                i += 1;
                j += 1;
            }
            (Some(&x), None) => {
                out.push(x);
                i += 1;
            }
            (None, Some(&y)) => {
                out.push(y);
                j += 1;
            }
            (None, None) => return out,
        }
    }
}

/// Sorted-set difference `a - b`.
pub(crate) fn difference(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut j, mut out) = (0, Vec::with_capacity(a.len()));
    for &x in a {
        while b.get(j).is_some_and(|&y| y < x) {
            j += 1;
        }
        if b.get(j) != Some(&x) {
            out.push(x);
        }
    }
    out
}

impl Postings {
    /// The label pairs a series is indexed under.
    fn pairs(labels: &Labels, histogram: bool) -> Vec<(Arc<str>, Arc<str>)> {
        let mut out = Vec::with_capacity(labels.len() + 2);
        for l in labels.iter() {
            if histogram && &*l.name == METRIC_NAME {
                for n in view_names(&l.value) {
                    out.push((l.name.clone(), Arc::from(n)));
                }
            } else if !(histogram && &*l.name == LE) {
                out.push((l.name.clone(), l.value.clone()));
            }
        }
        out
    }

    /// Indexes a series.
    pub(crate) fn add(&mut self, r: u64, labels: &Labels, histogram: bool) {
        for (n, v) in Self::pairs(labels, histogram) {
            insert_sorted(self.by_name.entry(n).or_default().entry(v).or_default(), r);
        }
        insert_sorted(&mut self.all, r);
        if histogram {
            insert_sorted(&mut self.histograms, r);
        }
    }

    /// Removes a series.
    pub(crate) fn remove(&mut self, r: u64, labels: &Labels, histogram: bool) {
        for (n, v) in Self::pairs(labels, histogram) {
            if let Some(values) = self.by_name.get_mut(&n) {
                if let Some(list) = values.get_mut(&v) {
                    remove_sorted(list, r);
                    if list.is_empty() {
                        values.remove(&v);
                    }
                }
                if values.is_empty() {
                    self.by_name.remove(&n);
                }
            }
        }
        remove_sorted(&mut self.all, r);
        if histogram {
            remove_sorted(&mut self.histograms, r);
        }
    }

    /// Candidate refs for `matchers` (all of them must hold): exact for
    /// float series, a superset for histogram series (see module docs).
    pub(crate) fn select(&self, matchers: &[Matcher]) -> Vec<u64> {
        let mut acc: Option<Vec<u64>> = None;
        // Matchers that can only shrink the set cheaply go first.
        let mut order: Vec<&Matcher> = matchers.iter().collect();
        order.sort_by_key(|m| m.matches_empty());
        for m in order {
            let set = self.eval(m);
            acc = Some(match acc {
                None => set,
                Some(a) => intersect(&a, &set),
            });
            if acc.as_ref().is_some_and(|a| a.is_empty()) {
                break;
            }
        }
        acc.unwrap_or_else(|| self.all.clone())
    }

    fn eval(&self, m: &Matcher) -> Vec<u64> {
        let values = self.by_name.get(m.name.as_str());
        let set = if m.matches_empty() {
            // All series minus those whose value for the label fails.
            let mut bad: Vec<u64> = Vec::new();
            if let Some(values) = values {
                for (v, refs) in values {
                    if !m.matches(v) {
                        bad.extend_from_slice(refs);
                    }
                }
                bad.sort_unstable();
                bad.dedup();
            }
            if m.name == METRIC_NAME {
                // A histogram excluded through one view may match through another.
                bad = difference(&bad, &self.histograms);
            }
            difference(&self.all, &bad)
        } else {
            let mut good: Vec<u64> = Vec::new();
            if let Some(values) = values {
                if m.op == crate::model::MatchOp::Equal {
                    if let Some(refs) = values.get(m.value.as_str()) {
                        good = refs.clone();
                    }
                } else {
                    for (v, refs) in values {
                        if m.matches(v) {
                            good.extend_from_slice(refs);
                        }
                    }
                    good.sort_unstable();
                    good.dedup();
                }
            }
            good
        };
        if m.name == LE {
            // `le` of histogram series is not indexed: all are candidates.
            union(&set, &self.histograms)
        } else {
            set
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MatchOp;

    fn m(op: MatchOp, n: &str, v: &str) -> Matcher {
        Matcher::new(op, n, v).unwrap()
    }

    fn setup() -> Postings {
        let mut p = Postings::default();
        p.add(
            1,
            &Labels::from_pairs([(METRIC_NAME, "up"), ("job", "a")]),
            false,
        );
        p.add(
            2,
            &Labels::from_pairs([(METRIC_NAME, "up"), ("job", "b")]),
            false,
        );
        p.add(
            3,
            &Labels::from_pairs([(METRIC_NAME, "x"), ("env", "prod")]),
            false,
        );
        p.add(
            4,
            &Labels::from_pairs([(METRIC_NAME, "lat"), ("job", "a")]),
            true,
        );
        p.add(
            5,
            &Labels::from_pairs([(METRIC_NAME, "x_bucket"), ("le", "1")]),
            false,
        );
        p
    }

    #[test]
    fn prometheus_matcher_semantics() {
        let p = setup();
        assert_eq!(p.select(&[Matcher::equal(METRIC_NAME, "up")]), vec![1, 2]);
        assert_eq!(p.select(&[m(MatchOp::NotEqual, "job", "a")]), vec![2, 3, 5]);
        // job="" selects series without job.
        assert_eq!(p.select(&[Matcher::equal("job", "")]), vec![3, 5]);
        assert_eq!(
            p.select(&[m(MatchOp::RegexMatch, "job", "a|b")]),
            vec![1, 2, 4]
        );
        assert_eq!(
            p.select(&[m(MatchOp::RegexNoMatch, "job", "a")]),
            vec![2, 3, 5]
        );
        assert_eq!(
            p.select(&[m(MatchOp::RegexMatch, "job", ".*")]),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(p.select(&[]), vec![1, 2, 3, 4, 5]);
        // Histogram views.
        assert_eq!(p.select(&[Matcher::equal(METRIC_NAME, "lat_sum")]), vec![4]);
        assert_eq!(
            p.select(&[m(MatchOp::RegexMatch, METRIC_NAME, ".*_bucket")]),
            vec![4, 5]
        );
        assert_eq!(
            p.select(&[Matcher::equal(METRIC_NAME, "lat")]),
            Vec::<u64>::new()
        );
        // Excluding one view keeps the histogram as a candidate.
        assert!(
            p.select(&[m(MatchOp::NotEqual, METRIC_NAME, "lat_sum")])
                .contains(&4)
        );
        // le: float series by value, histograms always candidates.
        assert_eq!(p.select(&[Matcher::equal(LE, "1")]), vec![4, 5]);
    }

    #[test]
    fn remove_unindexes() {
        let mut p = setup();
        p.remove(
            4,
            &Labels::from_pairs([(METRIC_NAME, "lat"), ("job", "a")]),
            true,
        );
        p.remove(
            1,
            &Labels::from_pairs([(METRIC_NAME, "up"), ("job", "a")]),
            false,
        );
        assert_eq!(p.select(&[Matcher::equal("job", "a")]), Vec::<u64>::new());
        assert_eq!(p.select(&[]), vec![2, 3, 5]);
        assert!(p.by_name.get("job").unwrap().get("a").is_none());
    }

    #[test]
    fn set_ops() {
        assert_eq!(intersect(&[1, 3, 5], &[3, 4, 5]), vec![3, 5]);
        assert_eq!(union(&[1, 3], &[2, 3, 9]), vec![1, 2, 3, 9]);
        assert_eq!(difference(&[1, 2, 3, 4], &[2, 4, 5]), vec![1, 3]);
    }
}
