//! Table tests for the PromQL parser: input -> tree (checked structurally
//! for the semantics that matter, and through the canonical printed form for
//! the rest) and input -> error message with position. Cases are modelled on
//! Prometheus's own parser tests, rewritten for this AST.

use watchpost::model::{MatchOp, Matcher};
use watchpost::promql::ast::*;
use watchpost::promql::{ParseErrorKind, parse, parse_duration, parse_metric_selector};

fn vs(name: &str) -> Expr {
    Expr::VectorSelector(VectorSelector {
        name: Some(name.into()),
        matchers: vec![Matcher::equal("__name__", name)],
        ..VectorSelector::default()
    })
}

fn num(v: f64) -> Expr {
    Expr::NumberLiteral(v)
}

fn bin(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
    let both_vec = |e: &Expr| e.value_type() == watchpost::promql::ValueType::Vector;
    let matching = (both_vec(&lhs) && both_vec(&rhs)).then(|| VectorMatching {
        card: if op.is_set() {
            Cardinality::ManyToMany
        } else {
            Cardinality::OneToOne
        },
        ..VectorMatching::default()
    });
    Expr::Binary(BinaryExpr {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        return_bool: false,
        matching,
    })
}

fn p(input: &str) -> Expr {
    parse(input).unwrap_or_else(|e| panic!("{input:?} failed: {e}"))
}

#[test]
fn structural_cases() {
    use BinaryOp::*;
    let cases: Vec<(&str, Expr)> = vec![
        ("1", num(1.0)),
        ("+Inf", num(f64::INFINITY)),
        ("-Inf", num(f64::NEG_INFINITY)),
        (".5", num(0.5)),
        ("5.", num(5.0)),
        ("5e-3", num(0.005)),
        ("0xc", num(12.0)),
        ("0755", num(493.0)),
        ("-0755", num(-493.0)),
        ("+5.5e-3", num(0.0055)),
        ("1h", num(3600.0)),
        ("1 + 1", bin(Add, num(1.0), num(1.0))),
        (
            "-1^2",
            Expr::Unary(UnaryOp::Neg, Box::new(bin(Pow, num(1.0), num(2.0)))),
        ),
        ("-1*2", bin(Mul, num(-1.0), num(2.0))),
        (
            "-1^-2",
            Expr::Unary(UnaryOp::Neg, Box::new(bin(Pow, num(1.0), num(-2.0)))),
        ),
        (
            "+1 + -2 * 1",
            bin(Add, num(1.0), bin(Mul, num(-2.0), num(1.0))),
        ),
        (
            "2 ^ 3 ^ 2",
            bin(Pow, num(2.0), bin(Pow, num(3.0), num(2.0))),
        ),
        (
            "1 - 2 - 3",
            bin(Sub, bin(Sub, num(1.0), num(2.0)), num(3.0)),
        ),
        (
            "1 + 2/(3*1)",
            bin(
                Add,
                num(1.0),
                bin(
                    Div,
                    num(2.0),
                    Expr::Paren(Box::new(bin(Mul, num(3.0), num(1.0)))),
                ),
            ),
        ),
        (
            "-some_metric",
            Expr::Unary(UnaryOp::Neg, Box::new(vs("some_metric"))),
        ),
        ("foo * sum", bin(Mul, vs("foo"), vs("sum"))),
        ("a atan2 b", bin(Atan2, vs("a"), vs("b"))),
        (
            "foo + bar or bla and blub",
            bin(
                Or,
                bin(Add, vs("foo"), vs("bar")),
                bin(And, vs("bla"), vs("blub")),
            ),
        ),
        (
            "foo and bar unless baz or qux",
            bin(
                Or,
                bin(Unless, bin(And, vs("foo"), vs("bar")), vs("baz")),
                vs("qux"),
            ),
        ),
        ("a > b == c", bin(Eql, bin(Gtr, vs("a"), vs("b")), vs("c"))),
        (
            "a + b > c * d",
            bin(Gtr, bin(Add, vs("a"), vs("b")), bin(Mul, vs("c"), vs("d"))),
        ),
        ("foo == 1", bin(Eql, vs("foo"), num(1.0))),
        ("2.5 / bar", bin(Div, num(2.5), vs("bar"))),
        (
            "foo offset 100 + 2",
            bin(
                Add,
                Expr::VectorSelector(VectorSelector {
                    offset: 100_000,
                    ..match vs("foo") {
                        Expr::VectorSelector(v) => v,
                        _ => unreachable!(),
                    }
                }),
                num(2.0),
            ),
        ),
    ];
    for (input, want) in cases {
        let got = p(input);
        assert_eq!(format!("{got:?}"), format!("{want:?}"), "input {input:?}");
    }
}

