"""Exceptions of :mod:`orra_events`; every one derives from :class:`OrraEventsError`."""

from __future__ import annotations

__all__ = [
    "DecodeError",
    "InvalidGrounding",
    "InvalidName",
    "InvalidRegistration",
    "InvalidSetting",
    "InvalidVersion",
    "MalformedEvent",
    "OrraEventsError",
    "SchemaMismatch",
    "UnknownEventType",
    "UnresolvedReference",
    "UnsupportedVersion",
]


class OrraEventsError(Exception):
    """Root of every error raised by :mod:`orra_events`."""


class InvalidName(OrraEventsError, ValueError):
    """A name cannot be used as a subject token."""


class InvalidGrounding(OrraEventsError, ValueError):
    """A grounding document is malformed (see :mod:`orra_events.grounding`).

    Attributes:
        index: Which of the documents given is at fault (0-based), when one is.
    """

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class InvalidVersion(OrraEventsError, ValueError):
    """A service version is not dotted numbers (see :mod:`orra_events.versions`)."""


class InvalidRegistration(OrraEventsError, ValueError):
    """A service registration breaks a rule of the registry.

    See :mod:`orra_events.registrations`.
    """


class InvalidSetting(OrraEventsError, ValueError):
    """An environment variable holds a value that cannot be used (the message names it)."""


class DecodeError(OrraEventsError):
    """Bytes could not be turned into an event; the message says exactly why."""


class MalformedEvent(DecodeError):
    """The bytes are not a JSON object."""


class UnknownEventType(DecodeError):
    """The ``type`` of the event is missing or not in the catalogue."""


class UnsupportedVersion(DecodeError):
    """The event's major schema version is newer than this code understands."""


class SchemaMismatch(DecodeError):
    """The event's fields do not match its schema (missing, extra-typed or ill-typed)."""


class UnresolvedReference(OrraEventsError, LookupError):
    """A plan reference cannot be resolved; the message names it and where its path stops."""
