//! Index writer/reader round trips, matcher semantics and corruption checks.

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;

use super::writer::encode_index;
use super::*;
use crate::model::{MatchOp, Matcher};

fn s(pairs: &[(&str, &str)], kind: SeriesKind, n: i64) -> IndexSeries {
    let bounds: Option<Arc<[f64]>> =
        (kind == SeriesKind::Histogram).then(|| Arc::from(vec![0.1, 1.0]));
    IndexSeries {
        labels: Labels::from_pairs(pairs.iter().copied()),
        kind,
        chunks: (0..n)
            .map(|i| ChunkMeta {
                min_t: i * 1000,
                max_t: i * 1000 + 999,
                ts_ref: 8 + i as u64 * 100,
                val_ref: 60 + i as u64 * 100,
                bounds: bounds.clone(),
            })
            .collect(),
    }
}

fn sample() -> Vec<IndexSeries> {
    let mut v = vec![
        s(&[("__name__", "up"), ("job", "api")], SeriesKind::Float, 1),
        s(
            &[("__name__", "up"), ("job", "db"), ("zone", "a")],
            SeriesKind::Float,
            2,
        ),
        s(
            &[("__name__", "lat"), ("job", "api")],
            SeriesKind::Histogram,
            3,
        ),
        s(
            &[("__name__", "lat_bucket"), ("job", "old"), ("le", "0.5")],
            SeriesKind::Float,
            1,
        ),
    ];
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    v
}

fn reader(series: &[IndexSeries]) -> IndexReader {
    IndexReader::from_bytes(Path::new("index"), encode_index(series)).unwrap()
}

fn names(r: &IndexReader, ids: &[u32]) -> Vec<String> {
    ids.iter()
        .map(|&i| r.series(i).unwrap().labels.to_string())
        .collect()
}

fn m(op: MatchOp, n: &str, v: &str) -> Matcher {
    Matcher::new(op, n, v).unwrap()
}

#[test]
fn round_trip_series() {
    let v = sample();
    let r = reader(&v);
    assert_eq!(r.n_series(), 4);
    for (i, want) in v.iter().enumerate() {
        assert_eq!(&r.series(i as u32).unwrap(), want);
    }
    assert!(r.series(4).is_err());
}

#[test]
fn postings_and_label_values() {
    let r = reader(&sample());
    let names_v: Vec<String> = r
        .label_values("__name__")
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names_v, ["lat_bucket", "lat_count", "lat_sum", "up"]);
    let ln: Vec<String> = r.label_names().iter().map(|s| s.to_string()).collect();
    assert_eq!(ln, ["__name__", "job", "le", "zone"]);
    assert_eq!(r.histogram_ids().unwrap().len(), 1);
    assert!(r.postings("nope", "x").unwrap().is_empty());
}

#[test]
fn matcher_semantics() {
    let r = reader(&sample());
    let sel = |ms: &[Matcher]| names(&r, &r.select_ids(ms).unwrap());
    assert_eq!(sel(&[Matcher::equal("__name__", "up")]).len(), 2);
    assert_eq!(
        sel(&[Matcher::equal("zone", "")]).len(),
        3,
        "absent label matches empty"
    );
    assert_eq!(sel(&[m(MatchOp::NotEqual, "zone", "a")]).len(), 3);
    assert_eq!(
        sel(&[m(MatchOp::RegexMatch, "zone", ".+")]),
        [r#"up{job="db", zone="a"}"#]
    );
    assert_eq!(sel(&[m(MatchOp::RegexNoMatch, "job", "api|db")]).len(), 1);
    assert_eq!(sel(&[]).len(), 4);
    // The histogram is found through its view name, and stays a candidate
    // for an `le` matcher next to the classic float `le` series.
    assert_eq!(
        sel(&[Matcher::equal("__name__", "lat_sum")]),
        [r#"lat{job="api"}"#]
    );
    assert!(sel(&[Matcher::equal("__name__", "lat")]).is_empty());
    let le = sel(&[
        Matcher::equal("__name__", "lat_bucket"),
        Matcher::equal("le", "0.5"),
    ]);
    assert_eq!(le.len(), 2, "{le:?}");
    assert!(sel(&[Matcher::equal("__name__", "up"), Matcher::equal("job", "x")]).is_empty());
}

#[test]
fn golden_tiny_index() {
    let v = vec![s(&[("a", "b")], SeriesKind::Float, 1)];
    let b = encode_index(&v);
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &b"WPIX"[..], &[1, 0, 0, 0],
        // symbols: 2 symbols "a", "b"; CRC
        &[2, 1, b'a', 1, b'b'], &crc32c::crc32c(&[2, 1, b'a', 1, b'b']).to_le_bytes(),
        // series: 1 label (0,1), kind 0, 1 chunk: min 0, span 999, ts_ref 8, val_ref 60
        &[1, 0, 1, 0, 1, 0, 0xe7, 0x07, 8, 60], &crc32c::crc32c(&[1, 0, 1, 0, 1, 0, 0xe7, 0x07, 8, 60]).to_le_bytes(),
        // series offsets: [0u64]
        &[0; 8], &crc32c::crc32c(&[0; 8]).to_le_bytes(),
        // postings: one list [0]
        &[1, 0], &crc32c::crc32c(&[1, 0]).to_le_bytes(),
        // table: (0, 1) -> 0
        &[0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &crc32c::crc32c(&[0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).to_le_bytes(),
    ].concat();
    assert_eq!(b.get(..want.len()), Some(&want[..]));
    assert_eq!(b.len(), want.len() + TOC_LEN);
    let toc = &b[want.len()..];
    assert_eq!(
        &toc[0..16],
        &[8, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(&toc[80..88], &[1, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn every_flipped_byte_is_detected() {
    let b = encode_index(&sample());
    for i in 0..b.len() {
        let mut c = b.clone();
        c[i] ^= 0x5a;
        assert!(
            IndexReader::from_bytes(Path::new("index"), c).is_err(),
            "flip at {i} not detected"
        );
    }
}

/// Reads everything the reader offers; must not panic on any input.
fn exercise(bytes: Vec<u8>) {
    if let Ok(r) = IndexReader::from_bytes(Path::new("index"), bytes) {
        for i in 0..r.n_series().min(64) {
            let _ = r.series(i);
        }
        for n in r.label_names() {
            let _ = r.label_values(&n);
        }
        let _ = r.select_ids(&[
            m(MatchOp::RegexMatch, "__name__", ".+"),
            Matcher::equal("le", "1"),
        ]);
    }
}

proptest! {
    #[test]
    fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        exercise(bytes);
    }

    #[test]
    fn reader_never_panics_on_mutations(pos in any::<prop::sample::Index>(), val: u8, fix_crc: bool) {
        // Mutations behind a valid TOC CRC reach the section parsers only
        // if the section CRC is recomputed, so do that half the time.
        let mut b = encode_index(&sample());
        let i = pos.index(b.len());
        b[i] = val;
        if fix_crc {
            let r = IndexReader::from_bytes(Path::new("i"), encode_index(&sample())).unwrap();
            for (off, len) in r.section_bounds() {
                let crc = crc32c::crc32c(&b[off..off + len]);
                b[off + len..off + len + 4].copy_from_slice(&crc.to_le_bytes());
            }
        }
        exercise(b);
    }
}
