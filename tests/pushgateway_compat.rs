//! The same pushes against Debian's `prometheus-pushgateway` (1.5) and
//! Watchpost's `PushStore`: the resulting groups, families and values agree.
//!
//! The pushes are the exact requests PyPI `prometheus_client` 0.21.1 sends
//! (`src/ingest/pushgateway/testdata/prometheus_client_0.21.1_requests.json`).
//! Skips loudly when the binary is missing; fails instead when
//! `WATCHPOST_REQUIRE_ALL=1`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use watchpost::ingest::pushgateway::{
    GroupingKey, PushMethod, PushStore, PushedValue, decode_body,
};
use watchpost::model::ManualClock;

const BINARY: &str = "prometheus-pushgateway";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.0 exchange (the server closes the connection, so the body is
/// read to the end without chunked decoding).
fn http(port: u16, method: &str, path: &str, ct: Option<&str>, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = ct {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let status_line = String::from_utf8_lossy(&resp[..split]).to_string();
    let code = status_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    (code, resp[split + 4..].to_vec())
}

/// `(family, type, sorted non-empty labels, value summary)` rows.
type Rows = Vec<(String, String, BTreeMap<String, String>, String)>;

fn labels_of(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let v = v.as_str().unwrap_or_default();
                    (!v.is_empty()).then(|| (k.clone(), v.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn num(v: &serde_json::Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

fn gateway_rows(data: &serde_json::Value) -> BTreeMap<BTreeMap<String, String>, Rows> {
    let mut out = BTreeMap::new();
    for g in data.as_array().unwrap() {
        let key = labels_of(&g["labels"]);
        let mut rows = Rows::new();
        for (name, fam) in g.as_object().unwrap() {
            if [
                "labels",
                "last_push_successful",
                "push_time_seconds",
                "push_failure_time_seconds",
            ]
            .contains(&name.as_str())
            {
                continue;
            }
            let kind = fam["type"].as_str().unwrap().to_lowercase();
            for m in fam["metrics"].as_array().unwrap() {
                let value = match kind.as_str() {
                    "histogram" | "summary" => {
                        format!("count={} sum={}", num(&m["count"]), num(&m["sum"]))
                    }
                    _ => format!("{}", num(&m["value"])),
                };
                rows.push((name.clone(), kind.clone(), labels_of(&m["labels"]), value));
            }
        }
        rows.sort();
        out.insert(key, rows);
    }
    out
}

fn store_rows(store: &PushStore) -> BTreeMap<BTreeMap<String, String>, Rows> {
    let mut out = BTreeMap::new();
    for g in store.list() {
        let key: BTreeMap<String, String> = g
            .key
            .labels()
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect();
        let mut rows = Rows::new();
        for f in &g.families {
            for m in &f.metrics {
                let value = match &m.value {
                    PushedValue::Single(v) => format!("{v}"),
                    PushedValue::Summary { count, sum, .. }
                    | PushedValue::Histogram { count, sum, .. } => {
                        format!("count={count} sum={sum}")
                    }
                };
                rows.push((
                    f.name.clone(),
                    f.kind.as_str().to_string(),
                    m.labels.iter().cloned().collect(),
                    value,
                ));
            }
        }
        rows.sort();
        out.insert(key, rows);
    }
    out
}

#[test]
fn prometheus_client_pushes_agree_with_pushgateway() {
    if Command::new(BINARY).arg("--version").output().is_err() {
        if std::env::var("WATCHPOST_REQUIRE_ALL").as_deref() == Ok("1") {
            panic!("{BINARY} not found and WATCHPOST_REQUIRE_ALL=1");
        }
        eprintln!("SKIPPED: {BINARY} not installed (apt install prometheus-pushgateway)");
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let _gw = Killed(
        Command::new(BINARY)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--persistence.file={}",
                dir.path().join("pg.data").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "pushgateway did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let raw =
        include_str!("../src/ingest/pushgateway/testdata/prometheus_client_0.21.1_requests.json");
    let reqs: Vec<serde_json::Value> = serde_json::from_str(raw).unwrap();
    let store = PushStore::in_memory(Arc::new(ManualClock::new(1_000)));
    // Compare after the PUT+POST (before the DELETE) and at the end.
    for (i, r) in reqs.iter().enumerate() {
        let method = r["method"].as_str().unwrap();
        let path = r["path"].as_str().unwrap();
        let ct = r["content_type"].as_str();
        let body = base64::engine::general_purpose::STANDARD
            .decode(r["body_b64"].as_str().unwrap())
            .unwrap();
        let (code, resp) = http(port, method, path, ct, &body);
        assert!(
            (200..300).contains(&code),
            "pushgateway answered {code} to {method} {path}: {}",
            String::from_utf8_lossy(&resp)
        );
        let key = GroupingKey::from_path(path).unwrap();
        match method {
            "PUT" => store
                .push(&key, PushMethod::Put, decode_body(ct, &body).unwrap())
                .unwrap(),
            "POST" => store
                .push(&key, PushMethod::Post, decode_body(ct, &body).unwrap())
                .unwrap(),
            "DELETE" => {
                store.delete(&key).unwrap();
            }
            m => panic!("unexpected method {m}"),
        }
        if i == 1 || i == reqs.len() - 1 {
            let (code, json) = http(port, "GET", "/api/v1/metrics", None, b"");
            assert_eq!(code, 200);
            let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
            let want = gateway_rows(&v["data"]);
            let got = store_rows(&store);
            assert!(!want.is_empty());
            assert_eq!(got, want, "after request {i}");
        }
    }
}
