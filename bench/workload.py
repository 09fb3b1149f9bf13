"""The load a benchmark puts on Orra: submit orchestrations, wait for their terminal event.

A :class:`Driver` is an ordinary client of the event log. It submits an orchestration by
appending ``action.submitted`` (what the gateway does after validating a request), or, for
the dispatch path alone, ``plan.created`` (what the planner appends). It learns that an
orchestration ended from a core-NATS subscription to ``orchestration.done.*`` and
``orchestration.failed.*`` of its namespace: JetStream delivers every stored message to
plain subscribers of its subject too, so no consumer state is involved in observing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orra_events import (
    ActionSubmitted,
    Bus,
    DataField,
    ExecutionMode,
    OrchestrationFailed,
    Plan,
    PlanCreated,
    Topology,
    decode,
    ids,
    new_orchestration_id,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

__all__ = [
    "SEED_ACTION",
    "SEED_DATA",
    "Driver",
    "LoadResult",
    "OrchestrationFailedError",
]

SEED_ACTION = "Process order payment, update inventory, arrange delivery and notify the customer"
"""The action text submitted for the seed's 4-task, 2-group workflow."""

SEED_DATA: tuple[tuple[str, Any], ...] = (
    ("orderId", "ORD123"),
    ("amount", "299.99"),
    ("productId", "PROD456"),
    ("customerId", "CUST1"),
)
"""The action data of the seed workflow."""


class OrchestrationFailedError(RuntimeError):
    """An orchestration of the benchmark ended ``failed`` (or timed out)."""


@dataclass
class LoadResult:
    """What a closed-loop load run measured.

    Attributes:
        completed: Orchestrations that ended ``done`` within the measured window.
        elapsed_s: Length of the measured window.
        latencies_ms: Submit-to-done latency of each completed orchestration.
        failed: Orchestrations that failed or timed out.
    """

    completed: int
    elapsed_s: float
    latencies_ms: list[float] = field(default_factory=list)
    failed: int = 0

    @property
    def per_s(self) -> float:
        """Completed orchestrations per second."""
        return self.completed / self.elapsed_s if self.elapsed_s > 0 else 0.0


