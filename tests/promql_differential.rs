//! Differential test against real Prometheus 2.42 (Debian `prometheus` and
//! `promtool`): the same deterministic data goes into both servers, the same
//! queries run against both over HTTP (instant and range), and the results
//! must be equal: same series label sets, same timestamps, values within
//! 1e-9 relative error (with an absolute floor of 1e-12 for results that
//! are differences of nearly equal numbers, where the last-bit noise of a
//! different summation order is not a semantic difference), NaN == NaN.
//!
//! Data: counters with resets, gauges, classic histograms with `le`
//! buckets, a few label dimensions; 90 minutes on a 15 s grid with 2..=40 ms
//! of jitter per sample. Prometheus gets it through `promtool tsdb
//! create-blocks-from openmetrics`; watchpost through
//! `POST /api/v1/import/prometheus`. OpenMetrics timestamps are float
//! seconds and Prometheus converts them with `int64(f * 1000)`, which may be
//! one millisecond below the written text: the generator applies the same
//! conversion and gives watchpost exactly those milliseconds, so both
//! servers hold identical samples.
//!
//! Why evaluation times are OFF the sample grid: Prometheus 2.x uses
//! closed range/lookback windows `[t-r, t]`, 3.x (which watchpost follows)
//! left-open ones `(t-r, t]`. Instant and range evaluation times are in the
//! middle of the 15 s grid, all ranges and offsets are multiples of 15 s,
//! and subquery steps divide the hour the data starts on, so no sample ever
//! sits on a window's left edge (jitter is >= 1 ms after conversion) and
//! both window kinds select the same samples.
//!
//! Deliberate 2.x-vs-3.x differences (the allowlist, [`RENAMED`]):
//! - `holt_winters` is called `double_exponential_smoothing` in 3.x; the
//!   watchpost side runs the 3.x name, the Prometheus side the 2.x one.
//! - `rate`/`increase` at the start of a series: 3.x (since
//!   prometheus/prometheus#13725) limits the left extrapolation to half an
//!   interval before capping it at the counter's zero point, 2.42 capped
//!   first and may extrapolate further. The main comparisons never have a
//!   series start inside a window; [`START_QUERIES`] run from the start of
//!   the data, must be equal once no window reaches the start, and may
//!   differ by up to [`START_TOLERANCE`] before (see
//!   `start_of_data_differs_only_by_extrapolation`).
//! - Results of unordered queries are compared as sets of series (both
//!   servers are free to order them differently); `sort`, `sort_desc`,
//!   `topk` and `bottomk` instant results are also compared in order (by
//!   value, so ties may be ordered either way).
//!
//! Skips loudly when the binaries are missing; fails instead when
//! `WATCHPOST_REQUIRE_ALL=1`. Bounded: each server start waits at most 60 s
//! and every request has a 30 s timeout; child processes are killed on drop.

mod harness;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Server, now_ms};
use serde_json::Value;
use watchpost::cli::client::{form, request};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";
const STEP_MS: i64 = 15_000;
/// 90 minutes of data.
const STEPS: i64 = 360;
const INSTANCES: [&str; 3] = ["i0", "i1", "i2"];
const METHODS: [&str; 2] = ["get", "post"];
const CODES: [&str; 2] = ["200", "500"];
const LES: [&str; 5] = ["0.05", "0.1", "0.5", "1", "+Inf"];

/// Queries whose 3.x spelling differs from the 2.x one: (Prometheus 2.42
/// text, watchpost text). Everything else runs verbatim on both.
const RENAMED: &[(&str, &str)] = &[(
    "holt_winters(temperature_celsius[10m], 0.5, 0.3)",
    "double_exponential_smoothing(temperature_celsius[10m], 0.5, 0.3)",
)];

