//! JSON output byte-compatible with Prometheus's API.
//!
//! Prometheus encodes with jsoniter in standard-library mode, so strings are
//! escaped like Go's `encoding/json` (HTML-safe: `<`, `>`, `&`, U+2028 and
//! U+2029 become `\u....`), timestamps are seconds with exactly the
//! millisecond digits that are non-zero *as a group* (`12.5 s` prints as
//! `12.500`, `12 s` as `12`), and sample values are strings formatted with
//! `strconv.FormatFloat(v, 'f', -1, 64)` except below `1e-6` or from `1e21`
//! up, where `'e'` is used. This module writes those bytes by hand instead of
//! going through serde so the output matches exactly.

use std::fmt::Write as _;

use crate::ingest::text::float::{format_e, format_f};
use crate::model::Labels;

/// True for the bytes `write_str` must escape: control characters, `"`,
/// `\\`, the HTML-sensitive `<`, `>`, `&`, and 0xE2 (the lead byte of
/// U+2028/U+2029, checked precisely on the slow path).
#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || matches!(b, b'"' | b'\\' | b'<' | b'>' | b'&' | 0xE2)
}

/// Appends `s` as a JSON string literal, escaped like Go's `encoding/json`.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    // Label names and values almost never need escaping: copy them whole.
    if !s.bytes().any(needs_escape) {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends the decimal digits of `n` (no allocation, no `fmt` machinery).
#[inline]
fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // The buffer holds ASCII digits only.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

/// Appends a millisecond timestamp as Prometheus prints it: seconds, then
/// `.` and three digits when the millisecond part is non-zero.
pub fn write_timestamp(out: &mut String, t_ms: i64) {
    let neg = t_ms < 0;
    let abs = t_ms.unsigned_abs();
    if neg {
        out.push('-');
    }
    push_u64(out, abs / 1000);
    let frac = abs % 1000;
    if frac != 0 {
        let frac = frac as u32;
        out.push('.');
        for d in [frac / 100, frac / 10 % 10, frac % 10] {
            out.push(char::from(b'0' + d as u8));
        }
    }
}

/// Appends a float as Go's `encoding/json` prints a `float64`: `'f'`
/// format, or `'e'` (with a one-digit negative exponent kept short, `1e-7`)
/// below `1e-6` or from `1e21` up. Prometheus prints scalar and string
/// results' timestamps this way (`[300.5,"..."]`, unlike vectors' `300.500`).
pub fn write_go_json_float(out: &mut String, v: f64) {
    let a = v.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let e = format_e(v);
        match e.find("e-0") {
            Some(i) if e.len() == i + 4 => {
                out.push_str(e.get(..i + 2).unwrap_or_default());
                out.push_str(e.get(i + 3..).unwrap_or_default());
            }
            _ => out.push_str(&e),
        }
    } else {
        out.push_str(&format_f(v));
    }
}

/// A sample value formatted as Prometheus's API does (without quotes).
pub fn format_value(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && a.is_finite() && !(1e-6..1e21).contains(&a) {
        format_e(v)
    } else {
        format_f(v)
    }
}

/// Appends a sample value exactly as [`format_value`] formats it, without
/// allocating. Integral values print through an integer fast path; other
/// values in the `'f'` range through Ryū (the `ryu` crate, already used by
/// serde_json), which yields the same shortest round-trip digits as Go's
/// `strconv` and `core`'s `{:e}` (what `format_value` uses) about four
/// times faster than `core`'s `Display`. Ryū switches to exponent form
/// below 1e-5 and from 1e16 up; those values take `Display`, which never
/// does. A proptest checks the bytes against `format_value`.
#[inline]
pub fn write_value(out: &mut String, v: f64) {
    let a = v.abs();
    if !a.is_finite() || (a != 0.0 && !(1e-6..1e21).contains(&a)) {
        out.push_str(&format_value(v));
    } else if a < 1e15 && v.trunc() == v {
        // Exact integers below 2^53: the digits are the integer's.
        if v.is_sign_negative() {
            out.push('-');
        }
        push_u64(out, a as u64);
    } else if (1e-5..1e16).contains(&a) {
        let mut buf = ryu::Buffer::new();
        let s = buf.format_finite(v);
        // Non-integral here, so Ryū printed `d.ddd` (never a bare `.0`).
        out.push_str(s.strip_suffix(".0").unwrap_or(s));
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Appends `[<ts>,"<value>"]`.
#[inline]
pub fn write_point(out: &mut String, t_ms: i64, v: f64) {
    out.push('[');
    write_timestamp(out, t_ms);
    out.push_str(",\"");
    write_value(out, v);
    out.push_str("\"]");
}

/// Appends a label set as a JSON object in label order.
pub fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, &l.name);
        out.push(':');
        write_str(out, &l.value);
    }
    out.push('}');
}

