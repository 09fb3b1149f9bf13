"""The state every part of the worker shares, set once when a worker is made."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from orra_events import Bus
    from orra_events._fastpub import FastPublisher
    from orra_sdk._results import ResultStore
    from orra_sdk._worker.keepalive import Beat
    from orra_sdk.service import Service

__all__ = ["WorkerCore"]


class WorkerCore:
    """What one service's worker knows: its service, the broker and the tasks it runs.

    The roles of the worker are the classes built on this one (keep-alives, reporting,
    running, reverting, intake); :class:`orra_sdk._worker.ServiceWorker` joins them, so a
    call from one role to another is a plain method call.
    """

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
        self.bus = bus
        self.service = service
        self.store = store
        self.publisher = publisher
        self.concurrency = concurrency
        self.ack_wait_s = ack_wait_s
        self.pull_expires_s = pull_expires_s
        self.max_deliveries = max_deliveries
        self.durable = bus.topology.consumer(f"svc_{service.name}")
        self.subject = bus.topology.work(service.name)
        self._topology = bus.topology
        self._progress_every = ack_wait_s / 3
        self._lease_s = max(ack_wait_s * 2, 2.0)
        self._beats: dict[int, Beat] = {}
        self._beat_ids = 0
        self._stopping = False
        self._ticker: asyncio.Task[None] | None = None
        # Running handlers by orchestration, the stop reason of those told to stop, and
        # the orchestrations stopped lately (see ServiceWorker.stop_orchestration).
        self._running: dict[str, set[asyncio.Task[Any]]] = {}
        self._stops: dict[asyncio.Task[Any], str] = {}
        self._stopped: OrderedDict[str, str] = OrderedDict()
