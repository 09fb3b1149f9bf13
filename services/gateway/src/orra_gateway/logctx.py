"""Log lines written while a request about one orchestration is served carry its id."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from litestar.enums import ScopeType

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ["log_context_middleware"]

_BOUND = ("orchestration_id", "task_id")
"""Path parameters bound as they are named (``/orchestrations/{orchestration_id}``, ...)."""


def log_context_middleware(app: ASGIApp) -> ASGIApp:
    """Litestar middleware binding the request's orchestration and task ids for its logs."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        params = scope.get("path_params") or {}
        bound = {k: str(params[k]) for k in _BOUND if k in params}
        if scope["type"] != ScopeType.HTTP or not bound:
            await app(scope, receive, send)
            return
        with structlog.contextvars.bound_contextvars(**bound):
            await app(scope, receive, send)

    return middleware
