//! Depth limits: deep input fails cleanly instead of overflowing the stack,
//! and long inputs parse. Parse *time* against input length is measured by
//! `benches/promql_parse.rs`, never asserted here (tests do not time).

use watchpost::promql::{
    DEFAULT_MAX_DEPTH, ParseErrorKind, ParseOptions, parse, parse_with_options,
};

/// Serializes the tests of this file: cargo runs tests in parallel, and a
/// 100k-level parse next to a timing measurement distorts it.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on a thread with a large stack (deep trees in debug builds).
fn with_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

fn chain(n: usize) -> String {
    let mut s = String::with_capacity(n * 4);
    for i in 0..n {
        if i > 0 {
            s.push_str(" + ");
        }
        s.push('a');
    }
    s
}

#[test]
fn fifty_thousand_term_chain_parses_with_a_raised_limit() {
    let _serial = serial();
    with_big_stack(|| {
        let opts = ParseOptions {
            max_depth: 100_000,
            stack_budget: 400 << 20,
        };
        let e = parse_with_options(&chain(50_000), &opts).expect("50k terms parse");
        // The printed form parses back to the same tree.
        let again = parse_with_options(&e.to_string(), &opts).expect("reparses");
        assert!(again == e);
    });
}

#[test]
fn deep_input_fails_cleanly_with_default_limit() {
    let _serial = serial();
    // Runs on the default test thread stack (2 MiB): must not overflow.
    for input in [
        format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000)),
        format!("{}a", "-".repeat(100_000)),
        vec!["a"; 100_000].join(" ^ "),
        vec!["a"; 100_000].join(" + "),
        format!("{}a{}", "abs(".repeat(50_000), ")".repeat(50_000)),
        format!("{}a{}", "sum(".repeat(50_000), ")".repeat(50_000)),
        format!("{}a", "(".repeat(100_000)),
    ] {
        let e = parse(&input).unwrap_err();
        assert_eq!(
            e.kind,
            ParseErrorKind::TooDeep,
            "{}",
            &e.to_string()[..80.min(e.to_string().len())]
        );
        assert!(e.message().contains("nests too deeply"));
    }
}

#[test]
fn trees_at_the_default_limit_work_on_a_small_stack() {
    let _serial = serial();
    // Parse, print, compare and drop trees near the limits on a 2 MiB thread,
    // the smallest stack a caller (tokio worker, test thread) has. Flat
    // operator chains must parse; deep recursion either parses or is
    // rejected as too deep, but never overflows.
    let n = DEFAULT_MAX_DEPTH - 2;
    let inputs = [
        (vec!["a"; n].join(" + "), true),
        (vec!["a"; n].join(" or "), true),
        (format!("{}a{}", "(".repeat(n), ")".repeat(n)), false),
        (format!("{}a{}", "abs(".repeat(n), ")".repeat(n)), false),
        (format!("{}a{}", "sum(".repeat(n), ")".repeat(n)), false),
        (vec!["a"; n].join(" ^ "), false),
        (format!("{}a", "-".repeat(n)), false),
        (format!("{}a{}", "(".repeat(50), ")".repeat(50)), true),
        (
            format!(
                "{}a{}",
                "rate(a[1m:])".repeat(0) + &"abs(".repeat(50),
                ")".repeat(50)
            ),
            true,
        ),
    ];
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            for (input, must_parse) in inputs {
                match parse(&input) {
                    Ok(e) => {
                        let printed = e.to_string();
                        let again = parse(&printed).unwrap();
                        assert!(again == e);
                    }
                    Err(e) => {
                        assert!(!must_parse, "{}", e.message());
                        assert_eq!(e.kind, ParseErrorKind::TooDeep);
                    }
                }
            }
        })
        .unwrap()
        .join()
        .unwrap();
}
