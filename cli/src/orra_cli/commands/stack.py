"""``orra up``: the whole stack in one process tree."""

from __future__ import annotations

import signal
from pathlib import Path  # noqa: TC003 - Typer reads the annotations at runtime
from typing import Annotated, Any

import typer

from orra_cli.common import JsonOpt, emit_json, handles_errors, note, out, quiet_library_logs
from orra_cli.config import default_data_dir
from orra_cli.errors import CliError

# --- orra up -------------------------------------------------------------------------------


__all__ = ["up"]


@handles_errors
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

    quiet_library_logs()
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
            emit_json(stack.info())
        else:
            _banner(stack.info(), demo=demo)
        stack.wait()
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    note("orra stopped", "bold")


def _banner(info: dict[str, Any], *, demo: bool) -> None:
    from rich.panel import Panel
    from rich.table import Table

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
    out().print(Panel(grid, title="Orra is ready", border_style="green", expand=False))
