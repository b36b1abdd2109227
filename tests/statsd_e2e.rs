//! The StatsD door of the real binary: `watchpost serve` with StatsD on
//! 127.0.0.1 (kernel-chosen ports), real client libraries (PyPI `statsd`,
//! PyPI `datadog`, npm `hot-shots`) sending over UDP, raw lines over TCP and
//! a unix datagram socket, a forced flush through
//! `POST /api/v1/admin/statsd/flush`, and every value read back through
//! `/api/v1/query`. A missing client skips its test loudly, or fails it when
//! `WATCHPOST_REQUIRE_ALL=1`.
//!
//! Install the clients: `pip install statsd datadog` and
//! `npm install --prefix tests/node`.

mod harness;

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::{Server, tempdir};
use watchpost::cli::client::form;
use watchpost::http::paths;

fn require_all() -> bool {
    std::env::var("WATCHPOST_REQUIRE_ALL").as_deref() == Ok("1")
}

/// Skips (loudly) or fails when a client is missing.
fn missing(what: &str) {
    assert!(
        !require_all(),
        "{what} is missing and WATCHPOST_REQUIRE_ALL=1"
    );
    eprintln!("SKIPPED: {what} is not installed");
}

/// A command with every `DD_*`/`DATADOG_*` variable removed, so the
/// datadog client adds no constant tags, origin fields or telemetry.
fn clean_command(program: &str) -> Command {
    let mut c = Command::new(program);
    for (k, _) in std::env::vars() {
        if k.starts_with("DD_") || k.starts_with("DATADOG_") {
            c.env_remove(k);
        }
    }
    c
}

