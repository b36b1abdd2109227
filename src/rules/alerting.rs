//! The alerting-rule state machine (spec §2.3–2.8): building alert
//! instances from a query result, pending → firing → resolved with `for`
//! and `keep_firing_for`, the `ALERTS`/`ALERTS_FOR_STATE` samples, and the
//! choice of alerts to (re)send. All times are evaluation timestamps in ms.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::model::{Labels, LabelsBuilder, METRIC_NAME};
use crate::notify::Alert;

use super::file::{RuleKind, RuleSpec};
use super::template::{ExpandContext, QuerySample, TemplateData, TemplateQueryFn};

/// A resolved alert is kept (and re-sent) this long after resolution (ms).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// Alert states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertState {
    /// Resolved (kept for re-sending) or never active.
    Inactive,
    /// Condition true, waiting for `for`.
    Pending,
    /// Firing.
    Firing,
}

impl AlertState {
    /// Prometheus's lower-case name (`inactive`, `pending`, `firing`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert instance of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlert {
    /// State.
    pub state: AlertState,
    /// Final labels (identity).
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: BTreeMap<String, String>,
    /// Last value.
    pub value: f64,
    /// When it became pending.
    pub active_at: i64,
    /// When it started firing.
    pub fired_at: Option<i64>,
    /// When it resolved.
    pub resolved_at: Option<i64>,
    /// Last hand-over to the notifier.
    pub last_sent_at: Option<i64>,
    /// `endsAt` of the last send while firing.
    pub valid_until: Option<i64>,
    /// First evaluation without the series while kept firing.
    pub keep_firing_since: Option<i64>,
}

impl ActiveAlert {
    fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        if let Some(r) = self.resolved_at
            && self.last_sent_at.is_none_or(|s| r > s)
        {
            return true;
        }
        match self.last_sent_at {
            None => true,
            Some(s) => s + resend_delay_ms < ts,
        }
    }
}

/// Per-evaluation inputs shared by the rules of a group.
pub(crate) struct AlertEvalInput<'a> {
    pub ts: i64,
    pub limit: usize,
    pub group_interval_ms: i64,
    pub resend_delay_ms: i64,
    pub external_labels: &'a BTreeMap<String, String>,
    pub external_url: &'a str,
    pub template_query: Option<TemplateQueryFn>,
}

/// What one successful evaluation produced.
pub(crate) struct AlertEvalOutput {
    /// `ALERTS` and `ALERTS_FOR_STATE` samples (labels, value).
    pub samples: Vec<(Labels, f64)>,
    /// Alerts to hand to the notifier.
    pub to_send: Vec<Alert>,
    /// Template expansion failures (already rendered into the values).
    pub template_errors: Vec<String>,
}

/// An alerting rule and its alerts.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    /// The rule as loaded.
    pub spec: Arc<RuleSpec>,
    /// Alerts by identity.
    pub active: HashMap<Labels, ActiveAlert>,
    /// False until for-state restore ran (no ALERTS samples until then).
    pub restored: bool,
}

fn to_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|x| (x.name.to_string(), x.value.to_string()))
        .collect()
}

impl AlertingRule {
    /// A rule with no alerts.
    pub fn new(spec: Arc<RuleSpec>, restored: bool) -> Self {
        AlertingRule {
            spec,
            active: HashMap::new(),
            restored,
        }
    }

    /// `(alert name, for, keep_firing_for)`.
    pub fn params(&self) -> (&str, i64, i64) {
        match &self.spec.kind {
            RuleKind::Alerting {
                alert,
                for_ms,
                keep_firing_for_ms,
                ..
            } => (alert, *for_ms, *keep_firing_for_ms),
            RuleKind::Recording { record } => (record, 0, 0),
        }
    }

    /// Rule state for APIs: the maximum over its alerts.
    pub fn state(&self) -> AlertState {
        self.active
            .values()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }

