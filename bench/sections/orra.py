"""Orra on one running stack: overhead, throughput, makespan, memory.

They share one stack (nats-server, planner, dispatcher, example services, the bench
sleeper) in a namespace of its own; the memory section adds the gateway and the notifier.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import TYPE_CHECKING, Any

import psutil  # type: ignore[import-untyped]

from bench.procs import ManagedProcess, ProcessSample, Stack, gateway_process
from bench.stats import Agg, percentile
from bench.workload import SEED_ACTION, SEED_DATA, Driver, OrchestrationFailedError
from orra_events import (
    ExecutionMode,
    OrchestrationAborted,
    Plan,
    PlanTask,
    ids,
    new_orchestration_id,
)
from orra_events.plan import dependencies

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bench.config import Config
    from bench.sections import Result

__all__ = [
    "main_processes",
    "run_makespan",
    "run_memory",
    "run_overhead",
    "run_throughput",
]

SLEEPER = "BenchSleeper"
PARKED = "BenchParked"
"""A service no process serves: its tasks stay dispatched, their orchestrations in flight."""

SEED_SHAPE = {
    "services": ["DeliveryAgent", "InventoryService", "NotificationService", "PaymentService"],
    "groups": 2,
    "tasks": 4,
}


def main_processes() -> tuple[list[ManagedProcess], ManagedProcess]:
    """The required processes of the main stack, and the example services.

    The example services are started separately: without them only the makespan section
    (which uses the bench sleeper) can run. The gateway and notifier are added for memory.
    """
    return (
        [
            ManagedProcess("planner", "orra_planner"),
            ManagedProcess("dispatcher", "orra_dispatcher"),
            ManagedProcess("sleeper", "bench.sleeper"),
        ],
        ManagedProcess("examples", "orra_examples"),
    )


def _describe(plan: Plan) -> str:
    groups = " → ".join(
        "[" + ", ".join(f"{t}:{_service(plan, t)}" for t in g) + "]" for g in plan.parallel_groups
    )
    return f"{len(plan.tasks)} tasks, {len(plan.parallel_groups)} groups: {groups}"


def _service(plan: Plan, task_id: str) -> str:
    return next(t.service for t in plan.tasks if t.id == task_id)


def _is_seed_shape(plan: Plan) -> bool:
    return (
        sorted(t.service for t in plan.tasks) == SEED_SHAPE["services"]
        and len(plan.parallel_groups) == SEED_SHAPE["groups"]
    )


async def _latencies(submit: Callable[[], Awaitable[float]], n: int) -> list[float]:
    return [await submit() for _ in range(n)]


async def run_overhead(cfg: Config, driver: Driver) -> Result:
    """Submit-to-``orchestration.done`` latency, one orchestration at a time.

    Two variants per run: through the offline planner (``action.submitted``), and the
    dispatch path alone (``plan.created`` with the plan the planner made).
    """
    notes: list[str] = []
    created = await driver.first_plan(SEED_ACTION, SEED_DATA)
    plan = created.plan
    if not _is_seed_shape(plan):
        notes.append(
            "the offline planner did not produce the seed's payment+inventory → "
            "delivery+notify plan for the bench action; measured its plan instead: "
            + _describe(plan)
        )
    for _ in range(cfg.warmup):
        await driver.submit_action()
        await driver.submit_plan(plan)
    planner_runs: list[dict[str, float]] = []
    dispatch_runs: list[dict[str, float]] = []
    for _ in range(cfg.runs):
        for runs, submit in (
            (planner_runs, driver.submit_action),
            (dispatch_runs, lambda: driver.submit_plan(plan)),
        ):
            lat = await _latencies(submit, cfg.latency_n)
            runs.append(
                {"p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99), "n": len(lat)}
            )
    return {
        "status": "ok",
        "notes": notes,
        "plan": _describe(plan),
        "action": SEED_ACTION,
        "data": dict(SEED_DATA),
        "planner": created.planner,
        "with_planner": _agg_runs(planner_runs),
        "dispatch_only": _agg_runs(dispatch_runs),
        "plan_obj": {
            "tasks": [{"id": t.id, "service": t.service, "input": t.input} for t in plan.tasks],
            "parallel_groups": plan.parallel_groups,
        },
    }


def _agg_runs(runs: list[dict[str, float]]) -> dict[str, Any]:
    keys = sorted({k for r in runs for k in r})
    out: dict[str, Any] = {"runs": runs}
    for key in keys:
        agg = Agg.of(r.get(key) for r in runs)
        out[key] = agg.as_dict() if agg else None
    return out


def _cpu_share(
    before: dict[str, ProcessSample], after: dict[str, ProcessSample], elapsed: float
) -> dict[str, float]:
    """CPU used by each process over ``elapsed`` seconds, in % of one core."""
    return {
        name: 100.0 * (after[name].cpu_s - before[name].cpu_s) / elapsed
        for name in before
        if name in after
    }


def _machine_busy(before: Any, after: Any) -> float:
    """Whole-machine CPU use between two ``psutil.cpu_times()``, in % of one core."""
    total = sum(after) - sum(before)
    idle = (after.idle + getattr(after, "iowait", 0.0)) - (
        before.idle + getattr(before, "iowait", 0.0)
    )
    cores = os.cpu_count() or 1
    return 100.0 * cores * (1.0 - idle / total) if total > 0 else 0.0


async def run_throughput(cfg: Config, stack: Stack, driver: Driver, plan: Plan | None) -> Result:
    """Closed loop at ``cfg.concurrency`` in flight: orchestrations/s, latency, CPU shares."""
    variants: list[tuple[str, Callable[[], Awaitable[float]]]] = [
        ("with_planner", driver.submit_action)
    ]
    if plan is not None and not cfg.quick:
        variants.append(("dispatch_only", lambda: driver.submit_plan(plan)))
    tasks_per = len(plan.tasks) if plan is not None else 4
    out: Result = {"status": "ok", "notes": [], "concurrency": cfg.concurrency}
    # A short ramp so that every process's caches and connections are warm.
    await driver.closed_loop(
        driver.submit_action, concurrency=cfg.concurrency, duration_s=min(3.0, cfg.throughput_s)
    )
    for name, submit in variants:
        runs: list[dict[str, Any]] = []
        for _ in range(cfg.runs):
            before = stack.samples()
            machine_before = psutil.cpu_times()
            t0 = time.perf_counter()
            result = await driver.closed_loop(
                submit, concurrency=cfg.concurrency, duration_s=cfg.throughput_s
            )
            elapsed = time.perf_counter() - t0
            after = stack.samples()
            machine = _machine_busy(machine_before, psutil.cpu_times())
            stack.alive_check()
            lat = result.latencies_ms or [float("nan")]
            runs.append(
                {
                    "orch_per_s": result.per_s,
                    "tasks_per_s": result.per_s * tasks_per,
                    "load_p50_ms": percentile(lat, 50),
                    "load_p99_ms": percentile(lat, 99),
                    "completed": result.completed,
                    "failed": result.failed,
                    "cpu_pct": _cpu_share(before, after, elapsed),
                    "machine_busy_pct": machine,
                }
            )
            if result.failed:
                out["notes"].append(f"{name}: {result.failed} orchestrations failed or timed out")
        cpu_names = sorted({n for r in runs for n in r["cpu_pct"]})
        out[name] = {
            "runs": runs,
            **{
                k: Agg.dict_of(r[k] for r in runs)
                for k in (
                    "orch_per_s",
                    "tasks_per_s",
                    "load_p50_ms",
                    "load_p99_ms",
                    "machine_busy_pct",
                )
            },
            "cpu_pct": {n: Agg.dict_of(r["cpu_pct"].get(n) for r in runs) for n in cpu_names},
        }
    out["cpus"] = os.cpu_count()
    return out


# --- makespan -----------------------------------------------------------------------------


def random_graph(
    rng: random.Random, n: int, durations_ms: tuple[int, int]
) -> tuple[Plan, dict[str, float]]:
    """A random task DAG of ``n`` BenchSleeper tasks with references to earlier tasks.

    Returns:
        The plan (``parallel_groups`` are the dependency levels) and each task's duration.
    """
    ids = [f"t{i}" for i in range(n)]
    deps: dict[str, list[str]] = {}
    durations: dict[str, float] = {}
    for i, task in enumerate(ids):
        earlier = ids[:i]
        k = 0 if not earlier else rng.choice([0, 1, 1, 2, 2, 3])
        deps[task] = sorted(rng.sample(earlier, min(k, len(earlier))))
        durations[task] = float(rng.randint(*durations_ms))
    level: dict[str, int] = {}
    for task in ids:
        level[task] = 1 + max((level[d] for d in deps[task]), default=-1)
    groups = [[t for t in ids if level[t] == lv] for lv in range(max(level.values()) + 1)]
    tasks = [
        PlanTask(
            id=t,
            service=SLEEPER,
            input={"durationMs": durations[t], **{f"after_{d}": f"${d}.token" for d in deps[t]}},
        )
        for t in ids
    ]
    return Plan(tasks=tasks, parallel_groups=groups), durations


def bounds(plan: Plan, durations: dict[str, float]) -> tuple[float, float]:
    """The critical-path bound and the group-by-group bound (sum of each level's longest)."""
    finish: dict[str, float] = {}
    deps = dependencies(plan.tasks)
    for task in plan.tasks:
        finish[task.id] = durations[task.id] + max((finish[r] for r in deps[task.id]), default=0.0)
    groups = sum(max(durations[t] for t in g) for g in plan.parallel_groups)
    return max(finish.values()), groups


async def run_makespan(cfg: Config, driver: Driver) -> Result:
    """Measured makespan of random graphs, ``groups`` and ``eager``, against their bounds."""
    rng = random.Random(20241128)
    graphs = []
    for _ in range(cfg.makespan_graphs):
        n = rng.randint(*cfg.makespan_tasks)
        plan, durations = random_graph(rng, n, cfg.makespan_durations_ms)
        cp, gb = bounds(plan, durations)
        graphs.append((plan, cp, gb))
    # warm the sleeper path
    await driver.submit_plan(graphs[0][0], mode="eager", timeout_s=60)
    rows = []
    ratios: dict[str, list[float]] = {"groups": [], "eager": []}
    excess: dict[str, list[float]] = {"groups": [], "eager": []}
    for index, (plan, cp, gb) in enumerate(graphs):
        row: dict[str, Any] = {
            "graph": index,
            "tasks": len(plan.tasks),
            "levels": len(plan.parallel_groups),
            "critical_path_ms": cp,
            "groups_bound_ms": gb,
        }
        modes: tuple[ExecutionMode, ...] = ("groups", "eager")
        for mode in modes:
            measured = [
                await driver.submit_plan(plan, mode=mode, timeout_s=60) for _ in range(cfg.runs)
            ]
            row[f"{mode}_ms"] = Agg.dict_of(measured)
            ratios[mode].extend(m / cp for m in measured)
            excess[mode].extend(m - cp for m in measured)
        rows.append(row)
    return {
        "status": "ok",
        "notes": [],
        "graphs": rows,
        "ratio": {m: Agg.dict_of(v) for m, v in ratios.items()},
        "excess_ms": {m: Agg.dict_of(v) for m, v in excess.items()},
    }


# --- memory -------------------------------------------------------------------------------


def _rss_mb(stack: Stack) -> dict[str, float]:
    return {name: s.rss_bytes / 2**20 for name, s in stack.samples().items() if name != "driver"}


def parked_plan() -> Plan:
    """A 4-task, 2-group plan whose tasks go to a service that nobody serves."""
    return Plan(
        tasks=[
            PlanTask(id="a", service=PARKED, input={"n": 1}),
            PlanTask(id="b", service=PARKED, input={"n": 2}),
            PlanTask(id="c", service=PARKED, input={"x": "$a.v"}),
            PlanTask(id="d", service=PARKED, input={"y": "$b.v"}),
        ],
        parallel_groups=[["a", "b"], ["c", "d"]],
    )


async def _work_messages(driver: Driver, service: str) -> int:
    js = driver.bus.js
    topo = driver.topology
    info = await js.stream_info(topo.work_stream, subjects_filter=topo.work(service))
    return int((info.state.subjects or {}).get(topo.work(service), 0))


async def run_memory(cfg: Config, stack: Stack, driver: Driver) -> Result:
    """RSS of every process: idle, with K orchestrations in flight, after many completed."""
    notes: list[str] = []
    extra = []
    for proc in (gateway_process(), ManagedProcess("notifier", "orra_notifier")):
        try:
            stack.start(proc)
            extra.append(proc.name)
        except Exception as exc:
            notes.append(f"{proc.name} not measured: {exc}")
    await asyncio.sleep(1.0)
    idle = _rss_mb(stack)
    # K orchestrations in flight: their first group is dispatched to a service nobody serves.
    k = cfg.memory_in_flight
    plan = parked_plan()
    orchs = [new_orchestration_id() for _ in range(k)]
    await driver.bus.publish_all(driver.plan_event(o, plan, task_timeout_s=3600.0) for o in orchs)
    deadline = time.monotonic() + 60
    dispatched = 0
    while time.monotonic() < deadline:
        dispatched = await _work_messages(driver, PARKED)
        if dispatched >= 2 * k:
            break
        await asyncio.sleep(0.2)
    if dispatched < 2 * k:
        notes.append(f"only {dispatched} of {2 * k} first-group tasks were dispatched in 60s")
    await asyncio.sleep(1.0)
    in_flight = _rss_mb(stack)
    per_orch_kb = {
        name: 1024.0 * (in_flight[name] - idle[name]) / k for name in in_flight if name in idle
    }
    # End them (as a user's abort would), and drop their parked work.
    await driver.bus.publish_all(
        OrchestrationAborted(event_id=ids.end_id(o), orchestration_id=o, reason="bench cleanup")
        for o in orchs
    )
    await driver.bus.nc.flush()
    await asyncio.sleep(1.0)
    try:
        await driver.bus.js.purge_stream(
            driver.topology.work_stream, subject=driver.topology.work(PARKED)
        )
    except Exception as exc:
        notes.append(f"could not purge parked work: {exc}")
    # Completed orchestrations: RSS at each checkpoint.
    checkpoints: list[dict[str, Any]] = []
    done = 0
    t0 = time.perf_counter()
    for target in cfg.memory_completed:
        result = await _run_count(driver, target - done, cfg.concurrency)
        done = target
        stack.alive_check()
        await asyncio.sleep(0.5)
        checkpoints.append(
            {
                "completed": target,
                "failed": result,
                "rss_mb": _rss_mb(stack),
                "elapsed_s": time.perf_counter() - t0,
            }
        )
    for name in extra:
        stack.stop(name)
    return {
        "status": "ok",
        "notes": notes,
        "idle_mb": idle,
        "in_flight": k,
        "in_flight_mb": in_flight,
        "per_orch_kb": per_orch_kb,
        "completed": checkpoints,
    }


async def _run_count(driver: Driver, count: int, concurrency: int) -> int:
    """Run ``count`` seed orchestrations with ``concurrency`` in flight; return failures."""
    remaining = count
    failed = 0

    async def worker() -> None:
        nonlocal remaining, failed
        while remaining > 0:
            remaining -= 1
            try:
                await driver.submit_action(timeout_s=60)
            except OrchestrationFailedError:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failed