#[test]
fn matching_modifiers() {
    let e = p("bar + on(foo) bla / on(baz, buz) group_right(test) blub");
    let Expr::Binary(add) = e else { panic!() };
    assert_eq!(add.op, BinaryOp::Add);
    let m = add.matching.unwrap();
    assert!(m.on && m.labels == ["foo"] && m.card == Cardinality::OneToOne);
    let Expr::Binary(div) = *add.rhs else {
        panic!()
    };
    let m = div.matching.unwrap();
    assert_eq!(m.card, Cardinality::OneToMany);
    assert_eq!(m.labels, ["baz", "buz"]);
    assert_eq!(m.include, ["test"]);

    let Expr::Binary(b) = p("foo * ignoring(a) group_left bar") else {
        panic!()
    };
    let m = b.matching.unwrap();
    assert!(!m.on && m.labels == ["a"] && m.card == Cardinality::ManyToOne && m.include.is_empty());

    let Expr::Binary(b) = p("foo and on() bar") else {
        panic!()
    };
    let m = b.matching.unwrap();
    assert!(m.on && m.labels.is_empty() && m.card == Cardinality::ManyToMany);

    let Expr::Binary(b) = p("foo > bool 1") else {
        panic!()
    };
    assert!(b.return_bool && b.matching.is_none());
    let Expr::Binary(b) = p("1 == bool 1") else {
        panic!()
    };
    assert!(b.return_bool);
    let Expr::Binary(b) = p("foo + ON(a) GROUP_LEFT(b) bar") else {
        panic!()
    };
    assert_eq!(b.matching.unwrap().include, ["b"]);
}

#[test]
fn selectors() {
    let Expr::VectorSelector(s) = p(r#"foo{a="b", c!="d", e=~"f.*", g!~"h"}"#) else {
        panic!()
    };
    assert_eq!(s.name.as_deref(), Some("foo"));
    let ops: Vec<_> = s
        .matchers
        .iter()
        .map(|m| (m.name.as_str(), m.op, m.value.as_str()))
        .collect();
    assert_eq!(
        ops,
        [
            ("__name__", MatchOp::Equal, "foo"),
            ("a", MatchOp::Equal, "b"),
            ("c", MatchOp::NotEqual, "d"),
            ("e", MatchOp::RegexMatch, "f.*"),
            ("g", MatchOp::RegexNoMatch, "h"),
        ]
    );
    assert!(s.matchers[3].matches("f\nx"), "regex . matches newline");

    let Expr::VectorSelector(s) = p(r#"{"some.metric", "a b"="c"}"#) else {
        panic!()
    };
    assert_eq!(s.name, None);
    assert_eq!(s.matchers[0], Matcher::equal("__name__", "some.metric"));
    assert_eq!(s.matchers[1], Matcher::equal("a b", "c"));

    let Expr::VectorSelector(s) = p(r#"{__name__=~"bar", __name__!~"baz"}"#) else {
        panic!()
    };
    assert_eq!(s.matchers.len(), 2);
    let Expr::VectorSelector(s) = p(r#"foo{NaN='bc', inf="x", bar='}',}"#) else {
        panic!()
    };
    assert_eq!(s.matchers[1], Matcher::equal("NaN", "bc"));
    assert_eq!(s.matchers[2], Matcher::equal("inf", "x"));
    assert_eq!(s.matchers[3], Matcher::equal("bar", "}"));
    let Expr::VectorSelector(s) = p(r#"{'foo\'bar', `a\dos`="x"}"#) else {
        panic!()
    };
    assert_eq!(s.matchers[0].value, "foo'bar");
    assert_eq!(s.matchers[1].name, r"a\dos");
    // Keywords are metric names where a selector is expected.
    for kw in [
        "offset", "step", "anchored", "by", "sum", "and", "start", "end",
    ] {
        let Expr::VectorSelector(s) = p(kw) else {
            panic!("{kw}")
        };
        assert_eq!(s.name.as_deref(), Some(kw));
    }
    let Expr::MatrixSelector(m) = p(r#"offset{step="1s"}[5m]"#) else {
        panic!()
    };
    assert_eq!(m.range, 300_000);
}

