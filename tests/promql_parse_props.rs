//! Property tests for the PromQL parser:
//! * generated, well-typed trees print to text that parses back to the same
//!   tree;
//! * arbitrary input never panics (plain strings and PromQL-flavoured token
//!   soup), for `parse`, `parse_metric_selector`, `parse_duration` and
//!   `parse_series_desc`;
//! * the seed corpus under `fuzz/corpus/promql_parse/` is replayed.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use watchpost::model::{MatchOp, Matcher};
use watchpost::promql::ast::*;
use watchpost::promql::{
    ValueType, parse, parse_duration, parse_metric_selector, parse_series_desc,
};

// ---------- generators ----------

fn metric_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "foo",
        "bar",
        "http_requests_total",
        "a:b:c",
        "sum",
        "by",
        "offset",
        "x_1",
        "_under",
    ])
    .prop_map(String::from)
}

fn label_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "job",
        "le",
        "on",
        "a.b",
        "with space",
        "bool",
        "__x__",
        "é",
    ])
    .prop_map(String::from)
}

fn label_value() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "",
        "api",
        "a\"b",
        "back\\slash",
        "new\nline",
        "tab\t",
        "ünï",
        "}",
    ])
    .prop_map(String::from)
}

fn regex_value() -> impl Strategy<Value = String> {
    prop::sample::select(vec![".*", "a|b", "x.+", "[0-9]+", "\\d", "(foo|bar)baz"])
        .prop_map(String::from)
}

fn matcher() -> impl Strategy<Value = Matcher> {
    prop_oneof![
        (label_name(), label_value()).prop_map(|(n, v)| Matcher::equal(n, v)),
        (label_name(), label_value())
            .prop_map(|(n, v)| Matcher::new(MatchOp::NotEqual, n, v).unwrap()),
        (label_name(), regex_value())
            .prop_map(|(n, v)| Matcher::new(MatchOp::RegexMatch, n, v).unwrap()),
        (label_name(), regex_value())
            .prop_map(|(n, v)| Matcher::new(MatchOp::RegexNoMatch, n, v).unwrap()),
    ]
}

fn duration_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(1000i64),
        Just(300_000),
        Just(90_000),
        Just(3_600_000),
        Just(86_400_000 * 14),
        Just(1500),
        1i64..10_000_000,
    ]
}

fn at_modifier() -> impl Strategy<Value = Option<AtModifier>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(AtModifier::Start)),
        1 => Just(Some(AtModifier::End)),
        1 => (-1_000_000_000i64..2_000_000_000_000).prop_map(|t| Some(AtModifier::Timestamp(t))),
    ]
}

fn offset() -> impl Strategy<Value = i64> {
    prop_oneof![3 => Just(0i64), 1 => duration_ms(), 1 => duration_ms().prop_map(|d| -d)]
}

fn vector_selector() -> impl Strategy<Value = VectorSelector> {
    (
        prop::option::of(metric_name()),
        prop::collection::vec(matcher(), 0..3),
        offset(),
        at_modifier(),
        "[a-z]{1,4}",
    )
        .prop_map(|(name, mut matchers, offset, at, fallback)| {
            let smoothed = fallback.len() == 1;
            let mut all = Vec::new();
            if let Some(n) = &name {
                all.push(Matcher::equal("__name__", n.clone()));
                // A second __name__ matcher next to a name is a parse error.
                matchers.retain(|m| m.name != "__name__");
            } else {
                // Guarantee one non-empty matcher.
                all.push(Matcher::equal("job", fallback));
            }
            all.extend(matchers);
            VectorSelector {
                name,
                matchers: all,
                offset,
                at,
                smoothed,
                ..VectorSelector::default()
            }
        })
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0u32..1000).prop_map(f64::from),
        (0.0f64..1e6),
        Just(f64::INFINITY),
        Just(f64::NAN),
        Just(1e-7),
        Just(1.5e300),
    ]
}

/// Binding strength of an expression at its top, as the printer emits it.
fn prec_of(e: &Expr) -> u8 {
    match e {
        Expr::Binary(b) => match b.op {
            BinaryOp::Or => 1,
            BinaryOp::And | BinaryOp::Unless => 2,
            op if op.is_comparison() => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Pow => 6,
            _ => 5,
        },
        // A unary sign binds like `*` on its left side.
        Expr::Unary(..) => 5,
        _ => 7,
    }
}

fn paren(e: Expr) -> Expr {
    Expr::Paren(Box::new(e))
}

