//! Table tests: spec §8.2 (T01–T19) and the input/output pairs of
//! Prometheus's `template/template_test.go`, re-expressed here.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn run_with(text: &str, data: TemplateData) -> Result<String, String> {
    let t = Template::parse("test", text).map_err(|e| format!("parse: {e}"))?;
    let mut ctx = ExpandContext::new(data);
    ctx.ts_ms = 1_000_000;
    ctx.query = Some(Arc::new(
        |q: &str, _t: i64| -> Result<Vec<QuerySample>, String> {
            match q {
                "up == 0" => Ok(vec![
                    QuerySample {
                        labels: labels(&[("__name__", "up"), ("instance", "a")]),
                        value: 0.0,
                    },
                    QuerySample {
                        labels: labels(&[("__name__", "up"), ("instance", "b")]),
                        value: 0.0,
                    },
                ]),
                "unsorted" => Ok(vec![
                    QuerySample {
                        labels: labels(&[("instance", "c")]),
                        value: 3.0,
                    },
                    QuerySample {
                        labels: labels(&[("instance", "a")]),
                        value: 1.0,
                    },
                ]),
                "broken" => Err("query failed".into()),
                _ => Ok(vec![]),
            }
        },
    ));
    t.execute(&ctx).map_err(|e| e.message)
}

