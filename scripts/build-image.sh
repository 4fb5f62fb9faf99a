#!/usr/bin/env bash
# Builds the opsync container image (Containerfile): a static musl binary on an empty base, user
# 65532, entrypoint /opsync. With podman or buildah installed it runs the Containerfile. Without
# one (a machine with no container runtime), it builds the same image without one: the binary
# with `cargo install --target x86_64-unknown-linux-musl`, the layout with umoci (Debian package
# umoci), into an OCI layout at target/image/oci, tagged with the crate version.
#   bash scripts/build-image.sh            # the image
#   OPSYNC_IMAGE_LAYOUT=DIR bash ...       # where the OCI layout goes (umoci path)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
tag="opsync:$version"

if command -v podman >/dev/null 2>&1; then
  exec podman build -f Containerfile -t "$tag" .
fi
if command -v buildah >/dev/null 2>&1; then
  exec buildah bud -f Containerfile -t "$tag" .
fi

echo "build-image: no podman or buildah; assembling the Containerfile's image with umoci"
need() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if ((${#missing[@]})); then
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}
need umoci musl-tools
rustup target add x86_64-unknown-linux-musl wasm32-wasip2 >/dev/null

# The build stage: the same `cargo install` as the Containerfile's.
out=target/image/install
cargo install --locked --path . --root "$out" --target x86_64-unknown-linux-musl

# The final stage: FROM scratch, the directories, the binary, the config.
layout="${OPSYNC_IMAGE_LAYOUT:-target/image/oci}"
bundle=$(mktemp -d)
trap 'rm -rf "$bundle"' EXIT
rm -rf "$layout"
mkdir -p "$(dirname "$layout")"
umoci init --layout "$layout"
umoci new --image "$layout:$version"
umoci unpack --image "$layout:$version" "$bundle/b"
root="$bundle/b/rootfs"
mkdir -p "$root/var/lib/opsync" "$root/etc/opsync" "$root/tmp"
chown 65532:65532 "$root/var/lib/opsync"
chmod 0700 "$root/var/lib/opsync"
chmod 1777 "$root/tmp"
install -m 0755 "$out/bin/opsync" "$root/opsync"
umoci repack --image "$layout:$version" "$bundle/b"
umoci config --image "$layout:$version" \
  --config.user=65532:65532 \
  --config.workingdir=/var/lib/opsync \
  --config.exposedports=9464/tcp \
  --config.volume=/var/lib/opsync \
  --config.entrypoint=/opsync \
  --config.cmd=--config --config.cmd=/etc/opsync/config.toml --config.cmd=run \
  --config.label=org.opencontainers.image.title=opsync \
  --config.label=org.opencontainers.image.licenses=Apache-2.0 \
  "--config.label=org.opencontainers.image.version=$version"
echo "build-image: $tag in the OCI layout $layout"
