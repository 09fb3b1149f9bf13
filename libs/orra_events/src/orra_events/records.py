"""The key-value records the gateway writes and the notifier reads: one definition for both.

Buckets are opened with ``bus.kv(<name>)`` (so their names go through
:meth:`orra_events.Topology.bucket`: ``orra_webhooks`` in production). Values are JSON with
camelCase fields; times are UNIX epoch seconds.

==========================  ===========  =====================================================
bucket                      key          value
==========================  ===========  =====================================================
``webhooks``                project      :class:`ProjectWebhooks`
                                         ``{"webhooks": [{"id", "url", "createdAt"}]}``
``webhook_secrets``         project      :class:`SigningSecretRecord` ``{"secret", "createdAt",
                                         "previousSecret", "rotatedAt", "previousExpiresAt"}``
==========================  ===========  =====================================================

* The gateway adds and removes webhooks (``POST`` / ``DELETE /webhooks``); the notifier
  delivers every result of the project to each URL.
* Whoever needs a project's secret first (the gateway on ``GET /webhooks/secret``, or a
  notifier delivering) creates it with KV ``create()``; a process that loses the race reads
  the winner's record, so all agree on one secret.
* The gateway rotates (``POST /webhooks/secret/rotate``): the old ``secret`` becomes
  ``previousSecret``, which keeps signing until ``previousExpiresAt`` (rotation time +
  :data:`PREVIOUS_SECRET_GRACE_S`), so receivers that still hold it accept deliveries while
  they switch. Only one previous secret is kept: a second rotation ends the first one's grace.

Unknown fields are ignored when decoding, so either side may add optional fields later.
The helpers below are pure except :func:`new_signing_secret` (random bytes).
"""

from __future__ import annotations

import base64
import secrets as _secrets
from typing import Final

import msgspec

from orra_events.signing import PREVIOUS_SECRET_GRACE_S

__all__ = [
    "PREVIOUS_SECRET_GRACE_S",
    "SECRET_PREFIX",
    "WEBHOOKS_BUCKET",
    "WEBHOOK_SECRETS_BUCKET",
    "ProjectWebhooks",
    "SigningSecretRecord",
    "WebhookRecord",
    "decode_project_webhooks",
    "decode_signing_secret",
    "encode_record",
    "first_signing_secret",
    "new_signing_secret",
    "rotate_signing_secret",
    "signing_secrets",
]

WEBHOOKS_BUCKET: Final = "webhooks"
"""Bucket of project-level webhook URLs; key: the project."""

WEBHOOK_SECRETS_BUCKET: Final = "webhook_secrets"
"""Bucket of per-project signing secrets; key: the project."""

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - a prefix, not a secret
"""Every signing secret is this prefix and the base64 of its key bytes (Standard Webhooks)."""


class WebhookRecord(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One project-level webhook: every result of the project is delivered to ``url``.

    Attributes:
        id: Stable id given by the gateway (``wh_`` + 16 hex digits).
        url: Where deliveries go (validated by the gateway when it was added).
        created_at: When it was added.
    """

    id: str
    url: str
    created_at: float


class ProjectWebhooks(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Value of a project's entry in the ``webhooks`` bucket: its webhooks, oldest first."""

    webhooks: tuple[WebhookRecord, ...] = ()

    def urls(self) -> list[str]:
        """The URLs, in order, each once."""
        return list(dict.fromkeys(hook.url for hook in self.webhooks))


class SigningSecretRecord(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Value of a project's entry in the ``webhook_secrets`` bucket.

    Attributes:
        secret: The current secret (``whsec_`` + base64); it signs every delivery.
        created_at: When ``secret`` was made.
        previous_secret: The secret before the last rotation, if any.
        rotated_at: When the last rotation happened (``None`` before the first).
        previous_expires_at: Until when ``previous_secret`` signs too; ``None`` (or a time
            in the past) means it no longer signs.
    """

    secret: str
    created_at: float
    previous_secret: str | None = None
    rotated_at: float | None = None
    previous_expires_at: float | None = None


_WEBHOOKS_DECODER = msgspec.json.Decoder(ProjectWebhooks)
_SECRET_DECODER = msgspec.json.Decoder(SigningSecretRecord)


def new_signing_secret(nbytes: int = 32) -> str:
    """A fresh random secret: ``whsec_`` and the base64 of ``nbytes`` random bytes."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(nbytes)).decode()


def first_signing_secret(secret: str, now: float) -> SigningSecretRecord:
    """The first record of a project (store it with KV ``create()``)."""
    return SigningSecretRecord(secret=secret, created_at=now)


def rotate_signing_secret(
    current: SigningSecretRecord | None,
    new_secret: str,
    now: float,
    *,
    grace_s: float = PREVIOUS_SECRET_GRACE_S,
) -> SigningSecretRecord:
    """The record after replacing ``current``'s secret by ``new_secret`` at ``now``.

    The old secret keeps signing for ``grace_s`` seconds. Rotating a project that has no
    record yet just makes its first secret (with ``rotated_at`` set).
    """
    previous = current.secret if current is not None else None
    return SigningSecretRecord(
        secret=new_secret,
        created_at=now,
        previous_secret=previous,
        rotated_at=now,
        previous_expires_at=now + max(grace_s, 0.0) if previous is not None else None,
    )


def signing_secrets(record: SigningSecretRecord, now: float) -> list[str]:
    """The secrets that sign a delivery at ``now``.

    The current one first, then the previous one while its grace period lasts, so that a
    receiver verifies across a rotation whichever of the two it holds.
    """
    out = [record.secret]
    previous, expires = record.previous_secret, record.previous_expires_at
    if previous and previous != record.secret and expires is not None and expires > now:
        out.append(previous)
    return out


def encode_record(record: ProjectWebhooks | SigningSecretRecord) -> bytes:
    """The stored bytes of a record."""
    return msgspec.json.encode(record)


def decode_project_webhooks(raw: bytes) -> ProjectWebhooks:
    """Decode a ``webhooks`` value.

    Raises:
        msgspec.DecodeError: the value is not a project webhooks record.
    """
    return _WEBHOOKS_DECODER.decode(raw)


def decode_signing_secret(raw: bytes) -> SigningSecretRecord:
    """Decode a ``webhook_secrets`` value.

    Raises:
        msgspec.DecodeError: the value is not a signing secret record.
    """
    return _SECRET_DECODER.decode(raw)
