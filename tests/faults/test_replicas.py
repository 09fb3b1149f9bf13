"""Two replicas each of planner, dispatcher and notifier (and of the example services)
under load: one plan per orchestration, one ``task.dispatched`` per (task, attempt), one
delivery per ``webhook-id``, every side effect once, and the work really shared."""

from __future__ import annotations

import asyncio
import random
import re
import urllib.request

import pytest

from orra_events import Bus
from orra_events.embedded import free_port
from tests.faults.checker import check, read_effects
from tests.faults.harness import (
    Stack,
    read_log,
    receipts_of,
    submit_load,
    wait_terminal,
    wait_webhooks,
)
from tests.notifier.receiver import Receiver

pytestmark = pytest.mark.e2e

LOAD = 40


async def test_two_replicas_of_each_service_plan_dispatch_and_deliver_once(
    bus: Bus, stack: Stack, receiver: Receiver, rng: random.Random, env: dict[str, str]
) -> None:
    names = [f"{s}{i}" for s in ("planner", "notifier") for i in (1, 2)]
    await asyncio.to_thread(stack.start_many, *names)
    metrics_ports = {name: free_port() for name in ("dispatcher1", "dispatcher2")}
    for name, port in metrics_ports.items():
        await stack.astart(name, ORRA_HEALTH_PORT=str(port))
    await asyncio.to_thread(stack.start_many, "examples1", "examples2")
    orchs = await submit_load(bus, LOAD, rng, spread_s=4.0, webhook=receiver.url())
    ended = await wait_terminal(bus, orchs, timeout_s=60)
    await wait_webhooks(receiver, sorted(ended), timeout_s=30)
    log = await read_log(bus)
    effects = read_effects(env["ORRA_EXAMPLES_EFFECTS_FILE"])
    report = check(orchs, log.events, effects=effects, receipts=receipts_of(receiver))
    print(report.summary())
    assert report.ok, report.summary()  # no double plan, dispatch, side effect or delivery
    assert report.counts["completed"] == LOAD
    # The replicas really shared the work: each planner replica planned some actions...
    for kind in ("planner", "notifier"):
        busy = [
            name
            for name in (f"{kind}1", f"{kind}2")
            if any(
                ('"plan created"' if kind == "planner" else '"webhook delivered"') in line
                for line in stack.log_lines(name)
            )
        ]
        print(f"{kind} replicas that worked: {busy}")
        assert len(busy) == 2, f"only {busy} of the {kind} replicas did any work"
    # ... each dispatcher replica ended some orchestrations (its /metrics counts them) ...
    for name, port in metrics_ports.items():
        ended_here = await asyncio.to_thread(_orchestrations_ended, port)
        print(f"{name} ended {ended_here} orchestrations")
        assert ended_here > 0, f"{name} ended no orchestration: the replicas did not share"
    # ... and both example-service replicas ran tasks.
    pids = {e["pid"] for e in effects}
    assert len(pids) == 2, "both example-service replicas ran tasks"


def _orchestrations_ended(port: int) -> int:
    """Sum of ``orra_orchestrations_total`` on a dispatcher's ``/metrics``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        int(float(m.group(1)))
        for m in re.finditer(r"^orra_orchestrations_total\{[^}]*\} (\S+)$", text, re.MULTILINE)
    )
