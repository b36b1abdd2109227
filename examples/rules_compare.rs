//! Helper of `benches/rules_compare.sh` (rule evaluation, watchpost vs
//! Prometheus 2.42 on the same rules and data). Two subcommands:
//!
//! - `rules FILE [INTERVAL]`: writes the benchmark's rule file: 1,000
//!   alerting rules in 10 groups of 100 over the storage issue's 10k-series
//!   workload (`benches/workload`), modelled on the seed's HighErrorRate,
//!   SlowResponseTime (`histogram_quantile` over `_bucket` rates),
//!   QueueBacklog and system-threshold rules: per-endpoint, per-method,
//!   per-instance and per-gauge variants, each with `for`, static labels and
//!   templated annotations. INTERVAL (default `15s`) is every group's
//!   `interval`.
//! - `feed --url URL... [--history-min M] [--live-min N]`: pushes the
//!   workload as Prometheus remote write 1.0 to every URL. The workload's
//!   time axis is placed so that its first M minutes (default 60) lie in the
//!   past and are sent at once (history for the `[5m]` windows), and the
//!   next N minutes (default 30) are sent live, each scrape once the wall
//!   clock has passed its timestamp: rules evaluating at "now" see
//!   continuous data on both servers. Every request goes to every URL in
//!   turn, so both receive the same samples at the same time. Prints
//!   `history_done` once the history is in, then one line per live scrape.
//!
//! Everything is deterministic for a given start time (the workload's own
//! PRNG), so both servers get identical samples.

#[path = "../benches/workload/mod.rs"]
mod workload;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;
use watchpost::ingest::remote_write::pb::v1;
use watchpost::model::Labels;
use workload::{Workload, WorkloadConfig};

fn die(msg: &str) -> ! {
    eprintln!("rules_compare: {msg}");
    std::process::exit(2)
}

// ---------------------------------------------------------------- rules --

/// One alerting rule of the generated file.
struct AlertRule {
    name: String,
    expr: String,
    for_: &'static str,
    severity: &'static str,
    summary: String,
    description: String,
}

fn endpoint(e: usize) -> String {
    format!("/api/v1/resource{e}")
}

/// Error ratio by instance for one endpoint (and optionally one method):
/// both selectors read the same series, like the seed's HighErrorRate
/// written per service.
fn error_ratio(sel: &str) -> String {
    format!(
        "sum by (instance) (rate(http_requests_total{{{sel},status=~\"5..\"}}[5m])) \
         / sum by (instance) (rate(http_requests_total{{{sel}}}[5m]))"
    )
}

fn api_errors(rules: &mut Vec<AlertRule>) {
    for e in 0..25 {
        let ep = endpoint(e);
        let sel = format!("job=\"api\",endpoint=\"{ep}\"");
        rules.push(AlertRule {
            name: "HighErrorRate".into(),
            expr: format!("{} > 0.45", error_ratio(&sel)),
            for_: "1m",
            severity: "warning",
            summary: format!("High API error rate on {{{{ $labels.instance }}}} for {ep}"),
            description: "Error rate is {{ $value | humanizePercentage }}".into(),
        });
        rules.push(AlertRule {
            name: "VeryHighErrorRate".into(),
            expr: format!("{} > 0.6", error_ratio(&sel)),
            for_: "2m",
            severity: "critical",
            summary: format!("Very high API error rate on {{{{ $labels.instance }}}} for {ep}"),
            description: "Error rate is {{ $value | humanizePercentage }}".into(),
        });
        rules.push(AlertRule {
            name: "HighRequestRate".into(),
            expr: format!("sum by (instance) (rate(http_requests_total{{{sel}}}[5m])) > 42"),
            for_: "1m",
            severity: "info",
            summary: format!("{ep} on {{{{ $labels.instance }}}} is busy"),
            description: "{{ $value | humanize }} requests/s".into(),
        });
        rules.push(AlertRule {
            name: "ServerErrorBurst".into(),
            expr: format!(
                "sum by (instance, status) (increase(http_requests_total{{{sel},status=~\"5..\"}}[5m])) > 1000"
            ),
            for_: "30s",
            severity: "warning",
            summary: format!(
                "{{{{ $labels.status }}}} burst on {{{{ $labels.instance }}}} for {ep}"
            ),
            description: "{{ printf \"%.0f\" $value }} errors in 5 minutes".into(),
        });
    }
}

