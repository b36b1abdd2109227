//! Conformance runner for Prometheus's PromQL test scripts (the promqltest
//! language, see `shared/conformance/promql/FORMAT.md`).
//!
//! Runs `upstream/*.test` (found through `WATCHPOST_PROMQL_TESTDATA`, or
//! `../shared/conformance/promql/upstream` / `../../shared/...` relative to
//! the crate) and our own `tests/promql/*.test` against the evaluator over
//! the in-memory `MemStorage`.
//!
//! What is checked per eval (FORMAT.md §7-8): the error expectation (exact
//! `msg:` / `regex:` texts included), result kind, label sets, values with
//! upstream's tolerance, matrix timestamps and order, `expect ordered`, the
//! annotation rules of §6.3, and for instant evals the range-mode cross-check
//! of §7.2 (the same query as a range query from T-1m to T+1m) and the
//! `@`-invariance runs of §7.2 step 3 (the query with every selector pinned
//! `@ T`, evaluated at -10T, 0, T/5, T, 10T). Annotation texts are compared
//! without the trailing `(line:col)` position, since the AST carries no
//! positions.
//!
//! Classification follows INVENTORY.md's "Method": a case is *native
//! histogram* when its expected result has a `{{...}}` literal or one of its
//! selectors matches a series that holds histogram samples (loaded with
//! `{{...}}` or created by `load_with_nhcb`); native cases are reported but
//! not listed. Every other case is *float*; float cases using experimental
//! features are *experimental*, the rest *stable*.
//!
//! Every float case that does not pass must be listed in
//! `tests/promql_expected_failures.txt` (`file:line reason`); the runner fails
//! when an unlisted case fails or a listed case passes, so the list only
//! shrinks. `WATCHPOST_PROMQL_UPDATE_EXPECTED=1` rewrites the list from the
//! current results. When the corpus is absent the runner skips loudly (and
//! fails when `WATCHPOST_REQUIRE_ALL=1`); our own scripts always run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use watchpost::model::ManualClock;
use watchpost::model::{Labels, Matcher, stale_nan};
use watchpost::promql::ast::{AtModifier, Expr};
use watchpost::promql::{Engine, EngineOptions, SeriesValue, Value, parse, parse_series_desc};
use watchpost::storage::memory::MemStorage;
use watchpost::storage::{Appendable, Db, DbOptions, Querier, WalSyncPolicy};

/// The storage the scripts run against: the real database in a temporary
/// directory (default), or the in-memory test double with
/// `WATCHPOST_PROMQL_BACKEND=memory`.
enum Store {
    Db {
        db: Db,
        /// Removed (with the data) when the store is dropped.
        _dir: tempfile::TempDir,
    },
    Memory(MemStorage),
}