/// Adds the parentheses the parser would need to rebuild `op(lhs, rhs)`.
fn binary(
    op: BinaryOp,
    lhs: Expr,
    rhs: Expr,
    return_bool: bool,
    matching: Option<VectorMatching>,
) -> Expr {
    let p = prec_of(&Expr::Binary(BinaryExpr {
        op,
        lhs: Box::new(Expr::NumberLiteral(0.0)),
        rhs: Box::new(Expr::NumberLiteral(0.0)),
        return_bool: false,
        matching: None,
    }));
    let right_assoc = op == BinaryOp::Pow;
    let lp = prec_of(&lhs);
    let lhs =
        if lp < p || (lp == p && right_assoc) || (right_assoc && matches!(lhs, Expr::Unary(..))) {
            paren(lhs)
        } else {
            lhs
        };
    let rp = prec_of(&rhs);
    let rhs = if rp < p || (rp == p && !right_assoc && !matches!(rhs, Expr::Unary(..))) {
        paren(rhs)
    } else {
        rhs
    };
    Expr::Binary(BinaryExpr {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        return_bool,
        matching,
    })
}

/// A unary sign over `e`, parenthesising operands looser than `^` and
/// number literals (which the parser would fold into the literal).
fn unary(op: UnaryOp, e: Expr) -> Expr {
    let needs = match &e {
        Expr::Binary(b) => b.op != BinaryOp::Pow,
        Expr::NumberLiteral(_) => true,
        _ => false,
    };
    Expr::Unary(op, Box::new(if needs { paren(e) } else { e }))
}

/// Wraps anything that is not a primary expression, so `[range:step]`
/// applies to all of it.
fn primary(e: Expr) -> Expr {
    match e {
        Expr::VectorSelector(_) | Expr::Call(_) | Expr::Aggregate(_) | Expr::Paren(_) => e,
        other => paren(other),
    }
}

fn matching_for(op: BinaryOp) -> impl Strategy<Value = VectorMatching> {
    let labels = || prop::collection::vec(label_name(), 0..3);
    let fill = || {
        prop::option::weighted(
            0.15,
            prop_oneof![
                (0u32..10).prop_map(f64::from),
                Just(-1.5),
                Just(f64::NAN),
                Just(f64::NEG_INFINITY)
            ],
        )
    };
    (labels(), labels(), any::<bool>(), 0u8..3, fill(), fill()).prop_map(
        move |(labels, include, on, card, fill_lhs, fill_rhs)| {
            let card = if op.is_set() {
                Cardinality::ManyToMany
            } else {
                match card {
                    0 => Cardinality::OneToOne,
                    1 => Cardinality::ManyToOne,
                    _ => Cardinality::OneToMany,
                }
            };
            let grouped = matches!(card, Cardinality::ManyToOne | Cardinality::OneToMany);
            let include = if grouped {
                include
                    .into_iter()
                    .filter(|l| !on || !labels.contains(l))
                    .collect()
            } else {
                Vec::new()
            };
            let (fill_lhs, fill_rhs) = if op.is_set() {
                (None, None)
            } else {
                (fill_lhs, fill_rhs)
            };
            VectorMatching {
                card,
                on,
                labels,
                include,
                fill_lhs,
                fill_rhs,
            }
        },
    )
}

const OPS: [BinaryOp; 16] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Mod,
    BinaryOp::Pow,
    BinaryOp::Atan2,
    BinaryOp::Eql,
    BinaryOp::Neq,
    BinaryOp::Gtr,
    BinaryOp::Lss,
    BinaryOp::Gte,
    BinaryOp::Lte,
    BinaryOp::And,
    BinaryOp::Or,
    BinaryOp::Unless,
];

