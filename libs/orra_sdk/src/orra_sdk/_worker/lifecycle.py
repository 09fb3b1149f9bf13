"""The worker of one service: its consumer, starting and stopping, stop signals."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog

from orra_events.consumers import Durable, PullConsumer
from orra_sdk._metrics import prepare
from orra_sdk._worker.intake import Intake, KeyLocks

if TYPE_CHECKING:
    from orra_events import Bus
    from orra_events._fastpub import FastPublisher
    from orra_sdk._results import ResultStore
    from orra_sdk.service import Service

__all__ = ["ServiceWorker"]

log = structlog.get_logger("orra.sdk")

_STOPPED_MEMORY = 10_000


class ServiceWorker(Intake):
    """Pulls and runs the tasks of one service in this process."""

    def __init__(
        self,
        bus: Bus,
        service: Service[Any, Any],
        *,
        store: ResultStore,
        publisher: FastPublisher,
        concurrency: int,
        ack_wait_s: float,
        pull_expires_s: float,
        max_deliveries: int,
    ) -> None:
        super().__init__(
            bus,
            service,
            store=store,
            publisher=publisher,
            concurrency=concurrency,
            ack_wait_s=ack_wait_s,
            pull_expires_s=pull_expires_s,
            max_deliveries=max_deliveries,
        )
        self._locks = KeyLocks()
        self._consumer = PullConsumer(
            bus,
            Durable(
                stream=bus.topology.work_stream,
                name=self.durable,
                filter_subjects=(self.subject,),
                ack_wait_s=ack_wait_s,
                max_ack_pending=100_000,
                description=f"Orra SDK: replicas of {service.name}",
            ),
            self._process,
            concurrency=concurrency,
            expires_s=pull_expires_s,
            max_waiting=4096,
            manual_ack=True,  # acked once the task's result is stored
            max_deliver=None,  # the poison guard is the worker's (see Intake._accept)
        )

    @property
    def inflight(self) -> int:
        """Tasks received and not finished yet."""
        return self._consumer.inflight

    @property
    def bound(self) -> bool:
        """Whether the worker is bound to its consumer and takes tasks (started, not stopping)."""
        return self._consumer.bound and not self._stopping

    async def start(self) -> None:
        """Create (or update) the shared consumer and start pulling."""
        prepare(self.service.name, revertible=self.service.revertible)
        await self._consumer.start()
        self._ticker = asyncio.create_task(self._tick(), name=f"orra-sdk-{self.service.name}")

    def stop_orchestration(self, orchestration_id: str, reason: str) -> int:
        """Cancel this worker's running handlers of an orchestration; return how many."""
        self._stopped[orchestration_id] = reason
        if len(self._stopped) > _STOPPED_MEMORY:
            self._stopped.popitem(last=False)
        running = self._running.get(orchestration_id, ())
        for task in running:
            if task not in self._stops:
                self._stops[task] = reason
                task.cancel()
        if running:
            log.info(
                "stopping running tasks",
                service=self.service.name,
                orchestration_id=orchestration_id,
                count=len(running),
                reason=reason,
            )
        return len(running)

    async def stop(self, drain_timeout_s: float) -> None:
        """Stop pulling, let running tasks finish for ``drain_timeout_s``, abandon the rest.

        The consumer drops its inbox first, so a task abandoned here (its claim released,
        the message handed back) is redelivered to another replica. Results need the
        broker: while it is unreachable, running tasks are not waited for beyond a moment
        (they are redelivered once it is back).
        """
        self._stopping = True
        await self._consumer.stop(drain_timeout_s)
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.wait({self._ticker})
