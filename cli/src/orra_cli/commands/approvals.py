"""``orra approve`` and ``orra reject``: decide on a plan or a task held for approval."""

from __future__ import annotations

from typing import Annotated

import typer

from orra_cli.common import (
    ApiKeyOpt,
    GatewayOpt,
    JsonOpt,
    ReasonOpt,
    client_for,
    emit_json,
    handles_errors,
    out,
)
from orra_cli.errors import UsageError

__all__ = ["approve", "reject"]

_ID = Annotated[str, typer.Argument(metavar="ID", help="Orchestration id.")]
_TASK = Annotated[
    str | None,
    typer.Option(
        "--task",
        "-t",
        help="A task held by its service's approval gate (default: the plan submitted with "
        "--plan-only).",
    ),
]


def _decide(
    decision: str,
    orchestration_id: str,
    task: str | None,
    reason: str | None,
    *,
    as_json: bool,
    gateway_url: str | None,
    api_key: str | None,
) -> None:
    body: dict[str, str] = {}
    if task is not None:
        body["task"] = task
    if reason:
        body["reason"] = reason
    with client_for(gateway_url, api_key) as client:
        payload = client.post_json(
            f"/orchestrations/{orchestration_id}/{decision}",
            body,
            not_found=f"orchestration {orchestration_id} (or its task) not found: list them "
            "with `orra ps`",
        )
    if as_json:
        emit_json(payload if isinstance(payload, dict) else {"orchestrationId": orchestration_id})
        return
    what = f"task {task!r} of orchestration {orchestration_id}" if task else orchestration_id
    status = payload.get("status") if isinstance(payload, dict) else None
    done = "approved" if decision == "approve" else "rejected"
    out().print(f"{what}: {done}" + (f" (status: {status})" if status else ""))


@handles_errors
def approve(  # noqa: PLR0917 - a Typer command's options
    orchestration_id: _ID,
    task: _TASK = None,
    reason: ReasonOpt = None,
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Approve a plan held for preview (it runs) or a held task (it is dispatched).

    Needs an admin key or a key with the approver role.
    """
    _decide(
        "approve",
        orchestration_id,
        task,
        reason,
        as_json=as_json,
        gateway_url=gateway_url,
        api_key=api_key,
    )


@handles_errors
def reject(  # noqa: PLR0917 - a Typer command's options
    orchestration_id: _ID,
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why (required; kept in the event log).")
    ] = None,
    task: _TASK = None,
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Reject a plan held for preview (nothing runs) or a held task (it fails).

    A rejected task fails without a retry and what completed is compensated. Needs an
    admin key or a key with the approver role.
    """
    if reason is None or not reason.strip():
        raise UsageError('say why: orra reject ID --reason "wrong customer"')
    _decide(
        "reject",
        orchestration_id,
        task,
        reason,
        as_json=as_json,
        gateway_url=gateway_url,
        api_key=api_key,
    )
