//! End to end with a real Alertmanager (Debian's prometheus-alertmanager
//! 0.25, started on loopback by the test): the operations guide's
//! HighErrorRate fires from stored data through the PromQL engine and the
//! rule evaluator, shows up in Alertmanager's `/api/v2/alerts` with its
//! expanded annotations, and goes away after it resolves. Evaluation times
//! are simulated but end at the real "now", because Alertmanager judges
//! `endsAt` by its own clock.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use watchpost::model::{Labels, ManualClock};
use watchpost::notify::{AlertmanagerTarget, Notifier};
use watchpost::promql::Engine;
use watchpost::rules::{LoadOptions, ManagerOptions, RuleManager, engine_query_fn, load_globs};
use watchpost::storage::memory::MemStorage;
use watchpost::storage::{Appendable, Querier};

const M: i64 = 60_000;

fn find_alertmanager() -> Option<PathBuf> {
    for name in ["prometheus-alertmanager", "alertmanager"] {
        if let Ok(out) = Command::new("which").arg(name).output()
            && out.status.success()
        {
            return Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    None
}

struct Am {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Am {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            if n == 0 {
                break;
            }
            out.push_str(tail.get(..n)?);
            rest = tail.get(n + 2..)?;
        }
        out
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn start_am(bin: &PathBuf) -> Am {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("am.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start alertmanager");
    let am = Am {
        child,
        addr,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some((200, _)) = http_get(&am.addr, "/-/ready") {
            return am;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("alertmanager did not become ready on {}", am.addr);
}

fn am_alerts(addr: &str) -> Vec<serde_json::Value> {
    let (status, body) = http_get(addr, "/api/v2/alerts").expect("GET /api/v2/alerts");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Vec<serde_json::Value>>(&body).unwrap()
}

fn wait_for(
    addr: &str,
    what: &str,
    pred: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let a = am_alerts(addr);
        if pred(&a) {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; alertmanager has {a:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn high_error_rate_reaches_alertmanager_and_resolves() {
    let Some(bin) = find_alertmanager() else {
        assert!(
            std::env::var("WATCHPOST_REQUIRE_ALL").as_deref() != Ok("1"),
            "alertmanager required (WATCHPOST_REQUIRE_ALL=1) but not installed"
        );
        eprintln!(
            "SKIPPING: prometheus-alertmanager not installed (apt-get install prometheus-alertmanager)"
        );
        return;
    };
    let am = start_am(&bin);

    // Slots t_k = base + k minutes, with t_N the last whole minute before now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    const N: i64 = 20;
    let base = now - now.rem_euclid(M) - N * M;
    // 9 errors a minute (0.15/s) until slot N-4, flat afterwards: the 5m rate
    // stays above 0.05 through slot N-2 and drops below it at N-1.
    let store = Arc::new(MemStorage::new());
    {
        let labels = Labels::from_pairs([
            ("__name__", "api_errors_total"),
            ("job", "api"),
            ("instance", "app-1:9102"),
        ]);
        let mut app = store.appender();
        for k in 0..=N {
            let v = 9.0 * k.min(N - 4) as f64;
            app.append(&labels, base + k * M, v).unwrap();
        }
        app.commit().unwrap();
    }
    let notifier = Notifier::new(
        vec![AlertmanagerTarget::new(am.addr.clone())],
        BTreeMap::from([("env".to_string(), "test".to_string())]),
        1000,
    );
    let n2 = Arc::clone(&notifier);
    let clock = ManualClock::new(base);
    let querier: Arc<dyn Querier> = store.clone();
    let mut opts = ManagerOptions::new(
        engine_query_fn(Engine::default(), querier),
        Arc::new(move |alerts| n2.send(alerts)),
        store.clone(),
        Arc::new(clock.clone()),
    );
    opts.external_url = "http://watchpost.test:9090".into();
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/application.yml");
    let files = load_globs(&[rules.display().to_string()], &LoadOptions::default()).unwrap();
    let mgr = RuleManager::new(opts);
    mgr.update(files);

    for k in 0..=N - 2 {
        clock.set(base + k * M);
        assert!(mgr.eval_once("application", base + k * M));
    }
    assert!(notifier.flush(Duration::from_secs(10)));
    let alerts = wait_for(&am.addr, "HighErrorRate to fire", |a| {
        a.iter()
            .any(|x| x["labels"]["alertname"] == "HighErrorRate")
    });
    let a = alerts
        .iter()
        .find(|x| x["labels"]["alertname"] == "HighErrorRate")
        .unwrap();
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["labels"]["env"], "test", "external label added");
    assert_eq!(a["labels"]["instance"], "app-1:9102");
    assert_eq!(a["annotations"]["summary"], "High API error rate");
    let desc = a["annotations"]["description"].as_str().unwrap();
    assert!(
        desc.starts_with("Error rate is ") && desc.ends_with('%'),
        "{desc}"
    );
    assert_eq!(a["status"]["state"], "active");
    assert!(
        a["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("http://watchpost.test:9090/graph?g0.expr=rate%28api_errors_total")
    );

    clock.set(base + (N - 1) * M);
    assert!(mgr.eval_once("application", base + (N - 1) * M));
    assert!(notifier.flush(Duration::from_secs(10)));
    wait_for(&am.addr, "HighErrorRate to resolve", |a| {
        !a.iter()
            .any(|x| x["labels"]["alertname"] == "HighErrorRate")
    });
    assert_eq!(
        notifier.metrics()[0]
            .1
            .errors
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    notifier.stop(Duration::from_secs(2));
}
