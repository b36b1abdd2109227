#!/usr/bin/env bash
# Rule evaluation, watchpost vs Prometheus 2.42, in one run on the same rules
# and the same data (rules issue, "Benchmarks"): 1,000 alerting rules in 10
# groups (examples/rules_compare.rs `rules`) over the storage issue's
# 10k-series workload (benches/workload).
#
# Usage: [WP_WAL_SYNC=1s] benches/rules_compare.sh [ROUNDS [INTERVAL_S]]
#   ROUNDS (default 10): measured evaluation rounds (after 3 warm-up rounds);
#   INTERVAL_S (default 15): every group's evaluation interval in seconds.
#
# Data: rules evaluate at the current time, so both servers are fed the
# workload as Prometheus remote write 1.0 by one sender
# (examples/rules_compare.rs `feed`): the first 60 minutes, placed in the
# past, at once, then one scrape every 15 s as the wall clock reaches it.
# Each request goes to both servers in turn.
#
# Phases: (1) both servers start without rules; once the history is in, the
# CPU both spend on ingestion alone is measured over 60 s (baseline);
# (2) the same rule file is copied into both rule directories and both are
# reloaded (POST /-/reload); (3) after 3 warm-up rounds, ROUNDS rounds are
# measured:
# - time per round: the sum over the 10 groups of
#   prometheus_rule_group_last_duration_seconds (both servers export it under
#   that name), sampled once per interval and averaged;
# - CPU per round: utime+stime from /proc/PID/stat over the measured window,
#   minus the baseline ingestion CPU for the same duration, divided by the
#   rounds evaluated (prometheus_rule_group_iterations_total delta / 10);
# - alerts: /api/v1/alerts of both, compared as sets of (labels, state), and
#   by labels only (state can legitimately differ near a `for` boundary,
#   since the groups' evaluation phases differ between the two servers).
# All servers listen on 127.0.0.1 on ports picked here and are stopped on
# exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${1:-10}
INTERVAL=${2:-15}
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
for tool in "$PROMETHEUS" curl python3; do
    command -v "$tool" >/dev/null || { echo "rules_compare: missing $tool" >&2; exit 1; }
done

artifact() { # cargo build args...: prints the executable built
    cargo build --release "$@" --message-format=json 2>/dev/null | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["executable"])' | tail -1
}
if [ -n "${WP_BIN:-}" ] && [ -n "${GEN_BIN:-}" ]; then
    WP=$WP_BIN GEN=$GEN_BIN # prebuilt (WP_BIN=.../watchpost GEN_BIN=.../rules_compare)
else
    echo "== building watchpost and examples/rules_compare (release)"
    cargo build --release --bin watchpost --example rules_compare >/dev/null
    WP=$(artifact --bin watchpost)
    GEN=$(artifact --example rules_compare)
fi
[ -x "$WP" ] && [ -x "$GEN" ] || { echo "rules_compare: build failed" >&2; exit 1; }

WORK=$(mktemp -d /tmp/rules_compare.XXXXXX)
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
    echo "rules_compare: $1 not ready; log:" >&2
    tail -20 "$2" >&2
    exit 1
}

"$GEN" rules "$WORK/rules.yml" "${INTERVAL}s"
mkdir -p "$WORK/prom-rules" "$WORK/wp-rules"

echo "== starting Prometheus and watchpost without rules"
PROM_PORT=$(free_port)
cat >"$WORK/prometheus.yml" <<EOF
global:
  evaluation_interval: ${INTERVAL}s
rule_files: ["$WORK/prom-rules/*.yml"]
scrape_configs: []
EOF
"$PROMETHEUS" --storage.tsdb.path="$WORK/prom" --web.listen-address="127.0.0.1:$PROM_PORT" \
    --config.file="$WORK/prometheus.yml" --web.enable-remote-write-receiver \
    --web.enable-lifecycle >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
PIDS+=("$PROM_PID")
WP_PORT=$(free_port)
cat >"$WORK/watchpost.yml" <<EOF
global:
  evaluation_interval: ${INTERVAL}s
