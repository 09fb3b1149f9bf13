"""Exceptions of :mod:`orra_planner`; every one derives from :class:`PlannerError`."""

from __future__ import annotations

__all__ = ["PlannerError", "StrategyError"]


class PlannerError(Exception):
    """Root of every error raised by :mod:`orra_planner`."""


class StrategyError(PlannerError):
    """A planning strategy failed for a reason that may pass (network, rate limit).

    The handler redelivers the action a few times, then appends ``plan.failed`` with status
    ``error``.
    """
