"""``python -m bench [--quick | --smoke] [--out BENCHMARKS.md] [--only SECTION ...]``.

Runs Orra's benchmarks and writes the report. Sections: overhead, throughput, frontdoor
(``POST /orchestrations`` → signed webhook, on a stack of its own), peers, recovery,
makespan, memory, profile and retention (these two: full runs only unless named with
``--only``), planning (planning fidelity, in-process; ``python -m bench planning --help``
runs it alone with its own options, see :mod:`bench.planning.cli`), console (the web
console in chromium against 100,000 orchestrations; full runs only unless named with
``--only``), publisher (Orra's pipelined publisher against nats-py's, A/B), tracing (the
bus path with OpenTelemetry off and on; full runs only unless named with ``--only``).
``--splice`` replaces
only this run's sections in an existing report. A section that cannot run (a service not
installed, a peer that cannot be set up) is reported as skipped or failed with the reason;
the report is written regardless. The raw results are also saved as JSON under
``bench/results/`` (gitignored).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.config import SECTIONS, Config, full, quick, smoke
from bench.machine import machine_info
from bench.procs import REPO, ServiceMissingError, ServiceStartError, Stack
from bench.report import render, splice
from bench.sections import Result, error, skipped

MAIN_STACK = ("overhead", "throughput", "makespan", "profile", "memory")


def log(message: str) -> None:
    """Progress on stderr."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


LOAD_AT_START: dict[str, float] = {}
"""The machine's 1-minute load average when each section started (the machine is shared)."""


def section_starts(name: str) -> None:
    """Log that section ``name`` starts and note the load average."""
    LOAD_AT_START[name] = round(os.getloadavg()[0], 2)
    log(f"section {name} (load average {LOAD_AT_START[name]})")


def _failure(exc: BaseException) -> Result:
    if isinstance(exc, (ServiceMissingError, ServiceStartError)):
        return error(str(exc))
    tb = traceback.format_exception(exc)
    return error(f"{type(exc).__name__}: {exc} — {''.join(tb[-3:]).strip()[:600]}")


async def _main_stack(cfg: Config, wanted: list[str]) -> dict[str, Result]:
    from bench.sections.orra import (
        main_processes,
        run_makespan,
        run_memory,
        run_overhead,
        run_throughput,
    )
    from bench.sections.profile import run_profile
    from bench.workload import Driver

    out: dict[str, Result] = {}
    with Stack() as stack:
        log(f"starting nats-server + services in namespace {stack.namespace}")
        required, examples = main_processes()
        try:
            startup = await asyncio.to_thread(stack.start, *required)
        except (ServiceMissingError, ServiceStartError) as exc:
            return {name: _failure(exc) for name in wanted}
        try:
            startup.update(await asyncio.to_thread(stack.start, examples))
        except (ServiceMissingError, ServiceStartError) as exc:
            # Without the example services only the makespan (bench sleeper) can run.
            for name in wanted:
                if name != "makespan":
                    out[name] = _failure(exc)
            wanted = [name for name in wanted if name == "makespan"]
        log("ready: " + ", ".join(f"{k} {v:.2f}s" for k, v in startup.items()))
        driver = await Driver.connect(stack.url, stack.namespace)
        plan = None
        try:
            for name in wanted:
                section_starts(name)
                t0 = time.perf_counter()
                try:
                    if name == "overhead":
                        out[name] = await run_overhead(cfg, driver)
                    elif name == "throughput":
                        if plan is None:
                            plan = (await driver.first_plan()).plan
                        out[name] = await run_throughput(cfg, stack, driver, plan)
                    elif name == "makespan":
                        out[name] = await run_makespan(cfg, driver)
                    elif name == "profile":
                        out[name] = await run_profile(cfg, stack, driver)
                    elif name == "memory":
                        out[name] = await run_memory(cfg, stack, driver)
                except Exception as exc:
                    out[name] = _failure(exc)
                    stack.alive_check()
                out[name]["seconds"] = time.perf_counter() - t0
                log(f"section {name}: {out[name]['status']} in {out[name]['seconds']:.1f}s")
        except ServiceStartError as exc:  # a service died: the rest cannot run
            for name in wanted:
                out.setdefault(name, _failure(exc))
        finally:
            await driver.close()
    return out


