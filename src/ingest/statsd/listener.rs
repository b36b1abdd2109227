//! Sockets, threads and the flush timer of the StatsD door (spec §1, §9).
//!
//! Thread layout:
//! - per UDP address, `udp_threads` receive threads, each on its own
//!   `SO_REUSEPORT` socket (the kernel hashes a client's 4-tuple to one
//!   socket, so one client's datagrams stay in order);
//! - one TCP accept thread plus one thread per connection (newline framing);
//! - one unix datagram receive thread;
//! - `workers` aggregation workers, each owning one shard of the series
//!   (receive threads split packets by family, see the private `shard` module) and
//!   parsing and applying its lines;
//! - one flusher that wakes on wall-clock multiples of the interval.
//!
//! Receivers never block: they `try_send` packets into one bounded queue per
//! shard and count `statsd_queue_drops_total` when it is full. A worker takes
//! its shard's aggregator lock per small batch of packets; the flusher takes
//! each shard's lock only to snapshot (all shards at the same aligned
//! time), then writes to storage with the locks released, so neither ingest
//! load nor a slow store delays the other.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use parking_lot::Mutex;
use socket2::{Domain, Protocol, Socket, Type};

use super::aggregate::{Aggregator, AggregatorConfig, FlushError};
use super::mapping::MappingConfig;
use super::metrics::{SelfValue, StatsdMetrics, Transport};
use super::shard::{Msg, Router};
use crate::model::{Clock, Labels, METRIC_NAME};
use crate::storage::{AppendError, Appendable, StorageError};

/// How long blocking socket reads wait before re-checking the stop flag;
/// bounds shutdown latency.
const POLL: Duration = Duration::from_millis(100);
/// Packets the worker applies per aggregator-lock acquisition.
const WORKER_BATCH: usize = 64;

/// Everything the StatsD door needs. `Default` is the spec's default setup
/// (UDP on 127.0.0.1:8125, no TCP, no unix socket, 10 s flushes).
#[derive(Clone, Debug)]
pub struct StatsdConfig {
    /// UDP listen addresses (IPv4 or IPv6); empty = no UDP.
    pub udp_addrs: Vec<SocketAddr>,
    /// TCP listen addresses; empty = no TCP.
    pub tcp_addrs: Vec<SocketAddr>,
    /// Unix datagram socket path; `None` = none.
    pub unix_path: Option<PathBuf>,
    /// Receive threads (and `SO_REUSEPORT` sockets) per UDP address.
    pub udp_threads: usize,
    /// Requested `SO_RCVBUF` in bytes (the granted size is logged).
    pub recv_buffer_bytes: usize,
    /// Longest datagram read whole; longer ones are truncated and counted.
    pub max_datagram_bytes: usize,
    /// Longest TCP line; a longer one closes the connection.
    pub max_tcp_line_bytes: usize,
    /// Open TCP connections accepted at once.
    pub max_tcp_connections: usize,
    /// Packets buffered between receivers and each aggregation worker.
    pub queue_capacity: usize,
    /// Aggregation workers (series shards), default 1. More spreads
    /// parsing and aggregation over cores (see `shard` for what sharding
    /// guarantees); on the loaded 2-core build machine 2 workers were
    /// slower than 1 (BENCHMARKS.md), so sharding is opt-in until measured
    /// on a quiet host.
    pub workers: usize,
    /// Flush on wall-clock multiples of `aggregator.flush_interval`. Tests
    /// turn this off and call [`StatsdServer::flush_now`].
    pub background_flush: bool,
    /// Write the self-metrics (spec §12) into the store at every flush.
    pub write_self_metrics: bool,
    /// Aggregation settings.
    pub aggregator: AggregatorConfig,
    /// Mapping rules, already validated.
    pub mapping: Option<Arc<MappingConfig>>,
}

