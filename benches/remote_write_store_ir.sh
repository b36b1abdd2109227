#!/usr/bin/env bash
# Instructions the STORAGE side of the remote-write path spends per sample
# (callgrind counts: stable whatever the machine load), for before/after
# comparisons of builds.
#
# For each build directory given (each holding `examples/remote_write_load`,
# e.g. target/release or a copy of an older build): runs the in-process
# remote-write path (decode + append + commit into a fresh Db, WAL fsync per
# commit) for STEPS scrapes of the 10k-series workload under callgrind,
# collecting only `batch::apply_cached` (storage append + commit; the decode
# is outside it), and prints:
#   - the collected total (the first scrape creates the 10,000 series),
#   - storage instructions per sample in steady state: inclusive cost of
#     `HeadAppender::append_ref` minus `Head::get_or_create` (series
#     creation) plus `HeadAppender::commit`, divided by the samples.
#
# Usage: benches/remote_write_store_ir.sh [BUILD_DIR...]  (default: target/release)
# Env:   RW_STEPS (default 40 = 400,000 samples)
# Needs: valgrind (callgrind_annotate); build first:
#        cargo build --release --example remote_write_load
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STEPS=${RW_STEPS:-40}
BUILDS=("$@")
[ ${#BUILDS[@]} -gt 0 ] || BUILDS=("$ROOT/target/release")
command -v valgrind >/dev/null || { echo "valgrind not installed: cannot count instructions" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

for b in "${BUILDS[@]}"; do
    out="$WORK/cg.out"
    rm -rf "$WORK/d"
    valgrind --tool=callgrind --callgrind-out-file="$out" --collect-atstart=no \
        --toggle-collect='watchpost::ingest::remote_write::batch::apply_cached' \
        "$b/examples/remote_write_load" --url http://x/ --in-process "$WORK/d" --steps "$STEPS" \
        >"$WORK/log" 2>&1
    callgrind_annotate --inclusive=yes "$out" 2>/dev/null | python3 -c '
import re, sys
steps = int(sys.argv[1]); build = sys.argv[2]
samples = steps * 10_000
cost = {}
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(.*)", line)
    if not m:
        continue
    n = int(m.group(1).replace(",", ""))
    name = m.group(2)
    for key, pat in [("total", "PROGRAM TOTALS"), ("append_ref", "Appender>::append_ref "),
                     ("commit", "Appender>::commit "), ("create", "Head::get_or_create ")]:
        if pat in name and key not in cost:
            cost[key] = n
total = cost.get("total", 0)
ref = cost.get("append_ref", 0) - cost.get("create", 0)
commit = cost.get("commit", 0)
print(f"{build}: apply_cached total {total:,} Ir for {samples:,} samples; "
      f"storage steady state {(ref + commit) / samples:.0f} Ir/sample "
      f"(append_ref without series creation {ref / samples:.0f}, commit {commit / samples:.0f})")
' "$STEPS" "$b"
done
