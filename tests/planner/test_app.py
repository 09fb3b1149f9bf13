"""The planner in-process against a real nats-server: setup(bus) → plan events on the log."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

import msgspec
import pytest
from nats.js.errors import NotFoundError

from orra_events import Bus, PlanCreated, PlanFailed, TaskCompleted, Topology, decode
from orra_events.bus import HDR_ORIGINAL_SUBJECT, HDR_REASON
from orra_planner import OfflinePlanner, PlanOutcome, PlanRequest, RegistryFollower
from orra_planner.app import setup
from orra_planner.handlers import ActionHandler, server_checks_wildcard_subjects
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


# --- concurrency, replays and the registry watermark -------------------------------------


class Counting:
    """A strategy that is not side-effect free (like an LLM): counts and overlaps its calls."""

    name = "counting"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls: list[str] = []
        self.running = 0
        self.most = 0

    async def plan(self, request: PlanRequest) -> PlanOutcome:
        self.calls.append(request.orchestration_id)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.running -= 1
        return await OfflinePlanner().plan(request)


async def start_with(
    nats_url: str, topology: Topology, settings: PlannerSettings, planner=None
) -> tuple[Bus, object]:
    pbus = await Bus.connect(nats_url, topology, name="planner-under-test")
    return pbus, await setup(pbus, settings, planner)


async def stop_planner(pbus: Bus, stop) -> None:
    await stop()
    await pbus.close()


async def test_actions_are_planned_concurrently_up_to_the_setting(
    nats_url: str, topology: Topology, bus: Bus
) -> None:
    strategy = Counting(delay_s=0.2)
    settings = dataclasses.replace(SETTINGS, concurrency=4)
    pbus, stop = await start_with(nats_url, topology, settings, strategy)
    try:
        await register(bus)
        for n in range(12):
            await bus.publish(action(f"o_c{n}", "Update inventory", productId=f"P{n}"))
        for n in range(12):
            assert isinstance(await plan_event(bus, f"o_c{n}"), PlanCreated)
        assert strategy.most == 4
        assert sorted(strategy.calls) == sorted(f"o_c{n}" for n in range(12))
    finally:
        await stop_planner(pbus, stop)


@pytest.mark.parametrize("kind", ["offline", "counting"])
async def test_a_recreated_consumer_replays_actions_without_a_second_plan(
    nats_url: str, topology: Topology, bus: Bus, kind: str
) -> None:
    await register(bus)
    first = Counting() if kind == "counting" else None
    pbus, stop = await start_with(nats_url, topology, SETTINGS, first)
    try:
        for n in range(5):
            await bus.publish(action(f"o_re{n}", "Update inventory", productId=f"P{n}"))
        await consumer_idle(bus)
    finally:
        await stop_planner(pbus, stop)
    # the durable consumer is lost: a new one starts from the beginning of the log
    await bus.js.delete_consumer(topology.events_stream, "planner")
    again = Counting() if kind == "counting" else None
    pbus, stop = await start_with(nats_url, topology, SETTINGS, again)
    try:
        await consumer_idle(bus)
        info = await bus.js.consumer_info(topology.events_stream, "planner")
        assert info.delivered.stream_seq >= 5  # the old actions were delivered again
        for n in range(5):
            assert isinstance(await plan_event(bus, f"o_re{n}"), PlanCreated)
        assert await count(bus, topology.all_of("plan.created")) == 5
        assert await count(bus, topology.all_of("plan.failed")) == 0
        if again is not None:
            assert again.calls == []  # an LLM is never asked twice
    finally:
        await stop_planner(pbus, stop)


@pytest.fixture
async def short_window(nats_url: str, namespace: str) -> AsyncIterator[Bus]:
    """A bus whose streams forget message ids after 0.2 s (the duplicate window)."""
    topology = Topology(namespace=namespace, duplicate_window_s=0.2)
    b = await Bus.connect(nats_url, topology, name="test-short-window")
    await b.ensure_streams()
    try:
        yield b
    finally:
        for config in topology.stream_configs():
            with contextlib.suppress(Exception):
                await b.js.delete_stream(config.name)  # type: ignore[arg-type]
        await b.close()


async def test_past_the_duplicate_window_a_changed_answer_is_not_appended(
    nats_url: str, short_window: Bus
) -> None:
    """plan.failed first; the same action again once the services exist: still one event."""
    bus = short_window
    pbus, stop = await start_with(nats_url, bus.topology, SETTINGS)
    try:
        await bus.publish(action("o_w", "Update inventory", productId="P"))
        assert isinstance(await plan_event(bus, "o_w"), PlanFailed)  # no services yet
        await register(bus)
        await asyncio.sleep(0.5)  # the plan event's id is forgotten by now
        await bus.publish(_with_id(action("o_w", "Update inventory", productId="P"), "a:again"))
        await consumer_idle(bus)
        assert await count(bus, bus.topology.subject("action.submitted", "o_w")) == 2
        assert await count(bus, bus.topology.subject("plan.*", "o_w")) == 1
        assert isinstance(await plan_event(bus, "o_w"), PlanFailed)
    finally:
        await stop_planner(pbus, stop)


async def test_who_looks_the_action_up_before_planning(bus: Bus) -> None:
    follower = RegistryFollower(bus)
    offline, counting = OfflinePlanner(), Counting()

    def handler(planner, wildcard: bool) -> ActionHandler:
        return ActionHandler(bus, follower, planner, SETTINGS, wildcard_checks=wildcard)

    assert not handler(offline, wildcard=True).look_first  # the append alone guards it
    assert handler(counting, wildcard=True).look_first  # an LLM is not asked twice
    assert handler(offline, wildcard=False).look_first  # server < 2.11: no wildcard guard
    assert handler(counting, wildcard=False).look_first
    assert server_checks_wildcard_subjects(bus)  # the test server is recent


@pytest.mark.parametrize("wildcard", [True, False])
async def test_the_look_up_finds_either_plan_event(bus: Bus, wildcard: bool) -> None:
    await register(bus)
    handler = ActionHandler(
        bus, RegistryFollower(bus), Counting(), SETTINGS, wildcard_checks=wildcard
    )
    assert not await handler._already_planned("o_l1")
    await bus.publish(
        PlanFailed(
            event_id="p:o_l1",
            orchestration_id="o_l1",
            status="not_actionable",
            reasons=["x"],
            planner="offline",
        )
    )
    assert await handler._already_planned("o_l1")
    assert not await handler._already_planned("o_l2")


async def test_overlapping_syncs_share_one_look_up(bus: Bus) -> None:
    await register(bus)
    follower = RegistryFollower(bus)
    await follower.start()
    try:
        before = follower.lookups
        results = await asyncio.gather(*(follower.sync(2.0) for _ in range(50)))
        assert all(results)
        assert follower.lookups - before <= 2
        assert len(follower.registry.catalog("default")) == 5
    finally:
        await follower.stop()


async def test_a_sync_never_uses_a_look_up_sent_before_it_was_called(bus: Bus) -> None:
    follower = RegistryFollower(bus)
    gate = asyncio.Event()
    answers = iter([3, 7])
    sent: list[int] = []

    async def query() -> int | None:
        sent.append(len(sent) + 1)
        if len(sent) == 1:
            await gate.wait()  # the first look-up is in flight...
        return next(answers)

    follower._query = query  # type: ignore[method-assign]
    first = asyncio.create_task(follower._target())
    await asyncio.sleep(0.01)
    assert sent == [1]
    second = asyncio.create_task(follower._target())  # ...when this caller arrives
    third = asyncio.create_task(follower._target())
    await asyncio.sleep(0.01)
    gate.set()
    assert await first == 3
    assert await second == 7  # waited for a look-up sent after it was called
    assert await third == 7  # and shared it
    assert sent == [1, 2]
    await follower.stop()


async def test_stop_lets_actions_being_planned_finish(
    nats_url: str, topology: Topology, bus: Bus
) -> None:
    strategy = Counting(delay_s=0.3)
    pbus, stop = await start_with(nats_url, topology, SETTINGS, strategy)
    await register(bus)
    await bus.publish(action("o_st", "Update inventory", productId="P"))
    deadline = asyncio.get_running_loop().time() + 10
    while not strategy.calls:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    await stop_planner(pbus, stop)  # while it is being planned
    assert isinstance(await plan_event(bus, "o_st", timeout=1.0), PlanCreated)
    await consumer_idle(bus)


async def test_two_copies_of_an_action_at_once_ask_the_strategy_once(
    nats_url: str, topology: Topology, bus: Bus
) -> None:
    strategy = Counting(delay_s=0.2)
    pbus, stop = await start_with(nats_url, topology, SETTINGS, strategy)
    try:
        await register(bus)
        first = action("o_twice", "Update inventory", productId="P")
        await bus.publish(first)
        await bus.publish(_with_id(first, "a:o_twice:again"))
        await consumer_idle(bus)
        assert strategy.calls == ["o_twice"]
        assert await count(bus, topology.subject("plan.*", "o_twice")) == 1
    finally:
        await stop_planner(pbus, stop)


class Recording(OfflinePlanner):
    """The offline planner, recording how many services each call saw."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    async def plan(self, request: PlanRequest) -> PlanOutcome:
        self.seen.append(len(request.catalog))
        return await super().plan(request)


