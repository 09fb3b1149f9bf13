"""``orra comp-fail``: compensations that finally failed, and settling them."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from orra_cli.common import (
    ApiKeyOpt,
    GatewayOpt,
    JsonOpt,
    client_for,
    emit_json,
    handles_errors,
    items_of,
    out,
    print_rows,
)
from orra_cli.errors import UsageError
from orra_cli.render import comp_fail_rows

__all__ = [
    "FailureId",
    "NoteOpt",
    "comp_fail_app",
    "comp_fail_ignore",
    "comp_fail_ls",
    "comp_fail_resolve",
]

comp_fail_app = typer.Typer(
    help="Compensations that finally failed: settle them once handled.", no_args_is_help=True
)

# --- compensation failures -----------------------------------------------------------------


@comp_fail_app.command("ls")
@handles_errors
def comp_fail_ls(
    show_all: Annotated[
        bool, typer.Option("--all", "-a", help="Also list resolved and ignored ones.")
    ] = False,
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """List compensations that finally failed (open ones unless --all)."""
    with client_for(gateway_url, api_key) as client:
        path = "/compensation-failures" + ("?status=all" if show_all else "")
        items = items_of(client.get_json(path))
    if as_json:
        emit_json({"items": items})
        return
    print_rows(
        ["ID", "SERVICE", "STATUS", "ATTEMPTS", "FAILED", "ERROR"],
        comp_fail_rows(items),
        "no failed compensations" + ("" if show_all else " waiting for an operator"),
    )


def _settle_comp_fail(
    resolution: str, failure_id: str, note: str | None, settings: tuple[str | None, str | None]
) -> dict[str, Any]:
    orch, sep, task = failure_id.partition(":")
    if not sep or not orch or not task:
        raise UsageError(
            f"invalid id {failure_id!r}: use <orchestration id>:<task id> "
            "as listed by `orra comp-fail ls`"
        )
    with client_for(*settings) as client:
        payload = client.post_json(
            f"/compensation-failures/{orch}/{task}/{resolution}",
            {"note": note} if note else {},
            not_found=f"no failed compensation {failure_id}: list them with `orra comp-fail ls`",
        )
    return payload if isinstance(payload, dict) else {"id": failure_id}


NoteOpt = Annotated[
    str | None, typer.Option("--note", "-n", help="What was done (kept in the event log).")
]
FailureId = Annotated[
    str, typer.Argument(metavar="ID", help="<orchestration id>:<task id> from `comp-fail ls`.")
]


@comp_fail_app.command("resolve")
@handles_errors
def comp_fail_resolve(
    failure_id: FailureId,
    note: NoteOpt = None,
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Mark a failed compensation as fixed by hand."""
    payload = _settle_comp_fail("resolve", failure_id, note, (gateway_url, api_key))
    if as_json:
        emit_json(payload)
        return
    out().print(f"compensation {failure_id}: {payload.get('status', 'resolved')}")


@comp_fail_app.command("ignore")
@handles_errors
def comp_fail_ignore(
    failure_id: FailureId,
    note: NoteOpt = None,
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Dismiss a failed compensation: nothing will be done about it."""
    payload = _settle_comp_fail("ignore", failure_id, note, (gateway_url, api_key))
    if as_json:
        emit_json(payload)
        return
    out().print(f"compensation {failure_id}: {payload.get('status', 'ignored')}")
