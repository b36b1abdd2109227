//! Immutable blocks end to end: write, open, select (floats, histogram views,
//! histogram columns), corruption quarantine, compaction and retention.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use watchpost::model::{Labels, MatchOp, Matcher, STALE_NAN_BITS};
use watchpost::storage::internals::{
    Block, BlockSeries, BlockSeriesData, Blocks, BlocksOptions, HistogramRun, write_block,
};
use watchpost::storage::{SelectHints, Series};

const H: i64 = 3_600_000;

fn float(pairs: &[(&str, &str)], ts: &[i64], vs: &[f64]) -> BlockSeries {
    BlockSeries {
        labels: Labels::from_pairs(pairs.iter().copied()),
        data: BlockSeriesData::Float {
            timestamps: ts.to_vec(),
            values: vs.to_vec(),
        },
    }
}

/// A run whose bucket `i` at time t holds (t/1000)*scale*(i+1).
fn run(bounds: &[f64], ts: &[i64], scale: f64) -> HistogramRun {
    let nb = bounds.len() + 1;
    HistogramRun {
        upper_bounds: Arc::from(bounds.to_vec()),
        timestamps: ts.to_vec(),
        buckets: (0..nb)
            .map(|i| {
                ts.iter()
                    .map(|&t| (t / 1000) as f64 * scale * (i + 1) as f64)
                    .collect()
            })
            .collect(),
        sum: ts.iter().map(|&t| t as f64 * 0.001 + 0.1).collect(),
        count: ts
            .iter()
            .map(|&t| (t / 1000) as f64 * scale * nb as f64)
            .collect(),
    }
}

fn hist(pairs: &[(&str, &str)], runs: Vec<HistogramRun>) -> BlockSeries {
    BlockSeries {
        labels: Labels::from_pairs(pairs.iter().copied()),
        data: BlockSeriesData::Histogram { runs },
    }
}

