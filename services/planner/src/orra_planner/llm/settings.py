"""Settings of the LLM planner, read from ``ORRA_*`` environment variables.

Every OpenAI-compatible endpoint works (OpenAI, Azure, Groq, Ollama, vLLM, LM Studio): there
is no model allow-list. ``ORRA_LLM_BASE_URL`` / ``ORRA_LLM_API_KEY`` win over the standard
``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["LlmSettings", "StructuredMode"]

StructuredMode = Literal["auto", "on", "off"]
"""Whether to ask for structured outputs (``response_format`` with a JSON schema).

``auto`` asks and falls back to text when the endpoint refuses; ``on`` asks and fails when
the endpoint refuses; ``off`` never asks.
"""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _get(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum:g}, not {raw!r}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {raw!r}")
    return value


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValueError(f"{name} must be on or off, not {raw!r}")


@dataclass(frozen=True, kw_only=True)
class LlmSettings:
    """How the planner talks to its language model.

    Attributes:
        base_url: The OpenAI-compatible endpoint (``None``: the openai default).
        api_key: The key sent as a bearer token (``None``: a placeholder, for local
            endpoints such as Ollama that need none).
        model: The chat model.
        timeout_s: Timeout of one HTTP call, in seconds.
        max_attempts: Plans asked of the model per action (the repair loop), at least 1.
        max_retries: HTTP retries of one call on 429, 408, 409, 5xx and connection errors.
        backoff_base_s: First retry delay when the server sends no ``Retry-After``.
        backoff_max_s: Cap of a retry delay, ``Retry-After`` included.
        keepalive_s: How often ``keepalive`` is called while a call or a wait lasts.
        structured: Structured-output mode, see :data:`StructuredMode`.
        temperature: Sampling temperature (``None``: the endpoint's default).
        cache: Whether the plan cache is used.
        cache_similarity: Cosine similarity above which a cached plan of a differently
            worded action is reused (``None``: exact matches only).
        embedding_model: The embeddings model used for semantic cache matching.
        max_examples: Grounding use cases put into the prompt at most.
    """

    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    timeout_s: float = 60.0
    max_attempts: int = 3
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0
    keepalive_s: float = 10.0
    structured: StructuredMode = "auto"
    temperature: float | None = 0.0
    cache: bool = True
    cache_similarity: float | None = None
    embedding_model: str | None = None
    max_examples: int = 3

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_retries < 0:
            raise ValueError("max_retries must not be negative")
        if self.structured not in ("auto", "on", "off"):
            raise ValueError(f"structured must be auto, on or off, not {self.structured!r}")
        if self.cache_similarity is not None and not 0.0 < self.cache_similarity <= 1.0:
            raise ValueError("cache_similarity must be in (0, 1]")

    @property
    def enabled(self) -> bool:
        """Whether an LLM is configured: a model, and an endpoint or a key."""
        return bool(self.model) and bool(self.base_url or self.api_key)

    @property
    def semantic_cache(self) -> bool:
        """Whether cached plans are also matched by embedding similarity."""
        return self.cache and self.cache_similarity is not None and bool(self.embedding_model)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LlmSettings:
        """Read the settings from the environment.

        Args:
            env: The variables to read; ``os.environ`` by default.

        Returns:
            The settings; check :attr:`enabled` before planning with them.

        Raises:
            ValueError: A variable is set to a value that makes no sense.
        """
        env = os.environ if env is None else env
        structured = (_get(env, "ORRA_LLM_STRUCTURED") or "auto").lower()
        if structured in _TRUE:
            structured = "on"
        elif structured in _FALSE:
            structured = "off"
        if structured not in ("auto", "on", "off"):
            raise ValueError(f"ORRA_LLM_STRUCTURED must be auto, on or off, not {structured!r}")
        similarity = _get(env, "ORRA_PLAN_CACHE_SIMILARITY")
        threshold = None
        if similarity is not None:
            threshold = _number(env, "ORRA_PLAN_CACHE_SIMILARITY", 0.0, minimum=0.0)
            if not 0.0 < threshold <= 1.0:
                raise ValueError(f"ORRA_PLAN_CACHE_SIMILARITY must be in (0, 1], not {similarity}")
        temperature = _get(env, "ORRA_LLM_TEMPERATURE")
        return cls(
            base_url=_get(env, "ORRA_LLM_BASE_URL", "OPENAI_BASE_URL"),
            api_key=_get(env, "ORRA_LLM_API_KEY", "OPENAI_API_KEY"),
            model=_get(env, "ORRA_LLM_MODEL"),
            timeout_s=_number(env, "ORRA_LLM_TIMEOUT_S", 60.0, minimum=0.001),
            max_attempts=_integer(env, "ORRA_LLM_MAX_ATTEMPTS", 3, minimum=1),
            max_retries=_integer(env, "ORRA_LLM_MAX_RETRIES", 4, minimum=0),
            keepalive_s=_number(env, "ORRA_LLM_KEEPALIVE_S", 10.0, minimum=0.01),
            structured=structured,  # type: ignore[arg-type]
            temperature=None
            if temperature is not None and temperature.lower() == "default"
            else _number(env, "ORRA_LLM_TEMPERATURE", 0.0, minimum=0.0),
            cache=_flag(env, "ORRA_PLAN_CACHE", default=True),
            cache_similarity=threshold,
            embedding_model=_get(env, "ORRA_LLM_EMBEDDING_MODEL"),
        )
