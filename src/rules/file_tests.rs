//! Rule-file decoding and validation tables (spec §1.3, §8.6 U01–U05).

use super::*;

fn parse(text: &str) -> Result<RuleFile, RuleFileError> {
    let opts = LoadOptions {
        ignore_unknown_fields: false,
        validate_expr: Some(Arc::new(|e: &str| {
            if e.contains("((") {
                Err("unclosed left parenthesis".into())
            } else {
                Ok(())
            }
        })),
    };
    parse_rule_file(Path::new("r.yml"), text, &opts)
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => Vec::new(),
        Err(e) => e.to_string().lines().map(str::to_string).collect(),
    }
}

const SPEC_EXAMPLE: &str = r#"groups:
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

#[test]
fn spec_example_loads() {
    let f = parse(SPEC_EXAMPLE).unwrap();
    assert_eq!(f.groups.len(), 2);
    let g = &f.groups[1];
    assert_eq!(
        (g.name.as_str(), g.interval_ms, g.limit),
        ("node-alerts", Some(60_000), 500)
    );
    assert_eq!(g.rules.len(), 3);
    let r = &g.rules[0];
    assert_eq!(r.name(), "DiskAlmostFull");
    assert_eq!(
        r.pos,
        Pos {
            line: 15,
            column: 9
        }
    );
    assert_eq!(r.labels.get("team").map(String::as_str), Some("storage"));
    assert_eq!(
        r.labels.get("severity").map(String::as_str),
        Some("warning")
    );
    match &r.kind {
        RuleKind::Alerting {
            for_ms,
            keep_firing_for_ms,
            annotations,
            ..
        } => {
            assert_eq!((*for_ms, *keep_firing_for_ms), (600_000, 300_000));
            assert_eq!(annotations.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        f.groups[0].rules[0]
            .expr
            .contains("node_filesystem_size_bytes")
    );
}

#[test]
fn u01_record_and_alert() {
    let e = errors("groups:\n- name: g\n  rules:\n  - record: a\n    alert: b\n    expr: up\n");
    assert_eq!(
        e,
        vec![r#"r.yml:4:5: group "g", rule 1, "a": only one of 'record' and 'alert' must be set"#]
    );
    let e = errors("groups:\n- name: g\n  rules:\n  - expr: up\n");
    assert_eq!(
        e,
        vec![r#"r.yml:4:5: group "g", rule 1, "": one of 'record' or 'alert' must be set"#]
    );
}

#[test]
fn u02_u03_recording_rule_fields_and_names() {
    let e = errors(
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n    for: 5m\n    annotations: {x: y}\n",
    );
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].ends_with("invalid field 'for' in recording rule"),
        "{e:?}"
    );
    assert!(
        e[1].ends_with("invalid field 'annotations' in recording rule"),
        "{e:?}"
    );
    let e = errors("groups:\n- name: g\n  rules:\n  - record: 'foo{bar=\"x\"}'\n    expr: up\n");
    assert!(
        e[0].ends_with(
            "braces present in the recording rule name; should it be in expr?: foo{bar=\"x\"}"
        ),
        "{e:?}"
    );
    let e = errors("groups:\n- name: g\n  rules:\n  - record: 1abc\n    expr: up\n");
    assert!(e[0].ends_with("invalid recording rule name: 1abc"), "{e:?}");
}

#[test]
fn u04_duplicate_and_empty_group_names() {
    let e = errors("groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n");
    assert_eq!(
        e,
        vec![r#"r.yml:4:3: groupname: "g" is repeated in the same file"#]
    );
    let e = errors("groups:\n- name: ''\n  rules: []\n");
    assert!(e[0].ends_with("Groupname must not be empty"), "{e:?}");
}

#[test]
fn u05_unknown_fields_strict_and_ignored() {
    let text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    summary: x\n";
    let e = errors(text);
    assert_eq!(
        e,
        vec![
            r#"r.yml:6:5: group "g", rule 1, "A": field summary not found in type rulefmt.RuleNode"#
        ]
    );
    let opts = LoadOptions {
        ignore_unknown_fields: true,
        validate_expr: None,
    };
    assert!(parse_rule_file(Path::new("r.yml"), text, &opts).is_ok());
}

#[test]
fn yaml_type_and_value_errors_have_positions() {
    let e =
        errors("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: 5 minutes\n");
    assert_eq!(
        e,
        vec![
            r#"r.yml:6:10: group "g", rule 1, "A": field 'for': not a valid duration string: "5 minutes""#
        ]
    );
    let e = errors("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: ((up\n");
    assert!(e[0].contains("5:11: group \"g\", rule 1, \"A\": could not parse expression: unclosed left parenthesis"), "{e:?}");
    let e = errors(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      s: '{{ $labels.x '\n",
    );
    assert!(e[0].contains("7:10: group \"g\", rule 1, \"A\": annotation \"s\": template: __alert_A:1: unclosed action"), "{e:?}");
    let e = errors(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      bad-name: x\n      ok: '{{ nope }}'\n",
    );
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].ends_with("invalid label name: bad-name"), "{e:?}");
    assert!(
        e[1].contains("label \"ok\": template: __alert_A:1: function \"nope\" not defined"),
        "{e:?}"
    );
    let e = errors("groups: [\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("r.yml:2:"), "{e:?}");
    let e = errors("groups:\n- name: g\n  limit: -1\n  interval: 0s\n  rules: {}\n");
    assert_eq!(e.len(), 3, "{e:?}");
    let e = errors("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: ''\n");
    assert!(e[0].ends_with("field 'expr' must be set in rule"), "{e:?}");
}

#[test]
fn all_errors_of_a_file_are_reported() {
    let e = errors(
        "groups:\n- name: g\n  rules:\n  - record: a b\n    expr: up\n  - alert: B\n    expr: ''\n",
    );
    assert_eq!(e.len(), 2, "{e:?}");
}

#[test]
fn lints_value_labels_and_short_for() {
    let f = parse("groups:\n- name: g\n  interval: 1m\n  rules:\n  - alert: A\n    expr: up\n    for: 30s\n    labels:\n      v: '{{ $value }}'\n").unwrap();
    assert_eq!(f.warnings.len(), 2, "{:?}", f.warnings);
}

#[test]
fn globs_expand_sorted() {
    let dir = tempfile::tempdir().unwrap();
    for n in ["b.yml", "a.yml", "c.yaml", ".hidden.yml"] {
        std::fs::write(dir.path().join(n), "groups: []\n").unwrap();
    }
    let pat = format!("{}/*.yml", dir.path().display());
    let got = expand_globs(std::slice::from_ref(&pat));
    let names: Vec<_> = got
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, vec!["a.yml", "b.yml"]);
    assert!(glob_match("[a-c]?.y*ml", "b1.yaml"));
    assert!(!glob_match("[!a]*", "abc"));
    let files = load_globs(&[pat], &LoadOptions::default()).unwrap();
    assert_eq!(files.len(), 2);
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in "[a-z:{}\\[\\] \n'\"-]{0,80}") {
        let _ = parse(&s);
    }
}
