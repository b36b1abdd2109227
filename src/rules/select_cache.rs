//! Sharing of storage reads between the rules of one group evaluation.
//!
//! Real rule files read the same series many times per group: a warning
//! and a critical variant of one alert, an error ratio and a request-rate
//! rule over the same counters, several thresholds on one gauge. All rules
//! of a group evaluate at the same timestamp, so the same selector yields
//! the same `select` call (same matchers, same time bounds), and decoding
//! the chunks again is pure waste. [`SharedSelects`] wraps the querier the
//! rules' [`super::QueryFn`] reads through; while a group evaluates inside
//! [`scope`], identical `select` / `select_histograms` calls on that thread
//! are answered from the first call's result. A float `select` is also
//! answered from an earlier, wider one (`rate(x[1m])` after `rate(x[5m])`,
//! `x{status=~"5.."}` after `x`): the cached series are filtered by the
//! extra matchers and trimmed to the narrower time range, which is exactly
//! what storage returns for such a read.
//!
//! Guarantees:
//! - Results are exactly what the storage would return: a cached entry is
//!   dropped ([`invalidate`]) as soon as the group writes a series the
//!   entry's matchers select (recording-rule outputs, `ALERTS`, stale
//!   markers), so a later rule still sees this cycle's output (spec §2.1,
//!   "Visibility").
//! - The cache lives only for one group evaluation on one thread; outside
//!   [`scope`] (HTTP queries, other threads) every call goes to storage.
//! - Memory is bounded: results are kept only while the entries hold at
//!   most [`MAX_CACHED_SAMPLES`] samples in total (larger ones are simply
//!   not shared).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Labels, Matcher};
use crate::storage::{HistogramSeries, Querier, SelectHints, Series, StorageError};

/// Upper bound on samples (floats + histogram samples) kept per group
/// evaluation: 4 M floats are about 64 MiB of timestamps and values.
pub const MAX_CACHED_SAMPLES: usize = 4_000_000;

/// Identity of a read: time bounds, flags and matchers as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    min_t: i64,
    max_t: i64,
    labels_only: bool,
    skip_histogram_views: bool,
    matchers: Vec<(String, String, String)>,
}

impl Key {
    fn new(h: &SelectHints, matchers: &[Matcher]) -> Key {
        Key {
            min_t: h.min_t,
            max_t: h.max_t,
            labels_only: h.labels_only,
            skip_histogram_views: h.skip_histogram_views,
            matchers: matchers
                .iter()
                .map(|m| (m.name.clone(), m.op.to_string(), m.value.clone()))
                .collect(),
        }
    }
}

struct Entry<T> {
    matchers: Vec<Matcher>,
    result: Vec<T>,
    samples: usize,
}

#[derive(Default)]
struct Cache {
    floats: HashMap<Key, Entry<Series>>,
    histograms: HashMap<Key, Entry<HistogramSeries>>,
    samples: usize,
    hits: u64,
    misses: u64,
}

thread_local! {
    static CACHE: RefCell<Option<Cache>> = const { RefCell::new(None) };
}

/// Reads served from the cache and from storage by one [`scope`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScopeStats {
    /// `select`/`select_histograms` calls answered from the cache.
    pub hits: u64,
    /// Calls that went to storage.
    pub misses: u64,
}

/// Runs `f` with read sharing enabled on this thread; everything cached is
/// dropped when `f` returns. A nested scope shares its parent's cache.
pub fn scope<R>(f: impl FnOnce() -> R) -> (R, ScopeStats) {
    let outer = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_some() {
            true
        } else {
            *c = Some(Cache::default());
            false
        }
    });
    // Reset on unwind too, so a panicking rule cannot leave a stale cache
    // behind on a reused thread.
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            if !self.0 {
                CACHE.with(|c| c.borrow_mut().take());
            }
        }
    }
    let reset = Reset(outer);
    let r = f();
    let stats = CACHE.with(|c| {
        c.borrow()
            .as_ref()
            .map(|c| ScopeStats {
                hits: c.hits,
                misses: c.misses,
            })
            .unwrap_or_default()
    });
    drop(reset);
    (r, stats)
}

fn selects(matchers: &[Matcher], l: &Labels) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(l.get(&m.name).unwrap_or("")))
}

