//! The StatsD line grammar (spec `statsd.md` §1–§8): a pure parser, no I/O.
//!
//! [`parse_line`] turns one line (already split out of its datagram by
//! [`lines`]) into a [`Parsed`] value or a [`BadReason`]. Everything it returns
//! borrows from the input bytes except where the wire form has to be rewritten
//! (a SignalFx name with the bracket section cut out, or a tag key that needs
//! escaping), which is then an owned `Cow`. The borrowed data lives as long as
//! the input buffer. [`LineParser`] does the same with one tag buffer reused
//! across lines (what the aggregator uses: no allocation per tagged line).
//!
//! Tags come out in wire order, keys escaped, a repeated key possibly more
//! than once (the last one wins): sorting is left to the consumer, which
//! has to sort the final label set anyway ([`Line::unique_tags`] gives the
//! sorted view). The tag limits (§11) apply to the unique labels.
//!
//! Guarantees:
//! - a bad line yields exactly one [`BadReason`] and nothing else from it is
//!   usable; a good line may still carry tag errors and unknown-field counts;
//! - no input panics (proptest-checked on arbitrary bytes);
//! - [`format_line`] writes a line that parses back to an equal [`Line`] for
//!   names and tag values free of the separator characters `:|#,[]=\n`.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Longest escaped metric name accepted (bytes); longer → `too_long`.
pub const MAX_NAME_LEN: usize = 1024;
/// Longest label value accepted (bytes); longer → `too_long`.
pub const MAX_LABEL_VALUE_LEN: usize = 2048;
/// Most labels a line may carry after parsing; more → `too_many_tags`.
pub const MAX_TAGS: usize = 64;

/// Why a line was dropped: the closed set of spec §11. The `as_str` text is
/// the `reason` label of `statsd_bad_lines_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BadReason {
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// No `:`, empty name, legacy multi-sample mixed with `|#`, bad legacy piece.
    MalformedLine,
    /// No `|` after the value.
    MissingType,
    /// Type not one of `c g ms h d s`.
    UnknownType,
    /// A value does not match the number grammar, is not finite, or is empty.
    MalformedValue,
    /// A `c` value below zero.
    NegativeCounter,
    /// An `ms` value below zero.
    NegativeTimer,
    /// Rate empty, unparsable, below zero or above one.
    InvalidSampleRate,
    /// Name-embedded tags together with a `|#` section.
    MixedTagStyles,
    /// Escaped name or a label value over the length limit.
    TooLong,
    /// More than [`MAX_TAGS`] labels.
    TooManyTags,
}

impl BadReason {
    /// Every reason, in a fixed order (used to index counters).
    pub const ALL: [BadReason; 11] = [
        BadReason::InvalidUtf8,
        BadReason::MalformedLine,
        BadReason::MissingType,
        BadReason::UnknownType,
        BadReason::MalformedValue,
        BadReason::NegativeCounter,
        BadReason::NegativeTimer,
        BadReason::InvalidSampleRate,
        BadReason::MixedTagStyles,
        BadReason::TooLong,
        BadReason::TooManyTags,
    ];

    /// The label value used in `statsd_bad_lines_total{reason}`.
    pub fn as_str(self) -> &'static str {
        match self {
            BadReason::InvalidUtf8 => "invalid_utf8",
            BadReason::MalformedLine => "malformed_line",
            BadReason::MissingType => "missing_type",
            BadReason::UnknownType => "unknown_type",
            BadReason::MalformedValue => "malformed_value",
            BadReason::NegativeCounter => "negative_counter",
            BadReason::NegativeTimer => "negative_timer",
            BadReason::InvalidSampleRate => "invalid_sample_rate",
            BadReason::MixedTagStyles => "mixed_tag_styles",
            BadReason::TooLong => "too_long",
            BadReason::TooManyTags => "too_many_tags",
        }
    }

    /// Position in [`BadReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for BadReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The six StatsD type codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `c`
    Counter,
    /// `g`
    Gauge,
    /// `ms` (milliseconds, observed as seconds)
    Timer,
    /// `h`
    Histogram,
    /// `d`
    Distribution,
    /// `s`
    Set,
}

