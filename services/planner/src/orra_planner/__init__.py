"""Orra planner service: turns submitted actions into validated parallel plans.

The pieces a strategy (offline or LLM) needs::

    from orra_planner import PlanRequest, Planned, PlanRejected, validate_plan, parse_candidate
"""

from orra_events.plan import parallel_groups
from orra_planner.errors import PlannerError, StrategyError
from orra_planner.offline import OfflinePlanner
from orra_planner.registry import Registry, RegistryFollower, ServiceCatalog, ServiceSpec
from orra_planner.strategy import (
    Planned,
    Planner,
    PlanOutcome,
    PlanRejected,
    PlanRequest,
    finalize,
)
from orra_planner.validation import (
    IssueCode,
    ValidationIssue,
    ValidationResult,
    parse_candidate,
    validate_plan,
)

__all__ = [
    "IssueCode",
    "OfflinePlanner",
    "PlanOutcome",
    "PlanRejected",
    "PlanRequest",
    "Planned",
    "Planner",
    "PlannerError",
    "Registry",
    "RegistryFollower",
    "ServiceCatalog",
    "ServiceSpec",
    "StrategyError",
    "ValidationIssue",
    "ValidationResult",
    "finalize",
    "parallel_groups",
    "parse_candidate",
    "validate_plan",
]