impl Default for StatsdConfig {
    fn default() -> Self {
        StatsdConfig {
            udp_addrs: vec![SocketAddr::from(([127, 0, 0, 1], 8125))],
            tcp_addrs: Vec::new(),
            unix_path: None,
            udp_threads: 2,
            recv_buffer_bytes: 8 << 20,
            max_datagram_bytes: 65_535,
            max_tcp_line_bytes: 64 << 10,
            max_tcp_connections: 1024,
            queue_capacity: 8192,
            workers: 1,
            background_flush: true,
            write_self_metrics: true,
            aggregator: AggregatorConfig::default(),
            mapping: None,
        }
    }
}

/// Parses a listen-address flag: comma-separated `host:port` items, each
/// resolved (so `localhost:8125` may give both 127.0.0.1 and ::1); an empty
/// string means "disabled" and gives an empty list.
pub fn parse_listen_addrs(s: &str) -> Result<Vec<SocketAddr>, StatsdError> {
    use std::net::ToSocketAddrs;
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let addrs = part.to_socket_addrs().map_err(|e| {
            StatsdError::Config(format!(
                "invalid listen address {part:?}: {e} (want host:port, e.g. 127.0.0.1:8125 or [::1]:8125)"
            ))
        })?;
        for a in addrs {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    Ok(out)
}

/// The StatsD door could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatsdError {
    /// A socket could not be set up.
    #[error("cannot {op} statsd {transport} socket {addr}: {source}")]
    Socket {
        /// What was being done ("bind", "set SO_REUSEPORT", ...).
        op: &'static str,
        /// `udp`, `tcp` or `unixgram`.
        transport: &'static str,
        /// Address or path.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A thread could not be spawned.
    #[error("cannot spawn statsd thread {name}: {source}")]
    Spawn {
        /// Thread name.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is unusable.
    #[error("invalid statsd config: {0}")]
    Config(String),
}

/// A flush failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatsdFlushError {
    /// The window could not be closed.
    #[error(transparent)]
    Window(#[from] FlushError),
    /// The store refused the commit.
    #[error("cannot commit statsd flush: {0}")]
    Storage(#[from] StorageError),
    /// The aggregation worker did not drain the queue in time.
    #[error("statsd aggregation worker did not drain its queue within {0:?}")]
    WorkerTimeout(Duration),
    /// The server has shut down (its final flush already ran).
    #[error("the statsd server has shut down")]
    Stopped,
}

/// What one flush wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlushReport {
    /// Flush timestamp (ms).
    pub t: i64,
    /// StatsD samples handed to the appender (zero samples and staleness
    /// markers included; self-metrics excluded).
    pub samples: usize,
    /// Samples the appender refused for any reason other than a kind
    /// mismatch (counted in `statsd_append_errors_total`).
    pub append_errors: usize,
    /// Samples the store refused because the series already holds the other
    /// kind (float vs histogram), typically written by another door
    /// (counted in `statsd_type_conflicts_total{family,type}`, spec §11).
    pub type_conflicts: usize,
}

/// The addresses actually bound (ports resolved when 0 was asked).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalAddrs {
    /// One per configured UDP address.
    pub udp: Vec<SocketAddr>,
    /// One per configured TCP address.
    pub tcp: Vec<SocketAddr>,
    /// The unix datagram socket path.
    pub unix: Option<PathBuf>,
}

type SharedTx = Arc<Mutex<Option<Vec<Sender<Msg>>>>>;

/// A cheap, cloneable control handle on a running [`StatsdServer`] for
/// other threads (the admin HTTP endpoint, SIGHUP mapping reloads). It does
/// not keep the server alive: after shutdown its flushes fail with
/// [`StatsdFlushError::Stopped`].
#[derive(Clone)]
pub struct StatsdHandle {
    core: Arc<Core>,
    tx: SharedTx,
}

impl std::fmt::Debug for StatsdHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsdHandle").finish_non_exhaustive()
    }
}

impl StatsdHandle {
    /// Same as [`StatsdServer::flush_now`].
    pub fn flush_now(&self) -> Result<FlushReport, StatsdFlushError> {
        // Clone the sender out of the lock: the drain may wait up to its
        // limit and must not block shutdown from taking the queue away.
        let txs = self.tx.lock().clone().ok_or(StatsdFlushError::Stopped)?;
        drain(&txs)?;
        drop(txs);
        self.core.flush_at(self.core.clock.now_ms())
    }

