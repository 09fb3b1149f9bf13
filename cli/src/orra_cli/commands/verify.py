"""``orra verify run``: submit an action and follow it to its end."""

from __future__ import annotations

import contextlib
import json
import math
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from orra_cli.client import GatewayClient, PlanRejected
from orra_cli.common import (
    ApiKeyOpt,
    GatewayOpt,
    JsonOpt,
    check_webhook,
    client_for,
    emit_json,
    handles_errors,
    note,
    out,
)
from orra_cli.datafields import parse_data_fields
from orra_cli.errors import EXIT_FAILED, CliError, UsageError
from orra_cli.render import TERMINAL_STATUSES, inspect_text, plan_text

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["EXECUTION_MODES", "MAX_PAUSE_GRACE_S", "verify_app", "verify_run"]

verify_app = typer.Typer(help="Try actions against the control plane.", no_args_is_help=True)


def _describe_rejection(client: GatewayClient, exc: PlanRejected) -> None:
    """Give a rejected submission the fields ``verify run --json`` prints.

    A planning failure names its orchestration; its status (``not_actionable`` or
    ``failed``) is read back from the gateway. An invalid request has no orchestration.
    """
    orch_id = exc.data.get("orchestrationId")
    status = "rejected"
    if orch_id:
        status = "failed"
        with contextlib.suppress(CliError):
            view = client.get_json(f"/orchestrations/{orch_id}")
            if isinstance(view, dict) and view.get("status"):
                status = str(view["status"])
    exc.data = {
        "orchestrationId": orch_id,
        "status": status,
        "reasons": exc.data.get("reasons") or [],
        "tasks": [],
        "parallel_groups": [],
        **{k: v for k, v in exc.data.items() if k not in {"orchestrationId", "reasons"}},
    }


# --- orra verify run -----------------------------------------------------------------------


EXECUTION_MODES = ("groups", "eager")
"""What ``verify run --mode`` accepts (the gateway's ``mode``)."""
MAX_PAUSE_GRACE_S = 7 * 24 * 3600
"""The largest ``--pause-grace`` the gateway accepts (``pauseGraceS``, seconds)."""


@verify_app.command("run")
@handles_errors
def verify_run(  # noqa: PLR0917 - a Typer command's options
    action: Annotated[str, typer.Argument(help="The action, in plain language.")],
    extra: Annotated[list[str] | None, typer.Argument(hidden=True)] = None,
    data: Annotated[
        list[str] | None,
        typer.Option("-d", "--data", help="Action data as field:value (JSON values allowed)."),
    ] = None,
    webhook: Annotated[
        str | None, typer.Option("-w", "--webhook", help="Webhook URL for the result.")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow it to the end.")] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds --wait waits at most.", min=0.1)
    ] = 600.0,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Submit at most once per key.")
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode",
            metavar="groups|eager",
            help="groups: a parallel group starts once the previous one completed; "
            "eager: a task starts once the tasks it takes input from completed "
            "(default: the dispatcher's, groups).",
            show_default=False,
        ),
    ] = None,
    pause_grace: Annotated[
        float | None,
        typer.Option(
            "--pause-grace",
            metavar="SECONDS",
            help="Seconds tasks may wait for an unhealthy service before the orchestration "
            f"fails, 0..{MAX_PAUSE_GRACE_S} (default: the dispatcher's, 300).",
            show_default=False,
        ),
    ] = None,
    allow_partial: Annotated[
        bool,
        typer.Option(
            "--allow-partial",
            help="Run a plan that leaves out parts of the action nothing registered can do "
            "(they are listed); by default such an action is refused.",
        ),
    ] = False,
    plan_only: Annotated[
        bool,
        typer.Option(
            "--plan-only",
            help="Plan it and show the plan; run nothing until `orra approve ID` (`orra "
            "reject ID --reason` drops it; it expires after ORRA_APPROVAL_TIMEOUT_S).",
        ),
    ] = False,
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Submit an action; print its id and the plan's parallel groups."""
    fields = parse_data_fields(data or [], extra or [])
    if not action.strip():
        raise UsageError('the action is empty: orra verify run "Process order ORD123"')
    if plan_only and wait:
        raise UsageError("--plan-only runs nothing, so there is nothing to --wait for")
    mode = _check_run_options(mode, pause_grace)
    check_webhook(webhook, "-w")
    with client_for(gateway_url, api_key) as client:
        try:
            _code, created = client.submit(
                action,
                fields,
                webhook=webhook,
                idempotency_key=idempotency_key,
                mode=mode,
                pause_grace_s=pause_grace,
                allow_partial=allow_partial,
                execute=not plan_only,
            )
        except PlanRejected as exc:
            exc.message = f"the action was not accepted: {exc.message.split(': ', 1)[-1]}"
            _describe_rejection(client, exc)
            if _only_field(exc, "webhook"):  # the gateway refused -w: a usage error too
                raise UsageError(
                    f"-w {webhook} was refused: {exc.data['problem'].get('detail')}",
                    details=exc.details,
                    data=exc.data,
                ) from None
            raise
        orch_id = str(created.get("orchestrationId") or created.get("id"))
        view: dict[str, Any] = created
        if view.get("status") == "planning" and not view.get("tasks"):
            view = _wait_for(client, orch_id, lambda o: o.get("status") != "planning", 30.0)
        if view.get("status") in {"not_actionable", "failed"} and not view.get("tasks"):
            raise CliError(
                f"orchestration {orch_id} could not be planned ({view.get('status')}): "
                f"{view.get('error') or 'no reason given'}; see `orra inspect -d {orch_id}`",
                data={
                    "orchestrationId": orch_id,
                    "status": view.get("status"),
                    "reasons": view.get("reasons") or [],
                    "tasks": [],
                    "parallel_groups": [],
                },
            )
        if not as_json:
            console = out()
            console.print(
                Text.assemble(
                    ("Orchestration ", "bold"),
                    (orch_id, "bold cyan"),
                    f"  status: {view.get('status')}",
                )
            )
            console.print(plan_text(view))
        if wait:
            view = _wait_for(
                client,
                orch_id,
                lambda o: o.get("status") in TERMINAL_STATUSES,
                timeout,
                progress=not as_json,
            )
    _report(view, orch_id, wait=wait, as_json=as_json)


