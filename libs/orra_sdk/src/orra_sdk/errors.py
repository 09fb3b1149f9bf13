"""Exceptions of :mod:`orra_sdk`; every one derives from :class:`OrraSdkError`."""

from __future__ import annotations

__all__ = [
    "ClientClosed",
    "NonRetryableError",
    "OrraSdkError",
    "ServiceDefinitionError",
]


class OrraSdkError(Exception):
    """Root of every error raised by :mod:`orra_sdk`."""


class ServiceDefinitionError(OrraSdkError, ValueError):
    """A service is declared wrongly (bad name, no handler, non-pydantic schema...)."""


class ClientClosed(OrraSdkError):
    """The client is not connected: it was never started, or it was closed."""


class NonRetryableError(OrraSdkError):
    """Raise from a handler when trying the task again cannot help.

    The task is reported as ``task.failed`` with ``retryable=False``, so the dispatcher
    fails the orchestration at once instead of retrying. Any other exception raised by a
    handler is reported as retryable.

    Example::

        if card.expired:
            raise NonRetryableError("card expired")
    """
