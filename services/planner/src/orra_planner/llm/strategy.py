"""The LLM planner as a planning strategy of the planner service.

It adapts :class:`~orra_planner.llm.LlmPlanner` to the :class:`~orra_planner.strategy.Planner`
protocol: the request's catalogue becomes the service list of the prompt, the service's
shared validation is the ``validate`` of the repair loop, and the outcome maps onto
:class:`~orra_planner.strategy.Planned` or :class:`~orra_planner.strategy.PlanRejected`. A
transient fault (the endpoint down, rate limits past the retries) raises
:class:`~orra_planner.errors.StrategyError`, so the action is redelivered later instead of
failing for good. The handler keeps the action's message alive while the model thinks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orra_planner.errors import StrategyError
from orra_planner.strategy import Planned, PlanOutcome, PlanRejected, PlanRequest, validator_for

if TYPE_CHECKING:
    from orra_planner.llm.planner import LlmPlanner

__all__ = ["LlmStrategy"]


class LlmStrategy:
    """Plans through an OpenAI-compatible model (with the plan cache and grounding)."""

    name = "llm"

    def __init__(self, planner: LlmPlanner) -> None:
        self.planner = planner

    async def plan(self, request: PlanRequest) -> PlanOutcome:
        """Plan ``request`` through the model, repairing invalid answers.

        Raises:
            StrategyError: a transient failure of the endpoint; retry later.
        """
        outcome = await self.planner.plan(
            action=request.action,
            data=list(request.data),
            services=[spec.to_event() for spec in request.catalog.services.values()],
            validate=validator_for(request),
        )
        if outcome.plan is not None:
            return Planned(
                plan=outcome.plan,
                planner=outcome.planner,
                model=outcome.model,
                attempts=outcome.attempts,
                cache_hit=outcome.cache_hit,
                usage=outcome.usage,
            )
        if outcome.status == "error" and outcome.retryable:
            raise StrategyError("; ".join(outcome.reasons) or "LLM endpoint failed")
        return PlanRejected(
            status=outcome.status or "error",
            reasons=tuple(outcome.reasons),
            planner=outcome.planner,
            attempts=outcome.attempts,
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.planner.aclose()