impl MetricType {
    /// Parses a type code exactly (case-sensitive).
    pub fn from_code(s: &str) -> Option<Self> {
        Some(match s.as_bytes() {
            b"c" => MetricType::Counter,
            b"g" => MetricType::Gauge,
            b"ms" => MetricType::Timer,
            b"h" => MetricType::Histogram,
            b"d" => MetricType::Distribution,
            b"s" => MetricType::Set,
            _ => return None,
        })
    }

    /// The wire code.
    pub fn code(self) -> &'static str {
        match self {
            MetricType::Counter => "c",
            MetricType::Gauge => "g",
            MetricType::Timer => "ms",
            MetricType::Histogram => "h",
            MetricType::Distribution => "d",
            MetricType::Set => "s",
        }
    }

    /// True for the observer types that feed histograms (`ms`, `h`, `d`).
    pub fn is_observer(self) -> bool {
        matches!(
            self,
            MetricType::Timer | MetricType::Histogram | MetricType::Distribution
        )
    }
}

/// One value of a line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// A finite number; `signed` is true when the wire text began with `+`
    /// or `-` (meaningful only for gauges: relative update).
    Number {
        /// The value as written (milliseconds for timers).
        v: f64,
        /// A leading sign was present.
        signed: bool,
    },
    /// A set member, the raw text.
    Member(&'a str),
}

/// One sample: a value with its type and sample rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample<'a> {
    /// Type code.
    pub kind: MetricType,
    /// The value.
    pub value: Value<'a>,
    /// Sample rate in (0, 1]; `@0` is stored as 1.
    pub rate: f64,
}

/// The samples of a line; one sample needs no allocation.
#[derive(Clone, Debug, PartialEq)]
pub enum Samples<'a> {
    /// The common case.
    One(Sample<'a>),
    /// Packed (`a:1:2|c`) or legacy multi-sample (`a:1|c:2|g`) lines.
    Many(Vec<Sample<'a>>),
}

impl<'a> Samples<'a> {
    /// The samples as a slice, in wire order.
    pub fn as_slice(&self) -> &[Sample<'a>] {
        match self {
            Samples::One(s) => std::slice::from_ref(s),
            Samples::Many(v) => v,
        }
    }

    fn push(&mut self, s: Sample<'a>) {
        match self {
            Samples::One(first) => *self = Samples::Many(vec![*first, s]),
            Samples::Many(v) => v.push(s),
        }
    }
}

/// A tag after parsing: key escaped like a label name (§8), value raw.
pub type Tag<'a> = (Cow<'a, str>, &'a str);

/// A parsed metric line.
#[derive(Clone, Debug, PartialEq)]
pub struct Line<'a> {
    /// The raw metric name with name-embedded tags removed (not escaped:
    /// mapping rules match on it; see [`escape_name`]).
    pub name: Cow<'a, str>,
    /// Tags in wire order, keys escaped (§8). A key may repeat: the last
    /// one on the wire wins (see [`Line::unique_tags`]). Sorting and
    /// de-duplication are left to the consumer, which has to sort anyway
    /// once mapping labels are merged in (the aggregator does).
    pub tags: Vec<Tag<'a>>,
    /// Samples in wire order (never empty).
    pub samples: Samples<'a>,
    /// DogStatsD container id (`|c:` field), when present.
    pub container_id: Option<&'a str>,
    /// Tags skipped as malformed (bare, empty key or value, reserved key).
    pub tag_errors: u32,
    /// Extension fields not recognised (ignored).
    pub unknown_fields: u32,
}

/// What one non-empty line is.
#[derive(Clone, Debug, PartialEq)]
pub enum Parsed<'a> {
    /// A metric line.
    Metric(Line<'a>),
    /// A DogStatsD event (`_e{`), ignored.
    Event,
    /// A DogStatsD service check (`_sc|`), ignored.
    ServiceCheck,
}

/// Splits a datagram into lines: on `\n`, one trailing `\r` stripped, empty
/// lines skipped. The slices borrow from `buf`.
pub fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split(|&b| b == b'\n').filter_map(|l| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        (!l.is_empty()).then_some(l)
    })
}

impl<'a> Line<'a> {
    /// The tags sorted by key, each key once with its last value on the
    /// wire.
    pub fn unique_tags(&self) -> Vec<(&str, &'a str)> {
        let mut v: Vec<(&str, &'a str)> = self.tags.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
        sort_unique_last_wins(&mut v);
        v
    }
}

/// Stable sort by key, then of equal keys keep the last one.
fn sort_unique_last_wins<T: Copy>(v: &mut Vec<(&str, T)>) {
    v.sort_by(|a, b| a.0.cmp(b.0));
    v.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            *earlier = *later;
            true
        } else {
            false
        }
    });
}

