//! Segment files: an 8-byte header then length-prefixed, CRC32C-checked
//! record frames (storage-format.md sections 3.1 and 3.2).

use super::record::{Record, RecordError};
use crate::storage::files::{WAL_MAGIC, WAL_VERSION};

/// Bytes of the segment header: magic (4), version (1), reserved zeros (3).
pub(crate) const SEGMENT_HEADER_LEN: usize = 8;
/// Bytes of a frame header: length (4) + CRC32C (4).
pub(crate) const FRAME_HEADER_LEN: usize = 8;
/// Largest frame body accepted on read (type byte + payload). A length
/// above it can only come from corruption; it also bounds the allocation a
/// corrupt length could cause. Writers never produce a bigger record because
/// appenders split batches far below it.
pub(crate) const MAX_RECORD_LEN: u32 = 64 << 20;

/// The header every segment and checkpoint file starts with.
pub(crate) fn segment_header() -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..4].copy_from_slice(&WAL_MAGIC);
    h[4] = WAL_VERSION;
    h
}

/// Appends one framed record: `u32 len | u32 crc32c(type, payload) | type | payload`.
pub(crate) fn frame_record(buf: &mut Vec<u8>, rec: &Record) {
    frame_with(buf, rec.type_byte(), |buf| rec.encode_payload(buf));
}

/// Appends one framed record of type `ty` whose payload `payload` appends
/// (the framing of [`frame_record`], for payloads encoded straight from
/// the caller's data, e.g. [`super::record::encode_float_batch`]).
pub(crate) fn frame_with(buf: &mut Vec<u8>, ty: u8, payload: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    buf.push(ty);
    payload(buf);
    let body = buf.get(start + FRAME_HEADER_LEN..).unwrap_or(&[]);
    let len = body.len() as u32;
    let crc = crc32c::crc32c(body);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// How a segment's header was judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderCheck {
    /// Valid header.
    Ok,
    /// Shorter than the header: a segment torn while being created.
    Torn,
    /// Wrong magic bytes: not a WAL segment, or corrupted.
    BadMagic,
    /// A format version this build cannot read.
    UnknownVersion(u8),
}

/// Checks a segment header.
pub(crate) fn check_header(bytes: &[u8]) -> HeaderCheck {
    let Some(h) = bytes.get(..SEGMENT_HEADER_LEN) else {
        return HeaderCheck::Torn;
    };
    if h[..4] != WAL_MAGIC {
        return HeaderCheck::BadMagic;
    }
    if h[4] != WAL_VERSION {
        return HeaderCheck::UnknownVersion(h[4]);
    }
    HeaderCheck::Ok
}

/// Result of scanning the frames of one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Bytes from the file start up to the end of the last good frame.
    pub(crate) valid_len: u64,
    /// Good frames read.
    pub(crate) records: u64,
    /// Where and why scanning stopped early (torn or corrupt tail).
    pub(crate) stopped: Option<(u64, String)>,
}

/// The commit-marker frame ending every write (see [`Record::Commit`]).
pub(crate) fn commit_marker() -> [u8; FRAME_HEADER_LEN + 1] {
    let mut m = [0u8; FRAME_HEADER_LEN + 1];
    m[..4].copy_from_slice(&1u32.to_le_bytes());
    m[4..8].copy_from_slice(&crc32c::crc32c(&[super::record::TYPE_COMMIT]).to_le_bytes());
    m[8] = super::record::TYPE_COMMIT;
    m
}

