"""What both consumer primitives share: the durable, the ack policy and parking.

Every decision about a consumed message is taken here, once:

* the durable consumer is created, or an existing one brought to the wanted filters, ack
  wait and max ack pending (:func:`ensure_durable`);
* a message that cannot be decoded is parked at once on ``dlq.<subject>``
  (:meth:`orra_events.Bus.park`, headers by :func:`orra_events.deadletter.dead_letter_headers`);
* a handler that returns has its message acked (unless the consumer is ``manual_ack``:
  then the handler, or what it hands the message to, acks it through :meth:`Consumer.ack`);
* a handler that raises :class:`Retry` has its message redelivered after the delay it
  names; one that raises :class:`Park` has it parked with that reason; any other exception
  is logged and redelivered after ``retry_delay_s``; a message redelivered ``max_deliver``
  times is parked instead (``max_deliver=None``: never; the handler decides);
* a message that arrives while the consumer stops is handed back at once (``nak``).

Acknowledgements are written through the connection's pipelined publisher
(``Bus.publisher``): no coroutine, no round trip.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, Generic, TypeVar

import structlog
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError, NotFoundError

from orra_events.errors import OrraEventsError

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext
    from nats.js.api import ConsumerInfo

    from orra_events.bus import Bus

__all__ = [
    "DELIVER_PREFIX",
    "Consumer",
    "Decoder",
    "Durable",
    "Handler",
    "Park",
    "Retry",
    "delivery",
    "ensure_durable",
]

T = TypeVar("T")

Handler = Callable[[T, "Msg"], Awaitable[None]]
"""A consumer's handler: the decoded message and the message (metadata, in-progress)."""

Decoder = Callable[[bytes], T]
"""Turns a message's bytes into what the handler takes; raises when it cannot."""

DELIVER_PREFIX: Final = "_INBOX.orra"
"""Prefix of the deliver subjects of Orra's push consumers (``_INBOX.>`` is commonly allowed)."""

log = structlog.get_logger("orra.consumer")


class Retry(OrraEventsError):
    """Raised by a handler to have its message redelivered after ``delay_s``."""

    def __init__(self, reason: str, delay_s: float = 1.0) -> None:
        super().__init__(reason)
        self.delay_s = delay_s


class Park(OrraEventsError):
    """Raised by a handler to park its message on the dead-letter subject with this reason."""


def delivery(msg: Msg) -> tuple[int, float]:
    """How many times a JetStream message was delivered, and when it was stored.

    Read from its reply subject (``$JS.ACK...``), without building nats-py's
    ``Msg.metadata`` (a dataclass and a ``datetime``).

    Returns:
        The delivery count (1 for the first) and the storage time (UNIX seconds).

    Raises:
        ValueError: it is not a JetStream message.
    """
    tokens = (msg.reply or "").split(".")
    if tokens[0] == "$JS" and len(tokens) > 2 and tokens[1] == "ACK":
        if len(tokens) == 9:
            return int(tokens[4]), int(tokens[7]) / 1e9
        if len(tokens) >= 11:
            return int(tokens[6]), int(tokens[9]) / 1e9
    raise ValueError("not a JetStream message: no $JS.ACK reply subject")