fn run_v(text: &str, v: f64) -> String {
    let data = TemplateData {
        value: v,
        ..Default::default()
    };
    run_with(text, data).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn spec_t01_t07_values_and_humanize() {
    let cases: &[(&str, f64, &str)] = &[
        ("{{ $value }}", 1234567.0, "1.234567e+06"),
        ("{{ $value }}", 1234567.8, "1.2345678e+06"),
        ("{{ $value }}", 0.0734, "0.0734"),
        ("{{ $value }}", 100000.0, "100000"),
        ("{{ $value }}", 0.00001, "1e-05"),
        ("{{ .Value }}", 95.0, "95"),
        ("{{ $value | humanize }}", 1234567.0, "1.235M"),
        ("{{ $value | humanize }}", 0.5, "500m"),
        ("{{ $value | humanize }}", 0.0, "0"),
        ("{{ $value | humanize }}", 999.99, "1000"),
        ("{{ $value | humanize }}", 1000.0, "1k"),
        ("{{ humanize1024 $value }}", 3221225472.0, "3Gi"),
        ("{{ humanize1024 $value }}", 1.0, "1"),
        ("{{ humanize1024 $value }}", 1536.0, "1.5ki"),
        ("{{ $value | humanizePercentage }}", 0.0734, "7.34%"),
        ("{{ $value | humanizePercentage }}", 0.95, "95%"),
        ("{{ humanizeDuration $value }}", 90.0, "1m 30s"),
        ("{{ humanizeDuration $value }}", 3600.0, "1h 0m 0s"),
        ("{{ humanizeDuration $value }}", 86400.0, "1d 0h 0m 0s"),
        ("{{ humanizeDuration $value }}", 899.99, "14m 59s"),
        ("{{ humanizeDuration $value }}", 12.345, "12.35s"),
        ("{{ humanizeDuration $value }}", 0.25, "250ms"),
        ("{{ humanizeDuration $value }}", 0.0001, "100us"),
        ("{{ humanizeDuration $value }}", 0.0, "0s"),
        ("{{ humanizeDuration $value }}", -90.0, "-1m 30s"),
        (
            "{{ $value | humanizeTimestamp }}",
            1435065584.128,
            "2015-06-23 13:19:44.128 +0000 UTC",
        ),
        (
            "{{ $value | humanizeTimestamp }}",
            0.0,
            "1970-01-01 00:00:00 +0000 UTC",
        ),
        ("{{ printf \"%.2f\" $value }}", 2.345, "2.35"),
        ("{{ printf \"%.2f\" $value }}", 1.005, "1.00"),
        ("{{ $value | printf \"%.1f\" }}", 0.25, "0.2"),
        ("{{ printf \"%d\" $value }}", 1.5, "%!d(float64=1.5)"),
        (
            "{{ if gt $value 80.0 }}high{{ else }}ok{{ end }}",
            90.0,
            "high",
        ),
        (
            "{{ if gt $value 80 }}high{{ else }}ok{{ end }}",
            90.0,
            "high",
        ),
        (
            "{{ if lt $value 80.0 }}low{{ else if lt $value 95.0 }}mid{{ else }}high{{ end }}",
            90.0,
            "mid",
        ),
        ("{{ $value | humanize }}", f64::INFINITY, "+Inf"),
        ("{{ $value | humanize }}", f64::NAN, "NaN"),
        ("{{ humanize -1234567.0 }}", 0.0, "-1.235M"),
        ("{{ humanize \"1234567\" }}", 0.0, "1.235M"),
        ("{{ humanize 1234567 }}", 0.0, "1.235M"),
        ("{{ toDuration 1800 }}", 0.0, "30m0s"),
        ("{{ toDuration 0.5 }}", 0.0, "500ms"),
        ("{{ parseDuration \"1h30m\" }}", 0.0, "5400"),
        ("{{ now }}", 0.0, "1000"),
    ];
    for (text, v, want) in cases {
        assert_eq!(run_v(text, *v), *want, "{text} with {v}");
    }
}

#[test]
fn spec_t08_t10_labels_and_with() {
    let data = TemplateData {
        labels: labels(&[("job", "node"), ("instance", "a:1")]),
        ..Default::default()
    };
    assert_eq!(
        run_with("LABELS = {{ $labels }}", data.clone()).unwrap(),
        "LABELS = map[instance:a:1 job:node]"
    );
    assert_eq!(
        run_with("{{ $labels.missing }}x", data.clone()).unwrap(),
        "x"
    );
    let t10 = "{{ with $labels.cluster -}} on {{ . }} {{- end }}";
    assert_eq!(run_with(t10, data.clone()).unwrap(), "");
    let mut with_cluster = data.clone();
    with_cluster.labels.insert("cluster".into(), "c1".into());
    assert_eq!(run_with(t10, with_cluster).unwrap(), "on c1");
    assert_eq!(
        run_with(
            "{{ .Labels.job }}/{{ index $labels \"instance\" }}",
            data.clone()
        )
        .unwrap(),
        "node/a:1"
    );
    assert_eq!(run_with("{{ len $labels }}", data).unwrap(), "2");
}

#[test]
fn spec_t11_t12_query() {
    let err = run_with(
        "{{ query \"nonexistent\" | first | value }}",
        TemplateData::default(),
    )
    .unwrap_err();
    assert!(
        err.contains("first() called on vector with no elements"),
        "{err}"
    );
    assert!(err.starts_with("template: test:1:"), "{err}");
    assert_eq!(
        run_with(
            "{{ range query \"up == 0\" }}{{ .Labels.instance }} {{ end }}",
            TemplateData::default()
        )
        .unwrap(),
        "a b "
    );
    assert_eq!(
        run_with(
            "{{ with query \"up == 0\" }}{{ . | first | label \"instance\" }}{{ end }}",
            TemplateData::default()
        )
        .unwrap(),
        "a"
    );
    assert_eq!(
        run_with(
            "{{ range $i, $s := sortByLabel \"instance\" (query \"unsorted\") }}{{ $i }}={{ $s.Value }};{{ end }}",
            TemplateData::default()
        )
        .unwrap(),
        "0=1;1=3;"
    );
    assert_eq!(
        run_with(
            "{{ range query \"nothing\" }}x{{ else }}none{{ end }}",
            TemplateData::default()
        )
        .unwrap(),
        "none"
    );
    let err = run_with("{{ query \"broken\" }}", TemplateData::default()).unwrap_err();
    assert!(err.contains("error calling query: query failed"), "{err}");
    assert_eq!(
        run_with("{{ query \"up == 0\" | first }}", TemplateData::default()).unwrap(),
        "{map[__name__:up instance:a] 0}"
    );
}

#[test]
fn spec_t13_t15_strings() {
    let data = TemplateData {
        labels: labels(&[("instance", "db1:9100")]),
        external_labels: labels(&[("cluster", "eu1")]),
        external_url: "http://mon.example:9090/prom".into(),
        value: 0.0,
    };
    let cases = [
        (
            "{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }}",
            "db1",
        ),
        ("{{ $externalLabels.cluster }}", "eu1"),
        ("{{ $externalURL }}", "http://mon.example:9090/prom"),
        (
            "{{ externalURL }}|{{ pathPrefix }}",
            "http://mon.example:9090/prom|/prom",
        ),
        ("{{ title \"hello wORLD\" }}", "Hello WORLD"),
        ("{{ toUpper \"a\" }}{{ toLower \"B\" }}", "Ab"),
        ("{{ if match \"^db\" $labels.instance }}yes{{ end }}", "yes"),
        ("{{ stripPort $labels.instance }}", "db1"),
        (
            "{{ stripPort \"[::1]:80\" }}|{{ stripPort \"noport\" }}",
            "::1|noport",
        ),
        (
            "{{ stripDomain \"a.b.c:9\" }}|{{ stripDomain \"10.0.0.1:9\" }}",
            "a:9|10.0.0.1:9",
        ),
        ("{{ safeHtml \"<b>\" }}|{{ html \"<b>\" }}", "<b>|&lt;b&gt;"),
        (
            "{{ graphLink \"up == 0\" }}",
            "/graph?g0.expr=up+%3D%3D+0&g0.tab=0",
        ),
        ("{{ tableLink \"a\" }}", "/graph?g0.expr=a&g0.tab=1"),
        ("{{ urlQueryEscape \"a b/c\" }}", "a+b%2Fc"),
        ("{{ printf \"%s=%q\" \"k\" \"v\" }}", "k=\"v\""),
        ("{{ print 1 2 \"x\" 3 }}", "1 2x3"),
        ("{{ `raw\\n` }}", "raw\\n"),
        ("{{ \"a\\tb\" }}", "a\tb"),
        ("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", "2"),
        (
            "{{ and 1 0 }}|{{ or 0 \"\" \"z\" }}|{{ not true }}",
            "0|z|false",
        ),
        (
            "{{ eq 1 2 3 1 }}|{{ ne \"a\" \"b\" }}|{{ le 2 2 }}",
            "true|true|true",
        ),
        ("{{/* a comment */}}ok", "ok"),
        ("a  {{- /* trimmed */ -}}  b", "ab"),
        (
            "{{ range $k, $v := $externalLabels }}{{ $k }}:{{ $v }}{{ end }}",
            "cluster:eu1",
        ),
        ("{{ (args 1 \"x\").arg1 }}", "x"),
        ("{{ slice \"abcdef\" 1 3 }}", "bc"),
        (
            "{{ range $k, $v := args 1 2 }}{{ $k }}={{ $v }} {{ end }}",
            "arg0=1 arg1=2 ",
        ),
    ];
    for (text, want) in cases {
        let got = run_with(text, data.clone());
        assert_eq!(got.as_deref(), Ok(want), "{text}");
    }
}

#[test]
fn break_and_continue_in_range() {
    let got = run_with(
        "{{ range $i, $s := query \"up == 0\" }}{{ if eq $i 0 }}{{ continue }}{{ end }}{{ $s.Labels.instance }}{{ break }}{{ end }}",
        TemplateData::default(),
    );
    assert_eq!(got.as_deref(), Ok("b"));
}

#[test]
fn spec_t18_parse_errors_have_positions() {
    let e = Template::parse("__alert_X", "{{ $labels.instance ").unwrap_err();
    assert_eq!(e.to_string(), "template: __alert_X:1: unclosed action");
    let e = Template::parse("t", "line1\n  {{ nosuchfunc 1 }}").unwrap_err();
    assert_eq!((e.line, e.column), (2, 6));
    assert_eq!(e.message, "function \"nosuchfunc\" not defined");
    for bad in [
        "{{ if true }}x",
        "{{ end }}",
        "{{ $undefined }}",
        "{{ \"unterminated }}",
        "{{ (1 }}",
        "{{ 1) }}",
        "{{ template \"x\" }}",
        "{{ tmpl \"x\" }}",
        "{{ break }}",
        "{{ | }}",
        "{{/* open }}",
    ] {
        assert!(Template::parse("t", bad).is_err(), "{bad}");
    }
}

#[test]
fn execution_errors_are_values() {
    let t = Template::parse("__alert_A", "{{ reReplaceAll \"(\" \"\" \"x\" }}").unwrap();
    let (out, err) = t.expand(&ExpandContext::new(TemplateData::default()));
    assert!(err.is_some());
    assert!(out.starts_with("<error expanding template: error executing template __alert_A: template: __alert_A:1:3:"), "{out}");
    for bad in [
        "{{ 1 2 }}",
        "{{ $labels.a.b }}",
        "{{ gt $labels \"x\" }}",
        "{{ first 1 }}",
        "{{ toTime \"x\" }}",
        "{{ range 1.5 }}{{ end }}",
    ] {
        let r = run_with(bad, TemplateData::default());
        assert!(r.is_err(), "{bad}: {r:?}");
    }
}

#[test]
fn caps_stop_runaway_templates() {
    let big = format!(
        "{{{{ range $i, $v := args {} }}}}{{{{ end }}}}",
        "1 ".repeat(10)
    );
    assert!(run_with(&big, TemplateData::default()).is_ok());
    let t = Template::parse("t", &"x".repeat(70 * 1024)).unwrap();
    assert!(
        t.execute(&ExpandContext::new(TemplateData::default()))
            .is_err()
    );
}

#[test]
fn literal_detection() {
    assert!(Template::parse("t", "critical").unwrap().is_literal());
    assert!(!Template::parse("t", "{{ $value }}").unwrap().is_literal());
}

proptest::proptest! {
    #[test]
    fn parse_and_execute_never_panic(s in "[{}$a-z .|()\"0-9-]{0,40}") {
        if let Ok(t) = Template::parse("p", &s) {
            let _ = t.execute(&ExpandContext::new(TemplateData::default()));
        }
    }
}
