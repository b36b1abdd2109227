//! Writing a block: columns are streamed to `<parent>/<id>.tmp/columns` as
//! series arrive (in any order), the index and `meta.json` follow, every file
//! and the directory are fsynced, and the directory is renamed to
//! `<parent>/<id>` (then the parent is fsynced). A crash leaves either no
//! block or a complete one, plus possibly a `.tmp` directory that
//! `Blocks::open` removes.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::columns::{ColumnWriter, encode_histogram};
use super::meta::{BlockFile, META_MAGIC, META_VERSION, encode_meta};
use super::{
    BlockMeta, BlockSeries, BlockSeriesData, BlockStats, COLUMNS_FILE, Compaction, HistogramRun,
    INDEX_FILE, META_FILE, TMP_SUFFIX, new_block_id,
};
use crate::storage::api::StorageError;
use crate::storage::codec::{encode_timestamps, encode_values};
use crate::storage::index::{ChunkMeta, IndexSeries, SeriesKind, write_index};

/// Chunks never cross a multiple of this many ms (24 h, UTC days): series
/// scraped together then get identical timestamp columns per chunk, which
/// the writer stores once.
const CHUNK_WINDOW_MS: i64 = 24 * 3600 * 1000;
/// Most samples in one chunk: bounds decode work for narrow queries on
/// high-resolution series (16384 samples = 4.5 h at 1 s).
const MAX_CHUNK_SAMPLES: usize = 16384;

/// Writes a level-1 block holding `series` (any order, unique labels per
/// kind, samples inside `[min_t, max_t)`) under `parent_dir` and returns its
/// meta. Series without samples are skipped. Nothing is visible under the
/// final name until the block is complete and durable.
pub fn write_block(
    parent_dir: &Path,
    min_t: i64,
    max_t: i64,
    series: impl IntoIterator<Item = BlockSeries>,
) -> Result<BlockMeta, StorageError> {
    write_block_with(parent_dir, min_t, max_t, None, series.into_iter().map(Ok))
}

/// [`write_block`] with an explicit lineage (compaction) and fallible input.
pub(super) fn write_block_with(
    parent_dir: &Path,
    min_t: i64,
    max_t: i64,
    lineage: Option<Compaction>,
    series: impl Iterator<Item = Result<BlockSeries, StorageError>>,
) -> Result<BlockMeta, StorageError> {
    if min_t >= max_t {
        return Err(StorageError::Other(format!(
            "cannot write block: empty time range [{min_t}, {max_t})"
        )));
    }
    std::fs::create_dir_all(parent_dir).map_err(io("create directory", parent_dir))?;
    let mut id = new_block_id();
    while parent_dir.join(&id).exists() {
        id = new_block_id();
    }
    let tmp = parent_dir.join(format!("{id}{TMP_SUFFIX}"));
    std::fs::create_dir(&tmp).map_err(io("create directory", &tmp))?;
    let res = write_into(&tmp, &id, min_t, max_t, lineage, series).and_then(|meta| {
        let dst = parent_dir.join(&id);
        std::fs::rename(&tmp, &dst).map_err(io("rename block directory to", &dst))?;
        sync_dir(parent_dir)?;
        Ok(meta)
    });
    if res.is_err() {
        // Best effort: a leftover .tmp directory is also removed at open.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    res
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { op, path, source }
}

/// fsyncs a directory so renames and new entries in it are durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io("fsync directory", dir))
}

fn invalid(s: &BlockSeries, what: String) -> StorageError {
    StorageError::Other(format!("cannot write block: series {}: {what}", s.labels))
}

fn check_ts(s: &BlockSeries, ts: &[i64], min_t: i64, max_t: i64) -> Result<(), StorageError> {
    if let Some(i) = ts.windows(2).position(|w| w[0] >= w[1]) {
        return Err(invalid(
            s,
            format!("timestamps not strictly increasing at index {}", i + 1),
        ));
    }
    if let Some(t) = ts.iter().find(|&&t| t < min_t || t >= max_t) {
        return Err(invalid(
            s,
            format!("sample at {t} ms outside block range [{min_t}, {max_t})"),
        ));
    }
    Ok(())
}

