"""Fixtures for the interop suite: a real `edgemq` process per test on a free loopback port.

The suite builds nothing: `.ci/run` runs `cargo build` first, and the broker binary is taken
from `.target/debug/edgemq` (override with EDGEMQ_BIN). Each broker is stopped by its own PID.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("EDGEMQ_BIN", ROOT / ".target" / "debug" / "edgemq"))


def free_port():
    """A port the kernel just handed out on 127.0.0.1 (never a fixed port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """One edgemq process; `port` is where it listens."""

    def __init__(self, log_path):
        if not BINARY.exists():
            pytest.fail(f"{BINARY} not found: run `cargo build` first")
        self.log_path = log_path
        for _attempt in range(3):
            self.port = free_port()
            self.log = open(log_path, "wb")
            self.proc = subprocess.Popen([str(BINARY), "-p", str(self.port), "-v"],
                                         stdout=self.log, stderr=subprocess.STDOUT)
            if self._wait_listening(5.0):
                return
            self.stop()
        pytest.fail(f"edgemq did not start; log:\n{self.log_text()}")

    def _wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # e.g. the port was taken between free_port() and bind
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def alive(self):
        return self.proc.poll() is None

    def log_text(self):
        try:
            return Path(self.log_path).read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.log.close()


@pytest.fixture
def broker(tmp_path):
    """A fresh broker for one test. The test fails if the broker died during it (a crash)."""
    b = Broker(tmp_path / "edgemq.log")
    yield b
    died = b.proc.poll()
    b.stop()
    if died is not None:
        pytest.fail(f"edgemq exited with {died} during the test; log tail:\n{b.log_text()}")


@pytest.fixture(scope="session")
def early_broker(tmp_path_factory):
    """A broker shared by the tests that need it to have run a while ($SYS is published every
    10 s). Started when the session starts, so by the time those tests run it usually has."""
    b = Broker(tmp_path_factory.mktemp("early") / "edgemq.log")
    b.started_at = time.monotonic()
    yield b
    b.stop()


@pytest.fixture(scope="session", autouse=True)
def _start_early_broker(request):
    if any("early_broker" in getattr(item, "fixturenames", ()) for item in request.session.items):
        request.getfixturevalue("early_broker")


@pytest.fixture(params=["3.1.1", "5"], ids=["v311", "v5"])
def version(request):
    """MQTT 3.1.1 and 5.0 (as the string paho helpers take)."""
    return request.param
