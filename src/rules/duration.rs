//! Prometheus duration strings (`1h30m`, `5m`, `0s`, `90s`, `1w`, `1y`):
//! one or more `<integer><unit>` terms, units `y w d h m s ms` in that
//! order, each at most once; a bare `0` is allowed. Values are milliseconds.

/// A duration string that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid duration string: {0:?}")]
pub struct DurationError(pub String);

/// Parses a Prometheus duration into milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<i64, DurationError> {
    let bad = || DurationError(s.to_string());
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad());
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let b = s.as_bytes();
    let mut i = 0;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        let n: i64 = s[start..i].parse().map_err(|_| bad())?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let Some(k) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(bad());
        };
        if k < next_unit {
            return Err(bad());
        }
        next_unit = k + 1;
        total = n
            .checked_mul(UNITS[k].1)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// Formats milliseconds the way Prometheus prints durations (`1h30m`,
/// `5m`, `0s`, `1d`, `1w`, `1y`, `1500ms`).
pub fn format_duration_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    if rest < 0 {
        out.push('-');
        rest = -rest;
    }
    let units: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    for (u, size) in units {
        if rest >= size {
            out.push_str(&format!("{}{u}", rest / size));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        for (s, ms) in [
            ("0", 0),
            ("0s", 0),
            ("0m", 0),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("90s", 90_000),
            ("1d", 86_400_000),
            ("1w", 604_800_000),
            ("1y", 31_536_000_000),
            ("1s500ms", 1_500),
        ] {
            assert_eq!(parse_duration_ms(s), Ok(ms), "{s}");
        }
        for s in ["", "5", "1.5m", "30m1h", "5mm", "-5m", "m", "1h 30m", "5M"] {
            assert!(parse_duration_ms(s).is_err(), "{s}");
        }
    }

    #[test]
    fn formats_like_prometheus() {
        assert_eq!(format_duration_ms(0), "0s");
        assert_eq!(format_duration_ms(5_400_000), "1h30m");
        assert_eq!(format_duration_ms(300_000), "5m");
        assert_eq!(format_duration_ms(1_500), "1s500ms");
    }
}
