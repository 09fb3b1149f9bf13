"""LLM planning through any OpenAI-compatible endpoint.

A self-contained subpackage: the planner service passes the action, its data, the
registered services and its own ``validate`` function, and maps the returned
:class:`LlmOutcome` onto ``plan.created`` or ``plan.failed``::

    settings = LlmSettings.from_env()
    if settings.enabled:
        planner = LlmPlanner(settings, cache=await PlanCache.open(bus),
                             grounding=await GroundingStore.open(bus))
        outcome = await planner.plan(action=event.action, data=event.data,
                                     services=services, validate=validate,
                                     keepalive=msg.in_progress)
"""

from orra_planner.llm.cache import PlanCache, cache_key, normalise_action, services_fingerprint
from orra_planner.llm.client import LlmCallError
from orra_planner.llm.extract import ExtractError, extract_json
from orra_planner.llm.grounding import (
    Grounding,
    GroundingError,
    GroundingMatch,
    GroundingResult,
    GroundingStore,
    UseCase,
    apply_grounding,
    list_groundings,
    match_groundings,
    parse_groundings,
    remove_grounding,
)
from orra_planner.llm.planner import FailureStatus, LlmOutcome, LlmPlanner, Validate
from orra_planner.llm.prompt import build_messages, parallel_groups, response_format
from orra_planner.llm.settings import LlmSettings, StructuredMode

__all__ = [
    "ExtractError",
    "FailureStatus",
    "Grounding",
    "GroundingError",
    "GroundingMatch",
    "GroundingResult",
    "GroundingStore",
    "LlmCallError",
    "LlmOutcome",
    "LlmPlanner",
    "LlmSettings",
    "PlanCache",
    "StructuredMode",
    "UseCase",
    "Validate",
    "apply_grounding",
    "build_messages",
    "cache_key",
    "extract_json",
    "list_groundings",
    "match_groundings",
    "normalise_action",
    "parallel_groups",
    "parse_groundings",
    "remove_grounding",
    "response_format",
    "services_fingerprint",
]
