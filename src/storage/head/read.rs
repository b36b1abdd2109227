//! Reading the head: matcher evaluation over postings, then exact checks
//! and sample collection per series; histogram series are expanded into
//! their views (see [`crate::storage::views`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::Head;
use super::series::{MemSeries, SeriesData};
use crate::model::{Labels, Matcher};
use crate::storage::api::{HistogramSeries, SelectHints, Series};
use crate::storage::merge::sort_and_merge;
use crate::storage::views::{
    HistogramColumns, bucket_view_matches_ignoring_le, expand_views, histogram_series,
    select_views, view_label_names, view_label_values,
};
use crate::storage::wal::SeriesKind;

/// The columns of one histogram run in a time range.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistRunData {
    /// Finite bounds, ascending.
    pub(crate) bounds: Arc<[f64]>,
    /// Timestamps (ms).
    pub(crate) timestamps: Vec<i64>,
    /// One column per bucket (bounds + 1).
    pub(crate) buckets: Vec<Vec<f64>>,
    /// Sum column.
    pub(crate) sum: Vec<f64>,
    /// Count column.
    pub(crate) count: Vec<f64>,
}

/// A head series' samples in a time range (for block cuts and snapshots).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HeadSeriesData {
    /// Float samples.
    Float {
        /// Timestamps (ms).
        timestamps: Vec<i64>,
        /// Values.
        values: Vec<f64>,
    },
    /// Histogram runs in time order.
    Histogram(Vec<HistRunData>),
}

