"""The gateway's HTTP handlers: one Litestar Controller per resource.

Each controller translates requests into calls of :class:`~orra_gateway.service.Gateway`
(or its stores) and results into responses; none chooses an error status (that is
:mod:`orra_gateway.problems`) or authenticates (that is :mod:`orra_gateway.auth`, once, for
every route). :data:`orra_gateway.routes.ROUTES` lists them. Annotations are evaluated at
runtime in these modules (no ``from __future__ import annotations``) because Litestar reads
them. See docs/architecture.md, "HTTP API".
"""

__all__: list[str] = []
