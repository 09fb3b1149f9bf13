"""A synthetic event log: N completed orchestrations of the seed plan, written straight in.

For the recovery benchmark the log must look as if Orra had already run N orchestrations
and its services had consumed all of it: the events stream holds every event of each
orchestration (11 per orchestration: submitted, planned, 4 dispatched, 4 completed, done),
the dispatcher's snapshot bucket holds one tombstone per ended orchestration, and the
durable consumers of the planner, dispatcher and notifier exist with nothing pending.

Writing is pipelined (``publish_async``, acks awaited in batches), about 30k events/s.
Consumers are positioned as follows: push consumers (planner, dispatcher) are created with
the service's own filters and deliver group but starting after the last stored message,
which is the state a caught-up consumer is in; the notifier's pull consumer, whose deliver
policy the notifier re-applies at start, is created with the notifier's own configuration
and drained (every message fetched and acknowledged).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from orra_events import (
    ActionSubmitted,
    Bus,
    DataField,
    Event,
    OrchestrationDone,
    Plan,
    PlanCreated,
    PlanTask,
    TaskCompleted,
    TaskDispatched,
    encode,
    ids,
    new_orchestration_id,
)
from orra_events.bus import DELIVER_PREFIX

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from nats.js.api import PubAck

__all__ = ["SEED_PLAN", "SynthReport", "position_consumers", "write_log"]

SEED_PLAN = Plan(
    tasks=[
        PlanTask(
            id="payment",
            service="PaymentService",
            input={"orderId": "ORD123", "amount": 299.99},
        ),
        PlanTask(id="inventory", service="InventoryService", input={"productId": "PROD456"}),
        PlanTask(
            id="delivery",
            service="DeliveryAgent",
            input={"orderId": "ORD123", "inStock": "$inventory.inStock"},
        ),
        PlanTask(
            id="notify",
            service="NotificationService",
            input={"customerId": "CUST1", "paymentStatus": "$payment.paymentStatus"},
        ),
    ],
    parallel_groups=[["payment", "inventory"], ["delivery", "notify"]],
)
"""The seed's 4-task, 2-group plan (DESIGN.md), as the synthetic log records it."""

_OUTPUTS: dict[str, dict[str, Any]] = {
    "payment": {"paymentStatus": "confirmed", "transactionId": "TX-ORD123"},
    "inventory": {"inStock": True, "productId": "PROD456", "quantity": 42},
    "delivery": {"deliveryTracking": "DLV-ORD123", "estimatedDelivery": "2024-11-10"},
    "notify": {"notificationStatus": "sent"},
}
_RESOLVED: dict[str, dict[str, Any]] = {
    "payment": {"orderId": "ORD123", "amount": 299.99},
    "inventory": {"productId": "PROD456"},
    "delivery": {"orderId": "ORD123", "inStock": True},
    "notify": {"customerId": "CUST1", "paymentStatus": "confirmed"},
}
_SERVICE = {t.id: t.service for t in SEED_PLAN.tasks}


def orchestration_events(orchestration_id: str, at: float) -> list[Event]:
    """The 11 events of one completed seed orchestration, in log order."""
    o = orchestration_id
    events: list[Event] = [
        ActionSubmitted(
            event_id=ids.action_id(o),
            orchestration_id=o,
            at=at,
            action="Process order payment, check inventory, arrange delivery and notify",
            data=[
                DataField("orderId", "ORD123"),
                DataField("amount", "299.99"),
                DataField("productId", "PROD456"),
                DataField("customerId", "CUST1"),
            ],
        ),
        PlanCreated(
            event_id=ids.plan_id(o), orchestration_id=o, at=at, plan=SEED_PLAN, planner="offline"
        ),
    ]
    for group in SEED_PLAN.parallel_groups:
        events.extend(
            TaskDispatched(
                event_id=ids.dispatch_id(o, task, 1),
                orchestration_id=o,
                at=at,
                task_id=task,
                service=_SERVICE[task],
                input=_RESOLVED[task],
                attempt=1,
                idempotency_key=ids.idempotency_key(o, task),
                timeout_s=30.0,
            )
            for task in group
        )
        events.extend(
            TaskCompleted(
                event_id=ids.result_id(o, task, 1),
                orchestration_id=o,
                at=at,
                task_id=task,
                service=_SERVICE[task],
                output=_OUTPUTS[task],
                attempt=1,
                idempotency_key=ids.idempotency_key(o, task),
                started_at=at,
                duration_ms=0.1,
            )
            for task in group
        )
    results: dict[str, Any] = {}
    for out in _OUTPUTS.values():
        results.update(out)
    events.append(
        OrchestrationDone(
            event_id=ids.end_id(o), orchestration_id=o, at=at, results=results, outputs=_OUTPUTS
        )
    )
    return events


@dataclass
class SynthReport:
    """What :func:`write_log` wrote.

    Attributes:
        orchestrations: Completed orchestrations written.
        events: Events appended to the events stream.
        tombstones: Dispatcher snapshot tombstones written.
        seconds: Time spent writing.
        notes: Anything that could not be prepared as intended.
    """

    orchestrations: int
    events: int = 0
    tombstones: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


async def _drain_futures(futures: list[Awaitable[PubAck]]) -> None:
    if futures:
        await asyncio.gather(*futures)
        futures.clear()


