# ruff: noqa: N815 - camelCase wire field names, as in the seed
"""SDK failure handling against a real nats-server: revert handlers, abort, progress, stop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from orra_events import (
    Bus,
    OrchestrationAborted,
    TaskAborted,
    TaskCompensated,
    TaskCompensating,
    TaskCompensationFailed,
    TaskCompleted,
    TaskFailed,
    TaskProgress,
)
from orra_sdk import (
    AbortOrchestration,
    NonRetryableError,
    RevertTask,
    Service,
    ServiceDefinitionError,
    Task,
)
from tests.sdk.conftest import EventLog, work_left


class PayIn(BaseModel):
    orderId: str


class PayOut(BaseModel):
    transactionId: str


def service(**kw: Any) -> Service[PayIn, PayOut]:
    return Service(
        name="PaymentService",
        description="Charge an order",
        input=PayIn,
        output=PayOut,
        revertible=kw.pop("revertible", True),
    )


async def send_compensation(bus: Bus, *, attempt: int = 1, orch: str = "o_c") -> None:
    event = TaskCompensating(
        event_id=f"c:{orch}:pay:{attempt}",
        orchestration_id=orch,
        task_id="pay",
        service="PaymentService",
        input={"orderId": "ORD1"},
        output={"transactionId": "TX1"},
        reason="task 'ship' failed",
        attempt=attempt,
        idempotency_key=f"{orch}:pay:revert",
        timeout_s=30.0,
    )
    await bus.publish(event, subject=bus.topology.work("PaymentService"))


def test_revert_needs_a_revertible_service() -> None:
    svc = service(revertible=False)
    with pytest.raises(ServiceDefinitionError, match="not revertible"):

        @svc.revert
        async def undo(task: RevertTask[PayIn, PayOut]) -> None:  # pragma: no cover
            pass


async def test_revert_handler_gets_input_output_and_reason_once(
    bus: Bus, events: EventLog, make_client: Any
) -> None:
    svc = service()
    seen: list[RevertTask[PayIn, PayOut]] = []

    @svc.handler
    async def pay(task: Task[PayIn]) -> PayOut:  # pragma: no cover - not dispatched here
        return PayOut(transactionId="TX1")

    @svc.revert
    async def refund(task: RevertTask[PayIn, PayOut]) -> None:
        seen.append(task)

    client = make_client()
    await client.connect()
    await client.start(svc)
    await send_compensation(bus)
    (done,) = await events.wait(TaskCompensated, task_id="pay")
    assert done.event_id == "cr:o_c:pay:1"
    (task,) = seen
    assert task.input == PayIn(orderId="ORD1")
    assert task.output == PayOut(transactionId="TX1")
    assert task.reason == "task 'ship' failed"
    assert task.idempotency_key == "o_c:pay:revert"
    # a redelivered compensation (a dispatcher retry) replays the result, no second refund
    await send_compensation(bus, attempt=2)
    await events.wait(TaskCompensated, count=2, task_id="pay")
    assert len(seen) == 1
    assert await work_left(bus) == 0


async def test_a_failing_revert_reports_each_attempt(
    events: EventLog, bus: Bus, make_client: Any
) -> None:
    svc = service()

    @svc.handler
    async def pay(task: Task[PayIn]) -> PayOut:  # pragma: no cover
        return PayOut(transactionId="TX1")

    @svc.revert
    async def refund(task: RevertTask[PayIn, PayOut]) -> None:
        if task.attempt == 1:
            raise RuntimeError("bank unavailable")
        raise NonRetryableError("already settled")

    client = make_client()
    await client.connect()
    await client.start(svc)
    await send_compensation(bus, attempt=1)
    (first,) = await events.wait(TaskCompensationFailed, attempt=1)
    assert first.retryable
    assert "bank unavailable" in first.error
    await send_compensation(bus, attempt=2)
    (second,) = await events.wait(TaskCompensationFailed, attempt=2)
    assert not second.retryable


async def test_a_revertible_service_without_revert_handler_fails_the_compensation(
    events: EventLog, bus: Bus, make_client: Any
) -> None:
    svc = service()

    @svc.handler
    async def pay(task: Task[PayIn]) -> PayOut:  # pragma: no cover
        return PayOut(transactionId="TX1")

    client = make_client()
    await client.connect()
    await client.start(svc)
    await send_compensation(bus)
    (failed,) = await events.wait(TaskCompensationFailed)
    assert not failed.retryable
    assert "no revert handler" in failed.error


async def test_abort_and_progress_from_a_handler(
    events: EventLog, dispatch: Any, make_client: Any
) -> None:
    svc = service()

    @svc.handler
    async def pay(task: Task[PayIn]) -> PayOut:
        await task.progress({"step": 1})
        await task.progress({"step": 2})
        raise AbortOrchestration("card reported stolen", {"orderId": task.input.orderId})

    client = make_client()
    await client.connect()
    await client.start(svc)
    await dispatch("PaymentService", "pay", {"orderId": "ORD9"}, orchestration_id="o_ab")
    (aborted,) = await events.wait(TaskAborted)
    assert aborted.event_id == "r:o_ab:pay:1"
    assert aborted.reason == "card reported stolen"
    assert aborted.payload == {"orderId": "ORD9"}
    updates = await events.wait(TaskProgress, count=2)
    assert [(u.seq, u.update) for u in updates] == [(1, {"step": 1}), (2, {"step": 2})]
    assert updates[0].event_id == "pg:o_ab:pay:1:1"


async def test_progress_without_waiting_is_stored_ahead_of_the_result(
    bus: Bus, events: EventLog, dispatch: Any, make_client: Any
) -> None:
    svc = service()

    @svc.handler
    async def pay(task: Task[PayIn]) -> PayOut:
        await task.progress({"step": "charging"}, wait=False)
        await task.progress({"step": "charged"}, wait=False)
        return PayOut(transactionId="TX")

    client = make_client()
    await client.connect()
    await client.start(svc)
    await dispatch("PaymentService", "pay", {"orderId": "ORD7"}, orchestration_id="o_pg")
    (done,) = await events.wait(TaskCompleted)
    assert done.output == {"transactionId": "TX"}
    # In the log, both updates precede the result.
    stored = await bus.js.subscribe(
        bus.topology.history_of("o_pg"), stream=bus.topology.events_stream, ordered_consumer=True
    )
    types = []
    for _ in range(3):
        msg = await stored.next_msg(timeout=5)
        types.append(msg.subject.removeprefix(f"{bus.topology.namespace}.").rsplit(".", 1)[0])
    await stored.unsubscribe()
    assert types == ["task.progress", "task.progress", "task.completed"]
    assert await work_left(bus) == 0


async def test_a_running_task_is_stopped_when_its_orchestration_is_aborted(
    bus: Bus, events: EventLog, dispatch: Any, make_client: Any
) -> None:
    svc = service()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @svc.handler
    async def pay(task: Task[PayIn]) -> PayOut:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return PayOut(transactionId="never")  # pragma: no cover

    client = make_client()
    await client.connect()
    await client.start(svc)
    await dispatch("PaymentService", "pay", {"orderId": "ORD1"}, orchestration_id="o_stop")
    await asyncio.wait_for(started.wait(), 10)
    await bus.publish(
        OrchestrationAborted(event_id="end:o_stop", orchestration_id="o_stop", reason="user")
    )
    (failed,) = await events.wait(TaskFailed, orchestration_id="o_stop")
    assert cancelled.is_set()
    assert not failed.retryable
    assert failed.error == "stopped: orchestration aborted: user"
    assert not events.of(TaskCompleted, orchestration_id="o_stop")
    assert await work_left(bus) == 0
    # a task of the stopped orchestration that arrives later is not run
    await dispatch("PaymentService", "other", {"orderId": "ORD1"}, orchestration_id="o_stop")
    (late,) = await events.wait(TaskFailed, task_id="other")
    assert late.error.startswith("stopped:")
