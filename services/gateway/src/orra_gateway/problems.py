"""RFC 9457 problem details, and the one table that maps exceptions to HTTP statuses.

Every error answer of the gateway is ``application/problem+json``::

    {"type": "urn:orra:problem:invalid-input", "title": "Invalid input", "status": 422,
     "detail": "...", "errors": [{"field": "action.content", "message": "..."}]}

:data:`EXCEPTION_HANDLERS` is given to Litestar; :data:`STATUS_OF` is the table of domain
exceptions; :func:`problem_for` answers an error raised outside a handler (authentication)
with the same table. Nothing else in the gateway chooses an error status.
:func:`problem_responses` documents a route's problem answers in the OpenAPI document.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

import msgspec
import nats.errors
import structlog
from litestar import Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

from orra_events import BrokerUnavailable, UncoveredPart
from orra_gateway.errors import (
    BadRequest,
    BrokerDown,
    Conflict,
    Forbidden,
    GatewayError,
    InvalidInput,
    NotFound,
    PlanningFailed,
    Unauthorized,
    UnsupportedMediaType,
)

if TYPE_CHECKING:
    from litestar import Request
    from litestar.types import ExceptionHandlersMap

__all__ = [
    "EXCEPTION_HANDLERS",
    "PROBLEM_MEDIA_TYPE",
    "STATUS_OF",
    "Problem",
    "ProblemField",
    "problem_for",
    "problem_response",
    "problem_responses",
]

log = structlog.get_logger("orra.gateway")

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"

STATUS_OF: Final[dict[type[GatewayError], tuple[int, str]]] = {
    BadRequest: (400, "bad-request"),
    InvalidInput: (422, "invalid-input"),
    Unauthorized: (401, "unauthorized"),
    Forbidden: (403, "forbidden"),
    NotFound: (404, "not-found"),
    Conflict: (409, "conflict"),
    UnsupportedMediaType: (415, "unsupported-media-type"),
    PlanningFailed: (422, "planning-failed"),
    BrokerDown: (503, "broker-unavailable"),
}
"""HTTP status and problem type slug of every domain exception (subclasses inherit)."""


_DESCRIPTIONS: Final = {
    400: "The request does not match the API schema (the field at fault is named)",
    401: "Missing, unknown or revoked API key",
    403: "The key may not do this (an admin key is needed)",
    404: "No such resource in the caller's project",
    409: "The resource's state does not allow it",
    413: "The request body is too large",
    415: "The request body is not JSON",
    422: "The values cannot be accepted (the field at fault is named)",
    503: "The broker is unavailable; retry later",
}


class ProblemField(msgspec.Struct, kw_only=True):
    """One field at fault.

    Attributes:
        field: Dotted path in the body (``action.content``, ``data[0].value``), or the name
            of the query parameter or header.
        message: What is wrong with it.
    """

    field: str
    message: str


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """An RFC 9457 problem details object.

    Attributes:
        type: URI of the kind of problem (``urn:orra:problem:<slug>``, or ``about:blank``).
        title: Short summary of the kind of problem.
        status: HTTP status code.
        detail: What went wrong this time.
        instance: The request path.
        errors: Fields at fault.
        reasons: The planner's reasons (planning failures).
        orchestration_id: The orchestration concerned, when there is one.
        uncovered: The parts of the action nothing registered serves (planning failures).
    """

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[ProblemField] | None = None
    reasons: list[str] | None = None
    orchestration_id: str | None = None
    uncovered: list[UncoveredPart] | None = None


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response[Problem]:
    """A response carrying ``problem`` with its status and media type."""
    return Response(
        content=problem,
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _status_of(exc: GatewayError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        found = STATUS_OF.get(cls)
        if found is not None:
            return found
    return 500, "internal"


def _on_gateway_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    assert isinstance(exc, GatewayError)
    status, slug = _status_of(exc)
    problem = Problem(
        type=f"urn:orra:problem:{slug}",
        title=exc.title,
        status=status,
        detail=exc.detail,
        instance=request.url.path,
    )
    headers: dict[str, str] = {}
    if isinstance(exc, InvalidInput) and exc.errors:
        problem.errors = [ProblemField(field=e.field, message=e.message) for e in exc.errors]
    if isinstance(exc, PlanningFailed):
        problem.reasons = exc.reasons
        problem.orchestration_id = exc.orchestration_id
        problem.uncovered = exc.uncovered or None
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="orra"'
    if isinstance(exc, BrokerDown):
        headers["Retry-After"] = "1"
    return problem_response(problem, headers)


_NAMED_FIELD = re.compile(r"(?:unknown|missing required) field `([^`]*)`")


def _field_path(key: str, message: str) -> str:
    """The dotted path of a body field from Litestar's msgspec error key and message."""
    unknown = _NAMED_FIELD.search(message)
    if unknown is None:
        return key or "body"
    # Litestar names the root of the body "data" (the handler's parameter name).
    parent = "" if key in {"", "data"} else key
    return f"{parent}.{unknown.group(1)}" if parent else unknown.group(1)


def _on_validation_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    assert isinstance(exc, ValidationException)
    errors: list[ProblemField] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid value"))
        key = str(item.get("key") or "")
        source = item.get("source")
        field = _field_path(key, message) if source in {None, "body"} else key
        errors.append(ProblemField(field=field, message=message))
    detail = exc.detail
    if not errors and detail:
        errors.append(ProblemField(field="body", message=detail))
        detail = f"request body is not valid JSON: {detail}"
    return problem_response(
        Problem(
            type="urn:orra:problem:bad-request",
            title="Bad request",
            status=400,
            detail=detail or "the request does not match the API schema",
            instance=request.url.path,
            errors=errors or None,
        )
    )


def _on_http_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    detail = exc.detail if exc.detail and exc.detail != phrase else None
    if status == 413:
        detail = "request body is too large"
    return problem_response(
        Problem(
            type="about:blank",
            title=phrase,
            status=status,
            detail=detail,
            instance=request.url.path,
        ),
        dict(exc.headers) if exc.headers else None,
    )


def _on_broker_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    log.warning("broker unavailable", path=request.url.path, error=repr(exc))
    return _on_gateway_error(request, BrokerDown(f"the message broker is unavailable: {exc}"))


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    log.error("unexpected error", path=request.url.path, exc_info=exc)
    return problem_response(
        Problem(
            type="about:blank",
            title="Internal Server Error",
            status=500,
            detail="an unexpected error happened; it has been logged",
            instance=request.url.path,
        )
    )


EXCEPTION_HANDLERS: Final[ExceptionHandlersMap] = {
    GatewayError: _on_gateway_error,
    ValidationException: _on_validation_error,
    HTTPException: _on_http_exception,
    BrokerUnavailable: _on_broker_error,
    nats.errors.Error: _on_broker_error,
    TimeoutError: _on_broker_error,
    Exception: _on_unexpected,
}
"""Exception → problem-details handler, by class (Litestar picks the closest in the MRO)."""


def problem_for(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    """The answer to ``exc``, by the handler :data:`EXCEPTION_HANDLERS` has for its class."""
    for cls in type(exc).__mro__:
        handler = EXCEPTION_HANDLERS.get(cls)
        if handler is not None:
            response: Response[Problem] = handler(request, exc)
            return response
    return _on_unexpected(request, exc)


def problem_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI responses of the problem statuses a route can answer (400, 401, 503 always)."""
    return {
        code: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS[code],
            media_type=PROBLEM_MEDIA_TYPE,
        )
        for code in (400, 401, 503, *codes)
    }
