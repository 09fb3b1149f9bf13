"""Fixtures for end-to-end tests: real service processes against the session's nats-server."""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from orra_events import (
    ActionSubmitted,
    Bus,
    DataField,
    Event,
    OrchestrationAborted,
    OrchestrationDone,
    OrchestrationFailed,
    Topology,
    decode,
    new_orchestration_id,
)
from tests.e2e.processes import Processes
from tests.e2e.stack_fixtures import WebhookReceiver

TERMINAL = (OrchestrationDone, OrchestrationFailed, OrchestrationAborted)


@pytest.fixture
def base_env(nats_url: str, namespace: str, tmp_path: Path) -> dict[str, str]:
    """Environment of every process this test starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORRA_")}
    env.update(
        ORRA_NATS_URL=nats_url,
        ORRA_NAMESPACE=namespace,
        ORRA_LOG_FORMAT="json",
        ORRA_LOG_LEVEL="INFO",
        ORRA_EXAMPLES_LATENCY_SCALE="0.2",
        ORRA_EXAMPLES_EFFECTS_FILE=str(tmp_path / "effects.jsonl"),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def procs(base_env: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    group = Processes(base_env, log_dir)
    try:
        yield group
    finally:
        group.stop_all()


class Watcher:
    """Collects every event of a namespace, by orchestration, as it is appended."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.events: dict[str, list[Event]] = defaultdict(list)
        self._changed = asyncio.Condition()

    async def start(self) -> None:
        async def on_msg(msg: Any) -> None:
            event = decode(msg.data)
            orch = getattr(event, "orchestration_id", None)
            if orch is not None:
                self.events[orch].append(event)
                async with self._changed:
                    self._changed.notify_all()

        self._sub = await self.bus.js.subscribe(
            "",
            stream=self.bus.topology.events_stream,
            cb=on_msg,
            ordered_consumer=True,
            config=ConsumerConfig(
                filter_subjects=self.bus.topology.events_filter,
                deliver_policy=DeliverPolicy.ALL,
            ),
        )

    async def stop(self) -> None:
        await self._sub.unsubscribe()

    def of(self, orch: str, cls: type[Event] | None = None) -> list[Event]:
        return [e for e in self.events[orch] if cls is None or isinstance(e, cls)]

    async def wait_for(
        self, orch: str, cls: type[Event] | tuple[type[Event], ...], timeout_s: float = 30.0
    ) -> Event:
        async def found() -> Event:
            async with self._changed:
                while True:
                    for event in self.events[orch]:
                        if isinstance(event, cls):
                            return event
                    await self._changed.wait()

        return await asyncio.wait_for(found(), timeout_s)

    async def terminal(self, orch: str, timeout_s: float = 30.0) -> Event:
        return await self.wait_for(orch, TERMINAL, timeout_s)


@pytest.fixture
async def watcher(bus: Bus) -> AsyncIterator[Watcher]:
    w = Watcher(bus)
    await w.start()
    yield w
    await w.stop()


async def submit(
    bus: Bus,
    action: str,
    data: dict[str, Any] | None = None,
    *,
    webhook: str | None = None,
    mode: str | None = None,
    orchestration_id: str | None = None,
) -> str:
    """Append an action.submitted event directly (what the gateway does for a POST)."""
    orch = orchestration_id or new_orchestration_id()
    await bus.publish(
        ActionSubmitted(
            event_id=f"a:{orch}",
            orchestration_id=orch,
            action=action,
            data=[DataField(k, v) for k, v in (data or {}).items()],
            webhook=webhook,
            mode=mode,  # type: ignore[arg-type]
        )
    )
    return orch


def topology_of(namespace: str) -> Topology:
    return Topology(namespace=namespace)


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver shared by the tests of a module (its stack's deliveries go to it)."""
    server = WebhookReceiver().start()
    try:
        yield server
    finally:
        server.stop()
