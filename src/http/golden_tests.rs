//! Golden-file tests of the API's exact response bytes (status line code
//! plus body) under `tests/http/golden/`. Run with
//! `WATCHPOST_UPDATE_GOLDEN=1` to rewrite the files, then review the diff.

use std::sync::Arc;

use super::paths;
use super::tests::{MemStore, TestServer};
use crate::model::{Labels, METRIC_NAME};

fn store() -> Arc<MemStore> {
    let s = MemStore::default();
    {
        let mut f = s.floats.lock();
        for (inst, scale) in [("a", 1.0), ("b", 2.5)] {
            let up = Labels::from_pairs([(METRIC_NAME, "up"), ("job", "api"), ("instance", inst)]);
            f.insert(up, (0..=40).map(|i| (i * 15_000, 1.0)).collect());
            let req = Labels::from_pairs([
                (METRIC_NAME, "http_requests_total"),
                ("job", "api"),
                ("instance", inst),
                ("path", "/a&b<c>"),
            ]);
            f.insert(
                req,
                (0..=40)
                    .map(|i| (i * 15_000, i as f64 * 10.0 * scale))
                    .collect(),
            );
        }
        let tiny = Labels::from_pairs([(METRIC_NAME, "tiny_ratio")]);
        f.insert(tiny, vec![(0, 1.5e-7), (15_000, 2e21), (30_000, f64::NAN)]);
    }
    Arc::new(s)
}

fn check(srv: &TestServer, name: &str, method: &str, path: &str, body: &str) {
    let headers: &[(&str, &str)] = if method == "POST" {
        &[("Content-Type", "application/x-www-form-urlencoded")]
    } else {
        &[]
    };
    let r = srv.req(method, path, headers, body.as_bytes());
    let got = format!("{}\n{}\n", r.status, r.text());
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/http/golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("WATCHPOST_UPDATE_GOLDEN").is_some() {
        std::fs::write(&file, &got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (set WATCHPOST_UPDATE_GOLDEN=1 to create)",
            file.display()
        )
    });
    assert_eq!(
        got, want,
        "golden {name} differs (WATCHPOST_UPDATE_GOLDEN=1 rewrites)"
    );
}

fn q(path: &str, pairs: &[(&str, &str)]) -> String {
    format!("{path}?{}", crate::cli::client::form(pairs))
}

#[test]
fn api_golden_responses() {
    let srv = TestServer::start(|_| {});
    srv.state.set_backend(store());
    let cases: Vec<(&str, String)> = vec![
        (
            "query_vector",
            q(paths::QUERY, &[("query", "up"), ("time", "300.5")]),
        ),
        (
            "query_scalar",
            q(paths::QUERY, &[("query", "1 + 1.5"), ("time", "300")]),
        ),
        (
            "query_scalar_formatting",
            q(paths::QUERY, &[("query", "1.5e-7"), ("time", "300.5")]),
        ),
        (
            "query_scalar_big",
            q(paths::QUERY, &[("query", "2e21"), ("time", "0.001")]),
        ),
        (
            "query_string",
            q(paths::QUERY, &[("query", "\"a<b&\""), ("time", "300.5")]),
        ),
        (
            "query_matrix",
            q(
                paths::QUERY,
                &[
                    ("query", "up{instance=\"a\"}[1m]"),
                    ("time", "1970-01-01T00:01:00.5Z"),
                ],
            ),
        ),
        (
            "query_matrix_offgrid",
            q(
                paths::QUERY,
                &[("query", "up{instance=\"a\"}[31s]"), ("time", "60.001")],
            ),
        ),
        (
            "query_rate",
            q(
                paths::QUERY,
                &[
                    ("query", "sum by (path) (rate(http_requests_total[5m]))"),
                    ("time", "600"),
                ],
            ),
        ),
        (
            "query_values_formatting",
            q(paths::QUERY, &[("query", "tiny_ratio[1m]"), ("time", "30")]),
        ),
        (
            "query_empty",
            q(
                paths::QUERY,
                &[("query", "does_not_exist"), ("time", "300")],
            ),
        ),
        (
            "query_bad_data",
            q(paths::QUERY, &[("query", "sum(up"), ("time", "300")]),
        ),
        (
            "query_bad_time",
            q(paths::QUERY, &[("query", "up"), ("time", "yesterday")]),
        ),
        (
            "query_execution",
            q(
                paths::QUERY,
                &[
                    (
                        "query",
                        "label_replace(up, \"instance\", \"x\", \"\", \"\")",
                    ),
                    ("time", "300"),
                ],
            ),
        ),
        (
            "query_range",
            q(
                paths::QUERY_RANGE,
                &[
                    ("query", "up{instance=\"b\"} * 2"),
                    ("start", "0"),
                    ("end", "60"),
                    ("step", "30s"),
                ],
            ),
        ),
        (
            "query_range_scalar",
            q(
                paths::QUERY_RANGE,
                &[
                    ("query", "time()"),
                    ("start", "0"),
                    ("end", "1"),
                    ("step", "0.5"),
                ],
            ),
        ),
        (
            "query_range_bad_step",
            q(
                paths::QUERY_RANGE,
                &[
                    ("query", "up"),
                    ("start", "0"),
                    ("end", "60"),
                    ("step", "0"),
                ],
            ),
        ),
        (
            "query_range_end_before_start",
            q(
                paths::QUERY_RANGE,
                &[
                    ("query", "up"),
                    ("start", "60"),
                    ("end", "0"),
                    ("step", "15"),
                ],
            ),
        ),
        (
            "query_range_too_many_points",
            q(
                paths::QUERY_RANGE,
                &[
                    ("query", "up"),
                    ("start", "0"),
                    ("end", "11001"),
                    ("step", "1"),
                ],
            ),
        ),
        (
            "series",
            q(
                paths::SERIES,
                &[("match[]", "up"), ("match[]", "{__name__=\"tiny_ratio\"}")],
            ),
        ),
        (
            "series_limit_warning",
            q(paths::SERIES, &[("match[]", "up"), ("limit", "1")]),
        ),
        ("series_no_match", paths::SERIES.to_string()),
        (
            "series_empty_matcher",
            q(paths::SERIES, &[("match[]", "{job=~\".*\"}")]),
        ),
        ("labels", paths::LABELS.to_string()),
        (
            "labels_match",
            q(paths::LABELS, &[("match[]", "tiny_ratio")]),
        ),
        ("label_values", paths::label_values("instance")),
        (
            "label_values_names",
            q(&paths::label_values("__name__"), &[("limit", "2")]),
        ),
        (
            "format_query",
            q(paths::FORMAT_QUERY, &[("query", "sum(rate(x[5m]))by(job)")]),
        ),
        ("exemplars", q(paths::QUERY_EXEMPLARS, &[("query", "up")])),
    ];
    for (name, path) in &cases {
        check(&srv, name, "GET", path, "");
    }
    check(
        &srv,
        "query_post_form",
        "POST",
        paths::QUERY,
        &crate::cli::client::form(&[("query", "count(up)"), ("time", "300")]),
    );
    check(
        &srv,
        "import_bad_line",
        "POST",
        paths::IMPORT_PROMETHEUS,
        "ok 1\nbad{x=\"1\"} one\n",
    );
}
