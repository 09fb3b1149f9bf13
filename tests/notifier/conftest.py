"""Fixtures of the notifier tests: a running notifier and cleanup of what it creates."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from orra_events import Bus
from orra_events.runtime import Stop
from orra_notifier import setup
from orra_notifier.handlers import jobs_stream
from orra_notifier.stores import DELIVERIES_BUCKET, SECRETS_BUCKET, WEBHOOKS_BUCKET

from .helpers import fast_settings

StartNotifier = Callable[..., Awaitable[Stop]]


@pytest.fixture(autouse=True)
async def _notifier_cleanup(bus: Bus) -> AsyncIterator[None]:
    """Delete what the notifier creates beyond the topology's streams."""
    yield
    with contextlib.suppress(Exception):
        await bus.js.delete_stream(jobs_stream(bus.topology))
    for name in (WEBHOOKS_BUCKET, SECRETS_BUCKET, DELIVERIES_BUCKET):
        with contextlib.suppress(Exception):
            await bus.js.delete_key_value(bus.topology.bucket(name))


@pytest.fixture
async def start_notifier(bus: Bus) -> AsyncIterator[StartNotifier]:
    """Start notifiers (``await start_notifier(**settings)``); all stop after the test."""
    running: list[Stop] = []

    async def start(*, on: Bus | None = None, **overrides: Any) -> Stop:
        stop = await setup(on or bus, fast_settings(**overrides))
        stopped = False

        async def stop_once() -> None:
            nonlocal stopped
            if not stopped:
                stopped = True
                await stop()

        running.append(stop_once)
        return stop_once

    yield start
    for stop in reversed(running):
        await stop()
