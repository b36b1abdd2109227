//! The push group store: push/delete/wipe semantics, listing, persistence
//! and re-sampling into storage.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::ingest::remote_write::{MetricKind, MetricMetadata, RejectionCounts};
use crate::model::{Clock, HistogramSample, Labels, METRIC_NAME, stale_nan};
use crate::storage::Appendable;

use super::PushError;
use super::family::{FamilyKind, PushedFamily, PushedValue};
use super::grouping::GroupingKey;
use super::persist;

/// Name of the per-group gauge holding the last successful push time.
pub const PUSH_TIME_METRIC: &str = "push_time_seconds";
/// Name of the per-group gauge holding the last failed push time.
pub const PUSH_FAILURE_TIME_METRIC: &str = "push_failure_time_seconds";

/// How a push combines with the existing group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushMethod {
    /// `PUT`: the body replaces every metric of the group.
    Put,
    /// `POST`: the body replaces only the families of the same name.
    Post,
}

/// One stored group.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Group {
    /// Families by name; metrics already carry the grouping labels.
    pub(crate) families: BTreeMap<String, PushedFamily>,
    /// Last successful push (ms since epoch), 0 if never.
    pub(crate) push_ms: i64,
    /// Last failed push (ms since epoch), 0 if never.
    pub(crate) failure_ms: i64,
}

/// A copy of one group for listing (`GET /api/v1/metrics`).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSnapshot {
    /// The grouping key.
    pub key: GroupingKey,
    /// Last successful push (ms since epoch), 0 if never.
    pub push_time_ms: i64,
    /// Last failed push (ms since epoch), 0 if never.
    pub push_failure_time_ms: i64,
    /// Families sorted by name; metric labels include the grouping labels.
    pub families: Vec<PushedFamily>,
}

impl GroupSnapshot {
    /// Pushgateway's `last_push_successful`.
    pub fn last_push_successful(&self) -> bool {
        self.push_failure_time_ms <= self.push_time_ms
    }
}

/// What one [`PushStore::resample`] wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResampleOutcome {
    /// Live groups written.
    pub groups: usize,
    /// Float samples written (including the per-group push time gauges).
    pub samples_written: u64,
    /// Histogram samples written.
    pub histograms_written: u64,
    /// Stale markers written for series that disappeared.
    pub stale_markers: u64,
    /// Samples storage refused one by one.
    pub rejected: RejectionCounts,
}

#[derive(Debug, Clone, PartialEq)]
enum Written {
    Float,
    Histogram(Arc<[f64]>),
}

#[derive(Debug, Default)]
struct State {
    groups: BTreeMap<GroupingKey, Group>,
    /// Series written by the previous resample, for stale markers.
    last_written: HashMap<Labels, Written>,
}

/// All push groups. Thread-safe; every mutation is persisted (when opened
/// with a data directory) before it returns.
#[derive(Debug)]
pub struct PushStore {
    state: Mutex<State>,
    file: Option<PathBuf>,
    clock: Arc<dyn Clock>,
}