def run(cfg: Config, sections: list[str]) -> dict[str, Any]:
    """Run ``sections`` with ``cfg``; return every result."""
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "config": dataclasses.asdict(cfg),
        "sections": {},
    }
    on_stack = [s for s in MAIN_STACK if s in sections]
    if on_stack:
        results["sections"].update(asyncio.run(_main_stack(cfg, on_stack)))
    if "frontdoor" in sections:
        section_starts("frontdoor")
        from bench.sections.frontdoor import run_frontdoor

        t0 = time.perf_counter()
        try:
            results["sections"]["frontdoor"] = asyncio.run(run_frontdoor(cfg, log=log))
        except Exception as exc:
            results["sections"]["frontdoor"] = _failure(exc)
        results["sections"]["frontdoor"]["seconds"] = time.perf_counter() - t0
        log(f"section frontdoor: {results['sections']['frontdoor']['status']}")
    if "peers" in sections:
        section_starts("peers")
        if not cfg.peers:
            results["sections"]["peers"] = skipped(
                "peers are not run in --quick mode: each installs its own environment on "
                "first use (Celery with a Redis server, DBOS, Prefect, Temporal's CLI and "
                "SDK, Restate's server from npm: several hundred MB) and runs for minutes; "
                "`make bench` runs them"
            )
        else:
            from bench.sections.peers import run_peers

            try:
                results["sections"]["peers"] = run_peers(cfg, log=log)
            except Exception as exc:
                results["sections"]["peers"] = _failure(exc)
    if "planning" in sections:
        section_starts("planning")
        from bench.planning.report import section as planning_section

        t0 = time.perf_counter()
        try:
            results["sections"]["planning"] = planning_section()
        except Exception as exc:
            results["sections"]["planning"] = _failure(exc)
        results["sections"]["planning"]["seconds"] = time.perf_counter() - t0
    if "retention" in sections:
        log("section retention")
        from bench.sections.retention import run_retention

        try:
            results["sections"]["retention"] = run_retention(cfg)
        except Exception as exc:
            results["sections"]["retention"] = _failure(exc)
    if "recovery" in sections:
        section_starts("recovery")
        from bench.sections.recovery import run_recovery

        try:
            results["sections"]["recovery"] = run_recovery(cfg)
        except Exception as exc:
            results["sections"]["recovery"] = _failure(exc)
    for name in ("console", "publisher", "tracing"):
        if name in sections:
            section_starts(name)
            run_section = getattr(importlib.import_module(f"bench.sections.{name}"), f"run_{name}")
            t0 = time.perf_counter()
            try:
                results["sections"][name] = run_section(cfg)
            except Exception as exc:
                results["sections"][name] = _failure(exc)
            results["sections"][name]["seconds"] = time.perf_counter() - t0
    order = {name: i for i, name in enumerate(SECTIONS)}
    results["sections"] = dict(sorted(results["sections"].items(), key=lambda kv: order[kv[0]]))
    results["elapsed_s"] = time.perf_counter() - started
    results["load_at_section_start"] = dict(LOAD_AT_START)
    results["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (1 when ``--strict`` and a section failed)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["planning"]:
        from bench.planning.cli import main as planning_main

        return planning_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke sizes, < 2 minutes")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="smaller than --quick (the test suite's run; its figures mean nothing)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md", help="report path")
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        help="run only this section (repeatable)",
    )
    parser.add_argument("--json", type=Path, help="where to save raw results (JSON)")
    parser.add_argument(
        "--memory-completed",
        help="completed-orchestration checkpoints of the memory section, e.g. 10000,100000",
    )
    parser.add_argument(
        "--merge",
        type=Path,
        metavar="RESULTS_JSON",
        help="keep the sections of an earlier run's JSON that this run does not redo",
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS_JSON",
        help="run nothing: write the report from an earlier run's JSON",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if a section failed or was skipped"
    )
    parser.add_argument(
        "--splice",
        action="store_true",
        help="replace only this run's sections in the existing report (with --only)",
    )
    args = parser.parse_args(argv)
    if args.render:
        args.out.write_text(render(json.loads(args.render.read_text())))
        log(f"wrote {args.out} from {args.render}")
        return 0
    cfg = smoke() if args.smoke else quick() if args.quick else full()
    if args.only:
        sections = list(dict.fromkeys(args.only))
    else:
        sections = [
            s
            for s in SECTIONS
            if not (s == "profile" and cfg.profile_s <= 0)
            and not (s in ("retention", "console", "tracing") and cfg.quick)
        ]
    if args.memory_completed:
        points = tuple(sorted(int(x) for x in args.memory_completed.split(",") if x.strip()))
        cfg = dataclasses.replace(cfg, memory_completed=points)
    if "profile" in sections and cfg.profile_s <= 0:
        cfg = dataclasses.replace(cfg, profile_s=5.0)
    log(f"{'quick' if cfg.quick else 'full'} run of: {', '.join(sections)}")
    results = run(cfg, sections)
    if args.merge:
        earlier = json.loads(args.merge.read_text())
        kept = {k: v for k, v in earlier["sections"].items() if k not in results["sections"]}
        results["merged"] = dict.fromkeys(kept, earlier["started"])
        earlier_loads = earlier.get("load_at_section_start") or {}
        results["load_at_section_start"] = {
            **{k: v for k, v in earlier_loads.items() if k in kept},
            **results.get("load_at_section_start", {}),
        }
        order = {name: i for i, name in enumerate(SECTIONS)}
        merged = {**kept, **results["sections"]}
        results["sections"] = dict(sorted(merged.items(), key=lambda kv: order[kv[0]]))
    if args.splice and args.out.exists():
        report = splice(args.out.read_text(), results)
    else:
        report = render(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    raw = args.json or REPO / "bench" / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(results, indent=2, default=str))
    log(f"wrote {args.out} and {raw} in {results['elapsed_s']:.0f}s")
    failed = [n for n, r in results["sections"].items() if r.get("status") != "ok"]
    if failed:
        log(f"sections not ok: {', '.join(failed)}")
    return 1 if (args.strict and failed) else 0


def _planner_logs_to_stderr() -> None:
    """In-process planners (the planning section) log warnings only, to stderr."""
    import logging

    import structlog

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )


if __name__ == "__main__":
    _planner_logs_to_stderr()
    sys.exit(main())
