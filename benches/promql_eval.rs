//! Evaluator benchmarks over a real `Db` holding the storage issue's
//! workload (`benches/workload`: 10,000 series at 15 s for 6 h), with the
//! query shapes of `benches/query_compare.sh`: rates, aggregated rates, two
//! histogram quantiles, a threshold over `avg_over_time`, and
//! `count({__name__=~".+"})`, each as an instant query and as a 6 h range
//! query at 60 s steps. This measures the engine without HTTP and loading.
//! The JSON encoding of query results is measured separately
//! (`json/...`): the 5,000-series x 361-point matrix of the `rate` range
//! query, and the small aggregated results.
//!
//! Loading mirrors `query_compare.sh`: histograms are written as their
//! classic float series (`_bucket{le}`, `_sum`, `_count`), as the text
//! import without `# TYPE` lines stores them. `PROMQL_EVAL_HISTOGRAMS=columns`
//! appends them as first-class histograms instead (bucket columns).
//! After loading, the head is maintained as the server does (2 h blocks cut
//! once due), so the 6 h range reads two blocks and the head.
//!
//! Environment:
//! - `PROMQL_EVAL_INSTANCES` (default 10) scales the workload;
//! - `PROMQL_EVAL_STREAM=0` turns streamed aggregations off;
//! - `PROMQL_EVAL_PROFILE=<name>` evaluates that bench query
//!   (`range/<query>` or `instant/<query>`, or `json/rate_range`)
//!   `PROMQL_EVAL_REPEAT` times (default 3) and exits (a comma-separated
//!   list, or `all`, runs several after one load), printing wall and
//!   CPU time: for `valgrind --tool=callgrind` or quick comparisons.
//!
//! Run: `cargo bench --bench promql_eval -- --warm-up-time 1 --measurement-time 5`.

#[path = "workload/mod.rs"]
mod workload;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use watchpost::http::query::render_value;
use watchpost::model::{Labels, ManualClock, MatchOp, Matcher};
use watchpost::promql::{Engine, EngineOptions, parse};
use watchpost::storage::{Appendable, Db, DbOptions, Querier, SelectHints, WalSyncPolicy};
use workload::{Workload, WorkloadConfig};

const HOUR_MS: i64 = 3_600_000;

