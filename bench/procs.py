"""Start Orra's processes for a benchmark, wait for their ``ready`` log line, sample them.

Every service is started as its own process (``python -m <module>``) with the workspace's
interpreter, in its own session so that it can be stopped with its children, and with the
Linux parent-death signal so that a crashed harness leaves no orphans. A reader thread
copies the process's stderr (structlog JSON lines) to a log file and notes the moment the
first ``ready`` line appears: that moment is the process's start-up time.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

import psutil  # type: ignore[import-untyped]

from orra_events.embedded import EmbeddedNats, free_port

__all__ = [
    "READY_EVENTS",
    "REPO",
    "ManagedProcess",
    "ProcessSample",
    "ServiceMissingError",
    "ServiceStartError",
    "Stack",
    "module_available",
]

REPO = Path(__file__).resolve().parent.parent
"""The repository root (``bench`` is imported from here)."""

READY_EVENTS = frozenset({"ready", "serving"})
"""structlog ``event`` values that mean a process is ready (SDK processes say ``serving``)."""

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ServiceMissingError(RuntimeError):
    """A service module is not installed in this interpreter."""


class ServiceStartError(RuntimeError):
    """A service exited, or did not log ``ready`` in time; the message has its log tail."""


def module_available(module: str) -> bool:
    """Whether ``python -m module`` can be run by this interpreter."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class ProcessSample:
    """CPU seconds (user + system, children included) and resident memory of a process."""

    cpu_s: float
    rss_bytes: int


def sample(pid: int) -> ProcessSample:
    """Sample one process now (its children's CPU is included once they are reaped)."""
    proc = psutil.Process(pid)
    times = proc.cpu_times()
    return ProcessSample(
        times.user + times.system + times.children_user + times.children_system,
        proc.memory_info().rss,
    )


@dataclass
class ManagedProcess:
    """One service process: how to start it, its log, its readiness.

    Attributes:
        name: Short name used in reports (``dispatcher``).
        module: The module run with ``python -m``.
        env: Extra environment variables.
        ready_timeout_s: How long to wait for the ``ready`` line.
    """

    name: str
    module: str
    env: dict[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 60.0
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    ready_at: float | None = None
    ready_line: dict[str, object] | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        """The process id (the process must be started)."""
        assert self.proc is not None, f"{self.name} is not started"
        return self.proc.pid

    @property
    def startup_s(self) -> float | None:
        """Seconds from ``Popen`` to the ``ready`` line, once ready."""
        return None if self.ready_at is None else self.ready_at - self.started_at

    def start(self, base_env: dict[str, str], log_dir: Path) -> None:
        """Start the process; returns at once (see :meth:`wait_ready`).

        Raises:
            ServiceMissingError: the module is not installed.
        """
        if not module_available(self.module):
            raise ServiceMissingError(
                f"{self.name}: module {self.module!r} is not installed in {sys.executable} "
                "(run 'make install', or is the service not written yet?)"
            )
        env = {**base_env, **self.env}
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{self.name}-{uuid.uuid4().hex[:6]}.log"
        self._ready.clear()
        self.ready_at = None
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - harness runs in the main thread
        )
        assert self.proc.stderr is not None
        self._reader = threading.Thread(
            target=self._read, args=(self.proc.stderr, self.log_path), daemon=True
        )
        self._reader.start()

    def _read(self, stream: IO[bytes], path: Path) -> None:
        with path.open("wb") as out:
            for raw in iter(stream.readline, b""):
                out.write(raw)
                out.flush()
                if self.ready_at is not None:
                    continue
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(line, dict) and line.get("event") in READY_EVENTS:
                    self.ready_at = time.perf_counter()
                    self.ready_line = line
                    self._ready.set()

    def wait_ready(self) -> float:
        """Wait for the ``ready`` line; return the start-up time in seconds.

        Raises:
            ServiceStartError: the process exited or was not ready in time.
        """
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout_s
        while not self._ready.wait(0.02):
            if self.proc.poll() is not None:
                time.sleep(0.1)  # let the reader copy the last lines
                raise ServiceStartError(
                    f"{self.name} ({self.module}) exited with code {self.proc.returncode} "
                    f"before it was ready: {self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise ServiceStartError(
                    f"{self.name} ({self.module}) did not log 'ready' within "
                    f"{self.ready_timeout_s:.0f}s: {self.log_tail()}"
                )
        assert self.startup_s is not None
        return self.startup_s

    def wait_event(self, event: str, timeout_s: float) -> float | None:
        """Wait for a log line whose ``event`` is ``event``; seconds since ``Popen``, or None.

        Lines are read back from the process's log file (the reader writes every line).
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.log_path is not None and self.log_path.exists():
                for raw in self.log_path.read_bytes().splitlines():
                    try:
                        line = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(line, dict) and line.get("event") == event:
                        return time.perf_counter() - self.started_at
            if self.proc is not None and self.proc.poll() is not None:
                return None
            time.sleep(0.05)
        return None

    def log_tail(self, lines: int = 8) -> str:
        """The last lines of the process's log, on one line."""
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").strip().splitlines()[-lines:]
        return " | ".join(text) or "(empty log)"

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM the process's group, then SIGKILL it if it does not exit in time."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=2.0)


