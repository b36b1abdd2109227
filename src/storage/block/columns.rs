//! The `columns` file: a header, length-prefixed records each followed by
//! its CRC32C, and a footer holding the CRC32C of everything before it.
//!
//! | part    | bytes | content |
//! |---------|-------|---------|
//! | header  | 8     | magic `WPCL`, version u8 = 1, 3 zero bytes |
//! | record  | var   | `uvarint len`, `len` payload bytes, `u32` CRC32C of the payload |
//! | footer  | 8     | `u32` CRC32C of bytes `0..footer`, magic `WPCE` |
//!
//! Payloads are a timestamps column, a values column, or a histogram record
//! (`uvarint buckets`, count column, sum column, then per bucket a flag byte:
//! `0` + values column, `1` = "same as the count column", or `2` + values
//! column of differences from the previous bucket column). Index chunk
//! refs are record offsets. The whole-file CRC is checked when a block is
//! opened; each record's CRC again when it is read.

use std::io::Write;
use std::path::Path;

use super::HistogramRun;
use crate::storage::api::StorageError;
use crate::storage::codec::{
    CodecError, Cursor, encode_values, put_uvarint, read_timestamps_into, read_values,
    read_values_into,
};

/// First bytes of a column file.
pub(crate) const COLUMNS_MAGIC: [u8; 4] = *b"WPCL";
/// Last bytes of a column file.
pub(crate) const COLUMNS_END_MAGIC: [u8; 4] = *b"WPCE";
/// Current column file version.
pub(crate) const COLUMNS_VERSION: u8 = 1;
const HEADER_LEN: usize = 8;
const FOOTER_LEN: usize = 8;

/// Streams records into a column file.
pub(crate) struct ColumnWriter {
    out: std::io::BufWriter<std::fs::File>,
    path: std::path::PathBuf,
    pos: u64,
    crc: u32,
}

impl ColumnWriter {
    /// Creates the file and writes the header.
    pub(crate) fn create(path: &Path) -> Result<Self, StorageError> {
        let f = std::fs::File::create(path).map_err(|source| StorageError::Io {
            op: "create",
            path: path.to_path_buf(),
            source,
        })?;
        let mut w = ColumnWriter {
            out: std::io::BufWriter::with_capacity(1 << 16, f),
            path: path.to_path_buf(),
            pos: 0,
            crc: 0,
        };
        w.raw(&[
            COLUMNS_MAGIC[0],
            COLUMNS_MAGIC[1],
            COLUMNS_MAGIC[2],
            COLUMNS_MAGIC[3],
            COLUMNS_VERSION,
            0,
            0,
            0,
        ])?;
        Ok(w)
    }

    fn raw(&mut self, b: &[u8]) -> Result<(), StorageError> {
        self.out.write_all(b).map_err(|source| StorageError::Io {
            op: "write",
            path: self.path.clone(),
            source,
        })?;
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Appends a record; returns its offset (the ref stored in the index).
    pub(crate) fn record(&mut self, payload: &[u8]) -> Result<u64, StorageError> {
        let off = self.pos;
        let mut head = Vec::with_capacity(10);
        put_uvarint(&mut head, payload.len() as u64);
        self.raw(&head)?;
        self.raw(payload)?;
        self.raw(&crc32c::crc32c(payload).to_le_bytes())?;
        Ok(off)
    }

    /// Writes the footer and fsyncs; returns the file size.
    pub(crate) fn finish(mut self) -> Result<u64, StorageError> {
        let crc = self.crc.to_le_bytes();
        self.raw(&crc)?;
        self.raw(&COLUMNS_END_MAGIC)?;
        let io = |op, source| StorageError::Io {
            op,
            path: self.path.clone(),
            source,
        };
        let f = self
            .out
            .into_inner()
            .map_err(|e| io("write", e.into_error()))?;
        f.sync_all().map_err(|e| io("fsync", e))?;
        Ok(self.pos)
    }
}

/// Encodes the histogram record of `run`'s rows `range`. Each bucket column
/// is stored as the smallest of: its values (flag 0), "same as count" (flag
/// 1), or its differences from the previous bucket column (flag 2, only when
/// adding them back reproduces every value bit for bit). Differences of
/// cumulative counts are per-bucket counts, whose increments vary much less.
pub fn encode_histogram(run: &HistogramRun, range: std::ops::Range<usize>, out: &mut Vec<u8>) {
    let count = run.count.get(range.clone()).unwrap_or(&[]);
    put_uvarint(out, run.buckets.len() as u64);
    encode_values(count, out);
    encode_values(run.sum.get(range.clone()).unwrap_or(&[]), out);
    let same = |a: &[f64], b: &[f64]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    };
    let mut prev: Option<&[f64]> = None;
    let mut plain = Vec::new();
    let mut diff = Vec::new();
    for b in &run.buckets {
        let col = b.get(range.clone()).unwrap_or(&[]);
        if same(col, count) {
            out.push(1);
            prev = Some(col);
            continue;
        }
        plain.clear();
        encode_values(col, &mut plain);
        diff.clear();
        if let Some(p) = prev.filter(|p| p.len() == col.len()) {
            let d: Vec<f64> = col.iter().zip(p).map(|(c, p)| c - p).collect();
            let back: Vec<f64> = d.iter().zip(p).map(|(d, p)| p + d).collect();
            if same(&back, col) {
                encode_values(&d, &mut diff);
            }
        }
        if !diff.is_empty() && diff.len() < plain.len() {
            out.push(2);
            out.extend_from_slice(&diff);
        } else {
            out.push(0);
            out.extend_from_slice(&plain);
        }
        prev = Some(col);
    }
}

