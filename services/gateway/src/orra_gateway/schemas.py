"""Request and response bodies of the HTTP API, as msgspec structs.

Request bodies refuse unknown fields; JSON names are camelCase except ``parallel_groups``.
The OpenAPI document at ``/schema/openapi.json`` is generated from these.
"""

from typing import Annotated, Any, Literal

import msgspec

from orra_events import ExecutionMode, UncoveredPart, WebhookRecord
from orra_events.apikeys import DEFAULT_ROLE, Role
from orra_events.grounding import Grounding
from orra_events.projection import (
    ApprovalView,
    CompensationFailure,
    OrchestrationStatus,
    OrchestrationSummary,
)
from orra_gateway.readmodel import ServiceView

__all__ = [
    "AbortRequest",
    "AbortResponse",
    "ActionBody",
    "ApiKeyCreated",
    "ApiKeyItem",
    "ApiKeyList",
    "CompensationFailureList",
    "CompensationResolveRequest",
    "CreateApiKeyRequest",
    "CreateWebhookRequest",
    "DataFieldBody",
    "DecisionRequest",
    "DecisionResponse",
    "GroundingList",
    "GroundingsApplied",
    "GroundingsRequest",
    "Health",
    "History",
    "HistoryEvent",
    "OrchestrationList",
    "PlannedTask",
    "Readiness",
    "ServiceList",
    "SubmitRequest",
    "SubmitResponse",
    "WebhookList",
    "WebhookSecret",
]

ProjectName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class ActionBody(msgspec.Struct, forbid_unknown_fields=True):
    """The action: what the user wants done, in plain language."""

    content: Annotated[str, msgspec.Meta(max_length=10_000)]
    """What to do; an empty or blank one is refused (422, naming ``action.content``)."""


class DataFieldBody(msgspec.Struct, forbid_unknown_fields=True):
    """One piece of action data; ``value`` is any JSON value."""

    field: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    value: Any


class SubmitRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Body of ``POST /orchestrations``, exactly the seed's."""

    action: ActionBody
    data: Annotated[list[DataFieldBody], msgspec.Meta(max_length=256)] = msgspec.field(
        default_factory=list
    )
    webhook: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)] | None = None
    mode: ExecutionMode | None = None
    pause_grace_s: Annotated[float, msgspec.Meta(ge=0, le=7 * 24 * 3600)] | None = msgspec.field(
        default=None, name="pauseGraceS"
    )
    """How long tasks may wait for an unhealthy service before the orchestration fails
    (seconds; default 300)."""
    allow_partial: bool = msgspec.field(default=False, name="allowPartial")
    """Accept a plan that leaves parts of the action out (listed in ``uncovered``); by
    default an action with a part nothing registered can serve is refused (422)."""
    execute: bool = True
    """``false``: plan only. The answer is the plan (status ``awaiting_approval``); nothing
    runs until ``POST /orchestrations/{id}/approve`` (``.../reject`` drops it; it expires
    after ``ORRA_APPROVAL_TIMEOUT_S``, one hour by default)."""
    approval_timeout_s: Annotated[float, msgspec.Meta(ge=1, le=7 * 24 * 3600)] | None = (
        msgspec.field(default=None, name="approvalTimeoutS")
    )
    """How long the plan (``execute: false``) or a task held by its service's approval gate
    waits for a decision before it is dropped (seconds; default ``ORRA_APPROVAL_TIMEOUT_S``)."""


class PlannedTask(msgspec.Struct, kw_only=True):
    """One task of the plan, as in the seed's response."""

    id: str
    service: str
    input: dict[str, Any]
    serves: str | None = None
    """The part of the action it serves; ``null`` when it only provides data to another."""


class SubmitResponse(msgspec.Struct, kw_only=True, rename="camel"):
    """Answer of ``POST /orchestrations``: the orchestration and its plan."""

    id: str
    orchestration_id: str
    status: OrchestrationStatus
    action: str
    tasks: list[PlannedTask]
    parallel_groups: list[list[str]] = msgspec.field(name="parallel_groups")
    created_at: float
    uncovered: list[UncoveredPart] = msgspec.field(default_factory=list)
    """The parts of the action the plan leaves out (only with ``allowPartial``)."""
    parts: list[str] = msgspec.field(default_factory=list)
    """The action's request parts, in the user's words (each task ``serves`` one)."""
    approval: ApprovalView | None = None
    """A plan submitted with ``execute: false``: waiting for approval (and until when)."""


class DecisionRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Optional body of ``POST /orchestrations/{id}/approve`` and ``.../reject``."""

    task: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    """A task held by its service's approval gate; omitted: the plan held for preview."""
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class DecisionResponse(msgspec.Struct, kw_only=True, rename="camel"):
    """Answer of an accepted approval or rejection."""

    id: str
    orchestration_id: str
    decision: Literal["approved", "rejected"]
    task: str | None
    by: str
    reason: str | None
    status: OrchestrationStatus


class OrchestrationList(msgspec.Struct, kw_only=True, rename="camel"):
    """A page of orchestrations, newest first."""

    items: list[OrchestrationSummary]
    next_cursor: str | None = None


class AbortRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Optional body of ``POST /orchestrations/{id}/abort``."""

    reason: Annotated[str, msgspec.Meta(max_length=2000)] = "aborted by user"


class AbortResponse(msgspec.Struct, kw_only=True, rename="camel"):
    """Answer of an accepted abort."""

    id: str
    orchestration_id: str
    status: OrchestrationStatus
    reason: str


class HistoryEvent(msgspec.Struct, kw_only=True):
    """One event of an orchestration's history."""

    seq: int
    type: str
    event: dict[str, Any]


class History(msgspec.Struct, kw_only=True):
    """An orchestration's events so far, in log order."""

    items: list[HistoryEvent]


class CompensationFailureList(msgspec.Struct, kw_only=True):
    """Compensations that finally failed, newest first."""

    items: list[CompensationFailure]


class CompensationResolveRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Optional body of ``POST /compensation-failures/{orch}/{task}/resolve|ignore``."""

    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class ServiceList(msgspec.Struct, kw_only=True):
    """Registered services of the project."""

    items: list[ServiceView]


class CreateApiKeyRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Body of ``POST /api-keys``.

    ``project`` defaults to the caller's; another one needs an admin key of the ``default``
    project. ``role`` defaults to ``member``.
    """

    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    project: ProjectName | None = None
    role: Role = DEFAULT_ROLE


class ApiKeyItem(msgspec.Struct, kw_only=True, rename="camel"):
    """An API key as listed (and the caller's own key, ``GET /me``): never the key itself.

    ``admin`` is ``role == "admin"``, kept for clients written before roles.
    """

    id: str
    prefix: str
    project: str
    name: str | None
    created_at: float
    role: Role
    admin: bool


class ApiKeyCreated(msgspec.Struct, kw_only=True, rename="camel"):
    """A new API key; ``apiKey`` is shown this once and stored only as a hash."""

    id: str
    api_key: str
    prefix: str
    project: str
    name: str | None
    created_at: float
    role: Role


class ApiKeyList(msgspec.Struct, kw_only=True):
    """The project's API keys."""

    items: list[ApiKeyItem]


class CreateWebhookRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Body of ``POST /webhooks``."""

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]


class WebhookList(msgspec.Struct, kw_only=True):
    """The project's webhook URLs."""

    items: list[WebhookRecord]


class GroundingsRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Body of ``POST /groundings``: grounding documents (see :mod:`orra_events.grounding`).

    ``orra grounding apply`` sends the documents of a YAML file this way.
    """

    groundings: list[dict[str, Any]]


class GroundingsApplied(msgspec.Struct, kw_only=True):
    """The names of the groundings stored, in the order given."""

    applied: list[str]


class GroundingList(msgspec.Struct, kw_only=True):
    """Every stored grounding, by name."""

    items: list[Grounding]


class WebhookSecret(msgspec.Struct, kw_only=True, rename="camel"):
    """The project's webhook signing secret (Standard Webhooks ``whsec_...``)."""

    secret: str
    created_at: float


class Health(msgspec.Struct, kw_only=True):
    """Answer of ``/healthz``."""

    status: Literal["ok"] = "ok"


class Readiness(msgspec.Struct, kw_only=True, rename="camel"):
    """Answer of ``/readyz``.

    Nothing about any project's data: counts and log positions are metrics, on the
    metrics port.

    Attributes:
        status: ``ready``.
        broker: ``connected``.
        index_caught_up: Whether the list index has replayed the log it found at start
            (until then list requests wait for it).
    """

    status: Literal["ready"]
    broker: Literal["connected"]
    index_caught_up: bool = True