def _report(view: dict[str, Any], orch_id: str, *, wait: bool, as_json: bool) -> None:
    """Print the outcome of ``verify run``; exit 1 when it waited and the run did not complete."""
    result: dict[str, Any] = {
        "orchestrationId": orch_id,
        "status": view.get("status"),
        "tasks": view.get("tasks") or [],
        "parallel_groups": view.get("parallel_groups") or [],
        "uncovered": view.get("uncovered") or [],
    }
    if view.get("approval") is not None:
        result["approval"] = view.get("approval")
    if wait:
        result["results"] = view.get("results")
        result["error"] = view.get("error")
    if as_json:
        emit_json(result)
    elif wait:
        console = out()
        console.print()
        console.print(inspect_text(view))
        if view.get("results") is not None:
            console.print()
            console.print(Text("Results", style="bold"))
            console.print(json.dumps(view.get("results"), indent=2, ensure_ascii=False))
    elif view.get("status") == "awaiting_approval":
        note(
            f"nothing runs until it is approved: orra approve {orch_id} "
            f'(or orra reject {orch_id} --reason "...")'
        )
    else:
        note(f"follow it: orra inspect -f {orch_id}")
    if wait and view.get("status") != "completed":
        note(f"orchestration {orch_id} ended {view.get('status')}: {view.get('error')}", "red")
        raise typer.Exit(EXIT_FAILED)


def _only_field(error: CliError, field: str) -> bool:
    """Whether the gateway's problem details blame ``field`` and nothing else."""
    problem = error.data.get("problem")
    fields = problem.get("errors") if isinstance(problem, dict) else None
    if not isinstance(fields, list) or not fields:
        return False
    return all(isinstance(f, dict) and f.get("field") == field for f in fields)


def _check_run_options(mode: str | None, pause_grace: float | None) -> str | None:
    """Refuse a ``--mode`` or ``--pause-grace`` the gateway would refuse, before sending.

    Returns:
        The mode in lower case (``None`` when not given).
    """
    if mode is not None:
        mode = mode.strip().lower()
    if mode is not None and mode not in EXECUTION_MODES:
        raise UsageError(
            f"unknown --mode {mode!r}: use groups (a parallel group starts once the previous "
            "one completed) or eager (a task starts once the tasks it takes input from "
            "completed)"
        )
    if pause_grace is not None and not (
        math.isfinite(pause_grace) and 0 <= pause_grace <= MAX_PAUSE_GRACE_S
    ):
        raise UsageError(
            f"--pause-grace {pause_grace:g} is out of range: give the seconds tasks may wait "
            f"for an unhealthy service, from 0 (fail at once) to {MAX_PAUSE_GRACE_S} (7 days)"
        )
    return mode


def _wait_for(
    client: GatewayClient,
    orch_id: str,
    done: Callable[[dict[str, Any]], bool],
    timeout_s: float,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    interval = 0.1
    last = ""
    while True:
        view = client.orchestration(orch_id)
        if done(view):
            return view
        if progress:
            tasks = view.get("tasks") or []
            finished = sum(1 for t in tasks if t.get("status") == "completed")
            line = f"{view.get('status')}: {finished}/{len(tasks)} tasks completed"
            if line != last:
                note(line)
                last = line
        if time.monotonic() > deadline:
            raise CliError(
                f"orchestration {orch_id} is still {view.get('status')} after {timeout_s:g}s: "
                f"follow it with `orra inspect -f {orch_id}`"
            )
        time.sleep(interval)
        interval = min(interval * 1.5, 1.0)