impl Store {
    fn new() -> Store {
        if std::env::var("WATCHPOST_PROMQL_BACKEND").as_deref() == Ok("memory") {
            return Store::Memory(MemStorage::new());
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut opts = DbOptions::new(dir.path());
        // Script data lives around the Unix epoch: no retention, no
        // out-of-order limit, no background block cutting, no fsync wait.
        opts.retention_time_ms = 0;
        opts.ooo_window_ms = i64::MAX / 4;
        opts.maintenance_interval = None;
        opts.wal_sync = WalSyncPolicy::Interval(std::time::Duration::from_secs(3600));
        opts.clock = std::sync::Arc::new(ManualClock::new(0));
        Store::Db {
            db: Db::open(opts).expect("open database"),
            _dir: dir,
        }
    }
    fn querier(&self) -> &dyn Querier {
        match self {
            Store::Db { db, .. } => db,
            Store::Memory(m) => m,
        }
    }
    fn appendable(&self) -> &dyn Appendable {
        match self {
            Store::Db { db, .. } => db,
            Store::Memory(m) => m,
        }
    }
}

mod promql_support;

use promql_support::compare::*;
use promql_support::script::*;
// ---------------------------------------------------------------------------
// Classification

const EXPERIMENTAL_FUNCS: &[&str] = &[
    "double_exponential_smoothing",
    "end",
    "histogram_quantiles",
    "info",
    "mad_over_time",
    "max_of",
    "min_of",
    "range",
    "sort_by_label",
    "sort_by_label_desc",
    "start",
    "start_timestamp",
    "step",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
    "limitk",
    "limit_ratio",
];

/// Text heuristic for experimental features (INVENTORY.md "Method").
fn uses_experimental(q: &str) -> bool {
    let lower = q.to_ascii_lowercase();
    let b = lower.as_bytes();
    // Calls of experimental functions: `name(` or `name (`, as a whole word,
    // not the `@ start()` / `@ end()` preprocessors.
    for f in EXPERIMENTAL_FUNCS {
        let mut from = 0;
        while let Some(p) = lower[from..].find(f) {
            let s = from + p;
            let e = s + f.len();
            from = e;
            let before_ok = s == 0 || !(b[s - 1].is_ascii_alphanumeric() || b[s - 1] == b'_');
            let after = lower[e..].trim_start();
            if !before_ok || !after.starts_with('(') {
                continue;
            }
            let pre = lower[..s].trim_end();
            if (*f == "start" || *f == "end") && pre.ends_with('@') {
                continue;
            }
            return true;
        }
    }
    if uses_duration_expression(q) {
        return true;
    }
    [
        "anchored",
        "smoothed",
        "fill(",
        "fill_left",
        "fill_right",
        "</",
        ">/",
        "__type__",
        "__unit__",
    ]
    .iter()
    .any(|k| lower.contains(k))
}

/// Duration expressions (experimental): arithmetic or parentheses inside a
/// `[...]` range/subquery, or an `offset` followed by a parenthesised
/// expression or a call. Constant ones are folded by the parser, so they
/// can only be recognised in the text. String literals are skipped.
fn uses_duration_expression(q: &str) -> bool {
    let b = q.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' | b'`' => {
                let quote = b[i];
                i += 1;
                while i < b.len() && b[i] != quote {
                    if b[i] == b'\\' && quote != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'{' => {
                // Label matchers may contain brackets inside strings only;
                // skip to the closing brace, honouring strings.
                i += 1;
                while i < b.len() && b[i] != b'}' {
                    if matches!(b[i], b'"' | b'\'' | b'`') {
                        let quote = b[i];
                        i += 1;
                        while i < b.len() && b[i] != quote {
                            if b[i] == b'\\' && quote != b'`' {
                                i += 1;
                            }
                            i += 1;
                        }
                    }
                    i += 1;
                }
            }
            b'[' => {
                let end = q[i..].find(']').map_or(b.len(), |e| i + e);
                if q[i + 1..end].bytes().any(|c| b"+-*/%^()".contains(&c)) {
                    return true;
                }
                i = end;
            }
            _ => {
                let lower = q[i..].to_ascii_lowercase();
                if lower.starts_with("offset")
                    && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
                {
                    let rest = lower["offset".len()..].trim_start();
                    let rest = rest.strip_prefix(['-', '+']).unwrap_or(rest).trim_start();
                    let ident: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let after = rest[ident.len()..].trim_start();
                    if rest.starts_with('(')
                        || (!ident.is_empty()
                            && !ident.starts_with(|c: char| c.is_ascii_digit())
                            && after.starts_with('('))
                    {
                        return true;
                    }
                }
            }
        }
        i += 1;
    }
    false
}

