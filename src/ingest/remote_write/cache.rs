//! A cross-request cache from a series' raw label bytes to its validated
//! [`Labels`].
//!
//! Remote write senders resend the same series every scrape interval, byte
//! for byte. Keying on the encoded label messages lets a repeat skip UTF-8
//! checks, validation, sorting and string allocation: a hit costs one hash,
//! one compare and an `Arc` clone. Entries are only inserted after full
//! validation, so a hit is exactly as valid as a fresh decode (the decode
//! limits are fixed per cache owner: use one cache per [`super::DecodeLimits`]).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::Labels;

use super::batch::SeriesHint;

/// A small, fast, non-cryptographic hasher (the Fx multiply-rotate scheme).
/// Keys come from untrusted senders, but a collision only costs a byte
/// compare inside the map and each shard is bounded, so hash flooding can
/// slow the cache, not break it.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.add(u64::from_le_bytes(a));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut a = [0u8; 8];
            a[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(a) ^ ((rest.len() as u64) << 59));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

const SHARDS: usize = 16;

/// A cached series: its validated labels and the slot remembering the
/// storage's ref for them.
pub(crate) type Cached = (Arc<Labels>, SeriesHint);

type Shard = Mutex<HashMap<Box<[u8]>, Cached, FxBuild>>;

/// Validated label sets by raw label bytes, sharded to keep concurrent
/// requests from contending on one lock. Bounded: a full shard is cleared
/// (the next requests repopulate it), so memory stays under
/// `max_series` entries.
#[derive(Debug)]
pub struct SeriesCache {
    shards: Vec<Shard>,
    max_per_shard: usize,
}

impl SeriesCache {
    /// A cache of at most `max_series` label sets. 200,000 (the default)
    /// costs roughly 60-100 MB with typical 8-label series.
    pub fn new(max_series: usize) -> Self {
        SeriesCache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
            max_per_shard: max_series.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: &[u8]) -> &Shard {
        &self.shards[self.shard_index(key)]
    }

    fn shard_index(&self, key: &[u8]) -> usize {
        let mut h = FxHasher::default();
        h.write(key);
        // Middle bits: the maps take bucket indexes from the low bits and
        // control bytes from the top 7 bits of their own (similar) hash of
        // the key, so the shard choice stays independent of both.
        (h.finish() >> 32) as usize % SHARDS
    }

    /// Looks up every key of a request, taking each shard's lock once
    /// (instead of once per series) and probing its keys in one tight loop,
    /// which lets the CPU overlap their cache misses.
    pub(crate) fn get_many(&self, keys: &[&[u8]]) -> Vec<Option<Cached>> {
        let mut out = vec![None; keys.len()];
        let mut by_shard: Vec<Vec<u32>> = vec![Vec::new(); SHARDS];
        for (i, k) in keys.iter().enumerate() {
            by_shard[self.shard_index(k)].push(i as u32);
        }
        for (shard, idx) in self.shards.iter().zip(&by_shard) {
            if idx.is_empty() {
                continue;
            }
            let m = shard.lock();
            for &i in idx {
                out[i as usize] = m.get(keys[i as usize]).cloned();
            }
        }
        out
    }

    /// Caches validated labels; returns the new entry's hint slot.
    pub(crate) fn insert(&self, key: &[u8], labels: &Arc<Labels>) -> SeriesHint {
        let hint = SeriesHint::new();
        let mut m = self.shard(key).lock();
        if m.len() >= self.max_per_shard {
            m.clear();
        }
        m.insert(key.into(), (labels.clone(), hint.clone()));
        hint
    }

    /// Number of cached label sets.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for SeriesCache {
    fn default() -> Self {
        SeriesCache::new(200_000)
    }
}
