#!/usr/bin/env bash
# Same bounded StatsD load, in one run, against watchpost (the release
# binary, `watchpost serve` with StatsD on UDP) and against etsy's statsd
# 0.9 (npm package `statsd`, no backends, 1 h flush interval so no flush
# happens during the run). The load is the `statsd_load` bench's generator
# (newline-packed ~1,400-byte DogStatsD datagrams over loopback) in its
# external-target mode. Prints lines sent, lines received per second and
# drops for both, and the ratio watchpost/etsy.
#
# Usage: benches/statsd_compare.sh        (from the repository root)
# Env:   STATSD_LOAD_LINES  lines per run (default 3000000; bounds the run)
#        STATSD_LOAD_RATE   pace the sender to this many lines/s (default: unpaced)
#        ETSY_STATSD_DIR    where npm package statsd@0.9.0 is (or gets) installed
#                           (default: target/etsy-statsd)
# Needs: cargo, python3, curl; node and npm for the etsy half (installed on
#        first use; when they are missing or the install fails the etsy half
#        is skipped with the reason printed and only watchpost is measured).
set -euo pipefail

LOAD_AT_START=$(cat /proc/loadavg)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
LINES=${STATSD_LOAD_LINES:-3000000}
export STATSD_LOAD_LINES=$LINES
ETSY_DIR=${ETSY_STATSD_DIR:-$ROOT/target/etsy-statsd}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# etsy statsd is optional: when node is missing or statsd 0.9 cannot be
# installed (no npm, no network), the watchpost half still runs and the
# etsy half is reported as SKIPPED with the reason.
ETSY_SKIP=""
etsy_version() {
    node -e 'console.log(require(process.argv[1]).version)' \
        "$ETSY_DIR/node_modules/statsd/package.json" 2>/dev/null || true
}
if ! command -v node >/dev/null 2>&1; then
    ETSY_SKIP="node is not installed"
elif [ ! -f "$ETSY_DIR/node_modules/statsd/stats.js" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        ETSY_SKIP="npm is not installed and statsd is not in $ETSY_DIR"
    else
        echo "installing etsy statsd 0.9.0 into $ETSY_DIR" >&2
        mkdir -p "$ETSY_DIR"
        # --ignore-scripts: only the optional syslog backend has a native
        # build step, and it is not used here.
        if ! timeout 300 npm install --no-audit --no-fund --ignore-scripts \
            --prefix "$ETSY_DIR" statsd@0.9.0 >&2; then
            ETSY_SKIP="npm install statsd@0.9.0 failed (offline?)"
        fi
    fi
fi
if [ -z "$ETSY_SKIP" ]; then
    case "$(etsy_version)" in
    0.9.*) ;;
    *) ETSY_SKIP="$ETSY_DIR holds statsd '$(etsy_version)', not 0.9.x" ;;
    esac
fi
[ -z "$ETSY_SKIP" ] || echo "etsy statsd: SKIPPED: $ETSY_SKIP" >&2

