"""What the SDK measures about the tasks it runs, rendered at ``/metrics``.

The metrics go to the process's :data:`orra_events.health.METRICS`, which the health server
(:mod:`orra_events.health`) renders in the Prometheus text format:

* ``orra_sdk_tasks_total{service, outcome}``: tasks (and compensations) this process
  reported, by outcome: ``completed``, ``failed``, ``aborted``, ``replayed`` (a recorded
  result answered again without running the handler), ``compensated`` and
  ``compensation_failed``.
* ``orra_sdk_handler_duration_seconds{service, outcome}``: time spent in the handler (or the
  revert handler) itself, by the same outcomes (replays run no handler).
* ``orra_sdk_tasks_in_flight{service}``: tasks received and not finished yet.

The Bus-level histogram ``orra_task_duration_seconds`` (:mod:`orra_events.metrics`) is fed
by the same results.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

from orra_events import (
    TaskAborted,
    TaskCompensated,
    TaskCompensationFailed,
    TaskCompleted,
    TaskFailed,
)
from orra_events.health import METRICS

__all__ = [
    "HANDLER_SECONDS",
    "IN_FLIGHT",
    "IN_FLIGHT_TASKS",
    "TASKS_TOTAL",
    "InFlight",
    "count_result",
    "observe_handler",
    "outcome_of",
    "prepare",
]

TASKS_TOTAL: Final = "orra_sdk_tasks_total"
"""Counter of reported tasks by ``service`` and ``outcome``."""

HANDLER_SECONDS: Final = "orra_sdk_handler_duration_seconds"
"""Histogram of handler durations by ``service`` and ``outcome``."""

IN_FLIGHT: Final = "orra_sdk_tasks_in_flight"
"""Gauge of the tasks received and not finished, by ``service``."""

_TASKS_HELP = "Tasks reported by this process, by service and outcome"
_HANDLER_HELP = "Duration of the service's handler, by service and outcome"
_IN_FLIGHT_HELP = "Tasks received and not finished yet, by service"

Result = TaskCompleted | TaskFailed | TaskAborted | TaskCompensated | TaskCompensationFailed


def outcome_of(result: Result) -> str:
    """The ``outcome`` label of a reported result."""
    if isinstance(result, TaskCompleted):
        return "replayed" if result.replayed else "completed"
    if isinstance(result, TaskFailed):
        return "failed"
    if isinstance(result, TaskAborted):
        return "aborted"
    if isinstance(result, TaskCompensated):
        return "compensated"
    return "compensation_failed"


def count_result(result: Result) -> None:
    """Count a result once it is stored."""
    METRICS.inc(TASKS_TOTAL, help_=_TASKS_HELP, service=result.service, outcome=outcome_of(result))


def observe_handler(service: str, outcome: str, seconds: float) -> None:
    """Record how long one call of a handler (or revert handler) took."""
    METRICS.observe(HANDLER_SECONDS, seconds, help_=_HANDLER_HELP, service=service, outcome=outcome)


class InFlight:
    """Tasks received and not finished, per service, summed over this process's workers."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def add(self, service: str, delta: int) -> None:
        """Add ``delta`` (1 on receipt, -1 when done) to ``service``'s count."""
        self._counts[service] += delta

    def get(self, service: str) -> int:
        """The current count of ``service``."""
        return self._counts[service]

    def watch(self, service: str) -> None:
        """Publish ``service``'s count as the in-flight gauge (idempotent)."""
        METRICS.gauge(
            IN_FLIGHT, lambda: float(self._counts[service]), help_=_IN_FLIGHT_HELP, service=service
        )


IN_FLIGHT_TASKS = InFlight()
"""The process's in-flight counts."""


def prepare(service: str, *, revertible: bool) -> None:
    """Show a service's metrics from the start: its counters at 0 and its in-flight gauge.

    Prometheus can then tell "nothing happened" from "not scraped", and rates start at 0.
    """
    outcomes = ["completed", "failed", "aborted", "replayed"]
    if revertible:
        outcomes += ["compensated", "compensation_failed"]
    for outcome in outcomes:
        METRICS.inc(TASKS_TOTAL, 0.0, help_=_TASKS_HELP, service=service, outcome=outcome)
    IN_FLIGHT_TASKS.watch(service)
