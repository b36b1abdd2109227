//! An open block: verified `meta.json`, the index and the column file, both
//! memory-mapped. Reads decode only the chunks that overlap the asked range.
//!
//! Lifetime: a `Block` is shared as `Arc<Block>`. When [`Blocks`] drops a
//! block from its set (compaction, retention) it marks it deleted; the
//! directory is renamed to `<id>.deleted` and removed when the last reference
//! goes away, so a query that already holds the block finishes normally.
//!
//! [`Blocks`]: super::Blocks

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use memmap2::Mmap;

use super::columns::{read_float_into, read_histogram, read_ts, verify_file};
use super::merge::{merge_histograms, merge_series};
use super::meta::read_meta;
use super::{
    BlockMeta, BlockSeries, BlockSeriesData, COLUMNS_FILE, DELETED_SUFFIX, HistogramRun,
    INDEX_FILE, META_FILE,
};
use crate::model::Matcher;
use crate::storage::api::{HistogramSeries, SelectHints, Series, StorageError};
use crate::storage::index::{ChunkMeta, IndexReader, IndexSeries, SeriesKind, map_file};
use crate::storage::views::{
    HistogramColumns, LE, bucket_view_matches_ignoring_le, expand_views, histogram_series,
    select_views, view_label_names, view_label_values,
};

/// An open, verified, immutable block.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader,
    columns: Mmap,
    columns_path: PathBuf,
    size_bytes: u64,
    deleted: AtomicBool,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("dir", &self.dir)
            .field("min_time", &self.meta.min_time)
            .field("max_time", &self.meta.max_time)
            .finish()
    }
}

/// A histogram run inside one block: its bounds and chunks.
type RunChunks<'a> = (Arc<[f64]>, Vec<&'a ChunkMeta>);

