//! The `watchpost` binary: flags and config in, modules wired, signals
//! handled. Everything else lives in the library; this file only decides
//! what runs where and turns errors into exit codes (anyhow lives here
//! only).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use watchpost::cli::query::{QueryRequest, run as run_query};
use watchpost::cli::tsdb;
use watchpost::config::{self, Config, ConfigError, WalSync};
use watchpost::http::backend::DbBackend;
use watchpost::http::metrics::ServerMetrics;
use watchpost::http::push::{PushConfig, PushState};
use watchpost::http::query::QueryConfig;
use watchpost::http::{AppState, ServerInfo};
use watchpost::ingest::pushgateway::PushStore;
use watchpost::ingest::statsd::{MappingConfig, StatsdConfig, StatsdServer};
use watchpost::model::{Clock, SystemClock};
use watchpost::notify::alertmanager::DEFAULT_QUEUE_CAPACITY;
use watchpost::notify::{AlertmanagerTarget, Notifier};
use watchpost::promql::{Engine, EngineOptions};
use watchpost::rules::{
    LoadOptions, ManagerOptions, RuleFile, RuleManager, engine_query_fn, load_globs,
};
use watchpost::storage::{Db, DbOptions, Querier, WalSyncPolicy};

#[derive(Parser, Debug)]
#[command(
    name = "watchpost",
    version,
    about = "StatsD + Prometheus-compatible TSDB + PromQL + alerts in one binary"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Offline tools over a data directory (the server must not be running).
    Tsdb {
        #[command(subcommand)]
        cmd: TsdbCmd,
    },
    /// Query a running server: `watchpost query 'expr'` or
    /// `watchpost query range 'expr' --start ... --end ... --step ...`.
    #[command(args_conflicts_with_subcommands = true)]
    Query(QueryArgs),
    /// Validate rule files (promtool-compatible).
    Check {
        #[command(subcommand)]
        cmd: CheckCmd,
    },
    /// Run rule unit tests (promtool-compatible).
    Test {
        #[command(subcommand)]
        cmd: TestCmd,
    },
}

#[derive(Subcommand, Debug)]
enum CheckCmd {
    /// Check rule files; every problem is listed; exit 1 on errors, 3 on
    /// lint findings with --lint-fatal. Reads stdin when no file is given.
    Rules {
        /// Rule files.
        files: Vec<PathBuf>,
        /// Lints: all, duplicate-rules or none.
        #[arg(long, default_value = "duplicate-rules")]
        lint: String,
        /// Make lint findings fatal (exit 3).
        #[arg(long = "lint-fatal")]
        lint_fatal: bool,
        /// Ignore unknown fields in rule files.
        #[arg(long = "ignore-unknown-fields")]
        ignore_unknown_fields: bool,
    },
}

