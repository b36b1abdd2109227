#!/usr/bin/env bash
# The project's test command (README.md names it; .ci/run calls it).
#
# 1. Installs the real peers the tests talk to, on a fresh machine:
#    Debian's prometheus (+promtool), alertmanager, pushgateway and
#    victoria-metrics; PyPI's statsd, datadog, prometheus_client and the
#    OpenTelemetry SDK; npm's hot-shots (tests/node/package.json).
# 2. Runs the whole Rust suite. With WATCHPOST_REQUIRE_ALL=1 a test that
#    cannot find its peer fails instead of skipping.
#
# Set WATCHPOST_SKIP_INSTALL=1 to skip step 1 on a machine that has them.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${WATCHPOST_SKIP_INSTALL:-0}" != 1 ]; then
  apt_pkgs=(prometheus prometheus-alertmanager prometheus-pushgateway victoria-metrics)
  missing=()
  for p in "${apt_pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "tests/run.sh: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
  echo "tests/run.sh: installing PyPI packages"
  python3 -m pip install -q --disable-pip-version-check -r tests/python-requirements.txt
  if [ -f tests/node/package.json ]; then
    echo "tests/run.sh: installing npm packages"
    (cd tests/node && npm ci --no-audit --no-fund --silent)
  fi
fi

export WATCHPOST_PROMQL_TESTDATA="${WATCHPOST_PROMQL_TESTDATA:-$(pwd)/../shared/conformance/promql/upstream}"
# Benches are compiled (not run) so they cannot rot; they run with `cargo bench`.
cargo build --locked --benches
cargo test --locked --no-fail-fast
