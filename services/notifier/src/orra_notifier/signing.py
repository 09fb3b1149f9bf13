"""Standard Webhooks signatures: pure functions to sign a delivery and to verify one.

The scheme (https://www.standardwebhooks.com): a secret is ``whsec_`` followed by the
base64 of the key bytes. A delivery carries three headers:

* ``webhook-id``: the message id, the same on every retry, so receivers deduplicate;
* ``webhook-timestamp``: UNIX seconds of this attempt;
* ``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256>`` signatures of
  ``"<id>.<timestamp>.<body>"``, one per active secret (two during a rotation).

Receivers verify with the official ``standardwebhooks`` libraries or with :func:`verify`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import TYPE_CHECKING, Final

from orra_events.records import SECRET_PREFIX, new_signing_secret
from orra_notifier.errors import InvalidSecret, SignatureError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "HDR_ID",
    "HDR_SIGNATURE",
    "HDR_TIMESTAMP",
    "SECRET_PREFIX",
    "decode_secret",
    "generate_secret",
    "sign",
    "signature_header",
    "verify",
    "webhook_headers",
]

HDR_ID: Final = "webhook-id"
HDR_TIMESTAMP: Final = "webhook-timestamp"
HDR_SIGNATURE: Final = "webhook-signature"
DEFAULT_TOLERANCE_S: Final = 300.0


def generate_secret(nbytes: int = 32) -> str:
    """A fresh random secret: ``whsec_`` and the base64 of ``nbytes`` random bytes.

    The same as :func:`orra_events.new_signing_secret`, which the gateway uses too.
    """
    return new_signing_secret(nbytes)


def decode_secret(secret: str) -> bytes:
    """The key bytes of a ``whsec_...`` secret.

    Raises:
        InvalidSecret: the part after the prefix is not base64, or is empty.
    """
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("a webhook secret must be 'whsec_' followed by base64") from None
    if not key:
        raise InvalidSecret("a webhook secret must not be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature, ``v1,<base64 HMAC-SHA256 of "<msg_id>.<timestamp>.<body>">``.

    Raises:
        InvalidSecret: ``secret`` cannot be decoded.
    """
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per secret, separated by spaces.

    Raises:
        InvalidSecret: no secret, or one cannot be decoded.
    """
    if not secrets:
        raise InvalidSecret("at least one secret is needed to sign")
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)


def webhook_headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers of one delivery attempt."""
    return {
        HDR_ID: msg_id,
        HDR_TIMESTAMP: str(timestamp),
        HDR_SIGNATURE: signature_header(secrets, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Check a received delivery the way a receiver should.

    Args:
        secret: The receiver's ``whsec_...`` secret.
        headers: The request headers (any letter case).
        body: The raw request body, exactly as received.
        now: The receiver's clock, UNIX seconds.
        tolerance_s: How far the timestamp may be from ``now`` (replay protection).

    Raises:
        SignatureError: a header is missing, the timestamp is too old or too new, or no
            ``v1`` signature matches.
        InvalidSecret: ``secret`` cannot be decoded.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id = lowered[HDR_ID]
        raw_ts = lowered[HDR_TIMESTAMP]
        received = lowered[HDR_SIGNATURE]
    except KeyError as exc:
        raise SignatureError(f"missing header {exc.args[0]}") from None
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise SignatureError("webhook-timestamp is not an integer") from None
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError("webhook-timestamp is outside the tolerance")
    expected = sign(secret, msg_id, timestamp, body).encode()
    for candidate in received.split():
        version, _, _ = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(candidate.encode(), expected):
            return
    raise SignatureError("no signature matches")
