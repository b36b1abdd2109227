//! Real StatsD client libraries (PyPI `statsd`, PyPI `datadog`, npm
//! `hot-shots`) sending over loopback UDP to an in-process `StatsdServer`;
//! after a forced flush the aggregated samples in the recording test double
//! are checked. A missing client package skips the test loudly, or fails it
//! when `WATCHPOST_REQUIRE_ALL=1`.
//!
//! Install the clients: `pip install statsd datadog` and
//! `npm install --prefix tests/node` (uses tests/node/package-lock.json).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{Rec, RecordingStore, series_id, wait_until};
use watchpost::ingest::statsd::{BadReason, StatsdConfig, StatsdMetrics, StatsdServer};
use watchpost::model::{HistogramSample, ManualClock};

const T: i64 = 1_700_000_000_000;

fn require_all() -> bool {
    std::env::var("WATCHPOST_REQUIRE_ALL").as_deref() == Ok("1")
}

/// Skips (loudly) or fails when a client is missing.
fn missing(what: &str) {
    assert!(
        !require_all(),
        "{what} is missing and WATCHPOST_REQUIRE_ALL=1"
    );
    eprintln!("SKIPPED: {what} is not installed");
}

/// A command with every `DD_*`/`DATADOG_*` variable removed, so the
/// datadog client adds no constant tags or telemetry.
fn clean_command(program: &str) -> Command {
    let mut c = Command::new(program);
    for (k, _) in std::env::vars() {
        if k.starts_with("DD_") || k.starts_with("DATADOG_") {
            c.env_remove(k);
        }
    }
    c
}

