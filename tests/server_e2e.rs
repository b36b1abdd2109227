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
        .arg("--statsd.listen-udp=")
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
            "--statsd.listen-udp=",
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

/// StatsD is wired into `serve`: a counter sent over UDP is flushed into
/// storage and visible through the query API, and SIGTERM flushes the last
/// window before exiting.
#[test]
fn statsd_is_wired_into_serve() {
    let (_tmp, data) = tempdir();
    let s = Server::start(
        &data,
        &[
            "--statsd.listen-udp=127.0.0.1:0",
            "--statsd.flush-interval=200ms",
        ],
    );
    s.wait_ready();
    // Logged as `StatsD listening addresses=LocalAddrs { udp: [127.0.0.1:PORT], ... }`.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let udp = loop {
        let log = s.log();
        if let Some(rest) = log.split("udp: [").nth(1) {
            break rest.split(']').next().unwrap_or("").to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no StatsD address in log:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(b"e2e_jobs:3|c\ne2e_jobs:4|c", &udp).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let v = values(&instant(&s, "sum(e2e_jobs_total)", now_ms()));
        if v.first().is_some_and(|(_, x)| x == "7") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "StatsD counter not visible: {v:?}\n{}",
            s.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(s.stop().success());
}

/// Rules and alert delivery are wired into `serve`: a recording rule's
/// output is queryable, and a firing alert reaches the configured
/// Alertmanager (a loopback listener here) as a v2 POST.
#[test]
fn rules_and_alerts_are_wired_into_serve() {
    use std::io::{Read, Write};
    let (tmp, data) = tempdir();
    let am = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let am_addr = am.local_addr().unwrap();
    std::fs::create_dir_all(tmp.path().join("rules")).unwrap();
    std::fs::write(
        tmp.path().join("rules/e2e.yml"),
        "groups:\n- name: e2e\n  interval: 1s\n  rules:\n  - record: e2e:answer\n    expr: vector(42)\n  - alert: E2EAlwaysFiring\n    expr: vector(1)\n    labels: {severity: page}\n    annotations: {summary: \"it fires\"}\n",
    )
    .unwrap();
    let cfg = tmp.path().join("watchpost.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  external_labels: {{site: e2e}}\nrule_files: [\"rules/*.yml\"]\nalerting:\n  alertmanagers:\n  - static_configs: [{{targets: [\"{am_addr}\"]}}]\n"
        ),
    )
    .unwrap();
    let s = Server::start(&data, &[&format!("--config.file={}", cfg.display())]);
    s.wait_ready();

    // The Alertmanager side: read one POST (bounded by a timeout).
    am.set_nonblocking(false).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = am.accept() {
            c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .ok();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = c.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len = text[..i]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= i + 4 + len {
                        break;
                    }
                }
            }
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = tx.send(String::from_utf8_lossy(&buf).to_string());
        }
    });
    let post = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no alert delivered within 30 s; log:\n{}", s.log()));
    assert!(post.starts_with("POST /api/v2/alerts"), "{post}");
    assert!(post.contains("\"alertname\":\"E2EAlwaysFiring\""), "{post}");
    assert!(
        post.contains("\"site\":\"e2e\""),
        "external labels added: {post}"
    );

    let alerts = s.get(paths::ALERTS).text();
    assert!(
        alerts.contains("\"alertname\":\"E2EAlwaysFiring\"")
            && alerts.contains("\"state\":\"firing\""),
        "{alerts}"
    );
    let rules = s.get(&format!("{}?type=record", paths::RULES)).text();
    assert!(
        rules.contains("\"name\":\"e2e:answer\"") && rules.contains("\"type\":\"recording\""),
        "{rules}"
    );
    assert!(
        !rules.contains("E2EAlwaysFiring"),
        "type=record filters: {rules}"
    );
    let rules = s.get(paths::RULES).text();
    assert!(
        rules.contains("\"annotations\":{\"summary\":\"it fires\"}"),
        "{rules}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let v = values(&instant(&s, "e2e:answer", now_ms()));
        if v.first().is_some_and(|(_, x)| x == "42") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "recording rule output missing: {v:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(s.stop().success());
}

/// A broken rule file stops the server at start with the file and line.
#[test]
fn bad_rule_file_is_fatal() {
    let (tmp, data) = tempdir();
    std::fs::create_dir_all(tmp.path().join("rules")).unwrap();
    let rule = tmp.path().join("rules/bad.yml");
    std::fs::write(
        &rule,
        "groups:\n- name: g\n  rules:\n  - record: x\n    expr: sum(\n",
    )
    .unwrap();
    let cfg = tmp.path().join("watchpost.yml");
    std::fs::write(&cfg, "rule_files: [\"rules/*.yml\"]\n").unwrap();
    let out = Command::new(bin())
        .arg("serve")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .arg("--statsd.listen-udp=")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid rule files") && err.contains(&rule.display().to_string()),
        "{err}"
    );
    assert!(
        !data.exists(),
        "storage is not touched when rules are invalid"
    );
}