/// Parses one line (no `\n`; see [`lines`]). Allocates the tag list of a
/// tagged line; [`LineParser`] reuses one instead.
pub fn parse_line(raw: &[u8]) -> Result<Parsed<'_>, BadReason> {
    parse_line_with(raw, &mut Vec::new())
}

/// [`parse_line`] taking the tag list from `spare` (empty; its capacity is
/// reused). A metric line keeps it; for anything else (events, bad lines)
/// it is left in, or put back into, `spare`, cleared.
fn parse_line_with<'a>(raw: &'a [u8], spare: &mut Vec<Tag<'a>>) -> Result<Parsed<'a>, BadReason> {
    let line = std::str::from_utf8(raw).map_err(|_| BadReason::InvalidUtf8)?;
    if line.starts_with("_e{") {
        return Ok(Parsed::Event);
    }
    if line.starts_with("_sc|") {
        return Ok(Parsed::ServiceCheck);
    }
    parse_metric(line, spare).map(Parsed::Metric)
}

/// A parser that keeps one tag buffer across lines, so steady-state
/// parsing allocates nothing per line or per tag (escaped tag keys
/// aside). Hand each parsed line back with [`LineParser::recycle`].
#[derive(Debug, Default)]
pub struct LineParser {
    /// Always empty; only its capacity matters.
    spare: Vec<Tag<'static>>,
}

impl LineParser {
    /// A parser with no buffer yet (the first tagged line allocates it).
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one line like [`parse_line`], filling the kept buffer.
    pub fn parse<'a>(&mut self, raw: &'a [u8]) -> Result<Parsed<'a>, BadReason> {
        let mut tags = relabel(std::mem::take(&mut self.spare));
        let r = parse_line_with(raw, &mut tags);
        // Not taken by a metric line: keep it for the next one.
        if tags.capacity() > 0 {
            self.spare = relabel(tags);
        }
        r
    }

    /// Takes back the tag buffer of a line returned by [`LineParser::parse`].
    pub fn recycle(&mut self, line: Line<'_>) {
        if line.tags.capacity() > self.spare.capacity() {
            self.spare = relabel(line.tags);
        }
    }

    /// Capacity of the kept buffer (for tests).
    pub fn spare_capacity(&self) -> usize {
        self.spare.capacity()
    }
}

/// Empties `v` and gives its allocation another lifetime. The standard
/// library collects a `vec::IntoIter` adapter in place when the element
/// layout is unchanged (it is the same type here), so this reuses the
/// buffer instead of allocating.
// `filter` cannot stand in for `filter_map` here: the item type changes
// (its lifetime), which is the point.
#[allow(clippy::unnecessary_filter_map)]
fn relabel<'b>(mut v: Vec<Tag<'_>>) -> Vec<Tag<'b>> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// Position of the ASCII byte `b` in `s`. A plain loop: the fields it
/// searches are a few bytes long, where a `memchr` call costs more than it
/// saves (measured: +50% instructions on a simple line). The one long span,
/// the tag section, is scanned by [`parse_dog_tags`] itself.
#[inline]
fn find_byte(s: &str, b: u8) -> Option<usize> {
    s.as_bytes().iter().position(|&c| c == b)
}

/// `s.split(b)` for an ASCII separator (every piece is a valid `&str`
/// because an ASCII byte is always a char boundary).
fn split_byte(s: &str, b: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match find_byte(r, b) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// Bytes kept as they are by escaping (§8): `[A-Za-z0-9_]`.
static NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric() || c == b'_';
        i += 1;
    }
    t
};

/// True when escaping leaves `raw` unchanged: only `[A-Za-z0-9_]`, no
/// leading digit.
#[inline]
fn is_plain_name(raw: &str) -> bool {
    let b = raw.as_bytes();
    !b.first().is_some_and(u8::is_ascii_digit) && b.iter().all(|&c| NAME_BYTE[usize::from(c)])
}

