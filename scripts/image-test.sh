#!/usr/bin/env bash
# Tests the container image (scripts/build-image.sh) as far as this machine can: with podman, it
# runs the image; without a container runtime, it unpacks the image's root filesystem with umoci
# and runs its entrypoint binary chrooted into it (nothing from the host: no libc, no CA files,
# no /proc), as the image's user. Either way, `opsync demo` must answer /readyz and deliver.
# Ends with one line `image: N passed, M failed`.
set -uo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/check.sh
source scripts/lib/check.sh
trap 'summary image' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Waits for http://127.0.0.1:$1/readyz to answer 200.
ready() {
  local port=$1
  for _ in $(seq 1 120); do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz") == 200 ]]; then
      return 0
    fi
    sleep 0.5
  done
  return 1
}

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
if ! bash scripts/build-image.sh; then
  check "the image builds" false
  exit 1
fi
check "the image builds" true

connect_port=$(free_port)
admin_port=$(free_port)
if command -v podman >/dev/null 2>&1; then
  name="opsync-image-test-$$"
  podman run -d --rm --name "$name" -p "127.0.0.1:$admin_port:9464" "opsync:$version" \
    demo --dir /var/lib/opsync/demo --listen 127.0.0.1:8080 --admin-listen 0.0.0.0:9464 >/dev/null
  check "opsync demo in the image answers /readyz" ready "$admin_port"
  podman rm -f "$name" >/dev/null 2>&1
  exit 0
fi

layout=target/image/oci
bundle=$(mktemp -d)
cleanup() {
  [[ -n ${pid:-} ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$bundle"
  summary image
}
trap cleanup EXIT
umoci unpack --image "$layout:$version" "$bundle/b" >/dev/null
root="$bundle/b/rootfs"
spec="$bundle/b/config.json"

check "the image runs as user 65532, not root" \
  python3 -c 'import json,sys; u=json.load(open(sys.argv[1]))["process"]["user"]; sys.exit(0 if (u["uid"],u["gid"])==(65532,65532) else 1)' "$spec"
check "its entrypoint is /opsync --config /etc/opsync/config.toml run" \
  python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["process"]["args"]; sys.exit(0 if a==["/opsync","--config","/etc/opsync/config.toml","run"] else 1)' "$spec"
check "the root filesystem holds only the binary and its directories" \
  bash -c "[[ \$(cd '$root' && find . -mindepth 1 | sort | tr '\n' ' ') == './etc ./etc/opsync ./opsync ./tmp ./var ./var/lib ./var/lib/opsync ' ]]"
check "the binary is static" bash -c "file '$root/opsync' | grep -Eq 'statically linked|static-pie linked'"
check "opsync version runs in the image" \
  bash -c "chroot --userspec=65532:65532 '$root' /opsync version | grep -q '^target: x86_64-linux-musl'"

# The demo, chrooted as the image's user, with state in the image's state directory.
chroot --userspec=65532:65532 "$root" /opsync demo --dir /var/lib/opsync/demo \
  --listen "127.0.0.1:$connect_port" --admin-listen "127.0.0.1:$admin_port" \
  >"$bundle/demo.log" 2>&1 &
pid=$!
check "opsync demo in the image answers /readyz" ready "$admin_port"
check "the demo delivered files into the image's state directory" \
  bash -c "ls '$root'/var/lib/opsync/demo/files/*/*.env >/dev/null 2>&1"
check "metrics are served" bash -c "curl -sf http://127.0.0.1:$admin_port/metrics | grep -q '^opsync_build_info'"
if ((failed)); then
  echo "--- demo log"
  tail -n 40 "$bundle/demo.log"
fi
((failed == 0))
