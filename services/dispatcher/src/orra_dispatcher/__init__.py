"""Orra dispatcher: runs plans group by group (or eagerly), with timeouts and retries.

The pure rules live in :mod:`orra_dispatcher.domain`; :func:`orra_dispatcher.app.setup`
starts the service on a bus.
"""

from orra_dispatcher.app import setup
from orra_dispatcher.domain import (
    Orchestration,
    Outcome,
    Policy,
    Services,
    TaskState,
    Timer,
    apply,
    merge_results,
    releasable,
    resolve,
)
from orra_dispatcher.errors import (
    DispatcherError,
    InvalidPlan,
    SettingsError,
    StateConflict,
    UnresolvedReference,
)
from orra_dispatcher.settings import DispatcherSettings

__all__ = [
    "DispatcherError",
    "DispatcherSettings",
    "InvalidPlan",
    "Orchestration",
    "Outcome",
    "Policy",
    "Services",
    "SettingsError",
    "StateConflict",
    "TaskState",
    "Timer",
    "UnresolvedReference",
    "apply",
    "merge_results",
    "releasable",
    "resolve",
    "setup",
]
