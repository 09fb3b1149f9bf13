"""``/orchestrations``: submit an action, list, read and abort orchestrations."""

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, HeaderParameter, JSONBody, QueryParameter

from orra_events import tracing
from orra_events.projection import OrchestrationStatus, OrchestrationView
from orra_gateway.auth import SECURITY, Caller, approvers_only
from orra_gateway.domain import submit_response
from orra_gateway.problems import problem_responses
from orra_gateway.schemas import (
    AbortRequest,
    AbortResponse,
    DecisionRequest,
    DecisionResponse,
    OrchestrationList,
    SubmitRequest,
    SubmitResponse,
)
from orra_gateway.service import Gateway

__all__ = ["OrchestrationController"]

_SEED_BODY = {
    "action": {"content": "Process order payment and update inventory"},
    "data": [
        {"field": "orderId", "value": "ORD123"},
        {"field": "amount", "value": "299.99"},
        {"field": "productId", "value": "PROD456"},
    ],
    "webhook": "https://your-app.com/webhooks/orra",
}


class OrchestrationController(Controller):
    """Orchestrations of the caller's project."""

    path = "/orchestrations"
    tags = ["orchestrations"]
    security = SECURITY

    @post(
        "/",
        summary="Submit an action; answer with its plan",
        description=(
            "Appends action.submitted, then waits (ORRA_GATEWAY_PLAN_WAIT_S) for the plan: 201 "
            "with tasks and parallel_groups, 202 with status 'planning' if the plan is not "
            "ready in time, 422 with the planner's reasons if it cannot be planned. A repeated "
            "request with the same Idempotency-Key returns the first orchestration."
        ),
        status_code=201,
        responses={
            202: ResponseSpec(
                data_container=SubmitResponse, description="Accepted; the plan is not ready yet"
            ),
            **problem_responses(413, 415, 422),
        },
    )
    async def submit_orchestration(
        self,
        data: Annotated[
            SubmitRequest,
            Body(examples=[Example(summary="The seed's request", value=_SEED_BODY)]),
        ],
        request: Caller,
        gateway: NamedDependency[Gateway],
        idempotency_key: Annotated[
            str | None,
            HeaderParameter(name="Idempotency-Key", max_length=255, required=False),
        ] = None,
    ) -> Response[SubmitResponse]:
        """Submit an action."""
        with tracing.attached(request.headers):  # the caller's traceparent, if any
            outcome = await gateway.submit(request.user, data, idempotency_key)
        body = submit_response(outcome.orchestration_id, outcome.view)
        headers = {"Location": f"/orchestrations/{outcome.orchestration_id}"}
        if outcome.replayed:
            headers["Idempotent-Replayed"] = "true"
        status = 202 if body.status == "planning" else 201
        return Response(body, status_code=status, headers=headers)

    @get(
        "/",
        summary="List the project's orchestrations, newest first",
        responses=problem_responses(422),
    )
    async def list_orchestrations(
        self,
        request: Caller,
        gateway: NamedDependency[Gateway],
        *,
        status: Annotated[OrchestrationStatus | None, QueryParameter()] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
        q: Annotated[
            str | None,
            QueryParameter(
                max_length=1024,
                description=(
                    "Search: words that must all occur (ignoring case) in the id or the "
                    "action text; up to 8 words, 200 characters"
                ),
            ),
        ] = None,
    ) -> OrchestrationList:
        """Page through orchestrations with ``limit`` and the previous page's ``nextCursor``.

        ``status`` and ``q`` filter; a filtered page may be short and still have a next one.
        """
        items, next_cursor = await gateway.read_model.page(
            request.user.project, status=status, limit=limit, cursor=cursor, q=q
        )
        return OrchestrationList(items=items, next_cursor=next_cursor)

    @get(
        "/{orchestration_id:str}",
        summary="Everything about one orchestration",
        responses=problem_responses(404),
    )
    async def get_orchestration(
        self, orchestration_id: FromPath[str], request: Caller, gateway: NamedDependency[Gateway]
    ) -> OrchestrationView:
        """The orchestration's view: status, tasks, results, plan info, webhook deliveries."""
        return await gateway.orchestration(request.user, orchestration_id)

    @post(
        "/{orchestration_id:str}/abort",
        summary="Abort an orchestration that has not ended",
        status_code=200,
        responses=problem_responses(404, 409, 413, 415),
    )
    async def abort_orchestration(
        self,
        orchestration_id: FromPath[str],
        request: Caller,
        gateway: NamedDependency[Gateway],
        data: JSONBody[AbortRequest | None] = None,
    ) -> AbortResponse:
        """Append orchestration.aborted; 409 if the orchestration already ended."""
        reason = data.reason if data is not None else AbortRequest().reason
        status = await gateway.abort(request.user, orchestration_id, reason)
        return AbortResponse(
            id=orchestration_id, orchestration_id=orchestration_id, status=status, reason=reason
        )

    @post(
        "/{orchestration_id:str}/approve",
        summary="Approve a plan held for preview, or a task held by its service's gate",
        description=(
            "Appends orchestration.approved by the caller's key (an admin or approver key): "
            "the plan runs, or the task is dispatched. 409 when nothing of it waits for "
            "approval (already decided, expired or ended; the detail says which)."
        ),
        status_code=200,
        guards=[approvers_only],
        responses=problem_responses(403, 404, 409, 413, 415),
    )
    async def approve_orchestration(
        self,
        orchestration_id: FromPath[str],
        request: Caller,
        gateway: NamedDependency[Gateway],
        data: JSONBody[DecisionRequest | None] = None,
    ) -> DecisionResponse:
        """Approve what waits for approval."""
        return await _decide(gateway, request, orchestration_id, data, approve=True)

    @post(
        "/{orchestration_id:str}/reject",
        summary="Reject a plan held for preview, or a task held by its service's gate",
        description=(
            "Appends orchestration.rejected by the caller's key (an admin or approver key): "
            "a plan ends aborted having run nothing; a task fails (not retried) and what "
            "completed is compensated. 409 as for approve."
        ),
        status_code=200,
        guards=[approvers_only],
        responses=problem_responses(403, 404, 409, 413, 415),
    )
    async def reject_orchestration(
        self,
        orchestration_id: FromPath[str],
        request: Caller,
        gateway: NamedDependency[Gateway],
        data: JSONBody[DecisionRequest | None] = None,
    ) -> DecisionResponse:
        """Reject what waits for approval."""
        return await _decide(gateway, request, orchestration_id, data, approve=False)


async def _decide(
    gateway: Gateway,
    request: Caller,
    orchestration_id: str,
    data: DecisionRequest | None,
    *,
    approve: bool,
) -> DecisionResponse:
    body = data if data is not None else DecisionRequest()
    view = await gateway.decide(
        request.user, orchestration_id, approve=approve, task_id=body.task, reason=body.reason
    )
    return DecisionResponse(
        id=orchestration_id,
        orchestration_id=orchestration_id,
        decision="approved" if approve else "rejected",
        task=body.task,
        by=request.user.id,
        reason=body.reason,
        status=view.status,
    )
