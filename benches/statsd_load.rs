//! End-to-end StatsD load: newline-packed datagrams over loopback UDP into an
//! in-process `StatsdServer` (2 receive threads, real parser and
//! aggregator, flushes into a discarding store). Prints the send rate, the
//! lines/s received and applied, and every kind of drop.
//!
//! Run: `cargo bench --bench statsd_load` (env `STATSD_LOAD_LINES`, default
//! 3,000,000 lines, bounds the loop; `STATSD_LOAD_RATE` paces the sender to
//! that many lines/s, default unpaced; `STATSD_LOAD_WORKERS` sets the
//! aggregation shards, default `StatsdConfig::default().workers`).
//!
//! With `STATSD_LOAD_TARGET=host:port` no server is started: the same
//! datagrams go to that address (another process: the `watchpost` binary,
//! etsy's statsd) and only the send side is reported, as
//! `sent_lines=N sent_packets=N send_secs=S` on the last line, for
//! `benches/statsd_compare.sh`, which reads the receivers' own counters.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use watchpost::ingest::statsd::{StatsdConfig, StatsdServer};
use watchpost::model::{HistogramSample, Labels, SystemClock};
use watchpost::storage::{AppendError, Appendable, Appender, CommitSummary, StorageError};

/// Discards every sample (the load test measures the StatsD door, not the
/// store).
struct Discard;
struct DiscardAppender;

impl Appender for DiscardAppender {
    fn append(&mut self, _: &Labels, _: i64, _: f64) -> Result<(), AppendError> {
        Ok(())
    }
    fn append_histogram(
        &mut self,
        _: &Labels,
        _: i64,
        _: &HistogramSample,
    ) -> Result<(), AppendError> {
        Ok(())
    }
    fn commit(self: Box<Self>) -> Result<CommitSummary, StorageError> {
        Ok(CommitSummary::default())
    }
    fn rollback(self: Box<Self>) {}
}

impl Appendable for Discard {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(DiscardAppender)
    }
}

/// Datagrams of about 1,400 bytes (the DogStatsD client's UDP packing size).
fn datagrams() -> (Vec<Vec<u8>>, u64) {
    let mut out = Vec::new();
    let mut lines = 0;
    for d in 0..64 {
        let mut buf = String::new();
        let mut i = 0;
        while buf.len() < 1_380 {
            let n = d * 131 + i;
            let line = match n % 4 {
                0 => format!("api.requests:1|c|#endpoint:/e{},status:200\n", n % 50),
                1 => format!("api.response_time:{}|h|#endpoint:/e{}\n", n % 900, n % 50),
                2 => format!("queue.depth:{}|g|#q:q{}\n", n % 1000, n % 20),
                _ => format!("db.query:{}|ms\n", n % 300),
            };
            buf.push_str(&line);
            lines += 1;
            i += 1;
        }
        out.push(buf.into_bytes());
    }
    (out, lines)
}

/// Sends `total` lines of the fixed datagram set to `addr`, paced to
/// `rate` lines/s if given. Returns (lines, datagrams, seconds).
fn send(addr: std::net::SocketAddr, total: u64, rate: Option<f64>) -> (u64, u64, f64) {
    let (packets, _) = datagrams();
    let client = UdpSocket::bind(if addr.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    })
    .expect("client");
    let start = Instant::now();
    let mut sent_lines = 0u64;
    let mut sent_packets = 0u64;
    'send: loop {
        for p in &packets {
            if sent_lines >= total {
                break 'send;
            }
            if let Some(r) = rate {
                // Pace: never run ahead of the target schedule.
                let due = Duration::from_secs_f64(sent_lines as f64 / r);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            if client.send_to(p, addr).is_ok() {
                sent_packets += 1;
                sent_lines += p.iter().filter(|&&b| b == b'\n').count() as u64;
            }
        }
    }
    (sent_lines, sent_packets, start.elapsed().as_secs_f64())
}

fn main() {
    let total: u64 = std::env::var("STATSD_LOAD_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000_000);
    let rate: Option<f64> = std::env::var("STATSD_LOAD_RATE")
        .ok()
        .and_then(|v| v.parse().ok());
    if let Ok(target) = std::env::var("STATSD_LOAD_TARGET") {
        let addr = target
            .parse()
            .expect("STATSD_LOAD_TARGET must be host:port");
        let (lines, packets, secs) = send(addr, total, rate);
        println!(
            "statsd_load -> {addr}: {:.0} lines/s sent",
            lines as f64 / secs
        );
        println!("sent_lines={lines} sent_packets={packets} send_secs={secs:.3}");
        return;
    }
    let cfg = StatsdConfig {
        udp_addrs: vec!["127.0.0.1:0".parse().expect("addr")],
        udp_threads: 2,
        workers: std::env::var("STATSD_LOAD_WORKERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(StatsdConfig::default().workers),
        write_self_metrics: false,
        ..Default::default()
    };
    let cfg_workers = cfg.workers;
    let server = StatsdServer::start(cfg, Arc::new(Discard), Arc::new(SystemClock)).expect("start");
    let addr = server.local_addrs().udp[0];
    let m = server.metrics();
    let (packets, lines_per_round) = datagrams();
    let per_packet = lines_per_round as f64 / packets.len() as f64;
    let start = Instant::now();
    let (sent_lines, sent_packets, send_secs) = send(addr, total, rate);
    // Wait until the counter stops moving (bounded: 10 s).
    let mut last = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let now = m.lines_received.load(Ordering::Relaxed);
        if now == last || now >= sent_lines {
            break;
        }
        last = now;
    }
    let recv_secs = start.elapsed().as_secs_f64();
    let received = m.lines_received.load(Ordering::Relaxed);
    let report = server.flush_now();
    let kernel = m.kernel_drops.load(Ordering::Relaxed);
    println!(
        "statsd_load: {sent_packets} datagrams, {sent_lines} lines ({per_packet:.0} lines/datagram), {} aggregation workers",
        cfg_workers
    );
    println!(
        "  send rate        {:>12.0} lines/s",
        sent_lines as f64 / send_secs
    );
    println!(
        "  received+applied {:>12.0} lines/s ({received} lines in {recv_secs:.2} s)",
        received as f64 / recv_secs
    );
    println!(
        "  lines lost       {:>12}",
        sent_lines - received.min(sent_lines)
    );
    println!(
        "  queue drops      {:>12} datagrams",
        m.queue_drops.load(Ordering::Relaxed)
    );
    println!(
        "  kernel drops     {:>12} datagrams (/proc/net/udp)",
        kernel
    );
    println!(
        "  truncated        {:>12}",
        m.packets_truncated.load(Ordering::Relaxed)
    );
    println!("  bad lines        {:>12}", m.bad_lines_total());
    println!("  flush            {report:?}");
    server.shutdown().expect("shutdown");
}