/// The queries; `@AT@` is replaced by an off-grid `@` timestamp (seconds).
const QUERIES: &[&str] = &[
    // Counter and gauge range functions.
    "rate(http_requests_total[5m])",
    "irate(http_requests_total[5m])",
    "increase(http_requests_total[10m])",
    "rate(http_requests_total{code=\"500\"}[90s])",
    "delta(cpu_usage[5m])",
    "idelta(cpu_usage[5m])",
    "deriv(temperature_celsius[10m])",
    "predict_linear(temperature_celsius[10m], 600)",
    "resets(http_requests_total[30m])",
    "changes(cpu_usage[10m])",
    // *_over_time.
    "avg_over_time(cpu_usage[5m])",
    "min_over_time(temperature_celsius[10m])",
    "max_over_time(temperature_celsius[10m])",
    "sum_over_time(http_requests_total[2m])",
    "count_over_time(cpu_usage[7m])",
    "quantile_over_time(0.9, temperature_celsius[15m])",
    "quantile_over_time(0.25, cpu_usage[5m])",
    "stddev_over_time(cpu_usage[10m])",
    "stdvar_over_time(temperature_celsius[10m])",
    "last_over_time(cpu_usage[5m])",
    "present_over_time(up[5m])",
    "absent_over_time(nonexistent_metric[5m])",
    // Aggregations.
    "sum by (code) (rate(http_requests_total[5m]))",
    "sum without (instance) (rate(http_requests_total[5m]))",
    "avg by (instance) (cpu_usage)",
    "max by (mode) (cpu_usage)",
    "min without (mode) (cpu_usage)",
    "count(http_requests_total) by (instance)",
    "group by (method) (http_requests_total)",
    "stddev by (mode) (cpu_usage)",
    "stdvar(temperature_celsius)",
    "topk(3, rate(http_requests_total[5m]))",
    "bottomk(2, cpu_usage)",
    "topk by (code) (1, rate(http_requests_total[5m]))",
    "quantile(0.75, cpu_usage)",
    "quantile by (mode) (0.5, cpu_usage)",
    "count_values(\"value\", up)",
    "count_values(\"tenth\", floor(cpu_usage * 10))",
    // Binary operators, matching, comparisons, set operators.
    "rate(http_requests_total{code=\"500\"}[5m]) / ignoring(code) rate(http_requests_total{code=\"200\"}[5m])",
    "rate(http_requests_total[5m]) * on(instance, job) group_left(mode) cpu_usage{mode=\"user\"}",
    "cpu_usage{mode=\"system\"} + on(instance) group_right temperature_celsius",
    "cpu_usage{mode=\"user\"} - ignoring(mode) cpu_usage{mode=\"system\"}",
    "cpu_usage > 0.5",
    "cpu_usage > bool 0.5",
    "temperature_celsius <= bool 25",
    "rate(http_requests_total[5m]) >= 0.5",
    "up == 1 and on(instance) cpu_usage{mode=\"user\"} > 0.3",
    "cpu_usage and ignoring(mode) up == 0",
    "http_requests_total{code=\"200\"} or http_requests_total{method=\"post\"}",
    "http_requests_total unless http_requests_total{code=\"500\"}",
    "100 * (1 - sum(rate(http_requests_total{code=\"500\"}[5m])) / sum(rate(http_requests_total[5m])))",
    "-cpu_usage + 2 ^ 3 ^ 0.5 % 2",
    // Histograms.
    "histogram_quantile(0.95, sum by (le) (rate(rt_seconds_bucket[5m])))",
    "histogram_quantile(0.5, sum by (le, method) (rate(rt_seconds_bucket[5m])))",
    "histogram_quantile(0.99, rate(rt_seconds_bucket[10m]))",
    "rate(rt_seconds_sum[5m]) / rate(rt_seconds_count[5m])",
    // Subqueries, offset, @.
    "max_over_time(rate(http_requests_total[2m])[10m:1m])",
    "avg_over_time(cpu_usage[10m:30s])",
    "rate(http_requests_total[5m] offset 10m)",
    "cpu_usage offset 5m",
    "cpu_usage @ @AT@",
    "rate(http_requests_total[5m] @ @AT@)",
    "sum(temperature_celsius offset -5m)",
    // Labels, absent, scalar/vector, time.
    "label_replace(cpu_usage, \"host\", \"$1\", \"instance\", \"i(.*)\")",
    "label_join(cpu_usage, \"id\", \"-\", \"instance\", \"mode\")",
    "absent(nonexistent_metric{job=\"x\"})",
    "absent(up)",
    "scalar(sum(up))",
    "vector(time()) - scalar(max(timestamp(cpu_usage)))",
    "timestamp(cpu_usage)",
    "time() - timestamp(temperature_celsius)",
    "hour(vector(time()))",
    "minute(timestamp(up))",
    "day_of_week()",
    // Math functions.
    "clamp(cpu_usage, 0.2, 0.8)",
    "round(temperature_celsius, 0.5)",
    "ln(temperature_celsius) + sqrt(abs(delta(temperature_celsius[5m])))",
    "exp(cpu_usage) * sgn(cpu_usage - 0.5)",
    // Sorting.
    "sort(cpu_usage)",
    "sort_desc(rate(http_requests_total[5m]))",
    "holt_winters(temperature_celsius[10m], 0.5, 0.3)",
];

