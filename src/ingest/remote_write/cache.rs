//! A cross-request cache from a series' raw label bytes to its validated
//! [`Labels`].
//!
//! Remote write senders resend the same series every scrape interval, byte
//! for byte. Keying on the encoded label messages lets a repeat skip UTF-8
//! checks, validation, sorting and string allocation: a hit costs one hash,
//! one probe, one compare of the key bytes and two `Arc` clones (the labels
//! and the storage's series ref, kept in the entry). Entries are only inserted after full
//! validation, so a hit is exactly as valid as a fresh decode (the decode
//! limits are fixed per cache owner: use one cache per [`super::DecodeLimits`]).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::Labels;

use super::batch::{Batch, SeriesHint};
use crate::storage::SeriesRef;

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

/// An odd 64-bit constant with well-spread bits (the golden ratio), for
/// [`PassHasher`]'s fallback.
const K0: u64 = 0x9e37_79b9_7f4a_7c15;

/// The cache's hash of a key ([`SeriesCache::hash`]), computed once per key
/// and used both to pick the shard and as the map key (the maps do not hash
/// again): foldhash's quality variant, seeded at random per cache. Chosen
/// for speed on the ~100-200 byte keys of remote write series (it folds
/// 16 bytes per 128-bit multiply; the hand-written multiply-rotate hash it
/// replaced cost three times the instructions) and because hashbrown
/// already depends on it. Not collision resistant: a collision only turns
/// a hit into a miss (the key bytes are compared), and the random seed
/// keeps senders from aiming at one.
type KeyHasher = foldhash::quality::RandomState;

/// A hasher for keys that already are [`SeriesCache::hash`] values.
#[derive(Default, Clone, Copy)]
pub(crate) struct PassHasher(u64);

impl Hasher for PassHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed with this hasher; fold anything else so
        // it still works.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(K0);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

const SHARDS: usize = 16;

/// A cached series: its validated labels and its hint (the storage ref
/// last learned for them, and the entry to teach a new one).
pub(crate) type Cached = (Arc<Labels>, SeriesHint);

/// One cache entry: where its key bytes are in the shard's key arena
/// (compared on every hit: the hash alone is not trusted), the validated
/// labels, and the storage's ref for them once [`SeriesCache::learn`] was
/// told it. The ref sits in the entry itself, so a hit reads no other cache
/// memory.
struct Entry {
    key_at: usize,
    key_len: usize,
    labels: Arc<Labels>,
    current: Option<SeriesRef>,
    /// The entry (an [`EntryId`]) of the series that followed this one in
    /// the last request that had it: senders resend their series in much
    /// the same order, so this predicts the next series of a request
    /// without hashing its key. A hint: a prediction is checked by
    /// comparing key bytes.
    next: EntryId,
}

/// A cache entry's position: its shard in the top 4 bits, its index in the
/// shard below. It stays valid until the shard is cleared (then it points
/// at another entry or none: predictions are always checked).
pub(crate) type EntryId = u32;

const ID_SHIFT: u32 = 28;
const NO_ENTRY: EntryId = EntryId::MAX;

/// A locked cache entry (its shard's lock is held).
pub(crate) struct EntryGuard<'c> {
    shard: parking_lot::MutexGuard<'c, ShardData>,
    at: usize,
    id: EntryId,
}

impl EntryGuard<'_> {
    /// The entry's key bytes.
    pub(crate) fn key(&self) -> &[u8] {
        self.shard.key(&self.shard.entries[self.at])
    }

    /// The entry's id.
    pub(crate) fn id(&self) -> EntryId {
        self.id
    }

    /// The entry predicted to follow this one.
    pub(crate) fn next(&self) -> Option<EntryId> {
        Some(self.shard.entries[self.at].next).filter(|&n| n != NO_ENTRY)
    }

    /// The validated labels and the storage ref (which the caller may
    /// replace).
    pub(crate) fn parts(&mut self) -> (&Arc<Labels>, &mut Option<SeriesRef>) {
        let e = &mut self.shard.entries[self.at];
        (&e.labels, &mut e.current)
    }
}

