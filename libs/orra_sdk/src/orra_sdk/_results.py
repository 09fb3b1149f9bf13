"""The idempotency record: one key per task in a JetStream KV bucket.

A key holds either a *claim* (``running``, with the holder and a lease) or the *result*
(``done``, with the output). Claiming is a create-only write, so when two replicas get the
same idempotency key at once (a redelivery, a dispatcher retry after a timeout) only one
runs the handler; the other waits for the result. A failure deletes the claim, so a retry
runs the handler again; a holder that died leaves a claim whose lease expires, and the next
delivery takes it over.

A lease that ran out is not enough to take a claim over: the holder may be alive and have
been cut off from the broker (an outage longer than the lease), with a finished result it
is still trying to record. The next delivery must also have seen the claim unchanged for
``takeover_after_s`` of its own time (:meth:`ResultStore.claim`); a live holder renews its
claim or records its result within that time once the broker is back, and the delivery
then waits for it (and replays the result) instead of running the handler again.

Writes are JetStream publishes to the bucket's subjects (``$KV.<bucket>.<key>``) through
the connection's pipelined publisher (``Bus.publisher``): a create is a publish with
``Nats-Expected-Last-Subject-Sequence: 0``, a compare-and-set one with the revision read,
a delete one with ``KV-Operation: DEL``. That lets the worker put the result record in
the same batch as its ``task.completed`` event (one round trip for both, see
:mod:`orra_sdk._worker`). The happy path costs two writes: the claim and the result.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec
from nats.js.errors import KeyNotFoundError

from orra_events.publishing import PubAck, PublishError

if TYPE_CHECKING:
    from nats.js.kv import KeyValue

    from orra_events._fastpub import Batch, FastPublisher

__all__ = ["Busy", "Claimed", "Done", "Record", "ResultStore", "kv_key", "record_of"]

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_=-]+(?::[A-Za-z0-9_=-]+)*$")
_EXPECTED: Final = "Nats-Expected-Last-Subject-Sequence"
_SEEN_MEMORY: Final = 10_000


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


def record_of(value: bytes) -> Record | None:
    """The record a bucket value holds, or ``None`` when it holds none (a delete marker)."""
    if not value:
        return None
    try:
        return _decoder.decode(value)
    except msgspec.DecodeError:
        return None


@dataclass(slots=True)
class Claimed:
    """This instance holds the key and must run the handler.

    ``interrupted`` is true when the key was taken over from a claim whose handler was
    running and never ended (its process died or hung): the handler may have taken effect.
    """

    key: str
    revision: int
    interrupted: bool = False


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
    """Claims and results of tasks, in one KV bucket shared by every SDK process.

    Args:
        kv: The bucket (reads, and the subject prefix of its keys).
        holder: This process's instance id, written into its claims.
        publisher: Writes go through it (create, compare-and-set, delete).
        takeover_after_s: How long another instance's claim must be seen unchanged (as
            well as past its lease) before this instance takes it over.
    """

    def __init__(
        self,
        kv: KeyValue,
        *,
        holder: str,
        publisher: FastPublisher,
        takeover_after_s: float = 5.0,
    ) -> None:
        self.kv = kv
        self.holder = holder
        self.publisher = publisher
        self.takeover_after_s = takeover_after_s
        self._prefix: str = kv._pre
        # key -> (revision of another instance's claim, when this instance first saw it)
        self._seen: dict[str, tuple[int, float]] = {}

    def subject(self, key: str) -> str:
        """The subject a key's writes are published to."""
        return self._prefix + key

    def _running(self, attempt: int, lease_s: float) -> bytes:
        return _encoder.encode(
            Record(
                state="running",
                holder=self.holder,
                lease_until=time.time() + lease_s,
                attempt=attempt,
            )
        )

    async def _write(self, key: str, data: bytes, headers: dict[str, str]) -> PubAck:
        """Publish one write and wait for its ack.

        Raises:
            PublishError: the broker refused it (``conflict`` for a stale revision).
            TimeoutError: no ack within the publisher's timeout.
        """
        (result,) = await self.publisher.publish(self.subject(key), data, headers)
        if isinstance(result, PublishError):
            raise result
        return result

    def _unchanged_for(self, key: str, revision: int) -> float:
        """Seconds this instance has seen ``revision`` as the key's latest (0 the first time)."""
        now = time.monotonic()
        seen = self._seen.get(key)
        if seen is None or seen[0] != revision:
            if len(self._seen) >= _SEEN_MEMORY:
                self._seen.clear()  # waiting deliveries record theirs again at the next poll
            self._seen[key] = (revision, now)
            return 0.0
        return now - seen[1]

    async def claim(self, key: str, *, attempt: int, lease_s: float) -> Claimed | Done | Busy:
        """Take the key, or learn that it is done or held by a live instance.

        Another instance's claim is taken over only once its lease has ended *and* this
        instance has seen it unchanged for ``takeover_after_s``: a holder cut off from the
        broker for longer than its lease shows it is alive (renews, or records its result)
        within that time of the broker's return.
        """
        result = await self._claim(key, attempt=attempt, lease_s=lease_s)
        if not isinstance(result, Busy):
            self._seen.pop(key, None)
        return result

    async def _claim(self, key: str, *, attempt: int, lease_s: float) -> Claimed | Done | Busy:
        for _ in range(5):
            interrupted = False
            try:
                ack = await self._write(key, self._running(attempt, lease_s), {_EXPECTED: "0"})
            except PublishError as exc:
                if not exc.conflict:
                    raise
            else:
                return Claimed(key, ack.seq)
            try:
                entry = await self.kv.get(key)
            except KeyNotFoundError as exc:
                if exc.entry is None or exc.entry.revision is None:
                    continue  # gone between our write and the read: create again
                # A released claim (delete marker): take the key over from that revision.
                last = exc.entry.revision
            else:
                assert entry.value is not None
                assert entry.revision is not None
                record = _decoder.decode(entry.value)
                if record.state == "done":
                    return Done(record)
                remaining = record.lease_until - time.time()
                if record.holder != self.holder and (
                    remaining > 0
                    or self._unchanged_for(key, entry.revision) < self.takeover_after_s
                ):
                    # Poll rather than wait for the whole lease: the holder usually finishes
                    # well before it, and then the next delivery replays its result.
                    return Busy(record.holder, min(max(remaining, 0.1), 0.5))
                # The holder's lease ran out and it showed no sign of life meanwhile (it
                # died or hung), or the claim is this instance's own: take it over.
                last = entry.revision
                interrupted = True
            try:
                ack = await self._write(
                    key, self._running(attempt, lease_s), {_EXPECTED: str(last)}
                )
            except PublishError as exc:
                if not exc.conflict:
                    raise
                continue
            return Claimed(key, ack.seq, interrupted=interrupted)
        return Busy("unknown", 1.0)

    async def renew(self, claim: Claimed, *, attempt: int, lease_s: float) -> bool:
        """Extend the lease of a claim; False when another instance took it over.

        A conflict may also be this instance's own earlier write, stored although its
        acknowledgement was lost (a broker restart): the claim is then read back and, if it
        is still this instance's, renewed from the revision found. A key already done needs
        no lease (True).
        """
        for _ in range(2):
            try:
                ack = await self._write(
                    claim.key, self._running(attempt, lease_s), {_EXPECTED: str(claim.revision)}
                )
            except PublishError as exc:
                if not exc.conflict:
                    raise
            else:
                claim.revision = ack.seq
                return True
            try:
                entry = await self.kv.get(claim.key)
            except KeyNotFoundError:
                return False
            assert entry.value is not None
            assert entry.revision is not None
            record = _decoder.decode(entry.value)
            if record.state == "done":
                return True
            if record.holder != self.holder:
                return False
            claim.revision = entry.revision
        return False

    def add_complete(
        self,
        batch: Batch,
        claim: Claimed,
        *,
        output: dict[str, Any],
        attempt: int,
        started_at: float,
        duration_ms: float,
    ) -> None:
        """Queue the record of a successful output in ``batch``; later deliveries replay it.

        Unconditional: the handler did run, so its result is the truth even if a lease
        expired meanwhile and another instance took the claim over.
        """
        record = Record(
            state="done",
            holder=self.holder,
            attempt=attempt,
            output=output,
            started_at=started_at,
            duration_ms=duration_ms,
        )
        batch.add(self.subject(claim.key), _encoder.encode(record))

    def add_release(self, batch: Batch, claim: Claimed) -> None:
        """Queue the deletion of a claim after a failure (a retry then runs the handler).

        Compare-and-set: a claim taken over by another instance is no longer ours to
        delete, and that refusal (a conflict) is expected; see :func:`released`.
        """
        batch.add(
            self.subject(claim.key),
            b"",
            {"KV-Operation": "DEL", _EXPECTED: str(claim.revision)},
        )

    async def complete(
        self,
        claim: Claimed,
        *,
        output: dict[str, Any],
        attempt: int,
        started_at: float,
        duration_ms: float,
    ) -> None:
        """Record the successful output now (see :meth:`add_complete`)."""
        batch = self.publisher.batch()
        self.add_complete(
            batch,
            claim,
            output=output,
            attempt=attempt,
            started_at=started_at,
            duration_ms=duration_ms,
        )
        (result,) = await batch.send()
        if isinstance(result, PublishError):
            raise result

    async def release(self, claim: Claimed) -> None:
        """Drop the claim now (see :meth:`add_release`)."""
        batch = self.publisher.batch()
        self.add_release(batch, claim)
        (result,) = await batch.send()
        released(result)


def released(result: PubAck | PublishError) -> None:
    """Check the result of a queued release: a conflict (taken over) is fine.

    Raises:
        PublishError: the broker refused the delete for another reason.
    """
    if isinstance(result, PublishError) and not result.conflict:
        raise result
