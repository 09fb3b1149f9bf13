"""Every status an orchestration can have, from the projection (the one definition)."""

from __future__ import annotations

from typing import get_args

from orra_events.projection import OrchestrationStatus

__all__ = ["ORCHESTRATION_STATUSES"]

ORCHESTRATION_STATUSES = frozenset(get_args(OrchestrationStatus))
"""Every status an orchestration can have (what ``orra ps --status`` accepts)."""
