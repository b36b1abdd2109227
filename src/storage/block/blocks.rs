//! The set of open blocks in a data directory: queries across blocks,
//! compaction, retention and quarantine of corrupt blocks.
//!
//! Concurrency: the set is a `RwLock<Vec<Arc<Block>>>`. Readers clone the
//! `Arc`s they need and release the lock before decoding. Compaction and
//! retention swap blocks out of the set under the write lock and mark them
//! deleted; a block's directory is removed when its last `Arc` is dropped
//! (see `Block`'s `Drop`), so in-flight queries never see files vanish. On
//! Linux an unlinked file's mapping would stay valid anyway; deferring the
//! unlink keeps the rule independent of that.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::merge::{MergeIter, merge_histograms, merge_series};
use super::writer::{sync_dir, write_block_with};
use super::{Block, BlockMeta, CORRUPTED_DIR, Compaction, DELETED_SUFFIX, TMP_SUFFIX, is_block_id};
use crate::model::Matcher;
use crate::storage::api::{HistogramSeries, SelectHints, Series, StorageError};

const HOUR_MS: i64 = 3600 * 1000;

/// Tuning of a [`Blocks`] set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlocksOptions {
    /// Compaction ranges in ms, ascending, each a multiple of the previous:
    /// the first is the range of blocks cut from the head; blocks are merged
    /// into aligned windows of each following range. Default 2 h, 12 h, 48 h
    /// (the steps the storage issue asks for).
    pub ranges: Vec<i64>,
}

impl Default for BlocksOptions {
    fn default() -> Self {
        BlocksOptions {
            ranges: vec![2 * HOUR_MS, 12 * HOUR_MS, 48 * HOUR_MS],
        }
    }
}

/// The open blocks of one data directory.
#[derive(Debug)]
pub struct Blocks {
    dir: PathBuf,
    opts: BlocksOptions,
    /// Sorted by `(min_time, id)`; later entries win on equal timestamps.
    blocks: RwLock<Vec<Arc<Block>>>,
    /// Serializes compaction and retention (readers are not blocked).
    maintenance: Mutex<()>,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { op, path, source }
}

fn sort_blocks(v: &mut [Arc<Block>]) {
    v.sort_by(|a, b| (a.meta().min_time, a.id()).cmp(&(b.meta().min_time, b.id())));
}

impl Blocks {
    /// Opens every block in `data_dir` with default options.
    pub fn open(data_dir: &Path) -> Result<Blocks, StorageError> {
        Self::open_with(data_dir, BlocksOptions::default())
    }

