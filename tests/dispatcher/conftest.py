"""Fixtures of the dispatcher tests: plans, a fake worker, an event recorder, the service."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from orra_dispatcher import DispatcherSettings, setup
from orra_dispatcher.store import BUCKET, SnapshotStore
from orra_events import (
    Bus,
    Event,
    Plan,
    PlanCreated,
    PlanTask,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    Topology,
    decode,
    decode_as,
    new_orchestration_id,
)


def seed_plan() -> Plan:
    """The plan of DESIGN.md: payment + inventory, then delivery + notify."""
    return Plan(
        tasks=[
            PlanTask(
                id="payment",
                service="PaymentService",
                input={"orderId": "ORD123", "amount": "299.99"},
            ),
            PlanTask(id="inventory", service="InventoryService", input={"productId": "PROD456"}),
            PlanTask(
                id="delivery",
                service="DeliveryAgent",
                input={"orderId": "ORD123", "inStock": "$inventory.inStock"},
            ),
            PlanTask(
                id="notify",
                service="NotificationService",
                input={"customerId": "CUST1", "paymentStatus": "$payment.status"},
            ),
        ],
        parallel_groups=[["payment", "inventory"], ["delivery", "notify"]],
    )


def plan_created(plan: Plan, orchestration_id: str | None = None, **kw: Any) -> PlanCreated:
    oid = orchestration_id or new_orchestration_id()
    return PlanCreated(event_id=f"p:{oid}", orchestration_id=oid, plan=plan, planner="test", **kw)


class TaskError(Exception):
    """Raised by a fake service behaviour: the task fails."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


Behaviour = Callable[[TaskDispatched], Awaitable[dict[str, Any] | None]]
"""Returns the output, raises TaskError, or returns None to never answer."""


async def default_behaviour(task: TaskDispatched) -> dict[str, Any] | None:
    outputs: dict[str, dict[str, Any]] = {
        "PaymentService": {"status": "confirmed", "paymentStatus": "confirmed"},
        "InventoryService": {"inStock": True, "status": "reserved"},
        "DeliveryAgent": {"deliveryTracking": "DLV987", "estimatedDelivery": "2024-11-10"},
        "NotificationService": {"notified": True},
    }
    return dict(outputs.get(task.service, {"ok": True}))


@dataclass
class Received:
    task: TaskDispatched
    at: float
    finished_at: float | None = None


@dataclass
class FakeWorker:
    """Consumes every ``work.<service>`` and answers with task events, like the SDK."""

    bus: Bus
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    _sub: Any = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._sub = await self.bus.js.subscribe(
            self.bus.topology.work("*"),
            durable="fake_worker",
            cb=self._on_msg,
            manual_ack=True,
        )

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_msg(self, msg: Any) -> None:
        task = decode_as(msg.data, TaskDispatched)
        await msg.ack()
        record = Received(task, time.monotonic())
        self.received.append(record)
        job = asyncio.create_task(self._run(record))
        self._tasks.add(job)
        job.add_done_callback(self._tasks.discard)

    async def _run(self, record: Received) -> None:
        task = record.task
        behaviour = self.behaviours.get(task.service, default_behaviour)
        started = time.time()
        common: dict[str, Any] = {
            "event_id": f"r:{task.orchestration_id}:{task.task_id}:{task.attempt}",
            "orchestration_id": task.orchestration_id,
            "task_id": task.task_id,
            "service": task.service,
            "attempt": task.attempt,
            "idempotency_key": task.idempotency_key,
            "started_at": started,
        }
        event: Event
        try:
            output = await behaviour(task)
        except TaskError as exc:
            event = TaskFailed(
                **common,
                error=str(exc),
                retryable=exc.retryable,
                duration_ms=(time.time() - started) * 1000,
            )
        else:
            if output is None:
                return
            event = TaskCompleted(
                **common, output=output, duration_ms=(time.time() - started) * 1000
            )
        record.finished_at = time.monotonic()
        await self.bus.publish(event)

    def dispatched(self, task_id: str) -> list[TaskDispatched]:
        return [r.task for r in self.received if r.task.task_id == task_id]


@dataclass
class Recorder:
    """Sees every event published in the namespace (core NATS, so duplicates too)."""

    bus: Bus
    events: list[Event] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _sub: Any = None

    async def start(self) -> None:
        ns = self.bus.topology.namespace
        self._sub = await self.bus.nc.subscribe(f"{ns}.>", cb=self._on_msg)

    async def _on_msg(self, msg: Any) -> None:
        if ".work." in msg.subject or ".dlq." in msg.subject or ".$KV." in msg.subject:
            return
        with contextlib.suppress(Exception):
            self.events.append(decode(msg.data))
            self._changed.set()

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                types = [(e.TYPE, getattr(e, "task_id", None)) for e in self.events]
                raise AssertionError(f"no matching event within {timeout}s; saw {types}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def terminal(self, orchestration_id: str, timeout: float = 10.0) -> Event:
        return await self.wait_for(
            lambda e: (
                e.TYPE.startswith("orchestration.")
                and getattr(e, "orchestration_id", None) == orchestration_id
            ),
            timeout,
        )

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()


async def stored_events(bus: Bus, orchestration_id: str) -> list[Event]:
    """The orchestration's events as stored in the events stream (after deduplication)."""
    sub = await bus.js.subscribe(
        bus.topology.history_of(orchestration_id),
        stream=bus.topology.events_stream,
        ordered_consumer=True,
    )
    out: list[Event] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=0.3)
            except Exception:
                return out
            out.append(decode(msg.data))
    finally:
        await sub.unsubscribe()


FAST = DispatcherSettings(
    max_attempts=3,
    retry_base_s=0.05,
    retry_max_s=0.2,
    retry_jitter=0.0,
    task_timeout_s=5.0,
    ack_wait_s=3.0,
    sweep_interval_s=0.0,
)


@pytest.fixture
async def worker(bus: Bus) -> AsyncIterator[FakeWorker]:
    w = FakeWorker(bus)
    await w.start()
    try:
        yield w
    finally:
        await w.stop()


@pytest.fixture
async def recorder(bus: Bus) -> AsyncIterator[Recorder]:
    r = Recorder(bus)
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


StartDispatcher = Callable[..., Awaitable[Callable[[], Awaitable[None]]]]


@pytest.fixture
async def start_dispatcher(bus: Bus, nats_url: str, topology: Topology) -> AsyncIterator[Any]:
    """Start a dispatcher (on the test bus, or on its own connection with ``own_bus``)."""
    stops: list[Callable[[], Awaitable[None]]] = []
    buses: list[Bus] = []

    async def start(
        settings: DispatcherSettings = FAST, *, own_bus: bool = False
    ) -> Callable[[], Awaitable[None]]:
        target = bus
        if own_bus:
            target = await Bus.connect(nats_url, topology, name="dispatcher-replica")
            buses.append(target)
        stop = await setup(target, settings)
        stops.append(stop)
        return stop

    try:
        yield start
    finally:
        for stop in stops:
            with contextlib.suppress(Exception):
                await stop()
        for b in buses:
            await b.close()


@pytest.fixture
async def snapshots(bus: Bus) -> SnapshotStore:
    """The dispatcher's snapshot bucket, to look at what it stored."""
    publisher = bus.publisher
    await publisher.start()
    return SnapshotStore(await bus.kv(BUCKET), publisher)