fn scalar_expr(depth: u32) -> BoxedStrategy<Expr> {
    let leaf = prop_oneof![
        number().prop_map(Expr::NumberLiteral),
        Just(Expr::Call(Call {
            func: "time".into(),
            args: vec![]
        })),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    let d = depth - 1;
    prop_oneof![
        2 => leaf,
        1 => scalar_expr(d).prop_map(paren),
        1 => (any::<bool>(), scalar_expr(d)).prop_map(|(neg, e)| unary(if neg { UnaryOp::Neg } else { UnaryOp::Pos }, e)),
        1 => vector_expr(d).prop_map(|v| Expr::Call(Call { func: "scalar".into(), args: vec![v] })),
        2 => (prop::sample::select(OPS.to_vec()), scalar_expr(d), scalar_expr(d))
            .prop_filter("set operators need vectors", |(op, _, _)| !op.is_set())
            .prop_map(|(op, l, r)| binary(op, l, r, op.is_comparison(), None)),
    ]
    .boxed()
}

/// Duration expressions that use `step()`/`range()` (constant ones are
/// folded by the parser, so they never appear in a parsed tree), with the
/// parentheses the parser needs.
fn duration_expr() -> BoxedStrategy<DurationExpr> {
    let leaf = prop_oneof![
        Just(DurationExpr::Step),
        Just(DurationExpr::Range),
        (0u32..100).prop_map(|v| DurationExpr::Number(f64::from(v))),
        Just(DurationExpr::Number(0.5)),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        let dp = |e: &DurationExpr| match e {
            DurationExpr::Binary(op, ..) => match op {
                BinaryOp::Add | BinaryOp::Sub => 4,
                BinaryOp::Pow => 6,
                _ => 5,
            },
            DurationExpr::Unary(..) => 5,
            _ => 7,
        };
        prop_oneof![
            (
                prop::sample::select(vec![
                    BinaryOp::Add,
                    BinaryOp::Sub,
                    BinaryOp::Mul,
                    BinaryOp::Div,
                    BinaryOp::Mod,
                    BinaryOp::Pow
                ]),
                inner.clone(),
                inner.clone()
            )
                .prop_map(move |(op, l, r)| {
                    let p = dp(&DurationExpr::Binary(
                        op,
                        Box::new(DurationExpr::Step),
                        Box::new(DurationExpr::Step),
                    ));
                    let right = op == BinaryOp::Pow;
                    let (lp, rp) = (dp(&l), dp(&r));
                    let wrap = |e: DurationExpr| DurationExpr::Paren(Box::new(e));
                    let l = if lp < p
                        || (lp == p && right)
                        || (right && matches!(l, DurationExpr::Unary(..)))
                    {
                        wrap(l)
                    } else {
                        l
                    };
                    let r =
                        if rp < p || (rp == p && !right && !matches!(r, DurationExpr::Unary(..))) {
                            wrap(r)
                        } else {
                            r
                        };
                    DurationExpr::Binary(op, Box::new(l), Box::new(r))
                }),
            (any::<bool>(), inner.clone()).prop_map(|(neg, e)| {
                let e = match e {
                    DurationExpr::Binary(op, ..) if op != BinaryOp::Pow => {
                        DurationExpr::Paren(Box::new(e))
                    }
                    e => e,
                };
                DurationExpr::Unary(neg, Box::new(e))
            }),
            inner.clone().prop_map(|e| DurationExpr::Paren(Box::new(e))),
            (inner.clone(), inner).prop_map(|(a, b)| DurationExpr::MinOf(Box::new(a), Box::new(b))),
        ]
    })
    .prop_filter("must use step() or range()", |e| !e.is_constant())
    .boxed()
}

/// A duration expression as it may follow `offset`: a signed primary.
fn offset_duration_expr() -> impl Strategy<Value = DurationExpr> {
    (duration_expr(), 0u8..3).prop_map(|(e, sign)| {
        let primary = match e {
            e @ (DurationExpr::Binary(..) | DurationExpr::Unary(..)) => {
                DurationExpr::Paren(Box::new(e))
            }
            e => e,
        };
        match sign {
            0 => primary,
            1 => DurationExpr::Unary(true, Box::new(primary)),
            _ => DurationExpr::Unary(false, Box::new(primary)),
        }
    })
}

/// A range selector; `anchored`/`smoothed` only when `func` accepts them.
fn matrix_selector(func: &'static str) -> impl Strategy<Value = Expr> {
    (
        vector_selector(),
        duration_ms(),
        prop::option::weighted(0.2, duration_expr()),
        prop::option::weighted(0.2, offset_duration_expr()),
        0u8..3,
    )
        .prop_map(
            move |(mut selector, range, range_expr, offset_expr, modifier)| {
                let anchor_ok =
                    matches!(func, "rate" | "increase" | "changes" | "delta" | "resets");
                let smooth_ok = matches!(func, "rate" | "increase" | "delta");
                selector.anchored = modifier == 1 && anchor_ok;
                selector.smoothed = modifier == 2 && smooth_ok;
                if offset_expr.is_some() {
                    selector.offset = 0;
                    selector.offset_expr = offset_expr;
                }
                Expr::MatrixSelector(MatrixSelector {
                    selector,
                    range: if range_expr.is_some() { 0 } else { range },
                    range_expr,
                })
            },
        )
}

