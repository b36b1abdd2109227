//! End-to-end tests of the real binary: import over HTTP, query, restart,
//! data still there; health, readiness, metrics; a bad import is refused
//! with its line number and writes nothing; snapshots; offline dump; the
//! query CLI; config errors with file:line:col.

mod harness;

use std::process::Command;

use harness::{Server, bin, dump, now_ms, tempdir};
use watchpost::cli::client::form;
use watchpost::http::paths;

fn import(s: &Server, body: &str) -> watchpost::cli::client::HttpResponse {
    s.req("POST", paths::IMPORT_PROMETHEUS, body.as_bytes())
}

fn instant(s: &Server, q: &str, t_ms: i64) -> serde_json::Value {
    let time = format!("{}.{:03}", t_ms / 1000, t_ms % 1000);
    let r = s.get(&format!(
        "{}?{}",
        paths::QUERY,
        form(&[("query", q), ("time", &time)])
    ));
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    serde_json::from_slice(&r.body).expect("json")
}

fn values(v: &serde_json::Value) -> Vec<(String, String)> {
    v["data"]["result"]
        .as_array()
        .expect("vector")
        .iter()
        .map(|r| {
            (
                r["metric"].to_string(),
                r["value"][1].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn import_query_restart_and_dump() {
    let (_tmp, data) = tempdir();
    let t0 = now_ms() - 60_000;
    let s = Server::start(&data, &["--web.enable-admin-api"]);
    assert_eq!(s.get(paths::HEALTHY).status, 200);
    s.wait_ready();

    let body = format!(
        "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n\
         http_requests_total{{method=\"get\",code=\"200\"}} 10 {t0}\n\
         http_requests_total{{method=\"get\",code=\"200\"}} 25 {}\n\
         http_requests_total{{method=\"post\",code=\"500\"}} 1.5e3 {}\n\
         # TYPE rt histogram\n\
         rt_bucket{{le=\"0.1\"}} 3 {t0}\nrt_bucket{{le=\"1\"}} 7 {t0}\nrt_bucket{{le=\"+Inf\"}} 8 {t0}\n\
         rt_sum 4.5 {t0}\nrt_count 8 {t0}\n",
        t0 + 15_000,
        t0 + 15_000
    );
    let r = import(&s, &body);
    assert_eq!(r.status, 204, "{}", r.text());

    let at = t0 + 20_000;
    let v = values(&instant(&s, "http_requests_total", at));
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(
        v.iter().any(|(m, x)| m.contains("\"post\"") && x == "1500"),
        "{v:?}"
    );
    let q = values(&instant(&s, "histogram_quantile(0.5, rt_bucket)", at));
    assert_eq!(q.len(), 1, "histogram visible as classic buckets: {q:?}");
    assert_eq!(values(&instant(&s, "rt_count", at))[0].1, "8");

    // A bad request: refused with its line number, nothing of it written.
    let bad = format!("fresh_metric 1 {t0}\nfresh_metric{{a=\"b\" 2 {t0}\n");
    let r = import(&s, &bad);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("line 2:"), "{}", r.text());
    assert!(values(&instant(&s, "fresh_metric", at)).is_empty());

    let m = s.get(paths::METRICS).text();
    // 3 float samples and 1 histogram sample (the five rt_* lines).
    assert!(m.contains("watchpost_import_samples_total 4"), "{m}");
    assert!(
        m.contains("watchpost_import_rejected_requests_total 1"),
        "{m}"
    );
    assert!(m.contains("watchpost_tsdb_head_series"), "{m}");
    assert!(m.contains("process_resident_memory_bytes"), "{m}");

    let r = s.req("POST", paths::ADMIN_SNAPSHOT, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let snap: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let name = snap["data"]["name"].as_str().unwrap().to_string();
    assert!(
        data.join("snapshots").join(&name).is_dir(),
        "snapshot {name} on disk"
    );

    let labels = s.get(paths::LABELS).text();
    assert!(labels.contains("\"method\""), "{labels}");

    // The query CLI against the live server.
    let out = Command::new(bin())
        .args(["query", "sum by (method) (http_requests_total)"])
        .arg(format!("--time={}", at / 1000))
        .arg(format!("--server={}", s.base))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("{method=\"post\"}") && text.contains("1500"),
        "{text}"
    );
    let out = Command::new(bin())
        .args(["query", "range", "http_requests_total{method=\"get\"}"])
        .arg(format!("--start={}", t0 / 1000))
        .arg(format!("--end={}", at / 1000))
        .args(["--step=10s", &format!("--server={}", s.base)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("http_requests_total{code=\"200\", method=\"get\"}")
    );
    let out = Command::new(bin())
        .args(["query", "sum(", &format!("--server={}", s.base)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad_data"));

    let st = s.stop();
    assert!(st.success(), "clean exit on SIGTERM: {st:?}");

    // Offline dump sees everything, with ms timestamps.
    let d = dump(&data, &["--match", "http_requests_total"]);
    assert!(
        d.contains(&format!(
            "http_requests_total{{code=\"200\",method=\"get\"}} 25 {}",
            t0 + 15_000
        )),
        "{d}"
    );
    assert_eq!(d.lines().count(), 3, "{d}");

    // Restart: the data survived.
    let s = Server::start(&data, &[]);
    s.wait_ready();
    let v = values(&instant(&s, "http_requests_total", at));
    assert_eq!(v.len(), 2, "after restart: {v:?}");
    assert_eq!(values(&instant(&s, "rt_count", at))[0].1, "8");
    assert!(values(&instant(&s, "fresh_metric", at)).is_empty());
    let r = s.req("POST", paths::ADMIN_SNAPSHOT, b"");
    assert_eq!(r.status, 503, "admin API off by default");
    assert!(s.stop().success());
}

#[test]
fn config_errors_are_located_and_fatal() {
    let (tmp, data) = tempdir();
    let cfg = tmp.path().join("watchpost.yml");
    std::fs::write(&cfg, "storage:\n  retention_time: 5x\n").unwrap();
    let out = Command::new(bin())
        .arg("serve")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:2:3:", cfg.display())) && err.contains("invalid duration \"5x\""),
        "{err}"
    );
    let out = Command::new(bin())
        .args([
            "serve",
            "--storage.tsdb.wal-sync=sometimes",
            "--web.listen-address=127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid flag --storage.tsdb.wal-sync"));
}

#[test]
fn second_server_on_same_directory_is_refused() {
    let (_tmp, data) = tempdir();
    let s = Server::start(&data, &[]);
    s.wait_ready();
    let out = Command::new(bin())
        .args(["tsdb", "dump"])
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "dump must not open a live data directory"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("lock"));
    assert!(s.stop().success());
}

/// `promtool query instant|range|series|labels` (Debian's Prometheus 2.42)
/// against watchpost: a real client must work unchanged. Skips loudly
/// without promtool; fails instead under `WATCHPOST_REQUIRE_ALL=1`.
#[test]
fn promtool_queries_work() {
    let have = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var("WATCHPOST_REQUIRE_ALL").as_deref() != Ok("1"),
            "promtool is required (WATCHPOST_REQUIRE_ALL=1) but not installed"
        );
        eprintln!(
            "SKIPPED promtool_queries_work: promtool not installed (apt-get install prometheus)"
        );
        return;
    }
    let (_tmp, data) = tempdir();
    let s = Server::start(&data, &[]);
    s.wait_ready();
    // Whole seconds, so promtool's second-resolution flags hit the samples.
    let t0 = (now_ms() / 1000 - 120) * 1000;
    let mut body = String::new();
    for i in 0..8 {
        let t = t0 + i * 15_000;
        body.push_str(&format!(
            "node_load1{{instance=\"a:9100\",job=\"node\"}} {}.5 {t}\n",
            i
        ));
        body.push_str(&format!(
            "node_load1{{instance=\"b:9100\",job=\"node\"}} {} {t}\n",
            i * 2
        ));
    }
    assert_eq!(import(&s, &body).status, 204);
    let at = (t0 + 7 * 15_000) / 1000;
    let run = |args: &[&str]| {
        let out = Command::new("promtool")
            .arg("query")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = run(&["instant", &format!("--time={at}"), &s.base, "node_load1"]);
    assert!(
        out.contains("node_load1{instance=\"a:9100\", job=\"node\"} => 7.5"),
        "{out}"
    );
    assert!(
        out.contains("node_load1{instance=\"b:9100\", job=\"node\"} => 14"),
        "{out}"
    );
    let out = run(&[
        "range",
        &format!("--start={}", t0 / 1000),
        &format!("--end={at}"),
        "--step=15s",
        &s.base,
        "sum(node_load1)",
    ]);
    assert!(out.contains("{} =>"), "{out}");
    assert!(out.contains("21.5 @["), "{out}");
    let out = run(&["series", "--match=node_load1{instance=\"b:9100\"}", &s.base]);
    assert_eq!(
        out.trim(),
        "{__name__=\"node_load1\", instance=\"b:9100\", job=\"node\"}",
        "{out}"
    );
    let out = run(&["labels", &s.base, "instance"]);
    assert_eq!(out.trim(), "a:9100\nb:9100", "{out}");
    assert!(s.stop().success());
}