#[test]
fn ranges_offsets_at() {
    let cases: Vec<(&str, i64, i64, Option<AtModifier>)> = vec![
        ("test[1000ms]", 1000, 0, None),
        ("test[5m30s]", 330_000, 0, None),
        ("test[5]", 5000, 0, None),
        ("foo[4.18]", 4180, 0, None),
        ("test[5h] OFFSET 5m", 5 * 3_600_000, 300_000, None),
        ("test[5w] offset 2w", 35 * 86_400_000, 14 * 86_400_000, None),
        (
            r#"test{a="b"}[5y] OFFSET 3600"#,
            5 * 365 * 86_400_000,
            3_600_000,
            None,
        ),
        ("foo[3ms] @ 2.345", 3, 0, Some(AtModifier::Timestamp(2345))),
        ("foo[1m] offset -5m", 60_000, -300_000, None),
        ("foo[1m] @ start()", 60_000, 0, Some(AtModifier::Start)),
        (
            "foo[1m] offset 1m @ end()",
            60_000,
            60_000,
            Some(AtModifier::End),
        ),
        (
            "some_metric[5m] @ 1m",
            300_000,
            0,
            Some(AtModifier::Timestamp(60_000)),
        ),
    ];
    for (input, range, offset, at) in cases {
        let Expr::MatrixSelector(m) = p(input) else {
            panic!("{input}")
        };
        assert_eq!(
            (m.range, m.selector.offset, m.selector.at),
            (range, offset, at),
            "{input}"
        );
    }
    let ats = [
        ("foo @ .3", 300),
        ("foo @ 3.", 3000),
        ("foo @ 3.3333", 3333),
        ("foo @ 3.3335", 3334),
        ("foo @ 3e2", 300_000),
        ("foo @ 0xA", 10_000),
        ("foo @ -3.3e1", -33_000),
        ("foo @ 100s", 100_000),
        ("foo @ -100", -100_000),
    ];
    for (input, ms) in ats {
        let Expr::VectorSelector(s) = p(input) else {
            panic!("{input}")
        };
        assert_eq!(s.at, Some(AtModifier::Timestamp(ms)), "{input}");
    }
    let Expr::Subquery(sq) = p(r#"foo{bar="baz"}[10m5s:1h6ms]"#) else {
        panic!()
    };
    assert_eq!((sq.range, sq.step), (605_000, Some(3_600_006)));
    let Expr::Subquery(sq) = p("foo[10m:]") else {
        panic!()
    };
    assert_eq!(sq.step, None);
    let Expr::Subquery(sq) = p("some_metric[10m:5s] offset 1m @ 123") else {
        panic!()
    };
    assert_eq!(
        (sq.offset, sq.at),
        (60_000, Some(AtModifier::Timestamp(123_000)))
    );
    let Expr::Subquery(sq) = p("some_metric @ 123 offset 1m [10m:5s]") else {
        panic!()
    };
    let Expr::VectorSelector(inner) = *sq.expr else {
        panic!()
    };
    assert_eq!(
        (inner.offset, inner.at),
        (60_000, Some(AtModifier::Timestamp(123_000)))
    );
    let Expr::Subquery(sq) = p("(foo + bar)[5m:] offset 10m") else {
        panic!()
    };
    assert!(matches!(*sq.expr, Expr::Paren(_)));
    assert_eq!(sq.offset, 600_000);
    let Expr::Subquery(sq) = p("rate(foo[1m])[30:10s]") else {
        panic!()
    };
    assert_eq!((sq.range, sq.step), (30_000, Some(10_000)));
}

