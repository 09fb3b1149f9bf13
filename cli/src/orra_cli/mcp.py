"""``orra mcp``: the MCP bridge and Orra's MCP server (see :mod:`orra_mcp`).

* ``orra mcp bridge --config FILE``: serve every tool of the MCP servers listed in FILE as
  an Orra service (runs until SIGTERM; exit 2 on a bad configuration);
* ``orra mcp serve``: Orra's MCP server over stdio, for a desktop agent, as a client of the
  gateway with the configured API key (exit 1 when the gateway refuses the key).
"""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - Typer reads the annotations at runtime
from typing import Annotated

import typer

from orra_cli.config import Settings

__all__ = ["mcp_app"]

mcp_app = typer.Typer(
    help="The Model Context Protocol: MCP tools as services, Orra as an MCP server.",
    no_args_is_help=True,
)


@mcp_app.command("bridge")
def bridge(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="The MCP servers to bridge (YAML, JSON or TOML; default ORRA_MCP_CONFIG).",
        ),
    ] = None,
) -> None:
    """Serve every tool of the configured MCP servers as an Orra service."""
    from orra_mcp.runner import run_bridge

    raise typer.Exit(run_bridge(str(config) if config is not None else None))


@mcp_app.command("serve")
def serve(
    gateway_url: Annotated[
        str | None,
        typer.Option("--gateway-url", help="Gateway URL (overrides ORRA_GATEWAY_URL and config)."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", help="API key (overrides ORRA_API_KEY and config).", show_default=False
        ),
    ] = None,
) -> None:
    """Serve Orra as an MCP server over stdio (for a desktop agent's configuration)."""
    import asyncio

    from orra_events.runtime import configure_logging
    from orra_mcp.stdio import serve_stdio

    settings = Settings.resolve(gateway_url=gateway_url, api_key=api_key)
    if not settings.api_key:
        typer.echo(
            "orra mcp serve: no API key configured: set ORRA_API_KEY (or run `orra up`, which "
            f"writes one to {settings.config_path})",
            err=True,
        )
        raise typer.Exit(2)
    configure_logging("mcp-serve")
    raise typer.Exit(asyncio.run(serve_stdio(settings.gateway_url, settings.api_key)))