/// Appends a JSON array of strings.
pub fn write_str_array<S: AsRef<str>>(out: &mut String, items: &[S]) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, s.as_ref());
    }
    out.push(']');
}

/// The success envelope around pre-rendered `data`, with optional
/// `warnings` and `infos` (omitted when empty, as Prometheus does).
pub fn success(data: &str, warnings: &[String], infos: &[String]) -> String {
    let mut out = String::with_capacity(data.len() + 64);
    out.push_str("{\"status\":\"success\",\"data\":");
    out.push_str(data);
    if !warnings.is_empty() {
        out.push_str(",\"warnings\":");
        write_str_array(&mut out, warnings);
    }
    if !infos.is_empty() {
        out.push_str(",\"infos\":");
        write_str_array(&mut out, infos);
    }
    out.push('}');
    out
}

/// The error envelope: `{"status":"error","errorType":...,"error":...}`.
pub fn error(error_type: &str, msg: &str) -> String {
    let mut out = String::with_capacity(msg.len() + 64);
    out.push_str("{\"status\":\"error\",\"errorType\":");
    write_str(&mut out, error_type);
    out.push_str(",\"error\":");
    write_str(&mut out, msg);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::METRIC_NAME;

    #[test]
    fn timestamps() {
        let f = |t| {
            let mut s = String::new();
            write_timestamp(&mut s, t);
            s
        };
        assert_eq!(f(1_435_781_451_781), "1435781451.781");
        assert_eq!(f(1500), "1.500");
        assert_eq!(f(1005), "1.005");
        assert_eq!(f(1050), "1.050");
        assert_eq!(f(2000), "2");
        assert_eq!(f(0), "0");
        assert_eq!(f(-1500), "-1.500");
        assert_eq!(f(-5), "-0.005");
        assert_eq!(f(1_699_855_192_500), "1699855192.500");
        assert_eq!(f(999), "0.999");
    }

    #[test]
    fn go_json_floats() {
        let f = |v| {
            let mut s = String::new();
            write_go_json_float(&mut s, v);
            s
        };
        assert_eq!(f(300.5), "300.5");
        assert_eq!(f(0.0), "0");
        assert_eq!(f(1e-7), "1e-7");
        assert_eq!(f(1.5e-10), "1.5e-10");
        assert_eq!(f(2e21), "2e+21");
    }

    #[test]
    fn values() {
        for (v, want) in [
            (1.0, "1"),
            (0.1, "0.1"),
            (1e-6, "0.000001"),
            (9e-7, "9e-07"),
            (1e21, "1e+21"),
            (123456789012345680000.0, "123456789012345680000"),
            (-0.0, "-0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(format_value(v), want, "{v:e}");
        }
    }

    /// `write_value` (the allocation-free path) must print exactly what
    /// `format_value` prints.
    ///
    /// One allowed difference: when `v`'s exact binary value lies exactly
    /// halfway between the two shortest candidates, Go's `strconv` (its
    /// `ryuFtoaShortest`) and Ryū round half to even, while `core`'s `{:e}`
    /// (behind `format_value`) rounds up; `write_value` follows Go. Then
    /// both strings have the same length, both parse back to `v`, and they
    /// differ by one in the last digit.
    fn assert_same_value(v: f64) {
        let mut s = String::from("x");
        write_value(&mut s, v);
        let got = &s[1..];
        let want = format_value(v);
        if got == want {
            return;
        }
        let last = |x: &str| x.bytes().last().unwrap_or(b'0') as i32;
        let tie = got.len() == want.len()
            && got[..got.len() - 1] == want[..want.len() - 1]
            && (last(got) - last(&want)).abs() == 1
            && got.parse::<f64>().ok() == Some(v)
            && want.parse::<f64>().ok() == Some(v)
            && (last(got) - i32::from(b'0')) % 2 == 0;
        assert!(tie, "{v:e} ({:#x}): {got} vs {want}", v.to_bits());
    }

    #[test]
    fn ties_round_half_to_even_like_go() {
        // 863141220815768.25 is exact in binary; 16 digits cannot tell .2
        // from .3, Go picks the even digit.
        let mut s = String::new();
        write_value(&mut s, f64::from_bits(0xc308882dcedc9cc2));
        assert_eq!(s, "-863141220815768.2");
    }

    #[test]
    fn write_value_edges() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            1e-6,
            -1e-6,
            f64::from_bits(1e-6f64.to_bits() - 1),
            1e15,
            1e15 - 1.0,
            1e15 + 0.5,
            9007199254740992.0,
            9007199254740993.0,
            1e20,
            1e21,
            -1e21,
            123456789012345680000.0,
            0.48420882733744797,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            assert_same_value(v);
        }
    }

    proptest::proptest! {
        #[test]
        fn write_value_matches_format_value(bits in proptest::prelude::any::<u64>()) {
            assert_same_value(f64::from_bits(bits));
        }

        #[test]
        fn write_value_matches_on_decimals(n in -10_000_000_000i64..10_000_000_000, scale in 0u32..12) {
            assert_same_value(n as f64 / 10f64.powi(scale as i32));
        }

        #[test]
        fn write_value_matches_in_f_range(m in 1.0f64..10.0, e in -7i32..22, neg in proptest::prelude::any::<bool>()) {
            let v = m * 10f64.powi(e);
            assert_same_value(if neg { -v } else { v });
        }

        #[test]
        fn write_value_matches_on_ratios(a in 0u32..1_000_000, b in 1u32..100_000) {
            // Rates and averages: quotients with full-length digit strings.
            assert_same_value(a as f64 / b as f64);
            assert_same_value(a as f64 / b as f64 / 300.0);
        }

        #[test]
        fn write_str_escapes_like_char_loop(s in "\\PC{0,12}|[<>&\"\\\\\u{2028}\u{2029}\u{0}-\u{1f}a-z]{0,12}") {
            // Slow path reference: escape every char.
            let mut want = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => want.push_str("\\\""),
                    '\\' => want.push_str("\\\\"),
                    '\n' => want.push_str("\\n"),
                    '\r' => want.push_str("\\r"),
                    '\t' => want.push_str("\\t"),
                    '<' => want.push_str("\\u003c"),
                    '>' => want.push_str("\\u003e"),
                    '&' => want.push_str("\\u0026"),
                    '\u{2028}' => want.push_str("\\u2028"),
                    '\u{2029}' => want.push_str("\\u2029"),
                    c if (c as u32) < 0x20 => want.push_str(&format!("\\u{:04x}", c as u32)),
                    c => want.push(c),
                }
            }
            want.push('"');
            let mut got = String::new();
            write_str(&mut got, &s);
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn strings_and_labels() {
        let mut s = String::new();
        write_labels(
            &mut s,
            &Labels::from_pairs([(METRIC_NAME, "up"), ("x", "<a&b>\"\\\n\u{1}\u{2028}é")]),
        );
        assert_eq!(
            s,
            r#"{"__name__":"up","x":"\u003ca\u0026b\u003e\"\\\n\u0001\u2028é"}"#
        );
        assert_eq!(
            error("bad_data", "x"),
            r#"{"status":"error","errorType":"bad_data","error":"x"}"#
        );
        assert_eq!(
            success("[]", &["w".into()], &[]),
            r#"{"status":"success","data":[],"warnings":["w"]}"#
        );
    }
}
