#!/usr/bin/env bash
# PromQL query latency over HTTP: watchpost vs Prometheus 2.42 vs
# VictoriaMetrics 1.79 on the storage issue's deterministic workload
# (benches/workload/mod.rs: 10,000 series at 15 s for 6 h; counters
# http_requests_total{method,endpoint,status,instance}, gauges
# node_gauge_N{instance,job}, classic histograms
# http_request_duration_seconds_bucket{endpoint,instance,job,le}).
#
# Usage: benches/query_compare.sh [INSTANCES [RUNS]]
#   INSTANCES (default 10) scales the workload: 10 = the issue's 10,000
#   series. RUNS (default 7) = timed runs per query and system; the median is
#   reported.
#
# Loading:
# - watchpost (release build, `watchpost serve`): the Prometheus-text file
#   POSTed in whole-line chunks of 32 MiB to /api/v1/import/prometheus;
# - Prometheus: `promtool tsdb create-blocks-from openmetrics`, then
#   `prometheus` started on those blocks with a config without targets;
# - VictoriaMetrics: the same text POSTed to /api/v1/import/prometheus, then
#   /internal/force_flush.
# All three listen on 127.0.0.1 on ports picked here, keep 100 y of
# retention (the workload starts in Nov 2023) and are stopped on exit.
#
# Timing: every query is sent once to each system to warm up, then RUNS
# rounds, each round querying watchpost, Prometheus and VictoriaMetrics in
# turn (interleaved, so machine noise hits all three alike). Wall-clock time
# of the whole HTTP exchange (request to last byte), median per system.
# VictoriaMetrics gets `nocache=1` so it never answers from its result
# cache. Instant queries are evaluated at the end of the data, range queries
# over the whole 6 h at a 60 s step, all 7.5 s off the 15 s scrape grid: the
# workload's scrape jitter is 0..=40 ms, so on-grid evaluation would put
# samples exactly on window edges, where Prometheus 2.42's closed windows and
# watchpost's 3.x left-open ones legitimately differ. The table also says whether watchpost's
# result has the same series and values (1e-9 relative) as Prometheus's.
set -euo pipefail

cd "$(dirname "$0")/.."
INST=${1:-10}
RUNS=${2:-7}
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
PROMTOOL=${PROMTOOL:-/usr/bin/promtool}
VM=${VM:-/usr/bin/victoria-metrics}
for tool in "$PROMETHEUS" "$PROMTOOL" "$VM" curl python3 split; do
    command -v "$tool" >/dev/null || { echo "query_compare: missing $tool" >&2; exit 1; }
done

