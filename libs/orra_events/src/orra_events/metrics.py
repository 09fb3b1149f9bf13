"""What Orra measures about itself, fed from the events each process publishes.

Every publish through :class:`~orra_events.Bus` passes its event to :func:`observe_event`,
so the process that emits an outcome counts it: the dispatcher counts orchestrations by
status, the SDK observes task latencies by service. :class:`ConsumerLag` polls the broker
for the backlog of every durable consumer. Rendered at ``/metrics``
(:mod:`orra_events.health`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog

from orra_events.events import (
    OrchestrationAborted,
    OrchestrationDone,
    OrchestrationFailed,
    PlanCreated,
    TaskCompleted,
    TaskFailed,
)
from orra_events.health import METRICS

if TYPE_CHECKING:
    from collections.abc import Callable

    from orra_events.bus import Bus
    from orra_events.events import Event

__all__ = ["ConsumerLag", "observe_event"]

log = structlog.get_logger("orra.metrics")

_STATUS = {
    OrchestrationDone: "completed",
    OrchestrationFailed: "failed",
    OrchestrationAborted: "aborted",
}


def observe_event(event: Event) -> None:
    """Count or time what ``event`` says happened (cheap: no I/O, no allocation to speak of)."""
    cls = type(event)
    if cls is TaskCompleted or cls is TaskFailed:
        outcome = "completed" if cls is TaskCompleted else "failed"
        METRICS.observe(
            "orra_task_duration_seconds",
            event.duration_ms / 1000.0,  # type: ignore[attr-defined]
            help_="Task handler duration by service and outcome",
            service=event.service,  # type: ignore[attr-defined]
            outcome=outcome,
        )
    elif cls in _STATUS:
        METRICS.inc(
            "orra_orchestrations_total",
            help_="Orchestrations ended, by status",
            status=_STATUS[cls],
        )
    elif cls is PlanCreated:
        METRICS.observe(
            "orra_plan_latency_seconds",
            event.latency_ms / 1000.0,  # type: ignore[attr-defined]
            help_="Planning latency by planner",
            planner=event.planner,  # type: ignore[attr-defined]
        )


class ConsumerLag:
    """Polls the pending count of every durable consumer of the topology's streams."""

    def __init__(self, bus: Bus, interval_s: float = 15.0) -> None:
        self.bus = bus
        self.interval_s = interval_s
        self.pending: dict[tuple[str, str], int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start polling in the background."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def poll(self) -> None:
        """Read every consumer's backlog once and publish it as gauges."""
        for config in self.bus.topology.stream_configs():
            stream = str(config.name)
            try:
                infos = await self.bus.js.consumers_info(stream)
            except Exception as exc:  # noqa: BLE001 - a missing stream or a broker hiccup
                log.debug("consumer lag not read", stream=stream, error=str(exc))
                continue
            for info in infos:
                key = (stream, info.name)
                if key not in self.pending:
                    METRICS.gauge(
                        "orra_consumer_pending",
                        self._reader(key),
                        help_="Messages not yet delivered to a durable consumer",
                        stream=stream,
                        consumer=info.name,
                    )
                self.pending[key] = int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    def _reader(self, key: tuple[str, str]) -> Callable[[], float]:
        return lambda: float(self.pending.get(key, 0))

    async def _run(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self.interval_s)
