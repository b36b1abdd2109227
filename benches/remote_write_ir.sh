#!/usr/bin/env bash
# Instructions per remote-write sample in the steady state (series known),
# the whole receive path below HTTP (snappy, decode, cache, head append, WAL
# write and fsync), counted by callgrind: independent of machine load, so
# builds compare exactly on a noisy machine.
#
# For each build directory given (holding `examples/remote_write_load`, e.g.
# target/release or a copy of an older build): runs the load generator's
# in-process mode (`--in-process`, the 10k-series workload, 2,000 series per
# request, WAL fsync per commit) for 40 and for 80 scrapes, collecting only
# the receive functions (`write_cached`, or `decode_cached` + `apply_cached`
# in builds before it), and prints (I(80) - I(40)) / 400,000: the series
# creation of the first scrape cancels out.
#
# Usage: benches/remote_write_ir.sh [BUILD_DIR...]   (default: target/release)
# Needs: valgrind; build first: cargo build --release --example remote_write_load
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILDS=("$@")
[ ${#BUILDS[@]} -gt 0 ] || BUILDS=("$ROOT/target/release")
command -v valgrind >/dev/null || { echo "missing valgrind"; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
irs() { # build steps
    rm -rf "$WORK/db"
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" --collect-atstart=no \
        --toggle-collect='watchpost::ingest::remote_write::direct::write_cached' \
        --toggle-collect='watchpost::ingest::remote_write::decode::decode_cached' \
        --toggle-collect='watchpost::ingest::remote_write::batch::apply_cached' \
        "$1/examples/remote_write_load" --url http://unused/ --in-process "$WORK/db" \
        --steps "$2" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for b in "${BUILDS[@]}"; do
    a=$(irs "$b" 40)
    c=$(irs "$b" 80)
    python3 -c "import sys; a, c = int(sys.argv[1]), int(sys.argv[2]); print(f'{sys.argv[3]}: {(c - a) / 400000:.0f} instructions per sample (steady state; {a:,} at 40 scrapes, {c:,} at 80)')" "$a" "$c" "$b"
done