impl PushStore {
    /// Opens (or creates) the store persisted in `data_dir/push_groups.wpg`.
    pub fn open(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<PushStore, PushError> {
        let file = data_dir.join(persist::PUSH_GROUPS_FILE);
        let groups = persist::load(&file)?;
        Ok(PushStore {
            state: Mutex::new(State {
                groups,
                last_written: HashMap::new(),
            }),
            file: Some(file),
            clock,
        })
    }

    /// A store that is not persisted (tests, `--no-persist` setups).
    pub fn in_memory(clock: Arc<dyn Clock>) -> PushStore {
        PushStore {
            state: Mutex::new(State::default()),
            file: None,
            clock,
        }
    }

    /// Applies a `PUT` or `POST` of `families` to the group `key`.
    ///
    /// On success the group's push time is now. When the families are
    /// invalid or inconsistent (timestamps, bad names, duplicate metrics,
    /// a type differing from the same family in another group), nothing is
    /// changed except an existing group's `push_failure_time_seconds`, and
    /// [`PushError::Inconsistent`] says why.
    pub fn push(
        &self,
        key: &GroupingKey,
        method: PushMethod,
        families: Vec<PushedFamily>,
    ) -> Result<(), PushError> {
        let now = self.clock.now_ms();
        let mut st = self.state.lock();
        let families = match sanitize(key, families, &st.groups) {
            Ok(f) => f,
            Err(reason) => {
                if let Some(g) = st.groups.get_mut(key) {
                    let old = g.failure_ms;
                    g.failure_ms = now;
                    if let Err(e) = self.persist(&st.groups) {
                        if let Some(g) = st.groups.get_mut(key) {
                            g.failure_ms = old;
                        }
                        return Err(e);
                    }
                }
                return Err(PushError::Inconsistent(reason));
            }
        };
        let old = st.groups.get(key).cloned();
        let mut g = old.clone().unwrap_or_default();
        if method == PushMethod::Put {
            g.families.clear();
        }
        for f in families {
            g.families.insert(f.name.clone(), f);
        }
        g.push_ms = now;
        st.groups.insert(key.clone(), g);
        if let Err(e) = self.persist(&st.groups) {
            match old {
                Some(o) => st.groups.insert(key.clone(), o),
                None => st.groups.remove(key),
            };
            return Err(e);
        }
        Ok(())
    }

    /// Removes a group; returns whether it existed. Its series get stale
    /// markers at the next [`PushStore::resample`].
    pub fn delete(&self, key: &GroupingKey) -> Result<bool, PushError> {
        let mut st = self.state.lock();
        let Some(old) = st.groups.remove(key) else {
            return Ok(false);
        };
        if let Err(e) = self.persist(&st.groups) {
            st.groups.insert(key.clone(), old);
            return Err(e);
        }
        Ok(true)
    }

    /// Removes every group (the Pushgateway's wipe); returns how many.
    pub fn wipe(&self) -> Result<usize, PushError> {
        let mut st = self.state.lock();
        let old = std::mem::take(&mut st.groups);
        if let Err(e) = self.persist(&st.groups) {
            st.groups = old;
            return Err(e);
        }
        Ok(old.len())
    }

    /// Every group, sorted by grouping key.
    pub fn list(&self) -> Vec<GroupSnapshot> {
        let st = self.state.lock();
        st.groups
            .iter()
            .map(|(k, g)| GroupSnapshot {
                key: k.clone(),
                push_time_ms: g.push_ms,
                push_failure_time_ms: g.failure_ms,
                families: g.families.values().cloned().collect(),
            })
            .collect()
    }

    /// Help and type of every pushed family (deduplicated), for
    /// `/api/v1/metadata`; record them in the remote-write
    /// [`crate::ingest::remote_write::MetadataStore`] or merge at query time.
    pub fn metadata(&self) -> Vec<MetricMetadata> {
        let st = self.state.lock();
        let mut out: Vec<MetricMetadata> = st
            .groups
            .values()
            .flat_map(|g| g.families.values())
            .map(|f| MetricMetadata {
                metric: f.name.clone(),
                kind: match f.kind {
                    FamilyKind::Counter => MetricKind::Counter,
                    FamilyKind::Gauge => MetricKind::Gauge,
                    FamilyKind::Untyped => MetricKind::Unknown,
                    FamilyKind::Summary => MetricKind::Summary,
                    FamilyKind::Histogram => MetricKind::Histogram,
                    FamilyKind::GaugeHistogram => MetricKind::GaugeHistogram,
                },
                help: f.help.clone(),
                unit: String::new(),
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.state.lock().groups.len()
    }

    /// True when there is no group.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes every live group's current values with timestamp `t_ms` in one
    /// commit, plus stale markers for series written last time that no
    /// longer exist (deleted groups, replaced metrics).
    ///
    /// Series are what a Prometheus scraping a Pushgateway with
    /// `honor_labels: true` would store: metric labels plus grouping labels;
    /// summaries as `{quantile}`, `_sum`, `_count`; histograms as first-class
    /// histogram samples; `push_time_seconds` and
    /// `push_failure_time_seconds` per group.
    pub fn resample(&self, t_ms: i64, db: &dyn Appendable) -> Result<ResampleOutcome, PushError> {
        let mut st = self.state.lock();
        let mut app = db.appender();
        let mut out = ResampleOutcome::default();
        let mut written: HashMap<Labels, Written> = HashMap::new();
        let mut float = |labels: Labels,
                         v: f64,
                         out: &mut ResampleOutcome,
                         app: &mut dyn crate::storage::Appender| {
            match app.append(&labels, t_ms, v) {
                Ok(()) => out.samples_written += 1,
                Err(e) => out.rejected.add(&e),
            }
            written.insert(labels, Written::Float);
        };
        let mut hists: Vec<(Labels, HistogramSample)> = Vec::new();
        for (key, g) in &st.groups {
            out.groups += 1;
            let gl = key.labels();
            float(
                with_name(gl, PUSH_TIME_METRIC, None),
                g.push_ms as f64 / 1000.0,
                &mut out,
                app.as_mut(),
            );
            float(
                with_name(gl, PUSH_FAILURE_TIME_METRIC, None),
                g.failure_ms as f64 / 1000.0,
                &mut out,
                app.as_mut(),
            );
            for f in g.families.values() {
                for m in &f.metrics {
                    let base =
                        Labels::from_pairs(m.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
                    match &m.value {
                        PushedValue::Single(v) => {
                            float(with_name(&base, &f.name, None), *v, &mut out, app.as_mut())
                        }
                        PushedValue::Summary {
                            count,
                            sum,
                            quantiles,
                        } => {
                            for (q, v) in quantiles {
                                let qs = q.to_string();
                                float(
                                    with_name(&base, &f.name, Some(("quantile", &qs))),
                                    *v,
                                    &mut out,
                                    app.as_mut(),
                                );
                            }
                            float(
                                with_name(&base, &format!("{}_sum", f.name), None),
                                *sum,
                                &mut out,
                                app.as_mut(),
                            );
                            float(
                                with_name(&base, &format!("{}_count", f.name), None),
                                *count,
                                &mut out,
                                app.as_mut(),
                            );
                        }
                        PushedValue::Histogram {
                            count,
                            sum,
                            buckets,
                        } => {
                            hists.push((
                                with_name(&base, &f.name, None),
                                classic(*count, *sum, buckets),
                            ));
                        }
                    }
                }
            }
        }
        for (labels, h) in hists {
            match app.append_histogram(&labels, t_ms, &h) {
                Ok(()) => out.histograms_written += 1,
                Err(e) => out.rejected.add(&e),
            }
            written.insert(labels, Written::Histogram(h.upper_bounds));
        }
        for (labels, w) in &st.last_written {
            if written.contains_key(labels) {
                continue;
            }
            let r = match w {
                Written::Float => app.append(labels, t_ms, stale_nan()),
                Written::Histogram(b) => {
                    app.append_histogram(labels, t_ms, &HistogramSample::stale(b.clone()))
                }
            };
            match r {
                Ok(()) => out.stale_markers += 1,
                Err(e) => out.rejected.add(&e),
            }
        }
        if written.is_empty() && out.stale_markers == 0 && out.rejected.total() == 0 {
            // Nothing live and nothing to mark stale: skip an empty commit
            // (and its fsync) every interval.
            app.rollback();
        } else {
            app.commit()?;
        }
        st.last_written = written;
        Ok(out)
    }

    fn persist(&self, groups: &BTreeMap<GroupingKey, Group>) -> Result<(), PushError> {
        match &self.file {
            Some(path) => persist::store(path, groups),
            None => Ok(()),
        }
    }
}

/// `labels` plus `__name__` (and one extra label).
fn with_name(labels: &Labels, name: &str, extra: Option<(&str, &str)>) -> Labels {
    let mut b = labels.builder();
    b.set(METRIC_NAME, name);
    if let Some((n, v)) = extra {
        b.set(n, v);
    }
    b.build()
}

/// A classic histogram sample from pushed `(bound, cumulative)` buckets.
fn classic(count: f64, sum: f64, buckets: &[(f64, f64)]) -> HistogramSample {
    let finite: Vec<(f64, f64)> = buckets
        .iter()
        .copied()
        .filter(|(b, _)| *b != f64::INFINITY)
        .collect();
    let upper_bounds: Arc<[f64]> = finite.iter().map(|(b, _)| *b).collect();
    let mut bucket_counts: Vec<f64> = finite.iter().map(|(_, c)| *c).collect();
    bucket_counts.push(count);
    HistogramSample {
        upper_bounds,
        bucket_counts,
        sum,
        count,
    }
}

/// Validates a push and applies Pushgateway's label rules: grouping labels
/// override the metrics' own; empty families are dropped.
fn sanitize(
    key: &GroupingKey,
    families: Vec<PushedFamily>,
    groups: &BTreeMap<GroupingKey, Group>,
) -> Result<Vec<PushedFamily>, String> {
    let mut seen: HashMap<String, ()> = HashMap::new();
    let mut out = Vec::with_capacity(families.len());
    for mut f in families {
        f.validate()?;
        if f.name == PUSH_TIME_METRIC || f.name == PUSH_FAILURE_TIME_METRIC {
            return Err(format!(
                "metric name {} is reserved for the push time",
                f.name
            ));
        }
        if seen.insert(f.name.clone(), ()).is_some() {
            return Err(format!(
                "metric family {} appears twice in the body",
                f.name
            ));
        }
        for (k, g) in groups {
            if k == key {
                continue;
            }
            if let Some(other) = g.families.get(&f.name)
                && other.kind != f.kind
            {
                return Err(format!(
                    "metric {} is a {} here but a {} in group {k}",
                    f.name,
                    f.kind.as_str(),
                    other.kind.as_str()
                ));
            }
        }
        let mut label_sets: HashMap<Vec<(String, String)>, ()> = HashMap::new();
        for m in &mut f.metrics {
            if m.timestamp_ms.is_some() {
                return Err(format!(
                    "metric {} has a timestamp; pushed metrics must not have timestamps",
                    f.name
                ));
            }
            for l in key.labels() {
                m.labels.retain(|(n, _)| n.as_str() != &*l.name);
                m.labels.push((l.name.to_string(), l.value.to_string()));
            }
            m.labels.sort();
            if label_sets.insert(m.labels.clone(), ()).is_some() {
                let printed =
                    Labels::from_pairs(m.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
                return Err(format!("duplicate metric {}{printed}", f.name));
            }
        }
        // The same series pushed through another group (e.g. `{job="a"}`
        // pushing `m{instance="x"}` while `{job="a",instance="x"}` pushes
        // `m`) would collide in storage; the Pushgateway refuses it too.
        for (k, g) in groups {
            if k == key {
                continue;
            }
            if let Some(other) = g.families.get(&f.name)
                && let Some(m) = other
                    .metrics
                    .iter()
                    .find(|m| label_sets.contains_key(&m.labels))
            {
                let printed =
                    Labels::from_pairs(m.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
                return Err(format!(
                    "metric {}{printed} is already pushed by group {k}",
                    f.name
                ));
            }
        }
        if !f.metrics.is_empty() {
            out.push(f);
        }
    }
    Ok(out)
}

#[cfg(test)]
impl PushStore {
    pub(crate) fn list_groups_for_test(&self) -> BTreeMap<GroupingKey, Group> {
        self.state.lock().groups.clone()
    }
}