    /// Same as [`StatsdServer::reload_mapping`].
    pub fn reload_mapping(&self, mapping: Option<Arc<MappingConfig>>) {
        self.core.set_mapping(mapping);
    }

    /// The self-metrics (live).
    pub fn metrics(&self) -> Arc<StatsdMetrics> {
        self.core.metrics.clone()
    }
}

/// Waits until every worker has applied every packet queued before the
/// call (a barrier message travels each shard's FIFO queue).
fn drain(txs: &[Sender<Msg>]) -> Result<(), StatsdFlushError> {
    let limit = Duration::from_secs(10);
    let (btx, brx) = bounded(txs.len());
    for tx in txs {
        tx.send_timeout(Msg::Barrier(btx.clone()), limit)
            .map_err(|_| StatsdFlushError::WorkerTimeout(limit))?;
    }
    for _ in txs {
        brx.recv_timeout(limit)
            .map_err(|_| StatsdFlushError::WorkerTimeout(limit))?;
    }
    Ok(())
}

struct Core {
    /// One aggregator per shard.
    aggs: Vec<Mutex<Aggregator>>,
    appendable: Arc<dyn Appendable>,
    clock: Arc<dyn Clock>,
    metrics: Arc<StatsdMetrics>,
    flush_lock: Mutex<()>,
    write_self_metrics: bool,
    udp_inodes: Vec<u64>,
}

impl Core {
    fn set_mapping(&self, mapping: Option<Arc<MappingConfig>>) {
        for agg in &self.aggs {
            agg.lock().set_mapping(mapping.clone());
        }
    }

    fn flush_at(&self, t: i64) -> Result<FlushReport, StatsdFlushError> {
        let _serial = self.flush_lock.lock();
        let start = Instant::now();
        let mut samples = Vec::new();
        for agg in &self.aggs {
            // Shards share every flush time, so they succeed or refuse together.
            samples.extend(agg.lock().flush(t)?);
        }
        let mut app = self.appendable.appender();
        let mut errors = 0usize;
        let mut conflicts = 0usize;
        for s in &samples {
            match s.append_to(&mut *app) {
                Ok(()) => {}
                // The series exists in the store as the other kind (a
                // pushed float series vs a StatsD histogram, or the
                // reverse): the store's type wins (it was there first), and
                // the refusal is a type conflict of the family (spec §11,
                // "applies across doors"). Counted per refused sample, so
                // once per flush while the StatsD series stays live.
                Err(e @ AppendError::KindMismatch { .. }) => {
                    if conflicts == 0 {
                        tracing::warn!(error = %e, "statsd flush: type conflict with a series in the store");
                    }
                    conflicts += 1;
                    let family = s.labels().metric_name().unwrap_or_default();
                    self.metrics.type_conflict(family, s.kind());
                }
                Err(e) => {
                    if errors == 0 {
                        tracing::warn!(error = %e, "statsd flush: store refused a sample");
                    }
                    errors += 1;
                }
            }
        }
        // Read even when self-metrics are not written: `/metrics` and the
        // load bench report it.
        if !self.udp_inodes.is_empty() {
            let drops = kernel_drops(&self.udp_inodes);
            self.metrics.kernel_drops.store(drops, Ordering::Relaxed);
        }
        if self.write_self_metrics {
            for s in self.metrics.snapshot() {
                let mut pairs: Vec<(&str, String)> = vec![(METRIC_NAME, s.name.to_string())];
                pairs.extend(s.labels.iter().map(|(k, v)| (*k, v.clone())));
                let labels = Labels::from_pairs(pairs);
                let r = match &s.value {
                    SelfValue::Float(v) => app.append(&labels, t, *v),
                    SelfValue::Histogram(h) => app.append_histogram(&labels, t, h),
                };
                if r.is_err() {
                    errors += 1;
                }
            }
        }
        app.commit()?;
        self.metrics
            .append_errors
            .fetch_add(errors as u64, Ordering::Relaxed);
        self.metrics.flush_done(start.elapsed().as_secs_f64());
        Ok(FlushReport {
            t,
            samples: samples.len(),
            append_errors: errors,
            type_conflicts: conflicts,
        })
    }
}