@dataclasses.dataclass(frozen=True, slots=True)
class Durable:
    """A durable consumer that the replicas of a component share.

    Attributes:
        stream: The stream it reads.
        name: Its name (for a push consumer also the deliver group).
        filter_subjects: The subjects it receives.
        ack_wait_s: Seconds before an unacknowledged message is redelivered.
        max_ack_pending: Messages handed out and not yet acknowledged, across replicas.
        deliver_new_only: Start with new messages only (when it is created).
        description: Shown by the broker's tools.
    """

    stream: str
    name: str
    filter_subjects: tuple[str, ...]
    ack_wait_s: float = 30.0
    max_ack_pending: int = 1000
    deliver_new_only: bool = False
    description: str | None = None

    def __post_init__(self) -> None:
        if not self.filter_subjects:
            raise ValueError(f"consumer {self.name} needs at least one filter subject")

    def config(self, *, push: bool) -> ConsumerConfig:
        """The consumer's definition: explicit acks, redeliveries decided by Orra."""
        filters = list(self.filter_subjects)
        return ConsumerConfig(
            durable_name=self.name,
            description=self.description,
            deliver_subject=f"{DELIVER_PREFIX}.{self.stream}.{self.name}" if push else None,
            deliver_group=self.name if push else None,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            max_deliver=-1,
            max_ack_pending=self.max_ack_pending,
            deliver_policy=DeliverPolicy.NEW if self.deliver_new_only else DeliverPolicy.ALL,
            filter_subject=filters[0] if len(filters) == 1 else None,
            filter_subjects=filters if len(filters) > 1 else None,
        )


async def ensure_durable(
    js: JetStreamContext, durable: Durable, *, push: bool, max_waiting: int | None = None
) -> ConsumerInfo:
    """Create the durable consumer, or bring an existing one to ``durable``.

    A push consumer's deliver subject is derived from the stream and consumer names, so
    replicas that start at the same moment create the very same consumer instead of racing
    with two inboxes. An existing consumer whose filters, ack wait or max ack pending differ
    (a new version of the component) is updated; its other settings are kept.

    Args:
        js: The JetStream context.
        durable: The consumer.
        push: A push consumer (with a deliver group) or a pull consumer.
        max_waiting: A pull consumer's limit of waiting pull requests (set at creation).

    Raises:
        OrraEventsError: a consumer of that name exists but is of the other kind.
    """
    stream, name = durable.stream, durable.name
    try:
        info: ConsumerInfo | None = await js.consumer_info(stream, name)
    except NotFoundError:
        info = None
    if info is None:
        config = durable.config(push=push)
        if max_waiting is not None and not push:
            config.max_waiting = max_waiting
        try:
            return await js.add_consumer(stream, config)
        except BadRequestError:  # created meanwhile by another replica
            info = await js.consumer_info(stream, name)
    current = info.config
    if push and (not current.deliver_subject or current.deliver_group != name):
        raise OrraEventsError(
            f"consumer {name} of {stream} exists but is not a push consumer with deliver "
            f"group {name!r}; delete it or use another durable name"
        )
    if not push and current.deliver_subject:
        raise OrraEventsError(
            f"consumer {name} of {stream} exists as a push consumer; delete it or use "
            "another durable name"
        )
    filters = current.filter_subjects or (
        [current.filter_subject] if current.filter_subject else []
    )
    wanted = list(durable.filter_subjects)
    if (
        sorted(filters) != sorted(wanted)
        or abs((current.ack_wait or 0.0) - durable.ack_wait_s) > 1e-3
        or current.max_ack_pending != durable.max_ack_pending
    ):
        log.info("updating consumer", stream=stream, consumer=name, filters=wanted)
        info = await js.add_consumer(
            stream,
            current.evolve(
                filter_subject=None,
                filter_subjects=wanted,
                ack_wait=durable.ack_wait_s,
                max_ack_pending=durable.max_ack_pending,
            ),
        )
    return info


