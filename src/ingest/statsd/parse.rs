//! The StatsD line grammar (spec `statsd.md` §1–§8): a pure parser, no I/O.
//!
//! [`parse_line`] turns one line (already split out of its datagram by
//! [`lines`]) into a [`Parsed`] value or a [`BadReason`]. Everything it returns
//! borrows from the input bytes except where the wire form has to be rewritten
//! (a SignalFx name with the bracket section cut out, or a tag key that needs
//! escaping), which is then an owned `Cow`. The borrowed data lives as long as
//! the input buffer.
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

/// Byte classes for the single-pass scans (one table load per byte).
/// Kept as they are by escaping (§8): `[A-Za-z0-9_]`.
const NAME: u8 = 1;
/// Ends a DogStatsD tag key: `:` `,` `|`.
const KEY_END: u8 = 2;
/// Ends a DogStatsD tag value: `,` `|`.
const VALUE_END: u8 = 4;
/// May start name-embedded tags (§7.2): `[` `]` `#` `,`.
const EMBED: u8 = 8;
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        if c.is_ascii_alphanumeric() || c == b'_' {
            t[i] |= NAME;
        }
        if matches!(c, b':' | b',' | b'|') {
            t[i] |= KEY_END;
        }
        if matches!(c, b',' | b'|') {
            t[i] |= VALUE_END;
        }
        if matches!(c, b'[' | b']' | b'#' | b',') {
            t[i] |= EMBED;
        }
        i += 1;
    }
    t
};

#[inline]
fn class(c: u8) -> u8 {
    CLASS[usize::from(c)]
}

/// True when escaping leaves `raw` unchanged: only `[A-Za-z0-9_]`, no
/// leading digit.
#[inline]
fn is_plain_name(raw: &str) -> bool {
    let b = raw.as_bytes();
    !b.first().is_some_and(u8::is_ascii_digit) && b.iter().all(|&c| class(c) & NAME != 0)
}

fn parse_metric<'a>(line: &'a str, spare: &mut Vec<Tag<'a>>) -> Result<Line<'a>, BadReason> {
    // One pass over the name part: where it ends, and whether it holds any
    // name-embedded tag syntax (so the common case skips §7.2 entirely).
    let bytes = line.as_bytes();
    let mut colon = None;
    let mut embedded_syntax = false;
    for (i, &c) in bytes.iter().enumerate() {
        if c == b':' {
            colon = Some(i);
            break;
        }
        embedded_syntax |= class(c) & EMBED != 0;
    }
    let colon = colon.ok_or(BadReason::MalformedLine)?;
    if colon == 0 {
        return Err(BadReason::MalformedLine);
    }
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
/// that `|`, or `s.len()`). One pass, one table load per byte: a key runs
/// to `:` (or `,`/`|`: a bare tag) and is checked for escaping on the way,
/// a value runs to `,`/`|` (so it may hold `:`).
fn parse_dog_tags<'a>(s: &'a str, out: &mut Line<'a>) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        // A leading `#` per tag is tolerated (PHP client style).
        if b.get(i) == Some(&b'#') {
            i += 1;
        }
        let start = i;
        let mut plain = true;
        while i < b.len() && class(b[i]) & KEY_END == 0 {
            plain &= class(b[i]) & NAME != 0;
            i += 1;
        }
        let key_end = i;
        if b.get(i) == Some(&b':') {
            i += 1;
            let v_start = i;
            while i < b.len() && class(b[i]) & VALUE_END == 0 {
                i += 1;
            }
            plain &= !b[start].is_ascii_digit() || key_end == start;
            push_tag_checked(&s[start..key_end], plain, &s[v_start..i], out);
        } else if key_end > start {
            // No `:`: a bare tag is an error, an empty one (`a,,b`) is not.
            out.tag_errors += 1;
        }
        if b.get(i) == Some(&b',') {
            i += 1;
        } else {
            return i;
        }
    }
}

fn push_tag<'a>(key: &'a str, value: &'a str, out: &mut Line<'a>) {
    push_tag_checked(key, is_plain_name(key), value, out);
}

/// Pushes one tag (`plain`: the key needs no escaping), escaping its key
/// otherwise; a malformed or reserved one is counted as a tag error instead.
#[inline]
fn push_tag_checked<'a>(key: &'a str, plain: bool, value: &'a str, out: &mut Line<'a>) {
    if key.is_empty() || value.is_empty() {
        out.tag_errors += 1;
        return;
    }
    let key = if plain {
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
mod tests {
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
}
