//! Streaming reads over blocks + head (`Querier::select_visit` for `Db`).
//!
//! A read is planned first: every block and the head list their matching
//! float series without decoding them (histogram views, a minority, are
//! decoded while planning). The parts are sorted by labels, grouped (equal
//! labels from several sources form one series), and the groups are cut
//! into `workers` contiguous runs of roughly equal decoding work. Each
//! worker decodes its series one at a time into reused buffers, merges the
//! parts of a series by time (a later source wins at equal timestamps, as
//! in `select`) and hands the series to `visit`.

use std::sync::Arc;

use crate::model::Labels;
use crate::storage::api::{SelectHints, Series, StorageError};
use crate::storage::block::{Block, TsCache};
use crate::storage::head::HeadFloat;
use crate::storage::index::IndexSeries;
use crate::storage::merge::merge_columns;

/// Where one part of a series' samples comes from.
enum Source {
    /// A float entry of block `blocks[i]`.
    Block(usize, IndexSeries),
    /// A head float series.
    Head(HeadFloat),
    /// Samples decoded while planning (histogram views).
    Ready(Series),
}

impl Source {
    fn labels(&self) -> &Labels {
        match self {
            Source::Block(_, e) => &e.labels,
            Source::Head(h) => h.labels(),
            Source::Ready(s) => &s.labels,
        }
    }

    /// Rough decoding work, for balancing workers: chunks in range.
    fn weight(&self, min_t: i64, max_t: i64) -> usize {
        match self {
            Source::Block(_, e) => e
                .chunks
                .iter()
                .filter(|c| c.max_t >= min_t && c.min_t <= max_t)
                .count()
                .max(1),
            Source::Head(_) | Source::Ready(_) => 1,
        }
    }
}

/// Every part of the read, sorted by labels. Stable: among equal labels,
/// blocks (in `blocks` order, oldest first) then the head, so later parts
/// win at equal timestamps as in `select`.
fn plan(
    blocks: &[Arc<Block>],
    head: (Vec<HeadFloat>, Vec<Series>),
    hints: &SelectHints,
    matchers: &[crate::model::Matcher],
) -> Result<Vec<Source>, StorageError> {
    let mut parts: Vec<Source> = Vec::new();
    let (mut floats, mut views) = (Vec::new(), Vec::new());
    for (i, b) in blocks.iter().enumerate() {
        b.select_parts(hints, matchers, &mut floats, &mut views)?;
        parts.extend(floats.drain(..).map(|e| Source::Block(i, e)));
        parts.extend(views.drain(..).map(Source::Ready));
    }
    let (head_floats, head_views) = head;
    parts.extend(head_floats.into_iter().map(Source::Head));
    parts.extend(head_views.into_iter().map(Source::Ready));
    parts.sort_by(|a, b| a.labels().cmp(b.labels()));
    Ok(parts)
}

/// `select` over blocks + head through the same plan, on the calling
/// thread: each series is decoded once into reused buffers and copied out
/// at its exact size (no per-block results merged and re-copied).
pub(crate) fn select_parts(
    blocks: &[Arc<Block>],
    head: (Vec<HeadFloat>, Vec<Series>),
    hints: &SelectHints,
    matchers: &[crate::model::Matcher],
) -> Result<Vec<Series>, StorageError> {
    let parts = plan(blocks, head, hints, matchers)?;
    let mut out = Vec::new();
    run_worker(0, &parts, blocks, hints, &mut |_, s| {
        // Hand the decoded columns over and give the next series buffers
        // of this one's size (series of one query are mostly alike), so
        // neither a copy nor repeated growth is paid.
        let n = s.timestamps.len();
        out.push(Series {
            labels: std::mem::take(&mut s.labels),
            timestamps: std::mem::replace(&mut s.timestamps, Vec::with_capacity(n)),
            values: std::mem::replace(&mut s.values, Vec::with_capacity(n)),
        });
    })?;
    Ok(out)
}

