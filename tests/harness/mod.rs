//! Shared helpers for tests that run the real `watchpost` binary: start a
//! server on 127.0.0.1 with a kernel-chosen port (read back from its log),
//! wait for readiness, talk HTTP to it, stop or kill it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use watchpost::cli::client::{HttpResponse, request};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_watchpost")
}

/// A running `watchpost serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `watchpost serve` on `data` with extra flags and waits until
    /// it logs its HTTP address (at most 30 s).
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(bin())
            .arg("serve")
            .arg("--web.listen-address=127.0.0.1:0")
            .arg(format!("--storage.tsdb.path={}", data.display()))
            // StatsD listens on 127.0.0.1:8125 by default; tests run side
            // by side, so a test that wants StatsD names its own port.
            .args(
                (!extra.iter().any(|a| a.starts_with("--statsd.listen")))
                    .then_some("--statsd.listen-udp="),
            )
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn watchpost");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent
                    && line.contains("HTTP server listening")
                    && let Some(a) = line.split("address=").nth(1)
                {
                    let _ = tx.send(a.split_whitespace().next().unwrap_or("").to_string());
                    sent = true;
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server did not report its address; log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Server {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    /// Waits (bounded) until `/-/ready` answers 200.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = self.try_req("GET", "/-/ready", &[], b"")
                && r.status == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server not ready within 60 s; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn try_req(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, watchpost::cli::client::ClientError> {
        request(
            method,
            &format!("{}{path}", self.base),
            headers,
            body,
            Duration::from_secs(30),
        )
    }

    pub fn req(&self, method: &str, path: &str, body: &[u8]) -> HttpResponse {
        self.try_req(method, path, &[], body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}; log:\n{}", self.log()))
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        self.req("GET", path, b"")
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    pub fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(
            sent.is_ok_and(|s| s.success()),
            "cannot send SIGTERM to {pid}"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "server did not stop within 30 s of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A failing test must not leave its server running.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `watchpost tsdb dump` on `data` and returns stdout (panics on failure).
pub fn dump(data: &Path, extra: &[&str]) -> String {
    let out = Command::new(bin())
        .args(["tsdb", "dump"])
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .args(extra)
        .output()
        .expect("run tsdb dump");
    assert!(
        out.status.success(),
        "tsdb dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 dump")
}

/// A fresh temporary data directory.
pub fn tempdir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path().join("data");
    (d, p)
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Skips (or fails under `WATCHPOST_REQUIRE_ALL=1`, as `.ci/run` sets) when
/// a peer the test needs (`ok` false) is not installed.
pub fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var("WATCHPOST_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("{what} is missing and WATCHPOST_REQUIRE_ALL=1");
    }
    eprintln!("SKIPPED: {what} is missing");
    false
}

/// A loopback TCP port free at the time of the call, for peers that cannot
/// report a kernel-chosen port back.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A peer process, killed on drop so a failing test leaves nothing behind.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Families of each Pushgateway-API group (`labels` -> family -> (type,
/// help, sorted `(labels, value)`)), from a `GET /api/v1/metrics` listing,
/// normalised so watchpost's and the real Pushgateway's compare equal:
/// push-time gauges are left out and `_created` values zeroed (both are the
/// client's clock at each push). Metric labels are compared as listed
/// (both list `instance=""` on the metrics of a group without an instance).
pub type PushGroups =
    std::collections::BTreeMap<String, Vec<(String, String, String, Vec<(String, f64)>)>>;

/// See [`PushGroups`].
pub fn pushgateway_groups(listing: &serde_json::Value) -> PushGroups {
    let mut out = PushGroups::new();
    for g in listing["data"].as_array().expect("groups") {
        let mut fams = Vec::new();
        for (name, f) in g.as_object().expect("group") {
            let skip = [
                "labels",
                "last_push_successful",
                "push_time_seconds",
                "push_failure_time_seconds",
            ];
            if skip.contains(&name.as_str()) {
                continue;
            }
            let mut ms: Vec<(String, f64)> = f["metrics"]
                .as_array()
                .expect("metrics")
                .iter()
                .map(|m| {
                    let v: f64 = m["value"].as_str().expect("value").parse().expect("number");
                    let v = if name.ends_with("_created") { 0.0 } else { v };
                    let labels: std::collections::BTreeMap<&str, &str> = m["labels"]
                        .as_object()
                        .expect("labels")
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str().expect("label value")))
                        .collect();
                    (format!("{labels:?}"), v)
                })
                .collect();
            ms.sort_by(|a, b| a.0.cmp(&b.0));
            fams.push((
                name.clone(),
                f["type"].as_str().unwrap_or("").to_string(),
                f["help"].as_str().unwrap_or("").to_string(),
                ms,
            ));
        }
        fams.sort_by(|a, b| a.0.cmp(&b.0));
        out.insert(g["labels"].to_string(), fams);
    }
    out
}
