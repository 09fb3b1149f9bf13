"""kill -9 of each process at random moments during a bounded load, then a restart.

Each case submits a load of numbered orchestrations (half the 2+2 order, half the
payment+inventory action), each with a webhook to a real HTTP receiver, while a chaos task
SIGKILLs the target process at seeded random moments and restarts it. Then the checker
reads the whole event log, the effects file and the receiver's requests:

* no orchestration is lost (each has exactly one terminal event) or duplicated (one plan,
  one ``task.dispatched`` per task and attempt, one idempotency key per task);
* no side effect ran twice (counted by idempotency key at the example services), except in
  the SDK's documented window (a service killed between its handler's side effect and the
  recording of the result), which the checker recognises by the killed pid;
* every webhook was delivered; a repeated ``webhook-id`` is tolerated only when the
  notifier was the process killed (a crash in the middle of a request repeats it).
"""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest

from orra_events import Bus
from tests.faults.checker import check, read_effects
from tests.faults.harness import (
    Stack,
    chaos,
    order,
    read_log,
    receipts_of,
    submit_load,
    wait_terminal,
    wait_webhooks,
)
from tests.notifier.receiver import Receiver, free_port

pytestmark = pytest.mark.e2e

LOAD = 30
SPREAD_S = 6.0


def start_stack(stack: Stack, **examples_env: str) -> None:
    stack.start_many("planner", "dispatcher", "notifier")
    stack.start("examples", **examples_env)


async def finish_and_check(
    bus: Bus,
    stack: Stack,
    receiver: Receiver,
    orchs: list[str],
    env: dict[str, str],
    *,
    allow_webhook_repeats: bool = False,
) -> None:
    t0 = time.monotonic()
    ended = await wait_terminal(bus, orchs, timeout_s=60)
    await wait_webhooks(receiver, sorted(ended), timeout_s=30)
    print(f"settled {time.monotonic() - t0:.1f}s after the load")
    log = await read_log(bus)
    report = check(
        orchs,
        log.events,
        effects=read_effects(env["ORRA_EXAMPLES_EFFECTS_FILE"]),
        receipts=receipts_of(receiver),
        killed_pids=stack.killed_pids,
        allow_webhook_repeats=allow_webhook_repeats,
    )
    print(report.summary())
    assert report.ok, report.summary()
    assert report.counts["completed"] == len(orchs), report.summary()


@pytest.mark.parametrize("target", ["planner", "dispatcher", "notifier"])
async def test_kill_9_of_a_pipeline_service_loses_and_repeats_nothing(
    target: str,
    bus: Bus,
    stack: Stack,
    receiver: Receiver,
    rng: random.Random,
    env: dict[str, str],
) -> None:
    await asyncio.to_thread(start_stack, stack)
    load = asyncio.create_task(
        submit_load(bus, LOAD, rng, spread_s=SPREAD_S, webhook=receiver.url())
    )
    await chaos(stack, rng, [target], kills=3, window_s=SPREAD_S + 1.0)
    orchs = await load
    await finish_and_check(
        bus, stack, receiver, orchs, env, allow_webhook_repeats=target == "notifier"
    )


async def test_kill_9_of_the_example_services_mid_task(
    bus: Bus, stack: Stack, receiver: Receiver, rng: random.Random, env: dict[str, str]
) -> None:
    # Handlers take hundreds of ms, so the kills land in the middle of running tasks.
    await asyncio.to_thread(start_stack, stack, ORRA_EXAMPLES_LATENCY_SCALE="1")
    load = asyncio.create_task(
        submit_load(bus, LOAD, rng, spread_s=SPREAD_S, webhook=receiver.url())
    )
    await chaos(stack, rng, ["examples"], kills=3, window_s=SPREAD_S + 1.0, down_s=(0.1, 0.5))
    orchs = await load
    await finish_and_check(bus, stack, receiver, orchs, env)


async def test_kill_9_of_the_gateway_while_clients_submit_over_http(
    bus: Bus, stack: Stack, receiver: Receiver, rng: random.Random, env: dict[str, str]
) -> None:
    key = "orra_fault_bootstrap_key_0123456789"
    port = free_port()
    await asyncio.to_thread(start_stack, stack)
    await stack.astart(
        "gateway",
        ORRA_GATEWAY_PORT=str(port),
        ORRA_GATEWAY_BOOTSTRAP_KEY=key,
        ORRA_GATEWAY_PLAN_WAIT_S="0.2",
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}
    retries = 0

    async def post(client: httpx.AsyncClient, n: int) -> str:
        # What a careful client does: the same Idempotency-Key until it gets an answer.
        nonlocal retries
        action, data = order(n)
        body = {
            "action": {"content": action},
            "data": [{"field": k, "value": v} for k, v in data.items()],
            "webhook": receiver.url(),
        }
        deadline = time.monotonic() + 60
        while True:
            try:
                r = await client.post(
                    f"{base}/orchestrations",
                    json=body,
                    headers={**headers, "Idempotency-Key": f"fault-{n}"},
                )
                if r.status_code in (201, 202):
                    return str(r.json()["orchestrationId"])
                assert r.status_code in (502, 503), r.text
            except httpx.TransportError:
                pass
            retries += 1
            assert time.monotonic() < deadline, f"request {n} never answered"
            await asyncio.sleep(0.2)

    async def clients() -> list[str]:
        async with httpx.AsyncClient(timeout=5.0) as client:
            orchs = []
            for n in range(LOAD):
                orchs.append(await post(client, n))
                await asyncio.sleep(rng.uniform(0, 2 * SPREAD_S / LOAD))
            return orchs

    load = asyncio.create_task(clients())
    await chaos(stack, rng, ["gateway"], kills=3, window_s=SPREAD_S, down_s=(0.1, 1.0))
    orchs = await load
    print(f"{retries} request retries")
    assert len(set(orchs)) == LOAD
    await finish_and_check(bus, stack, receiver, orchs, env)
    # The restarted gateway rebuilt its read model: it knows every orchestration's end.
    async with httpx.AsyncClient(timeout=5.0) as client:
        for orch in orchs:
            r = await client.get(f"{base}/orchestrations/{orch}", headers=headers)
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "completed", r.json()
