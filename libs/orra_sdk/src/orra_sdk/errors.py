"""Exceptions of :mod:`orra_sdk`; every one derives from :class:`OrraSdkError`."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AbortOrchestration",
    "ClientClosed",
    "InvalidData",
    "NonRetryableError",
    "OrraSdkError",
    "OutcomeUnknown",
    "RegistrationConflict",
    "ServiceDefinitionError",
]


class OrraSdkError(Exception):
    """Root of every error raised by :mod:`orra_sdk`."""


class ServiceDefinitionError(OrraSdkError, ValueError):
    """A service is declared wrongly (bad name, no handler, non-pydantic schema...)."""


class RegistrationConflict(ServiceDefinitionError):
    """The service's name and version are registered with another definition.

    One name and version has one definition (see :mod:`orra_events.registrations`): the
    registered one stays, this process must not serve the name. The message names the
    conflict and the fix (another name, or a higher ``version``); :func:`orra_sdk.run`
    logs it and exits with status 2 before taking any task.
    """


class InvalidData(OrraSdkError, ValueError):
    """A task's input or a handler's output does not match the service's schema.

    The message names every field at fault (``amount: Input should be a valid number``).
    """


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


class OutcomeUnknown(NonRetryableError):
    """Raise from a handler when the task may or may not have taken effect.

    For instance a remote call that got no answer (the connection dropped mid-call) to a
    system whose operation must not be repeated. The task is reported as not retryable
    with ``outcome_unknown``: the dispatcher does not run it again, fails the
    orchestration and leaves the task for an operator (``orra comp-fail ls``).

    Example::

        except ConnectionLost as exc:
            raise OutcomeUnknown(f"the bank hung up during the transfer: {exc}") from exc
    """


class AbortOrchestration(OrraSdkError):
    """Raise from a handler to abort the whole orchestration, not just fail the task.

    The SDK reports ``task.aborted`` with ``reason`` and ``payload``; the dispatcher
    dispatches nothing more, tells the tasks still running to stop, compensates what
    completed and appends ``orchestration.aborted`` with the same payload (the webhook's
    ``results``).

    Example::

        if order.cancelled_by_customer:
            raise AbortOrchestration("customer cancelled", {"orderId": order.id})

    Args:
        reason: Why, for humans (the webhook's ``error``).
        payload: JSON object to hand back to the caller.
    """

    def __init__(self, reason: str, payload: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.payload = payload
