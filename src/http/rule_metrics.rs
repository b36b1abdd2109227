//! Rule-group, rule-reload and notifier self-metrics on `/metrics`, with
//! Prometheus's names so existing dashboards and alerts on them work:
//! `prometheus_rule_*` labelled by `rule_group="<file>;<group>"`,
//! `prometheus_config_last_reload_*`, and `prometheus_notifications_*`.
//! Values are read at scrape time from the running components.

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::notify::Notifier;
use crate::rules::RuleManager;
use crate::rules::reload::Reloader;

/// The components whose metrics are exported; each is set once it runs.
#[derive(Debug, Default)]
pub struct RuleSources {
    rules: OnceLock<Arc<RuleManager>>,
    reloader: OnceLock<Arc<Reloader>>,
    notifier: OnceLock<Arc<Notifier>>,
}

impl RuleSources {
    /// Exports the rule groups' metrics.
    pub fn set_rules(&self, m: Arc<RuleManager>) {
        let _ = self.rules.set(m);
    }
    /// Exports the reload status (also sets the rules from it).
    pub fn set_reloader(&self, r: Arc<Reloader>) {
        self.set_rules(r.manager().clone());
        let _ = self.reloader.set(r);
    }
    /// Exports the Alertmanager sender's metrics.
    pub fn set_notifier(&self, n: Arc<Notifier>) {
        let _ = self.notifier.set(n);
    }
}

/// Registered once in the server registry; reads [`RuleSources`].
#[derive(Debug)]
pub(super) struct RuleCollector(pub(super) Arc<RuleSources>);

type Rows = Vec<(Vec<(String, String)>, f64)>;

fn family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    counter: bool,
    rows: &Rows,
) -> Result<(), std::fmt::Error> {
    let kind = if counter {
        MetricType::Counter
    } else {
        MetricType::Gauge
    };
    // The encoder appends `_total` to counters itself.
    let name = if counter {
        name.strip_suffix("_total").unwrap_or(name)
    } else {
        name
    };
    let mut fam = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in rows {
        let m = fam.encode_family(labels)?;
        if counter {
            ConstCounter::new(*v).encode(m)?;
        } else {
            ConstGauge::new(*v).encode(m)?;
        }
    }
    Ok(())
}

impl Collector for RuleCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let src = &self.0;
        if let Some(m) = src.rules.get() {
            // One row per group per metric, in group key order.
            let per_group = m.with_groups(|g| {
                let key = format!("{};{}", g.file.display(), g.name);
                let gm = &g.metrics;
                (
                    vec![("rule_group".to_string(), key)],
                    [
                        gm.evaluations_total as f64,
                        gm.evaluation_failures_total as f64,
                        gm.iterations_missed_total as f64,
                        gm.iterations_total as f64,
                        gm.last_duration_seconds,
                        g.interval_ms as f64 / 1000.0,
                        g.rules.len() as f64,
                        gm.last_evaluation_ms.map_or(0.0, |t| t as f64 / 1000.0),
                        gm.last_samples as f64,
                    ],
                )
            });
            let metrics: [(&str, &str, bool); 9] = [
                (
                    "prometheus_rule_evaluations_total",
                    "The total number of rule evaluations.",
                    true,
                ),
                (
                    "prometheus_rule_evaluation_failures_total",
                    "The total number of rule evaluation failures.",
                    true,
                ),
                (
                    "prometheus_rule_group_iterations_missed_total",
                    "The total number of rule group evaluations missed due to slow rule group evaluation.",
                    true,
                ),
                (
                    "prometheus_rule_group_iterations_total",
                    "The total number of scheduled rule group evaluations, whether executed or missed.",
                    true,
                ),
                (
                    "prometheus_rule_group_last_duration_seconds",
                    "The duration of the last rule group evaluation.",
                    false,
                ),
                (
                    "prometheus_rule_group_interval_seconds",
                    "The interval of a rule group.",
                    false,
                ),
                ("prometheus_rule_group_rules", "The number of rules.", false),
                (
                    "prometheus_rule_group_last_evaluation_timestamp_seconds",
                    "The timestamp of the last rule group evaluation in seconds.",
                    false,
                ),
                (
                    "prometheus_rule_group_last_evaluation_samples",
                    "The number of samples returned during the last rule group evaluation.",
                    false,
                ),
            ];
            for (i, (name, help, counter)) in metrics.iter().enumerate() {
                let rows: Rows = per_group.iter().map(|(l, v)| (l.clone(), v[i])).collect();
                family(&mut enc, name, help, *counter, &rows)?;
            }
        }
        if let Some(r) = src.reloader.get() {
            let st = r.status();
            let none = Vec::new();
            family(
                &mut enc,
                "prometheus_config_last_reload_successful",
                "Whether the last configuration (rule files) reload attempt was successful.",
                false,
                &vec![(none.clone(), if st.last_successful { 1.0 } else { 0.0 })],
            )?;
            family(
                &mut enc,
                "prometheus_config_last_reload_success_timestamp_seconds",
                "Timestamp of the last successful configuration (rule files) reload.",
                false,
                &vec![(none.clone(), st.last_success_ms as f64 / 1000.0)],
            )?;
            family(
                &mut enc,
                "watchpost_rules_reload_failures",
                "Rule file reloads that failed validation (previous rules kept).",
                true,
                &vec![(none, st.failures_total as f64)],
            )?;
        }
        if let Some(n) = src.notifier.get() {
            let per: Vec<(String, u64, u64, u64)> = n
                .metrics()
                .into_iter()
                .map(|(a, m)| {
                    use std::sync::atomic::Ordering::Relaxed;
                    (
                        a,
                        m.sent.load(Relaxed),
                        m.errors.load(Relaxed),
                        m.dropped.load(Relaxed),
                    )
                })
                .collect();
            let lbl = |a: &str| vec![("alertmanager".to_string(), a.to_string())];
            let sent: Rows = per.iter().map(|p| (lbl(&p.0), p.1 as f64)).collect();
            let errors: Rows = per.iter().map(|p| (lbl(&p.0), p.2 as f64)).collect();
            let dropped = per.iter().fold(0.0, |a, p| a + p.3 as f64);
            let queued = n.queue_lengths().iter().fold(0.0, |a, &q| a + q as f64);
            family(
                &mut enc,
                "prometheus_notifications_sent",
                "Total number of alerts sent.",
                true,
                &sent,
            )?;
            family(
                &mut enc,
                "prometheus_notifications_errors",
                "Total number of errors sending alert notifications.",
                true,
                &errors,
            )?;
            family(
                &mut enc,
                "prometheus_notifications_dropped",
                "Total number of alerts dropped due to errors when sending to Alertmanager.",
                true,
                &vec![(Vec::new(), dropped)],
            )?;
            family(
                &mut enc,
                "prometheus_notifications_queue_length",
                "The number of alert notifications in the queue.",
                false,
                &vec![(Vec::new(), queued)],
            )?;
            family(
                &mut enc,
                "prometheus_notifications_alertmanagers_discovered",
                "The number of alertmanagers discovered and active.",
                false,
                &vec![(Vec::new(), per.len() as f64)],
            )?;
        }
        Ok(())
    }
}
