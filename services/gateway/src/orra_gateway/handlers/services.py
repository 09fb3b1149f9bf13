"""``/services``: the project's registered services and agents."""

from litestar import Controller, get
from litestar.di import NamedDependency

from orra_gateway.auth import SECURITY, Caller
from orra_gateway.problems import problem_responses
from orra_gateway.schemas import ServiceList
from orra_gateway.service import Gateway

__all__ = ["ServiceController"]


class ServiceController(Controller):
    """The service registry as the caller's project sees it."""

    path = "/services"
    tags = ["services"]
    security = SECURITY

    @get(
        "/",
        summary="The project's registered services and agents, with health",
        responses=problem_responses(),
    )
    async def list_services(
        self, request: Caller, gateway: NamedDependency[Gateway]
    ) -> ServiceList:
        """Each service at the version new plans use, with its examples, versions and health.

        Health: ``healthy`` (a heartbeat within ``ORRA_HEALTH_FACTOR`` intervals),
        ``unhealthy``, ``down`` (no live instance for ``ORRA_SERVICE_DOWN_AFTER_S``: left out
        of new plans) or ``unknown``.
        """
        return ServiceList(items=gateway.read_model.services(request.user.project))
