"""Subjects, streams, consumers and KV buckets: where every event lives in JetStream.

A :class:`Topology` names them all. Production uses the default (empty) namespace, which
gives the subjects of DESIGN.md: ``task.completed.o_8f2c1a``, ``work.PaymentService``. A
non-empty namespace prefixes every subject, stream and bucket, so that tests and several
installations can share one broker without seeing each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orra_events.errors import InvalidName
from orra_events.versions import version_token

if TYPE_CHECKING:
    from nats.js.api import StreamConfig

    from orra_events.events import Event

__all__ = [
    "EVENT_FAMILIES",
    "NAME_PATTERN",
    "Topology",
    "check_name",
]

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
"""What a service name, task id or orchestration id may look like: one subject token."""

EVENT_FAMILIES = ("action", "plan", "task", "orchestration", "webhook")

_VERSIONED_TYPES = frozenset({"service.registered", "service.heartbeat"})
"""First tokens of orchestration event subjects, all stored in the events stream."""


def check_name(kind: str, value: str) -> str:
    """Return ``value`` if it is usable as one subject token.

    Raises:
        InvalidName: naming ``kind`` and the rule, when it is not.
    """
    if not NAME_PATTERN.fullmatch(value):
        raise InvalidName(
            f"{kind} {value!r} is not a valid name: use 1-128 letters, digits, '_' or '-'"
        )
    return value


def _token(kind: str, value: str) -> str:
    """``value`` if it is one subject token or a wildcard (``*``, ``>``)."""
    return value if value in {"*", ">"} else check_name(kind, value)


@dataclass(frozen=True)
class Topology:
    """Names of every subject, stream, consumer and bucket of one Orra installation.

    Attributes:
        namespace: Prefix of every subject and stream name; empty in production.
        replicas: Stream replicas (3 on a JetStream cluster).
        duplicate_window_s: How long JetStream remembers ``Nats-Msg-Id`` values.
    """

    namespace: str = ""
    replicas: int = 1
    duplicate_window_s: float = 600.0
    _prefix: str = field(init=False, repr=False)
    _stream_prefix: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.namespace:
            check_name("namespace", self.namespace)
        object.__setattr__(self, "_prefix", f"{self.namespace}." if self.namespace else "")
        object.__setattr__(
            self, "_stream_prefix", f"{self.namespace.upper()}_" if self.namespace else ""
        )

    # --- subjects ------------------------------------------------------------------------

    def subject(self, event_type: str, key: str) -> str:
        """Subject of an event: ``<event type>.<orchestration id or service name>``.

        ``key`` may be the wildcard ``*`` or ``>``, which makes this a subject filter.

        Raises:
            InvalidName: ``key`` is not one subject token.
        """
        return f"{self._prefix}{event_type}.{_token('subject key', key)}"

    def subject_for(self, event: Event) -> str:
        """Subject on which ``event`` is published.

        The key is the event's ``orchestration_id``, or ``service`` for service events. A
        registration, and a heartbeat that names its version, add the version's token:
        ``service.registered.PaymentService.2`` (see :meth:`service_subject`).

        Raises:
            InvalidName: the key is empty or not one subject token (it contains ``.``, a
                wildcard or a space), which would publish the event where no consumer of
                its type listens.
            InvalidVersion: a service event's version is not a version.
        """
        if hasattr(event, "orchestration_id"):
            kind, key = "orchestration id", event.orchestration_id
        else:
            name = getattr(event, "service", "")
            if event.TYPE in _VERSIONED_TYPES:
                return self.service_subject(event.TYPE, name, getattr(event, "version", None))
            kind, key = "service name", name
        return f"{self._prefix}{event.TYPE}.{check_name(kind, key)}"

    def service_subject(self, event_type: str, service: str, version: str | None) -> str:
        """Subject of a service's registration or heartbeat at ``version``.

        ``service.registered.<service>.<version token>`` (``1.4`` → ``1_4``);
        ``<event type>.<service>`` when ``version`` is ``None`` (the subject of every
        registration and heartbeat before versions had subjects, still read).

        Raises:
            InvalidName: ``service`` is not one subject token.
            InvalidVersion: ``version`` is not a version.
        """
        base = f"{self._prefix}{event_type}.{check_name('service name', service)}"
        return base if version is None else f"{base}.{version_token(version)}"

    def all_of(self, event_type: str) -> str:
        """Subject filter matching one event type across orchestrations: ``task.completed.*``."""
        return f"{self._prefix}{event_type}.*"

    def history_of(self, orchestration_id: str) -> str:
        """Subject filter matching one orchestration's whole history: ``*.*.<id>``."""
        return f"{self._prefix}*.*.{orchestration_id}"

    def work(self, service: str) -> str:
        """Subject on which a service receives its tasks: ``work.<service>``.

        Raises:
            InvalidName: ``service`` is not one subject token (``*`` and ``>`` pass).
        """
        return f"{self._prefix}work.{_token('service name', service)}"

    def dead_letter(self, original_subject: str) -> str:
        """Subject on which a message that could not be processed is parked."""
        return f"{self._prefix}dlq.{original_subject.removeprefix(self._prefix)}"

    def strip(self, subject: str) -> str:
        """Subject without the namespace prefix."""
        return subject.removeprefix(self._prefix)

    @property
    def events_filter(self) -> list[str]:
        """Subject filters of the events stream."""
        return [f"{self._prefix}{family}.>" for family in EVENT_FAMILIES]

    # --- streams -------------------------------------------------------------------------

    @property
    def events_stream(self) -> str:
        """Stream of every orchestration event (the event log)."""
        return f"{self._stream_prefix}ORRA_EVENTS"

    @property
    def services_stream(self) -> str:
        """Stream of service registrations: one per name and version, never replaced."""
        return f"{self._stream_prefix}ORRA_SERVICES"

    @property
    def heartbeats_stream(self) -> str:
        """Stream of service heartbeats (the last one per service and version)."""
        return f"{self._stream_prefix}ORRA_HEARTBEATS"

    def registrations_filter(self) -> str:
        """Subject filter of every service registration: ``service.registered.>``."""
        return f"{self._prefix}service.registered.>"

    def heartbeats_filter(self) -> str:
        """Subject filter of every service heartbeat: ``service.heartbeat.>``."""
        return f"{self._prefix}service.heartbeat.>"

    @property
    def work_stream(self) -> str:
        """Work-queue stream of the tasks sent to services."""
        return f"{self._stream_prefix}ORRA_WORK"

    @property
    def webhooks_stream(self) -> str:
        """Work-queue stream of the notifier's webhook delivery jobs."""
        return f"{self._stream_prefix}ORRA_WEBHOOKS"

    @property
    def dlq_stream(self) -> str:
        """Stream of parked (dead-lettered) messages."""
        return f"{self._stream_prefix}ORRA_DLQ"

    def bucket(self, name: str) -> str:
        """Name of a key-value bucket of this installation."""
        return f"{self._stream_prefix}orra_{name}"

    def consumer(self, name: str) -> str:
        """Name of a durable consumer (consumer names are scoped by their stream)."""
        return check_name("consumer", name)

    def stream_configs(self) -> list[StreamConfig]:
        """Definitions of every stream; the one place that decides their settings."""
        # nats-py is imported here, not at module level: the CLI names subjects without it.
        from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

        dup = self.duplicate_window_s
        return [
            StreamConfig(
                name=self.events_stream,
                description="Orra event log: every orchestration event",
                subjects=self.events_filter,
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
                duplicate_window=dup,
                allow_direct=True,
            ),
            # One registration per name and version, kept for ever: the broker refuses a
            # second message on a registration subject (discard new, per subject), so no
            # publisher can replace a registered definition (orra_events.registrations).
            StreamConfig(
                name=self.services_stream,
                description="Orra service registry: one registration per name and version",
                subjects=[self.registrations_filter()],
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
                max_msgs_per_subject=1,
                discard=DiscardPolicy.NEW,
                discard_new_per_subject=True,
                duplicate_window=dup,
                allow_direct=True,
            ),
            StreamConfig(
                name=self.heartbeats_stream,
                description="Orra service heartbeats: the last one per service and version",
                subjects=[self.heartbeats_filter()],
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
                max_msgs_per_subject=1,
                duplicate_window=dup,
                allow_direct=True,
            ),
            StreamConfig(
                name=self.work_stream,
                description="Orra work queue: tasks for services, one subject per service",
                subjects=[f"{self._prefix}work.>"],
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
                duplicate_window=dup,
            ),
            StreamConfig(
                name=self.webhooks_stream,
                description="Orra notifier: one webhook delivery job per orchestration and URL",
                subjects=[f"{self._prefix}notifier.>"],
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
                duplicate_window=dup,
            ),
            StreamConfig(
                name=self.dlq_stream,
                description="Orra dead letters: messages parked with their reason",
                subjects=[f"{self._prefix}dlq.>"],
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
                max_age=14 * 24 * 3600.0,
                discard=DiscardPolicy.OLD,
                duplicate_window=dup,
            ),
        ]
