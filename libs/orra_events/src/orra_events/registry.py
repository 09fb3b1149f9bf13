"""Reading the registry streams safely: which messages are malformed, and parking them.

The planner, the dispatcher and the gateway follow ``service.registered.>`` (stream
``ORRA_SERVICES``) and ``service.heartbeat.>`` (stream ``ORRA_HEARTBEATS``) with ordered
consumers (no acknowledgements). A malformed message there cannot be ``term``-ed or
``nak``-ed; it is copied to the dead-letter subject once (:func:`park_registry_message`) and
the follower goes on. :func:`registry_problem` says what makes a decoded message malformed;
a registration that conflicts with an earlier one is refused by
:class:`~orra_events.registrations.RegistrationBook` and parked the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import structlog
from nats.js.errors import NotFoundError

from orra_events.deadletter import HDR_ORIGINAL_SEQUENCE, HDR_ORIGINAL_STREAM, dead_letter_headers
from orra_events.errors import InvalidName, InvalidVersion
from orra_events.events import ServiceHeartbeat, ServiceRegistered
from orra_events.registrations import registration_problem

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from orra_events.bus import Bus
    from orra_events.events import Event
    from orra_events.topology import Topology

__all__ = ["park_registry_message", "registry_problem"]

log = structlog.get_logger("orra.registry")

_PARK_TIMEOUT_S: Final = 5.0


def registry_problem(topology: Topology, event: Event, subject: str) -> str | None:
    """Why a decoded message of a registry stream is malformed (``None``: it is not).

    A registry message is a ``service.registered`` or ``service.heartbeat`` event on its
    own subject: ``<type>.<service>.<version token>``, or ``<type>.<service>`` (the subject
    of every registration and heartbeat before versions had subjects; still accepted, so
    registrations stored then are not lost). A registration must also pass
    :func:`~orra_events.registrations.registration_problem` (its version and examples).
    """
    if not isinstance(event, ServiceRegistered | ServiceHeartbeat):
        return f"expected a service event on {subject}, got {event.TYPE}"
    try:
        expected = topology.subject_for(event)
    except InvalidName as exc:
        return f"{event.TYPE} event with an invalid service name: {exc}"
    except InvalidVersion as exc:
        return f"{event.TYPE} event of {event.service}: {exc}"
    legacy = f"{topology.subject(event.TYPE, event.service)}"
    if subject not in (expected, legacy):
        return f"{event.TYPE} event for {event.service} on subject {subject}"
    if isinstance(event, ServiceRegistered):
        return registration_problem(event)
    return None


async def park_registry_message(bus: Bus, msg: Msg, reason: str) -> bool:
    """Copy a malformed message of the services stream to the dead-letter subject.

    The registry is read by ordered consumers, which do not acknowledge: the original stays
    in the stream (until a newer message on its subject replaces it) and the follower goes
    on. The copy has the headers of every parked message
    (:func:`orra_events.deadletter.dead_letter_headers`, with ``Nats-Msg-Id``
    ``dlq:<stream>:<sequence>``), so two followers parking it at once store it once; one
    that finds it already parked (the last message of its dead-letter subject, e.g. after
    a restart past the duplicate window) does not park it again. Never raises: a follower
    that cannot park logs it and goes on.

    Returns:
        Whether a copy was sent (deduplicated by the broker or not).
    """
    meta = msg.metadata
    stream, seq = meta.stream, str(meta.sequence.stream)
    topology = bus.topology
    dead = topology.dead_letter(msg.subject)
    try:
        try:
            last = await bus.js.get_last_msg(topology.dlq_stream, dead)
        except NotFoundError:
            pass
        else:
            headers = last.headers or {}
            if headers.get(HDR_ORIGINAL_STREAM) == stream and (
                headers.get(HDR_ORIGINAL_SEQUENCE) == seq
            ):
                log.debug("registry message already parked", subject=msg.subject, sequence=seq)
                return False
        copy = dead_letter_headers(msg, reason)
        await bus.js.publish(dead, msg.data, headers=copy, timeout=_PARK_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - the registry must keep following
        log.warning(
            "cannot park a malformed registry message; skipped",
            subject=msg.subject,
            reason=reason,
            error=f"{type(exc).__name__}: {exc}",
        )
        return False
    log.error("message parked on dead-letter subject", subject=msg.subject, reason=reason)
    return True
