//! `test rules` runner against the repository's rules/tests/ files and the
//! spec's §6.6 example, cross-checked with real `promtool test rules`
//! (Debian's prometheus package) when it is installed: same verdicts,
//! including for a deliberately wrong expectation.

use std::path::{Path, PathBuf};
use std::process::Command;

use watchpost::rules::unittest::{TestOptions, run_test_file};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `Some(passed)` from promtool, or `None` (after saying so) when missing.
fn promtool_verdict(test_file: &Path) -> Option<bool> {
    match Command::new("promtool")
        .arg("test")
        .arg("rules")
        .arg(test_file)
        .output()
    {
        Ok(out) => Some(out.status.success()),
        Err(_) => {
            assert!(
                std::env::var("WATCHPOST_REQUIRE_ALL").as_deref() != Ok("1"),
                "promtool is required (WATCHPOST_REQUIRE_ALL=1) but not installed"
            );
            eprintln!(
                "SKIPPING promtool cross-check: promtool not installed (apt-get install prometheus)"
            );
            None
        }
    }
}

fn run(path: &Path) -> watchpost::rules::unittest::TestFileResult {
    run_test_file(path, &TestOptions::default())
}

#[test]
fn repository_rule_tests_pass_here_and_in_promtool() {
    let dir = repo().join("rules/tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "rules/tests has the application and node tests"
    );
    for f in files {
        let r = run(&f);
        assert!(r.passed(), "{}:\n{}", f.display(), r.report());
        assert!(r.groups_run >= 1);
        if let Some(ok) = promtool_verdict(&f) {
            assert!(ok, "promtool disagrees on {}", f.display());
        }
    }
}

/// Copies rules/ to a temp dir and breaks one expectation.
fn broken_copy(from: &str, to: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("tests")).unwrap();
    for f in ["application.yml", "node.yml"] {
        std::fs::copy(repo().join("rules").join(f), tmp.path().join(f)).unwrap();
    }
    let text = std::fs::read_to_string(repo().join("rules/tests/application_test.yml")).unwrap();
    assert!(text.contains(from));
    let path = tmp.path().join("tests/application_test.yml");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    (tmp, path)
}

#[test]
fn wrong_expectation_fails_here_and_in_promtool() {
    let (_tmp, path) = broken_copy("Error rate is 10%", "Error rate is 11%");
    let r = run(&path);
    assert!(!r.passed());
    let report = r.report();
    assert!(
        report.contains("alertname: HighErrorRate, time: 15m"),
        "{report}"
    );
    assert!(
        report.contains(r#"description="Error rate is 11%""#),
        "{report}"
    );
    assert!(
        report.contains(r#"description="Error rate is 10%""#),
        "{report}"
    );
    if let Some(ok) = promtool_verdict(&path) {
        assert!(!ok, "promtool should fail too");
    }
    let (_tmp2, path2) = broken_copy("eval_time: 14m", "eval_time: 15m");
    assert!(!run(&path2).passed());
    if let Some(ok) = promtool_verdict(&path2) {
        assert!(!ok);
    }
}

const SPEC_RULES: &str = r#"groups:
  - name: node-recording
    interval: 30s
    rules:
      - record: instance_mountpoint:node_fs_used:ratio
        expr: |
          1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay"}
                / node_filesystem_size_bytes{fstype!~"tmpfs|overlay"}
  - name: node-alerts
    interval: 1m
    limit: 500
    labels:
      team: storage
    rules:
      - alert: DiskAlmostFull
        expr: instance_mountpoint:node_fs_used:ratio > 0.9
        for: 10m
        keep_firing_for: 5m
        labels:
          severity: warning
        annotations:
          summary: "Disk {{ $labels.mountpoint }} on {{ $labels.instance }} is {{ $value | humanizePercentage }} full"
          runbook_url: https://runbooks.example.internal/disk
      - alert: InstanceDown
        expr: up == 0
        for: 2m
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.job }}/{{ $labels.instance }} unreachable in {{ $externalLabels.env }}"
      - alert: Watchdog
        expr: vector(1)
        labels: {severity: none}
