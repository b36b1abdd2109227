//! Alertmanager client (spec §4): every alert goes to every configured
//! Alertmanager as `POST <url><path_prefix>/api/v2/alerts` with
//! Prometheus's JSON body. Per Alertmanager a bounded FIFO queue (oldest
//! dropped and counted when full) is drained by one sender thread in
//! batches of at most 256 alerts. A failed POST is counted and dropped, not
//! retried: the evaluator re-sends firing alerts at the resend delay.
//!
//! The HTTP client is a minimal HTTP/1.1 writer over `TcpStream` (plain
//! `http://` only): Alertmanager answers a short status line and a tiny
//! body, and the crate has no HTTP client dependency to spare.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use parking_lot::{Condvar, Mutex};

use super::alert::Alert;

/// Default queue capacity per Alertmanager (alerts).
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Maximum alerts per POST (Prometheus's batch size).
pub const MAX_BATCH: usize = 256;

/// One Alertmanager target.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerTarget {
    /// `host:port`.
    pub address: String,
    /// Path prefix (`/` or `/am`); the POST goes to `<prefix>/api/v2/alerts`.
    pub path_prefix: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Basic auth `(user, password)`.
    pub basic_auth: Option<(String, String)>,
    /// Bearer token.
    pub bearer_token: Option<String>,
}

impl AlertmanagerTarget {
    /// A target at `host:port` with prefix `/`, timeout 10s, no auth.
    pub fn new(address: impl Into<String>) -> Self {
        AlertmanagerTarget {
            address: address.into(),
            path_prefix: "/".into(),
            timeout: Duration::from_secs(10),
            basic_auth: None,
            bearer_token: None,
        }
    }

    fn path(&self) -> String {
        format!("{}/api/v2/alerts", self.path_prefix.trim_end_matches('/'))
    }
}

/// Why a POST failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Connect/read/write failure.
    #[error("cannot post to alertmanager {address}: {source}")]
    Io {
        /// Target.
        address: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A non-2xx answer.
    #[error("alertmanager {address} answered {status}: {body}")]
    Status {
        /// Target.
        address: String,
        /// HTTP status code.
        status: u16,
        /// Response body (truncated).
        body: String,
    },
}

/// Counters per Alertmanager (`prometheus_notifications_*`).
#[derive(Debug, Default)]
pub struct TargetMetrics {
    /// Alerts delivered.
    pub sent: AtomicU64,
    /// Alerts in failed POSTs.
    pub errors: AtomicU64,
    /// Alerts dropped (queue overflow or failed POST).
    pub dropped: AtomicU64,
}

struct Queue {
    alerts: Mutex<VecDeque<Alert>>,
    cv: Condvar,
    /// Number of POSTs in flight (0 or 1), so `flush` can wait for them.
    in_flight: Mutex<usize>,
}

struct Target {
    cfg: AlertmanagerTarget,
    queue: Queue,
    metrics: TargetMetrics,
}

/// Sends alerts to Alertmanagers.
pub struct Notifier {
    targets: Vec<Arc<Target>>,
    external_labels: BTreeMap<String, String>,
    capacity: usize,
    user_agent: String,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field(
                "targets",
                &self
                    .targets
                    .iter()
                    .map(|t| &t.cfg.address)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Milliseconds since the epoch as RFC 3339 UTC with milliseconds
/// (`2025-03-01T10:05:00.123Z`).
pub fn rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// The request body for `alerts`: a JSON array in Alertmanager's v2 shape.
pub fn encode_body(alerts: &[Alert]) -> Vec<u8> {
    let arr: Vec<serde_json::Value> = alerts
        .iter()
        .map(|a| {
            let labels: serde_json::Map<String, serde_json::Value> = a
                .labels
                .iter()
                .map(|l| {
                    (
                        l.name.to_string(),
                        serde_json::Value::String(l.value.to_string()),
                    )
                })
                .collect();
            let ann: serde_json::Map<String, serde_json::Value> = a
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            serde_json::json!({
                "labels": labels,
                "annotations": ann,
                "startsAt": rfc3339_ms(a.starts_at_ms),
                "endsAt": rfc3339_ms(a.ends_at_ms),
                "generatorURL": a.generator_url,
            })
        })
        .collect();
    serde_json::to_vec(&arr).unwrap_or_else(|_| b"[]".to_vec())
}

/// One POST; returns the HTTP status on 2xx.
fn post(cfg: &AlertmanagerTarget, body: &[u8], user_agent: &str) -> Result<u16, SendError> {
    let io = |source| SendError::Io {
        address: cfg.address.clone(),
        source,
    };
    let addr = cfg
        .address
        .to_socket_addrs()
        .map_err(io)?
        .next()
        .ok_or_else(|| {
            io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no address",
            ))
        })?;
    let mut s = TcpStream::connect_timeout(&addr, cfg.timeout).map_err(io)?;
    s.set_read_timeout(Some(cfg.timeout)).map_err(io)?;
    s.set_write_timeout(Some(cfg.timeout)).map_err(io)?;
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {user_agent}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        cfg.path(),
        cfg.address,
        body.len()
    );
    if let Some((u, p)) = &cfg.basic_auth {
        let tok = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        head.push_str(&format!("Authorization: Basic {tok}\r\n"));
    } else if let Some(t) = &cfg.bearer_token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).map_err(io)?;
    s.write_all(body).map_err(io)?;
    let mut resp = Vec::new();
    // The answer is small; cap what we read in case of a misbehaving peer.
    let _ = s.take(64 * 1024).read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no HTTP status line",
            ))
        })?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        let body = text
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or("")
            .chars()
            .take(512)
            .collect();
        Err(SendError::Status {
            address: cfg.address.clone(),
            status,
            body,
        })
    }
}

