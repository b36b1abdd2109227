//! Merging samples of the same series coming from several places (several
//! histogram runs of one block, several blocks, overlapping blocks under
//! compaction). On equal timestamps the part given later wins, so callers
//! pass parts in increasing priority (blocks in `(min_time, id)` order).

use std::sync::Arc;

use super::{Block, BlockSeries, BlockSeriesData, HistogramRun};
use crate::model::Labels;
use crate::storage::api::{HistogramSeries, Series, StorageError};
use crate::storage::index::IndexSeries;

/// Picks `(part, row)` pairs so that timestamps are strictly increasing and
/// each timestamp comes from the last part that has it.
fn merge_rows(parts: &[&[i64]]) -> Vec<(usize, usize)> {
    let disjoint = parts.windows(2).all(|w| match (w[0].last(), w[1].first()) {
        (Some(a), Some(b)) => a < b,
        _ => true,
    });
    if disjoint {
        return parts
            .iter()
            .enumerate()
            .flat_map(|(p, ts)| (0..ts.len()).map(move |r| (p, r)))
            .collect();
    }
    let mut all: Vec<(i64, usize, usize)> = parts
        .iter()
        .enumerate()
        .flat_map(|(p, ts)| ts.iter().enumerate().map(move |(r, &t)| (t, p, r)))
        .collect();
    all.sort_unstable_by_key(|&(t, p, _)| (t, p));
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(all.len());
    let mut last_t = None;
    for (t, p, r) in all {
        if last_t == Some(t) {
            if let Some(l) = out.last_mut() {
                *l = (p, r);
            }
        } else {
            out.push((p, r));
            last_t = Some(t);
        }
    }
    out
}

fn pick<T: Copy>(cols: &[&[T]], rows: &[(usize, usize)]) -> Vec<T> {
    rows.iter()
        .filter_map(|&(p, r)| cols.get(p).and_then(|c| c.get(r)).copied())
        .collect()
}

/// Sorts by labels and merges series with equal labels.
pub(crate) fn merge_series(mut v: Vec<Series>) -> Vec<Series> {
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut out: Vec<Series> = Vec::with_capacity(v.len());
    let mut group: Vec<Series> = Vec::new();
    for s in v {
        if group.first().is_some_and(|g| g.labels != s.labels) {
            out.push(merge_group(std::mem::take(&mut group)));
        }
        group.push(s);
    }
    if !group.is_empty() {
        out.push(merge_group(group));
    }
    out
}

fn merge_group(mut g: Vec<Series>) -> Series {
    if g.len() == 1
        && let Some(s) = g.pop()
    {
        return s;
    }
    // Common case (a series read from consecutive blocks): the parts follow
    // each other in time, so they are concatenated into the first part's
    // columns with one allocation each.
    if g.iter().all(|s| s.timestamps.is_empty()) {
        // Labels only: any part will do.
        g.truncate(1);
    } else {
        g.retain(|s| !s.timestamps.is_empty());
    }
    let ordered = g
        .windows(2)
        .all(|w| w[0].timestamps.last() < w[1].timestamps.first());
    if ordered && let Some((first, rest)) = g.split_first_mut() {
        let extra: usize = rest.iter().map(|s| s.timestamps.len()).sum();
        let mut out = std::mem::replace(
            first,
            Series {
                labels: Labels::default(),
                timestamps: Vec::new(),
                values: Vec::new(),
            },
        );
        out.timestamps.reserve_exact(extra);
        out.values.reserve_exact(extra);
        for s in rest {
            out.timestamps.extend_from_slice(&s.timestamps);
            out.values.extend_from_slice(&s.values);
        }
        return out;
    }
    let ts: Vec<&[i64]> = g.iter().map(|s| s.timestamps.as_slice()).collect();
    let vs: Vec<&[f64]> = g.iter().map(|s| s.values.as_slice()).collect();
    let rows = merge_rows(&ts);
    Series {
        labels: g.first().map(|s| s.labels.clone()).unwrap_or_default(),
        timestamps: pick(&ts, &rows),
        values: pick(&vs, &rows),
    }
}

