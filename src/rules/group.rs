//! One rule group: sequential evaluation of its rules at one timestamp,
//! recording-rule writes with staleness markers, alert hand-over right
//! after each alerting rule, health and self-metrics, and the compat
//! for-state restore (spec §2.1–2.7).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use crate::model::{Labels, METRIC_NAME, Matcher, stale_nan};
use crate::storage::SelectHints;

use super::alerting::{AlertEvalInput, AlertingRule};
use super::file::{GroupSpec, RuleKind, RuleSpec};
use super::{ManagerOptions, template_query_for};

/// Rule health as shown by the rules API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    /// Last evaluation succeeded.
    Ok,
    /// Last evaluation failed (see `last_error`).
    Err,
}

/// What every rule reports.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleStatus {
    /// Health.
    pub health: Health,
    /// Error of the last evaluation, if it failed.
    pub last_error: Option<String>,
    /// Timestamp of the last evaluation (ms).
    pub last_evaluation_ms: Option<i64>,
    /// Wall time the last evaluation took (seconds).
    pub evaluation_seconds: f64,
}

impl Default for RuleStatus {
    fn default() -> Self {
        RuleStatus {
            health: Health::Unknown,
            last_error: None,
            last_evaluation_ms: None,
            evaluation_seconds: 0.0,
        }
    }
}

/// A rule with its state.
#[derive(Debug, Clone)]
pub enum Rule {
    /// A recording rule and the series it wrote last time.
    Recording {
        /// The rule.
        spec: Arc<RuleSpec>,
        /// Series written by the last successful evaluation.
        prev_series: HashSet<Labels>,
        /// Health.
        status: RuleStatus,
    },
    /// An alerting rule.
    Alerting {
        /// Rule and alerts.
        rule: AlertingRule,
        /// `ALERTS`/`ALERTS_FOR_STATE` series written last time.
        prev_series: HashSet<Labels>,
        /// Health.
        status: RuleStatus,
    },
}

impl Rule {
    /// The rule's spec.
    pub fn spec(&self) -> &Arc<RuleSpec> {
        match self {
            Rule::Recording { spec, .. } => spec,
            Rule::Alerting { rule, .. } => &rule.spec,
        }
    }

    /// Health and timings.
    pub fn status(&self) -> &RuleStatus {
        match self {
            Rule::Recording { status, .. } | Rule::Alerting { status, .. } => status,
        }
    }

    /// Identity across reloads: name + merged labels.
    fn identity(&self) -> (String, BTreeMap<String, String>) {
        let s = self.spec();
        (s.name().to_string(), s.labels.clone())
    }
}

/// Group-level counters (names follow `prometheus_rule_group_*`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupMetrics {
    /// Executed + missed slots.
    pub iterations_total: u64,
    /// Slots skipped because an evaluation overran.
    pub iterations_missed_total: u64,
    /// Rule evaluations.
    pub evaluations_total: u64,
    /// Failed rule evaluations.
    pub evaluation_failures_total: u64,
    /// Template expansion failures.
    pub template_expansion_failures_total: u64,
    /// Samples that storage refused (out of order, duplicates).
    pub append_failures_total: u64,
    /// Duration of the last evaluation (seconds, wall clock).
    pub last_duration_seconds: f64,
    /// Timestamp of the last evaluation (ms).
    pub last_evaluation_ms: Option<i64>,
    /// Samples produced by the last evaluation.
    pub last_samples: u64,
}

/// A running group.
#[derive(Debug)]
pub struct Group {
    /// Name.
    pub name: String,
    /// File the group came from.
    pub file: PathBuf,
    /// Effective interval (ms).
    pub interval_ms: i64,
    /// Effective query offset (ms).
    pub query_offset_ms: i64,
    /// `limit` (0 = unlimited).
    pub limit: usize,
    /// Rules in file order.
    pub rules: Vec<Rule>,
    /// Counters.
    pub metrics: GroupMetrics,
    /// Evaluations done since start (drives the compat restore).
    evaluations: u64,
    /// Whether the compat for-state restore is still to run.
    pub(crate) should_restore: bool,
    /// The spec it was built from (to detect unchanged groups on reload).
    pub spec: GroupSpec,
    /// Series of rules that a reload removed from this group: stale-marked
    /// at the group's next evaluation (Prometheus's `staleSeries`), unless
    /// a rule of the group wrote them again in that evaluation.
    pub(crate) stale_on_next_eval: Vec<Labels>,
}

