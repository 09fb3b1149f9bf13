"""Exceptions of the gateway; every one derives from :class:`GatewayError`.

Each carries what its problem-details answer needs; :mod:`orra_gateway.problems` maps every
exception class to its HTTP status in one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orra_events import UncoveredPart

__all__ = [
    "BadRequest",
    "BrokerDown",
    "Conflict",
    "FieldError",
    "Forbidden",
    "GatewayError",
    "InvalidInput",
    "InvalidWebhookUrl",
    "KeyRevoked",
    "NotFound",
    "PlanningFailed",
    "SettingsError",
    "Unauthorized",
    "UnsupportedMediaType",
]


@dataclass(frozen=True)
class FieldError:
    """One field at fault in a request.

    Attributes:
        field: Dotted path of the field (``action.content``, ``data[1].field``) or the
            name of the header / query parameter.
        message: What is wrong with it.
    """

    field: str
    message: str


class GatewayError(Exception):
    """Root of every error raised by :mod:`orra_gateway`."""

    title = "Gateway error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class KeyRevoked(GatewayError):
    """An API key that was revoked is offered again (the bootstrap key at start)."""

    title = "API key revoked"


class SettingsError(GatewayError, ValueError):
    """A setting cannot be used; the gateway does not start."""

    title = "Invalid setting"


class InvalidInput(GatewayError):
    """The request is well-formed but its values cannot be accepted."""

    title = "Invalid input"

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class BadRequest(InvalidInput):
    """The request cannot be read.

    A body that is not UTF-8 or is nested too deep, a header with characters it may not hold.
    """

    title = "Bad request"


class UnsupportedMediaType(GatewayError):
    """The body is not JSON (its ``Content-Type`` says something else)."""

    title = "Unsupported media type"


class InvalidWebhookUrl(InvalidInput):
    """A webhook URL is not an acceptable delivery target."""

    title = "Invalid webhook URL"

    def __init__(self, detail: str, field: str = "webhook") -> None:
        super().__init__(detail, [FieldError(field, detail)])


class Unauthorized(GatewayError):
    """The request has no API key, or an unknown one."""

    title = "Unauthorized"


class Forbidden(GatewayError):
    """The key may not do this.

    A member key on an admin route, or a key acting on a project it may not manage.
    """

    title = "Forbidden"


class NotFound(GatewayError):
    """The resource does not exist, or belongs to another project."""

    title = "Not found"


class Conflict(GatewayError):
    """The request conflicts with the resource's state (an orchestration already ended)."""

    title = "Conflict"


class PlanningFailed(GatewayError):
    """The planner could not plan the action; ``reasons`` are the planner's.

    Attributes:
        orchestration_id: The orchestration that failed planning.
        status: ``not_actionable`` or ``failed``.
        reasons: The planner's reasons.
        uncovered: The parts of the action nothing registered serves.
    """

    title = "Action could not be planned"

    def __init__(
        self,
        orchestration_id: str,
        status: str,
        reasons: list[str],
        uncovered: list[UncoveredPart] | None = None,
    ) -> None:
        super().__init__("; ".join(reasons) or "the planner could not plan this action")
        self.orchestration_id = orchestration_id
        self.status = status
        self.reasons = reasons
        self.uncovered = uncovered or []


class BrokerDown(GatewayError):
    """The broker cannot be reached now; retry later."""

    title = "Service unavailable"
