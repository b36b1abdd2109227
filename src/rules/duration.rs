//! Prometheus duration strings (`1h30m`, `5m`, `0s`, `90s`, `1w`, `1y`):
//! one or more `<integer><unit>` terms, units `y w d h m s ms` in that
//! order, each at most once; a bare `0` is allowed. Values are milliseconds.

/// A duration string that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid duration string: {0:?}")]
pub struct DurationError(pub String);

/// Parses a Prometheus duration into milliseconds (the PromQL lexer's
/// grammar, so rule files and queries accept exactly the same strings).
pub fn parse_duration_ms(s: &str) -> Result<i64, DurationError> {
    crate::promql::lexer::parse_duration_ms(s).ok_or_else(|| DurationError(s.to_string()))
}

/// Formats milliseconds the way Prometheus prints durations (`1h30m`,
/// `5m`, `0s`, `1d`, `1w`, `1y`, `1500ms`; years and weeks only when they
/// divide the value exactly, like Prometheus's `model.Duration`).
pub fn format_duration_ms(ms: i64) -> String {
    crate::promql::printer::format_duration(ms)
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
        // Weeks only when exact, as Prometheus's model.Duration prints.
        assert_eq!(format_duration_ms(8 * 86_400_000), "8d");
        assert_eq!(format_duration_ms(14 * 86_400_000), "2w");
    }
}