/// Drops every cached read whose matchers select one of `written` (called
/// by the group after each write, before the next rule runs).
pub fn invalidate<'a>(written: impl IntoIterator<Item = &'a Labels>) {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let Some(c) = c.as_mut() else { return };
        if c.floats.is_empty() && c.histograms.is_empty() {
            return;
        }
        let mut freed = 0;
        for l in written {
            c.floats.retain(|_, e| {
                let keep = !selects(&e.matchers, l);
                if !keep {
                    freed += e.samples;
                }
                keep
            });
            c.histograms.retain(|_, e| {
                let keep = !selects(&e.matchers, l);
                if !keep {
                    freed += e.samples;
                }
                keep
            });
        }
        c.samples -= freed;
    });
}

/// A [`Querier`] whose reads are shared inside a [`scope`] (see the module
/// documentation); label queries always go to the inner querier.
pub struct SharedSelects {
    inner: Arc<dyn Querier>,
}

impl SharedSelects {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Querier>) -> Self {
        SharedSelects { inner }
    }
}

impl std::fmt::Debug for SharedSelects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSelects")
    }
}

/// Looks `key` up in the map chosen by `pick`, or runs `read` and keeps
/// its result if the budget allows.
fn cached<T: Clone>(
    pick: fn(&mut Cache) -> &mut HashMap<Key, Entry<T>>,
    key: impl FnOnce() -> Key,
    matchers: &[Matcher],
    count: fn(&[T]) -> usize,
    read: impl FnOnce() -> Result<Vec<T>, StorageError>,
) -> Result<Vec<T>, StorageError> {
    let key = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let c = c.as_mut()?;
        let key = key();
        if let Some(e) = pick(c).get(&key) {
            let r = e.result.clone();
            c.hits += 1;
            return Some(Err(r));
        }
        c.misses += 1;
        Some(Ok(key))
    });
    let key = match key {
        None => return read(),
        Some(Err(hit)) => return Ok(hit),
        Some(Ok(key)) => key,
    };
    let result = read()?;
    let samples = count(&result);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(c) = c.as_mut()
            && c.samples + samples <= MAX_CACHED_SAMPLES
        {
            c.samples += samples;
            pick(c).insert(
                key,
                Entry {
                    matchers: matchers.to_vec(),
                    result: result.clone(),
                    samples,
                },
            );
        }
    });
    Ok(result)
}

/// The samples of `s` in `[min_t, max_t]`, if any.
fn trimmed(s: &Series, min_t: i64, max_t: i64) -> Option<Series> {
    let a = s.timestamps.partition_point(|&t| t < min_t);
    let b = s.timestamps.partition_point(|&t| t <= max_t);
    (a < b).then(|| Series {
        labels: s.labels.clone(),
        timestamps: s.timestamps[a..b].to_vec(),
        values: s.values[a..b].to_vec(),
    })
}

/// Answers a float read from a cached wider one: same flags, a time range
/// that contains the wanted one, and matchers that are a subset of the
/// wanted ones. Reads of labels only are never derived (their "overlaps
/// the range" rule is not a filter of samples).
fn derive(c: &Cache, key: &Key, matchers: &[Matcher]) -> Option<Vec<Series>> {
    if key.labels_only {
        return None;
    }
    let (k, e) = c.floats.iter().find(|(k, _)| {
        k.labels_only == key.labels_only
            && k.skip_histogram_views == key.skip_histogram_views
            && k.min_t <= key.min_t
            && k.max_t >= key.max_t
            && k.matchers.iter().all(|m| key.matchers.contains(m))
    })?;
    let extra: Vec<&Matcher> = matchers
        .iter()
        .zip(&key.matchers)
        .filter(|(_, km)| !k.matchers.contains(km))
        .map(|(m, _)| m)
        .collect();
    let out = e
        .result
        .iter()
        .filter(|s| {
            extra
                .iter()
                .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
        })
        .filter_map(|s| trimmed(s, key.min_t, key.max_t))
        .collect();
    Some(out)
}

