"""HTTP routes of the gateway.

They translate requests into :class:`~orra_gateway.service.Gateway` calls and results into
responses. Annotations are evaluated at runtime (no ``from __future__ import annotations``)
because Litestar reads them. See docs/architecture.md, "HTTP API".
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from nats.js.api import ConsumerConfig, DeliverPolicy

from orra_events import WebhookRecord
from orra_events.bus import FOLLOW_HEARTBEAT_S
from orra_events.projection import CompensationFailure, OrchestrationStatus, OrchestrationView
from orra_gateway.errors import BrokerDown, FieldError, Forbidden, InvalidInput, Unauthorized
from orra_gateway.logread import HistoryUnavailable, read_history
from orra_gateway.problems import PROBLEM_MEDIA_TYPE, Problem
from orra_gateway.schemas import (
    AbortRequest,
    AbortResponse,
    ApiKeyCreated,
    ApiKeyItem,
    ApiKeyList,
    CompensationFailureList,
    CompensationResolveRequest,
    CreateApiKeyRequest,
    CreateWebhookRequest,
    Health,
    History,
    HistoryEvent,
    OrchestrationList,
    PlannedTask,
    Readiness,
    ServiceList,
    SubmitRequest,
    SubmitResponse,
    WebhookList,
    WebhookSecret,
)
from orra_gateway.service import Gateway
from orra_gateway.stores import ApiKeyRecord
from orra_gateway.webhook_urls import check_webhook_url

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler
    from nats.aio.msg import Msg

__all__ = ["DEPENDENCIES", "ROUTES", "SECURITY"]

SECURITY: list[dict[str, list[str]]] = [{"BearerAuth": []}]
"""OpenAPI security requirement of every authenticated route."""

_DESCRIPTIONS = {
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


def _problems(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI responses for the problem statuses a route can answer."""
    return {
        code: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS[code],
            media_type=PROBLEM_MEDIA_TYPE,
        )
        for code in (400, 401, 503, *codes)
    }


async def _gateway(state: State) -> Gateway:
    gateway: Gateway = state.gateway
    return gateway


async def _principal(
    request: Request[Any, Any, Any], gateway: NamedDependency[Gateway]
) -> ApiKeyRecord:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("missing 'Authorization: Bearer <api key>' header")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <api key>'")
    return await gateway.keys.authenticate(token)


async def _admin_principal(
    request: Request[Any, Any, Any], gateway: NamedDependency[Gateway]
) -> ApiKeyRecord:
    principal = await _principal(request, gateway)
    if not principal.is_admin:
        raise Forbidden(
            f"this needs an admin key of project {principal.project!r}; key {principal.id} "
            f"is a {principal.granted} key (ask an admin for one: `orra api-keys gen --role "
            "admin`)"
        )
    return principal


DEPENDENCIES = {
    "gateway": Provide(_gateway),
    "principal": Provide(_principal),
}
"""Dependencies every route can ask for: the :class:`Gateway` and the caller's key."""

ADMIN_ONLY = {"principal": Provide(_admin_principal)}
"""Route dependencies of an admin-only route: its ``principal`` must be an admin key (403)."""


# --- health ---------------------------------------------------------------------------------


@get("/healthz", tags=["health"], summary="The process is up")
async def healthz() -> Health:
    """Answer 200 while the process runs."""
    return Health()


