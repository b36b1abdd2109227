//! Aggregator behaviour beyond the spec vectors: mapping rules applied to
//! lines, series limits, set caps, TTL overrides, type ownership released on
//! expiry, configuration switches.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use watchpost::ingest::statsd::{
    Aggregator, AggregatorConfig, FlushSample, MappingConfig, StatsdMetrics,
};
use watchpost::model::is_stale_nan;

const T: i64 = 1_700_000_000_000;

fn agg(cfg: AggregatorConfig, yaml: Option<&str>) -> (Aggregator, Arc<StatsdMetrics>) {
    let m = StatsdMetrics::new();
    let mapping = yaml.map(|y| Arc::new(MappingConfig::from_yaml(y).expect("mapping")));
    (Aggregator::new(cfg, mapping, m.clone()), m)
}

/// (series, value) of float samples at `t`, sorted; histograms as `sum`.
fn at(samples: &[FlushSample], t: i64) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = samples
        .iter()
        .filter(|s| s.t() == t)
        .map(|s| match s {
            FlushSample::Float { labels, v, .. } => (labels.to_string(), *v),
            FlushSample::Histogram { labels, h, .. } => (format!("{labels}:sum"), h.sum),
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn s(x: &str, v: f64) -> (String, f64) {
    (x.to_string(), v)
}

#[test]
fn mapping_rename_labels_drop_and_suffix() {
    let (mut a, m) = agg(
        AggregatorConfig::default(),
        Some(
            r#"
mappings:
- match: "test.dispatcher.*.*"
  name: "dispatcher_events"
  labels: { processor: "$1", outcome: "$2", job: "dispatch" }
- match: "noisy.*"
  action: drop
- match: "keep.*"
  labels: { env: "staging" }
"#,
        ),
    );
    a.ingest(
        b"test.dispatcher.p1.ok:2|c\nnoisy.x:1|c\nkeep.me:3|g|#env:prod\nother:1|g",
        T - 1000,
    );
    let out = a.flush(T).unwrap();
    assert_eq!(
        at(&out, T),
        vec![
            s(
                "dispatcher_events_total{job=\"dispatch\", outcome=\"ok\", processor=\"p1\"}",
                2.0
            ),
            s("keep_me{env=\"staging\"}", 3.0),
            s("other", 1.0),
        ]
    );
    assert_eq!(m.mapping_drops.load(Ordering::Relaxed), 1);
}

#[test]
fn honor_labels_lets_line_tags_win() {
    let (mut a, _) = agg(
        AggregatorConfig::default(),
        Some("mappings:\n- match: a\n  honor_labels: true\n  labels: {env: dflt, team: ops}\n"),
    );
    a.ingest(b"a:1|g|#env:prod", T - 1000);
    assert_eq!(
        at(&a.flush(T).unwrap(), T),
        vec![s("a{env=\"prod\", team=\"ops\"}", 1.0)]
    );
}

#[test]
fn mapping_buckets_scale_and_ttl() {
    let (mut a, _) = agg(
        AggregatorConfig::default(),
        Some(
            "mappings:\n- match: jobs.*\n  match_metric_type: observer\n  name: job_seconds\n  labels: {job: \"$1\"}\n  scale: 2\n  histogram_options: {buckets: [1, 10]}\n  ttl: 20s\n",
        ),
    );
    a.ingest(b"jobs.backup:3|h\njobs.backup:4000|ms", T - 1000);
    let out = a.flush(T).unwrap();
    let h = out
        .iter()
        .find_map(|x| match x {
            FlushSample::Histogram { h, t, .. } if *t == T => Some(h.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(&h.upper_bounds[..], &[1.0, 10.0]);
    // 3×2 = 6 and 4000 ms → 4 s ×2 = 8: both in le=10.
    assert_eq!(h.bucket_counts, vec![0.0, 2.0, 2.0]);
    assert_eq!(h.sum, 14.0);
    // TTL 20 s: live at T+10s, stale at T+20s (last line at T-1s).
    assert_eq!(a.flush(T + 10_000).unwrap().len(), 1);
    let last = a.flush(T + 20_000).unwrap();
    assert!(matches!(&last[0], FlushSample::Histogram { h, .. } if h.is_stale()));
}

#[test]
fn per_family_series_limit_counts_and_keeps_existing() {
    let cfg = AggregatorConfig {
        max_series_per_family: 2,
        ..Default::default()
    };
    let (mut a, m) = agg(cfg, None);
    a.ingest(
        b"r:1|c|#i:1\nr:1|c|#i:2\nr:1|c|#i:3\nr:1|c|#i:1\nother:1|c",
        T - 1000,
    );
    assert_eq!(
        at(&a.flush(T).unwrap(), T),
        vec![
            s("other_total", 1.0),
            s("r_total{i=\"1\"}", 2.0),
            s("r_total{i=\"2\"}", 1.0)
        ]
    );
    assert_eq!(m.series_limit_drops("r_total"), 1);
}

#[test]
fn global_series_limit() {
    let cfg = AggregatorConfig {
        max_series: 1,
        ..Default::default()
    };
    let (mut a, m) = agg(cfg, None);
    a.ingest(b"a:1|g\nb:1|g", T - 1000);
    assert_eq!(at(&a.flush(T).unwrap(), T), vec![s("a", 1.0)]);
    assert_eq!(m.series_limit_drops("b"), 1);
}

#[test]
fn set_member_cap_overflows_and_counts() {
    let cfg = AggregatorConfig {
        max_set_members: 2,
        ..Default::default()
    };
    let (mut a, m) = agg(cfg, None);
    a.ingest(b"u:a|s\nu:b|s\nu:c|s\nu:a|s", T - 1000);
    assert_eq!(at(&a.flush(T).unwrap(), T), vec![s("u", 2.0)]);
    assert_eq!(m.set_overflow.load(Ordering::Relaxed), 1);
}

#[test]
fn type_ownership_is_released_when_the_family_expires() {
    let cfg = AggregatorConfig {
        idle_ttl: Duration::from_secs(10),
        ..Default::default()
    };
    let (mut a, m) = agg(cfg, None);
    a.ingest(b"x:1|g", T - 1000);
    a.flush(T).unwrap();
    a.ingest(b"x:1|ms", T + 1000);
    assert_eq!(m.type_conflicts("x"), 1);
    // Idle ≥ 10 s at T+10s: stale marker, family released.
    let out = a.flush(T + 10_000).unwrap();
    assert!(matches!(&out[0], FlushSample::Float { v, .. } if is_stale_nan(*v)));
    a.ingest(b"x:1|ms", T + 11_000);
    let out = a.flush(T + 20_000).unwrap();
    assert!(
        out.iter()
            .any(|x| matches!(x, FlushSample::Histogram { t, .. } if *t == T + 20_000))
    );
    assert_eq!(m.type_conflicts("x"), 1);
}

#[test]
fn per_type_ttl_override_and_zero_means_never() {
    let cfg = AggregatorConfig {
        idle_ttl: Duration::ZERO,
        idle_ttl_by_type: [None, Some(Duration::from_secs(10)), None, None],
        ..Default::default()
    };
    let (mut a, _) = agg(cfg, None);
    a.ingest(b"c:1|c\ng:1|g", T - 1000);
    a.flush(T).unwrap();
    let out = a.flush(T + 10_000).unwrap();
    let stale: Vec<&str> = out
        .iter()
        .filter(|x| matches!(x, FlushSample::Float { v, .. } if is_stale_nan(*v)))
        .map(|x| x.labels().metric_name().unwrap())
        .collect();
    assert_eq!(stale, vec!["g"]);
    for i in 2..100 {
        assert_eq!(
            a.flush(T + i * 10_000).unwrap().len(),
            1,
            "counter never expires"
        );
    }
}

#[test]
fn empty_counter_suffix_and_container_label() {
    let cfg = AggregatorConfig {
        counter_suffix: String::new(),
        container_id_label: true,
        ..Default::default()
    };
    let (mut a, _) = agg(cfg, None);
    a.ingest(b"req:1|c|c:ci-abc", T - 1000);
    assert_eq!(
        at(&a.flush(T).unwrap(), T),
        vec![s("req{container_id=\"ci-abc\"}", 1.0)]
    );
}

#[test]
fn reload_mapping_applies_to_new_lines() {
    let (mut a, _) = agg(AggregatorConfig::default(), None);
    a.ingest(b"a.b:1|g", T - 1000);
    let m = MappingConfig::from_yaml("mappings:\n- match: a.*\n  name: renamed_$1\n").unwrap();
    a.set_mapping(Some(Arc::new(m)));
    a.ingest(b"a.c:2|g", T - 500);
    assert_eq!(
        at(&a.flush(T).unwrap(), T),
        vec![s("a_b", 1.0), s("renamed_c", 2.0)]
    );
}

#[test]
fn mapped_name_colliding_with_self_metric_is_a_conflict() {
    let (mut a, m) = agg(
        AggregatorConfig::default(),
        Some("mappings:\n- match: x\n  name: statsd_flush_duration_seconds_count\n"),
    );
    a.ingest(b"x:1|g", T - 1000);
    assert!(a.flush(T).unwrap().is_empty());
    assert_eq!(m.type_conflicts("statsd_flush_duration_seconds_count"), 1);
}