class Driver:
    """Submits orchestrations to one Orra namespace and awaits their end.

    Args:
        bus: A connected bus of the namespace.
    """

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.topology: Topology = bus.topology
        self._waiting: dict[str, asyncio.Future[float]] = {}
        self._subs: list[Subscription] = []
        self.plans: dict[str, PlanCreated] = {}
        self._plan_waiters: dict[str, asyncio.Future[PlanCreated]] = {}
        self.failures: list[str] = []

    @classmethod
    async def connect(cls, url: str, namespace: str) -> Driver:
        """Connect to the broker and subscribe to terminal events of ``namespace``."""
        bus = await Bus.connect(url, Topology(namespace=namespace), name="orra-bench-driver")
        await bus.ensure_streams()
        driver = cls(bus)
        await driver._subscribe()
        return driver

    async def _subscribe(self) -> None:
        nc = self.bus.nc
        topo = self.topology
        for event_type in ("orchestration.done", "orchestration.failed", "orchestration.aborted"):
            self._subs.append(await nc.subscribe(topo.all_of(event_type), cb=self._on_end))
        self._subs.append(await nc.subscribe(topo.all_of("plan.created"), cb=self._on_plan))
        await nc.flush()

    async def _on_end(self, msg: Msg) -> None:
        at = time.perf_counter()
        orchestration_id = msg.subject.rsplit(".", 1)[-1]
        fut = self._waiting.pop(orchestration_id, None)
        if fut is None or fut.done():
            return
        if msg.subject.startswith(self.topology.all_of("orchestration.done")[:-1]):
            fut.set_result(at)
            return
        try:
            event = decode(msg.data)
            reason = event.error if isinstance(event, OrchestrationFailed) else str(event)
        except Exception as exc:
            reason = f"undecodable terminal event: {exc}"
        self.failures.append(f"{orchestration_id}: {reason}")
        fut.set_exception(OrchestrationFailedError(f"{orchestration_id}: {reason}"))

    async def _on_plan(self, msg: Msg) -> None:
        orchestration_id = msg.subject.rsplit(".", 1)[-1]
        fut = self._plan_waiters.pop(orchestration_id, None)
        if fut is None or fut.done():
            return
        try:
            event = decode(msg.data)
        except Exception as exc:
            fut.set_exception(exc)
            return
        if isinstance(event, PlanCreated):
            fut.set_result(event)

    async def close(self) -> None:
        """Unsubscribe and close the connection."""
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        await self.bus.close()

    # --- one orchestration ---------------------------------------------------------------

    def _expect(self, orchestration_id: str) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[orchestration_id] = fut
        return fut

    async def submit_action(
        self,
        action: str = SEED_ACTION,
        data: tuple[tuple[str, Any], ...] = SEED_DATA,
        *,
        mode: ExecutionMode | None = None,
        timeout_s: float = 30.0,
    ) -> float:
        """Append ``action.submitted`` and wait for ``orchestration.done``; return ms.

        Raises:
            OrchestrationFailedError: it failed, or did not end within ``timeout_s``.
        """
        orchestration_id = new_orchestration_id()
        event = ActionSubmitted(
            event_id=ids.action_id(orchestration_id),
            orchestration_id=orchestration_id,
            action=action,
            data=[DataField(k, v) for k, v in data],
            mode=mode,
        )
        return await self._run(orchestration_id, event, timeout_s)

    async def submit_plan(
        self,
        plan: Plan,
        *,
        mode: ExecutionMode | None = None,
        task_timeout_s: float | None = None,
        timeout_s: float = 30.0,
    ) -> float:
        """Append ``plan.created`` (bypassing the planner) and wait for the end; return ms.

        Raises:
            OrchestrationFailedError: it failed, or did not end within ``timeout_s``.
        """
        orchestration_id = new_orchestration_id()
        return await self._run(
            orchestration_id,
            self.plan_event(orchestration_id, plan, mode=mode, task_timeout_s=task_timeout_s),
            timeout_s,
        )

    def plan_event(
        self,
        orchestration_id: str,
        plan: Plan,
        *,
        mode: ExecutionMode | None = None,
        task_timeout_s: float | None = None,
    ) -> PlanCreated:
        """A ``plan.created`` event as the planner would append it."""
        return PlanCreated(
            event_id=ids.plan_id(orchestration_id),
            orchestration_id=orchestration_id,
            plan=plan,
            planner="bench",
            mode=mode,
            task_timeout_s=task_timeout_s,
        )

    async def _run(
        self, orchestration_id: str, event: ActionSubmitted | PlanCreated, timeout_s: float
    ) -> float:
        fut = self._expect(orchestration_id)
        t0 = time.perf_counter()
        try:
            await self.bus.publish(event)
            end = await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            raise OrchestrationFailedError(
                f"{orchestration_id} did not end within {timeout_s:.0f}s"
            ) from None
        finally:
            self._waiting.pop(orchestration_id, None)
        return (end - t0) * 1000.0

    async def first_plan(
        self,
        action: str = SEED_ACTION,
        data: tuple[tuple[str, Any], ...] = SEED_DATA,
        timeout_s: float = 30.0,
    ) -> PlanCreated:
        """Submit ``action`` once and return the plan the planner made for it.

        Raises:
            OrchestrationFailedError: no plan within ``timeout_s`` (the planner failed it).
        """
        orchestration_id = new_orchestration_id()
        plan_fut: asyncio.Future[PlanCreated] = asyncio.get_running_loop().create_future()
        self._plan_waiters[orchestration_id] = plan_fut
        end = self._expect(orchestration_id)
        await self.bus.publish(
            ActionSubmitted(
                event_id=ids.action_id(orchestration_id),
                orchestration_id=orchestration_id,
                action=action,
                data=[DataField(k, v) for k, v in data],
            )
        )
        both: set[asyncio.Future[Any]] = {plan_fut, end}
        done, _ = await asyncio.wait(both, timeout=timeout_s)
        if plan_fut in done:
            plan = plan_fut.result()
            with_end = await asyncio.wait({end}, timeout=timeout_s)
            if end in with_end[0] and end.exception() is not None:
                raise OrchestrationFailedError(str(end.exception()))
            return plan
        self._plan_waiters.pop(orchestration_id, None)
        self._waiting.pop(orchestration_id, None)
        if end in done and end.exception() is not None:
            raise OrchestrationFailedError(f"planning failed: {end.exception()}")
        raise OrchestrationFailedError(f"no plan for {orchestration_id} within {timeout_s:.0f}s")

    # --- loops ---------------------------------------------------------------------------

    async def sequential(self, submit: Callable[[], Any], n: int) -> list[float]:
        """Run ``n`` orchestrations one at a time; return their latencies (ms)."""
        return [await submit() for _ in range(n)]

    async def closed_loop(
        self, submit: Callable[[], Any], *, concurrency: int, duration_s: float
    ) -> LoadResult:
        """Keep ``concurrency`` orchestrations in flight for ``duration_s`` seconds.

        Only orchestrations submitted and completed within the window count; the ones
        still in flight at its end are awaited (for a clean stop) but not counted.
        """
        latencies: list[float] = []
        failed = 0
        t0 = time.perf_counter()
        deadline = t0 + duration_s
        completed_at: list[float] = []

        async def worker() -> None:
            nonlocal failed
            while time.perf_counter() < deadline:
                try:
                    ms = await submit()
                except OrchestrationFailedError:
                    failed += 1
                    continue
                now = time.perf_counter()
                if now <= deadline:
                    latencies.append(ms)
                    completed_at.append(now)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return LoadResult(
            completed=len(latencies), elapsed_s=duration_s, latencies_ms=latencies, failed=failed
        )