/// Streams the series of blocks `blocks` (oldest first) and the head parts
/// to `visit` (see `Querier::select_visit` for the guarantees). The caller
/// holds whatever lock keeps blocks and head consistent for the whole call.
pub(crate) fn visit_parts(
    blocks: &[Arc<Block>],
    head: (Vec<HeadFloat>, Vec<Series>),
    hints: &SelectHints,
    matchers: &[crate::model::Matcher],
    workers: usize,
    visit: &(dyn Fn(usize, &Series) + Sync),
) -> Result<(), StorageError> {
    let (min_t, max_t) = (hints.min_t, hints.max_t);
    let parts = plan(blocks, head, hints, matchers)?;

    // Group boundaries and cumulative weights.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut total = 0usize;
    let mut start = 0usize;
    for i in 1..=parts.len() {
        let end_group = i == parts.len()
            || parts.get(i).map(Source::labels) != parts.get(start).map(Source::labels);
        if end_group {
            let w: usize = parts
                .get(start..i)
                .unwrap_or(&[])
                .iter()
                .map(|p| p.weight(min_t, max_t))
                .sum();
            total += w;
            groups.push((start, total));
            start = i;
        }
    }
    let workers = workers.max(1).min(groups.len().max(1));
    // Worker k takes the groups whose cumulative weight ends in
    // (k·total/workers, (k+1)·total/workers]: contiguous and in order.
    let mut runs: Vec<&[Source]> = Vec::with_capacity(workers);
    let mut g = 0usize;
    let mut from = 0usize;
    for k in 0..workers {
        let limit = if k + 1 == workers {
            usize::MAX
        } else {
            total.saturating_mul(k + 1) / workers
        };
        while let Some(&(_, cum)) = groups.get(g)
            && cum <= limit
        {
            g += 1;
        }
        let to = groups.get(g).map_or(parts.len(), |&(s, _)| s);
        runs.push(parts.get(from..to).unwrap_or(&[]));
        from = to;
    }
    if runs.len() == 1 {
        return run_worker(
            0,
            runs.first().copied().unwrap_or(&[]),
            blocks,
            hints,
            &mut |w, s| visit(w, &*s),
        );
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .enumerate()
            .skip(1)
            .map(|(k, run)| {
                scope.spawn(move || run_worker(k, run, blocks, hints, &mut |w, s| visit(w, &*s)))
            })
            .collect();
        let first = run_worker(
            0,
            runs.first().copied().unwrap_or(&[]),
            blocks,
            hints,
            &mut |w, s| visit(w, &*s),
        );
        let mut result = first;
        for h in handles {
            let r = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            if result.is_ok() {
                result = r;
            }
        }
        result
    })
}

/// Decodes the series of `parts` (whole groups of equal labels, sorted) one
/// at a time and hands each to `visit(worker, ..)`, which may take the
/// columns (the next series starts from cleared buffers either way).
fn run_worker(
    worker: usize,
    parts: &[Source],
    blocks: &[Arc<Block>],
    hints: &SelectHints,
    visit: &mut dyn FnMut(usize, &mut Series),
) -> Result<(), StorageError> {
    let (min_t, max_t) = (hints.min_t, hints.max_t);
    let mut caches: Vec<TsCache> = blocks.iter().map(|_| TsCache::default()).collect();
    let mut cur = Series {
        labels: Labels::empty(),
        timestamps: Vec::new(),
        values: Vec::new(),
    };
    let (mut ts2, mut vs2) = (Vec::new(), Vec::new());
    let mut i = 0usize;
    while let Some(first) = parts.get(i) {
        let labels = first.labels();
        cur.timestamps.clear();
        cur.values.clear();
        let mut j = i;
        while let Some(p) = parts.get(j).filter(|p| p.labels() == labels) {
            j += 1;
            // Decode into `cur` directly when it is empty, else into the
            // scratch columns and append or merge.
            let into_cur = cur.timestamps.is_empty();
            let (ts, vs) = if into_cur {
                (&mut cur.timestamps, &mut cur.values)
            } else {
                ts2.clear();
                vs2.clear();
                (&mut ts2, &mut vs2)
            };
            match p {
                Source::Block(b, e) => {
                    let (Some(block), Some(cache)) = (blocks.get(*b), caches.get_mut(*b)) else {
                        continue;
                    };
                    block.read_float_into(e, min_t, max_t, cache, ts, vs)?;
                }
                Source::Head(h) => h.collect(min_t, max_t, ts, vs),
                Source::Ready(s) => {
                    ts.extend_from_slice(&s.timestamps);
                    vs.extend_from_slice(&s.values);
                }
            }
            if into_cur || ts2.is_empty() {
                continue;
            }
            if cur.timestamps.last() < ts2.first() {
                cur.timestamps.extend_from_slice(&ts2);
                cur.values.extend_from_slice(&vs2);
            } else {
                // Overlapping sources (rare: overlapping blocks, or a block
                // and the head around a cut): the general merge.
                let a = Series {
                    labels: Labels::empty(),
                    timestamps: std::mem::take(&mut cur.timestamps),
                    values: std::mem::take(&mut cur.values),
                };
                let b = Series {
                    labels: Labels::empty(),
                    timestamps: std::mem::take(&mut ts2),
                    values: std::mem::take(&mut vs2),
                };
                let m = merge_columns(a, b);
                cur.timestamps = m.timestamps;
                cur.values = m.values;
            }
        }
        if !cur.timestamps.is_empty() {
            cur.labels = labels.clone();
            visit(worker, &mut cur);
        }
        i = j;
    }
    Ok(())
}