fn parse_metric<'a>(line: &'a str, spare: &mut Vec<Tag<'a>>) -> Result<Line<'a>, BadReason> {
    let bytes = line.as_bytes();
    let colon = swar::find(bytes, 0, [b':'; 4]);
    if colon == bytes.len() || colon == 0 {
        return Err(BadReason::MalformedLine);
    }
    // Whether the name part holds any name-embedded tag syntax, so the
    // common case skips §7.2 entirely.
    let embedded_syntax = swar::find(&bytes[..colon], 0, [b'[', b']', b'#', b',']) < colon;
    let name_part = &line[..colon];
    let body = &line[colon + 1..];
    // `F0 | F1 | rest`: no `|` at all is a missing type.
    let p0 = find_byte(body, b'|').ok_or(BadReason::MissingType)?;
    let f0 = &body[..p0];
    let after = &body[p0 + 1..];
    let (f1, fields) = match find_byte(after, b'|') {
        Some(i) => (&after[..i], Some(&after[i + 1..])),
        None => (after, None),
    };

    let mut out = Line {
        name: Cow::Borrowed(name_part),
        tags: std::mem::take(spare),
        samples: Samples::Many(Vec::new()),
        container_id: None,
        tag_errors: 0,
        unknown_fields: 0,
    };
    match fill_metric(&mut out, name_part, body, f0, f1, fields, embedded_syntax) {
        Ok(()) => Ok(out),
        Err(r) => {
            out.tags.clear();
            *spare = out.tags;
            Err(r)
        }
    }
}

/// The rest of [`parse_metric`] once the line is split at its first `:`
/// and its first two `|` fields are known; fills `out`.
fn fill_metric<'a>(
    out: &mut Line<'a>,
    name_part: &'a str,
    body: &'a str,
    f0: &'a str,
    f1: &'a str,
    fields: Option<&'a str>,
    embedded_syntax: bool,
) -> Result<(), BadReason> {
    let mut dog_tags = false;

    if find_byte(f1, b':').is_some() {
        // Legacy etsy multi-sample form (§3.1 step 4).
        if body.contains("|#") {
            return Err(BadReason::MalformedLine);
        }
        let mut samples: Option<Samples<'_>> = None;
        for piece in split_byte(body, b':') {
            let s = parse_legacy_piece(piece)?;
            match &mut samples {
                None => samples = Some(Samples::One(s)),
                Some(all) => all.push(s),
            }
        }
        out.samples = samples.ok_or(BadReason::MalformedLine)?;
    } else {
        let kind = MetricType::from_code(f1).ok_or(BadReason::UnknownType)?;
        let mut rate = 1.0;
        let mut rest = fields;
        while let Some(r) = rest {
            if let Some(t) = r.strip_prefix('#') {
                // The tag section is scanned once: the tag parser stops at
                // the `|` that ends it.
                dog_tags = true;
                let end = 1 + parse_dog_tags(t, out);
                rest = (end < r.len()).then(|| &r[end + 1..]);
                continue;
            }
            let field = match find_byte(r, b'|') {
                Some(i) => {
                    rest = Some(&r[i + 1..]);
                    &r[..i]
                }
                None => {
                    rest = None;
                    r
                }
            };
            if field.is_empty() {
                continue;
            }
            if let Some(r) = field.strip_prefix('@') {
                rate = parse_rate(r)?;
            } else if let Some(c) = field.strip_prefix("c:") {
                out.container_id = Some(c);
            } else if field.starts_with("e:")
                || field.starts_with("card:")
                || field.starts_with('T')
            {
                // Origin detection and timestamps: recognised, ignored (§3.2).
            } else {
                out.unknown_fields += 1;
            }
        }
        out.samples = parse_values(f0, kind, rate)?;
    }

    // Name-embedded tags (§7.2).
    let had_embedded = embedded_syntax && split_embedded_tags(name_part, out)?;
    if had_embedded && dog_tags {
        return Err(BadReason::MixedTagStyles);
    }
    if out.name.is_empty() {
        return Err(BadReason::MalformedLine);
    }
    // Escaping adds at most one byte (the leading `_`), so only long names
    // need the exact count.
    if out.name.len() >= MAX_NAME_LEN && escaped_len(&out.name) > MAX_NAME_LEN {
        return Err(BadReason::TooLong);
    }
    check_tags(&out.tags)
}