impl Notifier {
    /// Starts one sender thread per target. `external_labels` are added to
    /// each alert for names it does not have.
    pub fn new(
        targets: Vec<AlertmanagerTarget>,
        external_labels: BTreeMap<String, String>,
        capacity: usize,
    ) -> Arc<Notifier> {
        let n = Arc::new(Notifier {
            targets: targets
                .into_iter()
                .map(|cfg| {
                    Arc::new(Target {
                        cfg,
                        queue: Queue {
                            alerts: Mutex::new(VecDeque::new()),
                            cv: Condvar::new(),
                            in_flight: Mutex::new(0),
                        },
                        metrics: TargetMetrics::default(),
                    })
                })
                .collect(),
            external_labels,
            capacity: capacity.max(1),
            user_agent: format!("watchpost/{}", env!("CARGO_PKG_VERSION")),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Mutex::new(Vec::new()),
        });
        for t in &n.targets {
            let t = Arc::clone(t);
            let stop = Arc::clone(&n.stop);
            let ua = n.user_agent.clone();
            let spawned = std::thread::Builder::new()
                .name("notify:alertmanager".into())
                .spawn(move || sender_loop(&t, &stop, &ua));
            match spawned {
                Ok(j) => n.threads.lock().push(j),
                Err(e) => tracing::error!("cannot start alertmanager sender: {e}"),
            }
        }
        n
    }

    /// Queues alerts for every Alertmanager (never blocks on the network).
    pub fn send(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        let alerts: Vec<Alert> = alerts
            .into_iter()
            .map(|mut a| {
                if !self.external_labels.is_empty() {
                    let mut b = a.labels.builder();
                    for (k, v) in &self.external_labels {
                        if a.labels.get(k).is_none() {
                            b.set(k.as_str(), v.as_str());
                        }
                    }
                    a.labels = b.build();
                }
                a
            })
            .collect();
        for t in &self.targets {
            let mut q = t.queue.alerts.lock();
            q.extend(alerts.iter().cloned());
            let over = q.len().saturating_sub(self.capacity);
            if over > 0 {
                q.drain(..over);
                t.metrics.dropped.fetch_add(over as u64, Ordering::Relaxed);
                tracing::warn!(alertmanager = %t.cfg.address, "alert queue full, dropped {over} oldest alerts");
            }
            t.queue.cv.notify_one();
        }
    }