"#;

const SPEC_TEST: &str = r#"rule_files: [rules.yml]
evaluation_interval: 1m
group_eval_order: [node-recording, node-alerts]

tests:
  - name: disk fills then recovers
    interval: 1m
    input_series:
      - series: 'node_filesystem_avail_bytes{instance="db1:9100",job="node",mountpoint="/var",fstype="ext4"}'
        values: '50+0x4 5+0x14 60+0x10'
      - series: 'node_filesystem_size_bytes{instance="db1:9100",job="node",mountpoint="/var",fstype="ext4"}'
        values: '100x30'
    alert_rule_test:
      - eval_time: 14m
        alertname: DiskAlmostFull
        exp_alerts: []
      - eval_time: 15m
        alertname: DiskAlmostFull
        exp_alerts: &disk_firing
          - exp_labels: {fstype: ext4, instance: "db1:9100", job: node,
                         mountpoint: /var, severity: warning, team: storage}
            exp_annotations:
              summary: "Disk /var on db1:9100 is 95% full"
              runbook_url: https://runbooks.example.internal/disk
      - eval_time: 24m
        alertname: DiskAlmostFull
        exp_alerts: *disk_firing
      - eval_time: 25m
        alertname: DiskAlmostFull
        exp_alerts: []
    promql_expr_test:
      - expr: instance_mountpoint:node_fs_used:ratio
        eval_time: 6m
        exp_samples:
          - labels: 'instance_mountpoint:node_fs_used:ratio{fstype="ext4",instance="db1:9100",job="node",mountpoint="/var"}'
            value: 0.95
      - expr: ALERTS_FOR_STATE{alertname="DiskAlmostFull"}
        eval_time: 12m
        exp_samples:
          - labels: 'ALERTS_FOR_STATE{alertname="DiskAlmostFull",fstype="ext4",instance="db1:9100",job="node",mountpoint="/var",severity="warning",team="storage"}'
            value: 300

  - name: instance down and watchdog
    interval: 1m
    external_labels: {env: prod}
    input_series:
      - series: 'up{job="api",instance="api-1:8080"}'
        values: '1 1 0x5 1'
    alert_rule_test:
      - eval_time: 3m
        alertname: InstanceDown
        exp_alerts: []
      - eval_time: 4m30s
        alertname: InstanceDown
        exp_alerts:
          - exp_labels: {instance: "api-1:8080", job: api, severity: page, team: storage}
            exp_annotations:
              summary: "api/api-1:8080 unreachable in prod"
      - eval_time: 8m
        alertname: InstanceDown
        exp_alerts: []
      - eval_time: 0m
        alertname: Watchdog
        exp_alerts:
          - exp_labels: {severity: none, team: storage}
"#;

fn spec_dir(test: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("rules.yml"), SPEC_RULES).unwrap();
    let p = tmp.path().join("test.yml");
    std::fs::write(&p, test).unwrap();
    (tmp, p)
}

#[test]
fn u07_u09_spec_example_passes() {
    let (_t, p) = spec_dir(SPEC_TEST);
    let r = run(&p);
    assert!(r.passed(), "{}", r.report());
    assert_eq!(r.groups_run, 2);
    // No promtool cross-check here: group-level `labels` needs Prometheus 3
    // and Debian's promtool is 2.42.
}

#[test]
fn u08_missing_annotations_fail() {
    let test = SPEC_TEST.replace(
        "            exp_annotations:\n              summary: \"api/api-1:8080 unreachable in prod\"\n",
        "",
    );
    let (_t, p) = spec_dir(&test);
    let r = run(&p);
    assert!(!r.passed());
    assert!(
        r.report().contains("alertname: InstanceDown, time: 4m30s"),
        "{}",
        r.report()
    );
}

