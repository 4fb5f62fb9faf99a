#!/usr/bin/env bash
# Runs every opsync test on a fresh machine: installs what the tests need, checks format and lints,
# runs the Rust test suites, then the official Connect SDKs against `opsync connect-dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log=$(mktemp)
trap 'rm -f "$log"' EXIT

step() { printf '\n==> %s\n' "$*"; }

step "toolchain: rustfmt, clippy, wasm32-wasip2"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add wasm32-wasip2 >/dev/null

step "system packages and real peers (promtool; OpenBao and moto in .venv)"
bash scripts/setup-system.sh
bash scripts/setup-peers.sh

step "format"
cargo fmt --all -- --check
cargo fmt --manifest-path plugins/Cargo.toml --all -- --check

step "lint"
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --locked --manifest-path plugins/Cargo.toml --workspace --all-targets -- -D warnings

# `cargo test` builds the binary too (the integration tests run it), with the same feature set
# as the tests: a separate `cargo build` would compile much of the tree a second time.
step "Rust tests"
cargo test --locked --no-fail-fast --lib --bins --tests 2>&1 | tee -a "$log"
# Benchmarks are measurements, not tests: `cargo bench --bench NAME` runs them (BENCHMARKS.md).
# Here they are only compiled, in the test profile, so none of them can rot unnoticed.
cargo test --locked --benches --no-run
export OPSYNC_BIN="$PWD/target/debug/opsync"

step "plugin workspace unit tests (templates, field selection, SigV4 and webhook signing)"
cargo test --locked --manifest-path plugins/Cargo.toml --workspace 2>&1 | tee -a "$log"

step "official SDKs against opsync connect-dev"
bash scripts/sdk-tests.sh 2>&1 | tee -a "$log"

# The README's install line, reusing this run's build. The container image needs a release build
# of its own (about 14 minutes on two cores), so it is a separate command, named in the README:
# bash scripts/image-test.sh
step "install path: cargo install --locked --path ."
bash scripts/install-test.sh 2>&1 | tee -a "$log"

# One closing line over every runner: cargo test ("test result: ok. N passed; M failed"),
# pytest ("N passed", "M failed"), node --test ("# pass N", "# fail M") and the install test
# ("install: N passed, M failed").
passed=$(grep -Eo '(test result: [a-zA-Z]+\. )?[0-9]+ passed|^# pass [0-9]+' "$log" | grep -Eo '[0-9]+' | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed|^# fail [0-9]+' "$log" | grep -Eo '[0-9]+' | awk '{s+=$1} END {print s+0}')
echo
echo "total: $passed passed, $failed failed"
