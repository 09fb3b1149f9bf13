"""Fixtures of the SDK tests: clients on the test's namespace, dispatching, event capture."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from nats.aio.msg import Msg

from orra_events import Bus, Event, TaskDispatched, decode
from orra_sdk import OrraClient


class EventLog:
    """Every event published on some subjects since the capture started (core NATS)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Condition()

    async def _on_msg(self, msg: Msg) -> None:
        event = decode(msg.data)
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def of(self, cls: type[Any], **fields: Any) -> list[Any]:
        return [
            e
            for e in self.events
            if isinstance(e, cls) and all(getattr(e, k) == v for k, v in fields.items())
        ]

    async def wait(
        self, cls: type[Any], count: int = 1, timeout: float = 10.0, **fields: Any
    ) -> list[Any]:
        """Wait until ``count`` events of ``cls`` with ``fields`` arrived; return them."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.of(cls, **fields)) >= count)
        return self.of(cls, **fields)


@pytest.fixture
async def events(bus: Bus) -> AsyncIterator[EventLog]:
    log = EventLog()
    topo = bus.topology
    subs = [
        await bus.nc.subscribe(f"{topo.namespace}.task.>", cb=log._on_msg),
        await bus.nc.subscribe(f"{topo.namespace}.service.>", cb=log._on_msg),
    ]
    await bus.nc.flush()
    yield log
    for sub in subs:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


@pytest.fixture
async def make_client(
    nats_url: str, namespace: str, bus: Bus
) -> AsyncIterator[Callable[..., OrraClient]]:
    """Build clients on the test's namespace; every one is closed after the test."""
    clients: list[OrraClient] = []

    def make(**options: Any) -> OrraClient:
        options.setdefault("heartbeat_interval_s", 5.0)
        options.setdefault("ack_wait_s", 5.0)
        options.setdefault("drain_timeout_s", 1.0)
        client = OrraClient(nats_url, namespace=namespace, **options)
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        await client.close()


Dispatch = Callable[..., Any]


@pytest.fixture
def dispatch(bus: Bus) -> Dispatch:
    """Publish a task on ``work.<service>`` as the dispatcher does."""

    async def send(
        service: str,
        task_id: str,
        input: dict[str, Any],  # noqa: A002
        *,
        attempt: int = 1,
        orchestration_id: str = "o_test",
        event_id: str | None = None,
        version: str | None = None,
    ) -> TaskDispatched:
        event = TaskDispatched(
            event_id=event_id or f"d:{orchestration_id}:{task_id}:{attempt}",
            orchestration_id=orchestration_id,
            task_id=task_id,
            service=service,
            input=input,
            attempt=attempt,
            idempotency_key=f"{orchestration_id}:{task_id}",
            timeout_s=30.0,
            version=version,
        )
        await bus.publish(event, subject=bus.topology.work(service))
        return event

    return send


async def work_left(bus: Bus, timeout: float = 5.0) -> int:
    """Messages left in the work stream once it drained, or after ``timeout``.

    Acked messages leave a work queue; acks are asynchronous, hence the polling.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        info = await bus.js.stream_info(bus.topology.work_stream)
        if info.state.messages == 0 or loop.time() > deadline:
            return int(info.state.messages)
        await asyncio.sleep(0.02)


_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$"
)


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name{labels}`` in a Prometheus text exposition."""
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
        if found == labels:
            return float(match["value"])
    return None