fn m(op: MatchOp, n: &str, v: &str) -> Matcher {
    Matcher::new(op, n, v).unwrap()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn all() -> SelectHints {
    SelectHints::range(i64::MIN, i64::MAX)
}

fn names(s: &[Series]) -> Vec<String> {
    s.iter().map(|s| s.labels.to_string()).collect()
}

/// One block in [0, 2h) with floats (special values included), a histogram
/// whose bounds change mid-block, and a classic untyped `le` float series.
fn sample_series() -> Vec<BlockSeries> {
    let ts: Vec<i64> = (0..100).map(|i| i * 15_000 + (i % 3)).collect();
    let mut special: Vec<f64> = (0..100).map(f64::from).collect();
    special[3] = f64::from_bits(STALE_NAN_BITS);
    special[4] = f64::INFINITY;
    special[5] = f64::NEG_INFINITY;
    special[6] = -0.0;
    special[7] = f64::NAN;
    special[8] = 0.1 + 0.2;
    vec![
        float(&[("__name__", "up"), ("job", "api")], &ts, &[1.0; 100]),
        float(
            &[("__name__", "reqs"), ("job", "api"), ("code", "200")],
            &ts,
            &special,
        ),
        hist(
            &[("__name__", "lat"), ("job", "api")],
            vec![
                run(&[0.1, 0.5], &ts[..50], 1.0),
                run(&[0.1, 0.5, 1.0], &ts[50..], 2.0),
            ],
        ),
        float(
            &[("__name__", "old_bucket"), ("job", "x"), ("le", "0.5")],
            &ts,
            &[2.0; 100],
        ),
    ]
}

fn write_sample(dir: &Path) -> PathBuf {
    let meta = write_block(dir, 0, 2 * H, sample_series()).unwrap();
    assert_eq!(meta.stats.num_series, 4);
    assert_eq!(meta.stats.num_float_samples, 300);
    assert_eq!(meta.stats.num_histogram_samples, 100);
    assert_eq!(meta.compaction.level, 1);
    assert_eq!(meta.compaction.sources, vec![meta.id.clone()]);
    dir.join(&meta.id)
}

#[test]
fn round_trip_floats_views_and_histograms() {
    let tmp = tempfile::tempdir().unwrap();
    let bdir = write_sample(tmp.path());
    let b = Block::open(&bdir).unwrap();
    let input = sample_series();

    // Floats come back bit-exact.
    let got = b
        .select(&all(), &[Matcher::equal("__name__", "reqs")])
        .unwrap();
    assert_eq!(got.len(), 1);
    let BlockSeriesData::Float { timestamps, values } = &input[1].data else {
        panic!("float input")
    };
    assert_eq!(&got[0].timestamps, timestamps);
    assert_eq!(bits(&got[0].values), bits(values));

    // Histogram views: the +Inf bucket, sum and count exist in both runs and
    // are merged into one series each; le="1" only in the second run.
    let v = b
        .select(&all(), &[m(MatchOp::RegexMatch, "__name__", "lat_.*")])
        .unwrap();
    assert_eq!(
        names(&v),
        [
            r#"lat_bucket{job="api", le="+Inf"}"#,
            r#"lat_bucket{job="api", le="0.1"}"#,
            r#"lat_bucket{job="api", le="0.5"}"#,
            r#"lat_bucket{job="api", le="1"}"#,
            r#"lat_count{job="api"}"#,
            r#"lat_sum{job="api"}"#,
        ]
    );
    assert_eq!(v[0].timestamps.len(), 100);
    assert_eq!(v[3].timestamps.len(), 50);
    // Second run: count = (t/1000) * 2 * 4 buckets; t = 99 * 15000.
    assert_eq!(v[4].values[99], 1485.0 * 8.0);
    assert_eq!(v[4].values[0], 0.0);

    // le matchers reach both the histogram views and the classic float series.
    let le = b.select(&all(), &[Matcher::equal("le", "0.5")]).unwrap();
    assert_eq!(
        names(&le),
        [
            r#"lat_bucket{job="api", le="0.5"}"#,
            r#"old_bucket{job="x", le="0.5"}"#
        ]
    );
    // A matcher accepting "" keeps _sum/_count (no le) and drops le="0.5".
    let ne = b
        .select(
            &all(),
            &[
                m(MatchOp::NotEqual, "le", "0.5"),
                Matcher::equal("job", "api"),
            ],
        )
        .unwrap();
    assert!(names(&ne).contains(&r#"lat_sum{job="api"}"#.to_string()));
    assert!(!names(&ne).iter().any(|n| n.contains(r#"le="0.5""#)));
    // The family name itself is not a series.
    assert!(
        b.select(&all(), &[Matcher::equal("__name__", "lat")])
            .unwrap()
            .is_empty()
    );

    // Histogram columns: one entry per run of constant bounds.
    let h = b
        .select_histograms(&all(), &[Matcher::equal("__name__", "lat_bucket")])
        .unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].labels.to_string(), r#"lat_bucket{job="api"}"#);
    assert_eq!(&*h[0].upper_bounds, &[0.1, 0.5]);
    assert_eq!(&*h[1].upper_bounds, &[0.1, 0.5, 1.0]);
    let BlockSeriesData::Histogram { runs } = &input[2].data else {
        panic!("histogram input")
    };
    assert_eq!(h[1].timestamps, runs[1].timestamps);
    assert_eq!(h[1].buckets, runs[1].buckets);
    assert_eq!(bits(&h[1].sum), bits(&runs[1].sum));
    assert_eq!(h[1].count, runs[1].count);
    assert!(
        b.select_histograms(&all(), &[Matcher::equal("__name__", "old_bucket")])
            .unwrap()
            .is_empty()
    );

    // Views can be skipped.
    let mut hints = all();
    hints.skip_histogram_views = true;
    assert!(
        b.select(&hints, &[m(MatchOp::RegexMatch, "__name__", "lat_.*")])
            .unwrap()
            .is_empty()
    );

    // Labels and values, with and without matchers.
    assert_eq!(
        b.label_names(&all(), &[]).unwrap(),
        ["__name__", "code", "job", "le"]
    );
    assert_eq!(
        b.label_values("__name__", &all(), &[]).unwrap(),
        [
            "lat_bucket",
            "lat_count",
            "lat_sum",
            "old_bucket",
            "reqs",
            "up"
        ]
    );
    assert_eq!(
        b.label_values("le", &all(), &[]).unwrap(),
        ["+Inf", "0.1", "0.5", "1"]
    );
    assert_eq!(
        b.label_values("le", &SelectHints::range(0, 15_000), &[])
            .unwrap(),
        ["+Inf", "0.1", "0.5"]
    );
    assert_eq!(
        b.label_names(&all(), &[Matcher::equal("__name__", "lat_sum")])
            .unwrap(),
        ["__name__", "job"]
    );
    assert_eq!(
        b.label_values("job", &all(), &[Matcher::equal("__name__", "up")])
            .unwrap(),
        ["api"]
    );
    assert_eq!(b.series_count(), 4);
}

#[test]
fn time_range_is_inclusive_and_trims() {
    let tmp = tempfile::tempdir().unwrap();
    let b = Block::open(&write_sample(tmp.path())).unwrap();
    // ts[i] = i*15000 + i%3: ts[2] = 30002, ts[4] = 60001.
    let s = b
        .select(
            &SelectHints::range(30_002, 60_001),
            &[Matcher::equal("__name__", "up")],
        )
        .unwrap();
    assert_eq!(s[0].timestamps, [30_002, 45_000, 60_001]);
    assert!(
        b.select(&SelectHints::range(2 * H, 3 * H), &[])
            .unwrap()
            .is_empty()
    );
    let mut lo = SelectHints::range(0, 10);
    lo.labels_only = true;
    let l = b.select(&lo, &[Matcher::equal("__name__", "up")]).unwrap();
    assert_eq!(l.len(), 1);
    assert!(l[0].timestamps.is_empty());
}

#[test]
fn write_block_rejects_bad_input_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = [
        float(&[("a", "b")], &[5, 5], &[1.0, 2.0]),
        float(&[("a", "b")], &[1, 2], &[1.0]),
        float(&[("a", "b")], &[2 * H], &[1.0]),
        hist(
            &[("__name__", "h")],
            vec![HistogramRun {
                buckets: vec![vec![1.0]],
                ..run(&[1.0], &[1], 1.0)
            }],
        ),
        hist(&[("__name__", "h")], vec![run(&[1.0, 0.5], &[1], 1.0)]),
    ];
    for s in bad {
        let e = write_block(tmp.path(), 0, 2 * H, [s]).unwrap_err();
        assert!(e.to_string().contains("cannot write block"), "{e}");
    }
    let dup = [
        float(&[("a", "b")], &[1], &[1.0]),
        float(&[("a", "b")], &[2], &[1.0]),
    ];
    assert!(write_block(tmp.path(), 0, 2 * H, dup).is_err());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "no block or tmp dir left"
    );
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

#[test]
fn every_flipped_byte_is_detected_by_open() {
    let tmp = tempfile::tempdir().unwrap();
    let bdir = write_sample(tmp.path());
    for file in ["meta.json", "index", "columns"] {
        let path = bdir.join(file);
        let orig = std::fs::read(&path).unwrap();
        for i in 0..orig.len() {
            let mut b = orig.clone();
            b[i] ^= 0x10;
            std::fs::write(&path, &b).unwrap();
            assert!(
                Block::open(&bdir).is_err(),
                "{file}: flip at byte {i} not detected"
            );
        }
        std::fs::write(&path, &orig).unwrap();
        assert!(Block::open(&bdir).is_ok());
    }
}

#[test]
fn corrupt_blocks_are_moved_aside_and_the_rest_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let good = write_sample(src.path());
    let good_id = good.file_name().unwrap().to_owned();
    let later = write_block(
        src.path(),
        2 * H,
        4 * H,
        [float(
            &[("__name__", "up"), ("job", "api")],
            &[2 * H],
            &[7.0],
        )],
    )
    .unwrap();
    let cases = [
        ("meta.json", 0.0),
        ("meta.json", 0.5),
        ("index", 0.0),
        ("index", 0.5),
        ("index", 1.0),
        ("columns", 0.0),
        ("columns", 0.5),
        ("columns", 1.0),
    ];
    for (file, pos) in cases {
        let data = tmp.path().join(format!("{file}-{pos}"));
        let bad = data.join(&good_id);
        copy_dir(&good, &bad);
        copy_dir(&src.path().join(&later.id), &data.join(&later.id));
        let path = bad.join(file);
        let mut b = std::fs::read(&path).unwrap();
        let i = ((b.len() - 1) as f64 * pos) as usize;
        b[i] ^= 0xff;
        std::fs::write(&path, &b).unwrap();

        let blocks = Blocks::open(&data).unwrap();
        assert_eq!(blocks.blocks().len(), 1, "{file}@{i}");
        assert!(!bad.exists());
        assert!(data.join("corrupted").join(&good_id).join(file).exists());
        let s = blocks
            .select(&all(), &[Matcher::equal("__name__", "up")])
            .unwrap();
        assert_eq!(
            s[0].values,
            [7.0],
            "{file}@{i}: the good block still serves"
        );
    }
    // A block missing a file is quarantined too.
    let data = tmp.path().join("missing");
    let bad = data.join(&good_id);
    copy_dir(&good, &bad);
    std::fs::remove_file(bad.join("index")).unwrap();
    assert!(Blocks::open(&data).unwrap().blocks().is_empty());
    assert!(data.join("corrupted").join(&good_id).exists());
}

/// Deterministic pseudo-random numbers.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Samples of `n` series over [from, to) at ~15 s with jitter; every fifth
/// series is a histogram.
fn gen_series(r: &mut Rng, n: usize, from: i64, to: i64) -> Vec<BlockSeries> {
    (0..n)
        .map(|i| {
            let mut ts = Vec::new();
            let mut t = from + (r.next() % 1000) as i64;
            while t < to {
                ts.push(t);
                t += 15_000 + (r.next() % 7) as i64 - 3;
            }
            let vs: Vec<f64> = ts.iter().map(|_| (r.next() % 1000) as f64).collect();
            if i % 5 == 0 {
                let nb = 3;
                let cols: Vec<Vec<f64>> = (0..=nb)
                    .map(|k| vs.iter().map(|v| v * (k + 1) as f64).collect())
                    .collect();
                hist(
                    &[("__name__", "h"), ("i", &i.to_string())],
                    vec![HistogramRun {
                        upper_bounds: Arc::from(vec![0.1, 1.0, 10.0]),
                        timestamps: ts,
                        count: cols[nb].clone(),
                        buckets: cols,
                        sum: vs.iter().map(|v| v * 0.37).collect(),
                    }],
                )
            } else {
                float(&[("__name__", "m"), ("i", &i.to_string())], &ts, &vs)
            }
        })
        .collect()
}

fn dump(blocks: &Blocks) -> Vec<Series> {
    blocks.select(&all(), &[]).unwrap()
}

fn opts() -> BlocksOptions {
    BlocksOptions {
        ranges: vec![2 * H, 6 * H, 12 * H],
    }
}

#[test]
fn compaction_keeps_every_sample_and_dedups_overlaps() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = Rng(1);
    let blocks = Blocks::open_with(tmp.path(), opts()).unwrap();
    for k in 0..7 {
        let (from, to) = (k * 2 * H, (k + 1) * 2 * H);
        let meta = write_block(tmp.path(), from, to, gen_series(&mut r, 10, from, to)).unwrap();
        blocks.add(Block::open(&tmp.path().join(&meta.id)).unwrap());
    }
    // An out-of-order block overlapping the second one, repeating some of
    // its samples exactly and adding a new series.
    let two = blocks
        .select(
            &SelectHints::range(2 * H, 4 * H - 1),
            &[m(MatchOp::RegexMatch, "i", "1|2")],
        )
        .unwrap();
    assert_eq!(two.len(), 2);
    let mut ooo: Vec<BlockSeries> = two
        .iter()
        .map(|s| BlockSeries {
            labels: s.labels.clone(),
            data: BlockSeriesData::Float {
                timestamps: s.timestamps[..10].to_vec(),
                values: s.values[..10].to_vec(),
            },
        })
        .collect();
    ooo.push(float(&[("__name__", "late")], &[3 * H], &[1.0]));
    let meta = write_block(tmp.path(), 2 * H, 3 * H + 1, ooo).unwrap();
    blocks.add(Block::open(&tmp.path().join(&meta.id)).unwrap());
    let before = dump(&blocks);
    let before_h = blocks.select_histograms(&all(), &[]).unwrap();
    let inputs: Vec<String> = blocks
        .blocks()
        .iter()
        .filter(|b| b.meta().max_time <= 12 * H)
        .map(|b| b.meta().id.clone())
        .collect();
    assert_eq!(inputs.len(), 7);
    assert_eq!(blocks.series_count().unwrap(), 11);

    // Window [12h, 24h) has not ended at 15 h: the overlap, the two 6 h
    // windows before 12 h and then their 12 h window are compacted.
    let written = blocks.compact(15 * H).unwrap();
    assert!(!written.is_empty());
    let ranges: Vec<(i64, i64)> = blocks
        .blocks()
        .iter()
        .map(|b| (b.meta().min_time, b.meta().max_time))
        .collect();
    assert_eq!(ranges, [(0, 12 * H), (12 * H, 14 * H)]);
    let merged = blocks.blocks()[0].clone();
    assert!(merged.meta().compaction.level >= 3);
    assert_eq!(merged.meta().compaction.sources.len(), 7);
    drop(merged);
    for id in &inputs {
        assert!(!tmp.path().join(id).exists(), "input {id} deleted");
    }
    assert_eq!(dump(&blocks), before);
    assert_eq!(blocks.select_histograms(&all(), &[]).unwrap(), before_h);
    assert_eq!(blocks.series_count().unwrap(), 11);

    // Everything survives a reopen, and nothing more is to be done.
    let reopened = Blocks::open_with(tmp.path(), opts()).unwrap();
    assert_eq!(dump(&reopened), before);
    assert!(reopened.compact(15 * H).unwrap().is_empty());
    // Once the window has ended, the last block joins nothing (alone in it).
    assert!(reopened.compact(30 * H).unwrap().is_empty());
}

#[test]
fn open_cleans_up_after_crashes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = Rng(2);
    let a = write_block(tmp.path(), 0, 2 * H, gen_series(&mut r, 3, 0, 2 * H)).unwrap();
    let b = write_block(
        tmp.path(),
        2 * H,
        4 * H,
        gen_series(&mut r, 3, 2 * H, 4 * H),
    )
    .unwrap();
    // Keep copies of the inputs, compact, then put them back: the state
    // after a crash between writing the output and deleting the inputs.
    let saved = tempfile::tempdir().unwrap();
    for id in [&a.id, &b.id] {
        copy_dir(&tmp.path().join(id), &saved.path().join(id));
    }
    let o = BlocksOptions {
        ranges: vec![2 * H, 4 * H],
    };
    let blocks = Blocks::open_with(tmp.path(), o.clone()).unwrap();
    let before = dump(&blocks);
    assert_eq!(blocks.compact(4 * H).unwrap().len(), 1);
    drop(blocks);
    for id in [&a.id, &b.id] {
        copy_dir(&saved.path().join(id), &tmp.path().join(id));
    }
    let leftover = tmp.path().join("01ARZ3NDEKTSV4RRFFQ69G5FAV.tmp");
    std::fs::create_dir(&leftover).unwrap();
    std::fs::create_dir(tmp.path().join("wal")).unwrap();
    let blocks = Blocks::open_with(tmp.path(), o).unwrap();
    assert_eq!(blocks.blocks().len(), 1);
    assert_eq!(dump(&blocks), before);
    drop(blocks);
    assert!(!tmp.path().join(&a.id).exists() && !tmp.path().join(&b.id).exists());
    assert!(!leftover.exists());
    assert!(
        tmp.path().join("wal").exists(),
        "non-block directories are left alone"
    );
}

#[test]
fn retention_by_time_and_size_waits_for_readers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = Rng(3);
    let blocks = Blocks::open(tmp.path()).unwrap();
    let mut ids = Vec::new();
    for k in 0..5 {
        let (from, to) = (k * 2 * H, (k + 1) * 2 * H);
        let meta = write_block(tmp.path(), from, to, gen_series(&mut r, 4, from, to)).unwrap();
        blocks.add(Block::open(&tmp.path().join(&meta.id)).unwrap());
        ids.push(meta.id);
    }
    // A query holding the oldest block keeps it readable while retention
    // drops it; the directory goes when the query lets go.
    let held = blocks.blocks()[0].clone();
    let gone = blocks.apply_retention(10 * H, 7 * H, 0);
    assert_eq!(gone, ids[..1]);
    assert!(tmp.path().join(&ids[0]).exists());
    assert!(!held.select(&all(), &[]).unwrap().is_empty());
    drop(held);
    assert!(!tmp.path().join(&ids[0]).exists());
    assert_eq!(blocks.min_time(), Some(2 * H));

    // Size: keep at most the newest two blocks' worth of bytes.
    let sizes: Vec<u64> = blocks.blocks().iter().map(|b| b.size_bytes()).collect();
    let budget = sizes[2] + sizes[3];
    let gone = blocks.apply_retention(10 * H, 0, budget);
    assert_eq!(gone, ids[1..3]);
    assert!(blocks.size_bytes() <= budget);
    assert_eq!(blocks.blocks().len(), 2);
    assert!(!tmp.path().join(&ids[1]).exists() && !tmp.path().join(&ids[2]).exists());
    assert!(
        blocks.apply_retention(10 * H, 0, 0).is_empty(),
        "0 disables both limits"
    );
}

