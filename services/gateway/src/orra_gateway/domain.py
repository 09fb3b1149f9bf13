"""The gateway's pure rules: what a request must satisfy and how results are shaped.

No I/O here (the use cases that read and append are :mod:`orra_gateway.service`; the HTTP
handlers are :mod:`orra_gateway.handlers`): checks of a submitted action and of an
``Idempotency-Key``, the fingerprint that tells a repeated request from a different one,
and the bodies built from the read model.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Final

import msgspec

from orra_gateway.errors import BadRequest, FieldError, InvalidInput, NotFound
from orra_gateway.schemas import ApiKeyItem, PlannedTask, SubmitResponse
from orra_gateway.webhook_urls import check_webhook_url

if TYPE_CHECKING:
    from orra_events.projection import OrchestrationView
    from orra_gateway.schemas import SubmitRequest
    from orra_gateway.stores import ApiKeyRecord

__all__ = [
    "MAX_IDEMPOTENCY_KEY",
    "check_idempotency_key",
    "check_submission",
    "decision_problem",
    "key_item",
    "request_fingerprint",
    "submit_response",
]

MAX_IDEMPOTENCY_KEY: Final = 255
"""Longest ``Idempotency-Key`` accepted (characters)."""

_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")


def check_submission(request: SubmitRequest, *, allow_private_webhooks: bool) -> None:
    """Refuse an action whose values cannot be accepted.

    Raises:
        InvalidInput: a blank action, a blank or repeated data field, or a webhook URL that
            is not an acceptable delivery target; every field at fault is named.
    """
    errors: list[FieldError] = []
    if not request.action.content.strip():
        errors.append(FieldError("action.content", "must not be blank"))
    seen: set[str] = set()
    for index, item in enumerate(request.data):
        name = item.field.strip()
        if not name:
            errors.append(FieldError(f"data[{index}].field", "must not be blank"))
        elif name in seen:
            errors.append(FieldError(f"data[{index}].field", f"duplicate field {name!r}"))
        seen.add(name)
    if errors:
        raise InvalidInput("the action cannot be accepted", errors)
    if request.webhook is not None:
        check_webhook_url(request.webhook, allow_private=allow_private_webhooks)


def check_idempotency_key(key: str) -> None:
    """Refuse an ``Idempotency-Key`` that cannot be stored as sent.

    Raises:
        InvalidInput: it is empty or longer than :data:`MAX_IDEMPOTENCY_KEY` (422).
        BadRequest: it holds characters other than visible ASCII (400).
    """
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidInput(
            "invalid Idempotency-Key",
            [FieldError("Idempotency-Key", f"use 1-{MAX_IDEMPOTENCY_KEY} characters")],
        )
    if not _VISIBLE_ASCII.fullmatch(key):
        # Header bytes arrive as Latin-1: a UTF-8 key would be stored garbled.
        raise BadRequest(
            "invalid Idempotency-Key",
            [
                FieldError(
                    "Idempotency-Key",
                    "use visible ASCII characters only (letters, digits, punctuation; "
                    "no spaces), e.g. a UUID",
                )
            ],
        )


def request_fingerprint(request: SubmitRequest) -> str:
    """What tells a repeated request (same body) from another under one idempotency key."""
    return hashlib.sha256(msgspec.json.encode(request)).hexdigest()


def submit_response(orchestration_id: str, view: OrchestrationView | None) -> SubmitResponse:
    """The answer to ``POST /orchestrations``: the plan, or ``planning`` while there is none."""
    if view is None:
        return SubmitResponse(
            id=orchestration_id,
            orchestration_id=orchestration_id,
            status="planning",
            action="",
            tasks=[],
            parallel_groups=[],
            created_at=0.0,
        )
    return SubmitResponse(
        id=view.id,
        orchestration_id=view.id,
        status=view.status,
        action=view.action,
        tasks=[
            PlannedTask(id=t.id, service=t.service, input=t.input, serves=t.serves)
            for t in view.tasks
        ],
        parallel_groups=view.parallel_groups,
        created_at=view.created_at,
        uncovered=list(view.uncovered),
        parts=list(view.parts),
        approval=view.approval,
    )


def decision_problem(view: OrchestrationView, task_id: str | None, now: float) -> str | None:
    """Why an approval or rejection of ``view`` (or of its task ``task_id``) cannot be taken.

    Returns:
        ``None`` when it waits for a decision; else the reason (a 409).

    Raises:
        NotFound: ``task_id`` is not a task of the orchestration.
    """
    oid = view.id
    if task_id is None:
        approval = view.approval
        if approval is None:
            held = [t.id for t in view.tasks if t.status == "awaiting_approval"]
            hint = f"; tasks waiting for approval: {', '.join(held)} (name one)" if held else ""
            return (
                f"orchestration {oid} was not submitted to preview (execute: false), so its "
                f"plan does not wait for approval{hint}"
            )
        task_part = ""
    else:
        task = view.task(task_id)
        if task is None:
            raise NotFound(f"orchestration {oid} has no task {task_id!r}")
        approval = task.approval
        if approval is None:
            return f"task {task_id!r} of orchestration {oid} does not wait for approval"
        task_part = f"task {task_id!r} of "
    if approval.status != "awaiting":
        return (
            f"{task_part}orchestration {oid} was already {approval.status} by "
            f"{approval.decided_by} (an approval is decided once)"
        )
    if view.terminal:
        return f"orchestration {oid} already ended ({view.status}: {view.error or 'no reason'})"
    if view.status == "compensating":
        return f"orchestration {oid} already stopped: it is being compensated"
    if approval.expires_at is not None and now >= approval.expires_at:
        return f"the approval of {task_part}orchestration {oid} expired (it is being dropped)"
    return None


def key_item(record: ApiKeyRecord) -> ApiKeyItem:
    """How an API key is shown (never the key itself)."""
    return ApiKeyItem(
        id=record.id,
        prefix=record.prefix,
        project=record.project,
        name=record.name,
        created_at=record.created_at,
        role=record.granted,
        admin=record.is_admin,
    )
