#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine, installing what the tests need first.
#
#   scripts/test.sh            # every test of every crate, all features
#   scripts/test.sh -p tracelight --test json_format   # arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -eq 0 ]; then
  set -- --workspace --all-features
fi
cargo test --no-fail-fast "$@"