/// One shard. Entries and their key bytes are kept in insertion order, in
/// two dense vectors, and found through a small index (hash -> position).
/// Senders resend their series in much the same order every interval, so a
/// request's lookups walk both vectors mostly forwards, which the CPU's
/// prefetcher follows; the index's 16-byte buckets stay cache-resident far
/// better than buckets holding whole entries.
#[derive(Default)]
struct ShardData {
    index: HashMap<u64, u32, BuildHasherDefault<PassHasher>>,
    entries: Vec<Entry>,
    keys: Vec<u8>,
    /// Key bytes of replaced entries still in `keys`.
    dead_bytes: usize,
}

impl ShardData {
    fn key(&self, e: &Entry) -> &[u8] {
        &self.keys[e.key_at..e.key_at + e.key_len]
    }

    fn get(&self, h: u64) -> Option<&Entry> {
        self.index.get(&h).map(|&i| &self.entries[i as usize])
    }

    /// Sets entry `at`'s storage ref if the entry still holds `labels`
    /// (it may have been replaced since they were looked up).
    fn learn_at(&mut self, at: usize, labels: &Arc<Labels>, r: SeriesRef) {
        let e = &mut self.entries[at];
        if Arc::ptr_eq(&e.labels, labels) {
            e.current = Some(r);
        }
    }

    fn clear(&mut self) {
        self.index.clear();
        self.entries.clear();
        self.keys.clear();
        self.dead_bytes = 0;
    }

    /// Stores `key` under hash `h`, replacing an entry with the same hash.
    /// A full shard (`max` entries, or as many dead key bytes as live ones
    /// after replacements) is cleared first.
    fn put(&mut self, h: u64, key: &[u8], labels: &Arc<Labels>, max: usize) {
        if self.entries.len() >= max || self.dead_bytes > (self.keys.len() / 2).max(1 << 16) {
            self.clear();
        }
        let e = Entry {
            key_at: self.keys.len(),
            key_len: key.len(),
            labels: labels.clone(),
            current: None,
            next: NO_ENTRY,
        };
        self.keys.extend_from_slice(key);
        match self.index.get(&h) {
            Some(&i) => {
                let old = std::mem::replace(&mut self.entries[i as usize], e);
                self.dead_bytes += old.key_len;
            }
            None => {
                self.index.insert(h, self.entries.len() as u32);
                self.entries.push(e);
            }
        }
    }
}

type Shard = Mutex<ShardData>;

/// Validated label sets by raw label bytes, sharded to keep concurrent
/// requests from contending on one lock. Bounded: a full shard is cleared
/// (the next requests repopulate it), so memory stays under
/// `max_series` entries.
///
/// Each key is hashed once (foldhash, seeded per cache); the shards are
/// indexed by that hash, so a lookup costs the hash, one probe and one
/// compare of the key bytes. Two keys with the same hash cannot both be
/// cached: the later replaces the earlier (a miss for the other, never a
/// wrong hit). Each entry also links to the entry that followed it in the
/// last request ([`EntryGuard::next`]): the fast path tries that one first,
/// which costs only the compare.
pub struct SeriesCache {
    hasher: KeyHasher,
    shards: Vec<Shard>,
    max_per_shard: usize,
}

impl std::fmt::Debug for SeriesCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SeriesCache({} of at most {} entries)",
            self.len(),
            self.max_per_shard * SHARDS
        )
    }
}

/// The shard of a hash: bits 40-43, independent of the bits the index maps
/// use (low bits for the bucket, the top 7 for the tag).
fn shard_of(h: u64) -> usize {
    (h >> 40) as usize % SHARDS
}

/// Counting sort of item indexes by the shard of their hash: one
/// allocation for all shards instead of a vector each. Shard `s`'s items
/// are `order[start[s]..start[s + 1]]`, in index order.
fn shard_order<T>(items: &[T], hash: impl Fn(&T) -> u64) -> ([usize; SHARDS + 1], Vec<u32>) {
    let mut start = [0usize; SHARDS + 1];
    for x in items {
        start[shard_of(hash(x)) + 1] += 1;
    }
    for i in 0..SHARDS {
        start[i + 1] += start[i];
    }
    let mut fill = start;
    let mut order = vec![0u32; items.len()];
    for (i, x) in items.iter().enumerate() {
        let s = shard_of(hash(x));
        order[fill[s]] = i as u32;
        fill[s] += 1;
    }
    (start, order)
}

