"""Planning CPU per action of the offline planner, on the planning dev set.

``python -m bench.planning.cpu``: plans every dev case with the per-catalogue caches warm
(the way a running planner plans), first with action texts it has seen, then as if every
action text were new (the action-splitting cache cleared before each plan). CPU time, not
wall time, so other processes on the machine matter less; compare figures from one run.
"""

from __future__ import annotations

import sys
import time

from bench.planning.corpus import load_cases, load_domains
from bench.planning.runner import catalog_for, request_for
from orra_planner.offline import OfflinePlanner
from orra_planner.strategy import finalize

__all__ = ["main"]

_ROUNDS = 40


def main() -> int:
    """Print the CPU per planned action; returns the exit code."""
    domains = load_domains()
    catalogs = {name: catalog_for(domain) for name, domain in domains.items()}
    requests = [request_for(c, catalogs[c.domain]) for c in load_cases("dev")]
    planner = OfflinePlanner()
    for request in requests:
        finalize(planner.plan_now(request), request)
    started = time.process_time()
    for _ in range(_ROUNDS):
        for request in requests:
            finalize(planner.plan_now(request), request)
    seen = (time.process_time() - started) / (_ROUNDS * len(requests))
    sys.stdout.write(f"offline planner, dev set: {seen * 1e3:.3f} ms CPU per action\n")
    try:
        from orra_planner.parts import split_action  # absent before issue 15 coverage
    except ImportError:
        return 0
    started = time.process_time()
    for _ in range(_ROUNDS // 2):
        for request in requests:
            split_action.cache_clear()
            finalize(planner.plan_now(request), request)
    new = (time.process_time() - started) / (_ROUNDS // 2 * len(requests))
    sys.stdout.write(
        f"offline planner, dev set, every action new: {new * 1e3:.3f} ms CPU per action\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