impl Group {
    /// Builds a group from its spec. `restore` = run the compat for-state
    /// restore after the second evaluation (process start only).
    pub fn new(spec: GroupSpec, opts: &ManagerOptions, restore: bool) -> Group {
        // Compat restore only when there is something to read it from;
        // otherwise rules count as restored from the start.
        let compat = restore && opts.restore_querier.is_some();
        let rules = spec
            .rules
            .iter()
            .map(|r| {
                let spec = Arc::new(r.clone());
                match r.kind {
                    RuleKind::Recording { .. } => Rule::Recording {
                        spec,
                        prev_series: HashSet::new(),
                        status: RuleStatus::default(),
                    },
                    RuleKind::Alerting { .. } => Rule::Alerting {
                        rule: AlertingRule::new(spec, !compat),
                        prev_series: HashSet::new(),
                        status: RuleStatus::default(),
                    },
                }
            })
            .collect();
        let mut g = Group {
            name: spec.name.clone(),
            file: spec.file.clone(),
            interval_ms: spec.interval_ms.unwrap_or(opts.evaluation_interval_ms),
            query_offset_ms: spec.query_offset_ms.unwrap_or(opts.query_offset_ms),
            limit: spec.limit,
            rules,
            metrics: GroupMetrics::default(),
            evaluations: 0,
            should_restore: compat,
            spec,
            stale_on_next_eval: Vec::new(),
        };
        if restore
            && let Some(dir) = &opts.state_dir
            && super::state::load(dir, &mut g, opts.clock.now_ms(), opts.outage_tolerance_ms)
        {
            g.should_restore = false;
        }
        g
    }

    /// `<file>;<name>`, the `rule_group` label value.
    pub fn key(&self) -> String {
        format!("{};{}", self.file.display(), self.name)
    }

