//! Error table for the PromQL parser: input -> message and byte position,
//! modelled on Prometheus's own parser tests (rewritten, not copied), plus
//! the `line:col: parse error: ...` rendering.

use watchpost::promql::{ParseErrorKind, parse};

/// `(input, message, start byte)`.
const ERRORS: &[(&str, &str, usize)] = &[
    ("", "no expression found in input", 0),
    ("# just a comment\n\n", "no expression found in input", 0),
    ("1+", "unexpected end of input", 2),
    (".", "unexpected character: '.'", 0),
    ("2.5.", "bad number or duration syntax: \"2.5.\"", 0),
    ("100..4", "bad number or duration syntax", 0),
    ("1 /", "unexpected end of input", 3),
    ("*1", "unexpected <op:*>", 0),
    ("(1))", "unexpected right parenthesis ')'", 3),
    ("((1)", "unclosed left parenthesis", 4),
    ("(", "unclosed left parenthesis", 1),
    (
        "1 and 1",
        "set operator \"and\" not allowed in binary scalar expression",
        2,
    ),
    (
        "1 or 1",
        "set operator \"or\" not allowed in binary scalar expression",
        2,
    ),
    (
        "1 unless 1",
        "set operator \"unless\" not allowed in binary scalar expression",
        2,
    ),
    (
        "1 == 1",
        "comparisons between scalars must use BOOL modifier",
        0,
    ),
    (
        "foo + bool bar",
        "bool modifier can only be used on comparison operators",
        6,
    ),
    (
        "-\"string\"",
        "unary expression only allowed on expressions of type scalar or instant vector, got \"string\"",
        0,
    ),
    (
        "-test[5m]",
        "unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"",
        0,
    ),
    ("@@", "unexpected <op:@>", 0),
    (
        "1 offset 1d",
        "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
        2,
    ),
    (
        "foo offset 1s offset 2s",
        "offset may not be set multiple times",
        14,
    ),
    (
        "foo @ 1 @ 2",
        "@ <timestamp> may not be set multiple times",
        8,
    ),
    ("a - on(b) ignoring(c) d", "unexpected <ignoring>", 10),
    ("foo + group_left bar", "unexpected <group_left>", 6),
    (
        "foo and on(a) group_left bar",
        "no grouping allowed for \"and\" operation",
        14,
    ),
    (
        "foo * on(a) group_left(a) bar",
        "label \"a\" must not occur in ON and GROUP clause at once",
        12,
    ),
    (
        "1 + on(a) foo",
        "vector matching only allowed between instant vectors",
        4,
    ),
    (
        "foo[5m] + 1",
        "binary expression must contain only scalar and instant vector types",
        0,
    ),
    ("{", "unexpected end of input inside braces", 1),
    ("}", "unexpected \"}\"", 0),
    ("some{", "unexpected end of input inside braces", 5),
    (
        "some_metric{a=b}",
        "unexpected identifier \"b\" in label matching, expected string",
        14,
    ),
    (
        "foo{gibberish}",
        "unexpected \"}\" in label matching, expected label matching operator",
        13,
    ),
    ("foo{1}", "in label matching", 4),
    (
        "{}",
        "vector selector must contain at least one non-empty matcher",
        0,
    ),
    (
        "{x=\"\"}",
        "vector selector must contain at least one non-empty matcher",
        0,
    ),
    (
        "{x=~\".*\"}",
        "vector selector must contain at least one non-empty matcher",
        0,
    ),
    (
        "{x!~\".+\"}",
        "vector selector must contain at least one non-empty matcher",
        0,
    ),
    (
        "{x!=\"a\"}",
        "vector selector must contain at least one non-empty matcher",
        0,
    ),
    (
        "foo{__name__=\"bar\"}",
        "metric name must not be set twice: \"foo\" or \"bar\"",
        0,
    ),
    (
        "foo{__name__= =}",
        "unexpected \"=\" in label matching, expected string",
        14,
    ),
    ("foo{,}", "unexpected \",\" in label matching", 4),
    (
        "foo{__name__=\"bar\" lol}",
        "unexpected identifier \"lol\" in label matching, expected \",\" or \"}\"",
        19,
    ),
    (
        "foo{\"a\"=}",
        "unexpected \"}\" in label matching, expected string",
        8,
    ),
    ("foo{a=~\"(\"}", "invalid regular expression", 4),
    ("foo[5mm]", "bad number or duration syntax: \"5mm\"", 4),
    ("foo[5m1]", "bad number or duration syntax: \"5m1\"", 4),
    ("foo[5m:1m1]", "bad number or duration syntax: \"1m1\"", 7),
    ("foo[5m1h]", "bad number or duration syntax", 4),
    ("foo[0m]", "duration must be greater than 0", 4),
    ("foo[-1]", "duration must be greater than 0", 4),
    ("foo[5m:0s]", "duration must be greater than 0", 7),
    (
        "foo[]",
        "unexpected \"]\" in subquery or range selector, expected number, duration, step(), or range()",
        4,
    ),
    ("foo[\"5m\"]", "unexpected string", 4),
    (
        "some_metric[5m] OFFSET 1mm",
        "bad number or duration syntax: \"1mm\"",
        23,
    ),
    (
        "some_metric[5m] OFFSET",
        "unexpected end of input in offset",
        22,
    ),
    (
        "some_metric OFFSET 1m[5m]",
        "no offset modifiers allowed before range",
        21,
    ),
    (
        "some_metric[5m] @",
        "unexpected end of input in @, expected timestamp",
        17,
    ),
    (
        "some_metric @ 1234 [5m]",
        "no @ modifiers allowed before range",
        19,
    ),
    (
        "some_metric @ start() [5m]",
        "no @ modifiers allowed before range",
        22,
    ),
    (
        "(foo + bar)[5m]",
        "ranges only allowed for vector selectors",
        0,
    ),
    (
        "foo @ +Inf",
        "timestamp out of bounds for @ modifier: +Inf",
        6,
    ),
    (
        "foo @ NaN",
        "timestamp out of bounds for @ modifier: NaN",
        6,
    ),
    ("foo @ 1e20", "timestamp out of bounds for @ modifier", 6),
    (
        "rate(some_metric[5m]) @ 1234",
        "@ modifier must be preceded by an instant vector selector",
        22,
    ),
    (
        "foo[5m][1m:]",
        "subquery is only allowed on instant vector, got matrix instead",
        0,
    ),
    (
        "sum without(==)(some_metric)",
        "unexpected <op:==> in grouping opts, expected label",
        12,
    ),
    (
        "sum without(,)(some_metric)",
        "unexpected \",\" in grouping opts, expected label",
        12,
    ),
    (
        "sum without(foo,,)(some_metric)",
        "unexpected \",\" in grouping opts, expected label",
        16,
    ),
    (
        "sum some_metric by (test)",
        "unexpected identifier \"some_metric\"",
        4,
    ),
    (
        "sum (some_metric) by test",
        "unexpected identifier \"test\" in grouping opts, expected \"(\"",
        21,
    ),
    (
        "sum () by (test)",
        "no arguments for aggregate expression provided",
        0,
    ),
    (
        "MIN keep_common (some_metric)",
        "unexpected identifier \"keep_common\"",
        4,
    ),
    (
        "MIN (some_metric) keep_common",
        "unexpected identifier \"keep_common\"",
        18,
    ),
    (
        "sum (some_metric) without (test) by (test)",
        "unexpected <by>",
        33,
    ),
    (
        "sum without (test) (some_metric) by (test)",
        "unexpected <by>",
        33,
    ),
    (
        "topk(some_metric)",
        "wrong number of arguments for aggregate expression provided, expected 2, got 1",
        0,
    ),
    (
        "topk(some_metric,)",
        "trailing commas not allowed in function call args",
        16,
    ),
    (
        "sum(a, b)",
        "wrong number of arguments for aggregate expression provided, expected 1, got 2",
        0,
    ),
    (
        "topk(some_metric, other_metric)",
        "expected type scalar in aggregation parameter, got instant vector",
        5,
    ),
    (
        "count_values(5, other_metric)",
        "expected type string in aggregation parameter, got scalar",
        13,
    ),
    (
        "sum(foo[5m])",
        "expected type instant vector in aggregation expression, got range vector",
        4,
    ),
    (
        "floor()",
        "expected 1 argument(s) in call to \"floor\", got 0",
        0,
    ),
    (
        "floor(some_metric, other_metric)",
        "expected 1 argument(s) in call to \"floor\", got 2",
        0,
    ),
    (
        "floor(1)",
        "expected type instant vector in call to function \"floor\", got scalar",
        6,
    ),
    (
        "hour(some_metric, some_metric, some_metric)",
        "expected at most 1 argument(s) in call to \"hour\", got 3",
        0,
    ),
    (
        "label_join(a, \"b\")",
        "expected at least 3 argument(s) in call to \"label_join\", got 2",
        0,
    ),
    (
        "time(some_metric)",
        "expected 0 argument(s) in call to \"time\", got 1",
        0,
    ),
    (
        "non_existent_function_far_bar()",
        "unknown function with name \"non_existent_function_far_bar\"",
        0,
    ),
    ("Rate(x[5m])", "unknown function with name \"Rate\"", 0),
    (
        "rate(some_metric)",
        "expected type range vector in call to function \"rate\", got instant vector",
        5,
    ),
    (
        "rate(avg)",
        "expected type range vector in call to function \"rate\", got instant vector",
        5,
    ),
    ("-=", "unexpected \"=\"", 1),
    ("++-++-+-+-<", "unexpected <op:<>", 10),
    ("e-+=/(0)", "unexpected \"=\"", 3),
    ("a>b()", "unknown function with name \"b\"", 2),
    ("`\\``", "unterminated raw string", 3),
    ("\"\\", "escape sequence not terminated", 0),
    ("\"\\c\"", "unknown escape sequence U+0063 'c'", 1),
    (
        "\"\\x.\"",
        "illegal character U+002E '.' in escape sequence",
        1,
    ),
    ("\"abc", "unterminated quoted string", 0),
    ("\"a\nb\"", "unterminated quoted string", 0),
    ("'\\\"'", "unknown escape sequence U+0022 '\"'", 1),
    ("\"\\xff\"", "invalid UTF-8 in string literal", 0),
    (
        "foo{bar=\"baz\"}[",
        "unexpected end of input in subquery or range selector",
        15,
    ),
    ("1 !~ 1", "unexpected <op:!~>", 2),
    ("foo bar", "unexpected identifier \"bar\"", 4),
    ("999e999", "error parsing number", 0),
];

#[test]
fn error_cases() {
    let mut failures = Vec::new();
    for &(input, msg, pos) in ERRORS {
        match parse(input) {
            Ok(e) => failures.push(format!("{input:?}: parsed as {e}")),
            Err(e) => {
                if !e.message().contains(msg) || e.position().start != pos {
                    failures.push(format!(
                        "{input:?}: got {:?} at {}, want {msg:?} at {pos}",
                        e.message(),
                        e.position().start
                    ));
                }
                assert_eq!(e.kind, ParseErrorKind::Syntax, "{input:?}");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_display_has_line_and_column() {
    let e = parse("foo +\n  * bar").unwrap_err();
    assert_eq!(e.to_string(), "2:3: parse error: unexpected <op:*>");
    let e = parse("sum(rate(x[5m])) + rate(y)").unwrap_err();
    assert_eq!(
        e.to_string(),
        "1:25: parse error: expected type range vector in call to function \"rate\", got instant vector"
    );
}
