//! The push groups file (`push_groups.wpg`): format in `storage-format.md`,
//! section "Push groups". Rewritten whole and atomically (temp file, fsync,
//! rename, fsync of the directory) after every change.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::PushError;
use super::family::{FamilyKind, PushedFamily, PushedMetric, PushedValue};
use super::grouping::GroupingKey;
use super::store::Group;
use crate::model::Labels;

/// File name of the push groups file inside the data directory.
pub const PUSH_GROUPS_FILE: &str = "push_groups.wpg";
const MAGIC: &[u8; 4] = b"WPPG";
const VERSION: u8 = 1;
/// Value tags.
const VALUE_SINGLE: u8 = 0;
const VALUE_SUMMARY: u8 = 1;
const VALUE_HISTOGRAM: u8 = 2;

fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

fn put_f64(buf: &mut Vec<u8>, v: f64) {
    buf.extend_from_slice(&v.to_bits().to_le_bytes());
}

/// Encodes all groups (header, body, CRC32C trailer).
pub(crate) fn encode(groups: &BTreeMap<GroupingKey, Group>) -> Vec<u8> {
    let mut b = Vec::with_capacity(256);
    b.extend_from_slice(MAGIC);
    b.push(VERSION);
    b.extend_from_slice(&[0, 0, 0]);
    put_uvarint(&mut b, groups.len() as u64);
    for (key, g) in groups {
        put_uvarint(&mut b, key.labels().len() as u64);
        for l in key.labels() {
            put_str(&mut b, &l.name);
            put_str(&mut b, &l.value);
        }
        b.extend_from_slice(&g.push_ms.to_le_bytes());
        b.extend_from_slice(&g.failure_ms.to_le_bytes());
        put_uvarint(&mut b, g.families.len() as u64);
        for f in g.families.values() {
            put_str(&mut b, &f.name);
            put_str(&mut b, &f.help);
            b.push(f.kind.code());
            put_uvarint(&mut b, f.metrics.len() as u64);
            for m in &f.metrics {
                put_uvarint(&mut b, m.labels.len() as u64);
                for (n, v) in &m.labels {
                    put_str(&mut b, n);
                    put_str(&mut b, v);
                }
                match &m.value {
                    PushedValue::Single(v) => {
                        b.push(VALUE_SINGLE);
                        put_f64(&mut b, *v);
                    }
                    PushedValue::Summary {
                        count,
                        sum,
                        quantiles,
                    } => {
                        b.push(VALUE_SUMMARY);
                        put_f64(&mut b, *count);
                        put_f64(&mut b, *sum);
                        put_uvarint(&mut b, quantiles.len() as u64);
                        for (q, v) in quantiles {
                            put_f64(&mut b, *q);
                            put_f64(&mut b, *v);
                        }
                    }
                    PushedValue::Histogram {
                        count,
                        sum,
                        buckets,
                    } => {
                        b.push(VALUE_HISTOGRAM);
                        put_f64(&mut b, *count);
                        put_f64(&mut b, *sum);
                        put_uvarint(&mut b, buckets.len() as u64);
                        for (ub, c) in buckets {
                            put_f64(&mut b, *ub);
                            put_f64(&mut b, *c);
                        }
                    }
                }
            }
        }
    }
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], (usize, String)> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or((self.pos, format!("truncated: need {n} bytes")))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, (usize, String)> {
        Ok(self.take(1)?[0])
    }
    fn uvarint(&mut self) -> Result<u64, (usize, String)> {
        let start = self.pos;
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
        }
        Err((start, "uvarint longer than 10 bytes".into()))
    }
    /// A count, bounded by the bytes left so a corrupt count cannot
    /// trigger a huge allocation.
    fn count(&mut self) -> Result<usize, (usize, String)> {
        let at = self.pos;
        let n = self.uvarint()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.buf.len() - self.pos)
            .ok_or((at, format!("count {n} exceeds the remaining bytes")))
    }
    fn str(&mut self) -> Result<String, (usize, String)> {
        let n = self.count()?;
        let at = self.pos;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| (at, "string is not UTF-8".into()))
    }
    fn i64(&mut self) -> Result<i64, (usize, String)> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }
    fn f64(&mut self) -> Result<f64, (usize, String)> {
        Ok(f64::from_bits(self.i64()? as u64))
    }
}

