"""The planner's subscriber: ``action.submitted`` → ``plan.created`` / ``plan.failed``.

Exactly one plan event per orchestration, whatever happens (redeliveries, replicas, a
consumer re-created from the start of the log):

* the plan event is published with the event id ``p:<orch>`` (JetStream deduplicates it
  within the duplicate window, across both subjects) and with
  ``Nats-Expected-Last-Subject-Sequence: 0`` checked against ``plan.*.<orch>`` (nats-server
  2.11+), so the log refuses a second plan event of either type, from any replica, at
  any time; a refused append means the action was already planned and is acked;
* a strategy that asks something outside (an LLM, which could answer differently and
  costs money) is called only after one look-up of ``plan.*.<orch>`` found no plan
  event; the offline planner, which is deterministic and free, plans without that look-up
  and relies on the append alone. Against a server older than 2.11, which does not
  understand the wildcard check, every strategy looks first.

Actions are handled concurrently (``ORRA_PLANNER_CONCURRENCY``), but two copies of one
orchestration's action never at once in one process: the second waits for the first, then
finds its plan (so an LLM is not asked twice for an action delivered twice). Each action
is planned with every registration stored before it arrived: the registry looks up the
services stream's last sequence (one look-up shared by all actions waiting at that
moment; see :meth:`~orra_planner.registry.RegistryFollower.sync`) and waits until it has
seen it. A free strategy plans while that look-up travels, and again in the rare case
that it brought registrations of the action's project.

Every log line written while an action is handled, by this module or by the strategy,
carries its ``orchestration_id`` (bound with :mod:`structlog.contextvars`). Each plan is
logged at DEBUG; at INFO, ``plan created`` appears at most once every 10 seconds, with the
number of plans created since the previous such line (a line per plan costs as much as
planning it). ``plan failed`` is logged at INFO every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Final

import structlog
from nats.js.errors import APIError, NotFoundError

from orra_events import ActionSubmitted, Park, PlanCreated, PlanFailed, Retry, ids
from orra_events.publishing import is_cas_conflict
from orra_planner.availability import account_for_down
from orra_planner.errors import StrategyError
from orra_planner.offline import OfflinePlanner
from orra_planner.strategy import (
    Planned,
    Planner,
    PlanOutcome,
    PlanRejected,
    PlanRequest,
    finalize,
    side_effect_free,
)

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from orra_events import Bus, Event
    from orra_planner.registry import RegistryFollower, ServiceCatalog
    from orra_planner.settings import PlannerSettings

__all__ = ["ActionHandler", "server_checks_wildcard_subjects"]

log = structlog.get_logger("orra.planner")

_WILDCARD_CHECKS_SINCE: Final = (2, 11)
_PLAN_INFO_EVERY_S: Final = 10.0
_YIELDS_TO_SEND: Final = 2
"""Event-loop turns until a request is on the socket: the caller's task, then the flusher."""


def server_checks_wildcard_subjects(bus: Bus) -> bool:
    """Whether the connected nats-server checks an expected last sequence of ``plan.*.<id>``.

    ``Nats-Expected-Last-Subject-Sequence-Subject`` (with wildcards) and wildcard
    last-message look-ups came with nats-server 2.11.
    """
    version = bus.nc.connected_server_version
    try:
        return (version.major, version.minor) >= _WILDCARD_CHECKS_SINCE
    except ValueError:  # not a semantic version: assume an old server
        return False


