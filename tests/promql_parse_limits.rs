//! Depth limits and linear parse time. Timings are compared relatively
//! (40k terms against 10k terms) and with a generous factor, never against
//! absolute numbers.

use std::time::{Duration, Instant};
use watchpost::promql::{
    DEFAULT_MAX_DEPTH, ParseErrorKind, ParseOptions, parse, parse_with_options,
};

/// Runs `f` on a thread with a large stack (deep trees in debug builds).
fn with_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// Best of three parse times of `input`.
fn best_parse_time(input: &str, opts: ParseOptions) -> Duration {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            let e = parse_with_options(input, &opts).expect("parses");
            let d = t.elapsed();
            drop(e);
            d
        })
        .min()
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
fn long_operator_chains_parse_in_linear_time() {
    with_big_stack(|| {
        let opts = ParseOptions {
            max_depth: 100_000,
            stack_budget: 400 << 20,
        };
        let small = chain(10_000);
        let big = chain(40_000);
        // Warm up allocator and code paths.
        best_parse_time(&small, opts);
        let t_small = best_parse_time(&small, opts);
        let t_big = best_parse_time(&big, opts);
        let ratio = t_big.as_secs_f64() / t_small.as_secs_f64().max(1e-6);
        // Linear would be ~4; quadratic ~16. Allow noise on a shared machine.
        assert!(
            ratio < 10.0,
            "10k: {t_small:?}, 40k: {t_big:?}, ratio {ratio:.1}"
        );
        // 50k terms, as in the brief, also parse.
        let e = parse_with_options(&chain(50_000), &opts).unwrap();
        drop(e);
    });
}

#[test]
fn nested_parentheses_parse_in_linear_time() {
    with_big_stack(|| {
        let opts = ParseOptions {
            max_depth: 100_000,
            stack_budget: 400 << 20,
        };
        let nest = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
        // Kept small: beyond a few thousand levels the debug-build stack
        // (several KiB per level) outgrows the CPU caches and the per-level
        // cost jumps for reasons unrelated to the algorithm.
        let (small, big) = (nest(500), nest(2_000));
        best_parse_time(&small, opts);
        let t_small = best_parse_time(&small, opts);
        let t_big = best_parse_time(&big, opts);
        let ratio = t_big.as_secs_f64() / t_small.as_secs_f64().max(1e-6);
        assert!(
            ratio < 10.0,
            "2k: {t_small:?}, 8k: {t_big:?}, ratio {ratio:.1}"
        );
    });
}

#[test]
fn deep_input_fails_cleanly_with_default_limit() {
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
