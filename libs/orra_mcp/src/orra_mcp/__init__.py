"""Orra and the Model Context Protocol, both ways, on the official ``mcp`` SDK.

* **MCP tools as Orra services**: :class:`~orra_mcp.bridge.Bridge` (run by ``orra mcp
  bridge --config FILE``, :mod:`orra_mcp.runner`) serves every tool of the MCP servers of a
  configuration (:mod:`orra_mcp.config`) as an Orra service, built on :mod:`orra_sdk`
  (tool mapping: :mod:`orra_mcp.tools`; connections: :mod:`orra_mcp.link`).
* **Orra as an MCP server**: :func:`~orra_mcp.server.build_server`, served over stdio by
  ``orra mcp serve`` (:mod:`orra_mcp.stdio`) and over streamable HTTP under the gateway at
  ``/mcp`` (:mod:`orra_mcp.asgi`); its tools call the gateway's HTTP API
  (:mod:`orra_mcp.api`) with the caller's API key.

See docs/architecture.md, "MCP".
"""

from orra_mcp.api import GatewayApi
from orra_mcp.bridge import Bridge, ToolCallFailed
from orra_mcp.config import BridgeConfig, ServerSpec, load_config, parse_config
from orra_mcp.errors import ApiError, ConfigError, OrraMcpError
from orra_mcp.server import build_server

__all__ = [
    "ApiError",
    "Bridge",
    "BridgeConfig",
    "ConfigError",
    "GatewayApi",
    "OrraMcpError",
    "ServerSpec",
    "ToolCallFailed",
    "build_server",
    "load_config",
    "parse_config",
]
