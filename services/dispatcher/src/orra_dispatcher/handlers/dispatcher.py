"""The dispatcher: its roles combined, and its lifecycle (start, stop)."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from orra_dispatcher.handlers.core import CONSUMED, DURABLE
from orra_dispatcher.handlers.engine import Engine
from orra_dispatcher.handlers.intake import Intake
from orra_dispatcher.handlers.timers import Timers
from orra_dispatcher.handlers.writer import Writer
from orra_events.consumers import Durable, PushConsumer

__all__ = ["Dispatcher"]

log = structlog.get_logger("orra.dispatcher")


class Dispatcher(Intake, Writer, Engine, Timers):
    """Runs plans: one consumer, per-orchestration mailboxes, timers and a snapshot cache.

    Args:
        bus: The connected bus whose topology names the subjects, streams and bucket.
        store: Where snapshots live.
        settings: Retry, timeout, mode and consumer settings.
        publisher: Publishes outputs and acknowledges inputs; the store's publisher (or a
            new one on the bus's connection) when not given.
    """

    async def start(self) -> None:
        """Load the registry and in-flight snapshots, arm timers, then start consuming."""
        await self.publisher.start()
        if await self.store.enable_marker_ttl(self.bus.js):
            # A plan that skips the read must still find an ended orchestration's marker.
            self._plan_age_s = self.store.tombstone_ttl_s / 2
        await self.registry.start()
        loaded = await self.sweep()
        log.info("dispatcher state loaded", in_flight=loaded)
        topo = self._topology
        self._consumer = PushConsumer(
            self.bus,
            Durable(
                stream=topo.events_stream,
                name=DURABLE,
                filter_subjects=tuple(topo.all_of(t) for t in CONSUMED),
                ack_wait_s=self.settings.ack_wait_s,
                max_ack_pending=self.settings.max_ack_pending,
            ),
            self._on_event,
            manual_ack=True,  # acked once its outputs and snapshot are stored
            max_deliver=self.settings.max_deliver,
        )
        await self._consumer.start()
        if self.settings.sweep_interval_s > 0:
            self._sweeper = asyncio.create_task(self._sweep_loop())

    async def stop(self) -> None:
        """Stop consuming, finish the inputs already received, disarm the timers."""
        self._stopping = True
        await self.registry.stop()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for handle, _ in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._workers:
            await self.bus.wait_while_reachable(
                asyncio.wait(set(self._workers)), 10.0, what="orchestrations being advanced"
            )
