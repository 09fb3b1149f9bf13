"""Snapshots of in-flight orchestrations in the JetStream KV bucket ``dispatcher``.

One key per orchestration (the orchestration id), whose value is the msgspec-JSON
:class:`~orra_dispatcher.domain.Orchestration`. Every write is a compare-and-set on the
key's last revision (``0``: the key must have no message), so two dispatcher replicas
never overwrite each other's progress: the loser gets :class:`StateConflict`, reloads and
applies its input again.

Writes are JetStream publishes to the key's subject (``$KV.<bucket>.<key>``) with
``Nats-Expected-Last-Subject-Sequence`` through the connection's pipelined publisher
(``Bus.publisher``): pipelined with the other writes of the connection, and the broker's
refusal of a stale revision comes back as an answer.

Ended orchestrations. When an orchestration ends its key is purged (compare-and-set)
and the purge marker is given a time to live (``tombstone_ttl_s``, per-message TTL of
nats-server 2.11+): for that long a late event for it, or a redelivered ``plan.created``,
finds the marker (:attr:`Found.ENDED`); after it the key holds nothing, so the bucket
holds only the orchestrations in flight and a dispatcher's start-up scan does not grow
with history. Past the marker's life the dispatcher learns that an orchestration ended
from its terminal event in the log (see :mod:`orra_dispatcher.handlers`). An orchestration
aborted before its plan arrived keeps a permanent delete marker (:meth:`block`), which
refuses the later plan's create-only write. On a broker without message TTLs, or with
``tombstone_ttl_s`` 0, markers are permanent (the behaviour of earlier versions).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import msgspec
import structlog
from nats.js.errors import KeyNotFoundError

from orra_dispatcher.domain import Orchestration
from orra_dispatcher.errors import StateConflict
from orra_events.publishing import PublishError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.js import JetStreamContext
    from nats.js.kv import KeyValue

    from orra_events._fastpub import FastPublisher

__all__ = ["BUCKET", "Found", "Snapshot", "SnapshotStore", "decode_snapshot", "encode_snapshot"]

BUCKET = "dispatcher"
"""Name of the bucket within the topology (``<NS>_orra_dispatcher`` with a namespace)."""

_EXPECTED: Final = "Nats-Expected-Last-Subject-Sequence"

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Orchestration)

log = structlog.get_logger("orra.dispatcher.store")


class Found(enum.Enum):
    """What a lookup found for an orchestration id."""

    RUNNING = "running"
    """A stored snapshot: the orchestration is in flight."""
    ENDED = "ended"
    """A marker: the orchestration ended (or was aborted before its plan)."""
    UNKNOWN = "unknown"
    """Nothing is stored for this id (never started, or ended and its marker expired)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A stored state and the revision to compare against when writing it next.

    Attributes:
        found: Whether the orchestration is running, ended or unknown.
        state: The state when running.
        revision: The key's last revision (0 when unknown: the next write creates it).
    """

    found: Found
    state: Orchestration | None = None
    revision: int = 0


UNKNOWN = Snapshot(Found.UNKNOWN)


class SnapshotStore:
    """Reads and compare-and-set writes of orchestration snapshots.

    Args:
        kv: The bucket (reads, scans and the subject prefix of its keys).
        publisher: Writes go through it.
        tombstone_ttl_s: Life of the marker an ended orchestration leaves (0: forever).
    """

    def __init__(
        self, kv: KeyValue, publisher: FastPublisher, *, tombstone_ttl_s: float = 0.0
    ) -> None:
        self.kv = kv
        self.publisher = publisher
        self.tombstone_ttl_s = tombstone_ttl_s
        self._prefix: str = kv._pre

    def subject(self, orchestration_id: str) -> str:
        """The subject of an orchestration's key."""
        return self._prefix + orchestration_id

    async def enable_marker_ttl(self, js: JetStreamContext) -> bool:
        """Let the bucket's stream hold messages with a TTL; False when the broker cannot.

        Without it, :meth:`end` leaves permanent markers.
        """
        if self.tombstone_ttl_s <= 0:
            return False
        stream = self.kv._stream
        try:
            info = await js.stream_info(stream)
            if not info.config.allow_msg_ttl:
                updated = dataclasses.replace(info.config, allow_msg_ttl=True)
                info = await js.update_stream(updated)
            supported = bool(info.config.allow_msg_ttl)
            error = "the stream does not keep allow_msg_ttl"
        except Exception as exc:  # noqa: BLE001 - older broker: fall back to permanent markers
            supported, error = False, str(exc)
        if not supported:
            log.warning(
                "the broker does not support message TTLs: ended orchestrations keep a "
                "permanent marker (start-up grows with history)",
                error=error,
            )
            self.tombstone_ttl_s = 0.0
        return supported

    async def load(self, orchestration_id: str) -> Snapshot:
        """The stored snapshot of an orchestration, a marker, or nothing."""
        try:
            entry = await self.kv.get(orchestration_id, validate_keys=False)
        except KeyNotFoundError as exc:
            if exc.entry is not None:
                return Snapshot(Found.ENDED, None, exc.entry.revision or 0)
            return UNKNOWN
        assert entry.value is not None
        assert entry.revision is not None
        return Snapshot(Found.RUNNING, _decoder.decode(entry.value), entry.revision)

    async def _write(self, orchestration_id: str, data: bytes, headers: dict[str, str]) -> int:
        # The publisher fails the wait with TimeoutError after its timeout.
        (result,) = await self.publisher.publish(self.subject(orchestration_id), data, headers)
        if isinstance(result, PublishError):
            if result.conflict:
                raise StateConflict(f"snapshot of {orchestration_id} changed")
            raise result
        return result.seq

    async def save(self, state: Orchestration, revision: int) -> int:
        """Write a state if the key is still at ``revision``; return the new revision.

        With ``revision`` 0 the key must hold nothing (not even a marker).

        Raises:
            StateConflict: the key changed since ``revision`` was read.
        """
        return await self._write(state.id, _encoder.encode(state), {_EXPECTED: str(revision)})

    async def end(self, orchestration_id: str, revision: int) -> None:
        """Remove an ended orchestration's snapshot, leaving a marker (see the module doc).

        With ``revision`` > 0 this is a compare-and-set; with 0 it is unconditional (an
        orchestration that ended in its first transition).

        Raises:
            StateConflict: the key changed since ``revision`` was read.
        """
        headers = {"KV-Operation": "DEL"}
        if self.tombstone_ttl_s > 0:
            headers = {
                "KV-Operation": "PURGE",
                "Nats-Rollup": "sub",
                "Nats-TTL": str(max(1, round(self.tombstone_ttl_s))),
            }
        if revision > 0:
            headers[_EXPECTED] = str(revision)
        await self._write(orchestration_id, b"", headers)

    async def block(self, orchestration_id: str) -> None:
        """Leave a permanent marker for an orchestration aborted before its plan arrived.

        The plan's create-only write then fails, and the plan is ignored.
        """
        await self._write(orchestration_id, b"", {"KV-Operation": "DEL"})

    async def running(self) -> AsyncIterator[tuple[Orchestration, int]]:
        """Every stored in-flight state with its revision (one pass over the bucket)."""
        watcher = await self.kv.watchall(ignore_deletes=True)
        try:
            while True:
                entry = await watcher.updates(timeout=30.0)  # type: ignore[no-untyped-call]
                if entry is None:
                    return
                if entry.value and entry.revision is not None:
                    try:
                        state = _decoder.decode(entry.value)
                    except msgspec.DecodeError:
                        continue
                    yield state, entry.revision
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]


def encode_snapshot(state: Orchestration) -> bytes:
    """Serialise a state as stored in the bucket."""
    return _encoder.encode(state)


def decode_snapshot(data: bytes) -> Orchestration:
    """Parse a stored state.

    Raises:
        msgspec.DecodeError: the bytes are not a snapshot of this format.
    """
    return _decoder.decode(data)
