"""Orra notifier: signed, durable webhook delivery of orchestration results.

Run it with ``python -m orra_notifier``; embed it with :func:`setup`. Receivers verify
deliveries with :func:`orra_notifier.signing.verify` or any Standard Webhooks library.
"""

from orra_notifier.app import setup
from orra_notifier.errors import (
    InvalidSecret,
    InvalidSettings,
    NotifierError,
    SignatureError,
    UnsafeWebhookUrl,
)
from orra_notifier.settings import NotifierSettings
from orra_notifier.signing import generate_secret, sign, verify

__all__ = [
    "InvalidSecret",
    "InvalidSettings",
    "NotifierError",
    "NotifierSettings",
    "SignatureError",
    "UnsafeWebhookUrl",
    "generate_secret",
    "setup",
    "sign",
    "verify",
]