fn api_errors_by_method(rules: &mut Vec<AlertRule>) {
    for m in ["GET", "POST", "PUT", "DELETE"] {
        for e in 0..25 {
            let ep = endpoint(e);
            let sel = format!("job=\"api\",method=\"{m}\",endpoint=\"{ep}\"");
            rules.push(AlertRule {
                name: "HighErrorRateByMethod".into(),
                expr: format!("{} > 0.7", error_ratio(&sel)),
                for_: "1m",
                severity: "warning",
                summary: format!("{m} {ep} failing on {{{{ $labels.instance }}}}"),
                description: "Error rate is {{ $value | humanizePercentage }}".into(),
            });
        }
    }
}

fn quantile(q: f64, by: &str, sel: &str) -> String {
    format!(
        "histogram_quantile({q}, sum by ({by}le) (rate(http_request_duration_seconds_bucket{{{sel}}}[5m])))"
    )
}

fn api_latency(rules: &mut Vec<AlertRule>) {
    for e in 0..20 {
        let ep = endpoint(e);
        let sel = format!("job=\"api\",endpoint=\"{ep}\"");
        for (name, q, thr, sev, for_) in [
            ("SlowResponseTime", 0.95, 25.0, "warning", "1m"),
            ("VerySlowResponseTime", 0.99, 29.0, "critical", "2m"),
            ("SlowMedianResponseTime", 0.5, 5.0, "info", "1m"),
        ] {
            rules.push(AlertRule {
                name: name.into(),
                expr: format!("{} > {thr}", quantile(q, "instance, ", &sel)),
                for_,
                severity: sev,
                summary: format!(
                    "API response time degraded on {{{{ $labels.instance }}}} for {ep}"
                ),
                description: format!("p{} is {{{{ $value | humanizeDuration }}}}", q * 100.0),
            });
        }
        rules.push(AlertRule {
            name: "HighAverageLatency".into(),
            expr: format!(
                "sum by (instance) (rate(http_request_duration_seconds_sum{{{sel}}}[5m])) \
                 / sum by (instance) (rate(http_request_duration_seconds_count{{{sel}}}[5m])) > 6"
            ),
            for_: "1m",
            severity: "warning",
            summary: format!("Average latency of {ep} on {{{{ $labels.instance }}}}"),
            description: "{{ $value | humanizeDuration }} on average".into(),
        });
        rules.push(AlertRule {
            name: "FewFastRequests".into(),
            expr: format!(
                "sum by (instance) (rate(http_request_duration_seconds_bucket{{{sel},le=\"0.1\"}}[5m])) \
                 / sum by (instance) (rate(http_request_duration_seconds_count{{{sel}}}[5m])) < 0.2"
            ),
            for_: "2m",
            severity: "info",
            summary: format!("Few requests to {ep} under 100ms on {{{{ $labels.instance }}}}"),
            description: "{{ $value | humanizePercentage }} under 100ms".into(),
        });
    }
}

fn api_latency_by_instance(rules: &mut Vec<AlertRule>) {
    for i in 0..10 {
        let inst = format!("10.0.0.{i}:9100");
        for e in 0..10 {
            let ep = endpoint(e);
            let sel = format!("job=\"api\",endpoint=\"{ep}\",instance=\"{inst}\"");
            rules.push(AlertRule {
                name: "SlowResponseTimeOnInstance".into(),
                expr: format!("{} > 27", quantile(0.95, "", &sel)),
                for_: "1m",
                severity: "warning",
                summary: format!("{ep} slow on {inst}"),
                description: "p95 is {{ $value | humanizeDuration }}".into(),
            });
        }
    }
}

fn api_instances(rules: &mut Vec<AlertRule>) {
    for i in 0..10 {
        let inst = format!("10.0.0.{i}:9100");
        for status in ["200", "201", "404", "500", "503"] {
            let sel = format!("job=\"api\",instance=\"{inst}\",status=\"{status}\"");
            rules.push(AlertRule {
                name: format!("HighStatus{status}Rate"),
                expr: format!("sum by (endpoint) (rate(http_requests_total{{{sel}}}[5m])) > 11"),
                for_: "1m",
                severity: "warning",
                summary: format!("Many {status} answers from {{{{ $labels.endpoint }}}} on {inst}"),
                description: "{{ $value | humanize }}/s".into(),
            });
            rules.push(AlertRule {
                name: format!("Status{status}RateJump"),
                expr: format!(
                    "sum by (method) (rate(http_requests_total{{{sel}}}[1m])) \
                     > 1.5 * sum by (method) (rate(http_requests_total{{{sel}}}[5m]))"
                ),
                for_: "2m",
                severity: "info",
                summary: format!("{status} rate of {{{{ $labels.method }}}} jumped on {inst}"),
                description: "{{ $value | humanize }}/s over the last minute".into(),
            });
        }
    }
}

