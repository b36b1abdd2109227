//! Alert lifecycle and recording-rule tests over simulated time (spec §8.1,
//! §8.3 R01–R03). No sleeping: evaluations are driven with `eval_once` /
//! `run_due` and a `ManualClock`.

#[path = "reload_tests.rs"]
mod reload_tests;
#[path = "write_tests.rs"]
mod write_tests;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use super::*;
use crate::model::{HistogramSample, ManualClock, Matcher, is_stale_nan};
use crate::storage::{
    AppendError, Appender, CommitSummary, HistogramSeries, SelectHints, Series, StorageError,
};

const M: i64 = 60_000;

/// Committed samples, in commit order.
#[derive(Default)]
struct Store {
    samples: Mutex<Vec<(Labels, i64, f64)>>,
    /// Commits that carried at least one sample.
    commits: std::sync::atomic::AtomicUsize,
}

struct Batch<'a> {
    store: &'a Store,
    buf: Vec<(Labels, i64, f64)>,
}

impl Appender for Batch<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), AppendError> {
        self.buf.push((labels.clone(), t, v));
        Ok(())
    }
    fn append_histogram(
        &mut self,
        _: &Labels,
        _: i64,
        _: &HistogramSample,
    ) -> Result<(), AppendError> {
        unreachable!("rules write floats only")
    }
    fn commit(self: Box<Self>) -> Result<CommitSummary, StorageError> {
        let n = self.buf.len() as u64;
        if n > 0 {
            self.store
                .commits
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.store.samples.lock().extend(self.buf);
        Ok(CommitSummary {
            float_samples: n,
            ..Default::default()
        })
    }
    fn rollback(self: Box<Self>) {}
}

impl crate::storage::Appendable for Store {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(Batch {
            store: self,
            buf: Vec::new(),
        })
    }
}

