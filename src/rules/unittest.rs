//! `test rules`: promtool-compatible rule unit tests (spec §6). Input
//! series in expanding notation go into a real storage `Db` in a fresh
//! temporary directory (one per test group, removed afterwards; WAL and
//! head as in the server, so duplicate-timestamp and stale-marker handling
//! are the production ones), every group is
//! evaluated at each `evaluation_interval` step through the real PromQL
//! engine and the real rule evaluator, and alerts / expressions are
//! compared with the expectations. Failures are reported with readable
//! `exp:`/`got:` lists in series notation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::model::{Labels, ManualClock, stale_nan};
use crate::promql::{Engine, SeriesValue, parse_series_desc};
use crate::storage::{Appendable, Db, DbOptions, Querier, WalSyncPolicy};

use super::duration::{format_duration_ms, parse_duration_ms};
use super::file::{LoadOptions, expand_globs, load_rule_file};
use super::group::{Group, Health, Rule};
use super::{AlertState, ManagerOptions, engine_query_fn};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<String>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    fuzzy_compare: bool,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    name: String,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    start_timestamp: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertCase>,
    #[serde(default)]
    promql_expr_test: Vec<ExprCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    #[serde(default)]
    values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertCase {
    eval_time: String,
    #[serde(default)]
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprCase {
    expr: String,
    eval_time: String,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    value: f64,
}

/// Which test groups to run.
#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    /// Run only groups whose name matches one of these (all when empty).
    pub run: Vec<regex::Regex>,
}

/// The result of one test file.
#[derive(Debug, Clone, PartialEq)]
pub struct TestFileResult {
    /// The test file.
    pub path: PathBuf,
    /// One entry per failed test group (already formatted), or a file-level
    /// problem (bad YAML, rule file errors).
    pub failures: Vec<String>,
    /// Non-fatal notes (a rule-file glob matching nothing).
    pub warnings: Vec<String>,
    /// Test groups that ran.
    pub groups_run: usize,
}

impl TestFileResult {
    /// True when nothing failed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// promtool-style report: `  SUCCESS` or `  FAILED:` plus details.
    pub fn report(&self) -> String {
        if self.passed() {
            "  SUCCESS\n".to_string()
        } else {
            let mut s = String::from("  FAILED:\n");
            for f in &self.failures {
                s.push_str(f);
                if !f.ends_with('\n') {
                    s.push('\n');
                }
            }
            s
        }
    }
}