/// A running StatsD door. Dropping it shuts it down (with a final flush).
pub struct StatsdServer {
    core: Arc<Core>,
    /// The worker's queue; `None` once shut down. Shared with every
    /// [`StatsdHandle`] so that taking it out ends the worker.
    tx: SharedTx,
    stop: Arc<AtomicBool>,
    ctl: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    conn_threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    workers: Vec<JoinHandle<()>>,
    flusher: Option<JoinHandle<()>>,
    addrs: LocalAddrs,
}

impl std::fmt::Debug for StatsdServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsdServer")
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, StatsdError> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(|source| StatsdError::Spawn {
            name: name.to_string(),
            source,
        })
}

impl StatsdServer {
    /// Binds every configured socket and starts the threads. Writes go
    /// through `appendable`; window times come from `clock`.
    pub fn start(
        config: StatsdConfig,
        appendable: Arc<dyn Appendable>,
        clock: Arc<dyn Clock>,
    ) -> Result<StatsdServer, StatsdError> {
        if config.aggregator.flush_interval.as_millis() == 0 {
            return Err(StatsdError::Config(
                "flush interval must be at least 1 ms".into(),
            ));
        }
        if config.queue_capacity == 0 || config.max_datagram_bytes == 0 || config.workers == 0 {
            return Err(StatsdError::Config(
                "queue_capacity, max_datagram_bytes and workers must be positive".into(),
            ));
        }
        let metrics = StatsdMetrics::new();
        let stop = Arc::new(AtomicBool::new(false));
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..config.workers)
            .map(|_| bounded::<Msg>(config.queue_capacity))
            .unzip();

        // Bind everything first, so a bind error starts no thread.
        let mut addrs = LocalAddrs::default();
        let mut udp_sockets = Vec::new();
        for addr in &config.udp_addrs {
            let socks = bind_udp(*addr, config.udp_threads.max(1), config.recv_buffer_bytes)?;
            addrs.udp.push(
                socks[0]
                    .local_addr()
                    .map_err(|source| StatsdError::Socket {
                        op: "read address of",
                        transport: "udp",
                        addr: addr.to_string(),
                        source,
                    })?,
            );
            udp_sockets.extend(socks);
        }
        let mut tcp_listeners = Vec::new();
        for addr in &config.tcp_addrs {
            let l = TcpListener::bind(addr).map_err(|source| StatsdError::Socket {
                op: "bind",
                transport: "tcp",
                addr: addr.to_string(),
                source,
            })?;
            let sock_err = |op, source| StatsdError::Socket {
                op,
                transport: "tcp",
                addr: addr.to_string(),
                source,
            };
            l.set_nonblocking(true)
                .map_err(|e| sock_err("set non-blocking", e))?;
            addrs
                .tcp
                .push(l.local_addr().map_err(|e| sock_err("read address of", e))?);
            tcp_listeners.push(l);
        }
        let unix = match &config.unix_path {
            Some(p) => {
                let s = bind_unix(p)?;
                addrs.unix = Some(p.clone());
                Some(s)
            }
            None => None,
        };
        let udp_inodes = udp_sockets.iter().filter_map(socket_inode).collect();

        let core = Arc::new(Core {
            aggs: (0..config.workers)
                .map(|_| {
                    Mutex::new(Aggregator::new(
                        config.aggregator.clone(),
                        config.mapping.clone(),
                        metrics.clone(),
                    ))
                })
                .collect(),
            appendable,
            clock,
            metrics: metrics.clone(),
            flush_lock: Mutex::new(()),
            write_self_metrics: config.write_self_metrics,
            udp_inodes,
        });