async def write_log(
    bus: Bus, orchestrations: int, *, batch: int = 5000, dispatcher_bucket: str | None = None
) -> SynthReport:
    """Append ``orchestrations`` completed orchestrations and their dispatcher tombstones.

    Args:
        bus: A connected bus whose streams exist.
        orchestrations: How many completed orchestrations to write.
        batch: Publishes in flight before their acks are awaited.
        dispatcher_bucket: Name (within the topology) of the dispatcher's snapshot bucket;
            no tombstones are written when ``None``.
    """
    report = SynthReport(orchestrations)
    started = time.perf_counter()
    topo = bus.topology
    js = bus.js
    kv_subject = None
    if dispatcher_bucket is not None:
        await bus.kv(dispatcher_bucket)
        kv_subject = f"$KV.{topo.bucket(dispatcher_bucket)}."
    pending: list[Awaitable[PubAck]] = []
    at = time.time()
    for _ in range(orchestrations):
        orchestration_id = new_orchestration_id()
        for event in orchestration_events(orchestration_id, at):
            pending.append(
                await js.publish_async(
                    topo.subject_for(event), encode(event), headers={"Nats-Msg-Id": event.event_id}
                )
            )
            report.events += 1
        if kv_subject is not None:
            pending.append(
                await js.publish_async(
                    kv_subject + orchestration_id, b"", headers={"KV-Operation": "DEL"}
                )
            )
            report.tombstones += 1
        if len(pending) >= batch:
            await _drain_futures(pending)
    await _drain_futures(pending)
    report.seconds = time.perf_counter() - started
    return report


async def position_consumers(bus: Bus) -> list[str]:
    """Create the services' durable consumers as if they had consumed the whole log.

    Returns:
        Notes on consumers that could not be prepared (the service then replays the log).
    """
    notes: list[str] = []
    topo = bus.topology
    stream = topo.events_stream
    info = await bus.js.stream_info(stream)
    start = info.state.last_seq + 1

    def after_log(
        durable: str, filters: list[str], ack_wait: float, pending: int
    ) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=durable,
            deliver_group=durable,
            deliver_subject=f"{DELIVER_PREFIX}.{stream}.{durable}",
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait,
            max_deliver=-1,
            max_ack_pending=pending,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            filter_subjects=filters,
        )

    planner, dispatcher, import_notes = _consumer_specs()
    notes.extend(import_notes)
    for durable, event_types, ack_wait, pending in (planner, dispatcher):
        try:
            await bus.js.add_consumer(
                stream, after_log(durable, [topo.all_of(t) for t in event_types], ack_wait, pending)
            )
        except Exception as exc:
            notes.append(f"{durable} consumer not positioned ({type(exc).__name__}: {exc})")
    try:
        await _drain_notifier(bus)
    except Exception as exc:
        notes.append(f"notifier consumer not positioned ({type(exc).__name__}: {exc})")
    return notes


_ConsumerSpec = tuple[str, tuple[str, ...], float, int]


def _consumer_specs() -> tuple[_ConsumerSpec, _ConsumerSpec, list[str]]:
    """Durable name, consumed event types, ack wait and max ack pending of each service.

    Read from the services' code; when a module cannot be imported (a service being
    edited), the values documented in docs/architecture.md and the settings' defaults.
    """
    notes: list[str] = []
    planner: _ConsumerSpec = ("planner", ("action.submitted",), 60.0, 1000)
    dispatcher: _ConsumerSpec = (
        "dispatcher",
        ("plan.created", "plan.failed", "task.completed", "task.failed", "orchestration.aborted"),
        30.0,
        4096,
    )
    try:
        from orra_planner.app import DURABLE as PLANNER
        from orra_planner.settings import PlannerSettings

        planner = (PLANNER, ("action.submitted",), PlannerSettings().ack_wait_s, 1000)
    except Exception as exc:
        notes.append(f"planner consumer from the documented defaults ({type(exc).__name__})")
    try:
        from orra_dispatcher.handlers import CONSUMED, DURABLE
        from orra_dispatcher.settings import DispatcherSettings

        settings = DispatcherSettings()
        dispatcher = (DURABLE, tuple(CONSUMED), settings.ack_wait_s, settings.max_ack_pending)
    except Exception as exc:
        notes.append(f"dispatcher consumer from the documented defaults ({type(exc).__name__})")
    return planner, dispatcher, notes


def _notifier_config(bus: Bus) -> ConsumerConfig:
    try:
        from orra_notifier.app import fanout_durable

        return fanout_durable(bus.topology).config(push=False)
    except Exception:
        topo = bus.topology
        return ConsumerConfig(
            name="notifier",
            durable_name="notifier",
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30.0,
            max_deliver=-1,
            max_ack_pending=1000,
            deliver_policy=DeliverPolicy.ALL,
            filter_subjects=[
                topo.all_of(t)
                for t in ("orchestration.done", "orchestration.failed", "orchestration.aborted")
            ],
        )


async def _drain_notifier(bus: Bus) -> None:
    """Create the notifier's pull consumer with its own configuration, then ack everything."""
    config = _notifier_config(bus)
    stream = bus.topology.events_stream
    await bus.js.add_consumer(stream, config=config)
    assert config.durable_name is not None
    sub = await bus.js.pull_subscribe_bind(durable=config.durable_name, stream=stream)
    try:
        while True:
            try:
                msgs = await sub.fetch(1000, timeout=1.0)
            except TimeoutError:
                break
            for msg in msgs:
                await msg.ack()
            info = await sub.consumer_info()
            if info.num_pending == 0 and info.num_ack_pending == 0:
                break
        await bus.nc.flush()
    finally:
        await sub.unsubscribe()
