"""Running services against a real broker and the real dispatcher, in the test's process.

:class:`Orra` connects to a nats-server (the pytest fixture starts an embedded one; see
:mod:`orra_sdk.testing.plugin`), provisions the streams of a namespace of its own, serves
the user's services with a real :class:`~orra_sdk.OrraClient`, runs the real dispatcher
(:mod:`orra_dispatcher`) and, for :meth:`Orra.submit`, the real planner with its offline
(deterministic, no LLM) strategy. A test hands it a plan, or an action, and awaits the
orchestration's end: :class:`Outcome` carries the terminal event's results and every
event of the orchestration as stored.

The dispatcher and planner are imported only when first needed, so :func:`orra_sdk.testing.call`
works with the plain SDK; they come with ``orra-sdk[testing]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

from orra_events import (
    ActionSubmitted,
    Bus,
    CompensationSummary,
    DataField,
    Event,
    OrchestrationAborted,
    OrchestrationDone,
    OrchestrationFailed,
    Plan,
    PlanCreated,
    PlanFailed,
    PlanTask,
    TaskProgress,
    Topology,
    decode,
    new_orchestration_id,
)
from orra_events.ids import action_id, plan_id
from orra_events.plan import check_plan, parallel_groups
from orra_sdk.client import OrraClient
from orra_sdk.errors import OrraSdkError
from orra_sdk.service import Service

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from types import TracebackType

    from nats.aio.msg import Msg

__all__ = ["HarnessError", "OrchestrationTimeout", "Orra", "Outcome", "TaskSpec"]

TaskSpec = tuple["str | Service[Any, Any]", "Mapping[str, Any]"]
"""One task given to :meth:`Orra.run` by id: ``(service or its name, input)``."""

E = TypeVar("E", bound=Event)

_TERMINAL = (OrchestrationDone, OrchestrationFailed, OrchestrationAborted)


class HarnessError(OrraSdkError):
    """The test harness was used wrongly (an invalid plan, a missing extra...)."""


class OrchestrationTimeout(HarnessError, TimeoutError):
    """The orchestration did not end in time; the message lists the events seen."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an orchestration ended, and every event of it.

    Attributes:
        orchestration_id: The orchestration.
        status: ``done``, ``failed``, ``aborted``, or ``plan_failed`` (the planner
            refused the action; :attr:`error` says why, as the dispatcher's
            ``orchestration.failed`` does).
        results: The merged results (``done``), or the abort payload (``aborted``).
        outputs: Each task's output by task id (``done``).
        error: Why it failed, was aborted or could not be planned.
        task_id: The task that failed or aborted it.
        compensation: How the compensation went, when completed tasks were reverted.
        plan: The plan that ran (``None`` when planning failed).
        events: The orchestration's events as stored, in order.
    """

    orchestration_id: str
    status: Literal["done", "failed", "aborted", "plan_failed"]
    results: dict[str, Any] | None
    outputs: dict[str, dict[str, Any]]
    error: str | None
    task_id: str | None
    compensation: CompensationSummary | None
    plan: Plan | None
    events: list[Event] = field(default_factory=list)

    def progress(self, task_id: str) -> list[dict[str, Any]]:
        """The progress updates a task reported, in order (every attempt's)."""
        return [
            e.update for e in self.events if isinstance(e, TaskProgress) and e.task_id == task_id
        ]

    def of(self, cls: type[E]) -> list[E]:
        """The orchestration's events of one type, in order."""
        return [e for e in self.events if isinstance(e, cls)]


class Orra:
    """Services, the dispatcher and (on demand) the planner on one broker, in this process.

    Example::

        async with Orra("nats://127.0.0.1:4222") as orra:
            await orra.serve(payment)
            outcome = await orra.run({"pay": (payment, {"orderId": "O1", "amount": 10})})
            assert outcome.status == "done"

    Args:
        nats_url: The broker (a nats-server with JetStream).
        namespace: Subjects and streams of this harness; a fresh random one by default,
            so that harnesses sharing a broker never see each other's events.
        dispatcher_settings: The dispatcher's settings (an
            :class:`orra_dispatcher.DispatcherSettings`); by default fast retries
            (3 attempts, 50 ms apart) and a 10 s task timeout.
        client_options: Keyword arguments of every :class:`~orra_sdk.OrraClient` that
            :meth:`serve` starts (``concurrency``, ``ack_wait_s``...).
    """

    def __init__(
        self,
        nats_url: str,
        *,
        namespace: str | None = None,
        dispatcher_settings: Any = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.nats_url = nats_url
        self.topology = Topology(namespace=namespace or f"t{uuid.uuid4().hex[:10]}")
        self._dispatcher_settings = dispatcher_settings
        self._client_options = dict(client_options or {})
        self._bus: Bus | None = None
        self._clients: list[OrraClient] = []
        self._dispatcher: Callable[[], Awaitable[None]] | None = None
        self._planner: Callable[[], Awaitable[None]] | None = None

    @property
    def bus(self) -> Bus:
        """The harness's own connection (to publish or inspect events yourself).

        Raises:
            HarnessError: the harness is not started.
        """
        if self._bus is None:
            raise HarnessError("the harness is not started: use `async with Orra(...)`")
        return self._bus

    async def start(self) -> None:
        """Connect and provision the namespace's streams."""
        if self._bus is not None:
            return
        self._bus = await Bus.connect(self.nats_url, self.topology, name="orra-testing")
        await self._bus.ensure_streams()

    async def close(self) -> None:
        """Stop the planner, the dispatcher and the services; delete the streams."""
        if self._planner is not None:
            await self._planner()
            self._planner = None
        await self._stop_dispatcher()
        for client in reversed(self._clients):
            await client.close()
        self._clients.clear()
        if self._bus is not None:
            for config in self.topology.stream_configs():
                with contextlib.suppress(Exception):
                    await self._bus.js.delete_stream(config.name)  # type: ignore[arg-type]
            await self._bus.close()
            self._bus = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def serve(self, *services: Service[Any, Any], **client_options: Any) -> OrraClient:
        """Register ``services`` and run their tasks with a new client, as a replica does.

        Call it once per replica (several calls give several replicas). The dispatcher
        reads registrations when it starts; serving after an orchestration ran restarts
        it, as a deployment would, so that it knows every service served.

        Args:
            services: The services this replica runs.
            client_options: Options of this client, over the harness's
                ``client_options`` (see :class:`~orra_sdk.OrraClient`).

        Returns:
            The started client.
        """
        await self.start()
        options: dict[str, Any] = {
            "heartbeat_interval_s": 1.0,
            "ack_wait_s": 5.0,
            "drain_timeout_s": 1.0,
            **self._client_options,
            **client_options,
        }
        client = OrraClient(self.nats_url, namespace=self.topology.namespace, **options)
        self._clients.append(client)
        await client.connect()
        await client.start(*services)
        if self._dispatcher is not None:
            await self._stop_dispatcher()
            await self._start_dispatcher()
        return client

    async def run(
        self,
        tasks: Plan | Sequence[PlanTask] | Mapping[str, TaskSpec],
        *,
        timeout_s: float = 30.0,
        mode: Literal["groups", "eager"] | None = None,
        task_timeout_s: float | None = None,
    ) -> Outcome:
        """Run a plan with the real dispatcher and wait for the orchestration to end.

        Example::

            outcome = await orra.run({
                "payment": (payment, {"orderId": "O1", "amount": 10}),
                "notify": ("NotificationService", {"status": "$payment.paymentStatus"}),
            })

        Args:
            tasks: A :class:`~orra_events.Plan`, its tasks (the parallel groups follow
                from their ``$task.field`` references), or ``{task id: (service,
                input)}``.
            timeout_s: How long to wait for the end.
            mode: ``groups`` or ``eager``; the dispatcher's default otherwise.
            task_timeout_s: The per-attempt timeout of this orchestration's tasks.

        Returns:
            How it ended, with its events.

        Raises:
            HarnessError: the plan is invalid (every issue named).
            OrchestrationTimeout: it did not end within ``timeout_s``.
        """
        plan = _plan_of(tasks)
        issues = check_plan(plan)
        if issues:
            raise HarnessError("invalid plan: " + "; ".join(str(i) for i in issues))
        await self._ensure_dispatcher()
        oid = new_orchestration_id()
        event = PlanCreated(
            event_id=plan_id(oid),
            orchestration_id=oid,
            plan=plan,
            planner="orra_sdk.testing",
            mode=mode,
            task_timeout_s=task_timeout_s,
        )
        return await self._await_end(oid, self.bus.publish(event), timeout_s)

    async def submit(
        self,
        action: str,
        data: Mapping[str, Any] | None = None,
        *,
        timeout_s: float = 30.0,
    ) -> Outcome:
        """Plan an action with the real planner (offline strategy) and run it.

        The offline planner is deterministic and calls no model: it matches the action's
        words against the served services' descriptions and examples, and their input
        fields against ``data``.

        Args:
            action: The action in plain language (``"charge the order and notify"``).
            data: The action's data, by field name.
            timeout_s: How long to wait for the end.

        Returns:
            How it ended (``plan_failed`` when the planner refused the action).

        Raises:
            HarnessError: the planner is not installed (``orra-sdk[testing]``).
            OrchestrationTimeout: it did not end within ``timeout_s``.
        """
        await self._ensure_dispatcher()
        await self._ensure_planner()
        oid = new_orchestration_id()
        event = ActionSubmitted(
            event_id=action_id(oid),
            orchestration_id=oid,
            action=action,
            data=[DataField(field=k, value=v) for k, v in (data or {}).items()],
        )
        return await self._await_end(oid, self.bus.publish(event), timeout_s)

    # --- internals -----------------------------------------------------------------------

    async def _await_end(self, oid: str, publish: Awaitable[Any], timeout_s: float) -> Outcome:
        bus = self.bus
        seen: list[Event] = []
        ended = asyncio.Event()

        async def on_msg(msg: Msg) -> None:
            with contextlib.suppress(Exception):
                event = decode(msg.data)
                seen.append(event)
                if isinstance(event, _TERMINAL):
                    ended.set()

        sub = await bus.nc.subscribe(self.topology.history_of(oid), cb=on_msg)
        try:
            await bus.nc.flush()
            await publish
            try:
                await asyncio.wait_for(ended.wait(), timeout_s)
            except TimeoutError:
                types = ", ".join(e.TYPE for e in seen) or "none"
                raise OrchestrationTimeout(
                    f"orchestration {oid} did not end within {timeout_s}s; events seen: {types}"
                ) from None
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return _outcome(oid, await self._history(oid))

    async def _history(self, oid: str) -> list[Event]:
        """The orchestration's events as stored (deduplicated), in order."""
        bus = self.bus
        sub = await bus.js.subscribe(
            self.topology.history_of(oid),
            stream=self.topology.events_stream,
            ordered_consumer=True,
        )
        events: list[Event] = []
        try:
            # Read until the terminal event is among them and nothing more is pending (the
            # live copy that ended the wait may come a moment before the stored one).
            while True:
                msg = await sub.next_msg(timeout=5.0)
                with contextlib.suppress(Exception):
                    events.append(decode(msg.data))
                ended = any(isinstance(e, _TERMINAL) for e in events)
                if ended and msg.metadata.num_pending == 0:
                    break
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return events

    async def _ensure_dispatcher(self) -> None:
        await self.start()
        if self._dispatcher is None:
            await self._start_dispatcher()

    async def _start_dispatcher(self) -> None:
        try:
            from orra_dispatcher import DispatcherSettings, setup
        except ImportError:
            raise HarnessError(
                "the dispatcher is not installed: pip install 'orra-sdk[testing]'"
            ) from None
        settings = self._dispatcher_settings or DispatcherSettings(
            max_attempts=3,
            retry_base_s=0.05,
            retry_max_s=0.2,
            retry_jitter=0.0,
            task_timeout_s=10.0,
            ack_wait_s=5.0,
            sweep_interval_s=0.0,
        )
        self._dispatcher = await setup(self.bus, settings)

    async def _stop_dispatcher(self) -> None:
        if self._dispatcher is not None:
            stop, self._dispatcher = self._dispatcher, None
            await stop()

    async def _ensure_planner(self) -> None:
        if self._planner is not None:
            return
        try:
            from orra_planner import OfflinePlanner
            from orra_planner.app import setup
            from orra_planner.settings import PlannerSettings
        except ImportError:
            raise HarnessError(
                "the planner is not installed: pip install 'orra-sdk[testing]'"
            ) from None
        self._planner = await setup(self.bus, PlannerSettings(), planner=OfflinePlanner())


def _plan_of(tasks: Plan | Sequence[PlanTask] | Mapping[str, TaskSpec]) -> Plan:
    if isinstance(tasks, Plan):
        return tasks
    if isinstance(tasks, Mapping):
        plan_tasks = [
            PlanTask(
                id=task_id,
                service=service.name if isinstance(service, Service) else service,
                input=dict(data),
            )
            for task_id, (service, data) in tasks.items()
        ]
    else:
        plan_tasks = list(tasks)
    return Plan(tasks=plan_tasks, parallel_groups=parallel_groups(plan_tasks))


def _outcome(oid: str, events: list[Event]) -> Outcome:
    plan = next((e.plan for e in events if isinstance(e, PlanCreated)), None)
    end = next(e for e in reversed(events) if isinstance(e, _TERMINAL))
    if isinstance(end, OrchestrationDone):
        return Outcome(oid, "done", end.results, end.outputs, None, None, None, plan, events)
    if isinstance(end, OrchestrationAborted):
        return Outcome(
            oid, "aborted", end.payload, {}, end.reason, end.task_id, end.compensation, plan, events
        )
    assert isinstance(end, OrchestrationFailed)
    # The dispatcher ends an action the planner refused (plan.failed) as failed.
    status: Literal["failed", "plan_failed"] = (
        "plan_failed" if any(isinstance(e, PlanFailed) for e in events) else "failed"
    )
    return Outcome(oid, status, None, {}, end.error, end.task_id, end.compensation, plan, events)