class Stack:
    """A nats-server in a temporary store and a set of service processes in one namespace.

    Use it as a context manager; everything it started is stopped on exit.

    Args:
        namespace: The Orra namespace of every process.
        log_dir: Where the processes' logs go (a temporary directory by default).
        nats: An already running server to use (not stopped on exit).
    """

    def __init__(
        self,
        namespace: str | None = None,
        *,
        log_dir: Path | None = None,
        nats: EmbeddedNats | None = None,
    ) -> None:
        self.namespace = namespace or f"bench{uuid.uuid4().hex[:6]}"
        self._tmp = Path(tempfile.mkdtemp(prefix="orra-bench-"))
        self.log_dir = log_dir or self._tmp / "logs"
        self._own_nats = nats is None
        self.nats = nats or EmbeddedNats(self._tmp / "store", log_file=self._tmp / "nats.log")
        self.processes: dict[str, ManagedProcess] = {}

    @property
    def url(self) -> str:
        """The broker URL."""
        return self.nats.url

    @property
    def env(self) -> dict[str, str]:
        """The environment every process of the stack gets."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ORRA_", "OPENAI_", "PYTEST_", "COV_"))
        }
        env.update(
            {
                "ORRA_NATS_URL": self.url,
                "ORRA_NAMESPACE": self.namespace,
                "ORRA_LOG_FORMAT": "json",
                "ORRA_LOG_LEVEL": "INFO",
                "ORRA_EXAMPLES_LATENCY_SCALE": "0",
                # Sections other than "retention" measure a log that is never trimmed.
                "ORRA_RETENTION_MAX_AGE_S": "0",
                "ORRA_RETENTION_MAX_BYTES": "0",
                "PYTHONPATH": str(REPO),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def __enter__(self) -> Self:
        if self._own_nats:
            self.nats.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop_all()
        if self._own_nats:
            self.nats.stop()
        with contextlib.suppress(OSError):
            import shutil

            shutil.rmtree(self._tmp / "store", ignore_errors=True)

    def start(self, *procs: ManagedProcess) -> dict[str, float]:
        """Start ``procs`` together and wait until each is ready; return start-up seconds.

        Raises:
            ServiceMissingError: a module is not installed (nothing is left running).
            ServiceStartError: a process did not become ready (nothing is left running).
        """
        started: list[ManagedProcess] = []
        try:
            for p in procs:
                p.start(self.env, self.log_dir)
                started.append(p)
                self.processes[p.name] = p
            return {p.name: p.wait_ready() for p in procs}
        except BaseException:
            for p in started:
                p.stop()
                self.processes.pop(p.name, None)
            raise

    def stop(self, name: str) -> None:
        """Stop one process of the stack."""
        proc = self.processes.pop(name, None)
        if proc is not None:
            proc.stop()

    def stop_all(self) -> None:
        """Stop every process of the stack, last started first."""
        for name in reversed(list(self.processes)):
            self.stop(name)

    def pids(self) -> dict[str, int]:
        """Process ids by name, the nats-server and this harness (``driver``) included."""
        pids = {name: p.pid for name, p in self.processes.items() if p.proc is not None}
        if self.nats.pid is not None:
            pids["nats-server"] = self.nats.pid
        pids["driver"] = os.getpid()
        return pids

    def samples(self) -> dict[str, ProcessSample]:
        """CPU and RSS of every process of the stack now."""
        out: dict[str, ProcessSample] = {}
        for name, pid in self.pids().items():
            with contextlib.suppress(psutil.Error):
                out[name] = sample(pid)
        return out

    def alive_check(self) -> None:
        """Raise if a process of the stack has exited.

        Raises:
            ServiceStartError: naming the process with its log tail.
        """
        for p in self.processes.values():
            if p.proc is not None and p.proc.poll() is not None:
                raise ServiceStartError(
                    f"{p.name} exited with code {p.proc.returncode}: {p.log_tail()}"
                )


def gateway_process(port: int | None = None) -> ManagedProcess:
    """The gateway on a free port."""
    return ManagedProcess(
        "gateway",
        "orra_gateway",
        env={"ORRA_GATEWAY_PORT": str(port or free_port()), "ORRA_GATEWAY_HOST": "127.0.0.1"},
    )


def core_processes() -> list[ManagedProcess]:
    """Planner, dispatcher and the example services (instant)."""
    return [
        ManagedProcess("planner", "orra_planner"),
        ManagedProcess("dispatcher", "orra_dispatcher"),
        ManagedProcess("examples", "orra_examples"),
    ]
