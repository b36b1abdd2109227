#!/usr/bin/env bash
# Remote write, side by side in ONE run: watchpost (release binary,
# `watchpost serve` with its DEFAULT configuration, i.e. WAL sync policy
# `always`: every request's samples are fsynced before the 204), Debian's
# Prometheus 2.42 (`--web.enable-remote-write-receiver`) and Debian's
# VictoriaMetrics 1.79 (`/api/v1/write`), all on 127.0.0.1 with data
# directories under one temporary directory on the same filesystem.
#
# The sender is examples/remote_write_load.rs: the storage issue's 10k-series
# workload (benches/workload: 10,000 classic series, 15 s scrapes, one
# sample per series per scrape), pre-encoded as snappy-compressed
# remote write 1.0 requests of 2,000 series, sent over keep-alive loopback
# HTTP by RW_CONNECTIONS threads. Each round pushes RW_STEPS scrapes to each
# server in turn (the order rotates every round); round r's timestamps follow
# round r-1's, so later rounds measure the steady state (series exist) and
# the first one includes series creation. Reported per server: the median
# over rounds of wall throughput and of the server's CPU seconds (user +
# system, all threads, from /proc/PID/stat before and after the push) per
# million samples, plus ratios against Prometheus and VictoriaMetrics.
# After each push the script waits until that server is idle again (see
# `settle`). Afterwards a count query checks that each server holds every
# sample.
#
# Neither peer fsyncs per request (Prometheus fsyncs WAL segments when they
# are closed, VictoriaMetrics buffers for about a second); watchpost does,
# and its fsync time is part of its CPU figure.
#
# Usage: benches/remote_write_compare.sh        (from anywhere in the repository)
# Env:   RW_ROUNDS       rounds (default 5)
#        RW_STEPS        scrapes per round and server (default 40 = ~400k samples)
#        RW_CONNECTIONS  concurrent sender connections (default 2)
#        WATCHPOST_ARGS  extra `watchpost serve` flags (default none: the default config,
#                        except that the StatsD door is off: its self-metrics, written at
#                        "now" every flush, would move the head's newest time past the
#                        pushed history, whose older part then falls outside the 1 h
#                        appendable window, as it would in Prometheus)
# Needs: cargo, python3, curl, prometheus (2.42), victoria-metrics (1.79).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROUNDS=${RW_ROUNDS:-5}
STEPS=${RW_STEPS:-40}
CONNS=${RW_CONNECTIONS:-2}
STEP_MS=15000
for tool in prometheus victoria-metrics curl python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (Debian packages prometheus, victoria-metrics)"; exit 1; }
done

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "building (release) ..." >&2
cargo build --release --bin watchpost --example remote_write_load >&2
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
WP_BIN=$TARGET_DIR/release/watchpost
LOAD_BIN=$TARGET_DIR/release/examples/remote_write_load

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # url name log
    for _ in $(seq 1 150); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "$2 did not become ready ($1):"
    tail -n 30 "$3"
    exit 1
}

# ---- watchpost: default configuration (WAL fsync on every commit) ----
WP_PORT=$(free_port)
# shellcheck disable=SC2086
"$WP_BIN" serve --web.listen-address="127.0.0.1:$WP_PORT" \
    --storage.tsdb.path="$WORK/watchpost" --statsd.listen-udp= ${WATCHPOST_ARGS:-} \
    >"$WORK/watchpost.log" 2>&1 &
WP_PID=$!
PIDS+=("$WP_PID")
wait_http "http://127.0.0.1:$WP_PORT/-/ready" watchpost "$WORK/watchpost.log"

# ---- Prometheus 2.42: no scrape targets, remote write receiver on ----
PROM_PORT=$(free_port)
printf 'global:\n  scrape_interval: 1h\n' >"$WORK/prometheus.yml"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-remote-write-receiver \
    >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
PIDS+=("$PROM_PID")
wait_http "http://127.0.0.1:$PROM_PORT/-/ready" prometheus "$WORK/prometheus.log"

# ---- VictoriaMetrics 1.79 ----
VM_PORT=$(free_port)
victoria-metrics -httpListenAddr="127.0.0.1:$VM_PORT" -storageDataPath="$WORK/victoria-metrics" \
    >"$WORK/victoria-metrics.log" 2>&1 &
VM_PID=$!
PIDS+=("$VM_PID")
wait_http "http://127.0.0.1:$VM_PORT/health" victoria-metrics "$WORK/victoria-metrics.log"

declare -A URL=(
    [watchpost]="http://127.0.0.1:$WP_PORT/api/v1/write"
    [prometheus]="http://127.0.0.1:$PROM_PORT/api/v1/write"
    [victoria-metrics]="http://127.0.0.1:$VM_PORT/api/v1/write"
)
declare -A PID=([watchpost]=$WP_PID [prometheus]=$PROM_PID [victoria-metrics]=$VM_PID)
ORDER=(watchpost prometheus victoria-metrics)

# Waits (at most 10 s) until the server just pushed to has finished the work
# it deferred (VictoriaMetrics merges in the background, Prometheus cuts and
# compacts): less than 2 CPU ticks over half a second. So no server's push
# is measured while another one is still busy on the same two cores.
settle() { # pid
    local a b
    for _ in $(seq 1 20); do
        a=$(cut -d')' -f2 "/proc/$1/stat" | awk '{print $12 + $13}')
        sleep 0.5
        b=$(cut -d')' -f2 "/proc/$1/stat" | awk '{print $12 + $13}')
        [ $((b - a)) -lt 2 ] && return 0
    done
}