#[derive(Subcommand, Debug)]
enum TestCmd {
    /// Run promtool-format rule unit test files; exit 1 on any failure.
    Rules {
        /// Test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Run only test groups whose name matches this regex (repeatable).
        #[arg(long)]
        run: Vec<String>,
    },
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// YAML configuration file; flags override its values.
    #[arg(long = "config.file")]
    config_file: Option<PathBuf>,
    /// Address for the HTTP API [default: 127.0.0.1:9090].
    #[arg(long = "web.listen-address")]
    listen_address: Option<String>,
    /// URL under which watchpost is reached (alert generator links)
    /// [default: http://<listen-address>].
    #[arg(long = "web.external-url")]
    external_url: Option<String>,
    /// Enable /api/v1/admin/* (snapshots).
    #[arg(long = "web.enable-admin-api")]
    enable_admin_api: bool,
    /// Largest import body, after decompression [default: 64MiB].
    #[arg(long = "web.import-body-limit")]
    import_body_limit: Option<String>,
    /// Data directory [default: ./data].
    #[arg(long = "storage.tsdb.path")]
    tsdb_path: Option<PathBuf>,
    /// Delete data older than this [default: 15d].
    #[arg(long = "storage.tsdb.retention.time")]
    retention_time: Option<String>,
    /// Delete oldest blocks while data uses more than this (e.g. 50GiB).
    #[arg(long = "storage.tsdb.retention.size")]
    retention_size: Option<String>,
    /// WAL fsync policy: `always` or an interval such as 100ms [default: always].
    #[arg(long = "storage.tsdb.wal-sync")]
    wal_sync: Option<String>,
    /// Accept samples up to this much older than a series' newest [default: 10m].
    #[arg(long = "storage.tsdb.out-of-order-window")]
    out_of_order_window: Option<String>,
    /// StatsD UDP listen address (repeatable) [default: 127.0.0.1:8125].
    /// Any statsd listen flag replaces the configured listeners; an empty
    /// value (`--statsd.listen-udp=`) adds none, so giving only that turns
    /// StatsD off.
    #[arg(long = "statsd.listen-udp", visible_alias = "statsd.listen-address")]
    statsd_udp: Vec<String>,
    /// StatsD TCP listen address (repeatable).
    #[arg(long = "statsd.listen-tcp")]
    statsd_tcp: Vec<String>,
    /// StatsD unix datagram socket path.
    #[arg(long = "statsd.listen-unixgram")]
    statsd_unix: Option<PathBuf>,
    /// StatsD aggregation window [default: 10s].
    #[arg(long = "statsd.flush-interval")]
    statsd_flush_interval: Option<String>,
    /// statsd_exporter-style mapping file.
    #[arg(long = "statsd.mapping-config")]
    statsd_mapping: Option<PathBuf>,
    /// Per-query timeout [default: 2m].
    #[arg(long = "query.timeout")]
    query_timeout: Option<String>,
    /// Most samples one query may load [default: 50000000].
    #[arg(long = "query.max-samples")]
    query_max_samples: Option<usize>,
    /// Instant-selector lookback [default: 5m].
    #[arg(long = "query.lookback-delta")]
    lookback_delta: Option<String>,
    /// Largest remote write / OTLP / Pushgateway body, compressed [default: 64MiB].
    #[arg(long = "web.push-body-limit")]
    push_body_limit: Option<String>,
    /// Largest decompressed remote write body [default: 64MiB].
    #[arg(long = "remote-write.max-decompressed-size")]
    remote_write_max_decompressed: Option<String>,
    /// Remote write / OTLP requests handled at once; more get 429 [default: 8].
    #[arg(long = "web.max-concurrent-writes")]
    max_concurrent_writes: Option<usize>,
    /// How often live push groups are re-sampled into storage [default: 15s].
    #[arg(long = "push.resample-interval")]
    push_resample_interval: Option<String>,
    /// Log level: error, warn, info, debug, trace (RUST_LOG overrides).
    #[arg(long = "log.level", default_value = "info")]
    log_level: String,
}

#[derive(Subcommand, Debug)]
enum TsdbCmd {
    /// Print series and samples as text exposition lines with ms timestamps.
    Dump {
        /// Data directory.
        #[arg(long = "storage.tsdb.path", default_value = "./data")]
        path: PathBuf,
        /// Series selector, e.g. 'up{job="api"}' [default: all series].
        #[arg(long = "match")]
        matcher: Option<String>,
        /// Earliest sample (RFC 3339 or Unix seconds) [default: all].
        #[arg(long = "min-time")]
        min_time: Option<String>,
        /// Latest sample (RFC 3339 or Unix seconds) [default: all].
        #[arg(long = "max-time")]
        max_time: Option<String>,
    },
    /// Print series/sample counts and the highest-cardinality names and labels.
    Analyze {
        /// Data directory.
        #[arg(long = "storage.tsdb.path", default_value = "./data")]
        path: PathBuf,
        /// How many entries per list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Args, Debug)]
struct QueryArgs {
    #[command(subcommand)]
    range: Option<QueryRangeCmd>,
    /// PromQL expression (instant query).
    expr: Option<String>,
    /// Evaluation time (RFC 3339 or Unix seconds) [default: server's now].
    #[arg(long)]
    time: Option<String>,
    /// Server URL.
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    server: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 130)]
    timeout: u64,
}

