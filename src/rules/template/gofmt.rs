//! Go `fmt` formatting for the values templates print: `%v` of a float64
//! (shortest round-trip digits, `%e` form iff the decimal exponent is < -4
//! or >= 6, exponent with a sign and at least two digits), `%g`/`%e`/`%f`
//! with precision (correctly rounded from the exact binary value, exact ties
//! to even, which is what Rust's formatter does too), and the `printf` verb
//! machinery with flags, width, precision and Go's `%!verb(type=value)`
//! error forms.

use super::value::Value;

/// Decimal digits (no leading/trailing zeros) and decimal point position:
/// the value is `0.d1d2d3... × 10^dp`. Only for finite, non-zero `x`.
fn decimal_digits(x: f64, precision: Option<usize>) -> (String, i32) {
    let s = match precision {
        None => format!("{:e}", x.abs()),
        Some(p) => format!("{:.*e}", p.saturating_sub(1), x.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    (digits, exp + 1)
}

/// `%e` layout of `digits`/`dp` with `frac` digits after the point.
fn layout_e(digits: &str, dp: i32, frac: usize, upper: bool) -> String {
    let mut out = String::new();
    let mut it = digits.chars();
    out.push(it.next().unwrap_or('0'));
    if frac > 0 {
        out.push('.');
        let rest: Vec<char> = it.collect();
        for i in 0..frac {
            out.push(*rest.get(i).unwrap_or(&'0'));
        }
    }
    let exp = if digits == "0" { 0 } else { dp - 1 };
    out.push(if upper { 'E' } else { 'e' });
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
    out
}

/// `%f` layout of `digits`/`dp` with `frac` digits after the point.
fn layout_f(digits: &str, dp: i32, frac: usize) -> String {
    let d: Vec<char> = digits.chars().collect();
    let digit = |i: i32| -> char {
        if i >= 0 && (i as usize) < d.len() {
            d[i as usize]
        } else {
            '0'
        }
    };
    let mut out = String::new();
    if dp > 0 {
        for i in 0..dp {
            out.push(digit(i));
        }
    } else {
        out.push('0');
    }
    if frac > 0 {
        out.push('.');
        for i in 0..frac as i32 {
            out.push(digit(dp + i));
        }
    }
    out
}

/// Go `strconv.FormatFloat(x, 'g'|'G', prec, 64)` without the sign of
/// finite values handled by the caller; `prec = None` is the shortest form
/// (used by `%v`).
fn format_g_abs(x: f64, prec: Option<usize>, upper: bool) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    let prec = prec.map(|p| p.max(1));
    let (digits, dp) = decimal_digits(x, prec);
    let nd = digits.len() as i32;
    let shortest = prec.is_none();
    let mut p = prec.map(|p| p as i32).unwrap_or(nd);
    let mut eprec = p;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if shortest {
        eprec = 6;
    }
    let exp = dp - 1;
    if exp < -4 || exp >= eprec {
        if p > nd {
            p = nd;
        }
        return layout_e(&digits, dp, (p - 1).max(0) as usize, upper);
    }
    if p > dp {
        p = nd;
    }
    layout_f(&digits, dp, (p - dp).max(0) as usize)
}

/// Formatting flags of one printf verb.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Flags {
    pub minus: bool,
    pub plus: bool,
    pub space: bool,
    pub zero: bool,
    pub sharp: bool,
    pub width: Option<usize>,
    pub prec: Option<usize>,
}

/// Go `%v` of a float64: `1.2345678e+06`, `0.5`, `NaN`, `+Inf`.
pub(crate) fn format_float_v(x: f64) -> String {
    format_float(x, 'g', &Flags::default())
}

/// Go's float verbs `e E f F g G v` with flags (width padding applied).
pub(crate) fn format_float(x: f64, verb: char, f: &Flags) -> String {
    let body = if x.is_nan() {
        "NaN".to_string()
    } else if x.is_infinite() {
        "Inf".to_string()
    } else {
        let a = x.abs();
        match verb {
            'e' | 'E' => {
                let p = f.prec.unwrap_or(6);
                if a == 0.0 {
                    layout_e("0", 1, p, verb == 'E')
                } else {
                    let (d, dp) = decimal_digits(a, Some(p + 1));
                    layout_e(&d, dp, p, verb == 'E')
                }
            }
            'f' | 'F' => format!("{:.*}", f.prec.unwrap_or(6), a),
            'G' => format_g_abs(a, f.prec, true),
            _ => format_g_abs(a, f.prec, false),
        }
    };
    let neg = x.is_sign_negative() && !x.is_nan();
    let sign = if neg {
        "-"
    } else if x.is_infinite() || f.plus {
        if x.is_nan() && !f.plus { "" } else { "+" }
    } else if f.space {
        " "
    } else {
        ""
    };
    let numeric = x.is_finite();
    pad_number(sign, &body, f, numeric)
}

