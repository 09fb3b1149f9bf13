"""Helpers every command shares: output, errors, settings, the gateway client, the bus.

Every command takes ``--json``; data goes to stdout, diagnostics to stderr; the exit code
is 0 on success, 1 when the operation failed, 2 on a usage error.
"""

from __future__ import annotations

import functools
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from orra_cli.client import GatewayClient
from orra_cli.config import Settings
from orra_cli.errors import CliError, UsageError
from orra_cli.render import table_text

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


__all__ = [
    "GLOBAL_OPTIONS",
    "ApiKeyOpt",
    "GatewayOpt",
    "JsonOpt",
    "ReasonOpt",
    "cell_text",
    "check_id",
    "check_webhook",
    "client_for",
    "emit_json",
    "err",
    "fail",
    "handles_errors",
    "items_of",
    "note",
    "out",
    "print_rows",
    "quiet_library_logs",
    "resolve_settings",
    "utc_time",
    "with_bus",
]

P = ParamSpec("P")
R = TypeVar("R")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", "-r", help="Why (kept in the event log).")
]
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

GLOBAL_OPTIONS: dict[str, str | None] = {"gateway_url": None, "api_key": None}

# --- output helpers ------------------------------------------------------------------------


def out() -> Console:
    """The console of the command's data (stdout)."""
    return Console(soft_wrap=True, highlight=False)


def err() -> Console:
    """The console of diagnostics (stderr)."""
    return Console(stderr=True, soft_wrap=True, highlight=False)


def emit_json(value: Any) -> None:
    """Print ``value`` as one line of JSON on stdout."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def note(message: str, style: str = "dim") -> None:
    """Print a diagnostic on stderr."""
    err().print(Text(message, style=style))


def fail(error: CliError) -> typer.Exit:
    """Print ``error`` on stderr; the exit that carries its code."""
    console = err()
    console.print(Text("error: ", style="bold red") + Text(error.message))
    for line in error.details:
        console.print(Text(f"  - {line}"))
    return typer.Exit(error.exit_code)


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
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
                emit_json(exc.as_json())
            raise fail(exc) from None
        except KeyboardInterrupt:
            note("interrupted", "yellow")
            raise typer.Exit(130) from None

    return wrapper


def resolve_settings(gateway_url: str | None, api_key: str | None) -> Settings:
    """The settings, from the command's options, then the global ones, env and config."""
    return Settings.resolve(
        gateway_url=gateway_url or GLOBAL_OPTIONS["gateway_url"],
        api_key=api_key or GLOBAL_OPTIONS["api_key"],
    )


def client_for(gateway_url: str | None, api_key: str | None) -> GatewayClient:
    """A gateway client with the resolved URL and API key (a usage error without a key)."""
    settings = resolve_settings(gateway_url, api_key)
    return GatewayClient(settings.gateway_url, settings.require_api_key())


def items_of(payload: Any, *keys: str) -> list[dict[str, Any]]:
    """The objects of a list answer (``items``, or one of ``keys``)."""
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


def quiet_library_logs() -> None:
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


def check_webhook(url: str | None, option: str) -> None:
    """Refuse a webhook URL the notifier could never send to, before sending it.

    The rule is the gateway's and the notifier's (:mod:`orra_events.webhook_urls`); whether
    private targets are allowed is the gateway's setting, so it decides that.
    """
    if url is None:
        return
    from orra_events.webhook_urls import InvalidWebhookUrl, parse_webhook_url

    try:
        parse_webhook_url(url)
    except InvalidWebhookUrl as exc:
        raise UsageError(
            f"{option} {url!r} cannot receive webhooks: {exc} "
            "(e.g. http://localhost:3000/webhooks/orra)"
        ) from None


def check_id(value: str, what: str, lister: str) -> None:
    """Refuse an id that cannot name anything (a usage error naming ``lister``)."""
    if not value.strip() or value.startswith(("http://", "https://")) or "/" in value:
        raise UsageError(f"{value!r} is not {what} id: `{lister}` lists the ids")


def cell_text(item: dict[str, Any], *keys: str) -> str:
    """The first of ``keys`` that ``item`` has, as table text."""
    for key in keys:
        value = item.get(key)
        if value is not None and value != "":
            if isinstance(value, bool):
                return "yes" if value else "no"
            return str(value)
    return "-"


def print_rows(headers: list[str], rows: Sequence[Sequence[Text | str]], empty: str) -> None:
    """Print a table, or ``empty`` when there are no rows."""
    if not rows:
        note(empty)
        return
    out().print(Text("\n").join(table_text(headers, rows)))


def utc_time(at: float | None) -> str:
    """An epoch time as UTC text."""
    if at is None:
        return "at an unknown time"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def with_bus(settings: Settings, work: Callable[[Any], Any]) -> Any:
    """Run ``work`` with a bus connected to the stack's broker, then close it."""
    from orra_events import BrokerUnavailable, Bus, Topology

    quiet_library_logs()
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