echo "== building watchpost (release) and the workload generator"
cargo build --release --bin watchpost >/dev/null
WP=${CARGO_TARGET_DIR:-target}/release/watchpost
[ -x "$WP" ] || WP=$(cargo build --release --bin watchpost --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "watchpost" and m.get("executable"):
        print(m["executable"])')
GEN=$(cargo build --release --bench storage_compare --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "storage_compare" and m.get("executable"):
        print(m["executable"])')
[ -x "$WP" ] && [ -x "$GEN" ] || { echo "query_compare: build failed" >&2; exit 1; }

WORK=$(mktemp -d /tmp/query_compare.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # URL LOG: bounded wait (120 s) for a 200
    for _ in $(seq 1 600); do
        curl -sf --max-time 2 "$1" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "query_compare: $1 not ready; log:" >&2
    tail -20 "$2" >&2
    exit 1
}

echo "== generating the workload (standard, 6 h, $INST instances)"
SAMPLES=$("$GEN" gen standard 6 "$INST" openmetrics "$WORK/data.om" | sed -n 's/^samples=//p')
"$GEN" gen standard 6 "$INST" prometheus "$WORK/data.prom" >/dev/null
echo "   $SAMPLES samples"

echo "== Prometheus: promtool create-blocks-from openmetrics"
T0=$(date +%s)
"$PROMTOOL" tsdb create-blocks-from openmetrics --max-block-duration=48h \
    "$WORK/data.om" "$WORK/prom" >"$WORK/promtool.log" 2>&1 || { cat "$WORK/promtool.log" >&2; exit 1; }
rm -f "$WORK/data.om"
printf 'global:\n  scrape_interval: 15s\nscrape_configs: []\n' >"$WORK/prometheus.yml"
PROM_PORT=$(free_port)
"$PROMETHEUS" --storage.tsdb.path="$WORK/prom" --storage.tsdb.retention.time=100y \
    --web.listen-address="127.0.0.1:$PROM_PORT" --config.file="$WORK/prometheus.yml" \
    >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$PROM_PORT/-/ready" "$WORK/prometheus.log"
echo "   $(($(date +%s) - T0)) s"

echo "== VictoriaMetrics: import + force_flush"
T0=$(date +%s)
VM_PORT=$(free_port)
"$VM" -storageDataPath="$WORK/vm" -httpListenAddr="127.0.0.1:$VM_PORT" -retentionPeriod=100y \
    -loggerLevel=ERROR >"$WORK/vm.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$VM_PORT/health" "$WORK/vm.log"
curl -sf --max-time 3600 -X POST -T "$WORK/data.prom" "http://127.0.0.1:$VM_PORT/api/v1/import/prometheus"
curl -sf --max-time 120 "http://127.0.0.1:$VM_PORT/internal/force_flush" >/dev/null
echo "   $(($(date +%s) - T0)) s"

echo "== watchpost: import in 32 MiB chunks"
T0=$(date +%s)
WP_PORT=$(free_port)
"$WP" serve --storage.tsdb.path="$WORK/wp" --storage.tsdb.retention.time=100y --statsd.listen-udp= \
    --web.listen-address="127.0.0.1:$WP_PORT" >"$WORK/watchpost.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$WP_PORT/-/ready" "$WORK/watchpost.log"
split -C 32M "$WORK/data.prom" "$WORK/chunk."
rm -f "$WORK/data.prom"
for c in "$WORK"/chunk.*; do
    curl -sf --max-time 600 -X POST --data-binary "@$c" \
        "http://127.0.0.1:$WP_PORT/api/v1/import/prometheus" >/dev/null ||
        { echo "query_compare: watchpost import of $c failed" >&2; tail -20 "$WORK/watchpost.log" >&2; exit 1; }
    rm -f "$c"
done
echo "   $(($(date +%s) - T0)) s"

echo "== timing ($RUNS interleaved runs per query, median)"
echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
WP_URL="http://127.0.0.1:$WP_PORT" PROM_URL="http://127.0.0.1:$PROM_PORT" \
    VM_URL="http://127.0.0.1:$VM_PORT" RUNS="$RUNS" SAMPLES="$SAMPLES" python3 - <<'EOF'
import json, math, os, statistics, time, urllib.parse, urllib.request

# benches/storage_compare.rs START_MS: 1,699,833,600,000; 6 h of data.
START = 1_699_833_600 + 7.5
END = START + 6 * 3600 - 15
SYSTEMS = [("watchpost", os.environ["WP_URL"], {}),
           ("prometheus", os.environ["PROM_URL"], {}),
           ("victoriametrics", os.environ["VM_URL"], {"nocache": "1"})]
QUERIES = [
    "rate(http_requests_total[5m])",
    "sum by (endpoint) (rate(http_requests_total[5m]))",
    "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.99, sum by (le, endpoint) (rate(http_request_duration_seconds_bucket[5m])))",
    "avg_over_time(node_gauge_0[10m]) > 0.8",
    'count({__name__=~".+"})',
]
RUNS = int(os.environ["RUNS"])

def get(base, path, params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as r:
        body = r.read()
    dt = time.perf_counter() - t
    d = json.loads(body)
    if d.get("status") != "success":
        raise SystemExit(f"{url}: {body[:300]!r}")
    return dt, d["data"]

def canon(data):
    out = {}
    for s in data["result"]:
        key = json.dumps(s.get("metric", {}), sort_keys=True)
        pts = s["values"] if "values" in s else [s["value"]]
        out[key] = [(round(float(t) * 1000), float(v)) for t, v in pts]
    return out

def same(a, b):
    if a.keys() != b.keys():
        return f"series differ ({len(a)} vs {len(b)})"
    for k in a:
        if len(a[k]) != len(b[k]):
            return "point counts differ"
        for (ta, va), (tb, vb) in zip(a[k], b[k]):
            if ta != tb:
                return "timestamps differ"
            if math.isnan(va) or math.isnan(vb):
                if not (math.isnan(va) and math.isnan(vb)):
                    return "NaN vs number"
            elif va != vb and abs(va - vb) > 1e-9 * max(abs(va), abs(vb)):
                return f"values differ ({va} vs {vb})"
    return "yes"

rows = []
for q in QUERIES:
    for kind, path, params in [
        ("instant", "/api/v1/query", {"query": q, "time": str(END)}),
        ("range 6h/60s", "/api/v1/query_range",
         {"query": q, "start": str(START), "end": str(END), "step": "60"}),
    ]:
        times = {n: [] for n, _, _ in SYSTEMS}
        results = {}
        for n, base, extra in SYSTEMS:  # warm-up, and the results to compare
            _, results[n] = get(base, path, {**params, **extra})
        for _ in range(RUNS):
            for n, base, extra in SYSTEMS:
                dt, _ = get(base, path, {**params, **extra})
                times[n].append(dt * 1000)
        med = {n: statistics.median(v) for n, v in times.items()}
        series = {n: len(r["result"]) for n, r in results.items()}
        rows.append((q, kind, med, series,
                     same(canon(results["prometheus"]), canon(results["watchpost"]))))

print(f"\nworkload: {os.environ['SAMPLES']} samples; medians of {RUNS} runs, ms")
hdr = "| query | kind | watchpost | prometheus | victoriametrics | wp / faster other | series wp/prom/vm | wp == prom |"
print(hdr)
print("|" + "---|" * 8)
for q, kind, med, series, eq in rows:
    best = min(med["prometheus"], med["victoriametrics"])
    print(f"| `{q}` | {kind} | {med['watchpost']:.1f} | {med['prometheus']:.1f} | "
          f"{med['victoriametrics']:.1f} | {med['watchpost'] / best:.2f} | "
          f"{series['watchpost']}/{series['prometheus']}/{series['victoriametrics']} | {eq} |")
EOF
echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
