"""The state and vocabulary that the dispatcher's roles share.

Constants (what it consumes, its durable), the items of an orchestration's mailbox, the
write-behind line, :class:`NotYet`, and :class:`Core`: the dispatcher's attributes and the
helpers every role uses (park, retry, ack). See :mod:`orra_dispatcher.handlers`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any, Final

import structlog

from orra_dispatcher.domain import Orchestration, Timer
from orra_dispatcher.errors import DispatcherError
from orra_dispatcher.registry import ServiceRegistry
from orra_events import (
    Event,
    OrchestrationAborted,
    OrchestrationApproved,
    OrchestrationDone,
    OrchestrationFailed,
    OrchestrationRejected,
    PlanCreated,
    PlanFailed,
    TaskAborted,
    TaskCompensated,
    TaskCompensating,
    TaskCompensationFailed,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
)
from orra_events.consumers import PushConsumer, delivery

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from orra_dispatcher.settings import DispatcherSettings
    from orra_dispatcher.store import SnapshotStore
    from orra_events import Bus
    from orra_events._fastpub import FastPublisher
    from orra_events.publishing import Result

__all__ = [
    "CONSUMED",
    "DURABLE",
    "ENDED_IN_LOG",
    "ENDED_MEMORY",
    "HANDLED",
    "MAX_BATCH",
    "MAX_ROUNDS",
    "REPLAY_AGE_S",
    "RESULTS",
    "TERMINAL",
    "WORK",
    "Again",
    "Core",
    "Item",
    "Line",
    "NotYet",
    "Received",
    "Step",
    "fresh_first_delivery",
    "is_result",
]


DURABLE: Final = "dispatcher"
"""Name of the durable consumer (and deliver group) that dispatcher replicas share."""

CONSUMED: Final = (
    "plan.created",
    "plan.failed",
    "task.completed",
    "task.failed",
    "task.aborted",
    "task.compensated",
    "task.compensation_failed",
    "orchestration.aborted",
    "orchestration.approved",
    "orchestration.rejected",
)
"""Event types the dispatcher consumes."""

REPLAY_AGE_S: Final = 60.0
"""With permanent markers, a ``plan.created`` older than this (seconds in the log) may be a
replay: it is checked against the stored snapshot and the log before it starts anything
(with expiring markers the limit is half their life)."""

HANDLED = (
    PlanCreated,
    PlanFailed,
    TaskCompleted,
    TaskFailed,
    TaskAborted,
    TaskCompensated,
    TaskCompensationFailed,
    OrchestrationAborted,
    OrchestrationApproved,
    OrchestrationRejected,
)
WORK = (TaskDispatched, TaskCompensating)
RESULTS = (TaskCompleted, TaskFailed)
TERMINAL = (OrchestrationDone, OrchestrationFailed, OrchestrationAborted)
ENDED_IN_LOG = frozenset(
    {
        "orchestration.done",
        "orchestration.failed",
        "orchestration.aborted",
        "orchestration.compensated",
    }
)
"""The last ``orchestration.*`` event types of an orchestration that has ended."""
MAX_BATCH: Final = 64
MAX_ROUNDS: Final = 5
ENDED_MEMORY: Final = 50_000

log = structlog.get_logger("orra.dispatcher")


class Again:
    """An input to apply again against the stored state (its write-behind write conflicted)."""

    __slots__ = ("event", "msg")

    def __init__(self, event: Event, msg: Msg) -> None:
        self.event = event
        self.msg = msg


Received = tuple[Event, "Msg"]
Item = Received | Timer | Again


class Step:
    """Inputs applied in memory at once, and what storing them involves."""

    __slots__ = ("inputs", "published", "state", "touched")

    def __init__(
        self,
        inputs: list[Received],
        published: asyncio.Future[list[Result]] | None,
        state: Orchestration | None,
        touched: tuple[str, ...],
    ) -> None:
        self.inputs = inputs
        self.published = published
        self.state = state
        self.touched = touched


class Line:
    """An orchestration's inputs applied in memory whose snapshot is not stored yet.

    Attributes:
        revision: Revision of the stored snapshot the steps build on (0: none yet).
        state: The state after the last step (what the next input applies to).
        steps: Applied steps, oldest first, waiting for the writer.
        writer: The task storing them.
    """

    __slots__ = ("revision", "state", "steps", "writer")

    def __init__(self, revision: int, state: Orchestration) -> None:
        self.revision = revision
        self.state = state
        self.steps: deque[Step] = deque()
        self.writer: asyncio.Task[None] | None = None


class NotYet(DispatcherError):
    """The input cannot be applied yet: unknown orchestration, or ahead of the state."""


class Core:
    """The state that the dispatcher's roles share, and the helpers every role uses.

    :class:`~orra_dispatcher.handlers.dispatcher.Dispatcher` combines the roles (intake,
    writer, engine, timers) as mixins of this class: one object, so a call from one role to
    another is an ordinary method call. Arguments: see ``Dispatcher``.
    """

    def __init__(
        self,
        bus: Bus,
        store: SnapshotStore,
        settings: DispatcherSettings,
        *,
        publisher: FastPublisher | None = None,
    ) -> None:
        self.bus = bus
        self.store = store
        self.settings = settings
        self.policy = settings.policy
        self.publisher = publisher or store.publisher
        self._plan_age_s = REPLAY_AGE_S
        self._topology = bus.topology
        self._cache: dict[str, tuple[Orchestration, int]] = {}
        self._lines: dict[str, Line] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._boxes: dict[str, deque[Item]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._timers: dict[tuple[str, str], tuple[asyncio.TimerHandle, Timer]] = {}
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._consumer: PushConsumer[Event] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False
        self.registry = ServiceRegistry(
            bus,
            factor=settings.health_factor,
            check_s=settings.health_check_s,
            on_healthy=self._on_service_healthy,
        )
        self._services = self.registry.services
        self._paused: dict[str, set[str]] = {}

    if TYPE_CHECKING:
        # The methods each role offers the others (declared for the type checker only).

        def _enqueue(self, orchestration_id: str, item: Item) -> None: ...
        def _requeue(self, orchestration_id: str, items: list[Item]) -> None: ...
        def _spawn(self, work: Any, orchestration_id: str) -> asyncio.Task[None]: ...
        def _try_fast(
            self, orchestration_id: str, item: Received, box: deque[Item] | None = None
        ) -> bool: ...
        async def _settle(self, line: Line) -> None: ...
        async def _handle_message(self, event: Event, msg: Msg, *, again: bool = False) -> None: ...
        async def _handle_results(self, orchestration_id: str, batch: list[Received]) -> None: ...
        async def _handle_timer(self, timer: Timer) -> None: ...
        def _send(self, emit: list[Event]) -> asyncio.Future[list[Result]]: ...
        def _forget(self, orchestration_id: str) -> None: ...
        def _arm(self, timer: Timer) -> None: ...
        def _index_paused(self, state: Orchestration) -> None: ...
        def _on_service_healthy(self, service: str) -> None: ...

    def _ack(self, msg: Msg) -> None:
        try:
            self.publisher.ack(msg)
        except Exception:
            log.warning("ack failed", subject=msg.subject, exc_info=True)

    async def _park(self, msg: Msg, reason: str) -> None:
        """Park an input now (in the caller's log context, which names the input)."""
        assert self._consumer is not None
        await self._consumer.park(msg, reason)

    async def _retry_or_park(self, msg: Msg, reason: str, delay_s: float) -> None:
        """Redeliver an input after ``delay_s``, or park it after ``max_deliver`` deliveries."""
        assert self._consumer is not None
        await self._consumer.retry(msg, reason, delay_s)


def is_result(item: Item) -> bool:
    """Whether a mailbox item is a task result (results queued together are batched)."""
    return isinstance(item, tuple) and isinstance(item[0], RESULTS)


def fresh_first_delivery(msg: Msg, max_age_s: float) -> bool:
    """Whether a message is delivered for the first time and is younger than ``max_age_s``."""
    try:
        delivered, stored_at = delivery(msg)
    except ValueError:  # not a JetStream message: treat as old
        return False
    return delivered == 1 and time.time() - stored_at < max_age_s