    /// Stable phase of the group's slots: FNV-1a of the key mod interval.
    pub fn offset_ms(&self) -> i64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.key().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        (h % self.interval_ms.max(1) as u64) as i64
    }

    /// The first slot strictly after `now_ms`.
    pub fn next_slot_after(&self, now_ms: i64) -> i64 {
        let iv = self.interval_ms.max(1);
        let off = self.offset_ms();
        let k = (now_ms - off).div_euclid(iv) + 1;
        k * iv + off
    }

    /// Takes over state from the previous version of this group (reload):
    /// rules matched by name + labels (Nth duplicate to Nth) keep alerts and
    /// previous series; the group's counters carry on (Prometheus keeps the
    /// metrics of a group that survives a reload). The series of unmatched
    /// old rules are stale-marked at this group's next evaluation, like
    /// Prometheus's `CopyState`, so a rule renamed in the same reload can
    /// take them over first.
    pub fn inherit(&mut self, old: Group) {
        let mut pool: Vec<Option<Rule>> = old.rules.into_iter().map(Some).collect();
        for r in &mut self.rules {
            let id = r.identity();
            let Some(slot) = pool.iter_mut().find(|o| {
                o.as_ref()
                    .is_some_and(|o| o.identity() == id && same_kind(o, r))
            }) else {
                continue;
            };
            let Some(o) = slot.take() else { continue };
            match (r, o) {
                (
                    Rule::Alerting {
                        rule, prev_series, ..
                    },
                    Rule::Alerting {
                        rule: old_rule,
                        prev_series: old_prev,
                        ..
                    },
                ) => {
                    rule.active = old_rule.active;
                    rule.restored = old_rule.restored;
                    *prev_series = old_prev;
                }
                (
                    Rule::Recording { prev_series, .. },
                    Rule::Recording {
                        prev_series: old_prev,
                        ..
                    },
                ) => *prev_series = old_prev,
                _ => {}
            }
        }
        self.metrics = old.metrics;
        self.evaluations = old.evaluations;
        self.should_restore = old.should_restore;
        self.stale_on_next_eval = old.stale_on_next_eval;
        self.stale_on_next_eval
            .extend(pool.into_iter().flatten().flat_map(|r| match r {
                Rule::Recording { prev_series, .. } | Rule::Alerting { prev_series, .. } => {
                    prev_series
                }
            }));
    }

    /// Whether a rule of this group wrote `l` in its last evaluation.
    pub(crate) fn owns_series(&self, l: &Labels) -> bool {
        self.rules.iter().any(|r| match r {
            Rule::Recording { prev_series, .. } | Rule::Alerting { prev_series, .. } => {
                prev_series.contains(l)
            }
        })
    }

    /// Every series this group wrote last time (to stale-mark on removal).
    pub fn all_series(&self) -> Vec<Labels> {
        self.rules
            .iter()
            .flat_map(|r| match r {
                Rule::Recording { prev_series, .. } | Rule::Alerting { prev_series, .. } => {
                    prev_series.iter().cloned().collect::<Vec<_>>()
                }
            })
            .collect()
    }

    /// Evaluates every rule once at slot timestamp `ts` (ms). Deterministic:
    /// no clock is read except for duration metrics.
    pub fn eval(&mut self, opts: &ManagerOptions, ts: i64) {
        let started = std::time::Instant::now();
        let qt = ts - self.query_offset_ms;
        // Identical storage reads of different rules are shared within this
        // evaluation (see `select_cache`); writes invalidate what they touch.
        let (total_samples, reads) = super::select_cache::scope(|| self.eval_rules(opts, ts, qt));
        tracing::trace!(
            group = %self.name,
            shared = reads.hits,
            read = reads.misses,
            "storage reads of the evaluation"
        );
        if !self.stale_on_next_eval.is_empty() {
            let orphans = std::mem::take(&mut self.stale_on_next_eval);
            let stale: Vec<(Labels, f64)> = orphans
                .into_iter()
                .filter(|l| !self.owns_series(l))
                .map(|l| (l, stale_nan()))
                .collect();
            // A refused marker (a newer sample exists) means the series
            // was taken over: not a failure, as in Prometheus.
            let _ = write(opts, qt, &stale, &HashSet::new(), &HashSet::new());
        }
        self.evaluations += 1;
        self.metrics.iterations_total += 1;
        self.metrics.last_evaluation_ms = Some(ts);
        self.metrics.last_samples = total_samples;
        self.metrics.last_duration_seconds = started.elapsed().as_secs_f64();
        if self.should_restore && self.evaluations >= 2 {
            self.restore_for_state(opts, ts);
            self.should_restore = false;
        }
        if let Some(dir) = &opts.state_dir {
            let has_alerts = self
                .rules
                .iter()
                .any(|r| matches!(r, Rule::Alerting { .. }));
            if has_alerts && let Err(e) = super::state::save(dir, self, ts) {
                tracing::warn!(group = %self.name, "cannot persist alert state: {e}");
            }
        }
    }

    /// Evaluates every rule in order at `ts` (queries at `qt`); returns the
    /// number of samples produced.
    fn eval_rules(&mut self, opts: &ManagerOptions, ts: i64, qt: i64) -> u64 {
        let mut total_samples = 0u64;
        let limit = self.limit;
        let interval = self.interval_ms;
        let tq = template_query_for(opts);
        // ALERTS / ALERTS_FOR_STATE samples and their stale markers, when no
        // rule of the group can read them this cycle: one commit at the end.
        let defer = alerts_unread(&self.spec);
        let mut deferred: Vec<(Labels, f64)> = Vec::new();
        for rule in &mut self.rules {
            let rstart = std::time::Instant::now();
            self.metrics.evaluations_total += 1;
            let result = (opts.query)(&rule.spec().expr, qt);
            let outcome: Result<(), String> = match rule {
                Rule::Recording {
                    spec,
                    prev_series,
                    ..
                } => result.and_then(|res| {
                    let record = spec.name().to_string();
                    let mut out: Vec<(Labels, f64)> = Vec::with_capacity(res.len());
                    let mut seen = HashSet::with_capacity(res.len());
                    for (l, v) in res {
                        let mut b = l.builder();
                        b.set(METRIC_NAME, record.as_str());
                        for (k, val) in &spec.labels {
                            b.set(k.as_str(), val.as_str());
                        }
                        let l = b.build();
                        if !seen.insert(l.clone()) {
                            return Err(
                                "vector contains metrics with the same labelset after applying rule labels".into(),
                            );
                        }
                        out.push((l, v));
                    }
                    if limit > 0 && out.len() > limit {
                        return Err(format!("exceeded limit of {limit} with {} series", out.len()));
                    }
                    total_samples += out.len() as u64;
                    let failures = write(opts, qt, &out, prev_series, &seen);
                    self.metrics.append_failures_total += failures;
                    *prev_series = seen;
                    Ok(())
                }),
                Rule::Alerting {
                    rule, prev_series, ..
                } => result.and_then(|res| {
                    let inp = AlertEvalInput {
                        ts,
                        limit,
                        group_interval_ms: interval,
                        resend_delay_ms: opts.resend_delay_ms,
                        external_labels: &opts.external_labels,
                        external_url: &opts.external_url,
                        template_query: Some(tq.clone()),
                    };
                    let out = rule.eval(res, &inp)?;
                    self.metrics.template_expansion_failures_total += out.template_errors.len() as u64;
                    for e in &out.template_errors {
                        tracing::warn!(group = %self.name, "template expansion failed: {e}");
                    }
                    if !out.to_send.is_empty() {
                        (opts.notify)(out.to_send);
                    }
                    let seen: HashSet<Labels> = out.samples.iter().map(|(l, _)| l.clone()).collect();
                    total_samples += out.samples.len() as u64;
                    if defer {
                        super::select_cache::invalidate(
                            out.samples.iter().map(|(l, _)| l).chain(prev_series.difference(&seen)),
                        );
                        deferred.extend(prev_series.difference(&seen).map(|l| (l.clone(), stale_nan())));
                        deferred.extend(out.samples);
                    } else {
                        let failures = write(opts, qt, &out.samples, prev_series, &seen);
                        self.metrics.append_failures_total += failures;
                    }
                    *prev_series = seen;
                    Ok(())
                }),
            };
            let rule_name = rule.spec().name().to_string();
            let status = match rule {
                Rule::Recording { status, .. } | Rule::Alerting { status, .. } => status,
            };
            status.last_evaluation_ms = Some(ts);
            status.evaluation_seconds = rstart.elapsed().as_secs_f64();
            match outcome {
                Ok(()) => {
                    status.health = Health::Ok;
                    status.last_error = None;
                }
                Err(e) => {
                    self.metrics.evaluation_failures_total += 1;
                    tracing::warn!(group = %self.name, rule = %rule_name, "rule evaluation failed: {e}");
                    status.health = Health::Err;
                    status.last_error = Some(e);
                }
            }
        }
        if !deferred.is_empty() {
            self.metrics.append_failures_total +=
                write(opts, qt, &deferred, &HashSet::new(), &HashSet::new());
        }
        total_samples
    }

    /// Compat for-state restore (spec §2.7, `restore: prometheus`): reads
    /// `ALERTS_FOR_STATE` of each rule with `for >= grace period` over the
    /// outage tolerance and moves `active_at` of matching active alerts.
    pub fn restore_for_state(&mut self, opts: &ManagerOptions, now: i64) {
        for rule in &mut self.rules {
            let Rule::Alerting { rule, .. } = rule else {
                continue;
            };
            let (name, for_ms, _) = rule.params();
            let name = name.to_string();
            if for_ms < opts.for_grace_period_ms {
                rule.restored = true;
                continue;
            }
            let Some(q) = &opts.restore_querier else {
                rule.restored = true;
                continue;
            };
            let mut matchers = vec![
                eq_matcher(METRIC_NAME, "ALERTS_FOR_STATE"),
                eq_matcher("alertname", &name),
            ];
            for (k, t) in &rule.spec.label_templates {
                if t.is_literal() {
                    matchers.push(eq_matcher(k, t.source()));
                }
            }
            let hints = SelectHints::range(now - opts.outage_tolerance_ms, now);
            let series = match q.select(&hints, &matchers) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(group = %self.name, rule = %name, "for-state restore query failed: {e}");
                    rule.restored = true;
                    continue;
                }
            };
            for s in series {
                let (Some(&down_at), Some(&v)) = (s.timestamps.last(), s.values.last()) else {
                    continue;
                };
                if crate::model::is_stale_nan(v) {
                    continue;
                }
                let mut b = s.labels.builder();
                b.del(METRIC_NAME);
                let id = b.build();
                let Some(a) = rule.active.get_mut(&id) else {
                    continue;
                };
                let old_active = (v * 1000.0) as i64;
                let spent = down_at - old_active;
                let remaining = for_ms - spent;
                a.active_at = if remaining <= 0 {
                    old_active
                } else if remaining < opts.for_grace_period_ms {
                    now + opts.for_grace_period_ms - for_ms
                } else {
                    old_active + (now - down_at)
                };
            }
            rule.restored = true;
        }
    }
}