fn matrix_expr(depth: u32) -> BoxedStrategy<Expr> {
    let sel = matrix_selector("avg_over_time");
    if depth == 0 {
        return sel.boxed();
    }
    prop_oneof![
        3 => sel,
        1 => (vector_expr(depth - 1), duration_ms(), prop::option::of(duration_ms()), offset(), at_modifier(),
              prop::option::weighted(0.2, duration_expr()), prop::option::weighted(0.2, duration_expr()),
              prop::option::weighted(0.2, offset_duration_expr()))
            .prop_map(|(e, range, step, offset, at, range_expr, step_expr, offset_expr)| Expr::Subquery(SubqueryExpr {
                expr: Box::new(primary(e)),
                range: if range_expr.is_some() { 0 } else { range },
                step: match (&step_expr, step) {
                    (Some(_), _) => Some(0),
                    (None, s) => s,
                },
                offset: if offset_expr.is_some() { 0 } else { offset },
                at,
                range_expr,
                step_expr,
                offset_expr,
            })),
    ]
    .boxed()
}

fn aggregate_op() -> impl Strategy<Value = AggregateOp> {
    prop::sample::select(vec![
        AggregateOp::Sum,
        AggregateOp::Avg,
        AggregateOp::Count,
        AggregateOp::Min,
        AggregateOp::Max,
        AggregateOp::Group,
        AggregateOp::Stddev,
        AggregateOp::Stdvar,
        AggregateOp::Topk,
        AggregateOp::Bottomk,
        AggregateOp::CountValues,
        AggregateOp::Quantile,
        AggregateOp::Limitk,
        AggregateOp::LimitRatio,
    ])
}

fn vector_expr(depth: u32) -> BoxedStrategy<Expr> {
    let leaf = vector_selector().prop_map(Expr::VectorSelector);
    if depth == 0 {
        return leaf.boxed();
    }
    let d = depth - 1;
    prop_oneof![
        3 => leaf,
        1 => vector_expr(d).prop_map(paren),
        1 => (any::<bool>(), vector_expr(d)).prop_map(|(neg, e)| unary(if neg { UnaryOp::Neg } else { UnaryOp::Pos }, e)),
        2 => (prop::sample::select(vec!["rate", "increase", "avg_over_time", "changes"]), matrix_expr(d))
            .prop_map(|(f, m)| Expr::Call(Call { func: f.into(), args: vec![m] })),
        1 => prop::sample::select(vec!["rate", "increase", "changes", "delta", "resets"])
            .prop_flat_map(|f| matrix_selector(f).prop_map(move |m| Expr::Call(Call { func: f.into(), args: vec![m] }))),
        1 => (vector_expr(d), scalar_expr(d), scalar_expr(d))
            .prop_map(|(v, a, b)| Expr::Call(Call { func: "clamp".into(), args: vec![v, a, b] })),
        1 => (scalar_expr(d), vector_expr(d))
            .prop_map(|(q, v)| Expr::Call(Call { func: "histogram_quantile".into(), args: vec![q, v] })),
        1 => (vector_expr(d), label_value(), regex_value())
            .prop_map(|(v, s, r)| Expr::Call(Call {
                func: "label_replace".into(),
                args: vec![v, Expr::StringLiteral("dst".into()), Expr::StringLiteral(s), Expr::StringLiteral("src".into()), Expr::StringLiteral(r)],
            })),
        1 => scalar_expr(d).prop_map(|s| Expr::Call(Call { func: "vector".into(), args: vec![s] })),
        2 => (aggregate_op(), vector_expr(d), scalar_expr(d), label_value(), prop::collection::vec(label_name(), 0..3), any::<bool>())
            .prop_map(|(op, e, p, s, grouping, without)| {
                let param = match op {
                    AggregateOp::CountValues => Some(Box::new(Expr::StringLiteral(s))),
                    AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Quantile | AggregateOp::Limitk | AggregateOp::LimitRatio => Some(Box::new(p)),
                    _ => None,
                };
                Expr::Aggregate(AggregateExpr { op, expr: Box::new(e), param, grouping, without })
            }),
        3 => (prop::sample::select(OPS.to_vec()), vector_expr(d), vector_expr(d), any::<bool>())
            .prop_flat_map(|(op, l, r, b)| matching_for(op).prop_map(move |m| {
                binary(op, l.clone(), r.clone(), b && op.is_comparison(), Some(m))
            })),
        2 => (prop::sample::select(OPS.to_vec()), vector_expr(d), scalar_expr(d), any::<bool>(), any::<bool>())
            .prop_filter("set operators need vectors", |(op, ..)| !op.is_set())
            .prop_map(|(op, v, s, b, flip)| {
                let rb = b && op.is_comparison();
                if flip { binary(op, s, v, rb, None) } else { binary(op, v, s, rb, None) }
            }),
    ]
    .boxed()
}