/// Decodes a whole file image; errors carry the byte offset.
pub(crate) fn decode(bytes: &[u8]) -> Result<BTreeMap<GroupingKey, Group>, (usize, String)> {
    if bytes.len() < 12 {
        return Err((
            0,
            format!(
                "file has {} bytes, shorter than header and CRC",
                bytes.len()
            ),
        ));
    }
    let (body, crc_bytes) = bytes.split_at(bytes.len() - 4);
    let want = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
    let got = crc32c::crc32c(body);
    if got != want {
        return Err((
            body.len(),
            format!("CRC32C mismatch: stored {want:#010x}, computed {got:#010x}"),
        ));
    }
    if &body[..4] != MAGIC {
        return Err((0, format!("bad magic {:?}, want \"WPPG\"", &body[..4])));
    }
    if body[4] != VERSION {
        return Err((
            4,
            format!("unsupported version {}, want {VERSION}", body[4]),
        ));
    }
    let mut r = Reader { buf: body, pos: 8 };
    let n_groups = r.count()?;
    let mut groups = BTreeMap::new();
    for _ in 0..n_groups {
        let at = r.pos;
        let n = r.count()?;
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            pairs.push((r.str()?, r.str()?));
        }
        let key =
            GroupingKey::from_labels(Labels::from_pairs(pairs)).map_err(|e| (at, e.to_string()))?;
        let push_ms = r.i64()?;
        let failure_ms = r.i64()?;
        let n_fam = r.count()?;
        let mut families = BTreeMap::new();
        for _ in 0..n_fam {
            let name = r.str()?;
            let help = r.str()?;
            let at = r.pos;
            let kind =
                FamilyKind::from_code(r.u8()?).ok_or((at, "unknown family type".to_string()))?;
            let n_m = r.count()?;
            let mut metrics = Vec::with_capacity(n_m);
            for _ in 0..n_m {
                let n_l = r.count()?;
                let mut labels = Vec::with_capacity(n_l);
                for _ in 0..n_l {
                    labels.push((r.str()?, r.str()?));
                }
                let at = r.pos;
                let value = match r.u8()? {
                    VALUE_SINGLE => PushedValue::Single(r.f64()?),
                    VALUE_SUMMARY => {
                        let count = r.f64()?;
                        let sum = r.f64()?;
                        let n_q = r.count()?;
                        let mut quantiles = Vec::with_capacity(n_q);
                        for _ in 0..n_q {
                            quantiles.push((r.f64()?, r.f64()?));
                        }
                        PushedValue::Summary {
                            count,
                            sum,
                            quantiles,
                        }
                    }
                    VALUE_HISTOGRAM => {
                        let count = r.f64()?;
                        let sum = r.f64()?;
                        let n_b = r.count()?;
                        let mut buckets = Vec::with_capacity(n_b);
                        for _ in 0..n_b {
                            buckets.push((r.f64()?, r.f64()?));
                        }
                        PushedValue::Histogram {
                            count,
                            sum,
                            buckets,
                        }
                    }
                    t => return Err((at, format!("unknown value tag {t}"))),
                };
                metrics.push(PushedMetric {
                    labels,
                    value,
                    timestamp_ms: None,
                });
            }
            families.insert(
                name.clone(),
                PushedFamily {
                    name,
                    help,
                    kind,
                    metrics,
                },
            );
        }
        groups.insert(
            key,
            Group {
                families,
                push_ms,
                failure_ms,
            },
        );
    }
    if r.pos != body.len() {
        return Err((
            r.pos,
            format!("{} trailing bytes before the CRC", body.len() - r.pos),
        ));
    }
    Ok(groups)
}

/// Loads the file; a missing file is an empty store.
pub(crate) fn load(path: &Path) -> Result<BTreeMap<GroupingKey, Group>, PushError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(PushError::Io {
                op: "read",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    decode(&bytes).map_err(|(offset, reason)| PushError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    })
}

/// Atomically replaces the file with `groups`.
pub(crate) fn store(path: &Path, groups: &BTreeMap<GroupingKey, Group>) -> Result<(), PushError> {
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| PushError::Io {
            op,
            path: p,
            source,
        }
    };
    let bytes = encode(groups);
    let tmp = path.with_extension("wpg.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(&bytes).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("fsync", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io("rename into place", path))?;
    if let Some(dir) = path.parent() {
        let d = std::fs::File::open(dir).map_err(io("open directory of", path))?;
        d.sync_all().map_err(io("fsync directory of", path))?;
    }
    Ok(())
}
