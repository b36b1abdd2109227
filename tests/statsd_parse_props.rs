//! Properties of the StatsD parser and aggregator:
//! - arbitrary bytes never panic the parser or the aggregator, and a bad line
//!   is reported with one of the documented reasons;
//! - parse → format → parse gives an equal line for generated valid lines;
//! - format is idempotent on whatever the parser accepts from a hostile
//!   alphabet;
//! - the seed corpus `fuzz/corpus/statsd_line/` replays cleanly.

mod common;

use proptest::prelude::*;
use watchpost::ingest::statsd::{
    Aggregator, AggregatorConfig, BadReason, Parsed, StatsdMetrics, format_line, parse::lines,
    parse_line,
};
use watchpost::storage::Appendable;

fn reparse(s: &str) -> Parsed<'_> {
    parse_line(s.as_bytes()).unwrap_or_else(|e| panic!("formatted line {s:?} is bad: {e}"))
}

/// Feeds `buf` through a fresh aggregator and flushes into the test double;
/// returns the number of bad lines counted.
fn aggregate(buf: &[u8]) -> u64 {
    let m = StatsdMetrics::new();
    let mut agg = Aggregator::new(AggregatorConfig::default(), None, m.clone());
    agg.ingest(buf, 1_000);
    let store = common::RecordingStore::default();
    let mut app = store.appender();
    for s in agg.flush(10_000).expect("flush") {
        s.append_to(&mut *app).expect("append");
    }
    app.commit().expect("commit");
    m.bad_lines_total()
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9._-]{0,15}"
}

fn tag_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[a-z][a-z0-9_]{0,6}", "[a-zA-Z0-9._/-]{1,8}"), 0..5)
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..100_000).prop_map(|v| v.to_string()),
        (0.0f64..1e6).prop_map(|v| format!("{v}")),
        (0.0f64..1.0).prop_map(|v| format!("{v:e}")),
        (1u32..1000).prop_map(|v| format!("{v}.000000")),
    ]
}

/// Valid lines in every supported shape.
fn valid_line() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        Just("c"),
        Just("g"),
        Just("ms"),
        Just("h"),
        Just("d"),
        Just("s")
    ];
    let rate = prop_oneof![
        Just(None),
        (1u32..=1000).prop_map(|r| Some(f64::from(r) / 1000.0))
    ];
    (
        name(),
        kind,
        prop::collection::vec(number(), 1..4),
        prop::bool::ANY,
        rate,
        tag_pairs(),
        0u8..4,
        prop::bool::ANY,
    )
        .prop_map(|(name, kind, values, neg, rate, tags, style, legacy)| {
            let values: Vec<String> = if kind == "s" {
                vec![values[0].clone()]
            } else if kind == "g" && neg {
                values.iter().map(|v| format!("-{v}")).collect()
            } else {
                values
            };
            let rate_s = rate.map(|r| format!("|@{r}")).unwrap_or_default();
            let pairs = |sep: char| {
                tags.iter()
                    .map(|(k, v)| format!("{k}{sep}{v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let (name_part, dog) = match style {
                _ if tags.is_empty() => (name, String::new()),
                0 => (name, format!("|#{}", pairs(':'))),
                1 => (format!("{name},{}", pairs('=')), String::new()),
                2 => (format!("{name}#{}", pairs('=')), String::new()),
                _ => (format!("{name}.[{}]x", pairs('=')), String::new()),
            };
            if legacy && dog.is_empty() {
                // A rate on the first piece would make `F1` the bare type,
                // i.e. the DogStatsD form (spec §3.1 step 3): later pieces only.
                let pieces: Vec<String> = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let r = if i == 0 && values.len() > 1 {
                            ""
                        } else {
                            rate_s.as_str()
                        };
                        format!("{v}|{kind}{r}")
                    })
                    .collect();
                format!("{name_part}:{}", pieces.join(":"))
            } else {
                format!("{name_part}:{}|{kind}{rate_s}{dog}", values.join(":"))
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        for l in lines(&bytes) {
            if let Err(r) = parse_line(l) {
                prop_assert!(BadReason::ALL.contains(&r));
            }
        }
        aggregate(&bytes);
    }

    #[test]
    fn hostile_alphabet_never_panics_and_format_is_idempotent(
        s in "[a-c0-9:|#@.,=\\[\\]+eE_-]{0,40}"
    ) {
        aggregate(s.as_bytes());
        if let Ok(Parsed::Metric(l)) = parse_line(s.as_bytes()) {
            let mut f1 = String::new();
            format_line(&l, &mut f1);
            if let Ok(Parsed::Metric(l2)) = parse_line(f1.as_bytes()) {
                let mut f2 = String::new();
                format_line(&l2, &mut f2);
                prop_assert_eq!(f1, f2);
            }
        }
    }

    #[test]
    fn valid_lines_round_trip(line in valid_line()) {
        let Parsed::Metric(first) = parse_line(line.as_bytes())
            .unwrap_or_else(|e| panic!("generated line {line:?} is bad: {e}")) else {
            panic!("not a metric: {line:?}");
        };
        prop_assert_eq!(first.tag_errors, 0);
        let mut out = String::new();
        format_line(&first, &mut out);
        let Parsed::Metric(second) = reparse(&out) else { panic!("not a metric: {out:?}") };
        prop_assert_eq!(&first, &second, "line {:?} formatted as {:?}", line, out);
        prop_assert_eq!(aggregate(line.as_bytes()), 0);
    }
}

/// Replays every seed in `fuzz/corpus/statsd_line/`: no panic, reasons from
/// the documented set, and every line that parses and formats back to a
/// parseable line keeps its content.
#[test]
fn corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/statsd_line");
    let mut files = 0;
    let mut good = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read seed");
        files += 1;
        for l in lines(&bytes) {
            match parse_line(l) {
                Ok(Parsed::Metric(line)) => {
                    good += 1;
                    let mut out = String::new();
                    format_line(&line, &mut out);
                    if let Ok(Parsed::Metric(again)) = parse_line(out.as_bytes()) {
                        assert_eq!(again.samples, line.samples, "{}: {out:?}", path.display());
                    }
                }
                Ok(_) => {}
                Err(r) => assert!(BadReason::ALL.contains(&r)),
            }
        }
        aggregate(&bytes);
    }
    assert!(files >= 100, "corpus has only {files} files");
    assert!(good >= 100, "corpus has only {good} good lines");
}