impl SeriesCache {
    /// A cache of at most `max_series` label sets. 200,000 (the default)
    /// costs roughly 60-100 MB with typical 8-label series.
    pub fn new(max_series: usize) -> Self {
        SeriesCache {
            hasher: KeyHasher::default(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(ShardData::default()))
                .collect(),
            // Entry ids hold the index in 28 bits.
            max_per_shard: max_series.div_ceil(SHARDS).clamp(1, (1 << ID_SHIFT) - 1),
        }
    }

    /// The hash of a key: equal keys, equal hashes (within this cache).
    #[inline]
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    /// Looks up every key of a request, taking each shard's lock once
    /// (instead of once per series) and probing its keys in one tight loop,
    /// which lets the CPU overlap their cache misses.
    pub(crate) fn get_many(&self, keys: &[&[u8]]) -> Vec<Option<Cached>> {
        let mut out = vec![None; keys.len()];
        let hashes: Vec<u64> = keys.iter().map(|k| self.hash(k)).collect();
        let (start, order) = shard_order(&hashes, |&h| h);
        for (s, shard) in self.shards.iter().enumerate() {
            let idx = &order[start[s]..start[s + 1]];
            if idx.is_empty() {
                continue;
            }
            let m = shard.lock();
            // Probe all of the shard's keys first, then compare: most
            // probes miss the CPU caches; short independent iterations keep
            // many of those misses in flight at once, where one
            // probe-compare-clone chain per key waited for each in turn.
            let found: Vec<Option<&Entry>> =
                idx.iter().map(|&i| m.get(hashes[i as usize])).collect();
            for (&i, e) in idx.iter().zip(found) {
                let i = i as usize;
                if let Some(e) = e
                    && m.key(e) == keys[i]
                {
                    out[i] = Some((
                        e.labels.clone(),
                        SeriesHint::cached(hashes[i], e.current.clone()),
                    ));
                }
            }
        }
        out
    }