fn parse_legacy_piece(piece: &str) -> Result<Sample<'_>, BadReason> {
    let mut parts = split_byte(piece, b'|');
    let value = parts.next().unwrap_or("");
    let code = parts.next().ok_or(BadReason::MalformedLine)?;
    let rate_field = parts.next();
    if parts.next().is_some() {
        return Err(BadReason::MalformedLine);
    }
    let rate = match rate_field {
        None => None,
        Some(r) => Some(r.strip_prefix('@').ok_or(BadReason::MalformedLine)?),
    };
    let kind = MetricType::from_code(code).ok_or(BadReason::UnknownType)?;
    let rate = match rate {
        Some(r) => parse_rate(r)?,
        None => 1.0,
    };
    let value = if kind == MetricType::Set {
        if value.is_empty() {
            return Err(BadReason::MalformedValue);
        }
        Value::Member(value)
    } else {
        let (v, signed) = parse_number(value).ok_or(BadReason::MalformedValue)?;
        check_sign(kind, v)?;
        Value::Number { v, signed }
    };
    Ok(Sample { kind, value, rate })
}

fn parse_values(f0: &str, kind: MetricType, rate: f64) -> Result<Samples<'_>, BadReason> {
    if kind == MetricType::Set {
        if f0.is_empty() {
            return Err(BadReason::MalformedValue);
        }
        return Ok(Samples::One(Sample {
            kind,
            value: Value::Member(f0),
            rate,
        }));
    }
    let mut samples: Option<Samples<'_>> = None;
    for item in split_byte(f0, b':') {
        if item.is_empty() {
            continue;
        }
        let (v, signed) = parse_number(item).ok_or(BadReason::MalformedValue)?;
        check_sign(kind, v)?;
        let s = Sample {
            kind,
            value: Value::Number { v, signed },
            rate,
        };
        match &mut samples {
            None => samples = Some(Samples::One(s)),
            Some(all) => all.push(s),
        }
    }
    samples.ok_or(BadReason::MalformedValue)
}

fn check_sign(kind: MetricType, v: f64) -> Result<(), BadReason> {
    match kind {
        MetricType::Counter if v < 0.0 => Err(BadReason::NegativeCounter),
        MetricType::Timer if v < 0.0 => Err(BadReason::NegativeTimer),
        _ => Ok(()),
    }
}

fn parse_rate(r: &str) -> Result<f64, BadReason> {
    let (v, _) = parse_number(r).ok_or(BadReason::InvalidSampleRate)?;
    if !(0.0..=1.0).contains(&v) {
        return Err(BadReason::InvalidSampleRate);
    }
    Ok(if v == 0.0 { 1.0 } else { v })
}

/// Parses a number per spec §3.3: decimal ASCII, optional sign, optional
/// fraction and exponent, finite. Returns the value and whether a sign was
/// written.
pub fn parse_number(s: &str) -> Option<(f64, bool)> {
    let b = s.as_bytes();
    let signed = matches!(b.first(), Some(b'+' | b'-'));
    let digits = if signed { &b[1..] } else { b };
    // Fast path: plain integers up to 15 digits are exact in f64.
    if !digits.is_empty() && digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit) {
        let mut n: u64 = 0;
        for &d in digits {
            n = n * 10 + u64::from(d - b'0');
        }
        let v = n as f64;
        return Some((if b[0] == b'-' { -v } else { v }, signed));
    }
    if !valid_number_syntax(digits) {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some((v, signed))
}

fn valid_number_syntax(b: &[u8]) -> bool {
    let mut i = 0;
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - s;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    i == b.len()
}

/// DogStatsD tag section starting after its `#`, up to the `|` that ends
/// it or the end of the line; returns the length scanned (the index of
/// that `|`, or `s.len()`). Per tag, a word-at-a-time search finds its end
/// (`,` or `|`) and then its `:` (the first one: a value may hold more).
fn parse_dog_tags<'a>(s: &'a str, out: &mut Line<'a>) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        // A leading `#` per tag is tolerated (PHP client style).
        if b.get(i) == Some(&b'#') {
            i += 1;
        }
        let start = i;
        let end = swar::find(b, start, [b',', b'|', b',', b'|']);
        let colon = swar::find(&b[..end], start, [b':'; 4]);
        if colon < end {
            push_tag(&s[start..colon], &s[colon + 1..end], out);
        } else if end > start {
            // No `:`: a bare tag is an error, an empty one (`a,,b`) is not.
            out.tag_errors += 1;
        }
        i = end;
        if b.get(i) == Some(&b',') {
            i += 1;
        } else {
            return i;
        }
    }
}

