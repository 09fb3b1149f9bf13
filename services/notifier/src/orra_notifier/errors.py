"""Exceptions of the notifier; every one derives from :class:`NotifierError`."""

from __future__ import annotations

__all__ = [
    "InvalidSecret",
    "InvalidSettings",
    "NotifierError",
    "SignatureError",
    "UnsafeWebhookUrl",
]


class NotifierError(Exception):
    """Root of every error raised by :mod:`orra_notifier`."""


class InvalidSettings(NotifierError, ValueError):
    """An ``ORRA_NOTIFIER_*`` setting has a value the notifier cannot work with."""


class InvalidSecret(NotifierError, ValueError):
    """A signing secret is not ``whsec_`` followed by base64."""


class SignatureError(NotifierError):
    """A webhook's signature headers do not verify (used by :func:`~.signing.verify`)."""


class UnsafeWebhookUrl(NotifierError):
    """A webhook URL is refused: bad scheme, no host, or a non-public address."""
