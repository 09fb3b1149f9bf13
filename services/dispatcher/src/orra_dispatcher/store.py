"""Snapshots of in-flight orchestrations in the JetStream KV bucket ``dispatcher``.

One key per orchestration (the orchestration id), whose value is the msgspec-JSON
:class:`~orra_dispatcher.domain.Orchestration`. Every write is a compare-and-set on the
key's last revision (``0``: the key must never have existed), so two dispatcher replicas
never overwrite each other's progress: the loser gets :class:`StateConflict`, reloads and
applies its input again. An ended orchestration's key is deleted, which leaves a delete
marker (a tombstone): a late event for it, or a ``plan.created`` that arrives after an
abort, finds the tombstone and does nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError

from orra_dispatcher.domain import Orchestration
from orra_dispatcher.errors import StateConflict

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.js.kv import KeyValue

__all__ = ["BUCKET", "Found", "Snapshot", "SnapshotStore", "decode_snapshot", "encode_snapshot"]

BUCKET = "dispatcher"
"""Name of the bucket within the topology (``<NS>_orra_dispatcher`` with a namespace)."""

_WRONG_LAST_SEQUENCE = (10071, 10164)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Orchestration)


class Found(enum.Enum):
    """What a lookup found for an orchestration id."""

    RUNNING = "running"
    """A stored snapshot: the orchestration is in flight."""
    ENDED = "ended"
    """A tombstone: the orchestration ended (or was aborted before its plan)."""
    UNKNOWN = "unknown"
    """Nothing was ever stored for this id."""


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

    Writes are request/reply (``kv.update``), not ``publish_async``: nats-py 2.16 never
    resolves a ``publish_async`` future whose reply is an API error (its reply handler
    raises instead), and a compare-and-set conflict is such an error.

    Args:
        kv: The bucket.
    """

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def load(self, orchestration_id: str) -> Snapshot:
        """The stored snapshot of an orchestration, a tombstone, or nothing."""
        try:
            entry = await self.kv.get(orchestration_id, validate_keys=False)
        except KeyNotFoundError as exc:
            if exc.entry is not None:
                return Snapshot(Found.ENDED, None, exc.entry.revision)
            return UNKNOWN
        assert entry.value is not None
        assert entry.revision is not None
        return Snapshot(Found.RUNNING, _decoder.decode(entry.value), entry.revision)

    async def save(self, state: Orchestration, revision: int) -> int:
        """Write a state if the key is still at ``revision``; return the new revision.

        Raises:
            StateConflict: the key changed since ``revision`` was read.
        """
        data = _encoder.encode(state)
        try:
            return await self.kv.update(state.id, data, last=revision, validate_keys=False)
        except KeyWrongLastSequenceError:
            raise StateConflict(f"snapshot of {state.id} changed since {revision}") from None
        except APIError as exc:
            if exc.err_code in _WRONG_LAST_SEQUENCE:
                raise StateConflict(f"snapshot of {state.id} changed since {revision}") from None
            raise

    async def end(self, orchestration_id: str, revision: int) -> None:
        """Delete an ended orchestration's snapshot, leaving a tombstone.

        With ``revision`` > 0 the delete is a compare-and-set; with 0 it is unconditional
        (an orchestration that ended in its first transition, or an abort before the plan).

        Raises:
            StateConflict: the key changed since ``revision`` was read.
        """
        try:
            await self.kv.delete(orchestration_id, last=revision, validate_keys=False)
        except APIError as exc:
            if exc.err_code in _WRONG_LAST_SEQUENCE:
                raise StateConflict(f"snapshot of {orchestration_id} changed") from None
            raise

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