fn python_has(module: &str) -> bool {
    clean_command("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A server with StatsD on and the admin API enabled; a long flush
/// interval so only forced flushes write (the aligned background flush
/// would need the test to straddle a UTC midnight).
fn start(data: &Path, extra: &[&str]) -> Server {
    let mut args = vec![
        "--web.enable-admin-api",
        "--statsd.listen-udp=127.0.0.1:0",
        "--statsd.flush-interval=24h",
    ];
    args.extend_from_slice(extra);
    let s = Server::start(data, &args);
    s.wait_ready();
    s
}

/// The bound address of `transport` (`udp` or `tcp`), read from the
/// server's "StatsD listening" log line.
fn statsd_addr(s: &Server, transport: &str) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(30);
    let key = format!("{transport}: [");
    loop {
        let log = s.log();
        if let Some(line) = log.lines().find(|l| l.contains("StatsD listening"))
            && let Some(rest) = line.split(&key).nth(1)
            && let Some(addr) = rest.split([']', ',']).next()
        {
            return addr
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("bad {transport} address {addr:?}: {e}"));
        }
        assert!(
            Instant::now() < deadline,
            "no StatsD {transport} address in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One value of a self-metric on `/metrics` (0 when absent).
fn scrape(s: &Server, sample: &str) -> f64 {
    let r = s.get(paths::METRICS);
    assert_eq!(r.status, 200);
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Waits (bounded) until the door has received `lines` lines.
fn wait_lines(s: &Server, lines: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = scrape(s, "statsd_lines_received_total");
        if got >= lines as f64 {
            assert_eq!(got, lines as f64, "more lines than sent");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "received {got} of {lines} lines; log:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn flush(s: &Server) {
    let r = s.req("POST", paths::ADMIN_STATSD_FLUSH, b"");
    assert_eq!(r.status, 204, "flush: {}", r.text());
}

/// The single value of `q` at the server's now.
fn value(s: &Server, q: &str) -> f64 {
    let r = s.get(&format!("{}?{}", paths::QUERY, form(&[("query", q)])));
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    let res = v["data"]["result"].as_array().expect("vector result");
    assert_eq!(res.len(), 1, "{q}: want one series, got {res:?}");
    res[0]["value"][1]
        .as_str()
        .expect("value")
        .parse()
        .expect("number")
}

fn assert_close(q: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "{q}: got {got}, want {want}"
    );
}

fn check(s: &Server, q: &str, want: f64) {
    assert_close(q, value(s, q), want);
}

/// Runs a client script (given the UDP port as its argument), waits for
/// its lines, forces a flush over HTTP.
fn drive(s: &Server, lines: u64, mut client: Command) {
    let port = statsd_addr(s, "udp").port();
    let out = client.arg(port.to_string()).output().expect("run client");
    assert!(
        out.status.success(),
        "client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wait_lines(s, lines);
    flush(s);
}

#[test]
fn pypi_statsd_client_through_binary() {
    if !python_has("statsd") {
        return missing("PyPI package `statsd` (pip install statsd)");
    }
    let (_tmp, data) = tempdir();
    let s = start(&data, &[]);
    let script = r#"
import sys, statsd
c = statsd.StatsClient('127.0.0.1', int(sys.argv[1]))
c.incr('py.count')
c.incr('py.count', 2)
c.timing('py.t', 320)
c.timing('py.t', 40)
c.set('py.s', 'abc')
c.set('py.s', 'def')
c.set('py.s', 'abc')
c.gauge('py.g', 10)
c.gauge('py.g', 3, delta=True)
c.gauge('py.neg', -5)
c.decr('py.dec')
with c.pipeline() as p:
    p.incr('py.pa')
    p.timing('py.pc', 1.5)
"#;
    let mut c = clean_command("python3");
    c.args(["-c", script]);
    // 12 single lines (gauge(-5) sends two) + 2 pipelined.
    drive(&s, 14, c);
    check(&s, "py_count_total", 3.0);
    check(&s, "py_t_count", 2.0);
    check(&s, "py_t_sum", 0.36);
    check(&s, r#"py_t_bucket{le="0.05"}"#, 1.0);
    check(&s, r#"py_t_bucket{le="0.25"}"#, 1.0);
    check(&s, r#"py_t_bucket{le="0.5"}"#, 2.0);
    check(&s, r#"py_t_bucket{le="+Inf"}"#, 2.0);
    check(&s, "py_s", 2.0);
    check(&s, "py_g", 13.0);
    check(&s, "py_neg", -5.0);
    check(&s, "py_pa_total", 1.0);
    check(&s, "py_pc_sum", 0.0015);
    // decr() sends -1|c: rejected, counted in the store's self-metrics.
    check(
        &s,
        r#"statsd_bad_lines_total{reason="negative_counter"}"#,
        1.0,
    );
    check(&s, "absent(py_dec_total)", 1.0);
    assert!(s.stop().success());
}

#[test]
fn pypi_datadog_client_through_binary() {
    if !python_has("datadog") {
        return missing("PyPI package `datadog` (pip install datadog)");
    }
    let (_tmp, data) = tempdir();
    let s = start(&data, &[]);
    let script = r#"
import sys
from datadog import DogStatsd
c = DogStatsd(host='127.0.0.1', port=int(sys.argv[1]), disable_telemetry=True)
c.increment('dd.count', tags=['env:prod', 'novalue'])
c.increment('dd.count', 2, tags=['env:prod'])
c.increment('dd.count', 5, tags=['env:dev'])
c.gauge('dd.g', 5, tags=['host:a'])
c.histogram('dd.h', 1e-05, tags=['a:b'])
c.histogram('dd.h', 7, tags=['a:b'])
c.distribution('dd.d', 2.5)
c.timing('dd.t', 250)
c.set('dd.s', 'x', tags=['k:v'])
c.set('dd.s', 'y', tags=['k:v'])
c.event('title', 'text body', tags=['a:b'])
c.service_check('svc.up', 0, tags=['a:b'], message='ok')
c.flush()
"#;
    let mut c = clean_command("python3");
    c.args(["-c", script]);
    drive(&s, 12, c);
    check(&s, r#"dd_count_total{env="prod"}"#, 3.0);
    check(&s, r#"dd_count_total{env="dev"}"#, 5.0);
    check(&s, "sum(dd_count_total)", 8.0);
    check(&s, r#"dd_g{host="a"}"#, 5.0);
    check(&s, r#"dd_h_bucket{a="b",le="0.005"}"#, 1.0);
    check(&s, r#"dd_h_bucket{a="b",le="5"}"#, 1.0);
    check(&s, r#"dd_h_bucket{a="b",le="10"}"#, 2.0);
    check(&s, r#"dd_h_count{a="b"}"#, 2.0);
    check(&s, r#"dd_h_sum{a="b"}"#, 7.00001);
    check(&s, r#"dd_d_bucket{le="2.5"}"#, 1.0);
    check(&s, r#"dd_t_bucket{le="0.25"}"#, 1.0);
    check(&s, "dd_t_sum", 0.25);
    check(&s, r#"dd_s{k="v"}"#, 2.0);
    check(&s, "statsd_tag_errors_total", 1.0);
    check(&s, r#"statsd_events_ignored_total{kind="event"}"#, 1.0);
    check(
        &s,
        r#"statsd_events_ignored_total{kind="service_check"}"#,
        1.0,
    );
    check(&s, "sum(statsd_bad_lines_total)", 0.0);
    assert!(s.stop().success());
}

#[test]
fn npm_hot_shots_client_through_binary() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let installed = dir.join("node_modules/hot-shots/package.json").exists();
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node || !installed {
        return missing("npm package `hot-shots` (npm install --prefix tests/node)");
    }
    let (_tmp, data) = tempdir();
    let s = start(&data, &[]);
    let script = r#"
const StatsD = require('hot-shots');
const port = Number(process.argv[1]);
const onErr = (e) => { if (e) { console.error(e); process.exitCode = 1; } };
const c = new StatsD({ host: '127.0.0.1', port, errorHandler: onErr });
const tg = new StatsD({ host: '127.0.0.1', port, telegraf: true, errorHandler: onErr });
c.increment('hs.count');
c.increment('hs.count', 3, ['env:prod']);
c.gauge('hs.g', 7);
c.gaugeDelta('hs.g', 2);
c.timing('hs.t', 320);
c.histogram('hs.h', 5, { a: 'b' });
c.distribution('hs.d', 30, { a: 'c' });
c.set('hs.s', 'u1');
c.set('hs.s', 'u2');
c.set('hs.s', 'u1');
c.decrement('hs.dec');
tg.increment('tg.count', 1, { env: 'prod', region: 'us' });
c.close(onErr);
tg.close(onErr);
"#;
    let mut c = clean_command("node");
    c.current_dir(&dir).args(["-e", script]);
    drive(&s, 12, c);
    check(&s, r#"hs_count_total{env=""}"#, 1.0);
    check(&s, r#"hs_count_total{env="prod"}"#, 3.0);
    check(&s, "hs_g", 9.0);
    check(&s, "hs_t_sum", 0.32);
    check(&s, r#"hs_t_bucket{le="0.5"}"#, 1.0);
    check(&s, r#"hs_t_bucket{le="0.25"}"#, 0.0);
    check(&s, r#"hs_h_bucket{a="b",le="5"}"#, 1.0);
    check(&s, r#"hs_h_bucket{a="b",le="2.5"}"#, 0.0);
    check(&s, r#"hs_d_bucket{a="c",le="50"}"#, 1.0);
    check(&s, "hs_s", 2.0);
    check(&s, r#"tg_count_total{env="prod",region="us"}"#, 1.0);
    check(
        &s,
        r#"statsd_bad_lines_total{reason="negative_counter"}"#,
        1.0,
    );
    assert!(s.stop().success());
}

/// TCP and unix datagram listeners from flags; the counter keeps counting
/// across forced flushes; a second flush with nothing new still answers 204.
#[test]
fn tcp_and_unixgram_listeners() {
    let (_tmp, data) = tempdir();
    let sock = data.with_file_name(format!(
        "{}.statsd.sock",
        data.file_name().unwrap().to_string_lossy()
    ));
    let unix_flag = format!("--statsd.listen-unixgram={}", sock.display());
    let s = start(&data, &["--statsd.listen-tcp=127.0.0.1:0", &unix_flag]);
    let tcp = statsd_addr(&s, "tcp");
    let mut conn = TcpStream::connect(tcp).expect("connect tcp");
    conn.write_all(b"tcp.count:2|c|#via:tcp\ntcp.g:4|g\nbad line\ntcp.h:0.2|h")
        .unwrap();
    drop(conn); // EOF ends the last, unterminated line
    let u = std::os::unix::net::UnixDatagram::unbound().unwrap();
    u.send_to(b"ux.count:1|c\nux.count:1|c|@0.5\n", &sock)
        .expect("send unixgram");
    wait_lines(&s, 6);
    flush(&s);
    check(&s, r#"tcp_count_total{via="tcp"}"#, 2.0);
    check(&s, "tcp_g", 4.0);
    check(&s, r#"tcp_h_bucket{le="0.25"}"#, 1.0);
    check(&s, "ux_count_total", 3.0);
    check(
        &s,
        r#"statsd_packets_received_total{transport="unixgram"}"#,
        1.0,
    );
    check(
        &s,
        r#"statsd_bad_lines_total{reason="malformed_line"}"#,
        1.0,
    );
    u.send_to(b"ux.count:4|c", &sock).unwrap();
    wait_lines(&s, 7);
    flush(&s);
    flush(&s);
    check(&s, "ux_count_total", 7.0);
    assert!(s.stop().success());
    assert!(!sock.exists(), "unix socket file left behind");
}

/// The flush endpoint answers through the API's error format when it
/// cannot act.
#[test]
fn flush_endpoint_refusals() {
    let (_tmp, data) = tempdir();
    let s = Server::start(&data, &["--statsd.listen-udp=127.0.0.1:0"]);
    s.wait_ready();
    let r = s.req("POST", paths::ADMIN_STATSD_FLUSH, b"");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.text().contains("\"errorType\":\"unavailable\""),
        "{}",
        r.text()
    );
    assert!(r.text().contains("Admin APIs disabled"), "{}", r.text());
    let r = s.get(paths::ADMIN_STATSD_FLUSH);
    assert_eq!(r.status, 405, "{}", r.text());
    assert!(s.stop().success());

    let (_tmp2, data2) = tempdir();
    let s = Server::start(&data2, &["--web.enable-admin-api"]);
    s.wait_ready();
    let r = s.req("POST", paths::ADMIN_STATSD_FLUSH, b"");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("StatsD is not enabled"), "{}", r.text());
    assert!(s.stop().success());
}

/// A mapping file given by flag is applied (scale, rename with a capture
/// label, drop), and a bad one stops the server at start with its location.
#[test]
fn mapping_file_from_flag() {
    let (_tmp, data) = tempdir();
    let map = data.with_extension("mapping.yml");
    std::fs::write(
        &map,
        "mappings:\n  - match: api.response_time\n    scale: 0.001\n  - match: \"jobs.*.done\"\n    name: jobs_done\n    labels: { queue: \"$1\" }\n  - match: \"noise.*\"\n    action: drop\n",
    )
    .unwrap();
    let flag = format!("--statsd.mapping-config={}", map.display());
    let s = start(&data, &[&flag]);
    let udp = statsd_addr(&s, "udp");
    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.send_to(
        b"api.response_time:1500|h\njobs.mail.done:2|c\nnoise.x:1|c\n",
        udp,
    )
    .unwrap();
    wait_lines(&s, 3);
    flush(&s);
    check(&s, "api_response_time_sum", 1.5);
    check(&s, r#"api_response_time_bucket{le="1"}"#, 0.0);
    check(&s, r#"api_response_time_bucket{le="2.5"}"#, 1.0);
    check(&s, r#"jobs_done_total{queue="mail"}"#, 2.0);
    check(&s, "absent(noise_x_total)", 1.0);
    assert!(s.stop().success());

    std::fs::write(&map, "mappings:\n  - match: \"a.*\"\n    name: \"x_$2\"\n").unwrap();
    let out = Command::new(harness::bin())
        .args(["serve", "--web.listen-address=127.0.0.1:0"])
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .args(["--statsd.listen-udp=127.0.0.1:0", &flag])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mapping") && err.contains(&map.display().to_string()),
        "{err}"
    );
}

/// Waits (bounded) until the server log contains `needle`.
fn wait_log(s: &Server, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = s.log();
        if log.contains(needle) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sighup(s: &Server) {
    let pid = s.child.id().to_string();
    let st = Command::new("kill").args(["-HUP", &pid]).status();
    assert!(
        st.is_ok_and(|st| st.success()),
        "cannot send SIGHUP to {pid}"
    );
}

/// SIGHUP reloads the mapping file: an invalid file is refused with its
/// location and reason and the rules in force are kept; a valid one
/// applies to the lines that follow. The granted `SO_RCVBUF` is logged.
#[test]
fn mapping_reload_on_sighup_validates_and_keeps_old_rules() {
    let (_tmp, data) = tempdir();
    let map = data.with_extension("reload.yml");
    std::fs::write(&map, "mappings:\n  - match: \"a.*\"\n    name: first_$1\n").unwrap();
    let flag = format!("--statsd.mapping-config={}", map.display());
    let s = start(&data, &[&flag]);
    let log = wait_log(&s, "statsd: UDP receive buffer");
    assert!(log.contains("granted="), "{log}");
    let udp = statsd_addr(&s, "udp");
    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.send_to(b"a.x:1|g", udp).unwrap();
    wait_lines(&s, 1);

    // Invalid: `$2` with one capture. Refused, old rules stay.
    std::fs::write(
        &map,
        "mappings:\n  - match: \"a.*\"\n    name: \"second_$2\"\n",
    )
    .unwrap();
    sighup(&s);
    let log = wait_log(&s, "StatsD mapping reload failed");
    let line = log
        .lines()
        .find(|l| l.contains("StatsD mapping reload failed"))
        .unwrap();
    assert!(
        line.contains("$2"),
        "error does not name the bad capture: {line}"
    );
    c.send_to(b"a.y:2|g", udp).unwrap();
    wait_lines(&s, 2);

    // Valid: applies from now on.
    std::fs::write(&map, "mappings:\n  - match: \"a.*\"\n    name: second_$1\n").unwrap();
    sighup(&s);
    wait_log(&s, "StatsD mapping reloaded");
    c.send_to(b"a.z:3|g", udp).unwrap();
    wait_lines(&s, 3);
    flush(&s);
    check(&s, "first_x", 1.0);
    check(&s, "first_y", 2.0);
    check(&s, "second_z", 3.0);
    check(&s, "absent(second_y)", 1.0);
    assert!(s.stop().success());
}
