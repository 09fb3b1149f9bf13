"""Settings of the planner, read once from ``ORRA_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from orra_events.liveness import LivenessSettings
from orra_events.runtime import env_float, env_int

__all__ = ["PlannerSettings"]


@dataclass(frozen=True)
class PlannerSettings:
    """What the planner process reads from its environment.

    Attributes:
        llm_base_url: ``ORRA_LLM_BASE_URL`` (fallback ``OPENAI_BASE_URL``).
        llm_api_key: ``ORRA_LLM_API_KEY`` (fallback ``OPENAI_API_KEY``).
        llm_model: ``ORRA_LLM_MODEL``; unset together with the URL means the offline planner.
        ack_wait_s: ``ORRA_PLANNER_ACK_WAIT_S``; how long an action may be planned before
            it is redelivered (a long plan keeps it alive with in-progress acks).
        max_attempts: ``ORRA_PLANNER_MAX_ATTEMPTS``; deliveries of an action whose planning
            raised before ``plan.failed`` (status ``error``) is appended.
        retry_delay_s: ``ORRA_PLANNER_RETRY_DELAY_S``; delay before such a redelivery.
        registry_load_timeout_s: ``ORRA_PLANNER_REGISTRY_LOAD_TIMEOUT_S``; how long the
            start waits for the registry backlog.
        registry_sync_timeout_s: ``ORRA_PLANNER_REGISTRY_SYNC_TIMEOUT_S``; how long one
            action waits for registrations that are in the stream but not yet seen.
        concurrency: ``ORRA_PLANNER_CONCURRENCY``; actions one planner process plans at
            once (default 64; 1 plans them one at a time). Each still gets exactly one plan
            event; more mainly helps when planning waits on an LLM or on the broker.
        liveness: ``ORRA_SERVICE_DOWN_AFTER_S`` (and ``ORRA_HEALTH_FACTOR``): a service
            with no live instance for that long is left out of new plans.
    """

    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str | None = None
    ack_wait_s: float = 60.0
    max_attempts: int = 3
    retry_delay_s: float = 1.0
    registry_load_timeout_s: float = 10.0
    registry_sync_timeout_s: float = 2.0
    concurrency: int = 64
    liveness: LivenessSettings = field(default_factory=LivenessSettings)

    @property
    def llm_configured(self) -> bool:
        """Whether an OpenAI-compatible endpoint is configured for planning."""
        return bool(self.llm_model and (self.llm_base_url or self.llm_api_key))

    @classmethod
    def from_env(cls) -> PlannerSettings:
        """Read the settings from the environment."""
        env = os.environ
        return cls(
            llm_base_url=env.get("ORRA_LLM_BASE_URL") or env.get("OPENAI_BASE_URL") or None,
            llm_api_key=env.get("ORRA_LLM_API_KEY") or env.get("OPENAI_API_KEY") or None,
            llm_model=env.get("ORRA_LLM_MODEL") or None,
            ack_wait_s=env_float("ORRA_PLANNER_ACK_WAIT_S", 60.0),
            max_attempts=env_int("ORRA_PLANNER_MAX_ATTEMPTS", 3),
            retry_delay_s=env_float("ORRA_PLANNER_RETRY_DELAY_S", 1.0),
            registry_load_timeout_s=env_float("ORRA_PLANNER_REGISTRY_LOAD_TIMEOUT_S", 10.0),
            registry_sync_timeout_s=env_float("ORRA_PLANNER_REGISTRY_SYNC_TIMEOUT_S", 2.0),
            concurrency=max(1, env_int("ORRA_PLANNER_CONCURRENCY", 64)),
            liveness=LivenessSettings.from_env(),
        )
