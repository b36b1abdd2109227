//! Splitting received packets across aggregation shards (spec §9.5: one
//! aggregator shard per series, so no cross-core locking and per-series
//! order is kept).
//!
//! The receive thread picks a line's shard from its *family key*: the raw
//! name without name-embedded tags, reduced to its ASCII alphanumerics, with
//! a trailing `_total`/`_bucket`/`_sum`/`_count` word removed. Guarantees:
//! - every line of one series goes to one shard, in arrival order;
//! - names that escape to the same family (`a.b`, `a_b`, `a--b`) share a
//!   shard, and so do `x`, `x_total`, `x.count`, `x_bucket`, so type
//!   conflicts and suffix clashes (§11) are still seen by one aggregator.
//!
//! Limit: mapping rules that rename several raw names into one family may
//! spread that family over shards; type conflicts between such lines and
//! per-family series limits are then checked per shard.

use crossbeam_channel::{Sender, TrySendError};

use super::metrics::StatsdMetrics;

/// What the receive threads send to a shard's worker.
pub(super) enum Msg {
    /// Whole lines, `\n`-separated.
    Packet(Vec<u8>),
    /// Answer once every earlier message is applied.
    Barrier(Sender<()>),
}

/// A receive thread's view of the shard queues.
pub(super) struct Router {
    txs: Vec<Sender<Msg>>,
    /// Per-shard line buffers, reused across packets.
    bufs: Vec<Vec<u8>>,
    key: Vec<u8>,
}

impl Router {
    pub(super) fn new(txs: Vec<Sender<Msg>>) -> Router {
        let bufs = vec![Vec::new(); txs.len()];
        Router {
            txs,
            bufs,
            key: Vec::new(),
        }
    }

    /// Queues `data` (whole lines) without blocking; a full shard queue
    /// drops that shard's part and counts `statsd_queue_drops_total`.
    /// Returns false once the workers are gone.
    pub(super) fn send(&mut self, data: &[u8], metrics: &StatsdMetrics) -> bool {
        if self.txs.len() == 1 {
            return try_send(&self.txs[0], data.to_vec(), metrics);
        }
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let i = shard_of(line, self.txs.len(), &mut self.key);
            self.bufs[i].extend_from_slice(line);
            self.bufs[i].push(b'\n');
        }
        let mut alive = true;
        for (tx, buf) in self.txs.iter().zip(&mut self.bufs) {
            if !buf.is_empty() {
                let cap = buf.capacity();
                alive &= try_send(tx, std::mem::replace(buf, Vec::with_capacity(cap)), metrics);
            }
        }
        alive
    }
}

fn try_send(tx: &Sender<Msg>, buf: Vec<u8>, metrics: &StatsdMetrics) -> bool {
    match tx.try_send(Msg::Packet(buf)) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            metrics
                .queue_drops
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            true
        }
        Err(TrySendError::Disconnected(_)) => false,
    }
}

/// The shard of one line among `n` (see the module docs). `key` is scratch.
pub(super) fn shard_of(line: &[u8], n: usize, key: &mut Vec<u8>) -> usize {
    if n <= 1 {
        return 0;
    }
    let end = line.iter().position(|&b| b == b':').unwrap_or(line.len());
    let name = &line[..end];
    // Name-embedded tags, in the parser's order: SignalFx brackets first,
    // else the first `#` (Librato) or `,` (InfluxDB) starts the tags.
    let open = name.iter().position(|&b| b == b'[');
    let close = name.iter().position(|&b| b == b']');
    let (a, b): (&[u8], &[u8]) = match (open, close) {
        (Some(i), Some(j)) if i < j => (&name[..i], &name[j + 1..]),
        (None, None) => {
            let cut = name
                .iter()
                .position(|&b| b == b'#' || b == b',')
                .unwrap_or(name.len());
            (&name[..cut], &[])
        }
        _ => (name, &[]),
    };
    key.clear();
    for &c in a.iter().chain(b) {
        key.push(if c.is_ascii_alphanumeric() { c } else { b'_' });
    }
    for suffix in [&b"_total"[..], b"_bucket", b"_sum", b"_count"] {
        if key.len() > suffix.len() && key.ends_with(suffix) {
            key.truncate(key.len() - suffix.len());
            break;
        }
    }
    // FNV-1a over the alphanumerics only: separators do not matter.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in key.iter().filter(|&&c| c != b'_') {
        h ^= u64::from(c);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;

    fn shard(line: &str) -> usize {
        shard_of(line.as_bytes(), 7, &mut Vec::new())
    }

    #[test]
    fn one_family_one_shard() {
        let groups: &[&[&str]] = &[
            &[
                "api.requests:1|c",
                "api.requests:1|c|#a:b",
                "api_requests:5|g",
                "api--requests:1|ms",
                "api.requests.total:1|c",
                "api_requests_total:2|g",
                "api.requests_bucket:1|g",
                "api.requests.count:1|g",
                "api.requests_sum:1|g",
                "api.requests,env=prod:1|c",
                "api.requests#env=prod:1|c",
                "api.[env=prod,x=y]requests:1|c",
            ],
            &["x:1|h", "x_bucket:1|c", "x_count:1|g", "x.total:3|c"],
        ];
        for g in groups {
            let s: Vec<usize> = g.iter().map(|l| shard(l)).collect();
            assert!(s.iter().all(|&x| x == s[0]), "{g:?} -> {s:?}");
        }
        // Different families do spread.
        let spread: std::collections::BTreeSet<usize> = (0..100)
            .map(|i| shard(&format!("metric.{i}:1|c")))
            .collect();
        assert!(spread.len() >= 5, "{spread:?}");
        assert_eq!(shard_of(b"a:1|c", 1, &mut Vec::new()), 0);
    }

    /// Every line lands in exactly one shard, whole and in order; a full
    /// shard queue drops only its own part and counts it.
    #[test]
    fn router_splits_lines_in_order_and_counts_drops() {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..3).map(|_| bounded::<Msg>(1)).unzip();
        let mut r = Router::new(txs);
        let m = StatsdMetrics::new();
        let data: String = (0..30).map(|i| format!("m{}:{i}|c\n", i % 6)).collect();
        assert!(r.send(data.as_bytes(), &m));
        // Queues hold one packet: a second send is dropped per shard that
        // had lines, and counted.
        let used = rxs.iter().filter(|rx| rx.is_full()).count() as u64;
        assert!(used >= 2, "6 families over 3 shards used only {used}");
        assert!(r.send(data.as_bytes(), &m));
        assert_eq!(
            m.queue_drops.load(std::sync::atomic::Ordering::Relaxed),
            used
        );
        let mut got: Vec<String> = Vec::new();
        for (i, rx) in rxs.iter().enumerate() {
            if let Ok(Msg::Packet(p)) = rx.try_recv() {
                for l in String::from_utf8(p).unwrap().lines() {
                    assert_eq!(shard_of(l.as_bytes(), 3, &mut Vec::new()), i);
                    got.push(l.to_string());
                }
            }
            assert!(rx.is_empty());
        }
        let mut want: Vec<String> = data.lines().map(str::to_string).collect();
        // Per family, order is kept.
        for f in 0..6 {
            let p = format!("m{f}:");
            let g: Vec<&String> = got.iter().filter(|l| l.starts_with(&p)).collect();
            let w: Vec<&String> = want.iter().filter(|l| l.starts_with(&p)).collect();
            assert_eq!(g, w);
        }
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }
}
