"""One trace per orchestration: W3C trace context carried in the NATS headers of its messages.

Depends on ``opentelemetry-api`` only. A process traces when a real tracer provider is
installed (the services install one from the standard ``OTEL_*`` variables with
:mod:`orra_events.telemetry`; a user's service brings its own ``opentelemetry-sdk``);
otherwise :func:`on` is false and the hot paths skip every span and header (one call).

The context travels in the ``traceparent`` / ``tracestate`` headers of every message an
orchestration causes, and JetStream stores headers with the message: a redelivered
message, or one read again after a restart, continues the same trace. The gateway writes
them on ``action.submitted`` (from the HTTP request, or a new root), the planner on
``plan.created`` (its plan span), the dispatcher keeps the plan's context in the
orchestration's snapshot and writes it (or the context of the span of a task attempt) on
every event and work message, the SDK runs the handler in a span whose parent is the
attempt, the notifier passes the context on to its delivery jobs and each webhook POST.

Spans whose children live in another process, or are made again after a restart (a
parallel group, a task attempt, a compensation), get a span id derived from the trace,
the orchestration and what they stand for (:func:`derived_span_id`), so the dispatcher can
name the parent of a retry, or link the attempts a task waited on, from its snapshot alone.
The span id is applied by the id generator of :mod:`orra_events.telemetry`
(:func:`fixed_span_id` tells it which); under another tracer provider such spans get random
ids and the trace stays connected within one run of the dispatcher.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    ProxyTracerProvider,
    SpanContext,
    SpanKind,
    TraceFlags,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from opentelemetry.context import Context
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.util.types import Attributes

__all__ = [
    "ATTR_ATTEMPT",
    "ATTR_GROUP",
    "ATTR_ORCHESTRATION",
    "ATTR_SERVICE",
    "ATTR_TASK",
    "TRACEPARENT",
    "TRACESTATE",
    "Link",
    "SpanKind",
    "attached",
    "context_of",
    "current_headers",
    "derived_span_id",
    "fixed_span_id",
    "handler_span",
    "headers_of",
    "headers_of_span",
    "link_to",
    "on",
    "parent_context",
    "passed_on",
    "record_span",
    "set_attributes",
    "span",
    "span_context_in",
    "span_context_of",
    "tracer",
]

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
ATTR_ORCHESTRATION: Final = "orra.orchestration.id"
"""Every Orra span carries its orchestration id (searchable in a trace viewer)."""
ATTR_TASK: Final = "orra.task.id"
ATTR_ATTEMPT: Final = "orra.task.attempt"
ATTR_SERVICE: Final = "orra.service"
ATTR_GROUP: Final = "orra.group"

_SCOPE: Final = "orra"
_on = False
_decided = False
_PROVIDER_FROM_ENV: Final = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
_tracer: Tracer | None = None
_global_propagator: TextMapPropagator | None = None
_FIXED_SPAN_ID: ContextVar[int | None] = ContextVar("orra_fixed_span_id", default=None)


def on() -> bool:
    """Whether this process traces: a tracer provider other than the API's default is set.

    Cheap (a global or two, about as much as a function call): the hot paths ask it per
    message. A provider, once set, is never replaced (the API refuses), so the answer is
    kept once a provider is there.
    """
    global _on, _decided  # a cache of a process-wide, set-once fact
    if _decided:
        return _on
    # The API's global provider, read without get_tracer_provider(), which costs
    # microseconds (an environment look-up) while none is set; a provider named by
    # OTEL_PYTHON_TRACER_PROVIDER is loaded by get_tracer_provider() on first use.
    if getattr(trace, "_TRACER_PROVIDER", None) is None and not _PROVIDER_FROM_ENV:
        return False
    provider = trace.get_tracer_provider()
    if isinstance(provider, ProxyTracerProvider):
        return False  # none set yet
    _on, _decided = not isinstance(provider, trace.NoOpTracerProvider), True
    return _on


def tracer() -> Tracer:
    """Orra's tracer (instrumentation scope ``orra``) from the global provider.

    Made once tracing is on (the SDK's ``get_tracer`` costs tens of microseconds a call).
    """
    global _tracer  # noqa: PLW0603 - made once, from the set-once provider
    if _tracer is None:
        if not on():
            return trace.get_tracer(_SCOPE)
        _tracer = trace.get_tracer(_SCOPE)
    return _tracer


def context_of(headers: Mapping[str, str] | None) -> Context | None:
    """The trace context carried by message (or HTTP) headers, ``None`` when there is none."""
    if not headers or TRACEPARENT not in headers:
        return None
    return _propagator().extract(headers)


def headers_of(context: Context | None = None) -> dict[str, str]:
    """The propagation headers (``traceparent``, ``tracestate``...) of ``context``.

    Args:
        context: A context; the current one by default.
    """
    carrier: dict[str, str] = {}
    _propagator().inject(carrier, context=context)
    return carrier


def _propagator() -> TextMapPropagator:
    """The global propagator (``OTEL_PROPAGATORS``), loaded on first use, then kept."""
    global _global_propagator  # noqa: PLW0603 - loaded once
    if _global_propagator is None:
        from opentelemetry import propagate  # reads OTEL_PROPAGATORS: only once tracing is used

        _global_propagator = propagate.get_global_textmap()
    return _global_propagator


def headers_of_span(made: Span) -> dict[str, str]:
    """The propagation headers that make ``made`` the parent of what receives them."""
    return headers_of(trace.set_span_in_context(made))


def span_context_of(headers: Mapping[str, str] | None) -> SpanContext | None:
    """The (remote) span context carried by headers, ``None`` when none is valid."""
    parent = context_of(headers)
    return None if parent is None else span_context_in(parent)


def span_context_in(context: Context) -> SpanContext | None:
    """The context's current span context, ``None`` when it has no valid one."""
    found = trace.get_current_span(context).get_span_context()
    return found if found.is_valid else None


def passed_on(headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """The trace headers of a received message, to send on with what it caused.

    ``None`` when tracing is off or the message carries no trace context.
    """
    if not headers or TRACEPARENT not in headers or not on():
        return None
    return {k: headers[k] for k in (TRACEPARENT, TRACESTATE) if k in headers}


def current_headers() -> dict[str, str]:
    """The propagation headers of the current span, empty when tracing is off."""
    return headers_of() if on() else {}


def derived_span_id(trace_id: int, *parts: str | int) -> int:
    """A span id that every process derives alike from the trace and what the span is.

    Args:
        trace_id: The trace.
        parts: What the span stands for, e.g. ``("group", orchestration_id, 0)``.
    """
    text = ":".join([f"{trace_id:032x}", *map(str, parts)])
    value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
    return value or 1


def fixed_span_id() -> int | None:
    """The span id asked for the span being started (read by the id generator)."""
    return _FIXED_SPAN_ID.get()


def link_to(trace_id: int, span_id: int, *, sampled: bool = True) -> Link:
    """A link to a span of the trace, known by its ids only (a derived span id)."""
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return Link(SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags))


def parent_context(trace_id: int, span_id: int, *, sampled: bool = True) -> Context:
    """A context whose current span is the (remote) span of these ids."""
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    remote = SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(remote))


