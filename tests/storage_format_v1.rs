//! Format pinning: a WAL written by format version 1 (committed under
//! `tests/fixtures/format_v1/wal_basic/`) must still open and replay to
//! exactly the same data. Regenerate only when the format version changes
//! (then add a new fixture directory instead of overwriting this one):
//! `WATCHPOST_WRITE_FIXTURES=1 cargo test --test storage_format_v1`.

use std::path::{Path, PathBuf};

use watchpost::model::{HistogramSample, Labels, METRIC_NAME, MatchOp, Matcher, stale_nan};
use watchpost::storage::{Appendable, Db, DbOptions, Querier, SelectHints};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format_v1/wal_basic")
}

fn opts(dir: &Path) -> DbOptions {
    let mut o = DbOptions::new(dir);
    o.maintenance_interval = None;
    o
}

fn write_fixture(dir: &Path) {
    let db = Db::open(opts(dir)).unwrap();
    let up = Labels::from_pairs([(METRIC_NAME, "up"), ("job", "api")]);
    let temp = Labels::from_pairs([(METRIC_NAME, "temp"), ("room", "a b\"c")]);
    let lat = Labels::from_pairs([(METRIC_NAME, "lat"), ("job", "api")]);
    let mut a = db.appender();
    a.append(&up, 1000, 1.0).unwrap();
    a.append(&temp, 1000, -0.0).unwrap();
    a.append_histogram(
        &lat,
        1000,
        &HistogramSample {
            upper_bounds: vec![0.1, 1.0].into(),
            bucket_counts: vec![1.0, 2.0, 3.0],
            sum: 0.75,
            count: 3.0,
        },
    )
    .unwrap();
    a.commit().unwrap();
    let mut a = db.appender();
    a.append(&up, 16_000, stale_nan()).unwrap();
    a.append(&temp, 500, 21.5).unwrap(); // out of order
    a.append_histogram(
        &lat,
        16_000,
        &HistogramSample {
            upper_bounds: vec![0.5].into(),
            bucket_counts: vec![4.0, 5.0],
            sum: 2.0,
            count: 5.0,
        },
    )
    .unwrap();
    a.commit().unwrap();
    db.close().unwrap();
}

#[test]
fn wal_format_v1_fixture_replays_exactly() {
    if std::env::var_os("WATCHPOST_WRITE_FIXTURES").is_some() {
        let tmp = tempfile::tempdir().unwrap();
        write_fixture(tmp.path());
        std::fs::create_dir_all(fixture().join("wal")).unwrap();
        std::fs::copy(
            tmp.path().join("wal/00000001"),
            fixture().join("wal/00000001"),
        )
        .unwrap();
    }
    // Open a copy: opening writes (lock file, a new segment).
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("wal")).unwrap();
    std::fs::copy(
        fixture().join("wal/00000001"),
        dir.path().join("wal/00000001"),
    )
    .expect("fixture tests/fixtures/format_v1/wal_basic/wal/00000001 is committed");
    let db = Db::open(opts(dir.path())).unwrap();
    let st = db.stats();
    assert_eq!(st.wal_corruptions, 0);
    let all = Matcher::new(MatchOp::RegexMatch, METRIC_NAME, ".+").unwrap();
    let got = db
        .select(&SelectHints::range(i64::MIN, i64::MAX), &[all])
        .unwrap();
    let text: Vec<String> = got
        .iter()
        .map(|s| {
            let pts: Vec<String> = s
                .timestamps
                .iter()
                .zip(&s.values)
                .map(|(t, v)| format!("{t}:{:#018x}", v.to_bits()))
                .collect();
            format!("{} {}", s.labels, pts.join(" "))
        })
        .collect();
    assert_eq!(
        text,
        vec![
            r#"lat_bucket{job="api", le="+Inf"} 1000:0x4008000000000000 16000:0x4014000000000000"#,
            r#"lat_bucket{job="api", le="0.1"} 1000:0x3ff0000000000000"#,
            r#"lat_bucket{job="api", le="0.5"} 16000:0x4010000000000000"#,
            r#"lat_bucket{job="api", le="1"} 1000:0x4000000000000000"#,
            r#"lat_count{job="api"} 1000:0x4008000000000000 16000:0x4014000000000000"#,
            r#"lat_sum{job="api"} 1000:0x3fe8000000000000 16000:0x4000000000000000"#,
            r#"temp{room="a b\"c"} 500:0x4035800000000000 1000:0x8000000000000000"#,
            r#"up{job="api"} 1000:0x3ff0000000000000 16000:0x7ff0000000000002"#,
        ]
    );
}

/// Block column golden bytes for the integer-stream modes (storage-format.md
/// section 4.2): a DEFLATE stream as block format 1 wrote it keeps
/// decoding, and a PACKED stream (mode 3, added on 2026-11-30) is pinned
/// byte for byte in both directions.
#[test]
fn block_integer_stream_modes_are_stable() {
    use watchpost::storage::internals::codec::{decode_timestamps, encode_timestamps};
    // Residuals of 33 jittered scrapes (a repeating -2..=2 pattern).
    let res: Vec<i64> = (0..33).map(|i| (i * 7) % 5 - 2).collect();
    let want: Vec<i64> = std::iter::once(0)
        .chain((1..34).map(|k| k * 15_000 + res[k as usize - 1]))
        .collect();

    // n = 34, t0 = 0, GRID, step 15000, c = 0, then integer stream mode 2
    // (DEFLATE), 10 bytes of raw DEFLATE of the 33 zig-zag varints.
    let deflate_column = [
        0x22, 0x00, 0x01, 0xb0, 0xea, 0x01, 0x00, 0x02, 0x0a, 0x63, 0x66, 0x60, 0x61, 0x64, 0x62,
        0xc6, 0x43, 0x00, 0x00,
    ];
    let (got, rest) = decode_timestamps(&deflate_column).unwrap();
    assert_eq!(got, want);
    assert!(rest.is_empty());

    // Today's encoder writes jitter without repeats as a PACKED stream.
    let mut x = 0x9e37_79b9_u32;
    let jittered: Vec<i64> = (0..34i64)
        .map(|k| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            k * 15_000 + i64::from(x % 11) - 5
        })
        .collect();
    let mut packed_column = Vec::new();
    encode_timestamps(&jittered, &mut packed_column);
    assert_eq!(
        packed_column,
        [
            // n = 34, t0 = -5, GRID, step 15000, c = 5, PACKED
            0x22, 0x09, 0x01, 0xb0, 0xea, 0x01, 0x0a, 0x03,
            // one group of 33: base -5, width 4, 17 bytes of 4-bit offsets
            0x09, 0x04, 99, 154, 166, 122, 147, 0, 67, 163, 106, 96, 58, 89, 160, 19, 52, 68, 6,
        ]
    );
    let (got, rest) = decode_timestamps(&packed_column).unwrap();
    assert_eq!(got, jittered);
    assert!(rest.is_empty());
}
