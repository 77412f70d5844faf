#!/usr/bin/env bash
# Benchmarks pgk8s against the shell-script baseline and the physical limit (one hand-written
# kubectl exec), on PostgreSQL's durable defaults; see scripts/bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec python3 scripts/bench.py "$@"