/// The queries of `benches/query_compare.sh`.
const QUERIES: [(&str, &str); 6] = [
    ("rate", "rate(http_requests_total[5m])"),
    (
        "sum_by_rate",
        "sum by (endpoint) (rate(http_requests_total[5m]))",
    ),
    (
        "hq95_sum_le",
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    (
        "hq99_sum_le_endpoint",
        "histogram_quantile(0.99, sum by (le, endpoint) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    ("avg_over_time_gt", "avg_over_time(node_gauge_0[10m]) > 0.8"),
    ("count_all", "count({__name__=~\".+\"})"),
];

struct Setup {
    db: Db,
    _dir: tempfile::TempDir,
    /// Range query bounds (ms), 7.5 s off the scrape grid like
    /// query_compare.sh.
    start: i64,
    end: i64,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load() -> Setup {
    let instances = env_usize("PROMQL_EVAL_INSTANCES", 10);
    let columns = std::env::var("PROMQL_EVAL_HISTOGRAMS").as_deref() == Ok("columns");
    let w = Workload::new(WorkloadConfig {
        instances,
        ..WorkloadConfig::default()
    });
    let data_end = w.cfg.start_ms + w.cfg.steps as i64 * w.cfg.step_ms;
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(data_end);
    let mut opts = DbOptions::new(dir.path());
    opts.wal_sync = WalSyncPolicy::Interval(Duration::from_secs(1));
    opts.maintenance_interval = None;
    opts.clock = Arc::new(clock);
    let db = Db::open(opts).expect("open");
    let les: Vec<String> = w
        .bounds
        .iter()
        .map(|b| b.to_string())
        .chain(["+Inf".to_string()])
        .collect();
    // Classic views of each histogram: one label set per bucket, _sum, _count.
    let classic: Vec<(Vec<Labels>, Labels, Labels)> = w
        .histograms
        .iter()
        .map(|h| {
            let name = h.labels.get("__name__").unwrap_or("").to_string();
            let with = |suffix: &str, le: Option<&str>| {
                let mut b = h.labels.builder();
                b.set("__name__", format!("{name}{suffix}"));
                if let Some(le) = le {
                    b.set("le", le.to_string());
                }
                b.build()
            };
            (
                les.iter().map(|le| with("_bucket", Some(le))).collect(),
                with("_sum", None),
                with("_count", None),
            )
        })
        .collect();
    let t0 = Instant::now();
    for s in w.scrapes() {
        let mut a = db.appender();
        for (i, t, v) in &s.floats {
            a.append(&w.floats[*i].labels, *t, *v).expect("append");
        }
        for (i, t, h) in &s.histograms {
            if columns {
                a.append_histogram(&w.histograms[*i].labels, *t, h)
                    .expect("append histogram");
            } else {
                let (buckets, sum, count) = &classic[*i];
                for (l, c) in buckets.iter().zip(&h.bucket_counts) {
                    a.append(l, *t, *c).expect("append bucket");
                }
                a.append(sum, *t, h.sum).expect("append sum");
                a.append(count, *t, h.count).expect("append count");
            }
        }
        a.commit().expect("commit");
    }
    db.maintain().expect("maintain");
    eprintln!(
        "promql_eval: loaded {} instances ({}) in {:.1} s; {} blocks",
        instances,
        if columns {
            "histogram columns"
        } else {
            "classic histograms"
        },
        t0.elapsed().as_secs_f64(),
        db.stats().blocks
    );
    let start = w.cfg.start_ms + 7_500;
    Setup {
        db,
        _dir: dir,
        start,
        end: start + 6 * HOUR_MS - 15_000,
    }
}

/// CPU time (user + system) of this process, seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the `)`.
    (ticks(11) + ticks(12)) / 100.0
}

fn profile(s: &Setup, engine: &Engine, what: &str) {
    let repeat = env_usize("PROMQL_EVAL_REPEAT", 3);
    let (kind, name) = what.split_once('/').unwrap_or(("range", what));
    let run = || -> usize {
        if kind == "json" {
            let e = parse(QUERIES[0].1).expect("parse");
            let r = engine
                .range(&s.db, &e, s.start, s.end, 60_000)
                .expect("eval");
            let t = Instant::now();
            let out = render_value(&r.value).len();
            eprintln!("  render {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
            return out;
        }
        let q = QUERIES
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("unknown query {name}"))
            .1;
        let e = parse(q).expect("parse");
        let r = if kind == "instant" {
            engine.instant(&s.db, &e, s.end).expect("eval")
        } else {
            engine
                .range(&s.db, &e, s.start, s.end, 60_000)
                .expect("eval")
        };
        render_value(&r.value).len()
    };
    // Storage alone: the select the query's selector makes.
    let matchers = match name {
        "count_all" => vec![Matcher::new(MatchOp::RegexMatch, "__name__", ".+").expect("regex")],
        n if n.starts_with("hq") => vec![Matcher::equal(
            "__name__",
            "http_request_duration_seconds_bucket",
        )],
        "avg_over_time_gt" => vec![Matcher::equal("__name__", "node_gauge_0")],
        _ => vec![Matcher::equal("__name__", "http_requests_total")],
    };
    let select_from = if kind == "instant" {
        s.end - 600_000
    } else {
        s.start - 600_000
    };
    for _ in 0..repeat {
        let (t, c) = (Instant::now(), cpu_seconds());
        let n: usize =
            s.db.select(&SelectHints::range(select_from, s.end), &matchers)
                .expect("select")
                .iter()
                .map(|x| x.timestamps.len())
                .sum();
        eprintln!(
            "select only: {:.1} ms wall, {:.0} ms CPU, {n} samples",
            t.elapsed().as_secs_f64() * 1e3,
            (cpu_seconds() - c) * 1e3
        );
    }
    for _ in 0..repeat {
        let (t, c) = (Instant::now(), cpu_seconds());
        let n = run();
        eprintln!(
            "{what}: {:.1} ms wall, {:.0} ms CPU, {n} bytes of JSON",
            t.elapsed().as_secs_f64() * 1e3,
            (cpu_seconds() - c) * 1e3
        );
    }
}

fn bench(c: &mut Criterion) {
    let s = load();
    // `PROMQL_EVAL_STREAM=0` evaluates aggregations by materialising every
    // selected series (the path before streamed aggregations), for
    // before/after comparisons in one build.
    let engine = Engine::new(EngineOptions {
        stream_aggregations: std::env::var("PROMQL_EVAL_STREAM").as_deref() != Ok("0"),
        ..EngineOptions::default()
    });
    if let Ok(what) = std::env::var("PROMQL_EVAL_PROFILE") {
        let all: Vec<String> = QUERIES
            .iter()
            .flat_map(|(n, _)| [format!("instant/{n}"), format!("range/{n}")])
            .chain(["json/rate_range".to_string()])
            .collect();
        let list: Vec<&str> = if what == "all" {
            all.iter().map(String::as_str).collect()
        } else {
            what.split(',').collect()
        };
        for w in list {
            profile(&s, &engine, w);
        }
        return;
    }
    let mut g = c.benchmark_group("promql_eval");
    g.sample_size(10);
    for (name, q) in QUERIES {
        let e = parse(q).expect("parse");
        g.bench_function(format!("instant/{name}"), |b| {
            b.iter(|| black_box(engine.instant(&s.db, &e, s.end).expect("eval")))
        });
        g.bench_function(format!("range_6h_60s/{name}"), |b| {
            b.iter(|| {
                black_box(
                    engine
                        .range(&s.db, &e, s.start, s.end, 60_000)
                        .expect("eval"),
                )
            })
        });
    }
    g.finish();

    // JSON encoding alone, on the results the HTTP API would render.
    let mut g = c.benchmark_group("json");
    g.sample_size(10);
    for (name, q) in [QUERIES[0], QUERIES[1]] {
        let e = parse(q).expect("parse");
        let r = engine
            .range(&s.db, &e, s.start, s.end, 60_000)
            .expect("eval");
        g.bench_function(format!("{name}_range"), |b| {
            b.iter(|| black_box(render_value(&r.value).len()))
        });
    }
    g.finish();
    s.db.close().expect("close");
}

criterion_group!(benches, bench);
criterion_main!(benches);