echo "building (release) ..." >&2
cargo build --release --bin watchpost >&2
BENCH_EXE=$(cargo bench --bench statsd_load --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for l in sys.stdin:
    j = json.loads(l)
    if j.get("executable") and j.get("target", {}).get("name") == "statsd_load":
        print(j["executable"])' | tail -n 1)
[ -x "$BENCH_EXE" ] || { echo "cannot find the statsd_load bench executable"; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Kernel drops of the UDP socket bound to 127.0.0.1:$1 (/proc/net/udp, last column).
kernel_drops() {
    python3 - "$1" <<'EOF'
import sys
port = int(sys.argv[1])
total = 0
for line in open("/proc/net/udp").read().splitlines()[1:]:
    cols = line.split()
    if int(cols[1].split(":")[1], 16) == port:
        total += int(cols[-1])
print(total)
EOF
}

# Runs the generator against 127.0.0.1:$1; prints its last line
# (sent_lines=... sent_packets=... send_secs=...).
load() {
    STATSD_LOAD_TARGET="127.0.0.1:$1" "$BENCH_EXE" | tail -n 1
}

# Polls a counter command until it stops moving (bounded, 15 s); prints
# "value seconds_since_start".
settle() {
    local cmd=$1 start=$2 last=-1 v now
    for _ in $(seq 1 75); do
        v=$($cmd)
        if [ "$v" = "$last" ]; then break; fi
        last=$v
        sleep 0.2
    done
    now=$(date +%s.%N)
    echo "$last $(python3 -c "print($now - $start - 0.2)")"
}

report() { # name sent_lines secs received drops_kernel drops_queue
    python3 - "$@" <<'EOF'
import sys
name, sent, secs, recv, kdrops, qdrops = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(float(sys.argv[4])), sys.argv[5], sys.argv[6]
print(f"{name:10} sent {sent:>9} lines  received {recv:>9} lines  {recv/secs:>11.0f} lines/s received  lost {sent-recv:>9}  kernel drops {kdrops:>7} datagrams  queue drops {qdrops}")
EOF
}

# ---- watchpost ----
WP_LOG=$WORK/watchpost.log
RUST_LOG=info target/release/watchpost serve \
    --web.listen-address=127.0.0.1:0 --web.enable-admin-api \
    --storage.tsdb.path="$WORK/data" \
    --statsd.listen-udp=127.0.0.1:0 --statsd.flush-interval=1h \
    2>"$WP_LOG" &
PIDS+=($!)
for _ in $(seq 1 150); do
    grep -q "StatsD listening" "$WP_LOG" && break
    sleep 0.2
done
HTTP=$(grep -o 'HTTP server listening address=[^ ]*' "$WP_LOG" | head -1 | sed 's/.*address=//')
WP_UDP=$(grep 'StatsD listening' "$WP_LOG" | head -1 | sed 's/.*udp: \[\([^],]*\).*/\1/')
WP_PORT=${WP_UDP##*:}
[ -n "$HTTP" ] && [ -n "$WP_PORT" ] || { echo "watchpost did not start:"; cat "$WP_LOG"; exit 1; }
wp_metric() {
    curl -s "http://$HTTP/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
wp_lines() { wp_metric statsd_lines_received_total; }
START=$(date +%s.%N)
read -r WP_SENT _ _ < <(load "$WP_PORT" | tr ' ' '\n' | sed 's/.*=//' | tr '\n' ' '; echo)
read -r WP_RECV WP_SECS < <(settle wp_lines "$START")
curl -s -X POST "http://$HTTP/api/v1/admin/statsd/flush" >/dev/null
WP_KDROPS=$(wp_metric statsd_kernel_drops_total)
WP_QDROPS=$(curl -s "http://$HTTP/metrics" | awk '$1 ~ /^statsd_queue_drops_total/ { s += $2 } END { print s + 0 }')

echo "StatsD load: $LINES lines per server, ~1,400-byte DogStatsD datagrams over loopback UDP (rate: ${STATSD_LOAD_RATE:-unpaced})"
echo "load average at start: $LOAD_AT_START; now: $(cat /proc/loadavg)"
report watchpost "$WP_SENT" "$WP_SECS" "$WP_RECV" "$WP_KDROPS" "$WP_QDROPS"
if [ -n "$ETSY_SKIP" ]; then
    echo "etsy-0.9    SKIPPED: $ETSY_SKIP (no ratio)"
    exit 0
fi

# ---- etsy statsd ----
ETSY_PORT=$(free_port)
MGMT_PORT=$(free_port)
cat >"$WORK/etsy-config.js" <<EOF
{ address: "127.0.0.1", port: $ETSY_PORT, mgmt_address: "127.0.0.1", mgmt_port: $MGMT_PORT,
  backends: [], flushInterval: 3600000 }
EOF
node "$ETSY_DIR/node_modules/statsd/stats.js" "$WORK/etsy-config.js" >"$WORK/etsy.log" 2>&1 &
PIDS+=($!)
etsy_counter() { # name
    python3 - "$MGMT_PORT" "$1" <<'EOF'
import re, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"counters\n")
buf = b""
while b"}" not in buf:
    d = s.recv(65536)
    if not d:
        break
    buf += d
s.close()
m = re.search(r"'statsd\." + re.escape(sys.argv[2]) + r"': (\d+)", buf.decode())
print(m.group(1) if m else 0)
EOF
}
etsy_lines() { etsy_counter metrics_received; }
ETSY_UP=""
for _ in $(seq 1 150); do
    if etsy_lines >/dev/null 2>&1; then ETSY_UP=1; break; fi
    sleep 0.2
done
if [ -z "$ETSY_UP" ]; then
    echo "etsy-0.9    SKIPPED: etsy statsd did not answer on its management port; its log:"
    cat "$WORK/etsy.log"
    exit 0
fi
START=$(date +%s.%N)
read -r ETSY_SENT _ _ < <(load "$ETSY_PORT" | tr ' ' '\n' | sed 's/.*=//' | tr '\n' ' '; echo)
read -r ETSY_RECV ETSY_SECS < <(settle etsy_lines "$START")
ETSY_KDROPS=$(kernel_drops "$ETSY_PORT")
ETSY_BAD=$(etsy_counter bad_lines_seen)

report etsy-0.9 "$ETSY_SENT" "$ETSY_SECS" "$ETSY_RECV" "$ETSY_KDROPS" "n/a (bad lines $ETSY_BAD)"
python3 -c "
wp = $WP_RECV / $WP_SECS; et = $ETSY_RECV / $ETSY_SECS
print(f'ratio watchpost/etsy (lines/s received): {wp / et:.2f}x')"
