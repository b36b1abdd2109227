#!/usr/bin/env bash
# watchpost's remote-write receive CPU alone, for before/after comparisons of
# watchpost builds (benches/remote_write_compare.sh is the three-way run).
#
# For each build directory given (each holding `watchpost` and
# `examples/remote_write_load`, e.g. target/release, or a copy of an older
# build), in turn, ROUNDS times: start `watchpost serve` with its default
# configuration (WAL fsync before every 204) and the StatsD door off, push
# 10 warm-up scrapes (series creation, not counted), then STEPS scrapes of the
# 10k-series workload (examples/remote_write_load.rs: 2,000 series per
# request, 2 connections) three times, printing the server's CPU seconds per
# million samples of each push (user + system, all threads, /proc/PID/stat)
# and its user/system ticks. Builds alternate, so machine load hits them alike;
# take the median per build.
#
# Usage: benches/remote_write_cpu.sh [BUILD_DIR...]   (default: target/release)
# Env:   RW_STEPS (default 80 = 800,000 samples per push), RW_ROUNDS (default 3)
# Needs: python3, curl; build first:
#        cargo build --release --bin watchpost --example remote_write_load
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STEPS=${RW_STEPS:-80}
ROUNDS=${RW_ROUNDS:-3}
BUILDS=("$@")
[ ${#BUILDS[@]} -gt 0 ] || BUILDS=("$ROOT/target/release")

WORK=$(mktemp -d)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ticks() { # utime stime of $PID
    cut -d')' -f2 "/proc/$PID/stat" | awk '{print $12, $13}'
}

one() { # build_dir
    local bin=$1 data port start t
    data=$(mktemp -d "$WORK/data.XXXX")
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$bin/watchpost" serve --web.listen-address="127.0.0.1:$port" \
        --storage.tsdb.path="$data" --statsd.listen-udp= >"$data.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 150); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/-/ready" 2>/dev/null && break
        sleep 0.2
    done
    # Timestamps start 3 h back so every push stays inside the head's window.
    start=$(( $(date +%s%3N) - 3 * 3600 * 1000 ))
    "$bin/examples/remote_write_load" --url "http://127.0.0.1:$port/api/v1/write" \
        --steps 10 --start-ms "$start" >/dev/null 2>&1
    t=$(( start + 10 * 15000 ))
    for _ in 1 2 3; do
        local a b
        a=$(ticks)
        "$bin/examples/remote_write_load" --url "http://127.0.0.1:$port/api/v1/write" \
            --steps "$STEPS" --start-ms "$t" --pid "$PID" 2>/dev/null |
            grep -o 'receiver CPU.*' | tr '\n' ' '
        b=$(ticks)
        echo "(utime stime ticks $a -> $b)"
        t=$(( t + STEPS * 15000 ))
    done
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=
    rm -rf "$data" "$data.log"
}

echo "load average before: $(cat /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
    for b in "${BUILDS[@]}"; do
        echo "== round $r: $b"
        one "$b"
    done
done
echo "load average after: $(cat /proc/loadavg)"