/// Decoded histogram record.
pub(crate) struct HistogramCols {
    pub(crate) buckets: Vec<Vec<f64>>,
    pub(crate) sum: Vec<f64>,
    pub(crate) count: Vec<f64>,
}

/// Checks the file envelope: size, magics, version, whole-file CRC.
pub(crate) fn verify_file(path: &Path, b: &[u8]) -> Result<(), StorageError> {
    let corrupt = |offset: usize, reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    if b.len() < HEADER_LEN + FOOTER_LEN {
        return Err(corrupt(
            0,
            format!("file is {} bytes, too short for a column file", b.len()),
        ));
    }
    if b.get(0..4) != Some(&COLUMNS_MAGIC[..]) {
        return Err(corrupt(0, "bad magic: not a watchpost column file".into()));
    }
    if b.get(4..8) != Some(&[COLUMNS_VERSION, 0, 0, 0][..]) {
        return Err(corrupt(
            4,
            format!("unsupported column file version/header {:?}", b.get(4..8)),
        ));
    }
    let foot = b.len() - FOOTER_LEN;
    if b.get(foot + 4..) != Some(&COLUMNS_END_MAGIC[..]) {
        return Err(corrupt(foot + 4, "bad end magic (truncated file?)".into()));
    }
    let mut c = Cursor::with_base(b.get(foot..).unwrap_or(&[]), foot);
    let want = c.u32_le("footer").map_err(|e| codec(path, e))?;
    let got = crc32c::crc32c(b.get(..foot).unwrap_or(&[]));
    if got != want {
        return Err(corrupt(
            foot,
            format!("file checksum mismatch: stored {want:08x}, computed {got:08x}"),
        ));
    }
    Ok(())
}

/// The payload of the record at `off`, CRC-checked.
pub(crate) fn record<'a>(
    path: &Path,
    b: &'a [u8],
    off: u64,
) -> Result<(&'a [u8], usize), StorageError> {
    let end = b.len().saturating_sub(FOOTER_LEN);
    let off = usize::try_from(off).unwrap_or(usize::MAX);
    if off < HEADER_LEN || off >= end {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: off as u64,
            reason: "record ref outside the column file".into(),
        });
    }
    let mut c = Cursor::with_base(b.get(off..end).unwrap_or(&[]), off);
    let len = c.count(end, "column record").map_err(|e| codec(path, e))?;
    let start = c.offset();
    let payload = c.bytes(len, "column record").map_err(|e| codec(path, e))?;
    let crc = c.u32_le("column record CRC").map_err(|e| codec(path, e))?;
    if crc32c::crc32c(payload) != crc {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: off as u64,
            reason: "record checksum mismatch".into(),
        });
    }
    Ok((payload, start))
}

/// Decodes the timestamps record at `off`.
pub(crate) fn read_ts(path: &Path, b: &[u8], off: u64) -> Result<Vec<i64>, StorageError> {
    let mut ts = Vec::new();
    read_ts_into(path, b, off, &mut ts)?;
    Ok(ts)
}

