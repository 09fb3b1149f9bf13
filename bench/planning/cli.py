"""``python -m bench planning [--set NAME|all] [--planner offline|llm]``.

Plans every case of the chosen set(s) (``NAME`` is a key of ``corpus.SETS``: dev,
held-out, fresh, blind2, blind3) in-process and prints node and edge F1, exact plans,
correct refusals, doable actions refused and silent divergences, per set and per
category, with every failing case and what differed. ``--write-report`` also replaces
the "Planning fidelity" section of ``BENCHMARKS.md`` (the full harness, ``python -m
bench``, writes it with the rest).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bench.planning.corpus import SETS
from bench.planning.report import render_markdown, render_text, section, splice

if TYPE_CHECKING:
    from bench.planning.corpus import SetName
    from bench.planning.runner import PlannerName

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    """Run the planning benchmark; returns the exit code.

    0 when it ran (1 with ``--strict`` if a target is missed); 2 when the planner asked
    for cannot run here.
    """
    parser = argparse.ArgumentParser(prog="python -m bench planning", description=__doc__)
    parser.add_argument("--set", choices=[*SETS, "all"], default="all", dest="set_name")
    parser.add_argument("--planner", choices=["offline", "llm"], default="offline")
    parser.add_argument("--json", type=Path, help="also save the results as JSON here")
    parser.add_argument(
        "--write-report",
        type=Path,
        nargs="?",
        const=REPO / "BENCHMARKS.md",
        metavar="BENCHMARKS_MD",
        help="replace the planning section of this report (default: BENCHMARKS.md)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if a measured set misses a target"
    )
    parser.add_argument("--quiet", action="store_true", help="leave out the failing cases")
    args = parser.parse_args(argv)
    sets: tuple[SetName, ...] = tuple(SETS) if args.set_name == "all" else (args.set_name,)
    planner: PlannerName = args.planner
    result = section((planner,), sets)
    measured = result["planners"][planner]
    sys.stdout.write(render_text(result, failures=not args.quiet))
    if measured["status"] != "ok":
        sys.stderr.write(f"python -m bench planning: {measured['reason']}\n")
        return 2
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    if args.write_report:
        path: Path = args.write_report
        current = path.read_text() if path.exists() else "# Orra benchmarks\n"
        path.write_text(splice(current, render_markdown(result)))
        sys.stderr.write(f"wrote the planning section of {path}\n")
    missed = [
        f"{name}: {check['name']}"
        for name, data in measured["sets"].items()
        if name != "all"
        for check in data["targets"]
        if not check["met"]
    ]
    return 1 if args.strict and missed else 0
