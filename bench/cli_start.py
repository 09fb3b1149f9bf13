"""Start time of the ``orra`` command (issue 23 item 4): median wall and CPU time per command.

``python -m bench.cli_start ORCHESTRATION_ID [--runs 7] [--compare SRC]`` against a running
stack (``orra up``; ``ORRA_GATEWAY_URL`` and ``ORRA_API_KEY`` set as for the CLI). Each command
is a fresh ``orra`` process; CPU is its user + system time (``os.wait4``). ``--compare SRC``
also times the CLI whose ``orra_cli`` package is under ``SRC`` (e.g. an older commit's
``cli/src``, put first on ``PYTHONPATH``), run by run interleaved with this one, so that both
see the same machine load. The fifth row is a gateway that nothing listens on: the pure start
cost of a command plus its error path; the last two are the interpreter alone and the import
of the three libraries every command loads (this tree's column), for comparison.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["main"]

ORRA = Path(sys.executable).with_name("orra")


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(argv: list[str], pythonpath: str | None) -> tuple[float, float, int]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return _timed([str(ORRA), *argv], env)


def _run_python(code: str) -> tuple[float, float, int]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return _timed([sys.executable, "-c", code], env)


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    return wall, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status)


def main() -> None:
    """Print a Markdown table of the median start times."""
    parser = argparse.ArgumentParser(prog="python -m bench.cli_start")
    parser.add_argument("orchestration_id", help="an orchestration of the running stack")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--compare", metavar="SRC", help="another orra_cli source tree")
    args = parser.parse_args()
    commands = {
        "orra --help": ["--help"],
        "orra ps": ["ps"],
        f"orra inspect {args.orchestration_id}": ["inspect", args.orchestration_id],
        "orra services ls": ["services", "ls"],
        "orra ps (no gateway listening)": [
            "--gateway-url",
            f"http://127.0.0.1:{_dead_port()}",
            "ps",
        ],
    }
    variants: dict[str, str | None] = {"this tree": None}
    if args.compare:
        variants = {"compared": args.compare, **variants}
    floors = {
        "`python -c pass`": "pass",
        # httpx as the CLI imports it: without its own command line (orra_cli.client._httpx).
        "`import typer, rich.console, httpx` (the libraries' floor)": (
            "import sys; sys.modules['httpx._main'] = None; import typer, rich.console, httpx"
        ),
    }
    floor_runs: dict[str, list[tuple[float, float, int]]] = {label: [] for label in floors}
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    print("| command | " + " | ".join(f"{v}: wall, CPU (exit)" for v in variants) + " |")
    print("|---|" + "---|" * len(variants))
    for label, argv in commands.items():
        samples: dict[str, list[tuple[float, float, int]]] = {v: [] for v in variants}
        for _ in range(args.runs):
            for name, pythonpath in variants.items():
                samples[name].append(_run(argv, pythonpath))
            for floor, code in floors.items():  # sampled all along the run, as the commands
                floor_runs[floor].append(_run_python(code))
        cells = []
        for runs in samples.values():
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            codes = ",".join(str(c) for c in sorted({r[2] for r in runs}))
            cells.append(f"{wall * 1000:.0f} ms, {cpu * 1000:.0f} ms ({codes})")
        print(f"| `{label}` | " + " | ".join(cells) + " |")
    for label, runs in floor_runs.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        cells = ["-"] * (len(variants) - 1) + [f"{wall * 1000:.0f} ms, {cpu * 1000:.0f} ms"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
