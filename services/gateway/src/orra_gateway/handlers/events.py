"""An orchestration's events: ``/orchestrations/{id}/events`` and ``.../history``.

``/events`` streams them as Server-Sent Events, history first, then live, from an ordered
consumer on the orchestration's subjects (``Topology.history_of``); ``Last-Event-ID``
resumes after a stream sequence. ``/history`` answers the events stored so far as JSON
(:func:`orra_gateway.logread.read_history`).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from nats.js.api import ConsumerConfig, DeliverPolicy

from orra_events.bus import FOLLOW_HEARTBEAT_S
from orra_gateway.auth import SECURITY, Caller
from orra_gateway.errors import BrokerDown, FieldError, InvalidInput
from orra_gateway.logread import HistoryUnavailable, read_history
from orra_gateway.problems import problem_responses
from orra_gateway.schemas import History, HistoryEvent
from orra_gateway.service import Gateway

if TYPE_CHECKING:
    from nats.aio.msg import Msg

__all__ = ["EventController"]


def _event_type(gateway: Gateway, subject: str) -> str:
    return gateway.bus.topology.strip(subject).rsplit(".", 1)[0]


def _resume_after(last_event_id: str | None) -> int:
    """The stream sequence to resume after (0: from the start).

    Raises:
        InvalidInput: ``Last-Event-ID`` is not a sequence this stream sent.
    """
    if last_event_id is None or not last_event_id.strip():
        return 0
    try:
        after = int(last_event_id)
    except ValueError:
        after = -1
    if after < 0:
        raise InvalidInput(
            "invalid Last-Event-ID",
            [FieldError("Last-Event-ID", "must be an event id (a stream sequence) we sent")],
        )
    return after


async def _sse_messages(
    gateway: Gateway, sub: Any, queue: "asyncio.Queue[Msg]"
) -> AsyncIterator[ServerSentEventMessage]:
    keepalive = gateway.settings.sse_keepalive_s
    try:
        yield ServerSentEventMessage(data=None, comment="orra event stream", retry=2000)
        while True:
            try:
                msg = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                yield ServerSentEventMessage(data=None, comment="keep-alive")
                continue
            yield ServerSentEventMessage(
                data=msg.data.decode(errors="replace"),
                event=_event_type(gateway, msg.subject),
                id=str(msg.metadata.sequence.stream),
            )
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


class EventController(Controller):
    """The events of one orchestration: a live stream, or those stored so far."""

    path = "/orchestrations/{orchestration_id:str}"
    tags = ["orchestrations"]
    security = SECURITY

    @get(
        "/events",
        summary="The orchestration's events as Server-Sent Events: history, then live",
        description=(
            "Each message has `id:` = the event's stream sequence, `event:` = its type and "
            "`data:` = its JSON. Send `Last-Event-ID` to resume after a sequence. The stream "
            "stays open (with keep-alive comments) until the client closes it."
        ),
        media_type="text/event-stream",
        responses=problem_responses(404),
    )
    async def orchestration_events(
        self,
        orchestration_id: FromPath[str],
        request: Caller,
        gateway: NamedDependency[Gateway],
        last_event_id: Annotated[
            str | None, HeaderParameter(name="Last-Event-ID", required=False, max_length=32)
        ] = None,
    ) -> ServerSentEvent:
        """Stream the orchestration's events."""
        await gateway.orchestration(request.user, orchestration_id)
        after = _resume_after(last_event_id)
        queue: asyncio.Queue[Msg] = asyncio.Queue()

        async def on_message(msg: "Msg") -> None:
            queue.put_nowait(msg)

        topology = gateway.bus.topology
        config = (
            ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1)
            if after
            else ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        )
        sub = await gateway.bus.js.subscribe(
            topology.history_of(orchestration_id),
            stream=topology.events_stream,
            cb=on_message,
            ordered_consumer=True,
            idle_heartbeat=FOLLOW_HEARTBEAT_S,
            config=config,
        )
        return ServerSentEvent(
            _sse_messages(gateway, sub, queue),
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @get(
        "/history",
        summary="The orchestration's events so far, as JSON",
        description=(
            "Every event stored so far, in log order: `seq` (its stream sequence, the SSE "
            "stream's `id:`), `type` and the event. Follow on with "
            "`GET /orchestrations/{id}/events` and `Last-Event-ID` set to the last `seq`."
        ),
        responses=problem_responses(404),
    )
    async def orchestration_history(
        self, orchestration_id: FromPath[str], request: Caller, gateway: NamedDependency[Gateway]
    ) -> History:
        """The orchestration's events so far."""
        await gateway.orchestration(request.user, orchestration_id)
        try:
            msgs = await read_history(gateway.bus, orchestration_id)
        except HistoryUnavailable as exc:
            raise BrokerDown(str(exc)) from None
        items: list[HistoryEvent] = []
        for msg in msgs:
            try:
                event = msgspec.json.decode(msg.data)
            except msgspec.DecodeError:
                continue  # parked by the consumers; not an event
            if isinstance(event, dict):
                items.append(
                    HistoryEvent(
                        seq=msg.metadata.sequence.stream,
                        type=_event_type(gateway, msg.subject),
                        event=event,
                    )
                )
        return History(items=items)
