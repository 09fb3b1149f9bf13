"""``/compensation-failures``: compensations that finally failed, and settling them."""

from typing import Annotated, Literal

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from orra_events.projection import CompensationFailure
from orra_gateway.auth import SECURITY, Caller, admin_only
from orra_gateway.problems import problem_responses
from orra_gateway.schemas import CompensationFailureList, CompensationResolveRequest
from orra_gateway.service import Gateway

__all__ = ["CompensationFailureController"]


class CompensationFailureController(Controller):
    """Failed compensations of the caller's project; settling one needs an admin key."""

    path = "/compensation-failures"
    tags = ["compensation"]
    security = SECURITY

    @get(
        "/",
        summary="Compensations that finally failed, kept for an operator (newest first)",
        responses=problem_responses(),
    )
    async def list_compensation_failures(
        self,
        request: Caller,
        gateway: NamedDependency[Gateway],
        status: Annotated[
            Literal["failed", "resolved", "ignored", "all"], QueryParameter()
        ] = "failed",
    ) -> CompensationFailureList:
        """Open ones by default (``status=failed``); ``all`` lists resolved and ignored too."""
        items = await gateway.compensation_failures(
            request.user, None if status == "all" else status
        )
        return CompensationFailureList(items=items)

    @post(
        "/{orchestration_id:str}/{task_id:str}/resolve",
        summary="Mark a failed compensation as fixed by hand (admin)",
        status_code=200,
        guards=[admin_only],
        responses=problem_responses(403, 404, 409, 413, 415),
    )
    async def resolve_compensation_failure(
        self,
        orchestration_id: FromPath[str],
        task_id: FromPath[str],
        request: Caller,
        gateway: NamedDependency[Gateway],
        data: JSONBody[CompensationResolveRequest | None] = None,
    ) -> CompensationFailure:
        """Append task.compensation_resolved (resolution ``resolved``); 409 if already settled."""
        note = data.note if data is not None else None
        return await gateway.resolve_compensation(
            request.user, orchestration_id, task_id, "resolved", note
        )

    @post(
        "/{orchestration_id:str}/{task_id:str}/ignore",
        summary="Dismiss a failed compensation: nothing will be done about it (admin)",
        status_code=200,
        guards=[admin_only],
        responses=problem_responses(403, 404, 409, 413, 415),
    )
    async def ignore_compensation_failure(
        self,
        orchestration_id: FromPath[str],
        task_id: FromPath[str],
        request: Caller,
        gateway: NamedDependency[Gateway],
        data: JSONBody[CompensationResolveRequest | None] = None,
    ) -> CompensationFailure:
        """Append task.compensation_resolved (resolution ``ignored``); 409 if already settled."""
        note = data.note if data is not None else None
        return await gateway.resolve_compensation(
            request.user, orchestration_id, task_id, "ignored", note
        )