#[derive(Subcommand, Debug)]
enum QueryRangeCmd {
    /// Range query.
    Range {
        /// PromQL expression.
        expr: String,
        /// Start (RFC 3339 or Unix seconds).
        #[arg(long)]
        start: String,
        /// End (RFC 3339 or Unix seconds).
        #[arg(long)]
        end: String,
        /// Resolution (duration like 15s, or seconds).
        #[arg(long, default_value = "60s")]
        step: String,
        /// Server URL.
        #[arg(long, default_value = "http://127.0.0.1:9090")]
        server: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 130)]
        timeout: u64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Serve(args) => serve(*args),
        Cmd::Tsdb { cmd } => {
            init_logging("warn");
            run_tsdb(cmd)
        }
        Cmd::Query(q) => run_query_cmd(q),
        Cmd::Check { cmd } => run_check_cmd(cmd),
        Cmd::Test { cmd } => run_test_cmd(cmd),
    }
}

fn finish(out: watchpost::rules::check::CheckOutput) -> Result<()> {
    use std::io::Write as _;
    print!("{}", out.stdout);
    eprint!("{}", out.stderr);
    let _ = std::io::stdout().flush();
    std::process::exit(out.exit_code)
}

fn run_check_cmd(cmd: CheckCmd) -> Result<()> {
    use watchpost::rules::check::{CheckOptions, LintMode};
    let CheckCmd::Rules {
        files,
        lint,
        lint_fatal,
        ignore_unknown_fields,
    } = cmd;
    let lint = match lint.as_str() {
        "all" => LintMode::All,
        "duplicate-rules" => LintMode::DuplicateRules,
        "none" => LintMode::None,
        other => bail!("--lint: unknown value {other:?} (all, duplicate-rules, none)"),
    };
    let opts = CheckOptions {
        lint,
        lint_fatal,
        ignore_unknown_fields,
    };
    finish(watchpost::cli::rules::check_rules(&files, &opts))
}

