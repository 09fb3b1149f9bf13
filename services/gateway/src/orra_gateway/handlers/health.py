"""``/healthz`` and ``/readyz``: the probes, which need no key."""

from litestar import Controller, get
from litestar.di import NamedDependency

from orra_gateway.auth import PUBLIC
from orra_gateway.errors import BrokerDown
from orra_gateway.problems import problem_responses
from orra_gateway.schemas import Health, Readiness
from orra_gateway.service import Gateway

__all__ = ["HealthController"]


class HealthController(Controller):
    """The liveness and readiness probes (public: no API key)."""

    path = "/"
    tags = ["health"]

    @get("/healthz", summary="The process is up", opt={PUBLIC: True})
    async def healthz(self) -> Health:
        """Answer 200 while the process runs."""
        return Health()

    @get(
        "/readyz",
        summary="The gateway can serve: broker connected, read model caught up",
        responses={503: problem_responses()[503]},
        opt={PUBLIC: True},
    )
    async def readyz(self, gateway: NamedDependency[Gateway]) -> Readiness:
        """Answer 200 when ready, 503 (problem) when the broker is unreachable.

        Nothing about any project's data (no counts, no log positions): those are metrics,
        on the metrics port.
        """
        if not gateway.bus.connected:
            raise BrokerDown("not connected to the broker")
        if not gateway.read_model.caught_up.is_set():
            raise BrokerDown("the read model is still starting")
        return Readiness(
            status="ready",
            broker="connected",
            index_caught_up=gateway.read_model.index.caught_up.is_set(),
        )
