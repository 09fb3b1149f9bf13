"""The idempotency record: one key per task in a JetStream KV bucket.

A key holds either a *claim* (``running``, with the holder and a lease) or the *result*
(``done``, with the output). Claiming is a KV ``create``, so when two replicas get the same
idempotency key at once (a redelivery, a dispatcher retry after a timeout) only one runs the
handler; the other waits for the result. A failure deletes the claim, so a retry runs the
handler again; a holder that died leaves a claim whose lease expires, and the next delivery
takes it over. The happy path costs two KV writes: the create and the result.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

if TYPE_CHECKING:
    from nats.js.kv import KeyValue

__all__ = ["Busy", "Claimed", "Done", "Record", "ResultStore", "kv_key"]

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_=-]+(?::[A-Za-z0-9_=-]+)*$")


class Record(msgspec.Struct, kw_only=True):
    """What the bucket holds for one idempotency key."""

    state: Literal["running", "done"]
    holder: str = ""
    lease_until: float = 0.0
    attempt: int = 0
    output: dict[str, Any] | None = None
    started_at: float = 0.0
    duration_ms: float = 0.0


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Record)


@dataclass(slots=True)
class Claimed:
    """This instance holds the key and must run the handler."""

    key: str
    revision: int


@dataclass(frozen=True, slots=True)
class Done:
    """The handler already succeeded for this key; replay its result."""

    record: Record


@dataclass(frozen=True, slots=True)
class Busy:
    """Another live instance is running the handler for this key."""

    holder: str
    retry_after_s: float


def kv_key(service: str, idempotency_key: str) -> str:
    """The bucket key of a service's idempotency key (``:`` is not allowed in KV keys)."""
    if _SAFE_KEY.fullmatch(idempotency_key):
        return f"{service}.{idempotency_key.replace(':', '.')}"
    return f"{service}.h.{hashlib.sha256(idempotency_key.encode()).hexdigest()}"


class ResultStore:
    """Claims and results of tasks, in one KV bucket shared by every SDK process."""

    def __init__(self, kv: KeyValue, *, holder: str) -> None:
        self.kv = kv
        self.holder = holder

    def _running(self, attempt: int, lease_s: float) -> bytes:
        return _encoder.encode(
            Record(
                state="running",
                holder=self.holder,
                lease_until=time.time() + lease_s,
                attempt=attempt,
            )
        )

    async def claim(self, key: str, *, attempt: int, lease_s: float) -> Claimed | Done | Busy:
        """Take the key, or learn that it is done or held by a live instance."""
        for _ in range(5):
            try:
                return Claimed(key, await self.kv.create(key, self._running(attempt, lease_s)))
            except KeyWrongLastSequenceError:
                pass
            try:
                entry = await self.kv.get(key)
            except KeyNotFoundError:
                continue  # released between our create and get: try to create again
            assert entry.value is not None
            record = _decoder.decode(entry.value)
            if record.state == "done":
                return Done(record)
            remaining = record.lease_until - time.time()
            if remaining > 0 and record.holder != self.holder:
                # Poll rather than wait for the whole lease: the holder usually finishes
                # well before it, and then the next delivery replays its result.
                return Busy(record.holder, min(max(remaining, 0.1), 0.5))
            # The holder's lease ran out (it died or hung): take the claim over.
            try:
                revision = await self.kv.update(
                    key, self._running(attempt, lease_s), last=entry.revision
                )
            except KeyWrongLastSequenceError:
                continue
            return Claimed(key, revision)
        return Busy("unknown", 1.0)

    async def renew(self, claim: Claimed, *, attempt: int, lease_s: float) -> bool:
        """Extend the lease of a claim; False when another instance took it over."""
        try:
            claim.revision = await self.kv.update(
                claim.key, self._running(attempt, lease_s), last=claim.revision
            )
        except KeyWrongLastSequenceError:
            return False
        return True

    async def complete(
        self,
        claim: Claimed,
        *,
        output: dict[str, Any],
        attempt: int,
        started_at: float,
        duration_ms: float,
    ) -> None:
        """Record the successful output; every later delivery replays it."""
        record = Record(
            state="done",
            holder=self.holder,
            attempt=attempt,
            output=output,
            started_at=started_at,
            duration_ms=duration_ms,
        )
        # Unconditional: the handler did run, so its result is the truth even if a lease
        # expired meanwhile and another instance took the claim over.
        await self.kv.put(claim.key, _encoder.encode(record))

    async def release(self, claim: Claimed) -> None:
        """Drop the claim after a failure, so that a retry runs the handler."""
        # A claim taken over by another instance is no longer ours to delete.
        with contextlib.suppress(KeyWrongLastSequenceError):
            await self.kv.delete(claim.key, last=claim.revision)
