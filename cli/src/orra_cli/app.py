"""The ``orra`` command: Typer commands over the gateway's HTTP API and the event stream.

Every command takes ``--json``; data goes to stdout, diagnostics to stderr; the exit code
is 0 on success, 1 when the operation failed, 2 on a usage error.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import math
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path  # noqa: TC003 - Typer reads the annotations at runtime
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar
from urllib.parse import quote

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from orra_cli.client import GatewayClient, GatewayUnreachable, PlanRejected
from orra_cli.config import Settings, default_data_dir
from orra_cli.datafields import parse_data_fields
from orra_cli.errors import EXIT_FAILED, CliError, UsageError
from orra_cli.mcp import mcp_app
from orra_cli.render import (
    ORCHESTRATION_STATUSES,
    TERMINAL_STATUSES,
    comp_fail_rows,
    inspect_text,
    parse_time,
    plan_text,
    ps_text,
    relative_time,
    table_text,
)
from orra_events import PREVIOUS_SECRET_GRACE_S
from orra_events.apikeys import ROLES, api_key_id
from orra_events.webhook_urls import InvalidWebhookUrl, parse_webhook_url

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["app"]

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="orra",
    help="Orra: plan plain-language actions into parallel tasks across your services.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
verify_app = typer.Typer(help="Try actions against the control plane.", no_args_is_help=True)
services_app = typer.Typer(help="Registered services and agents.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of the project.", no_args_is_help=True)
webhooks_app = typer.Typer(
    help="Webhooks that receive orchestration results.", no_args_is_help=True
)
app.add_typer(verify_app, name="verify")
app.add_typer(services_app, name="services")
app.add_typer(keys_app, name="api-keys")
app.add_typer(webhooks_app, name="webhooks")
comp_fail_app = typer.Typer(
    help="Compensations that finally failed: settle them once handled.", no_args_is_help=True
)
app.add_typer(comp_fail_app, name="comp-fail")
grounding_app = typer.Typer(
    help="Domain grounding: worked examples and constraints for the LLM planner.",
    no_args_is_help=True,
)
app.add_typer(grounding_app, name="grounding")
app.add_typer(mcp_app, name="mcp")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
GatewayOpt = Annotated[
    str | None,
    typer.Option("--gateway-url", help="Gateway URL (overrides ORRA_GATEWAY_URL and config)."),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key", help="API key (overrides ORRA_API_KEY and config).", show_default=False
    ),
]

_globals: dict[str, str | None] = {"gateway_url": None, "api_key": None}


# --- output helpers ------------------------------------------------------------------------


def _out() -> Console:
    return Console(soft_wrap=True, highlight=False)


def _err() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def _emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def _note(message: str, style: str = "dim") -> None:
    _err().print(Text(message, style=style))


def _fail(error: CliError) -> typer.Exit:
    console = _err()
    console.print(Text("error: ", style="bold red") + Text(error.message))
    for line in error.details:
        console.print(Text(f"  - {line}"))
    return typer.Exit(error.exit_code)


def _handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Report a :class:`CliError` and exit with its code.

    With ``--json`` the error is also printed on stdout as one object (``error``,
    ``details`` and the error's data, e.g. ``orchestrationId``, ``status``, ``reasons``),
    so that a script always gets JSON; the human message still goes to stderr.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CliError as exc:
            if kwargs.get("as_json"):
                _emit_json(exc.as_json())
            raise _fail(exc) from None
        except KeyboardInterrupt:
            _note("interrupted", "yellow")
            raise typer.Exit(130) from None

    return wrapper


def _settings(gateway_url: str | None, api_key: str | None) -> Settings:
    return Settings.resolve(
        gateway_url=gateway_url or _globals["gateway_url"],
        api_key=api_key or _globals["api_key"],
    )


def _client(gateway_url: str | None, api_key: str | None) -> GatewayClient:
    settings = _settings(gateway_url, api_key)
    return GatewayClient(settings.gateway_url, settings.require_api_key())


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


def _items(payload: Any, *keys: str) -> list[dict[str, Any]]:
    if isinstance(payload, dict):
        for key in ("items", *keys):
            if isinstance(payload.get(key), list):
                payload = payload[key]
                break
    if not isinstance(payload, list):
        return []
    return [item for item in payload if isinstance(item, dict)]


class _CurrentStderr:
    """A file-like object that writes to whatever ``sys.stderr`` is at the time."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _quiet_library_logs() -> None:
    """Library logs (the bus's reconnect notices) go to stderr, warnings and up only."""
    import logging

    import structlog

    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        # The stream is looked up at each write: a replaced (and later closed) sys.stderr,
        # as under test runners, must not break logging afterwards.
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