NOW_MS=$(($(date +%s) * 1000))
SPAN_MS=$((STEPS * STEP_MS))
# All rounds end two minutes before now (well inside every server's window).
BASE_MS=$((NOW_MS - ROUNDS * SPAN_MS - 120000))
LOAD_BEFORE=$(cat /proc/loadavg)
RESULTS=$WORK/results.txt
: >"$RESULTS"
echo "load average before: $LOAD_BEFORE" >&2
for r in $(seq 0 $((ROUNDS - 1))); do
    start=$((BASE_MS + r * SPAN_MS))
    for k in 0 1 2; do
        name=${ORDER[$(((r + k) % 3))]}
        out=$("$LOAD_BIN" --url "${URL[$name]}" --steps "$STEPS" --connections "$CONNS" \
            --pid "${PID[$name]}" --start-ms "$start" 2>&1) ||
            { echo "round $r: pushing to $name failed:"; echo "$out" | tail -n 5; exit 1; }
        line=$(echo "$out" | grep '^result ')
        echo "round $r $name $line" >&2
        echo "$r $name $line" >>"$RESULTS"
        settle "${PID[$name]}"
    done
done
LOAD_AFTER=$(cat /proc/loadavg)
echo "load average after: $LOAD_AFTER" >&2

# ---- every sample there? count_over_time summed per metric name ----
# (per name: count_over_time drops __name__, and node_gauge_0..19 share
# their other labels, so one query over every name is refused as a
# duplicate label set by Prometheus).
sleep 3 # VictoriaMetrics makes new samples searchable within about a second
END_S=$(((BASE_MS + ROUNDS * SPAN_MS) / 1000 + 60))
RANGE_S=$((ROUNDS * SPAN_MS / 1000 + 120))
count_samples() { # base_url
    python3 - "$1" "$END_S" "$RANGE_S" <<'PY' || echo "query-failed"
import json, sys, urllib.parse, urllib.request
base, end, rng = sys.argv[1], sys.argv[2], sys.argv[3]
def get(path, **q):
    with urllib.request.urlopen(f"{base}{path}?{urllib.parse.urlencode(q)}", timeout=120) as r:
        return json.load(r)["data"]
total = 0
for name in get("/api/v1/label/__name__/values", start=0, end=end):
    res = get("/api/v1/query", query=f"sum(count_over_time({name}[{rng}s]))", time=end)
    total += int(float(res["result"][0]["value"][1])) if res["result"] else 0
print(total)
PY
}
declare -A COUNT
COUNT[watchpost]=$(count_samples "http://127.0.0.1:$WP_PORT")
COUNT[prometheus]=$(count_samples "http://127.0.0.1:$PROM_PORT")
COUNT[victoria-metrics]=$(count_samples "http://127.0.0.1:$VM_PORT")
WP_FSYNCS=$(curl -fsS "http://127.0.0.1:$WP_PORT/metrics" | awk '$1 ~ /wal_fsyncs/ { v = $2 } END { print v }')

python3 - "$RESULTS" "$ROUNDS" "$STEPS" "$CONNS" "$LOAD_BEFORE" "$LOAD_AFTER" \
    "${COUNT[watchpost]}" "${COUNT[prometheus]}" "${COUNT[victoria-metrics]}" "${WP_FSYNCS:-?}" \
    "${WATCHPOST_ARGS:-}" <<'EOF'
import statistics, sys
path, rounds, steps, conns, before, after, cwp, cprom, cvm, fsyncs, wpargs = sys.argv[1:]
rows = {}
for line in open(path):
    f = line.split()
    kv = dict(x.split("=") for x in f[3:])
    rows.setdefault(f[1], []).append(
        (int(kv["samples"]), float(kv["wall_s"]), float(kv["cpu_s"])))
names = ["watchpost", "prometheus", "victoria-metrics"]
med = {}
for n in names:
    r = rows[n]
    tput = statistics.median(s / w for s, w, _ in r)
    cpm = statistics.median(c / (s / 1e6) for s, _, c in r)
    med[n] = (r[0][0], tput, cpm, [c / (s / 1e6) for s, _, c in r])
counts = {"watchpost": cwp, "prometheus": cprom, "victoria-metrics": cvm}
total = {n: sum(s for s, _, _ in rows[n]) for n in names}
print(f"remote write 1.0, {rounds} interleaved rounds x {steps} scrapes of the 10k-series workload, "
      f"{conns} sender connections, 2,000 series per request")
print(f"watchpost: default config{(' + ' + wpargs) if wpargs else ''} "
      f"(WAL sync `always`: fsync before every 204), {fsyncs} WAL fsyncs in the run")
print(f"load average before: {before}")
print(f"load average after:  {after}")
print()
print("| server | samples/round | wall throughput (median) | server CPU-s per million samples (median) | per-round CPU-s/M | CPU ratio watchpost/this | samples stored (count query) / pushed |")
print("|---|---:|---:|---:|---|---:|---|")
wp = med["watchpost"][2]
for n in names:
    s, t, c, per = med[n]
    ratio = wp / c if c > 0 else float("nan")
    print(f"| {n} | {s:,} | {t/1e6:.2f} M samples/s | {c:.3f} | {' '.join(f'{x:.2f}' for x in per)} | {ratio:.2f} | {counts[n]} / {total[n]} |")
print()
print(f"throughput ratio watchpost/prometheus {med['watchpost'][1]/med['prometheus'][1]:.2f}, "
      f"watchpost/victoria-metrics {med['watchpost'][1]/med['victoria-metrics'][1]:.2f}")
print(f"target <= 0.5 CPU-s per million samples: {'MET' if wp <= 0.5 else 'NOT met'} ({wp:.3f})")
if str(total["watchpost"]) != cwp:
    print(f"ERROR: watchpost holds {cwp} samples, {total['watchpost']} were pushed")
    sys.exit(1)
EOF
