"""The key-value buckets the notifier reads and writes (formats in docs/architecture.md).

* ``webhooks`` (written by the gateway): key ``<project>`` →
  :class:`orra_events.ProjectWebhooks`; every URL in it gets the project's results.
* ``webhook_secrets`` (the gateway shows and rotates them): key ``<project>`` →
  :class:`orra_events.SigningSecretRecord`. The notifier creates a project's first record
  with KV ``create()``, so two replicas (or the gateway and a replica) racing agree on one
  secret.
* ``notifier_deliveries`` (the notifier's own): key ``<orchestration>.<url hash>`` → the
  :class:`~orra_notifier.domain.DeliveryOutcome` of a finished delivery; key
  ``<orchestration>.<url hash>.log`` → the :class:`~orra_notifier.domain.AttemptLog` of a
  delivery still being retried (written once per failed attempt, never on a first-attempt
  success; it expires with the bucket's TTL). Compensation reports use
  ``<orchestration>.compensation.<url hash>`` likewise.

The first two are shared with the gateway and defined once in :mod:`orra_events.records`.
The notifier keeps a copy of both in memory, kept current by watching them
(:class:`~orra_notifier.follow.BucketFollower`), and reads the bucket itself only while
that copy is not known to be current (before it has loaded, after a reconnection).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

import msgspec
import structlog
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError

from orra_events import check_name
from orra_events.errors import InvalidName
from orra_events.records import (
    WEBHOOK_SECRETS_BUCKET,
    WEBHOOKS_BUCKET,
    decode_project_webhooks,
    decode_signing_secret,
    encode_record,
    first_signing_secret,
    new_signing_secret,
    signing_secrets,
)
from orra_notifier.domain import AttemptLog, DeliveryOutcome
from orra_notifier.errors import InvalidSecret
from orra_notifier.follow import BucketFollower

if TYPE_CHECKING:
    from nats.js.kv import KeyValue

    from orra_events import Bus, WebhookAttempt

__all__ = [
    "DELIVERIES_BUCKET",
    "SECRETS_BUCKET",
    "WEBHOOKS_BUCKET",
    "Stores",
]

SECRETS_BUCKET: Final = WEBHOOK_SECRETS_BUCKET
DELIVERIES_BUCKET: Final = "notifier_deliveries"
_WEEK_S: Final = 7 * 24 * 3600.0

log = structlog.get_logger("orra.notifier")


async def _open(bus: Bus, name: str, *, ttl_s: float | None = None) -> KeyValue:
    """Open a bucket, creating it when missing; tolerate another process creating it first."""
    try:
        return await bus.kv(name, ttl_s=ttl_s)
    except BadRequestError:  # created concurrently with another configuration: use theirs
        return await bus.js.key_value(bus.topology.bucket(name))


class Stores:
    """Access to the notifier's buckets."""

    def __init__(
        self,
        webhooks: KeyValue,
        secrets: KeyValue,
        deliveries: KeyValue,
        *,
        followers: tuple[BucketFollower, BucketFollower] | None = None,
    ) -> None:
        self._webhooks = webhooks
        self._secrets = secrets
        self._deliveries = deliveries
        self._followers = followers
        self._outcome_decoder = msgspec.json.Decoder(DeliveryOutcome)
        self._log_decoder = msgspec.json.Decoder(AttemptLog)

    @classmethod
    async def open(cls, bus: Bus, *, deadline_s: float, follow: bool = False) -> Stores:
        """Open (creating when missing) every bucket.

        Args:
            bus: The connection.
            deadline_s: The retry deadline; delivery outcomes are kept a week longer, so a
                job repeated within its retry window is still recognised as finished.
            follow: Keep a copy of ``webhooks`` and ``webhook_secrets`` in memory, kept
                current by watching them (stop it with :meth:`close`).
        """
        webhooks = await _open(bus, WEBHOOKS_BUCKET)
        secrets = await _open(bus, SECRETS_BUCKET)
        deliveries = await _open(bus, DELIVERIES_BUCKET, ttl_s=deadline_s + _WEEK_S)
        followers = None
        if follow:
            topology = bus.topology
            followers = (
                BucketFollower(bus, topology.bucket(WEBHOOKS_BUCKET)),
                BucketFollower(bus, topology.bucket(SECRETS_BUCKET)),
            )
            await asyncio.gather(*(f.start() for f in followers))
        return cls(webhooks, secrets, deliveries, followers=followers)

    async def close(self) -> None:
        """Stop following the buckets."""
        if self._followers is not None:
            await asyncio.gather(*(f.stop() for f in self._followers))

    async def _read(self, kv: KeyValue, index: int, key: str) -> bytes | None:
        """A key's value from the followed copy when it is current, else from ``kv``."""
        if self._followers is not None:
            known, value = self._followers[index].lookup(key)
            if known:
                return value
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            return None
        return entry.value or b""

    async def project_webhooks(self, project: str) -> list[str]:
        """The webhooks registered for ``project`` (none when the key is missing)."""
        try:
            check_name("project", project)
        except InvalidName:
            log.warning("project name cannot be a KV key; no project webhooks", project=project)
            return []
        value = await self._read(self._webhooks, 0, project)
        if value is None:
            return []
        try:
            return decode_project_webhooks(value).urls()
        except msgspec.DecodeError as exc:  # must not block the action's own webhook
            log.warning("unreadable project webhooks; none used", project=project, error=str(exc))
            return []

    async def signing_secrets(self, project: str, now: float) -> list[str]:
        """The secrets that sign ``project``'s deliveries now; creates the first one.

        Raises:
            InvalidSecret: the stored record is unreadable (fix it through the gateway).
            InvalidName: the project name cannot be a key.
        """
        check_name("project", project)
        value = await self._read(self._secrets, 1, project)
        if value is None:
            record = first_signing_secret(new_signing_secret(), now)
            try:
                await self._secrets.create(project, encode_record(record))
            except KeyWrongLastSequenceError:  # another process created it first: use theirs
                value = (await self._secrets.get(project)).value or b""
            else:
                log.info("created the project's webhook signing secret", project=project)
                return signing_secrets(record, now)
        try:
            return signing_secrets(decode_signing_secret(value), now)
        except msgspec.DecodeError as exc:
            raise InvalidSecret(
                f"the secret record of project {project!r} is invalid: {exc}"
            ) from None

    async def outcome(self, key: str) -> DeliveryOutcome | None:
        """The recorded outcome of a delivery, or ``None`` while it is not finished."""
        try:
            entry = await self._deliveries.get(key)
        except KeyNotFoundError:
            return None
        try:
            return self._outcome_decoder.decode(entry.value or b"")
        except msgspec.DecodeError:
            return None

    async def record(self, key: str, outcome: DeliveryOutcome) -> None:
        """Record how a delivery ended."""
        await self._deliveries.put(key, msgspec.json.encode(outcome))

    async def attempt_log(self, key: str) -> list[WebhookAttempt]:
        """The recorded attempts of a delivery still being retried (empty when none)."""
        try:
            entry = await self._deliveries.get(f"{key}.log")
        except KeyNotFoundError:
            return []
        try:
            return list(self._log_decoder.decode(entry.value or b"").attempts)
        except msgspec.DecodeError as exc:  # history only: never blocks a delivery
            log.warning("unreadable attempt log; starting a new one", key=key, error=str(exc))
            return []

    async def record_attempts(self, key: str, attempts: list[WebhookAttempt]) -> None:
        """Keep the attempts of a delivery that will be retried."""
        await self._deliveries.put(f"{key}.log", msgspec.json.encode(AttemptLog(attempts=attempts)))