/// Pads `sign + body` to the width; zero padding goes after the sign.
fn pad_number(sign: &str, body: &str, f: &Flags, zero_ok: bool) -> String {
    let len = sign.chars().count() + body.chars().count();
    match f.width {
        Some(w) if w > len => {
            let fill = w - len;
            if f.minus {
                format!("{sign}{body}{}", " ".repeat(fill))
            } else if f.zero && zero_ok {
                format!("{sign}{}{body}", "0".repeat(fill))
            } else {
                format!("{}{sign}{body}", " ".repeat(fill))
            }
        }
        _ => format!("{sign}{body}"),
    }
}

/// Pads a non-numeric string (`%s`, `%q`, `%t`, `%v` of non-numbers).
fn pad_str(s: &str, f: &Flags) -> String {
    let len = s.chars().count();
    match f.width {
        Some(w) if w > len => {
            let fill = w - len;
            if f.minus {
                format!("{s}{}", " ".repeat(fill))
            } else {
                format!("{}{s}", " ".repeat(fill))
            }
        }
        _ => s.to_string(),
    }
}

/// Go `strconv.Quote`: double-quoted with Go escapes; printable Unicode
/// kept. The PromQL printer quotes strings by the same rules, so both share
/// its implementation.
pub(crate) fn go_quote(s: &str) -> String {
    crate::promql::printer::quote(s)
}

fn format_int(i: i64, verb: char, f: &Flags) -> String {
    let a = i.unsigned_abs();
    let mut body = match verb {
        'x' => format!("{a:x}"),
        'X' => format!("{a:X}"),
        'o' => format!("{a:o}"),
        'b' => format!("{a:b}"),
        'c' => {
            return pad_str(
                &char::from_u32(i as u32).unwrap_or('\u{fffd}').to_string(),
                f,
            );
        }
        'q' => {
            let c = char::from_u32(i as u32).unwrap_or('\u{fffd}');
            return pad_str(&format!("'{c}'"), f);
        }
        _ => a.to_string(),
    };
    if let Some(p) = f.prec {
        while body.len() < p {
            body.insert(0, '0');
        }
        if p == 0 && i == 0 {
            body.clear();
        }
    }
    if f.sharp {
        match verb {
            'x' => body.insert_str(0, "0x"),
            'X' => body.insert_str(0, "0X"),
            'o' => body.insert(0, '0'),
            _ => {}
        }
    }
    let sign = if i < 0 {
        "-"
    } else if f.plus {
        "+"
    } else if f.space {
        " "
    } else {
        ""
    };
    pad_number(sign, &body, f, f.prec.is_none())
}

/// The Go type name printed in `%!verb(type=value)` errors.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Nil => "<nil>",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::Str(_) => "string",
        Value::Map(..) => "map[string]string",
        Value::List(_) => "[]interface {}",
        Value::Sample(_) => "template.sample",
        Value::Data(_) => "template.Data",
    }
}

fn bad_verb(verb: char, v: &Value) -> String {
    match v {
        Value::Nil => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", go_type(v), v.to_go_string()),
    }
}

/// Formats one argument with one verb.
fn format_arg(verb: char, f: &Flags, v: &Value) -> String {
    match (verb, v) {
        ('v', Value::Float(x)) => format_float(*x, 'g', f),
        ('v', Value::Int(i)) => format_int(*i, 'd', f),
        ('v', _) => pad_str(&v.to_go_string(), f),
        ('e' | 'E' | 'f' | 'F' | 'g' | 'G', Value::Float(x)) => format_float(*x, verb, f),
        ('d' | 'x' | 'X' | 'o' | 'b' | 'c' | 'q', Value::Int(i)) => format_int(*i, verb, f),
        ('s', Value::Str(s)) => {
            let s: String = match f.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.to_string(),
            };
            pad_str(&s, f)
        }
        ('q', Value::Str(s)) => pad_str(&go_quote(s), f),
        ('x' | 'X', Value::Str(s)) => {
            let hex: String = s
                .bytes()
                .map(|b| {
                    if verb == 'x' {
                        format!("{b:02x}")
                    } else {
                        format!("{b:02X}")
                    }
                })
                .collect();
            pad_str(&hex, f)
        }
        ('t', Value::Bool(b)) => pad_str(&b.to_string(), f),
        ('s', Value::Map(..) | Value::List(_) | Value::Sample(_) | Value::Data(_)) => {
            pad_str(&v.to_go_string(), f)
        }
        _ => bad_verb(verb, v),
    }
}