/// Whether no rule of the group can read the group's own `ALERTS` /
/// `ALERTS_FOR_STATE` series during an evaluation, judged from the text:
/// no expression names `ALERTS`, uses `__name__` or has a selector without
/// a metric name, and no template calls `query`. Conservative: a false
/// "may read" only costs the per-rule commits. When true, alerting rules'
/// writes are committed together at the end of the evaluation (one WAL
/// commit, and one fsync with `wal_sync: always`, instead of one per rule);
/// spec §2.1's visibility rule still holds since nothing reads them.
fn alerts_unread(spec: &GroupSpec) -> bool {
    spec.rules.iter().all(|r| {
        let templates_query = r
            .label_templates
            .iter()
            .map(|(_, t)| t)
            .chain(match &r.kind {
                RuleKind::Alerting { annotations, .. } => {
                    annotations.iter().map(|(_, t)| t).collect::<Vec<_>>()
                }
                RuleKind::Recording { .. } => Vec::new(),
            })
            .any(|t| t.source().contains("query"));
        !templates_query
            && !r.expr.contains("ALERTS")
            && !r.expr.contains("__name__")
            && !has_nameless_selector(&r.expr)
    })
}

/// A `{` not directly preceded (spaces aside) by a metric-name character
/// starts a selector without a metric name (`{job="x"}`), which may match
/// anything. Braces inside string literals count too (conservative).
pub(crate) fn has_nameless_selector(expr: &str) -> bool {
    let b = expr.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        c == b'{'
            && !b[..i]
                .iter()
                .rev()
                .find(|c| !c.is_ascii_whitespace())
                .is_some_and(|&p| p.is_ascii_alphanumeric() || p == b'_' || p == b':')
    })
}

