#!/usr/bin/env bash
# Benchmarks pgk8s against the shell-script baseline; see scripts/bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec python3 scripts/bench.py "$@"