/// Decodes the timestamps record at `off`, appending to `out`; returns how
/// many were appended. On error `out` is left as it was.
pub(crate) fn read_ts_into(
    path: &Path,
    b: &[u8],
    off: u64,
    out: &mut Vec<i64>,
) -> Result<usize, StorageError> {
    let (p, base) = record(path, b, off)?;
    let before = out.len();
    let mut c = Cursor::new(p);
    let r = read_timestamps_into(&mut c, out)
        .map_err(|e| codec(path, rebase(e, base)))
        .and_then(|n| {
            let new = out.get(before..).unwrap_or(&[]);
            if new.windows(2).any(|w| w[0] >= w[1]) {
                return Err(StorageError::Corrupt {
                    path: path.to_path_buf(),
                    offset: off,
                    reason: "timestamps not strictly increasing".into(),
                });
            }
            done(path, c.rest(), base + p.len() - c.rest().len())?;
            Ok(n)
        });
    if r.is_err() {
        out.truncate(before);
    }
    r
}

/// Decodes the float values record at `off`, which must hold `n` values,
/// appending to `out`. On error `out` is left as it was.
pub(crate) fn read_float_into(
    path: &Path,
    b: &[u8],
    off: u64,
    n: usize,
    out: &mut Vec<f64>,
) -> Result<(), StorageError> {
    let (p, base) = record(path, b, off)?;
    let before = out.len();
    let mut c = Cursor::new(p);
    let r = read_values_into(&mut c, out)
        .map_err(|e| codec(path, rebase(e, base)))
        .and_then(|got| {
            check_len(path, off, got, n)?;
            done(path, c.rest(), base + p.len() - c.rest().len())
        });
    if r.is_err() {
        out.truncate(before);
    }
    r
}

/// Decodes the histogram record at `off` for `n` rows and `nb` buckets.
pub(crate) fn read_histogram(
    path: &Path,
    b: &[u8],
    off: u64,
    n: usize,
    nb: usize,
) -> Result<HistogramCols, StorageError> {
    let (p, base) = record(path, b, off)?;
    let mut c = Cursor::with_base(p, base);
    let r = parse_histogram(&mut c).map_err(|e| codec(path, e))?;
    check_len(path, off, r.buckets.len(), nb)?;
    check_len(path, off, r.count.len(), n)?;
    check_len(path, off, r.sum.len(), n)?;
    for col in &r.buckets {
        check_len(path, off, col.len(), n)?;
    }
    done(path, c.rest(), c.offset())?;
    Ok(r)
}

/// Parses a histogram record payload (the shapes are checked by the caller).
pub(crate) fn parse_histogram(c: &mut Cursor<'_>) -> Result<HistogramCols, CodecError> {
    let got_nb = c.count(1 << 16, "histogram record")?;
    let count = read_values(c)?;
    let sum = read_values(c)?;
    let mut buckets = Vec::with_capacity(got_nb);
    for _ in 0..got_nb {
        match c.u8("histogram bucket flag")? {
            0 => buckets.push(read_values(c)?),
            1 => buckets.push(count.clone()),
            2 => {
                let at = c.offset();
                let d = read_values(c)?;
                let prev: &Vec<f64> = buckets.last().ok_or_else(|| CodecError {
                    what: "histogram record",
                    offset: at,
                    reason: "first bucket column cannot be a difference".into(),
                })?;
                if prev.len() != d.len() {
                    return Err(CodecError {
                        what: "histogram record",
                        offset: at,
                        reason: format!(
                            "difference column has {} rows, previous {}",
                            d.len(),
                            prev.len()
                        ),
                    });
                }
                let col = prev.iter().zip(&d).map(|(p, d)| p + d).collect();
                buckets.push(col);
            }
            f => return Err(c.err("histogram bucket flag", format!("unknown flag {f}"))),
        }
    }
    Ok(HistogramCols {
        buckets,
        sum,
        count,
    })
}

fn check_len(path: &Path, off: u64, got: usize, want: usize) -> Result<(), StorageError> {
    if got != want {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: off,
            reason: format!("column has {got} entries, want {want}"),
        });
    }
    Ok(())
}

/// Fails unless a record was consumed entirely (`at` = file offset of `tail`).
fn done(path: &Path, tail: &[u8], at: usize) -> Result<(), StorageError> {
    if !tail.is_empty() {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: at as u64,
            reason: format!("{} unread bytes at the end of a record", tail.len()),
        });
    }
    Ok(())
}

/// Shifts a decoder error's offset from record-relative to file-relative.
fn rebase(mut e: CodecError, base: usize) -> CodecError {
    e.offset += base;
    e
}

