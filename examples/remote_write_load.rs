//! Remote write load generator: pushes the storage issue's workload
//! (10,000 classic series at 15 s resolution, see `benches/workload`) to a
//! remote write 1.0 receiver over loopback HTTP, the way Prometheus does
//! (snappy-compressed `WriteRequest`s of up to `--batch` series), and
//! reports wall throughput and, with `--pid`, the receiver's CPU seconds per
//! million samples (from `/proc/<pid>/stat` before and after).
//!
//! The same sender is meant to be pointed, in one run, at Watchpost
//! (`/api/v1/write`), Prometheus 2.42 (`--web.enable-remote-write-receiver`,
//! `/api/v1/write`) and VictoriaMetrics (`/api/v1/write`):
//!
//! ```text
//! cargo run --release --example remote_write_load -- \
//!     --url http://127.0.0.1:9090/api/v1/write --steps 40 --pid $(pidof prometheus)
//! ```
//!
//! Requests are sent by `--connections` threads over keep-alive connections;
//! a non-2xx answer stops the run with the status and body.

#[path = "../benches/workload/mod.rs"]
mod workload;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use clap::Parser;
use prost::Message;
use watchpost::ingest::remote_write::pb::v1;
use watchpost::model::Labels;
use workload::{Workload, WorkloadConfig};

#[derive(Parser, Debug)]
#[command(about = "Push the 10k-series workload to a remote write receiver")]
struct Args {
    /// Receiver URL (plain http), e.g. http://127.0.0.1:9201/api/v1/write.
    #[arg(long)]
    url: String,
    /// Scrapes to send (each one sample per series; 1440 = 6 h).
    #[arg(long, default_value_t = 40)]
    steps: usize,
    /// Most series per request (Prometheus's max_samples_per_send is 2000).
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Concurrent connections (Prometheus shards).
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Receiver process id, for CPU seconds per million samples.
    #[arg(long)]
    pid: Option<u32>,
    /// Timestamp of the first scrape (ms since the epoch). Default: now
    /// minus the workload's span, so the data is recent (VictoriaMetrics
    /// drops samples older than its retention, one month by default).
    /// Rounds against a running receiver pass consecutive ranges.
    #[arg(long)]
    start_ms: Option<i64>,
    /// Instead of HTTP, decode and append the same bodies in this process
    /// into a fresh `Db` in this directory (WAL fsync on every commit) and
    /// report this process's CPU: the remote-write path without HTTP.
    #[arg(long)]
    in_process: Option<std::path::PathBuf>,
}

fn label_pairs(l: &Labels, extra: Option<(&str, String)>) -> Vec<v1::Label> {
    let mut v: Vec<v1::Label> = l
        .iter()
        .map(|x| v1::Label {
            name: x.name.to_string(),
            value: x.value.to_string(),
        })
        .collect();
    if let Some((n, val)) = extra {
        v.push(v1::Label {
            name: n.into(),
            value: val,
        });
        v.sort_by(|a, b| a.name.cmp(&b.name));
    }
    v
}

fn with_name(l: &Labels, name: String) -> Labels {
    let mut b = l.builder();
    b.set("__name__", name);
    b.build()
}

/// Pre-encodes every request so the sender's own CPU stays out of the loop.
fn build_requests(args: &Args) -> (Vec<Vec<u8>>, u64) {
    let defaults = WorkloadConfig::default();
    let start_ms = args.start_ms.unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis() as i64;
        now - args.steps as i64 * defaults.step_ms
    });
    let w = Workload::new(WorkloadConfig {
        steps: args.steps,
        start_ms,
        ..defaults
    });
    let mut bodies = Vec::new();
    let mut samples = 0u64;
    let mut enc = snap::raw::Encoder::new();
    for scrape in w.scrapes() {
        let mut series: Vec<v1::TimeSeries> = Vec::with_capacity(w.classic_series());
        let one = |labels: Vec<v1::Label>, t: i64, v: f64| v1::TimeSeries {
            labels,
            samples: vec![v1::Sample {
                value: v,
                timestamp: t,
            }],
            ..Default::default()
        };
        for (i, t, v) in scrape.floats {
            series.push(one(label_pairs(&w.floats[i].labels, None), t, v));
        }
        for (i, t, h) in scrape.histograms {
            let base = &w.histograms[i].labels;
            let name = base.metric_name().unwrap_or("h").to_string();
            let bucket = with_name(base, format!("{name}_bucket"));
            for (j, c) in h.bucket_counts.iter().enumerate() {
                let le = match h.upper_bounds.get(j) {
                    Some(b) => b.to_string(),
                    None => "+Inf".to_string(),
                };
                series.push(one(label_pairs(&bucket, Some(("le", le))), t, *c));
            }
            let sum = with_name(base, format!("{name}_sum"));
            series.push(one(label_pairs(&sum, None), t, h.sum));
            let count = with_name(base, format!("{name}_count"));
            series.push(one(label_pairs(&count, None), t, h.count));
        }
        samples += series.len() as u64;
        for chunk in series.chunks(args.batch) {
            let raw = v1::WriteRequest {
                timeseries: chunk.to_vec(),
                metadata: vec![],
            }
            .encode_to_vec();
            bodies.push(enc.compress_vec(&raw).expect("snappy compress"));
        }
    }
    (bodies, samples)
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 (1-based) of the whole line.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    ticks / clock_ticks_per_second()
}

