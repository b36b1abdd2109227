//! The rule manager: one thread per group evaluating at the group's slots
//! (`k × interval + offset`), overrun handling with counted missed
//! iterations, reload with state carry-over, delayed stale markers for
//! removed groups, and a deterministic [`RuleManager::eval_once`] for tests
//! over simulated time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;

use super::ManagerOptions;
use super::file::RuleFile;
use super::group::Group;

/// Longest real-time sleep between clock checks (ms): bounds how late a
/// stop request or a clock jump is noticed.
const POLL_MS: i64 = 250;

/// Schedule state of one group.
#[derive(Debug)]
struct Slot {
    /// Next evaluation timestamp (ms).
    next_ts: i64,
}

#[derive(Debug)]
struct GroupHandle {
    group: Mutex<Group>,
    slot: Mutex<Slot>,
    stop: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl GroupHandle {
    /// Runs the evaluation due at or before `now`, if any; returns the
    /// evaluated timestamp. After an overrun, the next evaluation is the
    /// latest slot that has already begun, and the slots in between are
    /// counted as missed (spec §2.1, E20).
    fn run_due(&self, opts: &ManagerOptions) -> Option<i64> {
        let now = opts.clock.now_ms();
        let ts = self.slot.lock().next_ts;
        if now < ts {
            return None;
        }
        let mut g = self.group.lock();
        g.eval(opts, ts);
        let iv = g.interval_ms.max(1);
        let after = opts.clock.now_ms().max(ts);
        let latest_begun = ts + ((after - ts) / iv) * iv;
        let next = if latest_begun > ts {
            let missed = ((latest_begun - ts) / iv - 1) as u64;
            g.metrics.iterations_missed_total += missed;
            g.metrics.iterations_total += missed;
            latest_begun
        } else {
            ts + iv
        };
        self.slot.lock().next_ts = next;
        Some(ts)
    }
}

/// Series of a group removed by a reload, waiting for their stale markers.
#[derive(Debug)]
struct PendingStale {
    /// When the markers may be written (removal + 2 × interval, ms).
    due_ms: i64,
    /// Timestamp the markers carry: the removal time (ms).
    ts_ms: i64,
    series: Vec<crate::model::Labels>,
}

/// Groups currently installed, by `<file>;<name>`.
type Groups = Mutex<BTreeMap<String, Arc<GroupHandle>>>;

/// Runs rule groups. Cheap to share behind an `Arc`.
pub struct RuleManager {
    opts: Arc<ManagerOptions>,
    groups: Arc<Groups>,
    running: AtomicBool,
    loaded_once: AtomicBool,
    /// Removed groups' series whose stale markers are not written yet.
    pending_stale: Arc<Mutex<Vec<PendingStale>>>,
    /// Set by [`RuleManager::stop`]: pending stale markers are then dropped
    /// (Prometheus's `managerDone`), since the process is going away.
    stopped: Arc<AtomicBool>,
}

impl std::fmt::Debug for RuleManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleManager")
            .field("groups", &self.groups.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RuleManager {
    /// A manager with no groups; call [`RuleManager::update`] then
    /// [`RuleManager::start`].
    pub fn new(opts: ManagerOptions) -> Self {
        RuleManager {
            opts: Arc::new(opts),
            groups: Arc::new(Mutex::new(BTreeMap::new())),
            running: AtomicBool::new(false),
            loaded_once: AtomicBool::new(false),
            pending_stale: Arc::new(Mutex::new(Vec::new())),
            stopped: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The options in use.
    pub fn options(&self) -> &ManagerOptions {
        &self.opts
    }

    /// Installs a validated rule set (load or reload). Unchanged groups keep
    /// running untouched; changed groups inherit alert state, previous
    /// series and counters from the old version (series of rules removed
    /// from them are stale-marked at their next evaluation); removed groups
    /// stop, and their series are stale-marked `2 × interval` later with the
    /// removal time as timestamp (Prometheus's delay, so a renamed group can
    /// take the series over first; see [`RuleManager::write_due_stale`]).
    /// The first call is "process start": its groups run the compat
    /// for-state restore after their second evaluation.
    pub fn update(&self, files: Vec<RuleFile>) {
        let restore = !self.loaded_once.swap(true, Ordering::SeqCst);
        let mut groups = self.groups.lock();
        let mut old = std::mem::take(&mut *groups);
        let now = self.opts.clock.now_ms();
        for f in files {
            for spec in f.groups {
                let key = format!("{};{}", spec.file.display(), spec.name);
                if let Some(h) = old.remove(&key) {
                    if h.group.lock().spec == spec {
                        groups.insert(key, h);
                        continue;
                    }
                    stop_handle(&h);
                    let mut g = Group::new(spec, &self.opts, false);
                    // The group's thread has been joined, so this is the
                    // last reference unless an API reader holds one briefly.
                    let old_group = match Arc::try_unwrap(h) {
                        Ok(handle) => handle.group.into_inner(),
                        Err(shared) => {
                            let spare = Group::new(g.spec.clone(), &self.opts, false);
                            std::mem::replace(&mut *shared.group.lock(), spare)
                        }
                    };
                    g.inherit(old_group);
                    let next = g.next_slot_after(now);
                    groups.insert(key, self.handle(g, next));
                } else {
                    let g = Group::new(spec, &self.opts, restore);
                    let next = g.next_slot_after(now);
                    groups.insert(key, self.handle(g, next));
                }
            }
        }
        let mut removed = Vec::new();
        for (_, h) in old {
            stop_handle(&h);
            let g = h.group.lock();
            let mut series = g.all_series();
            series.extend(g.stale_on_next_eval.iter().cloned());
            if !series.is_empty() {
                removed.push(PendingStale {
                    due_ms: now + 2 * g.interval_ms,
                    ts_ms: now,
                    series,
                });
            }
        }
        let running = self.running.load(Ordering::SeqCst);
        if running {
            for h in groups.values() {
                self.spawn(h);
            }
        }
        drop(groups);
        for p in removed {
            let due = p.due_ms;
            self.pending_stale.lock().push(p);
            if running {
                self.spawn_stale_writer(due);
            }
        }
    }

    /// Writes the stale markers of removed groups that are due by the clock
    /// (the group's thread-less equivalent for tests over simulated time;
    /// running managers do this from a timer thread). A series that a
    /// running group wrote in its last evaluation has been taken over and
    /// gets no marker. Returns the number of markers written.
    pub fn write_due_stale(&self) -> usize {
        write_due_stale(&self.opts, &self.groups, &self.pending_stale)
    }

    /// A thread that waits (on the injected clock) until `due_ms`, then
    /// writes the due stale markers, unless the manager stops first.
    fn spawn_stale_writer(&self, due_ms: i64) {
        let opts = Arc::clone(&self.opts);
        let groups = Arc::clone(&self.groups);
        let pending = Arc::clone(&self.pending_stale);
        let stopped = Arc::clone(&self.stopped);
        let spawned = std::thread::Builder::new()
            .name("rules:stale".into())
            .spawn(move || {
                while !stopped.load(Ordering::SeqCst) {
                    let wait = due_ms - opts.clock.now_ms();
                    if wait <= 0 {
                        write_due_stale(&opts, &groups, &pending);
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(
                        wait.clamp(1, POLL_MS) as u64
                    ));
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the stale-marker thread: {e}");
        }
    }

    fn handle(&self, g: Group, next_ts: i64) -> Arc<GroupHandle> {
        Arc::new(GroupHandle {
            group: Mutex::new(g),
            slot: Mutex::new(Slot { next_ts }),
            stop: AtomicBool::new(false),
            thread: Mutex::new(None),
        })
    }

    fn spawn(&self, h: &Arc<GroupHandle>) {
        let mut t = h.thread.lock();
        if t.is_some() {
            return;
        }
        let h2 = Arc::clone(h);
        let opts = Arc::clone(&self.opts);
        let name = h.group.lock().key();
        let spawned = std::thread::Builder::new()
            .name(format!("rules:{}", h.group.lock().name))
            .spawn(move || {
                while !h2.stop.load(Ordering::SeqCst) {
                    if h2.run_due(&opts).is_some() {
                        continue;
                    }
                    let wait = (h2.slot.lock().next_ts - opts.clock.now_ms()).clamp(1, POLL_MS);
                    std::thread::sleep(std::time::Duration::from_millis(wait as u64));
                }
            });
        match spawned {
            Ok(j) => *t = Some(j),
            Err(e) => tracing::error!(group = %name, "cannot start rule group thread: {e}"),
        }
    }

    /// Starts one evaluation thread per group.
    pub fn start(&self) {
        self.stopped.store(false, Ordering::SeqCst);
        self.running.store(true, Ordering::SeqCst);
        let dues: Vec<i64> = self.pending_stale.lock().iter().map(|p| p.due_ms).collect();
        for due in dues {
            self.spawn_stale_writer(due);
        }
        for h in self.groups.lock().values() {
            self.spawn(h);
        }
    }

    /// Stops all groups after their current evaluation. Stale markers of
    /// removed groups that are not due yet are not written.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.running.store(false, Ordering::SeqCst);
        for h in self.groups.lock().values() {
            stop_handle(h);
        }
    }

    /// Evaluates one group at `ts_ms` now, on the caller's thread
    /// (deterministic; for tests and `test rules`). `group` is a group name
    /// or its `<file>;<name>` key. Returns false for an unknown group.
    pub fn eval_once(&self, group: &str, ts_ms: i64) -> bool {
        let Some(h) = self.find(group) else {
            return false;
        };
        h.group.lock().eval(&self.opts, ts_ms);
        true
    }

    /// Runs the evaluation of `group` that is due by the clock, like its
    /// thread would (for scheduling tests). Returns the evaluated slot.
    pub fn run_due(&self, group: &str) -> Option<i64> {
        self.find(group)?.run_due(&self.opts)
    }

    /// The next scheduled evaluation timestamp of `group`.
    pub fn next_eval_ms(&self, group: &str) -> Option<i64> {
        Some(self.find(group)?.slot.lock().next_ts)
    }

    fn find(&self, group: &str) -> Option<Arc<GroupHandle>> {
        let groups = self.groups.lock();
        groups
            .get(group)
            .or_else(|| groups.values().find(|h| h.group.lock().name == group))
            .cloned()
    }

    /// Runs `f` on each group (in key order) under its lock; for the rules
    /// and alerts APIs and metrics.
    pub fn with_groups<R>(&self, mut f: impl FnMut(&Group) -> R) -> Vec<R> {
        let groups: Vec<Arc<GroupHandle>> = self.groups.lock().values().cloned().collect();
        groups.iter().map(|h| f(&h.group.lock())).collect()
    }
}

impl Drop for RuleManager {
    fn drop(&mut self) {
        self.stop();
    }
}

fn stop_handle(h: &GroupHandle) {
    h.stop.store(true, Ordering::SeqCst);
    let t = h.thread.lock().take();
    if let Some(t) = t
        && t.join().is_err()
    {
        tracing::error!("rule group thread panicked");
    }
}

/// Writes the pending stale markers that are due by the clock, each at its
/// removal timestamp, skipping series a running group wrote last time.
fn write_due_stale(
    opts: &ManagerOptions,
    groups: &Groups,
    pending: &Mutex<Vec<PendingStale>>,
) -> usize {
    let now = opts.clock.now_ms();
    let due: Vec<PendingStale> = {
        let mut p = pending.lock();
        let (due, later) = std::mem::take(&mut *p)
            .into_iter()
            .partition(|x| x.due_ms <= now);
        *p = later;
        due
    };
    if due.is_empty() {
        return 0;
    }
    let handles: Vec<Arc<GroupHandle>> = groups.lock().values().cloned().collect();
    let mut app = opts.appendable.appender();
    let mut n = 0;
    for p in &due {
        for l in &p.series {
            if handles.iter().any(|h| h.group.lock().owns_series(l)) {
                continue;
            }
            // Refused (a newer sample exists): the series was taken over.
            if app.append(l, p.ts_ms, crate::model::stale_nan()).is_ok() {
                n += 1;
            }
        }
    }
    if let Err(e) = app.commit() {
        tracing::warn!("stale markers for removed rule groups not written: {e}");
        return 0;
    }
    n
}
