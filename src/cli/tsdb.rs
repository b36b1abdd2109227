//! `watchpost tsdb dump` and `watchpost tsdb analyze`: offline tools over a
//! data directory. They open the database through the same [`Db`] API as
//! the server (which replays the WAL, so a torn tail is truncated exactly as
//! the server would), without the background maintenance thread, and take
//! the directory lock: they refuse to run next to a live server.

use std::io::Write;

use crate::http::query::Cardinality;
use crate::ingest::text::write_series_sample;
use crate::model::{METRIC_NAME, MatchOp, Matcher};
use crate::storage::{Db, DbOptions, Querier, SelectHints, StorageError};

/// Why a tool failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsdbToolError {
    /// The database could not be opened or read.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// `--match` is not a series selector.
    #[error("invalid --match selector: {0}")]
    BadSelector(String),
    /// Writing the output failed (e.g. a closed pipe).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// Opens `path` for an offline tool: no maintenance thread.
pub fn open_offline(path: &std::path::Path) -> Result<Db, StorageError> {
    let mut opts = DbOptions::new(path);
    opts.maintenance_interval = None;
    Db::open(opts)
}

fn all_series() -> Vec<Matcher> {
    match Matcher::new(MatchOp::RegexMatch, METRIC_NAME, ".+") {
        Ok(m) => vec![m],
        // The pattern is a constant that compiles.
        Err(e) => panic!("bug: constant matcher failed to compile: {e}"),
    }
}

/// Matchers for `--match` (all series when `None`).
pub fn selector(s: Option<&str>) -> Result<Vec<Matcher>, TsdbToolError> {
    match s {
        None => Ok(all_series()),
        Some(s) => crate::promql::parse_metric_selector(s)
            .map_err(|e| TsdbToolError::BadSelector(e.to_string())),
    }
}

/// Writes every sample of the matching series in `[min_t, max_t]` as text
/// exposition lines with millisecond timestamps, series in label order.
/// Returns the number of samples written.
pub fn dump(
    db: &dyn Querier,
    matchers: &[Matcher],
    min_t: i64,
    max_t: i64,
    out: &mut dyn Write,
) -> Result<u64, TsdbToolError> {
    let series = db.select(&SelectHints::range(min_t, max_t), matchers)?;
    let mut n = 0u64;
    let mut buf = String::new();
    for s in &series {
        for (t, v) in s.timestamps.iter().zip(&s.values) {
            buf.clear();
            write_series_sample(&mut buf, &s.labels, *v, Some(*t));
            out.write_all(buf.as_bytes())?;
            n += 1;
        }
    }
    out.flush()?;
    Ok(n)
}

/// Prints series and sample counts, storage statistics, and the top
/// `limit` contributors to cardinality.
pub fn analyze(db: &Db, limit: usize, out: &mut dyn Write) -> Result<(), TsdbToolError> {
    let series = db.select(&SelectHints::range(i64::MIN, i64::MAX), &all_series())?;
    let samples: usize = series.iter().map(|s| s.timestamps.len()).sum();
    let (min_t, max_t) = series.iter().fold((i64::MAX, i64::MIN), |(lo, hi), s| {
        (
            lo.min(s.timestamps.first().copied().unwrap_or(i64::MAX)),
            hi.max(s.timestamps.last().copied().unwrap_or(i64::MIN)),
        )
    });
    let st = db.stats();
    writeln!(out, "Data directory: {}", db.path().display())?;
    writeln!(out, "Series: {}", series.len())?;
    writeln!(out, "Samples: {samples}")?;
    if min_t <= max_t {
        writeln!(
            out,
            "Time range: {} .. {} ({min_t} .. {max_t} ms)",
            crate::http::params::format_rfc3339(min_t),
            crate::http::params::format_rfc3339(max_t)
        )?;
    }
    writeln!(
        out,
        "Blocks: {} ({} bytes, {} series entries); head: {} series",
        st.blocks, st.block_bytes, st.block_series, st.head_series
    )?;
    let c = Cardinality::of(series.iter().map(|s| &s.labels));
    let sections = [
        ("Highest cardinality metric names (series)", &c.by_metric),
        (
            "Highest cardinality labels (distinct values)",
            &c.values_by_name,
        ),
        (
            "Label names using the most bytes of values",
            &c.bytes_by_name,
        ),
        ("Most common label pairs (series)", &c.pairs),
    ];
    for (title, map) in sections {
        writeln!(out, "\n{title}:")?;
        let mut v: Vec<(&String, &u64)> = map.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        for (name, count) in v.into_iter().take(limit) {
            writeln!(out, "{count:>10}  {name}")?;
        }
    }
    Ok(())
}
