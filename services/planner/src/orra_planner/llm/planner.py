"""The LLM planner: grounding, plan cache, model call, repair loop.

:class:`LlmPlanner` knows nothing of the planner service's handlers or validation module:
the caller passes the registered services and a ``validate`` function, and receives an
:class:`LlmOutcome` that maps one to one onto ``plan.created`` or ``plan.failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import structlog

from orra_planner.llm.cache import CacheKey, PlanCache, cache_key, fill_template
from orra_planner.llm.client import ChatClient, LlmCallError, Usage
from orra_planner.llm.extract import ExtractError, extract_json
from orra_planner.llm.grounding import service_examples_grounding
from orra_planner.llm.prompt import (
    AnswerError,
    NotActionable,
    build_messages,
    parse_answer,
    repair_message,
    response_format,
)

if TYPE_CHECKING:
    import openai

    from orra_events import DataField, Plan, ServiceRegistered
    from orra_planner.llm.cache import CachedPlan
    from orra_planner.llm.grounding import GroundingMatch, GroundingStore
    from orra_planner.llm.settings import LlmSettings

__all__ = ["FailureStatus", "LlmOutcome", "LlmPlanner", "Validate"]

log = structlog.get_logger("orra.planner.llm")

Validate = Callable[["Plan"], list[str]]
"""The caller's plan validation: the list of errors, empty when the plan is valid."""

FailureStatus = Literal["invalid", "not_actionable", "error"]
"""Why planning failed, as ``plan.failed.status`` records it."""


@dataclass(frozen=True, kw_only=True)
class LlmOutcome:
    """What planning one action gave.

    Exactly one of ``plan`` (success) and ``status`` (failure) is set.

    Attributes:
        plan: The validated plan.
        status: Why planning failed: ``invalid`` (no valid plan after every attempt),
            ``not_actionable`` (the model or strict grounding refused), ``error`` (the
            endpoint failed).
        reasons: Human-readable reasons of the failure (``plan.failed.reasons``).
        planner: ``"llm"`` or ``"cache"``.
        model: The model that made the plan.
        attempts: Plans asked of the model (0 for a cache hit).
        usage: Tokens used: ``prompt_tokens``, ``completion_tokens``, ``total_tokens``.
        latency_ms: Wall time of :meth:`LlmPlanner.plan`.
        cache_hit: Whether the plan came from the cache.
        attempt_errors: The errors of each rejected attempt, in order.
        retryable: For ``error``: the failure is transient, so the caller may retry the
            action later (for example by redelivering its message) instead of failing it.
    """

    plan: Plan | None = None
    status: FailureStatus | None = None
    reasons: list[str] = field(default_factory=list)
    planner: Literal["llm", "cache"] = "llm"
    model: str | None = None
    attempts: int = 0
    usage: dict[str, int] = field(default_factory=lambda: Usage().as_dict())
    latency_ms: float = 0.0
    cache_hit: bool = False
    attempt_errors: list[list[str]] = field(default_factory=list)
    retryable: bool = False

    @property
    def ok(self) -> bool:
        """Whether a valid plan was produced."""
        return self.plan is not None


def _data_signature(data: Sequence[DataField]) -> str:
    return json.dumps(sorted([d.field, type(d.value).__name__, d.value] for d in data), default=str)


@dataclass
class _Flight:
    future: asyncio.Future[LlmOutcome | None]
    data: str


