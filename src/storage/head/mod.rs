//! The head: recent data in memory. Series map (interned labels, stable
//! refs), postings index, compressed columns per series, the append path
//! (WAL first, then memory), out-of-order acceptance, replay, and the cut
//! of old data into blocks.
//!
//! Lock order (outer to inner): `gc_lock` -> series stripe -> postings /
//! refs stripe -> WAL writer -> series data. Nothing takes an outer lock
//! while holding an inner one.

mod append;
mod column;
mod label_map;
mod postings;
mod read;
mod replay;
mod series;

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock, RwLockWriteGuard};

pub(crate) use append::HeadAppender;
pub(crate) use read::{HeadFloat, HeadSeriesData};
pub(crate) use replay::ReplayState;
use series::MemSeries;

use crate::model::{Label, Labels};
use crate::storage::api::AppendError;
use crate::storage::views::LE;
use crate::storage::wal::{Record, SeriesKind, SeriesRecord, Wal};
use label_map::{LabelMap, labels_hash};
use postings::Postings;

#[cfg(test)]
mod tests;

/// Number of lock stripes for the series maps: enough that appenders on
/// different series rarely contend, few enough to stay small.
const STRIPES: usize = 16;

/// A small, fast, non-cryptographic hasher (FxHash's multiply-rotate) for
/// label sets and refs: series lookup is on the hot append path and the keys
/// are not attacker-chosen in a way that matters for a single-tenant server.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const FX_K: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(a)).wrapping_mul(FX_K);
        }
        // The 0..=7 tail bytes go in as one word with their count in the
        // top byte (one multiply instead of one per byte; label names and
        // values are short, so the tail is a large share of the work, and
        // the count keeps "a" and "a\0" apart).
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut a = [0u8; 8];
            a[..rest.len()].copy_from_slice(rest);
            a[7] = rest.len() as u8;
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(a)).wrapping_mul(FX_K);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(FX_K);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;

/// Head counters (monotonic unless noted), read by `Db::stats`.
#[derive(Debug, Default)]
pub(crate) struct HeadCounters {
    pub(crate) float_samples: AtomicU64,
    pub(crate) histogram_samples: AtomicU64,
    pub(crate) series_created: AtomicU64,
    pub(crate) series_removed: AtomicU64,
    pub(crate) too_old: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) invalid: AtomicU64,
    pub(crate) out_of_order: AtomicU64,
    pub(crate) replay_unknown_refs: AtomicU64,
}

fn inc(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// The in-memory head.
pub(crate) struct Head {
    /// Unique per head in this process: tells a [`crate::storage::SeriesRef`]
    /// from another head apart (its `owner`, see `append.rs`).
    id: u64,
    /// How far behind the newest sample (ms) a sample older than its own
    /// series' last one may be.
    ooo_window_ms: i64,
    /// How far behind the newest sample (ms) an in-order sample may be
    /// (Prometheus's appendable window: half a block). Senders with several
    /// shards (remote write) or catching up after an outage write series
    /// that lag each other by minutes; each stays in order for its series.
    appendable_ms: i64,
    by_labels: Vec<RwLock<LabelMap>>,
    by_ref: Vec<RwLock<HashMap<u64, Arc<MemSeries>, FxBuild>>>,
    postings: RwLock<Postings>,
    symbols: Mutex<HashSet<Arc<str>>>,
    next_ref: AtomicU64,
    /// Latest sample time seen (ms); `i64::MIN` when empty.
    max_t: AtomicI64,
    /// Earliest sample time seen (ms); `i64::MAX` when empty. Only lowered
    /// by appends; raised by truncation.
    min_t: AtomicI64,
    /// Samples before this time belong to blocks and are rejected/ignored.
    boundary: AtomicI64,
    /// Commits hold it shared across WAL write + apply; truncation and the
    /// WAL cut hold it exclusively.
    gc_lock: RwLock<()>,
    wal: OnceLock<Arc<Wal>>,
    pub(crate) counters: HeadCounters,
}

/// Checks label names: non-empty, `[a-zA-Z_][a-zA-Z0-9_]*`.
fn validate_labels(labels: &Labels, kind: SeriesKind) -> Result<(), String> {
    if labels.is_empty() {
        return Err("empty label set".into());
    }
    for l in labels.iter() {
        let ok =
            l.name.bytes().enumerate().all(|(i, b)| {
                b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit())
            });
        if !ok || l.name.is_empty() {
            return Err(format!("invalid label name {:?}", &*l.name));
        }
    }
    if kind == SeriesKind::Histogram {
        if labels.metric_name().is_none() {
            return Err("a histogram series needs a metric name".into());
        }
        if labels.get(LE).is_some() {
            return Err("a histogram series must not carry an `le` label".into());
        }
    }
    Ok(())
}