/// Word-at-a-time byte search (8 bytes per step, safe code): the short
/// spans of a StatsD line are below the size where a `memchr` call pays
/// for its set-up, and a byte loop costs ~9 instructions per byte.
mod swar {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;

    /// High bit set in each zero byte of `x` (and possibly in bytes above
    /// the first zero byte, from the borrow); the lowest set bit is exact.
    #[inline]
    fn zero_bytes(x: u64) -> u64 {
        x.wrapping_sub(LO) & !x & HI
    }

    /// Index of the first byte at or after `from` equal to one of `set`
    /// (repeat a byte to search for fewer), or `b.len()`.
    #[inline]
    pub(super) fn find(b: &[u8], from: usize, set: [u8; 4]) -> usize {
        let m = set.map(|c| LO * u64::from(c));
        let mut i = from;
        while let Some(chunk) = b.get(i..i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let x = u64::from_le_bytes(w);
            let z = zero_bytes(x ^ m[0])
                | zero_bytes(x ^ m[1])
                | zero_bytes(x ^ m[2])
                | zero_bytes(x ^ m[3]);
            if z != 0 {
                return i + (z.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        while i < b.len() {
            if set.contains(&b[i]) {
                return i;
            }
            i += 1;
        }
        b.len()
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn finds_the_first_match_at_every_offset() {
            let set = [b':', b',', b'|', b'#'];
            for len in 0..40usize {
                for pos in 0..=len {
                    for &c in &set {
                        let mut v = vec![b'a'; len];
                        // Bytes just around the searched ones, and high bytes,
                        // must not match (borrow false positives).
                        for (k, x) in v.iter_mut().enumerate() {
                            *x = [b'a', 0x80, 0xff, b':' + 1, b',' - 1, 0][k % 6];
                        }
                        if pos < len {
                            v[pos] = c;
                            if pos + 1 < len {
                                v[pos + 1] = b'|';
                            }
                        }
                        for from in 0..=pos.min(len) {
                            let want = v[from..]
                                .iter()
                                .position(|x| set.contains(x))
                                .map_or(len, |p| from + p);
                            assert_eq!(super::find(&v, from, set), want, "{v:?} from {from}");
                        }
                    }
                }
            }
        }
    }
}

/// Pushes one tag, escaping its key when needed; a malformed or reserved
/// one is counted as a tag error instead.
#[inline]
fn push_tag<'a>(key: &'a str, value: &'a str, out: &mut Line<'a>) {
    if key.is_empty() || value.is_empty() {
        out.tag_errors += 1;
        return;
    }
    let key = if is_plain_name(key) {
        Cow::Borrowed(key)
    } else {
        let mut s = String::with_capacity(key.len() + 1);
        escape_name_into(key, &mut s);
        Cow::Owned(s)
    };
    if key.starts_with("__") {
        out.tag_errors += 1;
        return;
    }
    out.tags.push((key, value));
}

/// Name-embedded tag styles (§7.2). Returns whether a tag section was found
/// (even if all its pairs were malformed); sets `out.name`.
fn split_embedded_tags<'a>(name: &'a str, out: &mut Line<'a>) -> Result<bool, BadReason> {
    // The caller only calls this when `name` holds one of `[]#,`.
    let open = name.find('[');
    let close = name.find(']');
    match (open, close) {
        (Some(o), Some(c)) if o < c => {
            let mut n = String::with_capacity(name.len());
            n.push_str(&name[..o]);
            n.push_str(&name[c + 1..]);
            out.name = Cow::Owned(n);
            embedded_pairs(&name[o + 1..c], out);
            return Ok(true);
        }
        (None, None) => {}
        _ => {
            // Unbalanced brackets: tag error, name kept, no other style.
            out.tag_errors += 1;
            out.name = Cow::Borrowed(name);
            return Ok(false);
        }
    }
    match name.find(['#', ',']) {
        Some(i) => {
            out.name = Cow::Borrowed(&name[..i]);
            embedded_pairs(&name[i + 1..], out);
            Ok(true)
        }
        None => {
            out.name = Cow::Borrowed(name);
            Ok(false)
        }
    }
}

fn embedded_pairs<'a>(list: &'a str, out: &mut Line<'a>) {
    for pair in split_byte(list, b',') {
        match find_byte(pair, b'=') {
            Some(i) => push_tag(&pair[..i], &pair[i + 1..], out),
            None => out.tag_errors += 1,
        }
    }
}

