//! `check rules` against a set of valid and broken files, and agreement
//! with real `promtool check rules` (Debian's prometheus 2.42) on the exit
//! code of each (spec §8.6 U01–U06).

use std::path::PathBuf;
use std::process::Command;

use watchpost::rules::check::{CheckOptions, check_rule_files, check_rule_text};

/// (file name, content, expected exit code, text expected in the output).
const CASES: &[(&str, &str, i32, &str)] = &[
    (
        "valid.yml",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    for: 5m\n    annotations:\n      summary: '{{ $labels.instance }} down'\n  - record: job:up:sum\n    expr: sum by (job) (up)\n",
        0,
        "SUCCESS: 2 rules found",
    ),
    (
        "u01.yml",
        "groups:\n- name: g\n  rules:\n  - record: a\n    alert: b\n    expr: up\n",
        1,
        "only one of 'record' and 'alert' must be set",
    ),
    (
        "u02.yml",
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n    for: 5m\n",
        1,
        "invalid field 'for' in recording rule",
    ),
    (
        "u03.yml",
        "groups:\n- name: g\n  rules:\n  - record: 'foo{bar=\"x\"}'\n    expr: up\n",
        1,
        "braces present in the recording rule name",
    ),
    (
        "u04.yml",
        "groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n",
        1,
        "is repeated in the same file",
    ),
    (
        "u05.yml",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    summary: x\n",
        1,
        "field summary not found",
    ),
    (
        "badexpr.yml",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(up\n",
        1,
        "could not parse expression",
    ),
    (
        "badtmpl.yml",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      s: '{{ $labels.x '\n",
        1,
        "annotation \"s\"",
    ),
    ("badyaml.yml", "groups:\n- name: g\n  rules: [\n", 1, "yaml"),
    (
        "badlabel.yml",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      'a-b': x\n",
        1,
        "invalid label name",
    ),
    (
        "noexpr.yml",
        "groups:\n- name: g\n  rules:\n  - alert: A\n",
        1,
        "field 'expr' must be set in rule",
    ),
    (
        "dup.yml",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n  - alert: A\n    expr: up == 0\n",
        0,
        "1 duplicate rule(s) found.",
    ),
];

#[test]
fn check_rules_agrees_with_promtool() {
    let tmp = tempfile::tempdir().unwrap();
    let have_promtool = Command::new("promtool").arg("--version").output().is_ok();
    if !have_promtool {
        assert!(
            std::env::var("WATCHPOST_REQUIRE_ALL").as_deref() != Ok("1"),
            "promtool required (WATCHPOST_REQUIRE_ALL=1) but missing"
        );
        eprintln!(
            "SKIPPING promtool cross-check: promtool not installed (apt-get install prometheus)"
        );
    }
    for (name, text, code, needle) in CASES {
        let p: PathBuf = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        let out = check_rule_files(&[&p], &CheckOptions::default());
        assert_eq!(out.exit_code, *code, "{name}: {out:?}");
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(all.contains(needle), "{name}: want {needle:?} in {all}");
        assert!(out.stdout.starts_with(&format!("Checking {}", p.display())));
        if have_promtool {
            let st = Command::new("promtool")
                .args(["check", "rules"])
                .arg(&p)
                .output()
                .unwrap();
            assert_eq!(
                st.status.code(),
                Some(*code),
                "promtool on {name}: {}",
                String::from_utf8_lossy(&st.stderr)
            );
        }
    }
}

#[test]
fn u01_errors_carry_line_and_column() {
    let out = check_rule_text(
        "groups:\n- name: g\n  rules:\n  - record: a\n    alert: b\n    expr: up\n",
        &CheckOptions::default(),
    );
    assert_eq!(out.exit_code, 1);
    assert!(out.stderr.contains("standard input:4:5: group \"g\", rule 1, \"a\": only one of 'record' and 'alert' must be set"), "{}", out.stderr);
}

#[test]
fn u05_ignore_unknown_fields_u06_lint_fatal() {
    let unknown = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    summary: x\n";
    let opts = CheckOptions {
        ignore_unknown_fields: true,
        ..Default::default()
    };
    assert_eq!(check_rule_text(unknown, &opts).exit_code, 0);
    let dup = CASES.iter().find(|c| c.0 == "dup.yml").unwrap().1;
    let fatal = CheckOptions {
        lint_fatal: true,
        ..Default::default()
    };
    assert_eq!(check_rule_text(dup, &fatal).exit_code, 3);
    let none = CheckOptions {
        lint: watchpost::rules::check::LintMode::None,
        lint_fatal: true,
        ..Default::default()
    };
    assert_eq!(check_rule_text(dup, &none).exit_code, 0);
}

#[test]
fn repository_rule_files_are_valid() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules");
    let files = [dir.join("application.yml"), dir.join("node.yml")];
    let out = check_rule_files(&files, &CheckOptions::default());
    assert_eq!(out.exit_code, 0, "{out:?}");
    assert!(
        out.stdout.contains("SUCCESS: 4 rules found")
            && out.stdout.contains("SUCCESS: 5 rules found")
    );
}
