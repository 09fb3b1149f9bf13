"""Encode events to bytes and decode them back, with specific errors for bad input.

msgspec JSON is the one serialiser of Orra. Decoding is a single pass on the happy path; the
error path probes the envelope again to say which of the :class:`DecodeError` kinds applies.
"""

from __future__ import annotations

from typing import Any, TypeVar, Union

import msgspec

from orra_events.errors import MalformedEvent, SchemaMismatch, UnknownEventType, UnsupportedVersion
from orra_events.events import ALL_EVENTS, Event

__all__ = ["EVENT_TYPES", "decode", "decode_as", "encode"]

E = TypeVar("E", bound=Event)

EVENT_TYPES: dict[str, type[Event]] = {cls.TYPE: cls for cls in ALL_EVENTS}
"""Event class by event type."""

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(
    Union[ALL_EVENTS]  # noqa: UP007
)


class _Envelope(msgspec.Struct):
    type: Any = None
    v: Any = 1


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_JSON_KINDS: dict[type, str] = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def encode(event: Event) -> bytes:
    """Serialise an event to JSON bytes."""
    return _encoder.encode(event)


def _explain(data: bytes | memoryview | str, error: msgspec.ValidationError) -> Exception:
    """Say which kind of :class:`DecodeError` a validation error of ``data`` is."""
    try:
        envelope = _envelope_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        kind = _JSON_KINDS.get(type(msgspec.json.decode(data)), "another JSON value")
        return MalformedEvent(f"an event must be a JSON object, got {kind}")
    if envelope.type is None:
        return UnknownEventType("event has no 'type' field")
    if not isinstance(envelope.type, str):
        return UnknownEventType(f"event 'type' must be a string, got {envelope.type!r}")
    cls = EVENT_TYPES.get(envelope.type)
    if cls is None:
        return UnknownEventType(f"unknown event type {envelope.type!r}")
    if isinstance(envelope.v, int) and envelope.v > cls.VERSION:
        return UnsupportedVersion(
            f"{envelope.type} schema version {envelope.v} is newer than the supported "
            f"version {cls.VERSION}"
        )
    return SchemaMismatch(f"{envelope.type} does not match its schema: {error}")


def decode(data: bytes | memoryview | str) -> Event:
    """Parse JSON bytes into the event they hold.

    Raises:
        MalformedEvent: the bytes are not JSON, or not a JSON object.
        UnknownEventType: the type is missing, not a string or not in the catalogue.
        UnsupportedVersion: the major version is newer than this code knows.
        SchemaMismatch: a field is missing or has the wrong type.
    """
    try:
        event = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise _explain(data, exc) from None
    except msgspec.DecodeError as exc:
        raise MalformedEvent(f"event is not valid JSON: {exc}") from None
    if event.v > event.VERSION:
        raise UnsupportedVersion(
            f"{event.TYPE} schema version {event.v} is newer than the supported "
            f"version {event.VERSION}"
        )
    return event


def decode_as(data: bytes | memoryview | str, cls: type[E]) -> E:
    """Parse JSON bytes that must hold an event of class ``cls``.

    Raises:
        DecodeError: as :func:`decode`, or :class:`UnknownEventType` for another type.
    """
    event = decode(data)
    if not isinstance(event, cls):
        raise UnknownEventType(f"expected a {cls.TYPE} event, got {event.TYPE}")
    return event