fn python_has(module: &str) -> bool {
    clean_command("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

struct Run {
    store: Arc<RecordingStore>,
    metrics: Arc<StatsdMetrics>,
}

impl Run {
    fn float(&self, id: &str) -> f64 {
        let recs = self.store.user_records();
        recs.iter()
            .find_map(|r| match r {
                Rec::Float { labels, t, v } if *t == T && series_id(labels) == id => Some(*v),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no float series {id} at T in {:#?}", ids(&recs)))
    }
    fn hist(&self, id: &str) -> HistogramSample {
        let recs = self.store.user_records();
        recs.iter()
            .find_map(|r| match r {
                Rec::Hist { labels, t, h } if *t == T && series_id(labels) == id => Some(h.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no histogram {id} at T in {:#?}", ids(&recs)))
    }
    fn bad(&self, r: BadReason) -> u64 {
        self.metrics.bad_lines(r)
    }
}

fn ids(recs: &[Rec]) -> Vec<String> {
    recs.iter().filter(|r| r.t() == T).map(Rec::id).collect()
}

/// Starts a server, runs the client command (given the UDP port), waits
/// for `lines` lines, flushes at T.
fn drive(lines: u64, client: impl FnOnce(u16) -> Command) -> Run {
    let store = Arc::new(RecordingStore::default());
    let clock = ManualClock::new(T - 3000);
    let cfg = StatsdConfig {
        udp_addrs: vec!["127.0.0.1:0".parse().unwrap()],
        background_flush: false,
        write_self_metrics: false,
        ..Default::default()
    };
    let server = StatsdServer::start(cfg, store.clone(), Arc::new(clock.clone())).unwrap();
    let port = server.local_addrs().udp[0].port();
    let out = client(port).output().expect("run client");
    assert!(
        out.status.success(),
        "client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let m = server.metrics();
    assert!(
        wait_until(10, || m.lines_received.load(Ordering::Relaxed) >= lines),
        "received {} of {lines} lines",
        m.lines_received.load(Ordering::Relaxed)
    );
    clock.set(T);
    server.flush_now().unwrap();
    assert_eq!(m.lines_received.load(Ordering::Relaxed), lines);
    server.shutdown().unwrap();
    Run { store, metrics: m }
}

fn assert_close(got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "got {got}, want {want}"
    );
}

/// `le` bucket of a default-bounds histogram.
fn bucket(h: &HistogramSample, le: f64) -> f64 {
    let i = h.upper_bounds.iter().position(|&b| b == le).expect("bound");
    h.bucket_counts[i]
}

#[test]
fn pypi_statsd_client() {
    if !python_has("statsd") {
        return missing("PyPI package `statsd` (pip install statsd)");
    }
    let script = r#"
import sys, statsd
c = statsd.StatsClient('127.0.0.1', int(sys.argv[1]))
c.incr('py.count')
c.incr('py.count', 2)
c.timing('py.t', 320)
c.set('py.s', 'abc')
c.set('py.s', 'def')
c.set('py.s', 'abc')
c.gauge('py.g', 10)
c.gauge('py.g', 3, delta=True)
c.gauge('py.neg', -5)
c.decr('py.dec')
with c.pipeline() as p:
    p.incr('py.pa')
    p.incr('py.pb')
    p.timing('py.pc', 1.5)
"#;
    // 11 single lines (gauge(-5) sends two) + 3 pipelined.
    let r = drive(14, |port| {
        let mut c = clean_command("python3");
        c.args(["-c", script, &port.to_string()]);
        c
    });
    assert_eq!(r.float("py_count_total"), 3.0);
    let t = r.hist("py_t");
    assert_close(t.sum, 0.32);
    assert_eq!(
        (t.count, bucket(&t, 0.25), bucket(&t, 0.5)),
        (1.0, 0.0, 1.0)
    );
    assert_eq!(r.float("py_s"), 2.0);
    assert_eq!(r.float("py_g"), 13.0);
    assert_eq!(r.float("py_neg"), -5.0);
    assert_eq!(r.float("py_pa_total"), 1.0);
    assert_eq!(r.float("py_pb_total"), 1.0);
    assert_close(r.hist("py_pc").sum, 0.0015);
    assert_eq!(r.bad(BadReason::NegativeCounter), 1);
    assert_eq!(r.metrics.bad_lines_total(), 1);
}

#[test]
fn pypi_datadog_client() {
    if !python_has("datadog") {
        return missing("PyPI package `datadog` (pip install datadog)");
    }
    let script = r#"
import sys
from datadog import DogStatsd
c = DogStatsd(host='127.0.0.1', port=int(sys.argv[1]), disable_telemetry=True)
c.increment('dd.count', tags=['env:prod', 'novalue'])
c.increment('dd.count', 2, tags=['env:prod'])
c.gauge('dd.g', 5)
c.gauge('dd.g', -5)
c.histogram('dd.h', 1e-05, tags=['a:b'])
c.distribution('dd.d', 2.5)
c.timing('dd.t', 250)
c.set('dd.s', 'x')
c.set('dd.s', 'y')
c.event('title', 'text body', tags=['a:b'])
c.service_check('svc.up', 0, tags=['a:b'], message='ok')
c.flush()
"#;
    let r = drive(11, |port| {
        let mut c = clean_command("python3");
        c.args(["-c", script, &port.to_string()]);
        c
    });
    assert_eq!(r.float("dd_count_total{env=\"prod\"}"), 3.0);
    assert_eq!(r.metrics.tag_errors.load(Ordering::Relaxed), 1);
    // DogStatsD means "set -5"; the default relative mode reads 5 - 5.
    assert_eq!(r.float("dd_g"), 0.0);
    let h = r.hist("dd_h{a=\"b\"}");
    assert_close(h.sum, 1e-05);
    assert_eq!(bucket(&h, 0.005), 1.0);
    let d = r.hist("dd_d");
    assert_eq!((bucket(&d, 2.5), d.count), (1.0, 1.0));
    let t = r.hist("dd_t");
    assert_eq!(bucket(&t, 0.25), 1.0);
    assert_close(t.sum, 0.25);
    assert_eq!(r.float("dd_s"), 2.0);
    assert_eq!(r.metrics.events_ignored.load(Ordering::Relaxed), 1);
    assert_eq!(r.metrics.service_checks_ignored.load(Ordering::Relaxed), 1);
    assert_eq!(r.metrics.bad_lines_total(), 0);
}

#[test]
fn npm_hot_shots_client() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let installed = dir.join("node_modules/hot-shots/package.json").exists();
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node || !installed {
        return missing("npm package `hot-shots` (npm install --prefix tests/node)");
    }
    let script = r#"
const StatsD = require('hot-shots');
const port = Number(process.argv[1]);
const onErr = (e) => { if (e) { console.error(e); process.exitCode = 1; } };
const c = new StatsD({ host: '127.0.0.1', port, errorHandler: onErr });
const tg = new StatsD({ host: '127.0.0.1', port, telegraf: true, errorHandler: onErr });
c.increment('hs.count');
c.increment('hs.count', 3, ['env:prod']);
c.gauge('hs.g', 7);
c.gaugeDelta('hs.g', 2);
c.timing('hs.t', 320);
c.histogram('hs.h', 5, { a: 'b' });
c.set('hs.s', 'u1');
c.set('hs.s', 'u2');
c.decrement('hs.dec');
tg.increment('tg.count', 1, { env: 'prod', region: 'us' });
c.close(onErr);
tg.close(onErr);
"#;
    let r = drive(10, |port| {
        let mut c = clean_command("node");
        c.current_dir(&dir).args(["-e", script, &port.to_string()]);
        c
    });
    assert_eq!(r.float("hs_count_total"), 1.0);
    assert_eq!(r.float("hs_count_total{env=\"prod\"}"), 3.0);
    assert_eq!(r.float("hs_g"), 9.0);
    let t = r.hist("hs_t");
    assert_close(t.sum, 0.32);
    assert_eq!(bucket(&t, 0.5), 1.0);
    let h = r.hist("hs_h{a=\"b\"}");
    assert_eq!((bucket(&h, 5.0), bucket(&h, 2.5)), (1.0, 0.0));
    assert_eq!(r.float("hs_s"), 2.0);
    assert_eq!(r.float("tg_count_total{env=\"prod\",region=\"us\"}"), 1.0);
    assert_eq!(r.bad(BadReason::NegativeCounter), 1);
    assert_eq!(r.metrics.bad_lines_total(), 1);
}