@get(
    "/readyz",
    tags=["health"],
    summary="The gateway can serve: broker connected, read model caught up",
    responses={503: _problems()[503]},
)
async def readyz(gateway: NamedDependency[Gateway]) -> Readiness:
    """Answer 200 when ready, 503 (problem) when the broker is unreachable.

    Nothing about any project's data (no counts, no log positions): those are metrics, on
    the metrics port.
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


# --- orchestrations ---------------------------------------------------------------------------

_SEED_BODY = {
    "action": {"content": "Process order payment and update inventory"},
    "data": [
        {"field": "orderId", "value": "ORD123"},
        {"field": "amount", "value": "299.99"},
        {"field": "productId", "value": "PROD456"},
    ],
    "webhook": "https://your-app.com/webhooks/orra",
}


def _submit_response(orchestration_id: str, view: OrchestrationView | None) -> SubmitResponse:
    if view is None:
        return SubmitResponse(
            id=orchestration_id,
            orchestration_id=orchestration_id,
            status="planning",
            action="",
            tasks=[],
            parallel_groups=[],
            created_at=0.0,
        )
    return SubmitResponse(
        id=view.id,
        orchestration_id=view.id,
        status=view.status,
        action=view.action,
        tasks=[
            PlannedTask(id=t.id, service=t.service, input=t.input, serves=t.serves)
            for t in view.tasks
        ],
        parallel_groups=view.parallel_groups,
        created_at=view.created_at,
        uncovered=list(view.uncovered),
    )


@post(
    "/orchestrations",
    tags=["orchestrations"],
    summary="Submit an action; answer with its plan",
    description=(
        "Appends action.submitted, then waits (ORRA_GATEWAY_PLAN_WAIT_S) for the plan: 201 "
        "with tasks and parallel_groups, 202 with status 'planning' if the plan is not ready "
        "in time, 422 with the planner's reasons if it cannot be planned. A repeated request "
        "with the same Idempotency-Key returns the first orchestration."
    ),
    status_code=201,
    security=SECURITY,
    responses={
        202: ResponseSpec(
            data_container=SubmitResponse, description="Accepted; the plan is not ready yet"
        ),
        **_problems(413, 415, 422),
    },
)
async def submit_orchestration(
    data: Annotated[
        SubmitRequest,
        Body(examples=[Example(summary="The seed's request", value=_SEED_BODY)]),
    ],
    principal: NamedDependency[ApiKeyRecord],
    gateway: NamedDependency[Gateway],
    idempotency_key: Annotated[
        str | None,
        HeaderParameter(name="Idempotency-Key", max_length=255, required=False),
    ] = None,
) -> Response[SubmitResponse]:
    """Submit an action."""
    outcome = await gateway.submit(principal, data, idempotency_key)
    body = _submit_response(outcome.orchestration_id, outcome.view)
    headers = {"Location": f"/orchestrations/{outcome.orchestration_id}"}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(body, status_code=202 if body.status == "planning" else 201, headers=headers)


@get(
    "/orchestrations",
    tags=["orchestrations"],
    summary="List the project's orchestrations, newest first",
    security=SECURITY,
    responses=_problems(422),
)
async def list_orchestrations(
    principal: NamedDependency[ApiKeyRecord],
    gateway: NamedDependency[Gateway],
    status: Annotated[OrchestrationStatus | None, QueryParameter()] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
) -> OrchestrationList:
    """Page through orchestrations with ``limit`` and the previous page's ``nextCursor``."""
    items, next_cursor = await gateway.read_model.page(
        principal.project, status=status, limit=limit, cursor=cursor
    )
    return OrchestrationList(items=items, next_cursor=next_cursor)


@get(
    "/orchestrations/{orchestration_id:str}",
    tags=["orchestrations"],
    summary="Everything about one orchestration",
    security=SECURITY,
    responses=_problems(404),
)
async def get_orchestration(
    orchestration_id: FromPath[str],
    principal: NamedDependency[ApiKeyRecord],
    gateway: NamedDependency[Gateway],
) -> OrchestrationView:
    """The orchestration's view: status, tasks, results, plan info, webhook deliveries."""
    return await gateway.orchestration(principal, orchestration_id)


@post(
    "/orchestrations/{orchestration_id:str}/abort",
    tags=["orchestrations"],
    summary="Abort an orchestration that has not ended",
    status_code=200,
    security=SECURITY,
    responses=_problems(404, 409, 413, 415),
)
async def abort_orchestration(
    orchestration_id: FromPath[str],
    principal: NamedDependency[ApiKeyRecord],
    gateway: NamedDependency[Gateway],
    data: JSONBody[AbortRequest | None] = None,
) -> AbortResponse:
    """Append orchestration.aborted; 409 if the orchestration already ended."""
    reason = data.reason if data is not None else AbortRequest().reason
    status = await gateway.abort(principal, orchestration_id, reason)
    return AbortResponse(
        id=orchestration_id, orchestration_id=orchestration_id, status=status, reason=reason
    )


def _event_type(gateway: Gateway, subject: str) -> str:
    return gateway.bus.topology.strip(subject).rsplit(".", 1)[0]


async def _sse_messages(
    gateway: Gateway, sub: Any, queue: "asyncio.Queue[Msg]"
) -> AsyncIterator[ServerSentEventMessage]:
    keepalive = gateway.settings.sse_keepalive_s
    try:
        yield ServerSentEventMessage(data=None, comment="orra event stream", retry=2000)
        while True:
            try:
                msg = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                yield ServerSentEventMessage(data=None, comment="keep-alive")
                continue
            yield ServerSentEventMessage(
                data=msg.data.decode(errors="replace"),
                event=_event_type(gateway, msg.subject),
                id=str(msg.metadata.sequence.stream),
            )
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


