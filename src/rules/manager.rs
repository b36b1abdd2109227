//! The rule manager: one thread per group evaluating at the group's slots
//! (`k × interval + offset`), overrun handling with counted missed
//! iterations, reload with state carry-over, and a deterministic
//! [`RuleManager::eval_once`] for tests over simulated time.

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

/// Runs rule groups. Cheap to share behind an `Arc`.
pub struct RuleManager {
    opts: Arc<ManagerOptions>,
    groups: Mutex<BTreeMap<String, Arc<GroupHandle>>>,
    running: AtomicBool,
    loaded_once: AtomicBool,
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
            groups: Mutex::new(BTreeMap::new()),
            running: AtomicBool::new(false),
            loaded_once: AtomicBool::new(false),
        }
    }

    /// The options in use.
    pub fn options(&self) -> &ManagerOptions {
        &self.opts
    }

    /// Installs a validated rule set (load or reload). Unchanged groups keep
    /// running untouched; changed groups inherit alert state and previous
    /// series from the old version; removed groups stop and their series
    /// are stale-marked. The first call is "process start": its groups run
    /// the compat for-state restore after their second evaluation.
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
                    let old_group = std::mem::replace(
                        &mut *h.group.lock(),
                        Group::new(g.spec.clone(), &self.opts, false),
                    );
                    let orphans = g.inherit(old_group);
                    stale_mark(&self.opts, now, &orphans);
                    let next = g.next_slot_after(now);
                    groups.insert(key, self.handle(g, next));
                } else {
                    let g = Group::new(spec, &self.opts, restore);
                    let next = g.next_slot_after(now);
                    groups.insert(key, self.handle(g, next));
                }
            }
        }
        for (_, h) in old {
            stop_handle(&h);
            let series = h.group.lock().all_series();
            stale_mark(&self.opts, now, &series);
        }
        if self.running.load(Ordering::SeqCst) {
            for h in groups.values() {
                self.spawn(h);
            }
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
        self.running.store(true, Ordering::SeqCst);
        for h in self.groups.lock().values() {
            self.spawn(h);
        }
    }

    /// Stops all groups after their current evaluation.
    pub fn stop(&self) {
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

/// Writes stale markers for `series` at `t` (removed rules and groups).
fn stale_mark(opts: &ManagerOptions, t: i64, series: &[crate::model::Labels]) {
    if series.is_empty() {
        return;
    }
    let mut app = opts.appendable.appender();
    for l in series {
        let _ = app.append(l, t, crate::model::stale_nan());
    }
    if let Err(e) = app.commit() {
        tracing::warn!("stale markers for removed rules not written: {e}");
    }
}
