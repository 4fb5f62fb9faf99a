"""Starts `opsync connect-dev` for each test module and hands the tests official-SDK clients."""

import os
import queue
import re
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
from onepasswordconnectsdk import new_client

REPO_ROOT = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT_S = 60
ID_RE = re.compile(r"^[a-z0-9]{26}$")
# The categories the demo seed promises (see scripts/sdk-tests.sh and the issue).
SEEDED_CATEGORIES = {"LOGIN", "PASSWORD", "API_CREDENTIAL", "DATABASE", "SERVER", "SSH_KEY"}


def opsync_bin() -> str:
    path = Path(os.environ.get("OPSYNC_BIN") or REPO_ROOT / "target" / "debug" / "opsync")
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file():
        pytest.exit(f"opsync binary not found at {path}; build it with `cargo build --bin opsync` "
                    "or point OPSYNC_BIN at it", returncode=2)
    return str(path)


class ConnectDev:
    """One running `opsync connect-dev --seed demo` on a free loopback port."""

    def __init__(self):
        self.bin = opsync_bin()
        self.workdir = tempfile.TemporaryDirectory(prefix="opsync-sdk-py-")
        self.log_path = Path(self.workdir.name) / "connect-dev.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [self.bin, "connect-dev", "--listen", "127.0.0.1:0", "--seed", "demo"],
            cwd=self.workdir.name,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        try:
            env = self._read_env_lines()
        except Exception:
            self.stop()
            raise
        self.host = env["OP_CONNECT_HOST"]
        self.token = env["OP_CONNECT_TOKEN"]

    def _read_env_lines(self) -> dict:
        lines: "queue.Queue[str | None]" = queue.Queue()

        def pump():
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        env = {}
        while len(env) < 2:
            try:
                line = lines.get(timeout=STARTUP_TIMEOUT_S)
            except queue.Empty:
                raise RuntimeError(f"connect-dev printed no OP_CONNECT_* lines within {STARTUP_TIMEOUT_S}s"
                                   f"{self.log_tail()}") from None
            if line is None:
                raise RuntimeError(f"connect-dev exited ({self.proc.wait()}) before it was ready"
                                   f"{self.log_tail()}")
            key, sep, value = line.strip().partition("=")
            if sep and key in ("OP_CONNECT_HOST", "OP_CONNECT_TOKEN"):
                env[key] = value
        assert env["OP_CONNECT_HOST"].startswith("http://127.0.0.1:"), env["OP_CONNECT_HOST"]
        return env

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\nconnect-dev stderr (tail):\n" + "\n".join(text) if text else ""

    def mint(self, *grants: str, expires_in: str | None = None) -> str:
        """A new token from `opsync connect-dev token`, e.g. mint("Production:r")."""
        cmd = [self.bin, "connect-dev", "token", "--host", self.host, "--token", self.token]
        for grant in grants:
            cmd += ["--vault", grant]
        if expires_in is not None:
            cmd += ["--expires-in", expires_in]
        done = subprocess.run(cmd, cwd=self.workdir.name, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"`opsync connect-dev token` failed ({done.returncode}): {done.stderr.strip()}")
        out = done.stdout.strip().splitlines()
        assert len(out) == 1, f"token printed {len(out)} lines, expected 1"
        return out[0]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()
        self.workdir.cleanup()


@pytest.fixture(scope="module")
def server():
    dev = ConnectDev()
    try:
        yield dev
    finally:
        still_running = dev.proc.poll() is None
        dev.stop()
        assert still_running, "connect-dev died during the tests"


@pytest.fixture(scope="module")
def client(server):
    """A client with the read-write token printed by connect-dev."""
    return new_client(server.host, server.token)


@pytest.fixture(scope="module")
def vaults(client):
    found = client.get_vaults()
    assert len(found) >= 2, "the demo seed should have several vaults"
    return sorted(found, key=lambda v: v.name)


@pytest.fixture(scope="module")
def summaries(client, vaults):
    """Every item summary of every vault, as (vault, summary) pairs."""
    return [(v, s) for v in vaults for s in client.get_items(v.id)]