fn run_test_cmd(cmd: TestCmd) -> Result<()> {
    let TestCmd::Rules { files, run } = cmd;
    let run = run
        .iter()
        .map(|r| regex::Regex::new(&format!("^(?:{r})$")).with_context(|| format!("--run {r:?}")))
        .collect::<Result<Vec<_>>>()?;
    let opts = watchpost::rules::unittest::TestOptions { run };
    finish(watchpost::cli::rules::test_rules(&files, &opts))
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn flag<T>(flag: &'static str, r: Result<T, String>) -> Result<T, ConfigError> {
    r.map_err(|msg| ConfigError::Flag { flag, msg })
}

/// Config file (or defaults), then flags on top.
fn effective_config(a: &ServeArgs) -> Result<Config, ConfigError> {
    let mut c = match &a.config_file {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(v) = &a.listen_address {
        c.web.listen_address = flag("web.listen-address", config::parse_addr(v))?;
    }
    c.web.enable_admin_api |= a.enable_admin_api;
    if let Some(v) = &a.import_body_limit {
        c.web.import_body_limit = flag("web.import-body-limit", config::parse_size(v))?;
    }
    if let Some(p) = &a.tsdb_path {
        c.storage.path = p.clone();
    }
    if let Some(v) = &a.retention_time {
        c.storage.retention_time_ms = Some(flag(
            "storage.tsdb.retention.time",
            config::parse_duration(v),
        )?);
    }
    if let Some(v) = &a.retention_size {
        c.storage.retention_size_bytes =
            Some(flag("storage.tsdb.retention.size", config::parse_size(v))?);
    }
    if let Some(v) = &a.wal_sync {
        c.storage.wal_sync = flag("storage.tsdb.wal-sync", config::parse_wal_sync(v))?;
    }
    if let Some(v) = &a.out_of_order_window {
        c.storage.out_of_order_window_ms = flag(
            "storage.tsdb.out-of-order-window",
            config::parse_duration(v),
        )?;
    }
    if !a.statsd_udp.is_empty() || !a.statsd_tcp.is_empty() || a.statsd_unix.is_some() {
        let mut s = c.statsd.take().unwrap_or_default();
        // Empty values name no listener: `--statsd.listen-udp=` alone is the
        // off switch, as with statsd_exporter.
        let addrs = |name: &'static str, vals: &[String]| {
            let parsed: Result<Vec<_>, _> = vals
                .iter()
                .filter(|v| !v.is_empty())
                .map(|v| config::parse_addr(v))
                .collect();
            flag(name, parsed)
        };
        s.listen_udp = addrs("statsd.listen-udp", &a.statsd_udp)?;
        s.listen_tcp = addrs("statsd.listen-tcp", &a.statsd_tcp)?;
        s.listen_unix = a.statsd_unix.clone();
        c.statsd = s.has_listener().then_some(s);
    }
    if let Some(s) = c.statsd.as_mut() {
        if let Some(v) = &a.statsd_flush_interval {
            s.flush_interval_ms = flag("statsd.flush-interval", config::parse_duration(v))?;
        }
        if let Some(m) = &a.statsd_mapping {
            s.mapping_file = Some(m.clone());
        }
    }
    if let Some(v) = &a.query_timeout {
        c.query.timeout_ms = flag("query.timeout", config::parse_duration(v))?;
    }
    if let Some(v) = a.query_max_samples {
        c.query.max_samples = v;
    }
    if let Some(v) = &a.lookback_delta {
        c.query.lookback_delta_ms = flag("query.lookback-delta", config::parse_duration(v))?;
    }
    Ok(c)
}

fn db_options(c: &Config, clock: Arc<dyn Clock>) -> DbOptions {
    let mut o = DbOptions::new(&c.storage.path);
    o.retention_time_ms = c.storage.retention_time_ms.unwrap_or(o.retention_time_ms);
    o.retention_size_bytes = c.storage.retention_size_bytes.unwrap_or(0);
    o.wal_sync = match c.storage.wal_sync {
        WalSync::Always => WalSyncPolicy::EveryCommit,
        WalSync::Interval(ms) => WalSyncPolicy::Interval(Duration::from_millis(ms)),
    };
    o.ooo_window_ms = c.storage.out_of_order_window_ms;
    o.clock = clock;
    o
}

fn statsd_config(s: &config::StatsdSection) -> Result<StatsdConfig> {
    let mut sc = StatsdConfig {
        udp_addrs: s.listen_udp.clone(),
        tcp_addrs: s.listen_tcp.clone(),
        unix_path: s.listen_unix.clone(),
        ..StatsdConfig::default()
    };
    sc.aggregator.flush_interval = Duration::from_millis(s.flush_interval_ms.max(1) as u64);
    if let Some(m) = &s.mapping_file {
        let mapping = MappingConfig::load(m)
            .with_context(|| format!("cannot load statsd mapping file {}", m.display()))?;
        sc.mapping = Some(Arc::new(mapping));
    }
    Ok(sc)
}

/// The push doors' limits from flags.
fn push_config(a: &ServeArgs) -> Result<PushConfig, ConfigError> {
    let mut p = PushConfig::default();
    let size = |f: &'static str, v: &str| {
        flag(f, config::parse_size(v)).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    if let Some(v) = &a.push_body_limit {
        p.body_limit = size("web.push-body-limit", v)?;
    }
    if let Some(v) = &a.remote_write_max_decompressed {
        p.decode.max_decompressed_bytes = size("remote-write.max-decompressed-size", v)?;
    }
    if let Some(n) = a.max_concurrent_writes {
        p.max_concurrent_writes = n.max(1);
    }
    if let Some(v) = &a.push_resample_interval {
        let ms = flag("push.resample-interval", config::parse_duration(v))?;
        p.resample_interval = Duration::from_millis(ms.max(1) as u64);
    }
    Ok(p)
}

fn serve(args: ServeArgs) -> Result<()> {
    init_logging(&args.log_level);
    let cfg = effective_config(&args)?;
    let push_cfg = push_config(&args)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("watchpost-http")
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve_async(cfg, push_cfg, clock, args.external_url.clone()))
}

