//! The read path (block column decoding, cross-block merging, head chunk
//! decoding, head + block merging) returns exactly the samples written:
//! random float series with NaN, stale markers, ±Inf and -0.0, spread over
//! overlapping blocks and an out-of-order head, read back through
//! `Querier::select` over random ranges and compared bit for bit with a
//! plain sorted model; `Querier::select_visit` (any worker count) must
//! deliver exactly `select`'s series, each worker a contiguous run of the
//! sorted order.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use watchpost::model::{Labels, ManualClock, MatchOp, Matcher, STALE_NAN_BITS};
use watchpost::storage::internals::{BlockSeries, BlockSeriesData, write_block};
use watchpost::storage::{Appendable, Db, DbOptions, Querier, SelectHints, WalSyncPolicy};

/// One series: labels index and its samples (strictly increasing times).
type Model = BTreeMap<usize, Vec<(i64, u64)>>;

fn labels(i: usize) -> Labels {
    Labels::from_pairs([
        (
            "__name__",
            if i.is_multiple_of(2) {
                "even_total"
            } else {
                "odd"
            },
        ),
        ("series", &format!("s{i:02}")),
    ])
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => (0i64..1_000_000).prop_map(|i| i as f64),
        2 => (0i64..100_000).prop_map(|i| i as f64 / 100.0),
        2 => any::<u64>().prop_map(f64::from_bits),
        1 => Just(f64::from_bits(STALE_NAN_BITS)),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(-0.0),
    ]
}

/// Per series: gaps (ms) and values; per sample a target (0..3 = block,
/// 3 = head).
fn series() -> impl Strategy<Value = Vec<(i64, f64, u8)>> {
    proptest::collection::vec(
        (
            prop_oneof![Just(15_000i64), 14_990i64..15_010, 1i64..120_000],
            value(),
            0u8..4,
        ),
        1..400,
    )
}