fn same_kind(a: &Rule, b: &Rule) -> bool {
    matches!(
        (a, b),
        (Rule::Recording { .. }, Rule::Recording { .. })
            | (Rule::Alerting { .. }, Rule::Alerting { .. })
    )
}

fn eq_matcher(name: &str, value: &str) -> Matcher {
    Matcher::equal(name, value)
}

/// Appends `samples` and stale markers for series in `prev` missing from
/// `current`, in one batch at `t`. Refused samples are counted, not fatal.
fn write(
    opts: &ManagerOptions,
    t: i64,
    samples: &[(Labels, f64)],
    prev: &HashSet<Labels>,
    current: &HashSet<Labels>,
) -> u64 {
    super::select_cache::invalidate(
        samples
            .iter()
            .map(|(l, _)| l)
            .chain(prev.difference(current)),
    );
    let mut failures = 0;
    let mut app = opts.appendable.appender();
    for (l, v) in samples {
        if let Err(e) = app.append(l, t, *v) {
            tracing::debug!("rule sample refused: {e}");
            failures += 1;
        }
    }
    for l in prev.difference(current) {
        if app.append(l, t, stale_nan()).is_err() {
            failures += 1;
        }
    }
    if let Err(e) = app.commit() {
        tracing::warn!("rule output commit failed: {e}");
        failures += samples.len() as u64;
    }
    failures
}
