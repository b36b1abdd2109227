//! Prometheus-format recording and alerting rules: rule-file loading and
//! validation ([`file`]), group scheduling ([`manager`]), recording-rule
//! writes and the alert state machine ([`group`], [`alerting`]), and
//! Go-compatible templates ([`template`]).
//!
//! Seams: rules get a [`QueryFn`] (instant queries), a [`NotifyFn`]
//! (alert hand-over), an [`Appendable`] for their output and a [`Clock`];
//! they know nothing of storage internals, HTTP or delivery.

pub mod alerting;
pub mod check;
pub mod duration;
pub mod file;
pub mod group;
pub mod manager;
pub mod reload;
pub mod select_cache;
pub mod state;
pub mod template;
pub mod unittest;

#[cfg(test)]
mod lifecycle_tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::{Clock, Labels};
use crate::notify::Alert;
use crate::storage::{Appendable, Querier};

pub use alerting::{ActiveAlert, AlertState, AlertingRule};
pub use file::{
    GroupSpec, LoadOptions, RuleFile, RuleFileError, RuleKind, RuleSpec, load_globs,
    parse_rule_file,
};
pub use group::{Group, Health, Rule, RuleStatus};
pub use manager::RuleManager;

/// Instant query: expression and time (ms) to samples. A scalar result is
/// one sample with empty labels; any other non-vector result is an error
/// (`rule result is not a vector or scalar`).
pub type QueryFn = Arc<dyn Fn(&str, i64) -> Result<Vec<(Labels, f64)>, String> + Send + Sync>;

/// Receives the alerts to deliver, right after each alerting rule evaluates.
pub type NotifyFn = Arc<dyn Fn(Vec<Alert>) + Send + Sync>;

/// Everything the rule manager is given.
pub struct ManagerOptions {
    /// Instant queries for rule expressions and template `query`.
    pub query: QueryFn,
    /// Alert hand-over.
    pub notify: NotifyFn,
    /// Where recording-rule and `ALERTS` samples go.
    pub appendable: Arc<dyn Appendable>,
    /// Range reads of `ALERTS_FOR_STATE` for the for-state restore at start;
    /// `None` disables the restore.
    pub restore_querier: Option<Arc<dyn Querier>>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// `global.evaluation_interval` (ms).
    pub evaluation_interval_ms: i64,
    /// `global.rule_query_offset` (ms).
    pub query_offset_ms: i64,
    /// Minimum time between re-sends of a firing alert (ms).
    pub resend_delay_ms: i64,
    /// How far back the restore looks (ms).
    pub outage_tolerance_ms: i64,
    /// Rules with `for` below this are not restored (ms).
    pub for_grace_period_ms: i64,
    /// Directory for exact alert-state snapshots (`<data>/rules`); `None`
    /// disables them (then only the compat restore can run).
    pub state_dir: Option<std::path::PathBuf>,
    /// `$externalLabels` for templates.
    pub external_labels: BTreeMap<String, String>,
    /// `$externalURL` and the generator URL base.
    pub external_url: String,
}

impl ManagerOptions {
    /// Options with Prometheus's defaults (interval 1m, resend 1m, outage
    /// tolerance 1h, grace period 10m, no query offset).
    pub fn new(
        query: QueryFn,
        notify: NotifyFn,
        appendable: Arc<dyn Appendable>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        ManagerOptions {
            query,
            notify,
            appendable,
            restore_querier: None,
            clock,
            evaluation_interval_ms: 60_000,
            query_offset_ms: 0,
            resend_delay_ms: 60_000,
            outage_tolerance_ms: 3_600_000,
            for_grace_period_ms: 600_000,
            state_dir: None,
            external_labels: BTreeMap::new(),
            external_url: String::new(),
        }
    }
}

pub(crate) fn template_query_for(opts: &ManagerOptions) -> template::TemplateQueryFn {
    alerting::template_query(Arc::clone(&opts.query))
}

/// A [`QueryFn`] over the PromQL engine and a querier: parses each distinct
/// expression once (cached), evaluates it as an instant query, and turns a
/// scalar into one label-less sample. Other result types are an error.
/// Reads go through [`select_cache::SharedSelects`], so rules of one group
/// evaluation that read the same series share one storage read.
pub fn engine_query_fn(engine: crate::promql::Engine, querier: Arc<dyn Querier>) -> QueryFn {
    let querier: Arc<dyn Querier> = Arc::new(select_cache::SharedSelects::new(querier));
    let cache: parking_lot::Mutex<
        std::collections::HashMap<String, Arc<crate::promql::ast::Expr>>,
    > = parking_lot::Mutex::new(std::collections::HashMap::new());
    Arc::new(move |q: &str, t: i64| {
        let expr = {
            let mut c = cache.lock();
            match c.get(q) {
                Some(e) => Arc::clone(e),
                None => {
                    let e = Arc::new(crate::promql::parse(q).map_err(|e| e.to_string())?);
                    c.insert(q.to_string(), Arc::clone(&e));
                    e
                }
            }
        };
        let res = engine
            .instant(querier.as_ref(), &expr, t)
            .map_err(|e| e.to_string())?;
        match res.value {
            crate::promql::Value::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.v)).collect()),
            crate::promql::Value::Scalar { v, .. } => Ok(vec![(Labels::empty(), v)]),
            _ => Err("rule result is not a vector or scalar".into()),
        }
    })
}