rule_files: ["$WORK/wp-rules/*.yml"]
EOF
# WP_WAL_SYNC=1s: fsync the WAL every second instead of on every commit
# (watchpost's default is `always`; Prometheus never fsyncs per commit).
"$WP" serve --config.file="$WORK/watchpost.yml" --storage.tsdb.path="$WORK/wp" --statsd.listen-udp= \
    --web.listen-address="127.0.0.1:$WP_PORT" ${WP_WAL_SYNC:+--storage.tsdb.wal-sync="$WP_WAL_SYNC"} \
    >"$WORK/watchpost.log" 2>&1 &
WP_PID=$!
PIDS+=("$WP_PID")
wait_http "http://127.0.0.1:$PROM_PORT/-/ready" "$WORK/prometheus.log"
wait_http "http://127.0.0.1:$WP_PORT/-/ready" "$WORK/watchpost.log"

echo "== feeding 60 min of history to both (remote write), then live scrapes"
LIVE_MIN=$(( (120 + (ROUNDS + 5) * INTERVAL) / 60 + 3 ))
"$GEN" feed --url "http://127.0.0.1:$WP_PORT/api/v1/write" \
    --url "http://127.0.0.1:$PROM_PORT/api/v1/write" \
    --history-min 60 --live-min "$LIVE_MIN" >"$WORK/feed.log" 2>&1 &
FEED_PID=$!
PIDS+=("$FEED_PID")
for _ in $(seq 1 1800); do
    grep -q history_done "$WORK/feed.log" && break
    kill -0 "$FEED_PID" 2>/dev/null || { cat "$WORK/feed.log" >&2; exit 1; }
    sleep 1
done
grep -q history_done "$WORK/feed.log" || { echo "rules_compare: history not loaded" >&2; exit 1; }
head -1 "$WORK/feed.log"

echo "== measuring"
echo "   load average before: $(cat /proc/loadavg)"
WP_URL="http://127.0.0.1:$WP_PORT" PROM_URL="http://127.0.0.1:$PROM_PORT" \
    WP_PID="$WP_PID" PROM_PID="$PROM_PID" ROUNDS="$ROUNDS" INTERVAL="$INTERVAL" \
    RULES="$WORK/rules.yml" WORK="$WORK" python3 - <<'EOF'
import json, os, re, shutil, time, urllib.request

WP, PROM = os.environ["WP_URL"], os.environ["PROM_URL"]
PIDS = {"watchpost": int(os.environ["WP_PID"]), "prometheus": int(os.environ["PROM_PID"])}
URLS = {"watchpost": WP, "prometheus": PROM}
ROUNDS, INTERVAL = int(os.environ["ROUNDS"]), float(os.environ["INTERVAL"])
TICK = os.sysconf("SC_CLK_TCK")
SYSTEMS = ["watchpost", "prometheus"]

def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK

def get(url, data=None):
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=60) as r:
        return r.read().decode()

METRIC = re.compile(r'^(prometheus_rule_group_(?:last_duration_seconds|iterations_total|iterations_missed_total)|prometheus_rule_evaluation_failures_total)\{[^}]*rule_group="([^"]*)"[^}]*\} (\S+)', re.M)

def rule_metrics(sys_):
    out = {}
    for name, group, v in METRIC.findall(get(URLS[sys_] + "/metrics")):
        out.setdefault(name, {})[group] = float(v)
    return out

def cpus():
    return {s: cpu(PIDS[s]) for s in SYSTEMS}

# (1) Baseline: ingestion only.
time.sleep(30)
c0, t0 = cpus(), time.monotonic()
time.sleep(60)
c1, t1 = cpus(), time.monotonic()
base = {s: (c1[s] - c0[s]) / (t1 - t0) for s in SYSTEMS}
print(f"   baseline (ingestion only) CPU-s per s: " +
      ", ".join(f"{s} {base[s]:.4f}" for s in SYSTEMS))

# (2) Install the rules in both and reload.
for d in ("wp-rules", "prom-rules"):
    shutil.copy(os.environ["RULES"], os.path.join(os.environ["WORK"], d, "rules.yml"))
for s in SYSTEMS:
    get(URLS[s] + "/-/reload", data=b"")
