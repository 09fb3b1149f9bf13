"""What the dispatcher knows about services: which are revertible, which are unhealthy.

The registry follows the registrations (stream ``ORRA_SERVICES``, folded with the rule of
:class:`~orra_events.registrations.RegistrationBook`: the first definition of a name and
version counts) and the heartbeats (stream ``ORRA_HEARTBEATS``) with ordered consumers,
and keeps the sets that the pure transitions read directly (see
:class:`orra_dispatcher.domain.Services`): ``revertible``, ``no_timeout_retry`` and
``unhealthy``. Nothing is
awaited per task: dispatching checks membership in a set.

Revertible. A service is revertible when any of its registered versions is: a completed
task is then compensated, and its compensation goes (like the task) to a replica of the
version it ran on, whose revert handler answers (a version without one reports the
compensation failed, for an operator; a version never sent a compensation it cannot do
would leave an effect in place). Likewise a service is in ``no_timeout_retry`` when any of
its versions is registered with ``retry_on_timeout`` false (a task that must not run twice):
a timed-out task of it is failed for good and left for an operator, never run again.

Health. A service is unhealthy when it announced heartbeats (``interval_s``) and none
came for more than ``factor`` (3, ``ORRA_HEALTH_FACTOR``) intervals
(:func:`orra_events.liveness.is_unhealthy`);
a service never seen heartbeating is not unhealthy (it may be a test double, or an old
SDK). A checker runs every ``check_s`` seconds; a heartbeat of an unhealthy service makes
it healthy at once. Every transition to healthy calls ``on_healthy(service)``, which the
dispatcher uses to resume the orchestrations that wait for it. Heartbeat times are the
sender's clock (``at``); clocks must be roughly in sync (well within an interval).

Malformed messages on ``service.*`` (undecodable, not a service event, or on another
service's subject) are copied to the dead-letter subject with their reason and skipped
(:func:`park_registry_message`: the ordered consumer does not acknowledge, so the copy is
deduplicated by the original stream sequence, and parked once whoever sees it first).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import structlog
from nats.js.api import DeliverPolicy

from orra_dispatcher.domain import Services
from orra_events import (
    DecodeError,
    ServiceHeartbeat,
    ServiceRegistered,
    decode,
)
from orra_events.bus import FOLLOW_HEARTBEAT_S
from orra_events.liveness import is_unhealthy
from orra_events.registrations import RegistrationBook
from orra_events.registry import park_registry_message, registry_problem

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nats.aio.msg import Msg

    from orra_events import Bus

__all__ = ["ServiceRegistry"]

log = structlog.get_logger("orra.dispatcher.registry")


class ServiceRegistry:
    """Revertible and unhealthy services, kept up to date from the services stream.

    Args:
        bus: The connected bus.
        factor: Missed intervals after which a service is unhealthy.
        check_s: How often health is re-evaluated.
        on_healthy: Called (synchronously) with a service that became healthy again.
    """

    def __init__(
        self,
        bus: Bus,
        *,
        factor: float = 3.0,
        check_s: float = 0.5,
        on_healthy: Callable[[str], None] | None = None,
    ) -> None:
        self.bus = bus
        self.factor = factor
        self.check_s = check_s
        self.on_healthy = on_healthy
        self.revertible: set[str] = set()
        self.no_timeout_retry: set[str] = set()
        self.unhealthy: set[str] = set()
        self.beats: dict[str, tuple[float, float]] = {}
        self.services = Services(
            unhealthy=self.unhealthy,
            revertible=self.revertible,
            no_timeout_retry=self.no_timeout_retry,
        )
        self.book = RegistrationBook()
        self._subs: list[Any] = []
        self._checker: asyncio.Task[None] | None = None

    async def start(self, timeout_s: float = 30.0) -> None:
        """Read the registry up to now, then follow it and check health periodically."""
        topology = self.bus.topology
        loaded: list[asyncio.Event] = []
        for stream, subjects in (
            (topology.services_stream, topology.registrations_filter()),
            (topology.heartbeats_stream, topology.heartbeats_filter()),
        ):
            caught_up = asyncio.Event()
            loaded.append(caught_up)
            info = await self.bus.js.stream_info(stream)
            if info.state.messages == 0:
                caught_up.set()
            self._subs.append(
                await self.bus.js.subscribe(
                    subjects,
                    stream=stream,
                    cb=self._follower(caught_up),
                    ordered_consumer=True,
                    idle_heartbeat=FOLLOW_HEARTBEAT_S,
                    deliver_policy=DeliverPolicy.ALL,
                    pending_msgs_limit=-1,
                    pending_bytes_limit=-1,
                )
            )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                for caught_up in loaded:
                    await caught_up.wait()
        self.check()
        self._checker = asyncio.create_task(self._check_loop(), name="orra-dispatcher-health")

    async def stop(self) -> None:
        """Stop following the registry."""
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
            self._checker = None
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()

    def _follower(self, caught_up: asyncio.Event) -> Callable[[Msg], Awaitable[None]]:
        async def on_message(msg: Msg) -> None:
            try:
                event = decode(msg.data)
            except DecodeError as exc:
                problem: str | None = f"{type(exc).__name__}: {exc}"
            else:
                problem = registry_problem(self.bus.topology, event, msg.subject)
                if problem is None:
                    problem = self.observe(event)
            if problem is not None:
                await park_registry_message(self.bus, msg, problem)
            if msg.metadata.num_pending == 0:
                caught_up.set()

        return on_message

    def observe(self, event: object) -> str | None:
        """Take one registry event into account; return why it is refused, if it is."""
        if isinstance(event, ServiceRegistered):
            verdict = self.book.apply(event)
            if verdict.accepted and event.revertible:
                self.revertible.add(event.service)
            if verdict.accepted and not event.retry_on_timeout:
                self.no_timeout_retry.add(event.service)
            return verdict.reason
        if isinstance(event, ServiceHeartbeat):
            previous = self.beats.get(event.service)
            if previous is None or event.at >= previous[0]:
                self.beats[event.service] = (event.at, event.interval_s)
            if event.service in self.unhealthy and not is_unhealthy(
                event.at, event.interval_s, time.time(), self.factor
            ):
                self._healthy(event.service)
        return None

    def check(self, now: float | None = None) -> None:
        """Re-evaluate every service's health as of ``now``."""
        at = time.time() if now is None else now
        for service, (last, interval) in self.beats.items():
            down = is_unhealthy(last, interval, at, self.factor)
            if down and service not in self.unhealthy:
                self.unhealthy.add(service)
                log.warning("service unhealthy: no heartbeat", service=service, last_beat=last)
            elif not down and service in self.unhealthy:
                self._healthy(service)

    def _healthy(self, service: str) -> None:
        self.unhealthy.discard(service)
        log.info("service healthy again", service=service)
        if self.on_healthy is not None:
            self.on_healthy(service)

    async def _check_loop(self) -> None:
        while True:
            await asyncio.sleep(self.check_s)
            try:
                self.check()
            except Exception:
                log.warning("health check failed", exc_info=True)