/// Go `fmt.Sprintf(format, args...)`, including `%!d(float64=1.5)`,
/// `%!d(MISSING)` and `%!(EXTRA type=value)` forms.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    let mut argi = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let mut f = Flags::default();
        while i < chars.len() {
            match chars[i] {
                '-' => f.minus = true,
                '+' => f.plus = true,
                ' ' => f.space = true,
                '0' => f.zero = true,
                '#' => f.sharp = true,
                _ => break,
            }
            i += 1;
        }
        let mut w = String::new();
        while i < chars.len() && chars[i].is_ascii_digit() {
            w.push(chars[i]);
            i += 1;
        }
        if !w.is_empty() {
            f.width = w.parse().ok();
        }
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            let mut p = String::new();
            while i < chars.len() && chars[i].is_ascii_digit() {
                p.push(chars[i]);
                i += 1;
            }
            f.prec = Some(p.parse().unwrap_or(0));
        }
        let Some(&verb) = chars.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(argi) {
            None => out.push_str(&format!("%!{verb}(MISSING)")),
            Some(v) => out.push_str(&format_arg(verb, &f, v)),
        }
        argi += 1;
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|v| match v {
                Value::Nil => "<nil>".to_string(),
                _ => format!("{}={}", go_type(v), v.to_go_string()),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

/// Go `fmt.Sprint(args...)`: a space between operands when neither is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = matches!(a, Value::Str(_));
        if i > 0 && !is_str && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&a.to_go_string());
    }
    out
}

/// Go `fmt.Sprintln(args...)`: always spaces, trailing newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let parts: Vec<String> = args.iter().map(Value::to_go_string).collect();
    format!("{}\n", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_v_matches_go() {
        for (x, want) in [
            (1234567.8, "1.2345678e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0734, "0.0734"),
            (100000.0, "100000"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.5, "0.5"),
            (95.0, "95"),
            (0.0, "0"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
            (1e-300, "1e-300"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(format_float_v(x), want, "{x}");
        }
    }

    #[test]
    fn printf_verbs_match_go() {
        let f = |s: &str, args: &[Value]| sprintf(s, args);
        assert_eq!(f("%.2f", &[Value::Float(2.345)]), "2.35");
        assert_eq!(f("%.2f", &[Value::Float(1.005)]), "1.00");
        assert_eq!(f("%.1f", &[Value::Float(0.25)]), "0.2");
        assert_eq!(f("%d", &[Value::Float(1.5)]), "%!d(float64=1.5)");
        assert_eq!(f("%d", &[Value::Int(42)]), "42");
        assert_eq!(
            f(
                "%05d|%-4d|%+d",
                &[Value::Int(42), Value::Int(7), Value::Int(3)]
            ),
            "00042|7   |+3"
        );
        assert_eq!(f("%.4g", &[Value::Float(1234567.0)]), "1.235e+06");
        assert_eq!(f("%.4g", &[Value::Float(1.5)]), "1.5");
        assert_eq!(f("%.4g", &[Value::Float(1000.0)]), "1000");
        assert_eq!(f("%g", &[Value::Float(100000.0)]), "100000");
        assert_eq!(f("%e", &[Value::Float(1234.5678)]), "1.234568e+03");
        assert_eq!(f("%.3E", &[Value::Float(0.0)]), "0.000E+00");
        assert_eq!(f("%q", &[Value::Str("a\"b\n".into())]), r#""a\"b\n""#);
        assert_eq!(
            f("%s and %v", &[Value::Str("x".into()), Value::Bool(true)]),
            "x and true"
        );
        assert_eq!(
            f(
                "%8.2f|%-8.2f|",
                &[Value::Float(4.56789), Value::Float(-4.56789)]
            ),
            "    4.57|-4.57   |"
        );
        assert_eq!(
            f("%x %X", &[Value::Int(255), Value::Str("hi".into())]),
            "ff 6869"
        );
        assert_eq!(f("100%%", &[]), "100%");
        assert_eq!(f("%d %d", &[Value::Int(1)]), "1 %!d(MISSING)");
        assert_eq!(
            f("%d", &[Value::Int(1), Value::Float(2.0)]),
            "1%!(EXTRA float64=2)"
        );
        assert_eq!(f("%f", &[Value::Float(f64::INFINITY)]), "+Inf");
        assert_eq!(f("%.1f", &[Value::Float(f64::NAN)]), "NaN");
        assert_eq!(f("%s", &[Value::Float(1.0)]), "%!s(float64=1)");
        assert_eq!(f("%t", &[Value::Bool(false)]), "false");
        assert_eq!(f("%v", &[Value::Nil]), "<nil>");
    }

    #[test]
    fn sprint_spacing_matches_go() {
        assert_eq!(sprint(&[Value::Int(1), Value::Int(2)]), "1 2");
        assert_eq!(sprint(&[Value::Str("a".into()), Value::Int(2)]), "a2");
        assert_eq!(sprintln(&[Value::Str("a".into()), Value::Int(2)]), "a 2\n");
    }
}