fn check(
    data: Vec<Vec<(i64, f64, u8)>>,
    n_blocks: u8,
    ranges: Vec<(i64, i64)>,
    swap_seed: u64,
    workers: usize,
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let start = 1_700_000_000_000i64;
    // Samples in the first 60% of each series' time go to blocks (any of
    // `n_blocks`, so blocks overlap and interleave), the rest to the head.
    let mut model: Model = BTreeMap::new();
    let mut blocks: Vec<Vec<BlockSeries>> = vec![Vec::new(); usize::from(n_blocks)];
    let mut head: Vec<(usize, i64, f64)> = Vec::new();
    for (i, s) in data.iter().enumerate() {
        let mut t = start;
        let times: Vec<i64> = s
            .iter()
            .map(|(g, _, _)| {
                t += g;
                t
            })
            .collect();
        let split = times.get(times.len() * 6 / 10).copied().unwrap_or(i64::MAX);
        let mut parts: Vec<(Vec<i64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); blocks.len()];
        for (&t, &(_, v, target)) in times.iter().zip(s) {
            model.entry(i).or_default().push((t, v.to_bits()));
            if t < split && !parts.is_empty() {
                let k = usize::from(target) % parts.len();
                let p = &mut parts[k];
                p.0.push(t);
                p.1.push(v);
            } else {
                head.push((i, t, v));
            }
        }
        for (b, (ts, vs)) in parts.into_iter().enumerate() {
            if !ts.is_empty() {
                blocks[b].push(BlockSeries {
                    labels: labels(i),
                    data: BlockSeriesData::Float {
                        timestamps: ts,
                        values: vs,
                    },
                });
            }
        }
    }
    // The head may refuse samples older than what the blocks hold; those
    // are dropped from the model below.
    let block_max = blocks
        .iter()
        .flatten()
        .filter_map(|s| match &s.data {
            BlockSeriesData::Float { timestamps, .. } => timestamps.last().copied(),
            BlockSeriesData::Histogram { .. } => None,
        })
        .max();
    for mut b in blocks.into_iter().filter(|b| !b.is_empty()) {
        b.sort_by(|x, y| x.labels.cmp(&y.labels));
        let (lo, hi) = b
            .iter()
            .fold((i64::MAX, i64::MIN), |(lo, hi), s| match &s.data {
                BlockSeriesData::Float { timestamps, .. } => (
                    lo.min(timestamps.first().copied().unwrap_or(lo)),
                    hi.max(timestamps.last().copied().unwrap_or(hi)),
                ),
                BlockSeriesData::Histogram { .. } => (lo, hi),
            });
        write_block(dir.path(), lo, hi + 1, b).expect("write block");
    }

    let mut opts = DbOptions::new(dir.path());
    opts.wal_sync = WalSyncPolicy::Interval(std::time::Duration::from_secs(60));
    opts.maintenance_interval = None;
    opts.clock = Arc::new(ManualClock::new(start));
    let db = Db::open(opts).expect("open");
    // Out of order: append in time order but swap random neighbours, which
    // stay within the out-of-order window (gaps are < 2 min).
    head.sort_by_key(|&(_, t, _)| t);
    let mut x = swap_seed | 1;
    for k in 1..head.len() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(3) {
            head.swap(k - 1, k);
        }
    }
    let mut rejected: Vec<(usize, i64)> = Vec::new();
    let mut a = db.appender();
    for &(i, t, v) in &head {
        if a.append(&labels(i), t, v).is_err() {
            rejected.push((i, t));
        }
    }
    a.commit().expect("commit");
    // Whatever the head refused (older than the blocks) is not readable.
    for (i, t) in rejected {
        prop_assert!(block_max.is_some_and(|m| t <= m), "head rejected {t}");
        if let Some(v) = model.get_mut(&i) {
            v.retain(|s| s.0 != t);
        }
    }

    let all = [Matcher::new(MatchOp::RegexMatch, "__name__", ".+").expect("regex")];
    let even = [Matcher::equal("__name__", "even_total")];
    for (lo, len) in ranges {
        let (min_t, max_t) = (start + lo, start + lo + len);
        for (m, want_even) in [(&all[..], None), (&even[..], Some(true))] {
            let got = db
                .select(&SelectHints::range(min_t, max_t), m)
                .expect("select");
            check_visit(&db, &SelectHints::range(min_t, max_t), m, workers, &got)?;
            let want: Vec<(Labels, Vec<(i64, u64)>)> = model
                .iter()
                .filter(|(i, _)| want_even.is_none_or(|_| *i % 2 == 0))
                .map(|(i, s)| {
                    let s: Vec<(i64, u64)> = s
                        .iter()
                        .copied()
                        .filter(|&(t, _)| t >= min_t && t <= max_t)
                        .collect();
                    (labels(*i), s)
                })
                .filter(|(_, s)| !s.is_empty())
                .collect();
            let mut want = want;
            want.sort_by(|a, b| a.0.cmp(&b.0));
            let got: Vec<(Labels, Vec<(i64, u64)>)> = got
                .into_iter()
                .map(|s| {
                    let v = s
                        .timestamps
                        .iter()
                        .copied()
                        .zip(s.values.iter().map(|v| v.to_bits()))
                        .collect();
                    (s.labels, v)
                })
                .collect();
            prop_assert_eq!(got, want, "range [{}, {}]", min_t, max_t);
        }
    }
    db.close().expect("close");
    Ok(())
}

/// `select_visit` with `workers` delivers `want` (select's answer): every
/// worker id in range, each worker's series in order, and worker `w`'s
/// series all before worker `w + 1`'s.
fn check_visit(
    db: &Db,
    hints: &SelectHints,
    m: &[Matcher],
    workers: usize,
    want: &[watchpost::storage::Series],
) -> Result<(), TestCaseError> {
    let seen = std::sync::Mutex::new(Vec::new());
    db.select_visit(hints, m, workers, &|w, s| {
        seen.lock().expect("lock").push((w, s.clone()));
    })
    .expect("select_visit");
    let mut seen = seen.into_inner().expect("lock");
    prop_assert!(seen.iter().all(|(w, _)| *w < workers.max(1)));
    // Calls of one worker are sequential, so a stable sort by worker keeps
    // each worker's call order.
    seen.sort_by_key(|(w, _)| *w);
    let got: Vec<&watchpost::storage::Series> = seen.iter().map(|(_, s)| s).collect();
    let want: Vec<&watchpost::storage::Series> = want.iter().collect();
    prop_assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        prop_assert_eq!(&g.labels, &w.labels);
        prop_assert_eq!(&g.timestamps, &w.timestamps);
        let gb: Vec<u64> = g.values.iter().map(|v| v.to_bits()).collect();
        let wb: Vec<u64> = w.values.iter().map(|v| v.to_bits()).collect();
        prop_assert_eq!(gb, wb);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn select_returns_exactly_what_was_written(
        data in proptest::collection::vec(series(), 1..6),
        n_blocks in 0u8..4,
        ranges in proptest::collection::vec((-100_000i64..40_000_000, 0i64..40_000_000), 1..6),
        swap_seed in any::<u64>(),
        workers in 0usize..5,
    ) {
        check(data, n_blocks, ranges, swap_seed, workers)?;
    }
}
