# Sourced by the script tests (image-test.sh, install-test.sh): `check NAME COMMAND...` runs the
# command and counts it as passed or failed; `summary LABEL` prints the closing line
# `LABEL: N passed, M failed` that scripts/test.sh adds to its total.
passed=0
failed=0

check() {
  local name=$1
  shift
  if "$@"; then
    echo "ok: $name"
    passed=$((passed + 1))
  else
    echo "FAILED: $name"
    failed=$((failed + 1))
  fi
}

summary() { echo "$1: $passed passed, $failed failed"; }