class Consumer(Generic[T]):
    """The ack policy, parking and stopping of both consumer primitives.

    Args:
        bus: The connection.
        durable: The durable consumer to read.
        handler: Called with each decoded message and the message.
        decoder: Turns bytes into what ``handler`` takes (a message it refuses is parked).
        manual_ack: The handler (or what it hands the message to) acknowledges it through
            :meth:`ack` / :meth:`nak` / :meth:`retry` / :meth:`park`, not its return.
        max_deliver: Deliveries after which a failing message is parked (``None``: never).
        retry_delay_s: Delay of the redelivery after the handler raised.
    """

    def __init__(
        self,
        bus: Bus,
        durable: Durable,
        handler: Handler[T],
        *,
        decoder: Decoder[T],
        manual_ack: bool = False,
        max_deliver: int | None = 20,
        retry_delay_s: float = 1.0,
    ) -> None:
        self.bus = bus
        self.durable = durable
        self.max_deliver = max_deliver
        self.retry_delay_s = retry_delay_s
        self._handler = handler
        self._decoder = decoder
        self._manual_ack = manual_ack
        self._acks = bus.publisher
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        """The durable consumer's name."""
        return self.durable.name

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping

    # --- the ack policy ------------------------------------------------------------------

    def ack(self, msg: Msg) -> None:
        """Acknowledge a message (a failure is logged: the message is redelivered)."""
        try:
            self._acks.ack(msg)
        except Exception as exc:  # noqa: BLE001 - the broker redelivers what was not acked
            log.warning("ack failed", consumer=self.name, subject=msg.subject, error=str(exc))

    def nak(self, msg: Msg, delay_s: float | None = None) -> None:
        """Have a message redelivered (after ``delay_s``); a failure is logged."""
        try:
            self._acks.nak(msg, delay_s)
        except Exception as exc:  # noqa: BLE001 - redelivered after the ack wait anyway
            log.warning("nak failed", consumer=self.name, subject=msg.subject, error=str(exc))

    def in_progress(self, msg: Msg) -> None:
        """Tell the broker that a message is still being worked on (resets its ack wait)."""
        self._acks.in_progress(msg)

    async def retry(self, msg: Msg, reason: str, delay_s: float) -> None:
        """Redeliver a message after ``delay_s``, or park it after ``max_deliver`` deliveries."""
        if self.max_deliver is not None:
            try:
                delivered = delivery(msg)[0]
            except ValueError:
                delivered = 1
            if delivered >= self.max_deliver:
                await self.park(msg, f"gave up after {self.max_deliver} deliveries: {reason}")
                return
        self.nak(msg, delay_s)

    async def park(self, msg: Msg, reason: str) -> None:
        """Park a message with its reason; if even that fails, have it redelivered later."""
        try:
            await self.bus.park(msg, reason)
        except Exception as exc:  # noqa: BLE001 - losing the message is the one bad outcome
            log.warning("cannot park message, will retry", subject=msg.subject, error=str(exc))
            self.nak(msg, self.retry_delay_s)

    async def _handle(self, msg: Msg) -> None:
        """Decode, call the handler, and settle the message by the policy above."""
        try:
            value = self._decoder(msg.data)
        except Exception as exc:  # noqa: BLE001 - bytes that cannot be read never will be
            await self.park(msg, f"{type(exc).__name__}: {exc}")
            return
        try:
            await self._handler(value, msg)
        except Retry as exc:
            await self.retry(msg, str(exc), exc.delay_s)
        except Park as exc:
            await self.park(msg, str(exc))
        except Exception as exc:
            log.exception(
                "handler failed",
                consumer=self.name,
                subject=msg.subject,
                event_type=getattr(value, "TYPE", None),
            )
            await self.retry(msg, f"{type(exc).__name__}: {exc}", self.retry_delay_s)
        else:
            if not self._manual_ack:
                self.ack(msg)

    # --- stopping ------------------------------------------------------------------------

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for running handlers, then cancel the rest.

        Not longer than ``orra_events.bus.BROKER_PATIENCE_S`` while the broker is
        unreachable (their messages need it to be settled). Cancelled handlers' messages are
        redelivered after the ack wait.
        """
        if not self._tasks:
            return
        await self.bus.wait_while_reachable(
            asyncio.wait(set(self._tasks)), timeout_s, what=f"handlers of {self.name}"
        )
        pending = {task for task in self._tasks if not task.done()}
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled running handlers", consumer=self.name, count=len(pending))
            # Bounded: a handler may swallow its cancellation.
            await asyncio.wait(pending, timeout=max(timeout_s, 1.0))

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop taking messages; let running handlers finish for ``timeout_s``."""
        raise NotImplementedError
