"""The child processes of ``orra up``: how to run one, what the supervisor knows of it."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import signal
import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

__all__ = ["Child", "ChildSpec", "die_with_parent", "free_port", "port_free"]


def port_free(host: str, port: int) -> bool:
    """Whether ``port`` on ``host`` can be listened on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str) -> int:
    """A port on ``host`` that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: have the kernel send SIGTERM to the child if the supervisor dies."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass(frozen=True)
class ChildSpec:
    """How to run one child process.

    Attributes:
        name: Short name, used as the output prefix.
        argv: Command line.
        env: Environment of the process.
        required: Whether start fails when it does not become ready.
        health_url: A URL whose 200 also means ready.
    """

    name: str
    argv: list[str]
    env: dict[str, str]
    required: bool = True
    health_url: str | None = None


@dataclass
class Child:
    """A supervised child: its spec, its current process and its restart state."""

    spec: ChildSpec
    proc: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = 0.0
    restart_at: float | None = None
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=20))