async fn serve_async(
    cfg: Config,
    push_cfg: PushConfig,
    clock: Arc<dyn Clock>,
    external_url: Option<String>,
) -> Result<()> {
    let rule_files = load_rule_files(&cfg)?;
    // Take over SIGHUP at once, so one sent during WAL replay does not kill
    // the process (its default action); it is acted on once rules run.
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    let now = clock.now_ms();
    let engine_opts = EngineOptions {
        lookback_delta_ms: cfg.query.lookback_delta_ms,
        max_samples: cfg.query.max_samples,
        max_series: cfg.query.max_series,
        timeout: Duration::from_millis(cfg.query.timeout_ms.max(1) as u64),
        ..EngineOptions::default()
    };
    let info = ServerInfo {
        start_time_ms: now,
        cwd: std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        storage_retention: cfg.retention_description(),
        last_config_time_ms: now,
    };
    let mut state = AppState::new(
        clock.clone(),
        Arc::new(ServerMetrics::new()),
        QueryConfig {
            engine: engine_opts.clone(),
        },
        info,
    );
    state.import_body_limit = usize::try_from(cfg.web.import_body_limit).unwrap_or(usize::MAX);
    state.admin_api = cfg.web.enable_admin_api;
    let resample_interval = push_cfg.resample_interval;
    state.push = Arc::new(PushState::new(push_cfg));
    let p = state.push.clone();
    state
        .metrics
        .add_source(Arc::new(move || watchpost::http::push::door_metrics(&p)));

    // Serve HTTP first so /-/healthy answers (and /-/ready says 503) while
    // the WAL is replayed.
    let listener = tokio::net::TcpListener::bind(cfg.web.listen_address)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.web.listen_address))?;
    let bound = listener
        .local_addr()
        .context("cannot read the bound address")?;
    tracing::info!(address = %bound, "HTTP server listening");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut http_stop = stop_rx;
    let http = tokio::spawn(watchpost::http::serve(
        listener,
        state.clone(),
        async move {
            let _ = http_stop.wait_for(|s| *s).await;
        },
    ));

    // One signal listener for the whole run: once installed, a signal with
    // no live listener would be lost instead of stopping the process.
    let mut shutdown = Box::pin(shutdown_signal());
    let opts = db_options(&cfg, clock.clone());
    tracing::info!(path = %cfg.storage.path.display(), "opening storage and replaying the WAL");
    let started = std::time::Instant::now();
    let opened = tokio::select! {
        r = tokio::task::spawn_blocking(move || Db::open(opts)) => Some(r),
        () = &mut shutdown => None,
    };
    let db =
        match opened {
            None => {
                tracing::info!("shutdown requested during WAL replay");
                let _ = stop_tx.send(true);
                let _ = http.await;
                return Ok(());
            }
            Some(r) => Arc::new(r.context("storage task failed")?.with_context(|| {
                format!("cannot open storage in {}", cfg.storage.path.display())
            })?),
        };
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "storage ready"
    );
    state.set_backend(Arc::new(DbBackend {
        db: db.clone(),
        clock: clock.clone(),
    }));

    let pushes = PushStore::open(&cfg.storage.path, clock.clone())
        .with_context(|| format!("cannot open push groups in {}", cfg.storage.path.display()))?;
    state.push.set_store(Arc::new(pushes));
    let resampler = tokio::spawn(watchpost::http::push::run_resampler(
        state.clone(),
        resample_interval,
        stop_tx.subscribe(),
    ));

    let statsd = match &cfg.statsd {
        None => None,
        Some(s) => {
            let sc = statsd_config(s)?;
            let server = StatsdServer::start(sc, db.clone(), clock.clone())
                .context("cannot start the StatsD listener")?;
            tracing::info!(addresses = ?server.local_addrs(), "StatsD listening");
            state.set_statsd(server.handle());
            if let Some(path) = s.mapping_file.clone() {
                tokio::spawn(reload_mapping_on_sighup(path, server.handle()));
            }
            Some(server)
        }
    };

    let (rules, notifier) = start_rules(
        &cfg,
        rule_files,
        &engine_opts,
        &db,
        &clock,
        bound,
        external_url,
    );

    let rules = Arc::new(rules);
    state.set_rules(rules.clone());
    state.metrics.rule_sources.set_notifier(notifier.clone());
    let reloader = Arc::new(watchpost::rules::reload::Reloader::new(
        rules.clone(),
        cfg.rule_files.clone(),
        now,
    ));
    state.set_reloader(reloader.clone());
    if let Err(e) = reloader.watch(RULE_FILE_POLL) {
        tracing::error!("cannot watch rule files for changes: {e}");
    }
    tokio::spawn(reload_on_sighup(hup, reloader.clone()));

    let mut http = http;
    let http_result = tokio::select! {
        () = &mut shutdown => {
            tracing::info!("shutdown requested");
            let _ = stop_tx.send(true);
            (&mut http).await
        }
        r = &mut http => r,
    };
    if let Ok(Err(e)) = http_result {
        tracing::error!(error = %e, "HTTP server failed");
    }
    let _ = stop_tx.send(true);
    let _ = resampler.await;
    if let Some(s) = statsd {
        match tokio::task::spawn_blocking(move || s.shutdown()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "final StatsD flush failed"),
            Err(e) => tracing::error!(error = %e, "StatsD shutdown task failed"),
        }
    }
    reloader.stop();
    rules.stop();
    let n = notifier.clone();
    let _ = tokio::task::spawn_blocking(move || n.stop(Duration::from_secs(10))).await;
    let closing = db.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await
        .context("storage close task failed")?
        .context("cannot flush and close storage")?;
    tracing::info!("storage flushed and closed; bye");
    Ok(())
}

