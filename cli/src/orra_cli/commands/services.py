"""``orra services``: registered services and agents."""

from __future__ import annotations

import json

import typer
from rich.text import Text

from orra_cli.common import (
    ApiKeyOpt,
    GatewayOpt,
    JsonOpt,
    cell_text,
    client_for,
    emit_json,
    handles_errors,
    items_of,
    note,
    out,
)
from orra_cli.render import relative_time, table_text

__all__ = ["services_app", "services_ls"]

services_app = typer.Typer(help="Registered services and agents.", no_args_is_help=True)


@services_app.command("ls")
@handles_errors
def services_ls(
    as_json: JsonOpt = False, gateway_url: GatewayOpt = None, api_key: ApiKeyOpt = None
) -> None:
    """List registered services and agents with their health, version and example phrases.

    STATUS is ``down`` for a service with no live instance for
    ``ORRA_SERVICE_DOWN_AFTER_S``: new plans leave it out until an instance runs again.
    """
    with client_for(gateway_url, api_key) as client:
        items = items_of(client.get_json("/services"), "services")
    if as_json:
        emit_json({"items": items})
        return
    rows = [
        [
            cell_text(s, "name", "service"),
            cell_text(s, "kind"),
            cell_text(s, "status", "health", "healthy"),
            cell_text(s, "version"),
            relative_time(s.get("lastHeartbeatAt") or s.get("lastSeen") or s.get("registeredAt")),
            cell_text(s, "description"),
        ]
        for s in items
    ]
    if not rows:
        note("no services registered yet: start yours with the SDK (or `orra up --demo`)")
        return
    header, *lines = table_text(
        ["NAME", "KIND", "STATUS", "VERSION", "LAST SEEN", "DESCRIPTION"], rows
    )
    shown = [header]
    for line, item in zip(lines, items, strict=True):
        shown.append(line)
        examples = item.get("examples")
        if isinstance(examples, list) and examples:
            phrases = "; ".join(json.dumps(str(e), ensure_ascii=False) for e in examples)
            shown.append(Text(f"  examples: {phrases}", style="dim"))
    out().print(Text("\n").join(shown))
    if any(cell_text(s, "status", "health") == "down" for s in items):
        note(
            "down: no live instance for ORRA_SERVICE_DOWN_AFTER_S; new plans leave it out "
            "until an instance of it runs again"
        )