/// Gauge threshold rules (the seed's QueueBacklog and system thresholds):
/// 20 gauge names x 5 variants per group, `variant` picks the set.
fn node(rules: &mut Vec<AlertRule>, variant: usize) {
    for g in 0..20 {
        let m = format!("node_gauge_{g}");
        let set: [(String, String, &'static str, &'static str, String); 5] = match variant {
            0 => [
                (
                    format!("Gauge{g}Backlog"),
                    format!("{m} > 95000"),
                    "5m",
                    "warning",
                    "Queue {{ $labels.instance }} has high backlog".into(),
                ),
                (
                    format!("Gauge{g}BacklogCritical"),
                    format!("{m} > 100000"),
                    "2m",
                    "critical",
                    "Queue {{ $labels.instance }} backlog critical".into(),
                ),
                (
                    format!("Gauge{g}Low"),
                    format!("{m} < 2000"),
                    "5m",
                    "warning",
                    "{{ $labels.instance }} below 2000".into(),
                ),
                (
                    format!("Gauge{g}Negative"),
                    format!("{m} < 0"),
                    "1m",
                    "critical",
                    "{{ $labels.instance }} negative".into(),
                ),
                (
                    format!("Gauge{g}High"),
                    format!("{m} > 90000"),
                    "10m",
                    "info",
                    "{{ $labels.instance }} above 90000".into(),
                ),
            ],
            1 => [
                (
                    format!("Gauge{g}AvgHigh"),
                    format!("avg_over_time({m}[5m]) > 95000"),
                    "5m",
                    "warning",
                    "5m average high on {{ $labels.instance }}".into(),
                ),
                (
                    format!("Gauge{g}MaxHigh"),
                    format!("max_over_time({m}[5m]) > 100000"),
                    "1m",
                    "critical",
                    "5m max high on {{ $labels.instance }}".into(),
                ),
                (
                    format!("Gauge{g}MinLow"),
                    format!("min_over_time({m}[5m]) < 2000"),
                    "1m",
                    "warning",
                    "5m min low on {{ $labels.instance }}".into(),
                ),
                (
                    format!("Gauge{g}Rising"),
                    format!("delta({m}[5m]) > 1500"),
                    "2m",
                    "info",
                    "{{ $labels.instance }} rising".into(),
                ),
                (
                    format!("Gauge{g}Falling"),
                    format!("delta({m}[5m]) < -1500"),
                    "2m",
                    "info",
                    "{{ $labels.instance }} falling".into(),
                ),
            ],
            2 => [
                (
                    format!("Gauge{g}Trend"),
                    format!("deriv({m}[5m]) > 5"),
                    "2m",
                    "info",
                    "{{ $labels.instance }} trending up".into(),
                ),
                (
                    format!("Gauge{g}WillExceed"),
                    format!("predict_linear({m}[5m], 3600) > 110000"),
                    "5m",
                    "warning",
                    "{{ $labels.instance }} will exceed 110000 within 1h".into(),
                ),
                (
                    format!("Gauge{g}Volatile"),
                    format!("stddev_over_time({m}[5m]) > 1200"),
                    "2m",
                    "info",
                    "{{ $labels.instance }} volatile".into(),
                ),
                (
                    format!("Gauge{g}Changes"),
                    format!("changes({m}[5m]) > 25"),
                    "1m",
                    "info",
                    "{{ $labels.instance }} changing".into(),
                ),
                (
                    format!("Gauge{g}FleetHigh"),
                    format!("avg by (job) ({m}) > 60000"),
                    "5m",
                    "warning",
                    "fleet average of {m} high".into(),
                ),
            ],
            _ => [
                (
                    format!("Gauge{g}Top"),
                    format!("topk(3, {m}) > 98000"),
                    "1m",
                    "info",
                    "{{ $labels.instance }} among the top 3".into(),
                ),
                (
                    format!("Gauge{g}Share"),
                    format!("{m} / ignoring(instance) group_left sum by (job) ({m}) > 0.025"),
                    "5m",
                    "warning",
                    "{{ $labels.instance }} holds a large share".into(),
                ),
                (
                    format!("Gauge{g}Absent"),
                    format!("absent({m}{{job=\"node\"}})"),
                    "5m",
                    "critical",
                    "{m} is missing".into(),
                ),
                (
                    format!("Gauge{g}ManyHigh"),
                    format!("count by (job) ({m} > 90000) > 20"),
                    "5m",
                    "warning",
                    "many instances of {m} high".into(),
                ),
                (
                    format!("Gauge{g}Quantile"),
                    format!("quantile by (job) (0.9, {m}) > 95000"),
                    "5m",
                    "info",
                    "p90 of {m} across the fleet high".into(),
                ),
            ],
        };
        for (name, expr, for_, severity, summary) in set {
            rules.push(AlertRule {
                name,
                expr,
                for_,
                severity,
                summary,
                description: "Current value: {{ $value | humanize }}".into(),
            });
        }
    }
}

