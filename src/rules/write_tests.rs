//! How a group's outputs reach storage: alerting rules' `ALERTS` writes
//! are committed once per evaluation when no rule of the group can read
//! them, and per rule otherwise (spec §2.1, "Visibility").

use super::*;

fn commits(h: &Harness) -> usize {
    h.store.commits.load(std::sync::atomic::Ordering::SeqCst)
}

/// Two alerting rules on `up == 0`, plus `extra` rules.
fn two_alerts(extra: &str) -> String {
    format!(
        "groups:\n- name: g\n  interval: 1m\n  rules:\n  - alert: A\n    expr: up == 0\n  - alert: B\n    expr: up == 0\n{extra}"
    )
}

#[test]
fn alerts_nobody_reads_are_committed_once_per_evaluation() {
    let h = harness(&two_alerts(""), true_during(&[0..=1]));
    h.eval_min("g", 0);
    assert_eq!(commits(&h), 1);
    for a in ["A", "B"] {
        let s = format!(r#"ALERTS{{alertname="{a}", alertstate="firing", i="a"}}"#);
        assert_eq!(h.store.value_at(&s, 0), Some(1.0), "{s}");
    }
    h.eval_min("g", 2);
    // Resolution: both stale markers, again in one commit.
    assert_eq!(commits(&h), 2);
    let s = r#"ALERTS{alertname="B", alertstate="firing", i="a"}"#;
    assert!(is_stale_nan(h.store.value_at(s, 2 * M).unwrap()));
}

#[test]
fn a_rule_that_may_read_alerts_keeps_per_rule_commits() {
    for reader in [
        "  - record: n\n    expr: count(ALERTS)\n",
        "  - record: n\n    expr: count({alertstate=\"firing\"})\n",
        "  - record: n\n    expr: count({__name__=~\"AL.*\"})\n",
        "  - alert: C\n    expr: up == 0\n    annotations:\n      n: '{{ query \"x\" }}'\n",
    ] {
        let h = harness(&two_alerts(reader), true_during(&[0..=1]));
        h.eval_min("g", 0);
        // A, B and the third rule each commit (deferred would be 2).
        assert_eq!(commits(&h), 3, "{reader}");
    }
}

#[test]
fn nameless_selector_detection() {
    for (expr, nameless) in [
        ("up{job=\"a\"}", false),
        ("rate(x_total {job=\"a\"}[5m])", false),
        ("ns:x:rate5m{a=\"b\"} > 1", false),
        ("{job=\"a\"}", true),
        ("sum( {job=\"a\"})", true),
        ("count(up) by (job)", false),
    ] {
        assert_eq!(group::has_nameless_selector(expr), nameless, "{expr}");
    }
}
