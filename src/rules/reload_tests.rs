//! Reload behaviour over simulated time (spec §2.9, R12): stale markers of
//! removed groups wait `2 × interval`, those of rules removed from a
//! changed group wait for its next evaluation, and group counters survive a
//! reload. Uses the lifecycle tests' harness.

use super::*;

/// `x` always returns `{i="a"} 1` (and `y` the same), so `job:x` and
/// `job:y` are written at every evaluation.
fn constant() -> Script {
    Arc::new(|_e: &str, _t: i64| Ok(vec![(l(&[("i", "a")]), 1.0)]))
}

fn file(yaml: &str) -> RuleFile {
    parse_rule_file(Path::new("r.yml"), yaml, &LoadOptions::default()).unwrap()
}

fn stale_markers(h: &Harness, series: &str) -> Vec<i64> {
    h.store
        .series(series)
        .into_iter()
        .filter(|(_, v)| is_stale_nan(*v))
        .map(|(t, _)| t)
        .collect()
}

const X: &str = r#"job:x{i="a"}"#;
const Y: &str = r#"job:y{i="a"}"#;

#[test]
fn r12_removed_group_is_stale_marked_two_intervals_later() {
    let h = harness(REC, constant());
    h.eval_min("rec", 0);
    h.clock.set(M + 1);
    h.mgr.update(vec![]);
    assert!(!h.mgr.eval_once("rec", 2 * M), "group is gone");
    assert!(stale_markers(&h, X).is_empty(), "no marker at removal");
    h.clock.set(3 * M); // 2 intervals after removal minus 1 ms
    assert_eq!(h.mgr.write_due_stale(), 0);
    assert!(stale_markers(&h, X).is_empty());
    h.clock.set(3 * M + 1);
    assert_eq!(h.mgr.write_due_stale(), 1);
    // The marker carries the removal time, like Prometheus's.
    assert_eq!(stale_markers(&h, X), vec![M + 1]);
    assert_eq!(h.mgr.write_due_stale(), 0, "written once");
}

#[test]
fn renamed_group_takes_the_series_over_before_the_markers() {
    let h = harness(REC, constant());
    h.eval_min("rec", 0);
    h.clock.set(M + 1);
    h.mgr
        .update(vec![file(&REC.replace("name: rec", "name: renamed"))]);
    h.eval_min("renamed", 2);
    h.clock.set(4 * M);
    assert_eq!(h.mgr.write_due_stale(), 0);
    assert!(stale_markers(&h, X).is_empty());
    assert_eq!(h.store.series(X), vec![(0, 1.0), (2 * M, 1.0)]);
}

#[test]
fn rule_removed_from_a_changed_group_is_stale_marked_at_its_next_evaluation() {
    let two = format!("{REC}  - record: job:y\n    expr: y\n");
    let h = harness(&two, constant());
    h.eval_min("rec", 0);
    h.clock.set(M + 1);
    h.mgr.update(vec![file(REC)]);
    assert!(stale_markers(&h, Y).is_empty(), "nothing at the reload");
    h.eval_min("rec", 2);
    assert_eq!(stale_markers(&h, Y), vec![2 * M]);
    assert!(stale_markers(&h, X).is_empty(), "kept rule untouched");
    h.eval_min("rec", 3);
    assert_eq!(stale_markers(&h, Y), vec![2 * M], "marked once");
}

#[test]
fn reload_between_evaluations_keeps_pending_rule_markers() {
    // Two reloads before the next evaluation: the first one's orphans are
    // carried into the second version of the group.
    let two = format!("{REC}  - record: job:y\n    expr: y\n");
    let h = harness(&two, constant());
    h.eval_min("rec", 0);
    h.mgr.update(vec![file(REC)]);
    h.mgr
        .update(vec![file(&format!("{REC}    labels: {{team: a}}\n"))]);
    h.eval_min("rec", 1);
    assert_eq!(stale_markers(&h, Y), vec![M]);
    assert_eq!(stale_markers(&h, X), vec![M], "job:x changed labels");
}

fn group_metrics(h: &Harness) -> Vec<group::GroupMetrics> {
    h.mgr.with_groups(|g| g.metrics.clone())
}

#[test]
fn group_counters_survive_a_reload_of_the_same_group() {
    let script: Script = Arc::new(|e: &str, _t: i64| {
        if e == "bad" {
            Err("boom".into())
        } else {
            Ok(vec![(l(&[("i", "a")]), 1.0)])
        }
    });
    let h = harness(&format!("{REC}  - record: job:y\n    expr: bad\n"), script);
    for m in 0..3 {
        h.eval_min("rec", m);
    }
    let before = group_metrics(&h).remove(0);
    assert_eq!(
        (before.evaluations_total, before.evaluation_failures_total),
        (6, 3)
    );
    // Unchanged file: the same group keeps running.
    h.mgr.update(vec![file(&format!(
        "{REC}  - record: job:y\n    expr: bad\n"
    ))]);
    assert_eq!(group_metrics(&h), vec![before.clone()]);
    // Changed group (one rule fewer): counters carry on from there.
    h.mgr.update(vec![file(REC)]);
    assert_eq!(group_metrics(&h), vec![before.clone()]);
    h.eval_min("rec", 3);
    let after = group_metrics(&h).remove(0);
    assert_eq!(after.evaluations_total, 7);
    assert_eq!(after.evaluation_failures_total, 3);
    assert_eq!(after.iterations_total, before.iterations_total + 1);
    // A group that is removed and added again starts from zero, as in
    // Prometheus (its metrics are deleted with it).
    h.mgr.update(vec![]);
    h.mgr.update(vec![file(REC)]);
    assert_eq!(group_metrics(&h), vec![group::GroupMetrics::default()]);
}

#[test]
fn missed_iterations_survive_a_reload() {
    let h = harness(REC, constant());
    let next = h.mgr.next_eval_ms("rec").unwrap();
    // Evaluate late: three slots have begun; the middle one is missed.
    h.clock.set(next + 2 * M);
    assert_eq!(h.mgr.run_due("rec"), Some(next));
    let missed = group_metrics(&h)[0].iterations_missed_total;
    assert_eq!(missed, 1);
    h.mgr
        .update(vec![file(&REC.replace("expr: x", "expr: x + 0"))]);
    assert_eq!(group_metrics(&h)[0].iterations_missed_total, missed);
}

#[test]
fn running_manager_writes_due_markers_from_its_timer() {
    let h = harness(REC, constant());
    h.eval_min("rec", 0);
    h.mgr.start();
    h.clock.set(M);
    h.mgr.update(vec![]);
    h.clock.set(3 * M);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while stale_markers(&h, X).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    h.mgr.stop();
    assert_eq!(stale_markers(&h, X), vec![M]);
}

#[test]
fn stopping_drops_markers_that_are_not_due() {
    let h = harness(REC, constant());
    h.eval_min("rec", 0);
    h.mgr.start();
    h.clock.set(M);
    h.mgr.update(vec![]);
    h.mgr.stop();
    h.clock.set(10 * M);
    // The timer thread has stopped; nothing is written by it.
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert!(stale_markers(&h, X).is_empty());
}