class ActionHandler:
    """Plans each submitted action once and appends the outcome.

    Args:
        bus: The bus to read the log from and publish on.
        registry: The followed service registry.
        planner: The planning strategy.
        settings: The planner's settings.
        wildcard_checks: Whether the server checks expectations on ``plan.*.<orch>``
            (nats-server 2.11+); asked of the connected server by default.
    """

    def __init__(
        self,
        bus: Bus,
        registry: RegistryFollower,
        planner: Planner,
        settings: PlannerSettings,
        *,
        wildcard_checks: bool | None = None,
    ) -> None:
        self.bus = bus
        self.registry = registry
        self.planner = planner
        self.settings = settings
        self.stopping = False
        self.wildcard_checks = (
            server_checks_wildcard_subjects(bus) if wildcard_checks is None else wildcard_checks
        )
        self.free = side_effect_free(planner)
        self.oracle: Planner = planner if isinstance(planner, OfflinePlanner) else OfflinePlanner()
        """Asked whether an action needs a service that is down (see :mod:`.availability`)."""
        self.look_first = not (self.free and self.wildcard_checks)
        """Whether an action is looked up in the log before it is planned."""
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._plans_since_info = 0
        self._next_plan_info = 0.0
        self._handling: dict[str, asyncio.Event] = {}

    async def __call__(self, event: Event, msg: Msg) -> None:
        """Handle one message of ``action.submitted.*`` (the :class:`~orra_events.Bus` acks).

        Every log line written while it is handled, here or in the strategy, carries its
        ``orchestration_id`` (bound in this task's context, restored afterwards).
        """
        orchestration_id = getattr(event, "orchestration_id", None)
        if not isinstance(orchestration_id, str):
            await self._receive(event, msg)
            return
        with structlog.contextvars.bound_contextvars(orchestration_id=orchestration_id):
            await self._receive(event, msg)

    async def _receive(self, event: Event, msg: Msg) -> None:
        if self.stopping:
            raise Retry("planner stopping", delay_s=0.1)
        expected = self.bus.topology.subject(
            "action.submitted", getattr(event, "orchestration_id", "")
        )
        if not isinstance(event, ActionSubmitted) or msg.subject != expected:
            got = f"{event.TYPE} for {getattr(event, 'orchestration_id', '?')}"
            raise Park(f"expected an action.submitted event on {msg.subject}, got {got}")
        self._running += 1
        self._idle.clear()
        orchestration_id = event.orchestration_id
        try:
            while (earlier := self._handling.get(orchestration_id)) is not None:
                await earlier.wait()  # another copy of this action is being handled
            self._handling[orchestration_id] = done = asyncio.Event()
            try:
                await self._handle(event, msg)
            finally:
                del self._handling[orchestration_id]
                done.set()
        finally:
            self._running -= 1
            if not self._running:
                self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no action is being handled; return whether that happened in time."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        return self._idle.is_set()

    async def _handle(self, event: ActionSubmitted, msg: Msg) -> None:
        started = time.perf_counter()
        sync = asyncio.ensure_future(self.registry.sync(self.settings.registry_sync_timeout_s))
        try:
            if self.look_first:
                if await self._already_planned(event.orchestration_id):
                    log.debug("action already planned", orchestration_id=event.orchestration_id)
                    return
                await sync
                outcome = await self._plan(event, msg, self._catalog(event))
            else:
                outcome = await self._plan_while_syncing(event, msg, sync)
        finally:
            if not sync.done():
                sync.cancel()
            elif not sync.cancelled():
                sync.exception()  # already raised above, or of no use now
        latency_ms = round((time.perf_counter() - started) * 1000.0, 3)
        await self._append(self._plan_event(event, outcome, latency_ms))

    async def _plan_while_syncing(
        self, event: ActionSubmitted, msg: Msg, sync: asyncio.Future[bool]
    ) -> PlanOutcome:
        """Plan (a free strategy) with the registry as it is while its look-up travels.

        Planned again in the rare case that the look-up brought registrations of the
        action's project: the outcome is the same as planning after the look-up.
        """
        for _ in range(_YIELDS_TO_SEND):  # the look-up's request reaches the socket first
            await asyncio.sleep(0)
        catalog = self._catalog(event)
        outcome = await self._plan(event, msg, catalog)
        await sync
        if (current := self._catalog(event)) is not catalog:
            outcome = await self._plan(event, msg, current)
        return outcome

    def _catalog(self, event: ActionSubmitted) -> ServiceCatalog:
        return self.registry.registry.catalog(event.project)

    async def _plan(self, event: ActionSubmitted, msg: Msg, catalog: ServiceCatalog) -> PlanOutcome:
        request = PlanRequest(
            orchestration_id=event.orchestration_id,
            action=event.action,
            data=tuple(event.data),
            catalog=catalog,
            allow_partial=event.allow_partial,
        )
        # A free strategy answers at once; a slow one keeps the message from redelivery.
        keepalive = None if self.free else asyncio.create_task(self._keep_alive(msg))
        try:
            outcome = await self.planner.plan(request)
        except Exception as exc:
            delivered = msg.metadata.num_delivered
            reason = f"{type(exc).__name__}: {exc}"
            if delivered < self.settings.max_attempts:
                log.warning(
                    "planning raised; will retry",
                    orchestration_id=event.orchestration_id,
                    error=reason,
                    transient=isinstance(exc, StrategyError),
                    delivery=delivered,
                )
                raise Retry(reason, delay_s=self.settings.retry_delay_s) from exc
            log.exception("planning failed", orchestration_id=event.orchestration_id)
            return PlanRejected(
                status="error",
                reasons=(f"planning failed after {delivered} attempts: {reason}",),
                planner=self.planner.name,
                attempts=delivered,
            )
        finally:
            if keepalive is not None:
                keepalive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keepalive
        outcome = finalize(outcome, request)
        if catalog.down:
            outcome = await account_for_down(outcome, request, self.oracle)
        return outcome

    async def _keep_alive(self, msg: Msg) -> None:
        period = max(self.settings.ack_wait_s / 3.0, 0.5)
        while True:
            await asyncio.sleep(period)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    def _plan_event(
        self, action: ActionSubmitted, outcome: PlanOutcome, latency_ms: float
    ) -> PlanCreated | PlanFailed:
        if isinstance(outcome, Planned):
            self._plans_since_info += 1
            now = time.monotonic()
            if now >= self._next_plan_info:  # a sample at INFO, with how many it stands for
                emit, self._next_plan_info = log.info, now + _PLAN_INFO_EVERY_S
                plans, self._plans_since_info = self._plans_since_info, 0
            else:
                emit, plans = log.debug, 1
            emit(
                "plan created",
                orchestration_id=action.orchestration_id,
                planner=outcome.planner,
                groups=outcome.plan.parallel_groups,
                notes=list(outcome.notes),
                plans_created=plans,
            )
            return PlanCreated(
                event_id=ids.plan_id(action.orchestration_id),
                orchestration_id=action.orchestration_id,
                plan=outcome.plan,
                planner=outcome.planner,
                model=outcome.model,
                cache_hit=outcome.cache_hit,
                attempts=outcome.attempts,
                latency_ms=latency_ms,
                usage=outcome.usage,
                project=action.project,
                webhook=action.webhook,
                mode=action.mode,
                task_timeout_s=action.task_timeout_s,
                pause_grace_s=action.pause_grace_s,
                execute=action.execute,
                approval_timeout_s=action.approval_timeout_s,
            )
        log.info(
            "plan failed",
            orchestration_id=action.orchestration_id,
            status=outcome.status,
            reasons=list(outcome.reasons),
            notes=list(outcome.notes),
        )
        return PlanFailed(
            event_id=ids.plan_id(action.orchestration_id),
            orchestration_id=action.orchestration_id,
            status=outcome.status,
            reasons=list(outcome.reasons),
            planner=outcome.planner,
            attempts=outcome.attempts,
            latency_ms=latency_ms,
            project=action.project,
            webhook=action.webhook,
            uncovered=list(outcome.uncovered),
        )

    async def _already_planned(self, orchestration_id: str) -> bool:
        topology = self.bus.topology
        subjects = (
            [topology.subject("plan.*", orchestration_id)]
            if self.wildcard_checks
            else [topology.subject(t, orchestration_id) for t in ("plan.created", "plan.failed")]
        )
        for subject in subjects:
            try:
                # From the stream leader (not a direct get, which a lagging replica answers).
                await self.bus.js.get_last_msg(topology.events_stream, subject)
            except NotFoundError:
                continue
            return True
        return False

    async def _append(self, event: PlanCreated | PlanFailed) -> None:
        try:
            ack = await self.bus.publish(
                event,
                expected_last_subject_seq=0,
                expected_last_subject=self.bus.topology.subject("plan.*", event.orchestration_id),
            )
        except APIError as exc:
            if not is_cas_conflict(exc.err_code):
                raise
            log.debug("action already planned", orchestration_id=event.orchestration_id)
            return
        if ack.duplicate:
            log.debug("plan event was already stored", orchestration_id=event.orchestration_id)