fn stripe_of<T: Hash + ?Sized>(k: &T) -> usize {
    let mut h = FxHasher::default();
    k.hash(&mut h);
    (h.finish() as usize) % STRIPES
}

impl Head {
    /// An empty head accepting in-order samples up to `appendable_ms` and
    /// out-of-order ones up to `ooo_window_ms` older than the newest sample
    /// (the larger of the two bounds both).
    pub(crate) fn new(ooo_window_ms: i64, appendable_ms: i64) -> Head {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Head {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            ooo_window_ms: ooo_window_ms.max(0),
            appendable_ms: appendable_ms.max(ooo_window_ms).max(0),
            by_labels: (0..STRIPES).map(|_| RwLock::default()).collect(),
            by_ref: (0..STRIPES).map(|_| RwLock::default()).collect(),
            postings: RwLock::default(),
            symbols: Mutex::default(),
            next_ref: AtomicU64::new(1),
            max_t: AtomicI64::new(i64::MIN),
            min_t: AtomicI64::new(i64::MAX),
            boundary: AtomicI64::new(i64::MIN),
            gc_lock: RwLock::new(()),
            wal: OnceLock::new(),
            counters: HeadCounters::default(),
        }
    }

    /// Attaches the WAL (after replay). Appends before this are a bug.
    pub(crate) fn set_wal(&self, wal: Arc<Wal>) {
        let _ = self.wal.set(wal);
    }

    pub(crate) fn wal(&self) -> Option<&Arc<Wal>> {
        self.wal.get()
    }

    /// Latest sample time, if any.
    pub(crate) fn max_t(&self) -> Option<i64> {
        Some(self.max_t.load(Ordering::Acquire)).filter(|&t| t != i64::MIN)
    }

    /// Earliest sample time, if any (may be stale-low after truncation
    /// until [`Head::truncate_before_locked`] recomputes it).
    pub(crate) fn min_t(&self) -> Option<i64> {
        Some(self.min_t.load(Ordering::Acquire)).filter(|&t| t != i64::MAX)
    }

    /// The cut boundary: samples before it live in blocks.
    pub(crate) fn boundary(&self) -> i64 {
        self.boundary.load(Ordering::Acquire)
    }

    /// Raises the cut boundary (never lowers it).
    pub(crate) fn raise_boundary(&self, t: i64) {
        self.boundary.fetch_max(t, Ordering::AcqRel);
    }

    /// Oldest timestamp an in-order append (newer than its series' last
    /// sample) accepts now.
    pub(crate) fn min_valid_t(&self) -> i64 {
        self.floor(self.appendable_ms)
    }

    /// Oldest timestamp an out-of-order append (not newer than its series'
    /// last sample) accepts now.
    pub(crate) fn min_ooo_t(&self) -> i64 {
        self.floor(self.ooo_window_ms)
    }

    fn floor(&self, window_ms: i64) -> i64 {
        let by_window = self
            .max_t()
            .map_or(i64::MIN, |m| m.saturating_sub(window_ms));
        by_window.max(self.boundary())
    }

    fn observe_t(&self, t: i64) {
        self.max_t.fetch_max(t, Ordering::AcqRel);
        self.min_t.fetch_min(t, Ordering::AcqRel);
    }

    /// Number of series.
    pub(crate) fn num_series(&self) -> usize {
        self.by_ref.iter().map(|s| s.read().len()).sum()
    }

    fn intern(&self, labels: &Labels) -> Labels {
        let mut syms = self.symbols.lock();
        let mut get = |s: &Arc<str>| -> Arc<str> {
            if let Some(x) = syms.get(s) {
                x.clone()
            } else {
                syms.insert(s.clone());
                s.clone()
            }
        };
        Labels::from_sorted(
            labels
                .iter()
                .map(|l| Label {
                    name: get(&l.name),
                    value: get(&l.value),
                })
                .collect(),
        )
    }

    /// The series for `labels`, created (and logged to the WAL as a
    /// deferred record) if new. Returns whether it was created.
    pub(crate) fn get_or_create(
        &self,
        labels: &Labels,
        kind: SeriesKind,
    ) -> Result<(Arc<MemSeries>, bool), AppendError> {
        let h = labels_hash(labels);
        let stripe = &self.by_labels[(h % STRIPES as u64) as usize];
        let found = stripe.read().get(h, labels).cloned();
        let s = match found {
            Some(s) => (s, false),
            None => {
                let mut w = stripe.write();
                if let Some(s) = w.get(h, labels) {
                    (s.clone(), false)
                } else {
                    if let Err(reason) = validate_labels(labels, kind) {
                        inc(&self.counters.invalid, 1);
                        return Err(AppendError::InvalidSeries {
                            series: labels.to_string(),
                            reason,
                        });
                    }
                    let r = self.next_ref.fetch_add(1, Ordering::AcqRel);
                    let s = self.insert_series(r, self.intern(labels), kind);
                    w.insert(h, s.clone());
                    if let Some(wal) = self.wal.get() {
                        wal.log_deferred(&Record::Series(vec![SeriesRecord {
                            series_ref: r,
                            kind,
                            labels: s.labels.clone(),
                        }]));
                    }
                    (s, true)
                }
            }
        };
        if s.0.kind != kind {
            inc(&self.counters.invalid, 1);
            return Err(AppendError::KindMismatch {
                series: labels.to_string(),
                existing: s.0.kind.name(),
                attempted: kind.name(),
            });
        }
        Ok(s)
    }

