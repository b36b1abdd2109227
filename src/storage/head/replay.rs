//! Rebuilding the head from WAL records, and writing the head's state as a
//! WAL checkpoint (the inverse).

use std::collections::HashMap;
use std::sync::Arc;

use super::label_map::labels_hash;
use super::series::{MemSeries, SeriesData};
use super::{Head, STRIPES, inc};
use crate::model::HistogramSample;
use crate::storage::api::StorageError;
use crate::storage::wal::{
    BoundsRecord, CheckpointWriter, FloatRecord, HistogramRecord, Record, SeriesKind, SeriesRecord,
};

/// Records per checkpoint record (series or samples): bounds the record
/// size while keeping the frame overhead negligible.
const CHECKPOINT_BATCH: usize = 5_000;

/// State carried across records during replay.
#[derive(Default)]
pub(crate) struct ReplayState {
    /// Refs seen in series records whose labels were already present under
    /// another ref (a series removed and re-created): they map to that series.
    alias: HashMap<u64, Arc<MemSeries>>,
    /// Bounds in force per ref.
    bounds: HashMap<u64, Arc<[f64]>>,
}

impl Head {
    fn replay_series(&self, r: &SeriesRecord, st: &mut ReplayState) {
        if let Some(existing) = self.series_by_ref(r.series_ref) {
            if existing.labels != r.labels {
                tracing::warn!(
                    series_ref = r.series_ref,
                    "WAL replay: series ref reused with different labels; keeping the first"
                );
            }
            return;
        }
        let h = labels_hash(&r.labels);
        let stripe = &self.by_labels[(h % STRIPES as u64) as usize];
        let mut w = stripe.write();
        if let Some(existing) = w.get(h, &r.labels) {
            st.alias.insert(r.series_ref, existing.clone());
            return;
        }
        let s = self.insert_series(r.series_ref, self.intern(&r.labels), r.kind);
        w.insert(h, s);
        self.next_ref
            .fetch_max(r.series_ref + 1, std::sync::atomic::Ordering::AcqRel);
    }

    fn lookup(&self, r: u64, st: &ReplayState) -> Option<Arc<MemSeries>> {
        let s = self.series_by_ref(r).or_else(|| st.alias.get(&r).cloned());
        if s.is_none() {
            inc(&self.counters.replay_unknown_refs, 1);
        }
        s
    }

    /// Applies one WAL record. Samples before the boundary (already in
    /// blocks) and samples for unknown refs are skipped (the latter counted).
    pub(crate) fn replay_record(&self, rec: Record, st: &mut ReplayState) {
        let boundary = self.boundary();
        match rec {
            // Commit grouping is handled by the WAL reader.
            Record::Commit => {}
            Record::Series(v) => {
                for r in &v {
                    self.replay_series(r, st);
                }
            }
            Record::Floats(v) => {
                for FloatRecord { series_ref, t, v } in v {
                    let Some(s) = self.lookup(series_ref, st) else {
                        continue;
                    };
                    if t < boundary || s.kind != SeriesKind::Float {
                        continue;
                    }
                    s.append_float(t, v);
                    self.observe_t(t);
                    inc(&self.counters.float_samples, 1);
                }
            }
            Record::Bounds(v) => {
                for BoundsRecord { series_ref, bounds } in v {
                    if let Some(s) = self.lookup(series_ref, st)
                        && let SeriesData::Histogram { logged_bounds, .. } = &mut *s.data.lock()
                    {
                        *logged_bounds = Some(bounds.clone());
                    }
                    st.bounds.insert(series_ref, bounds);
                }
            }
            Record::Histograms(v) => {
                for HistogramRecord {
                    series_ref,
                    t,
                    buckets,
                    sum,
                    count,
                } in v
                {
                    let Some(s) = self.lookup(series_ref, st) else {
                        continue;
                    };
                    let Some(bounds) = st.bounds.get(&series_ref) else {
                        inc(&self.counters.replay_unknown_refs, 1);
                        continue;
                    };
                    if t < boundary
                        || s.kind != SeriesKind::Histogram
                        || buckets.len() != bounds.len() + 1
                    {
                        continue;
                    }
                    let h = HistogramSample {
                        upper_bounds: bounds.clone(),
                        bucket_counts: buckets,
                        sum,
                        count,
                    };
                    let mut d = s.data.lock();
                    if d.histogram_ooo_ok(t, &h.upper_bounds) {
                        d.append_histogram(t, &h);
                        self.observe_t(t);
                        inc(&self.counters.histogram_samples, 1);
                    }
                }
            }
        }
    }

    /// Writes every live series and all its samples to `cp`: series
    /// records first, then sample records (bounds before each histogram
    /// run's samples).
    pub(crate) fn write_checkpoint(&self, cp: &mut CheckpointWriter) -> Result<(), StorageError> {
        let all = self.all_series();
        for chunk in all.chunks(CHECKPOINT_BATCH) {
            let recs = chunk
                .iter()
                .map(|s| SeriesRecord {
                    series_ref: s.series_ref,
                    kind: s.kind,
                    labels: s.labels.clone(),
                })
                .collect();
            cp.add(&Record::Series(recs))?;
        }
        let mut floats: Vec<FloatRecord> = Vec::new();
        for s in &all {
            let d = s.data.lock();
            match &*d {
                SeriesData::Float(c) => {
                    let (mut ts, mut vs) = (Vec::new(), Vec::new());
                    c.collect(i64::MIN, i64::MAX, &mut ts, &mut vs);
                    for (t, v) in ts.into_iter().zip(vs) {
                        floats.push(FloatRecord {
                            series_ref: s.series_ref,
                            t,
                            v,
                        });
                        if floats.len() >= CHECKPOINT_BATCH {
                            cp.add(&Record::Floats(std::mem::take(&mut floats)))?;
                        }
                    }
                }
                SeriesData::Histogram { runs, .. } => {
                    for r in runs {
                        cp.add(&Record::Bounds(vec![BoundsRecord {
                            series_ref: s.series_ref,
                            bounds: r.bounds.clone(),
                        }]))?;
                        let (ts, buckets, sum, count) = r.collect(i64::MIN, i64::MAX);
                        let mut batch = Vec::new();
                        for (j, t) in ts.into_iter().enumerate() {
                            batch.push(HistogramRecord {
                                series_ref: s.series_ref,
                                t,
                                buckets: buckets
                                    .iter()
                                    .map(|c| c.get(j).copied().unwrap_or(f64::NAN))
                                    .collect(),
                                sum: sum.get(j).copied().unwrap_or(f64::NAN),
                                count: count.get(j).copied().unwrap_or(f64::NAN),
                            });
                            if batch.len() >= CHECKPOINT_BATCH / 10 {
                                cp.add(&Record::Histograms(std::mem::take(&mut batch)))?;
                            }
                        }
                        if !batch.is_empty() {
                            cp.add(&Record::Histograms(batch))?;
                        }
                    }
                }
            }
        }
        if !floats.is_empty() {
            cp.add(&Record::Floats(floats))?;
        }
        Ok(())
    }
}