        let mut server = StatsdServer {
            core: core.clone(),
            tx: Arc::new(Mutex::new(Some(txs.clone()))),
            stop: stop.clone(),
            ctl: None,
            threads: Vec::new(),
            conn_threads: Arc::new(Mutex::new(Vec::new())),
            workers: Vec::new(),
            flusher: None,
            addrs,
        };

        for (i, rx) in rxs.into_iter().enumerate() {
            let wcore = core.clone();
            server
                .workers
                .push(spawn(&format!("statsd-worker-{i}"), move || {
                    worker_loop(&wcore, i, &rx)
                })?);
        }

        for (i, sock) in udp_sockets.into_iter().enumerate() {
            let (mut r, m, stop) = (Router::new(txs.clone()), metrics.clone(), stop.clone());
            let max = config.max_datagram_bytes;
            server
                .threads
                .push(spawn(&format!("statsd-udp-{i}"), move || {
                    datagram_loop(|b| sock.recv(b), Transport::Udp, max, &mut r, &m, &stop)
                })?);
        }
        for (i, l) in tcp_listeners.into_iter().enumerate() {
            let (txs, m, stop) = (txs.clone(), metrics.clone(), stop.clone());
            let conns = server.conn_threads.clone();
            let max_line = config.max_tcp_line_bytes;
            let max_conns = config.max_tcp_connections;
            server
                .threads
                .push(spawn(&format!("statsd-tcp-{i}"), move || {
                    tcp_accept_loop(&l, &txs, &m, &stop, &conns, max_line, max_conns)
                })?);
        }
        if let Some(sock) = unix {
            let (mut r, m, stop) = (Router::new(txs.clone()), metrics.clone(), stop.clone());
            let max = config.max_datagram_bytes;
            server.threads.push(spawn("statsd-unixgram", move || {
                datagram_loop(
                    |b| sock.recv(b),
                    Transport::Unixgram,
                    max,
                    &mut r,
                    &m,
                    &stop,
                )
            })?);
        }
        if config.background_flush {
            let (ctl_tx, ctl_rx) = bounded::<()>(1);
            let fcore = core.clone();
            let interval =
                i64::try_from(config.aggregator.flush_interval.as_millis()).unwrap_or(i64::MAX);
            server.ctl = Some(ctl_tx);
            server.flusher = Some(spawn("statsd-flusher", move || {
                flusher_loop(&fcore, &ctl_rx, interval)
            })?);
        }
        tracing::info!(udp = ?server.addrs.udp, tcp = ?server.addrs.tcp, unix = ?server.addrs.unix, "statsd listening");
        Ok(server)
    }

    /// The bound addresses.
    pub fn local_addrs(&self) -> &LocalAddrs {
        &self.addrs
    }

    /// The self-metrics (live; snapshot them for `/metrics`).
    pub fn metrics(&self) -> Arc<StatsdMetrics> {
        self.core.metrics.clone()
    }

    /// Replaces the mapping rules (validate with `MappingConfig` first).
    pub fn reload_mapping(&self, mapping: Option<Arc<MappingConfig>>) {
        self.core.set_mapping(mapping);
    }

    /// A control handle for other threads (see [`StatsdHandle`]).
    pub fn handle(&self) -> StatsdHandle {
        StatsdHandle {
            core: self.core.clone(),
            tx: self.tx.clone(),
        }
    }

    /// Applies every packet already queued, then flushes at the clock's
    /// current time. Test hook and admin action; safe alongside the
    /// background flusher (flushes are serialised, timestamps increase).
    pub fn flush_now(&self) -> Result<FlushReport, StatsdFlushError> {
        self.handle().flush_now()
    }

    /// Stops receiving, applies what was queued, writes a final flush and
    /// joins every thread. Returns the final flush's result.
    pub fn shutdown(mut self) -> Result<Option<FlushReport>, StatsdFlushError> {
        self.stop_all()
    }

    fn stop_all(&mut self) -> Result<Option<FlushReport>, StatsdFlushError> {
        if self.tx.lock().is_none() {
            return Ok(None);
        }
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for t in self.conn_threads.lock().drain(..) {
            let _ = t.join();
        }
        drop(self.ctl.take());
        if let Some(f) = self.flusher.take() {
            let _ = f.join();
        }
        // Every sender is gone once `tx` drops: the workers drain and exit.
        drop(self.tx.lock().take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(p) = &self.addrs.unix {
            let _ = std::fs::remove_file(p);
        }
        match self.core.flush_at(self.core.clock.now_ms()) {
            Ok(r) => Ok(Some(r)),
            // Nothing new since the last flush at this very millisecond.
            Err(StatsdFlushError::Window(FlushError::NotAfterPrevious { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for StatsdServer {
    fn drop(&mut self) {
        if let Err(e) = self.stop_all() {
            tracing::error!(error = %e, "statsd final flush failed");
        }
    }
}

fn worker_loop(core: &Core, shard: usize, rx: &Receiver<Msg>) {
    let mut pending_barrier: Option<Sender<()>> = None;
    while let Ok(first) = rx.recv() {
        let mut msg = Some(first);
        {
            let now = core.clock.now_ms();
            let mut agg = core.aggs[shard].lock();
            let mut n = 0;
            while let Some(m) = msg.take() {
                match m {
                    Msg::Packet(buf) => agg.ingest(&buf, now),
                    Msg::Barrier(b) => {
                        pending_barrier = Some(b);
                        break;
                    }
                }
                n += 1;
                if n < WORKER_BATCH {
                    msg = rx.try_recv().ok();
                }
            }
        }
        if let Some(b) = pending_barrier.take() {
            let _ = b.send(());
        }
    }
}

fn flusher_loop(core: &Core, ctl: &Receiver<()>, interval: i64) {
    loop {
        let now = core.clock.now_ms();
        let next = (now.div_euclid(interval) + 1) * interval;
        let wait = Duration::from_millis(u64::try_from(next - now).unwrap_or(0));
        match ctl.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {
                // The clock may lag the sleep slightly; stamp the boundary.
                match core.flush_at(next) {
                    Ok(_) | Err(StatsdFlushError::Window(_)) => {}
                    Err(e) => tracing::error!(error = %e, "statsd flush failed"),
                }
            }
            _ => return,
        }
    }
}

/// Shared receive loop of UDP and unix datagram sockets.
fn datagram_loop(
    mut recv: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
    transport: Transport,
    max: usize,
    router: &mut Router,
    metrics: &StatsdMetrics,
    stop: &AtomicBool,
) {
    // One spare byte: a read that fills it means the datagram was longer
    // than `max` (the kernel truncates silently for plain recv).
    let mut buf = vec![0u8; max + 1];
    while !stop.load(Ordering::Relaxed) {
        let n = match recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, transport = transport.as_str(), "statsd receive failed");
                std::thread::sleep(POLL);
                continue;
            }
        };
        metrics.packet(transport);
        let mut data = &buf[..n];
        if n > max {
            metrics.packets_truncated.fetch_add(1, Ordering::Relaxed);
            // Keep whole lines only: the partial last line is dropped.
            data = match data.iter().rposition(|&b| b == b'\n') {
                Some(i) => &data[..i],
                None => &[],
            };
        }
        if data.is_empty() {
            continue;
        }
        if !router.send(data, metrics) {
            return;
        }
    }
}

fn tcp_accept_loop(
    l: &TcpListener,
    txs: &[Sender<Msg>],
    metrics: &Arc<StatsdMetrics>,
    stop: &Arc<AtomicBool>,
    conns: &Mutex<Vec<JoinHandle<()>>>,
    max_line: usize,
    max_conns: usize,
) {
    let open = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((stream, peer)) => {
                if open.load(Ordering::Relaxed) >= max_conns {
                    tracing::warn!(%peer, "statsd tcp: connection limit reached, closing");
                    continue;
                }
                open.fetch_add(1, Ordering::Relaxed);
                let mut r = Router::new(txs.to_vec());
                let (m, stop, open) = (metrics.clone(), stop.clone(), open.clone());
                let h = std::thread::Builder::new()
                    .name("statsd-tcp-conn".into())
                    .spawn(move || {
                        tcp_conn(stream, &mut r, &m, &stop, max_line);
                        open.fetch_sub(1, Ordering::Relaxed);
                    });
                match h {
                    Ok(h) => {
                        let mut c = conns.lock();
                        c.retain(|h| !h.is_finished());
                        c.push(h);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "statsd tcp: cannot spawn connection thread")
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL / 2),
            Err(e) => {
                tracing::warn!(error = %e, "statsd tcp accept failed");
                std::thread::sleep(POLL);
            }
        }
    }
}

fn tcp_conn(
    mut s: TcpStream,
    router: &mut Router,
    metrics: &StatsdMetrics,
    stop: &AtomicBool,
    max_line: usize,
) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(POLL));
    let mut chunk = vec![0u8; 64 << 10];
    let mut pending: Vec<u8> = Vec::new();
    let mut send = |buf: Vec<u8>| router.send(&buf, metrics);
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut chunk) {
            Ok(0) => {
                // EOF: a last line without newline is still a line.
                if !pending.is_empty() {
                    metrics.packet(Transport::Tcp);
                    send(std::mem::take(&mut pending));
                }
                return;
            }
            Ok(n) => {
                let start = pending.len();
                pending.extend_from_slice(&chunk[..n]);
                if let Some(i) = pending[start..].iter().rposition(|&b| b == b'\n') {
                    let rest = pending.split_off(start + i + 1);
                    let whole = std::mem::replace(&mut pending, rest);
                    if whole.split(|&b| b == b'\n').any(|l| l.len() > max_line) {
                        metrics.tcp_line_too_long.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    metrics.packet(Transport::Tcp);
                    if !send(whole) {
                        return;
                    }
                }
                if pending.len() > max_line {
                    metrics.tcp_line_too_long.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
}

/// Binds `n` `SO_REUSEPORT` UDP sockets on `addr` (port 0: the first picks
/// the port, the others join it).
fn bind_udp(addr: SocketAddr, n: usize, rcvbuf: usize) -> Result<Vec<UdpSocket>, StatsdError> {
    let err = |op: &'static str, a: SocketAddr| {
        move |source| StatsdError::Socket {
            op,
            transport: "udp",
            addr: a.to_string(),
            source,
        }
    };
    // SO_REUSEPORT would let us share a port with another process of the same
    // user (an old watchpost still running) and silently split its traffic;
    // probe with a plain bind first so that case fails loudly.
    if addr.port() != 0 {
        UdpSocket::bind(addr).map_err(err("bind", addr))?;
    }
    let mut out = Vec::with_capacity(n);
    let mut target = addr;
    for _ in 0..n {
        let s = Socket::new(
            Domain::for_address(target),
            Type::DGRAM,
            Some(Protocol::UDP),
        )
        .map_err(err("create", target))?;
        if target.is_ipv6() {
            s.set_only_v6(true)
                .map_err(err("set IPV6_V6ONLY on", target))?;
        }
        s.set_reuse_port(true)
            .map_err(err("set SO_REUSEPORT on", target))?;
        if let Err(e) = s.set_recv_buffer_size(rcvbuf) {
            tracing::warn!(error = %e, %target, "statsd: cannot set SO_RCVBUF");
        }
        s.set_read_timeout(Some(POLL))
            .map_err(err("set read timeout on", target))?;
        s.bind(&target.into()).map_err(err("bind", target))?;
        let granted = s.recv_buffer_size().unwrap_or(0);
        if granted < rcvbuf {
            tracing::warn!(requested = rcvbuf, granted, %target,
                "statsd: UDP receive buffer smaller than requested; raise net.core.rmem_max");
        } else {
            tracing::info!(requested = rcvbuf, granted, %target, "statsd: UDP receive buffer");
        }
        let u: UdpSocket = s.into();
        if target.port() == 0 {
            target = u.local_addr().map_err(err("read address of", target))?;
        }
        out.push(u);
    }
    Ok(out)
}

fn bind_unix(p: &Path) -> Result<UnixDatagram, StatsdError> {
    use std::os::unix::fs::FileTypeExt;
    let err = |op: &'static str| {
        move |source| StatsdError::Socket {
            op,
            transport: "unixgram",
            addr: p.display().to_string(),
            source,
        }
    };
    // A socket file left by a previous run would make bind fail; anything
    // that is not a socket is left alone (bind then reports it).
    if let Ok(md) = std::fs::symlink_metadata(p)
        && md.file_type().is_socket()
    {
        std::fs::remove_file(p).map_err(err("remove stale"))?;
    }
    let s = UnixDatagram::bind(p).map_err(err("bind"))?;
    s.set_read_timeout(Some(POLL))
        .map_err(err("set read timeout on"))?;
    Ok(s)
}

/// The inode of a socket, from `/proc/self/fd/N` → `socket:[INODE]`.
fn socket_inode(s: &UdpSocket) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", s.as_raw_fd())).ok()?;
    let l = link.to_str()?;
    l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// Sum of the kernel `drops` column of `/proc/net/udp{,6}` over our sockets.
fn kernel_drops(inodes: &[u64]) -> u64 {
    let mut total = 0;
    for f in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(inode), Some(drops)) = (cols.get(9), cols.last()) else {
                continue;
            };
            if inode.parse::<u64>().is_ok_and(|i| inodes.contains(&i)) {
                total += drops.parse::<u64>().unwrap_or(0);
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server handle is shared with HTTP handlers (admin flush).
    #[test]
    fn server_handle_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<StatsdServer>();
        check::<Arc<StatsdMetrics>>();
    }

    #[test]
    fn listen_address_flag() {
        assert_eq!(parse_listen_addrs("").unwrap(), vec![]);
        assert_eq!(
            parse_listen_addrs("127.0.0.1:8125, [::1]:9125").unwrap(),
            vec![
                SocketAddr::from(([127, 0, 0, 1], 8125)),
                "[::1]:9125".parse().unwrap()
            ]
        );
        let e = parse_listen_addrs("127.0.0.1").unwrap_err().to_string();
        assert!(
            e.contains("\"127.0.0.1\"") && e.contains("host:port"),
            "{e}"
        );
    }

    /// A full queue drops and counts; the reader never blocks on it.
    #[test]
    fn full_queue_counts_drops_without_blocking() {
        let (tx, rx) = bounded::<Msg>(2);
        let mut router = Router::new(vec![tx]);
        let m = StatsdMetrics::new();
        let stop = AtomicBool::new(false);
        let mut sent = 0;
        datagram_loop(
            |b| {
                sent += 1;
                if sent == 10 {
                    stop.store(true, Ordering::Relaxed);
                }
                b[..5].copy_from_slice(b"a:1|c");
                Ok(5)
            },
            Transport::Udp,
            100,
            &mut router,
            &m,
            &stop,
        );
        assert_eq!(rx.len(), 2);
        assert_eq!(m.queue_drops.load(Ordering::Relaxed), 8);
        assert_eq!(m.packets_received(Transport::Udp), 10);
    }

    #[test]
    fn proc_net_udp_drops_are_read_for_our_socket() {
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        // The kernel rounds this up to its minimum (a few KiB).
        sock.set_recv_buffer_size(1).unwrap();
        sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let s: UdpSocket = sock.into();
        let inode = socket_inode(&s).expect("inode");
        assert_eq!(kernel_drops(&[inode]), 0);
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap();
        for _ in 0..200 {
            c.send_to(&[b'x'; 1000], addr).unwrap();
        }
        // Nobody reads `s`: most of the 200 KB cannot fit and is dropped.
        assert!(kernel_drops(&[inode]) > 100, "{}", kernel_drops(&[inode]));
        assert_eq!(kernel_drops(&[inode + 1_000_000]), 0);
    }
}