#[test]
fn aggregations_and_calls() {
    let Expr::Aggregate(a) = p("sum by (foo)(some_metric)") else {
        panic!()
    };
    assert!(a.op == AggregateOp::Sum && a.grouping == ["foo"] && !a.without);
    let Expr::Aggregate(a) = p("sum (some_metric) without (foo)") else {
        panic!()
    };
    assert!(a.without && a.grouping == ["foo"]);
    let Expr::Aggregate(a) = p("SUM BY (a) (x)") else {
        panic!()
    };
    assert!(a.op == AggregateOp::Sum && a.grouping == ["a"]);
    let Expr::Aggregate(a) = p("sum by (foo,bar,)(some_metric)") else {
        panic!()
    };
    assert_eq!(a.grouping, ["foo", "bar"]);
    let Expr::Aggregate(a) = p(r#"sum by ("foo bar", 'baz')({"some.metric"})"#) else {
        panic!()
    };
    assert_eq!(a.grouping, ["foo bar", "baz"]);
    let Expr::Aggregate(a) = p("sum without(and, by, avg, count, alert, annotations)(x)") else {
        panic!()
    };
    assert_eq!(a.grouping.len(), 6);
    let Expr::Aggregate(a) = p("topk(5, some_metric)") else {
        panic!()
    };
    assert_eq!(a.param.as_deref(), Some(&num(5.0)));
    let Expr::Aggregate(a) = p(r#"count_values("value", some_metric)"#) else {
        panic!()
    };
    assert_eq!(
        a.param.as_deref(),
        Some(&Expr::StringLiteral("value".into()))
    );
    for (q, op) in [
        ("quantile(0.9, x)", AggregateOp::Quantile),
        ("bottomk(1, x)", AggregateOp::Bottomk),
        ("limitk(2, x)", AggregateOp::Limitk),
        ("limit_ratio(0.5, x)", AggregateOp::LimitRatio),
        ("group(x)", AggregateOp::Group),
        ("stddev(x)", AggregateOp::Stddev),
        ("stdvar(x)", AggregateOp::Stdvar),
    ] {
        let Expr::Aggregate(a) = p(q) else {
            panic!("{q}")
        };
        assert_eq!(a.op, op);
    }
    let Expr::Aggregate(a) = p("sum(sum)") else {
        panic!()
    };
    assert_eq!(*a.expr, vs("sum"));

    let Expr::Call(c) = p("time()") else { panic!() };
    assert!(c.func == "time" && c.args.is_empty());
    let Expr::Call(c) = p("round(some_metric, 5)") else {
        panic!()
    };
    assert_eq!(c.args.len(), 2);
    let Expr::Call(c) = p(r#"label_join(x, "dst", ",", "a", "b", "c")"#) else {
        panic!()
    };
    assert_eq!(c.args.len(), 6);
    let Expr::Call(c) = p("histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m])))") else {
        panic!()
    };
    assert_eq!(c.func, "histogram_quantile");
    let Expr::Call(c) = p(r#"info(metric, {data=~".*"})"#) else {
        panic!()
    };
    assert_eq!(c.args.len(), 2);
}

