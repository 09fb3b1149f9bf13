"""The ``orra`` command: Typer commands over the gateway's HTTP API and the event stream.

Every command takes ``--json``; data goes to stdout, diagnostics to stderr; the exit code
is 0 on success, 1 when the operation failed, 2 on a usage error. The commands are in
:mod:`orra_cli.commands`, one module per command group; this module assembles them.
"""

from __future__ import annotations

import typer

from orra_cli.commands import (
    api_keys,
    approvals,
    comp_fail,
    grounding,
    orchestrations,
    services,
    stack,
    verify,
    webhooks,
)
from orra_cli.common import GLOBAL_OPTIONS, ApiKeyOpt, GatewayOpt
from orra_cli.mcp import mcp_app

__all__ = ["app"]

app = typer.Typer(
    name="orra",
    help="Orra: plan plain-language actions into parallel tasks across your services.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(verify.verify_app, name="verify")
app.add_typer(services.services_app, name="services")
app.add_typer(api_keys.keys_app, name="api-keys")
app.add_typer(webhooks.webhooks_app, name="webhooks")
app.add_typer(comp_fail.comp_fail_app, name="comp-fail")
app.add_typer(grounding.grounding_app, name="grounding")
app.add_typer(mcp_app, name="mcp")
app.command()(stack.up)
app.command()(orchestrations.ps)
app.command()(orchestrations.inspect)
app.command()(orchestrations.logs)
app.command()(orchestrations.abort)
app.command()(approvals.approve)
app.command()(approvals.reject)


@app.callback()
def _main(
    gateway_url: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Orra: plan plain-language actions into parallel tasks across your services."""
    # No logging set-up here: structlog (and the rich tracebacks it loads) would cost every
    # command ~40 ms. The commands that run library code that logs (the bus, the event
    # stream, `orra up`) call `quiet_library_logs` themselves; the MCP commands configure
    # their own.
    GLOBAL_OPTIONS["gateway_url"] = gateway_url
    GLOBAL_OPTIONS["api_key"] = api_key
