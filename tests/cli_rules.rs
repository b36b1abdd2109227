//! The `watchpost check rules` / `watchpost test rules` subcommands run as
//! a real process: the repository's rules and their unit tests pass, a
//! broken rule file and a wrong expectation fail with the problem in the
//! output, and `check rules` gives the same verdict as real
//! `promtool check rules` (Debian's prometheus 2.42) on every file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn watchpost(args: &[&str], files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(args)
        .args(files)
        .output()
        .expect("run watchpost")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn yml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no .yml files in {}", dir.display());
    v
}

const BROKEN: &str = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(up\n  - record: a\n    alert: b\n    expr: up\n";

#[test]
fn repository_rules_check_clean() {
    let files = yml_files(&repo().join("rules"));
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let o = watchpost(&["check", "rules"], &refs);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    for f in &files {
        assert!(t.contains(&format!("Checking {}", f.display())), "{t}");
    }
    assert!(t.contains("SUCCESS"), "{t}");
}

#[test]
fn broken_rule_file_lists_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, BROKEN).unwrap();
    let good = repo().join("rules/node.yml");
    let o = watchpost(&["check", "rules"], &[&bad, &good]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("FAILED"), "{t}");
    // Both problems, each with file:line:col.
    assert!(t.contains("bad.yml:5:11"), "{t}");
    assert!(t.contains("could not parse expression"), "{t}");
    assert!(
        t.contains("only one of 'record' and 'alert' must be set"),
        "{t}"
    );
    // The good file after it is still checked.
    assert!(t.contains("SUCCESS: 5 rules found"), "{t}");
}

#[test]
fn repository_unit_tests_pass() {
    let files = yml_files(&repo().join("rules/tests"));
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let o = watchpost(&["test", "rules"], &refs);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(text(&o).matches("SUCCESS").count(), files.len());
}

/// node_test.yml with one expected annotation changed (95.0% -> 94.0%).
fn wrong_expectation(dir: &Path) -> PathBuf {
    let src = std::fs::read_to_string(repo().join("rules/tests/node_test.yml")).unwrap();
    assert!(src.contains("is 95.0%"));
    let rules = repo().join("rules/node.yml");
    let wrong = src
        .replace("is 95.0%", "is 94.0%")
        .replace("../node.yml", &rules.display().to_string());
    let p = dir.join("wrong_test.yml");
    std::fs::write(&p, wrong).unwrap();
    p
}

#[test]
fn wrong_expectation_fails_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = wrong_expectation(dir.path());
    let good = repo().join("rules/tests/application_test.yml");
    let o = watchpost(&["test", "rules"], &[&wrong, &good]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("FAILED"), "{t}");
    // Expected and actual both shown.
    assert!(t.contains("94.0%"), "{t}");
    assert!(t.contains("95.0%"), "{t}");
    assert!(t.contains("HostHighCpuUsage"), "{t}");
    // The other file still ran and passed.
    assert!(t.contains("SUCCESS"), "{t}");
}

#[test]
fn missing_test_file_fails() {
    let o = watchpost(&["test", "rules"], &[Path::new("/nonexistent/x_test.yml")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("/nonexistent/x_test.yml"));
}

fn promtool_available() -> bool {
    if Command::new("promtool").arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("WATCHPOST_REQUIRE_ALL").as_deref() != Ok("1"),
        "promtool is required (WATCHPOST_REQUIRE_ALL=1) but not installed"
    );
    eprintln!("SKIPPING promtool comparison: promtool not installed (apt-get install prometheus)");
    false
}

#[test]
fn check_rules_verdicts_match_promtool() {
    if !promtool_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = yml_files(&repo().join("rules"));
    let cases: &[(&str, &str)] = &[
        ("broken.yml", BROKEN),
        (
            "for_on_record.yml",
            "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n    for: 5m\n",
        ),
        (
            "dup_group.yml",
            "groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n",
        ),
        (
            "unknown_field.yml",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    summary: x\n",
        ),
        ("bad_yaml.yml", "groups:\n- name: g\n  rules: [\n"),
        (
            "bad_label.yml",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      0bad: x\n",
        ),
        (
            "ok.yml",
            "groups:\n- name: g\n  interval: 30s\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n  - alert: Down\n    expr: job:up:sum == 0\n    for: 1m\n    keep_firing_for: 2m\n",
        ),
    ];
    for (name, body) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        files.push(p);
    }
    let mut disagreements = Vec::new();
    for f in &files {
        let ours = watchpost(&["check", "rules"], &[f]);
        let theirs = Command::new("promtool")
            .args(["check", "rules"])
            .arg(f)
            .output()
            .unwrap();
        if ours.status.code() != theirs.status.code() {
            disagreements.push(format!(
                "{}: watchpost {:?} vs promtool {:?}\n--- watchpost:\n{}--- promtool:\n{}",
                f.display(),
                ours.status.code(),
                theirs.status.code(),
                text(&ours),
                text(&theirs)
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
