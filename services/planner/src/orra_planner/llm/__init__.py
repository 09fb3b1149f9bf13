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

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        match_groundings,
        parse_groundings,
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
    "build_messages",
    "cache_key",
    "extract_json",
    "match_groundings",
    "normalise_action",
    "parallel_groups",
    "parse_groundings",
    "response_format",
    "services_fingerprint",
]


# Loaded on first use (PEP 562): the OpenAI client costs a second or more of CPU to
# import, and a planner without ORRA_LLM_* never needs it.
_EXPORTS: dict[str, str] = {
    "ExtractError": "orra_planner.llm.extract",
    "FailureStatus": "orra_planner.llm.planner",
    "Grounding": "orra_planner.llm.grounding",
    "GroundingError": "orra_planner.llm.grounding",
    "GroundingMatch": "orra_planner.llm.grounding",
    "GroundingResult": "orra_planner.llm.grounding",
    "GroundingStore": "orra_planner.llm.grounding",
    "LlmCallError": "orra_planner.llm.client",
    "LlmOutcome": "orra_planner.llm.planner",
    "LlmPlanner": "orra_planner.llm.planner",
    "LlmSettings": "orra_planner.llm.settings",
    "PlanCache": "orra_planner.llm.cache",
    "StructuredMode": "orra_planner.llm.settings",
    "UseCase": "orra_planner.llm.grounding",
    "Validate": "orra_planner.llm.planner",
    "build_messages": "orra_planner.llm.prompt",
    "cache_key": "orra_planner.llm.cache",
    "extract_json": "orra_planner.llm.extract",
    "match_groundings": "orra_planner.llm.grounding",
    "normalise_action": "orra_planner.llm.cache",
    "parallel_groups": "orra_planner.llm.prompt",
    "parse_groundings": "orra_planner.llm.grounding",
    "response_format": "orra_planner.llm.prompt",
    "services_fingerprint": "orra_planner.llm.cache",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
