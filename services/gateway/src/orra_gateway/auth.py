"""Authentication (once, for every route) and the admin guard.

:class:`ApiKeyAuthentication` is the gateway's authentication middleware: it reads
``Authorization: Bearer <api key>``, looks the key up (:meth:`ApiKeyStore.authenticate
<orra_gateway.stores.ApiKeyStore.authenticate>`) and puts its
:class:`~orra_gateway.stores.ApiKeyRecord` in the connection's scope, where a handler reads
it as ``request.user`` (:data:`Caller`). Every route is authenticated unless its handler
says ``opt={PUBLIC: True}`` (the health probes) or it is the OpenAPI document
(``/schema``): a route that forgets to ask for the caller is still authenticated. An ASGI
app mounted under the gateway is authenticated the same way (``scope["user"]``) unless it
opts out, as ``/mcp`` does (it checks the key itself; see :mod:`orra_gateway.app`).

:func:`admin_only` is the guard of the routes that manage a project (API keys, webhooks,
the signing secret, settling failed compensations): a member key gets 403.
:func:`approvers_only` guards approving and rejecting: an admin or an ``approver`` key.

A refused request is answered here, with the problem details that
:mod:`orra_gateway.problems` maps the error to, so the middlewares around this one (metrics,
log context) see the answer like any other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from litestar import Request
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

from orra_events.apikeys import can_approve
from orra_gateway.errors import Forbidden, Unauthorized
from orra_gateway.problems import problem_for
from orra_gateway.stores import ApiKeyRecord

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler
    from litestar.types import ASGIApp, Receive, Scope, Send

    from orra_gateway.service import Gateway

__all__ = [
    "PUBLIC",
    "SECURITY",
    "ApiKeyAuthentication",
    "Caller",
    "admin_only",
    "approvers_only",
    "bearer_token",
]

PUBLIC: Final = "public"
"""Handler ``opt`` key of the routes anyone may call (``/healthz``, ``/readyz``)."""

SECURITY: Final[list[dict[str, list[str]]]] = [{"BearerAuth": []}]
"""OpenAPI security requirement of every authenticated route."""

Caller = Request[ApiKeyRecord, None, State]
"""The request of an authenticated route: ``request.user`` is the caller's key."""


def bearer_token(header: str | None) -> str:
    """The API key of an ``Authorization`` header.

    Raises:
        Unauthorized: no header, or not ``Bearer <api key>``.
    """
    if not header:
        raise Unauthorized("missing 'Authorization: Bearer <api key>' header")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <api key>'")
    return token


def _is_openapi_document(scope: Scope) -> bool:
    path: str = scope["path"]
    return path == "/schema" or path.startswith("/schema/")


class ApiKeyAuthentication(ASGIMiddleware):
    """Authenticates every request of a route that is not public; see the module doc."""

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)
    exclude_opt_key = PUBLIC
    should_bypass_for_scope = staticmethod(_is_openapi_document)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Put the caller's key in ``scope["user"]``, or answer 401 / 503 problem details."""
        request: Request[Any, Any, Any] = Request(scope, receive)
        try:
            gateway: Gateway = request.app.state.gateway
            principal = await gateway.keys.authenticate(
                bearer_token(request.headers.get("authorization"))
            )
        except Exception as exc:  # noqa: BLE001 - every refusal is answered as a problem
            response = problem_for(request, exc)
            await response.to_asgi_response(app=None, request=request)(scope, receive, send)
            return
        scope["user"] = principal
        scope["auth"] = None
        await next_app(scope, receive, send)


def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the caller's key must be an admin key of its project.

    Raises:
        Forbidden: it is a member key (403, naming the key and how to get an admin one).
    """
    principal: ApiKeyRecord = connection.user
    if not principal.is_admin:
        raise Forbidden(
            f"this needs an admin key of project {principal.project!r}; key {principal.id} "
            f"is a {principal.granted} key (ask an admin for one: `orra api-keys gen --role "
            "admin`)"
        )


def approvers_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the caller's key must be an admin or an ``approver`` key of its project.

    Raises:
        Forbidden: it is a member key (403, naming the key and how to get one that may).
    """
    principal: ApiKeyRecord = connection.user
    if not can_approve(principal.granted):
        raise Forbidden(
            f"approving and rejecting need an admin or approver key of project "
            f"{principal.project!r}; key {principal.id} is a {principal.granted} key (ask an "
            "admin for one: `orra api-keys gen --role approver`)"
        )