class LlmPlanner:
    """Plans actions with an OpenAI-compatible model.

    Example::

        planner = LlmPlanner(LlmSettings.from_env(), cache=await PlanCache.open(bus),
                             grounding=await GroundingStore.open(bus))
        outcome = await planner.plan(action=..., data=..., services=..., validate=...)
    """

    def __init__(
        self,
        settings: LlmSettings,
        *,
        cache: PlanCache | None = None,
        grounding: GroundingStore | None = None,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        """Create the planner.

        Args:
            settings: Endpoint, model and policies; must be :attr:`~LlmSettings.enabled`.
            cache: Where plans are cached (used when ``settings.cache`` is on).
            grounding: Where domain groundings are read from.
            client: An ``openai.AsyncOpenAI`` to use instead of creating one.

        Raises:
            ValueError: No model is configured.
        """
        if not settings.enabled:
            raise ValueError("the LLM planner needs ORRA_LLM_MODEL and an endpoint or a key")
        self.settings = settings
        self.cache = cache if settings.cache else None
        self.grounding = grounding
        self._chat = ChatClient(settings, client=client)
        self._flights: dict[str, _Flight] = {}

    async def aclose(self) -> None:
        """Close the HTTP connections to the endpoint."""
        await self._chat.aclose()

    async def __aenter__(self) -> LlmPlanner:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- the entry point -----------------------------------------------------------------

    async def plan(
        self,
        *,
        action: str,
        data: list[DataField],
        services: list[ServiceRegistered],
        validate: Validate,
        keepalive: Callable[[], Awaitable[None]] | None = None,
    ) -> LlmOutcome:
        """Plan one action.

        Args:
            action: The action text.
            data: The action's data fields.
            services: The registered services the plan may use.
            validate: Returns the plan's validation errors (empty: valid). Every plan,
                cached ones included, passes it before it is returned.
            keepalive: Called every ``keepalive_s`` while waiting on the model, and between
                retries; use it to send in-progress acks.

        Returns:
            The outcome; it never raises for model, network or cache failures.
        """
        started = time.monotonic()
        outcome = await self._plan(action, data, services, validate, keepalive)
        latency = round((time.monotonic() - started) * 1000.0, 3)
        log.info(
            "llm planning finished",
            status=outcome.status or "planned",
            planner=outcome.planner,
            attempts=outcome.attempts,
            cache_hit=outcome.cache_hit,
            latency_ms=latency,
        )
        return replace(outcome, latency_ms=latency)

    async def _plan(
        self,
        action: str,
        data: list[DataField],
        services: list[ServiceRegistered],
        validate: Validate,
        keepalive: Callable[[], Awaitable[None]] | None,
    ) -> LlmOutcome:
        field_names = [d.field for d in data]
        examples: list[GroundingMatch] = []
        if self.grounding is not None:
            try:
                result = await self.grounding.match(
                    action,
                    field_names,
                    limit=self.settings.max_examples,
                    extra=service_examples_grounding(services),
                )
            except Exception:
                log.exception("reading groundings failed; planning without them")
            else:
                if result.not_actionable:
                    names = ", ".join(repr(n) for n in result.strict_violations)
                    return LlmOutcome(
                        status="not_actionable",
                        reasons=[f"the action matches no use case of the strict grounding {names}"],
                        model=self.settings.model,
                    )
                examples = result.matches
        if self.cache is None:
            return await self._ask(
                action=action,
                data=data,
                services=services,
                validate=validate,
                keepalive=keepalive,
                examples=examples,
            )

        key = cache_key(action, field_names, services)
        hit = await self._from_cache(key, data, validate)
        if hit is not None:
            return hit
        signature = _data_signature(data)
        flight = self._flights.get(key.key)
        if flight is not None:
            leader = await self._wait(flight.future, keepalive)
            hit = await self._from_cache(key, data, validate)
            if hit is not None:
                return hit
            if leader is not None and not leader.ok and flight.data == signature:
                return leader
            return await self._miss(
                key=key,
                action=action,
                data=data,
                services=services,
                validate=validate,
                keepalive=keepalive,
                examples=examples,
            )
        future: asyncio.Future[LlmOutcome | None] = asyncio.get_running_loop().create_future()
        self._flights[key.key] = _Flight(future, signature)
        result_outcome: LlmOutcome | None = None
        try:
            result_outcome = await self._miss(
                key=key,
                action=action,
                data=data,
                services=services,
                validate=validate,
                keepalive=keepalive,
                examples=examples,
            )
            return result_outcome
        finally:
            self._flights.pop(key.key, None)
            if not future.done():
                future.set_result(result_outcome)

    async def _wait(
        self,
        future: asyncio.Future[LlmOutcome | None],
        keepalive: Callable[[], Awaitable[None]] | None,
    ) -> LlmOutcome | None:
        while True:
            done, _ = await asyncio.wait({future}, timeout=self.settings.keepalive_s)
            if done:
                return future.result()
            if keepalive is not None:
                await keepalive()

    async def _miss(
        self,
        *,
        key: CacheKey,
        action: str,
        data: list[DataField],
        services: list[ServiceRegistered],
        validate: Validate,
        keepalive: Callable[[], Awaitable[None]] | None,
        examples: list[GroundingMatch],
    ) -> LlmOutcome:
        embedding: list[float] | None = None
        if self.settings.semantic_cache and self.cache is not None:
            assert self.settings.cache_similarity is not None
            try:
                embedding = await self._chat.embed(key.action, keepalive=keepalive)
                similar = await self.cache.find_similar(
                    key, embedding, self.settings.cache_similarity
                )
            except Exception:
                log.exception("semantic plan cache lookup failed")
                similar = None
            if similar is not None:
                hit = self._filled(similar, data, validate)
                if hit is not None:
                    return hit
        outcome = await self._ask(
            action=action,
            data=data,
            services=services,
            validate=validate,
            keepalive=keepalive,
            examples=examples,
        )
        if outcome.plan is not None and self.cache is not None:
            try:
                await self.cache.put(
                    key, outcome.plan, data, model=outcome.model, embedding=embedding
                )
            except Exception:
                log.exception("storing the plan in the cache failed")
        return outcome

    # --- the cache -----------------------------------------------------------------------

    async def _from_cache(
        self, key: CacheKey, data: list[DataField], validate: Validate
    ) -> LlmOutcome | None:
        assert self.cache is not None
        try:
            entry = await self.cache.get(key)
        except Exception:
            log.exception("plan cache lookup failed")
            return None
        if entry is None:
            return None
        hit = self._filled(entry, data, validate)
        if hit is None:
            with contextlib.suppress(Exception):
                await self.cache.invalidate(key)
        return hit

    def _filled(
        self, entry: CachedPlan, data: list[DataField], validate: Validate
    ) -> LlmOutcome | None:
        plan = fill_template(entry, data)
        if plan is None:
            return None
        errors = validate(plan)
        if errors:
            log.info("cached plan no longer valid", errors=errors)
            return None
        return LlmOutcome(plan=plan, planner="cache", model=entry.model, cache_hit=True)

    # --- the model -----------------------------------------------------------------------

    async def _ask(
        self,
        *,
        action: str,
        data: list[DataField],
        services: list[ServiceRegistered],
        validate: Validate,
        keepalive: Callable[[], Awaitable[None]] | None,
        examples: list[GroundingMatch],
    ) -> LlmOutcome:
        model = self.settings.model
        fmt = response_format(services) if self.settings.structured != "off" else None
        messages = build_messages(
            action=action,
            data=data,
            services=services,
            examples=examples,
            structured=fmt is not None and self._chat.structured,
        )
        usage = Usage()
        attempt_errors: list[list[str]] = []
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                result = await self._chat.chat(messages, response_format=fmt, keepalive=keepalive)
            except LlmCallError as exc:
                return LlmOutcome(
                    status="error",
                    reasons=[str(exc)],
                    model=model,
                    attempts=attempt,
                    usage=usage.as_dict(),
                    attempt_errors=[*attempt_errors, [str(exc)]],
                    retryable=exc.retryable,
                )
            usage.add(result.usage)
            if result.refusal and not result.content:
                return LlmOutcome(
                    status="not_actionable",
                    reasons=[f"the model refused: {result.refusal}"],
                    model=model,
                    attempts=attempt,
                    usage=usage.as_dict(),
                    attempt_errors=attempt_errors,
                )
            try:
                answer = parse_answer(extract_json(result.content), services)
            except (ExtractError, AnswerError) as exc:
                errors = [str(exc)]
            else:
                if isinstance(answer, NotActionable):
                    return LlmOutcome(
                        status="not_actionable",
                        reasons=[answer.reason],
                        model=model,
                        attempts=attempt,
                        usage=usage.as_dict(),
                        attempt_errors=attempt_errors,
                    )
                errors = list(validate(answer))
                if not errors:
                    return LlmOutcome(
                        plan=answer,
                        model=model,
                        attempts=attempt,
                        usage=usage.as_dict(),
                        attempt_errors=attempt_errors,
                    )
            log.info("model plan rejected", attempt=attempt, errors=errors)
            attempt_errors.append(errors)
            messages = [
                *messages,
                {"role": "assistant", "content": result.content},
                repair_message(errors),
            ]
        return LlmOutcome(
            status="invalid",
            reasons=[
                f"attempt {i}: {error}"
                for i, errors in enumerate(attempt_errors, 1)
                for error in errors
            ],
            model=model,
            attempts=self.settings.max_attempts,
            usage=usage.as_dict(),
            attempt_errors=attempt_errors,
        )
