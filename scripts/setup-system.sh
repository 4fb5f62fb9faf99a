#!/usr/bin/env bash
# Installs the system packages that opsync's tests need on a fresh Debian/Ubuntu machine; safe to
# re-run (installs only what is missing). Today: `promtool` (Debian package `prometheus`), which
# tests/telemetry.rs runs as `promtool check metrics` on opsync's /metrics output.
set -euo pipefail

need_root() {
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo "$@"
    else
      echo "setup-system: need root to run: $*" >&2
      exit 1
    fi
  else
    "$@"
  fi
}

if ! command -v promtool >/dev/null 2>&1; then
  echo "==> installing promtool (Debian package prometheus)"
  need_root apt-get update -qq
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
fi
command -v promtool >/dev/null 2>&1 || { echo "setup-system: promtool is still missing" >&2; exit 1; }
echo "setup-system: promtool $(promtool --version 2>&1 | head -n1)"

# rsyslog: tests/plugin_sink_syslog.rs starts its own unprivileged rsyslogd (imtcp on a free port)
# to receive what the built-in `syslog` audit sink sends.
# rsyslog-gnutls gives it TLS (RFC 5425) for the sink's TLS test, whose certificate openssl makes.
if [[ ! -x /usr/sbin/rsyslogd ]] || ! dpkg -s rsyslog-gnutls >/dev/null 2>&1 \
  || ! command -v openssl >/dev/null 2>&1; then
  echo "==> installing rsyslog, rsyslog-gnutls and openssl (Debian packages)"
  need_root apt-get update -qq
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    rsyslog rsyslog-gnutls openssl
fi
[[ -x /usr/sbin/rsyslogd ]] || command -v rsyslogd >/dev/null 2>&1 || { echo "setup-system: rsyslogd is still missing" >&2; exit 1; }
echo "setup-system: $(/usr/sbin/rsyslogd -v 2>&1 | head -n1)"

# systemd-analyze: tests/deploy.rs runs `systemd-analyze verify` and `security --offline` on
# deploy/systemd/opsync.service (no running systemd is needed for either).
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "==> installing systemd-analyze (Debian package systemd)"
  need_root apt-get update -qq
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd
fi
command -v systemd-analyze >/dev/null 2>&1 || { echo "setup-system: systemd-analyze is still missing" >&2; exit 1; }
echo "setup-system: $(systemd-analyze --version | head -n1)"

# man (man-db, with groff): tests/cli.rs renders the pages `opsync man` writes.
if ! command -v man >/dev/null 2>&1 || ! command -v groff >/dev/null 2>&1; then
  echo "==> installing man-db and groff-base (Debian packages)"
  need_root apt-get update -qq
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends man-db groff-base
fi
command -v man >/dev/null 2>&1 || { echo "setup-system: man is still missing" >&2; exit 1; }

# chromium (headless): renders pages for browser tests (`--dump-dom`, `--screenshot`);
# fonts-dejavu-core so that text shows up in screenshots. Debian's package only.
if ! command -v chromium >/dev/null 2>&1 || ! dpkg -s fonts-dejavu-core >/dev/null 2>&1; then
  echo "==> installing chromium and fonts-dejavu-core (Debian packages)"
  need_root apt-get update -qq
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core
fi
command -v chromium >/dev/null 2>&1 || { echo "setup-system: chromium is still missing" >&2; exit 1; }
echo "setup-system: $(chromium --version 2>/dev/null | head -n1)"

# kubectl: tests/kube_fake_clients.rs reads Secrets back from the fake Kubernetes API server with
# it. Any kubectl on PATH will do (the fake serves 1.20 to 1.32); else Debian's kubernetes-client.
if ! command -v kubectl >/dev/null 2>&1; then
  echo "==> installing kubectl (Debian package kubernetes-client)"
  need_root apt-get update -qq
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client
fi
command -v kubectl >/dev/null 2>&1 || { echo "setup-system: kubectl is still missing" >&2; exit 1; }
echo "setup-system: kubectl $(kubectl version --client 2>/dev/null | head -n1)"

# PostgreSQL 15 (server and psql): the PostgreSQL state's tests (tests/pg_support) start a
# throwaway cluster per test process with initdb in a temp dir, as the package's unprivileged
# `postgres` user when run as root, on a free 127.0.0.1 port. The package's own cluster is not
# used or needed.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1 \
  || ! id postgres >/dev/null 2>&1; then
  echo "==> installing postgresql-15 and its client (Debian packages)"
  need_root apt-get update -qq
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    postgresql-15 postgresql-client-15
fi
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "setup-system: initdb is still missing" >&2; exit 1; }
echo "setup-system: $(ls -d /usr/lib/postgresql/*/bin | tail -n1)/postgres $("$(ls -d /usr/lib/postgresql/*/bin | tail -n1)/postgres" --version)"