fn selectors(e: &Expr, out: &mut Vec<Vec<Matcher>>) {
    match e {
        Expr::VectorSelector(v) => out.push(v.matchers.clone()),
        Expr::MatrixSelector(m) => out.push(m.selector.matchers.clone()),
        Expr::Subquery(s) => selectors(&s.expr, out),
        Expr::Unary(_, x) | Expr::Paren(x) => selectors(x, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        Expr::Call(c) => c.args.iter().for_each(|a| selectors(a, out)),
        Expr::Aggregate(a) => {
            selectors(&a.expr, out);
            if let Some(p) = &a.param {
                selectors(p, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
    }
}

fn contains_word(hay: &str, w: &str) -> bool {
    let b = hay.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    hay.match_indices(w).any(|(i, _)| {
        (i == 0 || !word(b[i - 1])) && (i + w.len() >= b.len() || !word(b[i + w.len()]))
    })
}

/// Labels of a series line whose values could not be parsed (histograms):
/// the text before the first whitespace outside braces.
fn labels_part(line: &str) -> &str {
    let mut depth = 0i32;
    let mut in_str: Option<char> = None;
    for (i, c) in line.char_indices() {
        if let Some(q) = in_str {
            if c == q {
                in_str = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' if depth > 0 => in_str = Some(c),
            '{' => depth += 1,
            '}' => depth -= 1,
            c if c.is_whitespace() && depth == 0 => return &line[..i],
            _ => {}
        }
    }
    line
}

// ---------------------------------------------------------------------------
// Execution

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Stable,
    Experimental,
    Native,
}

struct CaseResult {
    file: String,
    line: usize,
    class: Class,
    outcome: Result<(), String>,
}

struct Runner {
    store: Store,
    engine: Engine,
    /// Label sets of series that hold histogram samples (not loaded).
    hist_series: Vec<Labels>,
    start_timestamps: bool,
    /// Some loaded series has `__type__`/`__unit__` labels (experimental).
    type_unit: bool,
}

impl Runner {
    fn new() -> Self {
        let opts = EngineOptions {
            lookback_delta_ms: 300_000,
            default_subquery_step_ms: 60_000,
            ..EngineOptions::default()
        };
        Runner {
            store: Store::new(),
            engine: Engine::new(opts),
            hist_series: Vec::new(),
            start_timestamps: false,
            type_unit: false,
        }
    }

    fn clear(&mut self) {
        self.store = Store::new();
        self.hist_series.clear();
        self.start_timestamps = false;
        self.type_unit = false;
    }

    fn load(&mut self, step: i64, nhcb: bool, lines: &[(usize, String)]) -> Result<(), String> {
        let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
        for (ln, text) in lines {
            let lp = labels_part(text);
            if lp.ends_with("@st") {
                self.start_timestamps = true;
                continue;
            }
            if text.contains("{{") {
                let d = parse_series_desc(lp).map_err(|e| format!("line {ln}: {}", e.message()))?;
                self.hist_series.push(d.labels);
                continue;
            }
            let d = parse_series_desc(text).map_err(|e| format!("line {ln}: {}", e.message()))?;
            let mut pts = Vec::new();
            for (k, v) in d.values.iter().enumerate() {
                let t = k as i64 * step;
                match v {
                    SeriesValue::Float(f) => pts.push((t, *f)),
                    SeriesValue::Stale => pts.push((t, stale_nan())),
                    SeriesValue::Omitted => {}
                }
            }
            if d.labels.get("__type__").is_some() || d.labels.get("__unit__").is_some() {
                self.type_unit = true;
            }
            series.insert(d.labels, pts);
        }
        if nhcb {
            for l in series.keys() {
                let name = l.metric_name().unwrap_or("");
                for suf in ["_bucket", "_sum", "_count"] {
                    if let Some(base) = name.strip_suffix(suf) {
                        let mut b = l.builder();
                        b.set("__name__", base);
                        b.del("le");
                        self.hist_series.push(b.build());
                    }
                }
            }
        }
        let mut app = self.store.appendable().appender();
        for (l, pts) in &series {
            for (t, v) in pts {
                app.append(l, *t, *v).map_err(|e| e.to_string())?;
            }
        }
        app.commit().map_err(|e| e.to_string())?;
        Ok(())
    }

    fn classify(&self, ev: &Eval, parsed: Result<&Expr, bool>) -> Class {
        let exp_hist = match &ev.expected {
            Expected::Series(l) => l.iter().any(|(_, t)| t.contains("{{")),
            _ => false,
        };
        let sel_hist = match parsed {
            Ok(e) => {
                let mut sels = Vec::new();
                selectors(e, &mut sels);
                sels.iter().any(|ms| {
                    self.hist_series
                        .iter()
                        .any(|l| ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
                })
            }
            // Unparsable (experimental) query: fall back to the text, as
            // INVENTORY.md's script does: a histogram series' name as a word.
            Err(_) => self.hist_series.iter().any(|l| {
                let name = l.metric_name().unwrap_or("");
                !name.is_empty() && contains_word(&ev.query, name)
            }),
        };
        let experimental_syntax = matches!(parsed, Err(true));
        if exp_hist || sel_hist {
            Class::Native
        } else if experimental_syntax
            || self.start_timestamps
            || self.type_unit
            || uses_experimental(&ev.query)
        {
            Class::Experimental
        } else {
            Class::Stable
        }
    }

    fn run_eval(&self, ev: &Eval, expr: &Expr) -> Result<(), String> {
        let t_inst = match (ev.kind, ev.range_vector) {
            (Kind::Instant { .. }, Some((_, t2, _))) => t2,
            (Kind::Instant { t }, None) => t,
            (Kind::Range { .. }, _) => return self.run_at(ev, expr, 0),
        };
        self.run_at(ev, expr, t_inst)?;
        // @-invariance runs (FORMAT.md §7.2 step 3): pin every selector and
        // subquery without `@` to T and evaluate at other times.
        if !calls_time_dependent(expr) {
            let mut pinned = expr.clone();
            pin_at(&mut pinned, t_inst);
            let times = if t_inst == 0 {
                vec![-1000, 0, 1000]
            } else {
                vec![-10 * t_inst, 0, t_inst / 5, t_inst, 10 * t_inst]
            };
            for t in times {
                self.run_at(ev, &pinned, t)
                    .map_err(|e| format!("@-invariance run of `{pinned}` at {t} ms: {e}"))?;
            }
        }
        Ok(())
    }

    /// One run: the query at `t_inst` (instant) or over the eval's range,
    /// checked against all expectations, plus the range-mode cross-check.
    fn run_at(&self, ev: &Eval, expr: &Expr, t_inst: i64) -> Result<(), String> {
        QUERIES_RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let expect_fail = ev.expects.iter().find(|e| e.kind == "fail");
        let ordered = ev.expects.iter().any(|e| e.kind == "ordered");
        let res = match ev.kind {
            Kind::Instant { .. } => self.engine.instant(self.store.querier(), expr, t_inst),
            Kind::Range { start, end, step } => {
                self.engine
                    .range(self.store.querier(), expr, start, end, step)
            }
        };
        if let Some(f) = expect_fail {
            return match res {
                Ok(_) => Err("expected an error, query succeeded".into()),
                Err(e) => check_fail_message(f, &e.to_string()),
            };
        }
        let res = res.map_err(|e| format!("unexpected error: {e}"))?;
        check_annotations("warn", &res.warnings, &ev.expects)?;
        check_annotations("info", &res.infos, &ev.expects)?;
        self.check_value(ev, &res.value, ordered)?;
        // Range-mode cross-check (FORMAT.md §7.2 step 2).
        let skip_cross = ev.range_vector.is_some()
            || matches!(ev.expected, Expected::Str(_))
            || ["start()", "end()", "range()", "step()"]
                .iter()
                .any(|k| ev.query.to_ascii_lowercase().contains(k));
        if let (Kind::Instant { .. }, false) = (ev.kind, skip_cross) {
            let r = self
                .engine
                .range(
                    self.store.querier(),
                    expr,
                    t_inst - 60_000,
                    t_inst + 60_000,
                    60_000,
                )
                .map_err(|e| format!("range-mode cross-check failed: {e}"))?;
            if ordered {
                return Ok(());
            }
            let m =
                matrix_points(&r.value).ok_or("range-mode cross-check did not return a matrix")?;
            if m.windows(2).any(|w| w[0].0 >= w[1].0) {
                return Err("range-mode cross-check: matrix not sorted".into());
            }
            let at_t: Vec<(Labels, f64)> = m
                .iter()
                .filter_map(|(l, p)| p.iter().find(|x| x.0 == t_inst).map(|x| (l.clone(), x.1)))
                .collect();
            let v = match &ev.expected {
                Expected::Scalar(_) => {
                    let x = m
                        .first()
                        .and_then(|(_, p)| p.iter().find(|x| x.0 == t_inst))
                        .map(|x| x.1);
                    match x {
                        Some(v) => Value::Scalar { t: t_inst, v },
                        None => return Err("range-mode cross-check: no scalar point at T".into()),
                    }
                }
                _ => Value::Vector(
                    at_t.into_iter()
                        .map(|(labels, v)| watchpost::promql::VectorSample {
                            labels,
                            t: t_inst,
                            v,
                        })
                        .collect(),
                ),
            };
            self.check_value(ev, &v, false)
                .map_err(|e| format!("range-mode cross-check: {e}"))?;
        }
        Ok(())
    }

    fn check_value(&self, ev: &Eval, v: &Value, ordered: bool) -> Result<(), String> {
        match (&ev.expected, v) {
            (Expected::Scalar(x), Value::Scalar { v, .. }) => {
                if almost_equal(*x, *v) {
                    Ok(())
                } else {
                    Err(format!("expected scalar {x}, got {v}"))
                }
            }
            (Expected::Str(x), Value::String { s, .. }) => {
                if x == s {
                    Ok(())
                } else {
                    Err(format!("expected string {x:?}, got {s:?}"))
                }
            }
            (Expected::Series(lines), Value::Vector(vec))
                if ev.range_vector.is_none() && matches!(ev.kind, Kind::Instant { .. }) =>
            {
                let exp = expected_series(lines, &|_| 0, None)?;
                let got: Vec<(Labels, f64)> = vec.iter().map(|s| (s.labels.clone(), s.v)).collect();
                compare_vector(&got, &exp, ordered)
            }
            (Expected::Series(lines), Value::Matrix(_)) => {
                if ordered {
                    return Err("matrix result with expect ordered".into());
                }
                let (start, step, n) = match (ev.kind, ev.range_vector) {
                    (_, Some((t1, t2, d))) => (t1, d, ((t2 - t1) / d) as usize + 1),
                    (Kind::Range { start, end, step }, None) => {
                        (start, step, ((end - start) / step) as usize + 1)
                    }
                    _ => return Err("unexpected matrix result for an instant query".into()),
                };
                let exp = expected_series(lines, &|k| start + k as i64 * step, Some(n))?;
                let got = matrix_points(v).unwrap_or_default();
                compare_matrix(&got, &exp)
            }
            (e, v) => Err(format!(
                "result kind mismatch: expected {}, got {}",
                match e {
                    Expected::Scalar(_) => "scalar",
                    Expected::Str(_) => "string",
                    Expected::Series(_) => "series",
                },
                v.type_name()
            )),
        }
    }
}

fn check_fail_message(f: &ExpectLine, got: &str) -> Result<(), String> {
    if let Some(m) = &f.msg
        && m != got
    {
        return Err(format!("error text {got:?} != expected {m:?}"));
    }
    if let Some(r) = &f.regex {
        let re = regex::Regex::new(r).map_err(|e| format!("bad regex in test: {e}"))?;
        if !re.is_match(got) {
            return Err(format!("error text {got:?} does not match /{r}/"));
        }
    }
    Ok(())
}

fn run_file(name: &str, text: &str) -> Vec<CaseResult> {
    let cmds = match parse_script(text) {
        Ok(c) => c,
        Err(e) => panic!("{name}: cannot parse script: {e}"),
    };
    let mut r = Runner::new();
    let mut out = Vec::new();
    let mut load_error: Option<String> = None;
    for c in &cmds {
        match c {
            Cmd::Clear => {
                r.clear();
                load_error = None;
            }
            Cmd::Load {
                line,
                step,
                nhcb,
                lines,
            } => {
                if let Err(e) = r.load(*step, *nhcb, lines) {
                    load_error = Some(format!("load at line {line} failed: {e}"));
                }
            }
            Cmd::Eval(ev) => {
                let parsed = parse(&ev.query);
                let class = r.classify(
                    ev,
                    parsed.as_ref().map_err(|e| e.is_experimental_unsupported()),
                );
                let outcome = if let Some(e) = &load_error {
                    Err(e.clone())
                } else {
                    match &parsed {
                        Ok(expr) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            r.run_eval(ev, expr)
                        }))
                        .unwrap_or_else(|_| Err("evaluator panicked".into())),
                        Err(pe) => {
                            if let Some(f) = ev.expects.iter().find(|e| e.kind == "fail") {
                                check_fail_message(f, &pe.to_string())
                                    .or_else(|_| check_fail_message(f, pe.message()))
                            } else if pe.is_experimental_unsupported() {
                                Err(format!("unsupported syntax: {}", pe.message()))
                            } else {
                                Err(format!("parse error: {}", pe.message()))
                            }
                        }
                    }
                };
                // Name the cause when the data needed start timestamps,
                // which the runner does not load (no storage support).
                let outcome = match outcome {
                    Err(e) if r.start_timestamps => Err(format!(
                        "needs start timestamps (@st lines, not loaded): {e}"
                    )),
                    o => o,
                };
                out.push(CaseResult {
                    file: name.to_string(),
                    line: ev.line,
                    class,
                    outcome,
                });
            }
        }
    }
    out
}

/// Number of runs (base, @-invariance) made, for the summary line.
static QUERIES_RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Functions whose result depends on the evaluation time, outside
/// subqueries (FORMAT.md §7.2 step 3): their evals get no @-invariance runs.
fn calls_time_dependent(e: &Expr) -> bool {
    const TIME_FUNCS: &[&str] = &[
        "time",
        "timestamp",
        "minute",
        "hour",
        "day_of_week",
        "day_of_month",
        "day_of_year",
        "days_in_month",
        "month",
        "year",
        "predict_linear",
        "start",
        "end",
        "range",
        "step",
    ];
    match e {
        Expr::Call(c) => {
            TIME_FUNCS.contains(&c.func.as_str()) || c.args.iter().any(calls_time_dependent)
        }
        Expr::Paren(x) | Expr::Unary(_, x) => calls_time_dependent(x),
        Expr::Binary(b) => calls_time_dependent(&b.lhs) || calls_time_dependent(&b.rhs),
        Expr::Aggregate(a) => {
            calls_time_dependent(&a.expr) || a.param.as_deref().is_some_and(calls_time_dependent)
        }
        _ => false,
    }
}

/// Sets `@ t` on every selector and subquery that has no `@` timestamp yet
/// (`@ start()`/`@ end()` are re-pinned), without entering subqueries.
fn pin_at(e: &mut Expr, t: i64) {
    let fix = |at: &mut Option<AtModifier>| {
        if !matches!(at, Some(AtModifier::Timestamp(_))) {
            *at = Some(AtModifier::Timestamp(t));
        }
    };
    match e {
        Expr::VectorSelector(vs) => fix(&mut vs.at),
        Expr::MatrixSelector(ms) => fix(&mut ms.selector.at),
        Expr::Subquery(sq) => fix(&mut sq.at),
        Expr::Paren(x) | Expr::Unary(_, x) => pin_at(x, t),
        Expr::Binary(b) => {
            pin_at(&mut b.lhs, t);
            pin_at(&mut b.rhs, t);
        }
        Expr::Call(c) => c.args.iter_mut().for_each(|a| pin_at(a, t)),
        Expr::Aggregate(a) => {
            pin_at(&mut a.expr, t);
            if let Some(p) = a.param.as_deref_mut() {
                pin_at(p, t);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
    }
}

fn upstream_dir() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("WATCHPOST_PROMQL_TESTDATA") {
        return Some(PathBuf::from(p)).filter(|p| p.is_dir());
    }
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        base.join("../shared/conformance/promql/upstream"),
        base.join("../../shared/conformance/promql/upstream"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}

fn test_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "test"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn expected_failures_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promql_expected_failures.txt")
}

fn load_expected_failures() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(expected_failures_path()).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, r) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (k.to_string(), r.trim().to_string())
        })
        .collect()
}