@get(
    "/orchestrations/{orchestration_id:str}/events",
    tags=["orchestrations"],
    summary="The orchestration's events as Server-Sent Events: history, then live",
    description=(
        "Each message has `id:` = the event's stream sequence, `event:` = its type and "
        "`data:` = its JSON. Send `Last-Event-ID` to resume after a sequence. The stream "
        "stays open (with keep-alive comments) until the client closes it."
    ),
    media_type="text/event-stream",
    security=SECURITY,
    responses=_problems(404),
)
async def orchestration_events(
    orchestration_id: FromPath[str],
    principal: NamedDependency[ApiKeyRecord],
    gateway: NamedDependency[Gateway],
    last_event_id: Annotated[
        str | None, HeaderParameter(name="Last-Event-ID", required=False, max_length=32)
    ] = None,
) -> ServerSentEvent:
    """Stream the orchestration's events."""
    await gateway.orchestration(principal, orchestration_id)
    after = 0
    if last_event_id is not None and last_event_id.strip():
        try:
            after = int(last_event_id)
        except ValueError:
            after = -1
        if after < 0:
            raise InvalidInput(
                "invalid Last-Event-ID",
                [FieldError("Last-Event-ID", "must be an event id (a stream sequence) we sent")],
            )
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_message(msg: "Msg") -> None:
        queue.put_nowait(msg)

    topology = gateway.bus.topology
    config = (
        ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1)
        if after
        else ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    sub = await gateway.bus.js.subscribe(
        topology.history_of(orchestration_id),
        stream=topology.events_stream,
        cb=on_message,
        ordered_consumer=True,
        idle_heartbeat=FOLLOW_HEARTBEAT_S,
        config=config,
    )
    return ServerSentEvent(
        _sse_messages(gateway, sub, queue),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@get(
    "/orchestrations/{orchestration_id:str}/history",
    tags=["orchestrations"],
    summary="The orchestration's events so far, as JSON",
    description=(
        "Every event stored so far, in log order: `seq` (its stream sequence, the SSE "
        "stream's `id:`), `type` and the event. Follow on with "
        "`GET /orchestrations/{id}/events` and `Last-Event-ID` set to the last `seq`."
    ),
    security=SECURITY,
    responses=_problems(404),
)
async def orchestration_history(
    orchestration_id: FromPath[str],
    principal: NamedDependency[ApiKeyRecord],
    gateway: NamedDependency[Gateway],
) -> History:
    """The orchestration's events so far."""
    await gateway.orchestration(principal, orchestration_id)
    try:
        msgs = await read_history(gateway.bus, orchestration_id)
    except HistoryUnavailable as exc:
        raise BrokerDown(str(exc)) from None
    items: list[HistoryEvent] = []
    for msg in msgs:
        try:
            event = msgspec.json.decode(msg.data)
        except msgspec.DecodeError:
            continue  # parked by the consumers; not an event
        if isinstance(event, dict):
            items.append(
                HistoryEvent(
                    seq=msg.metadata.sequence.stream,
                    type=_event_type(gateway, msg.subject),
                    event=event,
                )
            )
    return History(items=items)


# --- compensation failures ----------------------------------------------------------------


@get(
    "/compensation-failures",
    tags=["compensation"],
    summary="Compensations that finally failed, kept for an operator (newest first)",
    security=SECURITY,
    responses=_problems(),
)
async def list_compensation_failures(
    principal: NamedDependency[ApiKeyRecord],
    gateway: NamedDependency[Gateway],
    status: Annotated[Literal["failed", "resolved", "ignored", "all"], QueryParameter()] = "failed",
) -> CompensationFailureList:
    """Open ones by default (``status=failed``); ``all`` lists resolved and ignored too."""
    items = await gateway.compensation_failures(principal, None if status == "all" else status)
    return CompensationFailureList(items=items)


async def _settle(
    gateway: Gateway,
    principal: ApiKeyRecord,
    orchestration_id: str,
    task_id: str,
    *,
    resolution: Literal["resolved", "ignored"],
    data: CompensationResolveRequest | None,
) -> CompensationFailure:
    note = data.note if data is not None else None
    return await gateway.resolve_compensation(
        principal, orchestration_id, task_id, resolution, note
    )


@post(
    "/compensation-failures/{orchestration_id:str}/{task_id:str}/resolve",
    tags=["compensation"],
    summary="Mark a failed compensation as fixed by hand (admin)",
    status_code=200,
    security=SECURITY,
    dependencies=ADMIN_ONLY,
    responses=_problems(403, 404, 409, 413, 415),
)
async def resolve_compensation_failure(
    orchestration_id: FromPath[str],
    task_id: FromPath[str],
    principal: NamedDependency[ApiKeyRecord],
    gateway: NamedDependency[Gateway],
    data: JSONBody[CompensationResolveRequest | None] = None,
) -> CompensationFailure:
    """Append task.compensation_resolved (resolution ``resolved``); 409 if already settled."""
    return await _settle(
        gateway, principal, orchestration_id, task_id, resolution="resolved", data=data
    )


@post(
    "/compensation-failures/{orchestration_id:str}/{task_id:str}/ignore",
    tags=["compensation"],
    summary="Dismiss a failed compensation: nothing will be done about it (admin)",
    status_code=200,
    security=SECURITY,
    dependencies=ADMIN_ONLY,
    responses=_problems(403, 404, 409, 413, 415),
)
async def ignore_compensation_failure(
    orchestration_id: FromPath[str],
    task_id: FromPath[str],
    principal: NamedDependency[ApiKeyRecord],
    gateway: NamedDependency[Gateway],
    data: JSONBody[CompensationResolveRequest | None] = None,
) -> CompensationFailure:
    """Append task.compensation_resolved (resolution ``ignored``); 409 if already settled."""
    return await _settle(
        gateway, principal, orchestration_id, task_id, resolution="ignored", data=data
    )


# --- services ------------------------------------------------------------------------------


@get(
    "/services",
    tags=["services"],
    summary="The project's registered services and agents, with health",
    security=SECURITY,
    responses=_problems(),
)
async def list_services(
    principal: NamedDependency[ApiKeyRecord], gateway: NamedDependency[Gateway]
) -> ServiceList:
    """Each service at the version new plans use, with its examples, versions and health.

    Health: ``healthy`` (a heartbeat within ``ORRA_HEALTH_FACTOR`` intervals),
    ``unhealthy``, ``down`` (no live instance for ``ORRA_SERVICE_DOWN_AFTER_S``: left out
    of new plans) or ``unknown``.
    """
    return ServiceList(items=gateway.read_model.services(principal.project))


# --- API keys ------------------------------------------------------------------------------


def _key_item(record: ApiKeyRecord) -> ApiKeyItem:
    return ApiKeyItem(
        id=record.id,
        prefix=record.prefix,
        project=record.project,
        name=record.name,
        created_at=record.created_at,
        role=record.granted,
        admin=record.is_admin,
    )


@get(
    "/me",
    tags=["api-keys"],
    summary="The calling key: its id, project and role",
    security=SECURITY,
    responses=_problems(),
)
async def who_am_i(principal: NamedDependency[ApiKeyRecord]) -> ApiKeyItem:
    """What the caller's key may do (``role``), for clients that adapt to it."""
    return _key_item(principal)


@post(
    "/api-keys",
    tags=["api-keys"],
    summary="Create an API key (shown once; admin)",
    status_code=201,
    security=SECURITY,
    dependencies=ADMIN_ONLY,
    responses=_problems(403, 413, 415),
)
async def create_api_key(
    principal: NamedDependency[ApiKeyRecord],
    gateway: NamedDependency[Gateway],
    data: JSONBody[CreateApiKeyRequest | None] = None,
) -> ApiKeyCreated:
    """Create a key in the caller's project (an admin of ``default`` may name another)."""
    request = data or CreateApiKeyRequest()
    project = request.project or principal.project
    if not principal.may_manage(project):
        raise Forbidden(
            f"an admin key of project {principal.project!r} cannot create keys for project "
            f"{project!r}; only admin keys of the 'default' project can"
        )
    key, record = await gateway.keys.create(project=project, name=request.name, role=request.role)
    return ApiKeyCreated(
        id=record.id,
        api_key=key,
        prefix=record.prefix,
        project=record.project,
        name=record.name,
        created_at=record.created_at,
        role=record.granted,
    )


@get(
    "/api-keys",
    tags=["api-keys"],
    summary="List the project's API keys with their roles (never the keys; admin)",
    security=SECURITY,
    dependencies=ADMIN_ONLY,
    responses=_problems(403),
)
async def list_api_keys(
    principal: NamedDependency[ApiKeyRecord], gateway: NamedDependency[Gateway]
) -> ApiKeyList:
    """Ids, prefixes and creation times of the project's keys."""
    records = await gateway.keys.list_keys(principal.project)
    return ApiKeyList(items=[_key_item(r) for r in records])


@delete(
    "/api-keys/{key_id:str}",
    tags=["api-keys"],
    summary="Revoke an API key (admin)",
    security=SECURITY,
    dependencies=ADMIN_ONLY,
    responses=_problems(403, 404, 409),
)
async def revoke_api_key(
    key_id: FromPath[str],
    principal: NamedDependency[ApiKeyRecord],
    gateway: NamedDependency[Gateway],
) -> None:
    """Delete the key; it stops working within a few seconds on every replica.

    The project's last admin key cannot be revoked (409).
    """
    await gateway.keys.revoke(principal.project, key_id)


# --- webhooks --------------------------------------------------------------------------------


@post(
    "/webhooks",
    tags=["webhooks"],
    summary="Register a project-level webhook URL (admin)",
    status_code=201,
    security=SECURITY,
    dependencies=ADMIN_ONLY,
    responses=_problems(403, 409, 413, 415, 422),
)
async def add_webhook(
    data: JSONBody[CreateWebhookRequest],
    principal: NamedDependency[ApiKeyRecord],
    gateway: NamedDependency[Gateway],
) -> WebhookRecord:
    """Every result of the project is also delivered to this URL."""
    url = check_webhook_url(
        data.url, allow_private=gateway.settings.allow_private_webhooks, field="url"
    )
    record, _ = await gateway.webhooks.add(principal.project, url)
    return record


@get(
    "/webhooks",
    tags=["webhooks"],
    summary="List the project's webhook URLs (admin)",
    security=SECURITY,
    dependencies=ADMIN_ONLY,
    responses=_problems(403),
)
async def list_webhooks(
    principal: NamedDependency[ApiKeyRecord], gateway: NamedDependency[Gateway]
) -> WebhookList:
    """The project's webhooks, oldest first."""
    return WebhookList(items=await gateway.webhooks.list_webhooks(principal.project))


@delete(
    "/webhooks/{webhook_id:str}",
    tags=["webhooks"],
    summary="Remove a project-level webhook (admin)",
    security=SECURITY,
    dependencies=ADMIN_ONLY,
    responses=_problems(403, 404, 409),
)
async def remove_webhook(
    webhook_id: FromPath[str],
    principal: NamedDependency[ApiKeyRecord],
    gateway: NamedDependency[Gateway],
) -> None:
    """Stop delivering the project's results to this webhook."""
    await gateway.webhooks.remove(principal.project, webhook_id)


@get(
    "/webhooks/secret",
    tags=["webhooks"],
    summary="The project's webhook signing secret (admin)",
    security=SECURITY,
    dependencies=ADMIN_ONLY,
    responses=_problems(403, 409),
)
async def get_webhook_secret(
    principal: NamedDependency[ApiKeyRecord], gateway: NamedDependency[Gateway]
) -> WebhookSecret:
    """The Standard Webhooks secret (``whsec_...``) deliveries are signed with."""
    record = await gateway.secrets.get(principal.project)
    return WebhookSecret(secret=record.secret, created_at=record.created_at)


@post(
    "/webhooks/secret/rotate",
    tags=["webhooks"],
    summary="Replace the project's webhook signing secret (admin)",
    status_code=200,
    security=SECURITY,
    dependencies=ADMIN_ONLY,
    responses=_problems(403, 409),
)
async def rotate_webhook_secret(
    principal: NamedDependency[ApiKeyRecord], gateway: NamedDependency[Gateway]
) -> WebhookSecret:
    """A new secret signs every delivery from now on."""
    record = await gateway.secrets.rotate(principal.project)
    return WebhookSecret(secret=record.secret, created_at=record.created_at)


ROUTES: "list[ControllerRouterHandler]" = [
    healthz,
    readyz,
    submit_orchestration,
    list_orchestrations,
    get_orchestration,
    abort_orchestration,
    orchestration_events,
    orchestration_history,
    list_compensation_failures,
    resolve_compensation_failure,
    ignore_compensation_failure,
    list_services,
    who_am_i,
    create_api_key,
    list_api_keys,
    revoke_api_key,
    add_webhook,
    list_webhooks,
    remove_webhook,
    get_webhook_secret,
    rotate_webhook_secret,
]
"""Every route of the gateway."""
