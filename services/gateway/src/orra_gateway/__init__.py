"""Orra gateway: the HTTP API (Litestar), its read model and its live event stream.

Build the ASGI app with :func:`create_app`; run it with ``python -m orra_gateway``.
"""

from orra_gateway.app import create_app
from orra_gateway.errors import GatewayError
from orra_gateway.settings import GatewaySettings

__all__ = ["GatewayError", "GatewaySettings", "create_app"]