/// `getconf CLK_TCK` (100 on every common Linux; asked rather than assumed).
fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

struct Target {
    host: String,
    path: String,
}

fn parse_url(url: &str) -> Target {
    let rest = url.strip_prefix("http://").expect("only http:// URLs");
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Target {
        host: host.to_string(),
        path: path.to_string(),
    }
}

/// Sends one request on a keep-alive connection and returns the status.
fn post(conn: &mut BufReader<TcpStream>, t: &Target, body: &[u8]) -> (u16, String) {
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n\
         User-Agent: watchpost-load/0.1\r\nContent-Length: {}\r\n\r\n",
        t.path,
        t.host,
        body.len()
    );
    let s = conn.get_mut();
    s.write_all(head.as_bytes()).expect("write request head");
    s.write_all(body).expect("write request body");
    let mut line = String::new();
    conn.read_line(&mut line).expect("read status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        conn.read_line(&mut h).expect("read header");
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
            if k.eq_ignore_ascii_case("transfer-encoding") {
                panic!("chunked responses are not supported by this load generator");
            }
        }
    }
    let mut b = vec![0u8; len];
    conn.read_exact(&mut b).expect("read body");
    (status, String::from_utf8_lossy(&b).into_owned())
}

fn in_process(dir: &std::path::Path, bodies: &[Vec<u8>], samples: u64) {
    use watchpost::ingest::remote_write::{DecodeLimits, Protocol, SeriesCache, write_cached};
    use watchpost::storage::{Db, DbOptions};
    let mut o = DbOptions::new(dir);
    o.maintenance_interval = None;
    let db = Db::open(o).expect("open db");
    let cache = SeriesCache::default();
    let limits = DecodeLimits::default();
    let me = std::process::id();
    let cpu0 = cpu_seconds(me);
    let start = Instant::now();
    let mut written = 0;
    for b in bodies {
        written += write_cached(Protocol::V1, b, &limits, &cache, &db)
            .map_err(|r| r.error)
            .expect("write")
            .outcome
            .samples_written;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(me) - cpu0;
    println!(
        "in-process: {written}/{samples} samples in {wall:.2} s ({:.0} samples/s), \
         CPU {cpu:.2} s: {:.3} CPU-s per million samples",
        written as f64 / wall,
        cpu / (samples as f64 / 1e6)
    );
}

fn main() {
    let args = Args::parse();
    let target = parse_url(&args.url);
    eprintln!("encoding workload ({} steps)...", args.steps);
    let (bodies, samples) = build_requests(&args);
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    eprintln!(
        "{} requests, {samples} samples, {:.1} MiB compressed",
        bodies.len(),
        bytes as f64 / (1 << 20) as f64
    );
    if let Some(dir) = &args.in_process {
        in_process(dir, &bodies, samples);
        return;
    }
    let cpu0 = args.pid.map(cpu_seconds);
    // Like Prometheus's shards, each connection owns a fixed set of series
    // (request slot j of every scrape goes to connection j % connections)
    // and sends them in time order, so no series' samples arrive out of
    // order (Prometheus 2.42 refuses those without an out-of-order window).
    // Every scrape has the same series (one sample each), in the same order.
    let per_scrape = (samples as usize / args.steps.max(1))
        .div_ceil(args.batch.max(1))
        .max(1);
    let conns = args.connections.max(1);
    let start = Instant::now();
    std::thread::scope(|s| {
        for c in 0..conns {
            let (bodies, target) = (&bodies, &target);
            s.spawn(move || {
                let stream = TcpStream::connect(&target.host).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let mut conn = BufReader::new(stream);
                for (i, body) in bodies.iter().enumerate() {
                    if (i % per_scrape) % conns != c {
                        continue;
                    }
                    let (status, text) = post(&mut conn, target, body);
                    if !(200..300).contains(&status) {
                        panic!("request {i}: HTTP {status}: {text}");
                    }
                }
            });
        }
    });
    let wall = start.elapsed().as_secs_f64();
    println!(
        "sent {samples} samples in {wall:.2} s: {:.0} samples/s",
        samples as f64 / wall
    );
    let mut cpu = f64::NAN;
    if let (Some(pid), Some(c0)) = (args.pid, cpu0) {
        cpu = cpu_seconds(pid) - c0;
        println!(
            "receiver CPU {cpu:.2} s: {:.3} CPU-s per million samples",
            cpu / (samples as f64 / 1e6)
        );
    }
    // One machine-readable line for scripts (benches/remote_write_compare.sh).
    println!("result samples={samples} wall_s={wall:.4} cpu_s={cpu:.4}");
}
