"""``orra ps``, ``inspect``, ``logs`` and ``abort``: the project's orchestrations."""

from __future__ import annotations

import itertools
import json
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from orra_cli.client import GatewayClient, GatewayUnreachable
from orra_cli.common import (
    ApiKeyOpt,
    GatewayOpt,
    JsonOpt,
    ReasonOpt,
    client_for,
    emit_json,
    handles_errors,
    items_of,
    note,
    out,
    resolve_settings,
)
from orra_cli.errors import EXIT_FAILED, CliError, UsageError
from orra_cli.render import inspect_text, ps_text, relative_time

if TYPE_CHECKING:
    from orra_cli.config import Settings

# --- orra ps / inspect / logs / abort ------------------------------------------------------


__all__ = ["abort", "inspect", "logs", "ps"]


@handles_errors
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
    if status is not None:
        # Imported here: the statuses come from the projection, which a plain `ps` never needs.
        from orra_cli.render import ORCHESTRATION_STATUSES

        if status not in ORCHESTRATION_STATUSES:
            known = ", ".join(sorted(ORCHESTRATION_STATUSES))
            raise UsageError(f"unknown status {status!r}: use one of {known}")
    with client_for(gateway_url, api_key) as client:
        payload = client.get_json("/orchestrations", params={"status": status, "limit": limit})
    items = items_of(payload)
    if as_json:
        next_cursor = payload.get("nextCursor") if isinstance(payload, dict) else None
        emit_json({"items": items, "nextCursor": next_cursor})
        return
    if not items:
        hint = f" with status {status}" if status else ""
        note(f'no orchestrations{hint} yet: submit one with `orra verify run "ACTION"`')
        return
    out().print(ps_text(items))


@handles_errors
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
        import asyncio  # here, as the stream below: a plain `inspect` runs no event loop

        from orra_cli.stream import NoEvents

        settings = resolve_settings(gateway_url, api_key)
        try:
            view = asyncio.run(
                _follow(settings, orchestration_id, detailed=detailed, quiet=as_json)
            )
        except NoEvents as exc:
            # Expired (its events were removed): its summary is all there is to show.
            view = _expired_view(settings, orchestration_id, exc)
            if not as_json:
                out().print(inspect_text(view, detailed=detailed))
        if as_json:
            emit_json(view)
        if view.get("status") != "completed":
            raise typer.Exit(EXIT_FAILED)
        return
    with client_for(gateway_url, api_key) as client:
        view = client.orchestration(orchestration_id)
    if as_json:
        emit_json(view)
        return
    out().print(inspect_text(view, detailed=detailed))


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

    console = out()
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


@handles_errors
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
    import asyncio

    from orra_cli.stream import BrokerUnreachable, NoEvents

    settings = resolve_settings(gateway_url, api_key)
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
                note(f"{exc.message}; reading the events from the gateway instead")
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
        emit_json(raw)
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
    out().print(line)


@handles_errors
def abort(
    orchestration_id: Annotated[str, typer.Argument(metavar="ID", help="Orchestration id.")],
    reason: ReasonOpt = None,
    as_json: JsonOpt = False,
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Abort a running orchestration: nothing more is dispatched."""
    with client_for(gateway_url, api_key) as client:
        payload = client.post_json(
            f"/orchestrations/{orchestration_id}/abort",
            {"reason": reason} if reason else {},
            not_found=f"orchestration {orchestration_id} not found: list them with `orra ps`",
        )
    if as_json:
        emit_json(payload if isinstance(payload, dict) else {"orchestrationId": orchestration_id})
        return
    status = payload.get("status") if isinstance(payload, dict) else None
    out().print(f"orchestration {orchestration_id}: {status or 'abort requested'}")