/// Applies the tag limits (§11) to the labels the line ends up with (each
/// key once). The exact count is only needed near the limits.
fn check_tags(tags: &[Tag<'_>]) -> Result<(), BadReason> {
    let long_value = tags.iter().any(|(_, v)| v.len() > MAX_LABEL_VALUE_LEN);
    if tags.len() <= MAX_TAGS && !long_value {
        return Ok(());
    }
    let mut v: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
    sort_unique_last_wins(&mut v);
    if v.len() > MAX_TAGS {
        return Err(BadReason::TooManyTags);
    }
    if long_value && v.iter().any(|(_, v)| v.len() > MAX_LABEL_VALUE_LEN) {
        return Err(BadReason::TooLong);
    }
    Ok(())
}

/// True when `c` is kept as is by escaping.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Escapes a metric or label name per spec §8: every char outside
/// `[A-Za-z0-9_]` becomes `_` (runs of `-` collapse to one `_`), and a
/// leading digit gets a `_` prefix. Borrowed when nothing changes.
pub fn escape_name(raw: &str) -> Cow<'_, str> {
    if is_plain_name(raw) {
        return Cow::Borrowed(raw);
    }
    let mut s = String::with_capacity(raw.len() + 1);
    escape_name_into(raw, &mut s);
    Cow::Owned(s)
}

/// Appends the escaped form of `raw` (see [`escape_name`]) to `out`.
pub fn escape_name_into(raw: &str, out: &mut String) {
    if raw.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        out.push('_');
    }
    let mut prev_dash = false;
    for c in raw.chars() {
        if c == '-' {
            if !prev_dash {
                out.push('_');
            }
            prev_dash = true;
            continue;
        }
        prev_dash = false;
        out.push(if is_name_char(c) { c } else { '_' });
    }
}

/// Length in bytes of the escaped form of `raw`, without building it.
pub fn escaped_len(raw: &str) -> usize {
    let mut n = usize::from(raw.as_bytes().first().is_some_and(u8::is_ascii_digit));
    let mut prev_dash = false;
    for c in raw.chars() {
        if c == '-' {
            n += usize::from(!prev_dash);
            prev_dash = true;
        } else {
            prev_dash = false;
            n += 1;
        }
    }
    n
}

/// Writes `line` in wire form to `out` (no trailing newline).
///
/// Lines whose samples share one numeric type and rate are written in the
/// DogStatsD packed form with a `|#` tag section; other multi-sample lines
/// use the legacy form with InfluxDB-style name tags (the legacy form forbids
/// `|#`). Round-trips per the module guarantee.
pub fn format_line(line: &Line<'_>, out: &mut String) {
    let samples = line.samples.as_slice();
    let first = samples[0];
    let packable = samples
        .iter()
        .all(|s| s.kind == first.kind && s.rate == first.rate)
        && (first.kind != MetricType::Set || samples.len() == 1);
    out.push_str(&line.name);
    if packable {
        out.push(':');
        for (i, s) in samples.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            write_value(s.value, out);
        }
        out.push('|');
        out.push_str(first.kind.code());
        write_rate(first.rate, out);
        if !line.tags.is_empty() {
            out.push_str("|#");
            for (i, (k, v)) in line.tags.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push(':');
                out.push_str(v);
            }
        }
        if let Some(c) = line.container_id {
            out.push_str("|c:");
            out.push_str(c);
        }
    } else {
        for (k, v) in &line.tags {
            out.push(',');
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        for s in samples {
            out.push(':');
            write_value(s.value, out);
            out.push('|');
            out.push_str(s.kind.code());
            write_rate(s.rate, out);
        }
    }
}

fn write_value(v: Value<'_>, out: &mut String) {
    match v {
        Value::Member(m) => out.push_str(m),
        Value::Number { v, signed } => {
            if signed && v.is_sign_positive() {
                out.push('+');
            }
            // `{}` on f64 is the shortest text that parses back exactly.
            let _ = write!(out, "{v}");
        }
    }
}

fn write_rate(rate: f64, out: &mut String) {
    if rate != 1.0 {
        let _ = write!(out, "|@{rate}");
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