impl crate::storage::Querier for Store {
    fn select(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series>, StorageError> {
        let mut by: BTreeMap<Labels, Series> = BTreeMap::new();
        for (l, t, v) in self.samples.lock().iter() {
            if *t < hints.min_t || *t > hints.max_t {
                continue;
            }
            if !matchers
                .iter()
                .all(|m| m.matches(l.get(&m.name).unwrap_or("")))
            {
                continue;
            }
            let s = by.entry(l.clone()).or_insert_with(|| Series {
                labels: l.clone(),
                timestamps: vec![],
                values: vec![],
            });
            s.timestamps.push(*t);
            s.values.push(*v);
        }
        Ok(by.into_values().collect())
    }
    fn select_histograms(
        &self,
        _: &SelectHints,
        _: &[Matcher],
    ) -> Result<Vec<HistogramSeries>, StorageError> {
        Ok(vec![])
    }
    fn label_names(&self, _: &SelectHints, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(vec![])
    }
    fn label_values(
        &self,
        _: &str,
        _: &SelectHints,
        _: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        Ok(vec![])
    }
}

impl Store {
    /// Samples of series whose printed form is `series`, as (t, v).
    fn series(&self, series: &str) -> Vec<(i64, f64)> {
        self.samples
            .lock()
            .iter()
            .filter(|(l, _, _)| l.to_string() == series)
            .map(|(_, t, v)| (*t, *v))
            .collect()
    }
    fn value_at(&self, series: &str, t: i64) -> Option<f64> {
        self.series(series)
            .into_iter()
            .find(|(st, _)| *st == t)
            .map(|x| x.1)
    }
}

/// A scripted query result: `f(expr, t)`.
type Script = Arc<dyn Fn(&str, i64) -> Result<Vec<(Labels, f64)>, String> + Send + Sync>;

struct Harness {
    mgr: RuleManager,
    store: Arc<Store>,
    sent: Arc<Mutex<Vec<(i64, Alert)>>>,
    clock: ManualClock,
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn harness_with(
    rules_yaml: &str,
    script: Script,
    tweak: impl FnOnce(&mut ManagerOptions),
) -> Harness {
    let store = Arc::new(Store::default());
    let sent: Arc<Mutex<Vec<(i64, Alert)>>> = Arc::default();
    let clock = ManualClock::new(0);
    let sent2 = Arc::clone(&sent);
    let clock2 = clock.clone();
    let notify: NotifyFn = Arc::new(move |alerts: Vec<Alert>| {
        let now = crate::model::Clock::now_ms(&clock2);
        sent2.lock().extend(alerts.into_iter().map(|a| (now, a)));
    });
    let mut opts = ManagerOptions::new(script, notify, store.clone(), Arc::new(clock.clone()));
    opts.external_url = "http://mon:9090".into();
    tweak(&mut opts);
    let file = parse_rule_file(Path::new("r.yml"), rules_yaml, &LoadOptions::default()).unwrap();
    let mgr = RuleManager::new(opts);
    mgr.update(vec![file]);
    Harness {
        mgr,
        store,
        sent,
        clock,
    }
}

fn harness(rules_yaml: &str, script: Script) -> Harness {
    harness_with(rules_yaml, script, |_| {})
}

impl Harness {
    /// Evaluates group `g` at minute `m` (clock set there too).
    fn eval_min(&self, g: &str, m: i64) {
        self.clock.set(m * M);
        assert!(self.mgr.eval_once(g, m * M));
    }
    fn alerts(&self, g: &str) -> Vec<ActiveAlert> {
        let mut out = Vec::new();
        self.mgr.with_groups(|grp| {
            if grp.name == g {
                for r in &grp.rules {
                    if let Rule::Alerting { rule, .. } = r {
                        out.extend(rule.active.values().cloned());
                    }
                }
            }
        });
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
    fn status(&self, g: &str, i: usize) -> RuleStatus {
        self.mgr
            .with_groups(|grp| (grp.name == g).then(|| grp.rules[i].status().clone()))
            .into_iter()
            .flatten()
            .next()
            .unwrap()
    }
    fn sent_at(&self) -> Vec<i64> {
        self.sent.lock().iter().map(|(t, _)| t / M).collect()
    }
}

/// `up{i="a"} == 0` true during the given minutes.
fn true_during(minutes: &'static [std::ops::RangeInclusive<i64>]) -> Script {
    Arc::new(move |_e: &str, t: i64| {
        let m = t / M;
        if minutes.iter().any(|r| r.contains(&m)) {
            Ok(vec![(l(&[("__name__", "up"), ("i", "a")]), 0.0)])
        } else {
            Ok(vec![])
        }
    })
}

fn alert_rule(extra: &str) -> String {
    format!(
        "groups:\n- name: g\n  interval: 1m\n  rules:\n  - alert: Down\n    expr: up == 0\n{extra}    annotations:\n      summary: 'value {{{{ $value }}}} on {{{{ $labels.i }}}}'\n"
    )
}

const ALERTS_FIRING: &str = r#"ALERTS{alertname="Down", alertstate="firing", i="a"}"#;
const ALERTS_PENDING: &str = r#"ALERTS{alertname="Down", alertstate="pending", i="a"}"#;

#[test]
fn e01_for_zero_fires_immediately() {
    let h = harness(&alert_rule(""), true_during(&[0..=100]));
    h.eval_min("g", 0);
    let a = h.alerts("g");
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].state, AlertState::Firing);
    let sent = h.sent.lock().clone();
    assert_eq!(sent.len(), 1);
    let (_, al) = &sent[0];
    assert_eq!((al.starts_at_ms, al.ends_at_ms), (0, 4 * M));
    assert_eq!(al.labels, l(&[("alertname", "Down"), ("i", "a")]));
    assert_eq!(
        al.annotations.get("summary").map(String::as_str),
        Some("value 0 on a")
    );
    assert_eq!(
        al.generator_url,
        "http://mon:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
    );
    assert_eq!(h.store.value_at(ALERTS_FIRING, 0), Some(1.0));
    assert_eq!(
        h.store
            .value_at(r#"ALERTS_FOR_STATE{alertname="Down", i="a"}"#, 0),
        Some(0.0)
    );
}

#[test]
fn e02_pending_then_firing_after_for() {
    let h = harness(&alert_rule("    for: 5m\n"), true_during(&[0..=100]));
    for m in 0..=6 {
        h.eval_min("g", m);
        let st = h.alerts("g")[0].state;
        assert_eq!(
            st,
            if m < 5 {
                AlertState::Pending
            } else {
                AlertState::Firing
            },
            "minute {m}"
        );
    }
    assert!(is_stale_nan(
        h.store.value_at(ALERTS_PENDING, 5 * M).unwrap()
    ));
    assert_eq!(h.store.value_at(ALERTS_FIRING, 5 * M), Some(1.0));
    assert_eq!(h.sent_at(), vec![5]);
    assert_eq!(h.sent.lock()[0].1.starts_at_ms, 5 * M);
}

#[test]
fn e03_flapping_resets_pending() {
    let h = harness(&alert_rule("    for: 5m\n"), true_during(&[0..=2, 4..=100]));
    for m in 0..=9 {
        h.eval_min("g", m);
        let a = h.alerts("g");
        match m {
            0..=2 => assert_eq!(a[0].state, AlertState::Pending),
            3 => assert!(a.is_empty(), "pending alert dropped at 3"),
            4..=8 => assert_eq!((a[0].state, a[0].active_at), (AlertState::Pending, 4 * M)),
            _ => assert_eq!(a[0].state, AlertState::Firing),
        }
    }
    assert!(is_stale_nan(
        h.store.value_at(ALERTS_PENDING, 3 * M).unwrap()
    ));
    assert_eq!(h.sent_at(), vec![9]);
}

#[test]
fn e04_for_shorter_than_interval_fires_next_eval() {
    let h = harness(&alert_rule("    for: 30s\n"), true_during(&[0..=100]));
    h.eval_min("g", 0);
    assert_eq!(h.alerts("g")[0].state, AlertState::Pending);
    h.eval_min("g", 1);
    assert_eq!(h.alerts("g")[0].state, AlertState::Firing);
}

#[test]
fn e05_e06_resolve_and_resend_resolved_for_15m() {
    let h = harness(&alert_rule(""), true_during(&[0..=2]));
    for m in 0..=20 {
        h.eval_min("g", m);
        let a = h.alerts("g");
        match m {
            0..=2 => assert_eq!(a[0].state, AlertState::Firing),
            3..=18 => assert_eq!(
                (a[0].state, a[0].resolved_at),
                (AlertState::Inactive, Some(3 * M)),
                "m={m}"
            ),
            _ => assert!(a.is_empty(), "removed at {m}"),
        }
    }
    assert_eq!(h.sent_at(), vec![0, 2, 3, 5, 7, 9, 11, 13, 15, 17]);
    let resolved = h.sent.lock()[2].1.clone();
    assert_eq!((resolved.starts_at_ms, resolved.ends_at_ms), (0, 3 * M));
    assert!(is_stale_nan(
        h.store.value_at(ALERTS_FIRING, 3 * M).unwrap()
    ));
}

#[test]
fn e07_resend_cadence_and_ends_at() {
    let h = harness(&alert_rule(""), true_during(&[0..=100]));
    for m in 0..=8 {
        h.eval_min("g", m);
    }
    assert_eq!(h.sent_at(), vec![0, 2, 4, 6, 8]);
    for (t, a) in h.sent.lock().iter() {
        assert_eq!(a.ends_at_ms, t + 4 * M);
    }
}

#[test]
fn e08b_interval_longer_than_resend_delay() {
    let yaml = alert_rule("").replace("interval: 1m", "interval: 2m");
    let h = harness(&yaml, true_during(&[0..=100]));
    for m in [0, 2, 4] {
        h.eval_min("g", m);
    }
    assert_eq!(h.sent_at(), vec![0, 2, 4]);
    assert_eq!(h.sent.lock()[1].1.ends_at_ms, 2 * M + 8 * M);
}

#[test]
fn e09_keep_firing_for() {
    let h = harness(
        &alert_rule("    keep_firing_for: 5m\n"),
        true_during(&[0..=2]),
    );
    for m in 0..=9 {
        h.eval_min("g", m);
        let a = &h.alerts("g")[0];
        if m <= 7 {
            assert_eq!(a.state, AlertState::Firing, "m={m}");
            if m >= 3 {
                assert_eq!(a.keep_firing_since, Some(3 * M));
                assert_eq!(h.store.value_at(ALERTS_FIRING, m * M), Some(1.0));
            }
        } else {
            assert_eq!(
                (a.state, a.resolved_at),
                (AlertState::Inactive, Some(8 * M))
            );
        }
    }
    let resolved = h
        .sent
        .lock()
        .iter()
        .find(|(t, _)| *t == 8 * M)
        .cloned()
        .unwrap()
        .1;
    assert_eq!(resolved.ends_at_ms, 8 * M);
}

#[test]
fn e10_keep_firing_condition_returns() {
    let h = harness(
        &alert_rule("    keep_firing_for: 5m\n"),
        true_during(&[0..=2, 5..=100]),
    );
    for m in 0..=10 {
        h.eval_min("g", m);
        let a = &h.alerts("g")[0];
        assert_eq!(
            (a.state, a.fired_at),
            (AlertState::Firing, Some(0)),
            "m={m}"
        );
        if m >= 5 {
            assert_eq!(a.keep_firing_since, None);
        }
    }
    // Never resolved: every send carries endsAt in the future.
    assert!(h.sent.lock().iter().all(|(t, a)| a.ends_at_ms == t + 4 * M));
}

#[test]
fn e11_keep_firing_does_not_apply_to_pending() {
    let h = harness(
        &alert_rule("    for: 5m\n    keep_firing_for: 10m\n"),
        true_during(&[0..=2]),
    );
    for m in 0..=3 {
        h.eval_min("g", m);
    }
    assert!(h.alerts("g").is_empty());
    assert!(h.sent.lock().is_empty());
}

#[test]
fn e12_duplicate_labelset_fails_rule_without_state_change() {
    let script: Script = Arc::new(|_e: &str, t: i64| {
        if t == 0 {
            Ok(vec![(l(&[("__name__", "a"), ("x", "1")]), 1.0)])
        } else {
            Ok(vec![
                (l(&[("__name__", "a"), ("x", "1")]), 1.0),
                (l(&[("__name__", "b"), ("x", "1")]), 1.0),
            ])
        }
    });
    let h = harness(&alert_rule(""), script);
    h.eval_min("g", 0);
    let before = h.alerts("g");
    let n_samples = h.store.samples.lock().len();
    let n_sent = h.sent.lock().len();
    h.eval_min("g", 1);
    let st = h.status("g", 0);
    assert_eq!(st.health, Health::Err);
    assert!(
        st.last_error
            .unwrap()
            .contains("same labelset after applying alert labels")
    );
    assert_eq!(h.alerts("g"), before);
    assert_eq!(h.store.samples.lock().len(), n_samples);
    assert_eq!(h.sent.lock().len(), n_sent);
}

const REC: &str =
    "groups:\n- name: rec\n  interval: 1m\n  rules:\n  - record: job:x\n    expr: x\n";

#[test]
fn e13_recording_duplicate_after_rule_labels() {
    let script: Script = Arc::new(|_e: &str, _t: i64| {
        Ok(vec![(l(&[("job", "a")]), 1.0), (l(&[("job", "b")]), 2.0)])
    });
    let h = harness(&format!("{REC}    labels: {{job: x}}\n"), script);
    h.eval_min("rec", 0);
    let st = h.status("rec", 0);
    assert_eq!(st.health, Health::Err);
    assert!(
        st.last_error
            .unwrap()
            .contains("same labelset after applying rule labels")
    );
    assert!(h.store.samples.lock().is_empty());
}

#[test]
fn e14_alert_limit_drops_state() {
    let script: Script = Arc::new(|_e: &str, t: i64| {
        let n = if t < 2 * M {
            2
        } else if t == 2 * M {
            3
        } else {
            1
        };
        Ok((0..n).map(|i| (l(&[("i", &i.to_string())]), 1.0)).collect())
    });
    let yaml = alert_rule("    for: 1m\n").replace("interval: 1m\n", "interval: 1m\n  limit: 2\n");
    let h = harness(&yaml, script);
    h.eval_min("g", 0);
    h.eval_min("g", 1);
    assert!(h.alerts("g").iter().all(|a| a.state == AlertState::Firing));
    let n_samples = h.store.samples.lock().len();
    h.eval_min("g", 2);
    assert!(
        h.status("g", 0)
            .last_error
            .unwrap()
            .contains("exceeded limit of 2 with 3 alerts")
    );
    assert!(h.alerts("g").is_empty());
    assert_eq!(h.store.samples.lock().len(), n_samples);
    h.eval_min("g", 3);
    let a = h.alerts("g");
    assert_eq!((a.len(), a[0].state), (1, AlertState::Pending));
}

#[test]
fn e15_e16_recording_limit_and_staleness() {
    let script: Script = Arc::new(|_e: &str, t: i64| {
        if t == 0 {
            Ok(vec![(l(&[("i", "a")]), 1.0), (l(&[("i", "b")]), 2.0)])
        } else {
            Ok(vec![(l(&[("i", "a")]), 3.0)])
        }
    });
    let h = harness(REC, script.clone());
    h.eval_min("rec", 0);
    h.eval_min("rec", 1);
    assert_eq!(h.store.series(r#"job:x{i="b"}"#).len(), 2);
    assert!(is_stale_nan(
        h.store.value_at(r#"job:x{i="b"}"#, M).unwrap()
    ));
    assert_eq!(h.store.value_at(r#"job:x{i="a"}"#, M), Some(3.0));
    let limited = harness(
        &REC.replace("interval: 1m\n", "interval: 1m\n  limit: 1\n"),
        script,
    );
    limited.eval_min("rec", 0);
    assert!(
        limited
            .status("rec", 0)
            .last_error
            .unwrap()
            .contains("exceeded limit of 1 with 2 series")
    );
    assert!(limited.store.samples.lock().is_empty());
}

#[test]
fn e17_later_rule_sees_earlier_output_in_same_cycle() {
    let yaml = "groups:\n- name: g\n  rules:\n  - record: x\n    expr: y * 2\n  - alert: Big\n    expr: x > 10\n";
    let store_slot: Arc<Mutex<Option<Arc<Store>>>> = Arc::default();
    let slot2 = store_slot.clone();
    let script: Script = Arc::new(move |e: &str, t: i64| {
        let y = if t >= 3 * M { 10.0 } else { 1.0 };
        match e {
            "y * 2" => Ok(vec![(Labels::empty(), y * 2.0)]),
            _ => {
                let st = slot2.lock().clone().unwrap();
                let x = st.value_at("x", t).unwrap_or(0.0);
                Ok(if x > 10.0 {
                    vec![(l(&[("__name__", "x")]), x)]
                } else {
                    vec![]
                })
            }
        }
    });
    let h = harness(yaml, script);
    *store_slot.lock() = Some(h.store.clone());
    h.eval_min("g", 2);
    assert!(h.alerts("g").is_empty());
    h.eval_min("g", 3);
    let a = h.alerts("g");
    assert_eq!((a.len(), a[0].active_at, a[0].value), (1, 3 * M, 20.0));
}

#[test]
fn e18_query_offset() {
    let yaml = alert_rule("").replace("interval: 1m\n", "interval: 1m\n  query_offset: 1m\n");
    let h = harness(&yaml, true_during(&[5..=100]));
    h.eval_min("g", 5);
    assert!(h.alerts("g").is_empty());
    h.eval_min("g", 6);
    assert_eq!(h.alerts("g")[0].active_at, 6 * M);
    assert_eq!(h.store.series(ALERTS_FIRING), vec![(5 * M, 1.0)]);
}

#[test]
fn e19_query_error_keeps_state_and_sends_nothing() {
    let script: Script = Arc::new(|_e: &str, t: i64| {
        if t >= 10 * M {
            Err("engine exploded".into())
        } else {
            Ok(vec![(l(&[("i", "a")]), 0.0)])
        }
    });
    let h = harness(&alert_rule(""), script);
    for m in 8..=15 {
        h.eval_min("g", m);
    }
    assert_eq!(h.sent_at(), vec![8]);
    let st = h.status("g", 0);
    assert_eq!(
        (st.health, st.last_error.as_deref()),
        (Health::Err, Some("engine exploded"))
    );
    assert_eq!(h.alerts("g")[0].state, AlertState::Firing);
}

#[test]
fn e20_slow_group_skips_missed_slots() {
    let h = harness(&alert_rule(""), slow_first_eval());
    *SLOW_CLOCK.lock() = Some(h.clock.clone());
    h.clock.set(h.mgr.next_eval_ms("g").unwrap());
    let first = h.mgr.run_due("g").unwrap();
    assert_eq!(
        h.clock.now_ms() - first,
        150_000,
        "first evaluation took 150 s"
    );
    let second = h.mgr.run_due("g").unwrap();
    assert_eq!(
        second,
        first + 2 * M,
        "runs the latest begun slot, skipping one"
    );
    assert_eq!(h.mgr.run_due("g"), None, "next slot not begun yet");
    assert_eq!(h.mgr.next_eval_ms("g"), Some(first + 3 * M));
    let m = h.mgr.with_groups(|g| g.metrics.clone()).remove(0);
    assert_eq!((m.iterations_missed_total, m.iterations_total), (1, 3));
}

/// The clock a slow script advances (one test uses it).
static SLOW_CLOCK: Mutex<Option<ManualClock>> = Mutex::new(None);

/// A script whose first call takes 150 s of simulated time.
fn slow_first_eval() -> Script {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Arc::new(move |_e: &str, _t: i64| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0
            && let Some(c) = SLOW_CLOCK.lock().as_ref()
        {
            c.advance(150_000);
        }
        Ok(vec![])
    })
}

use crate::model::Clock as _;

#[test]
fn e21_alerts_handed_over_per_rule() {
    let yaml = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: a\n  - alert: B\n    expr: b\n  - alert: C\n    expr: c\n";
    let batches: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let b2 = batches.clone();
    let script: Script = Arc::new(|_e: &str, _t: i64| Ok(vec![(Labels::empty(), 1.0)]));
    let h = harness_with(yaml, script, move |o| {
        o.notify = Arc::new(move |alerts: Vec<Alert>| {
            b2.lock().push(
                alerts
                    .iter()
                    .map(|a| a.labels.get("alertname").unwrap().to_string())
                    .collect(),
            );
        });
    });
    h.eval_min("g", 0);
    assert_eq!(*batches.lock(), vec![vec!["A"], vec!["B"], vec!["C"]]);
}

#[test]
fn e22_e24_label_rules() {
    let yaml = "groups:\n- name: g\n  labels: {team: a}\n  rules:\n  - alert: X\n    expr: up\n    labels:\n      severity: page\n      team: b\n      zone: '{{ $labels.zone }}'\n    annotations:\n      n: '{{ $labels.__name__ }}'\n  - record: r\n    expr: up\n";
    let script: Script = Arc::new(|_e: &str, _t: i64| {
        Ok(vec![(
            l(&[
                ("__name__", "up"),
                ("alertname", "x"),
                ("severity", "low"),
                ("i", "1"),
            ]),
            1.0,
        )])
    });
    let h = harness(yaml, script);
    h.eval_min("g", 0);
    let a = &h.alerts("g")[0];
    assert_eq!(
        a.labels,
        l(&[
            ("alertname", "X"),
            ("i", "1"),
            ("severity", "page"),
            ("team", "b")
        ])
    );
    assert_eq!(a.annotations.get("n").map(String::as_str), Some("up"));
    assert_eq!(
        h.store
            .value_at(r#"r{alertname="x", i="1", severity="low", team="a"}"#, 0),
        Some(1.0)
    );
}

#[test]
fn e25_value_in_label_never_fires() {
    let yaml = "groups:\n- name: g\n  rules:\n  - alert: X\n    expr: up\n    for: 2m\n    labels:\n      v: '{{ $value }}'\n";
    let script: Script = Arc::new(|_e: &str, t: i64| Ok(vec![(Labels::empty(), (t / M) as f64)]));
    let h = harness(yaml, script);
    for m in 0..=10 {
        h.eval_min("g", m);
        let a = h.alerts("g");
        assert_eq!((a.len(), a[0].state), (1, AlertState::Pending));
    }
    assert!(h.sent.lock().is_empty());
}

#[test]
fn template_errors_keep_alert_firing() {
    let yaml = "groups:\n- name: g\n  rules:\n  - alert: X\n    expr: up\n    annotations:\n      bad: '{{ query \"nothing\" | first | value }}'\n      good: ok\n";
    let script: Script = Arc::new(|e: &str, _t: i64| {
        if e == "up" {
            Ok(vec![(Labels::empty(), 1.0)])
        } else {
            Ok(vec![])
        }
    });
    let h = harness(yaml, script);
    h.eval_min("g", 0);
    let a = &h.alerts("g")[0];
    assert_eq!(a.state, AlertState::Firing);
    let bad = a.annotations.get("bad").unwrap();
    assert!(
        bad.starts_with("<error expanding template: ")
            && bad.contains("first() called on vector with no elements"),
        "{bad}"
    );
    assert_eq!(a.annotations.get("good").map(String::as_str), Some("ok"));
    assert_eq!(
        h.mgr
            .with_groups(|g| g.metrics.template_expansion_failures_total),
        vec![1]
    );
}

/// Restart helper: a new manager over the same store (process restart).
fn restart(old: &Harness, yaml: &str, script: Script) -> Harness {
    let store = old.store.clone();
    let sent: Arc<Mutex<Vec<(i64, Alert)>>> = Arc::default();
    let s2 = sent.clone();
    let clock = old.clock.clone();
    let c2 = clock.clone();
    let notify: NotifyFn = Arc::new(move |alerts: Vec<Alert>| {
        let now = c2.now_ms();
        s2.lock().extend(alerts.into_iter().map(|a| (now, a)));
    });
    let mut opts = ManagerOptions::new(script, notify, store.clone(), Arc::new(clock.clone()));
    opts.restore_querier = Some(store.clone());
    let mgr = RuleManager::new(opts);
    mgr.update(vec![
        parse_rule_file(Path::new("r.yml"), yaml, &LoadOptions::default()).unwrap(),
    ]);
    Harness {
        mgr,
        store,
        sent,
        clock,
    }
}

#[test]
fn r01_restore_does_not_count_downtime() {
    let yaml = alert_rule("    for: 30m\n");
    let h = harness(&yaml, true_during(&[0..=1000]));
    for m in 0..=20 {
        h.eval_min("g", m);
    }
    // Down from 20m to 26m; the restarted group evaluates at 26 and 27, then restores.
    let h2 = restart(&h, &yaml, true_during(&[0..=1000]));
    h2.eval_min("g", 26);
    assert_eq!(
        h2.store.series(ALERTS_PENDING).last().unwrap().0,
        20 * M,
        "no ALERTS before restore"
    );
    h2.eval_min("g", 27);
    assert_eq!(h2.alerts("g")[0].active_at, 7 * M);
    h2.eval_min("g", 36);
    assert_eq!(h2.alerts("g")[0].state, AlertState::Pending);
    h2.eval_min("g", 37);
    assert_eq!(h2.alerts("g")[0].state, AlertState::Firing);
}

#[test]
fn r02_restore_with_grace_period() {
    let yaml = alert_rule("    for: 30m\n");
    let h = harness(&yaml, true_during(&[0..=1000]));
    for m in 0..=25 {
        h.eval_min("g", m);
    }
    let h2 = restart(&h, &yaml, true_during(&[0..=1000]));
    h2.eval_min("g", 28);
    h2.eval_min("g", 29);
    // 5m remaining < 10m grace: fires 10m after the restore at 29m.
    assert_eq!(h2.alerts("g")[0].active_at, 29 * M + 10 * M - 30 * M);
    h2.eval_min("g", 38);
    assert_eq!(h2.alerts("g")[0].state, AlertState::Pending);
    h2.eval_min("g", 39);
    assert_eq!(h2.alerts("g")[0].state, AlertState::Firing);
}

#[test]
fn r01b_firing_before_restart_fires_after() {
    let yaml = alert_rule("    for: 10m\n");
    let h = harness(&yaml, true_during(&[0..=1000]));
    for m in 0..=15 {
        h.eval_min("g", m);
    }
    assert_eq!(h.alerts("g")[0].state, AlertState::Firing);
    let h2 = restart(&h, &yaml, true_during(&[0..=1000]));
    h2.eval_min("g", 17);
    h2.eval_min("g", 18);
    assert_eq!(h2.alerts("g")[0].active_at, 0);
    h2.eval_min("g", 19);
    assert_eq!(h2.alerts("g")[0].state, AlertState::Firing);
}

#[test]
fn r03_short_for_is_not_restored() {
    let yaml = alert_rule("    for: 5m\n");
    let h = harness(&yaml, true_during(&[0..=1000]));
    for m in 0..=10 {
        h.eval_min("g", m);
    }
    let h2 = restart(&h, &yaml, true_during(&[0..=1000]));
    h2.eval_min("g", 12);
    h2.eval_min("g", 13);
    assert_eq!(h2.alerts("g")[0].active_at, 12 * M);
    h2.eval_min("g", 17);
    assert_eq!(h2.alerts("g")[0].state, AlertState::Firing);
}

#[test]
fn r06_outage_longer_than_tolerance_restores_nothing() {
    let yaml = alert_rule("    for: 30m\n");
    let h = harness(&yaml, true_during(&[0..=1000]));
    for m in 0..=20 {
        h.eval_min("g", m);
    }
    let h2 = restart(&h, &yaml, true_during(&[0..=1000]));
    h2.eval_min("g", 200);
    h2.eval_min("g", 201);
    assert_eq!(h2.alerts("g")[0].active_at, 200 * M);
}

#[test]
fn reload_keeps_state_and_r11_raising_for_goes_back_to_pending() {
    let h = harness(&alert_rule("    for: 5m\n"), true_during(&[0..=1000]));
    for m in 0..=10 {
        h.eval_min("g", m);
    }
    assert_eq!(h.alerts("g")[0].state, AlertState::Firing);
    let same = parse_rule_file(
        Path::new("r.yml"),
        &alert_rule("    for: 5m\n"),
        &LoadOptions::default(),
    )
    .unwrap();
    h.mgr.update(vec![same]);
    assert_eq!(h.alerts("g")[0].state, AlertState::Firing);
    let longer = parse_rule_file(
        Path::new("r.yml"),
        &alert_rule("    for: 30m\n"),
        &LoadOptions::default(),
    )
    .unwrap();
    h.mgr.update(vec![longer]);
    h.eval_min("g", 11);
    let a = &h.alerts("g")[0];
    assert_eq!((a.state, a.active_at), (AlertState::Pending, 0));
    let n = h.sent.lock().len();
    h.eval_min("g", 29);
    assert_eq!(
        h.sent.lock().len(),
        n,
        "no resolved message when going back to pending"
    );
    h.eval_min("g", 30);
    assert_eq!(h.alerts("g")[0].state, AlertState::Firing);
    assert_eq!(h.sent_at().last(), Some(&30));
}

#[test]
fn threads_evaluate_on_schedule_and_stop() {
    let h = harness(
        REC,
        Arc::new(|_e: &str, _t: i64| Ok(vec![(l(&[("i", "a")]), 1.0)])),
    );
    let next = h.mgr.next_eval_ms("rec").unwrap();
    h.clock.set(next);
    h.mgr.start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while h.store.samples.lock().is_empty() && std::time::Instant::now() < deadline {
        std::thread::yield_now();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    h.mgr.stop();
    assert_eq!(h.store.series(r#"job:x{i="a"}"#), vec![(next, 1.0)]);
}

/// Restart with exact state snapshots (restore: exact).
fn restart_exact(old: &Harness, yaml: &str, script: Script, dir: &Path) -> Harness {
    let store = old.store.clone();
    let sent: Arc<Mutex<Vec<(i64, Alert)>>> = Arc::default();
    let s2 = sent.clone();
    let clock = old.clock.clone();
    let c2 = clock.clone();
    let notify: NotifyFn = Arc::new(move |alerts: Vec<Alert>| {
        let now = c2.now_ms();
        s2.lock().extend(alerts.into_iter().map(|a| (now, a)));
    });
    let mut opts = ManagerOptions::new(script, notify, store.clone(), Arc::new(clock.clone()));
    opts.restore_querier = Some(store.clone());
    opts.state_dir = Some(dir.to_path_buf());
    let mgr = RuleManager::new(opts);
    mgr.update(vec![
        parse_rule_file(Path::new("r.yml"), yaml, &LoadOptions::default()).unwrap(),
    ]);
    Harness {
        mgr,
        store,
        sent,
        clock,
    }
}

fn exact_harness(yaml: &str, script: Script, dir: &Path) -> Harness {
    let d = dir.to_path_buf();
    harness_with(yaml, script, move |o| o.state_dir = Some(d))
}

#[test]
fn exact_restore_pending_4_of_5_minutes_continues() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = alert_rule("    for: 5m\n");
    let h = exact_harness(&yaml, true_during(&[0..=1000]), dir.path());
    for m in 0..=3 {
        h.eval_min("g", m);
    }
    // Stopped after 3m (pending 3 of 5 minutes), back for the 4m slot.
    h.clock.set(4 * M - 1000);
    let h2 = restart_exact(&h, &yaml, true_during(&[0..=1000]), dir.path());
    h2.eval_min("g", 4);
    assert_eq!(
        (h2.alerts("g")[0].state, h2.alerts("g")[0].active_at),
        (AlertState::Pending, 0)
    );
    h2.eval_min("g", 5);
    assert_eq!(h2.alerts("g")[0].state, AlertState::Firing);
    assert_eq!(
        h2.store.value_at(ALERTS_FIRING, 5 * M),
        Some(1.0),
        "restored rules write ALERTS at once"
    );
}

#[test]
fn exact_restore_downtime_not_counted_for_pending() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = alert_rule("    for: 5m\n");
    let h = exact_harness(&yaml, true_during(&[0..=1000]), dir.path());
    for m in 0..=3 {
        h.eval_min("g", m);
    }
    h.clock.set(10 * M);
    let h2 = restart_exact(&h, &yaml, true_during(&[0..=1000]), dir.path());
    // Last eval at 3m, back at 10m: 6 minutes of missed slots.
    assert_eq!(h2.alerts("g")[0].active_at, 6 * M);
}

#[test]
fn r04_exact_restore_keeps_firing_and_starts_at() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = alert_rule("    for: 5m\n");
    let h = exact_harness(&yaml, true_during(&[0..=1000]), dir.path());
    for m in 0..=7 {
        h.eval_min("g", m);
    }
    assert_eq!(h.sent_at(), vec![5, 7]);
    h.clock.set(9 * M);
    let h2 = restart_exact(&h, &yaml, true_during(&[0..=1000]), dir.path());
    h2.eval_min("g", 9);
    let a = &h2.alerts("g")[0];
    assert_eq!((a.state, a.fired_at), (AlertState::Firing, Some(5 * M)));
    let sent = h2.sent.lock().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.starts_at_ms, 5 * M, "startsAt unchanged");
}

#[test]
fn r08_exact_restore_keeps_resending_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = alert_rule("");
    let h = exact_harness(&yaml, true_during(&[0..=2]), dir.path());
    for m in 0..=8 {
        h.eval_min("g", m);
    }
    h.clock.set(10 * M);
    let h2 = restart_exact(&h, &yaml, true_during(&[0..=2]), dir.path());
    h2.eval_min("g", 10);
    let sent = h2.sent.lock().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].1.ends_at_ms,
        3 * M,
        "resolution re-sent after restart"
    );
}

#[test]
fn r06_exact_snapshot_older_than_tolerance_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = alert_rule("    for: 5m\n");
    let h = exact_harness(&yaml, true_during(&[0..=1000]), dir.path());
    for m in 0..=7 {
        h.eval_min("g", m);
    }
    h.clock.set(200 * M);
    let h2 = restart_exact(&h, &yaml, true_during(&[0..=1000]), dir.path());
    assert!(h2.alerts("g").is_empty());
}