    /// Waits (up to `timeout`) until every queue is empty and no POST is in
    /// flight. Returns false on timeout.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let idle = self
                .targets
                .iter()
                .all(|t| t.queue.alerts.lock().is_empty() && *t.queue.in_flight.lock() == 0);
            if idle {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Per-target counters, in configuration order: (address, metrics).
    pub fn metrics(&self) -> Vec<(String, &TargetMetrics)> {
        self.targets
            .iter()
            .map(|t| (t.cfg.address.clone(), &t.metrics))
            .collect()
    }

    /// Current queue length per target.
    pub fn queue_lengths(&self) -> Vec<usize> {
        self.targets
            .iter()
            .map(|t| t.queue.alerts.lock().len())
            .collect()
    }

    /// Drains the queues (bounded by `timeout`) and stops the senders.
    pub fn stop(&self, timeout: Duration) {
        self.flush(timeout);
        self.stop.store(true, Ordering::SeqCst);
        for t in &self.targets {
            t.queue.cv.notify_all();
        }
        for j in self.threads.lock().drain(..) {
            let _ = j.join();
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in &self.targets {
            t.queue.cv.notify_all();
        }
    }
}

fn sender_loop(t: &Target, stop: &AtomicBool, ua: &str) {
    loop {
        let batch: Vec<Alert> = {
            let mut q = t.queue.alerts.lock();
            while q.is_empty() && !stop.load(Ordering::SeqCst) {
                t.queue.cv.wait_for(&mut q, Duration::from_millis(500));
            }
            if q.is_empty() {
                return;
            }
            let n = q.len().min(MAX_BATCH);
            *t.queue.in_flight.lock() += 1;
            q.drain(..n).collect()
        };
        let body = encode_body(&batch);
        match post(&t.cfg, &body, ua) {
            Ok(_) => {
                t.metrics
                    .sent
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!("{e}");
                t.metrics
                    .errors
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                t.metrics
                    .dropped
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
        }
        *t.queue.in_flight.lock() -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;
    use std::net::TcpListener;

    fn alert(name: &str) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", name), ("team", "storage")]),
            annotations: BTreeMap::from([("summary".to_string(), "s".to_string())]),
            starts_at_ms: 1_740_823_500_123,
            ends_at_ms: 1_740_823_740_123,
            generator_url: "http://x/graph?g0.expr=up&g0.tab=1".into(),
        }
    }

    #[test]
    fn body_matches_prometheus_shape() {
        assert_eq!(rfc3339_ms(1_740_823_500_123), "2025-03-01T10:05:00.123Z");
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        let body: serde_json::Value = serde_json::from_slice(&encode_body(&[alert("A")])).unwrap();
        assert_eq!(
            body,
            serde_json::json!([{
                "labels": {"alertname": "A", "team": "storage"},
                "annotations": {"summary": "s"},
                "startsAt": "2025-03-01T10:05:00.123Z",
                "endsAt": "2025-03-01T10:09:00.123Z",
                "generatorURL": "http://x/graph?g0.expr=up&g0.tab=1"
            }])
        );
    }

    /// Recorded (head, body) pairs of requests.
    type Requests = Arc<Mutex<Vec<(String, String)>>>;

    /// A one-shot-per-connection HTTP server recording request bodies.
    fn fake_am(status: u16) -> (String, Requests) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let got: Requests = Arc::default();
        let g2 = got.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { break };
                let mut buf = Vec::new();
                let mut tmp = [0u8; 65536];
                loop {
                    let n = c.read(&mut tmp).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if body.len() >= len {
                            g2.lock().push((head.to_string(), body.to_string()));
                            break;
                        }
                    }
                }
                let _ = c.write_all(
                    format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                );
            }
        });
        (addr, got)
    }

    #[test]
    fn a01_a03_a04_external_labels_batches_and_failures() {
        let (ok_addr, ok_got) = fake_am(200);
        let (bad_addr, bad_got) = fake_am(500);
        let mut t = AlertmanagerTarget::new(ok_addr);
        t.basic_auth = Some(("u".into(), "p".into()));
        let ext = BTreeMap::from([
            ("env".to_string(), "prod".to_string()),
            ("team".to_string(), "x".to_string()),
        ]);
        let n = Notifier::new(
            vec![t, AlertmanagerTarget::new(bad_addr)],
            ext,
            DEFAULT_QUEUE_CAPACITY,
        );
        n.send((0..300).map(|i| alert(&format!("A{i}"))).collect());
        assert!(n.flush(Duration::from_secs(10)));
        let reqs = ok_got.lock().clone();
        assert_eq!(reqs.len(), 2, "256 + 44");
        let first: serde_json::Value = serde_json::from_str(&reqs[0].1).unwrap();
        let second: serde_json::Value = serde_json::from_str(&reqs[1].1).unwrap();
        assert_eq!(
            (
                first.as_array().unwrap().len(),
                second.as_array().unwrap().len()
            ),
            (256, 44)
        );
        assert_eq!(first[0]["labels"]["env"], "prod");
        assert_eq!(
            first[0]["labels"]["team"], "storage",
            "the alert's own value wins"
        );
        assert!(reqs[0].0.starts_with("POST /api/v2/alerts HTTP/1.1"));
        assert!(reqs[0].0.contains("Authorization: Basic dTpw"));
        assert!(reqs[0].0.contains("Content-Type: application/json"));
        assert_eq!(bad_got.lock().len(), 2);
        let m = n.metrics();
        assert_eq!(m[0].1.sent.load(Ordering::Relaxed), 300);
        assert_eq!(m[1].1.errors.load(Ordering::Relaxed), 300);
        assert_eq!(m[1].1.dropped.load(Ordering::Relaxed), 300);
        n.stop(Duration::from_secs(1));
    }

    #[test]
    fn a05_full_queue_drops_oldest() {
        // A target nobody listens on and a tiny queue: the sender is busy
        // failing while we overfill.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let n = Notifier::new(vec![AlertmanagerTarget::new(addr)], BTreeMap::new(), 10);
        n.stop.store(true, Ordering::SeqCst);
        n.targets[0].queue.cv.notify_all();
        for j in n.threads.lock().drain(..) {
            j.join().unwrap();
        }
        n.send((0..15).map(|i| alert(&format!("A{i}"))).collect());
        assert_eq!(n.queue_lengths(), vec![10]);
        assert_eq!(n.metrics()[0].1.dropped.load(Ordering::Relaxed), 5);
        let first = n.targets[0].queue.alerts.lock()[0]
            .labels
            .get("alertname")
            .unwrap()
            .to_string();
        assert_eq!(first, "A5", "the 5 oldest were dropped");
    }
}