fn dur(s: &str, what: &str) -> Result<i64, String> {
    parse_duration_ms(s).map_err(|e| format!("{what}: {e}"))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` into ms.
fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut frac_ms = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let f = &s[start..i];
        let padded = format!("{:0<3}", &f[..f.len().min(3)]);
        frac_ms = padded.parse::<i64>().ok()?;
    }
    let off = match b.get(i)? {
        b'Z' | b'z' => 0,
        b'+' | b'-' => {
            let sign = if b[i] == b'-' { -1 } else { 1 };
            sign * (num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60)
        }
        _ => return None,
    };
    // Days from civil (proleptic Gregorian).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + se - off) * 1000 + frac_ms)
}

fn start_ms(v: &Option<serde_yaml_ng::Value>) -> Result<i64, String> {
    match v {
        None => Ok(0),
        Some(serde_yaml_ng::Value::Number(n)) => n
            .as_f64()
            .map(|f| (f * 1000.0).round() as i64)
            .ok_or_else(|| "start_timestamp: not a number".to_string()),
        Some(serde_yaml_ng::Value::String(s)) => match s.parse::<f64>() {
            Ok(f) => Ok((f * 1000.0).round() as i64),
            Err(_) => {
                parse_rfc3339_ms(s).ok_or_else(|| format!("start_timestamp: cannot parse {s:?}"))
            }
        },
        Some(_) => Err("start_timestamp: expected Unix seconds or RFC3339".into()),
    }
}

/// Prints a label set in series notation (`name{a="b", c="d"}`).
fn series_text(l: &Labels) -> String {
    l.to_string()
}

fn map_text(m: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Runs one promtool-format test file.
pub fn run_test_file(path: &Path, opts: &TestOptions) -> TestFileResult {
    let mut res = TestFileResult {
        path: path.to_path_buf(),
        failures: Vec::new(),
        warnings: Vec::new(),
        groups_run: 0,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            res.failures
                .push(format!("cannot read {}: {e}", path.display()));
            return res;
        }
    };
    let tf: TestFile = match serde_yaml_ng::from_str(&text) {
        Ok(t) => t,
        Err(e) => {
            res.failures.push(format!("{}: {e}", path.display()));
            return res;
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let ei = match tf
        .evaluation_interval
        .as_deref()
        .map(|s| dur(s, "evaluation_interval"))
        .transpose()
    {
        Ok(v) => v.unwrap_or(60_000).max(1),
        Err(e) => {
            res.failures.push(e);
            return res;
        }
    };
    let mut specs = Vec::new();
    for pat in &tf.rule_files {
        let full = if Path::new(pat).is_absolute() {
            pat.clone()
        } else {
            base.join(pat).to_string_lossy().to_string()
        };
        let files: Vec<PathBuf> = expand_globs(std::slice::from_ref(&full))
            .into_iter()
            .filter(|p| p.is_file())
            .collect();
        if files.is_empty() {
            res.warnings
                .push(format!("rule_files: {pat:?} matches no file"));
        }
        for f in files {
            match load_rule_file(&f, &LoadOptions::default()) {
                Ok(rf) => specs.extend(rf.groups),
                Err(e) => res.failures.push(e.to_string()),
            }
        }
    }
    if !res.failures.is_empty() {
        return res;
    }
    let order = |name: &str| {
        tf.group_eval_order
            .iter()
            .position(|g| g == name)
            .unwrap_or(0)
    };
    specs.sort_by_key(|g| order(&g.name));
    for tg in &tf.tests {
        if !opts.run.is_empty() && !opts.run.iter().any(|r| r.is_match(&tg.name)) {
            continue;
        }
        res.groups_run += 1;
        if let Err(msg) = run_group(tg, &specs, ei, tf.fuzzy_compare) {
            res.failures.push(msg);
        }
    }
    res
}

/// Runs one test group; `Err` carries the formatted failure.
fn run_group(
    tg: &TestGroup,
    specs: &[super::GroupSpec],
    ei: i64,
    fuzzy: bool,
) -> Result<(), String> {
    let start = start_ms(&tg.start_timestamp)?;
    let clock = ManualClock::new(start);
    let tmp = TempDb::open(&clock)?;
    let store = Arc::clone(&tmp.db);
    let interval = match &tg.interval {
        Some(s) => dur(s, "interval")?,
        None => ei,
    }
    .max(1);
    {
        // promtool (2.42) keeps one definition per series: a series given
        // twice is replaced by its later definition as a whole. Resolve
        // that here, then append every series in time order.
        let mut samples: std::collections::HashMap<Labels, BTreeMap<i64, f64>> =
            std::collections::HashMap::new();
        let mut order: Vec<Labels> = Vec::new();
        for s in &tg.input_series {
            let desc = parse_series_desc(&format!("{} {}", s.series, s.values))
                .map_err(|e| format!("    series {:?}: {e}", s.series))?;
            let mut points = BTreeMap::new();
            for (i, v) in desc.values.iter().enumerate() {
                let t = start + i as i64 * interval;
                let v = match v {
                    SeriesValue::Float(f) => *f,
                    SeriesValue::Stale => stale_nan(),
                    SeriesValue::Omitted => continue,
                };
                points.insert(t, v);
            }
            if samples.insert(desc.labels.clone(), points).is_none() {
                order.push(desc.labels);
            }
        }
        let mut app = store.appender();
        for labels in &order {
            for (t, v) in &samples[labels] {
                app.append(labels, *t, *v).map_err(|e| format!("    {e}"))?;
            }
        }
        app.commit().map_err(|e| format!("    {e}"))?;
    }
    let engine = Engine::default();
    let querier: Arc<dyn Querier> = store.clone();
    let mut mopts = ManagerOptions::new(
        engine_query_fn(engine.clone(), Arc::clone(&querier)),
        Arc::new(|_alerts| {}),
        store.clone(),
        Arc::new(clock.clone()),
    );
    mopts.evaluation_interval_ms = ei;
    mopts.external_labels = tg.external_labels.clone();
    mopts.external_url = tg.external_url.clone();
    let mut groups: Vec<Group> = specs
        .iter()
        .map(|s| Group::new(s.clone(), &mopts, false))
        .collect();

    let mut alert_cases: Vec<(i64, &AlertCase)> = Vec::new();
    for c in &tg.alert_rule_test {
        alert_cases.push((dur(&c.eval_time, "eval_time")?, c));
    }
    alert_cases.sort_by_key(|(e, _)| *e);
    let mut expr_cases: Vec<(i64, &ExprCase)> = Vec::new();
    for c in &tg.promql_expr_test {
        expr_cases.push((dur(&c.eval_time, "eval_time")?, c));
    }
    let max_eval = alert_cases
        .iter()
        .map(|x| x.0)
        .chain(expr_cases.iter().map(|x| x.0))
        .max()
        .unwrap_or(0);
    let mut errors: Vec<String> = Vec::new();
    let mut next_case = 0;
    let mut t = start;
    while t <= start + max_eval {
        clock.set(t);
        for g in groups.iter_mut() {
            g.eval(&mopts, t);
            for r in &g.rules {
                let st = r.status();
                if st.health == Health::Err && st.last_evaluation_ms == Some(t) {
                    return Err(format!(
                        "    rule: {}, time: {}, err: {}",
                        r.spec().name(),
                        format_duration_ms(t - start),
                        st.last_error.clone().unwrap_or_default()
                    ));
                }
            }
        }
        while next_case < alert_cases.len() {
            let (e, case) = alert_cases[next_case];
            if !(t - start <= e && e < t - start + ei) {
                break;
            }
            next_case += 1;
            if let Some(msg) = check_alerts(&groups, case, e) {
                errors.push(msg);
            }
        }
        t += ei;
    }
    for (e, case) in &expr_cases {
        if let Some(msg) = check_expr(&engine, querier.as_ref(), case, start + e, *e, fuzzy) {
            errors.push(msg);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("    name: {},\n{}", tg.name, errors.join("\n")))
    }
}

/// A storage `Db` in a fresh directory under the system temp dir, closed
/// and deleted on drop.
struct TempDb {
    db: Arc<Db>,
    dir: PathBuf,
}

impl TempDb {
    fn open(clock: &ManualClock) -> Result<TempDb, String> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "watchpost-test-rules-{}-{nanos}-{seq}",
            std::process::id()
        ));
        let mut o = DbOptions::new(&dir);
        o.clock = Arc::new(clock.clone());
        // Input series are appended one after the other and may span any
        // time range, and rule outputs land before the inputs' end: accept
        // every timestamp (the head takes out-of-order samples).
        o.ooo_window_ms = i64::MAX / 4;
        // Nothing here needs durability; no fsync per rule evaluation.
        o.wal_sync = WalSyncPolicy::Interval(std::time::Duration::from_secs(3600));
        // No retention or block cutting while the test runs.
        o.maintenance_interval = None;
        match Db::open(o) {
            Ok(db) => Ok(TempDb {
                db: Arc::new(db),
                dir,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(format!(
                    "    cannot open the test database in {}: {e}",
                    dir.display()
                ))
            }
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        if let Err(e) = self.db.close() {
            tracing::warn!(dir = %self.dir.display(), "closing the test database: {e}");
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), "removing the test database: {e}");
        }
    }
}

type AlertView = (Labels, BTreeMap<String, String>);

fn check_alerts(groups: &[Group], case: &AlertCase, e: i64) -> Option<String> {
    let mut got: Vec<AlertView> = Vec::new();
    for g in groups {
        for r in &g.rules {
            if let Rule::Alerting { rule, .. } = r {
                if rule.params().0 != case.alertname {
                    continue;
                }
                for a in rule.active.values() {
                    if a.state == AlertState::Firing {
                        got.push((a.labels.clone(), a.annotations.clone()));
                    }
                }
            }
        }
    }
    let mut exp: Vec<AlertView> = case
        .exp_alerts
        .iter()
        .map(|x| {
            let mut l = x.exp_labels.clone();
            l.insert("alertname".into(), case.alertname.clone());
            (Labels::from_pairs(l), x.exp_annotations.clone())
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    exp.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    if got == exp {
        return None;
    }
    let show = |v: &[AlertView]| -> String {
        if v.is_empty() {
            return "[]".into();
        }
        let mut s = String::from("[\n");
        for (i, (l, a)) in v.iter().enumerate() {
            s.push_str(&format!(
                "            {i}:\n              Labels:{}\n              Annotations:{}\n",
                series_text(l),
                map_text(a)
            ));
        }
        s.push_str("            ]");
        s
    };
    Some(format!(
        "    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
        case.alertname,
        format_duration_ms(e),
        show(&exp),
        show(&got)
    ))
}

fn floats_match(a: f64, b: f64, fuzzy: bool) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    fuzzy
        && a.is_finite()
        && b.is_finite()
        && (a.to_bits() as i64 - b.to_bits() as i64).abs() <= 1
        && a.signum() == b.signum()
}

fn check_expr(
    engine: &Engine,
    q: &dyn Querier,
    case: &ExprCase,
    t: i64,
    e: i64,
    fuzzy: bool,
) -> Option<String> {
    let head = format!(
        "    expr: {:?}, time: {},",
        case.expr,
        format_duration_ms(e)
    );
    let expr = match crate::promql::parse(&case.expr) {
        Ok(x) => x,
        Err(err) => return Some(format!("{head}\n        err: {err}")),
    };
    let got: Vec<(Labels, f64)> = match engine.instant(q, &expr, t) {
        Ok(r) => match r.value {
            crate::promql::Value::Vector(v) => v.into_iter().map(|s| (s.labels, s.v)).collect(),
            crate::promql::Value::Scalar { v, .. } => vec![(Labels::empty(), v)],
            other => {
                return Some(format!(
                    "{head}\n        err: unexpected {} result",
                    other.type_name()
                ));
            }
        },
        Err(err) => return Some(format!("{head}\n        err: {err}")),
    };
    let mut exp: Vec<(Labels, f64)> = Vec::new();
    for s in &case.exp_samples {
        let labels = if s.labels.trim().is_empty() || s.labels.trim() == "{}" {
            Labels::empty()
        } else {
            match crate::promql::parse_metric_selector(&s.labels) {
                Ok(ms) => Labels::from_pairs(ms.iter().map(|m| (m.name.clone(), m.value.clone()))),
                Err(err) => {
                    return Some(format!("{head}\n        err: labels {:?}: {err}", s.labels));
                }
            }
        };
        exp.push((labels, s.value));
    }
    let mut got = got;
    got.sort_by(|a, b| a.0.cmp(&b.0));
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    let same = got.len() == exp.len()
        && got
            .iter()
            .zip(&exp)
            .all(|(g, x)| g.0 == x.0 && floats_match(g.1, x.1, fuzzy));
    if same {
        return None;
    }
    let show = |v: &[(Labels, f64)]| -> String {
        let parts: Vec<String> = v
            .iter()
            .map(|(l, x)| {
                format!(
                    "{} {}",
                    series_text(l),
                    super::template::format_go_float(*x)
                )
            })
            .collect();
        format!("[{}]", parts.join(", "))
    };
    Some(format!(
        "{head}\n        exp: {}\n        got: {}",
        show(&exp),
        show(&got)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_start_timestamps() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2015-06-23T13:19:44.128Z"),
            Some(1_435_065_584_128)
        );
        assert_eq!(
            parse_rfc3339_ms("2015-06-23T15:19:44+02:00"),
            Some(1_435_065_584_000)
        );
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn runs_on_a_real_database_that_is_removed_afterwards() {
        let dir = std::env::temp_dir().join(format!("wp-unittest-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("r.yml"),
            "groups:\n- name: g\n  rules:\n  - record: s\n    expr: sum(up)\n",
        )
        .unwrap();
        // The same series twice: the later definition replaces the first
        // one as a whole, as in promtool 2.42 (so `s` is 1 at 0m).
        std::fs::write(
            dir.join("t.yml"),
            "rule_files: [r.yml]\nevaluation_interval: 1m\ntests:\n- interval: 1m\n  input_series:\n  - series: 'up{j=\"a\"}'\n    values: '1 1 1'\n  - series: 'up{j=\"a\"}'\n    values: '_ 0 0'\n  - series: 'up{j=\"b\"}'\n    values: '1+1x2 stale'\n  promql_expr_test:\n  - expr: s\n    eval_time: 0m\n    exp_samples: [{labels: 's', value: 1}]\n  - expr: s\n    eval_time: 2m\n    exp_samples: [{labels: 's', value: 3}]\n  - expr: up\n    eval_time: 3m\n    exp_samples: [{labels: 'up{j=\"a\"}', value: 0}]\n",
        )
        .unwrap();
        let pattern = format!("watchpost-test-rules-{}-", std::process::id());
        let leftovers = || {
            std::fs::read_dir(std::env::temp_dir())
                .unwrap()
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(&pattern))
                .count()
        };
        let before = leftovers();
        let r = run_test_file(&dir.join("t.yml"), &TestOptions::default());
        assert!(r.passed(), "{}", r.report());
        assert_eq!(leftovers(), before, "the test database is deleted");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ulp_comparison() {
        assert!(!floats_match(0.1 + 0.2, 0.3, false));
        assert!(floats_match(0.1 + 0.2, 0.3, true));
        assert!(floats_match(f64::NAN, f64::NAN, false));
        assert!(!floats_match(1.0, 1.1, true));
    }
}
