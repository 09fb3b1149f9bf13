"""Profile the hot path at saturation with py-spy, and summarise where each process spends CPU.

py-spy is a bench-only tool, installed with uv into ``bench/.venvs/_prof``. It samples the
dispatcher, the planner and the example services (``--nonblocking``: the processes are not
paused) while the throughput load runs, and writes collapsed stacks; this module ranks
functions by their own ("self") samples and by inclusive samples.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.peers_runner import VENVS, PeerSetupError, find_uv

if TYPE_CHECKING:
    from bench.config import Config
    from bench.procs import Stack
    from bench.sections import Result
    from bench.workload import Driver

__all__ = ["ensure_py_spy", "run_profile", "summarise"]

TARGETS = ("dispatcher", "planner", "examples")


def ensure_py_spy() -> Path:
    """The py-spy binary, installed into ``bench/.venvs/_prof`` when missing.

    Raises:
        PeerSetupError: it could not be installed.
    """
    venv = VENVS / "_prof"
    binary = venv / "bin/py-spy"
    if binary.exists():
        return binary
    uv = find_uv()
    env = {**os.environ, "VIRTUAL_ENV": str(venv)}
    try:
        if not (venv / "bin/python").exists():
            subprocess.run([str(uv), "venv", "-q", str(venv)], check=True, env=env)
        subprocess.run(
            [str(uv), "pip", "install", "-q", "py-spy"], check=True, env=env, capture_output=True
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        raise PeerSetupError(f"cannot install py-spy: {exc}") from None
    return binary


def _short(frame: str) -> str:
    """``handle (orra_dispatcher/handlers.py:120)`` → without line, shortened path."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})" if path else name


_IDLE = ("EpollSelector.select", "select (selectors")
"""Leaf frames that mean "waiting for I/O": counted as idle, not as work."""

_ROOTS = ("<module>", "main (", "run (", "run_service", "Runner.run", "_run_code", "_run_module")


def summarise(raw: str, top: int = 12) -> dict[str, Any]:
    """Rank functions of py-spy's collapsed stacks by own and inclusive samples.

    Samples whose leaf is the event loop's ``select`` (waiting for I/O) are counted as
    idle and left out of the percentages, which are of the busy samples. The inclusive
    ranking leaves out the event loop and the entry points (they include everything).
    """
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    module_counts: Counter[str] = Counter()
    total = idle = 0
    for line in raw.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [_short(f) for f in stack.split(";") if f]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        if frames[-1].startswith(_IDLE):
            idle += count
            continue
        total += count
        self_counts[frames[-1]] += count
        module_counts[_package(frames[-1])] += count
        for frame in set(frames):
            if _package(frame) == "asyncio" or frame.startswith(_ROOTS):
                continue
            incl_counts[frame] += count

    def pct(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(f, 100.0 * c / total) for f, c in counter.most_common(top)] if total else []

    return {
        "samples": total,
        "idle_pct": 100.0 * idle / (total + idle) if total + idle else 0.0,
        "self": pct(self_counts),
        "inclusive": pct(incl_counts),
        "by_package": pct(module_counts),
    }


def _package(frame: str) -> str:
    path = frame.partition(" (")[2].rstrip(")")
    head = path.split("/", 1)[0] if "/" in path else path
    return head.removesuffix(".py") or "?"


async def run_profile(cfg: Config, stack: Stack, driver: Driver) -> Result:
    """Sample the hot processes with py-spy for ``cfg.profile_s`` under saturation."""
    try:
        spy = ensure_py_spy()
    except PeerSetupError as exc:
        return {"status": "skipped", "notes": [str(exc)]}
    pids = stack.pids()
    tmp = Path(tempfile.mkdtemp(prefix="orra-bench-prof-"))
    procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for name in TARGETS:
        if name not in pids:
            continue
        out = tmp / f"{name}.txt"
        procs[name] = (
            subprocess.Popen(
                [
                    str(spy),
                    "record",
                    "--pid",
                    str(pids[name]),
                    "--duration",
                    str(int(cfg.profile_s)),
                    "--rate",
                    "200",
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--output",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            ),
            out,
        )
    await driver.closed_loop(
        driver.submit_action, concurrency=cfg.concurrency, duration_s=cfg.profile_s + 1.0
    )
    result: Result = {"status": "ok", "notes": [], "processes": {}}
    for name, (proc, out) in procs.items():
        try:
            _, err = await asyncio.to_thread(proc.communicate, timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            result["notes"].append(f"py-spy on {name} did not finish")
            continue
        if not out.exists():
            tail = err.decode(errors="replace").strip().splitlines()[-2:]
            result["notes"].append(f"py-spy on {name} wrote nothing: {' | '.join(tail)}")
            continue
        result["processes"][name] = summarise(out.read_text(errors="replace"))
        result["processes"][name]["raw"] = str(out)
    return result