fn any_expr() -> impl Strategy<Value = Expr> {
    prop_oneof![
        4 => vector_expr(3),
        2 => scalar_expr(3),
        1 => matrix_expr(2),
        1 => label_value().prop_map(Expr::StringLiteral),
    ]
}

// ---------- properties ----------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn print_then_parse_gives_the_same_tree(e in any_expr()) {
        let printed = e.to_string();
        let parsed = parse(&printed).map_err(|err| {
            TestCaseError::fail(format!("{printed:?} does not parse: {err}"))
        })?;
        // Debug output compares NaN literals as equal.
        prop_assert_eq!(format!("{parsed:?}"), format!("{e:?}"), "printed: {}", printed);
        prop_assert_eq!(parsed.to_string(), printed);
        let ty = e.value_type();
        prop_assert_eq!(parsed.value_type(), ty);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,200}") {
        let _ = parse(&s);
        let _ = parse_metric_selector(&s);
        let _ = parse_duration(&s);
        let _ = parse_series_desc(&s);
    }

    #[test]
    fn promql_token_soup_never_panics(toks in prop::collection::vec(prop::sample::select(vec![
        "foo", "sum", "by", "(", ")", "{", "}", "[", "]", ",", ":", "5m", "1", "0x1f", "-", "+", "*", "/",
        "^", "==", "!=", "=~", "!~", "=", ">", "<=", "and", "or", "unless", "on", "ignoring", "group_left",
        "group_right", "bool", "offset", "@", "start()", "end()", "\"s\"", "'q'", "`r`", "rate", "topk",
        "count_values", "inf", "NaN", "1e3", ".5", "a=\"b\"", "#", "\n", " ", "x", "_", "stale", "1+2x3",
        "{{", "}}", "\\", "\"", "'", "`", "é", "1h30m", "label_join", "without", "atan2",
    ]), 0..40)) {
        let s: String = toks.concat();
        let spaced = toks.join(" ");
        for input in [&s, &spaced] {
            if let Ok(e) = parse(input) {
                // Whatever parses must also print and parse back.
                let printed = e.to_string();
                let again = parse(&printed);
                prop_assert!(again.is_ok(), "{input:?} -> {printed:?}: {again:?}");
            }
            let _ = parse_metric_selector(input);
            let _ = parse_series_desc(input);
        }
    }
}

#[test]
fn generated_types_are_what_the_generator_meant() {
    // Guards the generator itself: scalar and vector generators really
    // produce those types (otherwise the round trip would test less).
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..50 {
        let v = vector_expr(2).new_tree(&mut runner).unwrap().current();
        assert_eq!(v.value_type(), ValueType::Vector, "{v}");
        let s = scalar_expr(2).new_tree(&mut runner).unwrap().current();
        assert_eq!(s.value_type(), ValueType::Scalar, "{s}");
    }
    // ... and the experimental syntax is exercised too.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..400 {
        let e = any_expr().new_tree(&mut runner).unwrap().current();
        seen.extend(watchpost::promql::experimental_features(&e));
    }
    use watchpost::promql::Experimental::*;
    for f in [Anchored, Smoothed, Fill, DurationExpression] {
        assert!(seen.contains(&f), "generator never produced {f:?}");
    }
}

/// Replays the seed corpus (also usable by an external fuzzer): nothing
/// panics, and whatever parses round-trips through the printer.
#[test]
fn seed_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/promql_parse");
    let mut n = 0;
    let mut parsed = 0;
    for entry in std::fs::read_dir(&dir).expect("seed corpus directory") {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let input = String::from_utf8_lossy(&bytes);
        n += 1;
        if let Ok(e) = parse(&input) {
            parsed += 1;
            let printed = e.to_string();
            let again =
                parse(&printed).unwrap_or_else(|err| panic!("{path:?}: {printed:?}: {err}"));
            assert_eq!(format!("{again:?}"), format!("{e:?}"), "{path:?}");
        }
        let _ = parse_metric_selector(&input);
        let _ = parse_series_desc(&input);
    }
    assert!(n >= 50, "seed corpus has only {n} files");
    assert!(
        parsed >= 20 && parsed < n,
        "{parsed} of {n} parse; want a mix of good and bad inputs"
    );
}
