#!/usr/bin/env bash
# Bytes on disk per sample: watchpost vs Prometheus 2.42 vs VictoriaMetrics
# 1.79 on the same deterministic workload (benches/workload/mod.rs).
#
# Usage: benches/storage_compare.sh [DATASET HOURS INSTANCES]...
#   default: "standard 6 10" (the issue's 10,000 series, 15 s, 6 h, with
#   200 histograms of 12 buckets) and "ints 24 10" (the 7,000 integer-valued
#   counters and gauges for 24 h, millisecond scrape jitter).
#   Smaller runs: benches/storage_compare.sh standard 6 2 ints 24 2
#
# What is measured, for each system, after the data is compacted:
# - watchpost: the workload is appended through the storage API in-process
#   (histograms as first-class histogram samples; this branch has no HTTP
#   server yet), the head is cut into 2 h blocks and compacted (2 h -> 12 h ->
#   48 h) with the clock past every window; bytes = all files of all blocks
#   (WAL excluded: it is checkpointed away once the head is in blocks).
# - Prometheus: `promtool tsdb create-blocks-from openmetrics` with
#   --max-block-duration covering the data (one block); bytes = the whole
#   output directory (chunks, index, meta.json, tombstones).
# - VictoriaMetrics: the Prometheus-text file POSTed to
#   /api/v1/import/prometheus, then /internal/force_flush and
#   /internal/force_merge, then a graceful stop; bytes = data/ + indexdb/.
# Samples are counted as classic samples (a histogram scrape is 15 samples:
# 13 buckets, sum, count) for all three.
#
# Bounded: every wait loop has a limit; VictoriaMetrics listens on
# 127.0.0.1 on a port picked here, and is stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
PROMTOOL=${PROMTOOL:-/usr/bin/promtool}
VM=${VM:-/usr/bin/victoria-metrics}
for tool in "$PROMTOOL" "$VM" curl python3; do
    command -v "$tool" >/dev/null || { echo "storage_compare: missing $tool" >&2; exit 1; }
done

if [ $# -eq 0 ]; then set -- standard 6 10 ints 24 10; fi
if [ $(($# % 3)) -ne 0 ]; then
    echo "usage: $0 [DATASET HOURS INSTANCES]..." >&2
    exit 2
fi

echo "== building the generator (cargo bench --bench storage_compare --no-run)"
BIN=$(cargo bench --bench storage_compare --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "storage_compare" and m.get("executable"):
        print(m["executable"])')
[ -x "$BIN" ] || { echo "storage_compare: generator binary not built" >&2; exit 1; }

WORK=$(mktemp -d /tmp/storage_compare.XXXXXX)
VM_PID=
cleanup() {
    if [ -n "$VM_PID" ]; then kill "$VM_PID" 2>/dev/null || true; wait "$VM_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

dir_bytes() { # apparent size of all regular files under the given paths
    find "$@" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}'
}

RESULTS=()
while [ $# -gt 0 ]; do
    DATASET=$1 HOURS=$2 INST=$3
    shift 3
    echo "== dataset $DATASET, $HOURS h, $INST instances"
    D=$WORK/$DATASET-$HOURS-$INST
    mkdir -p "$D"

    SAMPLES=$("$BIN" gen "$DATASET" "$HOURS" "$INST" openmetrics "$D/data.om" | sed -n 's/^samples=//p')
    "$BIN" gen "$DATASET" "$HOURS" "$INST" prometheus "$D/data.prom" >/dev/null
    echo "   samples: $SAMPLES; text: $(dir_bytes "$D/data.prom") bytes"

    # watchpost
    T0=$(date +%s)
    WP_OUT=$("$BIN" watchpost "$DATASET" "$HOURS" "$INST" "$D/watchpost")
    echo "   $WP_OUT ($(($(date +%s) - T0)) s)"
    # Block directories sit at the top of the data directory, next to wal/.
    WP_BYTES=$(dir_bytes $(find "$D/watchpost" -mindepth 1 -maxdepth 1 -type d ! -name wal ! -name snapshots))
    echo "   watchpost block directories on disk: $WP_BYTES bytes; wal/: $(dir_bytes "$D/watchpost/wal") bytes"
    rm -rf "$D/watchpost"

    # Prometheus 2.42
    T0=$(date +%s)
    "$PROMTOOL" tsdb create-blocks-from openmetrics --max-block-duration=$(((HOURS / 24 + 2) * 24))h \
        "$D/data.om" "$D/prom" >"$D/promtool.log" 2>&1 ||
        { cat "$D/promtool.log" >&2; exit 1; }
    PROM_BYTES=$(dir_bytes "$D/prom")
    echo "   prometheus: $(ls "$D/prom" | grep -vc wal) block(s), $PROM_BYTES bytes ($(($(date +%s) - T0)) s)"
    rm -rf "$D/prom" "$D/data.om"

    # VictoriaMetrics 1.79
    T0=$(date +%s)
    PORT=$(free_port)
    "$VM" -storageDataPath="$D/vm" -httpListenAddr="127.0.0.1:$PORT" -retentionPeriod=100y \
        -loggerLevel=ERROR >"$D/vm.log" 2>&1 &
    VM_PID=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
        sleep 0.2
    done
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { cat "$D/vm.log" >&2; exit 1; }
    curl -sf --max-time 3600 -X POST -T "$D/data.prom" "http://127.0.0.1:$PORT/api/v1/import/prometheus"
    curl -sf --max-time 60 "http://127.0.0.1:$PORT/internal/force_flush" >/dev/null
    curl -sf --max-time 600 "http://127.0.0.1:$PORT/internal/force_merge" >/dev/null || true
    # Check every sample arrived (series x points) before measuring.
    VM_SERIES=$(curl -sf --max-time 60 "http://127.0.0.1:$PORT/api/v1/series/count" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0])')
    kill -INT "$VM_PID"
    for _ in $(seq 1 300); do kill -0 "$VM_PID" 2>/dev/null || break; sleep 0.2; done
    wait "$VM_PID" 2>/dev/null || true
    VM_PID=
    VM_BYTES=$(dir_bytes "$D/vm/data" "$D/vm/indexdb")
    echo "   victoriametrics: $VM_SERIES series, $VM_BYTES bytes ($(($(date +%s) - T0)) s)"
    rm -rf "$D/vm" "$D/data.prom"

    RESULTS+=("$(python3 -c "
s, w, p, v = $SAMPLES, $WP_BYTES, $PROM_BYTES, $VM_BYTES
print(f'| $DATASET ${HOURS} h x $INST inst | {s:,} | {w/s:.3f} | {p/s:.3f} | {v/s:.3f} | {w/p:.2f} | {w/v:.2f} |')
")")
done

echo
echo "Bytes per sample after compaction:"
echo "| dataset | samples | watchpost | Prometheus 2.42 | VictoriaMetrics 1.79 | watchpost/Prom | watchpost/VM |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${RESULTS[@]}"
