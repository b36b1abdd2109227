//! Builds an index file in memory and writes it with one `write_all` and an
//! fsync. Index files are small next to column files (a few dozen bytes per
//! series), so building in memory keeps the writer simple.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

use super::{HISTOGRAM_KEY, INDEX_MAGIC, INDEX_VERSION, IndexSeries, SeriesKind};
use crate::model::METRIC_NAME;
use crate::storage::api::StorageError;
use crate::storage::codec::{put_uvarint, put_varint};
use crate::storage::views::view_names;

/// The (name, value) pairs a series is posted under.
fn posting_pairs(s: &IndexSeries) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(s.labels.len() + 3);
    for l in s.labels.iter() {
        if s.kind == SeriesKind::Histogram && &*l.name == METRIC_NAME {
            for v in view_names(&l.value) {
                out.push((METRIC_NAME.to_string(), v));
            }
        } else {
            out.push((l.name.to_string(), l.value.to_string()));
        }
    }
    if s.kind == SeriesKind::Histogram {
        out.push((HISTOGRAM_KEY.0.to_string(), HISTOGRAM_KEY.1.to_string()));
    }
    out
}

/// Appends `body` and its CRC32C; returns (offset, len) of the body.
fn section(out: &mut Vec<u8>, body: &[u8]) -> (u64, u64) {
    let off = out.len() as u64;
    out.extend_from_slice(body);
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    (off, body.len() as u64)
}

/// Encodes the index for `series` (sorted by (labels, kind), unique; ids are
/// their positions) into bytes.
pub(crate) fn encode_index(series: &[IndexSeries]) -> Vec<u8> {
    debug_assert!(
        series
            .windows(2)
            .all(|w| (&w[0].labels, w[0].kind as u8) < (&w[1].labels, w[1].kind as u8)),
        "bug: index series not sorted/unique"
    );
    let pairs: Vec<Vec<(String, String)>> = series.iter().map(posting_pairs).collect();
    let mut symbols: BTreeSet<&str> = BTreeSet::new();
    for s in series {
        for l in s.labels.iter() {
            symbols.insert(&l.name);
            symbols.insert(&l.value);
        }
    }
    for p in pairs.iter().flatten() {
        symbols.insert(&p.0);
        symbols.insert(&p.1);
    }
    let sym_ref: HashMap<&str, u64> = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, i as u64))
        .collect();
    let r = |s: &str| sym_ref.get(s).copied().unwrap_or(0);

    let mut out = Vec::new();
    out.extend_from_slice(&INDEX_MAGIC);
    out.extend_from_slice(&[INDEX_VERSION, 0, 0, 0]);

    let mut body = Vec::new();
    put_uvarint(&mut body, symbols.len() as u64);
    for s in &symbols {
        put_uvarint(&mut body, s.len() as u64);
        body.extend_from_slice(s.as_bytes());
    }
    let sym_sec = section(&mut out, &body);

    body.clear();
    let mut offsets = Vec::with_capacity(series.len() * 8);
    for s in series {
        offsets.extend_from_slice(&(body.len() as u64).to_le_bytes());
        put_uvarint(&mut body, s.labels.len() as u64);
        for l in s.labels.iter() {
            put_uvarint(&mut body, r(&l.name));
            put_uvarint(&mut body, r(&l.value));
        }
        body.push(s.kind as u8);
        put_uvarint(&mut body, s.chunks.len() as u64);
        let mut prev_bounds: Option<&[f64]> = None;
        for c in &s.chunks {
            put_varint(&mut body, c.min_t);
            put_uvarint(&mut body, c.max_t.wrapping_sub(c.min_t) as u64);
            put_uvarint(&mut body, c.ts_ref);
            put_uvarint(&mut body, c.val_ref);
            if s.kind == SeriesKind::Histogram {
                let b = c.bounds.as_deref().unwrap_or(&[]);
                if prev_bounds.is_some_and(|p| {
                    p.len() == b.len() && p.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
                }) {
                    body.push(0);
                } else {
                    body.push(1);
                    put_uvarint(&mut body, b.len() as u64);
                    for x in b {
                        body.extend_from_slice(&x.to_le_bytes());
                    }
                }
                prev_bounds = Some(b);
            }
        }
    }
    let series_sec = section(&mut out, &body);
    let offsets_sec = section(&mut out, &offsets);

    let mut postings: BTreeMap<(u64, u64), Vec<u32>> = BTreeMap::new();
    for (id, ps) in pairs.iter().enumerate() {
        for (n, v) in ps {
            postings.entry((r(n), r(v))).or_default().push(id as u32);
        }
    }
    body.clear();
    let mut table = Vec::with_capacity(postings.len() * 16);
    for ((n, v), ids) in &postings {
        table.extend_from_slice(&(*n as u32).to_le_bytes());
        table.extend_from_slice(&(*v as u32).to_le_bytes());
        table.extend_from_slice(&(body.len() as u64).to_le_bytes());
        put_uvarint(&mut body, ids.len() as u64);
        let mut prev = 0u32;
        for (i, &id) in ids.iter().enumerate() {
            put_uvarint(&mut body, u64::from(if i == 0 { id } else { id - prev }));
            prev = id;
        }
    }
    let post_sec = section(&mut out, &body);
    let table_sec = section(&mut out, &table);

    let toc_start = out.len();
    for (off, len) in [sym_sec, series_sec, offsets_sec, post_sec, table_sec] {
        out.extend_from_slice(&off.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(&(series.len() as u64).to_le_bytes());
    let crc = crc32c::crc32c(out.get(toc_start..).unwrap_or(&[]));
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Writes the index for `series` to `path` and fsyncs it; returns its size.
pub(crate) fn write_index(path: &Path, series: &[IndexSeries]) -> Result<u64, StorageError> {
    let bytes = encode_index(series);
    let io = |op, source| StorageError::Io {
        op,
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::create(path).map_err(|e| io("create", e))?;
    f.write_all(&bytes).map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("fsync", e))?;
    Ok(bytes.len() as u64)
}