    /// Opens every block directory in `data_dir` (created if missing).
    ///
    /// - `<id>.tmp` (unfinished writes) and `<id>.deleted` (unfinished
    ///   deletions) are removed.
    /// - A block failing verification (bad magic or version, checksum
    ///   mismatch, wrong size, missing file) is moved to
    ///   `<data>/corrupted/<id>` with an error log line; the others serve.
    /// - A block whose sources are all contained in another block's sources
    ///   (left over by a crash between compaction and deletion) is deleted.
    pub fn open_with(data_dir: &Path, opts: BlocksOptions) -> Result<Blocks, StorageError> {
        std::fs::create_dir_all(data_dir).map_err(io("create directory", data_dir))?;
        let mut blocks = Vec::new();
        let entries = std::fs::read_dir(data_dir).map_err(io("list directory", data_dir))?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            let path = data_dir.join(&name);
            if name.ends_with(TMP_SUFFIX) || name.ends_with(DELETED_SUFFIX) {
                if is_block_id(
                    name.trim_end_matches(TMP_SUFFIX)
                        .trim_end_matches(DELETED_SUFFIX),
                ) {
                    tracing::info!(dir = %path.display(), "removing leftover block directory");
                    std::fs::remove_dir_all(&path).map_err(io("remove directory", &path))?;
                }
                continue;
            }
            if !is_block_id(&name) {
                continue;
            }
            match Block::open(&path) {
                Ok(b) => blocks.push(Arc::new(b)),
                Err(e) if is_corruption(&e) => quarantine(data_dir, &name, &e)?,
                Err(e) => return Err(e),
            }
        }
        // Drop blocks made obsolete by a compaction that finished writing
        // but crashed before deleting its inputs.
        let obsolete: Vec<usize> = (0..blocks.len())
            .filter(|&i| {
                blocks.iter().enumerate().any(|(j, other)| {
                    let (Some(b), true) = (blocks.get(i), i != j) else {
                        return false;
                    };
                    let mine = &b.meta().compaction.sources;
                    let theirs = &other.meta().compaction.sources;
                    theirs.len() > mine.len() && mine.iter().all(|s| theirs.contains(s))
                })
            })
            .collect();
        for &i in obsolete.iter().rev() {
            let b = blocks.remove(i);
            tracing::info!(block = %b.id(), "deleting block superseded by a compacted block");
            b.mark_deleted();
        }
        sort_blocks(&mut blocks);
        Ok(Blocks {
            dir: data_dir.to_path_buf(),
            opts,
            blocks: RwLock::new(blocks),
            maintenance: Mutex::new(()),
        })
    }

    /// The data directory.
    #[cfg_attr(
        not(feature = "internals"),
        expect(dead_code, reason = "block API used by tests; Db does not need it yet")
    )]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds an opened block (e.g. one just written from the head).
    pub fn add(&self, block: Block) -> Arc<Block> {
        let b = Arc::new(block);
        let mut g = self.blocks.write();
        g.push(b.clone());
        sort_blocks(&mut g);
        b
    }

    /// A snapshot of the current blocks in `(min_time, id)` order.
    pub fn blocks(&self) -> Vec<Arc<Block>> {
        self.blocks.read().clone()
    }

    /// Blocks meeting the inclusive range `[min_t, max_t]`.
    pub(crate) fn in_range(&self, min_t: i64, max_t: i64) -> Vec<Arc<Block>> {
        self.blocks
            .read()
            .iter()
            .filter(|b| b.overlaps(min_t, max_t))
            .cloned()
            .collect()
    }

    /// Earliest `min_time` of any block.
    #[cfg_attr(
        not(feature = "internals"),
        expect(dead_code, reason = "block API used by tests; Db does not need it yet")
    )]
    pub fn min_time(&self) -> Option<i64> {
        self.blocks.read().iter().map(|b| b.meta().min_time).min()
    }

    /// Latest `max_time` (exclusive) of any block.
    pub fn max_time(&self) -> Option<i64> {
        self.blocks.read().iter().map(|b| b.meta().max_time).max()
    }

    /// Bytes on disk of all blocks.
    pub fn size_bytes(&self) -> u64 {
        self.blocks.read().iter().map(|b| b.size_bytes()).sum()
    }

    /// Float series (and histogram views) matching `matchers` across blocks,
    /// sorted by labels, series present in several blocks merged (on equal
    /// timestamps the later block in `(min_time, id)` order wins).
    pub fn select(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series>, StorageError> {
        let mut all = Vec::new();
        for b in self.in_range(hints.min_t, hints.max_t) {
            all.extend(b.select(hints, matchers)?);
        }
        Ok(merge_series(all))
    }

    /// Histogram series whose `_bucket` view (ignoring `le`) matches, one per
    /// run of constant bounds, sorted by labels then time.
    pub fn select_histograms(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<HistogramSeries>, StorageError> {
        let mut all = Vec::new();
        for b in self.in_range(hints.min_t, hints.max_t) {
            all.extend(b.select_histograms(hints, matchers)?);
        }
        Ok(merge_histograms(all))
    }

    /// Sorted label names over matching series with data in range.
    pub fn label_names(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        let mut all = Vec::new();
        for b in self.in_range(hints.min_t, hints.max_t) {
            all.extend(b.label_names(hints, matchers)?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// Sorted values of `name` over matching series with data in range.
    pub fn label_values(
        &self,
        name: &str,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        let mut all = Vec::new();
        for b in self.in_range(hints.min_t, hints.max_t) {
            all.extend(b.label_values(name, hints, matchers)?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// Distinct stored series over all blocks (a histogram counts once; the
    /// same labels in several blocks count once).
    #[cfg_attr(
        not(feature = "internals"),
        expect(dead_code, reason = "block API used by tests; Db does not need it yet")
    )]
    pub fn series_count(&self) -> Result<u64, StorageError> {
        let blocks = self.blocks();
        if let [only] = blocks.as_slice() {
            return Ok(only.series_count());
        }
        let mut seen = HashSet::new();
        for b in &blocks {
            for id in 0..b.n_entries() {
                let e = b.entry(id)?;
                seen.insert((e.labels, e.kind as u8));
            }
        }
        Ok(seen.len() as u64)
    }

    /// Compacts until nothing is left to do: first every group of blocks
    /// with overlapping time ranges is merged (duplicates removed), then, for
    /// each range after the first, blocks that fall inside one aligned window
    /// of that range are merged once the window has ended (`now_ms` past its
    /// end). Returns the metas of the blocks written.
    pub fn compact(&self, now_ms: i64) -> Result<Vec<BlockMeta>, StorageError> {
        let _g = self.maintenance.lock();
        let mut written = Vec::new();
        while let Some(group) = self.plan(now_ms) {
            written.push(self.merge(group)?);
        }
        Ok(written)
    }

    /// The next group of blocks to merge, if any.
    fn plan(&self, now_ms: i64) -> Option<Vec<Arc<Block>>> {
        let blocks = self.blocks();
        // Overlapping blocks (in (min_time) order, a run whose ranges chain).
        let mut i = 0;
        while i < blocks.len() {
            let mut end = blocks.get(i)?.meta().max_time;
            let mut j = i + 1;
            while let Some(b) = blocks.get(j).filter(|b| b.meta().min_time < end) {
                end = end.max(b.meta().max_time);
                j += 1;
            }
            if j - i > 1 {
                return blocks.get(i..j).map(<[Arc<Block>]>::to_vec);
            }
            i = j;
        }
        for &range in self.opts.ranges.iter().skip(1) {
            let mut groups: Vec<(i64, Vec<Arc<Block>>)> = Vec::new();
            for b in &blocks {
                let m = b.meta();
                let w = m.min_time.div_euclid(range);
                let (start, end) = (w * range, w * range + range);
                if m.max_time > end || m.max_time - m.min_time >= range || end > now_ms {
                    continue;
                }
                match groups.last_mut() {
                    Some((gs, g)) if *gs == start => g.push(b.clone()),
                    _ => groups.push((start, vec![b.clone()])),
                }
            }
            if let Some((_, g)) = groups.into_iter().find(|(_, g)| g.len() > 1) {
                return Some(g);
            }
        }
        None
    }

    /// Writes the merge of `group` as one block, swaps it in and marks the
    /// inputs deleted.
    fn merge(&self, group: Vec<Arc<Block>>) -> Result<BlockMeta, StorageError> {
        let min_t = group.iter().map(|b| b.meta().min_time).min().unwrap_or(0);
        let max_t = group.iter().map(|b| b.meta().max_time).max().unwrap_or(0);
        let mut sources: Vec<String> = group
            .iter()
            .flat_map(|b| b.meta().compaction.sources.clone())
            .collect();
        sources.sort();
        sources.dedup();
        let lineage = Compaction {
            level: group
                .iter()
                .map(|b| b.meta().compaction.level)
                .max()
                .unwrap_or(0)
                + 1,
            sources,
        };
        let ids: Vec<String> = group.iter().map(|b| b.id().to_string()).collect();
        let meta = write_block_with(
            &self.dir,
            min_t,
            max_t,
            Some(lineage),
            MergeIter::new(group.clone()),
        )?;
        let block = Block::open(&self.dir.join(&meta.id))?;
        tracing::info!(block = %meta.id, level = meta.compaction.level, inputs = ?ids, min_t, max_t, "compacted blocks");
        {
            let mut g = self.blocks.write();
            g.retain(|b| !ids.iter().any(|id| id == b.id()));
            g.push(Arc::new(block));
            sort_blocks(&mut g);
        }
        for b in &group {
            b.mark_deleted();
        }
        Ok(meta)
    }

    /// Deletes whole blocks, oldest first: every block whose data ends before
    /// `now_ms - retention_time_ms` (when that is > 0), then the oldest
    /// blocks while the total size exceeds `retention_size_bytes` (when > 0).
    /// Returns the deleted ids. Directories go away once no query holds the
    /// block any more.
    pub fn apply_retention(
        &self,
        now_ms: i64,
        retention_time_ms: i64,
        retention_size_bytes: u64,
    ) -> Vec<String> {
        let _g = self.maintenance.lock();
        let mut g = self.blocks.write();
        let mut removed: Vec<Arc<Block>> = Vec::new();
        if retention_time_ms > 0 {
            let cutoff = now_ms.saturating_sub(retention_time_ms);
            let (old, keep): (Vec<_>, Vec<_>) =
                g.drain(..).partition(|b| b.meta().max_time <= cutoff);
            *g = keep;
            removed.extend(old);
        }
        if retention_size_bytes > 0 {
            let mut total: u64 = g.iter().map(|b| b.size_bytes()).sum();
            // Oldest = smallest max_time.
            g.sort_by_key(|b| b.meta().max_time);
            while total > retention_size_bytes && !g.is_empty() {
                let b = g.remove(0);
                total = total.saturating_sub(b.size_bytes());
                removed.push(b);
            }
            sort_blocks(&mut g);
        }
        drop(g);
        for b in &removed {
            tracing::info!(block = %b.id(), min_t = b.meta().min_time, max_t = b.meta().max_time, "retention: deleting block");
            b.mark_deleted();
        }
        removed.iter().map(|b| b.id().to_string()).collect()
    }
}

/// True for errors that mean "this block's files are bad".
fn is_corruption(e: &StorageError) -> bool {
    match e {
        StorageError::Corrupt { .. } => true,
        StorageError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}

/// Moves `<data>/<name>` to `<data>/corrupted/<name>` (with a numeric suffix
/// if taken) and logs why.
fn quarantine(data_dir: &Path, name: &str, why: &StorageError) -> Result<(), StorageError> {
    let cdir = data_dir.join(CORRUPTED_DIR);
    std::fs::create_dir_all(&cdir).map_err(io("create directory", &cdir))?;
    let mut dst = cdir.join(name);
    let mut k = 1;
    while dst.exists() {
        dst = cdir.join(format!("{name}.{k}"));
        k += 1;
    }
    let src = data_dir.join(name);
    std::fs::rename(&src, &dst).map_err(io("move corrupt block to", &dst))?;
    sync_dir(data_dir)?;
    tracing::error!(
        block = name,
        moved_to = %dst.display(),
        error = %why,
        "corrupt block moved aside; serving the remaining blocks"
    );
    Ok(())
}