    /// Runs one evaluation on a query result (spec §2.3–2.8). On error the
    /// state is untouched, except for the limit error, which clears it.
    pub(crate) fn eval(
        &mut self,
        result: Vec<(Labels, f64)>,
        inp: &AlertEvalInput<'_>,
    ) -> Result<AlertEvalOutput, String> {
        let ts = inp.ts;
        let (alert_name, for_ms, keep_ms) = {
            let (a, f, k) = self.params();
            (a.to_string(), f, k)
        };
        let annotations_t = match &self.spec.kind {
            RuleKind::Alerting { annotations, .. } => annotations.clone(),
            RuleKind::Recording { .. } => Vec::new(),
        };
        let mut template_errors = Vec::new();
        // 1. Build instances; detect duplicates before touching state.
        let mut produced: Vec<(Labels, BTreeMap<String, String>, f64)> =
            Vec::with_capacity(result.len());
        let mut seen: HashMap<Labels, ()> = HashMap::with_capacity(result.len());
        for (labels, value) in result {
            let ctx = ExpandContext {
                data: TemplateData {
                    labels: to_map(&labels),
                    external_labels: inp.external_labels.clone(),
                    external_url: inp.external_url.to_string(),
                    value,
                },
                ts_ms: ts,
                query: inp.template_query.clone(),
            };
            let mut b: LabelsBuilder = labels.builder();
            b.del(METRIC_NAME);
            for (name, t) in &self.spec.label_templates {
                let (v, err) = t.expand(&ctx);
                if let Some(e) = err {
                    template_errors.push(format!("alert {alert_name:?}, label {name:?}: {e}"));
                }
                if v.is_empty() {
                    b.del(name);
                } else {
                    b.set(name.as_str(), v);
                }
            }
            b.set("alertname", alert_name.as_str());
            let final_labels = b.build();
            let mut annotations = BTreeMap::new();
            for (name, t) in &annotations_t {
                let (v, err) = t.expand(&ctx);
                if let Some(e) = err {
                    template_errors.push(format!("alert {alert_name:?}, annotation {name:?}: {e}"));
                }
                annotations.insert(name.clone(), v);
            }
            if seen.insert(final_labels.clone(), ()).is_some() {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            produced.push((final_labels, annotations, value));
        }
        // 2. State machine.
        for (labels, annotations, value) in produced {
            match self.active.get_mut(&labels) {
                Some(a) if a.state != AlertState::Inactive => {
                    a.value = value;
                    a.annotations = annotations;
                }
                _ => {
                    self.active.insert(
                        labels.clone(),
                        ActiveAlert {
                            state: AlertState::Pending,
                            labels,
                            annotations,
                            value,
                            active_at: ts,
                            fired_at: None,
                            resolved_at: None,
                            last_sent_at: None,
                            valid_until: None,
                            keep_firing_since: None,
                        },
                    );
                }
            }
        }
        let mut counted = 0usize;
        let mut samples = Vec::new();
        let mut remove = Vec::new();
        for (id, a) in self.active.iter_mut() {
            if !seen.contains_key(id) {
                let mut keep = false;
                if a.state == AlertState::Firing && keep_ms > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep = ts - since < keep_ms;
                }
                if a.state == AlertState::Pending
                    || a.resolved_at
                        .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
                {
                    remove.push(id.clone());
                    continue;
                }
                if a.state != AlertState::Inactive && !keep {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            counted += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= for_ms {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            if a.state == AlertState::Firing && ts - a.active_at < for_ms {
                // `for` was raised by a reload: back to pending, silently.
                a.state = AlertState::Pending;
                a.fired_at = None;
                a.last_sent_at = None;
                a.keep_firing_since = None;
            }
            if self.restored {
                let mut b = a.labels.builder();
                b.set(METRIC_NAME, "ALERTS");
                b.set("alertname", alert_name.as_str());
                b.set("alertstate", a.state.as_str());
                samples.push((b.build(), 1.0));
                let mut f = a.labels.builder();
                f.set(METRIC_NAME, "ALERTS_FOR_STATE");
                f.set("alertname", alert_name.as_str());
                samples.push((f.build(), a.active_at as f64 / 1000.0));
            }
        }
        for id in remove {
            self.active.remove(&id);
        }
        if inp.limit > 0 && counted > inp.limit {
            self.active.clear();
            return Err(format!(
                "exceeded limit of {} with {counted} alerts",
                inp.limit
            ));
        }
        // 3. Sending.
        let delta = inp.group_interval_ms.max(inp.resend_delay_ms);
        let url = format!(
            "{}/graph?g0.expr={}&g0.tab=1",
            inp.external_url.trim_end_matches('/'),
            super::template::query_escape(self.spec.expr.trim())
        );
        let mut to_send = Vec::new();
        let mut ids: Vec<&Labels> = self.active.keys().collect();
        ids.sort();
        let ids: Vec<Labels> = ids.into_iter().cloned().collect();
        for id in ids {
            let Some(a) = self.active.get_mut(&id) else {
                continue;
            };
            if !a.needs_sending(ts, inp.resend_delay_ms) {
                continue;
            }
            a.last_sent_at = Some(ts);
            a.valid_until = Some(ts + 4 * delta);
            to_send.push(Alert {
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at_ms: a.fired_at.unwrap_or(a.active_at),
                ends_at_ms: a.resolved_at.unwrap_or(ts + 4 * delta),
                generator_url: url.clone(),
            });
        }
        Ok(AlertEvalOutput {
            samples,
            to_send,
            template_errors,
        })
    }
}

/// Wraps a rule query function as the template `query` function.
pub(crate) fn template_query(q: super::QueryFn) -> TemplateQueryFn {
    Arc::new(move |expr: &str, t: i64| {
        let res = q(expr, t)?;
        Ok(res
            .into_iter()
            .map(|(l, v)| QuerySample {
                labels: to_map(&l),
                value: v,
            })
            .collect())
    })
}
