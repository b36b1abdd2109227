//! One compressed time column of a head series: closed XOR chunks, the
//! open chunk being appended to, and a small sorted buffer of out-of-order
//! samples that is merged into the chunks when it grows.

use crate::storage::chunk::{
    MAX_CHUNK_SPAN_MS, MAX_SAMPLES_PER_CHUNK, XorAppender, XorIter, decode_range_into,
};

/// Out-of-order samples buffered per column before they are merged into the
/// chunks. Out-of-order data is rare (late StatsD flushes, pushes from
/// several hosts), so a small plain buffer keeps the common in-order path
/// free of any cost while bounding the uncompressed memory.
const OOO_FLUSH_LEN: usize = 32;

/// An immutable chunk with its time bounds (ms, inclusive).
#[derive(Debug, Clone)]
struct ClosedChunk {
    min_t: i64,
    max_t: i64,
    bytes: Box<[u8]>,
}

/// How [`Column::append`] placed a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placed {
    /// After every existing sample.
    InOrder,
    /// Before the last sample (or replacing one): kept in the out-of-order buffer.
    OutOfOrder,
    /// Identical to the last sample (same time, same value bits): nothing done.
    Duplicate,
}

/// A time column (see the module docs).
#[derive(Debug, Clone, Default)]
pub(crate) struct Column {
    closed: Vec<ClosedChunk>,
    open: Option<XorAppender>,
    ooo: Vec<(i64, f64)>,
}

impl Column {
    /// Last in-order sample (time, value).
    pub(crate) fn last(&self) -> Option<(i64, f64)> {
        match &self.open {
            Some(a) if a.count() > 0 => Some((a.max_t(), a.last_value())),
            _ => None,
        }
    }

    /// True when the column holds no sample.
    pub(crate) fn is_empty(&self) -> bool {
        self.closed.is_empty() && self.last().is_none() && self.ooo.is_empty()
    }

