"""The wording of task failures that the worker reports and the test kit raises.

:mod:`orra_sdk._worker` puts these messages in ``task.failed`` /
``task.compensation_failed``; :mod:`orra_sdk.testing` raises them from ``call`` and
``call_revert``, so a test sees the words an operator will. Called only on those failure
paths.
"""

from __future__ import annotations

__all__ = ["invalid_input", "invalid_output", "no_revert_handler", "unrevertible"]


def invalid_input(service: str, problem: object) -> str:
    """A task's input does not match the service's input schema."""
    return f"invalid input for {service}: {problem}"


def invalid_output(service: str, problem: object) -> str:
    """A handler's result does not match the service's output schema."""
    return f"invalid output from {service}: {problem}"


def no_revert_handler(service: str) -> str:
    """A compensation reached a service without a revert handler."""
    return f"{service} has no revert handler: decorate one with @service.revert"


def unrevertible(service: str, problem: object) -> str:
    """A completed task's recorded input or output no longer matches the schemas."""
    return (
        f"cannot revert: the task's input or output no longer matches {service}'s schema: {problem}"
    )