/// Re-reads the StatsD mapping file on every SIGHUP. A file that does not
/// load or validate is logged and the rules in force are kept.
async fn reload_mapping_on_sighup(path: PathBuf, statsd: watchpost::ingest::statsd::StatsdHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "cannot install the SIGHUP handler; mapping reload disabled");
            return;
        }
    };
    while hup.recv().await.is_some() {
        let p = path.clone();
        match tokio::task::spawn_blocking(move || MappingConfig::load(&p)).await {
            Ok(Ok(m)) => {
                let rules = m.len();
                statsd.reload_mapping(Some(Arc::new(m)));
                tracing::info!(path = %path.display(), rules, "StatsD mapping reloaded");
            }
            Ok(Err(e)) => {
                tracing::error!(path = %path.display(), error = %e, "StatsD mapping reload failed; keeping the previous rules");
            }
            Err(e) => tracing::error!(error = %e, "StatsD mapping reload task failed"),
        }
    }
}

/// Loads and validates the rule files; any error is fatal, as in
/// Prometheus, and is found before storage is opened.
fn load_rule_files(cfg: &Config) -> Result<Vec<RuleFile>> {
    load_globs(&cfg.rule_files, &LoadOptions::default()).map_err(|errs| {
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("invalid rule files:\n{}", msgs.join("\n"))
    })
}