fn yaml_str(s: &str) -> String {
    // Double-quoted YAML scalar: escape backslashes and quotes.
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn rule_file(interval: &str) -> String {
    type Gen = fn(&mut Vec<AlertRule>);
    let groups: [(&str, &str, Gen); 10] = [
        ("api-errors", "api", api_errors),
        ("api-errors-by-method", "api", api_errors_by_method),
        ("api-latency", "api", api_latency),
        ("api-latency-by-instance", "api", api_latency_by_instance),
        ("api-instances", "api", api_instances),
        ("node-thresholds", "infra", |r| node(r, 0)),
        ("node-windows", "infra", |r| node(r, 1)),
        ("node-trends", "infra", |r| node(r, 2)),
        ("node-fleet", "infra", |r| node(r, 3)),
        // A second copy of the plain thresholds with other levels would
        // duplicate rule identities; the tenth group mixes API and node.
        ("mixed", "sre", |r| {
            let mut a = Vec::new();
            api_errors(&mut a);
            let mut b = Vec::new();
            node(&mut b, 1);
            for x in a.iter_mut().chain(b.iter_mut()) {
                x.name = format!("Sre{}", x.name);
            }
            r.extend(a.into_iter().step_by(2).take(50));
            r.extend(b.into_iter().step_by(2).take(50));
        }),
    ];
    let mut out = String::from(
        "# Generated by `cargo run --release --example rules_compare -- rules`:\n\
         # 1,000 alerting rules in 10 groups over benches/workload.\n\
         groups:\n",
    );
    for (name, team, gen_rules) in groups {
        let mut rules = Vec::new();
        gen_rules(&mut rules);
        assert_eq!(rules.len(), 100, "group {name} must have 100 rules");
        let _ = writeln!(
            out,
            "  - name: {name}\n    interval: {interval}\n    rules:"
        );
        for (n, r) in rules.into_iter().enumerate() {
            let _ = writeln!(out, "      - alert: {}", r.name);
            let _ = writeln!(out, "        expr: {}", yaml_str(&r.expr));
            let _ = writeln!(out, "        for: {}", r.for_);
            // `scope` keeps the variants of one alert name distinct (no
            // duplicate-rule lint), as per-service copies usually are.
            let _ = writeln!(
                out,
                "        labels:\n          severity: {}\n          team: {team}\n          scope: {name}-{n}",
                r.severity
            );
            let _ = writeln!(out, "        annotations:");
            let _ = writeln!(out, "          summary: {}", yaml_str(&r.summary));
            let _ = writeln!(out, "          description: {}", yaml_str(&r.description));
        }
    }
    out
}

// ----------------------------------------------------------------- feed --

fn label_pairs(l: &Labels, extra: Option<(&str, String)>) -> Vec<v1::Label> {
    let mut v: Vec<v1::Label> = l
        .iter()
        .map(|x| v1::Label {
            name: x.name.to_string(),
            value: x.value.to_string(),
        })
        .collect();
    if let Some((n, val)) = extra {
        v.push(v1::Label {
            name: n.into(),
            value: val,
        });
        v.sort_by(|a, b| a.name.cmp(&b.name));
    }
    v
}

fn with_name(l: &Labels, name: String) -> Labels {
    let mut b = l.builder();
    b.set("__name__", name);
    b.build()
}

/// Snappy-compressed remote write 1.0 bodies (2,000 series each) of one
/// scrape, and the scrape's latest timestamp.
fn scrape_bodies(w: &Workload, s: workload::Scrape) -> (Vec<Vec<u8>>, i64) {
    let mut series: Vec<v1::TimeSeries> = Vec::with_capacity(w.classic_series());
    let mut latest = i64::MIN;
    let mut one = |labels: Vec<v1::Label>, t: i64, v: f64| {
        latest = latest.max(t);
        series.push(v1::TimeSeries {
            labels,
            samples: vec![v1::Sample {
                value: v,
                timestamp: t,
            }],
            ..Default::default()
        });
    };
    for (i, t, v) in s.floats {
        one(label_pairs(&w.floats[i].labels, None), t, v);
    }
    for (i, t, h) in s.histograms {
        let base = &w.histograms[i].labels;
        let name = base.metric_name().unwrap_or("h").to_string();
        let bucket = with_name(base, format!("{name}_bucket"));
        for (j, c) in h.bucket_counts.iter().enumerate() {
            let le = match h.upper_bounds.get(j) {
                Some(b) => b.to_string(),
                None => "+Inf".to_string(),
            };
            one(label_pairs(&bucket, Some(("le", le))), t, *c);
        }
        one(
            label_pairs(&with_name(base, format!("{name}_sum")), None),
            t,
            h.sum,
        );
        one(
            label_pairs(&with_name(base, format!("{name}_count")), None),
            t,
            h.count,
        );
    }
    let mut enc = snap::raw::Encoder::new();
    let bodies = series
        .chunks(2000)
        .map(|c| {
            let raw = v1::WriteRequest {
                timeseries: c.to_vec(),
                metadata: vec![],
            }
            .encode_to_vec();
            enc.compress_vec(&raw).expect("snappy compress")
        })
        .collect();
    (bodies, latest)
}

/// One POST on a fresh connection (`Connection: close`); dies on a non-2xx
/// answer, since a server refusing data would make the comparison unfair.
fn post(url: &str, body: &[u8]) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| die("only http:// URLs"));
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s = TcpStream::connect(host).unwrap_or_else(|e| die(&format!("{url}: {e}")));
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body))
        .unwrap_or_else(|e| die(&format!("{url}: {e}")));
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok();
    let text = String::from_utf8_lossy(&resp);
    let status = text.split_whitespace().nth(1).unwrap_or("");
    if !status.starts_with('2') {
        die(&format!(
            "{url} answered: {}",
            text.chars().take(400).collect::<String>()
        ));
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn feed(urls: &[String], history_min: i64, live_min: i64) {
    let step_ms = 15_000;
    let history_steps = history_min * 60_000 / step_ms;
    // The first live scrape is the first 15 s boundary after now.
    let first_live = (now_ms() / step_ms + 1) * step_ms;
    let w = Workload::new(WorkloadConfig {
        start_ms: first_live - history_steps * step_ms,
        steps: (history_steps + live_min * 60_000 / step_ms) as usize,
        ..WorkloadConfig::default()
    });
    println!(
        "series={} start_ms={} first_live_ms={first_live}",
        w.classic_series(),
        w.cfg.start_ms
    );
    for (k, s) in w.scrapes().enumerate() {
        let live = k as i64 >= history_steps;
        if k as i64 == history_steps {
            println!("history_done");
        }
        let (bodies, latest) = scrape_bodies(&w, s);
        if live {
            let wait = latest + 1 - now_ms();
            if wait > 0 {
                std::thread::sleep(Duration::from_millis(wait as u64));
            }
        }
        for b in &bodies {
            for u in urls {
                post(u, b);
            }
        }
        if live {
            println!("live_scrape t={latest}");
        }
    }
    println!("feed_done");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("rules") => {
            let file = args.get(1).unwrap_or_else(|| die("rules FILE [INTERVAL]"));
            let interval = args.get(2).map_or("15s", String::as_str);
            std::fs::write(file, rule_file(interval))
                .unwrap_or_else(|e| die(&format!("writing {file}: {e}")));
        }
        Some("feed") => {
            let mut urls = Vec::new();
            let (mut hist, mut live) = (60, 30);
            let mut it = args[1..].iter();
            while let Some(a) = it.next() {
                let mut val = || {
                    it.next()
                        .cloned()
                        .unwrap_or_else(|| die(&format!("{a} needs a value")))
                };
                match a.as_str() {
                    "--url" => urls.push(val()),
                    "--history-min" => {
                        hist = val().parse().unwrap_or_else(|_| die("bad --history-min"))
                    }
                    "--live-min" => live = val().parse().unwrap_or_else(|_| die("bad --live-min")),
                    other => die(&format!("unknown argument {other:?}")),
                }
            }
            if urls.is_empty() {
                die("feed needs at least one --url");
            }
            std::io::stdout().flush().ok();
            feed(&urls, hist, live);
        }
        _ => die("usage: rules_compare rules FILE [INTERVAL] | \
             feed --url URL... [--history-min M] [--live-min N]"),
    }
}
