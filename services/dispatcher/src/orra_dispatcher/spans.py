"""The dispatcher's part of an orchestration's trace (see :mod:`orra_events.tracing`).

An orchestration's snapshot keeps the trace context of its ``plan.created`` (the planner's
plan span): :func:`adopt` puts it there, so every later step, a timer's or one after a
restart included, derives its spans and headers from the stored state alone. Each output
gets headers (:func:`headers_for`):

* ``task.dispatched`` (and its work message): the context of the task attempt's span,
  ``orra task <id>``, whose parent is its parallel group's span ``orra group <n>`` (recorded
  with the first dispatch of the group's first task, linked to the attempts of the group
  before it, whose completions released it), whose parent is the plan span. The attempt
  links to the last attempts of the tasks whose outputs it takes. These spans have
  derived ids, so a retry names its group, and the SDK's handler span its attempt, however
  many times the dispatcher restarted in between;
* ``task.compensating``: the context of the span ``orra compensate <id>``;
* every other event: the plan span's context.

Only called when this process traces and the orchestration has a context.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import msgspec

from orra_events import PlanCreated, TaskCompensating, TaskDispatched, tracing
from orra_events.tracing import SpanKind

if TYPE_CHECKING:
    from collections.abc import Iterable

    from nats.aio.msg import Msg

    from orra_dispatcher.domain import Orchestration, Outcome
    from orra_events import Event

__all__ = ["adopt", "adopt_outcome", "headers_for", "traced"]


def traced(state: Orchestration | None) -> bool:
    """Whether the outputs of ``state`` get trace headers (tracing on, a context kept)."""
    return state is not None and state.trace is not None and tracing.on()


def adopt(state: Orchestration | None, event: Event, msg: Msg) -> Orchestration | None:
    """The state made from a ``plan.created``, with the trace context of its message."""
    if state is None or state.trace is not None or not isinstance(event, PlanCreated):
        return state
    headers = msg.headers
    if not headers or tracing.TRACEPARENT not in headers or not tracing.on():
        return state
    kept = {k: headers[k] for k in (tracing.TRACEPARENT, tracing.TRACESTATE) if k in headers}
    return msgspec.structs.replace(state, trace=kept)


def adopt_outcome(outcome: Outcome, event: Event, msg: Msg) -> Outcome:
    """:func:`adopt` applied to a transition's outcome."""
    if not isinstance(event, PlanCreated) or outcome.state is None:
        return outcome
    state = adopt(outcome.state, event, msg)
    return outcome if state is outcome.state else dataclasses.replace(outcome, state=state)


def headers_for(emit: list[Event], state: Orchestration) -> list[dict[str, str]]:
    """The headers of each output of ``state`` (recording the spans they stand for)."""
    assert state.trace is not None
    parent = tracing.context_of(state.trace)
    plan_span = None if parent is None else tracing.span_context_in(parent)
    if plan_span is None:
        return [{} for _ in emit]
    trace_id, sampled = plan_span.trace_id, plan_span.trace_flags.sampled
    orch = state.id
    groups = {t: n for n, group in enumerate(state.plan.parallel_groups) for t in group}
    out: list[dict[str, str]] = []
    for event in emit:
        if isinstance(event, TaskDispatched):
            group = groups.get(event.task_id, 0)
            group_id = tracing.derived_span_id(trace_id, "group", orch, group)
            members = state.plan.parallel_groups[group] if state.plan.parallel_groups else []
            if event.attempt == 1 and members and members[0] == event.task_id:
                before = state.plan.parallel_groups[group - 1] if group else []
                tracing.record_span(
                    f"orra group {group}",
                    parent=parent,
                    span_id=group_id,
                    attributes={
                        tracing.ATTR_ORCHESTRATION: orch,
                        tracing.ATTR_GROUP: group,
                        "orra.group.tasks": list(members),
                    },
                    links=_attempts(state, trace_id, sampled, before),
                )
            links = _attempts(state, trace_id, sampled, state.deps.get(event.task_id, ()))
            made = tracing.record_span(
                f"orra task {event.task_id}",
                parent=tracing.parent_context(trace_id, group_id, sampled=sampled),
                span_id=tracing.derived_span_id(
                    trace_id, "attempt", orch, event.task_id, event.attempt
                ),
                attributes={
                    tracing.ATTR_ORCHESTRATION: orch,
                    tracing.ATTR_TASK: event.task_id,
                    tracing.ATTR_ATTEMPT: event.attempt,
                    tracing.ATTR_SERVICE: event.service,
                    tracing.ATTR_GROUP: group,
                },
                links=links,
                kind=SpanKind.PRODUCER,
            )
            out.append(tracing.headers_of_span(made))
        elif isinstance(event, TaskCompensating):
            made = tracing.record_span(
                f"orra compensate {event.task_id}",
                parent=parent,
                span_id=tracing.derived_span_id(
                    trace_id, "compensation", orch, event.task_id, event.attempt
                ),
                attributes={
                    tracing.ATTR_ORCHESTRATION: orch,
                    tracing.ATTR_TASK: event.task_id,
                    tracing.ATTR_ATTEMPT: event.attempt,
                    tracing.ATTR_SERVICE: event.service,
                },
                kind=SpanKind.PRODUCER,
            )
            out.append(tracing.headers_of_span(made))
        else:
            out.append(state.trace)
    return out


def _attempts(
    state: Orchestration, trace_id: int, sampled: bool, tasks: Iterable[str]
) -> list[tracing.Link]:
    """Links to the last attempts of ``tasks`` (the causes of a release or a dispatch)."""
    return [
        tracing.link_to(
            trace_id,
            tracing.derived_span_id(
                trace_id, "attempt", state.id, task, max(1, state.tasks[task].attempt)
            ),
            sampled=sampled,
        )
        for task in tasks
        if task in state.tasks
    ]