def record_span(
    name: str,
    *,
    parent: Context | None,
    span_id: int | None = None,
    attributes: Attributes = None,
    links: Sequence[Link] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Span:
    """Start and end a span at once (it marks a moment: a release, a dispatch).

    Args:
        name: The span's name.
        parent: Its parent's context.
        span_id: A derived span id to give it (see the module).
        attributes: Its attributes.
        links: Other spans it follows from.
        kind: Its kind.

    Returns:
        The ended span; its context is the parent of what it caused.
    """
    token = _FIXED_SPAN_ID.set(span_id)
    try:
        made = tracer().start_span(
            name, context=parent, kind=kind, attributes=attributes, links=links
        )
    finally:
        _FIXED_SPAN_ID.reset(token)
    made.end()
    return made


_NO_SPAN: Final[contextlib.nullcontext[None]] = contextlib.nullcontext()


def span(
    name: str,
    *,
    headers: Mapping[str, str] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes = None,
) -> contextlib.AbstractContextManager[Span | None]:
    """A span around a block, current inside it; nothing at all when tracing is off.

    An exception leaving the block is recorded on the span, which then has an error status.

    Args:
        name: The span's name.
        headers: The message's headers: their trace context is the span's parent (the
            current context when they carry none).
        kind: Its kind (``CONSUMER`` for a message's handling).
        attributes: Its attributes.

    Returns:
        A context manager yielding the span, or ``None`` when tracing is off.
    """
    if not on():
        return _NO_SPAN
    return tracer().start_as_current_span(
        name, context=context_of(headers), kind=kind, attributes=attributes
    )


def handler_span(
    headers: Mapping[str, str] | None, what: str, task: Any, service: str
) -> contextlib.AbstractContextManager[Span | None]:
    """The span of a service's handler run by an SDK (``orra <what> <service>``).

    Its parent is the task attempt (or compensation) span of the work message's headers;
    the handler runs in it, so the spans a user's handler makes are its children. Nothing
    is made (nor any name formatted) when tracing is off.

    Args:
        headers: The work message's headers.
        what: ``handle`` (a task) or ``revert`` (a compensation).
        task: The ``task.dispatched`` or ``task.compensating`` event.
        service: The service's name.
    """
    if not on():
        return _NO_SPAN
    return tracer().start_as_current_span(
        f"orra {what} {service}",
        context=context_of(headers),
        kind=SpanKind.CONSUMER,
        attributes={
            ATTR_ORCHESTRATION: task.orchestration_id,
            ATTR_TASK: task.task_id,
            ATTR_ATTEMPT: task.attempt,
            ATTR_SERVICE: service,
        },
    )


@contextlib.contextmanager
def attached(headers: Mapping[str, str] | None) -> Iterator[None]:
    """Make the trace context of ``headers`` current inside the block (no span).

    Nothing changes when tracing is off, when the headers carry no context, or when a span
    is already current (an HTTP server span of the ASGI instrumentation, which has read
    the same headers).
    """
    if not on() or trace.get_current_span().get_span_context().is_valid:
        yield
        return
    parent = context_of(headers)
    if parent is None:
        yield
        return
    from opentelemetry import context as otel_context

    token = otel_context.attach(parent)
    try:
        yield
    finally:
        otel_context.detach(token)


def set_attributes(current: Span | None, **attributes: Any) -> None:
    """Set attributes on a span from :func:`span` (``None``: tracing is off)."""
    if current is not None:
        current.set_attributes({k: v for k, v in attributes.items() if v is not None})