fn matches_all(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

fn runs_in(d: &SeriesData, min_t: i64, max_t: i64) -> Vec<HistRunData> {
    let SeriesData::Histogram { runs, .. } = d else {
        return Vec::new();
    };
    runs.iter()
        .filter(|r| r.time_col().overlaps(min_t, max_t))
        .map(|r| {
            let (timestamps, buckets, sum, count) = r.collect(min_t, max_t);
            HistRunData {
                bounds: r.bounds.clone(),
                timestamps,
                buckets,
                sum,
                count,
            }
        })
        .filter(|r| !r.timestamps.is_empty())
        .collect()
}

/// A head float series matched by a streaming read, decoded on demand.
#[derive(Debug, Clone)]
pub(crate) struct HeadFloat(Arc<MemSeries>);

impl HeadFloat {
    /// The series labels.
    pub(crate) fn labels(&self) -> &Labels {
        &self.0.labels
    }

    /// Appends the samples in `[min_t, max_t]` (as of now) to `ts`/`vs`.
    pub(crate) fn collect(&self, min_t: i64, max_t: i64, ts: &mut Vec<i64>, vs: &mut Vec<f64>) {
        let d = self.0.data.lock();
        if let SeriesData::Float(c) = &*d {
            c.collect(min_t, max_t, ts, vs);
        }
    }
}

/// Appends the views of histogram series `s` selected by `matchers` with
/// samples in range (labels only when `hints.labels_only`), one set per run
/// of constant bounds.
fn histogram_views(
    s: &MemSeries,
    hints: &SelectHints,
    matchers: &[Matcher],
    out: &mut Vec<Series>,
) {
    let (min_t, max_t) = (hints.min_t, hints.max_t);
    let d = s.data.lock();
    let SeriesData::Histogram { runs, .. } = &*d else {
        return;
    };
    for r in runs.iter().filter(|r| r.time_col().overlaps(min_t, max_t)) {
        let sel = select_views(&s.labels, &r.bounds, matchers);
        if sel.is_empty() {
            continue;
        }
        if hints.labels_only {
            out.extend(
                sel.labels(&s.labels, &r.bounds)
                    .into_iter()
                    .map(|labels| Series {
                        labels,
                        timestamps: Vec::new(),
                        values: Vec::new(),
                    }),
            );
            continue;
        }
        let (ts, buckets, sum, count) = r.collect(min_t, max_t);
        if ts.is_empty() {
            continue;
        }
        let cols = HistogramColumns {
            bounds: &r.bounds,
            timestamps: &ts,
            buckets: &buckets,
            sum: &sum,
            count: &count,
        };
        out.extend(expand_views(&s.labels, cols, &sel, false));
    }
}

impl Head {
    /// The parts of [`Head::select`] for a streaming read (not
    /// `labels_only`): matching float series with data overlapping the
    /// range, to be decoded later, and the histogram views, decoded now.
    pub(crate) fn select_parts(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> (Vec<HeadFloat>, Vec<Series>) {
        let (min_t, max_t) = (hints.min_t, hints.max_t);
        let (mut floats, mut views) = (Vec::new(), Vec::new());
        let mut hist: Vec<Arc<MemSeries>> = Vec::new();
        for s in self.candidates(matchers) {
            match s.kind {
                SeriesKind::Float => {
                    if !matches_all(&s.labels, matchers) {
                        continue;
                    }
                    let overlaps =
                        matches!(&*s.data.lock(), SeriesData::Float(c) if c.overlaps(min_t, max_t));
                    if overlaps {
                        floats.push(HeadFloat(s));
                    }
                }
                SeriesKind::Histogram if !hints.skip_histogram_views => hist.push(s),
                SeriesKind::Histogram => {}
            }
        }
        for s in hist {
            histogram_views(&s, hints, matchers, &mut views);
        }
        (floats, views)
    }

    fn candidates(&self, matchers: &[Matcher]) -> Vec<Arc<MemSeries>> {
        let refs = self.postings.read().select(matchers);
        refs.into_iter()
            .filter_map(|r| self.series_by_ref(r))
            .collect()
    }

    /// Float series and histogram views matching `matchers`, sorted by labels.
    pub(crate) fn select(&self, hints: &SelectHints, matchers: &[Matcher]) -> Vec<Series> {
        let (min_t, max_t) = (hints.min_t, hints.max_t);
        let mut out = Vec::new();
        for s in self.candidates(matchers) {
            match s.kind {
                SeriesKind::Float => {
                    if !matches_all(&s.labels, matchers) {
                        continue;
                    }
                    let d = s.data.lock();
                    let SeriesData::Float(c) = &*d else { continue };
                    if hints.labels_only {
                        if c.overlaps(min_t, max_t) {
                            out.push(Series {
                                labels: s.labels.clone(),
                                timestamps: Vec::new(),
                                values: Vec::new(),
                            });
                        }
                        continue;
                    }
                    let (mut ts, mut vs) = (Vec::new(), Vec::new());
                    c.collect(min_t, max_t, &mut ts, &mut vs);
                    if !ts.is_empty() {
                        out.push(Series {
                            labels: s.labels.clone(),
                            timestamps: ts,
                            values: vs,
                        });
                    }
                }
                SeriesKind::Histogram if hints.skip_histogram_views => {}
                SeriesKind::Histogram => histogram_views(&s, hints, matchers, &mut out),
            }
        }
        sort_and_merge(out)
    }

    /// Histogram series whose `_bucket` view (ignoring `le`) matches, one
    /// entry per run of constant bounds, sorted by labels then time.
    pub(crate) fn select_histograms(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Vec<HistogramSeries> {
        let mut out = Vec::new();
        for s in self.candidates(matchers) {
            if s.kind != SeriesKind::Histogram
                || !bucket_view_matches_ignoring_le(&s.labels, matchers)
            {
                continue;
            }
            let d = s.data.lock();
            for r in runs_in(&d, hints.min_t, hints.max_t) {
                out.push(histogram_series(
                    &s.labels,
                    r.bounds,
                    r.timestamps,
                    r.buckets,
                    r.sum,
                    r.count,
                ));
            }
        }
        out.sort_by(|a, b| {
            a.labels
                .cmp(&b.labels)
                .then(a.timestamps.first().cmp(&b.timestamps.first()))
        });
        out
    }

    /// Label names over matching series (and views) with data in range.
    pub(crate) fn label_names(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.for_each_match(hints, matchers, |labels, views| match views {
            None => out.extend(labels.iter().map(|l| l.name.to_string())),
            Some((bounds, sel)) => {
                let _ = bounds;
                out.extend(view_label_names(labels, sel).iter().map(|n| n.to_string()));
            }
        });
        out
    }

    /// Values of `name` over matching series (and views) with data in range.
    pub(crate) fn label_values(
        &self,
        name: &str,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.for_each_match(hints, matchers, |labels, views| match views {
            None => {
                if let Some(v) = labels.get(name) {
                    out.insert(v.to_string());
                }
            }
            Some((bounds, sel)) => out.extend(view_label_values(labels, bounds, sel, name)),
        });
        out
    }

    fn for_each_match(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
        mut f: impl FnMut(&Labels, Option<(&[f64], &crate::storage::views::ViewSelection)>),
    ) {
        for s in self.candidates(matchers) {
            let d = s.data.lock();
            match &*d {
                SeriesData::Float(c) => {
                    if matches_all(&s.labels, matchers) && c.overlaps(hints.min_t, hints.max_t) {
                        f(&s.labels, None);
                    }
                }
                SeriesData::Histogram { runs, .. } => {
                    for r in runs
                        .iter()
                        .filter(|r| r.time_col().overlaps(hints.min_t, hints.max_t))
                    {
                        let sel = select_views(&s.labels, &r.bounds, matchers);
                        if !sel.is_empty() {
                            f(&s.labels, Some((&r.bounds, &sel)));
                        }
                    }
                }
            }
        }
    }

    /// Every series with samples in `[min_t, max_t]`, sorted by labels, as
    /// a lazy iterator (each series is decoded when reached, so a block cut
    /// does not materialise the whole head).
    pub(crate) fn series_data(
        &self,
        min_t: i64,
        max_t: i64,
    ) -> impl Iterator<Item = (Labels, HeadSeriesData)> + '_ {
        let mut all = self.all_series();
        all.sort_by(|a, b| a.labels.cmp(&b.labels));
        all.into_iter().filter_map(move |s| {
            let d = s.data.lock();
            let data = match &*d {
                SeriesData::Float(c) => {
                    let (mut timestamps, mut values) = (Vec::new(), Vec::new());
                    c.collect(min_t, max_t, &mut timestamps, &mut values);
                    if timestamps.is_empty() {
                        return None;
                    }
                    HeadSeriesData::Float { timestamps, values }
                }
                SeriesData::Histogram { .. } => {
                    let runs = runs_in(&d, min_t, max_t);
                    if runs.is_empty() {
                        return None;
                    }
                    HeadSeriesData::Histogram(runs)
                }
            };
            Some((s.labels.clone(), data))
        })
    }
}
