#!/usr/bin/env bash
# The sync engine's benchmarks in one run (benches/sync.rs): Connect requests per idle poll,
# initial sync of 10,000 items against the official Python SDK baseline, change-to-destination
# latency at a 1 s poll, and the resident memory of `opsync run` tracking 100,000 items.
# Prints Markdown rows for BENCHMARKS.md, preceded by the machine and its load.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c 'import onepasswordconnectsdk' 2>/dev/null; then
  echo "bench-sync: the Python SDK baseline needs .venv with onepasswordconnectsdk" >&2
  echo "bench-sync: python3 -m venv .venv && .venv/bin/pip install -r tests/sdk/python/requirements.txt" >&2
  exit 2
fi

echo "machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -sr)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); RUST_BACKTRACE=${RUST_BACKTRACE:-unset}"
echo "command: cargo bench --bench sync"
cargo bench --bench sync
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
