//! Merging read results from several sources (head runs, blocks, head):
//! series with equal labels become one, samples merged by time with
//! duplicates dropped.

use crate::storage::api::{HistogramSeries, Series};

/// Sorts histogram runs by labels, then start time; a run equal to the
/// previous one (same labels, bounds and timestamps, e.g. a block and the
/// head both holding it) is dropped.
pub(crate) fn sort_histograms(mut v: Vec<HistogramSeries>) -> Vec<HistogramSeries> {
    v.sort_by(|a, b| {
        a.labels
            .cmp(&b.labels)
            .then(a.timestamps.first().cmp(&b.timestamps.first()))
    });
    v.dedup_by(|b, a| {
        a.labels == b.labels && a.upper_bounds == b.upper_bounds && a.timestamps == b.timestamps
    });
    v
}

/// Merges two time-sorted columns; at equal times the sample from `b`
/// (the newer source) is kept.
pub(crate) fn merge_columns(a: Series, b: Series) -> Series {
    if a.timestamps.is_empty() {
        return Series {
            labels: a.labels,
            ..b
        };
    }
    if b.timestamps.is_empty() {
        return a;
    }
    // Fast path: disjoint and ordered.
    if a.timestamps.last() < b.timestamps.first() {
        let mut a = a;
        a.timestamps.extend(b.timestamps);
        a.values.extend(b.values);
        return a;
    }
    let n = a.timestamps.len() + b.timestamps.len();
    let (mut ts, mut vs) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut i, mut j) = (0, 0);
    loop {
        match (a.timestamps.get(i), b.timestamps.get(j)) {
            (Some(&x), Some(&y)) if x < y => {
                ts.push(x);
                vs.push(a.values[i]);
                i += 1;
            }
            (Some(&x), Some(&y)) if x == y => {
                ts.push(y);
                vs.push(b.values[j]);
                i += 1;
                j += 1;
            }
            (_, Some(&y)) => {
                ts.push(y);
                vs.push(b.values[j]);
                j += 1;
            }
            (Some(&x), None) => {
                ts.push(x);
                vs.push(a.values[i]);
                i += 1;
            }
            (None, None) => break,
        }
    }
    Series {
        labels: a.labels,
        timestamps: ts,
        values: vs,
    }
}

/// Sorts by labels and merges entries with equal labels. Within equal
/// labels, later entries in `v` are treated as newer (their samples win
/// at equal timestamps); the sort is stable so callers control that order.
pub(crate) fn sort_and_merge(mut v: Vec<Series>) -> Vec<Series> {
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut out: Vec<Series> = Vec::with_capacity(v.len());
    for s in v {
        match out.last_mut() {
            Some(last) if last.labels == s.labels => {
                let prev = std::mem::replace(
                    last,
                    Series {
                        labels: s.labels.clone(),
                        timestamps: Vec::new(),
                        values: Vec::new(),
                    },
                );
                *last = merge_columns(prev, s);
            }
            _ => out.push(s),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;

    fn s(name: &str, ts: &[i64], vs: &[f64]) -> Series {
        Series {
            labels: Labels::from_pairs([("__name__", name)]),
            timestamps: ts.to_vec(),
            values: vs.to_vec(),
        }
    }

    #[test]
    fn merges_by_labels_and_time() {
        let out = sort_and_merge(vec![
            s("b", &[1], &[1.0]),
            s("a", &[1, 3], &[1.0, 3.0]),
            s("a", &[2, 3], &[2.0, 30.0]),
            s("a", &[], &[]),
        ]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].timestamps, vec![1, 2, 3]);
        assert_eq!(out[0].values, vec![1.0, 2.0, 30.0]);
        assert_eq!(out[1].labels.metric_name(), Some("b"));
        let fast = merge_columns(s("a", &[1], &[1.0]), s("a", &[5], &[5.0]));
        assert_eq!(fast.timestamps, vec![1, 5]);
    }
}