/// Starts the Alertmanager senders and the rule groups.
fn start_rules(
    cfg: &Config,
    files: Vec<RuleFile>,
    engine: &EngineOptions,
    db: &Arc<Db>,
    clock: &Arc<dyn Clock>,
    bound: std::net::SocketAddr,
    external_url: Option<String>,
) -> (RuleManager, Arc<Notifier>) {
    let external_labels: std::collections::BTreeMap<String, String> = cfg
        .global
        .external_labels
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect();
    let targets: Vec<AlertmanagerTarget> = cfg
        .alerting
        .alertmanagers
        .iter()
        .flat_map(|am| {
            am.targets.iter().map(move |t| {
                let mut x = AlertmanagerTarget::new(t.clone());
                x.path_prefix = am.path_prefix.clone();
                x.timeout = Duration::from_millis(am.timeout_ms.max(1) as u64);
                x.basic_auth = am.basic_auth.clone();
                x.bearer_token = am.bearer_token.clone();
                x
            })
        })
        .collect();
    let n_targets = targets.len();
    let notifier = Notifier::new(targets, external_labels.clone(), DEFAULT_QUEUE_CAPACITY);
    let sender = notifier.clone();
    let querier: Arc<dyn Querier> = db.clone();
    let mut opts = ManagerOptions::new(
        engine_query_fn(Engine::new(engine.clone()), querier.clone()),
        Arc::new(move |alerts| sender.send(alerts)),
        db.clone(),
        clock.clone(),
    );
    opts.restore_querier = Some(querier);
    opts.evaluation_interval_ms = cfg.global.evaluation_interval_ms;
    opts.state_dir = Some(cfg.storage.path.join("rules"));
    opts.external_labels = external_labels;
    opts.external_url = external_url.unwrap_or_else(|| format!("http://{bound}"));
    let manager = RuleManager::new(opts);
    let n_files = files.len();
    manager.update(files);
    manager.start();
    tracing::info!(
        rule_files = n_files,
        alertmanagers = n_targets,
        "rules started"
    );
    (manager, notifier)
}

/// How often rule files are checked for changes (mtimes).
const RULE_FILE_POLL: Duration = Duration::from_secs(3);

/// Reloads the rule files on every SIGHUP.
async fn reload_on_sighup(
    hup: std::io::Result<tokio::signal::unix::Signal>,
    r: Arc<watchpost::rules::reload::Reloader>,
) {
    let mut hup = match hup {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("cannot install the SIGHUP handler: {e}");
            return;
        }
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading rule files");
        let r = r.clone();
        let _ = tokio::task::spawn_blocking(move || r.reload()).await;
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

fn parse_time_flag(name: &'static str, v: &Option<String>, default: i64) -> Result<i64> {
    match v {
        None => Ok(default),
        Some(s) => watchpost::http::params::parse_time(s)
            .map_err(|e| anyhow::anyhow!("invalid --{name}: {e}")),
    }
}

fn run_tsdb(cmd: TsdbCmd) -> Result<()> {
    match cmd {
        TsdbCmd::Dump {
            path,
            matcher,
            min_time,
            max_time,
        } => {
            let min_t = parse_time_flag("min-time", &min_time, i64::MIN)?;
            let max_t = parse_time_flag("max-time", &max_time, i64::MAX)?;
            let matchers = tsdb::selector(matcher.as_deref())?;
            if !path.is_dir() {
                bail!("no data directory at {}", path.display());
            }
            let db = tsdb::open_offline(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            tsdb::dump(&db, &matchers, min_t, max_t, &mut out)?;
            db.close()?;
            Ok(())
        }
        TsdbCmd::Analyze { path, limit } => {
            if !path.is_dir() {
                bail!("no data directory at {}", path.display());
            }
            let db = tsdb::open_offline(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            tsdb::analyze(&db, limit, &mut out)?;
            db.close()?;
            Ok(())
        }
    }
}

fn run_query_cmd(q: QueryArgs) -> Result<()> {
    let (server, req, timeout) = match q.range {
        Some(QueryRangeCmd::Range {
            expr,
            start,
            end,
            step,
            server,
            timeout,
        }) => (
            server,
            QueryRequest::Range {
                expr,
                start,
                end,
                step,
            },
            timeout,
        ),
        None => {
            let Some(expr) = q.expr else {
                bail!(
                    "missing expression: watchpost query 'expr' [--time T] or watchpost query range 'expr' --start S --end E --step D"
                );
            };
            (
                q.server,
                QueryRequest::Instant { expr, time: q.time },
                q.timeout,
            )
        }
    };
    let table = run_query(&server, &req, Duration::from_secs(timeout))?;
    print!("{table}");
    Ok(())
}
