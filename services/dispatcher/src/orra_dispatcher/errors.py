"""Exceptions of the dispatcher; every one derives from :class:`DispatcherError`."""

from __future__ import annotations

__all__ = [
    "DispatcherError",
    "InvalidPlan",
    "SettingsError",
    "StateConflict",
    "UnresolvedReference",
]


class DispatcherError(Exception):
    """Root of every error raised by :mod:`orra_dispatcher`."""


class SettingsError(DispatcherError, ValueError):
    """A dispatcher setting read from the environment is invalid."""


class InvalidPlan(DispatcherError, ValueError):
    """A plan cannot be executed: a structural issue of :func:`orra_events.plan.check_plan`."""


class UnresolvedReference(DispatcherError, LookupError):
    """A reference cannot be resolved: no such task, not completed, or no such path."""


class StateConflict(DispatcherError):
    """The stored snapshot changed since it was read (another replica wrote it)."""
