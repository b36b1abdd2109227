//! Reloading rule files while running (SIGHUP, `POST /-/reload`, a changed
//! file). A reload validates every file first; if anything is wrong the
//! running rules stay as they are and the error is kept for the log, the
//! metrics and the API, like Prometheus's config reload.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use super::RuleManager;
use super::file::{LoadOptions, expand_globs, load_globs};

/// The outcome of the latest reload (or of the initial load).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadStatus {
    /// Whether the latest attempt succeeded.
    pub last_successful: bool,
    /// When the rules were last loaded successfully (ms since the epoch).
    pub last_success_ms: i64,
    /// Failed attempts since start.
    pub failures_total: u64,
    /// The latest attempt's error, if it failed.
    pub last_error: Option<String>,
}

/// File path -> modification time, for change detection.
type Stamps = BTreeMap<PathBuf, Option<SystemTime>>;

/// Reloads a [`RuleManager`] from its glob patterns.
pub struct Reloader {
    manager: Arc<RuleManager>,
    patterns: Vec<String>,
    opts: LoadOptions,
    status: Mutex<ReloadStatus>,
    failures: AtomicU64,
    /// Serialises reloads (signal, HTTP and watcher may race) and holds the
    /// stamps of the files as last read.
    stamps: Mutex<Stamps>,
    stop: AtomicBool,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("patterns", &self.patterns)
            .field("status", &*self.status.lock())
            .finish()
    }
}

fn stamps(patterns: &[String]) -> Stamps {
    expand_globs(patterns)
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
            (p, m)
        })
        .collect()
}

impl Reloader {
    /// A reloader for rules already loaded from `patterns` at `loaded_ms`.
    pub fn new(manager: Arc<RuleManager>, patterns: Vec<String>, loaded_ms: i64) -> Self {
        let s = stamps(&patterns);
        Reloader {
            manager,
            patterns,
            opts: LoadOptions::default(),
            status: Mutex::new(ReloadStatus {
                last_successful: true,
                last_success_ms: loaded_ms,
                failures_total: 0,
                last_error: None,
            }),
            failures: AtomicU64::new(0),
            stamps: Mutex::new(s),
            stop: AtomicBool::new(false),
        }
    }

    /// Re-reads every rule file. On success the new rules replace the old
    /// ones (unchanged groups keep running); on failure nothing changes and
    /// the error text (every problem, one per line) is returned and kept.
    pub fn reload(&self) -> Result<(), String> {
        let mut st = self.stamps.lock();
        *st = stamps(&self.patterns);
        let now = self.manager.options().clock.now_ms();
        match load_globs(&self.patterns, &self.opts) {
            Ok(files) => {
                let n = files.len();
                self.manager.update(files);
                let mut s = self.status.lock();
                s.last_successful = true;
                s.last_success_ms = now;
                s.last_error = None;
                tracing::info!(rule_files = n, "rules reloaded");
                Ok(())
            }
            Err(errs) => {
                let msg = errs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n");
                let total = self.failures.fetch_add(1, Ordering::SeqCst) + 1;
                let mut s = self.status.lock();
                s.last_successful = false;
                s.failures_total = total;
                s.last_error = Some(msg.clone());
                tracing::error!("rule reload failed, previous rules stay active:\n{msg}");
                Err(msg)
            }
        }
    }

    /// Reloads when a matched file was added, removed or modified since the
    /// last reload. Returns `None` when nothing changed.
    pub fn reload_if_changed(&self) -> Option<Result<(), String>> {
        if *self.stamps.lock() == stamps(&self.patterns) {
            return None;
        }
        tracing::info!("rule files changed on disk; reloading");
        Some(self.reload())
    }

    /// Starts a thread that checks the files every `every` until
    /// [`Reloader::stop`].
    pub fn watch(self: &Arc<Self>, every: Duration) -> std::io::Result<()> {
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("rules:watch".into())
            .spawn(move || {
                // Sleep in short steps so stop() is noticed quickly.
                let step = Duration::from_millis(100).min(every);
                let mut waited = Duration::ZERO;
                while !me.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(step);
                    waited += step;
                    if waited >= every {
                        waited = Duration::ZERO;
                        let _ = me.reload_if_changed();
                    }
                }
            })
            .map(|_| ())
    }

    /// Stops the watcher thread.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// The latest outcome.
    pub fn status(&self) -> ReloadStatus {
        self.status.lock().clone()
    }

    /// The manager being reloaded.
    pub fn manager(&self) -> &Arc<RuleManager> {
        &self.manager
    }
}
