//! Parses every `eval` query of the upstream PromQL conformance corpus (when
//! present) and checks that each one parses, or is rejected only as
//! deliberately unsupported experimental syntax, and that print -> parse
//! round-trips. Skips loudly when the corpus is absent; fails instead when
//! `WATCHPOST_REQUIRE_ALL=1`.

use std::path::PathBuf;
use watchpost::promql::{ParseErrorKind, parse, parse_series_desc};

fn corpus_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var("WATCHPOST_PROMQL_TESTDATA")
            .ok()
            .map(PathBuf::from),
        Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/conformance/promql/upstream"
        ))),
        Some(PathBuf::from("/work/shared/conformance/promql/upstream")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_dir())
}

/// Pulls the query out of an `eval` line.
fn eval_query(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("eval_fail ")
        .or_else(|| line.strip_prefix("eval_warn "))
        .or_else(|| line.strip_prefix("eval_info "))
        .or_else(|| line.strip_prefix("eval_ordered "))
        .or_else(|| line.strip_prefix("eval "))?;
    let rest = rest.trim_start();
    if let Some(r) = rest.strip_prefix("instant ") {
        let r = r.trim_start().strip_prefix("at ")?;
        let (_, q) = r.trim_start().split_once(' ')?;
        Some(q.trim())
    } else if let Some(r) = rest.strip_prefix("range ") {
        // range from <t> to <t> step <d> <query>
        let mut parts = r.trim_start().splitn(7, ' ');
        for _ in 0..6 {
            parts.next()?;
        }
        Some(parts.next()?.trim())
    } else {
        None
    }
}

#[test]
fn upstream_eval_queries_parse() {
    let Some(dir) = corpus_dir() else {
        if std::env::var("WATCHPOST_REQUIRE_ALL").as_deref() == Ok("1") {
            panic!("PromQL conformance corpus not found (WATCHPOST_REQUIRE_ALL=1)");
        }
        eprintln!("SKIPPED: PromQL conformance corpus not found; set WATCHPOST_PROMQL_TESTDATA");
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let (mut ok, mut experimental, mut expected_fail) = (0, 0, 0);
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(q) = eval_query(line) else { continue };
            let expects_fail = line.starts_with("eval_fail")
                || lines
                    .get(i + 1)
                    .is_some_and(|n| n.trim_start().starts_with("expect fail"));
            match parse(q) {
                Ok(e) => {
                    ok += 1;
                    let printed = e.to_string();
                    match parse(&printed) {
                        // Debug output compares NaN literals as equal.
                        Ok(e2) if format!("{e2:?}") == format!("{e:?}") => {}
                        other => failures.push(format!(
                            "{}:{}: round trip of {q:?} via {printed:?} gave {other:?}",
                            f.display(),
                            i + 1
                        )),
                    }
                }
                Err(e) if e.kind == ParseErrorKind::ExperimentalUnsupported => {
                    experimental += 1;
                    if std::env::var("SHOW_EXPERIMENTAL").is_ok() {
                        eprintln!("EXPERIMENTAL {q:?}: {e}");
                    }
                }
                Err(_) if expects_fail => expected_fail += 1,
                Err(e) => failures.push(format!("{}:{}: {q:?}: {e}", f.display(), i + 1)),
            }
        }
    }
    eprintln!(
        "corpus: {ok} parsed, {experimental} rejected as experimental, {expected_fail} expected failures"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(ok > 1500, "only {ok} queries parsed");
}

/// Every series line of the corpus (`load` blocks and expected `eval`
/// results) parses with `parse_series_desc`, except native-histogram lines,
/// which must fail with the dedicated error kind.
#[test]
fn upstream_series_lines_parse() {
    let Some(dir) = corpus_dir() else {
        if std::env::var("WATCHPOST_REQUIRE_ALL").as_deref() == Ok("1") {
            panic!("PromQL conformance corpus not found (WATCHPOST_REQUIRE_ALL=1)");
        }
        eprintln!("SKIPPED: PromQL conformance corpus not found; set WATCHPOST_PROMQL_TESTDATA");
        return;
    };
    let (mut ok, mut histograms) = (0, 0);
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "test") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut in_block = false;
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if !line.starts_with([' ', '\t']) {
                // Series follow `load ...` and (as expected results) `eval ...`.
                in_block = trimmed.starts_with("load") || trimmed.starts_with("eval");
                continue;
            }
            if !in_block
                || trimmed.is_empty()
                || trimmed.starts_with('#')
                || trimmed.starts_with("expect")
                || trimmed.starts_with("@st")
                // Start-timestamp lines (`series@st ...`) are a separate
                // experimental notation handled by the conformance runner.
                || trimmed.contains("@st ")
                || trimmed.starts_with('"')
                || !(trimmed.contains('{')
                    || trimmed.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
            {
                continue;
            }
            // Scalar results (a bare number) are not series lines.
            if trimmed.parse::<f64>().is_ok() {
                continue;
            }
            match parse_series_desc(trimmed) {
                Ok(_) => ok += 1,
                Err(e) if e.is_native_histogram_unsupported() => histograms += 1,
                Err(e) => failures.push(format!("{}:{}: {trimmed:?}: {e}", path.display(), i + 1)),
            }
        }
    }
    eprintln!("series lines: {ok} parsed, {histograms} native-histogram lines");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(ok > 1000, "only {ok} series lines parsed");
}