/// Maps a decoding error to a corruption of `path`.
pub(crate) fn codec(path: &Path, e: CodecError) -> StorageError {
    StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: e.offset as u64,
        reason: format!("cannot decode {}: {}", e.what, e.reason),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::model::STALE_NAN_BITS;

    fn round_trip(run: &HistogramRun) -> usize {
        let n = run.timestamps.len();
        let mut b = vec![0xaa];
        encode_histogram(run, 0..n, &mut b);
        let len = b.len() - 1;
        b.push(0x55);
        let mut c = Cursor::new(&b);
        c.u8("junk").unwrap();
        let h = parse_histogram(&mut c).unwrap();
        assert_eq!(c.rest(), &[0x55]);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&h.count), bits(&run.count));
        assert_eq!(bits(&h.sum), bits(&run.sum));
        assert_eq!(h.buckets.len(), run.buckets.len());
        for (a, b) in h.buckets.iter().zip(&run.buckets) {
            assert_eq!(bits(a), bits(b));
        }
        len
    }

    fn cumulative(per_bucket: &[Vec<u32>]) -> Vec<Vec<f64>> {
        let mut acc = vec![0f64; per_bucket.first().map_or(0, Vec::len)];
        let mut cols = Vec::new();
        for b in per_bucket {
            for (a, x) in acc.iter_mut().zip(b) {
                *a += f64::from(*x);
            }
            cols.push(acc.clone());
        }
        cols
    }

    #[test]
    fn golden_small_record() {
        // Two rows, bounds [1]: bucket 0 = [1, 2], +Inf = count = [3, 5].
        let run = HistogramRun {
            upper_bounds: Arc::from(vec![1.0]),
            timestamps: vec![10, 20],
            buckets: vec![vec![1.0, 2.0], vec![3.0, 5.0]],
            sum: vec![0.5, 1.5],
            count: vec![3.0, 5.0],
        };
        let mut b = Vec::new();
        encode_histogram(&run, 0..2, &mut b);
        #[rustfmt::skip]
        let want = [
            2,                          // bucket columns
            2, 1, 0, 0, 1, 2, 6, 10, 0, // count: DECIMAL e=0, raw [3, 5]
            2, 1, 1, 0, 1, 2, 10, 30, 0, // sum: DECIMAL e=1, raw [5, 15]
            0, 2, 1, 0, 0, 1, 2, 2, 4, 0, // bucket 0: flag 0, raw [1, 2]
            1,                          // +Inf bucket: same as count
        ];
        assert_eq!(b, want);
        round_trip(&run);
    }

    #[test]
    fn rejects_bad_flags() {
        // One row: count and sum columns are DECIMAL CONST 0, no exceptions.
        let col = [1, 1, 0, 0, 0, 0, 0];
        let rec = |tail: &[u8]| [&[1u8][..], &col, &col, tail].concat();
        let ok = rec(&[0, 1, 1, 0, 0, 0, 0, 0]);
        assert!(parse_histogram(&mut Cursor::new(&ok)).is_ok());
        let diff_first = rec(&[2, 1, 1, 0, 0, 0, 0, 0]);
        let e = parse_histogram(&mut Cursor::new(&diff_first))
            .err()
            .map(|e| e.reason);
        assert_eq!(
            e.as_deref(),
            Some("first bucket column cannot be a difference")
        );
        let e = parse_histogram(&mut Cursor::new(&rec(&[7])))
            .err()
            .map(|e| e.reason);
        assert_eq!(e.as_deref(), Some("unknown flag 7"));
    }

    proptest! {
        #[test]
        fn histogram_columns_round_trip(
            per in proptest::collection::vec(proptest::collection::vec(0u32..1000, 40), 1..8),
            sums in proptest::collection::vec(proptest::num::f64::ANY, 40),
            stale_at in proptest::option::of(0usize..40),
        ) {
            let mut buckets = cumulative(&per);
            let mut count = buckets.last().cloned().unwrap_or_default();
            let mut sum = sums;
            if let Some(i) = stale_at {
                let stale = f64::from_bits(STALE_NAN_BITS);
                for b in &mut buckets { b[i] = stale; }
                count[i] = stale;
                sum[i] = stale;
            }
            let run = HistogramRun {
                upper_bounds: Arc::from((1..per.len()).map(|i| i as f64).collect::<Vec<_>>()),
                timestamps: (0..40).collect(),
                buckets,
                sum,
                count,
            };
            round_trip(&run);
        }

        #[test]
        fn float_buckets_round_trip(cols in proptest::collection::vec(proptest::collection::vec(proptest::num::f64::ANY, 10), 1..5)) {
            let run = HistogramRun {
                upper_bounds: Arc::from((1..cols.len()).map(|i| i as f64).collect::<Vec<_>>()),
                timestamps: (0..10).collect(),
                count: cols.last().cloned().unwrap_or_default(),
                sum: cols[0].clone(),
                buckets: cols,
            };
            round_trip(&run);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_histogram(&mut Cursor::new(&bytes));
        }
    }
}