    /// Earliest timestamp held.
    pub(crate) fn min_t(&self) -> Option<i64> {
        let c = self.closed.first().map(|c| c.min_t).or_else(|| {
            self.open
                .as_ref()
                .filter(|a| a.count() > 0)
                .map(|a| a.min_t())
        });
        let o = self.ooo.first().map(|s| s.0);
        match (c, o) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Latest timestamp held.
    pub(crate) fn max_t(&self) -> Option<i64> {
        let c = self
            .last()
            .map(|s| s.0)
            .or_else(|| self.closed.last().map(|c| c.max_t));
        let o = self.ooo.last().map(|s| s.0);
        match (c, o) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The out-of-order buffer's value at `t`, if any.
    pub(crate) fn ooo_value_at(&self, t: i64) -> Option<f64> {
        self.ooo
            .binary_search_by_key(&t, |s| s.0)
            .ok()
            .and_then(|i| self.ooo.get(i))
            .map(|s| s.1)
    }

    /// Adds a sample. A later sample at a time already present replaces
    /// the earlier value (deterministically, so WAL replay rebuilds the
    /// same state).
    #[inline]
    pub(crate) fn append(&mut self, t: i64, v: f64) -> Placed {
        // Fast path (nearly every sample): later than the open chunk's last
        // sample and the chunk has room.
        if let Some(a) = &mut self.open
            && a.count() > 0
            && t > a.max_t()
            && a.count() < MAX_SAMPLES_PER_CHUNK
            && t.saturating_sub(a.min_t()) < MAX_CHUNK_SPAN_MS
        {
            a.append(t, v);
            return Placed::InOrder;
        }
        self.append_slow(t, v)
    }

    /// [`Column::append`] for everything but an in-order sample fitting
    /// the open chunk.
    fn append_slow(&mut self, t: i64, v: f64) -> Placed {
        match self.last() {
            Some((lt, lv)) if t < lt || (t == lt && lv.to_bits() != v.to_bits()) => {
                match self.ooo.binary_search_by_key(&t, |s| s.0) {
                    Ok(i) => self.ooo[i].1 = v,
                    Err(i) => self.ooo.insert(i, (t, v)),
                }
                if self.ooo.len() >= OOO_FLUSH_LEN {
                    self.flush_ooo();
                }
                Placed::OutOfOrder
            }
            Some((lt, _)) if t == lt => {
                // Same bits as the last in-order sample; an out-of-order
                // replacement of it written meanwhile must give way.
                match self.ooo.binary_search_by_key(&t, |s| s.0) {
                    Ok(i) => {
                        self.ooo.remove(i);
                        Placed::OutOfOrder
                    }
                    Err(_) => Placed::Duplicate,
                }
            }
            _ => {
                self.append_in_order(t, v);
                Placed::InOrder
            }
        }
    }

    fn append_in_order(&mut self, t: i64, v: f64) {
        let full = self.open.as_ref().is_some_and(|a| {
            a.count() >= MAX_SAMPLES_PER_CHUNK || t.saturating_sub(a.min_t()) >= MAX_CHUNK_SPAN_MS
        });
        if full {
            self.close_open();
        }
        self.open.get_or_insert_with(XorAppender::new).append(t, v);
    }

    fn close_open(&mut self) {
        if let Some(a) = self.open.take().filter(|a| a.count() > 0) {
            self.closed.push(ClosedChunk {
                min_t: a.min_t(),
                max_t: a.max_t(),
                bytes: a.into_bytes(),
            });
        }
    }

    /// Merges the out-of-order buffer into the chunks: every chunk from the
    /// first one reaching the buffer's earliest time is decoded, merged and
    /// re-encoded (usually just the open chunk and perhaps the one before).
    pub(crate) fn flush_ooo(&mut self) {
        if self.ooo.is_empty() {
            return;
        }
        let from = self.ooo.first().map_or(i64::MIN, |s| s.0);
        let keep = self.closed.iter().take_while(|c| c.max_t < from).count();
        let mut old: Vec<(i64, f64)> = Vec::new();
        for c in self.closed.drain(keep..) {
            old.extend(XorIter::new(&c.bytes));
        }
        if let Some(a) = self.open.take() {
            old.extend(XorIter::new(a.bytes()));
        }
        let ooo = std::mem::take(&mut self.ooo);
        for (t, v) in merge_sorted(&old, &ooo) {
            self.append_in_order(t, v);
        }
    }

    /// Appends the samples in `[min_t, max_t]` in time order to `ts`/`vs`
    /// (out-of-order values win over chunk values at equal times).
    pub(crate) fn collect(&self, min_t: i64, max_t: i64, ts: &mut Vec<i64>, vs: &mut Vec<f64>) {
        if self.ooo.is_empty() {
            // Common case: decode straight into the caller's columns.
            self.collect_chunks(min_t, max_t, ts, vs);
            return;
        }
        let (mut mts, mut mvs) = (Vec::new(), Vec::new());
        self.collect_chunks(min_t, max_t, &mut mts, &mut mvs);
        let main: Vec<(i64, f64)> = mts.into_iter().zip(mvs).collect();
        let ooo: Vec<(i64, f64)> = self
            .ooo
            .iter()
            .copied()
            .filter(|s| s.0 >= min_t && s.0 <= max_t)
            .collect();
        let merged = merge_sorted(&main, &ooo);
        ts.reserve(merged.len());
        vs.reserve(merged.len());
        for (t, v) in merged {
            ts.push(t);
            vs.push(v);
        }
    }

    /// Appends the chunk samples (not the out-of-order buffer) in
    /// `[min_t, max_t]` to `ts`/`vs`. Only chunks whose bounds meet the
    /// range are decoded, each up to its first sample past `max_t`.
    fn collect_chunks(&self, min_t: i64, max_t: i64, ts: &mut Vec<i64>, vs: &mut Vec<f64>) {
        let open = self
            .open
            .as_ref()
            .filter(|a| a.count() > 0 && a.max_t() >= min_t && a.min_t() <= max_t)
            .map(XorAppender::bytes);
        let chunks = self
            .closed
            .iter()
            .filter(|c| c.max_t >= min_t && c.min_t <= max_t)
            .map(|c| &c.bytes[..])
            .chain(open);
        // Size the columns once: every chunk header holds its sample count.
        let n: usize = chunks
            .clone()
            .map(|b| match b {
                [lo, hi, ..] => usize::from(u16::from_le_bytes([*lo, *hi])),
                _ => 0,
            })
            .sum();
        ts.reserve(n);
        vs.reserve(n);
        for bytes in chunks {
            // Head chunks are made in memory by `XorAppender`, so a decoding
            // error is a bug; the samples before it are still returned.
            if let Err(e) = decode_range_into(bytes, min_t, max_t, ts, vs) {
                tracing::error!(error = %e, "undecodable head chunk");
            }
        }
    }

    /// True when some sample lies in `[min_t, max_t]` (chunk bounds are
    /// used, so a chunk spanning the range with a gap counts as a hit).
    pub(crate) fn overlaps(&self, min_t: i64, max_t: i64) -> bool {
        match (self.min_t(), self.max_t()) {
            (Some(a), Some(b)) => a <= max_t && b >= min_t,
            _ => false,
        }
    }

    /// Drops every sample before `t`.
    pub(crate) fn truncate_before(&mut self, t: i64) {
        if self.min_t().is_none_or(|m| m >= t) {
            return;
        }
        self.ooo.retain(|s| s.0 >= t);
        self.closed.retain(|c| c.max_t >= t);
        let straddles = self.closed.first().is_some_and(|c| c.min_t < t)
            || (self.closed.is_empty()
                && self
                    .open
                    .as_ref()
                    .is_some_and(|a| a.count() > 0 && a.min_t() < t));
        if straddles {
            // Re-encode the chunks from the straddling one on, without the
            // samples before `t`.
            let mut keep: Vec<(i64, f64)> = Vec::new();
            for c in self.closed.drain(..) {
                keep.extend(XorIter::new(&c.bytes).filter(|s| s.0 >= t));
            }
            if let Some(a) = self.open.take() {
                keep.extend(XorIter::new(a.bytes()).filter(|s| s.0 >= t));
            }
            for (t, v) in keep {
                self.append_in_order(t, v);
            }
        }
    }

    /// Approximate heap bytes used (for memory statistics).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.closed
            .iter()
            .map(|c| c.bytes.len() + std::mem::size_of::<ClosedChunk>())
            .sum::<usize>()
            + self.open.as_ref().map_or(0, |a| a.bytes().len())
            + self.ooo.capacity() * 16
    }
}

/// Merges two time-sorted sample lists; at equal times `b` wins.
fn merge_sorted(a: &[(i64, f64)], b: &[(i64, f64)]) -> Vec<(i64, f64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 < y.0 => {
                out.push(*x);
                i += 1;
            }
            (Some(x), Some(y)) if x.0 == y.0 => {
                out.push(*y);
                i += 1;
                j += 1;
            }
            (_, Some(y)) => {
                out.push(*y);
                j += 1;
            }
            (Some(x), None) => {
                out.push(*x);
                i += 1;
            }
            (None, None) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(c: &Column) -> Vec<(i64, f64)> {
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        c.collect(i64::MIN, i64::MAX, &mut ts, &mut vs);
        ts.into_iter().zip(vs).collect()
    }

    proptest! {
        /// Any arrival order gives the same column as a sorted map with
        /// last-write-wins, before and after out-of-order flushes and
        /// truncation.
        #[test]
        fn column_matches_model(samples in proptest::collection::vec((0i64..2000, -5i64..5), 0..400), cut in 0i64..2000) {
            let mut c = Column::default();
            let mut model = std::collections::BTreeMap::new();
            for &(t, v) in &samples {
                let t = t * 1000;
                c.append(t, v as f64);
                model.insert(t, v as f64);
            }
            let want: Vec<(i64, f64)> = model.iter().map(|(a, b)| (*a, *b)).collect();
            prop_assert_eq!(all(&c), want.clone());
            c.flush_ooo();
            prop_assert_eq!(all(&c), want.clone());
            let cut = cut * 1000;
            c.truncate_before(cut);
            let want: Vec<(i64, f64)> = want.into_iter().filter(|s| s.0 >= cut).collect();
            prop_assert_eq!(all(&c), want.clone());
            prop_assert_eq!(c.min_t(), want.first().map(|s| s.0));
            prop_assert_eq!(c.max_t(), want.last().map(|s| s.0));
        }
    }

    #[test]
    fn in_order_chunks_are_cut_at_120_samples() {
        let mut c = Column::default();
        for i in 0..250 {
            assert_eq!(c.append(i * 15_000, i as f64), Placed::InOrder);
        }
        assert_eq!(c.closed.len(), 2);
        assert_eq!(c.append(249 * 15_000, 249.0), Placed::Duplicate);
        assert_eq!(c.append(15_000, 7.0), Placed::OutOfOrder);
        let got = all(&c);
        assert_eq!(got.len(), 250);
        assert_eq!(got[1], (15_000, 7.0));
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        c.collect(30_000, 45_000, &mut ts, &mut vs);
        assert_eq!(ts, vec![30_000, 45_000]);
    }
}