/// Splits row indices of `ts` into chunks (see [`CHUNK_WINDOW_MS`]).
fn chunk_ranges(ts: &[i64]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=ts.len() {
        let cut = i == ts.len()
            || i - start >= MAX_CHUNK_SAMPLES
            || ts.get(i).map(|t| t.div_euclid(CHUNK_WINDOW_MS))
                != ts.get(start).map(|t| t.div_euclid(CHUNK_WINDOW_MS));
        if cut && i > start {
            out.push(start..i);
            start = i;
        }
    }
    out
}

struct State {
    cols: ColumnWriter,
    ts_refs: HashMap<Vec<u8>, u64>,
    buf: Vec<u8>,
    stats: BlockStats,
}

impl State {
    fn timestamps(&mut self, ts: &[i64]) -> Result<u64, StorageError> {
        self.buf.clear();
        encode_timestamps(ts, &mut self.buf);
        if let Some(&r) = self.ts_refs.get(&self.buf) {
            return Ok(r);
        }
        let r = self.cols.record(&self.buf)?;
        self.ts_refs.insert(self.buf.clone(), r);
        Ok(r)
    }

    fn add(
        &mut self,
        s: &BlockSeries,
        min_t: i64,
        max_t: i64,
    ) -> Result<Option<IndexSeries>, StorageError> {
        let mut chunks = Vec::new();
        let kind = match &s.data {
            BlockSeriesData::Float { timestamps, values } => {
                if timestamps.len() != values.len() {
                    return Err(invalid(
                        s,
                        format!(
                            "{} timestamps but {} values",
                            timestamps.len(),
                            values.len()
                        ),
                    ));
                }
                check_ts(s, timestamps, min_t, max_t)?;
                for r in chunk_ranges(timestamps) {
                    let ts = timestamps.get(r.clone()).unwrap_or(&[]);
                    let ts_ref = self.timestamps(ts)?;
                    self.buf.clear();
                    encode_values(values.get(r.clone()).unwrap_or(&[]), &mut self.buf);
                    let val_ref = self.cols.record(&self.buf)?;
                    chunks.push(chunk(ts, ts_ref, val_ref, None));
                }
                self.stats.num_float_samples += timestamps.len() as u64;
                SeriesKind::Float
            }
            BlockSeriesData::Histogram { runs } => {
                let mut last_t: Option<i64> = None;
                for run in runs {
                    check_run(s, run)?;
                    check_ts(s, &run.timestamps, min_t, max_t)?;
                    if let (Some(l), Some(&f)) = (last_t, run.timestamps.first())
                        && f <= l
                    {
                        return Err(invalid(
                            s,
                            format!("histogram run starting at {f} ms overlaps the previous run"),
                        ));
                    }
                    last_t = run.timestamps.last().copied().or(last_t);
                    for r in chunk_ranges(&run.timestamps) {
                        let ts = run.timestamps.get(r.clone()).unwrap_or(&[]);
                        let ts_ref = self.timestamps(ts)?;
                        self.buf.clear();
                        encode_histogram(run, r, &mut self.buf);
                        let val_ref = self.cols.record(&self.buf)?;
                        chunks.push(chunk(ts, ts_ref, val_ref, Some(run.upper_bounds.clone())));
                    }
                    self.stats.num_histogram_samples += run.timestamps.len() as u64;
                }
                SeriesKind::Histogram
            }
        };
        if chunks.is_empty() {
            return Ok(None);
        }
        self.stats.num_chunks += chunks.len() as u64;
        Ok(Some(IndexSeries {
            labels: s.labels.clone(),
            kind,
            chunks,
        }))
    }
}

fn chunk(ts: &[i64], ts_ref: u64, val_ref: u64, bounds: Option<Arc<[f64]>>) -> ChunkMeta {
    ChunkMeta {
        min_t: ts.first().copied().unwrap_or(0),
        max_t: ts.last().copied().unwrap_or(0),
        ts_ref,
        val_ref,
        bounds,
    }
}

