#!/usr/bin/env bash
# Tests the README's install line, `cargo install --locked --path .`, into a throwaway root, then
# runs the installed binary. In the dev profile and the test run's target directory, so it reuses
# what the tests built (the release build of the same line is what scripts/image-test.sh
# installs into the container image). Ends with one line `install: N passed, M failed`.
set -uo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/check.sh
source scripts/lib/check.sh
root=$(mktemp -d)
trap 'rm -rf "$root"; summary install' EXIT

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
check "cargo install --locked --path . installs opsync" \
  cargo install --quiet --locked --debug --path . --root "$root" --target-dir target
bin="$root/bin/opsync"
check "the installed binary names its version and commit" \
  bash -c "'$bin' version | grep -q '^opsync $version\$' && '$bin' version | grep -Eq '^commit: [0-9a-f]{12}\$'"
check "the installed binary writes its completions and manual pages" \
  bash -c "'$bin' completions bash | grep -q '_opsync' && '$bin' man --out-dir '$root/man' && test -s '$root/man/opsync-run.1'"
((failed == 0))