/// Scans the frames after the header of `bytes` (a whole segment), handing
/// every decoded record and the file offset just past its frame to `f` in
/// order, and stops at the first frame that is incomplete, fails its CRC or
/// does not decode.
pub(crate) fn scan_frames(bytes: &[u8], mut f: impl FnMut(Record, u64)) -> Scan {
    let mut pos = SEGMENT_HEADER_LEN.min(bytes.len());
    let mut records = 0;
    let stop = |pos: usize, reason: String, records| Scan {
        valid_len: pos as u64,
        records,
        stopped: Some((pos as u64, reason)),
    };
    while pos < bytes.len() {
        let Some(h) = bytes.get(pos..pos + FRAME_HEADER_LEN) else {
            return stop(pos, "torn frame header".into(), records);
        };
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if len == 0 {
            return stop(pos, "zero frame length (unwritten tail)".into(), records);
        }
        if len > MAX_RECORD_LEN {
            return stop(
                pos,
                format!("frame length {len} exceeds the {MAX_RECORD_LEN} limit"),
                records,
            );
        }
        let body_start = pos + FRAME_HEADER_LEN;
        let Some(body) = bytes.get(body_start..body_start + len as usize) else {
            return stop(
                pos,
                format!(
                    "torn frame: length {len} but only {} bytes left",
                    bytes.len() - body_start
                ),
                records,
            );
        };
        let got = crc32c::crc32c(body);
        if got != crc {
            return stop(
                pos,
                format!("CRC mismatch: stored {crc:#010x}, computed {got:#010x}"),
                records,
            );
        }
        let (ty, payload) = (body[0], &body[1..]);
        match Record::decode(ty, payload) {
            Ok(r) => f(r, (body_start + len as usize) as u64),
            Err(RecordError { offset, reason }) => {
                return stop(
                    pos,
                    format!("bad record (type {ty}) at payload byte {offset}: {reason}"),
                    records,
                );
            }
        }
        records += 1;
        pos = body_start + len as usize;
    }
    Scan {
        valid_len: pos as u64,
        records,
        stopped: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::wal::record::FloatRecord;

    #[test]
    fn header_and_frame_sizes() {
        assert_eq!(segment_header(), *b"WPWL\x01\0\0\0");
        let mut buf = Vec::new();
        frame_record(&mut buf, &Record::Floats(vec![]));
        // 8 frame header + type + count 0 + base 0
        assert_eq!(buf.len(), FRAME_HEADER_LEN + 3);
        assert_eq!(&buf[..4], &3u32.to_le_bytes());
        assert_eq!(&buf[4..8], &crc32c::crc32c(&[2, 0, 0]).to_le_bytes());
    }

    proptest::proptest! {
        /// Arbitrary bytes after a valid header never panic the scanner,
        /// and it never claims more than the input.
        #[test]
        fn scan_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let mut seg = segment_header().to_vec();
            seg.extend_from_slice(&body);
            let s = scan_frames(&seg, |_, end| assert!(end as usize <= seg.len()));
            proptest::prop_assert!(s.valid_len as usize <= seg.len());
            proptest::prop_assert!(s.valid_len as usize >= SEGMENT_HEADER_LEN);
        }

        /// Any sequence of framed records scans back to the same records,
        /// and cutting it anywhere keeps exactly the whole frames before
        /// the cut.
        #[test]
        fn frames_round_trip_and_cut(n in 1usize..8, cut_at in 0usize..1000) {
            let mut seg = segment_header().to_vec();
            let mut ends = Vec::new();
            for i in 0..n {
                frame_record(&mut seg, &Record::Floats(vec![FloatRecord { series_ref: i as u64, t: i as i64, v: i as f64 }]));
                ends.push(seg.len());
            }
            let cut = cut_at.min(seg.len()).max(SEGMENT_HEADER_LEN);
            let mut got = 0;
            let s = scan_frames(&seg[..cut], |_, _| got += 1);
            let want = ends.iter().filter(|&&e| e <= cut).count();
            proptest::prop_assert_eq!(got, want);
            proptest::prop_assert_eq!(s.stopped.is_some(), !ends.contains(&cut) && cut != SEGMENT_HEADER_LEN);
        }
    }

    #[test]
    fn commit_marker_is_a_framed_commit_record() {
        let mut buf = Vec::new();
        frame_record(&mut buf, &Record::Commit);
        assert_eq!(buf, commit_marker());
    }

    #[test]
    fn scan_stops_at_bad_crc() {
        let mut seg = segment_header().to_vec();
        let r = Record::Floats(vec![FloatRecord {
            series_ref: 1,
            t: 5,
            v: 2.0,
        }]);
        frame_record(&mut seg, &r);
        let good = seg.len();
        frame_record(&mut seg, &r);
        let last = seg.len() - 1;
        seg[last] ^= 1;
        let mut n = 0;
        let s = scan_frames(&seg, |_, _| n += 1);
        assert_eq!(n, 1);
        assert_eq!(s.valid_len, good as u64);
        assert!(s.stopped.unwrap().1.starts_with("CRC mismatch"));
    }
}