class LateRegistrations(RegistryFollower):
    """Registrations that the registry look-up brings in (stored before the action)."""

    async def sync(self, timeout_s: float = 2.0) -> bool:
        await asyncio.sleep(0.05)
        if not self.registry.projects:
            for event in ecommerce():
                self.registry.apply(event)
        return True


async def test_a_plan_made_while_the_registry_syncs_is_redone_if_services_arrived(
    bus: Bus,
) -> None:
    strategy = Recording()
    handler = ActionHandler(bus, LateRegistrations(bus), strategy, SETTINGS, wildcard_checks=True)
    assert not handler.look_first
    await bus.consume(
        stream=bus.topology.events_stream,
        durable="planner",
        filter_subjects=[bus.topology.all_of("action.submitted")],
        handler=handler,
        concurrency=4,
    )
    await bus.publish(action("o_late2", "Update inventory", productId="P"))
    event = await plan_event(bus, "o_late2")
    assert isinstance(event, PlanCreated)  # not the not_actionable of the empty registry
    assert strategy.seen == [0, 5]  # planned during the look-up, then again after it
    await bus.publish(action("o_late3", "Update inventory", productId="P"))
    assert isinstance(await plan_event(bus, "o_late3"), PlanCreated)
    assert strategy.seen == [0, 5, 5]  # nothing new: planned once
