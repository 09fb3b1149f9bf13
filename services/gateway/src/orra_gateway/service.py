"""The gateway's state and use cases, independent of HTTP.

:class:`Gateway` owns the bus, the read model and the key-value stores; the HTTP handlers
(:mod:`orra_gateway.handlers`) only translate HTTP to calls of its methods. Its pure rules
are in :mod:`orra_gateway.domain`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

import msgspec
import structlog

from orra_events import (
    WEBHOOK_SECRETS_BUCKET,
    WEBHOOKS_BUCKET,
    ActionSubmitted,
    DataField,
    OrchestrationAborted,
    OrchestrationApproved,
    OrchestrationRejected,
    TaskCompensationResolved,
    ids,
    new_orchestration_id,
)
from orra_events.apikeys import ADMIN
from orra_events.grounding import GroundingStore
from orra_events.projection import (
    CompensationFailure,
    OrchestrationStatus,
    OrchestrationView,
    compensation_failures,
)
from orra_gateway.domain import (
    check_idempotency_key,
    check_submission,
    decision_problem,
    request_fingerprint,
)
from orra_gateway.errors import (
    BrokerDown,
    Conflict,
    KeyRevoked,
    NotFound,
    PlanningFailed,
)
from orra_gateway.readmodel import ReadModel
from orra_gateway.stores import (
    OPERATOR_PROJECT,
    ApiKeyRecord,
    ApiKeyStore,
    IdempotencyStore,
    SecretStore,
    WebhookStore,
)

if TYPE_CHECKING:
    from orra_events import Bus
    from orra_gateway.schemas import SubmitRequest
    from orra_gateway.settings import GatewaySettings

__all__ = ["DEFAULT_PROJECT", "Gateway", "Submission"]

log = structlog.get_logger("orra.gateway")

DEFAULT_PROJECT = OPERATOR_PROJECT
"""The project of the bootstrap key (the local user of ``orra up``)."""


class Submission(msgspec.Struct, kw_only=True):
    """Outcome of a submitted action.

    Attributes:
        orchestration_id: The orchestration created (or found, for a repeated key).
        view: Its view when the wait ended (``None`` if the read model has not seen it).
        replayed: Whether an earlier request with the same ``Idempotency-Key`` created it.
    """

    orchestration_id: str
    view: OrchestrationView | None
    replayed: bool


class Gateway:
    """Everything the HTTP routes need, connected to one bus.

    Use :meth:`start` to build one.
    """

    def __init__(
        self,
        *,
        bus: Bus,
        settings: GatewaySettings,
        read_model: ReadModel,
        keys: ApiKeyStore,
        idempotency: IdempotencyStore,
        webhooks: WebhookStore,
        secrets: SecretStore,
        groundings: GroundingStore,
    ) -> None:
        self.bus = bus
        self.settings = settings
        self.read_model = read_model
        self.keys = keys
        self.idempotency = idempotency
        self.webhooks = webhooks
        self.secrets = secrets
        self.groundings = groundings
        self.rebuild_s = 0.0

    @classmethod
    async def start(cls, bus: Bus, settings: GatewaySettings) -> Gateway:
        """Open the buckets, register the bootstrap key, rebuild the read model."""
        keys = ApiKeyStore(await bus.kv("apikeys"), cache_s=settings.key_cache_s)
        idempotency = IdempotencyStore(
            await bus.kv("idempotency", ttl_s=settings.idempotency_ttl_s)
        )
        webhooks = WebhookStore(await bus.kv(WEBHOOKS_BUCKET))
        secrets = SecretStore(await bus.kv(WEBHOOK_SECRETS_BUCKET))
        groundings = await GroundingStore.open(bus)
        if settings.bootstrap_key:
            try:
                record = await keys.register(
                    settings.bootstrap_key, project=DEFAULT_PROJECT, name="bootstrap", role=ADMIN
                )
            except KeyRevoked:
                log.warning(
                    "the bootstrap key was revoked and stays revoked; set a new "
                    "ORRA_GATEWAY_BOOTSTRAP_KEY to have an admin key again"
                )
            else:
                log.info("bootstrap key registered", key_id=record.id, project=record.project)
        read_model = ReadModel(bus, settings)
        gateway = cls(
            bus=bus,
            settings=settings,
            read_model=read_model,
            keys=keys,
            idempotency=idempotency,
            webhooks=webhooks,
            secrets=secrets,
            groundings=groundings,
        )
        gateway.rebuild_s = await read_model.start()
        return gateway

    async def stop(self) -> None:
        """Stop following the event log; save the list index."""
        await self.read_model.stop()

    @property
    def ready(self) -> bool:
        """Whether the broker is connected and the read model answers.

        The list index may still be replaying the log after its saved head: list requests
        wait for it (``index_wait_s``); see ``read_model.index.caught_up``.
        """
        return self.bus.connected and self.read_model.caught_up.is_set()

    # --- orchestrations -----------------------------------------------------------------------

    async def submit(
        self, principal: ApiKeyRecord, request: SubmitRequest, idempotency_key: str | None
    ) -> Submission:
        """Append ``action.submitted`` and wait (up to ``plan_wait_s``) for its plan.

        Raises:
            InvalidInput: a field is invalid, or the idempotency key was reused with another
                body.
            BadRequest: the idempotency key holds characters other than visible ASCII.
            PlanningFailed: the planner could not plan it.
            BrokerDown: the event could not be appended.
        """
        check_submission(request, allow_private_webhooks=self.settings.allow_private_webhooks)
        orchestration_id = new_orchestration_id()
        replayed = False
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
            orchestration_id, fresh = await self.idempotency.claim(
                principal.project,
                idempotency_key,
                fingerprint=request_fingerprint(request),
                orchestration_id=orchestration_id,
            )
            replayed = not fresh
        if not replayed:
            self.read_model.expect(orchestration_id)
        found = await self.read_model.find(orchestration_id) if replayed else None
        if found is not None and found.expired:
            # Its events were removed by the retention: answer its summary, never run it again.
            return Submission(orchestration_id=orchestration_id, view=found, replayed=True)
        if not replayed or found is None:
            # A replay whose first attempt may have failed to append publishes the same
            # event id again: JetStream stores it at most once.
            event = ActionSubmitted(
                event_id=ids.action_id(orchestration_id),
                orchestration_id=orchestration_id,
                action=request.action.content,
                data=[DataField(field=item.field, value=item.value) for item in request.data],
                webhook=request.webhook,
                project=principal.project,
                idempotency_key=idempotency_key,
                mode=request.mode,
                pause_grace_s=request.pause_grace_s,
                allow_partial=request.allow_partial,
                execute=request.execute,
                approval_timeout_s=request.approval_timeout_s,
            )
            try:
                await self.bus.publish(event, timeout=self.settings.publish_timeout_s)
            except Exception as exc:
                log.warning("cannot append action", error=repr(exc))
                raise BrokerDown("the action could not be recorded; retry") from exc
            log.info(
                "action submitted",
                orchestration_id=orchestration_id,
                project=principal.project,
                replayed=replayed,
            )
        view = await self.read_model.wait_for(
            orchestration_id,
            lambda v: v is not None and v.status != "planning",
            self.settings.plan_wait_s,
        )
        if view is not None and view.status in {"failed", "not_actionable"} and not view.tasks:
            raise PlanningFailed(
                orchestration_id,
                view.status,
                view.reasons or [view.error or ""],
                list(view.uncovered),
            )
        return Submission(orchestration_id=orchestration_id, view=view, replayed=replayed)

    async def abort(
        self, principal: ApiKeyRecord, orchestration_id: str, reason: str
    ) -> OrchestrationStatus:
        """Append ``orchestration.aborted`` unless the orchestration already ended.

        Returns:
            The orchestration's status afterwards (``aborted``).

        Raises:
            NotFound: no such orchestration in the caller's project.
            Conflict: it had already ended.
        """
        view = await self.read_model.get(principal.project, orchestration_id)
        if view.terminal:
            raise Conflict(f"orchestration {orchestration_id} already ended ({view.status})")
        if view.status == "compensating":
            raise Conflict(
                f"orchestration {orchestration_id} already stopped: it is being compensated"
            )
        event = OrchestrationAborted(
            event_id=ids.end_id(orchestration_id),
            orchestration_id=orchestration_id,
            reason=reason,
            webhook=view.webhook,
            project=view.project,
            uncovered=list(view.uncovered),
        )
        try:
            ack = await self.bus.publish(event, timeout=self.settings.publish_timeout_s)
        except Exception as exc:
            raise BrokerDown("the abort could not be recorded; retry") from exc
        after = await self.read_model.wait_for(
            orchestration_id, lambda v: v is not None and v.terminal, 5.0
        )
        if ack.duplicate or (after is not None and after.status != "aborted"):
            status = after.status if after is not None else "ended"
            raise Conflict(f"orchestration {orchestration_id} already ended ({status})")
        log.info("orchestration aborted", orchestration_id=orchestration_id)
        return "aborted"

    async def decide(
        self,
        principal: ApiKeyRecord,
        orchestration_id: str,
        *,
        approve: bool,
        task_id: str | None = None,
        reason: str | None = None,
    ) -> OrchestrationView:
        """Append the caller's approval or rejection of a held plan (or task).

        The event's id (:func:`orra_events.ids.decision_id`) is the same for an approval and
        a rejection of one thing, so a second decision is stored at most once; the
        dispatcher applies the first it reads.

        Returns:
            The orchestration's view once the decision shows in it (or as it was).

        Raises:
            NotFound: no such orchestration in the caller's project, or no such task.
            Conflict: nothing of it waits for approval (decided, expired or ended: why).
            BrokerDown: the decision could not be recorded.
        """
        view = await self.read_model.get(principal.project, orchestration_id)
        problem = decision_problem(view, task_id, time.time())
        if problem is not None:
            raise Conflict(problem)
        event_id = ids.decision_id(orchestration_id, task_id)
        event: OrchestrationApproved | OrchestrationRejected
        if approve:
            event = OrchestrationApproved(
                event_id=event_id,
                orchestration_id=orchestration_id,
                task_id=task_id,
                by=principal.id,
                reason=reason,
                project=view.project,
            )
        else:
            event = OrchestrationRejected(
                event_id=event_id,
                orchestration_id=orchestration_id,
                task_id=task_id,
                by=principal.id,
                reason=reason or "",
                project=view.project,
            )
        try:
            ack = await self.bus.publish(event, timeout=self.settings.publish_timeout_s)
        except Exception as exc:
            raise BrokerDown("the decision could not be recorded; retry") from exc
        if ack.duplicate:
            raise Conflict(
                f"orchestration {orchestration_id} was already decided (an approval is "
                "decided once)"
            )
        log.info(
            "approval decided",
            orchestration_id=orchestration_id,
            task_id=task_id,
            approved=approve,
            by=principal.id,
        )
        after = await self.read_model.wait_for(
            orchestration_id,
            lambda v: v is not None and decision_problem(v, task_id, 0.0) is not None,
            5.0,
        )
        return after if after is not None else view

    async def orchestration(
        self, principal: ApiKeyRecord, orchestration_id: str
    ) -> OrchestrationView:
        """The view of one of the caller's orchestrations.

        Raises:
            NotFound: no such orchestration in the caller's project.
            BrokerDown: its history could not be read from the log.
        """
        try:
            return await self.read_model.get(principal.project, orchestration_id)
        except NotFound:
            raise NotFound(f"no orchestration {orchestration_id!r}") from None

    # --- compensation failures ------------------------------------------------------------

    async def compensation_failures(
        self, principal: ApiKeyRecord, status: str | None = "failed"
    ) -> list[CompensationFailure]:
        """The project's failed compensations, newest first (``status`` ``None``: all).

        Raises:
            BrokerDown: the list index is still being built, or a view could not be read.
        """
        out: list[CompensationFailure] = []
        for view in await self.read_model.compensation_failed(principal.project):
            out.extend(
                item
                for item in compensation_failures(view)
                if status is None or item.status == status
            )
        return out

    async def resolve_compensation(
        self,
        principal: ApiKeyRecord,
        orchestration_id: str,
        task_id: str,
        resolution: Literal["resolved", "ignored"],
        note: str | None,
    ) -> CompensationFailure:
        """Append ``task.compensation_resolved`` for a failed compensation.

        Raises:
            NotFound: no such failed compensation in the caller's project.
            Conflict: it was already resolved or ignored.
            BrokerDown: the event could not be appended.
        """
        try:
            view = await self.read_model.get(principal.project, orchestration_id)
        except NotFound:
            raise NotFound(f"no failed compensation {orchestration_id}:{task_id}") from None
        current = _failure(view, task_id)
        if current is None:
            raise NotFound(f"no failed compensation {orchestration_id}:{task_id}")
        if current.status != "failed":
            raise Conflict(f"compensation {current.id} is already {current.status}")
        event = TaskCompensationResolved(
            event_id=ids.compensation_resolved_id(orchestration_id, task_id),
            orchestration_id=orchestration_id,
            task_id=task_id,
            resolution=resolution,
            note=note,
            by=principal.id,
        )
        try:
            ack = await self.bus.publish(event, timeout=self.settings.publish_timeout_s)
        except Exception as exc:
            raise BrokerDown("the resolution could not be recorded; retry") from exc
        after = await self.read_model.wait_for(
            orchestration_id,
            lambda v: (
                v is not None and (f := _failure(v, task_id)) is not None and f.status != "failed"
            ),
            5.0,
        )
        updated = _failure(after, task_id) if after is not None else None
        if ack.duplicate and updated is not None and updated.status != resolution:
            raise Conflict(f"compensation {current.id} is already {updated.status}")
        log.info(
            "compensation failure settled",
            orchestration_id=orchestration_id,
            task_id=task_id,
            resolution=resolution,
        )
        return updated or current


def _failure(view: OrchestrationView, task_id: str) -> CompensationFailure | None:
    for item in compensation_failures(view):
        if item.task_id == task_id:
            return item
    return None
