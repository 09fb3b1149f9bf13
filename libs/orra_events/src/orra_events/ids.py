"""Identifiers: random ids, and the deterministic event ids every process publishes with.

Every publish carries its event id as ``Nats-Msg-Id``; a process that crashes and repeats
its work republishes the same ids, and JetStream stores each once. Each row of the table
"Deterministic event ids" in docs/architecture.md is one function here, and nothing else
builds these ids (the TypeScript SDK's ``sdks/typescript/src/ids.ts`` builds the four an SDK
publishes the same way).

The parts of an id are joined with ``:``. Orchestration ids and service names are subject
tokens (``orra_events.topology.NAME_PATTERN``: no ``:``) and task ids follow the plan
grammar (``orra_events.plan.TASK_ID_PATTERN``: no ``:``), so every id names one input.
Even a task id with a ``:`` (which no valid plan has) gives distinct ids, because the
orchestration id comes before it and only numbers follow it; only the idempotency key of
a compensation (``<orch>:<task>:revert``) relies on the task id having no ``:``
(tests/events/test_ids.py shows both).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Final

__all__ = [
    "RESULT_DELIVERY",
    "action_id",
    "approval_request_id",
    "awaiting_approval_id",
    "compensated_id",
    "compensating_id",
    "compensation_abandoned_id",
    "compensation_id",
    "compensation_resolved_id",
    "compensation_result_id",
    "dead_letter_id",
    "decision_id",
    "dispatch_id",
    "end_id",
    "heartbeat_id",
    "idempotency_key",
    "new_event_id",
    "new_orchestration_id",
    "pause_id",
    "plan_id",
    "progress_id",
    "registration_id",
    "result_id",
    "resume_id",
    "retry_id",
    "revert_key",
    "timeout_id",
    "unknown_outcome_id",
    "url_hash",
    "webhook_job_id",
    "webhook_outcome_id",
    "webhook_retry_id",
]

RESULT_DELIVERY: Final = "result"
"""The kind of an orchestration's first webhook delivery (its result); ids of other kinds
(the notifier's compensation report) name their kind."""


def _token(nbytes: int) -> str:
    return base64.b32encode(secrets.token_bytes(nbytes)).decode().rstrip("=").lower()


def new_orchestration_id() -> str:
    """A fresh, random orchestration id such as ``o_mzxw6ytboi4tqmrs``."""
    return f"o_{_token(10)}"


def new_event_id(prefix: str = "e") -> str:
    """A fresh, random event id, for events that have no natural deterministic id."""
    return f"{prefix}_{_token(10)}"


# --- the orchestration's own events ------------------------------------------------------


def action_id(orchestration_id: str) -> str:
    """``a:<orch>``: ``action.submitted``."""
    return f"a:{orchestration_id}"


def plan_id(orchestration_id: str) -> str:
    """``p:<orch>``: ``plan.created`` or ``plan.failed`` (one plan event per orchestration)."""
    return f"p:{orchestration_id}"


def end_id(orchestration_id: str) -> str:
    """``end:<orch>``: ``orchestration.done``, ``.failed`` or ``.aborted`` (one end each)."""
    return f"end:{orchestration_id}"


def pause_id(orchestration_id: str, n: int) -> str:
    """``pa:<orch>:<n>``: the ``n``-th ``orchestration.paused``."""
    return f"pa:{orchestration_id}:{n}"


def resume_id(orchestration_id: str, n: int) -> str:
    """``re:<orch>:<n>``: the ``orchestration.resumed`` that ends the ``n``-th pause."""
    return f"re:{orchestration_id}:{n}"


def compensating_id(orchestration_id: str) -> str:
    """``cs:<orch>``: ``orchestration.compensating``."""
    return f"cs:{orchestration_id}"


def compensated_id(orchestration_id: str) -> str:
    """``ce:<orch>``: ``orchestration.compensated``."""
    return f"ce:{orchestration_id}"


# --- tasks ------------------------------------------------------------------------------


def idempotency_key(orchestration_id: str, task_id: str) -> str:
    """``<orch>:<task>``: a task's idempotency key, the same for every attempt."""
    return f"{orchestration_id}:{task_id}"


def revert_key(orchestration_id: str, task_id: str) -> str:
    """``<orch>:<task>:revert``: the idempotency key of a task's compensation."""
    return f"{orchestration_id}:{task_id}:revert"


def dispatch_id(orchestration_id: str, task_id: str, attempt: int) -> str:
    """``d:<orch>:<task>:<attempt>``: ``task.dispatched`` and its ``work.<service>`` message."""
    return f"d:{orchestration_id}:{task_id}:{attempt}"


def result_id(orchestration_id: str, task_id: str, attempt: int) -> str:
    """``r:<orch>:<task>:<attempt>``: an attempt's result.

    ``task.completed``, ``task.failed`` or ``task.aborted`` (a service's abort): one result
    per attempt, whichever it is.
    """
    return f"r:{orchestration_id}:{task_id}:{attempt}"


def retry_id(orchestration_id: str, task_id: str, next_attempt: int) -> str:
    """``rt:<orch>:<task>:<next attempt>``: ``task.retrying``."""
    return f"rt:{orchestration_id}:{task_id}:{next_attempt}"


def timeout_id(orchestration_id: str, task_id: str, attempt: int) -> str:
    """``to:<orch>:<task>:<attempt>``: ``task.timed_out``."""
    return f"to:{orchestration_id}:{task_id}:{attempt}"


def progress_id(orchestration_id: str, task_id: str, attempt: int, seq: int) -> str:
    """``pg:<orch>:<task>:<attempt>:<seq>``: the ``seq``-th ``task.progress`` of an attempt."""
    return f"pg:{orchestration_id}:{task_id}:{attempt}:{seq}"


def compensation_id(orchestration_id: str, task_id: str, attempt: int) -> str:
    """``c:<orch>:<task>:<attempt>``: ``task.compensating`` and its ``work.<service>`` message."""
    return f"c:{orchestration_id}:{task_id}:{attempt}"


def compensation_result_id(orchestration_id: str, task_id: str, attempt: int) -> str:
    """``cr:<orch>:<task>:<attempt>``: ``task.compensated`` or ``task.compensation_failed``."""
    return f"cr:{orchestration_id}:{task_id}:{attempt}"


def compensation_abandoned_id(orchestration_id: str, task_id: str) -> str:
    """``cf:<orch>:<task>``: ``task.compensation_abandoned``."""
    return f"cf:{orchestration_id}:{task_id}"


def compensation_resolved_id(orchestration_id: str, task_id: str) -> str:
    """``cres:<orch>:<task>``: ``task.compensation_resolved`` (an operator's settlement)."""
    return f"cres:{orchestration_id}:{task_id}"


def unknown_outcome_id(orchestration_id: str, task_id: str) -> str:
    """``uk:<orch>:<task>``: ``task.compensation_abandoned`` of a task whose outcome is unknown.

    The dispatcher fails such a task (it may have taken effect, and is not run again) and
    asks an operator to settle it; see "Unknown outcomes" in docs/architecture.md.
    """
    return f"uk:{orchestration_id}:{task_id}"


def awaiting_approval_id(orchestration_id: str) -> str:
    """``aw:<orch>``: ``orchestration.awaiting_approval`` of a plan submitted to preview."""
    return f"aw:{orchestration_id}"


def approval_request_id(orchestration_id: str, task_id: str) -> str:
    """``ar:<orch>:<task>``: ``task.approval_requested`` of a gated task."""
    return f"ar:{orchestration_id}:{task_id}"


def decision_id(orchestration_id: str, task_id: str | None = None) -> str:
    """``dec:<orch>`` (a held plan) or ``dec:<orch>:<task>`` (a held task).

    ``orchestration.approved`` and ``orchestration.rejected`` of the same thing share it,
    so within the duplicate window the log keeps only the first decision; past it, the
    dispatcher applies the first one it reads and ignores the rest.
    """
    return f"dec:{orchestration_id}" if task_id is None else f"dec:{orchestration_id}:{task_id}"


# --- webhooks ---------------------------------------------------------------------------


def url_hash(url: str) -> str:
    """A short stable hash of a URL (16 hex digits), usable in subjects, keys and ids."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _delivery(url: str, kind: str) -> str:
    return url_hash(url) if kind == RESULT_DELIVERY else f"{kind}:{url_hash(url)}"


def webhook_outcome_id(orchestration_id: str, url: str, kind: str = RESULT_DELIVERY) -> str:
    """``w:<orch>:<url hash>``: ``webhook.delivered`` or ``webhook.failed`` of a delivery.

    A delivery of another kind than the result names it: ``w:<orch>:<kind>:<url hash>``.
    """
    return f"w:{orchestration_id}:{_delivery(url, kind)}"


def webhook_retry_id(
    orchestration_id: str, url: str, attempt: int, kind: str = RESULT_DELIVERY
) -> str:
    """``wr:<orch>:<url hash>:<attempt>``: ``webhook.retrying`` after a failed attempt.

    A delivery of another kind than the result names it: ``wr:<orch>:<kind>:<url hash>:<n>``.
    """
    return f"wr:{orchestration_id}:{_delivery(url, kind)}:{attempt}"


def webhook_job_id(orchestration_id: str, url: str, kind: str = RESULT_DELIVERY) -> str:
    """``job:<orch>:<url hash>``: the notifier's delivery job (``ORRA_WEBHOOKS``).

    A delivery of another kind than the result: ``job:<kind>:<orch>:<url hash>``.
    """
    prefix = "job" if kind == RESULT_DELIVERY else f"job:{kind}"
    return f"{prefix}:{orchestration_id}:{url_hash(url)}"


# --- services and the dead-letter stream -------------------------------------------------


def registration_id(service: str, definition_hash: str) -> str:
    """``reg:<service>:<definition hash>``: ``service.registered``.

    The hash is ``orra_events.registrations.definition_hash`` of the definition.
    """
    return f"reg:{service}:{definition_hash}"


def heartbeat_id() -> str:
    """A random id (``hb_...``): every ``service.heartbeat`` is a new message."""
    return new_event_id("hb")


def dead_letter_id(stream: str, sequence: int | str) -> str:
    """``dlq:<stream>:<sequence>``: the copy of a parked message, once per original."""
    return f"dlq:{stream}:{sequence}"