@app.callback()
def _main(
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Orra: plan plain-language actions into parallel tasks across your services."""
    _quiet_library_logs()
    _globals["gateway_url"] = gateway_url
    _globals["api_key"] = api_key


# --- orra up -------------------------------------------------------------------------------


@app.command()
@_handles_errors
def up(  # noqa: PLR0917 - a Typer command's options
    demo: Annotated[bool, typer.Option("--demo", help="Also run the example services.")] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="State directory (default ORRA_DATA_DIR or ~/.orra)."),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="Gateway port.", min=1, max=65535)] = 8005,
    nats_port: Annotated[
        int, typer.Option("--nats-port", help="nats-server port.", min=1, max=65535)
    ] = 4222,
    mcp_config: Annotated[
        Path | None,
        typer.Option("--mcp-config", help="Also run the MCP bridge with this configuration."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the whole stack here: nats-server, planner, dispatcher, notifier, gateway."""
    from orra_cli.supervisor import Stack, StackError

    stack = Stack(
        data_dir or default_data_dir(),
        port=port,
        nats_port=nats_port,
        demo=demo,
        mcp_config=mcp_config,
    )

    def _on_signal(_signum: int, _frame: object) -> None:
        stack.request_stop()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            stack.start()
        except StackError as exc:
            raise CliError(f"orra up failed: {exc}") from None
        if as_json:
            _emit_json(stack.info())
        else:
            _banner(stack.info(), demo=demo)
        stack.wait()
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _note("orra stopped", "bold")


def _banner(info: dict[str, Any], *, demo: bool) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Gateway", info["gatewayUrl"])
    grid.add_row("API key", info["apiKey"])
    grid.add_row("NATS", info["natsUrl"])
    grid.add_row("Data", info["dataDir"])
    if info.get("configPath"):
        grid.add_row("CLI config", info["configPath"])
    names = [name for name, pid in info["pids"].items() if pid]
    grid.add_row("Processes", ", ".join(names))
    grid.add_row("", "")
    example = (
        'orra verify run "Estimate order delivery and notify customer" '
        "-d orderId:ORD456 -d customerId:ABC123 --wait"
        if demo
        else "orra services ls"
    )
    grid.add_row("Try", example)
    grid.add_row("Stop", "Ctrl-C")
    _out().print(Panel(grid, title="Orra is ready", border_style="green", expand=False))


# --- orra verify run -----------------------------------------------------------------------


EXECUTION_MODES = ("groups", "eager")
"""What ``verify run --mode`` accepts (the gateway's ``mode``)."""
MAX_PAUSE_GRACE_S = 7 * 24 * 3600
"""The largest ``--pause-grace`` the gateway accepts (``pauseGraceS``, seconds)."""


@verify_app.command("run")
@_handles_errors
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
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Submit an action; print its id and the plan's parallel groups."""
    fields = parse_data_fields(data or [], extra or [])
    if not action.strip():
        raise UsageError('the action is empty: orra verify run "Process order ORD123"')
    mode = _check_run_options(mode, pause_grace)
    _check_webhook(webhook, "-w")
    with _client(gateway_url, api_key) as client:
        try:
            _code, created = client.submit(
                action,
                fields,
                webhook=webhook,
                idempotency_key=idempotency_key,
                mode=mode,
                pause_grace_s=pause_grace,
                allow_partial=allow_partial,
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
            console = _out()
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
    result: dict[str, Any] = {
        "orchestrationId": orch_id,
        "status": view.get("status"),
        "tasks": view.get("tasks") or [],
        "parallel_groups": view.get("parallel_groups") or [],
        "uncovered": view.get("uncovered") or [],
    }
    if wait:
        result["results"] = view.get("results")
        result["error"] = view.get("error")
    if as_json:
        _emit_json(result)
    elif wait:
        console = _out()
        console.print()
        console.print(inspect_text(view))
        if view.get("results") is not None:
            console.print()
            console.print(Text("Results", style="bold"))
            console.print(json.dumps(view.get("results"), indent=2, ensure_ascii=False))
    else:
        _note(f"follow it: orra inspect -f {orch_id}")
    if wait and view.get("status") != "completed":
        _note(f"orchestration {orch_id} ended {view.get('status')}: {view.get('error')}", "red")
        raise typer.Exit(EXIT_FAILED)


def _check_webhook(url: str | None, option: str) -> None:
    """Refuse a webhook URL the notifier could never send to, before sending it.

    The rule is the gateway's and the notifier's (:mod:`orra_events.webhook_urls`); whether
    private targets are allowed is the gateway's setting, so it decides that.
    """
    if url is None:
        return
    try:
        parse_webhook_url(url)
    except InvalidWebhookUrl as exc:
        raise UsageError(
            f"{option} {url!r} cannot receive webhooks: {exc} "
            "(e.g. http://localhost:3000/webhooks/orra)"
        ) from None


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
                _note(line)
                last = line
        if time.monotonic() > deadline:
            raise CliError(
                f"orchestration {orch_id} is still {view.get('status')} after {timeout_s:g}s: "
                f"follow it with `orra inspect -f {orch_id}`"
            )
        time.sleep(interval)
        interval = min(interval * 1.5, 1.0)


# --- orra ps / inspect / logs / abort ------------------------------------------------------


@app.command()
@_handles_errors
def ps(
    status: Annotated[
        str | None, typer.Option("--status", "-s", help="Only orchestrations with this status.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many.", min=1)] = 20,
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """List orchestrations, newest first."""
    if status is not None and status not in ORCHESTRATION_STATUSES:
        raise UsageError(
            f"unknown status {status!r}: use one of {', '.join(sorted(ORCHESTRATION_STATUSES))}"
        )
    with _client(gateway_url, api_key) as client:
        payload = client.get_json("/orchestrations", params={"status": status, "limit": limit})
    items = _items(payload)
    if as_json:
        next_cursor = payload.get("nextCursor") if isinstance(payload, dict) else None
        _emit_json({"items": items, "nextCursor": next_cursor})
        return
    if not items:
        hint = f" with status {status}" if status else ""
        _note(f'no orchestrations{hint} yet: submit one with `orra verify run "ACTION"`')
        return
    _out().print(ps_text(items))


@app.command()
@_handles_errors
def inspect(  # noqa: PLR0917 - a Typer command's options
    orchestration_id: Annotated[str, typer.Argument(metavar="ID", help="Orchestration id.")],
    detailed: Annotated[
        bool, typer.Option("-d", "--detailed", help="Inputs, outputs, plan and webhooks.")
    ] = False,
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Follow it live from the event stream.")
    ] = False,
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Show an orchestration: its details and tasks (`-f` follows it live until it ends)."""
    if follow:
        from orra_cli.stream import NoEvents

        settings = _settings(gateway_url, api_key)
        try:
            view = asyncio.run(
                _follow(settings, orchestration_id, detailed=detailed, quiet=as_json)
            )
        except NoEvents as exc:
            # Expired (its events were removed): its summary is all there is to show.
            view = _expired_view(settings, orchestration_id, exc)
            if not as_json:
                _out().print(inspect_text(view, detailed=detailed))
        if as_json:
            _emit_json(view)
        if view.get("status") != "completed":
            raise typer.Exit(EXIT_FAILED)
        return
    with _client(gateway_url, api_key) as client:
        view = client.orchestration(orchestration_id)
    if as_json:
        _emit_json(view)
        return
    _out().print(inspect_text(view, detailed=detailed))


async def _follow(
    settings: Settings, orch_id: str, *, detailed: bool, quiet: bool
) -> dict[str, Any]:
    from rich.live import Live

    from orra_cli.stream import StreamedEvent, orchestration_events
    from orra_events.projection import OrchestrationView, apply, to_builtins

    state: OrchestrationView | None = None
    empty: dict[str, Any] = {"id": orch_id, "status": "planning", "tasks": []}

    def current() -> dict[str, Any]:
        return empty if state is None else dict(to_builtins(state))

    console = _out()
    live_ok = console.is_terminal and not quiet
    events = orchestration_events(settings.nats_url, settings.namespace, orch_id, follow=True)
    if not live_ok:
        async for item in events:
            if isinstance(item, StreamedEvent) and item.event is not None:
                state = apply(state, item.event)
        if not quiet:
            console.print(inspect_text(current(), detailed=detailed))
        return current()
    with Live(inspect_text(current()), console=console, refresh_per_second=8) as live:
        async for item in events:
            if isinstance(item, StreamedEvent) and item.event is not None:
                state = apply(state, item.event)
            live.update(inspect_text(current(), detailed=detailed))
    return current()


@app.command()
@_handles_errors
def logs(
    orchestration_id: Annotated[str, typer.Argument(metavar="ID", help="Orchestration id.")],
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing until it ends.")
    ] = False,
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Print an orchestration's raw events in order (from the event stream)."""
    from orra_cli.stream import BrokerUnreachable, NoEvents

    settings = _settings(gateway_url, api_key)
    try:
        asyncio.run(_stream_logs(settings, orchestration_id, follow=follow, as_json=as_json))
    except NoEvents as exc:
        view = _expired_view(settings, orchestration_id, exc)
        raise CliError(
            f"the events of {orchestration_id} have expired: the event log's retention "
            f"removed them {relative_time(view.get('expiredAt'))}; `orra inspect "
            f"{orchestration_id}` shows its summary ({view.get('status')})",
            data={"orchestrationId": orchestration_id, "status": view.get("status")},
        ) from None
    except BrokerUnreachable as exc:
        with GatewayClient(settings.gateway_url, settings.require_api_key()) as client:
            events = client.events(orchestration_id)
            try:
                first = next(events, None)
            except GatewayUnreachable:  # the stack is down: say so once
                raise CliError(
                    f"cannot reach NATS at {settings.nats_url} nor the gateway at "
                    f"{settings.gateway_url}: start the stack with `orra up`, or set "
                    "ORRA_NATS_URL and ORRA_GATEWAY_URL"
                ) from None
            if first is not None:
                _note(f"{exc.message}; reading the events from the gateway instead")
            for sse in itertools.chain([first] if first is not None else [], events):
                try:
                    raw = json.loads(sse.data)
                except ValueError:
                    raw = {"type": sse.event, "data": sse.data}
                seq = int(sse.id) if sse.id and sse.id.isdigit() else None
                _print_event(seq, raw, as_json=as_json)
                if raw.get("type") in {
                    "orchestration.done",
                    "orchestration.failed",
                    "orchestration.aborted",
                }:
                    break


def _expired_view(settings: Settings, orchestration_id: str, missing: CliError) -> dict[str, Any]:
    """The gateway's view of an orchestration whose events are not in the stream.

    Raises:
        CliError: ``missing`` when the gateway does not know it as expired either.
    """
    try:
        with GatewayClient(settings.gateway_url, settings.require_api_key()) as client:
            view = client.orchestration(orchestration_id)
    except CliError:
        raise missing from None
    if not view.get("expired"):
        raise missing
    return view


async def _stream_logs(settings: Settings, orch_id: str, *, follow: bool, as_json: bool) -> None:
    from orra_cli.stream import StreamedEvent, orchestration_events

    async for item in orchestration_events(
        settings.nats_url, settings.namespace, orch_id, follow=follow
    ):
        if isinstance(item, StreamedEvent):
            _print_event(item.seq, item.raw, as_json=as_json)


_SKIP = {"type", "event_id", "at", "v", "orchestration_id"}


def _print_event(seq: int | None, raw: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        _emit_json(raw)
        return
    at = raw.get("at")
    stamp = (
        time.strftime("%H:%M:%S", time.localtime(at)) + f".{int((at % 1) * 1000):03d}"
        if isinstance(at, int | float)
        else "-"
    )
    fields = " ".join(
        f"{k}={json.dumps(v, ensure_ascii=False, separators=(',', ':'))}"
        for k, v in raw.items()
        if k not in _SKIP
    )
    line = Text(f"{seq if seq is not None else '-':>6}  {stamp}  ", style="dim")
    line.append(f"{raw.get('type', '?'):<22}", style="bold")
    line.append(f" {fields}")
    _out().print(line)


@app.command()
@_handles_errors
def abort(
    orchestration_id: Annotated[str, typer.Argument(metavar="ID", help="Orchestration id.")],
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why (kept in the event log).")
    ] = None,
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Abort a running orchestration: nothing more is dispatched."""
    with _client(gateway_url, api_key) as client:
        payload = client.post_json(
            f"/orchestrations/{orchestration_id}/abort",
            {"reason": reason} if reason else {},
            not_found=f"orchestration {orchestration_id} not found: list them with `orra ps`",
        )
    if as_json:
        _emit_json(payload if isinstance(payload, dict) else {"orchestrationId": orchestration_id})
        return
    status = payload.get("status") if isinstance(payload, dict) else None
    _out().print(f"orchestration {orchestration_id}: {status or 'abort requested'}")


# --- compensation failures -----------------------------------------------------------------


@comp_fail_app.command("ls")
@_handles_errors
def comp_fail_ls(
    show_all: Annotated[
        bool, typer.Option("--all", "-a", help="Also list resolved and ignored ones.")
    ] = False,
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """List compensations that finally failed (open ones unless --all)."""
    with _client(gateway_url, api_key) as client:
        path = "/compensation-failures" + ("?status=all" if show_all else "")
        items = _items(client.get_json(path))
    if as_json:
        _emit_json({"items": items})
        return
    _print_rows(
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
    with _client(*settings) as client:
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
@_handles_errors
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
        _emit_json(payload)
        return
    _out().print(f"compensation {failure_id}: {payload.get('status', 'resolved')}")


@comp_fail_app.command("ignore")
@_handles_errors
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
        _emit_json(payload)
        return
    _out().print(f"compensation {failure_id}: {payload.get('status', 'ignored')}")


# --- services, api keys, webhooks ----------------------------------------------------------


def _cell(item: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = item.get(key)
        if value is not None and value != "":
            if isinstance(value, bool):
                return "yes" if value else "no"
            return str(value)
    return "-"


def _print_rows(headers: list[str], rows: Sequence[Sequence[Text | str]], empty: str) -> None:
    if not rows:
        _note(empty)
        return
    _out().print(Text("\n").join(table_text(headers, rows)))


@services_app.command("ls")
@_handles_errors
def services_ls(
    as_json: JsonOpt = False, gateway_url: GatewayOpt = None, api_key: ApiKeyOpt = None
) -> None:
    """List registered services and agents with their health, version and example phrases.

    STATUS is ``down`` for a service with no live instance for
    ``ORRA_SERVICE_DOWN_AFTER_S``: new plans leave it out until an instance runs again.
    """
    with _client(gateway_url, api_key) as client:
        items = _items(client.get_json("/services"), "services")
    if as_json:
        _emit_json({"items": items})
        return
    rows = [
        [
            _cell(s, "name", "service"),
            _cell(s, "kind"),
            _cell(s, "status", "health", "healthy"),
            _cell(s, "version"),
            relative_time(s.get("lastHeartbeatAt") or s.get("lastSeen") or s.get("registeredAt")),
            _cell(s, "description"),
        ]
        for s in items
    ]
    if not rows:
        _note("no services registered yet: start yours with the SDK (or `orra up --demo`)")
        return
    header, *lines = table_text(
        ["NAME", "KIND", "STATUS", "VERSION", "LAST SEEN", "DESCRIPTION"], rows
    )
    out = [header]
    for line, item in zip(lines, items, strict=True):
        out.append(line)
        examples = item.get("examples")
        if isinstance(examples, list) and examples:
            phrases = "; ".join(json.dumps(str(e), ensure_ascii=False) for e in examples)
            out.append(Text(f"  examples: {phrases}", style="dim"))
    _out().print(Text("\n").join(out))
    if any(_cell(s, "status", "health") == "down" for s in items):
        _note(
            "down: no live instance for ORRA_SERVICE_DOWN_AFTER_S; new plans leave it out "
            "until an instance of it runs again"
        )


@keys_app.command("gen")
@_handles_errors
def api_keys_gen(
    name: Annotated[str | None, typer.Option("--name", help="A label for the key.")] = None,
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            metavar="|".join(ROLES),
            help="admin: manages keys, webhooks and the signing secret; member: submits, "
            "reads, follows and aborts orchestrations (default: member).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Create a new API key for the project (an admin key is needed)."""
    if role is not None and role.strip().lower() not in ROLES:
        raise UsageError(f"unknown --role {role!r}: use {' or '.join(ROLES)}")
    body: dict[str, str] = {"name": name} if name else {}
    if role is not None:
        body["role"] = role.strip().lower()
    with _client(gateway_url, api_key) as client:
        payload = client.post_json("/api-keys", body)
    key = None
    if isinstance(payload, dict):
        key = payload.get("apiKey") or payload.get("key") or payload.get("api_key")
    if not key:
        raise CliError("the gateway created no API key (no apiKey in its answer)")
    if as_json:
        _emit_json({**payload, "apiKey": key})
        return
    key_id = payload.get("id") or api_key_id(str(key))
    _out().print(f"{key}  {key_id}")
    _note(
        f"{payload.get('role') or 'new'} key {key_id} of project {payload.get('project') or '-'}; "
        "keep it secret: it is shown once; use it as ORRA_API_KEY or --api-key"
    )


@keys_app.command("revoke")
@_handles_errors
def api_keys_revoke(
    key_id: Annotated[
        str, typer.Argument(metavar="ID", help="The key's id (k_...), from `orra api-keys ls`.")
    ],
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Revoke an API key: it stops working within seconds."""
    _check_id(key_id, "an API key", "orra api-keys ls")
    settings = _settings(gateway_url, api_key)
    key = settings.require_api_key()
    with GatewayClient(settings.gateway_url, key) as client:
        client.delete(
            f"/api-keys/{quote(key_id, safe='')}",
            not_found=f"no API key {key_id} in this project: list them with `orra api-keys ls`",
        )
    if as_json:
        _emit_json({"revoked": key_id})
    else:
        _out().print(f"API key revoked: {key_id}")
    if key_id == api_key_id(key):
        _note(
            "that was the key this command used: it no longer works; "
            "use another with ORRA_API_KEY or --api-key",
            "yellow",
        )


def _check_id(value: str, what: str, lister: str) -> None:
    if not value.strip() or value.startswith(("http://", "https://")) or "/" in value:
        raise UsageError(f"{value!r} is not {what} id: `{lister}` lists the ids")


@keys_app.command("ls")
@_handles_errors
def api_keys_ls(
    as_json: JsonOpt = False, gateway_url: GatewayOpt = None, api_key: ApiKeyOpt = None
) -> None:
    """List the project's API keys (never their secret)."""
    with _client(gateway_url, api_key) as client:
        items = _items(client.get_json("/api-keys"), "apiKeys", "keys")
    if as_json:
        _emit_json({"items": items})
        return
    rows = [
        [
            _cell(k, "id", "prefix", "keyPrefix"),
            _cell(k, "name"),
            _cell(k, "role"),
            _cell(k, "project"),
            relative_time(k.get("createdAt")),
        ]
        for k in items
    ]
    _print_rows(["ID", "NAME", "ROLE", "PROJECT", "CREATED"], rows, "no API keys")


@webhooks_app.command("add")
@_handles_errors
def webhooks_add(
    url: Annotated[str, typer.Argument(help="URL that receives orchestration results.")],
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Register a webhook URL for the project."""
    _check_webhook(url, "URL")
    with _client(gateway_url, api_key) as client:
        payload = client.post_json("/webhooks", {"url": url})
    if as_json:
        _emit_json(payload if isinstance(payload, dict) else {"url": url})
        return
    _out().print(f"webhook added: {url}")
    if isinstance(payload, dict) and payload.get("secret"):
        _note(f"signing secret: {payload['secret']}")


@webhooks_app.command("ls")
@_handles_errors
def webhooks_ls(
    as_json: JsonOpt = False, gateway_url: GatewayOpt = None, api_key: ApiKeyOpt = None
) -> None:
    """List the project's webhooks."""
    with _client(gateway_url, api_key) as client:
        items = _items(client.get_json("/webhooks"), "webhooks")
    if as_json:
        _emit_json({"items": items})
        return
    rows = [[_cell(w, "url"), _cell(w, "id"), relative_time(w.get("createdAt"))] for w in items]
    _print_rows(["URL", "ID", "CREATED"], rows, "no webhooks: add one with `orra webhooks add URL`")


@webhooks_app.command("rm")
@_handles_errors
def webhooks_rm(
    webhook_id: Annotated[
        str, typer.Argument(metavar="ID", help="The webhook's id, from `orra webhooks ls`.")
    ],
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Remove a webhook: the project's results are no longer delivered to it."""
    _check_id(webhook_id, "a webhook", "orra webhooks ls")
    with _client(gateway_url, api_key) as client:
        client.delete(
            f"/webhooks/{quote(webhook_id, safe='')}",
            not_found=f"no webhook {webhook_id}: list them with `orra webhooks ls`",
        )
    if as_json:
        _emit_json({"removed": webhook_id})
        return
    _out().print(f"webhook removed: {webhook_id}")


@webhooks_app.command("secret")
@_handles_errors
def webhooks_secret(
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate",
            help="Replace the secret; the previous one keeps signing deliveries for "
            f"{PREVIOUS_SECRET_GRACE_S / 3600:g} h.",
        ),
    ] = False,
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Print the secret (whsec_...) that signs the project's webhook deliveries."""
    with _client(gateway_url, api_key) as client:
        if rotate:
            payload = client.post_json("/webhooks/secret/rotate")
        else:
            payload = client.get_json("/webhooks/secret")
    secret = payload.get("secret") if isinstance(payload, dict) else None
    if not isinstance(payload, dict) or not secret:
        raise CliError(
            "the gateway answered without a webhook secret: is ORRA_GATEWAY_URL the Orra "
            "gateway, and is it up to date?"
        )
    if as_json:
        _emit_json(payload)
        return
    _out().print(str(secret))
    created = parse_time(payload.get("createdAt"))
    _note(f"created {_utc(created)} ({relative_time(created)})")
    if rotate:
        _note(
            "the previous secret keeps signing deliveries for "
            f"{PREVIOUS_SECRET_GRACE_S / 3600:g} h"
            + (f" (until {_utc(created + PREVIOUS_SECRET_GRACE_S)})" if created is not None else "")
            + ": give your webhook receivers the new one before then",
            "yellow",
        )
    else:
        _note("verify deliveries with it (Standard Webhooks); keep it secret")


def _utc(at: float | None) -> str:
    if at is None:
        return "at an unknown time"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def _with_bus(settings: Settings, work: Callable[[Any], Any]) -> Any:
    from orra_events import BrokerUnavailable, Bus, Topology

    try:
        bus = await Bus.connect(
            settings.nats_url,
            Topology(namespace=settings.namespace),
            name="orra-cli",
            retry_forever=False,
        )
    except BrokerUnavailable as exc:
        raise CliError(f"{exc}: start the stack with `orra up` or set ORRA_NATS_URL") from None
    try:
        return await work(bus)
    finally:
        await bus.close()


@grounding_app.command("apply")
@_handles_errors
def grounding_apply(
    file: Annotated[
        Path, typer.Option("-f", "--file", help="YAML file of use cases and constraints.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Store the groundings of a YAML file (a grounding of the same name is replaced)."""
    from orra_planner.llm.grounding import GroundingError, apply_grounding

    try:
        text = file.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    settings = _settings(None, None)
    try:
        applied = asyncio.run(_with_bus(settings, lambda bus: apply_grounding(bus, text)))
    except GroundingError as exc:
        raise CliError(f"{file}: {exc}") from None
    names = [g.name for g in applied]
    if as_json:
        _emit_json({"applied": names})
        return
    for name in names:
        _out().print(f"grounding applied: {name}")


@grounding_app.command("ls")
@_handles_errors
def grounding_ls(as_json: JsonOpt = False) -> None:
    """List the stored groundings."""
    from orra_planner.llm.grounding import list_groundings

    items = asyncio.run(_with_bus(_settings(None, None), list_groundings))
    rows = [
        {
            "name": g.name,
            "useCases": len(g.use_cases),
            "constraints": len(g.constraints),
            "strict": g.strict,
        }
        for g in items
    ]
    if as_json:
        _emit_json({"items": rows})
        return
    _print_rows(
        ["NAME", "USE CASES", "CONSTRAINTS", "STRICT"],
        [
            [r["name"], str(r["useCases"]), str(r["constraints"]), str(r["strict"]).lower()]
            for r in rows
        ],
        "no groundings: add one with `orra grounding apply -f FILE`",
    )


@grounding_app.command("rm")
@_handles_errors
def grounding_rm(
    name: Annotated[str, typer.Argument(help="The grounding to delete.")],
    as_json: JsonOpt = False,
) -> None:
    """Delete a grounding."""
    from orra_planner.llm.grounding import remove_grounding

    existed = asyncio.run(_with_bus(_settings(None, None), lambda bus: remove_grounding(bus, name)))
    if not existed:
        raise CliError(f"no grounding named {name!r}: see `orra grounding ls`")
    if as_json:
        _emit_json({"removed": name})
        return
    _out().print(f"grounding removed: {name}")
