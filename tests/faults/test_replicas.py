"""Two replicas each of planner, dispatcher and notifier (and of the example services)
under load: one plan per orchestration, one ``task.dispatched`` per (task, attempt), one
delivery per ``webhook-id``, every side effect once, and the work really shared."""

from __future__ import annotations

import asyncio
import random

import pytest

from orra_events import Bus
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
    names = [f"{s}{i}" for s in ("planner", "dispatcher", "notifier") for i in (1, 2)]
    await asyncio.to_thread(stack.start_many, *names)
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
    pids = {e["pid"] for e in effects}
    assert len(pids) == 2, "both example-service replicas ran tasks"
