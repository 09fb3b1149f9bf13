"""Calls to an OpenAI-compatible endpoint: retries, backoff, keepalive, structured fallback.

The ``openai`` client's own retries are off (``max_retries=0``): this module retries 408,
409, 429, 5xx and connection errors itself, with exponential backoff that honours
``Retry-After`` / ``retry-after-ms``, and calls the caller's ``keepalive`` while it waits and
while a long call runs (the planner uses it to send in-progress acks, so JetStream does not
redeliver the action while the model thinks).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

import openai

from orra_events import tracing
from orra_planner.errors import PlannerError

if TYPE_CHECKING:
    from orra_planner.llm.settings import LlmSettings

__all__ = [
    "ChatClient",
    "ChatResult",
    "Keepalive",
    "LlmCallError",
    "Usage",
    "retry_after_s",
]

Keepalive = Callable[[], Awaitable[None]]
"""Called periodically while the planner waits, so the caller can keep its message alive."""

_RETRYABLE_STATUS: Final = frozenset({408, 409, 429})
_PLACEHOLDER_KEY: Final = "orra-no-key"

T = TypeVar("T")


def _capture_content() -> bool:
    """Whether spans may hold prompts and answers (the GenAI instrumentations' setting)."""
    flag = os.environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "")
    return flag.strip().lower() == "true"


