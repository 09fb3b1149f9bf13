"""The planner's subscriber: ``action.submitted`` → ``plan.created`` / ``plan.failed``.

Exactly one plan event per orchestration, whatever happens:

* before planning, the handler looks for an existing ``plan.created.<orch>`` or
  ``plan.failed.<orch>`` in the event log (a redelivered or repeated action is acked
  without planning again, so an LLM can never produce a second, different plan);
* the plan event is published with the event id ``p:<orch>`` (JetStream deduplicates it
  within the duplicate window, across both subjects) and with
  ``Nats-Expected-Last-Subject-Sequence: 0``, so two replicas racing on one action store
  one plan even beyond that window.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Final

import structlog
from nats.js.errors import APIError, NotFoundError

from orra_events import ActionSubmitted, PlanCreated, PlanFailed, Retry
from orra_events.bus import (
    HDR_ORIGINAL_SEQUENCE,
    HDR_ORIGINAL_STREAM,
    HDR_ORIGINAL_SUBJECT,
    HDR_REASON,
)
from orra_planner.errors import StrategyError
from orra_planner.strategy import Planned, PlanOutcome, PlanRejected, PlanRequest, finalize

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from orra_events import Bus, Event
    from orra_planner.registry import RegistryFollower
    from orra_planner.settings import PlannerSettings
    from orra_planner.strategy import Planner

__all__ = ["ActionHandler", "plan_event_id"]

log = structlog.get_logger("orra.planner")

_WRONG_LAST_SEQUENCE: Final = 10071


def plan_event_id(orchestration_id: str) -> str:
    """The event id of an orchestration's plan event: ``p:<orch>``."""
    return f"p:{orchestration_id}"


class ActionHandler:
    """Plans each submitted action once and appends the outcome.

    Args:
        bus: The bus to read the log from and publish on.
        registry: The followed service registry.
        planner: The planning strategy.
        settings: The planner's settings.
    """

    def __init__(
        self,
        bus: Bus,
        registry: RegistryFollower,
        planner: Planner,
        settings: PlannerSettings,
    ) -> None:
        self.bus = bus
        self.registry = registry
        self.planner = planner
        self.settings = settings
        self.stopping = False

    async def __call__(self, event: Event, msg: Msg) -> None:
        """Handle one message of ``action.submitted.*`` (the :class:`~orra_events.Bus` acks)."""
        if self.stopping:
            raise Retry("planner stopping", delay_s=0.1)
        expected = self.bus.topology.subject(
            "action.submitted", getattr(event, "orchestration_id", "")
        )
        if not isinstance(event, ActionSubmitted) or msg.subject != expected:
            got = f"{event.TYPE} for {getattr(event, 'orchestration_id', '?')}"
            await self._park(msg, f"expected an action.submitted event on {msg.subject}, got {got}")
            return
        if await self._already_planned(event.orchestration_id):
            log.info("action already planned", orchestration_id=event.orchestration_id)
            return
        started = time.perf_counter()
        outcome = await self._plan(event, msg)
        latency_ms = round((time.perf_counter() - started) * 1000.0, 3)
        await self._append(self._plan_event(event, outcome, latency_ms))

    async def _plan(self, event: ActionSubmitted, msg: Msg) -> PlanOutcome:
        await self.registry.sync(self.settings.registry_sync_timeout_s)
        request = PlanRequest(
            orchestration_id=event.orchestration_id,
            action=event.action,
            data=tuple(event.data),
            catalog=self.registry.registry.catalog(event.project),
        )
        keepalive = asyncio.create_task(self._keep_alive(msg))
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
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
        return finalize(outcome, request)

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
            log.info(
                "plan created",
                orchestration_id=action.orchestration_id,
                planner=outcome.planner,
                groups=outcome.plan.parallel_groups,
                notes=list(outcome.notes),
            )
            return PlanCreated(
                event_id=plan_event_id(action.orchestration_id),
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
            )
        log.info(
            "plan failed",
            orchestration_id=action.orchestration_id,
            status=outcome.status,
            reasons=list(outcome.reasons),
            notes=list(outcome.notes),
        )
        return PlanFailed(
            event_id=plan_event_id(action.orchestration_id),
            orchestration_id=action.orchestration_id,
            status=outcome.status,
            reasons=list(outcome.reasons),
            planner=outcome.planner,
            attempts=outcome.attempts,
            latency_ms=latency_ms,
            project=action.project,
            webhook=action.webhook,
        )

    async def _already_planned(self, orchestration_id: str) -> bool:
        topology = self.bus.topology
        for event_type in ("plan.created", "plan.failed"):
            try:
                await self.bus.js.get_last_msg(
                    topology.events_stream, topology.subject(event_type, orchestration_id)
                )
            except NotFoundError:
                continue
            return True
        return False

    async def _append(self, event: PlanCreated | PlanFailed) -> None:
        try:
            ack = await self.bus.publish(event, expected_last_subject_seq=0)
        except APIError as exc:
            if exc.err_code != _WRONG_LAST_SEQUENCE:
                raise
            log.info(
                "plan already appended by another replica", orchestration_id=event.orchestration_id
            )
            return
        if ack.duplicate:
            log.info("plan event was already stored", orchestration_id=event.orchestration_id)

    async def _park(self, msg: Msg, reason: str) -> None:
        """Copy the message to the dead-letter subject; the bus then acks the original.

        Headers as :meth:`orra_events.Bus.park` writes them (deduplicated by the original
        stream and sequence), without terminating the message, which the bus acks.
        """
        meta = msg.metadata
        headers = {k: v for k, v in (msg.headers or {}).items() if not k.startswith("Nats-")}
        headers[HDR_REASON] = reason[:2000]
        headers[HDR_ORIGINAL_SUBJECT] = msg.subject
        headers[HDR_ORIGINAL_STREAM] = meta.stream
        headers[HDR_ORIGINAL_SEQUENCE] = str(meta.sequence.stream)
        headers["Nats-Msg-Id"] = f"dlq:{meta.stream}:{meta.sequence.stream}"
        await self.bus.js.publish(
            self.bus.topology.dead_letter(msg.subject), msg.data, headers=headers
        )
        log.error("message parked on dead-letter subject", subject=msg.subject, reason=reason)