#[test]
fn u12_fuzzy_compare_allows_one_ulp() {
    let base = "rule_files: []\n{FUZZY}tests:\n  - name: t\n    promql_expr_test:\n      - expr: 0.1 + 0.2\n        eval_time: 0m\n        exp_samples:\n          - labels: '{}'\n            value: 0.3\n";
    let (_t, strict) = spec_dir(&base.replace("{FUZZY}", ""));
    let r = run(&strict);
    assert!(!r.passed());
    assert!(
        r.report().contains("got: [{} 0.30000000000000004]"),
        "{}",
        r.report()
    );
    let (_t2, fuzzy) = spec_dir(&base.replace("{FUZZY}", "fuzzy_compare: true\n"));
    assert!(run(&fuzzy).passed(), "{}", run(&fuzzy).report());
}

#[test]
fn u13_rule_error_aborts_group_u14_run_filter() {
    let rules = "groups:\n- name: g\n  rules:\n  - record: dup\n    expr: '{__name__=~\"a|b\"}'\n";
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("rules.yml"), rules).unwrap();
    let test = "rule_files: [rules.yml]\ntests:\n  - name: broken\n    input_series:\n      - series: 'a{x=\"1\"}'\n        values: '1 1'\n      - series: 'b{x=\"1\"}'\n        values: '_ 1'\n    alert_rule_test:\n      - eval_time: 1m\n        alertname: X\n  - name: fine\n    alert_rule_test:\n      - eval_time: 1m\n        alertname: X\n";
    let p = tmp.path().join("t.yml");
    std::fs::write(&p, test).unwrap();
    let r = run(&p);
    assert_eq!((r.groups_run, r.failures.len()), (2, 1));
    assert!(r.failures[0].contains("rule: dup, time: 1m, err: vector contains metrics with the same labelset after applying rule labels"), "{:?}", r.failures);
    let only_fine = run_test_file(
        &p,
        &TestOptions {
            run: vec![regex::Regex::new("^fi").unwrap()],
        },
    );
    assert!(only_fine.passed());
    assert_eq!(only_fine.groups_run, 1);
}

#[test]
fn unknown_keys_and_bad_rule_files_fail_the_file() {
    let (_t, p) = spec_dir("rule_files: [rules.yml]\nbogus: 1\ntests: []\n");
    assert!(!run(&p).passed());
    let (_t2, p2) = spec_dir("rule_files: [missing.yml]\ntests: []\n");
    let r = run(&p2);
    assert!(r.passed() && !r.warnings.is_empty(), "{r:?}");
}

/// A series given twice in `input_series`: promtool 2.42 keeps the later
/// definition as a whole. The runner loads input into a real database,
/// which would refuse the duplicate samples; it must resolve them the same
/// way (and a wrong expectation must fail in both).
#[test]
fn series_given_twice_agrees_with_promtool() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("r.yml"),
        "groups:\n- name: g\n  rules:\n  - record: s\n    expr: sum(up)\n",
    )
    .unwrap();
    let test = |at0: u32| {
        format!(
            "rule_files: [r.yml]\nevaluation_interval: 1m\ntests:\n- interval: 1m\n  input_series:\n  - series: 'up{{j=\"a\"}}'\n    values: '1 1 1'\n  - series: 'up{{j=\"a\"}}'\n    values: '_ 0 0'\n  - series: 'up{{j=\"b\"}}'\n    values: '1+1x2 stale'\n  promql_expr_test:\n  - expr: s\n    eval_time: 0m\n    exp_samples: [{{labels: 's', value: {at0}}}]\n  - expr: s\n    eval_time: 2m\n    exp_samples: [{{labels: 's', value: 3}}]\n  - expr: up\n    eval_time: 3m\n    exp_samples: [{{labels: 'up{{j=\"a\"}}', value: 0}}]\n"
        )
    };
    for (at0, pass) in [(1, true), (2, false)] {
        let p = tmp.path().join(format!("t{at0}.yml"));
        std::fs::write(&p, test(at0)).unwrap();
        let r = run(&p);
        assert_eq!(r.passed(), pass, "{}", r.report());
        if let Some(ok) = promtool_verdict(&p) {
            assert_eq!(ok, pass, "promtool disagrees on {}", p.display());
        }
    }
}