class LlmCallError(PlannerError):
    """A call to the model failed for good.

    Attributes:
        retryable: Whether the failure is transient (rate limit, server error, network), so
            planning the action again later may succeed.
        status_code: The HTTP status of the last response, if any.
    """

    def __init__(self, message: str, *, retryable: bool, status_code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code


@dataclass
class Usage:
    """Token usage, summed over calls."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def add(self, other: Any) -> None:
        """Add an ``openai`` usage object (or anything with the three attributes)."""
        if other is None:
            return
        prompt = int(getattr(other, "prompt_tokens", 0) or 0)
        completion = int(getattr(other, "completion_tokens", 0) or 0)
        total = int(getattr(other, "total_tokens", 0) or 0) or prompt + completion
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.total_tokens += total

    def as_dict(self) -> dict[str, int]:
        """The usage as ``plan.created`` records it."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass
class ChatResult:
    """One completed chat call.

    Attributes:
        content: The text of the answer.
        structured: Whether the answer was constrained by a JSON schema.
        usage: Tokens of this call (retries of it included).
        refusal: The model's refusal text, when it refused through the API.
        finish_reason: Why the model stopped (``stop``, ``length``...), when it said.
        response_model: The model that answered, when the endpoint said.
    """

    content: str
    structured: bool
    usage: Usage = field(default_factory=Usage)
    refusal: str | None = None
    finish_reason: str | None = None
    response_model: str | None = None


def retry_after_s(headers: Any) -> float | None:
    """Read ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date) from headers."""
    if headers is None:
        return None
    with contextlib.suppress(TypeError, ValueError):
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    with contextlib.suppress(TypeError, ValueError, IndexError):
        when = email.utils.parsedate_to_datetime(raw)
        return max(0.0, when.timestamp() - time.time())
    return None


def _rejects_response_format(exc: openai.APIStatusError) -> bool:
    if exc.status_code not in (400, 422):
        return False
    text = f"{exc.message} {exc.body!r}".lower()
    return any(k in text for k in ("response_format", "json_schema", "structured", "schema"))


class ChatClient:
    """An ``openai.AsyncOpenAI`` client with Orra's retry and keepalive policy."""

    def __init__(self, settings: LlmSettings, *, client: openai.AsyncOpenAI | None = None) -> None:
        """Create the client.

        Args:
            settings: Endpoint, model, timeouts and retry policy.
            client: An existing client to use instead of creating one (tests).
        """
        self.settings = settings
        self._client = client or openai.AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key or _PLACEHOLDER_KEY,
            timeout=settings.timeout_s,
            max_retries=0,
        )
        self._structured_supported: bool | None = (
            None if settings.structured == "auto" else (settings.structured == "on")
        )

    @property
    def structured(self) -> bool:
        """Whether the next call asks for structured output."""
        return self._structured_supported is not False

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    async def _keepalive_while(
        self, make: Callable[[], Awaitable[T]], keepalive: Keepalive | None
    ) -> T:
        task = asyncio.ensure_future(make())
        if keepalive is None:
            return await task
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.settings.keepalive_s)
                if done:
                    return task.result()
                await keepalive()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def _sleep(self, delay_s: float, keepalive: Keepalive | None) -> None:
        deadline = time.monotonic() + delay_s
        while True:
            if keepalive is not None:
                await keepalive()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, self.settings.keepalive_s))

    def _delay(self, attempt: int, exc: Exception) -> float:
        hinted = None
        if isinstance(exc, openai.APIStatusError):
            hinted = retry_after_s(exc.response.headers)
        if hinted is None:
            base = self.settings.backoff_base_s * (2**attempt)
            hinted = base * (0.5 + random.random() / 2)
        return min(hinted, self.settings.backoff_max_s)

    async def _with_retries(
        self, make: Callable[[], Awaitable[T]], keepalive: Keepalive | None
    ) -> T:
        attempt = 0
        while True:
            try:
                return await self._keepalive_while(make, keepalive)
            except openai.APIStatusError as exc:
                status = exc.status_code
                retryable = status in _RETRYABLE_STATUS or status >= 500
                if not retryable or attempt >= self.settings.max_retries:
                    raise LlmCallError(
                        f"the model endpoint answered HTTP {status}: {exc.message}",
                        retryable=retryable,
                        status_code=status,
                    ) from exc
                delay = self._delay(attempt, exc)
            except openai.APIConnectionError as exc:
                if attempt >= self.settings.max_retries:
                    kind = "timed out" if isinstance(exc, openai.APITimeoutError) else "failed"
                    raise LlmCallError(
                        f"the call to the model endpoint {kind}: {exc}", retryable=True
                    ) from exc
                delay = self._delay(attempt, exc)
            attempt += 1
            await self._sleep(delay, keepalive)

    async def chat(
        self,
        messages: list[dict[str, str]],
        *,
        response_format: dict[str, Any] | None,
        keepalive: Keepalive | None = None,
    ) -> ChatResult:
        """Ask the model (see :meth:`_chat`), in a span of the GenAI semantic conventions.

        The span (``chat <model>``, kind client) records the provider, the model, input and
        output tokens and the finish reason; the messages only when
        ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is true.
        """
        model = self.settings.model
        with tracing.span(
            f"chat {model}",
            kind=tracing.SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.system": "openai",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model or "",
            },
        ) as span:
            if span is not None and _capture_content():
                span.set_attribute("gen_ai.input.messages", json.dumps(messages))
            result = await self._chat(
                messages, response_format=response_format, keepalive=keepalive
            )
            if span is not None:
                span.set_attributes(
                    {
                        "gen_ai.usage.input_tokens": result.usage.prompt_tokens,
                        "gen_ai.usage.output_tokens": result.usage.completion_tokens,
                        "gen_ai.response.finish_reasons": [result.finish_reason or "unknown"],
                    }
                )
                if result.response_model:
                    span.set_attribute("gen_ai.response.model", result.response_model)
                if _capture_content():
                    span.set_attribute("gen_ai.output.messages", result.content)
            return result

    async def _chat(
        self,
        messages: list[dict[str, str]],
        *,
        response_format: dict[str, Any] | None,
        keepalive: Keepalive | None = None,
    ) -> ChatResult:
        """Ask the model; fall back to text when the endpoint refuses structured output.

        Args:
            messages: The conversation.
            response_format: The structured-output format, used while :attr:`structured`.
            keepalive: Called while waiting.

        Returns:
            The answer.

        Raises:
            LlmCallError: The call failed for good (retries exhausted, or not retryable).
        """
        assert self.settings.model is not None
        model = self.settings.model
        usage = Usage()
        use_schema = response_format is not None and self.structured

        def make() -> Awaitable[Any]:
            kwargs: dict[str, Any] = {"model": model, "messages": messages}
            if self.settings.temperature is not None:
                kwargs["temperature"] = self.settings.temperature
            if use_schema:
                kwargs["response_format"] = response_format
            return self._client.chat.completions.create(**kwargs)

        try:
            completion = await self._with_retries(make, keepalive)
        except LlmCallError as exc:
            cause = exc.__cause__
            if (
                use_schema
                and self.settings.structured == "auto"
                and isinstance(cause, openai.APIStatusError)
                and _rejects_response_format(cause)
            ):
                self._structured_supported = False
                use_schema = False
                completion = await self._with_retries(make, keepalive)
            else:
                raise
        if use_schema:
            self._structured_supported = True
        usage.add(getattr(completion, "usage", None))
        choices = getattr(completion, "choices", None) or []
        if not choices:
            return ChatResult(content="", structured=use_schema, usage=usage)
        message = choices[0].message
        return ChatResult(
            content=message.content or "",
            structured=use_schema,
            usage=usage,
            refusal=getattr(message, "refusal", None),
            finish_reason=getattr(choices[0], "finish_reason", None),
            response_model=getattr(completion, "model", None),
        )

    async def embed(self, text: str, *, keepalive: Keepalive | None = None) -> list[float]:
        """Return the embedding of ``text`` with the configured embeddings model.

        Raises:
            LlmCallError: The call failed for good.
        """
        assert self.settings.embedding_model is not None
        model = self.settings.embedding_model

        def make() -> Awaitable[Any]:
            return self._client.embeddings.create(model=model, input=text, encoding_format="float")

        result = await self._with_retries(make, keepalive)
        return [float(x) for x in result.data[0].embedding]