    /// Locks entry `id` (from [`EntryGuard::id`] or [`EntryGuard::next`]),
    /// if it still exists.
    pub(crate) fn entry(&self, id: EntryId) -> Option<EntryGuard<'_>> {
        let shard = self.shards.get((id >> ID_SHIFT) as usize)?.lock();
        let at = (id & ((1 << ID_SHIFT) - 1)) as usize;
        (at < shard.entries.len()).then_some(EntryGuard { shard, at, id })
    }

    /// Locks the entry of `key` (whose [`SeriesCache::hash`] is `h`), if
    /// cached.
    pub(crate) fn find(&self, key: &[u8], h: u64) -> Option<EntryGuard<'_>> {
        let s = shard_of(h);
        let shard = self.shards[s].lock();
        let at = *shard.index.get(&h)? as usize;
        if shard.key(&shard.entries[at]) != key {
            return None;
        }
        Some(EntryGuard {
            shard,
            at,
            id: ((s as u32) << ID_SHIFT) | at as u32,
        })
    }

    /// Remembers that entry `next` followed entry `prev` in a request.
    pub(crate) fn link(&self, prev: EntryId, next: EntryId) {
        if let Some(mut g) = self.entry(prev) {
            let at = g.at;
            g.shard.entries[at].next = next;
        }
    }

    /// Remembers the storage ref learned for entry `id`, if it still holds
    /// `labels`.
    pub(crate) fn learn_id(&self, id: EntryId, labels: &Arc<Labels>, r: SeriesRef) {
        if let Some(mut g) = self.entry(id) {
            let at = g.at;
            g.shard.learn_at(at, labels, r);
        }
    }

    /// Remembers the storage ref learned for a series inserted with
    /// [`SeriesCache::insert`] (hash `h`, labels `labels`), if its entry
    /// still holds those very labels.
    pub(crate) fn learn_one(&self, h: u64, labels: &Arc<Labels>, r: SeriesRef) {
        let mut m = self.shards[shard_of(h)].lock();
        let Some(&at) = m.index.get(&h) else { return };
        m.learn_at(at as usize, labels, r);
    }

    /// Caches validated labels; returns the new entry's hint.
    pub(crate) fn insert(&self, key: &[u8], labels: &Arc<Labels>) -> SeriesHint {
        let h = self.hash(key);
        self.shards[shard_of(h)]
            .lock()
            .put(h, key, labels, self.max_per_shard);
        SeriesHint::cached(h, None)
    }

    /// Remembers the storage refs [`super::apply_cached`] learned for the
    /// series of `batch` (index, ref). An entry is only updated if it still
    /// holds the very labels the series came with (it may have been
    /// replaced or evicted since the lookup).
    pub(crate) fn learn(&self, batch: &Batch, learned: Vec<(usize, SeriesRef)>) {
        for (i, r) in learned {
            let Some(s) = batch.series.get(i) else {
                continue;
            };
            let Some(h) = s.hint.cached else { continue };
            self.learn_one(h, &s.labels, r);
        }
    }

    /// Number of cached label sets.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().entries.len()).sum()
    }

    /// Entries whose storage ref is known (tests).
    #[cfg(test)]
    pub(crate) fn known_refs(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let m = s.lock();
                m.entries.iter().filter(|e| e.current.is_some()).count()
            })
            .sum()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;

    #[test]
    fn key_hash_sees_every_byte_and_the_length() {
        let cache = SeriesCache::new(10);
        let key_hash = |k: &[u8]| cache.hash(k);
        let base: Vec<u8> = (0..=255u8).cycle().take(301).collect();
        let h = key_hash(&base);
        for i in 0..base.len() {
            let mut k = base.clone();
            k[i] ^= 1;
            assert_ne!(key_hash(&k), h, "byte {i}");
        }
        let mut longer = base.clone();
        longer.push(0);
        assert_ne!(key_hash(&longer), h);
        assert_ne!(key_hash(b""), key_hash(&[0]));
        assert_eq!(key_hash(&base), h, "deterministic");
    }

    /// The hash alone is never trusted: an entry stored under a key's hash
    /// but holding other key bytes (what a hash collision looks like) is a
    /// miss, and inserting the key replaces it.
    #[test]
    fn a_hash_collision_is_a_miss_not_another_series() {
        let cache = SeriesCache::new(100);
        let (a, b) = (b"key-a".as_slice(), b"key-b".as_slice());
        let la = Arc::new(Labels::from_pairs([("job", "a")]));
        let lb = Arc::new(Labels::from_pairs([("job", "b")]));
        cache.insert(a, &la);
        let hb = cache.hash(b);
        // Plant a's key bytes under b's hash.
        cache.shards[shard_of(hb)].lock().put(hb, a, &la, 100);
        let got = cache.get_many(&[a, b]);
        assert!(got[0].as_ref().is_some_and(|(l, _)| Arc::ptr_eq(l, &la)));
        assert!(got[1].is_none(), "b must not resolve to a's labels");
        cache.insert(b, &lb);
        let got = cache.get_many(&[b]);
        assert!(got[0].as_ref().is_some_and(|(l, _)| Arc::ptr_eq(l, &lb)));
    }

    #[test]
    fn a_full_shard_is_cleared_and_memory_stays_bounded() {
        let cache = SeriesCache::new(32);
        let l = Arc::new(Labels::from_pairs([("job", "a")]));
        for i in 0..10_000u32 {
            cache.insert(&i.to_le_bytes(), &l);
        }
        assert!(cache.len() <= 32, "{} entries", cache.len());
        assert!(!cache.is_empty());
        // Re-inserting one key replaces its entry; the replaced key bytes
        // are reclaimed, so the arena stays bounded too.
        let key = [7u8; 200];
        for _ in 0..10_000 {
            cache.insert(&key, &l);
        }
        let m = cache.shards[shard_of(cache.hash(&key))].lock();
        assert!(
            m.keys.len() <= (1 << 16) + 2 * 200,
            "{} key bytes",
            m.keys.len()
        );
        assert_eq!(m.entries.len(), m.index.len());
    }
}
