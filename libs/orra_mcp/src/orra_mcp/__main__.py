"""Entry point: ``python -m orra_mcp [--config FILE]`` runs the MCP bridge."""

from __future__ import annotations

from orra_mcp.runner import main

if __name__ == "__main__":
    main()