fn same_bounds(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Merges two runs with equal bounds.
fn merge_two_runs(a: HistogramRun, b: HistogramRun) -> HistogramRun {
    let rows = merge_rows(&[&a.timestamps, &b.timestamps]);
    let col = |x: &[f64], y: &[f64]| pick(&[x, y], &rows);
    HistogramRun {
        upper_bounds: a.upper_bounds.clone(),
        timestamps: pick(&[&a.timestamps, &b.timestamps], &rows),
        buckets: a
            .buckets
            .iter()
            .zip(&b.buckets)
            .map(|(x, y)| col(x, y))
            .collect(),
        sum: col(&a.sum, &b.sum),
        count: col(&a.count, &b.count),
    }
}

/// Keeps only rows of `r` before `t`.
fn truncate_run(r: &mut HistogramRun, t: i64) {
    let n = r.timestamps.partition_point(|&x| x < t);
    r.timestamps.truncate(n);
    r.sum.truncate(n);
    r.count.truncate(n);
    for b in &mut r.buckets {
        b.truncate(n);
    }
}

/// Orders runs of one series by time and merges neighbours with equal
/// bounds; where runs with different bounds overlap, the later-starting run
/// wins from its first timestamp on.
pub(super) fn merge_runs(mut runs: Vec<HistogramRun>) -> Vec<HistogramRun> {
    runs.retain(|r| !r.timestamps.is_empty());
    runs.sort_by_key(|r| r.timestamps.first().copied().unwrap_or(i64::MAX));
    let mut out: Vec<HistogramRun> = Vec::with_capacity(runs.len());
    for r in runs {
        match out.pop() {
            Some(prev) if same_bounds(&prev.upper_bounds, &r.upper_bounds) => {
                out.push(merge_two_runs(prev, r))
            }
            Some(mut prev) => {
                if let Some(&f) = r.timestamps.first() {
                    truncate_run(&mut prev, f);
                }
                if !prev.timestamps.is_empty() {
                    out.push(prev);
                }
                out.push(r);
            }
            None => out.push(r),
        }
    }
    out
}

/// Sorts histogram series by labels then time and merges runs of equal
/// labels and bounds.
pub(crate) fn merge_histograms(mut v: Vec<HistogramSeries>) -> Vec<HistogramSeries> {
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let j = i + v.get(i..).map_or(0, |rest| {
            rest.iter()
                .take_while(|s| Some(&s.labels) == v.get(i).map(|x| &x.labels))
                .count()
        });
        let group: Vec<HistogramSeries> = v
            .get(i..j)
            .map(<[HistogramSeries]>::to_vec)
            .unwrap_or_default();
        i = j.max(i + 1);
        let labels = group.first().map(|s| s.labels.clone()).unwrap_or_default();
        if group.iter().all(|s| s.timestamps.is_empty()) {
            // labels_only reads: one entry per distinct bounds.
            let mut seen: Vec<Arc<[f64]>> = Vec::new();
            for s in group {
                if !seen.iter().any(|b| same_bounds(b, &s.upper_bounds)) {
                    seen.push(s.upper_bounds.clone());
                    out.push(s);
                }
            }
            continue;
        }
        let runs = group
            .into_iter()
            .map(|s| HistogramRun {
                upper_bounds: s.upper_bounds,
                timestamps: s.timestamps,
                buckets: s.buckets,
                sum: s.sum,
                count: s.count,
            })
            .collect();
        for r in merge_runs(runs) {
            out.push(HistogramSeries {
                labels: labels.clone(),
                upper_bounds: r.upper_bounds,
                timestamps: r.timestamps,
                buckets: r.buckets,
                sum: r.sum,
                count: r.count,
            });
        }
    }
    out
}

/// Merges parts of one series (same labels and kind), later parts winning.
pub(super) fn merge_block_series(mut parts: Vec<BlockSeries>) -> BlockSeries {
    if parts.len() == 1
        && let Some(p) = parts.pop()
    {
        return p;
    }
    let labels = parts.first().map(|p| p.labels.clone()).unwrap_or_default();
    let is_float = parts
        .iter()
        .all(|p| matches!(p.data, BlockSeriesData::Float { .. }));
    let data = if is_float {
        let mut ts: Vec<&[i64]> = Vec::new();
        let mut vs: Vec<&[f64]> = Vec::new();
        for p in &parts {
            if let BlockSeriesData::Float { timestamps, values } = &p.data {
                ts.push(timestamps);
                vs.push(values);
            }
        }
        let rows = merge_rows(&ts);
        BlockSeriesData::Float {
            timestamps: pick(&ts, &rows),
            values: pick(&vs, &rows),
        }
    } else {
        let runs = parts
            .into_iter()
            .flat_map(|p| match p.data {
                BlockSeriesData::Histogram { runs } => runs,
                BlockSeriesData::Float { .. } => Vec::new(),
            })
            .collect();
        BlockSeriesData::Histogram {
            runs: merge_runs(runs),
        }
    };
    BlockSeries { labels, data }
}