/// A child process killed (and reaped) when dropped, so a failing assertion
/// never leaves a server behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// watchpost, killed on drop.
struct WatchpostGuard(Option<Server>);

impl Drop for WatchpostGuard {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.kill();
        }
    }
}

fn require_all() -> bool {
    std::env::var("WATCHPOST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// SplitMix64: deterministic, no dependency on a `rand` version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The generated data in both encodings.
struct Data {
    /// OpenMetrics for promtool (float-second timestamps, `# EOF`).
    openmetrics: String,
    /// Prometheus text with ms timestamps for the watchpost import.
    text: String,
    samples: usize,
}

/// Milliseconds Prometheus will store for an OpenMetrics timestamp written
/// as `text` (it parses float seconds and truncates `f * 1000`).
fn prom_ms(text: &str) -> i64 {
    (text.parse::<f64>().expect("timestamp") * 1000.0) as i64
}

fn generate(t0: i64) -> Data {
    let mut rng = Rng(0x5EED_0006);
    let mut om = String::new();
    let mut text = String::new();
    let mut samples = 0;
    let mut counters: Vec<f64> = vec![0.0; INSTANCES.len() * METHODS.len() * CODES.len()];
    let mut cpu: Vec<f64> = vec![0.5; INSTANCES.len() * 2];
    let mut buckets: Vec<[f64; 5]> = vec![[0.0; 5]; INSTANCES.len() * METHODS.len()];
    let mut sums: Vec<f64> = vec![0.0; INSTANCES.len() * METHODS.len()];
    for step in 0..STEPS {
        for (ii, inst) in INSTANCES.iter().enumerate() {
            // One scrape per instance: every series of it shares a timestamp.
            let jitter = 2 + rng.below(39) as i64;
            let ms = t0 + step * STEP_MS + jitter;
            let ts_text = format!("{}.{:03}", ms / 1000, ms % 1000);
            let t_ms = prom_ms(&ts_text);
            let mut emit = |series: String, v: f64| {
                let _ = writeln!(om, "{series} {v} {ts_text}");
                let _ = writeln!(text, "{series} {v} {t_ms}");
                samples += 1;
            };
            let base = format!("job=\"api\",instance=\"{inst}\"");
            let down = ii == 2 && (100..130).contains(&step);
            emit(format!("up{{{base}}}"), if down { 0.0 } else { 1.0 });
            for (mi, m) in METHODS.iter().enumerate() {
                for (ci, c) in CODES.iter().enumerate() {
                    let k = (ii * METHODS.len() + mi) * CODES.len() + ci;
                    let per_step = (1 + k as u64 * 3) as f64 * if ci == 1 { 0.1 } else { 1.0 };
                    counters[k] += (per_step * (0.5 + rng.f()) * 15.0).round();
                    // Counter resets at series-specific steps.
                    if (step + k as i64 * 37) % 150 == 149 {
                        counters[k] = rng.below(5) as f64;
                    }
                    emit(
                        format!("http_requests_total{{{base},method=\"{m}\",code=\"{c}\"}}"),
                        counters[k],
                    );
                }
            }
            for (mi, mode) in ["user", "system"].iter().enumerate() {
                let k = ii * 2 + mi;
                cpu[k] = (cpu[k] + (rng.f() - 0.5) * 0.2).clamp(0.0, 1.0);
                emit(format!("cpu_usage{{{base},mode=\"{mode}\"}}"), cpu[k]);
            }
            let temp = 20.0 + 8.0 * ((step as f64) / 40.0 + ii as f64).sin() + rng.f();
            emit(format!("temperature_celsius{{{base}}}"), temp);
            for (mi, m) in METHODS.iter().enumerate() {
                let k = ii * METHODS.len() + mi;
                let n = rng.below(20);
                for _ in 0..n {
                    let obs = rng.f().powi(3) * 2.0;
                    sums[k] += obs;
                    for (bi, le) in LES.iter().enumerate() {
                        if *le == "+Inf" || obs <= le.parse::<f64>().expect("le") {
                            buckets[k][bi] += 1.0;
                        }
                    }
                }
                for (bi, le) in LES.iter().enumerate() {
                    emit(
                        format!("rt_seconds_bucket{{{base},method=\"{m}\",le=\"{le}\"}}"),
                        buckets[k][bi],
                    );
                }
                emit(format!("rt_seconds_sum{{{base},method=\"{m}\"}}"), sums[k]);
                emit(
                    format!("rt_seconds_count{{{base},method=\"{m}\"}}"),
                    buckets[k][LES.len() - 1],
                );
            }
        }
    }
    om.push_str("# EOF\n");
    Data {
        openmetrics: om,
        text,
        samples,
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn http_get(base: &str, path: &str) -> Result<(u16, Vec<u8>), String> {
    request(
        "GET",
        &format!("{base}{path}"),
        &[],
        b"",
        Duration::from_secs(30),
    )
    .map(|r| (r.status, r.body))
    .map_err(|e| e.to_string())
}

/// Starts Prometheus on `tsdb` and waits (at most 60 s) until it is ready.
fn start_prometheus(dir: &Path, tsdb: &Path) -> (Killed, String) {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        "global:\n  scrape_interval: 15s\nscrape_configs: []\n",
    )
    .expect("cfg");
    let port = free_port();
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
    let child = Command::new(PROMETHEUS)
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--config.file={}", cfg.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn prometheus");
    let guard = Killed(child);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = http_get(&base, "/-/ready") {
            return (guard, base);
        }
        assert!(
            Instant::now() < deadline,
            "prometheus not ready within 60 s; log:\n{}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a query (path and form) and returns `data`, or the error body.
fn query(base: &str, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
    let (status, body) = http_get(base, &format!("{path}?{}", form(params)))?;
    let v: Value = serde_json::from_slice(&body).map_err(|e| {
        format!(
            "status {status}, not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    })?;
    if status != 200 || v["status"] != "success" {
        return Err(format!("status {status}: {v}"));
    }
    Ok(v["data"].clone())
}

fn num(v: &Value) -> f64 {
    match v.as_str() {
        Some("NaN") => f64::NAN,
        Some("+Inf") => f64::INFINITY,
        Some("-Inf") => f64::NEG_INFINITY,
        Some(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("bad sample value {s:?}")),
        None => panic!("sample value is not a string: {v}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) || (a - b).abs() <= 1e-12
}

/// `[t, "v"]` pairs as (ms, value).
fn points(v: &Value) -> Vec<(i64, f64)> {
    let one = |p: &Value| {
        (
            (p[0].as_f64().expect("time") * 1000.0).round() as i64,
            num(&p[1]),
        )
    };
    match v.as_array() {
        Some(a) if a.first().is_some_and(|x| x.is_array()) => a.iter().map(one).collect(),
        _ => vec![one(v)],
    }
}

/// One comparison: description, API path, extra parameters.
type Case = (String, &'static str, Vec<(&'static str, String)>);

/// One result series: canonical label set (sorted) and its points.
type Series = (String, Vec<(i64, f64)>);

fn series(data: &Value) -> (String, Vec<Series>) {
    let kind = data["resultType"].as_str().unwrap_or("?").to_string();
    let r = &data["result"];
    let out = match kind.as_str() {
        "vector" | "matrix" => r
            .as_array()
            .expect("result array")
            .iter()
            .map(|s| {
                let labels: BTreeMap<String, String> =
                    serde_json::from_value(s["metric"].clone()).expect("labels");
                let pts = if kind == "vector" {
                    points(&s["value"])
                } else {
                    points(&s["values"])
                };
                (format!("{labels:?}"), pts)
            })
            .collect(),
        "scalar" => vec![("<scalar>".to_string(), points(r))],
        other => panic!("unexpected resultType {other}"),
    };
    (kind, out)
}

/// Compares two results; `None` when equal, else a description.
fn compare(prom: &Value, wp: &Value, ordered: bool) -> Option<String> {
    let (pk, mut ps) = series(prom);
    let (wk, mut ws) = series(wp);
    if pk != wk {
        return Some(format!("resultType {pk} (prometheus) vs {wk} (watchpost)"));
    }
    if ordered {
        // Same values in the same order; ties may order series either way.
        let pv: Vec<f64> = ps.iter().flat_map(|s| s.1.iter().map(|p| p.1)).collect();
        let wv: Vec<f64> = ws.iter().flat_map(|s| s.1.iter().map(|p| p.1)).collect();
        if pv.len() != wv.len() || pv.iter().zip(&wv).any(|(a, b)| !close(*a, *b)) {
            return Some(format!(
                "order differs: prometheus {pv:?}, watchpost {wv:?}"
            ));
        }
    }
    ps.sort_by(|a, b| a.0.cmp(&b.0));
    ws.sort_by(|a, b| a.0.cmp(&b.0));
    let pl: Vec<&String> = ps.iter().map(|s| &s.0).collect();
    let wl: Vec<&String> = ws.iter().map(|s| &s.0).collect();
    if pl != wl {
        return Some(format!(
            "series differ:\n  prometheus {pl:?}\n  watchpost  {wl:?}"
        ));
    }
    for ((l, p), (_, w)) in ps.iter().zip(&ws) {
        let same =
            p.len() == w.len() && p.iter().zip(w).all(|(a, b)| a.0 == b.0 && close(a.1, b.1));
        if !same {
            return Some(format!("{l}:\n  prometheus {p:?}\n  watchpost  {w:?}"));
        }
    }
    None
}

/// Range queries run from the start of the data (5 m windows, 60 s step).
const START_QUERIES: &[&str] = &[
    "rate(http_requests_total[5m])",
    "histogram_quantile(0.95, sum by (le) (rate(rt_seconds_bucket[5m])))",
    "histogram_quantile(0.5, sum by (le, method) (rate(rt_seconds_bucket[5m])))",
];

/// Largest relative difference allowed while a window still reaches the
/// start of the data: the 2.42 order extrapolates at most one extra scrape
/// interval (15 s) on top of the 5 m window's samples, and observed
/// differences are a few percent.
const START_TOLERANCE: f64 = 0.1;

/// Compares a [`START_QUERIES`] range result. Points whose 5 m window starts
/// after every series' first sample (`t0` plus at most 40 ms of jitter) must
/// be equal; earlier points may differ by [`START_TOLERANCE`], and for plain
/// `rate` watchpost's value must not exceed Prometheus's (3.x extrapolates
/// less, never more). Returns (description of a violation, number of early
/// points that differ).
fn start_of_data_differs_only_by_extrapolation(
    prom: &Value,
    wp: &Value,
    t0: i64,
    plain_rate: bool,
) -> (Option<String>, usize) {
    let (_, mut ps) = series(prom);
    let (_, mut ws) = series(wp);
    ps.sort_by(|a, b| a.0.cmp(&b.0));
    ws.sort_by(|a, b| a.0.cmp(&b.0));
    let pl: Vec<&String> = ps.iter().map(|s| &s.0).collect();
    let wl: Vec<&String> = ws.iter().map(|s| &s.0).collect();
    if pl != wl {
        let msg = format!("series differ:\n  prometheus {pl:?}\n  watchpost  {wl:?}");
        return (Some(msg), 0);
    }
    let mut early_diffs = 0;
    for ((l, p), (_, w)) in ps.iter().zip(&ws) {
        let times_equal = p.len() == w.len() && p.iter().zip(w).all(|(a, b)| a.0 == b.0);
        if !times_equal {
            let msg = format!("{l}: timestamps differ\n  prometheus {p:?}\n  watchpost  {w:?}");
            return (Some(msg), early_diffs);
        }
        for (a, b) in p.iter().zip(w) {
            let early = a.0 - 300_000 < t0 + 40;
            let ok = if early {
                if !close(a.1, b.1) {
                    early_diffs += 1;
                }
                (a.1 - b.1).abs() <= START_TOLERANCE * a.1.abs().max(b.1.abs())
                    && !(plain_rate && b.1 > a.1 * (1.0 + 1e-9))
            } else {
                close(a.1, b.1)
            };
            if !ok {
                let msg = format!(
                    "{l} at {} (window reaches the data start: {early}): prometheus {}, watchpost {}",
                    a.0, a.1, b.1
                );
                return (Some(msg), early_diffs);
            }
        }
    }
    (None, early_diffs)
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

#[test]
fn same_results_as_prometheus_2_42() {
    let missing: Vec<&str> = [PROMETHEUS, PROMTOOL]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if !missing.is_empty() {
        assert!(
            !require_all(),
            "WATCHPOST_REQUIRE_ALL=1 but {missing:?} missing (Debian package `prometheus`)"
        );
        eprintln!(
            "\n*** SKIPPED promql_differential: {missing:?} not installed (Debian package \
             `prometheus` 2.42); set WATCHPOST_REQUIRE_ALL=1 to make this a failure ***\n"
        );
        return;
    }
    let started = Instant::now();
    // Two hours ago, on an hour boundary: inside both servers' retention,
    // and subquery steps (which Prometheus aligns to multiples of the
    // step since the epoch) land on the 15 s grid, never on a sample.
    let t0 = (now_ms() / 3_600_000 - 2) * 3_600_000;
    let data = generate(t0);

    let tmp = tempfile::tempdir().expect("tempdir");
    let om = tmp.path().join("data.om");
    std::fs::write(&om, &data.openmetrics).expect("write openmetrics");
    let tsdb = tmp.path().join("prom");
    let out = Command::new(PROMTOOL)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&tsdb)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool create-blocks-from openmetrics failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (_prom_guard, prom) = start_prometheus(tmp.path(), &tsdb);

    let wp_data = tmp.path().join("watchpost");
    let wp = WatchpostGuard(Some(Server::start(&wp_data, &[])));
    let server = wp.0.as_ref().expect("server");
    server.wait_ready();
    let r = server.req("POST", "/api/v1/import/prometheus", data.text.as_bytes());
    assert!(
        (200..300).contains(&r.status),
        "import: {} {}",
        r.status,
        r.text()
    );
    let wpb = server.base.clone();

    // Both hold everything: the sample count over the whole range agrees.
    // (Per metric name: 2.42 refuses a vector whose series collide once
    // `count_over_time` drops `__name__`.)
    let at = secs(t0 + STEPS * STEP_MS);
    let total = [
        "up",
        "http_requests_total",
        "cpu_usage",
        "temperature_celsius",
        "rt_seconds_bucket",
        "rt_seconds_sum",
        "rt_seconds_count",
    ]
    .map(|m| format!("sum(count_over_time({m}[2h] @ {at}))"))
    .join(" + ");
    for base in [&prom, &wpb] {
        let d = query(base, "/api/v1/query", &[("query", &total), ("time", &at)])
            .unwrap_or_else(|e| panic!("{base}: {e}"));
        let n = num(&d["result"][0]["value"][1]);
        assert_eq!(
            n as usize, data.samples,
            "{base} holds {n} of {} samples",
            data.samples
        );
    }

    // Mid-grid evaluation times (7.5 s past a 15 s boundary).
    let instant_times = [t0 + 40 * 60_000 + 7_500, t0 + 77 * 60_000 + 22_500];
    let range_start = secs(t0 + 32 * 60_000 + 7_500);
    let range_end = secs(t0 + 88 * 60_000 + 7_500);
    let at_ts = secs(t0 + 61 * 60_000 + 37_500);

    let mut failures = Vec::new();
    let mut nonempty = 0;
    let mut checks = 0;
    for q in QUERIES {
        let pq = q.replace("@AT@", &at_ts);
        let wq = RENAMED
            .iter()
            .find(|(p, _)| *p == *q)
            .map_or(pq.clone(), |(_, w)| w.replace("@AT@", &at_ts));
        let ordered = ["sort", "topk", "bottomk"].iter().any(|f| q.starts_with(f));
        let mut cases: Vec<Case> = instant_times
            .iter()
            .map(|t| {
                (
                    format!("instant @{}", secs(*t)),
                    "/api/v1/query",
                    vec![("time", secs(*t))],
                )
            })
            .collect();
        for step in ["60", "90"] {
            cases.push((
                format!("range step {step}s"),
                "/api/v1/query_range",
                vec![
                    ("start", range_start.clone()),
                    ("end", range_end.clone()),
                    ("step", step.to_string()),
                ],
            ));
        }
        for (what, path, extra) in cases {
            checks += 1;
            let params = |query: &str| -> Vec<(String, String)> {
                let mut v = vec![("query".to_string(), query.to_string())];
                v.extend(extra.iter().map(|(k, x)| (k.to_string(), x.clone())));
                v
            };
            let run = |base: &str, q: &str| {
                let p = params(q);
                let refs: Vec<(&str, &str)> =
                    p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                query(base, path, &refs)
            };
            let pd = match run(&prom, &pq) {
                Ok(d) => d,
                Err(e) => panic!("prometheus rejected {pq} ({what}): {e}"),
            };
            let wd = match run(&wpb, &wq) {
                Ok(d) => d,
                Err(e) => {
                    failures.push(format!("{q} [{what}]: watchpost error {e}"));
                    continue;
                }
            };
            if pd["result"].as_array().is_some_and(|a| !a.is_empty())
                || pd["resultType"] == "scalar"
            {
                nonempty += 1;
            }
            // Range results are never ordered.
            if let Some(diff) = compare(&pd, &wd, ordered && path == "/api/v1/query") {
                failures.push(format!("{q} [{what}]: {diff}"));
            }
        }
    }
    // From the start of the data: only the documented extrapolation
    // difference, and it must actually show (else the data no longer
    // exercises it and this check would be vacuous).
    let mut early_diffs = 0;
    for q in START_QUERIES {
        let (start, end) = (secs(t0 + 7_500), secs(t0 + 20 * 60_000 + 7_500));
        let p = [
            ("query", *q),
            ("start", &start),
            ("end", &end),
            ("step", "60"),
        ];
        let pd = query(&prom, "/api/v1/query_range", &p)
            .unwrap_or_else(|e| panic!("prometheus rejected {q} (from data start): {e}"));
        let wd = match query(&wpb, "/api/v1/query_range", &p) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{q} [from data start]: watchpost error {e}"));
                continue;
            }
        };
        let plain_rate = q.starts_with("rate(");
        let (bad, n) = start_of_data_differs_only_by_extrapolation(&pd, &wd, t0, plain_rate);
        early_diffs += n;
        if let Some(bad) = bad {
            failures.push(format!("{q} [from data start]: {bad}"));
        }
    }
    assert!(
        early_diffs > 0,
        "no result differs near the start of the data: the 2.42-vs-3.x \
         extrapolation difference is no longer exercised"
    );
    eprintln!(
        "promql_differential: {} queries, {checks} comparisons ({nonempty} non-empty), \
         {} differ, {:.1} s",
        QUERIES.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(QUERIES.len() >= 60);
    // Guards against a vacuous pass (e.g. data not loaded, every result empty).
    assert!(
        nonempty * 4 >= checks * 3,
        "only {nonempty} of {checks} comparisons had data"
    );
    assert!(
        failures.is_empty(),
        "{} of {checks} comparisons differ from Prometheus 2.42:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
