//! Properties of the text parser: it never panics, its errors point inside
//! the input, and writing then parsing gives back the same entries. The
//! seed corpus under `fuzz/corpus/text_parse/` is replayed as well.

use proptest::prelude::*;

use super::*;

fn same(a: &Entry, b: &Entry) -> bool {
    match (a, b) {
        (Entry::Sample(x), Entry::Sample(y)) => {
            x.name == y.name
                && x.labels == y.labels
                && x.timestamp == y.timestamp
                && (x.value.to_bits() == y.value.to_bits()
                    || (x.value.is_nan() && y.value.is_nan()))
        }
        _ => a == b,
    }
}

fn metric_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}"
}

fn sample() -> impl Strategy<Value = Entry> {
    (
        metric_name(),
        proptest::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,8}", any::<String>(), 0..4),
        any::<f64>(),
        proptest::option::of(any::<i64>()),
    )
        .prop_map(|(name, labels, value, timestamp)| {
            Entry::Sample(TextSample {
                name,
                labels: labels
                    .into_iter()
                    .filter(|(n, _)| n != "__name__")
                    .collect(),
                value,
                timestamp,
                line: 0,
            })
        })
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        6 => sample(),
        1 => (metric_name(), "([^ \t\r\n\\\\][^\r\n]*[^\r \t])?|\\\\n".prop_map(String::from))
            .prop_map(|(name, text)| Entry::Help { name, text }),
        1 => (metric_name(), prop_oneof![
                Just(MetricType::Counter), Just(MetricType::Gauge), Just(MetricType::Histogram),
                Just(MetricType::Summary), Just(MetricType::Untyped)])
            .prop_map(|(name, kind)| Entry::Type { name, kind }),
    ]
}

fn check_error_position(input: &[u8], e: &ParseError) {
    let lines = input.split(|&b| b == b'\n').count();
    assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
    assert!(e.col >= 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_bytes(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Err(e) = parse_bytes(&input) {
            check_error_position(&input, &e);
        }
    }

    #[test]
    fn never_panics_on_near_valid_text(
        input in "([a-z_]{1,4}(\\{([a-z]{1,3}=\"[^\"\n]{0,4}\"[, ]{0,2}){0,3}\\}?)?[ \t]{0,2}[-+0-9.eEinfINFaA]{0,6}[ ]?[-0-9]{0,4}\n|# (HELP|TYPE) [a-z]{0,3} [a-z]{0,9}\n){0,6}"
    ) {
        if let Err(e) = parse(&input) {
            check_error_position(input.as_bytes(), &e);
        }
    }

    #[test]
    fn write_then_parse_round_trips(entries in proptest::collection::vec(entry(), 0..12)) {
        // TYPE lines must be unique per family; keep the first.
        let mut seen = std::collections::HashSet::new();
        let entries: Vec<Entry> = entries
            .into_iter()
            .filter(|e| match e {
                Entry::Type { name, .. } => seen.insert(name.clone()),
                _ => true,
            })
            .collect();
        let mut text = String::new();
        for e in &entries {
            write_entry(&mut text, e);
        }
        let got = parse(&text).map_err(|e| TestCaseError::fail(format!("{e} in {text:?}")))?;
        prop_assert_eq!(got.len(), entries.len(), "{}", text);
        for (a, b) in entries.iter().zip(&got) {
            prop_assert!(same(a, b), "{:?} != {:?}", a, b);
        }
    }
}

/// Replays every seed under `fuzz/corpus/text_parse/`. Files named `ok_*`
/// must parse and round-trip; `err_*` must fail with the position given on
/// the file's first line (`# expect line:col`); others must just not panic.
#[test]
fn seed_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/text_parse");
    let mut n = 0;
    for f in std::fs::read_dir(&dir).expect("corpus dir exists") {
        let path = f.expect("dir entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let bytes = std::fs::read(&path).expect("readable seed");
        n += 1;
        let res = parse_bytes(&bytes);
        if name.starts_with("ok_") {
            let entries = res.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!entries.is_empty(), "{name}: no entries");
            let mut text = String::new();
            for e in &entries {
                write_entry(&mut text, e);
            }
            let again = parse(&text).unwrap_or_else(|e| panic!("{name} rewritten: {e}"));
            assert_eq!(again.len(), entries.len(), "{name}");
            for (a, b) in entries.iter().zip(&again) {
                assert!(same(a, b), "{name}: {a:?} != {b:?}");
            }
        } else if name.starts_with("err_") {
            let first = String::from_utf8_lossy(&bytes)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            let want = first
                .strip_prefix("# expect ")
                .unwrap_or_else(|| panic!("{name}: no '# expect line:col' header"));
            let e = res
                .err()
                .unwrap_or_else(|| panic!("{name}: parsed but should fail"));
            assert_eq!(format!("{}:{}", e.line, e.col), want.trim(), "{name}: {e}");
        } else if let Err(e) = res {
            check_error_position(&bytes, &e);
        }
    }
    assert!(n >= 5, "seed corpus too small: {n} files");
}
