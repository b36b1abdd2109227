//! The alert value handed from the rule evaluator to delivery, shaped like
//! one element of Alertmanager's `POST /api/v2/alerts` body (spec §4.3).

use std::collections::BTreeMap;

use crate::model::Labels;

/// One alert to deliver. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Identifying labels (`alertname` included; external labels are added
    /// by the sender, only for names the alert does not have).
    pub labels: Labels,
    /// Expanded annotations (empty values kept).
    pub annotations: BTreeMap<String, String>,
    /// When the alert started firing (`fired_at`, not when it became pending).
    pub starts_at_ms: i64,
    /// Resolution time for a resolved alert; otherwise the time until which
    /// the alert is valid without a resend (send time + 4 × max(interval,
    /// resend delay)).
    pub ends_at_ms: i64,
    /// Link back to the expression (`<external URL>/graph?g0.expr=...&g0.tab=1`).
    pub generator_url: String,
}

impl Alert {
    /// True when this alert reports a resolution at or before `now_ms`.
    pub fn is_resolved_at(&self, now_ms: i64) -> bool {
        self.ends_at_ms <= now_ms
    }
}