def groups_loaded(s):
    return len(rule_metrics(s).get("prometheus_rule_group_iterations_total", {}))
deadline = time.monotonic() + 120
while any(groups_loaded(s) < 10 for s in SYSTEMS):
    if time.monotonic() > deadline:
        raise SystemExit("rules_compare: rules not loaded in both servers")
    time.sleep(1)

# (3) Warm-up, then the measured rounds.
time.sleep(3 * INTERVAL)
m0 = {s: rule_metrics(s) for s in SYSTEMS}
c0, t0 = cpus(), time.monotonic()
per_round = {s: [] for s in SYSTEMS}
for _ in range(ROUNDS):
    time.sleep(INTERVAL)
    for s in SYSTEMS:
        d = rule_metrics(s)["prometheus_rule_group_last_duration_seconds"]
        per_round[s].append(sum(d.values()))
c1, t1 = cpus(), time.monotonic()
m1 = {s: rule_metrics(s) for s in SYSTEMS}

def delta(s, name):
    return sum(m1[s][name].values()) - sum(m0[s].get(name, {}).values())

alerts = {}
for s in SYSTEMS:
    d = json.loads(get(URLS[s] + "/api/v1/alerts"))["data"]["alerts"]
    alerts[s] = {(tuple(sorted(a["labels"].items())), a["state"]) for a in d}

rows = {}
for s in SYSTEMS:
    iters = delta(s, "prometheus_rule_group_iterations_total")
    missed = delta(s, "prometheus_rule_group_iterations_missed_total")
    rounds = (iters - missed) / 10
    cpu_raw = c1[s] - c0[s]
    cpu_rules = cpu_raw - base[s] * (t1 - t0)
    rows[s] = dict(
        time=sum(per_round[s]) / len(per_round[s]),
        tmin=min(per_round[s]), tmax=max(per_round[s]),
        rounds=rounds, missed=missed,
        failures=delta(s, "prometheus_rule_evaluation_failures_total"),
        cpu_raw=cpu_raw / max(rounds, 1), cpu=cpu_rules / max(rounds, 1),
        alerts=len(alerts[s]),
        firing=sum(1 for a in alerts[s] if a[1] == "firing"))

w, p = rows["watchpost"], rows["prometheus"]
print(f"\n1,000 alerting rules in 10 groups, interval {INTERVAL:g}s, {ROUNDS} measured rounds")
print("| system | time per round (s), mean [min, max] | ms per rule | CPU-s per round (rules only) | CPU-s per round (raw) | rounds | missed | eval failures | alerts (firing) |")
print("|---|---|---|---|---|---|---|---|---|")
for s in SYSTEMS:
    r = rows[s]
    print(f"| {s} | {r['time']:.3f} [{r['tmin']:.3f}, {r['tmax']:.3f}] | {r['time']:.3f} | "
          f"{r['cpu']:.3f} | {r['cpu_raw']:.3f} | {r['rounds']:g} | {r['missed']:g} | "
          f"{r['failures']:g} | {r['alerts']} ({r['firing']}) |")
print(f"\nwatchpost / prometheus: time per round {w['time'] / p['time']:.2f}, "
      f"CPU per round {w['cpu'] / p['cpu']:.2f} (target: time <= 0.50)")
only_w = alerts["watchpost"] - alerts["prometheus"]
only_p = alerts["prometheus"] - alerts["watchpost"]
lw = {a[0] for a in alerts["watchpost"]}
lp = {a[0] for a in alerts["prometheus"]}
print(f"alerts: {len(alerts['watchpost'] & alerts['prometheus'])} identical (labels and state); "
      f"{len(only_w)} only in watchpost, {len(only_p)} only in prometheus; "
      f"by labels only: {len(lw & lp)} common, {len(lw - lp)} only watchpost, {len(lp - lw)} only prometheus")
for tag, diff in (("only watchpost", only_w), ("only prometheus", only_p)):
    for a in sorted(diff)[:5]:
        print(f"   {tag}: {dict(a[0])} {a[1]}")
EOF
echo "   load average after: $(cat /proc/loadavg)"
