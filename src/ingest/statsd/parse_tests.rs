//! Unit tests of the StatsD line parser (`parse.rs`).

use super::*;

fn metric(s: &str) -> Line<'_> {
    match parse_line(s.as_bytes()) {
        Ok(Parsed::Metric(l)) => l,
        other => panic!("{s:?}: {other:?}"),
    }
}

#[test]
fn numbers() {
    for (s, v) in [
        ("1", 1.0),
        ("+1", 1.0),
        ("-1", -1.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        ("320.000000", 320.0),
        ("1e-05", 1e-5),
        ("1234567890123456789", 1234567890123456789.0),
    ] {
        assert_eq!(parse_number(s).map(|x| x.0), Some(v), "{s}");
    }
    for s in [
        "", "+", "-", ".", "e3", "1e", "0x10", "1_000", " 1", "inf", "NaN", "1e400", "+-1",
        "1.2.3", "infinity",
    ] {
        assert_eq!(parse_number(s), None, "{s}");
    }
}

#[test]
fn escaping() {
    assert_eq!(escape_name("api.http-requests"), "api_http_requests");
    assert_eq!(escape_name("1st.metric"), "_1st_metric");
    assert_eq!(escape_name("café"), "caf_");
    assert_eq!(escape_name("a--b"), "a_b");
    assert_eq!(escape_name("a..b"), "a__b");
    assert!(matches!(escape_name("ok_name9"), Cow::Borrowed(_)));
    for s in ["a--b", "9-x", "café.-.x", ""] {
        assert_eq!(escaped_len(s), escape_name(s).len(), "{s}");
    }
}

#[test]
fn borrowed_parts() {
    let l = metric("req:1|c|#env:prod");
    assert!(matches!(l.name, Cow::Borrowed("req")));
    assert!(matches!(l.tags[0].0, Cow::Borrowed("env")));
}

#[test]
fn too_long_and_too_many() {
    let long = format!("{}:1|c", "a".repeat(MAX_NAME_LEN + 1));
    assert_eq!(parse_line(long.as_bytes()), Err(BadReason::TooLong));
    let val = format!("a:1|c|#k:{}", "v".repeat(MAX_LABEL_VALUE_LEN + 1));
    assert_eq!(parse_line(val.as_bytes()), Err(BadReason::TooLong));
    let tags: Vec<String> = (0..=MAX_TAGS).map(|i| format!("k{i}:v")).collect();
    let many = format!("a:1|c|#{}", tags.join(","));
    assert_eq!(parse_line(many.as_bytes()), Err(BadReason::TooManyTags));
}

fn tag_list(l: &Line<'_>) -> Vec<(String, String)> {
    l.unique_tags()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn tags_in_wire_order_unique_view_last_wins() {
    let l = metric("a:1|c|#z:1,b:2,z:3,a.x:4,#m:5,b:6,9k:7,bare,,k:v:w");
    let wire: Vec<(&str, &str)> = l.tags.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
    assert_eq!(
        wire,
        vec![
            ("z", "1"),
            ("b", "2"),
            ("z", "3"),
            ("a_x", "4"),
            ("m", "5"),
            ("b", "6"),
            ("_9k", "7"),
            ("k", "v:w")
        ]
    );
    assert_eq!(
        tag_list(&l),
        pairs(&[
            ("_9k", "7"),
            ("a_x", "4"),
            ("b", "6"),
            ("k", "v:w"),
            ("m", "5"),
            ("z", "3")
        ])
    );
    assert_eq!(l.tag_errors, 1, "only the bare tag is an error");
    // Reserved and empty keys/values are tag errors, not tags.
    let l = metric("a:1|c|#__x:1,._y:2,:3,e:,ok:1");
    assert_eq!(tag_list(&l), pairs(&[("ok", "1")]));
    assert_eq!(l.tag_errors, 4);
    // Escaped keys are owned, plain ones borrowed.
    let l = metric("a:1|c|#my.tag:1,env:p");
    assert!(matches!(l.tags[0].0, Cow::Owned(_)));
    assert!(matches!(l.tags[1].0, Cow::Borrowed("env")));
}

#[test]
fn tag_section_ends_at_the_next_field() {
    let l = metric("a:1|c|#|c:ci-1|@0.5");
    assert!(l.tags.is_empty());
    assert_eq!(
        (l.container_id, l.samples.as_slice()[0].rate),
        (Some("ci-1"), 0.5)
    );
    let l = metric("a:1|c|#k:v,|@0.5|#j:a:b|zz|");
    assert_eq!(tag_list(&l), pairs(&[("j", "a:b"), ("k", "v")]));
    assert_eq!((l.tag_errors, l.unknown_fields), (0, 1));
    let l = metric("a:1|c|##k:v,#,bare|T123");
    assert_eq!(tag_list(&l), pairs(&[("k", "v")]));
    assert_eq!(l.tag_errors, 1);
    assert_eq!(
        parse_line(b"a:1|c|#k:v|@2"),
        Err(BadReason::InvalidSampleRate)
    );
}

#[test]
fn tag_limits_count_labels_not_wire_tags() {
    // 70 wire tags over 10 keys: 10 labels, within the limit.
    let wire: Vec<String> = (0..70).map(|i| format!("k{}:v{i}", i % 10)).collect();
    let s = format!("a:1|c|#{}", wire.join(","));
    let l = metric(&s);
    assert_eq!(l.unique_tags().len(), 10);
    assert_eq!(l.unique_tags()[0], ("k0", "v60"));
    // A long value overridden by a later short one is not `too_long`.
    let s = format!("a:1|c|#k:{},k:short", "v".repeat(MAX_LABEL_VALUE_LEN + 1));
    assert_eq!(metric(&s).unique_tags(), vec![("k", "short")]);
    let s = format!("a:1|c|#k:short,k:{}", "v".repeat(MAX_LABEL_VALUE_LEN + 1));
    assert_eq!(parse_line(s.as_bytes()), Err(BadReason::TooLong));
}

#[test]
fn line_parser_reuses_its_tag_buffer() {
    let mut p = LineParser::new();
    let inputs: [&[u8]; 5] = [
        b"a:1|c|#method:GET,endpoint:/users,status:200,region:eu",
        b"b:1|g",
        b"c:2|h|#x:1,y:2",
        b"bad",
        b"_e{1,1}:a|b",
    ];
    for round in 0..3 {
        for raw in inputs {
            let got = p.parse(raw);
            assert_eq!(got, parse_line(raw), "{round}: {raw:?}");
            if let Ok(Parsed::Metric(l)) = got {
                p.recycle(l);
            }
        }
        assert!(
            p.spare_capacity() >= 4,
            "buffer kept: {}",
            p.spare_capacity()
        );
    }
    // The kept buffer is the same allocation line after line.
    let Ok(Parsed::Metric(l)) = p.parse(b"a:1|c|#k:v") else {
        panic!()
    };
    let ptr = l.tags.as_ptr() as usize;
    p.recycle(l);
    let Ok(Parsed::Metric(l)) = p.parse(b"b:1|c|#k:v,j:w") else {
        panic!()
    };
    assert_eq!(l.tags.as_ptr() as usize, ptr);
}

#[test]
fn format_examples() {
    for (input, want) in [
        ("a:1:2|ms|@0.5|#x:1", "a:1:2|ms|@0.5|#x:1"),
        ("g:-5|g", "g:-5|g"),
        ("g:+3|g", "g:+3|g"),
        ("a,env=x:1|c:2|g", "a,env=x:1|c:2|g"),
        ("u:a:b|s", "u:a:b|s"),
        ("u:a|s:b|s", "u:a|s:b|s"),
    ] {
        let mut s = String::new();
        format_line(&metric(input), &mut s);
        assert_eq!(s, want);
    }
}

#[test]
fn lines_framing() {
    let v: Vec<&[u8]> = lines(b"\n\na:1|c\r\n\nb\r").collect();
    assert_eq!(v, vec![&b"a:1|c"[..], &b"b"[..]]);
}
