"""The planner in-process against a real nats-server: setup(bus) → plan events on the log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest
from nats.js.errors import NotFoundError

from orra_events import Bus, PlanCreated, PlanFailed, TaskCompleted, Topology, decode
from orra_events.bus import HDR_ORIGINAL_SUBJECT, HDR_REASON
from orra_planner import PlanOutcome, PlanRequest
from orra_planner.app import setup
from orra_planner.settings import PlannerSettings
from tests.planner.catalog import action, ecommerce

SETTINGS = PlannerSettings(retry_delay_s=0.05, max_attempts=2, registry_sync_timeout_s=2.0)


async def start_planner(nats_url: str, topology: Topology, planner=None) -> tuple[Bus, object]:
    pbus = await Bus.connect(nats_url, topology, name="planner-under-test")
    stop = await setup(pbus, SETTINGS, planner)
    return pbus, stop


@pytest.fixture
async def planner(nats_url: str, topology: Topology, bus: Bus) -> AsyncIterator[Bus]:
    pbus, stop = await start_planner(nats_url, topology)
    try:
        yield pbus
    finally:
        await stop()  # type: ignore[operator]
        await pbus.close()


async def register(bus: Bus, **kw) -> None:
    for event in ecommerce(**kw):
        await bus.publish(event)


async def plan_event(bus: Bus, orch: str, timeout: float = 10.0) -> PlanCreated | PlanFailed:
    t = bus.topology
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for event_type in ("plan.created", "plan.failed"):
            try:
                raw = await bus.js.get_last_msg(t.events_stream, t.subject(event_type, orch))
            except NotFoundError:
                continue
            event = decode(raw.data)
            assert isinstance(event, PlanCreated | PlanFailed)
            return event
        assert asyncio.get_running_loop().time() < deadline, f"no plan event for {orch}"
        await asyncio.sleep(0.02)


async def count(bus: Bus, subjects: str) -> int:
    info = await bus.js.stream_info(bus.topology.events_stream, subjects_filter=subjects)
    return sum((info.state.subjects or {}).values())


async def consumer_idle(bus: Bus, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        info = await bus.js.consumer_info(bus.topology.events_stream, "planner")
        if info.num_pending == 0 and info.num_ack_pending == 0:
            return
        assert asyncio.get_running_loop().time() < deadline, "planner consumer never went idle"
        await asyncio.sleep(0.02)


async def test_plan_created_for_the_seed_order_action(bus: Bus, planner: Bus) -> None:
    await register(bus)
    await bus.publish(
        action(
            "o_pay1",
            "Process order payment and update inventory",
            orderId="ORD123",
            amount="299.99",
            productId="PROD456",
        )
    )
    event = await plan_event(bus, "o_pay1")
    assert isinstance(event, PlanCreated)
    assert event.event_id == "p:o_pay1"
    assert event.planner == "offline"
    assert event.plan.parallel_groups == [["payment", "inventory"]]
    assert [t.service for t in event.plan.tasks] == ["PaymentService", "InventoryService"]
    assert (event.webhook, event.project, event.mode, event.task_timeout_s) == (
        "http://127.0.0.1:9/hook",
        "default",
        "eager",
        12.5,
    )
    assert event.latency_ms >= 0
    assert event.attempts == 1


async def test_plan_failed_not_actionable_and_projects_are_isolated(bus: Bus, planner: Bus) -> None:
    await register(bus, project="shop")
    await bus.publish(
        action("o_na1", "Process order payment", project="default", orderId="O", amount="1")
    )
    await bus.publish(
        action("o_ok1", "Process order payment", project="shop", orderId="O", amount="1")
    )
    failed = await plan_event(bus, "o_na1")
    assert isinstance(failed, PlanFailed)
    assert failed.status == "not_actionable"
    assert failed.event_id == "p:o_na1"
    assert (failed.webhook, failed.project) == ("http://127.0.0.1:9/hook", "default")
    assert "'default'" in failed.reasons[0]
    created = await plan_event(bus, "o_ok1")
    assert isinstance(created, PlanCreated)
    assert created.project == "shop"


async def test_plan_failed_invalid_lists_the_reasons(bus: Bus, planner: Bus) -> None:
    await register(bus)
    await bus.publish(action("o_inv1", "Update inventory", productId="P", colour="red"))
    event = await plan_event(bus, "o_inv1")
    assert isinstance(event, PlanFailed)
    assert event.status == "invalid"
    assert event.reasons == [
        (
            "unused_data: data field 'colour' is used by no task "
            "(no registered service accepts an input named 'colour')"
        )
    ]


async def test_services_registered_after_start_are_used(
    nats_url: str, topology: Topology, bus: Bus
) -> None:
    pbus, stop = await start_planner(nats_url, topology)
    try:
        await register(bus)
        await bus.publish(
            action(
                "o_late", "Estimate order delivery and notify customer", orderId="O", customerId="C"
            )
        )
        event = await plan_event(bus, "o_late")
        assert isinstance(event, PlanCreated)
        assert event.plan.parallel_groups == [["delivery", "notification"]]
    finally:
        await stop()  # type: ignore[operator]
        await pbus.close()


async def test_a_repeated_action_gets_exactly_one_plan_event(bus: Bus, planner: Bus) -> None:
    await register(bus)
    first = action("o_dup", "Update inventory", productId="P")
    await bus.publish(first)
    assert isinstance(await plan_event(bus, "o_dup"), PlanCreated)
    # the same action again with another event id (not deduplicated by JetStream)
    for n in range(3):
        await bus.publish(_with_id(first, f"a:o_dup:{n}"))
    await consumer_idle(bus)
    assert await count(bus, bus.topology.subject("action.submitted", "o_dup")) == 4
    assert await count(bus, bus.topology.subject("plan.*", "o_dup")) == 1


def _with_id(event, event_id: str):
    return msgspec.structs.replace(event, event_id=event_id)


async def test_two_replicas_append_one_plan_per_action(
    nats_url: str, topology: Topology, bus: Bus
) -> None:
    await register(bus)
    replicas = [await start_planner(nats_url, topology) for _ in range(2)]
    try:
        for n in range(10):
            await bus.publish(action(f"o_r{n}", "Update inventory", productId=f"P{n}"))
            await bus.publish(
                _with_id(action(f"o_r{n}", "Update inventory", productId=f"P{n}"), f"a2:{n}")
            )
        await consumer_idle(bus)
        for n in range(10):
            assert isinstance(await plan_event(bus, f"o_r{n}"), PlanCreated)
        assert await count(bus, bus.topology.all_of("plan.created")) == 10
    finally:
        for pbus, stop in replicas:
            await stop()  # type: ignore[operator]
            await pbus.close()


async def test_malformed_and_misplaced_messages_are_parked_and_planning_goes_on(
    bus: Bus, planner: Bus
) -> None:
    await register(bus)
    t = bus.topology
    await bus.js.publish(t.subject("action.submitted", "x"), b"{not json")
    misplaced = TaskCompleted(
        event_id="r:o_y:t:1",
        orchestration_id="o_y",
        task_id="t",
        service="S",
        output={},
        attempt=1,
        idempotency_key="o_y:t",
        started_at=1.0,
        duration_ms=1.0,
    )
    await bus.publish(misplaced, subject=t.subject("action.submitted", "o_y"))
    await bus.publish(action("o_after", "Update inventory", productId="P"))
    assert isinstance(await plan_event(bus, "o_after"), PlanCreated)
    await consumer_idle(bus)
    parked = await bus.js.get_last_msg(
        t.dlq_stream, t.dead_letter(t.subject("action.submitted", "x"))
    )
    assert parked.data == b"{not json"
    assert parked.headers is not None
    assert parked.headers[HDR_ORIGINAL_SUBJECT] == t.subject("action.submitted", "x")
    assert "MalformedEvent" in parked.headers[HDR_REASON]
    wrong = await bus.js.get_last_msg(
        t.dlq_stream, t.dead_letter(t.subject("action.submitted", "o_y"))
    )
    assert wrong.headers is not None
    assert "task.completed" in wrong.headers[HDR_REASON]


class Exploding:
    name = "exploding"

    def __init__(self) -> None:
        self.calls = 0

    async def plan(self, request: PlanRequest) -> PlanOutcome:
        self.calls += 1
        raise RuntimeError("model endpoint on fire")


async def test_a_strategy_that_keeps_raising_ends_in_plan_failed_error(
    nats_url: str, topology: Topology, bus: Bus
) -> None:
    strategy = Exploding()
    pbus, stop = await start_planner(nats_url, topology, strategy)
    try:
        await register(bus)
        await bus.publish(action("o_boom", "Update inventory", productId="P"))
        event = await plan_event(bus, "o_boom")
        assert isinstance(event, PlanFailed)
        assert event.status == "error"
        assert event.planner == "exploding"
        assert "model endpoint on fire" in event.reasons[0]
        assert strategy.calls == SETTINGS.max_attempts
    finally:
        await stop()  # type: ignore[operator]
        await pbus.close()
