//! Rule reloads against the real binary: `POST /-/reload`, `PUT /-/reload`,
//! SIGHUP and a changed file each install new rules (seen in
//! `/api/v1/rules`); a reload that fails validation keeps the old rules and
//! reports the error in the response, the log, `/metrics` and runtimeinfo.

mod harness;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use harness::{Server, tempdir};

fn rule(name: &str) -> String {
    format!(
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: {name}\n    expr: vector(1) > 0\n"
    )
}

const BAD: &str = "groups:\n- name: g\n  rules:\n  - alert: Broken\n    expr: sum(up\n";

fn body(r: &watchpost::cli::client::HttpResponse) -> String {
    String::from_utf8_lossy(&r.body).to_string()
}

fn start(dir: &Path, first: &str) -> Server {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/a.yml"), rule(first)).unwrap();
    let cfg = dir.join("cfg.yml");
    std::fs::write(&cfg, "rule_files: [\"rules/*.yml\"]\n").unwrap();
    let s = Server::start(
        &dir.join("data"),
        &[&format!("--config.file={}", cfg.display())],
    );
    s.wait_ready();
    s
}

fn rules_json(s: &Server) -> String {
    body(&s.get("/api/v1/rules"))
}

fn metric(s: &Server, name: &str) -> Option<f64> {
    body(&s.get("/metrics")).lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

/// `prometheus_rule_evaluations_total` of the (only) group.
fn evaluations(s: &Server) -> Option<f64> {
    body(&s.get("/metrics"))
        .lines()
        .find(|l| l.starts_with("prometheus_rule_evaluations_total{"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn http_reload_good_then_bad() {
    let (d, _) = tempdir();
    let s = start(d.path(), "First");
    assert!(rules_json(&s).contains("\"First\""), "{}", rules_json(&s));
    assert_eq!(
        metric(&s, "prometheus_config_last_reload_successful"),
        Some(1.0)
    );
    // Rule-group self-metrics under Prometheus's names, keyed "file;group".
    let m = body(&s.get("/metrics"));
    let key = format!(
        "{{rule_group=\"{};g\"}}",
        d.path().join("rules/a.yml").display()
    );
    for name in [
        "prometheus_rule_evaluations_total",
        "prometheus_rule_evaluation_failures_total",
        "prometheus_rule_group_iterations_missed_total",
        "prometheus_rule_group_iterations_total",
        "prometheus_rule_group_last_duration_seconds",
    ] {
        assert!(
            m.contains(&format!("{name}{key} ")),
            "{name}{key} missing:\n{m}"
        );
    }
    assert!(
        m.contains(&format!("prometheus_rule_group_interval_seconds{key} 1")),
        "{m}"
    );
    assert!(
        m.contains(&format!("prometheus_rule_group_rules{key} 1")),
        "{m}"
    );
    assert!(m.contains("prometheus_notifications_queue_length 0"), "{m}");
    assert!(
        m.contains("prometheus_notifications_dropped_total 0"),
        "{m}"
    );

    // Good reload via POST.
    std::fs::write(d.path().join("rules/a.yml"), rule("Second")).unwrap();
    let r = s.req("POST", "/-/reload", b"");
    assert_eq!(r.status, 200, "{}", body(&r));
    let j = rules_json(&s);
    assert!(j.contains("\"Second\"") && !j.contains("\"First\""), "{j}");

    // Bad file next to the good one: PUT reload fails and reports it.
    std::fs::write(d.path().join("rules/b.yml"), BAD).unwrap();
    let r = s.req("PUT", "/-/reload", b"");
    assert_eq!(r.status, 500, "{}", body(&r));
    assert!(body(&r).contains("b.yml:5:11"), "{}", body(&r));
    assert!(
        body(&r).contains("could not parse expression"),
        "{}",
        body(&r)
    );
    // Previous rules still there and still evaluated.
    let j = rules_json(&s);
    assert!(j.contains("\"Second\"") && !j.contains("Broken"), "{j}");
    assert_eq!(
        metric(&s, "prometheus_config_last_reload_successful"),
        Some(0.0)
    );
    assert!(metric(&s, "watchpost_rules_reload_failures_total").unwrap() >= 1.0);
    let info = body(&s.get("/api/v1/status/runtimeinfo"));
    assert!(info.contains("\"reloadConfigSuccess\":false"), "{info}");
    assert!(s.log().contains("rule reload failed"), "{}", s.log());
    let before = evaluations(&s).expect("rule evaluation metric");
    assert!(wait_for(10, || evaluations(&s).is_some_and(|v| v > before)));

    // Fixing the file recovers.
    std::fs::remove_file(d.path().join("rules/b.yml")).unwrap();
    let r = s.req("POST", "/-/reload", b"");
    assert_eq!(r.status, 200, "{}", body(&r));
    assert_eq!(
        metric(&s, "prometheus_config_last_reload_successful"),
        Some(1.0)
    );
    let info = body(&s.get("/api/v1/status/runtimeinfo"));
    assert!(info.contains("\"reloadConfigSuccess\":true"), "{info}");
    s.stop();
}

#[test]
fn sighup_and_file_change_reload() {
    let (d, _) = tempdir();
    let s = start(d.path(), "First");
    std::fs::write(d.path().join("rules/a.yml"), rule("ViaHup")).unwrap();
    let pid = s.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        wait_for(10, || rules_json(&s).contains("\"ViaHup\"")),
        "{}\n{}",
        rules_json(&s),
        s.log()
    );
    // Changed on disk, no signal: the watcher picks it up within seconds.
    std::fs::write(
        d.path().join("rules/c.yml"),
        rule("ViaWatch").replace("name: g", "name: h"),
    )
    .unwrap();
    assert!(
        wait_for(20, || rules_json(&s).contains("\"ViaWatch\"")),
        "{}\n{}",
        rules_json(&s),
        s.log()
    );
    assert!(rules_json(&s).contains("\"ViaHup\""));
    s.stop();
}