fn check_run(s: &BlockSeries, run: &HistogramRun) -> Result<(), StorageError> {
    let b = &run.upper_bounds;
    if b.iter().any(|x| !x.is_finite()) || b.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid(
            s,
            format!("bucket bounds {b:?} are not finite and strictly ascending"),
        ));
    }
    let n = run.timestamps.len();
    if run.buckets.len() != b.len() + 1 {
        return Err(invalid(
            s,
            format!(
                "{} bucket columns for {} bounds (+Inf implicit)",
                run.buckets.len(),
                b.len()
            ),
        ));
    }
    if run.sum.len() != n || run.count.len() != n || run.buckets.iter().any(|c| c.len() != n) {
        return Err(invalid(
            s,
            format!("histogram columns do not all have {n} rows"),
        ));
    }
    Ok(())
}

fn write_into(
    dir: &Path,
    id: &str,
    min_t: i64,
    max_t: i64,
    lineage: Option<Compaction>,
    series: impl Iterator<Item = Result<BlockSeries, StorageError>>,
) -> Result<BlockMeta, StorageError> {
    let cols_path: PathBuf = dir.join(COLUMNS_FILE);
    let mut st = State {
        cols: ColumnWriter::create(&cols_path)?,
        ts_refs: HashMap::new(),
        buf: Vec::new(),
        stats: BlockStats::default(),
    };
    let mut entries = Vec::new();
    for s in series {
        let s = s?;
        if let Some(e) = st.add(&s, min_t, max_t)? {
            entries.push(e);
        }
    }
    entries.sort_by(|a, b| (&a.labels, a.kind as u8).cmp(&(&b.labels, b.kind as u8)));
    if let Some(w) = entries
        .windows(2)
        .find(|w| w[0].labels == w[1].labels && w[0].kind == w[1].kind)
    {
        return Err(StorageError::Other(format!(
            "cannot write block: series {} given twice",
            w[0].labels
        )));
    }
    st.stats.num_series = entries.len() as u64;
    let cols_size = st.cols.finish()?;
    let index_size = write_index(&dir.join(INDEX_FILE), &entries)?;
    let compaction = lineage.unwrap_or_else(|| Compaction {
        level: 1,
        sources: vec![id.to_string()],
    });
    let meta = BlockMeta {
        magic: META_MAGIC.into(),
        version: META_VERSION,
        id: id.to_string(),
        min_time: min_t,
        max_time: max_t,
        stats: st.stats,
        compaction,
        files: vec![
            BlockFile {
                name: COLUMNS_FILE.into(),
                size: cols_size,
            },
            BlockFile {
                name: INDEX_FILE.into(),
                size: index_size,
            },
        ],
        crc32c: String::new(),
    };
    let bytes = encode_meta(&meta);
    let meta_path = dir.join(META_FILE);
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&meta_path).map_err(io("create", &meta_path))?;
        f.write_all(&bytes).map_err(io("write", &meta_path))?;
        f.sync_all().map_err(io("fsync", &meta_path))?;
    }
    sync_dir(dir)?;
    super::meta::decode_meta(&meta_path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking() {
        assert!(chunk_ranges(&[]).is_empty());
        assert_eq!(chunk_ranges(&[1, 2, 3]), vec![0..3]);
        let day = CHUNK_WINDOW_MS;
        assert_eq!(
            chunk_ranges(&[-1, 0, day - 1, day, day + 5]),
            vec![0..1, 1..3, 3..5]
        );
        let many: Vec<i64> = (0..(MAX_CHUNK_SAMPLES as i64 + 3)).collect();
        assert_eq!(
            chunk_ranges(&many),
            vec![
                0..MAX_CHUNK_SAMPLES,
                MAX_CHUNK_SAMPLES..MAX_CHUNK_SAMPLES + 3
            ]
        );
    }
}
