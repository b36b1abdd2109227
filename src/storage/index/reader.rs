//! Reads an index file through a memory map. `open` verifies the magic,
//! version, TOC and every section's CRC32C and loads the symbol table; series
//! entries and postings lists are decoded from the map on demand, with every
//! reference bounds-checked.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use super::{
    ChunkMeta, HISTOGRAM_KEY, INDEX_MAGIC, INDEX_VERSION, IndexSeries, SeriesKind, TOC_LEN,
    map_file,
};
use crate::model::{Label, Labels};
use crate::storage::api::StorageError;
use crate::storage::codec::{CodecError, Cursor, MAX_COLUMN_LEN};

/// Bytes an index is read from.
enum Data {
    Map(Mmap),
    #[cfg(test)]
    Owned(Vec<u8>),
}

impl Data {
    fn bytes(&self) -> &[u8] {
        match self {
            Data::Map(m) => m,
            #[cfg(test)]
            Data::Owned(v) => v,
        }
    }
}

/// A section's body position in the file (CRC excluded).
#[derive(Clone, Copy, Debug)]
struct Section {
    off: usize,
    len: usize,
}

/// An open, verified index file.
pub(crate) struct IndexReader {
    path: PathBuf,
    data: Data,
    symbols: Vec<Arc<str>>,
    series: Section,
    offsets: Section,
    postings: Section,
    table: Section,
    n_series: u32,
}

impl std::fmt::Debug for IndexReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexReader")
            .field("path", &self.path)
            .field("series", &self.n_series)
            .field("symbols", &self.symbols.len())
            .finish()
    }
}

/// Size of one postings-table entry: name ref u32, value ref u32, offset u64.
const TABLE_ENTRY: usize = 16;