/// Streams the union of several blocks' series in (labels, kind) order,
/// merging series present in more than one block (for compaction).
pub(super) struct MergeIter {
    blocks: Vec<Arc<Block>>,
    next: Vec<u32>,
    heads: Vec<Option<IndexSeries>>,
}

impl MergeIter {
    /// Blocks in increasing priority.
    pub(super) fn new(blocks: Vec<Arc<Block>>) -> Self {
        let n = blocks.len();
        MergeIter {
            blocks,
            next: vec![0; n],
            heads: vec![None; n],
        }
    }

    fn step(&mut self) -> Result<Option<BlockSeries>, StorageError> {
        for (i, b) in self.blocks.iter().enumerate() {
            let (Some(h), Some(n)) = (self.heads.get_mut(i), self.next.get_mut(i)) else {
                continue;
            };
            if h.is_none() && *n < b.n_entries() {
                *h = Some(b.entry(*n)?);
                *n += 1;
            }
        }
        let key = |e: &IndexSeries| (e.labels.clone(), e.kind as u8);
        let Some(min) = self.heads.iter().flatten().map(key).min() else {
            return Ok(None);
        };
        let mut parts = Vec::new();
        for (i, b) in self.blocks.iter().enumerate() {
            if let Some(h) = self.heads.get_mut(i)
                && h.as_ref().is_some_and(|e| key(e) == min)
                && let Some(e) = h.take()
            {
                parts.push(b.read_entry(&e)?);
            }
        }
        Ok(Some(merge_block_series(parts)))
    }
}

impl Iterator for MergeIter {
    type Item = Result<BlockSeries, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;

    fn s(ts: &[i64], vs: &[f64]) -> Series {
        Series {
            labels: Labels::from_pairs([("a", "b")]),
            timestamps: ts.to_vec(),
            values: vs.to_vec(),
        }
    }

    #[test]
    fn later_part_wins_and_order_kept() {
        let m = merge_series(vec![
            s(&[1, 3, 5], &[1.0, 3.0, 5.0]),
            s(&[2, 3, 6], &[2.0, 30.0, 6.0]),
        ]);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].timestamps, [1, 2, 3, 5, 6]);
        assert_eq!(m[0].values, [1.0, 2.0, 30.0, 5.0, 6.0]);
        let m = merge_series(vec![s(&[4, 5], &[4.0, 5.0]), s(&[1, 2], &[1.0, 2.0])]);
        assert_eq!(m[0].timestamps, [1, 2, 4, 5]);
    }

    fn run(bounds: &[f64], ts: &[i64]) -> HistogramRun {
        let n = ts.len();
        HistogramRun {
            upper_bounds: Arc::from(bounds.to_vec()),
            timestamps: ts.to_vec(),
            buckets: vec![ts.iter().map(|&t| t as f64).collect(); bounds.len() + 1],
            sum: vec![0.5; n],
            count: ts.iter().map(|&t| t as f64).collect(),
        }
    }

    #[test]
    fn runs_merge_by_bounds() {
        let m = merge_runs(vec![
            run(&[1.0], &[5, 6]),
            run(&[1.0], &[1, 2]),
            run(&[2.0], &[4, 10]),
        ]);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].timestamps, [1, 2]);
        // [4, 10] overlaps the later-starting [5, 6] with other bounds: cut.
        assert_eq!(m[1].timestamps, [4]);
        assert_eq!(m[2].timestamps, [5, 6]);
        let m = merge_runs(vec![run(&[1.0], &[1, 2]), run(&[1.0], &[2, 3])]);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].timestamps, [1, 2, 3]);
        assert_eq!(m[0].buckets[1], [1.0, 2.0, 3.0]);
    }
}
