//! `GET /api/v1/rules` and `GET /api/v1/alerts` in Prometheus's JSON
//! layout, read from the running [`RuleManager`].

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::response::Response;

use super::error::ApiError;
use super::handlers::json_ok;
use super::json;
use super::params::format_rfc3339;
use super::state::{AppState, MetricSample};
use crate::ingest::text::float::format_e;
use crate::notify::Notifier;
use crate::rules::{ActiveAlert, AlertState, Group, Health, Rule, RuleKind, RuleManager};

/// Go's zero time, which Prometheus prints for never-evaluated rules.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time_or_zero(ms: Option<i64>) -> String {
    ms.map_or_else(|| ZERO_TIME.to_string(), format_rfc3339)
}

fn write_map<'a>(out: &mut String, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
    out.push('{');
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::write_str(out, k);
        out.push(':');
        json::write_str(out, v);
    }
    out.push('}');
}

fn write_alert(out: &mut String, a: &ActiveAlert) {
    out.push_str("{\"labels\":");
    json::write_labels(out, &a.labels);
    out.push_str(",\"annotations\":");
    write_map(
        out,
        a.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    out.push_str(",\"state\":");
    json::write_str(out, a.state.as_str());
    out.push_str(",\"activeAt\":");
    json::write_str(out, &format_rfc3339(a.active_at));
    out.push_str(",\"value\":");
    json::write_str(out, &format_e(a.value));
    out.push('}');
}

/// Alerts worth listing: pending or firing, in label order.
fn listed(alerts: &HashMap<crate::model::Labels, ActiveAlert>) -> Vec<&ActiveAlert> {
    let mut v: Vec<&ActiveAlert> = alerts
        .values()
        .filter(|a| a.state != AlertState::Inactive)
        .collect();
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    v
}

fn write_rule(out: &mut String, r: &Rule) {
    let spec = r.spec();
    let st = r.status();
    out.push('{');
    if let (
        Rule::Alerting { rule, .. },
        RuleKind::Alerting {
            for_ms,
            keep_firing_for_ms,
            annotations,
            ..
        },
    ) = (r, &spec.kind)
    {
        out.push_str("\"state\":");
        json::write_str(out, rule.state().as_str());
        out.push(',');
        out.push_str("\"name\":");
        json::write_str(out, spec.name());
        out.push_str(",\"query\":");
        json::write_str(out, &spec.expr);
        let _ = write!(
            out,
            ",\"duration\":{},\"keepFiringFor\":{}",
            for_ms / 1000,
            keep_firing_for_ms / 1000
        );
        out.push_str(",\"labels\":");
        write_map(
            out,
            spec.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        out.push_str(",\"annotations\":");
        write_map(
            out,
            annotations.iter().map(|(k, t)| (k.as_str(), t.source())),
        );
        out.push_str(",\"alerts\":[");
        for (i, a) in listed(&rule.active).into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_alert(out, a);
        }
        out.push(']');
    } else {
        out.push_str("\"name\":");
        json::write_str(out, spec.name());
        out.push_str(",\"query\":");
        json::write_str(out, &spec.expr);
        out.push_str(",\"labels\":");
        write_map(
            out,
            spec.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
    }
    out.push_str(",\"health\":");
    json::write_str(
        out,
        match st.health {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        },
    );
    if let Some(e) = &st.last_error {
        out.push_str(",\"lastError\":");
        json::write_str(out, e);
    }
    let _ = write!(out, ",\"evaluationTime\":{}", st.evaluation_seconds);
    out.push_str(",\"lastEvaluation\":");
    json::write_str(out, &time_or_zero(st.last_evaluation_ms));
    out.push_str(",\"type\":");
    json::write_str(
        out,
        match r {
            Rule::Alerting { .. } => "alerting",
            Rule::Recording { .. } => "recording",
        },
    );
    out.push('}');
}

fn write_group(out: &mut String, g: &Group, want: Option<&str>) {
    out.push_str("{\"name\":");
    json::write_str(out, &g.name);
    out.push_str(",\"file\":");
    json::write_str(out, &g.file.display().to_string());
    out.push_str(",\"rules\":[");
    let mut first = true;
    for r in &g.rules {
        let kind = match r {
            Rule::Alerting { .. } => "alert",
            Rule::Recording { .. } => "record",
        };
        if want.is_some_and(|w| w != kind) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_rule(out, r);
    }
    let _ = write!(
        out,
        "],\"interval\":{},\"limit\":{},\"evaluationTime\":{},\"lastEvaluation\":",
        g.interval_ms as f64 / 1000.0,
        g.limit,
        g.metrics.last_duration_seconds
    );
    json::write_str(out, &time_or_zero(g.metrics.last_evaluation_ms));
    out.push('}');
}

/// `GET /api/v1/rules[?type=alert|record]`.
pub async fn rules(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let want = match q.get("type").map(String::as_str) {
        None | Some("") => None,
        Some(t @ ("alert" | "record")) => Some(t.to_string()),
        Some(t) => {
            return Err(ApiError::bad_data(format!(
                "invalid query parameter type='{t}', must be one of 'alert' or 'record'"
            )));
        }
    };
    let mut d = String::from("{\"groups\":[");
    if let Some(m) = s.rules() {
        let groups = m.with_groups(|g| {
            let mut out = String::new();
            write_group(&mut out, g, want.as_deref());
            out
        });
        d.push_str(&groups.join(","));
    }
    d.push_str("]}");
    Ok(json_ok(&d, &[], &[]))
}

/// `GET /api/v1/alerts`: every pending or firing alert.
pub async fn alerts(State(s): State<AppState>) -> Result<Response, ApiError> {
    let mut d = String::from("{\"alerts\":[");
    if let Some(m) = s.rules() {
        let parts = m.with_groups(|g| {
            let mut out = Vec::new();
            for r in &g.rules {
                if let Rule::Alerting { rule, .. } = r {
                    for a in listed(&rule.active) {
                        let mut x = String::new();
                        write_alert(&mut x, a);
                        out.push(x);
                    }
                }
            }
            out
        });
        d.push_str(&parts.into_iter().flatten().collect::<Vec<_>>().join(","));
    }
    d.push_str("]}");
    Ok(json_ok(&d, &[], &[]))
}

fn sample(
    name: &str,
    help: &str,
    counter: bool,
    labels: &[(&str, &str)],
    value: f64,
) -> MetricSample {
    MetricSample {
        name: name.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        help: help.to_string(),
        counter,
        value,
    }
}

/// Rule-group metrics with Prometheus's names (`prometheus_rule_group_*`,
/// `prometheus_rule_evaluation*`), labelled `rule_group="<file>;<name>"`.
pub fn rule_metrics(m: &RuleManager) -> Vec<MetricSample> {
    m.with_groups(|g| {
        let key = format!("{};{}", g.file.display(), g.name);
        let l = [("rule_group", key.as_str())];
        let gm = &g.metrics;
        vec![
            sample(
                "prometheus_rule_group_iterations",
                "Scheduled group evaluations, run or missed.",
                true,
                &l,
                gm.iterations_total as f64,
            ),
            sample(
                "prometheus_rule_group_iterations_missed",
                "Group evaluations skipped because one ran too long.",
                true,
                &l,
                gm.iterations_missed_total as f64,
            ),
            sample(
                "prometheus_rule_evaluations",
                "Rule evaluations.",
                true,
                &l,
                gm.evaluations_total as f64,
            ),
            sample(
                "prometheus_rule_evaluation_failures",
                "Failed rule evaluations.",
                true,
                &l,
                gm.evaluation_failures_total as f64,
            ),
            sample(
                "prometheus_rule_group_last_duration_seconds",
                "Duration of the last group evaluation.",
                false,
                &l,
                gm.last_duration_seconds,
            ),
            sample(
                "prometheus_rule_group_last_evaluation_timestamp_seconds",
                "When the group last ran (0 = never).",
                false,
                &l,
                gm.last_evaluation_ms.map_or(0.0, |t| t as f64 / 1000.0),
            ),
            sample(
                "prometheus_rule_group_last_evaluation_samples",
                "Samples the last group evaluation produced.",
                false,
                &l,
                gm.last_samples as f64,
            ),
            sample(
                "prometheus_rule_group_interval_seconds",
                "Group evaluation interval.",
                false,
                &l,
                g.interval_ms as f64 / 1000.0,
            ),
            sample(
                "prometheus_rule_group_rules",
                "Rules in the group.",
                false,
                &l,
                g.rules.len() as f64,
            ),
        ]
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Alert delivery metrics with Prometheus's names
/// (`prometheus_notifications_*`), labelled `alertmanager="<host:port>"`.
pub fn notifier_metrics(n: &Notifier) -> Vec<MetricSample> {
    use std::sync::atomic::Ordering::Relaxed;
    let queues = n.queue_lengths();
    let mut out = Vec::new();
    for (i, (addr, m)) in n.metrics().into_iter().enumerate() {
        let l = [("alertmanager", addr.as_str())];
        out.push(sample(
            "prometheus_notifications_sent",
            "Alerts delivered to Alertmanager.",
            true,
            &l,
            m.sent.load(Relaxed) as f64,
        ));
        out.push(sample(
            "prometheus_notifications_errors",
            "Alerts in failed sends to Alertmanager.",
            true,
            &l,
            m.errors.load(Relaxed) as f64,
        ));
        out.push(sample(
            "prometheus_notifications_dropped",
            "Alerts dropped (queue overflow or failed send).",
            true,
            &l,
            m.dropped.load(Relaxed) as f64,
        ));
        out.push(sample(
            "prometheus_notifications_queue_length",
            "Alerts waiting to be sent.",
            false,
            &l,
            queues.get(i).copied().unwrap_or(0) as f64,
        ));
    }
    out.push(sample(
        "prometheus_notifications_alertmanagers_discovered",
        "Configured Alertmanagers.",
        false,
        &[],
        queues.len() as f64,
    ));
    out
}