#[test]
fn strings_and_escapes() {
    let cases = [
        (r#""double \" quote""#, "double \" quote"),
        (r"'single \' quote'", "single ' quote"),
        ("`raw \\n string`", "raw \\n string"),
        (r#""\a\b\f\n\r\t\v\\""#, "\x07\x08\x0c\n\r\t\x0b\\"),
        (r#""\u1234\U00010111☺""#, "\u{1234}\u{10111}☺"),
        (r#""\101\x42""#, "AB"),
        ("`multi\nline`", "multi\nline"),
    ];
    for (input, want) in cases {
        assert_eq!(p(input), Expr::StringLiteral(want.into()), "{input}");
    }
}

#[test]
fn comments_and_whitespace() {
    assert_eq!(p("# comment\nfoo # trailing\n"), vs("foo"));
    assert_eq!(
        p("  foo\n\t+\n  bar "),
        bin(BinaryOp::Add, vs("foo"), vs("bar"))
    );
}

#[test]
fn experimental_syntax_still_rejected_is_rejected_clearly() {
    for q in ["h </ 1", "h >/ 1"] {
        let e = parse(q).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::ExperimentalUnsupported, "{q}: {e}");
        assert!(e.message().contains("not supported"), "{q}: {e}");
    }
}

#[test]
fn duration_expressions() {
    // Constant expressions fold at parse time.
    let folded = [
        ("m[26m+4m]", 1_800_000),
        ("m[1800]", 1_800_000),
        ("m[60*30]", 1_800_000),
        ("m[2m*(10+5)]", 1_800_000),
        ("m[24m+((1.5*2m)+2m)]", 1_740_000),
        ("m[-5m+35m]", 1_800_000),
        ("m[1h/2]", 1_800_000),
        ("m[1h30m % 1h]", 1_800_000),
        ("m[30m1s-30m1s % 1m]", 1_800_000),
        ("m[(9m30s+30s)*3]", 1_800_000),
        ("m[2^3]", 8_000),
    ];
    for (q, ms) in folded {
        let Expr::MatrixSelector(m) = p(q) else {
            panic!("{q}")
        };
        assert_eq!((m.range, m.range_expr), (ms, None), "{q}");
    }
    let Expr::Subquery(sq) = p(
        "m[29s+1s:((((8 - 2) / 3) * 7s) % 4) + 8000ms] offset (20*(((((8 - 2) / 3) * 7s) % 4) + 8000ms))",
    ) else {
        panic!()
    };
    assert_eq!(
        (sq.range, sq.step, sq.offset),
        (30_000, Some(10_000), 200_000)
    );
    let Expr::Subquery(sq) = p("m[30s:5s] offset -(20*((2 * 7s) % 4) + 8000ms)") else {
        panic!()
    };
    assert_eq!(sq.offset, -(20_000 * 2 + 8_000));
    // `offset` takes a signed primary; the rest is ordinary arithmetic.
    for (q, off) in [
        ("m offset (100 + 2)", 102_000),
        ("m offset (2 ^ 2)", 4_000),
        ("m offset (-2 ^ 2)", -4_000),
        ("m offset (-2 * 2)", -4_000),
    ] {
        let Expr::VectorSelector(v) = p(q) else {
            panic!("{q}")
        };
        assert_eq!(v.offset, off, "{q}");
    }
    for q in [
        "m offset 100 + 2",
        "m offset 2 ^ 2",
        "m offset -2 ^ 2",
        "m offset -2 * 2",
    ] {
        assert!(matches!(p(q), Expr::Binary(_)), "{q}");
    }
    // step() and range() stay in the tree for the engine to resolve.
    let Expr::MatrixSelector(m) = p("m[1+(STep()-5)*2]") else {
        panic!()
    };
    assert_eq!(
        m.range_expr.as_ref().unwrap().eval_ms(10_000, 0).unwrap(),
        11_000
    );
    let Expr::Binary(b) = p("m offset -min_of(step(), 1s)^0") else {
        panic!()
    };
    let Expr::VectorSelector(v) = *b.lhs else {
        panic!()
    };
    assert_eq!(v.offset_expr.unwrap().eval_ms(5_000, 0).unwrap(), -1_000);
    let Expr::Subquery(sq) = p("m[range():max_of(step(), 1ms)]") else {
        panic!()
    };
    assert!(sq.range_expr.is_some() && sq.step_expr.is_some());
    // Errors.
    for (q, msg) in [
        ("m[1h/0]", "division by zero"),
        ("m[5m-10m]", "duration must be greater than 0"),
        ("m[5m == 5m]", "unexpected <op:==>"),
        ("m[foo()]", "expected number, duration, step(), or range()"),
        ("m[min_of(1)]", "expected \",\""),
        (
            "m offset step",
            "expected number, duration, step(), or range()",
        ),
    ] {
        let e = parse(q).unwrap_err();
        assert!(e.message().contains(msg), "{q}: {e}");
    }
}

#[test]
fn anchored_and_smoothed_modifiers() {
    let Expr::Call(c) = p("increase(m[1m] anchored)") else {
        panic!()
    };
    let Expr::MatrixSelector(m) = &c.args[0] else {
        panic!()
    };
    assert!(m.selector.anchored && !m.selector.smoothed);
    let Expr::Call(c) = p("rate(m[1m] offset 1m smoothed)") else {
        panic!()
    };
    let Expr::MatrixSelector(m) = &c.args[0] else {
        panic!()
    };
    assert!(m.selector.smoothed && m.selector.offset == 60_000);
    let Expr::Binary(b) = p("metric @ 100 smoothed + 0") else {
        panic!()
    };
    let Expr::VectorSelector(v) = *b.lhs else {
        panic!()
    };
    assert!(v.smoothed && v.at == Some(AtModifier::Timestamp(100_000)));
    let Expr::VectorSelector(v) = p("anchored{job=\"x\"}") else {
        panic!()
    };
    assert_eq!(v.name.as_deref(), Some("anchored"));
    for (q, msg) in [
        (
            "deriv(foo[3m] smoothed)",
            "smoothed modifier can only be used with: delta, increase, rate - not with deriv",
        ),
        (
            "max_over_time(foo[3m] anchored)",
            "anchored modifier can only be used with: changes, delta, increase, rate, resets - not with max_over_time",
        ),
        (
            "foo anchored",
            "anchored modifier must be preceded by a range vector selector",
        ),
        (
            "rate(foo[1m])[5m:] smoothed",
            "smoothed modifier must be preceded by",
        ),
        ("rate(foo[1m] anchored anchored)", "only once"),
        (
            "foo smoothed[1m]",
            "no anchored or smoothed modifiers allowed before range",
        ),
    ] {
        let e = parse(q).unwrap_err();
        assert!(e.message().contains(msg), "{q}: {e}");
    }
}

#[test]
fn fill_modifiers() {
    let fills = |q: &str| {
        let Expr::Binary(b) = p(q) else { panic!("{q}") };
        let m = b.matching.unwrap();
        (m.fill_lhs, m.fill_rhs, m.card, m.on)
    };
    assert_eq!(
        fills("a + fill(0) b"),
        (Some(0.0), Some(0.0), Cardinality::OneToOne, false)
    );
    assert_eq!(
        fills("a + fill_left(5) fill_right(7) b"),
        (Some(5.0), Some(7.0), Cardinality::OneToOne, false)
    );
    assert_eq!(fills("a + fill(-Inf) b").0, Some(f64::NEG_INFINITY));
    assert!(fills("a + fill(NaN) b").1.unwrap().is_nan());
    assert_eq!(
        fills("a / on(status) group_left fill_right(1) b"),
        (None, Some(1.0), Cardinality::ManyToOne, true)
    );
    let Expr::Binary(b) = p("a > bool fill(25) b") else {
        panic!()
    };
    assert!(b.return_bool);
    // `fill` is still a fine metric name.
    assert_eq!(p("fill + fill"), bin(BinaryOp::Add, vs("fill"), vs("fill")));
    assert!(matches!(p("other + fill(0) fill"), Expr::Binary(_)));
    for (q, msg) in [
        ("a + fill(0) fill(1) b", "may not be set multiple times"),
        ("a and fill(0) b", "not allowed with set operator"),
        ("a + fill(x) b", "expected number"),
        (
            "1 + fill(0) b",
            "vector matching only allowed between instant vectors",
        ),
    ] {
        let e = parse(q).unwrap_err();
        assert!(e.message().contains(msg), "{q}: {e}");
    }
}

#[test]
fn metric_selector_api() {
    let m = parse_metric_selector(r#"up{job="api"}"#).unwrap();
    assert_eq!(
        m,
        vec![
            Matcher::equal("__name__", "up"),
            Matcher::equal("job", "api")
        ]
    );
    let m = parse_metric_selector(r#"{__name__=~"http_.+"}"#).unwrap();
    assert_eq!(m[0].op, MatchOp::RegexMatch);
    assert!(parse_metric_selector("up + 1").is_err());
    assert!(parse_metric_selector("rate(up[5m])").is_err());
    assert!(parse_metric_selector("{}").is_err());
    assert!(parse_metric_selector("").is_err());
}

#[test]
fn durations_api() {
    for (s, ms) in [
        ("0", 0),
        ("0s", 0),
        ("1h30m", 5_400_000),
        ("5m", 300_000),
        ("1d", 86_400_000),
        ("1w", 604_800_000),
        ("1y", 31_536_000_000),
        ("100ms", 100),
        ("20s500ms", 20_500),
        ("1111111s", 1_111_111_000),
    ] {
        assert_eq!(parse_duration(s).unwrap(), ms, "{s}");
    }
    for bad in [
        "",
        "5",
        "1.5m",
        "5m1h",
        "1h1h",
        "-5m",
        " 5m",
        "5M",
        "9999999999999999999y",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn canonical_printing() {
    let cases = [
        (
            "sum by (a,b)(rate(x{c=\"d\"}[5m]))",
            "sum by (a, b) (rate(x{c=\"d\"}[5m]))",
        ),
        ("sum(x) without (a)", "sum without (a) (x)"),
        ("sum by () (x)", "sum(x)"),
        ("topk(5, x)", "topk(5, x)"),
        ("a + ON(b) GROUP_LEFT(c) d", "a + on (b) group_left (c) d"),
        ("a > bool b", "a > bool b"),
        ("a and ignoring(x) b", "a and ignoring (x) b"),
        ("x[90s] offset -1h", "x[1m30s] offset -1h"),
        ("x @ 100 offset 5m", "x @ 100.000 offset 5m"),
        ("x offset 5m @ start()", "x @ start() offset 5m"),
        ("rate(x[5m])[1h:]", "rate(x[5m])[1h:]"),
        ("(a + b)[10m:1m] offset 1w", "(a + b)[10m:1m] offset 1w"),
        (
            "{\"my.metric\", \"a b\"=\"c\"}",
            "{__name__=\"my.metric\", \"a b\"=\"c\"}",
        ),
        ("'it\\'s'", "\"it's\""),
        ("0x10 + 1e3", "16 + 1000"),
        ("-(1)", "-(1)"),
        ("- - a", "--a"),
        ("1 - -1", "1 - -1"),
        ("5m", "300"),
        ("x[336h]", "x[2w]"),
        ("x[5m+1m]", "x[6m]"),
        (
            "x[step() * 2:range()] offset -min_of(step(), 1s)",
            "x[step() * 2:range()] offset -min_of(step(), 1)",
        ),
        ("x offset (step() + 1)", "x offset (step() + 1)"),
        (
            "rate(x[1m] ANCHORED offset 5m)",
            "rate(x[1m] offset 5m anchored)",
        ),
        ("x @ 1 smoothed", "x @ 1.000 smoothed"),
        (
            "a + on(b) group_left fill(0) c",
            "a + on (b) group_left () fill(0) c",
        ),
        (
            "a + fill_left(1) fill_right(2) c",
            "a + fill_left(1) fill_right(2) c",
        ),
    ];
    for (input, want) in cases {
        let e = p(input);
        assert_eq!(e.to_string(), want, "{input}");
        assert_eq!(
            format!("{:?}", p(want)),
            format!("{e:?}"),
            "re-parse of {want}"
        );
    }
}
