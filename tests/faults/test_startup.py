"""Start-up against a long event log: time to "ready" measured (printed, not asserted),
correctness asserted.

The log holds N synthetic completed orchestrations (``action.submitted``, ``plan.created``,
two ``task.dispatched`` and ``task.completed``, ``orchestration.done``: 7 events each). The
services' durable consumers are first moved past that history (their messages acked, as
if the services had processed them), then each service is restarted and timed. Planner,
dispatcher and notifier resume from their stored consumer positions (and the dispatcher
from its snapshots of in-flight orchestrations only), so their start-up does not grow
with the log; the gateway folds the whole log into its read model, so its start-up does.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from nats.js.api import ConsumerConfig

from orra_events import (
    ActionSubmitted,
    Bus,
    DataField,
    OrchestrationDone,
    PlanCreated,
    TaskCompleted,
    TaskDispatched,
    encode,
)
from orra_events.events import Plan, PlanTask
from tests.faults.harness import Stack, read_messages
from tests.notifier.receiver import free_port

pytestmark = pytest.mark.e2e

KEY = "orra_fault_bootstrap_key_0123456789"


def history(n: int) -> list[object]:
    orch = f"o_hist{n:08d}"
    plan = Plan(
        tasks=[
            PlanTask(id="payment", service="PaymentService", input={"orderId": f"O{n}"}),
            PlanTask(id="inventory", service="InventoryService", input={"productId": "P"}),
        ],
        parallel_groups=[["payment", "inventory"]],
    )
    events: list[object] = [
        ActionSubmitted(
            event_id=f"a:{orch}",
            orchestration_id=orch,
            action="Process order payment and update inventory",
            data=[DataField("orderId", f"O{n}")],
        ),
        PlanCreated(event_id=f"p:{orch}", orchestration_id=orch, plan=plan, planner="offline"),
    ]
    for task in plan.tasks:
        key = f"{orch}:{task.id}"
        events.append(
            TaskDispatched(
                event_id=f"d:{key}:1",
                orchestration_id=orch,
                task_id=task.id,
                service=task.service,
                input=task.input,
                attempt=1,
                idempotency_key=key,
                timeout_s=30.0,
            )
        )
        events.append(
            TaskCompleted(
                event_id=f"r:{key}:1",
                orchestration_id=orch,
                task_id=task.id,
                service=task.service,
                output={"ok": True},
                attempt=1,
                idempotency_key=key,
                started_at=time.time(),
                duration_ms=1.0,
            )
        )
    events.append(
        OrchestrationDone(
            event_id=f"end:{orch}", orchestration_id=orch, results={"ok": True}, outputs={}
        )
    )
    return events


async def append_history(bus: Bus, count: int) -> None:
    pending = []
    for n in range(count):
        for event in history(n):
            pending.append(  # noqa: PERF401 - awaited one by one, on purpose
                await bus.js.publish_async(
                    bus.topology.subject_for(event),  # type: ignore[arg-type]
                    encode(event),  # type: ignore[arg-type]
                    headers={"Nats-Msg-Id": event.event_id},  # type: ignore[attr-defined]
                )
            )
        if len(pending) > 5000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)


async def consume_backlog(bus: Bus, stream: str, durable: str) -> None:
    """Ack every message of a service's durable consumer, as the service would have."""
    info = await bus.js.consumer_info(stream, durable)
    config: ConsumerConfig = info.config
    if config.deliver_subject:
        done = asyncio.Event()

        async def ack(msg: object) -> None:
            await msg.ack()  # type: ignore[attr-defined]
            if msg.metadata.num_pending == 0:  # type: ignore[attr-defined]
                done.set()

        sub = await bus.nc.subscribe(
            config.deliver_subject, queue=config.deliver_group or "", cb=ack
        )
        if info.num_pending:
            await asyncio.wait_for(done.wait(), 120)
        await bus.nc.flush()
        await sub.unsubscribe()
    else:
        psub = await bus.js.pull_subscribe_bind(durable=durable, stream=stream)
        while True:
            try:
                msgs = await psub.fetch(batch=1000, timeout=1.0)
            except TimeoutError:
                break
            for m in msgs:
                await m.ack()
            if msgs[-1].metadata.num_pending == 0:
                break
        await bus.nc.flush()
        await psub.unsubscribe()


@pytest.mark.parametrize("count", [4_000])
async def test_start_up_time_against_a_long_log(bus: Bus, stack: Stack, count: int) -> None:
    topo = bus.topology
    port = free_port()
    gateway_env = {"ORRA_GATEWAY_PORT": str(port), "ORRA_GATEWAY_BOOTSTRAP_KEY": KEY}
    # First start: the durable consumers exist from now on.
    await asyncio.to_thread(stack.start_many, "planner", "dispatcher", "notifier")
    await asyncio.to_thread(stack.procs.stop_all)
    t0 = time.perf_counter()
    await append_history(bus, count)
    append_s = time.perf_counter() - t0
    for durable in ("planner", "dispatcher", "notifier"):
        await consume_backlog(bus, topo.events_stream, durable)
    info = await bus.js.stream_info(topo.events_stream)
    timings = {}
    for name in ("planner", "dispatcher", "notifier"):
        t0 = time.perf_counter()
        await stack.astart(name)
        timings[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    await stack.astart("gateway", **gateway_env)
    timings["gateway"] = time.perf_counter() - t0
    print(
        f"\nstart-up with {count} orchestrations ({info.state.messages} events, appended in "
        f"{append_s:.1f}s): "
        + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items())
        + " (time to 'ready', process start included)"
    )
    # Correct, not just fast: an old orchestration is known, nothing was redone.
    async with httpx.AsyncClient(timeout=10.0) as client:
        auth = {"Authorization": f"Bearer {KEY}"}
        for n in (0, count // 2, count - 1):
            r = await client.get(
                f"http://127.0.0.1:{port}/orchestrations/o_hist{n:08d}", headers=auth
            )
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "completed"
            assert [t["status"] for t in r.json()["tasks"]] == ["completed", "completed"]
    await asyncio.sleep(1.0)
    again = await bus.js.stream_info(topo.events_stream)
    assert again.state.messages == info.state.messages, "a restarted service redid old work"
    assert not await read_messages(bus, topo.work_stream)
