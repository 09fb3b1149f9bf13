"""``/groundings`` (admin): the worked examples and constraints the LLM planner is shown.

Groundings belong to the installation, not to a project, as service registrations do: the
planner reads every one of them. The documents are checked by the rules the planner reads
them with (:mod:`orra_events.grounding`).
"""

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from orra_events.errors import InvalidGrounding
from orra_events.grounding import Grounding, groundings_from_documents
from orra_gateway.auth import SECURITY, admin_only
from orra_gateway.errors import FieldError, InvalidInput, NotFound
from orra_gateway.problems import problem_responses
from orra_gateway.schemas import GroundingList, GroundingsApplied, GroundingsRequest
from orra_gateway.service import Gateway

__all__ = ["GroundingController"]


class GroundingController(Controller):
    """Store, list and delete groundings (admin keys only)."""

    path = "/groundings"
    tags = ["groundings"]
    security = SECURITY
    guards = [admin_only]

    @post(
        "/",
        summary="Store groundings, replacing those of the same names (admin)",
        status_code=200,
        responses=problem_responses(400, 403, 413, 415, 422, 503),
    )
    async def apply_groundings(
        self, data: JSONBody[GroundingsRequest], gateway: NamedDependency[Gateway]
    ) -> GroundingsApplied:
        """Every document is checked before any is stored: one bad document stores none."""
        try:
            groundings = groundings_from_documents(data.groundings)
        except InvalidGrounding as exc:
            field = "groundings" if exc.index is None else f"groundings[{exc.index}]"
            raise InvalidInput(str(exc), [FieldError(field, str(exc))]) from None
        await gateway.groundings.put(groundings)
        return GroundingsApplied(applied=[g.name for g in groundings])

    @get("/", summary="List the groundings (admin)", responses=problem_responses(403, 503))
    async def list_groundings(self, gateway: NamedDependency[Gateway]) -> GroundingList:
        """Every grounding, sorted by name."""
        return GroundingList(items=await gateway.groundings.list())

    @get(
        "/{name:str}",
        summary="One grounding (admin)",
        responses=problem_responses(403, 404, 503),
    )
    async def get_grounding(
        self, name: FromPath[str], gateway: NamedDependency[Gateway]
    ) -> Grounding:
        """The grounding of that name."""
        grounding = await gateway.groundings.get(name)
        if grounding is None:
            raise NotFound(f"no grounding named {name!r}")
        return grounding

    @delete(
        "/{name:str}",
        summary="Delete a grounding (admin)",
        responses=problem_responses(403, 404, 503),
    )
    async def remove_grounding(
        self, name: FromPath[str], gateway: NamedDependency[Gateway]
    ) -> None:
        """The planner stops using it for the next action it plans."""
        if not await gateway.groundings.remove(name):
            raise NotFound(f"no grounding named {name!r}")