fn one_line(s: &str) -> String {
    let s: String = s.chars().map(|c| if c == '\n' { ' ' } else { c }).collect();
    if s.chars().count() > 160 {
        s.chars().take(160).collect::<String>() + "..."
    } else {
        s
    }
}

#[test]
fn own_promql_scripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promql");
    let files = test_files(&dir);
    assert!(!files.is_empty(), "no scripts in {}", dir.display());
    let mut failures = Vec::new();
    let mut total = 0;
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&f).unwrap();
        for c in run_file(&name, &text) {
            total += 1;
            if let Err(e) = c.outcome {
                failures.push(format!("{}:{} {e}", c.file, c.line));
            }
        }
    }
    println!(
        "own scripts: {} of {total} evals pass",
        total - failures.len()
    );
    assert!(
        failures.is_empty(),
        "failing evals:\n{}",
        failures.join("\n")
    );
}

#[test]
fn upstream_conformance() {
    let Some(dir) = upstream_dir() else {
        let msg = "SKIPPED: upstream PromQL conformance scripts not found (set WATCHPOST_PROMQL_TESTDATA)";
        eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
        assert!(
            std::env::var("WATCHPOST_REQUIRE_ALL").as_deref() != Ok("1"),
            "{msg}"
        );
        return;
    };
    let mut all = Vec::new();
    for f in test_files(&dir) {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&f).unwrap();
        all.extend(run_file(&name, &text));
    }
    // Per-file table.
    let mut per_file: BTreeMap<&str, [(usize, usize); 3]> = BTreeMap::new();
    for c in &all {
        let e = per_file.entry(&c.file).or_default();
        let k = c.class as usize;
        e[k].1 += 1;
        if c.outcome.is_ok() {
            e[k].0 += 1;
        }
    }
    println!(
        "{:<28} {:>14} {:>14} {:>14}",
        "file", "stable float", "experimental", "native hist"
    );
    let mut tot = [(0usize, 0usize); 3];
    for (f, c) in &per_file {
        println!(
            "{f:<28} {:>14} {:>14} {:>14}",
            format!("{}/{}", c[0].0, c[0].1),
            format!("{}/{}", c[1].0, c[1].1),
            format!("{}/{}", c[2].0, c[2].1)
        );
        for k in 0..3 {
            tot[k].0 += c[k].0;
            tot[k].1 += c[k].1;
        }
    }
    let pct = |a: usize, b: usize| {
        if b == 0 {
            100.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    let (fp, ft) = (tot[0].0 + tot[1].0, tot[0].1 + tot[1].1);
    println!(
        "TOTAL stable float-only: {}/{} ({:.1}%)",
        tot[0].0,
        tot[0].1,
        pct(tot[0].0, tot[0].1)
    );
    println!("TOTAL all float-only:    {fp}/{ft} ({:.1}%)", pct(fp, ft));
    println!(
        "runs (base + @-invariance, each with its range-mode cross-check): {}",
        QUERIES_RUN.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "TOTAL native histogram:  {}/{} (reported, not listed)",
        tot[2].0, tot[2].1
    );

    // Expected failures: every non-passing float case.
    let listed = load_expected_failures();
    let mut current: BTreeMap<String, String> = BTreeMap::new();
    for c in &all {
        if c.class != Class::Native
            && let Err(e) = &c.outcome
        {
            {
                let tag = if c.class == Class::Stable {
                    "stable"
                } else {
                    "experimental"
                };
                current.insert(
                    format!("{}:{}", c.file, c.line),
                    format!("[{tag}] {}", one_line(e)),
                );
            }
        }
    }
    if std::env::var("WATCHPOST_PROMQL_UPDATE_EXPECTED").as_deref() == Ok("1") {
        let mut s = String::from(
            "# Float-only upstream PromQL conformance cases that do not pass yet: `file:line reason`.\n\
             # Maintained by tests/promql_conformance.rs; the list may only shrink.\n\
             # Regenerate with WATCHPOST_PROMQL_UPDATE_EXPECTED=1 cargo test --test promql_conformance.\n",
        );
        for (k, r) in &current {
            let _ = writeln!(s, "{k} {r}");
        }
        std::fs::write(expected_failures_path(), s).unwrap();
        println!("rewrote {}", expected_failures_path().display());
        return;
    }
    let cur_keys: BTreeSet<&String> = current.keys().collect();
    let listed_keys: BTreeSet<&String> = listed.keys().collect();
    let unexpected: Vec<String> = cur_keys
        .difference(&listed_keys)
        .map(|k| format!("{k} {}", current[*k]))
        .collect();
    let now_passing: Vec<&&String> = listed_keys.difference(&cur_keys).collect();
    let mut msg = String::new();
    if !unexpected.is_empty() {
        let _ = writeln!(
            msg,
            "{} unlisted failures:\n{}",
            unexpected.len(),
            unexpected.join("\n")
        );
    }
    if !now_passing.is_empty() {
        let _ = writeln!(
            msg,
            "{} listed cases now pass; remove them from tests/promql_expected_failures.txt:\n{:?}",
            now_passing.len(),
            now_passing
        );
    }
    assert!(msg.is_empty(), "{msg}");
}
