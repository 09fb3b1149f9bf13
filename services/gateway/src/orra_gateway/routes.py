"""Every route of the gateway: the controllers of :mod:`orra_gateway.handlers`.

See docs/architecture.md, "HTTP API". Annotations are evaluated at runtime (no
``from __future__ import annotations``) because Litestar reads them.
"""

from typing import TYPE_CHECKING, Final

from litestar.datastructures import State
from litestar.di import Provide

from orra_gateway.handlers.api_keys import ApiKeyController, MeController
from orra_gateway.handlers.compensation import CompensationFailureController
from orra_gateway.handlers.events import EventController
from orra_gateway.handlers.groundings import GroundingController
from orra_gateway.handlers.health import HealthController
from orra_gateway.handlers.orchestrations import OrchestrationController
from orra_gateway.handlers.services import ServiceController
from orra_gateway.handlers.webhooks import WebhookController
from orra_gateway.service import Gateway

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

__all__ = ["DEPENDENCIES", "ROUTES"]


async def _gateway(state: State) -> Gateway:
    gateway: Gateway = state.gateway
    return gateway


DEPENDENCIES: Final = {"gateway": Provide(_gateway)}
"""What every handler can ask for: the :class:`Gateway` (the caller is ``request.user``)."""

ROUTES: Final["list[ControllerRouterHandler]"] = [
    HealthController,
    OrchestrationController,
    EventController,
    CompensationFailureController,
    ServiceController,
    MeController,
    ApiKeyController,
    WebhookController,
    GroundingController,
]
"""Every controller of the gateway."""