/// The worked example of storage-format.md section 5.5, byte for byte.
#[test]
fn golden_worked_example() {
    let tmp = tempfile::tempdir().unwrap();
    let meta = write_block(
        tmp.path(),
        0,
        2 * H,
        [float(
            &[("__name__", "up"), ("job", "a")],
            &[1000, 16000, 31000],
            &[1.0, 1.0, 0.0],
        )],
    )
    .unwrap();
    let dir = tmp.path().join(&meta.id);
    let hex = |b: &[u8]| {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let cols = std::fs::read(dir.join("columns")).unwrap();
    assert_eq!(
        hex(&cols),
        "57 50 43 4c 01 00 00 00 \
         09 03 d0 0f 00 b0 ea 01 00 00 20 2c 9c 63 \
         0a 03 01 00 00 01 03 02 02 00 00 5c 76 fe 18 \
         4a ec 5d c7 57 50 43 45"
    );
    let index = std::fs::read(dir.join("index")).unwrap();
    assert_eq!(
        hex(&index),
        "57 50 49 58 01 00 00 00 \
         04 08 5f 5f 6e 61 6d 65 5f 5f 01 61 03 6a 6f 62 02 75 70 1d 83 b0 cb \
         02 00 03 02 01 00 01 d0 0f b0 ea 01 08 16 eb db dd 42 \
         00 00 00 00 00 00 00 00 8a b2 28 8c \
         01 00 01 00 08 79 80 86 \
         00 00 00 00 03 00 00 00 00 00 00 00 00 00 00 00 \
         02 00 00 00 01 00 00 00 02 00 00 00 00 00 00 00 74 9e be 2b \
         08 00 00 00 00 00 00 00 13 00 00 00 00 00 00 00 \
         1f 00 00 00 00 00 00 00 0e 00 00 00 00 00 00 00 \
         31 00 00 00 00 00 00 00 08 00 00 00 00 00 00 00 \
         3d 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00 \
         45 00 00 00 00 00 00 00 20 00 00 00 00 00 00 00 \
         01 00 00 00 00 00 00 00 e3 89 6d 41"
    );
    let text = std::fs::read_to_string(dir.join("meta.json")).unwrap();
    let crc = &text[text.rfind("\"crc32c\": \"").unwrap() + 11..][..8];
    let want = format!(
        r#"{{
  "magic": "watchpost-block",
  "version": 1,
  "id": "{id}",
  "min_time": 0,
  "max_time": 7200000,
  "stats": {{
    "num_series": 1,
    "num_float_samples": 3,
    "num_histogram_samples": 0,
    "num_chunks": 1
  }},
  "compaction": {{
    "level": 1,
    "sources": [
      "{id}"
    ]
  }},
  "files": [
    {{
      "name": "columns",
      "size": 45
    }},
    {{
      "name": "index",
      "size": 197
    }}
  ],
  "crc32c": "{crc}"
}}
"#,
        id = meta.id
    );
    assert_eq!(text, want);
    let zeroed = want.replace(
        &format!("\"crc32c\": \"{crc}\""),
        "\"crc32c\": \"00000000\"",
    );
    assert_eq!(format!("{:08x}", crc32c::crc32c(zeroed.as_bytes())), crc);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => (0i64..100_000).prop_map(|i| i as f64),
            2 => (-10_000i64..10_000, 0usize..4).prop_map(|(m, e)| m as f64 / 10f64.powi(e as i32)),
            1 => any::<u64>().prop_map(f64::from_bits),
            1 => Just(f64::from_bits(STALE_NAN_BITS)),
            1 => Just(-0.0),
            1 => Just(f64::INFINITY),
        ]
    }

    fn timestamps() -> impl Strategy<Value = Vec<i64>> {
        proptest::collection::vec(1i64..200_000, 1..60).prop_map(|gaps| {
            let mut t = -50_000;
            gaps.iter()
                .map(|g| {
                    t += g;
                    t
                })
                .collect()
        })
    }

    fn series() -> impl Strategy<Value = Vec<BlockSeries>> {
        let one = (timestamps(), any::<bool>(), 1usize..4).prop_flat_map(|(ts, is_hist, nb)| {
            let n = ts.len();
            (
                Just(ts),
                Just(is_hist),
                proptest::collection::vec(proptest::collection::vec(value(), n), nb + 2),
            )
        });
        proptest::collection::vec(one, 1..6).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (ts, is_hist, mut cols))| {
                    let id = i.to_string();
                    if is_hist {
                        let sum = cols.pop().unwrap_or_default();
                        let count = cols.last().cloned().unwrap_or_default();
                        let bounds: Vec<f64> = (1..cols.len()).map(|b| b as f64 * 0.5).collect();
                        hist(
                            &[("__name__", "h"), ("id", &id)],
                            vec![HistogramRun {
                                upper_bounds: Arc::from(bounds),
                                timestamps: ts,
                                buckets: cols,
                                sum,
                                count,
                            }],
                        )
                    } else {
                        float(&[("__name__", "f"), ("id", &id)], &ts, &cols[0])
                    }
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn write_open_read_round_trip(input in series()) {
            let tmp = tempfile::tempdir().unwrap();
            let meta = write_block(tmp.path(), -50_000, 20_000_000, input.clone()).unwrap();
            let b = Block::open(&tmp.path().join(&meta.id)).unwrap();
            let floats = b.select(&all(), &[Matcher::equal("__name__", "f")]).unwrap();
            let hists = b.select_histograms(&all(), &[]).unwrap();
            let mut fi = floats.iter();
            let mut hi = hists.iter();
            for s in &input {
                match &s.data {
                    BlockSeriesData::Float { timestamps, values } => {
                        let got = fi.next().unwrap();
                        prop_assert_eq!(&got.labels, &s.labels);
                        prop_assert_eq!(&got.timestamps, timestamps);
                        prop_assert_eq!(bits(&got.values), bits(values));
                    }
                    BlockSeriesData::Histogram { runs } => {
                        let got = hi.next().unwrap();
                        let r = &runs[0];
                        prop_assert_eq!(got.labels.get("id"), s.labels.get("id"));
                        prop_assert_eq!(&got.timestamps, &r.timestamps);
                        prop_assert_eq!(bits(&got.sum), bits(&r.sum));
                        prop_assert_eq!(bits(&got.count), bits(&r.count));
                        for (g, w) in got.buckets.iter().zip(&r.buckets) {
                            prop_assert_eq!(bits(g), bits(w));
                        }
                    }
                }
            }
            prop_assert!(fi.next().is_none() && hi.next().is_none());
        }
    }
}

#[test]
fn queries_during_compaction_and_retention_see_consistent_data() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = Rng(4);
    let blocks = Arc::new(Blocks::open_with(tmp.path(), opts()).unwrap());
    for k in 0..6 {
        let (from, to) = (k * 2 * H, (k + 1) * 2 * H);
        let meta = write_block(tmp.path(), from, to, gen_series(&mut r, 6, from, to)).unwrap();
        blocks.add(Block::open(&tmp.path().join(&meta.id)).unwrap());
    }
    let before = dump(&blocks);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (blocks, stop, before) = (blocks.clone(), stop.clone(), before.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            // Bounded: at most 2000 reads even if the main thread is slow.
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && reads < 2000 {
                assert_eq!(dump(&blocks), before);
                reads += 1;
            }
            reads
        })
    };
    assert!(!blocks.compact(24 * H).unwrap().is_empty());
    assert_eq!(blocks.blocks().len(), 1);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(reader.join().unwrap() > 0);
    assert_eq!(dump(&blocks), before);
    let dirs: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        dirs,
        [blocks.blocks()[0].meta().id.clone()],
        "inputs deleted once unreferenced"
    );
}