    /// Registers a series in the ref map and postings (caller holds the
    /// label stripe's write lock or is replaying).
    fn insert_series(&self, r: u64, labels: Labels, kind: SeriesKind) -> Arc<MemSeries> {
        let s = Arc::new(MemSeries::new(r, labels, kind));
        self.by_ref[stripe_of(&r)].write().insert(r, s.clone());
        self.postings
            .write()
            .add(r, &s.labels, kind == SeriesKind::Histogram);
        inc(&self.counters.series_created, 1);
        s
    }

    /// The series with ref `r`.
    pub(crate) fn series_by_ref(&self, r: u64) -> Option<Arc<MemSeries>> {
        self.by_ref[stripe_of(&r)].read().get(&r).cloned()
    }

    /// Takes the exclusive GC lock: no commit is between its WAL write and
    /// its apply while the guard lives.
    pub(crate) fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.gc_lock.write()
    }

    /// Drops every sample before `t`, removes series left empty, and raises
    /// the boundary to `t`. The caller holds [`Head::exclusive`].
    pub(crate) fn truncate_before_locked(&self, t: i64) -> usize {
        self.raise_boundary(t);
        let all: Vec<Arc<MemSeries>> = self
            .by_ref
            .iter()
            .flat_map(|s| s.read().values().cloned().collect::<Vec<_>>())
            .collect();
        let mut removed = 0;
        let mut new_min = i64::MAX;
        for s in all {
            let empty = {
                let mut d = s.data.lock();
                d.truncate_before(t);
                match d.time_range() {
                    Some((a, _)) => {
                        new_min = new_min.min(a);
                        false
                    }
                    None => true,
                }
            };
            if empty {
                let h = labels_hash(&s.labels);
                self.by_labels[(h % STRIPES as u64) as usize]
                    .write()
                    .remove(h, &s.labels);
                self.by_ref[stripe_of(&s.series_ref)]
                    .write()
                    .remove(&s.series_ref);
                self.postings.write().remove(
                    s.series_ref,
                    &s.labels,
                    s.kind == SeriesKind::Histogram,
                );
                s.mark_deleted();
                removed += 1;
            }
        }
        self.min_t.store(new_min, Ordering::Release);
        if removed > 0 {
            // Drop symbols no longer used by any series.
            let mut used: HashSet<Arc<str>> = HashSet::new();
            for stripe in &self.by_ref {
                for s in stripe.read().values() {
                    for l in s.labels.iter() {
                        used.insert(l.name.clone());
                        used.insert(l.value.clone());
                    }
                }
            }
            *self.symbols.lock() = used;
        }
        inc(&self.counters.series_removed, removed as u64);
        removed
    }

    /// Forgets which histogram bounds were logged, so the next commit for
    /// each histogram series writes a bounds record again. Called (under
    /// [`Head::exclusive`]) when the WAL is cut for a checkpoint: the
    /// segments that held the earlier bounds records are about to go.
    pub(crate) fn reset_logged_bounds(&self) {
        for s in self.all_series() {
            if let series::SeriesData::Histogram { logged_bounds, .. } = &mut *s.data.lock() {
                *logged_bounds = None;
            }
        }
    }

    /// Every series, sorted by ref.
    fn all_series(&self) -> Vec<Arc<MemSeries>> {
        let mut v: Vec<Arc<MemSeries>> = self
            .by_ref
            .iter()
            .flat_map(|s| s.read().values().cloned().collect::<Vec<_>>())
            .collect();
        v.sort_by_key(|s| s.series_ref);
        v
    }

    /// Approximate resident bytes of the head's series (labels, structs,
    /// chunks), excluding shared interned strings counted once.
    pub(crate) fn approx_bytes(&self) -> usize {
        let mut total = 0;
        for s in self.all_series() {
            total += std::mem::size_of::<MemSeries>()
                + s.labels.len() * std::mem::size_of::<Label>()
                + s.data.lock().heap_bytes()
                // two map entries and a postings entry per label
                + 2 * 48
                + s.labels.len() * 8;
        }
        total
            + self
                .symbols
                .lock()
                .iter()
                .map(|s| s.len() + 16)
                .sum::<usize>()
    }
}