impl IndexReader {
    /// Maps and verifies the index file at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, StorageError> {
        let map = map_file(path)?;
        Self::from_data(path.to_path_buf(), Data::Map(map))
    }

    /// Verifies an index held in memory (`path` is used in errors only).
    #[cfg(test)]
    pub(crate) fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, StorageError> {
        Self::from_data(path.to_path_buf(), Data::Owned(bytes))
    }

    fn from_data(path: PathBuf, data: Data) -> Result<Self, StorageError> {
        let corrupt = |offset: usize, reason: String| StorageError::Corrupt {
            path: path.clone(),
            offset: offset as u64,
            reason,
        };
        let b = data.bytes();
        if b.len() < 8 + TOC_LEN {
            return Err(corrupt(
                0,
                format!("file is {} bytes, too short for an index", b.len()),
            ));
        }
        if b.get(0..4) != Some(&INDEX_MAGIC[..]) {
            return Err(corrupt(0, "bad magic: not a watchpost index file".into()));
        }
        let version = b.get(4).copied().unwrap_or(0);
        if version != INDEX_VERSION {
            return Err(corrupt(
                4,
                format!("unsupported index version {version}, want {INDEX_VERSION}"),
            ));
        }
        if b.get(5..8) != Some(&[0u8, 0, 0][..]) {
            return Err(corrupt(5, "reserved header bytes are not zero".into()));
        }
        let toc_start = b.len() - TOC_LEN;
        let toc = b.get(toc_start..).unwrap_or(&[]);
        let (toc_body, toc_crc) = toc.split_at(TOC_LEN - 4);
        let want = u32::from_le_bytes([toc_crc[0], toc_crc[1], toc_crc[2], toc_crc[3]]);
        if crc32c::crc32c(toc_body) != want {
            return Err(corrupt(toc_start, "TOC checksum mismatch".into()));
        }
        let mut c = Cursor::with_base(toc_body, toc_start);
        let mut secs = [Section { off: 0, len: 0 }; 5];
        for (i, s) in secs.iter_mut().enumerate() {
            let off = c.u64_le("TOC").map_err(|e| codec(&path, e))? as usize;
            let len = c.u64_le("TOC").map_err(|e| codec(&path, e))? as usize;
            let end = off.checked_add(len).and_then(|e| e.checked_add(4));
            if off < 8 || end.is_none_or(|e| e > toc_start) {
                return Err(corrupt(
                    toc_start + i * 16,
                    format!("section {i} at {off}+{len} is outside the file"),
                ));
            }
            let body = b.get(off..off + len).unwrap_or(&[]);
            let crc = b.get(off + len..off + len + 4).unwrap_or(&[0; 4]);
            let want = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
            if crc32c::crc32c(body) != want {
                return Err(corrupt(off, format!("section {i} checksum mismatch")));
            }
            *s = Section { off, len };
        }
        let n_series = c.u64_le("TOC").map_err(|e| codec(&path, e))?;
        let [sym, series, offsets, postings, table] = secs;
        if offsets.len as u64 != n_series.saturating_mul(8) || n_series > u64::from(u32::MAX) {
            return Err(corrupt(
                offsets.off,
                format!(
                    "series offset table has {} bytes for {n_series} series",
                    offsets.len
                ),
            ));
        }
        if table.len % TABLE_ENTRY != 0 {
            return Err(corrupt(
                table.off,
                format!(
                    "postings table length {} is not a multiple of {TABLE_ENTRY}",
                    table.len
                ),
            ));
        }
        let symbols = parse_symbols(b.get(sym.off..sym.off + sym.len).unwrap_or(&[]), sym.off)
            .map_err(|e| codec(&path, e))?;
        let r = IndexReader {
            path,
            data,
            symbols,
            series,
            offsets,
            postings,
            table,
            n_series: n_series as u32,
        };
        r.check_table()?;
        Ok(r)
    }

    /// (offset, len) of the sections after the symbol table, for tests that
    /// re-seal mutated sections.
    #[cfg(test)]
    pub(crate) fn section_bounds(&self) -> [(usize, usize); 4] {
        [self.series, self.offsets, self.postings, self.table].map(|s| (s.off, s.len))
    }

    /// Number of series; their ids are `0..n_series`.
    pub(crate) fn n_series(&self) -> u32 {
        self.n_series
    }

    fn section(&self, s: Section) -> &[u8] {
        self.data.bytes().get(s.off..s.off + s.len).unwrap_or(&[])
    }

    fn corrupt(&self, offset: usize, reason: String) -> StorageError {
        StorageError::Corrupt {
            path: self.path.clone(),
            offset: offset as u64,
            reason,
        }
    }

    fn symbol(&self, r: u64, at: usize) -> Result<&Arc<str>, StorageError> {
        self.symbols.get(r as usize).ok_or_else(|| {
            self.corrupt(at, format!("symbol ref {r} out of {}", self.symbols.len()))
        })
    }

    fn symbol_ref(&self, s: &str) -> Option<u32> {
        self.symbols
            .binary_search_by(|x| (**x).cmp(s))
            .ok()
            .map(|i| i as u32)
    }

    fn table_entry(&self, i: usize) -> Option<(u32, u32, u64)> {
        let t = self.section(self.table);
        let e = t.get(i * TABLE_ENTRY..(i + 1) * TABLE_ENTRY)?;
        let mut c = Cursor::new(e);
        Some((c.u32_le("").ok()?, c.u32_le("").ok()?, c.u64_le("").ok()?))
    }

    fn table_len(&self) -> usize {
        self.table.len / TABLE_ENTRY
    }

    /// Verifies the postings table once at open: refs in range, keys strictly
    /// ascending, offsets inside the postings section.
    fn check_table(&self) -> Result<(), StorageError> {
        let mut prev: Option<(u32, u32)> = None;
        for i in 0..self.table_len() {
            let at = self.table.off + i * TABLE_ENTRY;
            let (n, v, off) = self
                .table_entry(i)
                .ok_or_else(|| self.corrupt(at, "short postings table".into()))?;
            self.symbol(u64::from(n), at)?;
            self.symbol(u64::from(v), at)?;
            if prev.is_some_and(|p| p >= (n, v)) {
                return Err(self.corrupt(at, "postings table keys not strictly ascending".into()));
            }
            if off as usize >= self.postings.len.max(1) {
                return Err(self.corrupt(at, format!("postings offset {off} outside section")));
            }
            prev = Some((n, v));
        }
        Ok(())
    }

    /// Reads series `id` (labels, kind, chunk metas).
    pub(crate) fn series(&self, id: u32) -> Result<IndexSeries, StorageError> {
        if id >= self.n_series {
            return Err(self.corrupt(
                self.offsets.off,
                format!("series id {id} out of {}", self.n_series),
            ));
        }
        let at = self.offsets.off + id as usize * 8;
        let mut oc = Cursor::with_base(
            self.section(self.offsets)
                .get(id as usize * 8..)
                .unwrap_or(&[]),
            at,
        );
        let off = oc
            .u64_le("series offset")
            .map_err(|e| codec(&self.path, e))? as usize;
        let body = self.section(self.series);
        let entry = body
            .get(off..)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.corrupt(at, format!("series offset {off} outside section")))?;
        self.parse_series(Cursor::with_base(entry, self.series.off + off))
            .map_err(|e| codec(&self.path, e))
    }

    fn parse_series(&self, mut c: Cursor<'_>) -> Result<IndexSeries, CodecError> {
        const WHAT: &str = "series entry";
        let n = c.count(1 << 16, WHAT)?;
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let name = c.uvarint(WHAT)?;
            let value = c.uvarint(WHAT)?;
            let sym = |r: u64| {
                self.symbols.get(r as usize).cloned().ok_or_else(|| {
                    c.err(
                        WHAT,
                        format!("symbol ref {r} out of {}", self.symbols.len()),
                    )
                })
            };
            let (name, value) = (sym(name)?, sym(value)?);
            if name.is_empty()
                || value.is_empty()
                || labels.last().is_some_and(|l: &Label| l.name >= name)
            {
                return Err(c.err(WHAT, "labels empty, unsorted or repeated"));
            }
            labels.push(Label { name, value });
        }
        let kind = match c.u8(WHAT)? {
            0 => SeriesKind::Float,
            1 => SeriesKind::Histogram,
            k => return Err(c.err(WHAT, format!("unknown series kind {k}"))),
        };
        let nc = c.count(c.remaining(), WHAT)?;
        let mut chunks = Vec::with_capacity(nc);
        let mut bounds: Option<Arc<[f64]>> = None;
        for _ in 0..nc {
            let min_t = c.varint(WHAT)?;
            let max_t = min_t.wrapping_add(c.uvarint(WHAT)? as i64);
            let ts_ref = c.uvarint(WHAT)?;
            let val_ref = c.uvarint(WHAT)?;
            if kind == SeriesKind::Histogram {
                match c.u8(WHAT)? {
                    0 if bounds.is_some() => {}
                    1 => {
                        let nb = c.count(c.remaining() / 8, WHAT)?;
                        let mut b = Vec::with_capacity(nb);
                        for _ in 0..nb {
                            b.push(f64::from_bits(c.u64_le(WHAT)?));
                        }
                        bounds = Some(b.into());
                    }
                    f => return Err(c.err(WHAT, format!("bad bounds flag {f}"))),
                }
            }
            chunks.push(ChunkMeta {
                min_t,
                max_t,
                ts_ref,
                val_ref,
                bounds: bounds.clone(),
            });
        }
        Ok(IndexSeries {
            labels: Labels::from_sorted(labels),
            kind,
            chunks,
        })
    }

    /// Decodes the postings list starting at `off` in the postings section.
    fn postings_at(&self, off: u64) -> Result<Vec<u32>, StorageError> {
        const WHAT: &str = "postings list";
        let body = self.section(self.postings);
        let base = self.postings.off + off as usize;
        let mut c = Cursor::with_base(body.get(off as usize..).unwrap_or(&[]), base);
        let r = (|| {
            let n = c.count(self.n_series as usize, WHAT)?;
            let mut ids = Vec::with_capacity(n);
            let mut prev = 0u64;
            for i in 0..n {
                let d = c.uvarint(WHAT)?;
                if i > 0 && d == 0 {
                    return Err(c.err(WHAT, "ids not strictly ascending"));
                }
                prev = prev.saturating_add(d);
                if prev >= u64::from(self.n_series) {
                    return Err(c.err(WHAT, format!("series id {prev} out of {}", self.n_series)));
                }
                ids.push(prev as u32);
            }
            Ok(ids)
        })();
        r.map_err(|e| codec(&self.path, e))
    }

    /// Sorted ids of series posted under `name`=`value`.
    pub(crate) fn postings(&self, name: &str, value: &str) -> Result<Vec<u32>, StorageError> {
        let (Some(n), Some(v)) = (self.symbol_ref(name), self.symbol_ref(value)) else {
            return Ok(Vec::new());
        };
        let (mut lo, mut hi) = (0usize, self.table_len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let Some((en, ev, off)) = self.table_entry(mid) else {
                break;
            };
            match (en, ev).cmp(&(n, v)) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return self.postings_at(off),
            }
        }
        Ok(Vec::new())
    }

    /// Ids of every histogram series.
    pub(crate) fn histogram_ids(&self) -> Result<Vec<u32>, StorageError> {
        self.postings(HISTOGRAM_KEY.0, HISTOGRAM_KEY.1)
    }

    /// Posted values of label `name`, ascending, each with its postings
    /// offset (internal; use [`Self::postings_for_values`]).
    fn values_of(&self, name: &str) -> Vec<(Arc<str>, u64)> {
        let Some(n) = self.symbol_ref(name) else {
            return Vec::new();
        };
        let start = partition_point(self.table_len(), |i| {
            self.table_entry(i).is_some_and(|e| e.0 < n)
        });
        let mut out = Vec::new();
        for i in start..self.table_len() {
            match self.table_entry(i) {
                Some((en, ev, off)) if en == n => {
                    if let Some(s) = self.symbols.get(ev as usize) {
                        out.push((s.clone(), off));
                    }
                }
                _ => break,
            }
        }
        out
    }

    /// Posted values of label `name`, ascending. For `__name__` this lists
    /// histogram view names rather than family names.
    pub(crate) fn label_values(&self, name: &str) -> Vec<Arc<str>> {
        self.values_of(name).into_iter().map(|v| v.0).collect()
    }

    /// Posted label names, ascending (the reserved histogram key excluded).
    pub(crate) fn label_names(&self) -> Vec<Arc<str>> {
        let mut out: Vec<Arc<str>> = Vec::new();
        let mut last = None;
        for i in 0..self.table_len() {
            if let Some((n, _, _)) = self.table_entry(i)
                && last != Some(n)
            {
                last = Some(n);
                if let Some(s) = self.symbols.get(n as usize).filter(|s| !s.is_empty()) {
                    out.push(s.clone());
                }
            }
        }
        out
    }

    /// Union of the postings of every value of `name` accepted by `keep`.
    pub(crate) fn postings_for_values(
        &self,
        name: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<u32>, StorageError> {
        let mut out = Vec::new();
        for (v, off) in self.values_of(name) {
            if keep(&v) {
                out.extend(self.postings_at(off)?);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

fn partition_point(len: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

fn parse_symbols(body: &[u8], base: usize) -> Result<Vec<Arc<str>>, CodecError> {
    const WHAT: &str = "symbol table";
    let mut c = Cursor::with_base(body, base);
    let n = c.count(body.len(), WHAT)?;
    let mut out: Vec<Arc<str>> = Vec::with_capacity(n);
    for _ in 0..n {
        let len = c.count(MAX_COLUMN_LEN, WHAT)?;
        let at = c.offset();
        let raw = c.bytes(len, WHAT)?;
        let s = std::str::from_utf8(raw).map_err(|e| CodecError {
            what: WHAT,
            offset: at,
            reason: format!("symbol is not UTF-8: {e}"),
        })?;
        if out.last().is_some_and(|p| &**p >= s) {
            return Err(CodecError {
                what: WHAT,
                offset: at,
                reason: "symbols not strictly ascending".into(),
            });
        }
        out.push(Arc::from(s));
    }
    if c.remaining() != 0 {
        return Err(c.err(WHAT, format!("{} trailing bytes", c.remaining())));
    }
    Ok(out)
}

/// Maps a decoding error to a corruption of `path`.
fn codec(path: &Path, e: CodecError) -> StorageError {
    StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: e.offset as u64,
        reason: format!("cannot decode {}: {}", e.what, e.reason),
    }
}
