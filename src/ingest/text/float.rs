//! Go-compatible float formatting (`strconv.FormatFloat(v, fmt, -1, 64)`)
//! for the shortest representation that round-trips. Prometheus prints
//! floats with Go's `strconv`, so printing ours the same way keeps output
//! byte-compatible: the text exposition writer uses `'g'`, and the JSON API
//! (in `http`) uses `'f'` or `'e'` depending on magnitude.
//!
//! Non-finite values print as Go does: `NaN`, `+Inf`, `-Inf`.

/// Shortest round-trip decimal digits of a finite, non-zero `v`:
/// `(negative, digits, dp)` with `|v| = 0.digits × 10^dp` (Go's `decimalSlice`
/// convention). Rust's `{:e}` already yields the shortest digits.
fn shortest(v: f64) -> (bool, Vec<u8>, i32) {
    let s = format!("{:e}", v.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    (v.is_sign_negative(), digits, exp + 1)
}

fn special(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("+Inf")
    } else if v == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

fn write_e(out: &mut String, neg: bool, digits: &[u8], dp: i32) {
    if neg {
        out.push('-');
    }
    out.push(char::from(digits.first().copied().unwrap_or(b'0')));
    if digits.len() > 1 {
        out.push('.');
        out.extend(digits.iter().skip(1).map(|&d| char::from(d)));
    }
    let exp = if digits.is_empty() { 0 } else { dp - 1 };
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    out.push_str(&e.to_string());
}

fn write_f(out: &mut String, neg: bool, digits: &[u8], dp: i32) {
    if neg {
        out.push('-');
    }
    let nd = digits.len() as i32;
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        out.extend(digits.iter().map(|&d| char::from(d)));
    } else if dp >= nd {
        out.extend(digits.iter().map(|&d| char::from(d)));
        for _ in 0..(dp - nd) {
            out.push('0');
        }
    } else {
        let (int, frac) = digits.split_at(dp as usize);
        out.extend(int.iter().map(|&d| char::from(d)));
        out.push('.');
        out.extend(frac.iter().map(|&d| char::from(d)));
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: no exponent, shortest digits.
pub fn format_f(v: f64) -> String {
    if let Some(s) = special(v) {
        return s.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let (neg, digits, dp) = shortest(v);
    let mut out = String::with_capacity(digits.len() + 4);
    write_f(&mut out, neg, &digits, dp);
    out
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: `d.ddde±XX`, at least two
/// exponent digits.
pub fn format_e(v: f64) -> String {
    if let Some(s) = special(v) {
        return s.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0e+00"
        } else {
            "0e+00"
        }
        .to_string();
    }
    let (neg, digits, dp) = shortest(v);
    let mut out = String::with_capacity(digits.len() + 6);
    write_e(&mut out, neg, &digits, dp);
    out
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`: `%e` form when the decimal
/// exponent is below -4 or at least 6 (Go's rule for shortest precision),
/// else `%f` form. This is what Prometheus's text exposition writer emits.
pub fn format_g(v: f64) -> String {
    if let Some(s) = special(v) {
        return s.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let (neg, digits, dp) = shortest(v);
    let exp = dp - 1;
    let mut out = String::with_capacity(digits.len() + 6);
    if !(-4..6).contains(&exp) {
        write_e(&mut out, neg, &digits, dp);
    } else {
        write_f(&mut out, neg, &digits, dp);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_f_format() {
        for (v, want) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (0.1, "0.1"),
            (100.0, "100"),
            (1.5e-7, "0.00000015"),
            (123456789.125, "123456789.125"),
            (1e21, "1000000000000000000000"),
            (-2.5, "-2.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(format_f(v), want, "{v:?}");
        }
    }

    #[test]
    fn go_e_format() {
        for (v, want) in [
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-07"),
            (-1.2345e100, "-1.2345e+100"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ] {
            assert_eq!(format_e(v), want, "{v:?}");
        }
    }

    #[test]
    fn go_g_format() {
        for (v, want) in [
            (1.0, "1"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.5, "0.5"),
            (-3.25, "-3.25"),
        ] {
            assert_eq!(format_g(v), want, "{v:?}");
        }
    }

    #[test]
    fn round_trips() {
        for v in [0.1, 1e-300, std::f64::consts::PI, 1e21, 2.5e-7, 123.456e10] {
            assert_eq!(format_f(v).parse::<f64>().unwrap(), v);
            assert_eq!(format_e(v).parse::<f64>().unwrap(), v);
            assert_eq!(format_g(v).parse::<f64>().unwrap(), v);
        }
    }
}
