#!/usr/bin/env bash
# Runs the official 1Password Connect SDKs (PyPI onepasswordconnectsdk, npm @1password/connect)
# against `opsync connect-dev`. Sets up what they need on a fresh machine; safe to re-run.
# Needs an opsync binary: $OPSYNC_BIN, default target/debug/opsync (this script builds no Rust).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

OPSYNC_BIN="${OPSYNC_BIN:-target/debug/opsync}"
case "$OPSYNC_BIN" in /*) ;; *) OPSYNC_BIN="$root/$OPSYNC_BIN" ;; esac
if [[ ! -x "$OPSYNC_BIN" ]]; then
  echo "sdk-tests: no opsync binary at $OPSYNC_BIN" >&2
  echo "sdk-tests: build it first (cargo build --bin opsync) or set OPSYNC_BIN" >&2
  exit 2
fi
export OPSYNC_BIN
export PYTHONDONTWRITEBYTECODE=1

echo "==> Python SDK: set up .venv"
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/sdk/python/requirements.txt

echo "==> JS SDK: install node_modules"
(
  cd tests/sdk/js
  if [[ -f package-lock.json ]]; then
    npm ci --no-audit --no-fund --loglevel=error
  else
    npm install --no-audit --no-fund --loglevel=error
  fi
)

status=0

echo "==> Python SDK tests (pytest)"
.venv/bin/python -m pytest -q tests/sdk/python || status=1

echo "==> JS SDK tests (node --test)"
(cd tests/sdk/js && node --test --test-reporter=tap) || status=1

if [[ $status -ne 0 ]]; then
  echo "sdk-tests: FAILED" >&2
fi
exit $status