fn same_bounds(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Row range of `ts` inside `[min_t, max_t]`.
fn rows(ts: &[i64], min_t: i64, max_t: i64) -> std::ops::Range<usize> {
    ts.partition_point(|&t| t < min_t)..ts.partition_point(|&t| t <= max_t)
}

impl Block {
    /// Opens the block in `dir`, verifying `meta.json`'s checksum, file sizes,
    /// the index (magic, version, TOC and section CRCs) and the column file
    /// (magic, version, whole-file CRC). Any mismatch is
    /// `StorageError::Corrupt`.
    pub fn open(dir: &Path) -> Result<Block, StorageError> {
        let meta_path = dir.join(META_FILE);
        let meta = read_meta(&meta_path)?;
        for f in &meta.files {
            let p = dir.join(&f.name);
            let size = std::fs::metadata(&p)
                .map_err(|source| StorageError::Io {
                    op: "stat",
                    path: p.clone(),
                    source,
                })?
                .len();
            if size != f.size {
                return Err(StorageError::Corrupt {
                    path: p,
                    offset: size,
                    reason: format!("file is {size} bytes, meta.json says {}", f.size),
                });
            }
        }
        let index = IndexReader::open(&dir.join(INDEX_FILE))?;
        let columns_path = dir.join(COLUMNS_FILE);
        let columns = map_file(&columns_path)?;
        verify_file(&columns_path, &columns)?;
        let meta_len = std::fs::metadata(&meta_path).map(|m| m.len()).unwrap_or(0);
        Ok(Block {
            dir: dir.to_path_buf(),
            size_bytes: meta.data_bytes() + meta_len,
            meta,
            index,
            columns,
            columns_path,
            deleted: AtomicBool::new(false),
        })
    }

    /// The verified metadata.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block id.
    pub fn id(&self) -> &str {
        &self.meta.id
    }

    /// The block directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes on disk (all files, meta.json included).
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Stored series (a histogram counts once).
    pub fn series_count(&self) -> u64 {
        u64::from(self.index.n_series())
    }

    /// True when the block's range `[min_time, max_time)` meets the inclusive
    /// range `[min_t, max_t]`.
    pub fn overlaps(&self, min_t: i64, max_t: i64) -> bool {
        self.meta.min_time <= max_t && min_t < self.meta.max_time
    }

    /// Asks for the directory to be removed once the last reference is
    /// dropped.
    pub(super) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::SeqCst);
    }

    /// Number of index entries (ids are `0..n`), for iteration.
    pub(super) fn n_entries(&self) -> u32 {
        self.index.n_series()
    }

    /// The index entry of series `id`.
    pub(super) fn entry(&self, id: u32) -> Result<IndexSeries, StorageError> {
        self.index.series(id)
    }

    /// Samples of a float entry within `[min_t, max_t]`.
    fn read_float(
        &self,
        e: &IndexSeries,
        min_t: i64,
        max_t: i64,
    ) -> Result<(Vec<i64>, Vec<f64>), StorageError> {
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        self.read_float_into(e, min_t, max_t, &mut TsCache::default(), &mut ts, &mut vs)?;
        Ok((ts, vs))
    }

    /// Appends the samples of a float entry within `[min_t, max_t]` to
    /// `ts`/`vs`, taking timestamp columns from `cache` (series scraped
    /// together share one column per chunk, so a read of many series
    /// decodes each shared column once). On error `ts`/`vs` may hold part
    /// of the entry.
    pub(crate) fn read_float_into(
        &self,
        e: &IndexSeries,
        min_t: i64,
        max_t: i64,
        cache: &mut TsCache,
        ts: &mut Vec<i64>,
        vs: &mut Vec<f64>,
    ) -> Result<(), StorageError> {
        for c in e
            .chunks
            .iter()
            .filter(|c| c.max_t >= min_t && c.min_t <= max_t)
        {
            let col = cache.get(self, c.ts_ref)?;
            let n = col.len();
            let r = rows(col, min_t, max_t);
            ts.extend_from_slice(col.get(r.clone()).unwrap_or(&[]));
            // Decode straight into the result, then cut the rows outside
            // the range (only chunks straddling a range edge have any).
            let at = vs.len();
            read_float_into(&self.columns_path, &self.columns, c.val_ref, n, vs)?;
            if r.end < n {
                vs.truncate(at + r.end);
            }
            if r.start > 0 {
                vs.drain(at..at + r.start);
            }
        }
        Ok(())
    }

    /// Groups a histogram entry's chunks into runs of equal bounds, keeping
    /// only chunks that meet `[min_t, max_t]`.
    fn runs<'a>(e: &'a IndexSeries, min_t: i64, max_t: i64) -> Vec<RunChunks<'a>> {
        let mut out: Vec<RunChunks<'a>> = Vec::new();
        for c in &e.chunks {
            let b = c.bounds.clone().unwrap_or_else(|| Arc::from(Vec::new()));
            let in_range = c.max_t >= min_t && c.min_t <= max_t;
            match out.last_mut() {
                Some((lb, cs)) if same_bounds(lb, &b) => {
                    if in_range {
                        cs.push(c);
                    }
                }
                _ => out.push((b, if in_range { vec![c] } else { Vec::new() })),
            }
        }
        out.retain(|r| !r.1.is_empty());
        out
    }

    /// Decodes a run's chunks, trimmed to `[min_t, max_t]`.
    fn read_run(
        &self,
        bounds: &Arc<[f64]>,
        chunks: &[&ChunkMeta],
        min_t: i64,
        max_t: i64,
    ) -> Result<HistogramRun, StorageError> {
        let nb = bounds.len() + 1;
        let mut run = HistogramRun {
            upper_bounds: bounds.clone(),
            timestamps: Vec::new(),
            buckets: vec![Vec::new(); nb],
            sum: Vec::new(),
            count: Vec::new(),
        };
        for c in chunks {
            let ts = read_ts(&self.columns_path, &self.columns, c.ts_ref)?;
            let h = read_histogram(&self.columns_path, &self.columns, c.val_ref, ts.len(), nb)?;
            let r = rows(&ts, min_t, max_t);
            run.timestamps
                .extend_from_slice(ts.get(r.clone()).unwrap_or(&[]));
            run.sum
                .extend_from_slice(h.sum.get(r.clone()).unwrap_or(&[]));
            run.count
                .extend_from_slice(h.count.get(r.clone()).unwrap_or(&[]));
            for (dst, src) in run.buckets.iter_mut().zip(&h.buckets) {
                dst.extend_from_slice(src.get(r.clone()).unwrap_or(&[]));
            }
        }
        Ok(run)
    }

    /// Every sample of entry `e`.
    pub(super) fn read_entry(&self, e: &IndexSeries) -> Result<BlockSeries, StorageError> {
        let data = match e.kind {
            SeriesKind::Float => {
                let (timestamps, values) = self.read_float(e, i64::MIN, i64::MAX)?;
                BlockSeriesData::Float { timestamps, values }
            }
            SeriesKind::Histogram => {
                let mut runs = Vec::new();
                for (b, cs) in Self::runs(e, i64::MIN, i64::MAX) {
                    runs.push(self.read_run(&b, &cs, i64::MIN, i64::MAX)?);
                }
                BlockSeriesData::Histogram { runs }
            }
        };
        Ok(BlockSeries {
            labels: e.labels.clone(),
            data,
        })
    }

    /// Float series (including histogram views unless
    /// `skip_histogram_views`) matching `matchers`, sorted by labels, with
    /// samples in `[hints.min_t, hints.max_t]`.
    pub fn select(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series>, StorageError> {
        let (min_t, max_t) = (hints.min_t, hints.max_t);
        let (mut floats, mut out) = (Vec::new(), Vec::new());
        self.select_parts(hints, matchers, &mut floats, &mut out)?;
        let mut cache = TsCache::default();
        for e in floats {
            let (mut timestamps, mut values) = (Vec::new(), Vec::new());
            if !hints.labels_only {
                self.read_float_into(&e, min_t, max_t, &mut cache, &mut timestamps, &mut values)?;
            }
            if hints.labels_only || !timestamps.is_empty() {
                out.push(Series {
                    labels: e.labels,
                    timestamps,
                    values,
                });
            }
        }
        Ok(merge_series(out))
    }

    /// Appends the views of histogram entry `e` selected by `matchers`
    /// with samples in range (labels only when `hints.labels_only`).
    fn histogram_views(
        &self,
        e: &IndexSeries,
        hints: &SelectHints,
        matchers: &[Matcher],
        out: &mut Vec<Series>,
    ) -> Result<(), StorageError> {
        let (min_t, max_t) = (hints.min_t, hints.max_t);
        for (b, cs) in Self::runs(e, min_t, max_t) {
            let sel = select_views(&e.labels, &b, matchers);
            if sel.is_empty() {
                continue;
            }
            let run = if hints.labels_only {
                HistogramRun::empty(&b)
            } else {
                self.read_run(&b, &cs, min_t, max_t)?
            };
            if !hints.labels_only && run.timestamps.is_empty() {
                continue;
            }
            let cols = HistogramColumns {
                bounds: &b,
                timestamps: &run.timestamps,
                buckets: &run.buckets,
                sum: &run.sum,
                count: &run.count,
            };
            out.extend(expand_views(&e.labels, cols, &sel, hints.labels_only));
        }
        Ok(())
    }

    /// The parts of [`Block::select`]: float entries with a chunk in range,
    /// to be decoded later with [`Block::read_float_into`] (by `select`, or
    /// by a streaming read), and the histogram views, decoded now (labels
    /// only when `hints.labels_only`).
    pub(crate) fn select_parts(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
        floats: &mut Vec<IndexSeries>,
        views: &mut Vec<Series>,
    ) -> Result<(), StorageError> {
        let (min_t, max_t) = (hints.min_t, hints.max_t);
        if !self.overlaps(min_t, max_t) {
            return Ok(());
        }
        for id in self.index.select_ids(matchers)? {
            let e = self.index.series(id)?;
            match e.kind {
                SeriesKind::Float => {
                    if e.chunks
                        .iter()
                        .any(|c| c.max_t >= min_t && c.min_t <= max_t)
                    {
                        floats.push(e);
                    }
                }
                SeriesKind::Histogram if hints.skip_histogram_views => {}
                SeriesKind::Histogram => self.histogram_views(&e, hints, matchers, views)?,
            }
        }
        Ok(())
    }

    /// Histogram series whose `_bucket` view (ignoring `le`) matches, one per
    /// run of constant bounds, sorted by labels then time.
    pub fn select_histograms(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<HistogramSeries>, StorageError> {
        let (min_t, max_t) = (hints.min_t, hints.max_t);
        if !self.overlaps(min_t, max_t) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let no_le: Vec<Matcher> = matchers.iter().filter(|m| m.name != LE).cloned().collect();
        for id in self.index.select_ids(&no_le)? {
            let e = self.index.series(id)?;
            if e.kind != SeriesKind::Histogram
                || !bucket_view_matches_ignoring_le(&e.labels, matchers)
            {
                continue;
            }
            for (b, cs) in Self::runs(&e, min_t, max_t) {
                let run = if hints.labels_only {
                    HistogramRun::empty(&b)
                } else {
                    self.read_run(&b, &cs, min_t, max_t)?
                };
                if !hints.labels_only && run.timestamps.is_empty() {
                    continue;
                }
                out.push(histogram_series(
                    &e.labels,
                    b,
                    run.timestamps,
                    run.buckets,
                    run.sum,
                    run.count,
                ));
            }
        }
        Ok(merge_histograms(out))
    }

    /// True when the hints cover the whole block, so index-wide answers apply.
    fn covers(&self, hints: &SelectHints) -> bool {
        hints.min_t <= self.meta.min_time && hints.max_t >= self.meta.max_time.saturating_sub(1)
    }

    /// Calls `f` with the labels of each matching series and, for
    /// histograms, with each in-range run's bounds and selected views.
    fn for_each_match(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
        mut f: impl FnMut(&IndexSeries, Option<(&[f64], &crate::storage::views::ViewSelection)>),
    ) -> Result<(), StorageError> {
        let (min_t, max_t) = (hints.min_t, hints.max_t);
        if !self.overlaps(min_t, max_t) {
            return Ok(());
        }
        for id in self.index.select_ids(matchers)? {
            let e = self.index.series(id)?;
            match e.kind {
                SeriesKind::Float => {
                    if e.chunks
                        .iter()
                        .any(|c| c.max_t >= min_t && c.min_t <= max_t)
                    {
                        f(&e, None);
                    }
                }
                SeriesKind::Histogram => {
                    for (b, _) in Self::runs(&e, min_t, max_t) {
                        let sel = select_views(&e.labels, &b, matchers);
                        f(&e, Some((&b, &sel)));
                    }
                }
            }
        }
        Ok(())
    }

    /// Sorted label names of matching series (and views) with data in range.
    pub fn label_names(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        let mut out: Vec<String> = Vec::new();
        if matchers.is_empty() && self.covers(hints) {
            out.extend(self.index.label_names().iter().map(|s| s.to_string()));
            if !self.index.histogram_ids()?.is_empty() {
                out.push(LE.to_string());
            }
        } else {
            self.for_each_match(hints, matchers, |e, h| match h {
                None => out.extend(e.labels.iter().map(|l| l.name.to_string())),
                Some((_, sel)) => out.extend(
                    view_label_names(&e.labels, sel)
                        .iter()
                        .map(|s| s.to_string()),
                ),
            })?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Sorted values of label `name` over matching series (and views) with
    /// data in range.
    pub fn label_values(
        &self,
        name: &str,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        let mut out: Vec<String> = Vec::new();
        if matchers.is_empty() && name != LE && self.covers(hints) {
            out.extend(self.index.label_values(name).iter().map(|s| s.to_string()));
        } else {
            self.for_each_match(hints, matchers, |e, h| match h {
                None => out.extend(e.labels.get(name).map(str::to_string)),
                Some((b, sel)) => out.extend(view_label_values(&e.labels, b, sel, name)),
            })?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

/// Decoded timestamp columns of one block, by record offset, reused across
/// the series of one read. Bounded: past [`TsCache::MAX_COLUMNS`] columns
/// it starts over, so a read of a block without shared columns holds at
/// most that many.
#[derive(Debug, Default)]
pub(crate) struct TsCache {
    cols: std::collections::HashMap<u64, Vec<i64>>,
}

impl TsCache {
    /// Columns kept at most (a block column holds at most 16,384 rows).
    const MAX_COLUMNS: usize = 1024;

    /// The timestamps column at `ts_ref` in `block`, decoded on first use.
    fn get(&mut self, block: &Block, ts_ref: u64) -> Result<&[i64], StorageError> {
        if !self.cols.contains_key(&ts_ref) {
            if self.cols.len() >= Self::MAX_COLUMNS {
                self.cols.clear();
            }
            let col = read_ts(&block.columns_path, &block.columns, ts_ref)?;
            self.cols.insert(ts_ref, col);
        }
        Ok(self.cols.get(&ts_ref).map(Vec::as_slice).unwrap_or(&[]))
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if !self.deleted.load(Ordering::SeqCst) {
            return;
        }
        // Rename first so a crash mid-removal never leaves a half-deleted
        // directory under a block name (it would be reported as corrupt).
        let tomb = PathBuf::from(format!("{}{DELETED_SUFFIX}", self.dir.display()));
        let res = std::fs::rename(&self.dir, &tomb).and_then(|()| std::fs::remove_dir_all(&tomb));
        match res {
            Ok(()) => tracing::info!(block = %self.meta.id, "deleted block directory"),
            Err(e) => {
                tracing::warn!(block = %self.meta.id, dir = %self.dir.display(), error = %e, "cannot delete block directory")
            }
        }
    }
}