impl Querier for SharedSelects {
    fn select(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series>, StorageError> {
        let derived = CACHE.with(|c| {
            let mut c = c.borrow_mut();
            let c = c.as_mut()?;
            let key = Key::new(hints, matchers);
            if c.floats.contains_key(&key) {
                return None; // an exact hit, served below
            }
            let r = derive(c, &key, matchers)?;
            c.hits += 1;
            Some(r)
        });
        if let Some(r) = derived {
            return Ok(r);
        }
        cached(
            |c| &mut c.floats,
            || Key::new(hints, matchers),
            matchers,
            |r| r.iter().map(|s| s.timestamps.len().max(1)).sum(),
            || self.inner.select(hints, matchers),
        )
    }

    fn select_histograms(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<HistogramSeries>, StorageError> {
        cached(
            |c| &mut c.histograms,
            || Key::new(hints, matchers),
            matchers,
            |r| r.iter().map(|s| s.timestamps.len().max(1)).sum(),
            || self.inner.select_histograms(hints, matchers),
        )
    }

    fn label_names(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        self.inner.label_names(hints, matchers)
    }

    fn label_values(
        &self,
        name: &str,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        self.inner.label_values(name, hints, matchers)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::model::ManualClock;
    use crate::storage::{Appendable, Db, DbOptions};

    /// A real database that counts the reads reaching it.
    struct Counting {
        db: Db,
        selects: AtomicUsize,
    }

    impl Querier for Counting {
        fn select(&self, h: &SelectHints, m: &[Matcher]) -> Result<Vec<Series>, StorageError> {
            self.selects.fetch_add(1, Ordering::SeqCst);
            self.db.select(h, m)
        }
        fn select_histograms(
            &self,
            h: &SelectHints,
            m: &[Matcher],
        ) -> Result<Vec<HistogramSeries>, StorageError> {
            self.selects.fetch_add(1, Ordering::SeqCst);
            self.db.select_histograms(h, m)
        }
        fn label_names(&self, h: &SelectHints, m: &[Matcher]) -> Result<Vec<String>, StorageError> {
            self.db.label_names(h, m)
        }
        fn label_values(
            &self,
            n: &str,
            h: &SelectHints,
            m: &[Matcher],
        ) -> Result<Vec<String>, StorageError> {
            self.db.label_values(n, h, m)
        }
    }

    fn db(dir: &std::path::Path) -> Arc<Counting> {
        let mut o = DbOptions::new(dir);
        o.clock = Arc::new(ManualClock::new(10_000));
        o.maintenance_interval = None;
        let db = Db::open(o).unwrap();
        let mut a = db.appender();
        for (i, t) in [(0, 1000), (1, 1000), (0, 2000)] {
            let l = Labels::from_pairs([("__name__", "up"), ("i", if i == 0 { "a" } else { "b" })]);
            a.append(&l, t, 1.0).unwrap();
        }
        a.commit().unwrap();
        Arc::new(Counting {
            db,
            selects: AtomicUsize::new(0),
        })
    }

    fn up() -> Vec<Matcher> {
        vec![Matcher::equal("__name__", "up")]
    }

    #[test]
    fn identical_reads_in_a_scope_hit_storage_once() {
        let dir = tempfile::tempdir().unwrap();
        let inner = db(dir.path());
        let q = SharedSelects::new(inner.clone());
        let h = SelectHints::range(0, 5000);
        let direct = inner.db.select(&h, &up()).unwrap();
        let (_, stats) = scope(|| {
            assert_eq!(q.select(&h, &up()).unwrap(), direct);
            assert_eq!(q.select(&h, &up()).unwrap(), direct);
            // Narrower bounds or more matchers: derived from the first.
            q.select(&SelectHints::range(0, 1500), &up()).unwrap();
            let mut only_a = up();
            only_a.push(Matcher::equal("i", "a"));
            assert_eq!(q.select(&h, &only_a).unwrap().len(), 1);
            q.select_histograms(&h, &up()).unwrap();
            q.select_histograms(&h, &up()).unwrap();
        });
        assert_eq!(inner.selects.load(Ordering::SeqCst), 2);
        assert_eq!(stats, ScopeStats { hits: 4, misses: 2 });
        // Outside a scope nothing is shared, and nothing was kept.
        q.select(&h, &up()).unwrap();
        q.select(&h, &up()).unwrap();
        assert_eq!(inner.selects.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_write_drops_the_reads_it_affects_only() {
        let dir = tempfile::tempdir().unwrap();
        let inner = db(dir.path());
        let q = SharedSelects::new(inner.clone());
        let h = SelectHints::range(0, 5000);
        let other = vec![Matcher::equal("__name__", "down")];
        scope(|| {
            q.select(&h, &up()).unwrap();
            q.select(&h, &other).unwrap();
            let new = Labels::from_pairs([("__name__", "up"), ("i", "c")]);
            let mut a = inner.db.appender();
            a.append(&new, 3000, 2.0).unwrap();
            a.commit().unwrap();
            invalidate([&new]);
            // `up` is read again and sees the new series; `down` is shared.
            assert_eq!(q.select(&h, &up()).unwrap().len(), 3);
            q.select(&h, &other).unwrap();
        });
        assert_eq!(inner.selects.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn narrower_reads_are_derived_from_a_wider_one_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let inner = db(dir.path());
        let q = SharedSelects::new(inner.clone());
        let wide = SelectHints::range(0, 5000);
        let mut only_a = up();
        only_a.push(Matcher::equal("i", "a"));
        let mut not_a = up();
        not_a.push(Matcher::new(crate::model::MatchOp::RegexNoMatch, "i", "a").unwrap());
        let narrower = [
            (SelectHints::range(0, 5000), only_a.clone()),
            (SelectHints::range(1500, 5000), up()),
            (SelectHints::range(1500, 2500), only_a.clone()),
            (SelectHints::range(1500, 2500), not_a.clone()),
            (SelectHints::range(1000, 1000), not_a.clone()),
        ];
        let direct: Vec<Vec<Series>> = narrower
            .iter()
            .map(|(h, m)| inner.db.select(h, m).unwrap())
            .collect();
        let (_, stats) = scope(|| {
            q.select(&wide, &up()).unwrap();
            for ((h, m), want) in narrower.iter().zip(&direct) {
                assert_eq!(&q.select(h, m).unwrap(), want, "{h:?} {m:?}");
            }
            // Wider than anything cached: storage.
            q.select(&SelectHints::range(0, 9000), &up()).unwrap();
            // Labels-only reads are never derived.
            let mut lo = SelectHints::range(0, 5000);
            lo.labels_only = true;
            q.select(&lo, &only_a).unwrap();
        });
        assert_eq!(stats, ScopeStats { hits: 5, misses: 3 });
        assert_eq!(inner.selects.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn nested_scopes_share_and_the_cache_ends_with_the_outer_one() {
        let dir = tempfile::tempdir().unwrap();
        let inner = db(dir.path());
        let q = SharedSelects::new(inner.clone());
        let h = SelectHints::range(0, 5000);
        scope(|| {
            q.select(&h, &up()).unwrap();
            scope(|| q.select(&h, &up()).unwrap());
            q.select(&h, &up()).unwrap();
        });
        assert_eq!(inner.selects.load(Ordering::SeqCst), 1);
        scope(|| q.select(&h, &up()).unwrap());
        assert_eq!(inner.selects.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn later_rule_sees_earlier_output_through_a_shared_selector() {
        let dir = tempfile::tempdir().unwrap();
        let inner = db(dir.path());
        let yaml = "groups:\n- name: g\n  rules:\n  - record: n_before\n    expr: count({__name__=~\"up|up_copy\"})\n  - record: up_copy\n    expr: up\n  - record: n_after\n    expr: count({__name__=~\"up|up_copy\"})\n";
        let file = crate::rules::parse_rule_file(
            std::path::Path::new("r.yml"),
            yaml,
            &crate::rules::LoadOptions::default(),
        )
        .unwrap();
        let clock = ManualClock::new(10_000);
        let querier: Arc<dyn Querier> = inner.clone();
        let opts = crate::rules::ManagerOptions::new(
            crate::rules::engine_query_fn(crate::promql::Engine::default(), querier),
            Arc::new(|_| {}),
            Arc::new(crate::storage::memory::MemStorage::new()),
            Arc::new(clock),
        );
        // Outputs go to the same real database the rules read.
        let opts = crate::rules::ManagerOptions {
            appendable: Arc::new(Appends(inner.clone())),
            ..opts
        };
        let mut g = crate::rules::Group::new(file.groups[0].clone(), &opts, false);
        g.eval(&opts, 10_000);
        let value = |name: &str| {
            let s = inner
                .db
                .select(
                    &SelectHints::range(10_000, 10_000),
                    &[Matcher::equal("__name__", name)],
                )
                .unwrap();
            s[0].values[0]
        };
        assert_eq!(value("n_before"), 2.0);
        assert_eq!(value("n_after"), 4.0, "up_copy written in between is seen");
    }

    struct Appends(Arc<Counting>);

    impl Appendable for Appends {
        fn appender(&self) -> Box<dyn crate::storage::Appender + '_> {
            self.0.db.appender()
        }
    }
}
